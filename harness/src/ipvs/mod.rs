//! An IPVS client over generic netlink (family `IPVS`), on lvsdr's one
//! netlink transport ([`crate::netlink`]); neli encodes the attributes.
//! Each call names the `ipvsadm` command it matches. The socket belongs to
//! the network namespace of the thread that calls [`Ipvs::connect`].

pub mod check;
pub mod wire;

use crate::netlink::{self, Message, Request, Socket, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use neli::genl::Nlattr;
use neli::types::Buffer;
pub use wire::{
    DecodeError, Dest, DestEntry, Family, ForwardMethod, Netmask, Protocol, Service, ServiceEntry, ServiceFlags, ServiceId, Stats,
};

#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    #[error("cannot open a generic netlink socket: {0}")]
    Connect(String),
    #[error("the kernel has no IPVS (generic netlink family `IPVS` not found): load it with `modprobe ip_vs`, or run the lab with `--kernel uml`")]
    NoFamily,
    #[error("IPVS {op} failed: {message}")]
    Kernel { op: &'static str, message: String },
    #[error(transparent)]
    Encode(#[from] wire::EncodeError),
    #[error(transparent)]
    Decode(#[from] wire::DecodeError),
}

pub struct Ipvs {
    socket: Socket,
    family: u16,
}

/// The generic netlink controller, which resolves a family's name.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// A generic netlink body: `genlmsghdr` (command, version, reserved), attributes.
fn genl_body(cmd: u8, version: u8, attrs: &[u8]) -> Vec<u8> {
    let mut body = vec![cmd, version, 0, 0];
    body.extend(attrs);
    body
}

/// The attributes of a generic netlink message (after its 4-byte header).
fn genl_attrs(m: &Message) -> Vec<(u16, &[u8])> {
    netlink::parse_attrs(m.payload.get(4..).unwrap_or_default())
}

fn errno_text(code: i32) -> String {
    let code = code.abs();
    let text = std::io::Error::from_raw_os_error(code).to_string();
    match code {
        17 => format!("{text} (the service or destination is already there)"),
        2 | 3 => format!("{text} (no such service or destination)"),
        22 => format!("{text} (the kernel rejected a field; a new service needs scheduler, flags, timeout and netmask)"),
        _ => text,
    }
}

impl Ipvs {
    /// Opens a socket in the calling thread's namespace and resolves the family.
    pub fn connect() -> Result<Ipvs, IpvsError> {
        let socket = Socket::open(netlink::NETLINK_GENERIC, "generic netlink").map_err(|e| IpvsError::Connect(e.to_string()))?;
        let mut name = netlink::Attrs::default();
        name.put_str(CTRL_ATTR_FAMILY_NAME, wire::FAMILY);
        let body = genl_body(CTRL_CMD_GETFAMILY, 1, &name.0);
        let answer = socket
            .ask(|seq| netlink::message(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, &body))
            .map_err(|e| IpvsError::Connect(e.to_string()))?;
        let family = answer
            .ok()
            .and_then(|replies| {
                replies.iter().find_map(|m| {
                    genl_attrs(m)
                        .into_iter()
                        .find(|(k, _)| *k == CTRL_ATTR_FAMILY_ID)
                        .and_then(|(_, v)| Some(u16::from_ne_bytes(v.get(..2)?.try_into().ok()?)))
                })
            })
            .ok_or(IpvsError::NoFamily)?;
        Ok(Ipvs { socket, family })
    }

    /// One request and its replies: a dump's parts, or a get's answer.
    fn request(&self, op: &'static str, cmd: u8, flags: u16, attrs: Vec<Nlattr<u16, Buffer>>) -> Result<Vec<Message>, IpvsError> {
        let body = genl_body(cmd, wire::VERSION, &wire::attr_bytes(attrs)?);
        // A dump ends with NLMSG_DONE; anything else asks for its ACK.
        let flags = if flags & NLM_F_DUMP != 0 { flags } else { flags | NLM_F_ACK };
        self.socket
            .ask(|seq| netlink::message(self.family, NLM_F_REQUEST | flags, seq, &body))
            .map_err(|e| IpvsError::Kernel {
                op,
                message: e.to_string(),
            })?
            .map_err(|refusal| IpvsError::Kernel {
                op,
                message: errno_text(refusal.errno),
            })
    }

    fn nested_payloads(replies: &[Message], kind: u16) -> Vec<Vec<u8>> {
        replies
            .iter()
            .flat_map(|m| {
                genl_attrs(m)
                    .into_iter()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, v)| v.to_vec())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// `ipvsadm -R`: every service with its destinations, in order, sent
    /// [`netlink::IN_FLIGHT`] requests to a datagram without waiting for each
    /// acknowledgement (the kernel handles a socket's requests in order, so a
    /// destination always follows its service). A production director's 635
    /// services and 2,540 destinations are 3,175 requests: one round trip
    /// each would be 3,175 waits. The first refused request is the error.
    pub fn restore(&self, services: &[(Service, Vec<Dest>)]) -> Result<(), IpvsError> {
        let mut requests = Vec::new();
        let mut ops = Vec::new();
        for (s, dests) in services {
            requests.push(Request {
                kind: self.family,
                flags: 0,
                body: genl_body(
                    wire::cmd::NEW_SERVICE,
                    wire::VERSION,
                    &wire::attr_bytes(vec![wire::service_attr(s)?])?,
                ),
            });
            ops.push("add service");
            for d in dests {
                let attrs = wire::attr_bytes(vec![wire::service_id_attr(&s.id)?, wire::dest_attr(d)?])?;
                requests.push(Request {
                    kind: self.family,
                    flags: 0,
                    body: genl_body(wire::cmd::NEW_DEST, wire::VERSION, &attrs),
                });
                ops.push("add destination");
            }
        }
        match self.socket.acked(&requests) {
            Ok(Ok(())) => Ok(()),
            Ok(Err((i, refusal))) => Err(IpvsError::Kernel {
                op: ops[i],
                message: errno_text(refusal.errno),
            }),
            Err(e) => Err(IpvsError::Kernel {
                op: "restore",
                message: e.to_string(),
            }),
        }
    }

    /// `ipvsadm -C`
    pub fn flush(&self) -> Result<(), IpvsError> {
        self.request("flush", wire::cmd::FLUSH, 0, vec![]).map(|_| ())
    }

    /// `ipvsadm -A -t ADDR:PORT -s SCHED [-p TIMEOUT] [-M MASK] [-b FLAGS]`,
    /// `ipvsadm -A -t [ADDR6]:PORT …` or `ipvsadm -A -f MARK [-6] …`
    pub fn add_service(&self, s: &Service) -> Result<(), IpvsError> {
        self.request("add service", wire::cmd::NEW_SERVICE, 0, vec![wire::service_attr(s)?])
            .map(|_| ())
    }

    /// `ipvsadm -E …`
    pub fn edit_service(&self, s: &Service) -> Result<(), IpvsError> {
        self.request("edit service", wire::cmd::SET_SERVICE, 0, vec![wire::service_attr(s)?])
            .map(|_| ())
    }

    /// `ipvsadm -D -t ADDR:PORT`
    pub fn delete_service(&self, id: &ServiceId) -> Result<(), IpvsError> {
        self.request("delete service", wire::cmd::DEL_SERVICE, 0, vec![wire::service_id_attr(id)?])
            .map(|_| ())
    }

    /// `ipvsadm -a -t ADDR:PORT -r RS:PORT -g -w W`
    pub fn add_dest(&self, id: &ServiceId, d: &Dest) -> Result<(), IpvsError> {
        self.request(
            "add destination",
            wire::cmd::NEW_DEST,
            0,
            vec![wire::service_id_attr(id)?, wire::dest_attr(d)?],
        )
        .map(|_| ())
    }

    /// `ipvsadm -e …`
    pub fn edit_dest(&self, id: &ServiceId, d: &Dest) -> Result<(), IpvsError> {
        self.request(
            "edit destination",
            wire::cmd::SET_DEST,
            0,
            vec![wire::service_id_attr(id)?, wire::dest_attr(d)?],
        )
        .map(|_| ())
    }

    /// `ipvsadm -d -t ADDR:PORT -r RS:PORT`
    pub fn delete_dest(&self, id: &ServiceId, d: &Dest) -> Result<(), IpvsError> {
        self.request(
            "delete destination",
            wire::cmd::DEL_DEST,
            0,
            vec![wire::service_id_attr(id)?, wire::dest_attr(d)?],
        )
        .map(|_| ())
    }

    /// `ipvsadm -L -n --stats` (services)
    pub fn services(&self) -> Result<Vec<ServiceEntry>, IpvsError> {
        let replies = self.request("list services", wire::cmd::GET_SERVICE, NLM_F_DUMP, vec![])?;
        Ok(Self::nested_payloads(&replies, wire::attr::SERVICE)
            .iter()
            .map(|b| wire::decode_service(b))
            .collect::<Result<_, _>>()?)
    }

    /// `ipvsadm -L -n --stats -t ADDR:PORT` (destinations of one service)
    pub fn dests(&self, id: &ServiceId) -> Result<Vec<DestEntry>, IpvsError> {
        let replies = self.request(
            "list destinations",
            wire::cmd::GET_DEST,
            NLM_F_DUMP,
            vec![wire::service_id_attr(id)?],
        )?;
        Ok(Self::nested_payloads(&replies, wire::attr::DEST)
            .iter()
            .map(|b| wire::decode_dest(b, id.family()))
            .collect::<Result<_, _>>()?)
    }

    /// `ipvsadm --version`: the kernel's IPVS version as `major.minor.patch`.
    pub fn version(&self) -> Result<String, IpvsError> {
        let replies = self.request("get info", wire::cmd::GET_INFO, 0, vec![])?;
        let payload = replies.iter().find_map(|m| {
            genl_attrs(m)
                .into_iter()
                .find(|(k, _)| *k == wire::info::VERSION)
                .map(|(_, v)| v.to_vec())
        });
        Ok(wire::decode_version(payload.as_deref())?)
    }
}
