use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::DUPLICATE_SERVICE,
    name: "duplicate-service",
    severity: Severity::Error,
    summary: "a virtual service is defined twice",
    doc: crate::lint::doc_text!(r#"## What it does
Finds two virtual services with the same protocol and port (or fwmark).

## Why it matters
The kernel refuses the second `-A` with "Service already exists", so the
script stops halfway (or, without `set -e`, keeps the first definition and
adds the second one's servers to it).

## Example
```toml
[[service]]
port = 80
[[service]]
port = 80
```

## Fix
Merge the two services.

## References
- `ipvsadm(8)`: `-A`, `-E`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::new();
    for s in &cx.topology.services {
        if !seen.insert((s.key.value, s.vip.as_ref().map(|v| v.value), s.family)) {
            out.push(
                cx.diag(&META, format!("service {} is defined more than once", cx.topology.label(s)), s.key.span.or(s.span))
                    .help("merge its real servers into the first definition")
                    .node("director"),
            );
        }
    }
}
