use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::TUNNEL_RP_FILTER,
    name: "tunnel-rp-filter",
    severity: Severity::Error,
    summary: "strict `rp_filter` on an LVS-TUN real server drops its tunnelled connections",
    doc: crate::lint::doc_text!(r#"## What it does
Finds real servers of tunnel destinations (`ipvsadm -i`, `method = "tunnel"`)
whose tunnel device filters reverse paths strictly: `rp_filter = 1` as the
kernel applies it, `max(all, tunl0)`.

## Why it matters
With LVS-TUN the client's packets arrive inside IP-in-IP and come out of
`tunl0`, but the route back to the client leaves by the real server's NIC.
Strict reverse-path filtering drops every such packet after it arrives: the
real server's share of connections times out, and nothing logs why (the
`IPReversePathFilter` counter climbs). The kernel's IPVS selftest turns
`rp_filter` off on `all` and `tunl0` for its TUN test. The lab shows it:
the packets reach `tunl0`, and no answer comes back.

## Example
```toml
sysctl = { "net.ipv4.conf.all.rp_filter" = 1 }
```

## Fix
```toml
sysctl = { "net.ipv4.conf.all.rp_filter" = 0, "net.ipv4.conf.tunl0.rp_filter" = 0 }
```

## References
- Linux `ip-sysctl.rst`: rp_filter
- `tools/testing/selftests/net/netfilter/ipvs.sh`, `test_tun`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    for rs in &t.real_servers {
        // From the context's one pass over the services: a scan per real server
        // made this rule quadratic (43 % of linting a 12,000-line dump).
        if !cx.is_tunnelled(&rs.name.value) || rs.sysctls.effective_max("tunl0", "rp_filter") != 1 {
            continue;
        }
        let span = rs
            .sysctls
            .conf("tunl0", "rp_filter")
            .filter(|v| v.value == 1)
            .or(rs.sysctls.conf("all", "rp_filter"))
            .map(|v| v.span)
            .unwrap_or(rs.span);
        out.push(
            cx.diag(
                &META,
                format!("real server `{}` receives tunnelled connections on tunl0 but filters reverse paths strictly there", rs.name.value),
                span,
            )
            .help("turn rp_filter off for the tunnel: net.ipv4.conf.all.rp_filter = 0 and net.ipv4.conf.tunl0.rp_filter = 0")
            .node(rs.name.value.to_string()),
        );
    }
}
