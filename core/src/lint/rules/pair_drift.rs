use super::prelude::*;
use crate::source::Span;
use std::net::IpAddr;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::PAIR_DRIFT,
    name: "pair-drift",
    severity: Severity::Error,
    summary: "the directors of a pair do not balance the same way",
    doc: crate::lint::doc_text!(r#"## What it does
Compares the `virtual_server` blocks of the two directors of an active/backup
pair, read from their own keepalived.conf files: every service must exist on
both, with the same scheduler, persistence and real servers with the same
weights.

## Why it matters
After a failover the backup's IPVS table is the one that schedules. A real
server missing on the backup loses its share of new connections; another
weight or scheduler changes the split; another persistence timeout breaks
sticky sessions. Nothing shows it until the master fails, which is the worst
moment to find out.

## Example
```text
lb1: real_server 192.168.1.213 80 { weight 3 }
lb2: real_server 192.168.1.213 80 { weight 1 }
```

## Fix
Generate both files from one source (`lvsdr render --artifact keepalived`
writes both), or copy the `virtual_server` blocks exactly.

## References
- keepalived.conf(5), `virtual_server`
"#),
};

/// The real servers of a service by address, with their weights.
fn dests(t: &Topology, s: &VirtualService) -> Vec<(IpAddr, u32)> {
    let mut v: Vec<(IpAddr, u32)> = s
        .destinations
        .iter()
        .filter_map(|d| Some((t.real_server(&d.server.value)?.address.of(s.family)?.value, d.weight.value)))
        .collect();
    v.sort();
    v
}

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    let first = &t.directors[0];
    for d in t.directors.iter().skip(1).filter(|d| !d.own_services.is_empty()) {
        let mut report = |what: String, span: Span| {
            out.push(
                cx.diag(&META, what, span)
                    .label("after a failover, traffic would go elsewhere")
                    .help(format!("make {}'s virtual_server blocks the same as {}'s", d.name, first.name))
                    .node(d.name.to_string()),
            )
        };
        for mine in &d.own_services {
            let label = t.label(mine);
            let Some(theirs) = t.services.iter().find(|s| s.same_as(mine)) else {
                report(format!("service {label} is on {} but not on {}", d.name, first.name), mine.span);
                continue;
            };
            if mine.scheduler.value != theirs.scheduler.value {
                report(
                    format!(
                        "service {label} schedules with {} on {} but {} on {}",
                        mine.scheduler.name(),
                        d.name,
                        theirs.scheduler.name(),
                        first.name
                    ),
                    mine.scheduler.span.or(mine.span),
                );
            }
            let p = |s: &VirtualService| s.persistence.as_ref().map(|p| (p.timeout.value, p.netmask.value));
            if p(mine) != p(theirs) {
                report(format!("service {label} has other persistence on {} than on {}", d.name, first.name), mine.span);
            }
            let (a, b) = (dests(t, mine), dests(t, theirs));
            if a != b {
                let show = |v: &[(IpAddr, u32)]| v.iter().map(|(ip, w)| format!("{ip} w{w}")).collect::<Vec<_>>().join(", ");
                report(
                    format!(
                        "service {label} sends to {} on {} but to {} on {}",
                        show(&a),
                        d.name,
                        show(&b),
                        first.name
                    ),
                    mine.span,
                );
            }
        }
        for theirs in &t.services {
            if !d.own_services.iter().any(|m| m.same_as(theirs)) {
                report(
                    format!("service {} is on {} but not on {}", t.label(theirs), first.name, d.name),
                    theirs.span,
                );
            }
        }
    }
}
