//! Collects what an imported file says, in any order, then builds the
//! [`Topology`] and reports what had to be assumed.

use crate::diagnostic::{Diagnostic, Severity};
use crate::model::*;
use crate::names::{HostName, IfName, NameError, SysctlKey};
use crate::source::{At, Span};
use crate::topology_file::default_client_address;
use crate::LoadError;
use std::net::Ipv4Addr;

/// A virtual service as far as it has been read.
#[derive(Debug, Clone)]
pub struct ServiceDraft {
    pub address: At<Ipv4Addr>,
    pub service: VirtualService,
}

#[derive(Debug, Default)]
pub struct Builder {
    pub director_address: Option<At<Ipv4Addr>>,
    pub lan: Option<At<Subnet>>,
    pub director_interface: Option<At<IfName>>,
    pub vip: Option<At<Ipv4Addr>>,
    pub vip_prefix: Option<At<u8>>,
    pub director_sysctls: Sysctls,
    /// Settings from the real-server part of a script; every real server gets them.
    pub real_server_sysctls: Sysctls,
    pub real_server_vip_on_lo: Option<At<u8>>,
    pub services: Vec<ServiceDraft>,
    /// Real servers in order of first mention: (address, where).
    pub servers: Vec<At<Ipv4Addr>>,
    pub diagnostics: Vec<Diagnostic>,
    /// For sources that say nothing of the real servers (an `ipvsadm -S` dump).
    pub assume_real_servers_configured: bool,
    /// Where the director's own configuration starts, for findings about it.
    pub director_span: Option<Span>,
    /// The first value refused at the trust boundary (a hostile sysctl key or
    /// interface name): the whole file is refused with it.
    pub refused: Option<LoadError>,
}

impl Builder {
    /// A finding of the reader, with the severity the catalogue gives its code.
    pub fn note(&mut self, code: &'static str, message: impl Into<String>, span: Span, help: &str) {
        let severity = crate::codes::reader(code).map(|m| m.severity);
        debug_assert!(severity.is_some(), "{code} is not in the catalogue");
        let d = Diagnostic::new(code, severity.unwrap_or(Severity::Info), message, span);
        self.diagnostics.push(if help.is_empty() { d } else { d.help(help) });
    }

    /// Refuses the file for a value that must never reach the kernel; the first one is reported.
    pub fn refuse(&mut self, e: NameError, span: Span) {
        self.refused.get_or_insert(LoadError::refused(e, span));
    }

    /// The interface named by `text`, or a refusal.
    pub fn interface(&mut self, text: &str, span: Span) -> Option<At<IfName>> {
        match IfName::parse(text) {
            Ok(i) => Some(At::new(i, span)),
            Err(e) => {
                self.refuse(e, span);
                None
            }
        }
    }

    /// The name of the real server at `address`, adding it if new.
    pub fn server_name(&mut self, address: At<Ipv4Addr>) -> HostName {
        let index = match self.servers.iter().position(|s| s.value == address.value) {
            Some(i) => i,
            None => {
                self.servers.push(address);
                self.servers.len() - 1
            }
        };
        HostName::known(format!("rs{}", index + 1))
    }

    pub fn service_mut(&mut self, key: ServiceKey) -> Option<&mut ServiceDraft> {
        self.services.iter_mut().find(|s| s.service.key.value == key)
    }

    pub fn finish(mut self) -> Result<(Topology, Vec<Diagnostic>), LoadError> {
        if let Some(e) = self.refused.take() {
            return Err(e);
        }
        let vip = match (&self.vip, self.services.first()) {
            (Some(v), _) => v.clone(),
            (None, Some(s)) => s.address.clone(),
            (None, None) => {
                return Err(LoadError {
                    code: "DR000",
                    message: "no virtual service and no VIP found in this file".into(),
                    span: Span::NONE,
                    help: Some("an importable script runs `ipvsadm -A -t VIP:PORT …`; to start from scratch, write a topology in TOML (see fixtures/seed-dr.toml)".into()),
                })
            }
        };
        let other_vips: Vec<_> = self
            .services
            .iter()
            .filter(|s| s.address.value != vip.value)
            .map(|s| s.address.clone())
            .collect();
        for a in other_vips {
            self.note(
                "DR102",
                format!(
                    "service address {} is not the VIP {}; lvsdr models one VIP and reads it as {}",
                    a.value, vip.value, vip.value
                ),
                a.span,
                "split setups with several VIPs into one topology per VIP",
            );
        }
        let lan = match &self.lan {
            Some(l) => l.clone(),
            None => {
                let base = Subnet {
                    address: Ipv4Addr::from(u32::from(vip.value) & 0xffff_ff00),
                    prefix: 24,
                };
                self.note(
                    "DR103",
                    format!("the LAN is not in this file; assumed {base} around the VIP"),
                    Span::NONE,
                    "add the director's own address (ip addr add ADDR/24 dev eth0) to the script, or edit the imported topology",
                );
                At::implied(base)
            }
        };
        let used: Vec<Ipv4Addr> = self.servers.iter().map(|s| s.value).chain([vip.value]).collect();
        let director_address = match &self.director_address {
            Some(a) => a.clone(),
            None => {
                let base = u32::from(lan.address) & lan.mask();
                let guess = (1..=254)
                    .map(|h| Ipv4Addr::from(base | h))
                    .find(|a| !used.contains(a) && lan.contains(*a))
                    .unwrap_or(vip.value);
                self.note(
                    "DR103",
                    format!("the director's own address is not in this file; assumed {guess}"),
                    Span::NONE,
                    "add `ip addr add ADDR/PREFIX dev eth0` for the director, or edit the imported topology",
                );
                At::implied(guess)
            }
        };
        let mut real_servers = Vec::new();
        for (i, address) in self.servers.iter().enumerate() {
            let (vip_on_lo, sysctls) = if self.assume_real_servers_configured {
                let mut s = Sysctls::default();
                s.set(SysctlKey::known("net.ipv4.conf.all.arp_ignore"), 1, Span::NONE);
                s.set(SysctlKey::known("net.ipv4.conf.all.arp_announce"), 2, Span::NONE);
                (Some(At::implied(32)), s)
            } else {
                (self.real_server_vip_on_lo.clone(), self.real_server_sysctls.clone())
            };
            real_servers.push(RealServer {
                name: At::new(HostName::known(format!("rs{}", i + 1)), address.span),
                address: address.clone(),
                interface: At::implied(IfName::known("eth0")),
                vip_on_lo,
                sysctls,
                listen: None,
                extra_nics: vec![],
                routes: vec![],
                span: address.span,
            });
        }
        if self.assume_real_servers_configured && !real_servers.is_empty() {
            self.note(
                "DR103",
                "this file says nothing of the real servers; assumed VIP on lo as /32, arp_ignore=1 and arp_announce=2",
                Span::NONE,
                "lint the real servers' own scripts too",
            );
        }
        let topology = Topology {
            name: "imported".into(),
            lan,
            client: Client {
                name: HostName::known("client"),
                address: At::implied(default_client_address(&self.lan.as_ref().map(|l| l.value).unwrap_or(Subnet {
                    address: Ipv4Addr::from(u32::from(vip.value) & 0xffff_ff00),
                    prefix: 24,
                }))),
            },
            director: Director {
                name: HostName::known("director"),
                address: director_address,
                interface: self
                    .director_interface
                    .clone()
                    .unwrap_or_else(|| At::implied(IfName::known("eth0"))),
                vip,
                vip_prefix: self.vip_prefix.clone().unwrap_or_else(|| At::implied(32)),
                sysctls: self.director_sysctls.clone(),
                span: self.director_span.unwrap_or(Span::NONE),
            },
            services: self.services.into_iter().map(|s| s.service).collect(),
            real_servers,
        };
        Ok((topology, self.diagnostics))
    }
}
