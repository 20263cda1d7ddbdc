//! The proofs of DR, one function each, in the manner of the kernel's
//! `ipvs.sh`: every proof reads what the lab observed ([`Observed`]) and
//! returns its check. None of them touches the kernel or waits for a timer.

use crate::capture::ReplyFrame;
use crate::ipvs::{DestEntry, ServiceEntry, ServiceId};
use crate::probe::ConnectionResult;
use crate::report::{Check, SplitReport};
use crate::rtnl::format_mac;
use lvsdr_core::model::Forward;
use lvsdr_core::names::HostName;
use lvsdr_core::plan::{honours_weights, CheckKind, HostPlan, LabPlan, ProbePlan, ReplyPath, Role};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The director's IPVS table: every service with its destinations.
pub type IpvsTable = Vec<(ServiceEntry, Vec<DestEntry>)>;

/// Everything the lab saw, once the probes are done.
pub struct Observed<'a> {
    pub plan: &'a LabPlan,
    pub director: &'a HostPlan,
    /// Every probe connection, in the order they were opened.
    pub connections: &'a [ConnectionResult],
    /// The frames from the VIP that reached the client.
    pub replies: &'a [ReplyFrame],
    pub table: &'a IpvsTable,
    /// The client's neighbour entry for each VIP it connected to.
    pub neighbours: &'a [(IpAddr, Option<[u8; 6]>)],
    /// Each host's MAC on its LAN interface (not the client's).
    pub macs: &'a BTreeMap<HostName, [u8; 6]>,
    /// Packets through the director's interface during the probes: (rx, tx).
    pub director_packets: (u64, u64),
    /// Packets each LVS-TUN real server received on its tunnel device.
    pub tunnel_packets: &'a BTreeMap<HostName, u64>,
    /// Each planned service's identity in the kernel, by name (`tcp/80`).
    pub ids: BTreeMap<String, ServiceId>,
    /// Whether the order of picks is predictable (keepalived adds real servers
    /// as their checks succeed, so there only the counts are).
    pub order_matters: bool,
}

impl Observed<'_> {
    /// The reply path of the service a reply frame came from, by its VIP and port.
    fn frame_path(&self, f: &ReplyFrame) -> Option<ReplyPath> {
        self.plan
            .probes
            .iter()
            .find(|p| p.address == f.source && p.port == f.source_port)
            .map(|p| p.reply)
    }

    /// Who sent `frames`, by host, with counts: `rs1 (44), rs2 (46)`.
    fn senders(&self, frames: &[&ReplyFrame]) -> String {
        let mut by_sender: BTreeMap<String, usize> = BTreeMap::new();
        for f in frames {
            let sender = self
                .host_of_mac(&f.source_mac)
                .map(HostName::to_string)
                .unwrap_or_else(|| format_mac(&f.source_mac));
            *by_sender.entry(sender).or_default() += 1;
        }
        if by_sender.is_empty() {
            "nobody".to_string()
        } else {
            by_sender.iter().map(|(k, v)| format!("{k} ({v})")).collect::<Vec<_>>().join(", ")
        }
    }

    fn of_service<'b>(&'b self, p: &ProbePlan) -> impl Iterator<Item = &'b ConnectionResult> + 'b {
        let service = p.service.clone();
        self.connections.iter().filter(move |c| c.service == service)
    }

    fn attempts(&self) -> u64 {
        self.plan.probes.iter().map(|p| p.connections.len() as u64).sum()
    }

    fn host_of_mac(&self, mac: &[u8; 6]) -> Option<&HostName> {
        self.macs.iter().find(|(_, m)| *m == mac).map(|(name, _)| name)
    }

    /// The connections the kernel scheduled to each real server of a service:
    /// its per-destination counts (active + inactive), which change at once.
    pub fn kernel_counts(&self, p: &ProbePlan) -> BTreeMap<String, usize> {
        let server_of: BTreeMap<IpAddr, String> = self
            .plan
            .hosts
            .iter()
            .filter(|h| h.role == Role::RealServer)
            .flat_map(|h| h.addresses.iter().filter(|a| !a.vip).map(|a| (a.address, h.name.to_string())))
            .collect();
        let id = self.ids.get(&p.service);
        let Some((_, dests)) = self.table.iter().find(|(s, _)| Some(&s.service.id) == id) else {
            return BTreeMap::new();
        };
        let mut counts: BTreeMap<String, usize> = p.expected.counts.keys().map(|k| (k.clone(), 0)).collect();
        for d in dests {
            let name = server_of
                .get(&d.dest.address)
                .cloned()
                .unwrap_or_else(|| d.dest.address.to_string());
            *counts.entry(name).or_default() += (d.active_conns + d.inactive_conns) as usize;
        }
        counts
    }
}

fn counts_text(c: &BTreeMap<String, usize>) -> String {
    c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// Every connection to the service was answered.
pub fn connectivity(o: &Observed, p: &ProbePlan) -> Check {
    let mine: Vec<&ConnectionResult> = o.of_service(p).collect();
    let failed: Vec<&&ConnectionResult> = mine.iter().filter(|c| c.error.is_some()).collect();
    let mut seen = format!("{}/{} answered", mine.len() - failed.len(), mine.len());
    if let Some(f) = failed.first() {
        seen.push_str(&format!("; {}", f.error.clone().unwrap_or_default()));
    }
    Check::new(
        format!("connectivity {}", p.service),
        CheckKind::Connectivity,
        failed.is_empty(),
        format!("{} of {} answered", mine.len(), mine.len()),
        seen,
    )
}

/// Each real server saw the client's own address, not the director's.
pub fn source_ip(o: &Observed, p: &ProbePlan) -> Check {
    let mine: Vec<&ConnectionResult> = o.of_service(p).collect();
    let sources: Vec<String> = mine.iter().filter_map(|c| c.source_seen.clone()).collect();
    let wrong = mine
        .iter()
        .any(|c| c.source_seen.as_ref().is_some_and(|s| *s != c.client.to_string()));
    let mut clients: Vec<IpAddr> = p.connections.iter().map(|c| c.client).collect();
    clients.sort();
    clients.dedup();
    let mut uniq = sources.clone();
    uniq.sort();
    uniq.dedup();
    Check::new(
        format!("source-ip {}", p.service),
        CheckKind::SourceIp,
        !sources.is_empty() && !wrong,
        match clients.as_slice() {
            [one] => format!("every real server sees {one}"),
            many => format!("every real server sees the client's own address ({} clients)", many.len()),
        },
        if sources.is_empty() { "no answers".into() } else { uniq.join(", ") },
    )
}

/// Replies bypassed the director, on the wire: IPVS scheduled every
/// connection, and every reply frame the client got carries a real server's
/// MAC, none the director's.
pub fn reply_bypass(o: &Observed) -> Option<Check> {
    // The frames of services forwarded by DR or TUN; NAT's come back through the director.
    let probes: Vec<&ProbePlan> = o.plan.probes.iter().filter(|p| p.reply == ReplyPath::Bypass).collect();
    if probes.is_empty() {
        return None;
    }
    let attempts: u64 = probes.iter().map(|p| p.connections.len() as u64).sum();
    let scheduled: u64 = probes.iter().map(|p| o.kernel_counts(p).values().sum::<usize>() as u64).sum();
    let replies: Vec<&ReplyFrame> = o.replies.iter().filter(|f| o.frame_path(f) == Some(ReplyPath::Bypass)).collect();
    let director_mac = o.macs.get(&o.director.name);
    let real_servers: Vec<&[u8; 6]> = o
        .plan
        .hosts
        .iter()
        .filter(|h| h.role == Role::RealServer)
        .filter_map(|h| o.macs.get(&h.name))
        .collect();
    let from_real_servers = replies
        .iter()
        .all(|f| Some(&f.source_mac) != director_mac && real_servers.contains(&&f.source_mac));
    let senders = o.senders(&replies);
    let (rx, tx) = o.director_packets;
    Some(Check::new(
        "reply-bypass",
        CheckKind::ReplyBypass,
        scheduled >= attempts && !replies.is_empty() && from_real_servers,
        format!("{attempts} conns via IPVS; replies from real servers only"),
        format!(
            "IPVS scheduled {scheduled}; {} reply frame(s) from {senders}; director {} rx +{rx} tx +{tx}",
            replies.len(),
            o.director.interface
        ),
    ))
}

/// LVS-NAT: the replies of NAT services reach the client from the director,
/// which rewrote their source to the VIP (the opposite of DR's bypass): every
/// such frame carries the director's MAC and the VIP as its source.
pub fn reply_via_director(o: &Observed) -> Option<Check> {
    let probes: Vec<&ProbePlan> = o.plan.probes.iter().filter(|p| p.reply == ReplyPath::Director).collect();
    if probes.is_empty() {
        return None;
    }
    let attempts: u64 = probes.iter().map(|p| p.connections.len() as u64).sum();
    let scheduled: u64 = probes.iter().map(|p| o.kernel_counts(p).values().sum::<usize>() as u64).sum();
    let replies: Vec<&ReplyFrame> = o.replies.iter().filter(|f| o.frame_path(f) == Some(ReplyPath::Director)).collect();
    let director_mac = o.macs.get(&o.director.name);
    let via_director = replies.iter().all(|f| Some(&f.source_mac) == director_mac);
    Some(Check::new(
        "reply-via-director",
        CheckKind::ReplyViaDirector,
        scheduled >= attempts && !replies.is_empty() && via_director,
        format!("{attempts} NAT conns; replies from the director, source the VIP"),
        format!(
            "IPVS scheduled {scheduled}; {} reply frame(s) from {}",
            replies.len(),
            o.senders(&replies)
        ),
    ))
}

/// LVS-TUN: every real server the kernel scheduled tunnelled connections to
/// received them encapsulated, on its tunnel device (`ip -s link show tunl0`).
/// One check per such real server; none for a setup without tunnels.
pub fn tunnel(o: &Observed) -> Vec<Check> {
    o.tunnel_packets
        .iter()
        .map(|(name, packets)| {
            let scheduled: usize = o
                .plan
                .probes
                .iter()
                .filter(|p| {
                    o.plan
                        .services
                        .iter()
                        .any(|s| s.name == p.service && s.destinations.iter().any(|d| d.forward == Forward::Tunnel.kernel_value()))
                })
                .map(|p| o.kernel_counts(p).get(name.as_str()).copied().unwrap_or(0))
                .sum();
            Check::new(
                format!("tunnel {name}"),
                CheckKind::Tunnel,
                scheduled > 0 && *packets > 0,
                format!("{name}'s tunnelled connections arrive IP-in-IP on tunl0"),
                format!("IPVS scheduled {scheduled} to {name}; tunl0 received {packets} packet(s)"),
            )
        })
        .collect()
}

/// IPVS's own traffic statistics: packets in, none out (`--ipvs-stats`; the
/// kernel refreshes them every 2 s, so the lab waited for them).
pub fn ipvs_stats(o: &Observed) -> Check {
    let attempts = o.attempts();
    let inpkts: u64 = o.table.iter().map(|(s, _)| s.stats.inpkts).sum();
    let outpkts: u64 = o.table.iter().map(|(s, _)| s.stats.outpkts).sum();
    let conns: u64 = o.table.iter().map(|(s, _)| s.stats.conns).sum();
    Check::new(
        "ipvs-stats",
        CheckKind::ReplyBypass,
        inpkts > 0 && outpkts == 0 && conns >= attempts,
        format!("IPVS in > 0, out = 0, {attempts} conns"),
        format!("IPVS: {conns} connections, {inpkts} in, {outpkts} out"),
    )
}

/// The client's neighbour entry for each VIP holds the director's MAC: one
/// `arp-owner` check, or one per VIP (`arp-owner 2001:db8::1`) when there are several.
pub fn arp_owner(o: &Observed) -> Vec<Check> {
    let director_mac = o.macs.get(&o.director.name).copied();
    let many = o.neighbours.len() > 1;
    o.neighbours
        .iter()
        .map(|(vip, neighbour)| {
            Check::new(
                if many { format!("arp-owner {vip}") } else { "arp-owner".into() },
                CheckKind::ArpOwner,
                neighbour.is_some() && *neighbour == director_mac,
                format!(
                    "{vip} → {} ({})",
                    director_mac.map(|m| format_mac(&m)).unwrap_or_default(),
                    o.director.name
                ),
                match neighbour {
                    Some(m) => format!(
                        "{vip} → {} ({})",
                        format_mac(m),
                        o.host_of_mac(m).map(HostName::to_string).unwrap_or_else(|| "unknown host".into())
                    ),
                    None => format!("no neighbour entry for {vip}"),
                },
            )
        })
        .collect()
}

/// The kernel split the service's connections as `lvsdr predict` said, in
/// the predicted order (a connection nobody answered counts as unknown, not as a miss).
pub fn split(o: &Observed, p: &ProbePlan) -> (Check, SplitReport) {
    let seen: Vec<Option<String>> = o.of_service(p).map(|c| c.real_server.clone()).collect();
    let counts = o.kernel_counts(p);
    let expected_order = p.expected.pick_names();
    let order_ok = seen.len() == expected_order.len() && seen.iter().zip(&expected_order).all(|(s, e)| s.is_none() || s == e);
    let answered_any = seen.iter().any(Option::is_some);
    let matches = (order_ok || !o.order_matters) && answered_any && counts == p.expected.counts;
    let order = seen
        .iter()
        .map(|s| s.clone().unwrap_or_else(|| "?".into()))
        .collect::<Vec<_>>()
        .join(",");
    let check = Check::new(
        format!("split {}", p.service),
        CheckKind::Split,
        matches,
        if o.order_matters {
            format!("{} ({}), in predicted order", counts_text(&p.expected.counts), p.expected.scheduler)
        } else {
            format!("{} ({})", counts_text(&p.expected.counts), p.expected.scheduler)
        },
        if matches {
            format!("IPVS {} (same order)", counts_text(&counts))
        } else {
            format!("IPVS {}; answers in order {order}", counts_text(&counts))
        },
    );
    let report = SplitReport {
        scheduler: p.expected.scheduler.to_string(),
        expected: p.expected.counts.clone(),
        seen: counts,
        expected_order,
        seen_order: seen,
        matches,
    };
    (check, report)
}

/// The split is what the weights ask for (a warning only: rr with 3:1 splits
/// 1:1 exactly as predicted, and DR itself works).
pub fn weights(o: &Observed, p: &ProbePlan) -> Option<Check> {
    let weights = p.weights.as_ref()?;
    let counts = o.kernel_counts(p);
    let total: u32 = weights.values().sum();
    let scheduled: usize = counts.values().sum();
    let asked = weights
        .iter()
        .map(|(k, w)| format!("{k}={:.1}", scheduled as f64 * f64::from(*w) / f64::from(total.max(1))))
        .collect::<Vec<_>>()
        .join(" ");
    let ratio = weights.values().map(u32::to_string).collect::<Vec<_>>().join(":");
    Some(
        Check::new(
            format!("weights {}", p.service),
            CheckKind::Weights,
            honours_weights(weights, &counts),
            format!("{asked} (the weights {ratio})"),
            format!("IPVS {} ({})", counts_text(&counts), p.expected.scheduler),
        )
        .advisory(),
    )
}

/// Sends the user from symptom to cause: each failed check names the lint
/// findings that explain it, those about its own service when there are any.
pub fn explain(checks: &mut [Check], topology: &lvsdr_core::Topology, plan: &LabPlan) {
    let diagnostics = lvsdr_core::lint::lint(topology, "");
    for c in checks.iter_mut().filter(|c| !c.pass) {
        let codes = c.kind.codes();
        let mut found: Vec<&lvsdr_core::Diagnostic> = diagnostics.iter().filter(|d| codes.contains(&d.code)).collect();
        if let Some(service) = c.name.split_whitespace().nth(1) {
            let about_other = |d: &lvsdr_core::Diagnostic| {
                !d.message.contains(service) && plan.services.iter().any(|s| s.name != service && d.message.contains(&s.name))
            };
            found.retain(|d| !about_other(d));
        }
        c.explained_by = found.iter().map(|d| format!("{}: {}", d.code, d.message)).collect();
        c.explained_by.dedup();
    }
}
