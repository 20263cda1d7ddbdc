use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::ARP_SYSCTLS_ONLY_ON_LO,
    name: "arp-sysctls-only-on-lo",
    severity: Severity::Error,
    summary: "ARP sysctls set on `lo` have no effect",
    doc: crate::lint::doc_text!(r#"## What it does
Finds real servers that set `arp_ignore`/`arp_announce` on `lo` but not on
`all` or on the interface that faces the director.

## Why it matters
ARP requests arrive on the NIC, not on `lo`. The kernel decides with
`max(net.ipv4.conf.all.X, net.ipv4.conf.<nic>.X)`; the value on `lo` is never
consulted. Many walkthroughs set `lo` only, and the real server keeps
answering ARP for the VIP: traffic then bypasses the director (see DR001).

## Example
```toml
sysctl = { "net.ipv4.conf.lo.arp_ignore" = 1, "net.ipv4.conf.lo.arp_announce" = 2 }
```

## Fix
Set them on `all` (and optionally on the NIC):
```toml
sysctl = { "net.ipv4.conf.all.arp_ignore" = 1, "net.ipv4.conf.all.arp_announce" = 2 }
```

## References
- Linux `Documentation/networking/ip-sysctl.rst`: "The max value from conf/{all,interface}/arp_ignore is used"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    for rs in &cx.topology.real_servers {
        if !rs.lo.iter().any(|a| a.address.is_ipv4()) {
            continue;
        }
        let iface = &rs.interface.value;
        for (name, need) in [("arp_ignore", 1), ("arp_announce", 2)] {
            let Some(lo) = rs.sysctls.conf("lo", name) else { continue };
            if lo.value >= need && rs.sysctls.effective_max(iface, name) < need {
                let key = format!("net.ipv4.conf.lo.{name}");
                out.push(
                    cx.diag(&META, format!("`{key}` on `{}` does nothing: ARP is answered on `{iface}`", rs.name.value), lo.span.or(rs.span))
                        .label(format!("effective {name} on {iface} is {}", rs.sysctls.effective_max(iface, name)))
                        .help(format!("set net.ipv4.conf.all.{name} = {need} (or net.ipv4.conf.{iface}.{name})"))
                        .node(rs.name.value.to_string()),
                );
            }
        }
    }
}
