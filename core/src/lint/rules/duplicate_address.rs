use super::prelude::*;

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
    let mut seen: Vec<(&str, std::net::Ipv4Addr)> = vec![
        (t.client.name.as_str(), t.client.address.value),
        (t.director.name.as_str(), t.director.address.value),
        ("the VIP", t.director.vip.value),
    ];
    if t.client.address.value == t.director.address.value {
        out.push(cx.diag(&META, "the client and the director share an address", t.client.address.span.or(t.director.span)).help("give each host its own address"));
    }
    for rs in &t.real_servers {
        if let Some((other, _)) = seen.iter().find(|(_, a)| *a == rs.address.value) {
            out.push(
                cx.diag(&META, format!("real server `{}` has the same address as {other}", rs.name.value), rs.address.span.or(rs.span))
                    .help("give each host its own address")
                    .node(rs.name.value.to_string()),
            );
        }
        seen.push((rs.name.value.as_str(), rs.address.value));
    }
}
