//! The kinds of drift `lvsdr audit` reports, each with its code (DR2xx) and
//! documentation in the catalogue: `lvsdr rules` lists them, `lvsdr explain`
//! prints them, and the Prometheus output has one gauge per kind.

use crate::codes::{doc_text, RuleMeta};
use crate::diagnostic::Severity;
use serde::Serialize;

/// Where a finding is: the human output groups findings by area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    Ipvs,
    Addresses,
    Sysctls,
    Listeners,
    Keepalived,
}

impl Area {
    pub fn name(self) -> &'static str {
        match self {
            Area::Ipvs => "ipvs",
            Area::Addresses => "addresses",
            Area::Sysctls => "sysctls",
            Area::Listeners => "listeners",
            Area::Keepalived => "keepalived",
        }
    }
}

macro_rules! kinds {
    ($($variant:ident = $index:literal, $code:path, $name:literal, $severity:ident, $area:ident, $summary:literal, $doc:literal;)*) => {
        /// A kind of drift between the live machine and its setup.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Kind {
            $($variant = $index,)*
        }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];
            pub fn meta(self) -> &'static RuleMeta {
                &CATALOGUE[self as usize]
            }
            pub fn area(self) -> Area {
                match self {
                    $(Kind::$variant => Area::$area,)*
                }
            }
        }

        /// The audit's codes, in the order of [`Kind`].
        pub static CATALOGUE: &[RuleMeta] = &[
            $(RuleMeta {
                code: $code,
                name: $name,
                severity: Severity::$severity,
                summary: $summary,
                doc: doc_text!($doc),
            },)*
        ];
    };
}

impl Kind {
    pub fn code(self) -> &'static str {
        self.meta().code
    }
    pub fn severity(self) -> Severity {
        self.meta().severity
    }
    /// The kind as JSON names it: `real_server_setting`.
    pub fn name(self) -> String {
        self.meta().name.trim_start_matches("audit-").replace('-', "_")
    }
    /// The Prometheus metric of this kind: `lvsdr_audit_real_server_setting`.
    pub fn metric(self) -> String {
        format!("lvsdr_audit_{}", self.name())
    }
}

/// The entry of an audit code (`DR203`) or name (`audit-real-server-setting`).
pub fn meta(code: &str) -> Option<&'static RuleMeta> {
    CATALOGUE.iter().find(|m| m.code.eq_ignore_ascii_case(code) || m.name == code)
}

kinds! {
    ServiceMissing = 0, crate::codes::code::AUDIT_SERVICE_MISSING, "audit-service-missing", Error, Ipvs,
        "a virtual service of the setup is not in the director's IPVS table",
        "## What it does\nReports a virtual service the setup has and the live IPVS table has not (`ipvsadm -L -n` does not list it).\n\n## Why it matters\nClients connecting to the VIP and port get no answer from IPVS: the director itself answers (a RST), or drops the packets.\n\n## Example\nSomeone ran `ipvsadm -D -t 192.168.1.192:25`.\n\n## Fix\nAdd it again as the setup renders it; the finding carries the lines, e.g.\n```sh\nipvsadm -A -t 192.168.1.192:25 -s rr\nipvsadm -a -t 192.168.1.192:25 -r 192.168.1.213:25 -g -w 3\n```\nwith keepalived, reload it (`systemctl reload keepalived`) instead.\n\n## References\n- `ipvsadm(8)`, `-A`\n- `lvsdr render FILE --artifact director`\n";
    ServiceUnexpected = 1, crate::codes::code::AUDIT_SERVICE_UNEXPECTED, "audit-service-unexpected", Error, Ipvs,
        "the director's IPVS table has a virtual service the setup does not",
        "## What it does\nReports a virtual service in the live IPVS table that the setup does not have.\n\n## Why it matters\nIt takes traffic nobody reviewed: a test left behind, a hand-made service, or a setup file that is out of date.\n\n## Example\n`ipvsadm -A -t 192.168.1.192:8080 -s rr` typed by hand.\n\n## Fix\nDelete it (`ipvsadm -D -t 192.168.1.192:8080`), or add it to the setup.\n\n## References\n- `ipvsadm(8)`, `-D`\n";
    ServiceSetting = 2, crate::codes::code::AUDIT_SERVICE_SETTING, "audit-service-setting", Error, Ipvs,
        "a virtual service's scheduler, flags, persistence or netmask differs from the setup",
        "## What it does\nCompares each service's settings with the setup, field by field: scheduler (`-s`), scheduler flags and one-packet (`-b`, `-o`), persistence timeout (`-p`) and netmask (`-M`).\n\n## Why it matters\nThe traffic is split differently from what was reviewed and predicted: `lvsdr predict` and the lab no longer describe the machine.\n\n## Example\n`ipvsadm -E -t 192.168.1.192:80 -s wlc` on a service the setup schedules with `rr`.\n\n## Fix\nEdit the service back (`ipvsadm -E`, the line is in the finding).\n\n## References\n- `ipvsadm(8)`, `-E`\n";
    RealServerMissing = 3, crate::codes::code::AUDIT_REAL_SERVER_MISSING, "audit-real-server-missing", Error, Ipvs,
        "a real server of a service is not in the live table",
        "## What it does\nReports a real server that the setup gives a service and the live table does not list.\n\n## Why it matters\nThe other real servers carry its share. Under keepalived a checker removes a real server that fails its health check (unless `inhibit_on_failure`): the server is down.\n\n## Example\n`ipvsadm -d -t 192.168.1.192:80 -r 192.168.1.213:80`.\n\n## Fix\nAdd it back (`ipvsadm -a`, the line is in the finding), or find out why keepalived's checker removed it.\n\n## References\n- `ipvsadm(8)`, `-a`\n";
    RealServerUnexpected = 4, crate::codes::code::AUDIT_REAL_SERVER_UNEXPECTED, "audit-real-server-unexpected", Error, Ipvs,
        "a service has a real server the setup does not give it",
        "## What it does\nReports a real server in a live service that the setup does not list for it.\n\n## Why it matters\nConnections go to a machine nobody set up as a real server of this service: without the VIP on `lo` and the ARP sysctls, it drops them or answers ARP for the VIP.\n\n## Example\n`ipvsadm -a -t 192.168.1.192:80 -r 192.168.1.50:80 -g`.\n\n## Fix\nDelete it (`ipvsadm -d`), or add it to the setup.\n\n## References\n- `ipvsadm(8)`, `-d`\n";
    RealServerSetting = 5, crate::codes::code::AUDIT_REAL_SERVER_SETTING, "audit-real-server-setting", Error, Ipvs,
        "a real server's method, port, weight or thresholds differ from the setup",
        "## What it does\nCompares each real server of each service with the setup: forwarding method (`-g`, `-i`, `-m`), port, weight (`-w`), upper and lower connection thresholds (`-x`, `-y`). Both values are named.\n\n## Why it matters\nA changed weight shifts the split; a changed method breaks DR (`-m` needs the real servers to route back through the director).\n\n## Example\n`ipvsadm -e -t 192.168.1.192:80 -r 192.168.1.213:80 -g -w 1` where the setup says weight 3.\n\n## Fix\nEdit it back (`ipvsadm -e`, the line is in the finding).\n\n## References\n- `ipvsadm(8)`, `-e`\n";
    RealServerQuiesced = 6, crate::codes::code::AUDIT_REAL_SERVER_QUIESCED, "audit-real-server-quiesced", Info, Ipvs,
        "a real server has weight 0, as keepalived's health checker sets it: quiesced, not drift",
        "## What it does\nNotes a real server whose live weight is 0 where the setup gives it a weight, when a keepalived health checker watches it (the setup comes from keepalived.conf, or names a checker).\n\n## Why it matters\nThat is how keepalived takes a failing server out of rotation with `inhibit_on_failure`: new connections avoid it and open ones finish. It is the checker at work, not drift; but the server is failing its check.\n\n## Example\nkeepalived's `TCP_CHECK` on port 80 of rs1 fails.\n\n## Fix\nNothing in IPVS: look at the real server (its listener, its health), and keepalived's log.\n\n## References\n- `keepalived.conf(5)`, `inhibit_on_failure`\n";
    VipMissing = 7, crate::codes::code::AUDIT_VIP_MISSING, "audit-vip-missing", Error, Addresses,
        "a VIP is not on the interface the setup puts it on",
        "## What it does\nReports a VIP that is not on its interface: the director's NIC, or a real server's `lo`. When the address is on another interface, the finding says which.\n\n## Why it matters\nOn the director, nobody answers ARP for the VIP and clients cannot reach the service. On a real server, the kernel drops the forwarded packets (`IpInAddrErrors`): its share of connections time out.\n\n## Example\n`ip addr del 192.168.1.192/32 dev lo` on a real server.\n\n## Fix\nPut it back (`ip addr replace VIP/32 dev lo`, the line is in the finding), and make it persistent in the system's network configuration.\n\n## References\n- `ip-address(8)`\n";
    VipSetting = 8, crate::codes::code::AUDIT_VIP_SETTING, "audit-vip-setting", Error, Addresses,
        "a VIP is on its interface with another prefix, or an IPv6 VIP without `nodad`",
        "## What it does\nReports a VIP that is where the setup puts it but with another prefix length, or, for IPv6, without the `nodad` flag.\n\n## Why it matters\nA real server with the VIP on `lo` as a /24 takes the whole subnet as local and cannot reach its neighbours. An IPv6 VIP with duplicate address detection stays tentative, or fails, because other hosts hold it too.\n\n## Example\n`ip addr add 192.168.1.192/24 dev lo`.\n\n## Fix\nReplace it (`ip addr del …; ip addr replace VIP/32 dev lo`, the lines are in the finding).\n\n## References\n- `ip-address(8)`, `nodad`\n";
    Sysctl = 9, crate::codes::code::AUDIT_SYSCTL, "audit-sysctl", Error, Sysctls,
        "a sysctl the setup asks for has another value, as the kernel computes it",
        "## What it does\nReads every sysctl the setup sets. For `arp_ignore`, `arp_announce` and `rp_filter` it compares the value the kernel uses on the interface, `max(all, IFACE)`, and names both keys; for the others, the key itself.\n\n## Why it matters\nA real server whose effective `arp_ignore` is 0 answers ARP for the VIP: clients then bypass the director. A value set with `echo` and never written to `/etc/sysctl.d` is lost at the next reboot.\n\n## Example\n`sysctl -w net.ipv4.conf.all.arp_ignore=0` on a real server whose NIC has 0 too.\n\n## Fix\nSet it again (`sysctl -w KEY=VALUE`, the line is in the finding), and write it to `/etc/sysctl.d` (`lvsdr render FILE --artifact sysctl`).\n\n## References\n- kernel `Documentation/networking/ip-sysctl.rst`\n";
    ListenerMissing = 10, crate::codes::code::AUDIT_LISTENER_MISSING, "audit-listener-missing", Error, Listeners,
        "a real server has nothing listening on a port it serves",
        "## What it does\nLooks for a listening socket (TCP, UDP or SCTP) on each port of each service the real server is in, bound to the VIP or to any address.\n\n## Why it matters\nThe director keeps sending this server its share of connections, and the server answers each with a RST from the VIP: `connection refused` for that share (the seed's missing mail server on port 25).\n\n## Example\nThe mail server is stopped on rs2.\n\n## Fix\nStart the service on the port, bound to the VIP or to all addresses.\n\n## References\n- `ss -ltn`, `ss -lun`; SCTP's `/proc/net/sctp/eps`\n";
    KeepalivedNotRunning = 11, crate::codes::code::AUDIT_KEEPALIVED_NOT_RUNNING, "audit-keepalived-not-running", Error, Keepalived,
        "the setup needs keepalived, and no keepalived runs with its configuration",
        "## What it does\nLooks for a keepalived process in this network namespace, and when the setup was read from a keepalived.conf, one started with that file (`-f`, `--use-file`).\n\n## Why it matters\nWithout it nothing checks the real servers' health, nothing moves the VIPs on failover, and nothing restores the table after a reboot.\n\n## Example\n`systemctl stop keepalived`.\n\n## Fix\n`systemctl start keepalived`, with the configuration the setup names.\n\n## References\n- `keepalived(8)`\n";
    VrrpState = 12, crate::codes::code::AUDIT_VRRP_STATE, "audit-vrrp-state", Error, Keepalived,
        "a director of a VRRP pair holds the VIPs when its role says it should not, or not when it should",
        "## What it does\nCompares the VIPs this director holds with its VRRP role in the setup: the master holds every VIP of its instance, the backup none. A backup that holds no VIP is as it should be.\n\n## Why it matters\nA master without the VIPs means keepalived lost the election or is not running: the backup serves, or nobody. A backup holding the VIPs has failed over (the master is down) or both hold them (split brain, the clients' ARP entries flap between the two).\n\n## Example\nThe master's keepalived was killed: the backup took the VIP.\n\n## Fix\nBring the master's keepalived back, check that both see each other's adverts (`tcpdump -i IFACE vrrp`).\n\n## References\n- `keepalived.conf(5)`, `vrrp_instance`\n";
    AddressUnexpected = 13, crate::codes::code::AUDIT_ADDRESS_UNEXPECTED, "audit-address-unexpected", Warning, Addresses,
        "an address the setup does not have is on the director's VIP interface, or on a real server's `lo`",
        "## What it does\nLists the addresses on the interface that carries a director's VIPs, and on a real server's `lo`, that the setup does not have: not the host's own address, not a VIP of any director of the setup, not a VIP the real server serves. IPv6 link-local addresses and loopback (`127.0.0.0/8`, `::1`) are left out.\n\n## Why it matters\nMost often it is the VIP of a service that was taken out of the setup and not off the machine. The director still answers ARP for it, and a real server still takes its packets as its own: when the address is given to something else, its clients reach the old director, or a real server answers them. On the director's NIC it may also be a second address someone added by hand, which the setup should then carry.\n\n## Example\n`ip addr add 192.168.1.199/32 dev eth0` on the director, where the setup's VIPs are 192.168.1.192 and .193.\n\n## Fix\nRemove it (`ip addr del ADDRESS/PREFIX dev DEVICE`, the line is in the finding), or add it to the setup.\n\n## References\n- `ip-address(8)`\n";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_in_order() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
            assert_eq!(k.code(), format!("DR{}", 200 + i));
        }
        assert!(meta("dr203").is_some());
        assert!(meta("audit-sysctl").is_some());
        assert_eq!(Kind::RealServerSetting.metric(), "lvsdr_audit_real_server_setting");
        for k in Kind::ALL {
            let json = serde_json::to_value(k).expect("a kind serialises");
            assert_eq!(json.as_str(), Some(k.name().as_str()), "JSON and Prometheus name a kind alike");
        }
    }

    #[cfg(feature = "docs")]
    #[test]
    fn every_kind_has_a_complete_doc_with_its_fix() {
        for k in Kind::ALL {
            let m = k.meta();
            for part in ["## What it does", "## Why it matters", "## Example", "## Fix", "## References"] {
                assert!(m.doc.contains(part), "{} doc lacks {part}", m.code);
            }
            assert!(crate::lint::doc(m.code).is_some(), "lvsdr explain {} finds it", m.code);
        }
    }
}
