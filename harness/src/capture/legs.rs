//! Every leg of every planned connection, on the wire: one `AF_PACKET`
//! socket in the lab's `lan` namespace sees what each host sends into the
//! bridge, on that host's port (`tcpdump -i portN` for each N, at once).
//! The client's SYN to the VIP comes in on the client's port, the director's
//! copy (only the destination MAC rewritten) on the director's, the real
//! server's answer on its own; ARP and IPv6 neighbour discovery too.
//!
//! Memory is bounded: at most [`PER_CONNECTION`] frames of a connection,
//! [`NEIGHBOUR_FRAMES`] of ARP and neighbour discovery, [`MAX_FRAMES`] in
//! all, [`SNAP`] bytes of each. What was seen past the bounds is counted.

use super::socket::{PacketSocket, ETH_P_ALL};
use super::DRAIN_EVERY;
use crate::frames::{decode, Frame, FrameLog, Payload, Port};
use lvsdr_core::names::HostName;
use lvsdr_core::plan::{HostPlan, Role};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::thread::JoinHandle;

/// Frames kept of one connection: a handshake, a request, its answer and the
/// close, on three legs, with room for retransmissions.
pub const PER_CONNECTION: u32 = 40;
/// ARP and neighbour discovery frames kept.
pub const NEIGHBOUR_FRAMES: u32 = 512;
/// Frames kept in all (`MAX_FRAMES * SNAP` bytes: 12 MiB).
pub const MAX_FRAMES: usize = 65_536;
/// Bytes kept of each frame: every header, and the start of what the probes say.
pub const SNAP: usize = 192;

/// A bridge port to capture on: its device in the `lan` namespace, and whose it is.
#[derive(Debug, Clone)]
pub struct BridgePort {
    pub device: String,
    pub port: Port,
    /// The host behind it.
    pub host: HostName,
    /// On the outside bridge (br1, client to router), not the LAN's (br0).
    pub outside: bool,
}

/// The bridges' ports of a lab's hosts, as [`crate::lab::Lab`] names them in
/// its `lan` namespace: `port{i}` for host `i`'s first interface,
/// `port{i}n{j}` for its other LAN interfaces, `port{i}o{j}` for its outside ones.
pub fn ports_of(hosts: &[HostPlan]) -> Vec<BridgePort> {
    let mut out = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let role = match h.role {
            Role::Client => "client",
            Role::Director => "director",
            Role::RealServer => "real-server",
            Role::Router => "router",
        };
        let port = |device: String, interface: &str, outside: bool| BridgePort {
            device,
            port: Port {
                host: h.name.to_string(),
                interface: interface.to_string(),
                role: role.to_string(),
            },
            host: h.name.clone(),
            outside,
        };
        out.push(port(format!("port{i}"), &h.interface, h.outside));
        out.extend(
            h.extra_interfaces
                .iter()
                .enumerate()
                .map(|(j, x)| port(format!("port{i}n{j}"), x, false)),
        );
        out.extend(
            h.outside_interfaces
                .iter()
                .enumerate()
                .map(|(j, x)| port(format!("port{i}o{j}"), x, true)),
        );
    }
    out
}

/// A running capture on the bridge's ports; [`LegCapture::stop`] returns the frames.
pub struct LegCapture {
    stop: Option<std::sync::mpsc::Sender<()>>,
    reader: Option<JoinHandle<std::io::Result<FrameLog>>>,
}

/// What is kept, and what was left out.
struct Keeper {
    log: FrameLog,
    devices: HashMap<i32, u32>,
    clients: HashSet<SocketAddr>,
    /// Frames kept per connection, by its two ends.
    per_connection: HashMap<(SocketAddr, SocketAddr), u32>,
    neighbour: u32,
}

impl Keeper {
    fn offer(&mut self, ifindex: i32, at_ns: u64, wire_len: usize, bytes: &[u8]) {
        // Frames on the bridge device itself, or on a port we were not asked about.
        let Some(&port) = self.devices.get(&ifindex) else {
            return;
        };
        let Some(summary) = decode(bytes) else {
            return;
        };
        let room = match &summary.payload {
            Payload::Transport { .. } => match summary.ends(|a| self.clients.contains(a)) {
                Some(end) => {
                    let n = self.per_connection.entry(end).or_default();
                    *n += 1;
                    *n <= PER_CONNECTION
                }
                None => return,
            },
            Payload::Arp { .. } | Payload::Neighbour { .. } => {
                self.neighbour += 1;
                self.neighbour <= NEIGHBOUR_FRAMES
            }
            Payload::Other(_) => return,
        };
        if room && self.log.frames.len() < MAX_FRAMES {
            self.log.frames.push(Frame {
                port,
                at_ns,
                wire_len: u32::try_from(wire_len).unwrap_or(u32::MAX),
                bytes: bytes.to_vec(),
            });
        } else {
            self.log.dropped += 1;
        }
    }
}

impl LegCapture {
    /// Opens the socket in the calling thread's namespace (the lab's `lan`,
    /// inside [`crate::netns::NetNs::run`]) and starts its reader. It keeps
    /// the TCP and UDP frames whose source or destination is one of `clients`
    /// (the planned connections' client ends), through IP-in-IP too, and ARP
    /// and neighbour discovery, as each host sent them into the bridge.
    /// `services` names the server ends of each service's frames (see [`FrameLog::services`]).
    pub fn start(
        ports: &[BridgePort],
        clients: impl IntoIterator<Item = SocketAddr>,
        services: BTreeMap<String, Vec<SocketAddr>>,
    ) -> std::io::Result<LegCapture> {
        let mut devices = HashMap::new();
        for (i, p) in ports.iter().enumerate() {
            let name = std::ffi::CString::new(p.device.as_str()).map_err(std::io::Error::other)?;
            // SAFETY: if_nametoindex(3) reads the NUL-terminated name we own for the call.
            #[allow(unsafe_code)]
            let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if index == 0 {
                return Err(std::io::Error::last_os_error());
            }
            devices.insert(index as i32, i as u32);
        }
        let socket = PacketSocket::open(ETH_P_ALL, None, true)?;
        let mut keeper = Keeper {
            log: FrameLog {
                ports: ports.iter().map(|p| p.port.clone()).collect(),
                snap: SNAP as u32,
                services,
                ..FrameLog::default()
            },
            devices,
            clients: clients.into_iter().collect(),
            per_connection: HashMap::new(),
            neighbour: 0,
        };
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || loop {
            let last = !matches!(stopped.recv_timeout(DRAIN_EVERY), Err(std::sync::mpsc::RecvTimeoutError::Timeout));
            socket.drain(SNAP, |r| keeper.offer(r.ifindex, r.at_ns, r.wire_len, r.bytes))?;
            if last {
                keeper.log.lost = u64::from(socket.drops()?);
                // One socket's queue is in order already; sorting makes sure of it.
                keeper.log.frames.sort_by_key(|f| f.at_ns);
                return Ok(keeper.log);
            }
        });
        Ok(LegCapture {
            stop: Some(stop),
            reader: Some(reader),
        })
    }

    /// Reads what is still queued and returns the frames.
    pub fn stop(mut self) -> std::io::Result<FrameLog> {
        drop(self.stop.take());
        match self.reader.take().map(|r| r.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the bridge capture's thread panicked")),
            None => Ok(FrameLog::default()),
        }
    }
}

impl Drop for LegCapture {
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

    fn keeper() -> Keeper {
        Keeper {
            log: FrameLog::default(),
            devices: HashMap::from([(7, 0)]),
            clients: HashSet::from(["192.168.1.100:40000".parse().unwrap()]),
            per_connection: HashMap::new(),
            neighbour: 0,
        }
    }

    fn syn(sport: u16) -> Vec<u8> {
        let mut f = vec![0x0e, 0, 0, 0, 0, 2, 0x0e, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 168, 1, 100, 192, 168, 1, 192]);
        f.extend(sport.to_be_bytes());
        f.extend(80u16.to_be_bytes());
        f.extend([0u8; 16]);
        f
    }

    #[test]
    fn only_planned_connections_are_kept_and_each_is_bounded() {
        let mut k = keeper();
        k.offer(7, 1, 54, &syn(40000));
        k.offer(7, 2, 54, &syn(40001)); // not a planned connection
        k.offer(9, 3, 54, &syn(40000)); // the bridge device, not a port
        k.offer(7, 4, 10, &[0u8; 10]); // a runt
        assert_eq!((k.log.frames.len(), k.log.dropped), (1, 0));
        for i in 0..PER_CONNECTION {
            k.offer(7, u64::from(i), 54, &syn(40000));
        }
        assert_eq!((k.log.frames.len(), k.log.dropped), (PER_CONNECTION as usize, 1));
        assert_eq!(k.log.frames[0].port, 0);
    }
}
