//! The validated DR topology. Everything here was checked on the way in
//! (see [`crate::topology_file`] and [`crate::import`]): addresses parse,
//! names are unique, every destination names a real server that exists.
//! Whether the setup *works* is the linter's question, not the model's.

use crate::names::{HealthCheck, HostName, HttpStatus, IfName, SysctlKey, UrlDigest, UrlPath, VrrpAuth, VrrpInstance};
use crate::source::{At, Span};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP prefix such as `192.168.1.0/24` or `2001:db8::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Subnet {
    pub address: IpAddr,
    pub prefix: u8,
}

/// IPv4 or IPv6, as IPVS keys a service by it (`AF_INET`, `AF_INET6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
    /// The longest prefix: 32 or 128.
    pub fn host_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// The address as `ipvsadm` and keepalived write it after a service flag:
/// IPv6 in brackets when a port follows.
pub fn host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The mask of an IPv4 prefix length, as a number (`/24` is `0xffffff00`).
pub fn v4_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// The prefix length of a contiguous IPv4 netmask (`255.255.255.0` is 24).
pub fn v4_prefix_of(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let p = m.leading_ones();
    (m.checked_shl(p).unwrap_or(0) == 0).then_some(p as u8)
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl Subnet {
    pub fn family(&self) -> Family {
        Family::of(&self.address)
    }
    /// The IPv4 mask as a number; 0 for an IPv6 subnet.
    pub fn mask(&self) -> u32 {
        match self.address {
            IpAddr::V4(_) => v4_mask(self.prefix),
            IpAddr::V6(_) => 0,
        }
    }
    fn mask_bits(&self) -> u128 {
        let width = u32::from(self.family().host_prefix());
        let p = u32::from(self.prefix).min(width);
        let all = if width == 32 { u128::from(u32::MAX) } else { u128::MAX };
        if p == 0 {
            0
        } else {
            (all << (width - p)) & all
        }
    }
    /// Whether `ip` lies in this subnet (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.address.is_ipv4() == ip.is_ipv4() && bits(ip) & self.mask_bits() == bits(self.address) & self.mask_bits()
    }
    /// The first address of the subnet.
    pub fn network(&self) -> IpAddr {
        let n = bits(self.address) & self.mask_bits();
        match self.address {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
        }
    }
    /// The address `host` places into the subnet (`.100` in a /24).
    pub fn host(&self, host: u128) -> IpAddr {
        let n = bits(self.network()) | (host & !self.mask_bits());
        match self.address {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
        }
    }
    /// The subnet lvsdr assumes around an address whose LAN is not stated: a /24 or a /64.
    pub fn assumed_around(ip: IpAddr) -> Subnet {
        let prefix = if ip.is_ipv4() { 24 } else { 64 };
        let s = Subnet { address: ip, prefix };
        Subnet {
            address: s.network(),
            prefix,
        }
    }
    pub fn parse(text: &str) -> Result<Subnet, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not a subnet: write it as ADDRESS/PREFIX, e.g. 192.168.1.0/24 or 2001:db8::/64"))?;
        let address: IpAddr = addr.parse().map_err(|_| format!("`{addr}` is not an IP address"))?;
        let width = Family::of(&address).host_prefix();
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= width)
            .ok_or_else(|| format!("`{prefix}` is not a prefix length between 0 and {width}"))?;
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

/// A host's addresses on the LAN: one or two (an IPv4 and an IPv6 one), the first the main one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses(pub Vec<At<IpAddr>>);

impl Addresses {
    pub fn one(a: At<IpAddr>) -> Addresses {
        Addresses(vec![a])
    }
    /// The main address (the first written).
    pub fn main(&self) -> &At<IpAddr> {
        &self.0[0]
    }
    /// The host's address of a family, if it has one.
    pub fn of(&self, family: Family) -> Option<&At<IpAddr>> {
        self.0.iter().find(|a| Family::of(&a.value) == family)
    }
    pub fn iter(&self) -> impl Iterator<Item = &At<IpAddr>> {
        self.0.iter()
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|a| a.value == ip)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub name: HostName,
    pub address: Addresses,
}

/// The router between the client and the LAN, for setups where the client is
/// not on the LAN: the VIP is often public while the real servers are private,
/// and the real servers' replies go back through this router, not the director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    pub name: HostName,
    /// Its addresses on the LAN: the real servers' default gateway.
    pub address: Addresses,
    /// Its addresses on the client's side: the client's default gateway.
    pub outside: Addresses,
    pub span: Span,
}

/// keepalived's VRRP settings of a director in an active/backup pair: the
/// instance that moves the VIPs to the backup when the master goes silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vrrp {
    /// `vrrp_instance NAME`
    pub instance: At<VrrpInstance>,
    /// `virtual_router_id`, 1..=255: the pair's shared id on the link.
    pub router_id: At<u8>,
    /// `priority`, 1..=254: the higher one is master.
    pub priority: At<u8>,
    /// `state MASTER|BACKUP`: the state it starts in.
    pub master: At<bool>,
    /// `advert_int`, in milliseconds (keepalived takes seconds, with decimals).
    pub advert_ms: At<u32>,
    /// `nopreempt`: a returning master does not take the VIPs back.
    pub nopreempt: Option<Span>,
    /// `authentication { auth_type PASS; auth_pass … }`, kept as written (not rendered back).
    pub auth: Option<At<VrrpAuth>>,
    /// The VIPs the instance carries (`virtual_ipaddress`).
    pub vips: Vec<At<IpAddr>>,
    pub span: Span,
}

/// keepalived's connection sync: the IPVS sync daemon that copies the
/// connection table from master to backup (`lvs_sync_daemon IFACE INSTANCE
/// [id N]`, or the older `lvs_sync_daemon_interface IFACE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemon {
    pub interface: At<IfName>,
    /// The sync id (`id N`, 0..=255).
    pub id: At<u8>,
    pub span: Span,
}

/// A virtual IP on a director's NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub address: At<IpAddr>,
    pub prefix: At<u8>,
    /// For an IPv6 VIP added without `nodad`: where. Duplicate address
    /// detection then holds it tentative, and fails it if another host has it.
    pub dad: Option<Span>,
    /// For an IPv6 VIP on the director added as a preferred address (without
    /// `preferred_lft 0`): where. It can then be the source of the director's
    /// own connections to the real servers.
    pub preferred: Option<Span>,
}

impl Vip {
    pub fn family(&self) -> Family {
        Family::of(&self.address.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Director {
    pub name: HostName,
    pub address: Addresses,
    /// The NIC facing the LAN, which also carries the VIPs.
    pub interface: At<IfName>,
    /// Its other interfaces with their addresses (an uplink, a management
    /// network), as the input gives them. They are kept, not built in the lab.
    pub extra_nics: Vec<Nic>,
    /// Every VIP the director carries, IPv4 and IPv6.
    pub vips: Vec<Vip>,
    pub sysctls: Sysctls,
    pub span: Span,
    /// The input says nothing of the director (a real-server-only script):
    /// it stands in so that the real servers have VIPs to serve, and the
    /// director's rules do not judge it.
    pub placeholder: bool,
    /// VRRP, when the director is one of an active/backup pair.
    pub vrrp: Option<Vrrp>,
    /// IPVS connection sync, when it runs.
    pub sync: Option<SyncDaemon>,
    /// This director's own virtual services, when its configuration was read
    /// apart from the first director's (a pair's two keepalived.conf files):
    /// compared with [`Topology::services`] for drift. Empty means the same.
    pub own_services: Vec<VirtualService>,
}

impl Director {
    pub fn vip(&self, ip: IpAddr) -> Option<&Vip> {
        self.vips.iter().find(|v| v.address.value == ip)
    }
}

/// Where the firewall mark of a fwmark service comes from: a rule in the
/// `mangle` table (`iptables -t mangle -A PREROUTING -d VIP -p tcp --dport 80
/// -j MARK --set-mark 1`, or its nft form) on the director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkRule {
    pub mark: At<u32>,
    /// Destination addresses that get the mark (the VIP, or a prefix of VIPs).
    pub destination: At<Subnet>,
    /// `None` marks every protocol.
    pub protocol: Option<At<Protocol>>,
    /// Destination ports that get the mark; empty means every port.
    pub ports: At<Vec<u16>>,
    /// The tool the input wrote it with, so that rendering speaks the same.
    pub tool: MarkTool,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkTool {
    Nft,
    Iptables,
}

impl MarkTool {
    pub fn name(self) -> &'static str {
        match self {
            MarkTool::Nft => "nft",
            MarkTool::Iptables => "iptables",
        }
    }
    pub fn parse(s: &str) -> Option<MarkTool> {
        match s {
            "nft" | "nftables" => Some(MarkTool::Nft),
            "iptables" | "ip6tables" => Some(MarkTool::Iptables),
            _ => None,
        }
    }
}

impl MarkRule {
    pub fn family(&self) -> Family {
        self.destination.family()
    }
    /// Whether a packet to `ip`, `protocol`, `port` gets this mark.
    pub fn matches(&self, ip: IpAddr, protocol: Protocol, port: u16) -> bool {
        self.destination.contains(ip)
            && self.protocol.as_ref().is_none_or(|p| p.value == protocol)
            && (self.ports.is_empty() || self.ports.contains(&port))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persistence {
    pub timeout: At<u32>,
    /// The persistence granularity as a prefix length (`-M 255.255.255.0` is 24;
    /// IPv6 services take the prefix length itself).
    pub netmask: At<u8>,
}

impl Persistence {
    /// The granularity as IPVS's IPv4 netmask attribute wants it.
    pub fn v4_netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(v4_mask(self.netmask.value))
    }
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
    pub health_check: Option<At<HealthCheck>>,
    /// The `url` blocks of an HTTP_GET or SSL_GET check, in order: what the
    /// check asks for and what it expects back. Empty means lvsdr's own,
    /// `path /` and `status_code 200`.
    pub urls: Vec<HealthUrl>,
    pub span: Span,
}

/// One `url { path …; status_code …; digest … }` of an HTTP_GET or SSL_GET
/// check, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthUrl {
    pub path: At<UrlPath>,
    /// The status the page must answer with; none leaves it to keepalived's
    /// default.
    pub status_code: Option<At<HttpStatus>>,
    /// The MD5 of the page, as `genhash` prints it.
    pub digest: Option<At<UrlDigest>>,
    pub span: Span,
}

pub use crate::names::HEALTH_CHECKS;

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
    /// The VIP of a protocol/port service; `None` for a fwmark service,
    /// whose addresses are its [`MarkRule`]s'.
    pub vip: Option<At<IpAddr>>,
    /// IPv4 or IPv6 (`ipvsadm -6` for a fwmark service).
    pub family: Family,
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
    /// Whether two services are the same one to the kernel.
    pub fn same_as(&self, other: &VirtualService) -> bool {
        self.key.value == other.key.value
            && self.family == other.family
            && self.vip.as_ref().map(|v| v.value) == other.vip.as_ref().map(|v| v.value)
    }
    /// How `ipvsadm` names the service: `-t 192.168.1.192:80`, `-f 1 -6`.
    pub fn ipvsadm_id(&self) -> String {
        match (self.key.value, &self.vip) {
            (ServiceKey::Port { protocol, port }, Some(v)) => {
                let flag = match protocol {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                    Protocol::Sctp => "--sctp-service",
                };
                format!("{flag} {}", host_port(v.value, port))
            }
            (ServiceKey::Fwmark(m), _) if self.family == Family::V6 => format!("-f {m} -6"),
            (ServiceKey::Fwmark(m), _) => format!("-f {m}"),
            (ServiceKey::Port { protocol, port }, None) => format!("-{} :{port}", &protocol.name()[..1]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    pub name: At<HostName>,
    pub address: Addresses,
    /// The NIC that faces the director.
    pub interface: At<IfName>,
    /// Addresses on `lo`: the VIPs this server answers for, each with its prefix.
    pub lo: Vec<At<Subnet>>,
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
    pub address: At<IpAddr>,
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
    /// The address on `lo` that holds `vip`, if any.
    pub fn lo_vip(&self, vip: IpAddr) -> Option<&At<Subnet>> {
        self.lo.iter().find(|a| a.address == vip)
    }
}

/// A whole LVS-DR setup: the directors with their VIPs, the virtual services
/// on them, the real servers behind them, and a client to test from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub name: String,
    /// The subnets of the LAN the directors share with the real servers, as
    /// stated by the input. Empty means the input did not say: rules that
    /// need it report what they assume, at info level.
    pub lans: Vec<At<Subnet>>,
    pub client: Client,
    /// At least one. The first is the one that carries the VIPs in the lab;
    /// a pair's backup comes second.
    pub directors: Vec<Director>,
    pub services: Vec<VirtualService>,
    pub real_servers: Vec<RealServer>,
    /// The director's firewall marking rules, for fwmark services.
    pub marks: Vec<MarkRule>,
    /// The router in front of the LAN, when the client is not on it.
    pub router: Option<Router>,
}

impl Topology {
    /// The (first) director.
    pub fn director(&self) -> &Director {
        &self.directors[0]
    }
    pub fn real_server(&self, name: &str) -> Option<&RealServer> {
        self.real_servers.iter().find(|r| r.name.value == name)
    }
    /// The service written as `tcp/80` (one VIP), `tcp 192.0.2.1:80` or `fwmark/1`.
    pub fn service(&self, key: &str) -> Option<&VirtualService> {
        self.services.iter().find(|s| self.label(s) == key)
    }
    /// Every VIP of every director, once, in order.
    pub fn vips(&self) -> Vec<&Vip> {
        let mut seen = std::collections::HashSet::new();
        self.directors
            .iter()
            .flat_map(|d| &d.vips)
            .filter(|v| seen.insert(v.address.value))
            .collect()
    }
    /// Whether the topology holds more than one VIP, so that services need their VIP to be told apart.
    pub fn many_vips(&self) -> bool {
        let mut all = self.directors.iter().flat_map(|d| &d.vips);
        let first = all.next().map(|v| v.address.value);
        all.any(|v| Some(v.address.value) != first)
    }
    /// How reports and findings name a service: `tcp/80` while the topology
    /// has one VIP (as the first release did), `tcp 192.0.2.1:80` or
    /// `tcp [2001:db8::1]:80` once it has several.
    pub fn label(&self, s: &VirtualService) -> String {
        match (&s.vip, s.key.value) {
            (Some(v), ServiceKey::Port { protocol, port }) if self.many_vips() => {
                format!("{} {}", protocol.name(), host_port(v.value, port))
            }
            // An IPv4 and an IPv6 service may share a mark: they are two services.
            (None, ServiceKey::Fwmark(m)) if s.family == Family::V6 => format!("fwmark/{m}/ipv6"),
            _ => s.key.value.to_string(),
        }
    }
    /// The VIPs a service answers on: its own, or the director VIPs its mark rules cover.
    pub fn service_vips(&self, s: &VirtualService) -> Vec<IpAddr> {
        match (&s.vip, s.key.value) {
            (Some(v), _) => vec![v.value],
            (None, ServiceKey::Fwmark(m)) => {
                let mut out: Vec<IpAddr> = self
                    .vips()
                    .into_iter()
                    .map(|v| v.address.value)
                    .filter(|ip| self.marks.iter().any(|r| r.mark.value == m && r.destination.contains(*ip)))
                    .collect();
                out.dedup();
                out
            }
            (None, _) => vec![],
        }
    }
    /// The mark rules that feed a fwmark service.
    pub fn marks_of(&self, s: &VirtualService) -> Vec<&MarkRule> {
        match s.key.value {
            ServiceKey::Fwmark(m) => self.marks.iter().filter(|r| r.mark.value == m && r.family() == s.family).collect(),
            ServiceKey::Port { .. } => vec![],
        }
    }
    /// The VIPs a real server serves, through any service.
    pub fn vips_served_by(&self, server: &str) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        for s in &self.services {
            if s.destinations.iter().any(|d| d.server.value == server) {
                for v in self.service_vips(s) {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
            }
        }
        out
    }
    /// The LAN subnet an address is on: a stated one, or the one lvsdr
    /// assumes (a /24 or /64 around the director's address of that family).
    pub fn lan_of(&self, family: Family) -> (Subnet, bool) {
        if let Some(l) = self.lans.iter().find(|l| l.family() == family) {
            return (l.value, true);
        }
        let around = self
            .director()
            .address
            .of(family)
            .map(|a| a.value)
            .or_else(|| self.real_servers.iter().find_map(|r| r.address.of(family).map(|a| a.value)))
            .unwrap_or(match family {
                Family::V4 => IpAddr::V4(Ipv4Addr::new(192, 168, 1, 0)),
                Family::V6 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)),
            });
        (Subnet::assumed_around(around), false)
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
        fn ca(a: &Addresses) -> Addresses {
            Addresses(a.0.iter().map(c).collect())
        }
        Topology {
            name: self.name.clone(),
            lans: self.lans.iter().map(c).collect(),
            client: Client {
                name: self.client.name.clone(),
                address: ca(&self.client.address),
            },
            directors: self
                .directors
                .iter()
                .map(|d| Director {
                    name: d.name.clone(),
                    address: ca(&d.address),
                    interface: c(&d.interface),
                    extra_nics: d
                        .extra_nics
                        .iter()
                        .map(|n| Nic {
                            interface: c(&n.interface),
                            address: c(&n.address),
                        })
                        .collect(),
                    vips: d
                        .vips
                        .iter()
                        .map(|v| Vip {
                            address: c(&v.address),
                            prefix: c(&v.prefix),
                            dad: v.dad.map(|_| Span::NONE),
                            preferred: v.preferred.map(|_| Span::NONE),
                        })
                        .collect(),
                    sysctls: cs(&d.sysctls),
                    span: Span::NONE,
                    placeholder: d.placeholder,
                    vrrp: d.vrrp.as_ref().map(|v| Vrrp {
                        instance: c(&v.instance),
                        router_id: c(&v.router_id),
                        priority: c(&v.priority),
                        master: c(&v.master),
                        advert_ms: c(&v.advert_ms),
                        nopreempt: v.nopreempt.map(|_| Span::NONE),
                        auth: v.auth.as_ref().map(c),
                        vips: v.vips.iter().map(c).collect(),
                        span: Span::NONE,
                    }),
                    sync: d.sync.as_ref().map(|s| SyncDaemon {
                        interface: c(&s.interface),
                        id: c(&s.id),
                        span: Span::NONE,
                    }),
                    own_services: d.own_services.iter().map(service_without_spans).collect(),
                })
                .collect(),
            services: self.services.iter().map(service_without_spans).collect(),
            real_servers: self
                .real_servers
                .iter()
                .map(|r| RealServer {
                    name: c(&r.name),
                    address: ca(&r.address),
                    interface: c(&r.interface),
                    lo: r.lo.iter().map(c).collect(),
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
            marks: self
                .marks
                .iter()
                .map(|m| MarkRule {
                    mark: c(&m.mark),
                    destination: c(&m.destination),
                    protocol: m.protocol.as_ref().map(c),
                    ports: c(&m.ports),
                    tool: m.tool,
                    span: Span::NONE,
                })
                .collect(),
            router: self.router.as_ref().map(|r| Router {
                name: r.name.clone(),
                address: ca(&r.address),
                outside: ca(&r.outside),
                span: Span::NONE,
            }),
        }
    }
}

/// A service with every span cleared.
fn service_without_spans(s: &VirtualService) -> VirtualService {
    fn c<T: Clone>(a: &At<T>) -> At<T> {
        At::implied(a.value.clone())
    }
    VirtualService {
        key: c(&s.key),
        vip: s.vip.as_ref().map(c),
        family: s.family,
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
                urls: d
                    .urls
                    .iter()
                    .map(|u| HealthUrl {
                        path: c(&u.path),
                        status_code: u.status_code.as_ref().map(c),
                        digest: u.digest.as_ref().map(c),
                        span: Span::NONE,
                    })
                    .collect(),
                span: Span::NONE,
            })
            .collect(),
        span: Span::NONE,
    }
}
