use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::PARTIAL_MEMBERSHIP,
    name: "partial-membership",
    severity: Severity::Info,
    summary: "a real server serves some virtual ports of the VIP but not others",
    doc: crate::lint::doc_text!(r#"## What it does
Notes real servers that are members of some services of the VIP but not of
others.

## Why it matters
Every real server holds the VIP and receives whatever the director sends.
A server left out of one service is fine for IPVS, but it usually means a
forgotten `-a` line, and clients that stick to one server (persistence,
`sh`) cannot reach the other port there.

## Example
```toml
# rs2 is in tcp/80 but not in tcp/25
```

## Fix
Add the server to every service, or document why it is left out.

## References
- LVS-HOWTO, "every realserver must serve every port"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    for rs in &t.real_servers {
        let member_of = cx.services_of(&rs.name.value);
        if member_of.is_empty() || member_of.len() == t.services.len() {
            continue;
        }
        // A real server is expected in every service of the VIPs it serves, not in
        // services of VIPs that other real servers carry.
        let mut expected: Vec<usize> = cx
            .vips_served_by(&rs.name.value)
            .iter()
            .flat_map(|v| cx.services_on(*v).iter().copied())
            .collect();
        expected.sort_unstable();
        expected.dedup();
        // By identity, so that a service defined twice (DR024) counts once.
        let missing = |i: usize| {
            member_of.binary_search(&i).is_err() && !member_of.iter().any(|m| t.services[*m].same_as(&t.services[i]))
        };
        for i in expected {
            if missing(i) {
                let s = &t.services[i];
                let label = t.label(s);
                out.push(
                    cx.diag(&META, format!("real server `{}` is not in service {label}", rs.name.value), s.key.span.or(s.span))
                        .help(format!("add `{}` to {label}, or remove the service if it is not meant to be served", rs.name.value))
                        .node(rs.name.value.to_string()),
                );
            }
        }
    }
}
