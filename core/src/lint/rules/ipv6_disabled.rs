use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::IPV6_DISABLED,
    name: "ipv6-disabled",
    severity: Severity::Error,
    summary: "a host that serves an IPv6 VIP has IPv6 disabled",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that no real server of an IPv6 service, and no director carrying an
IPv6 VIP, sets `disable_ipv6 = 1` on `all`, on `lo` or on its NIC.

## Why it matters
IPv6 DR needs no ARP settings, but it needs IPv6 where the VIP lives: on
the director's NIC, and on the real server's `lo` and NIC. With
`disable_ipv6` the kernel removes the addresses and drops the packets, and
the forwarded connections time out.

## Example
```toml
[[real_server]]
name = "rs1"
address = "2001:db8::11"
sysctl = { "net.ipv6.conf.all.disable_ipv6" = 1 }
```

## Fix
Remove the setting, or set it to 0.

## References
- kernel `Documentation/networking/ip-sysctl.rst`, `disable_ipv6`
"#),
};

fn disabled<'a>(s: &'a Sysctls, ifaces: &[&str]) -> Option<(String, &'a crate::source::At<i64>)> {
    ifaces.iter().find_map(|i| {
        let key = format!("net.ipv6.conf.{i}.disable_ipv6");
        s.get(&key).filter(|v| v.value != 0).map(|v| (key, v))
    })
}

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    for d in &t.directors {
        if !d.vips.iter().any(|v| v.family() == Family::V6) {
            continue;
        }
        if let Some((key, v)) = disabled(&d.sysctls, &["all", &d.interface.value]) {
            out.push(
                cx.diag(&META, format!("`{key}` is set on `{}`, which carries an IPv6 VIP", d.name), v.span.or(d.span))
                    .help(format!("remove {key}"))
                    .node(d.name.to_string()),
            );
        }
    }
    for rs in &t.real_servers {
        if !cx.vips_served_by(&rs.name.value).iter().any(|v| v.is_ipv6()) {
            continue;
        }
        if let Some((key, v)) = disabled(&rs.sysctls, &["all", "lo", &rs.interface.value]) {
            out.push(
                cx.diag(&META, format!("`{key}` is set on real server `{}`, which serves an IPv6 VIP", rs.name.value), v.span.or(rs.span))
                    .label("the VIP on lo and the forwarded packets need IPv6")
                    .help(format!("remove {key}"))
                    .node(rs.name.value.to_string()),
            );
        }
    }
}
