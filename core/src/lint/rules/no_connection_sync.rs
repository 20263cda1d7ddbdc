use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::NO_CONNECTION_SYNC,
    name: "no-connection-sync",
    severity: Severity::Warning,
    summary: "a director pair without IPVS connection sync drops established connections at failover",
    doc: crate::lint::doc_text!(r#"## What it does
Checks that every director of an active/backup pair runs the IPVS sync
daemon (keepalived's `lvs_sync_daemon IFACE INSTANCE`).

## Why it matters
The backup's IPVS only knows the connections it scheduled. After a failover
the next packet of an established connection arrives at the backup, which
has no entry for it: it is not a SYN, so IPVS does not schedule it, and the
client gets a reset. With the sync daemon the master copies its connection
table to the backup as it goes, and those connections carry on to the same
real server. `lvsdr lab --failover` shows both.

## Example
```text
global_defs { router_id lb1 }     # no lvs_sync_daemon
```

## Fix
```text
global_defs {
    lvs_sync_daemon eth0 VI_1 id 1
}
```
on both directors.

## References
- keepalived.conf(5), `lvs_sync_daemon`
- LVS-HOWTO, "connection synchronization"
"#),
};

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let pair: Vec<&Director> = cx.topology.directors.iter().filter(|d| d.vrrp.is_some()).collect();
    if pair.len() < 2 {
        return;
    }
    for d in pair.iter().filter(|d| d.sync.is_none()) {
        let span = d.vrrp.as_ref().map(|v| v.span).unwrap_or(d.span).or(d.span);
        out.push(
            cx.diag(&META, format!("{} runs no IPVS connection sync: established connections break when the VIP moves", d.name), span)
                .help("add `lvs_sync_daemon eth0 VI_1 id 1` to global_defs on both directors (`sync = { interface = \"eth0\", id = 1 }`)")
                .node(d.name.to_string()),
        );
    }
}
