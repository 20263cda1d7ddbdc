//! The addresses a script puts on one host's interfaces, in the order it
//! adds and deletes them, and what they are once the script has run: the
//! VIPs, the addresses on `lo`, the NIC that reaches the real servers (the
//! LAN) and the host's other interfaces.
//!
//! A host with several interfaces is read as one: the LAN is the NIC whose
//! subnet holds the real servers, not the last one written, and an address
//! deleted later (`ip addr del`, `ifconfig eth0:0 down`) is not there.

use super::builder::Builder;
use crate::model::{Family, Nic, Subnet};
use crate::source::{At, Span};
use std::net::IpAddr;

/// One address on one interface (`eth0`, `eth0:1`, `lo:0`).
#[derive(Debug, Clone)]
pub struct Placed {
    /// The interface as written, alias included.
    pub label: String,
    pub address: At<IpAddr>,
    pub prefix: At<u8>,
    /// A point-to-point address (`peer ADDR`): one end of a link, never a VIP.
    pub peer: bool,
    /// The line that added it.
    pub span: Span,
}

impl Placed {
    /// The interface without its alias: `eth0` for `eth0:1`.
    pub fn device(&self) -> &str {
        self.label.split(':').next().unwrap_or(&self.label)
    }
    fn on_lo(&self) -> bool {
        self.device() == "lo"
    }
    /// An address that can be a VIP: a host prefix, or an alias (`eth0:0`), and not a link's end.
    fn vip_shaped(&self) -> bool {
        !self.peer && (self.label.contains(':') || self.prefix.value == Family::of(&self.address.value).host_prefix())
    }
}

/// The addresses of one host, as the script leaves them.
#[derive(Debug, Default, Clone)]
pub struct HostAddresses {
    pub placed: Vec<Placed>,
}

impl HostAddresses {
    /// `ip addr add`, `ifconfig IF ADDR`: an address added again replaces the old one.
    pub fn add(&mut self, p: Placed) {
        self.placed.retain(|x| x.address.value != p.address.value);
        self.placed.push(p);
    }

    /// `ip addr del ADDR dev IF`: whether it was there.
    pub fn delete(&mut self, address: IpAddr, device: Option<&str>) -> bool {
        let before = self.placed.len();
        self.placed
            .retain(|x| !(x.address.value == address && device.is_none_or(|d| x.device() == d || x.label == d)));
        self.placed.len() != before
    }

    /// `ifconfig eth0:0 down` takes the alias's address away; `ip addr flush dev eth0` every one of the device.
    pub fn clear(&mut self, label: &str) -> bool {
        let before = self.placed.len();
        if label.contains(':') {
            self.placed.retain(|x| x.label != label);
        } else {
            self.placed.retain(|x| x.device() != label);
        }
        self.placed.len() != before
    }

    /// The addresses on the host's NICs that are not VIPs: its own addresses.
    pub fn own(&self) -> impl Iterator<Item = &Placed> {
        self.placed.iter().filter(|p| !p.on_lo() && !p.vip_shaped() && !p.peer)
    }

    /// The address of this host that is `address`, if it has it on a NIC.
    pub fn holds(&self, address: IpAddr) -> Option<&Placed> {
        self.placed.iter().find(|p| !p.on_lo() && p.address.value == address)
    }

    /// The addresses on `lo` (the loopback address itself aside).
    pub fn on_lo(&self) -> Vec<At<Subnet>> {
        self.placed
            .iter()
            .filter(|p| p.on_lo() && !p.address.value.is_loopback())
            .map(|p| {
                At::new(
                    Subnet {
                        address: p.address.value,
                        prefix: p.prefix.value,
                    },
                    p.prefix.span.or(p.address.span),
                )
            })
            .collect()
    }

    /// Puts what a director's script leaves into `b`: its VIPs, the NIC that
    /// reaches the real servers as its LAN address, its other NICs, and the
    /// addresses on `lo` (the real servers' part of a single-host script).
    pub fn settle_director(&self, b: &mut Builder) {
        b.real_server_lo.extend(self.on_lo());
        let mut vip_device: Option<&Placed> = None;
        for p in self.placed.iter().filter(|p| !p.on_lo() && p.vip_shaped()) {
            b.director_span.get_or_insert(p.span);
            b.add_vip(p.address.clone(), p.prefix.clone());
            vip_device.get_or_insert(p);
        }
        let own: Vec<&Placed> = self.own().collect();
        // The main family is the first address's; the LAN is the NIC of that family whose
        // subnet holds the most real servers (on a tie, the one written last).
        let family = own.first().map(|p| Family::of(&p.address.value));
        let reach = |p: &Placed| {
            let lan = Subnet {
                address: p.address.value,
                prefix: p.prefix.value,
            };
            b.servers.iter().filter(|s| lan.contains(s.value)).count()
        };
        let lan = own
            .iter()
            .filter(|p| Some(Family::of(&p.address.value)) == family)
            .enumerate()
            .max_by_key(|(i, p)| (reach(p), *i))
            .map(|(_, p)| *p);
        match lan {
            Some(p) => {
                let subnet = Subnet {
                    address: p.address.value,
                    prefix: p.prefix.value,
                };
                b.director_span = Some(p.span);
                b.director_address = Some(p.address.clone());
                b.lan = Some(At::new(
                    Subnet {
                        address: subnet.network(),
                        prefix: subnet.prefix,
                    },
                    p.address.span,
                ));
                b.director_interface = b.interface(p.device(), p.span);
            }
            None => {
                if let Some(v) = vip_device {
                    b.director_interface = b.interface(v.device(), v.span);
                }
            }
        }
        // Every other interface is kept, with its first address.
        let main = lan.map(|p| p.device().to_string());
        for p in self.placed.iter().filter(|p| !p.on_lo() && !p.vip_shaped() || p.peer) {
            if Some(p.device()) == main.as_deref() || b.director_nics.iter().any(|n| n.interface.value.as_str() == p.device()) {
                continue;
            }
            if let Some(interface) = b.interface(p.device(), p.span) {
                b.director_nics.push(Nic {
                    interface,
                    address: p.address.clone(),
                });
            }
        }
    }
}
