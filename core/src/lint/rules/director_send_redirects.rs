use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::DIRECTOR_SEND_REDIRECTS,
    name: "director-send-redirects",
    severity: Severity::Warning,
    summary: "the director should not send ICMP redirects",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that the director sets `send_redirects = 0` on `all` and on its LAN
interface, when at least one real server is reached by direct routing. When
the input sets no sysctl on the director at all (an `ipvsadm -S` dump, a
keepalived.conf), it does not say, and the finding is info.

## Why it matters
In DR the director receives a packet on its LAN interface and sends it back
out of the same interface to a real server on the same subnet. That is the
textbook case for an ICMP redirect: the kernel may tell the client "send it
to the real server directly", teaching clients to bypass the director.

## Example
```toml
[director]
sysctl = {}
```

## Fix
```toml
sysctl = { "net.ipv4.conf.all.send_redirects" = 0, "net.ipv4.conf.eth0.send_redirects" = 0 }
```

## References
- LVS-HOWTO, "ICMP redirects"; Linux `ip-sysctl.rst`: send_redirects
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let d = cx.topology.director();
    // The IPv4 knob; an IPv6-only director sends no IPv4 redirects; a placeholder is not judged.
    if d.placeholder || !d.vips.iter().any(|v| v.address.is_ipv4()) {
        return;
    }
    // The concern is DR's: a director that only does NAT or tunnels sends nothing back out by direct routing.
    let direct = cx
        .topology
        .services
        .iter()
        .flat_map(|s| &s.destinations)
        .any(|x| x.forward.value == Forward::Route);
    if !direct {
        return;
    }
    let iface = &d.interface.value;
    // The kernel sends redirects when either `all` or the interface allows it.
    let all = d.sysctls.conf("all", "send_redirects").map(|v| v.value).unwrap_or(1);
    let own = d.sysctls.conf(iface, "send_redirects").map(|v| v.value).unwrap_or(1);
    if all != 0 || own != 0 {
        let help = format!("set net.ipv4.conf.all.send_redirects = 0 and net.ipv4.conf.{iface}.send_redirects = 0");
        // An input that sets no sysctl on the director (a dump, a keepalived.conf) does not say: info.
        if d.sysctls.values.is_empty() {
            let mut diag = cx
                .diag(
                    &META,
                    "the input does not say whether the director sends ICMP redirects; with the kernel's default (1) it may",
                    d.span,
                )
                .label("no director sysctl in the input")
                .help(help)
                .node("director");
            diag.severity = Severity::Info;
            out.push(diag);
            return;
        }
        out.push(
            cx.diag(&META, "the director may send ICMP redirects to clients", d.span)
                .label(format!("send_redirects: all = {all}, {iface} = {own}"))
                .help(help)
                .node("director"),
        );
    }
}
