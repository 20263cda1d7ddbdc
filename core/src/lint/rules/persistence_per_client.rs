use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::PERSISTENCE_PER_CLIENT,
    name: "persistence-per-client",
    severity: Severity::Info,
    summary: "with persistence, the scheduler picks per client, not per connection",
    doc: crate::lint::doc_text!(r#"## What it does
Notes services with persistence (`-p`), and what it does to the split.

## Why it matters
With persistence, the first connection of a client (masked by the
persistence netmask) is scheduled, and every later one within the timeout
goes to the same real server. A load test from one client then lands on a
single server whatever the scheduler and weights say.

## Example
```toml
scheduler = "wrr"
persistence = 300
```

## Fix
Nothing to fix if stickiness is wanted. Test the split with many clients.

## References
- `ipvsadm(8)`: `-p`, `-M`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        if let Some(p) = &s.persistence {
            out.push(
                cx.diag(&META, format!("service {} is persistent for {} s: each client sticks to one real server", cx.topology.label(s), p.timeout.value), p.timeout.span.or(s.span))
                    .help("the split across real servers follows clients, not connections")
                    .node("director"),
            );
        }
    }
}
