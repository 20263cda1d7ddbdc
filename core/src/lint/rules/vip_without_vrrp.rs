use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::VIP_WITHOUT_VRRP,
    name: "vip-without-vrrp",
    severity: Severity::Warning,
    summary: "in a director pair, a VIP that a service uses is carried by no VRRP instance",
    doc: crate::lint::doc_text!(r#"## What it does
In a topology whose directors run VRRP, checks that every VIP a virtual
service uses is in some instance's `virtual_ipaddress`.

## Why it matters
Only the addresses in `virtual_ipaddress` move to the backup. A service on
any other address keeps answering on the failed master (that is, not at
all), or, if the address is configured by hand on both directors, both
answer ARP for it.

## Example
```text
virtual_server 192.168.1.193 80 { … }
vrrp_instance VI_1 { virtual_ipaddress { 192.168.1.192 } }
```

## Fix
Add the VIP to the instance's `virtual_ipaddress` on both directors.

## References
- keepalived.conf(5), `virtual_ipaddress`
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let t = cx.topology;
    let vrrps: Vec<&Vrrp> = t.directors.iter().filter_map(|d| d.vrrp.as_ref()).collect();
    if vrrps.is_empty() {
        return;
    }
    let mut seen = Vec::new();
    for s in &t.services {
        for vip in t.service_vips(s) {
            if seen.contains(&vip) || vrrps.iter().any(|v| v.vips.iter().any(|a| a.value == vip)) {
                continue;
            }
            seen.push(vip);
            out.push(
                cx.diag(&META, format!("VIP {vip} is served but no VRRP instance carries it: it does not move at failover"), s.vip.as_ref().map(|v| v.span).unwrap_or(s.span).or(s.span))
                    .help(format!("add {vip} to the vrrp_instance's virtual_ipaddress on both directors"))
                    .node("director"),
            );
        }
    }
}
