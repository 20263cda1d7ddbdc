//! The packet walk: what happens, hop by hop, to one connection through a
//! DR setup, with the Ethernet and IP headers at each hop and the fields
//! that changed. When the topology has the classic mistakes (a real server
//! that answers ARP for the VIP, or one without the VIP on `lo`), the walk
//! shows what the kernel does instead. The playground animates it.

use crate::model::{Family, Forward, ServiceKey, Topology};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    pub eth_src: String,
    pub eth_dst: String,
    pub ip_src: String,
    pub ip_dst: String,
    /// `ARP who-has …`, `TCP SYN :80`, …
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub from: String,
    pub to: String,
    pub title: String,
    pub explanation: String,
    pub frame: Frame,
    /// Fields of `frame` that differ from the previous hop's (`eth_dst`, …).
    pub changed: Vec<&'static str>,
    /// Whether this is where things go wrong.
    pub problem: bool,
    /// Which leg of the connection this is, so that a page holding the
    /// frames a lab captured can put the real one here: `gateway` (client →
    /// router), `ask` (ARP or neighbour solicitation), `answer`, `syn`,
    /// `forward` (director → real server), `deliver` (the real server takes
    /// it, or drops it), `reply`, `reply-routed` (router → client). Empty for
    /// a step no lab captures (the failover story, no real server).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub leg: &'static str,
}

fn mac(host: &str) -> String {
    format!("MAC({host})")
}

/// What `walk(t, Some(FAILOVER))` shows for a director pair: the failover story.
pub const FAILOVER: &str = "failover";

/// A director pair's failover, for an established connection: the master
/// goes silent, the backup takes the VIP with a gratuitous ARP, and the
/// connection's next packet arrives at the backup, which forwards it by the
/// entry the sync daemon copied (or, without sync, cannot, and the client
/// gets a reset: DR033). Empty when the topology has no VRRP pair.
pub fn failover(t: &Topology) -> Vec<Step> {
    let pair: Vec<&crate::model::Director> = t.directors.iter().filter(|d| d.vrrp.is_some()).collect();
    let (Some(master), Some(backup)) = (pair.first(), pair.get(1)) else {
        return vec![];
    };
    let Some(s) = t.services.first() else { return vec![] };
    let Some(vip_ip) = t.service_vips(s).first().copied() else {
        return vec![];
    };
    let Some(client_ip) = t.client.address.of(Family::of(&vip_ip)).map(|a| a.value) else {
        return vec![];
    };
    let (vip, client) = (vip_ip.to_string(), client_ip.to_string());
    let picked = crate::predict::predict(t, s, &crate::predict::sequential(1, 1, client_ip))
        .pick(0)
        .map(str::to_string)
        .unwrap_or_else(|| "a real server".into());
    let synced = backup.sync.is_some() && master.sync.is_some();
    let advert = master.vrrp.as_ref().map(|v| v.advert_ms.value).unwrap_or(1000);
    let frame = |from: &str, to: &str, what: String| Frame {
        eth_src: mac(from),
        eth_dst: mac(to),
        ip_src: client.clone(),
        ip_dst: vip.clone(),
        what,
    };
    let mut steps = vec![
        Step {
            from: master.name.to_string(),
            to: picked.clone(),
            title: format!("An established connection through {}", master.name),
            explanation: format!(
                "The client's connection to {vip} goes through the master, {}, to {picked}.{}",
                master.name,
                if synced {
                    format!(" The sync daemon copies each new IPVS entry to {} as it is made.", backup.name)
                } else {
                    format!(" No sync daemon runs: {} knows nothing of this connection.", backup.name)
                }
            ),
            frame: frame(&master.name, &picked, format!("TCP data {vip} (established)")),
            changed: vec![],
            problem: false,
            leg: "",
        },
        Step {
            from: master.name.to_string(),
            to: master.name.to_string(),
            title: format!("{} goes silent", master.name),
            explanation: format!(
                "{} stops sending VRRP adverts (every {advert} ms). After three missed adverts and a skew, {} declares it dead.",
                master.name, backup.name
            ),
            frame: Frame {
                eth_src: mac(&master.name),
                eth_dst: "01:00:5e:00:00:12".into(),
                ip_src: "—".into(),
                ip_dst: "224.0.0.18".into(),
                what: "VRRP advert (no longer sent)".into(),
            },
            changed: vec![],
            problem: true,
            leg: "",
        },
        Step {
            from: backup.name.to_string(),
            to: "lan".into(),
            title: format!("{} takes the VIP and says so", backup.name),
            explanation: format!(
                "{} adds {vip} to its NIC and broadcasts a gratuitous ARP: every host on the LAN, the client (or its router) included, now holds {}'s MAC for {vip}.",
                backup.name, backup.name
            ),
            frame: Frame {
                eth_src: mac(&backup.name),
                eth_dst: "ff:ff:ff:ff:ff:ff".into(),
                ip_src: vip.clone(),
                ip_dst: vip.clone(),
                what: format!("ARP {vip} is-at {} (gratuitous)", mac(&backup.name)),
            },
            changed: vec!["eth_src", "eth_dst", "ip_src", "ip_dst", "what"],
            problem: false,
            leg: "",
        },
        Step {
            from: t.client.name.to_string(),
            to: backup.name.to_string(),
            title: format!("The next packet of the connection reaches {}", backup.name),
            explanation: "The client knows nothing of the failover: it sends the next segment of the same connection, now framed for the backup's MAC.".into(),
            frame: frame(&t.client.name, &backup.name, format!("TCP data {vip} (established)")),
            changed: vec!["eth_dst"],
            problem: false,
            leg: "",
        },
    ];
    steps.push(if synced {
        Step {
            from: backup.name.to_string(),
            to: picked.clone(),
            title: format!("The synced entry sends it to {picked}"),
            explanation: format!("{}'s IPVS has the entry the sync daemon copied: it forwards the packet by MAC to {picked}, the same real server as before, and the connection carries on.", backup.name),
            frame: frame(&backup.name, &picked, format!("TCP data {vip} (established)")),
            changed: vec!["eth_src", "eth_dst"],
            problem: false,
            leg: "",
        }
    } else {
        Step {
            from: backup.name.to_string(),
            to: t.client.name.to_string(),
            title: "No entry: the connection is reset".into(),
            explanation: format!("{} has no IPVS entry for this connection and a mid-stream segment is not a SYN, so IPVS does not schedule it; the packet reaches the director's own stack, which answers with a reset. Fix: the IPVS sync daemon on both directors (DR033).", backup.name),
            frame: Frame {
                eth_src: mac(&backup.name),
                eth_dst: mac(&t.client.name),
                ip_src: vip.clone(),
                ip_dst: client.clone(),
                what: "TCP RST".into(),
            },
            changed: vec!["eth_src", "eth_dst", "ip_src", "ip_dst", "what"],
            problem: true,
            leg: "",
        }
    });
    steps
}

/// The walk of the first connection to `service` (by default the first
/// service), to the real server the scheduler picks first; for a director
/// pair, `Some("failover")` is the failover story ([`failover`]).
pub fn walk(t: &Topology, service: Option<&str>) -> Vec<Step> {
    if service == Some(FAILOVER) {
        return failover(t);
    }
    let Some(s) = service.and_then(|k| t.service(k)).or(t.services.first()) else {
        return vec![];
    };
    let Some(vip_ip) = t.service_vips(s).first().copied() else {
        return vec![];
    };
    let family = Family::of(&vip_ip);
    let Some(client_ip) = t.client.address.of(family).map(|a| a.value) else {
        return vec![];
    };
    let v6 = family == Family::V6;
    let vip = vip_ip.to_string();
    let client = client_ip.to_string();
    let director = t.director();
    let port = match s.key.value {
        ServiceKey::Port { port, .. } => format!(":{port}"),
        ServiceKey::Fwmark(m) => format!(" (fwmark {m})"),
    };
    let events = crate::predict::sequential(1, 1, client_ip);
    let picked = crate::predict::predict(t, s, &events).pick(0).map(str::to_string);
    let mut steps = Vec::new();
    // Who answers ARP for the VIP?
    // IPv6 has no ARP: Linux answers a neighbour solicitation only for addresses on the NIC it came in on.
    let arp_thief = t.real_servers.iter().find(|rs| {
        !v6 && rs.lo_vip(vip_ip).is_some()
            && (rs.sysctls.effective_max(&rs.interface.value, "arp_ignore") < 1
                || rs.sysctls.effective_max(&rs.interface.value, "arp_announce") < 2)
    });
    // Behind a router, the client hands its SYN to the router, and the router is the
    // one that asks the LAN who has the VIP; the replies come back through it.
    let router = t.router.as_ref().map(|r| r.name.to_string());
    let asker = router.clone().unwrap_or_else(|| t.client.name.to_string());
    if let Some(r) = &router {
        steps.push(Step {
            from: t.client.name.to_string(),
            to: r.clone(),
            title: "The client sends its SYN to its gateway".into(),
            explanation: format!("{vip} is not on the client's link: the SYN goes to the router, which reaches the VIP on the LAN side."),
            frame: Frame {
                eth_src: mac(&t.client.name),
                eth_dst: mac(r),
                ip_src: client.clone(),
                ip_dst: vip.clone(),
                what: format!("TCP SYN {vip}{port}"),
            },
            changed: vec![],
            problem: false,
            leg: "gateway",
        });
    }
    steps.push(Step {
        from: asker.to_string(),
        to: "lan".into(),
        title: "The client asks who has the VIP".into(),
        explanation: if v6 {
            format!("Before sending anything to {vip}, the client multicasts a neighbour solicitation for it. The director and the real servers hold the VIP, but only the director holds it on the NIC the solicitation arrives on.")
        } else {
            format!("Before sending anything to {vip}, the client broadcasts an ARP request on the LAN. Every host receives it: the director and the real servers, which all hold the VIP.")
        },
        frame: Frame {
            eth_src: mac(&asker),
            eth_dst: if v6 { "33:33:ff:…".into() } else { "ff:ff:ff:ff:ff:ff".into() },
            ip_src: client.clone(),
            ip_dst: vip.clone(),
            what: if v6 { format!("ICMPv6 neighbour solicitation for {vip}") } else { format!("ARP who-has {vip}") },
        },
        changed: vec![],
        problem: false,
        leg: "ask",
    });
    let owner = match arp_thief {
        Some(rs) => {
            steps.push(Step {
                from: rs.name.value.to_string(),
                to: asker.to_string(),
                title: format!("{} answers the ARP request: the ARP trap", rs.name.value),
                explanation: format!(
                    "{} holds the VIP on lo and does not ignore ARP for it (arp_ignore {}, arp_announce {} on {}). It races the director, and when it wins the client caches its MAC for the VIP. Every connection then goes straight to {}: no load balancing. Fix: arp_ignore=1 and arp_announce=2 on `all` (DR001, DR002).",
                    rs.name.value,
                    rs.sysctls.effective_max(&rs.interface.value, "arp_ignore"),
                    rs.sysctls.effective_max(&rs.interface.value, "arp_announce"),
                    rs.interface.value,
                    rs.name.value
                ),
                frame: Frame { eth_src: mac(&rs.name.value), eth_dst: mac(&asker), ip_src: vip.clone(), ip_dst: client.clone(), what: format!("ARP {vip} is-at {}", mac(&rs.name.value)) },
                changed: vec!["eth_src", "eth_dst", "ip_src", "ip_dst", "what"],
                problem: true,
                leg: "answer",
            });
            rs.name.value.to_string()
        }
        None => {
            steps.push(Step {
                from: director.name.to_string(),
                to: asker.to_string(),
                title: "Only the director answers".into(),
                explanation: if v6 {
                    "The real servers hold the VIP on lo, not on the NIC the solicitation came in on, so they stay silent without any sysctl. The client caches the director's MAC for the VIP.".into()
                } else {
                    "The real servers ignore ARP requests for the VIP (arp_ignore=1: it is not on the NIC the request came in on) and never announce it (arp_announce=2). The client caches the director's MAC for the VIP.".into()
                },
                frame: Frame {
                    eth_src: mac(&director.name),
                    eth_dst: mac(&asker),
                    ip_src: vip.clone(),
                    ip_dst: client.clone(),
                    what: if v6 {
                        format!("ICMPv6 neighbour advertisement {vip} is-at {}", mac(&director.name))
                    } else {
                        format!("ARP {vip} is-at {}", mac(&director.name))
                    },
                },
                changed: vec!["eth_src", "eth_dst", "ip_src", "ip_dst", "what"],
                problem: false,
                leg: "answer",
            });
            director.name.to_string()
        }
    };
    steps.push(Step {
        from: asker.to_string(),
        to: owner.clone(),
        title: format!("The SYN goes to {owner}"),
        explanation: format!("The client sends its SYN to {vip}{port}, framed for the MAC it learned."),
        frame: Frame {
            eth_src: mac(&asker),
            eth_dst: mac(&owner),
            ip_src: client.clone(),
            ip_dst: vip.clone(),
            what: format!("TCP SYN {vip}{port}"),
        },
        changed: vec!["eth_src", "eth_dst", "ip_src", "ip_dst", "what"],
        problem: arp_thief.is_some(),
        leg: "syn",
    });
    let server = if arp_thief.is_some() {
        owner.clone()
    } else {
        let Some(rs) = picked.clone() else {
            steps.push(Step {
                from: director.name.to_string(),
                to: director.name.to_string(),
                title: "No real server available".into(),
                explanation: format!(
                    "IPVS has no real server with a weight above 0 for {}: the connection is dropped (DR015, DR016).",
                    t.label(s)
                ),
                frame: Frame {
                    eth_src: mac(&t.client.name),
                    eth_dst: mac(&director.name),
                    ip_src: client.clone(),
                    ip_dst: vip.clone(),
                    what: format!("TCP SYN {vip}{port}"),
                },
                changed: vec![],
                problem: true,
                leg: "forward",
            });
            return steps;
        };
        let dest = s.destinations.iter().find(|d| d.server.value == rs);
        let method = dest.map(|d| d.forward.value).unwrap_or(Forward::Route);
        steps.push(Step {
            from: director.name.to_string(),
            to: rs.clone(),
            title: format!("IPVS picks {rs} and rewrites only the destination MAC"),
            explanation: format!(
                "The {} scheduler picks {rs}. In direct routing the director changes nothing but the Ethernet destination: the IP packet still says {client} → {vip}, so {rs} sees the client's real address.{}",
                s.scheduler.name(),
                if method == Forward::Route { "" } else { " (This destination is not DR: see DR019.)" }
            ),
            frame: Frame { eth_src: mac(&director.name), eth_dst: mac(&rs), ip_src: client.clone(), ip_dst: vip.clone(), what: format!("TCP SYN {vip}{port}") },
            changed: vec!["eth_src", "eth_dst"],
            problem: method != Forward::Route,
            leg: "forward",
        });
        rs
    };
    let rs = t.real_server(&server);
    let has_vip = rs.map(|r| r.lo_vip(vip_ip).is_some()).unwrap_or(true);
    if !has_vip {
        steps.push(Step {
            from: server.clone(),
            to: server.clone(),
            title: format!("{server} drops the packet: the VIP is not on lo"),
            explanation: format!("The packet is addressed to {vip}, which {server} does not own. The kernel drops it (IpInAddrErrors); the client retries its SYN until it times out. Fix: the VIP on lo as /32 (DR003)."),
            frame: Frame { eth_src: mac(&director.name), eth_dst: mac(&server), ip_src: client.clone(), ip_dst: vip.clone(), what: format!("TCP SYN {vip}{port} (dropped)") },
            changed: vec!["what"],
            problem: true,
            leg: "deliver",
        });
        return steps;
    }
    steps.push(Step {
        from: server.clone(),
        to: server.clone(),
        title: format!("{server} accepts it: the VIP is on lo"),
        explanation: format!("{server} holds {vip} on its loopback interface, so the packet is for one of its own addresses. Its server sees the peer {client}."),
        frame: Frame { eth_src: mac(&director.name), eth_dst: mac(&server), ip_src: client.clone(), ip_dst: vip.clone(), what: format!("TCP SYN {vip}{port} (accepted)") },
        changed: vec!["what"],
        problem: false,
        leg: "deliver",
    });
    match &router {
        None => steps.push(Step {
            from: server.clone(),
            to: t.client.name.to_string(),
            title: "The reply goes straight to the client".into(),
            explanation: format!("{server} answers from {vip} directly to {client}: the reply never passes the director, whose IPVS counters show packets in and none out."),
            frame: Frame { eth_src: mac(&server), eth_dst: mac(&t.client.name), ip_src: vip.clone(), ip_dst: client.clone(), what: format!("TCP SYN-ACK {vip}{port} → {client}") },
            changed: vec!["eth_src", "eth_dst", "ip_src", "ip_dst", "what"],
            problem: false,
            leg: "reply",
        }),
        Some(r) => {
            steps.push(Step {
                from: server.clone(),
                to: r.clone(),
                title: "The reply goes to the router, not the director".into(),
                explanation: format!("{server} answers from {vip} to {client} through its default gateway, the router: the reply never passes the director, whose IPVS counters show packets in and none out."),
                frame: Frame { eth_src: mac(&server), eth_dst: mac(r), ip_src: vip.clone(), ip_dst: client.clone(), what: format!("TCP SYN-ACK {vip}{port} → {client}") },
                changed: vec!["eth_src", "eth_dst", "ip_src", "ip_dst", "what"],
                problem: false,
                leg: "reply",
            });
            steps.push(Step {
                from: r.clone(),
                to: t.client.name.to_string(),
                title: "The router forwards the reply to the client".into(),
                explanation: format!("The client sees {vip} answer, from the router's MAC as any routed reply; it never learns which real server answered."),
                frame: Frame { eth_src: mac(r), eth_dst: mac(&t.client.name), ip_src: vip.clone(), ip_dst: client.clone(), what: format!("TCP SYN-ACK {vip}{port} → {client}") },
                changed: vec!["eth_src", "eth_dst"],
                problem: false,
                leg: "reply-routed",
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_walk_goes_through_the_director_and_back_directly() {
        let t = crate::topology_file::from_toml(include_str!("../../fixtures/seed-dr.toml")).unwrap();
        let steps = walk(&t, None);
        assert_eq!(steps.len(), 6);
        assert!(steps.iter().all(|s| !s.problem));
        assert_eq!(steps[1].from, "director");
        assert_eq!(steps[3].changed, ["eth_src", "eth_dst"]);
        assert_eq!(steps[3].frame.ip_src, "192.168.1.100");
        assert_eq!(steps[5].frame.ip_src, "192.168.1.192");
        assert_eq!(steps[5].to, "client");
        let legs: Vec<&str> = steps.iter().map(|s| s.leg).collect();
        assert_eq!(legs, ["ask", "answer", "syn", "forward", "deliver", "reply"]);
    }

    #[test]
    fn behind_a_router_the_router_asks_and_the_reply_comes_back_through_it() {
        let t = crate::topology_file::from_toml(include_str!("../../fixtures/routed-dr.toml")).unwrap();
        let steps = walk(&t, None);
        assert_eq!((steps[0].from.as_str(), steps[0].to.as_str()), ("client", "router"));
        assert_eq!(steps[1].from, "router", "the router asks who has the VIP");
        assert_eq!(steps[2].to, "router", "the director answers the router");
        let n = steps.len();
        assert_eq!((steps[n - 2].to.as_str(), steps[n - 1].to.as_str()), ("router", "client"));
        assert!(steps.iter().all(|s| !s.problem));
        assert_eq!((steps[0].leg, steps[n - 1].leg), ("gateway", "reply-routed"));
    }

    #[test]
    fn a_pair_fails_over_with_or_without_its_connections() {
        let t = crate::topology_file::from_toml(include_str!("../../fixtures/pair-dr.toml")).unwrap();
        let steps = walk(&t, Some(FAILOVER));
        assert_eq!(steps[2].from, "lb2");
        assert!(steps[2].frame.what.contains("gratuitous"));
        assert!(!steps.last().unwrap().problem, "synced: the connection carries on");
        let t = crate::topology_file::from_toml(include_str!("../../fixtures/rules/DR033-fail.toml")).unwrap();
        let last = walk(&t, Some(FAILOVER)).pop().unwrap();
        assert!(last.problem && last.explanation.contains("DR033"));
        assert!(
            walk(&t, Some(FAILOVER)).iter().all(|s| s.leg.is_empty()),
            "no lab captures the failover story"
        );
        let seed = crate::topology_file::from_toml(include_str!("../../fixtures/seed-dr.toml")).unwrap();
        assert!(walk(&seed, Some(FAILOVER)).is_empty());
    }

    #[test]
    fn arp_mistake_shows_the_real_server_answering() {
        let t = crate::topology_file::from_toml(include_str!("../../fixtures/faults/no-arp-sysctls.toml")).unwrap();
        let steps = walk(&t, None);
        assert_eq!(steps[1].from, "rs2");
        assert!(steps[1].problem);
        assert_eq!(steps[2].frame.eth_dst, "MAC(rs2)");
    }

    #[test]
    fn missing_vip_on_lo_drops_the_syn() {
        let t = crate::topology_file::from_toml(include_str!("../../fixtures/faults/no-vip-on-lo.toml")).unwrap();
        let steps = walk(&t, None);
        // The first pick is rs2 (added last, so first in the kernel's list).
        assert!(steps.last().unwrap().problem, "{steps:?}");
        assert!(steps.last().unwrap().title.contains("drops"));
    }
}
