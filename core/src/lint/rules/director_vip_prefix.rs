use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::DIRECTOR_VIP_PREFIX,
    name: "director-vip-prefix",
    severity: Severity::Warning,
    summary: "the VIP on the director should be a /32",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that the director carries the VIP as a /32.

## Why it matters
With the LAN's prefix the VIP adds a second connected route for the same
subnet, and the kernel may pick the VIP as the source address of the
director's own traffic (ARP requests included), announcing the VIP with
the wrong meaning and confusing failover.

## Example
```toml
vip = "192.168.1.192/24"
```

## Fix
```toml
vip = "192.168.1.192"   # /32
```

## References
- LVS-HOWTO, "VIP netmask"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for d in &cx.topology.directors {
        for v in &d.vips {
            let host = v.family().host_prefix();
            if v.prefix.value != host {
                out.push(
                    cx.diag(&META, format!("the VIP {} is on the director as a /{}", v.address.value, v.prefix.value), v.prefix.span.or(d.span))
                        .help(format!("put the VIP on the director as a /{host}"))
                        .node(d.name.to_string()),
                );
            }
        }
    }
}
