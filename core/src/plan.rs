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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Client,
    Director,
    RealServer,
    /// Between the client's link and the LAN (a topology's `[router]`).
    Router,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressPlan {
    pub device: IfName,
    /// IPv6 addresses are added with `nodad`: the lab's addresses are unique by construction.
    pub address: IpAddr,
    pub prefix: u8,
    /// The VIP (on the director's NIC or a real server's `lo`): part of the
    /// DR setup that the generated scripts configure, not of the host itself.
    pub vip: bool,
    /// Never chosen as a source address (`preferred_lft 0`): an IPv6 VIP on
    /// the director's NIC, which would otherwise win the source selection for
    /// the director's own connections to the real servers (health checks),
    /// whose answers the real servers then keep, the VIP being on their `lo`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
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
    /// Whether `interface` is on the outside link (the client's, behind a
    /// router) rather than on the LAN.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outside: bool,
    /// NICs on the outside link: the router's side towards the client.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outside_interfaces: Vec<IfName>,
    /// Routes added after the addresses, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RoutePlan>,
    pub addresses: Vec<AddressPlan>,
    /// A real server of tunnel destinations (LVS-TUN): the lab loads `ipip`,
    /// which gives each namespace its `tunl0`, and brings `tunl0` up before
    /// the sysctls (`ip link set tunl0 up`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tunnel: bool,
    /// Written as given, in order, inside the host's namespace (below `/proc/sys/net/`).
    pub sysctls: Vec<(SysctlKey, i64)>,
    pub listeners: Vec<ListenerPlan>,
}

/// `ip route add ADDRESS/PREFIX [via GATEWAY] dev DEVICE`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutePlan {
    pub address: IpAddr,
    pub prefix: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    pub device: IfName,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestPlan {
    pub server: HostName,
    pub address: IpAddr,
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
    /// The VIP; for a fwmark service the unspecified address of its family (`0.0.0.0`, `::`).
    pub address: IpAddr,
    pub port: u16,
    pub fwmark: u32,
    pub scheduler: String,
    pub flags: u32,
    pub timeout: u32,
    /// The persistence granularity as a mask of the service's family
    /// (IPVS takes IPv6's as its prefix length).
    pub netmask: IpAddr,
    /// In the order they are added (the kernel's list holds them reversed).
    pub destinations: Vec<DestPlan>,
}

/// One connection the client opens: from this address and source port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConnectionPlan {
    pub client: IpAddr,
    pub port: u16,
}

/// Connections the client will open, one after the other, and what the core
/// predicts for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbePlan {
    pub service: String,
    /// The VIP the client connects to.
    pub address: IpAddr,
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
    /// How the service's replies reach the client, by its forwarding method.
    pub reply: ReplyPath,
}

/// How a service's replies reach the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyPath {
    /// DR and TUN: straight from the real server, bypassing the director.
    Bypass,
    /// NAT: back through the director, which rewrites the source to the VIP.
    Director,
    /// A service that mixes NAT with the others: each real server answers its own way.
    Mixed,
}

impl ReplyPath {
    fn of(s: &VirtualService) -> ReplyPath {
        let nat = s.destinations.iter().filter(|d| d.forward.value == Forward::Masq).count();
        match nat {
            0 => ReplyPath::Bypass,
            n if n == s.destinations.len() => ReplyPath::Director,
            _ => ReplyPath::Mixed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabPlan {
    pub topology: String,
    /// The prefix of the LAN of the main address family.
    pub lan_prefix: u8,
    /// The first VIP.
    pub vip: IpAddr,
    /// Every VIP, when there are several: the client checks the neighbour entry of each.
    #[serde(skip_serializing_if = "many_lt_2")]
    pub vips: Vec<IpAddr>,
    pub hosts: Vec<HostPlan>,
    pub services: Vec<ServicePlan>,
    /// Firewall marking rules the director applies (nft), for fwmark services.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<MarkPlan>,
    pub probes: Vec<ProbePlan>,
    /// How many of each service's connections the client holds open while
    /// the next ones open (0: each closes before the next; see [`plan_held`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub hold: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn many_lt_2(v: &[IpAddr]) -> bool {
    v.len() < 2
}

/// One marking rule on the director: packets to `destination`/`prefix`,
/// of `protocol` (IANA number, 0 = any) and one of `ports` (empty = any),
/// get firewall mark `mark` in the mangle PREROUTING hook, before IPVS sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarkPlan {
    pub mark: u32,
    pub destination: IpAddr,
    pub prefix: u8,
    pub protocol: u16,
    pub ports: Vec<u16>,
}

impl LabPlan {
    /// The forwarding methods of the plan's destinations, as people name
    /// them, in the order DR, TUN, NAT (`local` counts as DR).
    pub fn methods(&self) -> Vec<&'static str> {
        let uses = |m: u32| self.services.iter().flat_map(|s| &s.destinations).any(|d| d.forward == m);
        let mut out = Vec::new();
        if uses(Forward::Route.kernel_value()) || uses(Forward::Local.kernel_value()) {
            out.push("DR");
        }
        if uses(Forward::Tunnel.kernel_value()) {
            out.push("TUN");
        }
        if uses(Forward::Masq.kernel_value()) {
            out.push("NAT");
        }
        out
    }
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

/// The most connections a lab opens to one service: the client's source
/// ports are 40000 and up, one per connection, to 65535.
pub const MAX_CONNECTIONS_PER_SERVICE: usize = 25_536;
/// The most connections one lab opens in all (services × connections ×
/// parallel labs). Measured under UML with its 256 MB: 100,000 connections
/// to one service ran; past that the guest runs short of memory.
pub const MAX_LAB_CONNECTIONS: usize = 100_000;
/// The most real servers a lab builds (a namespace, a veth pair and
/// listeners each). Measured under UML: 300 ran; with 400 the links did not
/// all come up within 3 s; with 1,000 the guest kernel ran out of memory.
pub const MAX_LAB_REAL_SERVERS: usize = 300;

/// Refuses, before anything is built, a lab larger than the lab's kernel
/// holds: the limit it passes, by name, with what to do.
pub fn check_size(t: &Topology, connections: usize, parallel: usize) -> Result<(), String> {
    if connections > MAX_CONNECTIONS_PER_SERVICE {
        return Err(format!(
            "{connections} connections per service is more than the lab's {MAX_CONNECTIONS_PER_SERVICE} (MAX_CONNECTIONS_PER_SERVICE: one client source port each, 40000 to 65535)"
        ));
    }
    let total = t.services.len().saturating_mul(connections).saturating_mul(parallel.max(1));
    if total > MAX_LAB_CONNECTIONS {
        return Err(format!(
            "{} service(s) × {connections} connection(s){} is {total} connections, more than the lab's {MAX_LAB_CONNECTIONS} (MAX_LAB_CONNECTIONS, what the lab's kernel holds in its memory); use fewer --connections",
            t.services.len(),
            if parallel > 1 { format!(" × {parallel} labs") } else { String::new() }
        ));
    }
    let servers = t.real_servers.len().saturating_mul(parallel.max(1));
    if servers > MAX_LAB_REAL_SERVERS {
        return Err(format!(
            "{servers} real server(s) is more than the lab's {MAX_LAB_REAL_SERVERS} (MAX_LAB_REAL_SERVERS: a namespace and links each); prove the setup in parts, a few real servers per lab"
        ));
    }
    Ok(())
}

/// Plans a lab for a topology, with `connections` connections per TCP
/// service from `clients` client addresses in turn (the client's own
/// address of the service's family, then the next ones up).
pub fn plan(t: &Topology, connections: usize, clients: usize) -> LabPlan {
    plan_held(t, connections, clients, 0)
}

/// [`plan`], with each connection held open until `hold` later ones of its
/// service have opened ([`predict::held`]): the client keeps them, and the
/// predictions count them as the kernel's active connections.
pub fn plan_held(t: &Topology, connections: usize, clients: usize, hold: usize) -> LabPlan {
    let p = Planner::new(t, connections, clients.max(1), hold);
    let mut hosts = vec![p.client()];
    hosts.extend(p.router());
    hosts.extend(t.directors.iter().enumerate().map(|(k, d)| p.director(k, d)));
    hosts.extend(t.real_servers.iter().map(|rs| p.real_server(rs)));
    let vips: Vec<IpAddr> = t.vips().iter().map(|v| v.address.value).collect();
    LabPlan {
        topology: t.name.clone(),
        lan_prefix: p.prefix_of(&t.director().address.main().value),
        vip: vips.first().copied().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        vips,
        hosts,
        services: t.services.iter().map(|s| service_plan(t, s)).collect(),
        marks: t
            .marks
            .iter()
            .map(|m| MarkPlan {
                mark: m.mark.value,
                destination: m.destination.address,
                prefix: m.destination.prefix,
                protocol: m.protocol.as_ref().map(|p| p.number()).unwrap_or(0),
                ports: m.ports.value.clone(),
            })
            .collect(),
        probes: t.services.iter().filter_map(|s| p.probe(s)).collect(),
        hold,
    }
}

/// What planning each host and probe needs: the topology and the
/// connections of each address family the client has.
struct Planner<'a> {
    t: &'a Topology,
    events: BTreeMap<Family, Vec<predict::Event>>,
}

/// The unspecified address of a family (`0.0.0.0`, `::`): a default route's destination.
fn unspecified(f: Family) -> IpAddr {
    match f {
        Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn sysctls(s: &Sysctls) -> Vec<(SysctlKey, i64)> {
    s.values.iter().map(|(k, v)| (k.clone(), v.value)).collect()
}

/// The destinations of a service that go to the real server `server`.
fn destinations_of<'s>(s: &'s VirtualService, server: &str) -> Vec<&'s Destination> {
    s.destinations.iter().filter(|d| d.server.value == server).collect()
}

/// A host's own (not a VIP) address on `device`.
fn own_address(device: &IfName, address: IpAddr, prefix: u8) -> AddressPlan {
    AddressPlan {
        device: device.clone(),
        address,
        prefix,
        vip: false,
        deprecated: false,
    }
}

impl HostPlan {
    /// A host with one NIC and nothing else yet.
    fn bare(name: HostName, role: Role, interface: IfName) -> HostPlan {
        HostPlan {
            name,
            role,
            interface,
            extra_interfaces: vec![],
            outside: false,
            outside_interfaces: vec![],
            routes: vec![],
            addresses: vec![],
            tunnel: false,
            sysctls: vec![],
            listeners: vec![],
        }
    }
}

impl<'a> Planner<'a> {
    fn new(t: &'a Topology, connections: usize, clients: usize, hold: usize) -> Planner<'a> {
        let events = t
            .client
            .address
            .iter()
            .map(|a| (Family::of(&a.value), predict::held(connections, clients, a.value, hold)))
            .collect();
        Planner { t, events }
    }

    /// The connections the client opens from its addresses of `family`.
    fn planned(&self, family: Family) -> Vec<ConnectionPlan> {
        self.events
            .get(&family)
            .map(|e| {
                e.iter()
                    .filter_map(|e| match e {
                        predict::Event::Connect { client, port } => Some(ConnectionPlan {
                            client: *client,
                            port: *port,
                        }),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The prefix of the LAN an address is on.
    fn prefix_of(&self, a: &IpAddr) -> u8 {
        self.t.lan_of(Family::of(a)).0.prefix
    }

    /// The client: its own addresses and the extra ones its connections come
    /// from, on the LAN or on the outside of the router.
    fn client(&self) -> HostPlan {
        let t = self.t;
        let eth0 = IfName::known("eth0");
        let mut addresses: Vec<IpAddr> = Vec::new();
        for a in t.client.address.iter() {
            addresses.push(a.value);
            let mut more: Vec<IpAddr> = self
                .planned(Family::of(&a.value))
                .iter()
                .map(|c| c.client)
                .filter(|c| *c != a.value)
                .collect();
            more.sort();
            more.dedup();
            addresses.extend(more);
        }
        // The client's link: the LAN, or the outside of the router.
        let prefix = |a: &IpAddr| match &t.router {
            Some(r) => r
                .outside
                .of(Family::of(a))
                .map(|o| Subnet::assumed_around(o.value).prefix)
                .unwrap_or(Family::of(a).host_prefix()),
            None => self.prefix_of(a),
        };
        let mut host = HostPlan::bare(t.client.name.clone(), Role::Client, eth0.clone());
        host.outside = t.router.is_some();
        host.routes = match &t.router {
            Some(r) => r
                .outside
                .iter()
                .map(|gw| RoutePlan {
                    address: unspecified(Family::of(&gw.value)),
                    prefix: 0,
                    via: Some(gw.value),
                    device: eth0.clone(),
                })
                .collect(),
            // Without a router, a VIP outside the client's subnet is reached on the
            // link itself, as a router on the LAN would reach it: the client asks who has it.
            None => t
                .vips()
                .iter()
                .filter(|v| {
                    !t.client.address.iter().any(|a| {
                        Subnet {
                            address: a.value,
                            prefix: self.prefix_of(&a.value),
                        }
                        .contains(v.address.value)
                    })
                })
                .map(|v| RoutePlan {
                    address: v.address.value,
                    prefix: v.family().host_prefix(),
                    via: None,
                    device: eth0.clone(),
                })
                .collect(),
        };
        host.addresses = addresses.iter().map(|a| own_address(&eth0, *a, prefix(a))).collect();
        host
    }

    /// The router in front of the LAN, when the client is not on it: it forwards.
    fn router(&self) -> Option<HostPlan> {
        let t = self.t;
        let r = t.router.as_ref()?;
        let lan_if = IfName::known("eth0");
        let out_if = IfName::known("eth1");
        let mut host = HostPlan::bare(r.name.clone(), Role::Router, lan_if.clone());
        host.outside_interfaces = vec![out_if.clone()];
        // The VIPs are on the LAN link: the router asks there who has them, as the client would.
        host.routes = t
            .vips()
            .iter()
            .map(|v| RoutePlan {
                address: v.address.value,
                prefix: v.family().host_prefix(),
                via: None,
                device: lan_if.clone(),
            })
            .collect();
        host.addresses = r
            .address
            .iter()
            .map(|a| own_address(&lan_if, a.value, self.prefix_of(&a.value)))
            .chain(
                r.outside
                    .iter()
                    .map(|a| own_address(&out_if, a.value, Subnet::assumed_around(a.value).prefix)),
            )
            .collect();
        host.sysctls = ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]
            .into_iter()
            .filter_map(|key| SysctlKey::parse(key).ok().map(|k| (k, 1)))
            .collect();
        Some(host)
    }

    /// Director number `k`: its addresses, and the VIPs on the first one (a
    /// backup takes them over only when it fails over).
    fn director(&self, k: usize, d: &Director) -> HostPlan {
        let device = d.interface.device();
        let mut host = HostPlan::bare(d.name.clone(), Role::Director, device.clone());
        host.addresses = d
            .address
            .iter()
            .map(|a| own_address(&device, a.value, self.prefix_of(&a.value)))
            .collect();
        if k == 0 {
            host.addresses.extend(d.vips.iter().map(|v| AddressPlan {
                device: device.clone(),
                address: v.address.value,
                prefix: v.prefix.value,
                vip: true,
                deprecated: v.address.is_ipv6() && v.preferred.is_none(),
            }));
        }
        host.sysctls = sysctls(&d.sysctls);
        host
    }

    /// A real server: its NICs, the VIPs on `lo`, its routes (through the
    /// router, and for NAT through the director), `tunl0` for LVS-TUN, and a
    /// listener on each port its destinations point at.
    fn real_server(&self, rs: &RealServer) -> HostPlan {
        let t = self.t;
        let device = rs.interface.device();
        let mine = |s: &'a VirtualService| destinations_of(s, &rs.name.value);
        let uses = |f: Forward| t.services.iter().any(|s| mine(s).iter().any(|d| d.forward.value == f));
        let mut host = HostPlan::bare(rs.name.value.clone(), Role::RealServer, device.clone());
        host.extra_interfaces = rs.extra_nics.iter().map(|n| n.interface.device()).collect();
        host.addresses = rs
            .address
            .iter()
            .map(|a| own_address(&device, a.value, self.prefix_of(&a.value)))
            .chain(
                rs.extra_nics
                    .iter()
                    .map(|n| own_address(&n.interface.device(), n.address.value, self.prefix_of(&n.address.value))),
            )
            .chain(rs.lo.iter().map(|a| AddressPlan {
                device: IfName::known("lo"),
                address: a.address,
                prefix: a.prefix,
                vip: true,
                deprecated: false,
            }))
            .collect();
        let own_routes = rs.routes.iter().map(|r| RoutePlan {
            address: r.to.value.address,
            prefix: r.to.value.prefix,
            via: None,
            device: r.device.device(),
        });
        // Behind a router, the real servers answer the client through it.
        let through_router = t.router.iter().flat_map(|router| {
            rs.address.iter().filter_map(|a| {
                let family = Family::of(&a.value);
                Some(RoutePlan {
                    address: unspecified(family),
                    prefix: 0,
                    via: Some(router.address.of(family)?.value),
                    device: device.clone(),
                })
            })
        });
        // NAT: replies to the client go back through the director, which rewrites
        // their source to the VIP. The lab's client shares the LAN, so the route is
        // for the client itself (ipvs.sh deletes the real servers' direct route instead).
        let nat = uses(Forward::Masq);
        let through_director = t.client.address.iter().filter(|_| nat).filter_map(|c| {
            let family = Family::of(&c.value);
            Some(RoutePlan {
                address: c.value,
                prefix: family.host_prefix(),
                via: Some(t.director().address.of(family)?.value),
                device: device.clone(),
            })
        });
        host.routes = own_routes.chain(through_router).chain(through_director).collect();
        host.tunnel = uses(Forward::Tunnel);
        host.sysctls = sysctls(&rs.sysctls);
        host.listeners = self
            .listener_ports(rs)
            .into_iter()
            .map(|port| ListenerPlan {
                port,
                kind: listener_kind(port),
            })
            .collect();
        host
    }

    /// The ports a real server listens on: as the topology says, or every port
    /// its destinations point at (NAT's mapped ones, a fwmark service's marked ones).
    fn listener_ports(&self, rs: &RealServer) -> Vec<u16> {
        let t = self.t;
        let mine = |s: &'a VirtualService| destinations_of(s, &rs.name.value);
        let mut ports: Vec<u16> = match &rs.listen {
            Some(l) => l.value.clone(),
            None => t
                .services
                .iter()
                .flat_map(|s| {
                    let mine = mine(s);
                    match s.port() {
                        _ if mine.is_empty() => vec![],
                        // NAT may map the port: the real server listens where its destination points.
                        Some(_) if mine.iter().any(|d| d.forward.value == Forward::Masq) => mine.iter().map(|d| d.port.value).collect(),
                        Some(p) => vec![p],
                        None => t.marks_of(s).iter().flat_map(|m| m.ports.value.clone()).collect(),
                    }
                })
                .filter(|p| *p != 0)
                .collect(),
        };
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The probes of a service: where a client's TCP connection reaches it (its
    /// VIP and port, or for a fwmark service the first VIP and port its marking
    /// rules cover), the connections and what the scheduler will do with them.
    fn probe(&self, s: &VirtualService) -> Option<ProbePlan> {
        let t = self.t;
        let (address, port) = match (s.key.value, &s.vip) {
            (
                ServiceKey::Port {
                    protocol: Protocol::Tcp,
                    port,
                },
                Some(v),
            ) if port != 0 => (v.value, port),
            (ServiceKey::Fwmark(_), _) => {
                let vip = *t.service_vips(s).first()?;
                let port = t
                    .marks_of(s)
                    .iter()
                    .filter(|m| m.protocol.as_ref().is_none_or(|p| p.value == Protocol::Tcp) && m.destination.contains(vip))
                    .find_map(|m| m.ports.first().copied())?;
                (vip, port)
            }
            _ => return None,
        };
        let family = Family::of(&address);
        let connections = self.planned(family);
        if connections.is_empty() {
            return None;
        }
        let evs = self.events.get(&family).map(Vec::as_slice).unwrap_or(&[]);
        Some(ProbePlan {
            service: t.label(s),
            address,
            port,
            kind: listener_kind(port),
            connections,
            expected: predict::predict(t, s, evs),
            weights: weights_asked(s),
            overlap: !counts_open_connections(s),
            reply: ReplyPath::of(s),
        })
    }
}

/// One virtual service as IPVS holds it: the fields `IPVS_CMD_NEW_SERVICE`
/// needs, and its real servers. The lab programs it; `audit` compares a live
/// table with it.
pub fn service_plan(t: &Topology, s: &VirtualService) -> ServicePlan {
    let (protocol, port, fwmark) = match s.key.value {
        ServiceKey::Port { protocol, port } => (protocol.number(), port, 0),
        ServiceKey::Fwmark(m) => (0, 0, m),
    };
    let prefix = s.persistence.as_ref().map(|p| p.netmask.value).unwrap_or(s.family.host_prefix());
    ServicePlan {
        name: t.label(s),
        protocol,
        address: s.vip.as_ref().map(|v| v.value).unwrap_or(match s.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }),
        port,
        fwmark,
        scheduler: s.scheduler.name().to_string(),
        flags: s.flag_bits() | if s.persistence.is_some() { 0x1 } else { 0 } | if s.one_packet.value { 0x4 } else { 0 },
        timeout: s.persistence.as_ref().map(|p| p.timeout.value).unwrap_or(0),
        netmask: match s.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(v4_mask(prefix))),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) })),
        },
        destinations: s
            .destinations
            .iter()
            .filter_map(|d| {
                let rs = t.real_server(&d.server.value)?;
                Some(DestPlan {
                    server: rs.name.value.clone(),
                    address: rs.address.of(s.family)?.value,
                    port: d.port.value,
                    forward: d.forward.kernel_value(),
                    weight: d.weight.value,
                    upper_threshold: d.upper_threshold.as_ref().map(|x| x.value).unwrap_or(0),
                    lower_threshold: d.lower_threshold.as_ref().map(|x| x.value).unwrap_or(0),
                })
            })
            .collect(),
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
    /// An active/backup pair's failover: the VIP moves, open connections
    /// survive (with connection sync), new ones are scheduled by the backup.
    Failover,
    /// LVS-TUN: a real server received its connections encapsulated, on `tunl0`.
    Tunnel,
    /// LVS-NAT: replies come back through the director, their source the VIP.
    ReplyViaDirector,
}

impl CheckKind {
    /// The lint rules that explain a failed check of this kind, so a report
    /// can send the user from a symptom to its cause.
    pub fn codes(self) -> &'static [&'static str] {
        match self {
            CheckKind::State => &[],
            CheckKind::ArpOwner => &[crate::codes::code::ARP_SYSCTLS_MISSING, crate::codes::code::ARP_SYSCTLS_ONLY_ON_LO],
            CheckKind::Connectivity => &[
                crate::codes::code::VIP_MISSING_ON_LO,
                crate::codes::code::VIP_ON_LO_PREFIX,
                crate::codes::code::DR_PORT_MAPPING,
                crate::codes::code::REAL_SERVER_OFF_LINK,
                crate::codes::code::MISSING_LISTENER,
                crate::codes::code::REAL_SERVER_RP_FILTER,
                crate::codes::code::ALL_WEIGHTS_ZERO,
                crate::codes::code::TUNNEL_RP_FILTER,
                crate::codes::code::NAT_WITHOUT_IP_FORWARD,
            ],
            CheckKind::SourceIp => &[crate::codes::code::NOT_DIRECT_ROUTING],
            CheckKind::ReplyBypass => &[
                crate::codes::code::ARP_SYSCTLS_MISSING,
                crate::codes::code::ARP_SYSCTLS_ONLY_ON_LO,
                crate::codes::code::NOT_DIRECT_ROUTING,
            ],
            CheckKind::Split => &[
                crate::codes::code::ARP_SYSCTLS_MISSING,
                crate::codes::code::ARP_SYSCTLS_ONLY_ON_LO,
                crate::codes::code::SCHEDULER_IGNORES_WEIGHTS,
                crate::codes::code::PERSISTENCE_PER_CLIENT,
                crate::codes::code::DR_PORT_MAPPING,
            ],
            CheckKind::Weights => &[crate::codes::code::SCHEDULER_IGNORES_WEIGHTS],
            CheckKind::Failover => &[crate::codes::code::NO_CONNECTION_SYNC, crate::codes::code::PAIR_DRIFT],
            CheckKind::Tunnel => &[crate::codes::code::TUNNEL_RP_FILTER],
            CheckKind::ReplyViaDirector => &[crate::codes::code::NAT_WITHOUT_IP_FORWARD],
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
    fn labs_past_the_kernels_limits_are_refused_naming_the_limit() {
        let seed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/seed-dr.toml")).unwrap();
        let t = crate::topology_file::from_toml(&seed).unwrap();
        assert_eq!(super::check_size(&t, 8, 1), Ok(()));
        let refused = |connections, parallel| super::check_size(&t, connections, parallel).unwrap_err();
        assert!(refused(super::MAX_CONNECTIONS_PER_SERVICE + 1, 1).contains("MAX_CONNECTIONS_PER_SERVICE"));
        // Two services × 25,000 × 2 labs: 100,000 is the most in all.
        assert_eq!(super::check_size(&t, 25_000, 2), Ok(()));
        assert!(refused(25_000, 3).contains("MAX_LAB_CONNECTIONS"));
        // Two real servers a lab: 150 labs at once are 300, one more is too many.
        assert!(refused(1, 151).contains("MAX_LAB_REAL_SERVERS"));
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
