//! An IPVS client over generic netlink (family `IPVS`), built on neli.
//! Each call names the `ipvsadm` command it matches. The socket belongs to
//! the network namespace of the thread that calls [`Ipvs::connect`].

pub mod check;
pub mod wire;

use neli::consts::nl::NlmF;
use neli::consts::socket::NlFamily;
use neli::genl::{Genlmsghdr, GenlmsghdrBuilder, Nlattr};
use neli::nl::NlPayload;
use neli::router::synchronous::NlRouter;
use neli::types::Buffer;
use neli::utils::Groups;
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
    router: NlRouter,
    family: u16,
}

type Reply = Genlmsghdr<u8, u16>;
type Handle = neli::router::synchronous::NlRouterReceiverHandle<u16, Reply>;

/// Requests in flight at once in [`Ipvs::restore`]: enough to hide each round
/// trip, few enough that their acknowledgements fit the socket's receive
/// buffer (256 overflowed it under UML: ENOBUFS).
const IN_FLIGHT: usize = 64;

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
        let (router, _) = NlRouter::connect(NlFamily::Generic, None, Groups::empty()).map_err(|e| IpvsError::Connect(e.to_string()))?;
        let family = router.resolve_genl_family(wire::FAMILY).map_err(|_| IpvsError::NoFamily)?;
        Ok(Ipvs { router, family })
    }

    fn request(&self, op: &'static str, cmd: u8, flags: NlmF, attrs: Vec<Nlattr<u16, Buffer>>) -> Result<Vec<Reply>, IpvsError> {
        let handle = self.send(op, cmd, flags, attrs)?;
        Self::replies(op, handle)
    }

    /// Sends one request; its replies come through the handle.
    fn send(&self, op: &'static str, cmd: u8, flags: NlmF, attrs: Vec<Nlattr<u16, Buffer>>) -> Result<Handle, IpvsError> {
        let msg = GenlmsghdrBuilder::<u8, u16>::default()
            .cmd(cmd)
            .version(wire::VERSION)
            .attrs(wire::buffer(attrs))
            .build()
            .map_err(|e| IpvsError::Kernel {
                op,
                message: e.to_string(),
            })?;
        self.router
            .send::<u16, Genlmsghdr<u8, u16>, u16, Reply>(self.family, flags, NlPayload::Payload(msg))
            .map_err(|e| IpvsError::Kernel {
                op,
                message: e.to_string(),
            })
    }

    /// Waits for a request's replies (its acknowledgement, or a dump's parts).
    fn replies(op: &'static str, recv: Handle) -> Result<Vec<Reply>, IpvsError> {
        let mut out = Vec::new();
        for r in recv {
            match r {
                Ok(m) => {
                    if let Some(p) = m.get_payload() {
                        out.push(p.clone());
                    }
                }
                Err(neli::err::RouterError::Nlmsgerr(e)) => {
                    return Err(IpvsError::Kernel {
                        op,
                        message: errno_text(*e.error()),
                    })
                }
                Err(e) => {
                    return Err(IpvsError::Kernel {
                        op,
                        message: e.to_string(),
                    })
                }
            }
        }
        Ok(out)
    }

    fn nested_payloads(replies: &[Reply], kind: u16) -> Vec<Vec<u8>> {
        replies
            .iter()
            .flat_map(|r| {
                r.attrs()
                    .iter()
                    .filter(|a| *a.nla_type().nla_type() == kind)
                    .map(|a| a.nla_payload().as_ref().to_vec())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// `ipvsadm -R`: every service with its destinations, in order, each
    /// request sent without waiting for the one before to be acknowledged (the
    /// kernel handles a socket's requests in order, so a destination always
    /// follows its service). A production director's 635 services and 2,540
    /// destinations are 3,175 requests: one round trip each would be 3,175
    /// waits. The first refused request is the error.
    pub fn restore(&self, services: &[(Service, Vec<Dest>)]) -> Result<(), IpvsError> {
        let mut pending: std::collections::VecDeque<(&'static str, Handle)> = std::collections::VecDeque::new();
        let mut failed: Option<IpvsError> = None;
        'sending: for (s, dests) in services {
            let mut requests = vec![("add service", wire::cmd::NEW_SERVICE, vec![wire::service_attr(s)?])];
            for d in dests {
                requests.push((
                    "add destination",
                    wire::cmd::NEW_DEST,
                    vec![wire::service_id_attr(&s.id)?, wire::dest_attr(d)?],
                ));
            }
            for (op, cmd, attrs) in requests {
                if pending.len() >= IN_FLIGHT {
                    if let Some((op, h)) = pending.pop_front() {
                        if let Err(e) = Self::replies(op, h) {
                            failed = Some(e);
                            break 'sending;
                        }
                    }
                }
                pending.push_back((op, self.send(op, cmd, NlmF::ACK, attrs)?));
            }
        }
        // Every request in flight is answered before returning, even after a
        // failure: an answer left unread would reach the socket's next request.
        for (op, h) in pending {
            let answer = Self::replies(op, h);
            if let (None, Err(e)) = (&failed, answer) {
                failed = Some(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// `ipvsadm -C`
    pub fn flush(&self) -> Result<(), IpvsError> {
        self.request("flush", wire::cmd::FLUSH, NlmF::ACK, vec![]).map(|_| ())
    }

    /// `ipvsadm -A -t ADDR:PORT -s SCHED [-p TIMEOUT] [-M MASK] [-b FLAGS]`,
    /// `ipvsadm -A -t [ADDR6]:PORT …` or `ipvsadm -A -f MARK [-6] …`
    pub fn add_service(&self, s: &Service) -> Result<(), IpvsError> {
        self.request("add service", wire::cmd::NEW_SERVICE, NlmF::ACK, vec![wire::service_attr(s)?])
            .map(|_| ())
    }

    /// `ipvsadm -E …`
    pub fn edit_service(&self, s: &Service) -> Result<(), IpvsError> {
        self.request("edit service", wire::cmd::SET_SERVICE, NlmF::ACK, vec![wire::service_attr(s)?])
            .map(|_| ())
    }

    /// `ipvsadm -D -t ADDR:PORT`
    pub fn delete_service(&self, id: &ServiceId) -> Result<(), IpvsError> {
        self.request(
            "delete service",
            wire::cmd::DEL_SERVICE,
            NlmF::ACK,
            vec![wire::service_id_attr(id)?],
        )
        .map(|_| ())
    }

    /// `ipvsadm -a -t ADDR:PORT -r RS:PORT -g -w W`
    pub fn add_dest(&self, id: &ServiceId, d: &Dest) -> Result<(), IpvsError> {
        self.request(
            "add destination",
            wire::cmd::NEW_DEST,
            NlmF::ACK,
            vec![wire::service_id_attr(id)?, wire::dest_attr(d)?],
        )
        .map(|_| ())
    }

    /// `ipvsadm -e …`
    pub fn edit_dest(&self, id: &ServiceId, d: &Dest) -> Result<(), IpvsError> {
        self.request(
            "edit destination",
            wire::cmd::SET_DEST,
            NlmF::ACK,
            vec![wire::service_id_attr(id)?, wire::dest_attr(d)?],
        )
        .map(|_| ())
    }

    /// `ipvsadm -d -t ADDR:PORT -r RS:PORT`
    pub fn delete_dest(&self, id: &ServiceId, d: &Dest) -> Result<(), IpvsError> {
        self.request(
            "delete destination",
            wire::cmd::DEL_DEST,
            NlmF::ACK,
            vec![wire::service_id_attr(id)?, wire::dest_attr(d)?],
        )
        .map(|_| ())
    }

    /// `ipvsadm -L -n --stats` (services)
    pub fn services(&self) -> Result<Vec<ServiceEntry>, IpvsError> {
        let replies = self.request("list services", wire::cmd::GET_SERVICE, NlmF::DUMP, vec![])?;
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
            NlmF::DUMP,
            vec![wire::service_id_attr(id)?],
        )?;
        Ok(Self::nested_payloads(&replies, wire::attr::DEST)
            .iter()
            .map(|b| wire::decode_dest(b, id.family()))
            .collect::<Result<_, _>>()?)
    }

    /// `ipvsadm --version`: the kernel's IPVS version as `major.minor.patch`.
    pub fn version(&self) -> Result<String, IpvsError> {
        let replies = self.request("get info", wire::cmd::GET_INFO, NlmF::empty(), vec![])?;
        let payload = replies.iter().find_map(|r| {
            r.attrs()
                .iter()
                .find(|a| *a.nla_type().nla_type() == wire::info::VERSION)
                .map(|a| a.nla_payload().as_ref().to_vec())
        });
        Ok(wire::decode_version(payload.as_deref())?)
    }
}
