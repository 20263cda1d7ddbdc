use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: "DR018",
    name: "vip-placement",
    severity: Severity::Error,
    summary: "the VIP must be in the LAN, distinct from every host",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that the VIP lies inside the LAN subnet, and that the client is on
the LAN too.

## Why it matters
Clients on the LAN ARP for the VIP. A VIP outside the subnet needs a route
pointing at the director, which this topology does not describe, and the
lab cannot reach it.

## Example
```toml
[lan]
subnet = "192.168.1.0/24"
[director]
vip = "10.9.9.9"
```

## Fix
Choose a free address of the LAN for the VIP.

## References
- LVS-HOWTO, "the VIP"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    let lan = t.lan.value;
    if !lan.contains(t.director.vip.value) {
        out.push(cx.diag(&META, format!("the VIP {} is outside the LAN {lan}", t.director.vip.value), t.director.vip.span.or(t.director.span)).help(format!("use a free address in {lan}")).node("director"));
    }
    if !lan.contains(t.director.address.value) {
        out.push(cx.diag(&META, format!("the director {} is outside the LAN {lan}", t.director.address.value), t.director.address.span.or(t.director.span)).help(format!("use an address in {lan}")).node("director"));
    }
    if !lan.contains(t.client.address.value) {
        out.push(cx.diag(&META, format!("the client {} is outside the LAN {lan}", t.client.address.value), t.client.address.span.or(t.lan.span)).help(format!("use an address in {lan}")).node("client"));
    }
}
