use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::VIP_MISSING_ON_LO,
    name: "vip-missing-on-lo",
    severity: Severity::Error,
    summary: "a real server does not hold the VIP on `lo`",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that every real server that receives DR traffic has the VIP on its
loopback interface.

## Why it matters
In DR mode the director rewrites only the destination MAC: the packet that
reaches the real server is still addressed to the VIP. A host that does not
own the VIP drops it (`IpInAddrErrors`), silently. The client retransmits
its SYN until it times out, for that server's share of connections.

## Example
```toml
[[real_server]]
name = "rs2"
address = "192.168.1.189"
vip_on_lo = false
```

## Fix
```toml
vip_on_lo = 32     # ip addr add <VIP>/32 dev lo
```

## References
- LVS-HOWTO, "LVS-DR"
- kernel selftest `tools/testing/selftests/net/netfilter/ipvs.sh` (`ip addr add $vip/32 dev lo`)
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    for rs in &t.real_servers {
        if !cx.is_direct_routed(&rs.name.value) {
            continue;
        }
        for &vip in cx.vips_served_by(&rs.name.value) {
            if rs.lo_vip(vip).is_some() {
                continue;
            }
            let host = Family::of(&vip).host_prefix();
            out.push(
                cx.diag(&META, format!("real server `{}` does not have the VIP {vip} on `lo`", rs.name.value), rs.name.span)
                    .label("forwarded packets to the VIP will be dropped here")
                    .help(format!("add `vip_on_lo = 32` (ip addr add {vip}/{host} dev lo)"))
                    .node(rs.name.value.to_string()),
            );
        }
    }
}
