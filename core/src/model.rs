//! The validated DR topology. Everything here was checked on the way in
//! (see [`crate::topology_file`] and [`crate::import`]): addresses parse,
//! names are unique, every destination names a real server that exists.
//! Whether the setup *works* is the linter's question, not the model's.

use crate::names::{HostName, IfName, SysctlKey};
use crate::source::{At, Span};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 prefix such as `192.168.1.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Subnet {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == (u32::from(self.address) & self.mask())
    }
    pub fn parse(text: &str) -> Result<Subnet, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not a subnet: write it as ADDRESS/PREFIX, e.g. 192.168.1.0/24"))?;
        let address: Ipv4Addr = addr.parse().map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("`{prefix}` is not a prefix length between 0 and 32"))?;
        Ok(Subnet { address, prefix })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            _ => None,
        }
    }
    /// The protocol with this IANA number, as IPVS reports it.
    pub fn from_number(n: u16) -> Option<Protocol> {
        [Protocol::Tcp, Protocol::Udp, Protocol::Sctp].into_iter().find(|p| p.number() == n)
    }
    /// IANA protocol number, as IPVS wants it.
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
}

/// What identifies a virtual service: protocol and port on the VIP, or a firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    Port { protocol: Protocol, port: u16 },
    Fwmark(u32),
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Port { protocol, port } => write!(f, "{}/{}", protocol.name(), port),
            ServiceKey::Fwmark(m) => write!(f, "fwmark/{m}"),
        }
    }
}

/// The kernel's IPVS schedulers (`ip_vs_<name>.ko`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sed,
    Nq,
    Sh,
    Dh,
    Fo,
    Ovf,
    Mh,
    Lblc,
    Lblcr,
}

impl Scheduler {
    pub const ALL: [Scheduler; 13] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Sh,
        Scheduler::Dh,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Mh,
        Scheduler::Lblc,
        Scheduler::Lblcr,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Sh => "sh",
            Scheduler::Dh => "dh",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Mh => "mh",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
        }
    }
    pub fn parse(s: &str) -> Option<Scheduler> {
        Scheduler::ALL.into_iter().find(|x| x.name() == s)
    }
    /// Whether the scheduler looks at weights other than zero.
    pub fn uses_weights(self) -> bool {
        !matches!(self, Scheduler::Rr | Scheduler::Lc | Scheduler::Dh)
    }
}

/// IPVS scheduler flags (`-b`): `sh-fallback`, `sh-port`, `mh-fallback`, `mh-port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SchedFlag {
    ShFallback,
    ShPort,
    MhFallback,
    MhPort,
}

impl SchedFlag {
    pub fn name(self) -> &'static str {
        match self {
            SchedFlag::ShFallback => "sh-fallback",
            SchedFlag::ShPort => "sh-port",
            SchedFlag::MhFallback => "mh-fallback",
            SchedFlag::MhPort => "mh-port",
        }
    }
    pub fn parse(s: &str) -> Option<SchedFlag> {
        match s {
            "sh-fallback" => Some(SchedFlag::ShFallback),
            "sh-port" => Some(SchedFlag::ShPort),
            "mh-fallback" => Some(SchedFlag::MhFallback),
            "mh-port" => Some(SchedFlag::MhPort),
            _ => None,
        }
    }
    /// The kernel's bit: SCHED1 (0x8) is the fallback flag, SCHED2 (0x10) the port flag.
    pub fn bits(self) -> u32 {
        match self {
            SchedFlag::ShFallback | SchedFlag::MhFallback => 0x08,
            SchedFlag::ShPort | SchedFlag::MhPort => 0x10,
        }
    }
    pub fn scheduler(self) -> Scheduler {
        match self {
            SchedFlag::ShFallback | SchedFlag::ShPort => Scheduler::Sh,
            SchedFlag::MhFallback | SchedFlag::MhPort => Scheduler::Mh,
        }
    }
}

/// How the director forwards to a real server (`-g`, `-m`, `-i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// Direct routing: only the destination MAC is rewritten (`-g`).
    Route,
    /// NAT (`-m`).
    Masq,
    /// IP-in-IP tunnel (`-i`).
    Tunnel,
    Local,
}

impl Forward {
    pub fn name(self) -> &'static str {
        match self {
            Forward::Route => "route",
            Forward::Masq => "masq",
            Forward::Tunnel => "tunnel",
            Forward::Local => "local",
        }
    }
    pub fn parse(s: &str) -> Option<Forward> {
        match s {
            "route" | "dr" | "gatewaying" => Some(Forward::Route),
            "masq" | "nat" | "masquerading" => Some(Forward::Masq),
            "tunnel" | "tun" | "ipip" => Some(Forward::Tunnel),
            "local" => Some(Forward::Local),
            _ => None,
        }
    }
    /// IP_VS_CONN_F_* forwarding value used on the wire.
    pub fn kernel_value(self) -> u32 {
        match self {
            Forward::Masq => 0,
            Forward::Local => 1,
            Forward::Tunnel => 2,
            Forward::Route => 3,
        }
    }
    pub fn ipvsadm_flag(self) -> &'static str {
        match self {
            Forward::Route => "-g",
            Forward::Masq => "-m",
            Forward::Tunnel => "-i",
            Forward::Local => "-g",
        }
    }
}

/// Kernel sysctls as written, keyed by their full dotted name
/// (`net.ipv4.conf.all.arp_ignore`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sysctls {
    pub values: BTreeMap<SysctlKey, At<i64>>,
}

impl Sysctls {
    pub fn get(&self, key: &str) -> Option<&At<i64>> {
        self.values.get(key)
    }
    pub fn conf(&self, iface: &str, name: &str) -> Option<&At<i64>> {
        self.values.get(format!("net.ipv4.conf.{iface}.{name}").as_str())
    }
    /// The value the kernel uses on `iface` for settings it combines as
    /// `max(all, iface)`: arp_ignore, arp_announce, rp_filter. Unset means 0.
    pub fn effective_max(&self, iface: &str, name: &str) -> i64 {
        let all = self.conf("all", name).map(|v| v.value).unwrap_or(0);
        let own = self.conf(iface, name).map(|v| v.value).unwrap_or(0);
        all.max(own)
    }
    pub fn set(&mut self, key: SysctlKey, value: i64, span: Span) {
        self.values.insert(key, At::new(value, span));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub name: HostName,
    pub address: At<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Director {
    pub name: HostName,
    pub address: At<Ipv4Addr>,
    /// The NIC facing the LAN, which also carries the VIP.
    pub interface: At<IfName>,
    pub vip: At<Ipv4Addr>,
    pub vip_prefix: At<u8>,
    pub sysctls: Sysctls,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persistence {
    pub timeout: At<u32>,
    pub netmask: At<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Name of the real server, an index into [`Topology::real_servers`] by name.
    pub server: At<HostName>,
    pub port: At<u16>,
    pub forward: At<Forward>,
    pub weight: At<u32>,
    pub upper_threshold: Option<At<u32>>,
    pub lower_threshold: Option<At<u32>>,
    /// The keepalived health checker (`TCP_CHECK`, `SMTP_CHECK`, `HTTP_GET`, …),
    /// kept when it differs from [`default_health_check`] for the port.
    pub health_check: Option<At<String>>,
    pub span: Span,
}

/// keepalived checkers lvsdr knows by name.
pub const HEALTH_CHECKS: [&str; 10] = [
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "SMTP_CHECK",
    "MISC_CHECK",
    "DNS_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "BFD_CHECK",
    "FILE_CHECK",
];

/// The checker lvsdr generates when a topology names none: SMTP on port 25, TCP elsewhere.
pub fn default_health_check(port: u16) -> &'static str {
    if port == 25 {
        "SMTP_CHECK"
    } else {
        "TCP_CHECK"
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualService {
    pub key: At<ServiceKey>,
    pub scheduler: At<Scheduler>,
    pub flags: Vec<At<SchedFlag>>,
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`-o`), meaningful for UDP only.
    pub one_packet: At<bool>,
    pub destinations: Vec<Destination>,
    pub span: Span,
}

impl VirtualService {
    pub fn port(&self) -> Option<u16> {
        match self.key.value {
            ServiceKey::Port { port, .. } => Some(port),
            ServiceKey::Fwmark(_) => None,
        }
    }
    pub fn flag_bits(&self) -> u32 {
        self.flags.iter().fold(0, |acc, f| acc | f.bits())
    }
    pub fn has_flag(&self, flag: SchedFlag) -> bool {
        self.flags.iter().any(|f| f.value == flag)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    pub name: At<HostName>,
    pub address: At<Ipv4Addr>,
    /// The NIC that faces the director.
    pub interface: At<IfName>,
    /// Prefix length of the VIP on `lo`, or `None` when the VIP is not on `lo`.
    pub vip_on_lo: Option<At<u8>>,
    pub sysctls: Sysctls,
    /// Ports with a listener. `None` means "whatever the services need".
    pub listen: Option<At<Vec<u16>>>,
    /// More NICs on the same LAN, each with an address of its own (a multi-homed host).
    pub extra_nics: Vec<Nic>,
    /// Routes that leave by a chosen NIC (`ip route add TO dev DEV`): how a
    /// multi-homed host's replies can take another path than its requests.
    pub routes: Vec<HostRoute>,
    pub span: Span,
}

/// A further NIC of a host, on the LAN, with its own address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub interface: At<IfName>,
    pub address: At<Ipv4Addr>,
}

/// `ip route add TO dev DEVICE`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub to: At<Subnet>,
    pub device: At<IfName>,
}

impl RealServer {
    pub fn listens_on(&self, port: u16) -> bool {
        self.listen.as_ref().is_none_or(|l| l.contains(&port))
    }
}

/// A whole LVS-DR setup: one director with one VIP, its virtual services,
/// the real servers behind them, and a client to test from, on one LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub name: String,
    pub lan: At<Subnet>,
    pub client: Client,
    pub director: Director,
    pub services: Vec<VirtualService>,
    pub real_servers: Vec<RealServer>,
}

impl Topology {
    pub fn real_server(&self, name: &str) -> Option<&RealServer> {
        self.real_servers.iter().find(|r| r.name.value == name)
    }
    pub fn service(&self, key: &str) -> Option<&VirtualService> {
        self.services.iter().find(|s| s.key.to_string() == key)
    }

    /// The same topology with every span cleared, for comparing two
    /// topologies that were read from different formats.
    pub fn without_spans(&self) -> Topology {
        fn c<T: Clone>(a: &At<T>) -> At<T> {
            At::implied(a.value.clone())
        }
        fn cs(s: &Sysctls) -> Sysctls {
            Sysctls {
                values: s.values.iter().map(|(k, v)| (k.clone(), c(v))).collect(),
            }
        }
        Topology {
            name: self.name.clone(),
            lan: c(&self.lan),
            client: Client {
                name: self.client.name.clone(),
                address: c(&self.client.address),
            },
            director: Director {
                name: self.director.name.clone(),
                address: c(&self.director.address),
                interface: c(&self.director.interface),
                vip: c(&self.director.vip),
                vip_prefix: c(&self.director.vip_prefix),
                sysctls: cs(&self.director.sysctls),
                span: Span::NONE,
            },
            services: self
                .services
                .iter()
                .map(|s| VirtualService {
                    key: c(&s.key),
                    scheduler: c(&s.scheduler),
                    flags: s.flags.iter().map(c).collect(),
                    persistence: s.persistence.as_ref().map(|p| Persistence {
                        timeout: c(&p.timeout),
                        netmask: c(&p.netmask),
                    }),
                    one_packet: c(&s.one_packet),
                    destinations: s
                        .destinations
                        .iter()
                        .map(|d| Destination {
                            server: c(&d.server),
                            port: c(&d.port),
                            forward: c(&d.forward),
                            weight: c(&d.weight),
                            upper_threshold: d.upper_threshold.as_ref().map(c),
                            lower_threshold: d.lower_threshold.as_ref().map(c),
                            health_check: d.health_check.as_ref().map(c),
                            span: Span::NONE,
                        })
                        .collect(),
                    span: Span::NONE,
                })
                .collect(),
            real_servers: self
                .real_servers
                .iter()
                .map(|r| RealServer {
                    name: c(&r.name),
                    address: c(&r.address),
                    interface: c(&r.interface),
                    vip_on_lo: r.vip_on_lo.as_ref().map(c),
                    sysctls: cs(&r.sysctls),
                    listen: r.listen.as_ref().map(c),
                    extra_nics: r
                        .extra_nics
                        .iter()
                        .map(|n| Nic {
                            interface: c(&n.interface),
                            address: c(&n.address),
                        })
                        .collect(),
                    routes: r
                        .routes
                        .iter()
                        .map(|x| HostRoute {
                            to: c(&x.to),
                            device: c(&x.device),
                        })
                        .collect(),
                    span: Span::NONE,
                })
                .collect(),
        }
    }
}
