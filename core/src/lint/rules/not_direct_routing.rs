use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: "DR019",
    name: "not-direct-routing",
    severity: Severity::Warning,
    summary: "a destination does not use direct routing",
    doc: crate::lint::doc_text!(r#"## What it does
Finds destinations forwarded by NAT (`-m`), tunnel (`-i`) or `local` in a
topology that lvsdr treats as LVS-DR.

## Why it matters
NAT needs the real servers to route their replies through the director
(their default gateway), and tunnelling needs an `ipip` interface on each
real server. Neither is described by a DR topology, so the generated
scripts and the lab will not make them work. keepalived defaults to NAT
when `lb_kind` is missing, which is a common source of this mistake.

## Example
```toml
real_server = [{ server = "rs1", method = "masq" }]
```

## Fix
```toml
method = "route"
```

## References
- keepalived.conf(5): `lb_kind NAT|DR|TUN`; `ipvsadm(8)`: `-g`, `-m`, `-i`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for s in &cx.topology.services {
        for d in &s.destinations {
            if d.forward.value != Forward::Route {
                let mut diag = cx
                    .diag(&META, format!("`{}` in service {} uses {} forwarding, not direct routing", d.server.value, cx.topology.label(s), d.forward.name()), d.forward.span.or(d.span))
                    .help("use `method = \"route\"` (ipvsadm -g)")
                    .node(d.server.value.to_string());
                if let Some(edit) = cx.replace_value(d.forward.span, "route") {
                    diag = diag.fix("use direct routing", Applicability::Unsafe, vec![edit]);
                }
                out.push(diag);
            }
        }
    }
}
