//! `lvsdr audit`: a live machine against its setup.
//!
//! The harness reads the live state of one network namespace ([`Live`]:
//! addresses, sysctls, the IPVS table, listeners, keepalived processes), and
//! [`audit`] compares it with the host's part of the [`Topology`], as a pure
//! function on plain data, so that the playground's in-tab kernel can run it
//! too. What to read is asked first ([`wants`]): the sysctl keys the
//! comparison needs, and whether the host is a director.
//!
//! - [`kinds`]: the kinds of drift and their codes (DR2xx) in the catalogue.
//! - [`compare`]: the comparison, area by area.
//! - [`output`]: the human, JSON and Prometheus text forms of an [`Audit`].

pub mod compare;
pub mod kinds;
pub mod output;

pub use kinds::{Area, Kind};

use crate::diagnostic::Severity;
use crate::model::Topology;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// An address as `ip addr show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveAddress {
    pub device: String,
    pub address: IpAddr,
    pub prefix: u8,
    /// `IFA_F_NODAD`: added without duplicate address detection.
    #[serde(default)]
    pub nodad: bool,
}

/// A real server of a live IPVS service (`ipvsadm -L -n`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveDest {
    pub address: IpAddr,
    pub port: u16,
    /// IP_VS_CONN_F_* forwarding method: 0 masq, 1 local, 2 tunnel, 3 route (DR).
    pub forward: u32,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
}

/// A live IPVS virtual service, with the fields the kernel reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveService {
    /// IANA protocol number; 0 for a fwmark service.
    pub protocol: u16,
    /// The VIP; the unspecified address of the family for a fwmark service.
    pub address: IpAddr,
    pub port: u16,
    pub fwmark: u32,
    pub scheduler: String,
    /// The service's flags without the kernel's own `HASHED` (0x2).
    pub flags: u32,
    pub timeout: u32,
    /// The persistence netmask as a mask of the service's family.
    pub netmask: IpAddr,
    pub dests: Vec<LiveDest>,
}

/// A listening socket (`ss -ltn`, `ss -lun`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveListener {
    /// IANA protocol number (6 TCP, 17 UDP).
    pub protocol: u16,
    pub address: IpAddr,
    pub port: u16,
}

/// A keepalived process in the namespace, and the configuration it was started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveKeepalived {
    pub pid: u32,
    /// The `-f`/`--use-file` argument as given, or keepalived's default.
    pub config: String,
    /// The same, made absolute and resolved, when it could be.
    #[serde(default)]
    pub config_resolved: Option<String>,
}

/// The live state of one network namespace: what [`audit`] compares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub addresses: Vec<LiveAddress>,
    /// Each key [`Wants::sysctls`] asked for, as read; a key that could not
    /// be read (no such interface) is absent.
    pub sysctls: BTreeMap<String, i64>,
    /// The IPVS table; read on a director only.
    pub ipvs: Vec<LiveService>,
    /// Listening sockets; read on a real server only.
    pub listeners: Vec<LiveListener>,
    /// keepalived processes in this namespace; read when the setup uses keepalived.
    pub keepalived: Vec<LiveKeepalived>,
}

/// The host of the setup that is audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "role", content = "index")]
pub enum HostRef {
    /// `topology.directors[i]`
    Director(usize),
    /// `topology.real_servers[i]`
    RealServer(usize),
}

impl HostRef {
    pub fn name(self, t: &Topology) -> String {
        match self {
            HostRef::Director(i) => t.directors.get(i).map(|d| d.name.to_string()).unwrap_or_default(),
            HostRef::RealServer(i) => t.real_servers.get(i).map(|r| r.name.value.to_string()).unwrap_or_default(),
        }
    }
    pub fn role(self) -> &'static str {
        match self {
            HostRef::Director(_) => "director",
            HostRef::RealServer(_) => "real_server",
        }
    }
}

/// Every host of the setup by name: the directors, then the real servers.
pub fn hosts(t: &Topology) -> Vec<(String, HostRef)> {
    let directors = t
        .directors
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.placeholder)
        .map(|(i, d)| (d.name.to_string(), HostRef::Director(i)));
    let servers = t
        .real_servers
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.value.to_string(), HostRef::RealServer(i)));
    directors.chain(servers).collect()
}

/// The host named `name` (`director`, `rs1`, one director of a pair).
pub fn host_named(t: &Topology, name: &str) -> Option<HostRef> {
    hosts(t).into_iter().find(|(n, _)| n == name).map(|(_, h)| h)
}

/// The hosts whose own addresses (not the VIPs, which several hosts hold)
/// are among `present`: the candidates for "this machine".
pub fn identify(t: &Topology, present: &[IpAddr]) -> Vec<(String, HostRef)> {
    hosts(t)
        .into_iter()
        .filter(|(_, h)| own_addresses(t, *h).iter().any(|a| present.contains(a)))
        .collect()
}

/// A host's own addresses: its LAN addresses and its other NICs'.
pub fn own_addresses(t: &Topology, h: HostRef) -> Vec<IpAddr> {
    match h {
        HostRef::Director(i) => t
            .directors
            .get(i)
            .map(|d| {
                d.address
                    .iter()
                    .map(|a| a.value)
                    .chain(d.extra_nics.iter().map(|n| n.address.value))
                    .collect()
            })
            .unwrap_or_default(),
        HostRef::RealServer(i) => t
            .real_servers
            .get(i)
            .map(|r| {
                r.address
                    .iter()
                    .map(|a| a.value)
                    .chain(r.extra_nics.iter().map(|n| n.address.value))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// How the setup is run, beyond what the topology says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Options {
    /// keepalived runs the director (the setup was read from a keepalived.conf,
    /// or has VRRP): its checkers may set weight 0, and a keepalived process must run.
    pub keepalived: bool,
    /// The keepalived.conf files the setup was read from, resolved: the
    /// process must run with one of them. Empty: any keepalived will do.
    pub keepalived_configs: Vec<String>,
}

/// What the harness must read for [`audit`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Wants {
    pub sysctls: Vec<String>,
    pub ipvs: bool,
    pub listeners: bool,
    pub keepalived: bool,
}

/// What to read for an audit of `host`.
pub fn wants(t: &Topology, host: HostRef, options: &Options) -> Wants {
    let mut sysctls: Vec<String> = compare::sysctl_checks(t, host).into_iter().flat_map(|c| c.keys()).collect();
    sysctls.sort();
    sysctls.dedup();
    Wants {
        sysctls,
        ipvs: matches!(host, HostRef::Director(_)),
        listeners: matches!(host, HostRef::RealServer(_)),
        keepalived: matches!(host, HostRef::Director(_)) && options.keepalived,
    }
}

/// One difference between the live machine and the setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub kind: Kind,
    pub severity: Severity,
    pub area: Area,
    pub message: String,
    /// The service, as `tcp 192.168.1.192:80` or `fwmark 1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The real server, by name when the setup has it, else by address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_server: Option<String>,
    /// The field, sysctl key or address concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// The commands that restore the setup's state, as `render` writes them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restore: Vec<String>,
}

impl Finding {
    pub fn new(kind: Kind, message: impl Into<String>) -> Finding {
        Finding {
            code: kind.code(),
            kind,
            severity: kind.severity(),
            area: kind.area(),
            message: message.into(),
            service: None,
            real_server: None,
            key: None,
            expected: None,
            found: None,
            restore: vec![],
        }
    }
    pub fn service(mut self, s: impl Into<String>) -> Self {
        self.service = Some(s.into());
        self
    }
    pub fn real_server(mut self, s: impl Into<String>) -> Self {
        self.real_server = Some(s.into());
        self
    }
    pub fn key(mut self, s: impl Into<String>) -> Self {
        self.key = Some(s.into());
        self
    }
    pub fn values(mut self, expected: impl ToString, found: impl ToString) -> Self {
        self.expected = Some(expected.to_string());
        self.found = Some(found.to_string());
        self
    }
    pub fn restore(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.restore.extend(lines);
        self
    }
    /// Drift, as opposed to a note (a quiesced server).
    pub fn is_drift(&self) -> bool {
        self.severity != Severity::Info
    }
}

/// How much was compared, for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Compared {
    pub services: usize,
    pub real_servers: usize,
    pub addresses: usize,
    pub sysctls: usize,
    pub listeners: usize,
}

/// The outcome of an audit: the stable JSON form (`lvsdr audit --format json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// The host's name in the setup.
    pub host: String,
    /// `director` or `real_server`.
    pub role: &'static str,
    /// Whether the live state matches the setup (no finding is drift).
    pub ok: bool,
    pub compared: Compared,
    pub findings: Vec<Finding>,
}

/// Compares the live state of `host` with the setup.
pub fn audit(t: &Topology, host: HostRef, live: &Live, options: &Options) -> Audit {
    let mut findings = Vec::new();
    let mut compared = Compared::default();
    if let HostRef::Director(i) = host {
        compare::ipvs(t, i, live, options, &mut findings, &mut compared);
        compare::director_vips(t, i, live, &mut findings, &mut compared);
        if options.keepalived {
            compare::keepalived(options, live, &mut findings);
        }
    }
    if let HostRef::RealServer(i) = host {
        compare::real_server_vips(t, i, live, &mut findings, &mut compared);
        compare::listeners(t, i, live, &mut findings, &mut compared);
    }
    compare::unexpected_addresses(t, host, live, &mut findings);
    compare::sysctls(t, host, live, &mut findings, &mut compared);
    findings.sort_by_key(|f| f.area);
    Audit {
        host: host.name(t),
        role: host.role(),
        ok: !findings.iter().any(Finding::is_drift),
        compared,
        findings,
    }
}

#[cfg(test)]
mod tests;
