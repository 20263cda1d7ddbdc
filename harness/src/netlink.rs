//! lvsdr's one netlink transport, for every family it speaks by hand:
//! rtnetlink ([`crate::tc`], and the lab's links, addresses and routes in
//! [`crate::rtnl::batch`]), nf_tables ([`crate::nft`]) and generic netlink
//! ([`crate::ipvs`]). A [`Socket`] belongs to the network namespace of the
//! thread that opened it, for as long as it lives, whichever thread uses it
//! later: a lab opens one per host and per family, once.
//!
//! Here too: the header flags, the framing of a message, the attribute
//! builder and reader, and the kernel's refusals with their extended-ACK text.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

pub const NETLINK_ROUTE: i32 = 0;
pub const NETLINK_NETFILTER: i32 = 12;
pub const NETLINK_GENERIC: i32 = 16;
const SOL_NETLINK: i32 = 270;
const NETLINK_CAP_ACK: i32 = 10;
const NETLINK_EXT_ACK: i32 = 11;
/// `NLMSG_ERROR` flags: the request is not echoed whole, and TLVs follow it.
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
/// How long a socket waits for the kernel's answer before it gives up.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);
/// Requests sent in one datagram, unacknowledged, by [`Socket::acked`]: their
/// acknowledgements must fit the receive buffer (256 overflowed a default
/// buffer under UML: ENOBUFS).
pub const IN_FLIGHT: usize = 64;

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;
pub const NLA_F_NESTED: u16 = 0x8000;

/// Netlink attributes, each padded to 4 bytes: `nlattr` length and type in
/// host order, then the payload (whose byte order is the family's business:
/// nf_tables integers are big-endian, rtnetlink's mostly host order).
#[derive(Default)]
pub struct Attrs(pub Vec<u8>);

impl Attrs {
    pub fn put(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        self.0.extend(((4 + payload.len()) as u16).to_ne_bytes());
        self.0.extend(kind.to_ne_bytes());
        self.0.extend(payload);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }
    /// A NUL-terminated string.
    pub fn put_str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut z = s.as_bytes().to_vec();
        z.push(0);
        self.put(kind, &z)
    }
    pub fn put_be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.put(kind, &v.to_be_bytes())
    }
    /// A nested attribute, filled by `fill`.
    pub fn nest(&mut self, kind: u16, fill: impl FnOnce(&mut Attrs)) -> &mut Self {
        let mut inner = Attrs::default();
        fill(&mut inner);
        self.put(kind | NLA_F_NESTED, &inner.0)
    }
}

/// One netlink message: `nlmsghdr` (length, type, flags, sequence number,
/// port id 0: the kernel fills it in), then the body.
pub fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = 16 + body.len();
    let mut m = Vec::with_capacity(len);
    m.extend((len as u32).to_ne_bytes());
    m.extend(kind.to_ne_bytes());
    m.extend(flags.to_ne_bytes());
    m.extend(seq.to_ne_bytes());
    m.extend(0u32.to_ne_bytes());
    m.extend(body);
    m
}

/// The attributes in `bytes` (type without its nested and byte-order flags,
/// payload), as far as they are well formed.
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

/// One message the kernel sent.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// What follows the `nlmsghdr`.
    pub payload: Vec<u8>,
}

impl Message {
    /// For an `NLMSG_ERROR`: `Ok` for an acknowledgement, or the refusal.
    pub fn ack(&self) -> Option<Result<(), Refusal>> {
        (self.kind == NLMSG_ERROR).then(|| match Refusal::of(self.flags, &self.payload) {
            r if r.errno == 0 => Ok(()),
            r => Err(r),
        })
    }
}

/// A request the kernel refused: its errno and, where the kernel gave one,
/// its extended-ACK message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub errno: i32,
    pub says: Option<String>,
}

impl Refusal {
    /// The errno and extended-ACK message of an `NLMSG_ERROR` payload (errno 0 is an ACK).
    pub fn of(flags: u16, payload: &[u8]) -> Refusal {
        let Some(code) = payload.get(..4) else {
            return Refusal {
                errno: libc::EBADMSG,
                says: None,
            };
        };
        let errno = -i32::from_ne_bytes([code[0], code[1], code[2], code[3]]);
        if flags & NLM_F_ACK_TLVS == 0 {
            return Refusal { errno, says: None };
        }
        // The request comes back after the errno: its header, or all of it unless capped.
        let echoed = if flags & NLM_F_CAPPED != 0 {
            16
        } else {
            payload
                .get(4..8)
                .map(|l| u32::from_ne_bytes([l[0], l[1], l[2], l[3]]) as usize)
                .unwrap_or(16)
        };
        let tlvs = payload.get(4 + ((echoed + 3) & !3)..).unwrap_or_default();
        let says = parse_attrs(tlvs)
            .into_iter()
            .find(|(k, _)| *k == NLMSGERR_ATTR_MSG)
            .map(|(_, v)| String::from_utf8_lossy(v.split(|c| *c == 0).next().unwrap_or_default()).into_owned());
        Refusal { errno, says }
    }

    /// The errno as the OS words it, then what the kernel said.
    pub fn text(&self) -> String {
        let os = io::Error::from_raw_os_error(self.errno);
        match &self.says {
            Some(m) => format!("{os}; the kernel says \"{m}\""),
            None => os.to_string(),
        }
    }
}

/// A request for [`Socket::acked`]: its message type, flags besides
/// `NLM_F_REQUEST | NLM_F_ACK`, and body.
pub struct Request {
    pub kind: u16,
    pub flags: u16,
    pub body: Vec<u8>,
}

/// A netlink socket of one family, in the namespace of the thread that opened it.
/// Any thread may use it, one at a time: an answer goes to whoever reads it
/// first, and a reader skips answers to sequence numbers not its own.
pub struct Socket {
    socket: socket2::Socket,
    /// The family's name, for errors.
    name: &'static str,
    next_seq: AtomicU32,
}

impl Socket {
    /// Opens a socket of `protocol` in the calling thread's namespace, asking
    /// for extended ACKs without the request echoed back (best effort).
    pub fn open(protocol: i32, name: &'static str) -> io::Result<Socket> {
        let socket = socket2::Socket::new(
            socket2::Domain::from(libc::AF_NETLINK),
            socket2::Type::RAW.cloexec(),
            Some(socket2::Protocol::from(protocol)),
        )?;
        socket.set_read_timeout(Some(ANSWER_WITHIN))?;
        // Best effort: a bigger buffer where the kernel allows it.
        let _ = socket.set_recv_buffer_size(1 << 20);
        for option in [NETLINK_EXT_ACK, NETLINK_CAP_ACK] {
            let on: libc::c_int = 1;
            // SAFETY: an int option on a socket we own, with its size.
            #[allow(unsafe_code)]
            unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&socket),
                    SOL_NETLINK,
                    option,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok(Socket {
            socket,
            name,
            next_seq: AtomicU32::new(1),
        })
    }

    /// Reserves `n` consecutive sequence numbers and returns the first.
    pub fn seqs(&self, n: usize) -> u32 {
        self.next_seq.fetch_add(n as u32, Ordering::Relaxed)
    }

    /// Sends one datagram (one or more messages).
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let sent = self.socket.send(bytes)?;
        if sent != bytes.len() {
            return Err(io::Error::other(format!("{}: sent {sent} of {} bytes", self.name, bytes.len())));
        }
        Ok(())
    }

    /// The next datagram's messages; `None` when `nonblocking` and nothing is queued.
    pub fn receive(&self, nonblocking: bool) -> io::Result<Option<Vec<Message>>> {
        // One recv(2), never blocking for ever: the socket blocks with a
        // timeout, and a nonblocking read says so in its flags (no fcntl).
        let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 1 << 16];
        let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        let n = match self.socket.recv_with_flags(&mut buf, flags) {
            Ok(n) => n,
            Err(e) if nonblocking && e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{}: no answer from the kernel in {} s", self.name, ANSWER_WITHIN.as_secs()),
                ))
            }
            Err(e) => return Err(e),
        };
        // SAFETY: recv wrote the first `n` bytes.
        #[allow(unsafe_code)]
        let received: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n.min(buf.len())) };
        let mut out = Vec::new();
        let mut rest = received;
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if len < 16 || len > rest.len() {
                break;
            }
            out.push(Message {
                kind: u16::from_ne_bytes([rest[4], rest[5]]),
                flags: u16::from_ne_bytes([rest[6], rest[7]]),
                seq: u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]),
                payload: rest[16..len].to_vec(),
            });
            rest = &rest[((len + 3) & !3).min(rest.len())..];
        }
        Ok(Some(out))
    }

    /// Sends the requests, up to [`IN_FLIGHT`] to a datagram, and waits for
    /// their answers. The kernel handles a socket's requests in order, so a
    /// request may depend on one before it in the list, and it answers a
    /// refused request whether or not it asked for an ACK: only the last of
    /// each datagram asks, and once its ACK is in, every refusal before it is
    /// too (one read per datagram, not one per request). The first refusal
    /// (its index and the refusal) is the error; no datagram is sent after
    /// the one that held it, and that one's answers are all read, so none is
    /// left for the socket's next request.
    pub fn acked(&self, requests: &[Request]) -> io::Result<Result<(), (usize, Refusal)>> {
        for (chunk, part) in requests.chunks(IN_FLIGHT).enumerate() {
            let first = self.seqs(part.len());
            let last = part.len() - 1;
            let datagram: Vec<u8> = part
                .iter()
                .enumerate()
                .flat_map(|(i, r)| {
                    let ack = if i == last { NLM_F_ACK } else { 0 };
                    message(r.kind, r.flags | NLM_F_REQUEST | ack, first.wrapping_add(i as u32), &r.body)
                })
                .collect();
            self.send(&datagram)?;
            let mut refused: Option<(usize, Refusal)> = None;
            let mut done = false;
            while !done {
                let Some(messages) = self.receive(false)? else { continue };
                for m in messages {
                    let i = m.seq.wrapping_sub(first) as usize;
                    let Some(ack) = m.ack() else { continue };
                    if i > last {
                        continue;
                    }
                    done |= i == last;
                    if let Err(r) = ack {
                        let at = chunk * IN_FLIGHT + i;
                        if refused.as_ref().is_none_or(|(k, _)| at < *k) {
                            refused = Some((at, r));
                        }
                    }
                }
            }
            if let Some(r) = refused {
                return Ok(Err(r));
            }
        }
        Ok(Ok(()))
    }

    /// Sends one request (framed by `make(seq)`) and collects the messages
    /// that answer it, up to its end: `NLMSG_DONE` for a dump, the ACK for a
    /// request with `NLM_F_ACK`. A refusal ends it with `Err`.
    pub fn ask(&self, make: impl Fn(u32) -> Vec<u8>) -> io::Result<Result<Vec<Message>, Refusal>> {
        let seq = self.seqs(1);
        self.send(&make(seq))?;
        let mut out = Vec::new();
        loop {
            let Some(messages) = self.receive(false)? else { continue };
            for m in messages {
                if m.seq != seq {
                    continue;
                }
                match (m.kind, m.ack()) {
                    (_, Some(Ok(()))) | (NLMSG_DONE, _) => return Ok(Ok(out)),
                    (_, Some(Err(refusal))) => return Ok(Err(refusal)),
                    _ => out.push(m),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_its_errno_and_the_kernels_words() {
        // errno -17, the echoed header (capped), then NLMSGERR_ATTR_MSG.
        let mut payload = (-17i32).to_ne_bytes().to_vec();
        payload.extend(message(36, NLM_F_REQUEST | NLM_F_ACK, 9, &[]));
        let mut a = Attrs::default();
        a.put_str(NLMSGERR_ATTR_MSG, "Exclusivity flag on, cannot modify");
        payload.extend(&a.0);
        let r = Refusal::of(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload);
        assert_eq!(r.errno, libc::EEXIST);
        assert_eq!(r.says.as_deref(), Some("Exclusivity flag on, cannot modify"));
        assert!(
            r.text().contains("(os error 17); the kernel says \"Exclusivity flag on"),
            "{}",
            r.text()
        );
        let ack = Message {
            kind: NLMSG_ERROR,
            flags: 0,
            seq: 9,
            payload: 0i32.to_ne_bytes().to_vec(),
        };
        assert_eq!(ack.ack(), Some(Ok(())));
        assert_eq!(Refusal::of(0, &[1]).errno, libc::EBADMSG);
    }

    #[test]
    fn attributes_parse_back_and_a_short_one_ends_the_list() {
        let mut a = Attrs::default();
        a.put(1, &[1, 2, 3]).put_str(2, "eth0").nest(3, |n| {
            n.put(4, &7u32.to_ne_bytes());
        });
        let attrs = parse_attrs(&a.0);
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[0], (1, &[1u8, 2, 3][..]));
        assert_eq!(attrs[1], (2, &b"eth0\0"[..]));
        assert_eq!(parse_attrs(attrs[2].1), vec![(4, &7u32.to_ne_bytes()[..])]);
        let mut cut = a.0.clone();
        cut.truncate(a.0.len() - 2);
        assert_eq!(parse_attrs(&cut).len(), 2);
    }
}
