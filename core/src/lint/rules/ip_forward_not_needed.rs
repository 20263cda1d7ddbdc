use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::IP_FORWARD_NOT_NEEDED,
    name: "ip-forward-not-needed",
    severity: Severity::Info,
    summary: "DR does not need `ip_forward` on the director",
    doc: crate::lint::doc_text!(r#"## What it does
Notes when the director enables `net.ipv4.ip_forward` although every service
uses direct routing.

## Why it matters
IPVS hands DR packets to the real server from its own hook; it does not go
through the kernel's forwarding path, so `ip_forward=1` is not needed (the
lab proves DR working with it off). Turning forwarding on makes the director
a router for everything else too, which is rarely intended.

## Example
```toml
sysctl = { "net.ipv4.ip_forward" = 1 }
```

## Fix
Leave `ip_forward` at 0 unless the director also routes (NAT mode does need it).

## References
- kernel `net/netfilter/ipvs/ip_vs_xmit.c`: `ip_vs_dr_xmit`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    let all_dr = t.services.iter().all(|s| s.destinations.iter().all(|d| d.forward.value == Forward::Route));
    if let Some(f) = t.director().sysctls.get("net.ipv4.ip_forward") {
        if f.value != 0 && all_dr {
            out.push(
                cx.diag(&META, "ip_forward is on, but direct routing does not need it", f.span.or(t.director().span))
                    .help("remove net.ipv4.ip_forward unless the director routes other traffic")
                    .node("director"),
            );
        }
    }
}
