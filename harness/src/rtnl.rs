//! Links, addresses and neighbours through rtnetlink. Each function works in
//! the namespace of the thread that calls it: call them from [`NetNs::run`].
//!
//! [`NetNs::run`]: crate::netns::NetNs::run

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
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
}

/// Runs async rtnetlink work on a runtime private to the calling thread,
/// with a netlink socket opened in that thread's namespace.
pub fn with_handle<T>(f: impl AsyncFnOnce(Handle) -> Result<T, RtnlError>) -> Result<T, RtnlError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        let task = tokio::spawn(connection);
        let result = f(handle).await;
        task.abort();
        result
    })
}

pub async fn link_index(handle: &Handle, name: &str) -> Result<u32, RtnlError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        // ENODEV is "no such link"; any other errno (EPERM, …) is kept as the kernel said it.
        Ok(None) => Err(RtnlError::NoSuchLink(name.to_string())),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == libc::ENODEV => Err(RtnlError::NoSuchLink(name.to_string())),
        Err(e) => Err(e.into()),
    }
}

async fn link_message(handle: &Handle, name: &str) -> Result<LinkMessage, RtnlError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link),
        Ok(None) | Err(rtnetlink::Error::NetlinkError(_)) => Err(RtnlError::NoSuchLink(name.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// `ip link set NAME up`
pub async fn set_up(handle: &Handle, name: &str) -> Result<(), RtnlError> {
    let index = link_index(handle, name).await?;
    handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await?;
    Ok(())
}

/// `ip link set NAME down`
pub async fn set_down(handle: &Handle, name: &str) -> Result<(), RtnlError> {
    let index = link_index(handle, name).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).down().build())
        .execute()
        .await?;
    Ok(())
}

/// `ip link add NAME type bridge && ip link set NAME up`
pub async fn add_bridge(handle: &Handle, name: &str) -> Result<u32, RtnlError> {
    handle.link().add(LinkBridge::new(name).up().build()).execute().await?;
    link_index(handle, name).await
}

/// `ip link add NAME type veth peer name PEER netns NS`, then
/// `ip link set NAME master BRIDGE up`. The peer appears in the namespace
/// behind `peer_ns_fd`.
pub async fn add_veth_to_bridge(handle: &Handle, name: &str, peer: &str, peer_ns_fd: RawFd, bridge: u32) -> Result<(), RtnlError> {
    let peer_msg = LinkUnspec::new_with_name(peer).setns_by_fd(peer_ns_fd).build();
    let msg = LinkVeth::new(name, peer)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
        .build();
    handle.link().add(msg).execute().await?;
    let index = link_index(handle, name).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).controller(bridge).up().build())
        .execute()
        .await?;
    Ok(())
}

/// `ip addr add ADDRESS/PREFIX dev DEVICE`, and for IPv6
/// `ip addr add ADDRESS/PREFIX dev DEVICE nodad`: a lab's IPv6 address must
/// work at once, and a VIP (on the director's NIC, on a real server's `lo`)
/// must not go through duplicate address detection, which would find the
/// other hosts holding it and leave it tentative for good.
/// With `deprecated`, the address is valid but never preferred (`preferred_lft 0`):
/// the kernel takes it for incoming traffic and never as a source address.
pub async fn add_address(handle: &Handle, device: &str, address: IpAddr, prefix: u8, deprecated: bool) -> Result<(), RtnlError> {
    let index = link_index(handle, device).await?;
    let mut request = handle.address().add(index, address, prefix);
    if address.is_ipv6() {
        // The header's byte is what every kernel reads; IFA_FLAGS, when present, overrides it.
        let message = request.message_mut();
        message.header.flags |= AddressHeaderFlags::Nodad;
        message.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        if deprecated {
            let mut lifetimes = netlink_packet_route::address::CacheInfo::default();
            lifetimes.ifa_preferred = 0;
            lifetimes.ifa_valid = u32::MAX;
            message.attributes.push(AddressAttribute::CacheInfo(lifetimes));
        }
    }
    request.execute().await?;
    Ok(())
}

/// `ip route add ADDRESS/PREFIX [via GATEWAY] dev DEVICE` (`ip -6 route add …` for an IPv6 prefix).
pub async fn add_route(handle: &Handle, address: IpAddr, prefix: u8, via: Option<IpAddr>, device: &str) -> Result<(), RtnlError> {
    let index = link_index(handle, device).await?;
    let mut builder = rtnetlink::RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(address, prefix)
        .map_err(|e| RtnlError::Route(e.to_string()))?
        .output_interface(index);
    if let Some(gateway) = via {
        builder = builder.gateway(gateway).map_err(|e| RtnlError::Route(e.to_string()))?;
    }
    let route = builder.build();
    handle.route().add(route).execute().await?;
    Ok(())
}

/// The MAC address of a link (`ip link show NAME`).
pub async fn mac(handle: &Handle, name: &str) -> Result<[u8; 6], RtnlError> {
    let link = link_message(handle, name).await?;
    for a in link.attributes {
        if let LinkAttribute::Address(bytes) = a {
            if let Ok(mac) = <[u8; 6]>::try_from(bytes.as_slice()) {
                return Ok(mac);
            }
        }
    }
    Err(RtnlError::NoSuchLink(format!("{name} (no MAC address)")))
}

/// Packet counters of a link (`ip -s link show NAME`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkCounters {
    pub rx_packets: u64,
    pub tx_packets: u64,
}

pub async fn counters(handle: &Handle, name: &str) -> Result<LinkCounters, RtnlError> {
    let link = link_message(handle, name).await?;
    for a in link.attributes {
        if let LinkAttribute::Stats64(s) = a {
            return Ok(LinkCounters {
                rx_packets: s.rx_packets,
                tx_packets: s.tx_packets,
            });
        }
    }
    Ok(LinkCounters::default())
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
    let mut names = std::collections::HashMap::new();
    let mut links = handle.link().get().execute();
    while let Some(link) = links.try_next().await? {
        for a in &link.attributes {
            if let LinkAttribute::IfName(n) = a {
                names.insert(link.header.index, n.clone());
            }
        }
    }
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
