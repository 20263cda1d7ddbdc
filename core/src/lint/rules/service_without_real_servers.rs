use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::SERVICE_WITHOUT_REAL_SERVERS,
    name: "service-without-real-servers",
    severity: Severity::Warning,
    summary: "a virtual service has no real servers",
    doc: crate::lint::doc_text!(r#"## What it does
Finds virtual services with no destination at all.

## Why it matters
The director accepts connections to the VIP port and has nowhere to send
them: clients see timeouts (or a RST, depending on `expire_nodest_conn`).

## Example
```toml
[[service]]
port = 443
scheduler = "wlc"
```

## Fix
Add `[[service.real_server]]` entries, or remove the service.

## References
- `ipvsadm(8)`: `-a`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        if s.destinations.is_empty() {
            out.push(
                cx.diag(&META, format!("service {} has no real servers", cx.topology.label(s)), s.key.span.or(s.span))
                    .help("add at least one [[service.real_server]]")
                    .node("director"),
            );
        }
    }
}
