//! The IPVS generic netlink message layout (`include/uapi/linux/ip_vs.h`),
//! as plain Rust: attribute numbers, and the encoding of a service and a
//! destination into nested attributes. Pure, so it is tested byte by byte
//! without root.

use neli::genl::{AttrTypeBuilder, Nlattr, NlattrBuilder};
use neli::types::{Buffer, GenlBuffer};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const FAMILY: &str = "IPVS";
pub const VERSION: u8 = 1;

pub mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const GET_INFO: u8 = 15;
    pub const FLUSH: u8 = 17;
}

pub mod attr {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
}

pub mod svc {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const STATS64: u16 = 12;
}

pub mod dest {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const ADDR_FAMILY: u16 = 11;
    pub const STATS64: u16 = 12;
}

pub mod stats {
    pub const CONNS: u16 = 1;
    pub const INPKTS: u16 = 2;
    pub const OUTPKTS: u16 = 3;
    pub const INBYTES: u16 = 4;
    pub const OUTBYTES: u16 = 5;
}

pub mod info {
    pub const VERSION: u16 = 1;
    pub const CONN_TAB_SIZE: u16 = 2;
}

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// The address family of a service or a destination (`AF_INET`, `AF_INET6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    /// `ipvsadm -6`
    Ipv6,
}

impl Family {
    pub fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
    pub fn value(self) -> u16 {
        match self {
            Family::Ipv4 => AF_INET,
            Family::Ipv6 => AF_INET6,
        }
    }
    pub fn from_value(v: u16) -> Option<Family> {
        match v {
            AF_INET => Some(Family::Ipv4),
            AF_INET6 => Some(Family::Ipv6),
            _ => None,
        }
    }
}

/// The transport protocol of a service (`-t`, `-u`, `--sctp-service`): the core's own.
pub use lvsdr_core::model::Protocol;

/// What identifies a service to the kernel: protocol, address and port, or a firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceId {
    /// `-t|-u|--sctp-service ADDR:PORT`; an IPv6 address makes an IPv6 service.
    Port { protocol: Protocol, address: IpAddr, port: u16 },
    /// `-f MARK`, or `-f MARK -6`: a mark names no address, so the family is said.
    Fwmark { mark: u32, family: Family },
}

impl ServiceId {
    pub fn family(&self) -> Family {
        match *self {
            ServiceId::Port { address, .. } => Family::of(address),
            ServiceId::Fwmark { family, .. } => family,
        }
    }
}

/// `tcp 192.168.1.192:80`, `tcp [2001:db8::1]:80`, `fwmark 7`, `fwmark 7 ipv6`.
impl std::fmt::Display for ServiceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ServiceId::Port { protocol, address, port } => write!(f, "{} {}", protocol.name(), SocketAddr::new(address, port)),
            ServiceId::Fwmark {
                mark,
                family: Family::Ipv4,
            } => write!(f, "fwmark {mark}"),
            ServiceId::Fwmark {
                mark,
                family: Family::Ipv6,
            } => write!(f, "fwmark {mark} ipv6"),
        }
    }
}

/// How IPVS forwards to a destination (`IP_VS_CONN_F_FWD_MASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMethod {
    /// `-m`
    Masq,
    Local,
    /// `-i`
    Tunnel,
    /// `-g`: direct routing.
    Route,
}

impl ForwardMethod {
    pub fn value(self) -> u32 {
        match self {
            ForwardMethod::Masq => 0,
            ForwardMethod::Local => 1,
            ForwardMethod::Tunnel => 2,
            ForwardMethod::Route => 3,
        }
    }
    pub fn from_value(v: u32) -> Option<ForwardMethod> {
        match v {
            0 => Some(ForwardMethod::Masq),
            1 => Some(ForwardMethod::Local),
            2 => Some(ForwardMethod::Tunnel),
            3 => Some(ForwardMethod::Route),
            _ => None,
        }
    }
}

/// Service flags (`IP_VS_SVC_F_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ServiceFlags(pub u32);

impl ServiceFlags {
    /// `-p`
    pub const PERSISTENT: ServiceFlags = ServiceFlags(0x1);
    /// Set by the kernel on every service in its table; not a setting.
    pub const HASHED: ServiceFlags = ServiceFlags(0x2);
    /// `-o`
    pub const ONE_PACKET: ServiceFlags = ServiceFlags(0x4);
    /// `-b sh-fallback` / `mh-fallback`
    pub const SCHED1: ServiceFlags = ServiceFlags(0x8);
    /// `-b sh-port` / `mh-port`
    pub const SCHED2: ServiceFlags = ServiceFlags(0x10);
    pub const SCHED3: ServiceFlags = ServiceFlags(0x20);

    pub fn contains(self, other: ServiceFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// The flags a user sets, without the kernel's own HASHED bit.
    pub fn settings(self) -> ServiceFlags {
        ServiceFlags(self.0 & !Self::HASHED.0)
    }
}

impl std::ops::BitOr for ServiceFlags {
    type Output = ServiceFlags;
    fn bitor(self, rhs: ServiceFlags) -> ServiceFlags {
        ServiceFlags(self.0 | rhs.0)
    }
}

/// The persistence granularity of a service (`-M`), `IPVS_SVC_ATTR_NETMASK`.
/// The kernel reads the same four bytes two ways: for IPv4 a be32 mask, for
/// IPv6 a prefix length (1..=128) in host order (`ip_vs_add_service` checks
/// it). One type per reading, so a mask of the wrong family cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(untagged)]
pub enum Netmask {
    /// `-M 255.255.255.0`; serialises as the dotted mask.
    V4(Ipv4Addr),
    /// `-M 64` on an IPv6 service: the prefix length; serialises as a number.
    V6(u8),
}

impl Netmask {
    /// One client per persistence entry, what `ipvsadm` sends without `-M`:
    /// 255.255.255.255 or /128.
    pub fn host(family: Family) -> Netmask {
        match family {
            Family::Ipv4 => Netmask::V4(Ipv4Addr::BROADCAST),
            Family::Ipv6 => Netmask::V6(128),
        }
    }
    pub fn family(self) -> Family {
        match self {
            Netmask::V4(_) => Family::Ipv4,
            Netmask::V6(_) => Family::Ipv6,
        }
    }
    /// The attribute's four bytes.
    fn payload(self) -> Vec<u8> {
        match self {
            Netmask::V4(mask) => mask.octets().to_vec(),
            Netmask::V6(prefix) => u32ne(u32::from(prefix)),
        }
    }
}

impl From<Ipv4Addr> for Netmask {
    fn from(mask: Ipv4Addr) -> Netmask {
        Netmask::V4(mask)
    }
}

/// `255.255.255.0` or `/64`.
impl std::fmt::Display for Netmask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Netmask::V4(mask) => write!(f, "{mask}"),
            Netmask::V6(prefix) => write!(f, "/{prefix}"),
        }
    }
}

/// A virtual service as `ipvsadm -A` describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Service {
    pub id: ServiceId,
    pub scheduler: String,
    pub flags: ServiceFlags,
    pub timeout: u32,
    /// Of the service's family: encoding refuses any other.
    pub netmask: Netmask,
}

/// A real server as `ipvsadm -a` describes it. Its family is its address's,
/// which may differ from the service's only where the kernel allows it (tunnels).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dest {
    pub address: IpAddr,
    pub port: u16,
    pub forward: ForwardMethod,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
}

/// Traffic counters (`ipvsadm -L --stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

/// A reply the kernel sent that does not hold what `ip_vs.h` promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the kernel's {what} reply {problem}")]
pub struct DecodeError {
    pub what: &'static str,
    pub problem: String,
}

fn missing(what: &'static str, attr: &str) -> DecodeError {
    DecodeError {
        what,
        problem: format!("has no {attr} attribute"),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot encode IPVS attribute: {0}")]
pub struct EncodeError(String);

fn attr(kind: u16, payload: Vec<u8>) -> Result<Nlattr<u16, Buffer>, EncodeError> {
    NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(kind)
                .build()
                .map_err(|e| EncodeError(e.to_string()))?,
        )
        .nla_payload(payload)
        .build()
        .map_err(|e| EncodeError(e.to_string()))
}

fn nested(kind: u16, children: &[Nlattr<u16, Buffer>]) -> Result<Nlattr<u16, Buffer>, EncodeError> {
    let mut parent = NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(kind)
                .nla_nested(true)
                .build()
                .map_err(|e| EncodeError(e.to_string()))?,
        )
        .nla_payload(Vec::<u8>::new())
        .build()
        .map_err(|e| EncodeError(e.to_string()))?;
    for c in children {
        parent = parent.nest(c).map_err(|e| EncodeError(e.to_string()))?;
    }
    Ok(parent)
}

/// The 16-byte `union nf_inet_addr`: an IPv4 address fills the first four bytes.
fn addr16(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v4) => {
            let mut v = v4.octets().to_vec();
            v.resize(16, 0);
            v
        }
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn u16ne(v: u16) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
fn u32ne(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn service_id_attrs(id: &ServiceId) -> Result<Vec<Nlattr<u16, Buffer>>, EncodeError> {
    Ok(match *id {
        ServiceId::Fwmark { mark, family } => vec![attr(svc::AF, u16ne(family.value()))?, attr(svc::FWMARK, u32ne(mark))?],
        ServiceId::Port { protocol, address, port } => vec![
            attr(svc::AF, u16ne(Family::of(address).value()))?,
            attr(svc::PROTOCOL, u16ne(protocol.number()))?,
            attr(svc::ADDR, addr16(address))?,
            attr(svc::PORT, port.to_be_bytes().to_vec())?,
        ],
    })
}

/// `IPVS_CMD_ATTR_SERVICE` naming a service only (for deletes, dest commands and dumps).
pub fn service_id_attr(id: &ServiceId) -> Result<Nlattr<u16, Buffer>, EncodeError> {
    nested(attr::SERVICE, &service_id_attrs(id)?)
}

/// `IPVS_CMD_ATTR_SERVICE` with everything a new service needs.
pub fn service_attr(s: &Service) -> Result<Nlattr<u16, Buffer>, EncodeError> {
    if s.netmask.family() != s.id.family() {
        return Err(EncodeError(format!(
            "the {:?} service {} has an {:?} netmask ({})",
            s.id.family(),
            s.id,
            s.netmask.family(),
            s.netmask
        )));
    }
    let mut children = service_id_attrs(&s.id)?;
    let mut name = s.scheduler.as_bytes().to_vec();
    name.push(0);
    children.push(attr(svc::SCHED_NAME, name)?);
    let mut flags = u32ne(s.flags.0);
    flags.extend(u32ne(u32::MAX));
    children.push(attr(svc::FLAGS, flags)?);
    children.push(attr(svc::TIMEOUT, u32ne(s.timeout))?);
    children.push(attr(svc::NETMASK, s.netmask.payload())?);
    nested(attr::SERVICE, &children)
}

/// `IPVS_CMD_ATTR_DEST`.
pub fn dest_attr(d: &Dest) -> Result<Nlattr<u16, Buffer>, EncodeError> {
    nested(
        attr::DEST,
        &[
            attr(dest::ADDR, addr16(d.address))?,
            attr(dest::PORT, d.port.to_be_bytes().to_vec())?,
            attr(dest::FWD_METHOD, u32ne(d.forward.value()))?,
            attr(dest::WEIGHT, u32ne(d.weight))?,
            attr(dest::U_THRESH, u32ne(d.upper_threshold))?,
            attr(dest::L_THRESH, u32ne(d.lower_threshold))?,
            attr(dest::ADDR_FAMILY, u16ne(Family::of(d.address).value()))?,
        ],
    )
}

pub fn buffer(attrs: Vec<Nlattr<u16, Buffer>>) -> GenlBuffer<u16, Buffer> {
    attrs.into_iter().collect()
}

/// The attributes' bytes, as they follow the generic netlink header.
pub fn attr_bytes(attrs: Vec<Nlattr<u16, Buffer>>) -> Result<Vec<u8>, EncodeError> {
    use neli::ToBytes;
    let mut out = std::io::Cursor::new(Vec::new());
    buffer(attrs).to_bytes(&mut out).map_err(|e| EncodeError(e.to_string()))?;
    Ok(out.into_inner())
}

/// Reads a flat list of netlink attributes: (type without flags, payload).
pub use crate::netlink::parse_attrs;

/// One nest's attributes, read for one kind of reply: every lookup that
/// finds nothing, or too few bytes, is an error naming the attribute.
struct Attrs<'a> {
    what: &'static str,
    list: Vec<(u16, &'a [u8])>,
}

impl<'a> Attrs<'a> {
    fn new(what: &'static str, bytes: &'a [u8]) -> Attrs<'a> {
        Attrs {
            what,
            list: parse_attrs(bytes),
        }
    }
    fn get(&self, kind: u16) -> Option<&'a [u8]> {
        self.list.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
    }
    fn bytes<const N: usize>(&self, kind: u16, name: &str) -> Result<[u8; N], DecodeError> {
        let v = self.get(kind).ok_or_else(|| missing(self.what, name))?;
        v.get(..N).and_then(|b| b.try_into().ok()).ok_or_else(|| DecodeError {
            what: self.what,
            problem: format!("has a {name} attribute of {} byte(s), expected {N}", v.len()),
        })
    }
    fn u16(&self, kind: u16, name: &str) -> Result<u16, DecodeError> {
        self.bytes::<2>(kind, name).map(u16::from_ne_bytes)
    }
    fn be16(&self, kind: u16, name: &str) -> Result<u16, DecodeError> {
        self.bytes::<2>(kind, name).map(u16::from_be_bytes)
    }
    fn u32(&self, kind: u16, name: &str) -> Result<u32, DecodeError> {
        self.bytes::<4>(kind, name).map(u32::from_ne_bytes)
    }
    fn u64(&self, kind: u16, name: &str) -> Result<u64, DecodeError> {
        self.bytes::<8>(kind, name).map(u64::from_ne_bytes)
    }
    fn ipv4(&self, kind: u16, name: &str) -> Result<Ipv4Addr, DecodeError> {
        self.bytes::<4>(kind, name).map(Ipv4Addr::from)
    }
    /// A 16-byte address field read as `family` says.
    fn address(&self, kind: u16, name: &str, family: Family) -> Result<IpAddr, DecodeError> {
        Ok(match family {
            Family::Ipv4 => IpAddr::V4(self.ipv4(kind, name)?),
            Family::Ipv6 => IpAddr::V6(Ipv6Addr::from(self.bytes::<16>(kind, name)?)),
        })
    }
    fn family(&self, kind: u16, name: &str) -> Result<Family, DecodeError> {
        let v = self.u16(kind, name)?;
        Family::from_value(v).ok_or_else(|| DecodeError {
            what: self.what,
            problem: format!("has address family {v}; lvsdr reads IPv4 (AF_INET, 2) and IPv6 (AF_INET6, 10)"),
        })
    }
    fn netmask(&self, family: Family) -> Result<Netmask, DecodeError> {
        match family {
            Family::Ipv4 => self.ipv4(svc::NETMASK, "NETMASK").map(Netmask::V4),
            Family::Ipv6 => {
                let prefix = self.u32(svc::NETMASK, "NETMASK")?;
                match u8::try_from(prefix) {
                    Ok(p @ 1..=128) => Ok(Netmask::V6(p)),
                    _ => Err(DecodeError {
                        what: self.what,
                        problem: format!("has an IPv6 NETMASK of {prefix}, not a prefix length 1..=128"),
                    }),
                }
            }
        }
    }
}

/// Counters from a STATS64 (preferred) or STATS nest. Every counter must be there:
/// a missing OUTPKTS is an error, never "zero packets out".
pub fn parse_stats(attrs: &[(u16, &[u8])], what: &'static str, stats64: u16, stats32: u16) -> Result<Stats, DecodeError> {
    let find = |kind: u16| attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v);
    if let Some(nest) = find(stats64) {
        let a = Attrs::new(what, nest);
        return Ok(Stats {
            conns: a.u64(stats::CONNS, "STATS64.CONNS")?,
            inpkts: a.u64(stats::INPKTS, "STATS64.INPKTS")?,
            outpkts: a.u64(stats::OUTPKTS, "STATS64.OUTPKTS")?,
            inbytes: a.u64(stats::INBYTES, "STATS64.INBYTES")?,
            outbytes: a.u64(stats::OUTBYTES, "STATS64.OUTBYTES")?,
        });
    }
    if let Some(nest) = find(stats32) {
        let a = Attrs::new(what, nest);
        return Ok(Stats {
            conns: a.u32(stats::CONNS, "STATS.CONNS")?.into(),
            inpkts: a.u32(stats::INPKTS, "STATS.INPKTS")?.into(),
            outpkts: a.u32(stats::OUTPKTS, "STATS.OUTPKTS")?.into(),
            inbytes: a.u64(stats::INBYTES, "STATS.INBYTES")?,
            outbytes: a.u64(stats::OUTBYTES, "STATS.OUTBYTES")?,
        });
    }
    Err(missing(what, "STATS64 or STATS"))
}

/// A service as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceEntry {
    pub service: Service,
    pub stats: Stats,
}

/// A destination as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DestEntry {
    pub dest: Dest,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    pub stats: Stats,
}

/// Decodes the nested service attribute of a GET_SERVICE reply.
pub fn decode_service(nest: &[u8]) -> Result<ServiceEntry, DecodeError> {
    let a = Attrs::new("service", nest);
    let family = a.family(svc::AF, "AF")?;
    let id = match a.get(svc::FWMARK) {
        Some(_) => ServiceId::Fwmark {
            mark: a.u32(svc::FWMARK, "FWMARK")?,
            family,
        },
        None => {
            let number = a.u16(svc::PROTOCOL, "PROTOCOL")?;
            ServiceId::Port {
                protocol: Protocol::from_number(number).ok_or_else(|| DecodeError {
                    what: "service",
                    problem: format!("has protocol {number}, which is not tcp, udp or sctp"),
                })?,
                address: a.address(svc::ADDR, "ADDR", family)?,
                port: a.be16(svc::PORT, "PORT")?,
            }
        }
    };
    let sched = a.get(svc::SCHED_NAME).ok_or_else(|| missing("service", "SCHED_NAME"))?;
    let scheduler = std::str::from_utf8(sched)
        .map(|s| s.trim_end_matches('\0').to_string())
        .map_err(|_| DecodeError {
            what: "service",
            problem: "has a SCHED_NAME that is not text".into(),
        })?;
    Ok(ServiceEntry {
        service: Service {
            id,
            scheduler,
            flags: ServiceFlags(a.u32(svc::FLAGS, "FLAGS")?),
            timeout: a.u32(svc::TIMEOUT, "TIMEOUT")?,
            netmask: a.netmask(family)?,
        },
        stats: parse_stats(&a.list, "service", svc::STATS64, svc::STATS)?,
    })
}

/// Decodes the nested destination attribute of a GET_DEST reply for a
/// service of family `service` (kernels before 3.18 send no destination
/// family: there a destination has its service's).
pub fn decode_dest(nest: &[u8], service: Family) -> Result<DestEntry, DecodeError> {
    let a = Attrs::new("destination", nest);
    let family = match a.get(dest::ADDR_FAMILY) {
        None => service,
        Some(_) => a.family(dest::ADDR_FAMILY, "ADDR_FAMILY")?,
    };
    let method = a.u32(dest::FWD_METHOD, "FWD_METHOD")? & 0x7;
    Ok(DestEntry {
        dest: Dest {
            address: a.address(dest::ADDR, "ADDR", family)?,
            port: a.be16(dest::PORT, "PORT")?,
            forward: ForwardMethod::from_value(method).ok_or_else(|| DecodeError {
                what: "destination",
                problem: format!("has forwarding method {method}, which is not masq, local, tunnel or route"),
            })?,
            weight: a.u32(dest::WEIGHT, "WEIGHT")?,
            upper_threshold: a.u32(dest::U_THRESH, "U_THRESH")?,
            lower_threshold: a.u32(dest::L_THRESH, "L_THRESH")?,
        },
        active_conns: a.u32(dest::ACTIVE_CONNS, "ACTIVE_CONNS")?,
        inactive_conns: a.u32(dest::INACT_CONNS, "INACT_CONNS")?,
        persistent_conns: a.u32(dest::PERSIST_CONNS, "PERSIST_CONNS")?,
        stats: parse_stats(&a.list, "destination", dest::STATS64, dest::STATS)?,
    })
}

/// The IPVS version from a GET_INFO reply's VERSION attribute, as `major.minor.patch`.
pub fn decode_version(payload: Option<&[u8]>) -> Result<String, DecodeError> {
    let v = payload
        .ok_or_else(|| missing("info", "VERSION"))?
        .get(..4)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| DecodeError {
            what: "info",
            problem: "has a VERSION attribute shorter than 4 bytes".into(),
        })?;
    Ok(format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use neli::ToBytes;
    use std::io::Cursor;

    /// Appends one attribute, padded to 4 bytes.
    fn push(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
        buf.extend(((4 + payload.len()) as u16).to_ne_bytes());
        buf.extend(kind.to_ne_bytes());
        buf.extend(payload);
        while !buf.len().is_multiple_of(4) {
            buf.push(0);
        }
    }

    /// A STATS64 (u64 counters) or STATS (u32 counters, u64 bytes) nest.
    fn stats_nest(kind: u16, counters: &[(u16, u64)]) -> Vec<u8> {
        let mut inner = vec![];
        for (k, v) in counters {
            if kind == svc::STATS && *k <= 3 {
                push(&mut inner, *k, &(*v as u32).to_ne_bytes());
            } else {
                push(&mut inner, *k, &v.to_ne_bytes());
            }
        }
        let mut outer = vec![];
        push(&mut outer, kind, &inner);
        outer
    }

    fn bytes(a: &Nlattr<u16, Buffer>) -> Vec<u8> {
        let mut c = Cursor::new(Vec::new());
        a.to_bytes(&mut c).unwrap();
        c.into_inner()
    }

    /// Hand-built from ip_vs.h: `ipvsadm -A -t 192.168.1.192:80 -s rr`.
    #[test]
    fn new_service_bytes() {
        let s = Service {
            id: ServiceId::Port {
                protocol: Protocol::Tcp,
                address: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 192)),
                port: 80,
            },
            scheduler: "rr".into(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: Netmask::V4(Ipv4Addr::BROADCAST),
        };
        let mut expected: Vec<u8> = vec![];
        let mut inner: Vec<u8> = vec![];
        push(&mut inner, 1, &2u16.to_ne_bytes()); // AF_INET
        push(&mut inner, 2, &6u16.to_ne_bytes()); // IPPROTO_TCP
        push(&mut inner, 3, &[192, 168, 1, 192, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        push(&mut inner, 4, &[0, 80]); // big-endian port
        push(&mut inner, 6, b"rr\0");
        let mut flags = 0u32.to_ne_bytes().to_vec();
        flags.extend(u32::MAX.to_ne_bytes());
        push(&mut inner, 7, &flags);
        push(&mut inner, 8, &0u32.to_ne_bytes());
        push(&mut inner, 9, &[255, 255, 255, 255]);
        expected.extend(((4 + inner.len()) as u16).to_ne_bytes());
        expected.extend((1u16 | 0x8000).to_ne_bytes()); // SERVICE, NLA_F_NESTED
        expected.extend(&inner);
        assert_eq!(bytes(&service_attr(&s).unwrap()), expected);
    }

    /// `ipvsadm -a -t VIP:80 -r 192.168.1.213:80 -g -w 3`
    #[test]
    fn new_dest_bytes_and_round_trip() {
        let d = Dest {
            address: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 213)),
            port: 80,
            forward: ForwardMethod::Route,
            weight: 3,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        let b = bytes(&dest_attr(&d).unwrap());
        assert_eq!(u16::from_ne_bytes([b[2], b[3]]), 2 | 0x8000);
        assert_eq!(&b[4..8], &[20, 0, 1, 0][..]); // len 20, type DEST_ADDR (little-endian host)
        assert_eq!(&b[8..12], &[192, 168, 1, 213]);
        // A request carries no counters: the decoder refuses it rather than read zeros.
        assert_eq!(
            decode_dest(&b[4..], Family::Ipv4).unwrap_err(),
            missing("destination", "ACTIVE_CONNS")
        );
        let mut reply = b[4..].to_vec();
        for (kind, v) in [(dest::ACTIVE_CONNS, 2u32), (dest::INACT_CONNS, 5), (dest::PERSIST_CONNS, 0)] {
            push(&mut reply, kind, &v.to_ne_bytes());
        }
        reply.extend(stats_nest(dest::STATS64, &[(1, 7), (2, 40), (3, 0), (4, 4000), (5, 0)]));
        let decoded = decode_dest(&reply, Family::Ipv4).unwrap();
        assert_eq!(decoded.dest, d);
        assert_eq!((decoded.active_conns, decoded.inactive_conns), (2, 5));
        assert_eq!((decoded.stats.conns, decoded.stats.inpkts, decoded.stats.outpkts), (7, 40, 0));
    }

    #[test]
    fn service_round_trip_through_decoder() {
        let s = Service {
            id: ServiceId::Port {
                protocol: Protocol::Tcp,
                address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                port: 25,
            },
            scheduler: "wrr".into(),
            flags: ServiceFlags::PERSISTENT,
            timeout: 300,
            netmask: Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)),
        };
        let b = bytes(&service_attr(&s).unwrap());
        assert_eq!(decode_service(&b[4..]).unwrap_err(), missing("service", "STATS64 or STATS"));
        let mut reply = b[4..].to_vec();
        reply.extend(stats_nest(svc::STATS64, &[(1, 1), (2, 2), (3, 0), (4, 3), (5, 0)]));
        assert_eq!(decode_service(&reply).unwrap().service, s);
    }

    #[test]
    fn fwmark_service_round_trip() {
        let s = Service {
            id: ServiceId::Fwmark {
                mark: 7,
                family: Family::Ipv4,
            },
            scheduler: "rr".into(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: Netmask::V4(Ipv4Addr::BROADCAST),
        };
        let mut reply = bytes(&service_attr(&s).unwrap())[4..].to_vec();
        reply.extend(stats_nest(svc::STATS, &[]));
        // A STATS nest without counters is refused too.
        assert_eq!(decode_service(&reply).unwrap_err(), missing("service", "STATS.CONNS"));
    }

    /// Wraps attributes in a nest of `kind` with NLA_F_NESTED, as the encoder does.
    fn nest_of(kind: u16, inner: &[u8]) -> Vec<u8> {
        let mut out = ((4 + inner.len()) as u16).to_ne_bytes().to_vec();
        out.extend((kind | 0x8000).to_ne_bytes());
        out.extend(inner);
        out
    }

    const V6_VIP: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];

    /// Hand-built from ip_vs.h: `ipvsadm -A -t [2001:db8::1]:80 -s rr`. AF_INET6
    /// is 10, the address fills all 16 bytes, and NETMASK holds the prefix
    /// length 128 in host order (`ip_vs_add_service` refuses 0 and >128).
    #[test]
    fn new_ipv6_service_bytes() {
        let s = Service {
            id: ServiceId::Port {
                protocol: Protocol::Tcp,
                address: IpAddr::V6(Ipv6Addr::from(V6_VIP)),
                port: 80,
            },
            scheduler: "rr".into(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: Netmask::host(Family::Ipv6),
        };
        let mut inner: Vec<u8> = vec![];
        push(&mut inner, 1, &10u16.to_ne_bytes()); // AF_INET6
        push(&mut inner, 2, &6u16.to_ne_bytes()); // IPPROTO_TCP
        push(&mut inner, 3, &V6_VIP);
        push(&mut inner, 4, &[0, 80]);
        push(&mut inner, 6, b"rr\0");
        let mut flags = 0u32.to_ne_bytes().to_vec();
        flags.extend(u32::MAX.to_ne_bytes());
        push(&mut inner, 7, &flags);
        push(&mut inner, 8, &0u32.to_ne_bytes());
        push(&mut inner, 9, &128u32.to_ne_bytes());
        let expected = nest_of(1, &inner);
        assert_eq!(
            expected.len(),
            84,
            "8 AF + 8 PROTOCOL + 20 ADDR + 8 PORT + 8 SCHED + 12 FLAGS + 8 TIMEOUT + 8 NETMASK"
        );
        let b = bytes(&service_attr(&s).unwrap());
        assert_eq!(b, expected);
        let mut reply = b[4..].to_vec();
        reply.extend(stats_nest(svc::STATS64, &[(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)]));
        let decoded = decode_service(&reply).unwrap().service;
        assert_eq!(decoded, s);
        assert_eq!(decoded.id.to_string(), "tcp [2001:db8::1]:80");
    }

    /// `ipvsadm -a -t [2001:db8::1]:80 -r [2001:db8::11]:80 -g -w 1`
    #[test]
    fn new_ipv6_dest_bytes_and_round_trip() {
        let rs = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11];
        let d = Dest {
            address: IpAddr::V6(Ipv6Addr::from(rs)),
            port: 80,
            forward: ForwardMethod::Route,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        let mut inner: Vec<u8> = vec![];
        push(&mut inner, 1, &rs); // DEST_ADDR
        push(&mut inner, 2, &[0, 80]); // DEST_PORT, big-endian
        push(&mut inner, 3, &3u32.to_ne_bytes()); // IP_VS_CONN_F_DROUTE
        push(&mut inner, 4, &1u32.to_ne_bytes()); // WEIGHT
        push(&mut inner, 5, &0u32.to_ne_bytes());
        push(&mut inner, 6, &0u32.to_ne_bytes());
        push(&mut inner, 11, &10u16.to_ne_bytes()); // DEST_ADDR_FAMILY AF_INET6
        let expected = nest_of(2, &inner);
        assert_eq!(expected.len(), 72);
        let b = bytes(&dest_attr(&d).unwrap());
        assert_eq!(b, expected);
        let mut reply = b[4..].to_vec();
        for (kind, v) in [(dest::ACTIVE_CONNS, 1u32), (dest::INACT_CONNS, 0), (dest::PERSIST_CONNS, 0)] {
            push(&mut reply, kind, &v.to_ne_bytes());
        }
        reply.extend(stats_nest(dest::STATS64, &[(1, 1), (2, 5), (3, 0), (4, 300), (5, 0)]));
        assert_eq!(
            decode_dest(&reply, Family::Ipv4).unwrap().dest,
            d,
            "ADDR_FAMILY wins over the service's"
        );
        // Without ADDR_FAMILY (kernels before 3.18) the destination has its service's family.
        let old: Vec<u8> = parse_attrs(&reply)
            .into_iter()
            .filter(|(k, _)| *k != dest::ADDR_FAMILY)
            .fold(vec![], |mut out, (k, v)| {
                push(&mut out, k, v);
                out
            });
        assert_eq!(decode_dest(&old, Family::Ipv6).unwrap().dest, d);
        assert_eq!(
            decode_dest(&old, Family::Ipv4).unwrap().dest.address,
            IpAddr::V4(Ipv4Addr::new(0x20, 0x01, 0x0d, 0xb8))
        );
    }

    /// `ipvsadm -A -f 1 -6 -s rr`: a mark with AF_INET6 and no address.
    #[test]
    fn new_ipv6_fwmark_service_bytes() {
        let s = Service {
            id: ServiceId::Fwmark {
                mark: 1,
                family: Family::Ipv6,
            },
            scheduler: "rr".into(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: Netmask::V6(128),
        };
        let mut inner: Vec<u8> = vec![];
        push(&mut inner, 1, &10u16.to_ne_bytes()); // AF_INET6
        push(&mut inner, 5, &1u32.to_ne_bytes()); // FWMARK
        push(&mut inner, 6, b"rr\0");
        let mut flags = 0u32.to_ne_bytes().to_vec();
        flags.extend(u32::MAX.to_ne_bytes());
        push(&mut inner, 7, &flags);
        push(&mut inner, 8, &0u32.to_ne_bytes());
        push(&mut inner, 9, &128u32.to_ne_bytes());
        let b = bytes(&service_attr(&s).unwrap());
        assert_eq!(b, nest_of(1, &inner));
        assert_eq!(b.len(), 56);
        let mut reply = b[4..].to_vec();
        reply.extend(stats_nest(svc::STATS64, &[(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)]));
        let decoded = decode_service(&reply).unwrap().service;
        assert_eq!(decoded, s);
        assert_eq!(decoded.id.to_string(), "fwmark 1 ipv6");
        // The same mark for IPv4 is another service.
        let v4 = ServiceId::Fwmark {
            mark: 1,
            family: Family::Ipv4,
        };
        assert_ne!(decoded.id, v4);
        assert_eq!(v4.to_string(), "fwmark 1");
    }

    #[test]
    fn a_netmask_of_the_wrong_family_is_refused() {
        let mut s = Service {
            id: ServiceId::Fwmark {
                mark: 1,
                family: Family::Ipv6,
            },
            scheduler: "rr".into(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: Netmask::V4(Ipv4Addr::BROADCAST),
        };
        assert!(service_attr(&s).is_err(), "an IPv6 service with a dotted mask");
        s.netmask = Netmask::V6(64);
        let mut reply = bytes(&service_attr(&s).unwrap())[4..].to_vec();
        let at = reply.len() - 4; // NETMASK is the request's last attribute
        reply.extend(stats_nest(svc::STATS64, &[(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)]));
        assert_eq!(decode_service(&reply).unwrap().service.netmask, Netmask::V6(64));
        // A prefix of 0 (or over 128) is not one the kernel keeps: an error, never a default.
        assert_eq!(u16::from_ne_bytes([reply[at - 2], reply[at - 1]]), svc::NETMASK);
        reply[at..at + 4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(decode_service(&reply).unwrap_err().problem.contains("NETMASK of 0"));
    }

    /// The reply-bypass proof reads OUTPKTS: without it the decoder errs, never says 0.
    #[test]
    fn a_missing_counter_is_an_error_not_zero() {
        let nest = stats_nest(12, &[(1, 5), (2, 40), (4, 100), (5, 0)]);
        let err = parse_stats(&parse_attrs(&nest), "service", 12, 10).unwrap_err();
        assert_eq!(err.to_string(), "the kernel's service reply has no STATS64.OUTPKTS attribute");
    }

    #[test]
    fn unknown_forwarding_protocol_and_family_are_errors() {
        let d = Dest {
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            port: 80,
            forward: ForwardMethod::Route,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        let mut b = bytes(&dest_attr(&d).unwrap())[4..].to_vec();
        // FWD_METHOD is the third attribute: len 8 at offset 28, value at 32.
        assert_eq!(u16::from_ne_bytes([b[30], b[31]]), dest::FWD_METHOD);
        b[32..36].copy_from_slice(&5u32.to_ne_bytes());
        let err = decode_dest(&b, Family::Ipv4).unwrap_err();
        assert!(err.problem.contains("forwarding method 5"), "{err}");
        let mut ipx = vec![];
        push(&mut ipx, svc::AF, &4u16.to_ne_bytes()); // AF_IPX
        assert!(decode_service(&ipx).unwrap_err().problem.contains("address family 4"));
        let mut odd = vec![];
        push(&mut odd, svc::AF, &AF_INET.to_ne_bytes());
        push(&mut odd, svc::PROTOCOL, &47u16.to_ne_bytes());
        assert!(decode_service(&odd).unwrap_err().problem.contains("protocol 47"));
        assert_eq!(decode_version(None).unwrap_err(), missing("info", "VERSION"));
        assert_eq!(decode_version(Some(&0x010201u32.to_ne_bytes())).unwrap(), "1.2.1");
    }

    #[test]
    fn stats64_are_read() {
        let mut nest = vec![];
        for (k, v) in [(1u16, 5u64), (2, 40), (3, 0)] {
            nest.extend(12u16.to_ne_bytes());
            nest.extend(k.to_ne_bytes());
            nest.extend(v.to_ne_bytes());
        }
        let mut outer = vec![];
        outer.extend(((4 + nest.len()) as u16).to_ne_bytes());
        outer.extend(12u16.to_ne_bytes());
        outer.extend(nest);
        assert!(parse_stats(&parse_attrs(&outer), "service", 12, 10).is_err(), "no byte counters");
        let full = stats_nest(12, &[(1, 5), (2, 40), (3, 0), (4, 1), (5, 0)]);
        let s = parse_stats(&parse_attrs(&full), "service", 12, 10).unwrap();
        assert_eq!((s.conns, s.inpkts, s.outpkts), (5, 40, 0));
    }
}
