//! The comparison, area by area: each function adds its findings, with the
//! commands that restore the setup's state, written by `render`'s own helpers.

use super::{Compared, Finding, Kind, Live, LiveAddress, Options};
use crate::model::*;
use crate::names::IfName;
use crate::plan::{self, ServicePlan};
use crate::render::{addr_replace, dest_options, real_server_sysctls, service_arg, service_options, shell_quote};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How the audit names a service, the same for the setup's and the live
/// table's: `tcp 192.168.1.192:80`, `udp [2001:db8::1]:53`, `fwmark 1`, `fwmark 1 ipv6`.
pub fn service_label(protocol: u16, address: IpAddr, port: u16, fwmark: u32) -> String {
    if fwmark != 0 {
        return match address {
            IpAddr::V4(_) => format!("fwmark {fwmark}"),
            IpAddr::V6(_) => format!("fwmark {fwmark} ipv6"),
        };
    }
    let name = Protocol::from_number(protocol)
        .map(|p| p.name().to_string())
        .unwrap_or_else(|| format!("protocol-{protocol}"));
    format!("{name} {}", host_port(address, port))
}

/// How `ipvsadm` names a live service: `-t 192.168.1.192:80`, `-f 1 -6`.
fn live_ipvsadm_id(s: &super::LiveService) -> String {
    if s.fwmark != 0 {
        return match s.address {
            IpAddr::V4(_) => format!("-f {}", s.fwmark),
            IpAddr::V6(_) => format!("-f {} -6", s.fwmark),
        };
    }
    let flag = match Protocol::from_number(s.protocol) {
        Some(Protocol::Udp) => "-u",
        Some(Protocol::Sctp) => "--sctp-service",
        _ => "-t",
    };
    format!("{flag} {}", host_port(s.address, s.port))
}

fn same_service(want: &ServicePlan, got: &super::LiveService) -> bool {
    want.protocol == got.protocol
        && want.address == got.address
        && want.port == got.port
        && want.fwmark == got.fwmark
        && want.address.is_ipv4() == got.address.is_ipv4()
}

fn forward_name(value: u32) -> String {
    match value {
        0 => "masq (-m)".into(),
        1 => "local".into(),
        2 => "tunnel (-i)".into(),
        3 => "route (-g)".into(),
        n => format!("method {n}"),
    }
}

/// The name the setup gives the real server at `address`, or the address.
fn server_name(t: &Topology, address: IpAddr) -> String {
    t.real_servers
        .iter()
        .find(|r| r.address.contains(address) || r.extra_nics.iter().any(|n| n.address.value == address))
        .map(|r| r.name.value.to_string())
        .unwrap_or_else(|| address.to_string())
}

/// The director's IPVS table against the setup's services, field by field.
pub fn ipvs(t: &Topology, director: usize, live: &Live, options: &Options, out: &mut Vec<Finding>, compared: &mut Compared) {
    let services = match t.directors.get(director) {
        Some(d) if !d.own_services.is_empty() => &d.own_services,
        _ => &t.services,
    };
    let mut matched = vec![false; live.ipvs.len()];
    for s in services {
        let want = plan::service_plan(t, s);
        let label = service_label(want.protocol, want.address, want.port, want.fwmark);
        compared.services += 1;
        compared.real_servers += want.destinations.len();
        let id = service_arg(s, false);
        let Some(index) = live.ipvs.iter().position(|g| same_service(&want, g)) else {
            let mut restore = vec![format!("ipvsadm -A {id} {}", service_options(s, false))];
            restore.extend(
                s.destinations
                    .iter()
                    .map(|d| format!("ipvsadm -a {id} {}", dest_options(t, s, d, false))),
            );
            out.push(
                Finding::new(Kind::ServiceMissing, format!("service {label} is missing from the IPVS table"))
                    .service(&label)
                    .restore(restore),
            );
            continue;
        };
        matched[index] = true;
        let one = OneService {
            t,
            s,
            want: &want,
            got: &live.ipvs[index],
            label: &label,
            id: &id,
        };
        one.settings(out);
        one.real_servers(options, out);
    }
    for (g, _) in live.ipvs.iter().zip(&matched).filter(|(_, m)| !**m) {
        let label = service_label(g.protocol, g.address, g.port, g.fwmark);
        out.push(
            Finding::new(
                Kind::ServiceUnexpected,
                format!("service {label} is in the IPVS table, not in the setup"),
            )
            .service(&label)
            .restore([format!("ipvsadm -D {}", live_ipvsadm_id(g))]),
        );
    }
}

/// One service of the setup and the live service that matches it.
struct OneService<'a> {
    t: &'a Topology,
    s: &'a VirtualService,
    want: &'a ServicePlan,
    got: &'a super::LiveService,
    /// How findings name it: `tcp 192.168.1.192:80`.
    label: &'a str,
    /// How ipvsadm names it: `-t 192.168.1.192:80`.
    id: &'a str,
}

impl OneService<'_> {
    /// Scheduler, flags and persistence; one `ipvsadm -E` restores them.
    fn settings(&self, out: &mut Vec<Finding>) {
        let (want, got, label) = (self.want, self.got, self.label);
        let edit = format!("ipvsadm -E {} {}", self.id, service_options(self.s, false));
        let mut setting = |key: &str, expected: String, found: String| {
            out.push(
                Finding::new(
                    Kind::ServiceSetting,
                    format!("service {label}: {key} is {found}, the setup says {expected}"),
                )
                .service(label)
                .key(key)
                .values(&expected, &found)
                .restore([edit.clone()]),
            );
        };
        if got.scheduler != want.scheduler {
            setting("scheduler", want.scheduler.clone(), got.scheduler.clone());
        }
        if got.flags != want.flags {
            setting("flags", format!("{:#x}", want.flags), format!("{:#x}", got.flags));
        }
        if got.timeout != want.timeout {
            setting("persistence timeout", want.timeout.to_string(), got.timeout.to_string());
        }
        if want.flags & 0x1 != 0 && got.netmask != want.netmask {
            setting("persistence netmask", want.netmask.to_string(), got.netmask.to_string());
        }
    }

    /// Each real server of the setup against the live ones, then the live
    /// ones the setup does not have.
    fn real_servers(&self, options: &Options, out: &mut Vec<Finding>) {
        let mut dest_matched = vec![false; self.got.dests.len()];
        for (w, d) in self.want.destinations.iter().zip(&self.s.destinations) {
            let line = |verb: &str| format!("ipvsadm -{verb} {} {}", self.id, dest_options(self.t, self.s, d, false));
            let Some(k) = self.got.dests.iter().position(|g| g.address == w.address) else {
                out.push(
                    Finding::new(
                        Kind::RealServerMissing,
                        format!("service {}: real server {} ({}) is missing", self.label, w.server, w.address),
                    )
                    .service(self.label)
                    .real_server(w.server.to_string())
                    .restore([line("a")]),
                );
                continue;
            };
            dest_matched[k] = true;
            // keepalived's checkers set weight 0 on a failing server: a note, not drift.
            let checked = options.keepalived || d.health_check.is_some();
            self.real_server(w, &self.got.dests[k], checked, &line, out);
        }
        for (g, _) in self.got.dests.iter().zip(&dest_matched).filter(|(_, m)| !**m) {
            let server = server_name(self.t, g.address);
            out.push(
                Finding::new(
                    Kind::RealServerUnexpected,
                    format!(
                        "service {}: real server {server} ({}) is not in the setup",
                        self.label,
                        host_port(g.address, g.port)
                    ),
                )
                .service(self.label)
                .real_server(server)
                .restore([format!("ipvsadm -d {} -r {}", self.id, host_port(g.address, g.port))]),
            );
        }
    }

    /// One real server's method, port, weight and thresholds; `line("e")`
    /// and `line("a")` are its `ipvsadm -e` and `-a` lines.
    fn real_server(&self, w: &plan::DestPlan, g: &super::LiveDest, checked: bool, line: &dyn Fn(&str) -> String, out: &mut Vec<Finding>) {
        let (label, server) = (self.label, w.server.to_string());
        if g.weight == 0 && w.weight != 0 && checked {
            out.push(
                Finding::new(
                    Kind::RealServerQuiesced,
                    format!(
                        "service {label}: real server {server} has weight 0 (the setup says {}): quiesced by keepalived's health checker",
                        w.weight
                    ),
                )
                .service(label)
                .real_server(&server)
                .key("weight")
                .values(w.weight, g.weight),
            );
        }
        let fields = [
            ("forwarding method", forward_name(w.forward), forward_name(g.forward)),
            ("port", w.port.to_string(), g.port.to_string()),
            ("weight", w.weight.to_string(), g.weight.to_string()),
            ("upper threshold", w.upper_threshold.to_string(), g.upper_threshold.to_string()),
            ("lower threshold", w.lower_threshold.to_string(), g.lower_threshold.to_string()),
        ];
        for (key, expected, found) in fields {
            if expected == found || (key == "weight" && g.weight == 0 && checked) {
                continue;
            }
            // The port is part of the real server's identity: delete and add it again.
            let restore = if key == "port" {
                vec![format!("ipvsadm -d {} -r {}", self.id, host_port(g.address, g.port)), line("a")]
            } else {
                vec![line("e")]
            };
            out.push(
                Finding::new(
                    Kind::RealServerSetting,
                    format!("service {label}: real server {server}: {key} is {found}, the setup says {expected}"),
                )
                .service(label)
                .real_server(&server)
                .key(key)
                .values(expected, found)
                .restore(restore),
            );
        }
    }
}

/// One address the setup puts on `device`, against the live addresses.
fn address(live: &[LiveAddress], address: IpAddr, prefix: u8, device: &str, nodad: bool, director: bool, out: &mut Vec<Finding>) {
    let add = addr_replace(address, prefix, device, director);
    let here: Vec<&LiveAddress> = live.iter().filter(|a| a.address == address).collect();
    let key = format!("{address}/{prefix} on {device}");
    let Some(a) = here.iter().find(|a| a.device == device) else {
        let elsewhere: Vec<String> = here.iter().map(|a| format!("{}/{} on {}", a.address, a.prefix, a.device)).collect();
        let found = if elsewhere.is_empty() {
            "missing".to_string()
        } else {
            elsewhere.join(", ")
        };
        let mut restore: Vec<String> = here
            .iter()
            .map(|a| format!("ip addr del {}/{} dev {}", a.address, a.prefix, shell_quote(&a.device)))
            .collect();
        restore.push(add);
        let message = if elsewhere.is_empty() {
            format!("VIP {address}/{prefix} is not on {device}, nor anywhere else")
        } else {
            format!("VIP {address}/{prefix} is not on {device}: it is {found}")
        };
        out.push(
            Finding::new(Kind::VipMissing, message)
                .key(key)
                .values(format!("{address}/{prefix} on {device}"), found)
                .restore(restore),
        );
        return;
    };
    if a.prefix != prefix {
        out.push(
            Finding::new(
                Kind::VipSetting,
                format!("VIP {address} on {device} has prefix /{}, the setup says /{prefix}", a.prefix),
            )
            .key(key.clone())
            .values(prefix, a.prefix)
            .restore([format!("ip addr del {address}/{} dev {device}", a.prefix), add.clone()]),
        );
    }
    if nodad && address.is_ipv6() && !a.nodad {
        out.push(
            Finding::new(
                Kind::VipSetting,
                format!("VIP {address} on {device} goes through duplicate address detection (no `nodad`)"),
            )
            .key(key)
            .values("nodad", "dad")
            .restore([format!("ip addr del {address}/{} dev {device}", a.prefix), add]),
        );
    }
}

/// A director's VIPs: on its NIC, or where its VRRP role says.
pub fn director_vips(t: &Topology, i: usize, live: &Live, out: &mut Vec<Finding>, compared: &mut Compared) {
    let Some(d) = t.directors.get(i) else { return };
    let device = d.interface.value.device();
    // A pair's VIPs: the director's own, and those its VRRP instance carries.
    let mut vips: Vec<(IpAddr, u8, bool)> = d.vips.iter().map(|v| (v.address.value, v.prefix.value, v.dad.is_none())).collect();
    let first = t.directors.first().map(|f| &f.vips);
    if let Some(vrrp) = &d.vrrp {
        for v in &vrrp.vips {
            if !vips.iter().any(|(a, _, _)| *a == v.value) {
                let known = first.and_then(|f| f.iter().find(|x| x.address.value == v.value));
                vips.push((
                    v.value,
                    known.map(|k| k.prefix.value).unwrap_or(Family::of(&v.value).host_prefix()),
                    true,
                ));
            }
        }
    } else if i > 0 && vips.is_empty() {
        // A second director without VRRP carries no VIP in the setup.
        return;
    }
    compared.addresses += vips.len();
    match &d.vrrp {
        None => {
            for (a, p, nodad) in vips {
                address(&live.addresses, a, p, &device, nodad, true, out);
            }
        }
        Some(vrrp) => {
            let role = if vrrp.master.value { "MASTER" } else { "BACKUP" };
            let held: Vec<IpAddr> = vips
                .iter()
                .map(|v| v.0)
                .filter(|a| live.addresses.iter().any(|l| l.address == *a))
                .collect();
            if vrrp.master.value {
                for (a, p, _) in &vips {
                    if held.contains(a) {
                        // keepalived adds it: where and with which prefix still matter.
                        address(&live.addresses, *a, *p, &device, false, true, out);
                    } else {
                        out.push(
                            Finding::new(
                                Kind::VrrpState,
                                format!(
                                    "VIP {a} is not on this director, whose VRRP state in the setup is {role} (instance {}): keepalived is not master here",
                                    vrrp.instance.value
                                ),
                            )
                            .key(a.to_string())
                            .values("held", "not held"),
                        );
                    }
                }
            } else {
                for a in held {
                    out.push(
                        Finding::new(
                            Kind::VrrpState,
                            format!(
                                "this director holds VIP {a}, and its VRRP state in the setup is {role} (instance {}): the master is down, or both hold it (split brain)",
                                vrrp.instance.value
                            ),
                        )
                        .key(a.to_string())
                        .values("not held", "held"),
                    );
                }
            }
        }
    }
}

/// A real server's VIPs on `lo`; for a tunnel (IPIP) real server, `tunl0`
/// will do too, where the packets arrive decapsulated.
pub fn real_server_vips(t: &Topology, i: usize, live: &Live, out: &mut Vec<Finding>, compared: &mut Compared) {
    let Some(rs) = t.real_servers.get(i) else { return };
    let tunnel = t
        .services
        .iter()
        .flat_map(|s| &s.destinations)
        .any(|d| d.server.value == rs.name.value && d.forward.value == Forward::Tunnel);
    for v in &rs.lo {
        compared.addresses += 1;
        let (a, p) = (v.value.address, v.value.prefix);
        if tunnel
            && live
                .addresses
                .iter()
                .any(|l| l.address == a && l.device == "tunl0" && l.prefix == p)
        {
            continue;
        }
        address(&live.addresses, a, p, "lo", true, false, out);
    }
}

/// The addresses on a director's VIP interface, or on a real server's `lo`,
/// that the setup does not have: the host's own, any director's VIPs (a
/// pair's backup holding them is [`Kind::VrrpState`]'s), the real server's
/// VIPs, IPv6 link-local and loopback addresses are expected.
pub fn unexpected_addresses(t: &Topology, host: super::HostRef, live: &Live, out: &mut Vec<Finding>) {
    let (name, device, role_text) = match host {
        super::HostRef::Director(i) => match t.directors.get(i) {
            Some(d) if !d.placeholder => (d.name.to_string(), d.interface.value.device().to_string(), "answers ARP for it"),
            _ => return,
        },
        super::HostRef::RealServer(i) => match t.real_servers.get(i) {
            Some(rs) => (rs.name.value.to_string(), "lo".to_string(), "takes its packets as its own"),
            None => return,
        },
    };
    let mut known = super::own_addresses(t, host);
    for d in &t.directors {
        known.extend(d.vips.iter().map(|v| v.address.value));
        known.extend(d.vrrp.iter().flat_map(|v| v.vips.iter().map(|a| a.value)));
    }
    if let super::HostRef::RealServer(i) = host {
        known.extend(t.real_servers[i].lo.iter().map(|v| v.value.address));
    }
    // A setup read from a keepalived.conf or a dump does not know the host's
    // own address (lvsdr assumed one, DR103): then only the addresses of one
    // host (/32, /128), as VIPs are added, are judged, not the subnet's.
    let own_given = match host {
        super::HostRef::Director(i) => t.directors[i].address.iter().all(|a| !a.span.is_none()),
        super::HostRef::RealServer(i) => t.real_servers[i].address.iter().all(|a| !a.span.is_none()),
    };
    let expected = |a: &LiveAddress| {
        known.contains(&a.address)
            || a.address.is_loopback()
            || matches!(a.address, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
            || (!own_given && a.prefix != Family::of(&a.address).host_prefix())
    };
    for a in live.addresses.iter().filter(|a| a.device == device && !expected(a)) {
        let shown = format!("{}/{}", a.address, a.prefix);
        out.push(
            Finding::new(
                Kind::AddressUnexpected,
                format!("{shown} is on {device} and not in the setup: {name} {role_text}"),
            )
            .key(format!("{shown} on {device}"))
            .values("absent", format!("{shown} on {device}"))
            .restore([format!("ip addr del {} dev {}", shell_quote(&shown), shell_quote(&a.device))]),
        );
    }
}

/// One sysctl comparison the setup asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysctlCheck {
    /// The key itself.
    Exact { key: String, value: i64 },
    /// The value the kernel uses on `iface` for a setting it reads as
    /// `max(all, iface)`: `arp_ignore`, `arp_announce`, `rp_filter`.
    Effective {
        name: String,
        iface: String,
        all: Option<i64>,
        own: Option<i64>,
    },
}

impl SysctlCheck {
    /// The keys it reads.
    pub fn keys(&self) -> Vec<String> {
        match self {
            SysctlCheck::Exact { key, .. } => vec![key.clone()],
            SysctlCheck::Effective { name, iface, .. } => {
                vec![format!("net.ipv4.conf.all.{name}"), format!("net.ipv4.conf.{iface}.{name}")]
            }
        }
    }
}

const MAX_OF_ALL_AND_IFACE: [&str; 3] = ["arp_ignore", "arp_announce", "rp_filter"];

/// The sysctl comparisons for a host: its setup's keys (for a real server
/// with an IPv4 VIP, with the ARP settings `render` raises), the `max(all,
/// iface)` ones folded per interface (never `lo`, where they do nothing).
pub fn sysctl_checks(t: &Topology, host: super::HostRef) -> Vec<SysctlCheck> {
    let (values, nic): (Vec<(String, i64)>, IfName) = match host {
        super::HostRef::Director(i) => match t.directors.get(i) {
            Some(d) => (
                d.sysctls.values.iter().map(|(k, v)| (k.to_string(), v.value)).collect(),
                d.interface.value.device(),
            ),
            None => return vec![],
        },
        super::HostRef::RealServer(i) => match t.real_servers.get(i) {
            Some(rs) if rs.lo.iter().any(|v| v.value.address.is_ipv4()) => (
                real_server_sysctls(rs).into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                rs.interface.value.device(),
            ),
            Some(rs) => (
                rs.sysctls.values.iter().map(|(k, v)| (k.to_string(), v.value)).collect(),
                rs.interface.value.device(),
            ),
            None => return vec![],
        },
    };
    let get = |key: String| values.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let mut checks = Vec::new();
    let mut folded: Vec<(String, String)> = Vec::new();
    for (key, value) in &values {
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["net", "ipv4", "conf", iface, name] if MAX_OF_ALL_AND_IFACE.contains(name) && *iface != "default" => {
                let mut ifaces = vec![nic.to_string()];
                if *iface != "all" {
                    ifaces.push(iface.to_string());
                }
                for i in ifaces {
                    if i != "lo" && !folded.contains(&(name.to_string(), i.clone())) {
                        folded.push((name.to_string(), i));
                    }
                }
            }
            _ => checks.push(SysctlCheck::Exact {
                key: key.clone(),
                value: *value,
            }),
        }
    }
    for (name, iface) in folded {
        checks.push(SysctlCheck::Effective {
            all: get(format!("net.ipv4.conf.all.{name}")),
            own: get(format!("net.ipv4.conf.{iface}.{name}")),
            name,
            iface,
        });
    }
    checks
}

/// The sysctls the setup asks for, as the kernel computes them.
pub fn sysctls(t: &Topology, host: super::HostRef, live: &Live, out: &mut Vec<Finding>, compared: &mut Compared) {
    let read = |k: &str| live.sysctls.get(k).copied();
    let shown = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "absent".into());
    // Keys already named by a finding: `all` is part of every interface's check.
    let mut reported: Vec<String> = Vec::new();
    for check in sysctl_checks(t, host) {
        compared.sysctls += 1;
        match check {
            SysctlCheck::Exact { key, value } => {
                let got = read(&key);
                if got != Some(value) {
                    out.push(
                        Finding::new(Kind::Sysctl, format!("{key} is {}, the setup says {value}", shown(got)))
                            .key(&key)
                            .values(value, shown(got))
                            .restore([format!("sysctl -w {key}={value}")]),
                    );
                }
            }
            SysctlCheck::Effective { name, iface, all, own } => {
                let all_key = format!("net.ipv4.conf.all.{name}");
                let own_key = format!("net.ipv4.conf.{iface}.{name}");
                let expected = all.unwrap_or(0).max(own.unwrap_or(0));
                let (live_all, live_own) = (read(&all_key), read(&own_key));
                let effective = match (live_all, live_own) {
                    (Some(a), Some(o)) => Some(a.max(o)),
                    _ => None,
                };
                if effective == Some(expected) {
                    // The interface gets what the setup asks; a key the setup
                    // sets may still differ (`all`, which every other interface uses).
                    for (key, set, got) in [(&all_key, all, live_all), (&own_key, own, live_own)] {
                        match set {
                            Some(v) if got != Some(v) && !reported.contains(key) => {
                                reported.push(key.clone());
                                out.push(
                                    Finding::new(
                                        Kind::Sysctl,
                                        format!(
                                            "{key} is {}, the setup says {v} ({name} on {iface} is still {expected}, the larger of {all_key} and {own_key}; other interfaces get {})",
                                            shown(got),
                                            shown(got)
                                        ),
                                    )
                                    .key(key.clone())
                                    .values(v, shown(got))
                                    .restore([format!("sysctl -w {key}={v}")]),
                                );
                            }
                            _ => {}
                        }
                    }
                    continue;
                }
                reported.extend([all_key.clone(), own_key.clone()]);
                let mut restore = Vec::new();
                for (key, set, got) in [(&all_key, all, live_all), (&own_key, own, live_own)] {
                    match set {
                        Some(v) if got != Some(v) => restore.push(format!("sysctl -w {key}={v}")),
                        None if got.unwrap_or(0) > expected => restore.push(format!("sysctl -w {key}={expected}")),
                        _ => {}
                    }
                }
                out.push(
                    Finding::new(
                        Kind::Sysctl,
                        format!(
                            "{name} on {iface} is {} (the kernel uses the larger of {all_key}={} and {own_key}={}), the setup says {expected}",
                            shown(effective),
                            shown(live_all),
                            shown(live_own)
                        ),
                    )
                    .key(format!("{name} on {iface}"))
                    .values(expected, shown(effective))
                    .restore(restore),
                );
            }
        }
    }
}

/// A listener for every port of every service the real server is in.
pub fn listeners(t: &Topology, i: usize, live: &Live, out: &mut Vec<Finding>, compared: &mut Compared) {
    let Some(rs) = t.real_servers.get(i) else { return };
    let mut wanted: Vec<(Protocol, IpAddr, u16, String)> = Vec::new();
    for s in t
        .services
        .iter()
        .filter(|s| s.destinations.iter().any(|d| d.server.value == rs.name.value))
    {
        let label = t.label(s);
        match s.key.value {
            ServiceKey::Port { protocol, port } if port != 0 => {
                if let Some(v) = &s.vip {
                    wanted.push((protocol, v.value, port, label));
                }
            }
            ServiceKey::Port { .. } => {}
            ServiceKey::Fwmark(_) => {
                for m in t.marks_of(s) {
                    let protocol = m.protocol.as_ref().map(|p| p.value).unwrap_or(Protocol::Tcp);
                    for vip in t.service_vips(s).into_iter().filter(|v| m.destination.contains(*v)) {
                        for port in m.ports.iter() {
                            wanted.push((protocol, vip, *port, label.clone()));
                        }
                    }
                }
            }
        }
    }
    wanted.sort_by_key(|a| (a.0.number(), a.1, a.2));
    wanted.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1 && a.2 == b.2);
    for (protocol, vip, port, label) in wanted {
        compared.listeners += 1;
        let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let heard = live.listeners.iter().any(|l| {
            l.protocol == protocol.number()
                && l.port == port
                && (l.address == vip || l.address == any6 || (vip.is_ipv4() && l.address == any4))
        });
        if !heard {
            out.push(
                Finding::new(
                    Kind::ListenerMissing,
                    format!(
                        "nothing listens on {} {} (service {label}): its share of connections is refused",
                        protocol.name(),
                        host_port(vip, port)
                    ),
                )
                .service(service_label(protocol.number(), vip, port, 0))
                .key(format!("{}/{port}", protocol.name()))
                .values("listening", "nothing"),
            );
        }
    }
}

/// A keepalived process with the setup's configuration.
pub fn keepalived(options: &Options, live: &Live, out: &mut Vec<Finding>) {
    if live.keepalived.is_empty() {
        out.push(
            Finding::new(Kind::KeepalivedNotRunning, "no keepalived process runs in this network namespace")
                .values("running", "not running")
                .restore(["systemctl start keepalived".to_string()]),
        );
        return;
    }
    if options.keepalived_configs.is_empty() {
        return;
    }
    let runs_ours = live.keepalived.iter().any(|k| {
        options
            .keepalived_configs
            .iter()
            .any(|c| Some(c) == k.config_resolved.as_ref() || *c == k.config)
    });
    if !runs_ours {
        let running: Vec<String> = live.keepalived.iter().map(|k| format!("{} (pid {})", k.config, k.pid)).collect();
        out.push(
            Finding::new(
                Kind::KeepalivedNotRunning,
                format!(
                    "keepalived runs with {}, not with {}",
                    running.join(", "),
                    options.keepalived_configs.join(" or ")
                ),
            )
            .key("config")
            .values(options.keepalived_configs.join(" or "), running.join(", ")),
        );
    }
}
