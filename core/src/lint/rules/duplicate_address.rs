use super::prelude::*;
use std::net::IpAddr;

pub static META: RuleMeta = RuleMeta {
    code: "DR017",
    name: "duplicate-address",
    severity: Severity::Error,
    summary: "two hosts share an address",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that the client, the director and every real server have distinct
addresses, and that none of them is the VIP.

## Why it matters
Two hosts with one address fight over ARP. A real server that is also the
director (the "director as its own real server" setup) needs a `local`
destination, not DR.

## Example
```toml
[director]
address = "192.168.1.191"
[[real_server]]
address = "192.168.1.191"
```

## Fix
Give each host its own address.

## References
- LVS-HOWTO, "director as a realserver"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    let mut seen: Vec<(String, IpAddr)> = Vec::new();
    for a in t.client.address.iter() {
        seen.push((t.client.name.to_string(), a.value));
    }
    for d in &t.directors {
        for a in d.address.iter() {
            if let Some((other, _)) = seen.iter().find(|(_, x)| *x == a.value) {
                out.push(
                    cx.diag(&META, format!("the {other} and `{}` share an address", d.name), a.span.or(d.span))
                        .help("give each host its own address")
                        .node(d.name.to_string()),
                );
            }
            seen.push((d.name.to_string(), a.value));
        }
    }
    for v in t.vips() {
        seen.push((format!("the VIP {}", v.address.value), v.address.value));
    }
    for rs in &t.real_servers {
        for a in rs.address.iter() {
            if let Some((other, _)) = seen.iter().find(|(_, x)| *x == a.value) {
                out.push(
                    cx.diag(&META, format!("real server `{}` has the same address as {other}", rs.name.value), a.span.or(rs.span))
                        .help("give each host its own address")
                        .node(rs.name.value.to_string()),
                );
            }
            seen.push((rs.name.value.to_string(), a.value));
        }
    }
}
