//! Frames seen at the client, for the reply-bypass proof: an `AF_PACKET`
//! socket opened in the client's namespace records the Ethernet source of
//! every IPv4 or IPv6 TCP packet that comes from the VIP. Under DR each of them must carry
//! a real server's MAC, never the director's: that is what "replies bypass the
//! director" means on the wire, and it needs no kernel timer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A reply frame: who sent it on the wire, and from which TCP port of the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyFrame {
    pub source_mac: [u8; 6],
    pub source_port: u16,
}

const ETH_HEADER: usize = 14;
const IPPROTO_TCP: u8 = 6;

/// Reads an Ethernet frame: `Some` when it is TCP from `vip`, over IPv4 or
/// over IPv6 (where TCP must be the first next header: lvsdr's probes send
/// no extension headers, and DR forwards the packet as it is).
pub fn parse_reply(frame: &[u8], vips: &[IpAddr]) -> Option<ReplyFrame> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let ip = frame.get(ETH_HEADER..)?;
    let (source, tcp) = match ethertype {
        ETH_P_IP => {
            let header_len = usize::from(ip.first()? & 0x0f) * 4;
            if ip[0] >> 4 != 4 || header_len < 20 || ip.len() < header_len || ip[9] != IPPROTO_TCP {
                return None;
            }
            (IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])), &ip[header_len..])
        }
        ETH_P_IPV6 => {
            if ip.len() < 40 || ip[0] >> 4 != 6 || ip[6] != IPPROTO_TCP {
                return None;
            }
            let source: [u8; 16] = ip[8..24].try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(source)), &ip[40..])
        }
        _ => return None,
    };
    if !vips.contains(&source) || tcp.len() < 4 {
        return None;
    }
    let mut source_mac = [0u8; 6];
    source_mac.copy_from_slice(&frame[6..12]);
    Some(ReplyFrame {
        source_mac,
        source_port: u16::from_be_bytes([tcp[0], tcp[1]]),
    })
}

/// A running capture; [`Capture::stop`] returns what it saw.
pub struct Capture {
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<std::io::Result<Vec<ReplyFrame>>>>,
}

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_ALL: u16 = 0x0003;

impl Capture {
    /// Opens the socket in the calling thread's network namespace (call it
    /// inside [`crate::netns::NetNs::run`]) and starts reading on a thread of its own.
    /// It takes the frames of the VIPs' family only (`ETH_P_IP` or `ETH_P_IPV6`),
    /// or every frame when the VIPs are of both families.
    /// With `device`, only the frames that arrive on that interface (a router's LAN side).
    pub fn start(vips: &[IpAddr], device: Option<&str>) -> std::io::Result<Capture> {
        let ethertype = if vips.iter().all(IpAddr::is_ipv4) {
            ETH_P_IP
        } else if vips.iter().all(IpAddr::is_ipv6) {
            ETH_P_IPV6
        } else {
            ETH_P_ALL
        };
        let vips = vips.to_vec();
        // SAFETY: plain socket(2) and setsockopt(2) calls; the descriptor is owned at once.
        #[allow(unsafe_code)]
        let fd = unsafe {
            let raw = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(ethertype.to_be()));
            if raw < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(raw);
            // Wake up every 20 ms to notice `stop`.
            let timeout = libc::timeval {
                tv_sec: 0,
                tv_usec: 20_000,
            };
            if libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
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
            // Room for every reply of a long run (1,000 connections), so none is dropped.
            let size: libc::c_int = 8 << 20;
            let _ = libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            fd
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let reader = std::thread::spawn(move || {
            let mut frames = Vec::new();
            let mut buf = vec![0u8; 2048];
            loop {
                // SAFETY: reading into a buffer we own, of the length we pass.
                #[allow(unsafe_code)]
                let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n < 0 {
                    let e = std::io::Error::last_os_error();
                    match e.kind() {
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted => {}
                        _ => return Err(e),
                    }
                    // Drain what is queued before stopping: only an empty read ends the capture.
                    if flag.load(Ordering::SeqCst) {
                        return Ok(frames);
                    }
                    continue;
                }
                if let Some(f) = parse_reply(&buf[..n as usize], &vips) {
                    frames.push(f);
                }
            }
        });
        Ok(Capture {
            stop,
            reader: Some(reader),
        })
    }

    /// Stops reading once the queue is empty and returns the reply frames seen.
    pub fn stop(mut self) -> std::io::Result<Vec<ReplyFrame>> {
        self.stop.store(true, Ordering::SeqCst);
        match self.reader.take().map(|r| r.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the capture thread panicked")),
            None => Ok(vec![]),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(src_mac: [u8; 6], ethertype: [u8; 2], proto: u8, src: [u8; 4], sport: u16) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1];
        f.extend(src_mac);
        f.extend(ethertype);
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, proto, 0, 0];
        ip.extend(src);
        ip.extend([192, 168, 1, 100]);
        f.extend(ip);
        f.extend(sport.to_be_bytes());
        f.extend([0x9c, 0x40]);
        f.extend([0u8; 16]);
        f
    }

    #[test]
    fn replies_from_the_vip_are_read_with_their_mac() {
        let vip = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 192));
        let mac = [0x0e, 1, 2, 3, 4, 5];
        assert_eq!(
            parse_reply(&frame(mac, [0x08, 0], 6, [192, 168, 1, 192], 80), &[vip]),
            Some(ReplyFrame {
                source_mac: mac,
                source_port: 80
            })
        );
        assert_eq!(
            parse_reply(&frame(mac, [0x08, 0], 6, [192, 168, 1, 213], 80), &[vip]),
            None,
            "another source"
        );
        assert_eq!(
            parse_reply(&frame(mac, [0x08, 0], 17, [192, 168, 1, 192], 53), &[vip]),
            None,
            "not TCP"
        );
        assert_eq!(parse_reply(&frame(mac, [0x08, 6], 6, [192, 168, 1, 192], 80), &[vip]), None, "ARP");
        assert_eq!(parse_reply(&[0u8; 20], &[vip]), None, "runt");
        assert_eq!(parse_reply(&[0u8; 13], &[vip]), None, "shorter than an Ethernet header");
        let mut cut = frame(mac, [0x08, 0], 6, [192, 168, 1, 192], 80);
        cut.truncate(ETH_HEADER + 22);
        assert_eq!(parse_reply(&cut, &[vip]), None, "TCP header cut short");
    }

    /// An IPv6 TCP segment: the fixed 40-byte header, then TCP.
    fn frame6(src_mac: [u8; 6], next_header: u8, src: Ipv6Addr, sport: u16) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1];
        f.extend(src_mac);
        f.extend([0x86, 0xdd]);
        f.extend([0x60, 0, 0, 0]); // version 6, traffic class and flow label 0
        f.extend(20u16.to_be_bytes()); // payload length: a bare TCP header
        f.extend([next_header, 64]); // next header, hop limit
        f.extend(src.octets());
        f.extend(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100).octets());
        f.extend(sport.to_be_bytes());
        f.extend([0x9c, 0x40]);
        f.extend([0u8; 16]);
        f
    }

    #[test]
    fn ipv6_replies_from_the_vip_are_read_with_their_mac() {
        let vip6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let vip = IpAddr::V6(vip6);
        let mac = [0x0e, 1, 2, 3, 4, 6];
        let f = frame6(mac, 6, vip6, 25);
        assert_eq!((f.len(), &f[12..14], f[14 + 6]), (14 + 40 + 20, &[0x86, 0xdd][..], 6));
        assert_eq!(
            parse_reply(&f, &[vip]),
            Some(ReplyFrame {
                source_mac: mac,
                source_port: 25
            })
        );
        let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11);
        assert_eq!(parse_reply(&frame6(mac, 6, other, 25), &[vip]), None, "another source");
        assert_eq!(parse_reply(&frame6(mac, 17, vip6, 53), &[vip]), None, "UDP");
        assert_eq!(parse_reply(&frame6(mac, 58, vip6, 0), &[vip]), None, "ICMPv6");
        assert_eq!(parse_reply(&f[..14 + 40], &[vip]), None, "no TCP header");
        let v4_vip = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 192));
        assert_eq!(parse_reply(&f, &[v4_vip]), None, "an IPv6 frame never matches an IPv4 VIP");
        assert_eq!(parse_reply(&frame(mac, [0x08, 0], 6, [192, 168, 1, 192], 80), &[vip]), None);
    }
}
