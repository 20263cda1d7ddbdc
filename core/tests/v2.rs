//! Topology v2: several VIPs, IPv6, fwmark services with their marking
//! rules, and version-1 files read unchanged.

use lvsdr_core::model::{Family, MarkTool, ServiceKey};
use lvsdr_core::render::{render, Artifact};
use lvsdr_core::{analyze, Analysis};
use std::path::Path;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name)).unwrap()
}

fn loaded(name: &str) -> Analysis {
    let a = analyze(&fixture(name), None);
    assert!(a.topology.is_some(), "{name} must load: {:?}", a.diagnostics);
    a
}

fn codes(a: &Analysis) -> Vec<&'static str> {
    a.diagnostics.iter().map(|d| d.code).collect()
}

#[test]
fn a_dump_with_three_vips_keeps_them_and_renders_back_the_same_lines() {
    let text = fixture("multi-vip.dump");
    let a = loaded("multi-vip.dump");
    let t = a.topology.as_ref().unwrap();
    let vips: Vec<String> = t.vips().iter().map(|v| v.address.value.to_string()).collect();
    assert_eq!(vips, ["198.51.100.10", "198.51.100.20", "198.51.100.30"]);
    assert_eq!(t.services.len(), 12);
    assert_eq!(render(t, Artifact::Restore), text, "restore lines round-trip");
    let c = codes(&a);
    assert!(!c.contains(&"DR101"), "no service is 'added twice': {c:?}");
    assert!(!c.contains(&"DR006"), "no real server is off an assumed LAN: {c:?}");
    assert!(!a.has_errors(), "{c:?}");
    // Services read by their VIP.
    assert_eq!(t.label(&t.services[4]), "tcp 198.51.100.20:80");
}

#[test]
fn version_1_files_read_unchanged_and_write_as_version_2() {
    for name in ["seed-dr.toml", "clean-dr.toml", "faults/no-arp-sysctls.toml"] {
        let t = lvsdr_core::topology_file::from_toml(&fixture(name)).unwrap();
        let v2 = render(&t, Artifact::Toml);
        assert!(v2.starts_with("version = 2\n"), "{name}");
        let back = lvsdr_core::topology_file::from_toml(&v2).unwrap();
        assert_eq!(back.without_spans(), t.without_spans(), "{name} reads back the same");
    }
}

#[test]
fn an_unknown_format_version_is_refused_with_its_span() {
    let text = fixture("seed-dr.toml").replacen("name = \"seed\"", "version = 3\nname = \"seed\"", 1);
    let e = lvsdr_core::topology_file::from_toml(&text).unwrap_err();
    assert!(e.message.contains("version 3"), "{}", e.message);
    assert_eq!(&text[e.span.start..e.span.end], "3");
}

#[test]
fn an_ipv6_keepalived_virtual_server_imports_renders_and_lints() {
    let a = loaded("ipv6-keepalived.conf");
    let t = a.topology.as_ref().unwrap();
    assert_eq!(t.services[0].family, Family::V6);
    assert_eq!(t.director().vips[0].address.value.to_string(), "2001:db8:1::192");
    assert!(!a.has_errors(), "{:?}", codes(&a));
    let restore = render(t, Artifact::Restore);
    assert!(restore.starts_with("-A -t [2001:db8:1::192]:80 -s wrr\n"), "{restore}");
    assert!(restore.contains("-r [2001:db8:1::213]:80 -g -w 3"), "{restore}");
    let keepalived = render(t, Artifact::Keepalived);
    assert!(keepalived.contains("virtual_server 2001:db8:1::192 80 {"), "{keepalived}");
    assert!(keepalived.contains("real_server 2001:db8:1::189 80 {"), "{keepalived}");
    let rs = render(t, Artifact::RealServer);
    assert!(rs.contains("ip -6 addr replace 2001:db8:1::192/128 dev lo nodad"), "{rs}");
    // The lab plan carries the IPv6 addresses and probes.
    let plan = lvsdr_core::plan::plan(t, 4, 1);
    assert!(plan.probes[0].address.is_ipv6());
    assert!(plan.probes[0].connections.iter().all(|c| c.client.is_ipv6()));
}

#[test]
fn ipv6_dr_topology_is_clean_and_needs_no_arp_settings() {
    let a = loaded("ipv6-dr.toml");
    assert!(a.diagnostics.is_empty(), "{:?}", codes(&a));
    let t = a.topology.as_ref().unwrap();
    let sysctl = render(t, Artifact::Sysctl);
    let director = render(t, Artifact::Director);
    assert!(
        director.contains("ip -6 addr replace 2001:db8:1::192/128 dev \"$dev\" nodad"),
        "{director}"
    );
    assert!(director.contains("ipvsadm -A -t '[2001:db8:1::192]:80' -s wrr"), "{director}");
    assert!(
        !sysctl.contains("send_redirects"),
        "an IPv6-only director needs no IPv4 knob: {sysctl}"
    );
}

#[test]
fn iptables_and_nft_marking_rules_are_read_and_rendered_in_kind() {
    for (name, tool) in [("fwmark-iptables.sh", MarkTool::Iptables), ("fwmark-nft.sh", MarkTool::Nft)] {
        let a = loaded(name);
        let t = a.topology.as_ref().unwrap();
        assert_eq!(t.marks.len(), 1, "{name}");
        let m = &t.marks[0];
        assert_eq!((m.mark.value, m.tool), (1, tool), "{name}");
        assert_eq!(m.ports.value, [80, 443], "{name}");
        assert_eq!(t.service_vips(&t.services[0]).len(), 1, "{name}: the VIP comes from the rule");
        assert!(!a.has_errors(), "{name}: {:?}", codes(&a));
        assert!(!codes(&a).contains(&"DR027"), "{name}");
        let director = render(t, Artifact::Director);
        match tool {
            MarkTool::Iptables => assert!(
                director.contains(
                    "iptables -t mangle -A PREROUTING -d 192.168.1.192/32 -p tcp -m multiport --dports 80,443 -j MARK --set-mark 1"
                ),
                "{director}"
            ),
            MarkTool::Nft => assert!(
                director.contains("nft add rule inet lvsdr prerouting ip daddr 192.168.1.192/32 tcp dport { 80, 443 } meta mark set 1"),
                "{director}"
            ),
        }
        assert!(director.contains("ipvsadm -A -f 1"), "{director}");
    }
}

#[test]
fn a_fwmark_dump_without_its_rule_is_a_note_not_a_zero_vip() {
    let a = analyze("-A -f 1 -s wlc\n-a -f 1 -r 10.0.0.11:0 -g -w 1\n", None);
    let t = a.topology.as_ref().expect("loads");
    assert!(t.vips().is_empty(), "no 0.0.0.0 VIP is made up");
    assert!(codes(&a).contains(&"DR027"));
    assert!(!a.has_errors());
    assert!(!render(t, Artifact::Toml).contains("0.0.0.0"));
}

#[test]
fn fwmark_topology_plans_its_rule_and_a_probe_on_the_marked_port() {
    let a = loaded("fwmark-dr.toml");
    assert!(a.diagnostics.is_empty(), "{:?}", codes(&a));
    let t = a.topology.as_ref().unwrap();
    assert_eq!(t.services[0].key.value, ServiceKey::Fwmark(1));
    let plan = lvsdr_core::plan::plan(t, 6, 1);
    assert_eq!(plan.marks.len(), 1);
    assert_eq!((plan.marks[0].protocol, plan.marks[0].ports.clone()), (6, vec![80, 443]));
    assert_eq!(plan.probes.len(), 1);
    assert_eq!(
        (plan.probes[0].address.to_string(), plan.probes[0].port),
        ("192.168.1.192".into(), 80)
    );
    assert_eq!(plan.services[0].fwmark, 1);
    assert_eq!(plan.probes[0].expected.counts.values().sum::<usize>(), 6);
}

#[test]
fn the_ipv6_fold_is_the_kernels() {
    use std::net::IpAddr;
    let a: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(lvsdr_core::predict::fold(a), 0x2001_0db8 ^ 0x0000_0001);
    let v4: IpAddr = "10.0.0.1".parse().unwrap();
    assert_eq!(lvsdr_core::predict::fold(v4), 0x0a00_0001);
}

/// A pair's advert interval: whole seconds stay VRRPv2; anything else is
/// written as VRRPv3 (keepalived rounds a VRRPv2 interval to whole seconds);
/// intervals keepalived cannot advertise at are refused where they are written.
#[test]
fn a_sub_second_advert_is_written_as_vrrp_version_3() {
    let pair = fixture("pair-dr.toml");
    let with = |advert: &str| pair.replace("advert_int = 1 }", &format!("{advert} }}"));
    let rendered = |text: &str| {
        let t = lvsdr_core::topology_file::from_toml(text).unwrap();
        lvsdr_core::render::keepalived_director(&t, 0).unwrap()
    };
    let whole = rendered(&pair);
    assert!(whole.contains("    advert_int 1\n") && !whole.contains("version 3"), "{whole}");
    let fast = rendered(&with("advert_ms = 250"));
    assert!(fast.contains("    version 3\n    advert_int 0.250\n"), "{fast}");
    for (bad, said) in [
        ("advert_ms = 255", "advert_ms 255 is not an interval"),
        ("advert_ms = 40990", "advert_ms 40990 is not an interval"),
        ("advert_ms = 0", "advert_ms 0 is not an interval"),
        ("advert_int = 0", "advert_int 0 is out of range"),
        ("advert_int = 300", "advert_int 300 is out of range"),
    ] {
        let e = lvsdr_core::topology_file::from_toml(&with(bad)).unwrap_err();
        assert!(e.message.contains(said), "{bad}: {}", e.message);
    }
    assert!(lvsdr_core::topology_file::from_toml(&with("advert_ms = 255000")).is_ok());
}

/// A destination's HTTP check urls read from TOML and JSON, are refused where
/// they cannot be, and come back out as they went in.
#[test]
fn health_check_urls_read_and_are_refused_where_they_cannot_be() {
    let base = "[lan]\nsubnet = \"192.168.1.0/24\"\n[client]\naddress = \"192.168.1.100\"\n[director]\naddress = \"192.168.1.191\"\nvip = \"192.168.1.192\"\n\
                [[real_server]]\nname = \"rs1\"\naddress = \"192.168.1.213\"\n[[service]]\nprotocol = \"tcp\"\nport = 80\n[[service.real_server]]\nserver = \"rs1\"\n";
    let ok = format!(
        "{base}health_check = \"HTTP_GET\"\n[[service.real_server.url]]\npath = \"/healthz\"\nstatus_code = 204\n[[service.real_server.url]]\npath = \"/\"\ndigest = \"640205b7b0fc66c1ea91c463fac6334d\"\n"
    );
    let t = lvsdr_core::topology_file::from_toml(&ok).expect("reads");
    let urls = &t.services[0].destinations[0].urls;
    assert_eq!(urls.len(), 2);
    assert_eq!(urls[0].path.value.as_str(), "/healthz");
    assert_eq!(urls[0].status_code.as_ref().map(|c| c.value.get()), Some(204));
    assert!(urls[1].status_code.is_none() && urls[1].digest.is_some());
    let json = lvsdr_core::topology_file::to_json(&t);
    assert!(json.contains("\"url\""), "{json}");
    let back = lvsdr_core::topology_file::from_json(&json).expect("JSON reads back");
    assert_eq!(back.without_spans(), t.without_spans());
    for (bad, what) in [
        ("health_check = \"TCP_CHECK\"\nurl = [{ path = \"/\" }]\n", "HTTP_GET"),
        ("health_check = \"HTTP_GET\"\nurl = [{ path = \"/a b\" }]\n", "path"),
        ("health_check = \"HTTP_GET\"\nurl = [{ path = \"/\", status_code = 700 }]\n", "700"),
        (
            "health_check = \"HTTP_GET\"\nurl = [{ path = \"/\", digest = \"abc\" }]\n",
            "digest",
        ),
        ("health_check = \"HTTP_GET\"\nurl = [{ status_code = 200 }]\n", "path"),
        ("health_check = \"HTTP_GET\"\nurl = [{ path = \"/\", regex = \"ok\" }]\n", "regex"),
    ] {
        let e = lvsdr_core::topology_file::from_toml(&format!("{base}{bad}")).expect_err(bad);
        assert!(e.message.contains(what), "{bad}: {}", e.message);
    }
}
