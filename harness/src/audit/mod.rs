//! `lvsdr audit`'s reading of the live state, in the network namespace the
//! calling thread is in. The comparison is `lvsdr_core::audit`.
//!
//! Read-only by construction: the only way to the kernel from here is
//! [`ReadOnly`], which holds the IPVS socket privately and offers dumps and
//! gets only — `IPVS_CMD_GET_SERVICE` and `IPVS_CMD_GET_DEST` with
//! `NLM_F_DUMP`, `RTM_GETADDR` — and reads of `/proc/sys/net`, `/proc/net`
//! and `/proc/PID`. No function of this module writes, and a test
//! (`the_reader_sends_no_request_that_changes_state`) checks that its source
//! names none of the harness's calls that do.
//!
//! | call | what it stands for |
//! |---|---|
//! | [`ReadOnly::ipvs`] | `ipvsadm -L -n` |
//! | [`ReadOnly::addresses`] | `ip addr show` |
//! | [`ReadOnly::sysctl`] | `sysctl KEY` |
//! | [`ReadOnly::listeners`] | `ss -ltnu` (from `/proc/net/{tcp,udp}{,6}`) |
//! | [`ReadOnly::keepalived`] | `pgrep -a keepalived`, in this namespace |

mod proc;

use crate::ipvs::{Dest, Ipvs, IpvsError, Netmask, Service, ServiceId};
use lvsdr_core::audit::{Live, LiveAddress, LiveDest, LiveKeepalived, LiveListener, LiveService, Wants};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read the IPVS table: {0}")]
    Ipvs(#[from] IpvsError),
    #[error("cannot read the addresses: {0}")]
    Addresses(String),
    #[error("cannot read {what}: {source}")]
    Proc {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// The live state, read: no method sends a request that changes anything.
pub struct ReadOnly {
    /// Private: only [`ReadOnly::ipvs`] uses it, for two dumps.
    ipvs: Option<Ipvs>,
}

impl ReadOnly {
    /// Opens what the audit reads in the calling thread's namespace: the
    /// IPVS generic netlink socket when `ipvs` (it does not load `ip_vs`:
    /// a kernel without IPVS is an error here).
    pub fn open(ipvs: bool) -> Result<ReadOnly, ReadError> {
        Ok(ReadOnly {
            ipvs: if ipvs { Some(Ipvs::connect()?) } else { None },
        })
    }

    /// `ipvsadm -L -n`: every service with its real servers (dumps only).
    pub fn ipvs(&self) -> Result<Vec<LiveService>, ReadError> {
        let Some(ipvs) = &self.ipvs else { return Ok(vec![]) };
        let mut out = Vec::new();
        for entry in ipvs.services()? {
            let dests = ipvs.dests(&entry.service.id)?;
            out.push(live_service(&entry.service, dests.iter().map(|d| &d.dest)));
        }
        Ok(out)
    }

    /// `ip addr show`: every address with its device, prefix and `nodad` (an `RTM_GETADDR` dump).
    pub fn addresses(&self) -> Result<Vec<LiveAddress>, ReadError> {
        use futures::TryStreamExt;
        use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
        // Link names by ioctl, as `rtnl::addresses` does (an RTM_GETLINK dump
        // does not decode on every kernel).
        let names: std::collections::HashMap<u32, String> = nix::net::if_::if_nameindex()
            .map(|list| list.iter().map(|i| (i.index(), i.name().to_string_lossy().into_owned())).collect())
            .unwrap_or_default();
        crate::rtnl::with_handle(async |handle| {
            let mut out: Vec<LiveAddress> = Vec::new();
            let mut dump = handle.address().get().execute();
            while let Some(msg) = dump.try_next().await? {
                let mut nodad = msg.header.flags.contains(AddressHeaderFlags::Nodad);
                let mut local = None;
                let mut peer = None;
                for a in &msg.attributes {
                    match a {
                        AddressAttribute::Local(ip) => local = Some(*ip),
                        AddressAttribute::Address(ip) => peer = Some(*ip),
                        AddressAttribute::Flags(f) => nodad |= f.contains(AddressFlags::Nodad),
                        _ => {}
                    }
                }
                if let Some(address) = local.or(peer) {
                    out.push(LiveAddress {
                        device: names.get(&msg.header.index).cloned().unwrap_or_default(),
                        address,
                        prefix: msg.header.prefix_len,
                        nodad,
                    });
                }
            }
            Ok(out)
        })
        .map_err(|e| ReadError::Addresses(e.to_string()))
    }

    /// `sysctl KEY`: `None` when the key does not exist here (no such interface).
    pub fn sysctl(&self, key: &str) -> Option<i64> {
        let key = lvsdr_core::names::SysctlKey::parse(key).ok()?;
        crate::netns::read_sysctl(&key).ok()
    }

    /// `ss -ltnu`: listening TCP sockets and bound UDP sockets.
    pub fn listeners(&self) -> Result<Vec<LiveListener>, ReadError> {
        proc::listeners()
    }

    /// keepalived processes in this network namespace, with their configuration files.
    pub fn keepalived(&self) -> Vec<LiveKeepalived> {
        proc::keepalived()
    }
}

/// A service and its real servers as the kernel reports them, as the audit
/// compares them. The lab's `state ipvs` check reads its table into the same form.
pub fn live_service<'a>(s: &Service, dests: impl Iterator<Item = &'a Dest>) -> LiveService {
    let (protocol, address, port, fwmark) = match s.id {
        ServiceId::Port { protocol, address, port } => (protocol.number(), address, port, 0),
        ServiceId::Fwmark { mark, family } => (
            0,
            match family {
                crate::ipvs::Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                crate::ipvs::Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            },
            0,
            mark,
        ),
    };
    LiveService {
        protocol,
        address,
        port,
        fwmark,
        scheduler: s.scheduler.clone(),
        flags: s.flags.settings().0,
        timeout: s.timeout,
        netmask: match s.netmask {
            Netmask::V4(m) => IpAddr::V4(m),
            Netmask::V6(p) => IpAddr::V6(Ipv6Addr::from(if p == 0 { 0 } else { u128::MAX << (128 - u32::from(p.min(128))) })),
        },
        dests: dests
            .map(|d| LiveDest {
                address: d.address,
                port: d.port,
                forward: d.forward.value(),
                weight: d.weight,
                upper_threshold: d.upper_threshold,
                lower_threshold: d.lower_threshold,
            })
            .collect(),
    }
}

/// Reads what `wants` asks for, in the calling thread's namespace.
pub fn read(wants: &Wants) -> Result<Live, ReadError> {
    let r = ReadOnly::open(wants.ipvs)?;
    Ok(Live {
        addresses: r.addresses()?,
        sysctls: wants.sysctls.iter().filter_map(|k| Some((k.clone(), r.sysctl(k)?))).collect(),
        ipvs: r.ipvs()?,
        listeners: if wants.listeners { r.listeners()? } else { vec![] },
        keepalived: if wants.keepalived { r.keepalived() } else { vec![] },
    })
}

/// Every address here, for finding which host of the setup this machine is.
pub fn present_addresses() -> Result<Vec<IpAddr>, ReadError> {
    Ok(ReadOnly::open(false)?.addresses()?.into_iter().map(|a| a.address).collect())
}

#[cfg(test)]
mod tests {
    /// The module's source names none of the harness's calls that change
    /// kernel state: the IPVS client's add/edit/delete/flush, rtnetlink's
    /// add/set/del, sysctl writes, namespaces.
    #[test]
    fn the_reader_sends_no_request_that_changes_state() {
        let sources = [include_str!("mod.rs"), include_str!("proc.rs")];
        let forbidden = [
            "add_service",
            "edit_service",
            "del_service",
            "delete_service",
            "add_dest",
            "edit_dest",
            "del_dest",
            "delete_dest",
            "flush",
            "set_daemon",
            "write_sysctl",
            "rtnl::add_",
            "rtnl::set_",
            ".add(",
            ".set(",
            ".del(",
            "NetNs",
            "OpenOptions",
            "fs::write",
            "kill(",
        ];
        for text in sources {
            // The test itself lists them: look at the code above it only.
            let code = text.split("#[cfg(test)]").next().unwrap_or(text);
            for f in forbidden {
                assert!(!code.contains(f), "the audit reader mentions `{f}`");
            }
        }
    }
}
