//! Links, addresses and neighbours through rtnetlink. A [`Route`] is one
//! namespace's handle, made inside it and usable from any thread after: it
//! makes the changes ([`Change`]), batched on lvsdr's transport. The free
//! functions read (addresses, neighbours, counters, whether links run), in
//! the namespace of the thread that calls them: call them from [`NetNs::run`].
//!
//! [`NetNs::run`]: crate::netns::NetNs::run

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use netlink_packet_route::link::{InfoData, InfoVeth};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
use netlink_packet_route::AddressFamily;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth};
use std::net::IpAddr;
use std::os::fd::RawFd;

#[derive(Debug, thiserror::Error)]
pub enum RtnlError {
    #[error("rtnetlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
    #[error("rtnetlink socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("no link named {0}")]
    NoSuchLink(String),
    #[error("invalid route: {0}")]
    Route(String),
    #[error("{0}")]
    NotRunning(String),
    #[error("`{change}` refused: {said}")]
    Refused { change: String, said: String },
}

/// A runtime for rtnetlink work, to reuse across calls and namespaces: a
/// thread that works in many namespaces builds one, not one per call.
pub struct Session(tokio::runtime::Runtime);

impl Session {
    pub fn new() -> Result<Session, RtnlError> {
        Ok(Session(tokio::runtime::Builder::new_current_thread().enable_all().build()?))
    }

    /// As [`with_handle`], on this session's runtime.
    pub fn with_handle<T>(&self, f: impl AsyncFnOnce(Handle) -> Result<T, RtnlError>) -> Result<T, RtnlError> {
        run_on(&self.0, f)
    }
}

/// Runs async rtnetlink work on a runtime private to the calling thread,
/// with a netlink socket opened in that thread's namespace.
pub fn with_handle<T>(f: impl AsyncFnOnce(Handle) -> Result<T, RtnlError>) -> Result<T, RtnlError> {
    Session::new()?.with_handle(f)
}

fn run_on<T>(rt: &tokio::runtime::Runtime, f: impl AsyncFnOnce(Handle) -> Result<T, RtnlError>) -> Result<T, RtnlError> {
    rt.block_on(async {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        let task = tokio::spawn(connection);
        let result = f(handle).await;
        task.abort();
        result
    })
}

/// A datagram socket for interface ioctls: the namespace it was made in is
/// the one its ioctls look names up in.
fn ioctl_socket() -> Result<std::os::fd::OwnedFd, RtnlError> {
    // SAFETY: a plain socket call; its descriptor is owned at once.
    #[allow(unsafe_code)]
    unsafe {
        use std::os::fd::FromRawFd;
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(std::os::fd::OwnedFd::from_raw_fd(fd))
    }
}

/// One `ifreq` ioctl on `name` in the calling thread's namespace.
fn ifreq(name: &str, request: libc::Ioctl) -> Result<libc::ifreq, RtnlError> {
    ifreq_on(&ioctl_socket()?, name, request)
}

/// One `ifreq` ioctl on `name`, in the namespace of `socket`.
fn ifreq_on(socket: &std::os::fd::OwnedFd, name: &str, request: libc::Ioctl) -> Result<libc::ifreq, RtnlError> {
    use std::os::fd::AsRawFd;
    if name.len() >= libc::IFNAMSIZ {
        return Err(RtnlError::NoSuchLink(name.to_string()));
    }
    // SAFETY: an ioctl on a zeroed ifreq holding a NUL-terminated name.
    #[allow(unsafe_code)]
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
            *d = *s as libc::c_char;
        }
        if libc::ioctl(socket.as_raw_fd(), request, &mut req) < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENODEV) {
                return Err(RtnlError::NoSuchLink(name.to_string()));
            }
            return Err(e.into());
        }
        Ok(req)
    }
}

/// Whether a link in the calling thread's namespace is running (`IFF_RUNNING`:
/// up, with its carrier, and its operational state set).
pub fn running(name: &str) -> Result<bool, RtnlError> {
    running_of(ifreq(name, libc::SIOCGIFFLAGS as libc::Ioctl)?)
}

fn running_of(req: libc::ifreq) -> Result<bool, RtnlError> {
    // SAFETY: SIOCGIFFLAGS fills the flags member of the union.
    #[allow(unsafe_code)]
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    Ok(flags & libc::IFF_RUNNING as libc::c_short != 0)
}

/// Waits until every one of `names` is running, in the calling thread's
/// namespace. The kernel turns a link's carrier on when both ends of a veth
/// are up, but it sets the operational state and attaches the link's queueing
/// discipline later, from a worker (linkwatch); until then the link drops what
/// it is given to send. Under UML a lab that starts its probes at once can
/// lose an ARP request that way, and its retry comes after a second, when the
/// connection waiting on it has timed out.
pub fn wait_running(names: &[String], timeout: std::time::Duration) -> Result<(), RtnlError> {
    wait_running_on(&ioctl_socket()?, names, timeout)
}

fn wait_running_on(socket: &std::os::fd::OwnedFd, names: &[String], timeout: std::time::Duration) -> Result<(), RtnlError> {
    let started = std::time::Instant::now();
    loop {
        let mut waiting = Vec::new();
        for n in names {
            if !running_of(ifreq_on(socket, n, libc::SIOCGIFFLAGS as libc::Ioctl)?)? {
                waiting.push(n.as_str());
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(RtnlError::NotRunning(format!(
                "link(s) {} not running after {} ms (no carrier: is the other end of the veth up?)",
                waiting.join(", "),
                timeout.as_millis()
            )));
        }
        // Sleeping lets the kernel's worker run.
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A route as `ip route add` makes it (rtnetlink's builder).
fn route_message(
    index: u32,
    address: IpAddr,
    prefix: u8,
    via: Option<IpAddr>,
) -> Result<netlink_packet_route::route::RouteMessage, RtnlError> {
    let mut builder = rtnetlink::RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(address, prefix)
        .map_err(|e| RtnlError::Route(e.to_string()))?
        .output_interface(index);
    if let Some(gateway) = via {
        builder = builder.gateway(gateway).map_err(|e| RtnlError::Route(e.to_string()))?;
    }
    Ok(builder.build())
}

/// A veth made on its bridge and up, its peer in another namespace.
fn veth_message(name: &str, peer: &str, peer_ns_fd: RawFd, bridge: u32) -> netlink_packet_route::link::LinkMessage {
    let peer_msg = LinkUnspec::new_with_name(peer).setns_by_fd(peer_ns_fd).build();
    LinkVeth::new(name, peer)
        .controller(bridge)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
        .build()
}

/// The MAC in a `SIOCGIFHWADDR` answer (not a link dump: see [`Route::index`]).
fn mac_of(req: libc::ifreq) -> Result<[u8; 6], RtnlError> {
    // SAFETY: SIOCGIFHWADDR fills the hwaddr member of the union.
    #[allow(unsafe_code)]
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (m, d) in mac.iter_mut().zip(data.iter()) {
        *m = *d as u8;
    }
    Ok(mac)
}

/// Packet counters of a link (`ip -s link show NAME`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkCounters {
    pub rx_packets: u64,
    pub tx_packets: u64,
}

/// A link's packet counters in the calling thread's namespace, from its
/// `/proc/net/dev` (not a link dump: see [`Route::index`]).
pub fn counters(name: &str) -> Result<LinkCounters, RtnlError> {
    let text = std::fs::read_to_string("/proc/thread-self/net/dev")?;
    for line in text.lines().skip(2) {
        let Some((dev, rest)) = line.split_once(':') else { continue };
        if dev.trim() != name {
            continue;
        }
        let n: Vec<u64> = rest.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit: bytes packets …
        return Ok(LinkCounters {
            rx_packets: n.get(1).copied().unwrap_or(0),
            tx_packets: n.get(9).copied().unwrap_or(0),
        });
    }
    Err(RtnlError::NoSuchLink(name.to_string()))
}

/// The link-layer address the neighbour table holds for `ip` (`ip neigh show IP`):
/// the ARP table for IPv4, the NDP table for IPv6.
pub async fn neighbour(handle: &Handle, ip: IpAddr) -> Result<Option<[u8; 6]>, RtnlError> {
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let mut entries = handle.neighbours().get().set_address_family(family).execute();
    while let Some(entry) = entries.try_next().await? {
        let mut dest = None;
        let mut lladdr = None;
        for a in &entry.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(d)) => dest = Some(IpAddr::V4(*d)),
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(d)) => dest = Some(IpAddr::V6(*d)),
                NeighbourAttribute::LinkLayerAddress(l) => lladdr = <[u8; 6]>::try_from(l.as_slice()).ok(),
                _ => {}
            }
        }
        if dest == Some(ip) {
            return Ok(lladdr);
        }
    }
    Ok(None)
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Every IPv4 and IPv6 address in the namespace, as (device, address, prefix)
/// (`ip addr show`), the link-local ones the kernel gives each IPv6 link included.
pub async fn addresses(handle: &Handle) -> Result<Vec<(String, IpAddr, u8)>, RtnlError> {
    // Link names by ioctl, not by a link dump: see [`Route::index`].
    let names: std::collections::HashMap<u32, String> = nix::net::if_::if_nameindex()
        .map(|list| list.iter().map(|i| (i.index(), i.name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut addrs = handle.address().get().execute();
    while let Some(msg) = addrs.try_next().await? {
        for a in &msg.attributes {
            if let AddressAttribute::Local(ip) | AddressAttribute::Address(ip) = a {
                let dev = names.get(&msg.header.index).cloned().unwrap_or_default();
                let entry = (dev, *ip, msg.header.prefix_len);
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        }
    }
    Ok(out)
}

/// One host's rtnetlink handle: a netlink socket and an ioctl socket, both
/// opened once in the host's namespace and bound to it for good, so any
/// thread can use them. Its changes are messages built by rtnetlink's own
/// builders, sent on lvsdr's transport ([`crate::netlink`]), many to a
/// datagram: a host's whole setup is one send.
pub struct Route {
    socket: crate::netlink::Socket,
    ioctl: std::os::fd::OwnedFd,
}

/// One change to a namespace's links, addresses or routes.
#[derive(Debug, Clone)]
pub enum Change {
    /// `ip link set DEV up`
    Up { device: String },
    /// `ip link set DEV down`
    Down { device: String },
    /// `ip addr add ADDRESS/PREFIX dev DEV` (`nodad` for IPv6; `preferred_lft 0` when deprecated)
    Address {
        device: String,
        address: IpAddr,
        prefix: u8,
        deprecated: bool,
    },
    /// `ip route add ADDRESS/PREFIX [via GATEWAY] dev DEV`
    Route {
        device: String,
        address: IpAddr,
        prefix: u8,
        via: Option<IpAddr>,
    },
    /// `ip link add NAME up type bridge`
    Bridge { name: String },
    /// `ip link add NAME master BRIDGE up type veth peer name PEER netns NS`:
    /// the kernel puts the new link on its bridge and up as it makes it; the
    /// peer appears, down, in the namespace behind `peer_ns_fd`.
    VethToBridge {
        name: String,
        peer: String,
        peer_ns_fd: RawFd,
        bridge: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Up { device } => write!(f, "ip link set {device} up"),
            Change::Down { device } => write!(f, "ip link set {device} down"),
            Change::Address {
                device,
                address,
                prefix,
                deprecated,
            } => {
                let how = if *deprecated { " preferred_lft 0" } else { "" };
                write!(f, "ip addr add {address}/{prefix} dev {device}{how}")
            }
            Change::Route {
                device,
                address,
                prefix,
                via,
            } => {
                let via = via.map(|v| format!(" via {v}")).unwrap_or_default();
                write!(f, "ip route add {address}/{prefix}{via} dev {device}")
            }
            Change::Bridge { name } => write!(f, "ip link add {name} up type bridge"),
            Change::VethToBridge { name, peer, bridge, .. } => {
                write!(f, "ip link add {name} master {bridge} up type veth peer name {peer}")
            }
        }
    }
}

/// A message from rtnetlink's builders as a request on lvsdr's transport.
fn request(message: netlink_packet_route::RouteNetlinkMessage, flags: u16) -> crate::netlink::Request {
    use rtnetlink::packet_core::NetlinkSerializable;
    let mut body = vec![0u8; message.buffer_len()];
    message.serialize(&mut body);
    crate::netlink::Request {
        kind: message.message_type(),
        flags,
        body,
    }
}

impl Route {
    /// Opens the sockets in the calling thread's namespace.
    pub fn open() -> Result<Route, RtnlError> {
        Ok(Route {
            socket: crate::netlink::Socket::open(crate::netlink::NETLINK_ROUTE, "rtnetlink")?,
            ioctl: ioctl_socket()?,
        })
    }

    /// A link's index in this namespace (`SIOCGIFINDEX`). Links are looked up
    /// by ioctl, not by an `RTM_GETLINK` dump: netlink-packet-route decodes
    /// `IFLA_MAP` as a 64-bit kernel's 32-byte `struct rtnl_link_ifmap`, an
    /// i386 kernel (the playground's) sends 28 bytes, and netlink-proto then
    /// drops the whole answer, so the request waits for ever.
    pub fn index(&self, name: &str) -> Result<u32, RtnlError> {
        let req = ifreq_on(&self.ioctl, name, libc::SIOCGIFINDEX as libc::Ioctl)?;
        // SAFETY: SIOCGIFINDEX fills the ifindex member of the union.
        #[allow(unsafe_code)]
        let index = unsafe { req.ifr_ifru.ifru_ifindex };
        u32::try_from(index).map_err(|_| RtnlError::NoSuchLink(name.to_string()))
    }

    /// A link's MAC address in this namespace.
    pub fn mac(&self, name: &str) -> Result<[u8; 6], RtnlError> {
        mac_of(ifreq_on(&self.ioctl, name, libc::SIOCGIFHWADDR as libc::Ioctl)?)
    }

    /// Waits until every one of `names` is running (see [`wait_running`]).
    pub fn wait_running(&self, names: &[String], timeout: std::time::Duration) -> Result<(), RtnlError> {
        wait_running_on(&self.ioctl, names, timeout)
    }

    fn request_of(&self, change: &Change) -> Result<crate::netlink::Request, RtnlError> {
        use crate::netlink::{NLM_F_CREATE, NLM_F_EXCL};
        use netlink_packet_route::RouteNetlinkMessage as M;
        let new = NLM_F_CREATE | NLM_F_EXCL;
        Ok(match change {
            Change::Up { device } => request(M::SetLink(LinkUnspec::new_with_index(self.index(device)?).up().build()), new),
            Change::Down { device } => request(M::SetLink(LinkUnspec::new_with_index(self.index(device)?).down().build()), new),
            Change::Address {
                device,
                address,
                prefix,
                deprecated,
            } => request(
                M::NewAddress(address_message(self.index(device)?, *address, *prefix, *deprecated)),
                new,
            ),
            Change::Route {
                device,
                address,
                prefix,
                via,
            } => request(M::NewRoute(route_message(self.index(device)?, *address, *prefix, *via)?), new),
            Change::Bridge { name } => request(M::NewLink(LinkBridge::new(name).up().build()), new),
            Change::VethToBridge {
                name,
                peer,
                peer_ns_fd,
                bridge,
            } => request(M::NewLink(veth_message(name, peer, *peer_ns_fd, self.index(bridge)?)), new),
        })
    }

    /// Makes the changes, in order, [`crate::netlink::IN_FLIGHT`] to a
    /// datagram. The first one the kernel refuses is the error, naming it.
    /// Links are looked up as each request is built: a change that needs a
    /// link another one makes (a veth on a bridge) goes in a later call.
    pub fn apply(&self, changes: &[Change]) -> Result<(), RtnlError> {
        let requests = changes.iter().map(|c| self.request_of(c)).collect::<Result<Vec<_>, _>>()?;
        match self.socket.acked(&requests)? {
            Ok(()) => Ok(()),
            Err((i, refusal)) => Err(RtnlError::Refused {
                change: changes[i].to_string(),
                said: refusal.text(),
            }),
        }
    }
}

/// An address as `ip addr add` makes it (rtnetlink's builder), and for IPv6
/// `nodad`: a lab's IPv6 address must work at once, and a VIP (on the
/// director's NIC, on a real server's `lo`) must not go through duplicate
/// address detection, which would find the other hosts holding it and leave
/// it tentative for good. With `deprecated`, the address is valid but never
/// preferred (`preferred_lft 0`): the kernel takes it for incoming traffic and
/// never as a source address.
fn address_message(index: u32, address: IpAddr, prefix: u8, deprecated: bool) -> netlink_packet_route::address::AddressMessage {
    let mut message = match address {
        IpAddr::V4(a) => rtnetlink::AddressMessageBuilder::<std::net::Ipv4Addr>::new()
            .index(index)
            .address(a, prefix)
            .build(),
        IpAddr::V6(a) => rtnetlink::AddressMessageBuilder::<std::net::Ipv6Addr>::new()
            .index(index)
            .address(a, prefix)
            .build(),
    };
    if address.is_ipv6() {
        // The header's byte is what every kernel reads; IFA_FLAGS, when present, overrides it.
        message.header.flags |= AddressHeaderFlags::Nodad;
        message.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        if deprecated {
            let mut lifetimes = netlink_packet_route::address::CacheInfo::default();
            lifetimes.ifa_preferred = 0;
            lifetimes.ifa_valid = u32::MAX;
            message.attributes.push(AddressAttribute::CacheInfo(lifetimes));
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::{unique_prefix, NetNs};

    fn address(a: &str) -> Change {
        Change::Address {
            device: "lo".into(),
            address: a.parse().unwrap(),
            prefix: 32,
            deprecated: false,
        }
    }

    /// On this kernel, in a namespace of its own: 70 changes (two datagrams)
    /// all land; a refused one in the middle of a datagram is the error, named
    /// by its command, and the socket's next request gets its own answer.
    #[test]
    #[ignore = "needs root"]
    fn batches_land_and_a_refusal_names_its_change() {
        let ns = NetNs::create(&format!("{}rtnl-check", unique_prefix())).expect("a namespace");
        ns.run(|| {
            let route = Route::open().expect("rtnetlink");
            let many: Vec<Change> = std::iter::once(Change::Up { device: "lo".into() })
                .chain((0..69).map(|i| address(&format!("10.9.0.{i}"))))
                .collect();
            route.apply(&many).expect("70 changes");
            let refused = route
                .apply(&[address("10.9.1.1"), address("10.9.0.5"), address("10.9.1.2")])
                .expect_err("10.9.0.5 is there already");
            let text = refused.to_string();
            assert!(text.starts_with("`ip addr add 10.9.0.5/32 dev lo` refused: File exists"), "{text}");
            route.apply(&[address("10.9.1.3")]).expect("the socket is in step again");
            let held = with_handle(async |h| addresses(&h).await).expect("an address dump");
            let ours = held
                .iter()
                .filter(|(d, a, _)| d == "lo" && a.to_string().starts_with("10.9."))
                .count();
            // 69, the two around the refusal (the kernel runs them too), and the last.
            assert_eq!(ours, 72, "{held:?}");
        })
        .expect("entering the namespace");
    }
}
