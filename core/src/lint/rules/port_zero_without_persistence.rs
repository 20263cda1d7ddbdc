use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::PORT_ZERO_WITHOUT_PERSISTENCE,
    name: "port-zero-without-persistence",
    severity: Severity::Error,
    summary: "a port-0 (all ports) service needs persistence",
    doc: crate::lint::doc_text!(r#"## What it does
Finds virtual services on port 0 that have no persistence (`-p`).

## Why it matters
Port 0 means "every port of the VIP". `ipvsadm` refuses it without `-p`
and the kernel rejects it: without persistence, the connections of one
client session (FTP control and data, HTTP and HTTPS) would be scattered
across real servers.

## Example
```toml
[[service]]
port = 0
scheduler = "wlc"
```

## Fix
```toml
persistence = 300
```

## References
- `ipvsadm(8)`: "-p ... A virtual service with port 0 must be persistent"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        if s.port() == Some(0) && s.persistence.is_none() {
            out.push(
                cx.diag(&META, format!("service {} covers every port but has no persistence", cx.topology.label(s)), s.key.span.or(s.span))
                    .label("port 0 needs `-p`")
                    .help("add `persistence = 300` (ipvsadm -p 300)")
                    .node("director"),
            );
        }
    }
}
