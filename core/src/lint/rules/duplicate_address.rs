use super::prelude::*;
use std::net::IpAddr;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::DUPLICATE_ADDRESS,
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
    // Who holds each address first; a map, as a dump can hold thousands of hosts.
    #[derive(Clone, Copy)]
    enum Holder<'a> {
        Host(&'a str),
        Vip(IpAddr),
    }
    let name = |h: Holder| match h {
        Holder::Host(n) => n.to_string(),
        Holder::Vip(a) => format!("the VIP {a}"),
    };
    let mut seen: std::collections::HashMap<IpAddr, Holder> = std::collections::HashMap::new();
    for a in t.client.address.iter() {
        seen.entry(a.value).or_insert(Holder::Host(&t.client.name));
    }
    for d in &t.directors {
        for a in d.address.iter() {
            if let Some(other) = seen.get(&a.value) {
                out.push(
                    cx.diag(&META, format!("the {} and `{}` share an address", name(*other), d.name), a.span.or(d.span))
                        .help("give each host its own address")
                        .node(d.name.to_string()),
                );
            }
            seen.entry(a.value).or_insert(Holder::Host(&d.name));
        }
    }
    for v in t.vips() {
        seen.entry(v.address.value).or_insert(Holder::Vip(v.address.value));
    }
    for rs in &t.real_servers {
        for a in rs.address.iter() {
            if let Some(other) = seen.get(&a.value) {
                out.push(
                    cx.diag(&META, format!("real server `{}` has the same address as {}", rs.name.value, name(*other)), a.span.or(rs.span))
                        .help("give each host its own address")
                        .node(rs.name.value.to_string()),
                );
            }
            seen.entry(a.value).or_insert(Holder::Host(&rs.name.value));
        }
    }
}
