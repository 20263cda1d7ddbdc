use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::VRRP_ROUTER_ID,
    name: "vrrp-router-id",
    severity: Severity::Error,
    summary: "the pair's VRRP instances do not share one virtual_router_id, or clash with another",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that the two directors of a pair use the same `virtual_router_id` for
the same VRRP instance, and that different instances on the link do not
share one.

## Why it matters
VRRP peers recognise each other by the router id. With two different ids
each director is alone in its own group, both become master and both answer
ARP for the VIP (split brain). Two instances with one id fight over the same
virtual MAC and drop each other's adverts as misconfigured.

## Example
```text
lb1: vrrp_instance VI_1 { virtual_router_id 51 }
lb2: vrrp_instance VI_1 { virtual_router_id 52 }
```

## Fix
Use one id per instance, the same on both directors, and a different id for
every other VRRP instance on the link.

## References
- RFC 5798, section 5.2.3
- keepalived.conf(5), `virtual_router_id`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let pair: Vec<(&Director, &Vrrp)> = cx.topology.directors.iter().filter_map(|d| Some((d, d.vrrp.as_ref()?))).collect();
    for (i, (a, va)) in pair.iter().enumerate() {
        for (b, vb) in &pair[i + 1..] {
            let same_instance = va.instance.value == vb.instance.value;
            let same_id = va.router_id.value == vb.router_id.value;
            if same_instance && !same_id {
                out.push(
                    cx.diag(&META, format!("{} uses virtual_router_id {} for {} but {} uses {}: both become master", a.name, va.router_id.value, va.instance.value, b.name, vb.router_id.value), vb.router_id.span.or(vb.span))
                        .help(format!("use virtual_router_id {} on both", va.router_id.value))
                        .node(b.name.to_string()),
                );
            } else if !same_instance && same_id {
                out.push(
                    cx.diag(&META, format!("VRRP instances {} and {} share virtual_router_id {}", va.instance.value, vb.instance.value, va.router_id.value), vb.router_id.span.or(vb.span))
                        .help("give each VRRP instance on the link its own virtual_router_id")
                        .node(b.name.to_string()),
                );
            }
        }
    }
}
