use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::REAL_SERVER_RP_FILTER,
    name: "real-server-rp-filter",
    severity: Severity::Warning,
    summary: "strict `rp_filter` on a real server can drop DR traffic",
    doc: crate::lint::doc_text!(r#"## What it does
Finds real servers whose interface facing the director runs strict reverse
path filtering (`rp_filter = 1`, effective value `max(all, iface)`).

## Why it matters
Strict mode drops packets that arrive on an interface the host would not
use to reply to their source. In the simple one-LAN setup replies to the
client leave by the same NIC, so it passes; but with several NICs, policy
routing, or a client behind another gateway, DR packets to the VIP are
dropped silently. The kernel's own IPVS selftest sets `rp_filter=0`.
Loose mode (2) is the safe choice.

## Example
```toml
sysctl = { "net.ipv4.conf.all.rp_filter" = 1 }
```

## Fix
```toml
sysctl = { "net.ipv4.conf.all.rp_filter" = 2 }
```

## References
- Linux `ip-sysctl.rst`: rp_filter
- `tools/testing/selftests/net/netfilter/ipvs.sh`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for rs in &cx.topology.real_servers {
        let iface = &rs.interface.value;
        let all = rs.sysctls.conf("all", "rp_filter").map(|v| v.value).unwrap_or(0);
        let own = rs.sysctls.conf(iface, "rp_filter").map(|v| v.value);
        if all.max(own.unwrap_or(0)) == 1 {
            let span = rs.sysctls.conf("all", "rp_filter").or(rs.sysctls.conf(iface, "rp_filter")).map(|v| v.span).unwrap_or(rs.span);
            out.push(
                cx.diag(&META, format!("real server `{}` uses strict reverse path filtering", rs.name.value), span)
                    .help("use loose mode: rp_filter = 2")
                    .node(rs.name.value.to_string()),
            );
        }
    }
}
