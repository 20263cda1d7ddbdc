use super::shell_quote as q;
use crate::model::*;
use crate::names::SysctlKey;
use std::fmt::Write;

/// A value for the generated shell scripts (quoted) or for `ipvsadm -R`, which
/// splits its lines on blanks and takes quotes literally (values are validated
/// addresses and numbers, so they never need quoting there).
fn word(text: &str, shell: bool) -> String {
    if shell {
        q(text)
    } else {
        text.to_string()
    }
}

pub(crate) fn service_arg(s: &VirtualService, shell: bool) -> String {
    match (s.key.value, &s.vip) {
        (ServiceKey::Port { protocol, port }, Some(v)) => {
            let flag = match protocol {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            };
            format!("{flag} {}", word(&host_port(v.value, port), shell))
        }
        _ => s.ipvsadm_id(),
    }
}

pub(crate) fn service_options(s: &VirtualService, shell: bool) -> String {
    let mut o = format!("-s {}", s.scheduler.name());
    if !s.flags.is_empty() {
        let flags: Vec<&str> = s.flags.iter().map(|f| f.name()).collect();
        let _ = write!(o, " -b {}", word(&flags.join(","), shell));
    }
    if let Some(p) = &s.persistence {
        let _ = write!(o, " -p {}", p.timeout.value);
        if p.netmask.value != s.family.host_prefix() {
            match s.family {
                Family::V4 => {
                    let _ = write!(o, " -M {}", p.v4_netmask());
                }
                Family::V6 => {
                    let _ = write!(o, " -M {}", p.netmask.value);
                }
            }
        }
    }
    if s.one_packet.value {
        o.push_str(" -o");
    }
    o
}

pub(crate) fn dest_options(t: &Topology, s: &VirtualService, d: &Destination, shell: bool) -> String {
    let addr = t
        .real_server(&d.server.value)
        .and_then(|r| r.address.of(s.family))
        .map(|a| host_port(a.value, d.port.value))
        .unwrap_or_default();
    let mut o = format!("-r {} {} -w {}", word(&addr, shell), d.forward.ipvsadm_flag(), d.weight.value);
    if let Some(x) = &d.upper_threshold {
        let _ = write!(o, " -x {}", x.value);
    }
    if let Some(y) = &d.lower_threshold {
        let _ = write!(o, " -y {}", y.value);
    }
    o
}

/// `ip addr replace ADDRESS/PREFIX dev DEV`, with `-6` and `nodad` for IPv6
/// (a VIP must not wait for duplicate address detection, nor fail it), and on
/// the director `preferred_lft 0`, so that the VIP is never the source of the
/// director's own connections (DR031).
pub(crate) fn addr_replace(address: std::net::IpAddr, prefix: u8, dev: &str, director: bool) -> String {
    let a = q(&format!("{address}/{prefix}"));
    match (address.is_ipv4(), director) {
        (true, _) => format!("ip addr replace {a} dev {dev}"),
        (false, true) => format!("ip -6 addr replace {a} dev {dev} nodad preferred_lft 0"),
        (false, false) => format!("ip -6 addr replace {a} dev {dev} nodad"),
    }
}

/// The marking rules, as the tool the input used writes them. nft's go in
/// a table of lvsdr's own, flushed first; iptables' are checked before added.
fn mark_rules(out: &mut String, t: &Topology) {
    if t.marks.is_empty() {
        return;
    }
    out.push_str("# Firewall marks for the fwmark services, set before IPVS sees the packets.\n");
    if t.marks.iter().any(|m| m.tool == MarkTool::Nft) {
        out.push_str("nft add table inet lvsdr\n");
        out.push_str("nft add chain inet lvsdr prerouting '{ type filter hook prerouting priority mangle; }'\n");
        out.push_str("nft flush chain inet lvsdr prerouting\n");
    }
    for m in &t.marks {
        let dst = format!("{}/{}", m.destination.address, m.destination.prefix);
        let ports: Vec<String> = m.ports.iter().map(u16::to_string).collect();
        match m.tool {
            MarkTool::Nft => {
                let family = if m.family() == Family::V4 { "ip" } else { "ip6" };
                let mut rule = format!("{family} daddr {dst}");
                match (&m.protocol, ports.as_slice()) {
                    (Some(p), []) => {
                        let _ = write!(rule, " meta l4proto {}", p.name());
                    }
                    (Some(p), [one]) => {
                        let _ = write!(rule, " {} dport {one}", p.name());
                    }
                    (Some(p), many) => {
                        let _ = write!(rule, " {} dport {{ {} }}", p.name(), many.join(", "));
                    }
                    (None, []) => {}
                    (None, many) => {
                        let _ = write!(rule, " th dport {{ {} }}", many.join(", "));
                    }
                }
                let _ = writeln!(out, "nft add rule inet lvsdr prerouting {rule} meta mark set {}", m.mark.value);
            }
            MarkTool::Iptables => {
                let tool = if m.family() == Family::V4 { "iptables" } else { "ip6tables" };
                let mut rule = format!("PREROUTING -d {}", q(&dst));
                if let Some(p) = &m.protocol {
                    let _ = write!(rule, " -p {}", p.name());
                    match ports.as_slice() {
                        [] => {}
                        [one] => {
                            let _ = write!(rule, " --dport {one}");
                        }
                        many => {
                            let _ = write!(rule, " -m multiport --dports {}", many.join(","));
                        }
                    }
                }
                let _ = write!(rule, " -j MARK --set-mark {}", m.mark.value);
                let _ = writeln!(out, "{tool} -t mangle -C {rule} 2>/dev/null || {tool} -t mangle -A {rule}");
            }
        }
    }
    out.push('\n');
}

fn header(out: &mut String, what: &str, t: &Topology) {
    let _ = writeln!(out, "#!/usr/bin/env bash");
    // The name is one line by validation; a newline here would end the comment.
    let name: String = t.name.chars().filter(|c| !c.is_control()).collect();
    let _ = writeln!(out, "# {what} for the LVS-DR topology {}.", q(&name));
    let _ = writeln!(out, "# Generated by lvsdr. Safe to run more than once.");
    let _ = writeln!(out, "set -euo pipefail");
    out.push('\n');
}

/// The director's setup: VIPs on its NIC, sysctls, marking rules and the
/// IPVS table, rebuilt from scratch (`ipvsadm -C`) so that a second run
/// gives the same state.
pub fn director_script(t: &Topology) -> String {
    let d = t.director();
    let mut out = String::new();
    header(&mut out, "Director setup", t);
    match d.vips.as_slice() {
        [v] if v.address.is_ipv4() => {
            let _ = writeln!(out, "vip={}", q(&v.address.value.to_string()));
            let _ = writeln!(out, "dev={}", q(&d.interface.value));
            out.push('\n');
            out.push_str("# The VIP lives on the director's LAN interface. `replace` keeps this idempotent.\n");
            let _ = writeln!(out, "ip addr replace \"$vip/{}\" dev \"$dev\"", v.prefix.value);
        }
        vips => {
            let _ = writeln!(out, "dev={}", q(&d.interface.value));
            out.push('\n');
            out.push_str("# The VIPs live on the director's LAN interface. `replace` keeps this idempotent.\n");
            for v in vips {
                let _ = writeln!(out, "{}", addr_replace(v.address.value, v.prefix.value, "\"$dev\"", true));
            }
        }
    }
    out.push('\n');
    if !d.sysctls.values.is_empty() {
        for (k, v) in &d.sysctls.values {
            let _ = writeln!(out, "sysctl -q -w {}", q(&format!("{k}={}", v.value)));
        }
        out.push('\n');
    }
    mark_rules(&mut out, t);
    out.push_str("# Rebuild the IPVS table from scratch.\nipvsadm -C\n");
    for s in &t.services {
        out.push('\n');
        let _ = writeln!(out, "ipvsadm -A {} {}", service_arg(s, true), service_options(s, true));
        for dest in &s.destinations {
            let _ = writeln!(out, "ipvsadm -a {} {}", service_arg(s, true), dest_options(t, s, dest, true));
        }
    }
    out
}

/// The real servers' setup: the VIPs on `lo` (/32, /128), ARP sysctls on
/// `all` and on the NIC that faces the director. Takes the real server's
/// name as `$1` to apply that server's own settings.
pub fn real_server_script(t: &Topology) -> String {
    let mut out = String::new();
    header(&mut out, "Real-server setup", t);
    let vips = t.vips();
    let single = match vips.as_slice() {
        [v] if v.address.is_ipv4() => Some(v.address.value),
        _ => None,
    };
    if let Some(v) = single {
        let _ = writeln!(out, "vip={}", q(&v.to_string()));
    }
    out.push_str("server=\"${1:-}\"\n\n");
    if vips.iter().any(|v| v.address.is_ipv4()) {
        out.push_str(
            "# Never answer ARP for the VIP, and never use it as an ARP source:\n# the kernel uses max(all, <nic>), so `all` is what counts.\n",
        );
        out.push_str("sysctl -q -w net.ipv4.conf.all.arp_ignore=1\nsysctl -q -w net.ipv4.conf.all.arp_announce=2\n\n");
    }
    if single.is_some() {
        out.push_str("# The VIP on lo as a /32: the host accepts packets for it without owning the subnet.\n");
        out.push_str("ip addr replace \"$vip/32\" dev lo\n\n");
    } else {
        out.push_str("# Each server's VIPs on lo as /32 or /128: the host accepts packets for them\n# without owning a subnet. IPv6 needs no ARP settings: Linux answers neighbour\n# solicitations only for addresses on the NIC that receives them.\n");
    }
    out.push_str("case \"$server\" in\n");
    for rs in &t.real_servers {
        let _ = writeln!(out, "  {})", q(&rs.name.value));
        if single.is_none() {
            for v in t.vips_served_by(&rs.name.value) {
                let _ = writeln!(out, "    {}", addr_replace(v, Family::of(&v).host_prefix(), "lo", false));
            }
        }
        for (k, v) in real_server_sysctls(rs) {
            let _ = writeln!(out, "    sysctl -q -w {}", q(&format!("{k}={v}")));
        }
        out.push_str("    ;;\n");
    }
    out.push_str("  '') ;;\n  *)\n    echo \"unknown real server: $server\" >&2\n    exit 2\n    ;;\nesac\n");
    out
}

/// A real server's sysctls: the topology's own, with `arp_ignore` and
/// `arp_announce` on `all` and on the NIC raised to what DR needs (1 and 2).
pub fn real_server_sysctls(rs: &RealServer) -> Vec<(SysctlKey, i64)> {
    let mut s = rs.sysctls.clone();
    for iface in ["all", rs.interface.value.as_str()] {
        for (name, need) in [("arp_ignore", 1), ("arp_announce", 2)] {
            let Some(key) = SysctlKey::ipv4_conf(iface, name) else { continue };
            let have = s.get(&key).map(|v| v.value).unwrap_or(0);
            s.set(key, have.max(need), crate::Span::NONE);
        }
    }
    s.values.into_iter().map(|(k, v)| (k, v.value)).collect()
}

/// A file for `ipvsadm -R`, in the form `ipvsadm -S -n` writes.
pub fn restore_file(t: &Topology) -> String {
    let mut out = String::new();
    for s in &t.services {
        let _ = writeln!(out, "-A {} {}", service_arg(s, false), service_options(s, false));
        for d in &s.destinations {
            let _ = writeln!(out, "-a {} {}", service_arg(s, false), dest_options(t, s, d, false));
        }
    }
    out
}

/// `sysctl.d` files: one for the director, one per real server.
pub fn sysctl_files(t: &Topology) -> String {
    let mut out = String::new();
    let pair = t.directors.iter().filter(|d| d.vrrp.is_some()).count() > 1;
    for (i, d) in t.directors.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "# /etc/sysctl.d/90-lvs-director.conf (on {})", d.name);
        let mut director = d.sysctls.clone();
        // ICMP redirects are an IPv4 director's problem (DR012).
        let v4 = d.vips.iter().any(|v| v.address.is_ipv4());
        for k in ["all", d.interface.value.as_str()].into_iter().filter(|_| v4) {
            let Some(key) = SysctlKey::ipv4_conf(k, "send_redirects") else {
                continue;
            };
            if director.get(&key).is_none() {
                director.set(key, 0, crate::Span::NONE);
            }
        }
        // In a pair, a director answers ARP only for what sits on the NIC asked (the
        // backup never for the VIP before VRRP gives it the address) and never uses the
        // VIP as the source of its own ARP requests.
        if pair && v4 {
            for (name, need) in [("arp_ignore", 1), ("arp_announce", 2)] {
                if let Some(key) = SysctlKey::ipv4_conf("all", name) {
                    let have = director.get(&key).map(|v| v.value).unwrap_or(0);
                    director.set(key, have.max(need), crate::Span::NONE);
                }
            }
        }
        for (k, v) in &director.values {
            let _ = writeln!(out, "{k} = {}", v.value);
        }
    }
    for rs in &t.real_servers {
        let _ = writeln!(out, "\n# /etc/sysctl.d/90-lvs-real-server.conf (on {})", rs.name.value);
        for (k, v) in real_server_sysctls(rs) {
            let _ = writeln!(out, "{k} = {v}");
        }
    }
    out
}
