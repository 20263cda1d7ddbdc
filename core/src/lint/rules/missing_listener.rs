use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::MISSING_LISTENER,
    name: "missing-listener",
    severity: Severity::Error,
    summary: "a real server gets traffic for a port it does not serve",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that each real server listens on every port that a virtual service
sends it.

## Why it matters
The director does not know what a real server serves: it keeps scheduling
connections to it. A real server without a listener answers the SYN with a
RST from VIP:port, straight to the client: "connection refused" for that
server's share of connections, while other ports work. Every real server
must serve every virtual port it is a member of (or have a health checker
take it out, as keepalived's does).

## Example
```toml
[[real_server]]
name = "rs2"
listen = [80]          # but the tcp/25 service lists rs2
```

## Fix
Run the service on that server, or remove the server from the service.

## References
- keepalived `TCP_CHECK`/`SMTP_CHECK`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        let ServiceKey::Port { port, .. } = s.key.value else { continue };
        if port == 0 {
            continue;
        }
        for d in &s.destinations {
            let Some(rs) = cx.real_server(&d.server.value) else { continue };
            let listen_port = if d.forward.value == Forward::Masq { d.port.value } else { port };
            if d.weight.value > 0 && !rs.listens_on(listen_port) {
                let span = rs.listen.as_ref().map(|l| l.span).unwrap_or(rs.span);
                out.push(
                    cx.diag(&META, format!("`{}` is in service {} but has no listener on port {listen_port}", rs.name.value, cx.topology.label(s)), span)
                        .label(format!("clients sent here get \"connection refused\" on {listen_port}"))
                        .help(format!("start a server on port {listen_port} on `{}`, or remove it from {}", rs.name.value, cx.topology.label(s)))
                        .node(rs.name.value.to_string()),
                );
            }
        }
    }
}
