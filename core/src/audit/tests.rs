//! The comparison on plain data: the seed setup against live states that
//! match it and that drifted in each of the ways the issue names.

use super::*;
use crate::codes::code;
use crate::topology_file::from_toml;
use std::net::{IpAddr, Ipv4Addr};

const SEED: &str = include_str!("../../../fixtures/seed-dr.toml");

fn seed() -> Topology {
    from_toml(SEED).expect("the seed reads")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

fn address(device: &str, a: &str, prefix: u8) -> LiveAddress {
    LiveAddress {
        device: device.into(),
        address: ip(a),
        prefix,
        nodad: false,
    }
}

fn dest(a: &str, port: u16, weight: u32) -> LiveDest {
    LiveDest {
        address: ip(a),
        port,
        forward: 3,
        weight,
        upper_threshold: 0,
        lower_threshold: 0,
    }
}

fn service(port: u16) -> LiveService {
    LiveService {
        protocol: 6,
        address: ip("192.168.1.192"),
        port,
        fwmark: 0,
        scheduler: "rr".into(),
        flags: 0,
        timeout: 0,
        netmask: IpAddr::V4(Ipv4Addr::BROADCAST),
        dests: vec![dest("192.168.1.213", port, 3), dest("192.168.1.189", port, 1)],
    }
}

/// The seed's director as the generated script leaves it.
fn director_live() -> Live {
    Live {
        addresses: vec![
            address("lo", "127.0.0.1", 8),
            address("eth0", "192.168.1.191", 24),
            address("eth0", "192.168.1.192", 32),
        ],
        sysctls: [("net.ipv4.ip_forward".to_string(), 1)].into_iter().collect(),
        ipvs: vec![service(80), service(25)],
        ..Live::default()
    }
}

/// The seed's rs1 as the generated script leaves it, with both listeners.
fn rs1_live() -> Live {
    let mut sysctls = std::collections::BTreeMap::new();
    for iface in ["all", "lo", "eth0"] {
        sysctls.insert(format!("net.ipv4.conf.{iface}.arp_ignore"), 1);
        sysctls.insert(format!("net.ipv4.conf.{iface}.arp_announce"), 2);
    }
    Live {
        addresses: vec![
            address("lo", "127.0.0.1", 8),
            address("eth0", "192.168.1.213", 24),
            address("lo", "192.168.1.192", 32),
        ],
        sysctls,
        listeners: [80, 25]
            .into_iter()
            .map(|port| LiveListener {
                protocol: 6,
                address: ip("0.0.0.0"),
                port,
            })
            .collect(),
        ..Live::default()
    }
}

fn director(t: &Topology) -> HostRef {
    host_named(t, "director").expect("a director")
}

fn rs1(t: &Topology) -> HostRef {
    host_named(t, "rs1").expect("rs1")
}

fn codes(a: &Audit) -> Vec<&'static str> {
    a.findings.iter().map(|f| f.code).collect()
}

#[test]
fn a_matching_director_and_real_server_have_no_finding() {
    let t = seed();
    let a = audit(&t, director(&t), &director_live(), &Options::default());
    assert!(a.ok && a.findings.is_empty(), "{:#?}", a.findings);
    assert_eq!((a.compared.services, a.compared.real_servers, a.compared.addresses), (2, 4, 1));
    let a = audit(&t, rs1(&t), &rs1_live(), &Options::default());
    assert!(a.ok && a.findings.is_empty(), "{:#?}", a.findings);
    assert_eq!(a.compared.listeners, 2);
}

#[test]
fn a_changed_weight_names_both_values_and_the_line_that_restores_it() {
    let t = seed();
    let mut live = director_live();
    live.ipvs[0].dests[0].weight = 1;
    let a = audit(&t, director(&t), &live, &Options::default());
    assert!(!a.ok);
    assert_eq!(codes(&a), ["DR205"]);
    let f = &a.findings[0];
    assert_eq!((f.expected.as_deref(), f.found.as_deref()), (Some("3"), Some("1")));
    assert_eq!(f.real_server.as_deref(), Some("rs1"));
    assert_eq!(f.service.as_deref(), Some("tcp 192.168.1.192:80"));
    assert!(f.message.contains("weight is 1, the setup says 3"), "{}", f.message);
    assert_eq!(f.restore, ["ipvsadm -e -t 192.168.1.192:80 -r 192.168.1.213:80 -g -w 3"]);
}

#[test]
fn weight_zero_under_a_keepalived_checker_is_a_note_not_drift() {
    let t = seed();
    let mut live = director_live();
    live.ipvs[0].dests[1].weight = 0;
    let plain = audit(&t, director(&t), &live, &Options::default());
    assert_eq!(codes(&plain), ["DR205"]);
    let checked = audit(
        &t,
        director(&t),
        &Live {
            keepalived: vec![LiveKeepalived {
                pid: 1,
                config: "/etc/keepalived/keepalived.conf".into(),
                config_resolved: None,
            }],
            ..live
        },
        &Options {
            keepalived: true,
            keepalived_configs: vec![],
        },
    );
    assert!(checked.ok, "{:#?}", checked.findings);
    assert_eq!(codes(&checked), ["DR206"]);
}

#[test]
fn missing_extra_and_changed_services() {
    let t = seed();
    let mut live = director_live();
    live.ipvs.remove(1);
    let mut extra = service(8080);
    extra.dests.clear();
    live.ipvs.push(extra);
    live.ipvs[0].scheduler = "wlc".into();
    let a = audit(&t, director(&t), &live, &Options::default());
    let mut c = codes(&a);
    c.sort();
    assert_eq!(c, ["DR200", "DR201", "DR202"]);
    let missing = a.findings.iter().find(|f| f.code == "DR200").expect("DR200");
    assert_eq!(
        missing.restore,
        [
            "ipvsadm -A -t 192.168.1.192:25 -s rr",
            "ipvsadm -a -t 192.168.1.192:25 -r 192.168.1.213:25 -g -w 3",
            "ipvsadm -a -t 192.168.1.192:25 -r 192.168.1.189:25 -g -w 1",
        ]
    );
    let extra = a.findings.iter().find(|f| f.code == "DR201").expect("DR201");
    assert_eq!(extra.restore, ["ipvsadm -D -t 192.168.1.192:8080"]);
    let sched = a.findings.iter().find(|f| f.code == "DR202").expect("DR202");
    assert_eq!((sched.expected.as_deref(), sched.found.as_deref()), (Some("rr"), Some("wlc")));
}

#[test]
fn missing_and_unexpected_real_servers() {
    let t = seed();
    let mut live = director_live();
    live.ipvs[0].dests.remove(1);
    live.ipvs[1].dests.push(dest("192.168.1.50", 25, 1));
    let a = audit(&t, director(&t), &live, &Options::default());
    assert_eq!(codes(&a), ["DR203", "DR204"]);
    assert_eq!(a.findings[0].real_server.as_deref(), Some("rs2"));
    assert_eq!(a.findings[1].restore, ["ipvsadm -d -t 192.168.1.192:25 -r 192.168.1.50:25"]);
}

#[test]
fn a_vip_on_the_wrong_interface_says_where_it_is() {
    let t = seed();
    let mut live = director_live();
    live.addresses[2].device = "eth1".into();
    let a = audit(&t, director(&t), &live, &Options::default());
    assert_eq!(codes(&a), ["DR207"]);
    assert!(
        a.findings[0].message.contains("it is 192.168.1.192/32 on eth1"),
        "{}",
        a.findings[0].message
    );
    assert_eq!(
        a.findings[0].restore,
        ["ip addr del 192.168.1.192/32 dev eth1", "ip addr replace 192.168.1.192/32 dev eth0"]
    );
}

#[test]
fn real_server_drift_arp_ignore_vip_and_listener() {
    let t = seed();
    let mut live = rs1_live();
    live.sysctls.insert("net.ipv4.conf.all.arp_ignore".into(), 0);
    live.sysctls.insert("net.ipv4.conf.eth0.arp_ignore".into(), 0);
    let a = audit(&t, rs1(&t), &live, &Options::default());
    assert_eq!(codes(&a), ["DR209"]);
    let f = &a.findings[0];
    assert!(
        f.message
            .contains("net.ipv4.conf.all.arp_ignore=0 and net.ipv4.conf.eth0.arp_ignore=0"),
        "names both keys: {}",
        f.message
    );
    assert_eq!(
        f.restore,
        [
            "sysctl -w net.ipv4.conf.all.arp_ignore=1",
            "sysctl -w net.ipv4.conf.eth0.arp_ignore=1"
        ]
    );

    // The NIC's own value is enough: the kernel takes the larger of the two.
    let mut live = rs1_live();
    live.sysctls.insert("net.ipv4.conf.all.arp_ignore".into(), 0);
    let a = audit(&t, rs1(&t), &live, &Options::default());
    assert_eq!(codes(&a), ["DR209"], "the setup sets `all` too");
    assert!(
        a.findings[0].message.contains("arp_ignore on eth0 is still 1"),
        "{}",
        a.findings[0].message
    );

    let mut live = rs1_live();
    live.addresses.retain(|a| a.address != ip("192.168.1.192"));
    live.listeners.retain(|l| l.port != 25);
    let a = audit(&t, rs1(&t), &live, &Options::default());
    assert_eq!(codes(&a), ["DR207", "DR210"]);
    assert_eq!(a.findings[0].restore, ["ip addr replace 192.168.1.192/32 dev lo"]);
}

#[test]
fn a_listener_on_the_vip_or_any_address_counts_and_one_on_the_rip_does_not() {
    let t = seed();
    let mut live = rs1_live();
    live.listeners[0].address = ip("192.168.1.192");
    live.listeners[1].address = ip("::");
    assert!(audit(&t, rs1(&t), &live, &Options::default()).ok);
    live.listeners[1].address = ip("192.168.1.213");
    let a = audit(&t, rs1(&t), &live, &Options::default());
    assert_eq!(codes(&a), ["DR210"]);
}

#[test]
fn the_host_is_found_by_its_own_addresses_never_by_a_vip() {
    let t = seed();
    let names = |present: &[&str]| -> Vec<String> {
        let p: Vec<IpAddr> = present.iter().map(|a| ip(a)).collect();
        identify(&t, &p).into_iter().map(|(n, _)| n).collect()
    };
    assert_eq!(names(&["127.0.0.1", "192.168.1.191", "192.168.1.192"]), ["director"]);
    assert_eq!(names(&["192.168.1.213", "192.168.1.192"]), ["rs1"]);
    assert!(names(&["192.168.1.192"]).is_empty());
    assert_eq!(names(&["192.168.1.213", "192.168.1.189"]).len(), 2);
}

#[test]
fn what_to_read_follows_the_role() {
    let t = seed();
    let w = wants(&t, rs1(&t), &Options::default());
    assert!(w.listeners && !w.ipvs);
    assert!(w.sysctls.contains(&"net.ipv4.conf.all.arp_ignore".to_string()));
    assert!(w.sysctls.contains(&"net.ipv4.conf.eth0.arp_announce".to_string()));
    let w = wants(&t, director(&t), &Options::default());
    assert!(w.ipvs && !w.listeners);
    assert_eq!(w.sysctls, ["net.ipv4.ip_forward"]);
}

#[test]
fn prometheus_escapes_labels_and_has_a_gauge_per_kind_found() {
    assert_eq!(output::escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    let t = seed();
    let mut live = director_live();
    live.ipvs[0].dests[0].weight = 1;
    let a = audit(&t, director(&t), &live, &Options::default());
    let text = output::prometheus(&a, 1_700_000_000.0, 0.01);
    assert!(text.contains("lvsdr_audit_ok{host=\"director\"} 0"), "{text}");
    assert!(text.contains("# TYPE lvsdr_audit_real_server_setting gauge"), "{text}");
    assert!(text.contains(
        "lvsdr_audit_real_server_setting{host=\"director\",service=\"tcp 192.168.1.192:80\",real_server=\"rs1\",key=\"weight\",expected=\"3\",found=\"1\"} 1"
    ));
    assert!(text.contains("lvsdr_audit_last_run_timestamp_seconds{host=\"director\"} 1700000000"));
    for k in Kind::ALL {
        assert!(text.contains(&format!("kind=\"{}\"", k.name())));
    }
    let human = output::human(&a, "seed-dr.toml", false);
    assert!(human.contains("── ipvs ──") && human.contains("error[DR205]"), "{human}");
}

const PAIR: &str = include_str!("../../../fixtures/pair-dr.toml");

/// A pair's director as keepalived leaves it: its address, the VIP when it holds it, a keepalived process.
fn pair_live(own: &str, holds_vip: bool) -> Live {
    let mut addresses = vec![address("eth0", own, 24)];
    if holds_vip {
        addresses.push(address("eth0", "192.168.1.192", 32));
    }
    let mut services = vec![service(80), service(25)];
    for s in &mut services {
        for d in &mut s.dests {
            d.weight = 1;
        }
    }
    Live {
        addresses,
        sysctls: [
            ("net.ipv4.conf.all.send_redirects".to_string(), 0),
            ("net.ipv4.conf.eth0.send_redirects".to_string(), 0),
        ]
        .into_iter()
        .collect(),
        ipvs: services,
        keepalived: vec![LiveKeepalived {
            pid: 7,
            config: "/etc/keepalived/keepalived.conf".into(),
            config_resolved: Some("/etc/keepalived/keepalived.conf".into()),
        }],
        ..Live::default()
    }
}

#[test]
fn a_pair_is_judged_by_each_directors_vrrp_role() {
    let t = from_toml(PAIR).expect("the pair reads");
    let options = Options {
        keepalived: true,
        keepalived_configs: vec!["/etc/keepalived/keepalived.conf".into()],
    };
    let (lb1, lb2) = (host_named(&t, "lb1").expect("lb1"), host_named(&t, "lb2").expect("lb2"));
    let a = audit(&t, lb1, &pair_live("192.168.1.191", true), &options);
    assert!(a.ok, "the master holding the VIP: {:#?}", a.findings);
    let a = audit(&t, lb2, &pair_live("192.168.1.190", false), &options);
    assert!(a.ok, "the backup holding no VIP is not drift: {:#?}", a.findings);
    let a = audit(&t, lb2, &pair_live("192.168.1.190", true), &options);
    assert_eq!(codes(&a), ["DR212"], "the backup holding the VIP");
    assert!(a.findings[0].message.contains("BACKUP"), "{}", a.findings[0].message);
    let a = audit(&t, lb1, &pair_live("192.168.1.191", false), &options);
    assert_eq!(codes(&a), ["DR212"], "the master without it");

    let mut stopped = pair_live("192.168.1.191", true);
    stopped.keepalived.clear();
    assert_eq!(codes(&audit(&t, lb1, &stopped, &options)), ["DR211"]);
    let mut other = pair_live("192.168.1.191", true);
    other.keepalived[0].config_resolved = Some("/tmp/other.conf".into());
    other.keepalived[0].config = "/tmp/other.conf".into();
    assert_eq!(codes(&audit(&t, lb1, &other, &options)), ["DR211"]);
}

#[test]
fn a_tunnel_real_server_may_hold_the_vip_on_tunl0_and_its_rp_filter_is_the_larger_of_two() {
    let t = from_toml(include_str!("../../../fixtures/tunnel.toml")).expect("the tunnel setup reads");
    let rs1 = rs1(&t);
    let mut live = rs1_live();
    live.listeners.retain(|l| l.port == 80);
    live.addresses.retain(|a| a.address != ip("192.168.1.192"));
    live.addresses.push(address("tunl0", "192.168.1.192", 32));
    for (key, value) in [("all", 0), ("tunl0", 0), ("eth0", 0)] {
        live.sysctls.insert(format!("net.ipv4.conf.{key}.rp_filter"), value);
    }
    let a = audit(&t, rs1, &live, &Options::default());
    assert!(a.ok, "{:#?}", a.findings);
    live.sysctls.insert("net.ipv4.conf.tunl0.rp_filter".into(), 1);
    let a = audit(&t, rs1, &live, &Options::default());
    assert_eq!(codes(&a), ["DR209"]);
    assert!(
        a.findings[0]
            .message
            .contains("net.ipv4.conf.all.rp_filter=0 and net.ipv4.conf.tunl0.rp_filter=1"),
        "{}",
        a.findings[0].message
    );
}

#[test]
fn an_ipv6_vip_without_nodad_is_drift() {
    let t = from_toml(include_str!("../../../fixtures/ipv6-dr.toml")).expect("the IPv6 setup reads");
    let rs1 = rs1(&t);
    let vip = LiveAddress {
        device: "lo".into(),
        address: ip("2001:db8:1::192"),
        prefix: 128,
        nodad: true,
    };
    let mut live = Live {
        addresses: vec![address("eth0", "2001:db8:1::213", 64), vip],
        listeners: [80, 25]
            .into_iter()
            .map(|port| LiveListener {
                protocol: 6,
                address: ip("::"),
                port,
            })
            .collect(),
        ..Live::default()
    };
    let a = audit(&t, rs1, &live, &Options::default());
    assert!(a.ok, "{:#?}", a.findings);
    live.addresses[1].nodad = false;
    let a = audit(&t, rs1, &live, &Options::default());
    assert_eq!(codes(&a), ["DR208"]);
    assert_eq!(
        a.findings[0].restore.last().map(String::as_str),
        Some("ip -6 addr replace 2001:db8:1::192/128 dev lo nodad")
    );
}

#[test]
fn an_address_the_setup_does_not_have_on_the_vip_interface_or_lo_is_reported_with_its_removal() {
    let t = seed();
    let mut live = director_live();
    live.addresses.extend([
        // A VIP of a service taken out of the setup, left on the NIC.
        address("eth0", "192.168.1.199", 32),
        // Expected: link-local, and anything on another interface (a management NIC).
        address("eth0", "fe80::1", 64),
        address("eth1", "10.0.0.5", 24),
    ]);
    let a = audit(&t, director(&t), &live, &Options::default());
    assert_eq!(codes(&a), [code::AUDIT_ADDRESS_UNEXPECTED], "{a:#?}");
    let f = &a.findings[0];
    assert!(!a.ok, "an unexpected address is drift");
    assert!(
        f.message.contains("192.168.1.199/32 is on eth0") && f.message.contains("answers ARP"),
        "{}",
        f.message
    );
    assert_eq!(f.restore, ["ip addr del 192.168.1.199/32 dev eth0"]);

    // On a real server's lo: a VIP it does not serve; loopback addresses are expected.
    let mut live = rs1_live();
    live.addresses
        .extend([address("lo", "192.168.1.150", 32), address("lo", "::1", 128)]);
    let a = audit(&t, rs1(&t), &live, &Options::default());
    assert_eq!(codes(&a), [code::AUDIT_ADDRESS_UNEXPECTED], "{a:#?}");
    assert!(
        a.findings[0].message.contains("192.168.1.150/32 is on lo"),
        "{}",
        a.findings[0].message
    );
}

#[test]
fn a_live_device_name_in_a_restore_line_is_quoted() {
    let t = seed();
    let mut live = director_live();
    live.addresses.retain(|a| a.address != ip("192.168.1.192"));
    live.addresses.push(address("x;reboot", "192.168.1.192", 32));
    let a = audit(&t, director(&t), &live, &Options::default());
    let f = a
        .findings
        .iter()
        .find(|f| f.code == code::AUDIT_VIP_MISSING)
        .expect("the VIP is missing from eth0");
    assert!(
        f.restore.iter().any(|l| l == "ip addr del 192.168.1.192/32 dev 'x;reboot'"),
        "{:?}",
        f.restore
    );
}

#[test]
fn an_sctp_service_needs_an_sctp_listener() {
    let t = from_toml(&SEED.replacen("protocol = \"tcp\"", "protocol = \"sctp\"", 1)).expect("the seed with SCTP on port 80 reads");
    let mut live = rs1_live();
    let a = audit(&t, rs1(&t), &live, &Options::default());
    assert_eq!(
        codes(&a),
        [code::AUDIT_LISTENER_MISSING],
        "a TCP listener on 80 is not an SCTP one: {a:#?}"
    );
    assert!(a.findings[0].message.contains("sctp 192.168.1.192:80"), "{}", a.findings[0].message);
    live.listeners.push(LiveListener {
        protocol: 132,
        address: ip("192.168.1.192"),
        port: 80,
    });
    let a = audit(&t, rs1(&t), &live, &Options::default());
    assert!(a.ok && a.findings.is_empty(), "{a:#?}");
}
