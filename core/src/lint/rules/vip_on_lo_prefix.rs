use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: "DR004",
    name: "vip-on-lo-prefix",
    severity: Severity::Error,
    summary: "the VIP on `lo` must be a /32",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that the VIP on a real server's `lo` has prefix length 32.

## Why it matters
An address on `lo` with prefix /N makes the whole /N subnet local: the
kernel adds a `local` route for it. With `192.168.1.192/24` on `lo`, the
real server believes every address in 192.168.1.0/24 is itself. It can no
longer reach the client, the director or its neighbours, and replies vanish.

## Example
```toml
vip_on_lo = 24
```

## Fix
```toml
vip_on_lo = 32
```

## References
- `ip-route(8)`: the local table; LVS-HOWTO, "netmask of the VIP on lo"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for rs in &cx.topology.real_servers {
        let Some(prefix) = &rs.vip_on_lo else { continue };
        if prefix.value != 32 {
            let mut d = cx
                .diag(&META, format!("the VIP on `lo` of `{}` is a /{}, not a /32", rs.name.value, prefix.value), prefix.span.or(rs.span))
                .label(format!("makes the whole /{} local to {}", prefix.value, rs.name.value))
                .help("put the VIP on `lo` as a /32")
                .node(rs.name.value.to_string());
            if let Some(edit) = cx.replace_value(prefix.span, "32") {
                d = d.fix("set the prefix to 32", Applicability::Safe, vec![edit]);
            }
            out.push(d);
        }
    }
}
