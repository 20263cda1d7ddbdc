//! Building a lab, phase by phase, in the order the kernel's `ipvs.sh` runs
//! its `setup()`: the namespaces, the bridge and its links, each host's
//! sysctls, links and addresses, the director's IPVS table (or the generated
//! artifacts, or keepalived), the probe servers, and the wait until it settles.

use super::{dest_spec, failover, run_tool, service_spec, step, Daemons, Host, Lab, LabError, LINKS_RUNNING, TUNNEL_DEVICE};
use crate::apply::ApplyWith;
use crate::capture::legs;
use crate::netns::{self, NetNs};
use crate::probe::{self, ProbeServers};
use crate::rtnl;
use lvsdr_core::names::SysctlKey;
use lvsdr_core::plan::{HostPlan, LabPlan, Role};
use lvsdr_core::Topology;
use std::collections::BTreeMap;
use std::time::Duration;

impl Lab {
    /// The plan typed, and a namespace for every host and for the LAN, with
    /// IPv6 set up for what the lab needs.
    pub(super) fn new(
        topology: &Topology,
        plan: LabPlan,
        apply: ApplyWith,
        pair: Option<failover::Pair>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Lab, LabError> {
        // Typed before anything exists, so a bad plan touches nothing.
        let specs = plan
            .services
            .iter()
            .map(|s| Ok((service_spec(s)?, s.destinations.iter().map(dest_spec).collect::<Result<_, _>>()?)))
            .collect::<Result<Vec<_>, LabError>>()?;
        let prefix = netns::unique_prefix();
        progress(&format!("creating namespaces {prefix}*"));
        let names: Vec<String> = std::iter::once(format!("{prefix}lan"))
            .chain(plan.hosts.iter().map(|h| format!("{prefix}{}", h.name)))
            .collect();
        // Inside each namespace as it is made: its IPv6 settings, and its handles, opened once.
        let ipv6 = plan.hosts.iter().flat_map(|h| &h.addresses).any(|a| a.address.is_ipv6());
        let made = NetNs::create_all_then(&names, |ns| {
            set_up_ipv6(ns.name(), ipv6)?;
            rtnl::Route::open().map_err(|source| LabError::Rtnl {
                step: format!("{}: rtnetlink socket", ns.name()),
                source,
            })
        })?;
        let mut hosts = made.into_iter().map(|(ns, route)| Host::new(ns, route));
        let lan = hosts
            .next()
            .ok_or_else(|| LabError::plan("namespaces", "no namespace for the LAN"))?;
        Ok(Lab {
            hosts: plan.hosts.iter().map(|h| h.name.clone()).zip(hosts).collect(),
            plan,
            topology: topology.clone(),
            apply,
            daemons: Daemons::default(),
            servers: None,
            lan,
            prefix,
            build_ms: 0,
            workdirs: BTreeMap::new(),
            pair,
            specs,
            macs: BTreeMap::new(),
            bridge_ports: vec![],
        })
    }

    /// Every NIC is a veth whose peer sits on a bridge: br0 is the LAN, br1 the
    /// outside link between the client and a router, when the topology has one.
    /// The ports are named once, by [`legs::ports_of`], which the captures read too.
    pub(super) fn links(&mut self, progress: &mut dyn FnMut(&str)) -> Result<(), LabError> {
        let outside = self.has_outside();
        progress(if outside {
            "bridges br0 (LAN) and br1 (outside), veth links"
        } else {
            "bridge br0 and veth links"
        });
        // The bridges first: each veth request names its bridge.
        let bridges: Vec<rtnl::Change> = std::iter::once("br0")
            .chain(outside.then_some("br1"))
            .map(|name| rtnl::Change::Bridge { name: name.into() })
            .collect();
        self.lan.apply("lan", &bridges)?;
        self.bridge_ports = legs::ports_of(&self.plan.hosts);
        let veths: Vec<rtnl::Change> = self
            .bridge_ports
            .iter()
            .map(|p| rtnl::Change::VethToBridge {
                name: p.device.clone(),
                peer: p.port.interface.clone(),
                peer_ns_fd: self.hosts[&p.host].fd(),
                bridge: if p.outside { "br1" } else { "br0" }.into(),
            })
            .collect();
        self.lan.apply("lan", &veths)
    }

    fn has_outside(&self) -> bool {
        self.plan.hosts.iter().any(|h| h.outside || !h.outside_interfaces.is_empty())
    }

    /// Each host's sysctls, links, addresses and routes, from one thread that
    /// enters each namespace in turn; then every link of the lab running.
    pub(super) fn hosts_setup(&mut self, apply: ApplyWith, progress: &mut dyn FnMut(&str)) -> Result<(), LabError> {
        progress(&format!("sysctls, links and addresses of {} hosts", self.plan.hosts.len()));
        let hosts: Vec<&Host> = self.plan.hosts.iter().map(|h| &self.hosts[&h.name]).collect();
        let namespaces: Vec<&NetNs> = hosts.iter().map(|h| &*h.ns).collect();
        let (plans, pair) = (&self.plan.hosts, self.pair.is_some());
        let macs = NetNs::run_in_each(&namespaces, |i| host_setup(hosts[i], &plans[i], apply, pair))?;
        // And the bridges with their ports, on the LAN side.
        let lan_links: Vec<String> = ["br0".to_string()]
            .into_iter()
            .chain(self.has_outside().then(|| "br1".to_string()))
            .chain(self.bridge_ports.iter().map(|p| p.device.clone()))
            .collect();
        step("lan: links running", self.lan.route.wait_running(&lan_links, LINKS_RUNNING))?;
        for (h, mac) in self.plan.hosts.iter().zip(macs) {
            if h.role != Role::Client {
                self.macs.insert(h.name.clone(), mac);
            }
        }
        Ok(())
    }

    /// The director: keepalived on both of a pair, or the marking rules and
    /// the IPVS table the way `apply` says.
    pub(super) fn director_setup(&mut self, topology: &Topology, apply: ApplyWith, progress: &mut dyn FnMut(&str)) -> Result<(), LabError> {
        if let Some(pair) = self.pair.clone() {
            if !self.plan.marks.is_empty() {
                return Err(LabError::Unsupported {
                    what: "marking rules".into(),
                    why: "this topology has fwmark marking rules, which the failover lab does not apply (keepalived does not write them)"
                        .into(),
                });
            }
            for (name, index) in [(&pair.master, pair.master_index), (&pair.backup, pair.backup_index)] {
                progress(&format!(
                    "{name}: starting keepalived with its generated keepalived.conf (VRRP, sync, services)"
                ));
                let conf = lvsdr_core::render::keepalived_director(topology, index)
                    .ok_or_else(|| LabError::plan(format!("{name}: keepalived.conf"), "the topology has no such director"))?;
                self.start_keepalived(name, &conf, false)?;
            }
            return Ok(());
        }
        let Some(director) = self.plan.director().cloned() else {
            return Ok(());
        };
        if !self.plan.marks.is_empty() {
            self.marks(&director, apply, progress)?;
        }
        self.program_ipvs(topology, &director, apply, progress)
    }

    /// The fwmark services' marking rules, over netlink.
    fn marks(&self, director: &HostPlan, apply: ApplyWith, progress: &mut dyn FnMut(&str)) -> Result<(), LabError> {
        if apply != ApplyWith::Netlink {
            return Err(LabError::Unsupported {
                what: format!("{}: marking rules", director.name),
                why: format!(
                    "this topology has fwmark marking rules, which the lab applies only with --apply-with netlink (the generated scripts' nft/iptables commands need tools this lab does not run); drop --apply-with {}",
                    apply.name()
                ),
            });
        }
        let marks = &self.plan.marks;
        let device = director.interface.to_string();
        let how = self.hosts[&director.name]
            .run(|| crate::marks::apply(&device, marks))?
            .map_err(|source| LabError::Io {
                step: format!("{}: marking rules for the fwmark services", director.name),
                source,
            })?;
        progress(&format!("{}: {} marking rule(s) with {how}", director.name, marks.len()));
        Ok(())
    }

    /// The IPVS table: lvsdr's own restore over generic netlink, or the
    /// generated artifacts run with the real tools.
    fn program_ipvs(
        &mut self,
        topology: &Topology,
        director: &HostPlan,
        apply: ApplyWith,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), LabError> {
        let ns = self.hosts[&director.name].ns.clone();
        match apply {
            ApplyWith::Netlink => {
                let specs = &self.specs;
                let started = std::time::Instant::now();
                let ipvs = self.hosts[&director.name].ipvs()?;
                ipvs.flush()?;
                ipvs.restore(specs)?;
                progress(&format!(
                    "{}: {} IPVS service(s), {} destination(s) over generic netlink in {} ms",
                    director.name,
                    specs.len(),
                    specs.iter().map(|(_, d)| d.len()).sum::<usize>(),
                    started.elapsed().as_millis()
                ));
            }
            ApplyWith::Script => {
                progress(&format!(
                    "{}: running the generated director script (ip, sysctl, ipvsadm)",
                    director.name
                ));
                let script = lvsdr_core::render::director_script(topology);
                run_tool(&ns, &director.name, "bash", &["-s"], &script)?;
                for h in self.plan.hosts.iter().filter(|h| h.role == Role::RealServer) {
                    progress(&format!("{}: running the generated real-server script", h.name));
                    let script = lvsdr_core::render::real_server_script(topology);
                    run_tool(&self.hosts[&h.name], &h.name, "bash", &["-s", "--", &h.name], &script)?;
                }
            }
            ApplyWith::Restore => {
                progress(&format!("{}: ipvsadm -R with the generated restore file", director.name));
                run_tool(&ns, &director.name, "ipvsadm", &["-R"], &lvsdr_core::render::restore_file(topology))?;
            }
            ApplyWith::Keepalived => {
                progress(&format!("{}: starting keepalived with the generated configuration", director.name));
                self.start_keepalived(&director.name, &lvsdr_core::render::keepalived(topology), true)?;
            }
        }
        Ok(())
    }

    /// The probe servers: every listener of every real server, from one thread.
    pub(super) fn listeners(&mut self, progress: &mut dyn FnMut(&str)) -> Result<(), LabError> {
        let listeners: Vec<probe::Listener> = self
            .plan
            .hosts
            .iter()
            .filter(|h| h.role == Role::RealServer)
            .flat_map(|h| {
                let ns = self.hosts[&h.name].ns.clone();
                h.listeners.iter().map(move |l| probe::Listener {
                    ns: Some(ns.clone()),
                    server: h.name.to_string(),
                    port: l.port,
                    kind: l.kind,
                })
            })
            .collect();
        let servers = ProbeServers::start(&listeners).map_err(|source| LabError::Io {
            step: "probe servers".into(),
            source,
        })?;
        progress(&format!("probe servers up ({} listeners)", servers.len()));
        self.servers = Some(servers);
        Ok(())
    }

    /// Waits for what keepalived does on its own: VRRP making a pair's master,
    /// the health checkers bringing the real servers in.
    pub(super) fn settle(&mut self, apply: ApplyWith, progress: &mut dyn FnMut(&str)) -> Result<(), LabError> {
        if let Some(pair) = self.pair.clone() {
            progress(&format!(
                "waiting for VRRP to make {} master (it takes the VIPs) and for both IPVS tables to settle",
                pair.master
            ));
            let vrrp_ms = self.wait_for_pair(&pair, Duration::from_secs(15))?;
            progress(&format!("{} holds the VIPs {vrrp_ms} ms after keepalived started", pair.master));
        } else if apply == ApplyWith::Keepalived {
            progress("waiting for keepalived's health checkers to bring the real servers in");
            let director = self.plan.director().map(|d| d.name.clone()).into_iter().collect::<Vec<_>>();
            self.wait_for_keepalived(&director, Duration::from_secs(15))?;
        }
        Ok(())
    }
}

/// A fresh namespace's link-local IPv6 addresses sit through duplicate address
/// detection for a second or two, and until then the kernel sends no neighbour
/// solicitation for a packet whose source is not its own (a director forwarding
/// the client's SYN, a real server answering from the VIP on lo): the first
/// connections would find no neighbour. The lab's addresses are unique by
/// construction, so its namespaces skip DAD.
///
/// A lab without IPv6 addresses turns IPv6 off on the links it is about to make:
/// otherwise every new link sends router solicitations, MLD reports and DAD
/// probes, which the bridge floods to every other namespace, work that grows
/// with the square of the hosts.
fn set_up_ipv6(ns: &str, ipv6: bool) -> Result<(), LabError> {
    let settings: &[(&str, i64)] = if ipv6 {
        &[("net.ipv6.conf.all.accept_dad", 0), ("net.ipv6.conf.default.accept_dad", 0)]
    } else {
        &[("net.ipv6.conf.default.disable_ipv6", 1)]
    };
    for (key, value) in settings {
        let io = |source| LabError::Io {
            step: format!("{ns}: sysctl {key}={value}"),
            source,
        };
        let key = SysctlKey::parse(key).map_err(|e| io(std::io::Error::other(e.message)))?;
        match netns::write_sysctl(&key, *value) {
            // A kernel without IPv6 has nothing to turn off.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !ipv6 => {}
            r => r.map_err(io)?,
        }
    }
    Ok(())
}

/// One host, inside its namespace (for its sysctls): sysctls, then its
/// links up, addresses and routes in one batch on its rtnetlink handle;
/// returns its MAC once its links run.
fn host_setup(host: &Host, h: &HostPlan, apply: ApplyWith, pair: bool) -> Result<[u8; 6], LabError> {
    // The generated scripts set up the director and the real servers; the client
    // and the router are the lab's own.
    let scripted = !apply.lvsdr_sets_hosts() && matches!(h.role, Role::Director | Role::RealServer);
    // In a pair, VRRP moves the VIPs between the directors.
    let vrrp_vips = pair && h.role == Role::Director;
    for (k, v) in h.sysctls.iter().filter(|_| !scripted) {
        netns::write_sysctl(k, *v).map_err(|source| LabError::Io {
            step: format!("{}: sysctl {k}={v}", h.name),
            source,
        })?;
    }
    let links: Vec<String> = std::iter::once(&h.interface)
        .chain(&h.extra_interfaces)
        .chain(&h.outside_interfaces)
        .map(|l| l.to_string())
        .collect();
    // LVS-TUN: the namespace's fallback tunnel, which `ipip` made with it.
    let tunnel = h.tunnel.then(|| TUNNEL_DEVICE.to_string());
    let changes: Vec<rtnl::Change> = links
        .iter()
        .chain(&tunnel)
        .map(|device| rtnl::Change::Up { device: device.clone() })
        .chain(
            h.addresses
                .iter()
                .filter(|a| !((scripted || vrrp_vips) && a.vip))
                .map(|a| rtnl::Change::Address {
                    device: a.device.to_string(),
                    address: a.address,
                    prefix: a.prefix,
                    deprecated: a.deprecated,
                }),
        )
        .chain(h.routes.iter().map(|r| rtnl::Change::Route {
            device: r.device.to_string(),
            address: r.address,
            prefix: r.prefix,
            via: r.via,
        }))
        .collect();
    host.apply(h.name.as_str(), &changes)?;
    // The MAC, for telling who sent a frame; it does not change while the lab lives.
    let mac = step(format!("{}: MAC of {}", h.name, h.interface), host.route.mac(&h.interface))?;
    step(format!("{}: links running", h.name), host.route.wait_running(&links, LINKS_RUNNING))?;
    Ok(mac)
}
