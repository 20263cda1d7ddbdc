use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::REAL_SERVER_OFF_LINK,
    name: "real-server-off-link",
    severity: Severity::Error,
    summary: "a DR real server must be on the director's own LAN",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that every real server used with direct routing has an address in
the LAN subnet of the director.

## Why it matters
DR forwards by rewriting the destination MAC address to the real server's
MAC. That only works if the director can ARP for the real server directly:
no router may stand between them. A real server on another subnet is never
reached (use `tunnel` for that).

## Example
```toml
[lan]
subnet = "192.168.1.0/24"
[[real_server]]
address = "10.0.0.5"
```

## Fix
Put the real server on the director's LAN, or forward with `method = "tunnel"`.

## References
- LVS-HOWTO, "LVS-DR: the realservers must be on the same link as the director"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    for rs in &t.real_servers {
        if !cx.is_direct_routed(&rs.name.value) {
            continue;
        }
        for address in rs.address.iter() {
            let family = Family::of(&address.value);
            let (lan, stated) = t.lan_of(family);
            if lan.contains(address.value) {
                continue;
            }
            let mut d = cx
                .diag(&META, format!("real server `{}` ({}) is not on the LAN {lan}", rs.name.value, address.value), address.span.or(rs.span))
                .label("the director cannot reach it by MAC")
                .help(format!("give it an address in {lan}, or use `method = \"tunnel\"`"))
                .node(rs.name.value.to_string());
            if !stated {
                // The input never said which LAN the director is on: only a guess to check.
                d.severity = Severity::Info;
                d.message = format!(
                    "real server `{}` ({}) is not in {lan}, the LAN lvsdr assumed around the director; DR needs it on the director's link",
                    rs.name.value, address.value
                );
                d.help = Some("state the LAN (`[lan] subnet = …`, or the director's own `ip addr add ADDR/PREFIX dev eth0`) so this can be checked".into());
            }
            out.push(d);
        }
    }
}
