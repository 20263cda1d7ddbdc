//! Frames seen at the client, for the reply-bypass proof: an `AF_PACKET`
//! socket opened in the client's namespace records the Ethernet source of
//! every IPv4 or IPv6 TCP packet that comes from the VIP. Under DR each of them must carry
//! a real server's MAC, never the director's: that is what "replies bypass the
//! director" means on the wire, and it needs no kernel timer.
//!
//! [`legs`] captures on the bridge's ports instead: every leg of every
//! planned connection, kept as frames for a pcapng file ([`crate::frames`]).

pub mod legs;
mod socket;

use socket::{PacketSocket, ETH_P_ALL, ETH_P_IP, ETH_P_IPV6};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::thread::JoinHandle;

/// A reply frame: who sent it on the wire, and from which VIP and TCP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyFrame {
    pub source_mac: [u8; 6],
    pub source: IpAddr,
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
        source,
        source_port: u16::from_be_bytes([tcp[0], tcp[1]]),
    })
}

/// A running capture; [`Capture::stop`] returns what it saw.
///
/// The socket queues frames as they come; a thread of its own drains the
/// queue every [`DRAIN_EVERY`], up to 64 frames per system call
/// (`recvmmsg`). Reading frame by frame cost a wake-up and a system call for
/// each, a third of all the system calls of a 1,000-connection lab under UML.
pub struct Capture {
    stop: Option<std::sync::mpsc::Sender<()>>,
    reader: Option<JoinHandle<std::io::Result<Vec<ReplyFrame>>>>,
}

/// How often the readers empty their socket's queue.
pub(crate) const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// The bytes kept of each frame: the Ethernet, IP (up to 60 bytes for IPv4
/// with options) and TCP port headers fit.
const SNAP: usize = 128;

impl Capture {
    /// Opens the socket in the calling thread's network namespace (call it
    /// inside [`crate::netns::NetNs::run`]) and starts its reader.
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
        let socket = PacketSocket::open(ethertype, device, false)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let mut frames = Vec::new();
            loop {
                // A message, or the sender dropped: stop after one last drain.
                let last = !matches!(stopped.recv_timeout(DRAIN_EVERY), Err(std::sync::mpsc::RecvTimeoutError::Timeout));
                socket.drain(SNAP, |r| frames.extend(parse_reply(r.bytes, &vips)))?;
                if last {
                    let dropped = socket.drops()?;
                    if dropped > 0 {
                        return Err(std::io::Error::other(format!(
                            "the capture lost {dropped} frame(s): its queue overflowed between two reads"
                        )));
                    }
                    return Ok(frames);
                }
            }
        });
        Ok(Capture {
            stop: Some(stop),
            reader: Some(reader),
        })
    }

    /// Reads what is still queued and returns the reply frames seen, or an
    /// error if the socket had to drop any (then the proof would be partial).
    pub fn stop(mut self) -> std::io::Result<Vec<ReplyFrame>> {
        drop(self.stop.take());
        match self.reader.take().map(|r| r.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the capture thread panicked")),
            None => Ok(vec![]),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        drop(self.stop.take());
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
                source: vip,
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
                source: vip,
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
