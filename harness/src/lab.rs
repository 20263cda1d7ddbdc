//! The DR lab: builds the namespaces, links and IPVS table a [`LabPlan`]
//! describes, runs the probes, and proves the four promises of DR.
//! Everything it does comes from the plan; DR knowledge lives in lvsdr-core.

use crate::apply::ApplyWith;
use crate::capture::Capture;
use crate::ipvs::{self, Ipvs};
use crate::netns::{self, NetNs};
use crate::probe::{self, ConnectionResult, ProbeServer};
use crate::report::{Check, Report, SplitReport};
use crate::rtnl::{self, format_mac};
use lvsdr_core::names::HostName;
use lvsdr_core::plan::{codes_for_check, honours_weights, LabPlan, Role};
use lvsdr_core::Topology;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    NetNs(#[from] netns::NetNsError),
    #[error("{step}: {source}")]
    Rtnl { step: String, source: rtnl::RtnlError },
    #[error("{0}")]
    Ipvs(#[from] ipvs::IpvsError),
    #[error("{step}: {source}")]
    Io { step: String, source: std::io::Error },
}

/// Conversations in flight at once when a service's probes may overlap.
const PROBES_AT_ONCE: usize = 16;

/// What `verify` does.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub connect_timeout: Duration,
    /// Also check IPVS's traffic statistics (packets in > 0, out = 0). The
    /// kernel copies them from per-CPU counters every 2 s, so this waits for
    /// up to one refresh; the proofs themselves need no timer.
    pub ipvs_stats: bool,
    /// How long to poll the IPVS statistics when `ipvs_stats` is set.
    pub stats_timeout: Duration,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            connect_timeout: Duration::from_millis(1500),
            ipvs_stats: false,
            stats_timeout: Duration::from_secs(6),
        }
    }
}

/// A running lab. Dropping it tears everything down.
pub struct Lab {
    pub plan: LabPlan,
    pub topology: Topology,
    pub apply: ApplyWith,
    /// Daemons (keepalived) and probe servers go first when the lab is
    /// dropped, then the namespaces.
    daemons: Daemons,
    servers: Vec<ProbeServer>,
    hosts: BTreeMap<HostName, Arc<NetNs>>,
    lan: Arc<NetNs>,
    pub prefix: String,
    pub build_ms: u64,
    workdir: Option<WorkDir>,
    /// The plan's services as the IPVS client writes them, in plan order.
    specs: Vec<(ipvs::Service, Vec<ipvs::Dest>)>,
}

/// A folder of the lab's (keepalived's configuration and pid files), removed on drop.
struct WorkDir(std::path::PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs one of the production tools inside a host's namespace; a failure
/// names the host and shows what the tool said.
fn run_tool(ns: &NetNs, host: &str, program: &str, args: &[&str], stdin: &str) -> Result<(), LabError> {
    let out = crate::apply::run_in(ns, program, args, stdin).map_err(|source| LabError::Io {
        step: format!("{host}: running {program}"),
        source,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Io {
            step: format!("{host}: {program} {}", args.join(" ")),
            source: std::io::Error::other(format!("{}; it said: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())),
        })
    }
}

/// A service as programmed in the kernel, with its destinations, without counters.
type ProgrammedService = (ipvs::Service, Vec<ipvs::Dest>);

/// Processes the lab started, killed (with their process group) on drop.
#[derive(Default)]
struct Daemons(Vec<std::process::Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGKILL);
            let _ = c.wait();
        }
    }
}

fn step<T>(what: impl Into<String>, r: Result<T, rtnl::RtnlError>) -> Result<T, LabError> {
    r.map_err(|source| LabError::Rtnl { step: what.into(), source })
}

impl Lab {
    /// Builds the lab for a plan. `progress` hears about each step.
    pub fn build(topology: &Topology, plan: LabPlan, apply: ApplyWith, progress: &mut dyn FnMut(&str)) -> Result<Lab, LabError> {
        let started = Instant::now();
        // Typed before anything exists, so a bad plan touches nothing.
        let specs = plan
            .services
            .iter()
            .map(|s| Ok((service_spec(s)?, s.destinations.iter().map(dest_spec).collect::<Result<_, _>>()?)))
            .collect::<Result<Vec<_>, LabError>>()?;
        let prefix = netns::unique_prefix();
        progress(&format!("creating namespaces {prefix}*"));
        let lan = Arc::new(NetNs::create(&format!("{prefix}lan"))?);
        let mut lab = Lab {
            plan,
            topology: topology.clone(),
            apply,
            daemons: Daemons::default(),
            servers: vec![],
            hosts: BTreeMap::new(),
            lan,
            prefix: prefix.clone(),
            build_ms: 0,
            workdir: None,
            specs,
        };
        for h in &lab.plan.hosts {
            let ns = NetNs::create(&format!("{prefix}{}", h.name))?;
            lab.hosts.insert(h.name.clone(), Arc::new(ns));
        }
        progress("bridge br0 and veth links");
        let ports: Vec<(String, String, i32)> = lab
            .plan
            .hosts
            .iter()
            .enumerate()
            .flat_map(|(i, h)| {
                let fd = lab.hosts[&h.name].fd();
                std::iter::once((format!("port{i}"), h.interface.to_string(), fd)).chain(
                    h.extra_interfaces
                        .iter()
                        .enumerate()
                        .map(move |(j, x)| (format!("port{i}n{j}"), x.to_string(), fd)),
                )
            })
            .collect();
        lab.lan
            .run(|| {
                rtnl::with_handle(async |handle| {
                    let br = rtnl::add_bridge(&handle, "br0").await?;
                    for (port, peer, fd) in &ports {
                        rtnl::add_veth_to_bridge(&handle, port, peer, *fd, br).await?;
                    }
                    Ok(())
                })
            })
            .map_err(LabError::from)
            .and_then(|r| step("bridge and links in the lan namespace", r))?;

        for h in lab.plan.hosts.clone() {
            progress(&format!("{}: sysctls, addresses", h.name));
            let ns = lab.hosts[&h.name].clone();
            let scripted = !apply.lvsdr_sets_hosts() && h.role != Role::Client;
            ns.run(|| -> Result<(), LabError> {
                for (k, v) in h.sysctls.iter().filter(|_| !scripted) {
                    netns::write_sysctl(k, *v).map_err(|source| LabError::Io {
                        step: format!("{}: sysctl {k}={v}", h.name),
                        source,
                    })?;
                }
                step(
                    format!("{}: links and addresses", h.name),
                    rtnl::with_handle(async |handle| {
                        rtnl::set_up(&handle, &h.interface).await?;
                        for x in &h.extra_interfaces {
                            rtnl::set_up(&handle, x).await?;
                        }
                        for a in h.addresses.iter().filter(|a| !(scripted && a.vip)) {
                            rtnl::add_address(&handle, &a.device, a.address, a.prefix).await?;
                        }
                        for r in &h.routes {
                            rtnl::add_route(&handle, r.address, r.prefix, &r.device).await?;
                        }
                        Ok(())
                    }),
                )
            })??;
        }

        if let Some(director) = lab.plan.director().cloned() {
            let ns = lab.hosts[&director.name].clone();
            match apply {
                ApplyWith::Netlink => {
                    progress(&format!("{}: IPVS services over generic netlink", director.name));
                    let specs = &lab.specs;
                    ns.run(|| -> Result<(), LabError> {
                        let ipvs = Ipvs::connect()?;
                        ipvs.flush()?;
                        for (spec, dests) in specs {
                            ipvs.add_service(spec)?;
                            for d in dests {
                                ipvs.add_dest(&spec.id, d)?;
                            }
                        }
                        Ok(())
                    })??;
                }
                ApplyWith::Script => {
                    progress(&format!(
                        "{}: running the generated director script (ip, sysctl, ipvsadm)",
                        director.name
                    ));
                    let script = lvsdr_core::render::director_script(topology);
                    run_tool(&ns, &director.name, "bash", &["-s"], &script)?;
                    for h in lab.plan.hosts.iter().filter(|h| h.role == Role::RealServer) {
                        progress(&format!("{}: running the generated real-server script", h.name));
                        let script = lvsdr_core::render::real_server_script(topology);
                        run_tool(&lab.hosts[&h.name], &h.name, "bash", &["-s", "--", &h.name], &script)?;
                    }
                }
                ApplyWith::Restore => {
                    progress(&format!("{}: ipvsadm -R with the generated restore file", director.name));
                    run_tool(&ns, &director.name, "ipvsadm", &["-R"], &lvsdr_core::render::restore_file(topology))?;
                }
                ApplyWith::Keepalived => {
                    progress(&format!("{}: starting keepalived with the generated configuration", director.name));
                    let dir = std::path::Path::new(crate::leftovers::DAEMON_DIR).join(&prefix);
                    std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
                        step: "keepalived folder".into(),
                        source,
                    })?;
                    lab.workdir = Some(WorkDir(dir.clone()));
                    let conf = dir.join("keepalived.conf");
                    std::fs::write(&conf, lvsdr_core::render::keepalived(topology)).map_err(|source| LabError::Io {
                        step: "keepalived.conf".into(),
                        source,
                    })?;
                    let p = |n: &str| dir.join(n).display().to_string();
                    let child = crate::apply::spawn_in(
                        &ns,
                        "keepalived",
                        &[
                            "--dont-fork",
                            "--check",
                            "--use-file",
                            &p("keepalived.conf"),
                            "--pid",
                            &p("keepalived.pid"),
                            "--checkers_pid",
                            &p("checkers.pid"),
                            "--vrrp_pid",
                            &p("vrrp.pid"),
                        ],
                    )
                    .map_err(|source| LabError::Io {
                        step: format!("{}: starting keepalived", director.name),
                        source,
                    })?;
                    lab.daemons.0.push(child);
                }
            }
        }

        for h in lab.plan.hosts.iter().filter(|h| h.role == Role::RealServer) {
            for l in &h.listeners {
                let server =
                    ProbeServer::start(lab.hosts[&h.name].clone(), h.name.to_string(), l.port, l.kind).map_err(|source| LabError::Io {
                        step: format!("{}: probe server on port {}", h.name, l.port),
                        source,
                    })?;
                lab.servers.push(server);
            }
        }
        progress(&format!("probe servers up ({} listeners)", lab.servers.len()));
        if apply == ApplyWith::Keepalived {
            progress("waiting for keepalived's health checkers to bring the real servers in");
            lab.wait_for_keepalived(std::time::Duration::from_secs(15))?;
        }
        lab.build_ms = started.elapsed().as_millis() as u64;
        Ok(lab)
    }

    /// The namespace of a host, for `--keep` and for tests.
    pub fn namespace(&self, host: &str) -> Option<&str> {
        self.hosts.get(host).map(|n| n.name())
    }

    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.lan.name().to_string())
            .chain(self.hosts.values().map(|n| n.name().to_string()))
            .collect()
    }

    /// Runs the probes and proves DR: source IP, reply bypass, ARP owner, split.
    pub fn verify(&self, options: &VerifyOptions, progress: &mut dyn FnMut(&str)) -> Result<Report, LabError> {
        let started = Instant::now();
        let plan = &self.plan;
        let client = plan.hosts.iter().find(|h| h.role == Role::Client).cloned();
        let director = plan.director().cloned();
        let (Some(client), Some(director)) = (client, director) else {
            return Err(LabError::Io {
                step: "plan".into(),
                source: std::io::Error::other("the plan has no client or no director"),
            });
        };
        let client_ns = self.hosts[&client.name].clone();
        let director_ns = self.hosts[&director.name].clone();
        let client_ip = client.addresses[0].address;
        let clients: Vec<_> = client.addresses.iter().map(|a| a.address).collect();

        let before = step(
            "director link counters",
            director_ns.run(|| rtnl::with_handle(async |h| rtnl::counters(&h, &director.interface).await))?,
        )?;

        // Every reply frame the client receives, to see who sent it on the wire.
        let vip = plan.vip;
        let capture = client_ns.run(|| Capture::start(vip))?.map_err(|source| LabError::Io {
            step: "client: capturing reply frames (AF_PACKET)".into(),
            source,
        })?;
        let mut connections: Vec<ConnectionResult> = Vec::new();
        for p in &plan.probes {
            progress(&format!(
                "client: {} connections to {}:{} ({})",
                p.connections.len(),
                p.address,
                p.port,
                p.service
            ));
            let results = client_ns.run(|| {
                if p.overlap {
                    let order: Vec<_> = p.connections.iter().map(|c| (c.client, c.port)).collect();
                    probe::probe_overlapped(
                        &p.service,
                        &order,
                        p.address,
                        p.port,
                        p.kind,
                        options.connect_timeout,
                        PROBES_AT_ONCE,
                    )
                } else {
                    p.connections
                        .iter()
                        .map(|c| probe::probe_once(&p.service, c.client, c.port, p.address, p.port, p.kind, options.connect_timeout))
                        .collect::<Vec<_>>()
                }
            })?;
            connections.extend(results);
        }
        let probes_ms = started.elapsed().as_millis() as u64;
        let replies = capture.stop().map_err(|source| LabError::Io {
            step: "client: reading reply frames".into(),
            source,
        })?;

        // ARP: whose MAC does the client hold for the VIP?
        let neighbour = step(
            "client neighbour table",
            client_ns.run(|| rtnl::with_handle(async |h| rtnl::neighbour(&h, vip).await))?,
        )?;
        let mut macs: BTreeMap<HostName, [u8; 6]> = BTreeMap::new();
        for h in plan.hosts.iter().filter(|h| h.role != Role::Client) {
            let ns = self.hosts[&h.name].clone();
            let iface = h.interface.clone();
            let mac = step(
                format!("{}: MAC address", h.name),
                ns.run(|| rtnl::with_handle(async |hd| rtnl::mac(&hd, &iface).await))?,
            )?;
            macs.insert(h.name.clone(), mac);
        }

        // The IPVS table now: per-destination connection counts change at once.
        // Its traffic statistics lag (a 2 s timer) and are polled only when asked for.
        let attempts: u64 = plan.probes.iter().map(|p| p.connections.len() as u64).sum();
        let poll_started = Instant::now();
        let mut table = self.ipvs_table()?;
        if options.ipvs_stats {
            progress("director: polling IPVS statistics (refreshed every 2 s)");
            // When the client sent its traffic to another host's MAC, the director saw none of it:
            // one refresh of the counters is enough to show that.
            let arp_elsewhere = neighbour.is_some() && neighbour != macs.get(&director.name).copied();
            let stats_timeout = if arp_elsewhere {
                options.stats_timeout.min(Duration::from_millis(2500))
            } else {
                options.stats_timeout
            };
            while table.iter().map(|(s, _)| s.stats.conns).sum::<u64>() < attempts && poll_started.elapsed() < stats_timeout {
                std::thread::sleep(Duration::from_millis(100));
                table = self.ipvs_table()?;
            }
        }
        let after = step(
            "director link counters",
            director_ns.run(|| rtnl::with_handle(async |h| rtnl::counters(&h, &director.interface).await))?,
        )?;
        let stats_ms = poll_started.elapsed().as_millis() as u64;

        // 0. The kernel state, read back and compared with the topology.
        let mut checks = self.state_checks()?;
        // 1. Connectivity and source IP, per service.
        for p in &plan.probes {
            let mine: Vec<&ConnectionResult> = connections.iter().filter(|c| c.service == p.service).collect();
            let failed: Vec<&&ConnectionResult> = mine.iter().filter(|c| c.error.is_some()).collect();
            let mut seen = format!("{}/{} answered", mine.len() - failed.len(), mine.len());
            if let Some(f) = failed.first() {
                seen.push_str(&format!("; {}", f.error.clone().unwrap_or_default()));
            }
            checks.push(Check::new(
                format!("connectivity {}", p.service),
                "connectivity",
                failed.is_empty(),
                format!("{} of {} answered", mine.len(), mine.len()),
                seen,
            ));
            let sources: Vec<String> = mine.iter().filter_map(|c| c.source_seen.clone()).collect();
            let wrong: Vec<&&ConnectionResult> = mine
                .iter()
                .filter(|c| c.source_seen.as_ref().is_some_and(|s| *s != c.client.to_string()))
                .collect();
            let mut uniq: Vec<String> = sources.clone();
            uniq.sort();
            uniq.dedup();
            checks.push(Check::new(
                format!("source-ip {}", p.service),
                "source-ip",
                !sources.is_empty() && wrong.is_empty(),
                if clients.len() == 1 {
                    format!("every real server sees {client_ip}")
                } else {
                    format!("every real server sees the client's own address ({} clients)", clients.len())
                },
                if sources.is_empty() { "no answers".into() } else { uniq.join(", ") },
            ));
        }
        // 2. Reply bypass, on the wire: the director scheduled the connections, and every
        // reply the client got came from a real server's MAC, none from the director's.
        let scheduled: u64 = table
            .iter()
            .flat_map(|(_, ds)| ds.iter())
            .map(|d| u64::from(d.active_conns) + u64::from(d.inactive_conns))
            .sum();
        let director_mac = macs.get(&director.name).copied();
        let mut by_sender: BTreeMap<String, usize> = BTreeMap::new();
        for f in &replies {
            let sender = macs
                .iter()
                .find(|(_, m)| **m == f.source_mac)
                .map(|(name, _)| name.to_string())
                .unwrap_or_else(|| format_mac(&f.source_mac));
            *by_sender.entry(sender).or_default() += 1;
        }
        let from_real_servers = replies.iter().all(|f| {
            Some(f.source_mac) != director_mac
                && plan
                    .hosts
                    .iter()
                    .filter(|h| h.role == Role::RealServer)
                    .any(|h| macs.get(&h.name) == Some(&f.source_mac))
        });
        let rx = after.rx_packets.saturating_sub(before.rx_packets);
        let tx = after.tx_packets.saturating_sub(before.tx_packets);
        checks.push(Check::new(
            "reply-bypass",
            "reply-bypass",
            scheduled >= attempts && !replies.is_empty() && from_real_servers,
            format!("{attempts} conns via IPVS; replies from real servers only"),
            format!(
                "IPVS scheduled {scheduled}; {} reply frame(s) from {}; director {} rx +{rx} tx +{tx}",
                replies.len(),
                if by_sender.is_empty() {
                    "nobody".to_string()
                } else {
                    by_sender.iter().map(|(k, v)| format!("{k} ({v})")).collect::<Vec<_>>().join(", ")
                },
                director.interface
            ),
        ));
        if options.ipvs_stats {
            let inpkts: u64 = table.iter().map(|(s, _)| s.stats.inpkts).sum();
            let outpkts: u64 = table.iter().map(|(s, _)| s.stats.outpkts).sum();
            let conns: u64 = table.iter().map(|(s, _)| s.stats.conns).sum();
            checks.push(Check::new(
                "ipvs-stats",
                "reply-bypass",
                inpkts > 0 && outpkts == 0 && conns >= attempts,
                format!("IPVS in > 0, out = 0, {attempts} conns"),
                format!("IPVS: {conns} connections, {inpkts} in, {outpkts} out"),
            ));
        }
        // 3. ARP owner.
        let owner = neighbour.and_then(|m| macs.iter().find(|(_, v)| **v == m).map(|(k, _)| k.clone()));
        checks.push(Check::new(
            "arp-owner",
            "arp-owner",
            neighbour.is_some() && neighbour == director_mac,
            format!(
                "{vip} → {} ({})",
                director_mac.map(|m| format_mac(&m)).unwrap_or_default(),
                director.name
            ),
            match neighbour {
                Some(m) => format!(
                    "{vip} → {} ({})",
                    format_mac(&m),
                    owner.map(String::from).unwrap_or_else(|| "unknown host".into())
                ),
                None => format!("no neighbour entry for {vip}"),
            },
        ));
        // 4. Split against the prediction: the kernel's own per-destination
        // connection counts, and the order in which real servers answered
        // (a connection nobody answered counts as unknown, not as a miss).
        let server_of: BTreeMap<std::net::Ipv4Addr, String> = plan
            .hosts
            .iter()
            .filter(|h| h.role == Role::RealServer)
            .filter_map(|h| h.addresses.first().map(|a| (a.address, h.name.to_string())))
            .collect();
        let mut split = BTreeMap::new();
        for p in &plan.probes {
            let seen: Vec<Option<String>> = connections
                .iter()
                .filter(|c| c.service == p.service)
                .map(|c| c.real_server.clone())
                .collect();
            // The kernel's service with the probe's full identity (protocol, address, port or fwmark).
            let id = self
                .plan
                .services
                .iter()
                .zip(&self.specs)
                .find(|(sp, _)| sp.name == p.service)
                .map(|(_, (spec, _))| spec.id);
            let kernel_counts: BTreeMap<String, usize> = table
                .iter()
                .find(|(s, _)| Some(s.service.id) == id)
                .map(|(_, ds)| {
                    let mut m: BTreeMap<String, usize> = p.expected.counts.keys().map(|k| (k.clone(), 0)).collect();
                    for d in ds {
                        let name = server_of
                            .get(&d.dest.address)
                            .cloned()
                            .unwrap_or_else(|| d.dest.address.to_string());
                        // Connections the kernel scheduled to this destination, open or closing.
                        *m.entry(name).or_default() += (d.active_conns + d.inactive_conns) as usize;
                    }
                    m
                })
                .unwrap_or_default();
            let expected_order = p.expected.pick_names();
            let order_ok = seen.len() == expected_order.len() && seen.iter().zip(&expected_order).all(|(s, e)| s.is_none() || s == e);
            let answered_any = seen.iter().any(Option::is_some);
            // keepalived adds real servers as their checks succeed, not in topology order, so
            // only the counts are predictable there.
            let order_matters = self.apply != ApplyWith::Keepalived;
            let matches = (order_ok || !order_matters) && answered_any && kernel_counts == p.expected.counts;
            let fmt = |c: &BTreeMap<String, usize>| c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
            let order = seen
                .iter()
                .map(|s| s.clone().unwrap_or_else(|| "?".into()))
                .collect::<Vec<_>>()
                .join(",");
            checks.push(Check::new(
                format!("split {}", p.service),
                "split",
                matches,
                if order_matters {
                    format!("{} ({}), in predicted order", fmt(&p.expected.counts), p.expected.scheduler)
                } else {
                    format!("{} ({})", fmt(&p.expected.counts), p.expected.scheduler)
                },
                if matches {
                    format!("IPVS {} (same order)", fmt(&kernel_counts))
                } else {
                    format!("IPVS {}; answers in order {order}", fmt(&kernel_counts))
                },
            ));
            if let Some(weights) = &p.weights {
                let total: u32 = weights.values().sum();
                let answered: usize = kernel_counts.values().sum();
                let asked = weights
                    .iter()
                    .map(|(k, w)| format!("{k}={:.1}", answered as f64 * f64::from(*w) / f64::from(total.max(1))))
                    .collect::<Vec<_>>()
                    .join(" ");
                let ratio = weights.values().map(u32::to_string).collect::<Vec<_>>().join(":");
                checks.push(
                    Check::new(
                        format!("weights {}", p.service),
                        "weights",
                        honours_weights(weights, &kernel_counts),
                        format!("{asked} (the weights {ratio})"),
                        format!("IPVS {} ({})", fmt(&kernel_counts), p.expected.scheduler),
                    )
                    .advisory(),
                );
            }
            split.insert(
                p.service.clone(),
                SplitReport {
                    scheduler: p.expected.scheduler.to_string(),
                    expected: p.expected.counts.clone(),
                    seen: kernel_counts,
                    expected_order,
                    seen_order: seen,
                    matches,
                },
            );
        }

        // Send the user from symptom to cause: lint findings that explain failed checks.
        let diagnostics = lvsdr_core::lint::lint(&self.topology, "");
        for c in checks.iter_mut().filter(|c| !c.pass) {
            let codes = codes_for_check(&c.kind);
            let mut found: Vec<&lvsdr_core::Diagnostic> = diagnostics.iter().filter(|d| codes.contains(&d.code)).collect();
            // A check about one service ("weights tcp/80") is explained by the findings
            // about that service, when there are any.
            if let Some(service) = c.name.split_whitespace().nth(1) {
                let about_other = |d: &lvsdr_core::Diagnostic| {
                    !d.message.contains(service) && plan.services.iter().any(|s| s.name != service && d.message.contains(&s.name))
                };
                found.retain(|d| !about_other(d));
            }
            c.explained_by = found.iter().map(|d| format!("{}: {}", d.code, d.message)).collect();
            c.explained_by.dedup();
        }

        let mut timings = BTreeMap::new();
        timings.insert("build".to_string(), self.build_ms);
        timings.insert("probes".to_string(), probes_ms);
        timings.insert("stats_poll".to_string(), stats_ms);
        timings.insert("verify".to_string(), started.elapsed().as_millis() as u64);
        Ok(Report {
            topology: plan.topology.clone(),
            pass: crate::report::verdict(&checks),
            kernel: String::new(),
            ipvs_version: String::new(),
            applied_with: self.apply.name().to_string(),
            checks,
            connections,
            split,
            ipvs: table
                .iter()
                .map(|(s, ds)| crate::report::ServiceCounters::from_entry(s, ds.clone()))
                .collect(),
            timings_ms: timings,
            namespaces: vec![],
        })
    }

    /// The director's IPVS table: every service with its destinations (`ipvsadm -L -n --stats`).
    fn ipvs_table(&self) -> Result<Vec<(ipvs::ServiceEntry, Vec<ipvs::DestEntry>)>, LabError> {
        let director = self.plan.director().ok_or_else(|| LabError::Io {
            step: "plan".into(),
            source: std::io::Error::other("the plan has no director"),
        })?;
        self.hosts[&director.name].run(|| -> Result<_, LabError> {
            let ipvs = Ipvs::connect()?;
            let mut out = Vec::new();
            for s in ipvs.services()? {
                let dests = ipvs.dests(&s.service.id)?;
                out.push((s, dests));
            }
            Ok(out)
        })?
    }

    /// Waits until keepalived has programmed every service and its health
    /// checkers have settled: the IPVS table unchanged for longer than one
    /// checker cycle (`delay_loop 2`).
    fn wait_for_keepalived(&self, timeout: Duration) -> Result<(), LabError> {
        let started = Instant::now();
        let mut last: Option<(Instant, Vec<ProgrammedService>)> = None;
        loop {
            let table: Vec<_> = self
                .ipvs_table()?
                .into_iter()
                .map(|(s, ds)| (s.service, ds.into_iter().map(|d| d.dest).collect()))
                .collect();
            let complete = self.specs.iter().all(|(sp, _)| table.iter().any(|(s, _)| s.id == sp.id));
            match &last {
                Some((since, t)) if *t == table && complete && since.elapsed() > Duration::from_millis(2500) => return Ok(()),
                Some((_, t)) if *t == table => {}
                _ => last = Some((Instant::now(), table)),
            }
            if started.elapsed() > timeout {
                return Err(LabError::Io {
                    step: "keepalived".into(),
                    source: std::io::Error::other(format!(
                        "keepalived did not program every service within {} s: check its configuration with `keepalived -t -f FILE`",
                        timeout.as_secs()
                    )),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Reads the kernel state back and compares it with the plan, field by
    /// field: addresses and sysctls in every namespace, and the IPVS table.
    pub fn state_checks(&self) -> Result<Vec<Check>, LabError> {
        let mut checks = Vec::new();
        for h in &self.plan.hosts {
            let ns = self.hosts[&h.name].clone();
            let (addrs, sysctls) = ns.run(|| -> Result<_, LabError> {
                let addrs = step(
                    format!("{}: addresses", h.name),
                    rtnl::with_handle(async |hd| rtnl::addresses(&hd).await),
                )?;
                let sysctls: Vec<(String, Option<i64>)> =
                    h.sysctls.iter().map(|(k, _)| (k.to_string(), netns::read_sysctl(k).ok())).collect();
                Ok((addrs, sysctls))
            })??;
            let mut diffs = Vec::new();
            for a in &h.addresses {
                if !addrs.iter().any(|(d, ip, p)| a.device == *d && *ip == a.address && *p == a.prefix) {
                    let seen: Vec<String> = addrs
                        .iter()
                        .filter(|(_, ip, _)| *ip == a.address)
                        .map(|(d, ip, p)| format!("{ip}/{p} on {d}"))
                        .collect();
                    diffs.push(format!(
                        "address {}/{} on {}: {}",
                        a.address,
                        a.prefix,
                        a.device,
                        if seen.is_empty() {
                            "missing".into()
                        } else {
                            format!("found {}", seen.join(", "))
                        }
                    ));
                }
            }
            for ((k, want), (_, got)) in h.sysctls.iter().zip(&sysctls) {
                if *got != Some(*want) {
                    diffs.push(format!(
                        "{k}: expected {want}, found {}",
                        got.map(|g| g.to_string()).unwrap_or_else(|| "nothing".into())
                    ));
                }
            }
            checks.push(Check::new(
                format!("state {}", h.name),
                "state",
                diffs.is_empty(),
                format!(
                    "{} address(es), {} sysctl(s) as the topology says",
                    h.addresses.len(),
                    h.sysctls.len()
                ),
                if diffs.is_empty() { "as expected".into() } else { diffs.join("; ") },
            ));
        }
        if self.plan.director().is_some() {
            let table = self.ipvs_table()?;
            let mut diffs = Vec::new();
            for (sp, (want, want_dests)) in self.plan.services.iter().zip(&self.specs) {
                let Some((got, dests)) = table.iter().find(|(s, _)| s.service.id == want.id) else {
                    diffs.push(format!("service {}: missing", sp.name));
                    continue;
                };
                let g = &got.service;
                if g.scheduler != want.scheduler {
                    diffs.push(format!("{} scheduler: expected {}, found {}", sp.name, want.scheduler, g.scheduler));
                }
                if g.flags.settings() != want.flags {
                    diffs.push(format!(
                        "{} flags: expected {:#x}, found {:#x}",
                        sp.name,
                        want.flags.0,
                        g.flags.settings().0
                    ));
                }
                if g.timeout != want.timeout {
                    diffs.push(format!(
                        "{} persistence timeout: expected {}, found {}",
                        sp.name, want.timeout, g.timeout
                    ));
                }
                if want.flags.contains(ipvs::ServiceFlags::PERSISTENT) && g.netmask != want.netmask {
                    diffs.push(format!(
                        "{} persistence netmask: expected {}, found {}",
                        sp.name, want.netmask, g.netmask
                    ));
                }
                for (dp, w) in sp.destinations.iter().zip(want_dests) {
                    match dests.iter().find(|d| d.dest.address == w.address) {
                        None => diffs.push(format!("{} real server {} ({}): missing", sp.name, dp.server, w.address)),
                        Some(d) => {
                            let d = &d.dest;
                            if w.forward != d.forward {
                                diffs.push(format!(
                                    "{} {} forwarding: expected {:?}, found {:?}",
                                    sp.name, dp.server, w.forward, d.forward
                                ));
                            }
                            for (field, a, b) in [
                                ("port", u32::from(w.port), u32::from(d.port)),
                                ("weight", w.weight, d.weight),
                                ("upper threshold", w.upper_threshold, d.upper_threshold),
                                ("lower threshold", w.lower_threshold, d.lower_threshold),
                            ] {
                                if a != b {
                                    diffs.push(format!("{} {} {field}: expected {a}, found {b}", sp.name, dp.server));
                                }
                            }
                        }
                    }
                }
                for d in dests {
                    if !sp.destinations.iter().any(|dp| dp.address == d.dest.address) {
                        diffs.push(format!("{} has an unexpected real server {}", sp.name, d.dest.address));
                    }
                }
            }
            for (s, _) in &table {
                if !self.specs.iter().any(|(sp, _)| sp.id == s.service.id) {
                    diffs.push(format!("unexpected service {}", s.service.id));
                }
            }
            checks.push(Check::new(
                "state ipvs",
                "state",
                diffs.is_empty(),
                format!("{} service(s) as the topology says", self.plan.services.len()),
                if diffs.is_empty() {
                    "as expected, field by field".into()
                } else {
                    diffs.join("; ")
                },
            ));
        }
        Ok(checks)
    }

    /// Reads the IPVS version through the lab's director.
    pub fn ipvs_version(&self) -> Option<String> {
        let director = self.plan.director()?;
        self.hosts[&director.name]
            .run(|| Ipvs::connect().and_then(|i| i.version()).ok())
            .ok()
            .flatten()
    }
}

/// A planned service as the IPVS client writes it; the plan's numbers become typed values here.
pub fn service_spec(s: &lvsdr_core::plan::ServicePlan) -> Result<ipvs::Service, LabError> {
    let invalid = |what: String| LabError::Io {
        step: format!("service {}", s.name),
        source: std::io::Error::other(what),
    };
    let id = if s.fwmark != 0 {
        ipvs::ServiceId::Fwmark(s.fwmark)
    } else {
        ipvs::ServiceId::Port {
            protocol: ipvs::Protocol::from_number(s.protocol)
                .ok_or_else(|| invalid(format!("protocol {} is not tcp, udp or sctp", s.protocol)))?,
            address: s.address,
            port: s.port,
        }
    };
    Ok(ipvs::Service {
        id,
        scheduler: s.scheduler.clone(),
        flags: ipvs::ServiceFlags(s.flags),
        timeout: s.timeout,
        netmask: s.netmask,
    })
}

pub fn dest_spec(d: &lvsdr_core::plan::DestPlan) -> Result<ipvs::Dest, LabError> {
    Ok(ipvs::Dest {
        address: d.address,
        port: d.port,
        forward: ipvs::ForwardMethod::from_value(d.forward).ok_or_else(|| LabError::Io {
            step: format!("real server {}", d.server),
            source: std::io::Error::other(format!("forwarding method {} is not masq, local, tunnel or route", d.forward)),
        })?,
        weight: d.weight,
        upper_threshold: d.upper_threshold,
        lower_threshold: d.lower_threshold,
    })
}
