use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::VIP_ON_LO_PREFIX,
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
    let vips: std::collections::HashSet<std::net::IpAddr> = cx.topology.vips().iter().map(|v| v.address.value).collect();
    for rs in &cx.topology.real_servers {
        for a in rs.lo.iter().filter(|a| vips.contains(&a.address)) {
            let host = a.family().host_prefix();
            if a.prefix == host {
                continue;
            }
            let mut d = cx
                .diag(&META, format!("the VIP on `lo` of `{}` is a /{}, not a /{host}", rs.name.value, a.prefix), a.span.or(rs.span))
                .label(format!("makes the whole /{} local to {}", a.prefix, rs.name.value))
                .help(format!("put the VIP on `lo` as a /{host}"))
                .node(rs.name.value.to_string());
            if let Some(edit) = cx.replace_value(a.span, &host.to_string()) {
                d = d.fix(format!("set the prefix to {host}"), Applicability::Safe, vec![edit]);
            }
            out.push(d);
        }
    }
}
