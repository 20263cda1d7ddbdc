use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::VRRP_ELECTION,
    name: "vrrp-election",
    severity: Severity::Warning,
    summary: "the pair's VRRP settings make the election ambiguous",
    doc: crate::lint::doc_text!(r#"## What it does
Checks the VRRP settings of an active/backup pair: the two directors must
have different priorities, and `nopreempt` only works with `state BACKUP` on
both.

## Why it matters
With equal priorities VRRP breaks the tie by the higher IP address, which is
rarely the director meant to be master, and a restart can move the VIP for
no reason. keepalived ignores `nopreempt` on a director that starts as
MASTER, so the returning master takes the VIP back anyway and breaks the
connections the backup carried.

## Example
```text
lb1: state MASTER  priority 100  nopreempt
lb2: state BACKUP  priority 100
```

## Fix
Give the intended master the higher priority (150 and 100). For
`nopreempt`, start both as `state BACKUP`.

## References
- keepalived.conf(5), `priority`, `nopreempt`
- RFC 5798, section 6.4.3
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let pair: Vec<(&Director, &Vrrp)> = cx.topology.directors.iter().filter_map(|d| Some((d, d.vrrp.as_ref()?))).collect();
    for (i, (a, va)) in pair.iter().enumerate() {
        for (b, vb) in &pair[i + 1..] {
            if va.instance.value == vb.instance.value && va.priority.value == vb.priority.value {
                out.push(
                    cx.diag(&META, format!("{} and {} have the same VRRP priority {}", a.name, b.name, va.priority.value), vb.priority.span.or(vb.span))
                        .help("give the intended master the higher priority, e.g. 150 and 100")
                        .node(b.name.to_string()),
                );
            }
        }
        if let (Some(span), true) = (va.nopreempt, va.master.value) {
            out.push(
                cx.diag(&META, format!("{} starts as MASTER, so keepalived ignores its `nopreempt`", a.name), span)
                    .help("start both directors as `state BACKUP` for nopreempt to work")
                    .node(a.name.to_string()),
            );
        }
    }
}
