use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::DR_PORT_MAPPING,
    name: "dr-port-mapping",
    severity: Severity::Error,
    summary: "DR cannot map ports: the real-server port must equal the virtual port",
    doc: crate::lint::doc_text!(r#"## What it does
Finds destinations forwarded by direct routing (or tunnel) whose port
differs from the virtual service's port.

## Why it matters
DR rewrites only the MAC address; the TCP/UDP header is untouched, so the
packet arrives at the virtual port whatever the destination says. The
kernel stores the mismatched entry without complaint, `ipvsadm` silently
rewrites it, and keepalived only warns. What you read back is not what runs.

## Example
```toml
[[service.real_server]]
server = "rs1"
port = 8080        # service port is 80
```

## Fix
Use the virtual port, and have the server listen on it.

## References
- `ipvsadm(8)`: "-g ... the port of the real server is ignored"
- keepalived `check_parser.c`: "port is ignored in DR/TUN mode"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        let Some(vport) = s.port() else { continue };
        if vport == 0 {
            continue;
        }
        for d in &s.destinations {
            if matches!(d.forward.value, Forward::Route | Forward::Tunnel) && d.port.value != vport {
                let mut diag = cx
                    .diag(&META, format!("`{}` is given port {} in service {}, but {} cannot map ports", d.server.value, d.port.value, cx.topology.label(s), d.forward.name()), d.port.span.or(d.span))
                    .label(format!("packets will still arrive on port {vport}"))
                    .help(format!("use port {vport}, the virtual port"))
                    .node(d.server.value.to_string());
                if let Some(edit) = cx.replace_value(d.port.span, &vport.to_string()) {
                    diag = diag.fix(format!("use port {vport}"), Applicability::Safe, vec![edit]);
                }
                out.push(diag);
            }
        }
    }
}
