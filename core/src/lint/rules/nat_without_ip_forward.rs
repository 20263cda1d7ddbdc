use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::NAT_WITHOUT_IP_FORWARD,
    name: "nat-without-ip-forward",
    severity: Severity::Error,
    summary: "an LVS-NAT director does not forward",
    doc: crate::lint::doc_text!(r#"## What it does
Finds a director with NAT destinations (`ipvsadm -m`, `method = "masq"`)
whose `net.ipv4.ip_forward` is not 1.

An input that sets no sysctl at all on the director (an `ipvsadm -S` dump,
a keepalived.conf) does not say, so there it is a note.

## Why it matters
With LVS-NAT the real servers send their replies back through the director,
which rewrites their source to the VIP on the way out. That is forwarding:
with `ip_forward` off (the kernel's default) the director drops every reply,
and every connection to a NAT service times out. Direct routing and
tunnelling do not need it (DR013 says so when only they are used).

## Example
```toml
[director]
vip = "192.168.1.192"
```

## Fix
```toml
sysctl = { "net.ipv4.ip_forward" = 1 }
```

## References
- `ipvsadm(8)`: `-m, --masquerading`
- `tools/testing/selftests/net/netfilter/ipvs.sh`, `test_nat`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    let Some((s, d)) = t
        .services
        .iter()
        .flat_map(|s| s.destinations.iter().map(move |d| (s, d)))
        .find(|(_, d)| d.forward.value == Forward::Masq)
    else {
        return;
    };
    for director in t.directors.iter().filter(|d| !d.placeholder) {
        let forward = director.sysctls.get("net.ipv4.ip_forward");
        if forward.is_some_and(|f| f.value == 1) {
            continue;
        }
        let says_nothing = director.sysctls.values.is_empty();
        let mut diag = cx
            .diag(
                &META,
                if says_nothing {
                    format!(
                        "{} sends `{}` in service {} by NAT; the input does not say whether it forwards (NAT needs ip_forward = 1)",
                        director.name,
                        d.server.value,
                        t.label(s)
                    )
                } else {
                    format!(
                        "{} sends `{}` in service {} by NAT, but does not forward: the replies are dropped",
                        director.name,
                        d.server.value,
                        t.label(s)
                    )
                },
                forward.map(|f| f.span).unwrap_or(director.span),
            )
            .help("set net.ipv4.ip_forward = 1 on the director")
            .node(director.name.to_string());
        // An input that sets no sysctl (a dump, a keepalived.conf) leaves it unknown: a note.
        if says_nothing {
            diag.severity = Severity::Info;
        }
        out.push(diag);
    }
}
