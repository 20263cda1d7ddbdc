use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::IPV6_VIP_AS_SOURCE,
    name: "ipv6-vip-as-source",
    severity: Severity::Warning,
    summary: "an IPv6 VIP on the director can become the source of its own connections",
    doc: crate::lint::doc_text!(r#"## What it does
Finds IPv6 VIPs that the director adds to its NIC as preferred addresses,
without `preferred_lft 0`.

## Why it matters
IPv4 has primary and secondary addresses, and a /32 VIP is never the
primary. IPv6 has no such rank: for the director's own connections to a real
server (keepalived's health checks, a monitoring probe) the kernel's source
address selection takes the address with the longest prefix in common with
the destination, which is often the VIP. The real server then answers the
VIP, which it holds on its own `lo`, and keeps the answer: every health
check times out and keepalived removes every real server. The lab shows it
with `--apply-with keepalived`. A deprecated address (`preferred_lft 0`) still
receives traffic but is never chosen as a source.

## Example
```sh
ip -6 addr add 2001:db8::10/128 dev eth0 nodad
```

## Fix
```sh
ip -6 addr add 2001:db8::10/128 dev eth0 nodad preferred_lft 0
```

## References
- RFC 6724, section 5 (source address selection, rule 3: avoid deprecated addresses)
- `ip-address(8)`, `preferred_lft`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for d in &cx.topology.directors {
        for v in &d.vips {
            let Some(span) = v.preferred else { continue };
            out.push(
                cx.diag(&META, format!("the IPv6 VIP {} can become the source of the director's own connections", v.address.value), span.or(v.address.span))
                    .label("health checks to the real servers would leave from the VIP and never be answered")
                    .help(format!("add it with `preferred_lft 0`: ip -6 addr add {}/{} dev {} nodad preferred_lft 0", v.address.value, v.prefix.value, d.interface.value))
                    .node(d.name.to_string()),
            );
        }
    }
}
