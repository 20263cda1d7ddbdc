use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::NOT_DIRECT_ROUTING,
    name: "not-direct-routing",
    severity: Severity::Info,
    summary: "a destination uses NAT, tunnel or local forwarding, not direct routing",
    doc: crate::lint::doc_text!(r#"## What it does
Notes destinations forwarded by NAT (`-m`), tunnel (`-i`) or `local`, so that
a setup meant as DR that is not is seen at once.

## Why it matters
Each method works differently: NAT needs the real servers to route their
replies through the director, which must forward (DR039); tunnelling needs
`ipip` on each real server and `rp_filter` off on `tunl0` (DR038). lvsdr
proves each with its own proofs. But keepalived defaults to NAT when
`lb_kind` is missing, and a DR setup read as NAT is the common mistake this
note is for.

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
                    .help("if the setup is meant as DR (keepalived defaults to NAT without `lb_kind`), use `method = \"route\"` (ipvsadm -g)")
                    .node(d.server.value.to_string());
                if let Some(edit) = cx.replace_value(d.forward.span, "route") {
                    diag = diag.fix("use direct routing", Applicability::Unsafe, vec![edit]);
                }
                out.push(diag);
            }
        }
    }
}
