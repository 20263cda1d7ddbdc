//! The IPVS generic netlink message layout (`include/uapi/linux/ip_vs.h`),
//! as plain Rust: attribute numbers, and the encoding of a service and a
//! destination into nested attributes. Pure, so it is tested byte by byte
//! without root.

use neli::genl::{AttrTypeBuilder, Nlattr, NlattrBuilder};
use neli::types::{Buffer, GenlBuffer};
use std::net::Ipv4Addr;

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

/// What identifies a service to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ServiceId {
    pub protocol: u16,
    pub address: Ipv4Addr,
    pub port: u16,
    pub fwmark: u32,
}

/// A virtual service as `ipvsadm -A` describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Service {
    pub id: ServiceId,
    pub scheduler: String,
    pub flags: u32,
    pub timeout: u32,
    pub netmask: Ipv4Addr,
}

/// A real server as `ipvsadm -a` describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dest {
    pub address: Ipv4Addr,
    pub port: u16,
    pub forward: u32,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
}

/// Traffic counters (`ipvsadm -L --stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
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

/// 16-byte address field with the IPv4 address in the first four bytes.
fn addr16(a: Ipv4Addr) -> Vec<u8> {
    let mut v = a.octets().to_vec();
    v.resize(16, 0);
    v
}

fn u16ne(v: u16) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
fn u32ne(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn service_id_attrs(id: &ServiceId) -> Result<Vec<Nlattr<u16, Buffer>>, EncodeError> {
    Ok(if id.fwmark != 0 {
        vec![attr(svc::AF, u16ne(AF_INET))?, attr(svc::FWMARK, u32ne(id.fwmark))?]
    } else {
        vec![
            attr(svc::AF, u16ne(AF_INET))?,
            attr(svc::PROTOCOL, u16ne(id.protocol))?,
            attr(svc::ADDR, addr16(id.address))?,
            attr(svc::PORT, id.port.to_be_bytes().to_vec())?,
        ]
    })
}

/// `IPVS_CMD_ATTR_SERVICE` naming a service only (for deletes, dest commands and dumps).
pub fn service_id_attr(id: &ServiceId) -> Result<Nlattr<u16, Buffer>, EncodeError> {
    nested(attr::SERVICE, &service_id_attrs(id)?)
}

/// `IPVS_CMD_ATTR_SERVICE` with everything a new service needs.
pub fn service_attr(s: &Service) -> Result<Nlattr<u16, Buffer>, EncodeError> {
    let mut children = service_id_attrs(&s.id)?;
    let mut name = s.scheduler.as_bytes().to_vec();
    name.push(0);
    children.push(attr(svc::SCHED_NAME, name)?);
    let mut flags = u32ne(s.flags);
    flags.extend(u32ne(u32::MAX));
    children.push(attr(svc::FLAGS, flags)?);
    children.push(attr(svc::TIMEOUT, u32ne(s.timeout))?);
    children.push(attr(svc::NETMASK, s.netmask.octets().to_vec())?);
    nested(attr::SERVICE, &children)
}

/// `IPVS_CMD_ATTR_DEST`.
pub fn dest_attr(d: &Dest) -> Result<Nlattr<u16, Buffer>, EncodeError> {
    nested(
        attr::DEST,
        &[
            attr(dest::ADDR, addr16(d.address))?,
            attr(dest::PORT, d.port.to_be_bytes().to_vec())?,
            attr(dest::FWD_METHOD, u32ne(d.forward))?,
            attr(dest::WEIGHT, u32ne(d.weight))?,
            attr(dest::U_THRESH, u32ne(d.upper_threshold))?,
            attr(dest::L_THRESH, u32ne(d.lower_threshold))?,
            attr(dest::ADDR_FAMILY, u16ne(AF_INET))?,
        ],
    )
}

pub fn buffer(attrs: Vec<Nlattr<u16, Buffer>>) -> GenlBuffer<u16, Buffer> {
    attrs.into_iter().collect()
}

/// Reads a flat list of netlink attributes: (type without flags, payload).
pub fn parse_attrs(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u16::from_ne_bytes([bytes[0], bytes[1]]) as usize;
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & 0x3fff;
        if len < 4 || len > bytes.len() {
            break;
        }
        out.push((kind, &bytes[4..len]));
        let padded = (len + 3) & !3;
        bytes = &bytes[padded.min(bytes.len())..];
    }
    out
}

fn get<'a>(attrs: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}
fn get_u16(attrs: &[(u16, &[u8])], kind: u16) -> Option<u16> {
    get(attrs, kind).and_then(|v| v.get(..2)).map(|b| u16::from_ne_bytes([b[0], b[1]]))
}
fn get_be16(attrs: &[(u16, &[u8])], kind: u16) -> Option<u16> {
    get(attrs, kind).and_then(|v| v.get(..2)).map(|b| u16::from_be_bytes([b[0], b[1]]))
}
fn get_u32(attrs: &[(u16, &[u8])], kind: u16) -> Option<u32> {
    get(attrs, kind)
        .and_then(|v| v.get(..4))
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}
fn get_u64(attrs: &[(u16, &[u8])], kind: u16) -> Option<u64> {
    get(attrs, kind)
        .and_then(|v| v.get(..8))
        .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
}
fn get_addr(attrs: &[(u16, &[u8])], kind: u16) -> Option<Ipv4Addr> {
    get(attrs, kind)
        .and_then(|v| v.get(..4))
        .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

/// Counters from a STATS64 (preferred) or STATS nest.
pub fn parse_stats(attrs: &[(u16, &[u8])], stats64: u16, stats32: u16) -> Stats {
    if let Some(nest) = get(attrs, stats64) {
        let a = parse_attrs(nest);
        return Stats {
            conns: get_u64(&a, stats::CONNS).unwrap_or(0),
            inpkts: get_u64(&a, stats::INPKTS).unwrap_or(0),
            outpkts: get_u64(&a, stats::OUTPKTS).unwrap_or(0),
            inbytes: get_u64(&a, stats::INBYTES).unwrap_or(0),
            outbytes: get_u64(&a, stats::OUTBYTES).unwrap_or(0),
        };
    }
    if let Some(nest) = get(attrs, stats32) {
        let a = parse_attrs(nest);
        return Stats {
            conns: get_u32(&a, stats::CONNS).unwrap_or(0).into(),
            inpkts: get_u32(&a, stats::INPKTS).unwrap_or(0).into(),
            outpkts: get_u32(&a, stats::OUTPKTS).unwrap_or(0).into(),
            inbytes: get_u64(&a, stats::INBYTES).unwrap_or(0),
            outbytes: get_u64(&a, stats::OUTBYTES).unwrap_or(0),
        };
    }
    Stats::default()
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
pub fn decode_service(nest: &[u8]) -> ServiceEntry {
    let a = parse_attrs(nest);
    let flags = get(&a, svc::FLAGS)
        .and_then(|v| v.get(..4))
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    let sched = get(&a, svc::SCHED_NAME)
        .map(|v| String::from_utf8_lossy(v).trim_end_matches('\0').to_string())
        .unwrap_or_default();
    ServiceEntry {
        service: Service {
            id: ServiceId {
                protocol: get_u16(&a, svc::PROTOCOL).unwrap_or(0),
                address: get_addr(&a, svc::ADDR).unwrap_or(Ipv4Addr::UNSPECIFIED),
                port: get_be16(&a, svc::PORT).unwrap_or(0),
                fwmark: get_u32(&a, svc::FWMARK).unwrap_or(0),
            },
            scheduler: sched,
            flags,
            timeout: get_u32(&a, svc::TIMEOUT).unwrap_or(0),
            netmask: get(&a, svc::NETMASK)
                .and_then(|v| v.get(..4))
                .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]))
                .unwrap_or(Ipv4Addr::BROADCAST),
        },
        stats: parse_stats(&a, svc::STATS64, svc::STATS),
    }
}

/// Decodes the nested destination attribute of a GET_DEST reply.
pub fn decode_dest(nest: &[u8]) -> DestEntry {
    let a = parse_attrs(nest);
    DestEntry {
        dest: Dest {
            address: get_addr(&a, dest::ADDR).unwrap_or(Ipv4Addr::UNSPECIFIED),
            port: get_be16(&a, dest::PORT).unwrap_or(0),
            forward: get_u32(&a, dest::FWD_METHOD).unwrap_or(0) & 0x7,
            weight: get_u32(&a, dest::WEIGHT).unwrap_or(0),
            upper_threshold: get_u32(&a, dest::U_THRESH).unwrap_or(0),
            lower_threshold: get_u32(&a, dest::L_THRESH).unwrap_or(0),
        },
        active_conns: get_u32(&a, dest::ACTIVE_CONNS).unwrap_or(0),
        inactive_conns: get_u32(&a, dest::INACT_CONNS).unwrap_or(0),
        persistent_conns: get_u32(&a, dest::PERSIST_CONNS).unwrap_or(0),
        stats: parse_stats(&a, dest::STATS64, dest::STATS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neli::ToBytes;
    use std::io::Cursor;

    fn bytes(a: &Nlattr<u16, Buffer>) -> Vec<u8> {
        let mut c = Cursor::new(Vec::new());
        a.to_bytes(&mut c).unwrap();
        c.into_inner()
    }

    /// Hand-built from ip_vs.h: `ipvsadm -A -t 192.168.1.192:80 -s rr`.
    #[test]
    fn new_service_bytes() {
        let s = Service {
            id: ServiceId {
                protocol: 6,
                address: Ipv4Addr::new(192, 168, 1, 192),
                port: 80,
                fwmark: 0,
            },
            scheduler: "rr".into(),
            flags: 0,
            timeout: 0,
            netmask: Ipv4Addr::BROADCAST,
        };
        let mut expected: Vec<u8> = vec![];
        let mut inner: Vec<u8> = vec![];
        let push = |buf: &mut Vec<u8>, kind: u16, payload: &[u8]| {
            buf.extend(((4 + payload.len()) as u16).to_ne_bytes());
            buf.extend(kind.to_ne_bytes());
            buf.extend(payload);
            while !buf.len().is_multiple_of(4) {
                buf.push(0);
            }
        };
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
            address: Ipv4Addr::new(192, 168, 1, 213),
            port: 80,
            forward: 3,
            weight: 3,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        let b = bytes(&dest_attr(&d).unwrap());
        assert_eq!(u16::from_ne_bytes([b[2], b[3]]), 2 | 0x8000);
        assert_eq!(&b[4..8], &[20, 0, 1, 0][..]); // len 20, type DEST_ADDR (little-endian host)
        assert_eq!(&b[8..12], &[192, 168, 1, 213]);
        let decoded = decode_dest(&b[4..]);
        assert_eq!(decoded.dest, d);
    }

    #[test]
    fn service_round_trip_through_decoder() {
        let s = Service {
            id: ServiceId {
                protocol: 6,
                address: Ipv4Addr::new(10, 0, 0, 1),
                port: 25,
                fwmark: 0,
            },
            scheduler: "wrr".into(),
            flags: 0x1,
            timeout: 300,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
        };
        let b = bytes(&service_attr(&s).unwrap());
        assert_eq!(decode_service(&b[4..]).service, s);
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
        let s = parse_stats(&parse_attrs(&outer), 12, 10);
        assert_eq!((s.conns, s.inpkts, s.outpkts), (5, 40, 0));
    }
}
