//! The `AF_PACKET` socket both captures read from (`tcpdump -i any -n`, in
//! one namespace): opened once, drained in batches of [`BATCH`] frames per
//! `recvmmsg`, each frame handed over with the interface it crossed, its
//! direction, its kernel timestamp and its length on the wire.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub(crate) const ETH_P_IP: u16 = 0x0800;
pub(crate) const ETH_P_IPV6: u16 = 0x86DD;
pub(crate) const ETH_P_ALL: u16 = 0x0003;
/// `PACKET_IGNORE_OUTGOING` (Linux 4.20): the frames the namespace sends are
/// not copied to the socket. Older kernels refuse it and the reader skips them.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `sll_pkttype` of a frame the namespace sent.
const PACKET_OUTGOING: u8 = 4;
/// Frames per `recvmmsg`.
const BATCH: usize = 64;
/// Room for one `SCM_TIMESTAMPNS` control message (a `timespec`), with slack.
const CONTROL: usize = 64;

/// One frame as the socket handed it over.
pub(crate) struct Received<'a> {
    /// The interface it crossed (`sll_ifindex`).
    pub ifindex: i32,
    /// When the kernel saw it, in nanoseconds since the Unix epoch (0 when
    /// the socket was opened without timestamps).
    pub at_ns: u64,
    /// Its length on the wire; `bytes` holds at most the snap length of it.
    pub wire_len: usize,
    pub bytes: &'a [u8],
}

/// An open packet socket in the namespace that opened it.
pub(crate) struct PacketSocket {
    fd: OwnedFd,
    timestamps: bool,
}

fn set_int(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> std::io::Result<()> {
    // SAFETY: setsockopt(2) on a descriptor we own, with an int we pass by address and size.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl PacketSocket {
    /// Opens the socket in the calling thread's namespace for the frames of
    /// `ethertype`, on every interface or only `device`'s, frames the
    /// namespace sends left out. With `timestamps`, each frame carries the
    /// kernel's time of arrival (`SO_TIMESTAMPNS`).
    pub fn open(ethertype: u16, device: Option<&str>, timestamps: bool) -> std::io::Result<PacketSocket> {
        // SAFETY: plain socket(2) and bind(2) calls; the descriptor is owned at once.
        #[allow(unsafe_code)]
        let fd = unsafe {
            let raw = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(ethertype.to_be()));
            if raw < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(raw);
            if let Some(name) = device {
                let cname = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
                let index = libc::if_nametoindex(cname.as_ptr());
                if index == 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let mut addr: libc::sockaddr_ll = std::mem::zeroed();
                addr.sll_family = libc::AF_PACKET as libc::c_ushort;
                addr.sll_protocol = ethertype.to_be();
                addr.sll_ifindex = index as libc::c_int;
                if libc::bind(
                    fd.as_raw_fd(),
                    (&addr as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            fd
        };
        // Room for what arrives between two drains, many times over.
        if set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 8 << 20).is_err() {
            let _ = set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 8 << 20);
        }
        let _ = set_int(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
        let timestamps = timestamps && set_int(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1).is_ok();
        Ok(PacketSocket { fd, timestamps })
    }

    /// Reads every queued frame without waiting, keeping at most `snap`
    /// bytes of each, and hands each one that came in to `each`.
    pub fn drain(&self, snap: usize, mut each: impl FnMut(Received<'_>)) -> std::io::Result<()> {
        let mut bufs = vec![vec![0u8; snap]; BATCH];
        let mut controls = vec![[0u8; CONTROL]; BATCH];
        loop {
            // SAFETY: every iovec points into `bufs`, every name into `names` and every
            // control buffer into `controls`, all of which outlive the call, with their
            // lengths; the headers are zeroed structs that point at them. The control
            // messages are walked with the kernel's own CMSG macros, inside `controllen`.
            #[allow(unsafe_code)]
            let n = unsafe {
                let mut names: Vec<libc::sockaddr_ll> = vec![std::mem::zeroed(); BATCH];
                let mut iovs: Vec<libc::iovec> = bufs
                    .iter_mut()
                    .map(|b| libc::iovec {
                        iov_base: b.as_mut_ptr().cast(),
                        iov_len: snap,
                    })
                    .collect();
                let mut msgs: Vec<libc::mmsghdr> = iovs
                    .iter_mut()
                    .zip(names.iter_mut())
                    .zip(controls.iter_mut())
                    .map(|((iov, name), control)| {
                        let mut m: libc::mmsghdr = std::mem::zeroed();
                        m.msg_hdr.msg_iov = iov;
                        m.msg_hdr.msg_iovlen = 1;
                        m.msg_hdr.msg_name = (name as *mut libc::sockaddr_ll).cast();
                        m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                        if self.timestamps {
                            m.msg_hdr.msg_control = control.as_mut_ptr().cast();
                            m.msg_hdr.msg_controllen = CONTROL as _;
                        }
                        m
                    })
                    .collect();
                // MSG_TRUNC: each msg_len is the frame's length on the wire, not what was copied.
                let n = libc::recvmmsg(
                    self.fd.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    (libc::MSG_DONTWAIT | libc::MSG_TRUNC) as _,
                    std::ptr::null_mut(),
                );
                if n > 0 {
                    for ((m, b), name) in msgs.iter().zip(&bufs).zip(&names).take(n as usize) {
                        if name.sll_pkttype == PACKET_OUTGOING {
                            continue;
                        }
                        let mut at_ns = 0u64;
                        if self.timestamps {
                            let mut c = libc::CMSG_FIRSTHDR(&m.msg_hdr);
                            while !c.is_null() {
                                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                                    at_ns = (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64);
                                }
                                c = libc::CMSG_NXTHDR(&m.msg_hdr, c);
                            }
                        }
                        let wire_len = m.msg_len as usize;
                        each(Received {
                            ifindex: name.sll_ifindex,
                            at_ns,
                            wire_len,
                            // A frame longer than `snap` was cut: its headers are what we read.
                            bytes: &b[..wire_len.min(snap)],
                        });
                    }
                }
                n
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                return match e.kind() {
                    std::io::ErrorKind::WouldBlock => Ok(()),
                    std::io::ErrorKind::Interrupted => continue,
                    _ => Err(e),
                };
            }
            if (n as usize) < BATCH {
                return Ok(());
            }
        }
    }

    /// How many frames the socket dropped because its queue was full (`PACKET_STATISTICS`).
    pub fn drops(&self) -> std::io::Result<u32> {
        // SAFETY: getsockopt(2) into a zeroed struct of the size we pass.
        #[allow(unsafe_code)]
        unsafe {
            let mut stats: libc::tpacket_stats = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
            if libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(stats.tp_drops)
        }
    }
}
