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
    pub addresses: Vec<AddressPlan>,
    /// Written as given, in order, inside the host's namespace (below `/proc/sys/net/`).
    pub sysctls: Vec<(SysctlKey, i64)>,
    pub listeners: Vec<ListenerPlan>,
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

/// The lint rules that explain a failed lab check, so a report can send
/// the user from a symptom to its cause.
pub fn codes_for_check(check: &str) -> &'static [&'static str] {
    match check {
        "arp-owner" => &["DR001", "DR002"],
        "connectivity" => &["DR003", "DR004", "DR006", "DR007", "DR014", "DR016"],
        "source-ip" => &["DR019"],
        "reply-bypass" => &["DR001", "DR002", "DR019"],
        "split" => &["DR001", "DR002", "DR008", "DR020", "DR005"],
        _ => &[],
    }
}
