use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::SCHEDULER_IGNORES_WEIGHTS,
    name: "scheduler-ignores-weights",
    severity: Severity::Warning,
    summary: "`rr`, `lc` and `dh` ignore weights other than 0",
    doc: crate::lint::doc_text!(r#"## What it does
Finds services whose scheduler ignores weights (`rr`, `lc`, `dh`) while
their real servers have different non-zero weights.

## Why it matters
The weights say "send three times as much to rs1", but `rr` alternates 1:1
and `lc` counts only connections. For these schedulers a weight matters
only when it is 0 (the server is quiesced). We measured `rr` with weights
3:1 giving a 4:4 split over 8 connections; `wrr` gave 6:2.

## Example
```toml
scheduler = "rr"
real_server = [{ server = "rs1", weight = 3 }, { server = "rs2", weight = 1 }]
```

## Fix
Use the weighted variant (`wrr` for `rr`, `wlc` for `lc`), or equal weights.
The fix changes the traffic split, so it is marked unsafe.

## References
- kernel `net/netfilter/ipvs/ip_vs_rr.c`, `ip_vs_wrr.c`, `ip_vs_lc.c`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        let weighted = match s.scheduler.value {
            Scheduler::Rr => Scheduler::Wrr,
            Scheduler::Lc => Scheduler::Wlc,
            Scheduler::Dh => Scheduler::Sh,
            _ => continue,
        };
        let weights: Vec<u32> = s.destinations.iter().map(|d| d.weight.value).filter(|w| *w > 0).collect();
        if weights.windows(2).all(|w| w[0] == w[1]) {
            continue;
        }
        let ratio = weights.iter().map(u32::to_string).collect::<Vec<_>>().join(":");
        let mut d = cx
            .diag(&META, format!("scheduler `{}` ignores the weights {ratio} of service {}", s.scheduler.name(), cx.topology.label(s)), s.scheduler.span.or(s.span))
            .label(format!("`{}` gives every real server an equal share", s.scheduler.name()))
            .help(format!("use `{}` to honour the weights, or give every real server the same weight", weighted.name()));
        if let Some(edit) = cx.replace_value(s.scheduler.span, weighted.name()) {
            d = d.fix(format!("use `{}`", weighted.name()), Applicability::Unsafe, vec![edit]);
        }
        out.push(d.node("director"));
    }
}
