//! The [`LabPlan`]: everything the lab will do, as plain data. The harness
//! executes it step by step and the playground draws it; neither decides
//! anything about DR on its own.
//!
//! ```text
//!                lan (a namespace holding bridge br0)
//!    ┌────────────┬────────────┬────────────┐
//!  client      director       rs1          rs2
//!              VIP on eth0    VIP on lo    VIP on lo
//! ```

use crate::model::*;
use crate::names::{HostName, IfName, SysctlKey};
use crate::predict;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Client,
    Director,
    RealServer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressPlan {
    pub device: IfName,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// The VIP (on the director's NIC or a real server's `lo`): part of the
    /// DR setup that the generated scripts configure, not of the host itself.
    pub vip: bool,
}

/// What a probe server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerKind {
    /// Answers `GET` with the server's name and the peer address it saw.
    Http,
    /// Sends a `220` banner with the same facts; answers EHLO and QUIT.
    Smtp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerPlan {
    pub port: u16,
    pub kind: ListenerKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostPlan {
    /// The host's name in the topology (`client`, `director`, `rs1`, …).
    pub name: HostName,
    pub role: Role,
    /// The NIC inside the host's namespace, a veth whose peer sits on the bridge.
    pub interface: IfName,
    /// Further NICs, each a veth to the same bridge (a multi-homed host).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_interfaces: Vec<IfName>,
    /// Routes added after the addresses, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RoutePlan>,
    pub addresses: Vec<AddressPlan>,
    /// Written as given, in order, inside the host's namespace (below `/proc/sys/net/`).
    pub sysctls: Vec<(SysctlKey, i64)>,
    pub listeners: Vec<ListenerPlan>,
}

/// `ip route add ADDRESS/PREFIX dev DEVICE`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutePlan {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub device: IfName,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestPlan {
    pub server: HostName,
    pub address: Ipv4Addr,
    pub port: u16,
    /// IP_VS_CONN_F_* forwarding method (3 = direct routing).
    pub forward: u32,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
}

/// One IPVS virtual service, with the fields `IPVS_CMD_NEW_SERVICE` needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePlan {
    pub name: String,
    pub protocol: u16,
    pub address: Ipv4Addr,
    pub port: u16,
    pub fwmark: u32,
    pub scheduler: String,
    pub flags: u32,
    pub timeout: u32,
    pub netmask: Ipv4Addr,
    /// In the order they are added (the kernel's list holds them reversed).
    pub destinations: Vec<DestPlan>,
}

/// One connection the client opens: from this address and source port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConnectionPlan {
    pub client: Ipv4Addr,
    pub port: u16,
}

/// Connections the client will open, one after the other, and what the core
/// predicts for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbePlan {
    pub service: String,
    pub address: Ipv4Addr,
    pub port: u16,
    pub kind: ListenerKind,
    pub connections: Vec<ConnectionPlan>,
    pub expected: predict::Prediction,
    /// The share of connections the weights ask for, by real server, when the
    /// weights differ and the scheduler is one whose weighted form splits in
    /// proportion (`rr`/`wrr`, `lc`/`wlc`): the lab's `weights` check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<BTreeMap<String, u32>>,
    /// Whether the conversations may overlap once each handshake is done. The
    /// SYNs stay in order either way; overlapping is safe when the scheduler
    /// never looks at how many connections are open.
    pub overlap: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabPlan {
    pub topology: String,
    pub lan_prefix: u8,
    pub vip: Ipv4Addr,
    pub hosts: Vec<HostPlan>,
    pub services: Vec<ServicePlan>,
    pub probes: Vec<ProbePlan>,
}

impl LabPlan {
    pub fn host(&self, name: &str) -> Option<&HostPlan> {
        self.hosts.iter().find(|h| h.name == name)
    }
    pub fn director(&self) -> Option<&HostPlan> {
        self.hosts.iter().find(|h| h.role == Role::Director)
    }
}

fn listener_kind(port: u16) -> ListenerKind {
    if port == 25 {
        ListenerKind::Smtp
    } else {
        ListenerKind::Http
    }
}

/// Plans a lab for a topology, with `connections` connections per TCP
/// service from `clients` client addresses in turn (the client's own
/// address, then the next ones up).
pub fn plan(t: &Topology, connections: usize, clients: usize) -> LabPlan {
    let clients = clients.max(1);
    let events = predict::sequential(connections, clients, t.client.address.value);
    let planned: Vec<ConnectionPlan> = events
        .iter()
        .filter_map(|e| match e {
            predict::Event::Connect { client, port } => Some(ConnectionPlan {
                client: *client,
                port: *port,
            }),
            _ => None,
        })
        .collect();
    let mut client_addresses: Vec<Ipv4Addr> = planned.iter().map(|c| c.client).collect();
    client_addresses.sort();
    client_addresses.dedup();
    let lan_prefix = t.lan.value.prefix;
    let sysctls = |s: &Sysctls| s.values.iter().map(|(k, v)| (k.clone(), v.value)).collect::<Vec<_>>();
    let mut hosts = vec![
        HostPlan {
            name: t.client.name.clone(),
            role: Role::Client,
            interface: IfName::known("eth0"),
            extra_interfaces: vec![],
            routes: vec![],
            addresses: std::iter::once(t.client.address.value)
                .chain(client_addresses.iter().copied().filter(|a| *a != t.client.address.value))
                .map(|address| AddressPlan {
                    device: IfName::known("eth0"),
                    address,
                    prefix: lan_prefix,
                    vip: false,
                })
                .collect(),
            sysctls: vec![],
            listeners: vec![],
        },
        HostPlan {
            name: t.director.name.clone(),
            role: Role::Director,
            interface: t.director.interface.device(),
            extra_interfaces: vec![],
            routes: vec![],
            addresses: vec![
                AddressPlan {
                    device: t.director.interface.device(),
                    address: t.director.address.value,
                    prefix: lan_prefix,
                    vip: false,
                },
                AddressPlan {
                    device: t.director.interface.device(),
                    address: t.director.vip.value,
                    prefix: t.director.vip_prefix.value,
                    vip: true,
                },
            ],
            sysctls: sysctls(&t.director.sysctls),
            listeners: vec![],
        },
    ];
    for rs in &t.real_servers {
        let mut addresses = vec![AddressPlan {
            device: rs.interface.device(),
            address: rs.address.value,
            prefix: lan_prefix,
            vip: false,
        }];
        addresses.extend(rs.extra_nics.iter().map(|n| AddressPlan {
            device: n.interface.device(),
            address: n.address.value,
            prefix: lan_prefix,
            vip: false,
        }));
        if let Some(p) = &rs.vip_on_lo {
            addresses.push(AddressPlan {
                device: IfName::known("lo"),
                address: t.director.vip.value,
                prefix: p.value,
                vip: true,
            });
        }
        let mut ports: Vec<u16> = match &rs.listen {
            Some(l) => l.value.clone(),
            None => t
                .services
                .iter()
                .filter(|s| s.destinations.iter().any(|d| d.server.value == rs.name.value))
                .filter_map(|s| s.port())
                .filter(|p| *p != 0)
                .collect(),
        };
        ports.sort_unstable();
        ports.dedup();
        hosts.push(HostPlan {
            name: rs.name.value.clone(),
            role: Role::RealServer,
            interface: rs.interface.device(),
            extra_interfaces: rs.extra_nics.iter().map(|n| n.interface.device()).collect(),
            routes: rs
                .routes
                .iter()
                .map(|r| RoutePlan {
                    address: r.to.value.address,
                    prefix: r.to.value.prefix,
                    device: r.device.device(),
                })
                .collect(),
            addresses,
            sysctls: sysctls(&rs.sysctls),
            listeners: ports
                .into_iter()
                .map(|port| ListenerPlan {
                    port,
                    kind: listener_kind(port),
                })
                .collect(),
        });
    }
    let services: Vec<ServicePlan> = t
        .services
        .iter()
        .map(|s| {
            let (protocol, port, fwmark) = match s.key.value {
                ServiceKey::Port { protocol, port } => (protocol.number(), port, 0),
                ServiceKey::Fwmark(m) => (0, 0, m),
            };
            ServicePlan {
                name: s.key.value.to_string(),
                protocol,
                address: if fwmark == 0 { t.director.vip.value } else { Ipv4Addr::UNSPECIFIED },
                port,
                fwmark,
                scheduler: s.scheduler.name().to_string(),
                flags: s.flag_bits() | if s.persistence.is_some() { 0x1 } else { 0 } | if s.one_packet.value { 0x4 } else { 0 },
                timeout: s.persistence.as_ref().map(|p| p.timeout.value).unwrap_or(0),
                netmask: s.persistence.as_ref().map(|p| p.netmask.value).unwrap_or(Ipv4Addr::BROADCAST),
                destinations: s
                    .destinations
                    .iter()
                    .filter_map(|d| {
                        let rs = t.real_server(&d.server.value)?;
                        Some(DestPlan {
                            server: rs.name.value.clone(),
                            address: rs.address.value,
                            port: d.port.value,
                            forward: d.forward.kernel_value(),
                            weight: d.weight.value,
                            upper_threshold: d.upper_threshold.as_ref().map(|x| x.value).unwrap_or(0),
                            lower_threshold: d.lower_threshold.as_ref().map(|x| x.value).unwrap_or(0),
                        })
                    })
                    .collect(),
            }
        })
        .collect();
    let probes = t
        .services
        .iter()
        .filter_map(|s| match s.key.value {
            ServiceKey::Port {
                protocol: Protocol::Tcp,
                port,
            } if port != 0 => Some(ProbePlan {
                service: s.key.value.to_string(),
                address: t.director.vip.value,
                port,
                kind: listener_kind(port),
                connections: planned.clone(),
                expected: predict::predict(t, s, &events),
                weights: weights_asked(s),
                overlap: !counts_open_connections(s),
            }),
            _ => None,
        })
        .collect();
    LabPlan {
        topology: t.name.clone(),
        lan_prefix,
        vip: t.director.vip.value,
        hosts,
        services,
        probes,
    }
}

/// The weights of a service's real servers when they ask for an uneven split
/// that its scheduler family is meant to deliver in proportion.
fn weights_asked(s: &VirtualService) -> Option<BTreeMap<String, u32>> {
    if !matches!(s.scheduler.value, Scheduler::Rr | Scheduler::Wrr | Scheduler::Lc | Scheduler::Wlc) || s.persistence.is_some() {
        return None;
    }
    let weights: BTreeMap<String, u32> = s
        .destinations
        .iter()
        .map(|d| (d.server.value.to_string(), d.weight.value))
        .collect();
    let active: Vec<u32> = weights.values().copied().filter(|w| *w > 0).collect();
    (active.windows(2).any(|w| w[0] != w[1])).then_some(weights)
}

/// Whether the service's choice of real server depends on how many
/// connections are open: the least-connection family, locality schedulers,
/// overflow, and any upper threshold (which quiesces a busy server).
fn counts_open_connections(s: &VirtualService) -> bool {
    matches!(
        s.scheduler.value,
        Scheduler::Lc | Scheduler::Wlc | Scheduler::Sed | Scheduler::Nq | Scheduler::Lblc | Scheduler::Lblcr | Scheduler::Ovf
    ) || s
        .destinations
        .iter()
        .any(|d| d.upper_threshold.as_ref().is_some_and(|u| u.value > 0))
}

/// Whether a split honours the weights: every real server within one
/// connection of its weighted share of the connections that were scheduled.
pub fn honours_weights(weights: &BTreeMap<String, u32>, seen: &BTreeMap<String, usize>) -> bool {
    let total_weight: u32 = weights.values().sum();
    let connections: usize = seen.values().sum();
    if total_weight == 0 || connections == 0 {
        return false;
    }
    weights.iter().all(|(name, w)| {
        let share = connections as f64 * f64::from(*w) / f64::from(total_weight);
        let got = seen.get(name).copied().unwrap_or(0) as f64;
        (got - share).abs() < 1.0
    })
}

/// What a lab check is about. Rules and reports share it, so a failed check
/// can name the lint findings that explain it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The kernel state read back: addresses, sysctls, the IPVS table.
    State,
    Connectivity,
    SourceIp,
    ReplyBypass,
    ArpOwner,
    Split,
    /// The split against what the weights ask for (a warning).
    Weights,
}

impl CheckKind {
    /// The lint rules that explain a failed check of this kind, so a report
    /// can send the user from a symptom to its cause.
    pub fn codes(self) -> &'static [&'static str] {
        match self {
            CheckKind::State => &[],
            CheckKind::ArpOwner => &["DR001", "DR002"],
            CheckKind::Connectivity => &["DR003", "DR004", "DR005", "DR006", "DR007", "DR014", "DR016"],
            CheckKind::SourceIp => &["DR019"],
            CheckKind::ReplyBypass => &["DR001", "DR002", "DR019"],
            CheckKind::Split => &["DR001", "DR002", "DR008", "DR020", "DR005"],
            CheckKind::Weights => &["DR008"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::honours_weights;
    use std::collections::BTreeMap;

    fn map<V: Copy>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn weights_are_honoured_within_one_connection() {
        let w = map(&[("rs1", 3u32), ("rs2", 1)]);
        assert!(honours_weights(&w, &map(&[("rs1", 6usize), ("rs2", 2)])));
        assert!(!honours_weights(&w, &map(&[("rs1", 4usize), ("rs2", 4)])), "rr's 1:1");
        assert!(
            honours_weights(&w, &map(&[("rs1", 3usize), ("rs2", 2)])),
            "wrr part-way through a cycle"
        );
        assert!(
            !honours_weights(&w, &map(&[("rs1", 0usize), ("rs2", 0)])),
            "nothing scheduled proves nothing"
        );
        let three = map(&[("rs1", 3u32), ("rs2", 2), ("rs3", 1)]);
        assert!(honours_weights(&three, &map(&[("rs1", 12usize), ("rs2", 8), ("rs3", 4)])));
        assert!(!honours_weights(&three, &map(&[("rs1", 8usize), ("rs2", 8), ("rs3", 8)])));
    }
}
