use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::ARP_SYSCTLS_MISSING,
    name: "arp-sysctls-missing",
    severity: Severity::Error,
    summary: "a real server answers ARP for the VIP",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that every real server ignores ARP requests for the VIP
(`arp_ignore` ≥ 1) and never announces the VIP as an ARP source
(`arp_announce` ≥ 2) on the interface that faces the director.

## Why it matters
Every real server holds the VIP on `lo`. By default Linux answers ARP for
any local address on any interface, so a real server races the director to
answer "who has the VIP?". When it wins, the client caches the real server's
MAC, and every connection from then on goes straight to that one server and
bypasses the director: no load balancing, no failover. We saw it win 3 races
of 3 in the lab.

## Example
```toml
[[real_server]]
name = "rs1"
address = "192.168.1.213"
vip_on_lo = 32
```

## Fix
```toml
sysctl = { "net.ipv4.conf.all.arp_ignore" = 1, "net.ipv4.conf.all.arp_announce" = 2 }
```
The kernel uses `max(all, <iface>)`, so `all` (or the NIC itself) is what counts.

## References
- Linux `Documentation/networking/ip-sysctl.rst`: arp_ignore, arp_announce
- LVS-HOWTO, "The ARP problem"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for rs in &cx.topology.real_servers {
        // ARP is IPv4's; without an IPv4 VIP on lo there is nothing to answer for (DR003 reports a missing one).
        let Some(vip) = rs.lo.iter().find(|a| a.address.is_ipv4() && cx.topology.director().vip(a.address).is_some()) else {
            continue;
        };
        let iface = &rs.interface.value;
        let ignore = rs.sysctls.effective_max(iface, "arp_ignore");
        let announce = rs.sysctls.effective_max(iface, "arp_announce");
        let on_lo = rs.sysctls.conf("lo", "arp_ignore").is_some() || rs.sysctls.conf("lo", "arp_announce").is_some();
        if (ignore >= 1 && announce >= 2) || on_lo {
            continue; // fine, or DR002's case
        }
        let mut missing = Vec::new();
        if ignore < 1 {
            missing.push(format!("arp_ignore is {ignore} (needs 1)"));
        }
        if announce < 2 {
            missing.push(format!("arp_announce is {announce} (needs 2)"));
        }
        out.push(
            cx.diag(&META, format!("real server `{}` will answer ARP for the VIP {}", rs.name.value, vip.address), rs.name.span)
                .label(missing.join(", "))
                .help("set net.ipv4.conf.all.arp_ignore = 1 and net.ipv4.conf.all.arp_announce = 2 on this real server")
                .node(rs.name.value.to_string()),
        );
    }
}
