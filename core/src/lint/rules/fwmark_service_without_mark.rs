use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::FWMARK_SERVICE_WITHOUT_MARK,
    name: "fwmark-service-without-mark",
    severity: Severity::Info,
    summary: "a fwmark service's marking rule is not in the input",
    doc: crate::lint::doc_text!(r#"## What it does
Finds fwmark services (`ipvsadm -A -f MARK`) for which the input holds no
marking rule of the same address family, so lvsdr cannot tell which VIPs,
protocols and ports reach them.

## Why it matters
A fwmark service serves whatever the firewall marks. Without the rule,
lint cannot check the real servers' VIPs, the lab cannot send traffic to
the service, and nothing shows whether any packet is marked at all. Often
the rule lives in another file (a firewall script, an nft ruleset); that
is fine, but lvsdr can only check what it reads.

## Example
```sh
ipvsadm -A -f 1 -s wlc
```

## Fix
Import the marking rule with the service, in the same script:
```sh
iptables -t mangle -A PREROUTING -d 192.168.1.192 -p tcp -m multiport --dports 80,443 -j MARK --set-mark 1
```
or add a `[[mark]]` table to the topology.

## References
- `ipvsadm(8)`, `-f, --fwmark-service`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    for s in &t.services {
        let ServiceKey::Fwmark(m) = s.key.value else { continue };
        if t.marks_of(s).is_empty() {
            out.push(
                cx.diag(&META, format!("no marking rule for {} fwmark service {m} is in the input; its VIPs and ports are unknown", s.family.name()), s.key.span.or(s.span))
                    .help(format!("add the rule that sets mark {m} (iptables -t mangle -A PREROUTING -d VIP … -j MARK --set-mark {m}, or a [[mark]] table)"))
                    .node("director"),
            );
        }
    }
}
