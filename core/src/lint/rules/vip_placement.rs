use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::VIP_PLACEMENT,
    name: "vip-placement",
    severity: Severity::Error,
    summary: "the director and the client must be on the stated LAN; a VIP outside it needs a router",
    doc: crate::lint::doc_text!(r#"## What it does
Checks, against the LAN the topology states, that the director's own
address and the client are on it (errors), and reports a VIP outside it
(information). A topology that does not state its LAN is not checked, and
one with a `[router]` expects the client and the VIP elsewhere.

## Why it matters
The client of the lab sits on the LAN and ARPs for the VIP. A VIP outside
the subnet is common in production (a public VIP, private real servers on
the same wire) and works when the router in front sends the VIP to the
director. Say so with a `[router]` (its LAN and outside addresses): then
neither the VIP nor the client needs to be on the LAN, and the lab builds
the router and proves DR through it (`fixtures/routed-dr.toml`).

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
    // Only a stated LAN can be checked; an assumed one says nothing.
    let stated = |a: &std::net::IpAddr| t.lans.iter().find(|l| l.family() == Family::of(a)).map(|l| (l.value, l.span));
    for d in &t.directors {
        for v in &d.vips {
            let Some((lan, _)) = stated(&v.address.value) else { continue };
            if !lan.contains(v.address.value) && t.router.is_none() {
                // A public VIP with the hosts on a private LAN is how DR is often deployed:
                // the router in front sends the VIP to the director. Worth knowing, not wrong.
                let mut diag = cx
                    .diag(&META, format!("the VIP {} is outside the LAN {lan}", v.address.value), v.address.span.or(d.span))
                    .help(format!("clients reach it only through a router that sends {} to the director; on the LAN itself use a free address in {lan}", v.address.value))
                    .node(d.name.to_string());
                diag.severity = Severity::Info;
                out.push(diag);
            }
        }
        for a in d.address.iter() {
            let Some((lan, _)) = stated(&a.value) else { continue };
            if !lan.contains(a.value) {
                out.push(cx.diag(&META, format!("the director {} is outside the LAN {lan}", a.value), a.span.or(d.span)).help(format!("use an address in {lan}")).node(d.name.to_string()));
            }
        }
    }
    // Behind a `[router]` the client is meant to be elsewhere.
    for a in t.client.address.iter().filter(|_| t.router.is_none()) {
        let Some((lan, span)) = stated(&a.value) else { continue };
        if !lan.contains(a.value) {
            out.push(cx.diag(&META, format!("the client {} is outside the LAN {lan}", a.value), a.span.or(span)).help(format!("use an address in {lan}")).node("client"));
        }
    }
}
