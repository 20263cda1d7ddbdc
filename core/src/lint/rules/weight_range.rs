use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::WEIGHT_RANGE,
    name: "weight-range",
    severity: Severity::Error,
    summary: "weights run from 0 to 65535",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that each weight is at most 65535.

## Why it matters
`ipvsadm` rejects larger weights, and keepalived clamps them. The value you
wrote is not the value that runs.

## Example
```toml
weight = 100000
```

## Fix
Scale the weights down: only their ratio matters.

## References
- `ipvsadm(8)`: `-w`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        for d in &s.destinations {
            if d.weight.value > 65535 {
                out.push(
                    cx.diag(&META, format!("weight {} of `{}` is above 65535", d.weight.value, d.server.value), d.weight.span.or(d.span))
                        .help("scale the weights down; only their ratio matters")
                        .node(d.server.value.to_string()),
                );
            }
        }
    }
}
