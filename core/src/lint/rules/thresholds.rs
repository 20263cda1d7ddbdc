use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::THRESHOLDS,
    name: "thresholds",
    severity: Severity::Warning,
    summary: "connection thresholds that cannot work, or will be lost",
    doc: crate::lint::doc_text!(r#"## What it does
Checks upper (`-x`) and lower (`-y`) connection thresholds: the lower must
be below the upper, and both are lost by `ipvsadm -S`.

## Why it matters
A server over its upper threshold is skipped until it falls below the
lower one. A lower threshold at or above the upper one makes the server
flap. And `ipvsadm -S` does not save `-x`/`-y`: a restore from such a dump
silently drops them.

## Example
```toml
real_server = [{ server = "rs1", upper_threshold = 100, lower_threshold = 200 }]
```

## Fix
Keep `lower_threshold < upper_threshold`, and keep thresholds in a script or
in keepalived.conf rather than in a saved dump.

## References
- `ipvsadm(8)`: `-x`, `-y`, `-S`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        for d in &s.destinations {
            if let (Some(u), Some(l)) = (&d.upper_threshold, &d.lower_threshold) {
                if u.value > 0 && l.value >= u.value {
                    out.push(
                        cx.diag(&META, format!("lower threshold {} of `{}` is not below its upper threshold {}", l.value, d.server.value, u.value), l.span.or(d.span))
                            .help("set lower_threshold below upper_threshold")
                            .node(d.server.value.to_string()),
                    );
                }
            }
        }
    }
}
