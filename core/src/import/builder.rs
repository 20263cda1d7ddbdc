//! Collects what an imported file says, in any order, then builds the
//! [`Topology`] and reports what had to be assumed.

use crate::diagnostic::{Diagnostic, Severity};
use crate::model::*;
use crate::names::{HostName, IfName, NameError, SysctlKey};
use crate::source::{At, Span};
use crate::topology_file::default_client_address;
use crate::LoadError;
use std::net::IpAddr;

/// What a script says of one real server in particular: a host of its own
/// (`ip netns exec rs1 …`), not the real servers' part every one of them runs.
#[derive(Debug, Default, Clone)]
pub struct ServerSetup {
    /// Its NIC on the LAN, when the script names it.
    pub interface: Option<At<IfName>>,
    pub lo: Vec<At<Subnet>>,
    pub sysctls: Sysctls,
}

#[derive(Debug, Default)]
pub struct Builder {
    pub director_address: Option<At<IpAddr>>,
    pub lan: Option<At<Subnet>>,
    pub director_interface: Option<At<IfName>>,
    /// The director's other interfaces, with their addresses.
    pub director_nics: Vec<Nic>,
    /// VIPs the input puts on the director's NIC, with their prefixes.
    pub vips: Vec<Vip>,
    pub director_sysctls: Sysctls,
    /// Settings from the real-server part of a script; every real server gets them.
    pub real_server_sysctls: Sysctls,
    /// Addresses the real-server part of a script puts on `lo`.
    pub real_server_lo: Vec<At<Subnet>>,
    /// Host names the user mapped to addresses (lvsdr never resolves them itself).
    pub names: super::resolve::NameMap,
    /// The client's address, when the input sets up a client host (`ip netns exec client …`).
    pub client_address: Option<At<IpAddr>>,
    /// Real servers the input sets up one by one, by address: they take these, not the shared settings.
    pub server_setups: std::collections::HashMap<IpAddr, ServerSetup>,
    pub services: Vec<VirtualService>,
    /// The director's firewall marking rules.
    pub marks: Vec<MarkRule>,
    /// The director's VRRP instance (keepalived), when it is one of a pair.
    pub vrrp: Option<Vrrp>,
    /// The director's own name, when the input gives one (keepalived's `router_id`).
    pub director_name: Option<HostName>,
    /// The director's IPVS connection sync daemon.
    pub sync: Option<SyncDaemon>,
    /// Real servers in order of first mention: (address, where).
    pub servers: Vec<At<IpAddr>>,
    /// Index of each address in `servers`, so that a dump with thousands of
    /// real servers is read in linear time.
    pub server_ids: std::collections::HashMap<IpAddr, usize>,
    pub diagnostics: Vec<Diagnostic>,
    /// Where the director's own configuration starts, for findings about it.
    pub director_span: Option<Span>,
    /// The first value refused at the trust boundary (a hostile sysctl key or
    /// interface name): the whole file is refused with it.
    pub refused: Option<LoadError>,
    /// A reader has said (DR107) why its file sets nothing up: an empty
    /// topology is then the answer, with that warning, rather than DR000.
    pub allow_empty: bool,
    /// Where each service of `services` is, by identity: a dump of 100,000
    /// services is read in linear time. Kept up to date lazily, since the
    /// readers only ever push to `services` or clear it.
    service_index: ServiceIndex,
    /// The addresses of `vips` so far, likewise.
    vip_index: (usize, std::collections::HashSet<IpAddr>),
}

type ServiceId = (ServiceKey, Option<IpAddr>, Family);

#[derive(Debug, Default)]
struct ServiceIndex {
    /// How many of `services` are indexed.
    len: usize,
    at: std::collections::HashMap<ServiceId, usize>,
}

impl Builder {
    /// A builder that reads the host names the user mapped as their addresses.
    pub fn with_names(names: super::resolve::NameMap) -> Builder {
        Builder {
            names,
            ..Default::default()
        }
    }

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
    pub fn server_name(&mut self, address: At<IpAddr>) -> HostName {
        let next = self.servers.len();
        let index = *self.server_ids.entry(address.value).or_insert(next);
        if index == next {
            self.servers.push(address);
        }
        HostName::known(format!("rs{}", index + 1))
    }

    /// The service with this key on this VIP (`None` for fwmark) and family.
    pub fn service_mut(&mut self, key: ServiceKey, vip: Option<IpAddr>, family: Family) -> Option<&mut VirtualService> {
        let index = &mut self.service_index;
        if index.len > self.services.len() {
            *index = ServiceIndex::default();
        }
        for (i, s) in self.services.iter().enumerate().skip(index.len) {
            // The last one of an identity wins, as a search from the end would find it.
            index.at.insert((s.key.value, s.vip.as_ref().map(|v| v.value), s.family), i);
        }
        index.len = self.services.len();
        let same = |s: &VirtualService| s.key.value == key && s.vip.as_ref().map(|v| v.value) == vip && s.family == family;
        let i = *index.at.get(&(key, vip, family))?;
        if same(&self.services[i]) {
            return Some(&mut self.services[i]);
        }
        // The table was cleared and refilled past where it was indexed: search.
        self.service_index = ServiceIndex::default();
        self.services.iter_mut().rev().find(|s| same(s))
    }

    /// `ipvsadm -C`: every service goes.
    pub fn clear_services(&mut self) {
        self.services.clear();
        self.service_index = ServiceIndex::default();
    }

    /// Adds a VIP the input puts on the director, once.
    pub fn add_vip(&mut self, address: At<IpAddr>, prefix: At<u8>) {
        let (indexed, seen) = &mut self.vip_index;
        if *indexed > self.vips.len() {
            seen.clear();
            *indexed = 0;
        }
        seen.extend(self.vips[*indexed..].iter().map(|v| v.address.value));
        *indexed = self.vips.len();
        if !seen.contains(&address.value) {
            self.vips.push(Vip {
                address,
                prefix,
                dad: None,
                preferred: None,
            });
        }
    }

    pub fn finish(mut self) -> Result<(Topology, Vec<Diagnostic>), LoadError> {
        if let Some(e) = self.refused.take() {
            return Err(e);
        }
        // An input that says nothing of the real servers (a dump, a keepalived.conf,
        // a director-only script): what they hold is assumed (and said, DR103),
        // never reported as their mistake.
        let assume_real_servers_configured =
            self.real_server_lo.is_empty() && self.real_server_sysctls.values.is_empty() && self.server_setups.is_empty();
        // Every VIP a service uses is on the director, whether or not the input put it there.
        let service_vips: Vec<At<IpAddr>> = self.services.iter().filter_map(|s| s.vip.clone()).collect();
        for v in service_vips {
            let host = Family::of(&v.value).host_prefix();
            self.add_vip(v, At::implied(host));
        }
        let mark_vips: Vec<At<IpAddr>> = self
            .marks
            .iter()
            .filter(|m| m.destination.prefix == m.destination.family().host_prefix())
            .map(|m| At::new(m.destination.address, m.destination.span))
            .collect();
        for v in mark_vips {
            let host = Family::of(&v.value).host_prefix();
            self.add_vip(v, At::implied(host));
        }
        if self.vips.is_empty() {
            if let Some(a) = self.real_server_lo.iter().find(|a| !a.address.is_loopback()) {
                // A real-server-only script: its VIP is the one on lo.
                self.vips.push(Vip {
                    address: At::new(a.address, a.span),
                    prefix: At::implied(Family::of(&a.address).host_prefix()),
                    dad: None,
                    preferred: None,
                });
            }
        }
        // fwmark services whose marking rules are elsewhere have no known VIP:
        // that is a finding (DR027), not a reason to refuse the file.
        if self.vips.is_empty() && self.services.is_empty() && !self.allow_empty {
            // A cause the reader found (an unset variable where the VIP belongs) is named, not "nothing found".
            if let Some(d) = self.diagnostics.iter().find(|d| d.code == crate::codes::code::UNDEFINED_VARIABLE) {
                return Err(LoadError {
                    code: d.code,
                    message: format!("no virtual service and no VIP found: {}", d.message),
                    span: d.span,
                    help: d.help.clone(),
                });
            }
            return Err(LoadError {
                code: crate::codes::code::UNREADABLE_TOPOLOGY,
                message: "no virtual service and no VIP found in this file".into(),
                span: Span::NONE,
                help: Some("an importable script runs `ipvsadm -A -t VIP:PORT …`; to start from scratch, write a topology in TOML (see fixtures/seed-dr.toml)".into()),
            });
        }
        let some_address = self
            .director_address
            .iter()
            .chain(self.servers.iter())
            .map(|a| a.value)
            .chain(self.vips.iter().map(|v| v.address.value))
            .next()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 0)));
        let main_family = self
            .director_address
            .as_ref()
            .map(|a| Family::of(&a.value))
            .unwrap_or_else(|| Family::of(&some_address));
        let lans: Vec<At<Subnet>> = self.lan.iter().cloned().collect();
        let assumed_lan = |family: Family, b: &Builder| -> Subnet {
            let around = b
                .director_address
                .iter()
                .chain(b.servers.iter())
                .map(|a| a.value)
                .find(|a| Family::of(a) == family)
                .or_else(|| b.vips.iter().map(|v| v.address.value).find(|a| Family::of(a) == family))
                .unwrap_or(some_address);
            Subnet::assumed_around(around)
        };
        let families: Vec<Family> = {
            let mut f: Vec<Family> = self
                .vips
                .iter()
                .map(|v| v.family())
                .chain(self.services.iter().map(|s| s.family))
                .collect();
            f.sort();
            f.dedup();
            if f.is_empty() {
                f.push(main_family);
            }
            f
        };
        if lans.is_empty() {
            let guessed: Vec<String> = families.iter().map(|f| assumed_lan(*f, &self).to_string()).collect();
            self.note(
                crate::codes::code::IMPORT_ASSUMED_VALUE,
                format!(
                    "the LAN is not in this file; where a rule needs it, lvsdr assumes {}",
                    guessed.join(" and ")
                ),
                Span::NONE,
                "add the director's own address (ip addr add ADDR/24 dev eth0) to the script, or state `[lan] subnet` in the topology",
            );
        }
        let real_server_only = self.services.is_empty() && !assume_real_servers_configured && self.servers.is_empty();
        let vip_addrs: Vec<IpAddr> = self.vips.iter().map(|v| v.address.value).collect();
        // A set: a dump can hold thousands of real servers, and up to 254 guesses are checked against them.
        let used: std::collections::HashSet<IpAddr> = self.servers.iter().map(|s| s.value).chain(vip_addrs.iter().copied()).collect();
        let director_address = match &self.director_address {
            Some(a) => a.clone(),
            None => {
                let lan = lans
                    .iter()
                    .map(|l| l.value)
                    .find(|l| l.family() == main_family)
                    .unwrap_or_else(|| assumed_lan(main_family, &self));
                let guess = (1..=254u128)
                    .map(|h| lan.host(h))
                    .find(|a| !used.contains(a) && lan.contains(*a))
                    .unwrap_or(some_address);
                if !real_server_only {
                    self.note(
                        crate::codes::code::IMPORT_ASSUMED_VALUE,
                        format!("the director's own address is not in this file; assumed {guess}"),
                        Span::NONE,
                        "add `ip addr add ADDR/PREFIX dev eth0` for the director, or edit the imported topology",
                    );
                }
                At::implied(guess)
            }
        };
        let client_address: Vec<At<IpAddr>> = families
            .iter()
            .map(|f| {
                let lan = lans
                    .iter()
                    .map(|l| l.value)
                    .find(|l| l.family() == *f)
                    .unwrap_or_else(|| assumed_lan(*f, &self));
                // `.100`, unless a VIP, the director or a real server has it: then the next free one.
                let taken = |a: &IpAddr| used.contains(a) || *a == director_address.value;
                if let Some(a) = self
                    .client_address
                    .as_ref()
                    .filter(|a| Family::of(&a.value) == *f && !taken(&a.value))
                {
                    return a.clone();
                }
                let first = default_client_address(&lan);
                let free = std::iter::once(first)
                    .chain((101..=254u128).chain(2..=99).map(|h| lan.host(h)))
                    .find(|a| !taken(a) && lan.contains(*a))
                    .unwrap_or(first);
                At::implied(free)
            })
            .collect();
        // A real-server-only input (no service, but a VIP on lo or ARP settings): one
        // real server stands for every host that runs it, and the director is a
        // placeholder that the director's rules leave alone.
        if real_server_only {
            let family = self.real_server_lo.first().map(|a| a.family()).unwrap_or(main_family);
            let lan = lans
                .iter()
                .map(|l| l.value)
                .find(|l| l.family() == family)
                .unwrap_or_else(|| assumed_lan(family, &self));
            let used: Vec<IpAddr> = vip_addrs.iter().copied().chain([director_address.value]).collect();
            let guess = (2..=254u128)
                .map(|h| lan.host(h + 10))
                .find(|a| !used.contains(a))
                .unwrap_or(director_address.value);
            self.note(
                crate::codes::code::IMPORT_ASSUMED_VALUE,
                format!("this file sets up a real server only; lvsdr checks it as one, at an assumed address {guess}, and leaves the director alone"),
                Span::NONE,
                "lint it together with the director's file to check the whole setup: lvsdr lint director.sh real-server.sh",
            );
            self.servers.push(At::implied(guess));
        }
        let mut real_servers = Vec::new();
        for (i, address) in self.servers.iter().enumerate() {
            let name = format!("rs{}", i + 1);
            let own = self.server_setups.get(&address.value);
            let (lo, sysctls) = if let Some(own) = own {
                (own.lo.clone(), own.sysctls.clone())
            } else if assume_real_servers_configured {
                let mut s = Sysctls::default();
                if address.is_ipv4() {
                    s.set(SysctlKey::known("net.ipv4.conf.all.arp_ignore"), 1, Span::NONE);
                    s.set(SysctlKey::known("net.ipv4.conf.all.arp_announce"), 2, Span::NONE);
                }
                (vec![], s)
            } else {
                (self.real_server_lo.clone(), self.real_server_sysctls.clone())
            };
            real_servers.push(RealServer {
                name: At::new(HostName::known(name), address.span),
                address: Addresses::one(address.clone()),
                interface: own
                    .and_then(|o| o.interface.clone())
                    .unwrap_or_else(|| At::implied(IfName::known("eth0"))),
                lo,
                sysctls,
                listen: None,
                extra_nics: vec![],
                routes: vec![],
                span: address.span,
            });
        }
        if assume_real_servers_configured && !real_servers.is_empty() {
            self.note(
                crate::codes::code::IMPORT_ASSUMED_VALUE,
                "this file says nothing of the real servers; assumed each holds its VIPs on lo (/32, /128), with arp_ignore=1 and arp_announce=2",
                Span::NONE,
                "lint the real servers' own scripts too",
            );
        }
        let mut topology = Topology {
            name: "imported".into(),
            lans,
            client: Client {
                name: HostName::known("client"),
                address: Addresses(client_address),
            },
            directors: vec![Director {
                name: self.director_name.clone().unwrap_or_else(|| HostName::known("director")),
                address: Addresses::one(director_address),
                interface: self
                    .director_interface
                    .clone()
                    .unwrap_or_else(|| At::implied(IfName::known("eth0"))),
                extra_nics: self.director_nics.clone(),
                vips: self.vips.clone(),
                sysctls: self.director_sysctls.clone(),
                span: self.director_span.unwrap_or(Span::NONE),
                placeholder: real_server_only,
                vrrp: self.vrrp.clone(),
                sync: self.sync.clone(),
                own_services: vec![],
            }],
            services: self.services,
            real_servers,
            marks: self.marks,
            router: None,
        };
        if assume_real_servers_configured {
            // One pass over the services: which VIPs each real server serves.
            let index: std::collections::HashMap<String, usize> = topology
                .real_servers
                .iter()
                .enumerate()
                .map(|(i, r)| (r.name.value.to_string(), i))
                .collect();
            let mut served: Vec<Vec<IpAddr>> = vec![Vec::new(); topology.real_servers.len()];
            for s in &topology.services {
                let vips = topology.service_vips(s);
                for d in &s.destinations {
                    let Some(&i) = index.get(d.server.value.as_str()) else { continue };
                    for v in &vips {
                        if !served[i].contains(v) {
                            served[i].push(*v);
                        }
                    }
                }
            }
            for (rs, vips) in topology.real_servers.iter_mut().zip(served) {
                rs.lo = vips
                    .into_iter()
                    .map(|v| {
                        At::implied(Subnet {
                            address: v,
                            prefix: Family::of(&v).host_prefix(),
                        })
                    })
                    .collect();
            }
        }
        Ok((topology, self.diagnostics))
    }
}
