use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::ONE_PACKET_NOT_UDP,
    name: "one-packet-not-udp",
    severity: Severity::Warning,
    summary: "one-packet scheduling (`-o`) is for UDP only",
    doc: crate::lint::doc_text!(r#"## What it does
Finds services with one-packet scheduling that are not UDP.

## Why it matters
One-packet scheduling schedules every datagram on its own and keeps no
connection entry. It only applies to UDP; on TCP or SCTP the kernel
ignores it, and the setting misleads whoever reads the configuration.

## Example
```toml
protocol = "tcp"
one_packet = true
```

## Fix
Remove `one_packet`, or use it on a UDP service.

## References
- `ipvsadm(8)`: `-o, --ops`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        let udp = matches!(s.key.value, ServiceKey::Port { protocol: Protocol::Udp, .. });
        if s.one_packet.value && !udp {
            out.push(
                cx.diag(&META, format!("service {} uses one-packet scheduling, which only applies to UDP", cx.topology.label(s)), s.one_packet.span.or(s.span))
                    .help("remove `one_packet`")
                    .node("director"),
            );
        }
    }
}
