use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::SCHEDULER_FLAG_MISMATCH,
    name: "scheduler-flag-mismatch",
    severity: Severity::Error,
    summary: "`sh-*` flags need `sh`, `mh-*` flags need `mh`",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that scheduler flags match the scheduler: `sh-fallback` and `sh-port`
only with `sh`, `mh-fallback` and `mh-port` only with `mh`.

## Why it matters
The flags are generic bits (SCHED1, SCHED2) that each scheduler reads its
own way. Under another scheduler they are ignored or mean something else,
so the behaviour you asked for never happens.

## Example
```toml
scheduler = "wrr"
flags = ["sh-port"]
```

## Fix
Remove the flag, or use the scheduler it belongs to.

## References
- `ipvsadm(8)`: `-b, --sched-flags`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        for f in &s.flags {
            if f.scheduler() != s.scheduler.value {
                out.push(
                    cx.diag(&META, format!("flag `{}` has no effect with scheduler `{}`", f.name(), s.scheduler.name()), f.span.or(s.span))
                        .label(format!("only `{}` reads this flag", f.scheduler().name()))
                        .help(format!("remove `{}`, or use scheduler `{}`", f.name(), f.scheduler().name()))
                        .node("director"),
                );
            }
        }
    }
}
