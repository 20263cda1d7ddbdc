use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::MARK_WITHOUT_SERVICE,
    name: "mark-without-service",
    severity: Severity::Warning,
    summary: "a marking rule sets a mark no fwmark service uses",
    doc: crate::lint::doc_text!(r#"## What it does
Finds firewall marking rules (`[[mark]]`, or `iptables … -j MARK` / nft
`meta mark set` lines beside the `ipvsadm` commands) whose mark no fwmark
service (`ipvsadm -A -f MARK`) of the same address family uses.

## Why it matters
The packets get a mark that IPVS looks up and does not find, so they are
not load-balanced at all: the director delivers them to itself, where
nothing listens on the VIP. A typo in the mark number does exactly this.

## Example
```toml
[[mark]]
mark = 2
destination = "192.168.1.192"
[[service]]
fwmark = 1
```

## Fix
Use the same number in the rule and in the service, or remove the rule.

## References
- `ipvsadm(8)`, `-f, --fwmark-service`
- LVS-HOWTO, "fwmark"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    for m in &t.marks {
        let used = t
            .services
            .iter()
            .any(|s| s.key.value == ServiceKey::Fwmark(m.mark.value) && s.family == m.family());
        if !used {
            out.push(
                cx.diag(&META, format!("mark {} is set for {} but no {} fwmark service uses it", m.mark.value, m.destination.value, m.family().name()), m.mark.span.or(m.span))
                    .label("these packets reach no virtual service")
                    .help(format!("add a service with `fwmark = {}` (ipvsadm -A -f {}), or fix the mark", m.mark.value, m.mark.value))
                    .node("director"),
            );
        }
    }
}
