//! What the kernel did, frame by frame: the frames a lab captured on its
//! bridge's ports ([`crate::capture::legs`]) as data on the [`Report`], read
//! back into Ethernet, ARP, IP and TCP facts, named by connection and leg,
//! written as a pcapng file for Wireshark, and cited by frame number when a
//! check fails.
//!
//! A frame is recorded once, on the port of the host that sent it: the
//! client's SYN on the client's port, the director's copy of it (the same
//! packet, the destination MAC rewritten) on the director's, and the real
//! server's answer on the real server's.

use crate::probe::ConnectionResult;
use lvsdr_core::plan::CheckKind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The frames of one lab run, with the ports they were seen on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameLog {
    /// The bridge's ports, in order: a frame's `port` indexes this list, and
    /// the pcapng file has one interface per port, in the same order.
    pub ports: Vec<Port>,
    /// The bytes kept of each frame.
    pub snap: u32,
    /// In the order the kernel saw them: frame number `n` in the pcapng file is `frames[n - 1]`.
    pub frames: Vec<Frame>,
    /// Frames of planned connections, and ARP or neighbour discovery, seen
    /// but not kept: past the bounds of [`crate::capture::legs`].
    pub dropped: u64,
    /// Frames the socket lost because its queue overflowed.
    pub lost: u64,
    /// For each service, the server ends its frames carry: the VIP and port
    /// the client connects to, and each destination's address and port (a
    /// NAT director's leg). With the client's end, they tell the connection
    /// of a frame when two services use the same client ports.
    #[serde(default)]
    pub services: BTreeMap<String, Vec<SocketAddr>>,
    /// The parts of the run after the first, each from its first frame: a
    /// failover's probes (`lvsdr lab --failover`) reuse the first probes'
    /// client ends, so a frame is matched with the connections of its part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

/// A later part of a run's frames: its own probes, after something changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// What changed, as the checks of the part end: `after failover`.
    pub name: String,
    /// Its first frame, an index into [`FrameLog::frames`].
    pub first_frame: usize,
    /// Its first connection, an index into the report's connections.
    pub first_connection: usize,
}

impl FrameLog {
    /// Appends the frames of a later part of the run, captured on the same
    /// ports, whose connections start at `first_connection` in the report.
    pub fn append(&mut self, later: FrameLog, name: &str, first_connection: usize) {
        // The same lab's legs: the same ports, but match them by name all the same.
        let port_of: Vec<u32> = later
            .ports
            .iter()
            .map(|p| {
                self.ports.iter().position(|q| q == p).unwrap_or_else(|| {
                    self.ports.push(p.clone());
                    self.ports.len() - 1
                }) as u32
            })
            .collect();
        self.parts.push(Part {
            name: name.to_string(),
            first_frame: self.frames.len(),
            first_connection,
        });
        self.frames.extend(later.frames.into_iter().map(|mut f| {
            f.port = port_of.get(f.port as usize).copied().unwrap_or(f.port);
            f
        }));
        self.dropped += later.dropped;
        self.lost += later.lost;
        for (service, ends) in later.services {
            let known = self.services.entry(service).or_default();
            for end in ends {
                if !known.contains(&end) {
                    known.push(end);
                }
            }
        }
    }

    /// The part a frame belongs to: 0 for the first, `k` for `parts[k - 1]`.
    fn part_of(&self, frame: usize) -> usize {
        self.parts.iter().take_while(|p| p.first_frame <= frame).count()
    }

    /// A check's name without its part's, and the part: a check of a later
    /// part ends with the part's name (`connectivity tcp/80 after failover`),
    /// the others are the first part's.
    fn part_of_check<'n>(&self, name: &'n str) -> (&'n str, usize) {
        self.parts
            .iter()
            .enumerate()
            .find_map(|(k, p)| name.strip_suffix(&format!(" {}", p.name)).map(|n| (n, k + 1)))
            .unwrap_or((name, 0))
    }

    /// The connections of part `k`, as a range of the report's connections.
    fn connections_of(&self, k: usize, all: usize) -> std::ops::Range<usize> {
        let start = if k == 0 { 0 } else { self.parts[k - 1].first_connection };
        let end = self.parts.get(k).map(|p| p.first_connection).unwrap_or(all);
        start.min(all)..end.clamp(start.min(all), all)
    }
}

/// A bridge port: the host behind it and that host's interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub host: String,
    pub interface: String,
    /// `client`, `director`, `real-server` or `router`.
    pub role: String,
}

impl Port {
    /// The name of its pcapng interface: the host, and the interface when it is not the host's first.
    pub fn name(&self, first: bool) -> String {
        if first {
            self.host.clone()
        } else {
            format!("{} {}", self.host, self.interface)
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Which of the log's ports it came in on (the host behind it sent it).
    pub port: u32,
    /// When the kernel saw it, in nanoseconds since the Unix epoch.
    pub at_ns: u64,
    /// Its length on the wire; `bytes` holds at most the snap length of it.
    pub wire_len: u32,
    #[serde(with = "hex")]
    pub bytes: Vec<u8>,
}

/// The bytes of a frame as lowercase hex in JSON: compact enough, and readable.
mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::from_hex(&text).ok_or_else(|| serde::de::Error::custom("frame bytes: not an even number of hex digits"))
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    digits.chunks(2).map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?)).collect()
}

/// A MAC address as people write it: `0e:01:02:03:04:05`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// What a frame carries, as far as the lab cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub destination_mac: [u8; 6],
    pub source_mac: [u8; 6],
    pub payload: Payload,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A TCP or UDP packet; `tunnel` holds the outer source and destination
    /// when it came IP-in-IP (LVS-TUN's director → real server leg).
    Transport {
        protocol: u8,
        source: SocketAddr,
        destination: SocketAddr,
        /// TCP's flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10); 0 for UDP.
        flags: u8,
        tunnel: Option<(IpAddr, IpAddr)>,
    },
    /// ARP over Ethernet and IPv4: request (1) or reply (2).
    Arp {
        operation: u16,
        sender_mac: [u8; 6],
        sender: Ipv4Addr,
        target: Ipv4Addr,
    },
    /// IPv6 neighbour discovery: a solicitation (135) or an advertisement (136) for `target`.
    Neighbour { icmp_type: u8, target: Ipv6Addr },
    /// Anything else, by ethertype.
    Other(u16),
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const IPIP: u8 = 4;
const IPV6_IN_IP: u8 = 41;
const ICMPV6: u8 = 58;

/// An IP packet's source, destination, protocol and payload; `None` for
/// anything cut short or malformed.
fn ip(packet: &[u8]) -> Option<(IpAddr, IpAddr, u8, &[u8])> {
    match packet.first()? >> 4 {
        4 => {
            let header_len = usize::from(packet[0] & 0x0f) * 4;
            if header_len < 20 || packet.len() < header_len {
                return None;
            }
            let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
            let destination = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
            Some((source.into(), destination.into(), packet[9], &packet[header_len..]))
        }
        6 => {
            let source: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let destination: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some((
                Ipv6Addr::from(source).into(),
                Ipv6Addr::from(destination).into(),
                packet[6],
                &packet[40..],
            ))
        }
        _ => None,
    }
}

/// Reads a frame's headers. `None` only when it is shorter than an Ethernet
/// header; a frame it cannot read further is [`Payload::Other`].
pub fn decode(frame: &[u8]) -> Option<Summary> {
    let destination_mac: [u8; 6] = frame.get(0..6)?.try_into().ok()?;
    let source_mac: [u8; 6] = frame.get(6..12)?.try_into().ok()?;
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let body = &frame[14..];
    let payload = match ethertype {
        0x0806 => arp(body),
        0x0800 | 0x86DD => transport(body),
        _ => None,
    }
    .unwrap_or(Payload::Other(ethertype));
    Some(Summary {
        destination_mac,
        source_mac,
        payload,
    })
}

fn arp(body: &[u8]) -> Option<Payload> {
    // Ethernet (1), IPv4 (0x0800), 6-byte and 4-byte addresses.
    if body.get(0..6)? != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    let four = |at: usize| -> Option<Ipv4Addr> {
        let b: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(b))
    };
    Some(Payload::Arp {
        operation: u16::from_be_bytes([*body.get(6)?, *body.get(7)?]),
        sender_mac: body.get(8..14)?.try_into().ok()?,
        sender: four(14)?,
        target: four(24)?,
    })
}

fn transport(body: &[u8]) -> Option<Payload> {
    let (mut source, mut destination, mut protocol, mut rest) = ip(body)?;
    let mut tunnel = None;
    if protocol == IPIP || protocol == IPV6_IN_IP {
        tunnel = Some((source, destination));
        (source, destination, protocol, rest) = ip(rest)?;
    }
    match protocol {
        TCP | UDP => {
            let port = |at: usize| -> Option<u16> { Some(u16::from_be_bytes([*rest.get(at)?, *rest.get(at + 1)?])) };
            Some(Payload::Transport {
                protocol,
                source: SocketAddr::new(source, port(0)?),
                destination: SocketAddr::new(destination, port(2)?),
                flags: if protocol == TCP { rest.get(13).copied().unwrap_or(0) } else { 0 },
                tunnel,
            })
        }
        ICMPV6 if matches!(rest.first(), Some(135 | 136)) => {
            let target: [u8; 16] = rest.get(8..24)?.try_into().ok()?;
            Some(Payload::Neighbour {
                icmp_type: rest[0],
                target: Ipv6Addr::from(target),
            })
        }
        _ => None,
    }
}

impl Summary {
    /// The client's end of the connection this frame belongs to, when one of
    /// `clients` is its source or its destination.
    pub fn client_end(&self, is_client: impl Fn(&SocketAddr) -> bool) -> Option<SocketAddr> {
        self.ends(is_client).map(|(client, _)| client)
    }

    /// The client's end and the other end, when one of `clients` is the
    /// frame's source or its destination.
    pub fn ends(&self, is_client: impl Fn(&SocketAddr) -> bool) -> Option<(SocketAddr, SocketAddr)> {
        match &self.payload {
            Payload::Transport { source, destination, .. } => {
                let (s, d) = (normalise(*source), normalise(*destination));
                if is_client(&s) {
                    Some((s, d))
                } else if is_client(&d) {
                    Some((d, s))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Whether the frame goes towards the client (a reply), rather than from it.
    pub fn towards(&self, client: SocketAddr) -> bool {
        matches!(&self.payload, Payload::Transport { destination, .. } if normalise(*destination) == client)
    }

    /// A line for people: `0e:…:01 → 0e:…:02  192.168.1.100:40000 → 192.168.1.192:80 [SYN]`.
    pub fn describe(&self) -> String {
        let macs = format!("{} → {}", format_mac(&self.source_mac), format_mac(&self.destination_mac));
        match &self.payload {
            Payload::Transport {
                protocol,
                source,
                destination,
                flags,
                tunnel,
            } => {
                let mut line = format!("{macs}  {source} → {destination}");
                if *protocol == TCP {
                    let _ = write!(line, " [{}]", tcp_flags(*flags));
                } else {
                    line.push_str(" UDP");
                }
                if let Some((s, d)) = tunnel {
                    let _ = write!(line, " inside IP-in-IP {s} → {d}");
                }
                line
            }
            Payload::Arp {
                operation,
                sender_mac,
                sender,
                target,
            } => match operation {
                1 => format!("{macs}  ARP who has {target}? tell {sender}"),
                2 => format!("{macs}  ARP {sender} is at {}", format_mac(sender_mac)),
                op => format!("{macs}  ARP operation {op}"),
            },
            Payload::Neighbour { icmp_type, target } => match icmp_type {
                135 => format!("{macs}  neighbour solicitation for {target}"),
                _ => format!("{macs}  neighbour advertisement for {target}"),
            },
            Payload::Other(t) => format!("{macs}  ethertype 0x{t:04x}"),
        }
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`, as the probes report addresses.
fn normalise(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// TCP flags as tshark writes them: `SYN`, `SYN, ACK`, `FIN, ACK`.
pub fn tcp_flags(flags: u8) -> String {
    let names = [(0x02, "SYN"), (0x01, "FIN"), (0x04, "RST"), (0x08, "PSH"), (0x10, "ACK")];
    let set: Vec<&str> = names.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| *n).collect();
    if set.is_empty() {
        "none".into()
    } else {
        set.join(", ")
    }
}

/// The frames of a report, read and named: for each frame, its connection
/// (an index into the report's connections) and its leg.
pub struct Annotated<'a> {
    pub log: &'a FrameLog,
    pub summaries: Vec<Option<Summary>>,
    /// For each frame, the connection it belongs to, if any.
    pub connection: Vec<Option<usize>>,
    connections: &'a [ConnectionResult],
    /// Which host each MAC belongs to: the port its frames came in on.
    owners: HashMap<[u8; 6], usize>,
}

impl<'a> Annotated<'a> {
    pub fn new(log: &'a FrameLog, connections: &'a [ConnectionResult]) -> Annotated<'a> {
        // Connections by part, service and client end; several services may
        // use the same client ports, and each part of the run the same ones again.
        let by_end: HashMap<(usize, &str, SocketAddr), usize> = (0..=log.parts.len())
            .flat_map(|k| log.connections_of(k, connections.len()).map(move |i| (k, i)))
            .map(|(k, i)| {
                let c = &connections[i];
                ((k, c.service.as_str(), SocketAddr::new(c.client, c.client_port)), i)
            })
            .collect();
        let mut services_at: HashMap<SocketAddr, Vec<&str>> = HashMap::new();
        for (service, ends) in &log.services {
            for end in ends {
                services_at.entry(*end).or_default().push(service);
            }
        }
        let clients: std::collections::HashSet<SocketAddr> = by_end.keys().map(|(_, _, c)| *c).collect();
        let summaries: Vec<Option<Summary>> = log.frames.iter().map(|f| decode(&f.bytes)).collect();
        let connection = summaries
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (client, other) = s.as_ref()?.ends(|a| clients.contains(a))?;
                let part = log.part_of(i);
                match services_at.get(&other) {
                    Some(services) => services.iter().find_map(|s| by_end.get(&(part, *s, client)).copied()),
                    // A log without its services: the first connection of its part from that end.
                    None => log
                        .connections_of(part, connections.len())
                        .find(|c| SocketAddr::new(connections[*c].client, connections[*c].client_port) == client),
                }
            })
            .collect();
        let mut owners = HashMap::new();
        for (f, s) in log.frames.iter().zip(&summaries) {
            if let Some(s) = s {
                owners.entry(s.source_mac).or_insert(f.port as usize);
            }
        }
        Annotated {
            log,
            summaries,
            connection,
            connections,
            owners,
        }
    }

    fn host(&self, port: usize) -> &str {
        self.log.ports.get(port).map(|p| p.host.as_str()).unwrap_or("?")
    }

    fn role(&self, port: usize) -> &str {
        self.log.ports.get(port).map(|p| p.role.as_str()).unwrap_or("")
    }

    /// The leg a frame was on: `client → director`, `rs1 → client`; the
    /// receiver is whoever sent frames from its destination MAC.
    pub fn leg(&self, frame: usize) -> String {
        let Some(f) = self.log.frames.get(frame) else {
            return String::new();
        };
        let from = self.host(f.port as usize);
        match self.summaries[frame].as_ref().map(|s| s.destination_mac) {
            Some([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) => format!("{from} → everyone"),
            Some(mac) => match self.owners.get(&mac) {
                Some(p) => format!("{from} → {}", self.host(*p)),
                None => format!("{from} → {}", format_mac(&mac)),
            },
            None => from.to_string(),
        }
    }

    /// The pcapng comment of a frame: the service and the real server the
    /// kernel chose for its connection, and the leg.
    pub fn comment(&self, frame: usize) -> Option<String> {
        let c = &self.connections[self.connection.get(frame).copied().flatten()?];
        let chosen = match (&c.real_server, &c.error) {
            (Some(rs), _) => format!("the kernel chose {rs}"),
            (None, Some(e)) => format!("no real server answered ({e})"),
            (None, None) => "no real server answered".into(),
        };
        let part = match self.log.part_of(frame) {
            0 => String::new(),
            k => format!("{}: ", self.log.parts[k - 1].name),
        };
        Some(format!(
            "{part}{} from {}: {chosen}; {}",
            c.service,
            SocketAddr::new(c.client, c.client_port),
            self.leg(frame)
        ))
    }

    /// Frame numbers (1-based, as in the pcapng file) of the frames that
    /// show why the failed check `name` of `kind` failed; empty for a check
    /// that frames cannot show (the kernel state read back, the counters).
    pub fn evidence(&self, name: &str, kind: CheckKind, vips: &[IpAddr]) -> Vec<usize> {
        let (name, part) = self.log.part_of_check(name);
        let service = name.split_once(' ').map(|(_, s)| s);
        let of_service = |i: usize| match (self.connection[i], service) {
            (Some(c), Some(s)) => self.connections[c].service == s,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let failed = |i: usize| self.connection[i].is_some_and(|c| self.connections[c].error.is_some());
        let reply = |i: usize| match (self.connection[i], &self.summaries[i]) {
            (Some(c), Some(s)) => s.towards(SocketAddr::new(self.connections[c].client, self.connections[c].client_port)),
            _ => false,
        };
        let numbers = |keep: &dyn Fn(usize) -> bool| -> Vec<usize> {
            (0..self.log.frames.len())
                .filter(|i| self.log.part_of(*i) == part && keep(*i))
                .map(|i| i + 1)
                .collect()
        };
        let role = |i: usize| self.role(self.log.frames[i].port as usize);
        let syn = |i: usize| {
            matches!(
                &self.summaries[i],
                Some(Summary {
                    payload: Payload::Transport { flags: 0x02, .. },
                    ..
                })
            )
        };
        // What the client (or its router) sent to someone other than a director: around IPVS.
        let around = |i: usize| {
            self.connection[i].is_some()
                && matches!(role(i), "client" | "router")
                && self.summaries[i]
                    .as_ref()
                    .and_then(|s| self.owners.get(&s.destination_mac))
                    .is_some_and(|p| self.role(*p) != "director")
        };
        let first_of = |choices: &[&dyn Fn(usize) -> bool]| -> Vec<usize> {
            choices
                .iter()
                .map(|keep| numbers(*keep))
                .find(|n| !n.is_empty())
                .unwrap_or_default()
        };
        match kind {
            CheckKind::Connectivity => numbers(&|i| of_service(i) && failed(i)),
            // The connections that failed, else where each went: the director's copy of
            // each SYN, else the SYNs the client sent around the director.
            CheckKind::SourceIp | CheckKind::Split | CheckKind::Weights => first_of(&[
                &|i| of_service(i) && failed(i),
                &|i| of_service(i) && role(i) == "director" && syn(i),
                &|i| of_service(i) && around(i) && syn(i),
            ]),
            // Replies that came through the director, the client's packets that went
            // around it, or every frame of a connection that got no answer.
            CheckKind::ReplyBypass => first_of(&[&|i| reply(i) && role(i) == "director", &|i| around(i) && syn(i), &failed]),
            CheckKind::ReplyViaDirector => numbers(&|i| reply(i) && role(i) == "real-server"),
            // Whoever answered for a VIP other than the director.
            CheckKind::ArpOwner => numbers(&|i| {
                role(i) != "director"
                    && match &self.summaries[i] {
                        Some(Summary {
                            payload: Payload::Arp { operation: 2, sender, .. },
                            ..
                        }) => vips.contains(&IpAddr::V4(*sender)),
                        Some(Summary {
                            payload: Payload::Neighbour { icmp_type: 136, target },
                            ..
                        }) => vips.contains(&IpAddr::V6(*target)),
                        _ => false,
                    }
            }),
            _ => vec![],
        }
    }
}

/// The VIPs the client talked to: the destinations of its connections' first frames.
pub fn vips(a: &Annotated) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = a
        .summaries
        .iter()
        .zip(&a.connection)
        .filter_map(|(s, c)| match (s, c) {
            (
                Some(Summary {
                    payload: Payload::Transport { destination, .. },
                    ..
                }),
                Some(c),
            ) if destination.ip() != a.connections[*c].client => Some(normalise(*destination).ip()),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT_MAC: [u8; 6] = [0x0e, 0, 0, 0, 0, 0x01];
    const DIRECTOR_MAC: [u8; 6] = [0x0e, 0, 0, 0, 0, 0x02];
    const RS_MAC: [u8; 6] = [0x0e, 0, 0, 0, 0, 0x03];

    fn tcp(src_mac: [u8; 6], dst_mac: [u8; 6], src: ([u8; 4], u16), dst: ([u8; 4], u16), flags: u8) -> Vec<u8> {
        let mut f = dst_mac.to_vec();
        f.extend(src_mac);
        f.extend([0x08, 0x00]);
        f.extend([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]);
        f.extend(src.0);
        f.extend(dst.0);
        f.extend(src.1.to_be_bytes());
        f.extend(dst.1.to_be_bytes());
        f.extend([0u8; 8]);
        f.extend([0x50, flags]);
        f.extend([0u8; 6]);
        f
    }

    const CLIENT: ([u8; 4], u16) = ([192, 168, 1, 100], 40000);
    const VIP: ([u8; 4], u16) = ([192, 168, 1, 192], 80);

    #[test]
    fn the_three_legs_of_a_dr_connection_are_read() {
        let syn = decode(&tcp(CLIENT_MAC, DIRECTOR_MAC, CLIENT, VIP, 0x02)).unwrap();
        assert_eq!(syn.source_mac, CLIENT_MAC);
        assert_eq!(syn.destination_mac, DIRECTOR_MAC);
        assert_eq!(
            syn.describe(),
            "0e:00:00:00:00:01 → 0e:00:00:00:00:02  192.168.1.100:40000 → 192.168.1.192:80 [SYN]"
        );
        let client: SocketAddr = "192.168.1.100:40000".parse().unwrap();
        assert_eq!(syn.client_end(|a| *a == client), Some(client));
        assert!(!syn.towards(client));
        let synack = decode(&tcp(RS_MAC, CLIENT_MAC, VIP, CLIENT, 0x12)).unwrap();
        assert!(synack.towards(client));
        assert!(synack.describe().ends_with("[SYN, ACK]"));
    }

    #[test]
    fn tunnelled_arp_and_broken_frames() {
        // IP-in-IP: the outer header from the director to the real server, then the client's SYN.
        let inner = tcp(CLIENT_MAC, DIRECTOR_MAC, CLIENT, VIP, 0x02);
        let mut f = RS_MAC.to_vec();
        f.extend(DIRECTOR_MAC);
        f.extend([
            0x08, 0x00, 0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 4, 0, 0, 192, 168, 1, 191, 192, 168, 1, 213,
        ]);
        f.extend(&inner[14..]);
        let s = decode(&f).unwrap();
        assert!(
            s.describe().ends_with("[SYN] inside IP-in-IP 192.168.1.191 → 192.168.1.213"),
            "{}",
            s.describe()
        );

        let mut arp = vec![0xff; 6];
        arp.extend(RS_MAC);
        arp.extend([0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
        arp.extend(RS_MAC);
        arp.extend([192, 168, 1, 192]);
        arp.extend(CLIENT_MAC);
        arp.extend([192, 168, 1, 100]);
        assert_eq!(
            decode(&arp).unwrap().describe(),
            "0e:00:00:00:00:03 → ff:ff:ff:ff:ff:ff  ARP 192.168.1.192 is at 0e:00:00:00:00:03"
        );
        // Every prefix of these frames reads without a panic.
        for frame in [&f, &arp, &inner] {
            for n in 0..frame.len() {
                let _ = decode(&frame[..n]).map(|s| s.describe());
            }
        }
        assert_eq!(decode(&[0u8; 13]), None);
        assert_eq!(decode(&[0u8; 14]).unwrap().payload, Payload::Other(0));
    }

    #[test]
    fn bytes_travel_as_hex() {
        let f = Frame {
            port: 1,
            at_ns: 5,
            wire_len: 3,
            bytes: vec![0x00, 0xab, 0xff],
        };
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"{"port":1,"at_ns":5,"wire_len":3,"bytes":"00abff"}"#);
        assert_eq!(serde_json::from_str::<Frame>(&json).unwrap(), f);
        assert!(serde_json::from_str::<Frame>(r#"{"port":1,"at_ns":5,"wire_len":3,"bytes":"0ab"}"#).is_err());
        assert!(serde_json::from_str::<Frame>(r#"{"port":1,"at_ns":5,"wire_len":3,"bytes":"zz"}"#).is_err());
        assert_eq!(from_hex("é"), None);
    }

    fn log() -> (FrameLog, Vec<ConnectionResult>) {
        let port = |host: &str, role: &str| Port {
            host: host.into(),
            interface: "eth0".into(),
            role: role.into(),
        };
        let frame = |port: u32, at_ns: u64, bytes: Vec<u8>| Frame {
            port,
            at_ns,
            wire_len: bytes.len() as u32,
            bytes,
        };
        let log = FrameLog {
            ports: vec![port("client", "client"), port("director", "director"), port("rs1", "real-server")],
            snap: 192,
            frames: vec![
                frame(0, 1, tcp(CLIENT_MAC, DIRECTOR_MAC, CLIENT, VIP, 0x02)),
                frame(1, 2, tcp(DIRECTOR_MAC, RS_MAC, CLIENT, VIP, 0x02)),
                frame(2, 3, tcp(RS_MAC, CLIENT_MAC, VIP, CLIENT, 0x12)),
            ],
            dropped: 0,
            lost: 0,
            services: BTreeMap::from([("tcp/80".to_string(), vec!["192.168.1.192:80".parse().unwrap()])]),
            parts: vec![],
        };
        let connections = vec![
            ConnectionResult {
                service: "tcp/25".into(),
                client: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 100)),
                client_port: 40000,
                real_server: Some("rs2".into()),
                source_seen: Some("192.168.1.100".into()),
                error: None,
                millis: 1,
            },
            ConnectionResult {
                service: "tcp/80".into(),
                client: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 100)),
                client_port: 40000,
                real_server: Some("rs1".into()),
                source_seen: Some("192.168.1.100".into()),
                error: None,
                millis: 1,
            },
        ];
        (log, connections)
    }

    #[test]
    fn each_frame_is_named_by_its_connection_and_leg() {
        let (log, connections) = log();
        let a = Annotated::new(&log, &connections);
        // The same client end as a tcp/25 connection: the VIP's port tells them apart.
        assert_eq!(a.connection, vec![Some(1), Some(1), Some(1)]);
        assert_eq!(
            a.comment(1).unwrap(),
            "tcp/80 from 192.168.1.100:40000: the kernel chose rs1; director → rs1"
        );
        assert_eq!(a.leg(0), "client → director");
        assert_eq!(a.leg(2), "rs1 → client");
        assert_eq!(vips(&a), vec![IpAddr::V4(Ipv4Addr::new(192, 168, 1, 192))]);
    }

    #[test]
    fn a_later_part_reuses_the_client_ends_and_keeps_its_own_connections() {
        let (mut log, mut connections) = log();
        // After a failover the same client end connects again; the new frames
        // belong to the part's own connection, which the kernel sent to rs2.
        let mut later = log.clone();
        later.frames.truncate(2);
        let mut again = connections[1].clone();
        again.real_server = None;
        again.error = Some("connection refused".into());
        log.append(later, "after failover", connections.len());
        connections.push(again);
        let a = Annotated::new(&log, &connections);
        assert_eq!(a.connection, vec![Some(1), Some(1), Some(1), Some(2), Some(2)]);
        assert_eq!(
            a.comment(3).unwrap(),
            "after failover: tcp/80 from 192.168.1.100:40000: no real server answered (connection refused); client → director"
        );
        // Its checks show its own frames (4 and 5); the first part's, the first part's.
        assert_eq!(
            a.evidence("connectivity tcp/80 after failover", CheckKind::Connectivity, &[]),
            vec![4, 5]
        );
        assert!(a.evidence("connectivity tcp/80", CheckKind::Connectivity, &[]).is_empty());
    }

    #[test]
    fn a_failed_bypass_names_the_reply_that_came_through_the_director() {
        let (mut log, connections) = log();
        // The reply leaves from the director's port: the bypass did not happen.
        log.frames[2].port = 1;
        let a = Annotated::new(&log, &connections);
        assert_eq!(a.evidence("reply-bypass", CheckKind::ReplyBypass, &[]), vec![3]);
        assert_eq!(
            a.evidence("split tcp/80", CheckKind::Split, &[]),
            vec![2],
            "the director's copy of the SYN"
        );
    }
}
