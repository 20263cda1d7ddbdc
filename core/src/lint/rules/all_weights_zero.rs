use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::ALL_WEIGHTS_ZERO,
    name: "all-weights-zero",
    severity: Severity::Error,
    summary: "every real server of a service is quiesced (weight 0)",
    doc: crate::lint::doc_text!(r#"## What it does
Finds services whose real servers all have weight 0.

## Why it matters
Weight 0 quiesces a server: existing connections finish, new ones are not
scheduled to it. With every server at 0 the service accepts no new
connection at all.

## Example
```toml
real_server = [{ server = "rs1", weight = 0 }]
```

## Fix
Give at least one real server a weight of 1 or more.

## References
- `ipvsadm(8)`: `-w`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        if !s.destinations.is_empty() && s.destinations.iter().all(|d| d.weight.value == 0) {
            out.push(
                cx.diag(&META, format!("every real server of service {} has weight 0: no new connection will be accepted", cx.topology.label(s)), s.key.span.or(s.span))
                    .help("give at least one real server a weight of 1 or more")
                    .node("director"),
            );
        }
    }
}
