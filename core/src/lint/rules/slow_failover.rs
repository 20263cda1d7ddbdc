use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::SLOW_FAILOVER,
    name: "slow-failover",
    severity: Severity::Info,
    summary: "the VRRP advertisement interval makes takeover slow",
    doc: crate::lint::doc_text!(r#"## What it does
Reports a VRRP `advert_int` above one second, with the time the backup
waits before it takes over.

## Why it matters
A backup declares the master dead after three missed adverts plus a skew of
(256 − priority) / 256 of an interval. With `advert_int 5` that is more
than 15 s without the VIP. The lab measured takeover in 0.7 to 3.3 s with
`advert_int 1` (DESIGN.md).

## Example
```text
advert_int 5
```

## Fix
`advert_int 1` (the default), or less where the network is quiet.

## References
- RFC 5798, section 6.1 (Master_Down_Interval)
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for d in &cx.topology.directors {
        let Some(v) = &d.vrrp else { continue };
        if v.advert_ms.value <= 1000 {
            continue;
        }
        // Master_Down_Interval = 3 × advert + skew, skew = (256 − priority) × advert / 256.
        let advert = u64::from(v.advert_ms.value);
        let down = 3 * advert + (256 - u64::from(v.priority.value)) * advert / 256;
        out.push(
            cx.diag(&META, format!("{} advertises every {} ms: its peer takes over after about {} ms without the VIP", d.name, v.advert_ms.value, down), v.advert_ms.span.or(v.span))
                .help("advert_int 1 keeps takeover near 3 s")
                .node(d.name.to_string()),
        );
    }
}
