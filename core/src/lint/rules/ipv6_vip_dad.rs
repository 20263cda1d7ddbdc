use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::IPV6_VIP_DAD,
    name: "ipv6-vip-dad",
    severity: Severity::Warning,
    summary: "an IPv6 VIP on the director goes through duplicate address detection",
    doc: crate::lint::doc_text!(r#"## What it does
Finds IPv6 VIPs that the director adds to its NIC without `nodad`
(`ip -6 addr add VIP/128 dev eth0`, or `ipv6_dad = true` in a topology).

## Why it matters
A new IPv6 address is tentative while the kernel runs duplicate address
detection (about a second by default): it does not answer neighbour
solicitations and connections to it fail. If another host on the link
holds the same address on a NIC, DAD fails and the address is never used.
In a director pair the backup takes over a VIP the old master may still
advertise, which is exactly when DAD gets in the way. The real servers'
VIPs sit on `lo`, where the kernel skips DAD.

## Example
```sh
ip -6 addr add 2001:db8::10/128 dev eth0
```

## Fix
```sh
ip -6 addr add 2001:db8::10/128 dev eth0 nodad
```

## References
- `ip-address(8)`, `nodad`
- RFC 4862, section 5.4
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for d in &cx.topology.directors {
        for v in &d.vips {
            let Some(span) = v.dad else { continue };
            out.push(
                cx.diag(&META, format!("the IPv6 VIP {} is added without `nodad`", v.address.value), span.or(v.address.span))
                    .label("tentative until duplicate address detection ends; lost if another host has it")
                    .help(format!("add it with `nodad`: ip -6 addr add {}/{} dev {} nodad", v.address.value, v.prefix.value, d.interface.value))
                    .node(d.name.to_string()),
            );
        }
    }
}
