//! The DR lab: builds the namespaces, links and IPVS table a [`LabPlan`]
//! describes, runs the probes, and proves the four promises of DR.
//! Everything it does comes from the plan; DR knowledge lives in lvsdr-core.
//!
//! - this file: the [`Lab`], its build, and [`Lab::verify`], which observes
//!   (probes, reply frames, neighbour entry, MACs, the IPVS table);
//! - [`proofs`]: one function per proof, reading what was observed;
//! - [`state`]: the kernel state read back and compared with the plan;
//! - [`failover`]: an active/backup pair under keepalived, and what
//!   survives when the master goes away.

mod build;
mod host;
use host::Host;
mod observe;
use observe::{link_counters, neighbours_of, ProbedVips};
pub mod failover;
pub mod proofs;
mod state;

use crate::apply::ApplyWith;
use crate::capture::{legs, Capture, ReplyFrame};
use crate::ipvs;
use crate::netns::{self, NetNs};
use crate::probe::{self, ConnectionResult, ProbeServers};
use crate::report::Report;
use crate::rtnl;
use lvsdr_core::names::HostName;
use lvsdr_core::plan::{HostPlan, LabPlan, Role};
use lvsdr_core::Topology;
use proofs::{IpvsTable, Observed};
use std::collections::BTreeMap;
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
    /// The plan lacks what a step needs, or holds a value the kernel's
    /// interfaces cannot take.
    #[error("{step}: {problem}")]
    Plan { step: String, problem: String },
    /// The topology asks for something this lab does not do, or not this way.
    #[error("{what}: {why}")]
    Unsupported { what: String, why: String },
    /// A production tool the lab ran (bash with a generated script, ipvsadm) failed.
    #[error("{host}: `{command}` failed ({status}); it said: {said}")]
    Tool {
        host: String,
        command: String,
        status: String,
        said: String,
    },
    /// What the lab waits for did not happen in time.
    #[error("{what}: {detail}")]
    Timeout { what: String, detail: String },
}

impl LabError {
    fn plan(step: impl Into<String>, problem: impl Into<String>) -> LabError {
        LabError::Plan {
            step: step.into(),
            problem: problem.into(),
        }
    }
}

/// Conversations in flight at once when a service's probes may overlap.
const PROBES_AT_ONCE: usize = 32;

/// How long a lab waits for the links it brought up to be running.
const LINKS_RUNNING: Duration = Duration::from_secs(3);
/// The tunnel device of LVS-TUN's real servers: the fallback device `ipip`
/// makes in every namespace.
const TUNNEL_DEVICE: &str = "tunl0";

/// What `verify` does.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VerifyOptions {
    /// How long a probe waits for its connection and its answer. Linux
    /// resends a lost SYN after 1 s (its initial RTO), so the default leaves
    /// room for one resend: a SYN dropped once under a loaded host does not
    /// fail a lab, and a fault that drops every SYN costs 1.2 s per wave.
    pub connect_timeout: Duration,
    /// Also check IPVS's traffic statistics (packets in > 0, out = 0). The
    /// kernel copies them from per-CPU counters every 2 s, so this waits for
    /// up to one refresh; the proofs themselves need no timer.
    pub ipvs_stats: bool,
    /// How long to poll the IPVS statistics when `ipvs_stats` is set.
    pub stats_timeout: Duration,
    /// Also capture every leg of every connection on the bridge's ports, and
    /// hand the frames back on the report (`lvsdr lab --pcap`).
    pub frames: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            connect_timeout: Duration::from_millis(1200),
            ipvs_stats: false,
            stats_timeout: Duration::from_secs(6),
            frames: false,
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
    servers: Option<ProbeServers>,
    hosts: BTreeMap<HostName, Host>,
    /// The namespace of the bridges.
    lan: Host,
    pub prefix: String,
    pub build_ms: u64,
    /// keepalived's folders (configuration and pid files), one per director.
    workdirs: BTreeMap<HostName, WorkDir>,
    /// An active/backup pair under keepalived's VRRP: which director is master
    /// (it serves the proofs before a failover) and which is backup.
    pair: Option<failover::Pair>,
    /// The plan's services as the IPVS client writes them, in plan order.
    specs: Vec<(ipvs::Service, Vec<ipvs::Dest>)>,
    /// Each host's MAC on its LAN interface (not the client's), read as it is built.
    macs: BTreeMap<HostName, [u8; 6]>,
    /// The bridges' ports in the `lan` namespace, each with the host behind it.
    bridge_ports: Vec<legs::BridgePort>,
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
        Err(LabError::Tool {
            host: host.to_string(),
            command: format!("{program} {}", args.join(" ")),
            status: out.status.to_string(),
            said: String::from_utf8_lossy(&out.stderr).trim().to_string(),
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
        Lab::build_with(topology, plan, apply, None, progress)
    }

    /// Builds the lab for an active/backup pair: keepalived runs in both
    /// director namespaces with its own generated keepalived.conf, and its
    /// VRRP, not lvsdr, puts the VIPs on the master. Ready when the master
    /// holds the VIPs and both IPVS tables are programmed and settled.
    pub fn build_pair(topology: &Topology, plan: LabPlan, progress: &mut dyn FnMut(&str)) -> Result<Lab, LabError> {
        let pair = failover::Pair::of(topology, &plan).map_err(|e| LabError::plan("failover", e))?;
        Lab::build_with(topology, plan, ApplyWith::Keepalived, Some(pair), progress)
    }

    /// The phases of a build, in the order the kernel's `ipvs.sh` runs its
    /// `setup()`: namespaces, links, each host, the director, listeners, settle.
    /// Each is a function of its own in `build.rs`.
    fn build_with(
        topology: &Topology,
        plan: LabPlan,
        apply: ApplyWith,
        pair: Option<failover::Pair>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Lab, LabError> {
        let started = Instant::now();
        let mut lab = Lab::new(topology, plan, apply, pair, progress)?;
        lab.links(progress)?;
        lab.hosts_setup(apply, progress)?;
        lab.director_setup(topology, apply, progress)?;
        lab.listeners(progress)?;
        lab.settle(apply, progress)?;
        lab.build_ms = started.elapsed().as_millis() as u64;
        Ok(lab)
    }

    /// Starts keepalived in a director's namespace, with its configuration and
    /// pid files in a folder of its own under the daemons folder (removed on
    /// drop, like the process, which is killed with its children).
    /// `check_only` runs only the health checkers (`--check`), not VRRP.
    fn start_keepalived(&mut self, host: &HostName, conf: &str, check_only: bool) -> Result<(), LabError> {
        let dir = std::path::Path::new(crate::leftovers::DAEMON_DIR).join(format!("{}{host}", self.prefix));
        std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
            step: format!("{host}: keepalived folder"),
            source,
        })?;
        self.workdirs.insert(host.clone(), WorkDir(dir.clone()));
        std::fs::write(dir.join("keepalived.conf"), conf).map_err(|source| LabError::Io {
            step: format!("{host}: keepalived.conf"),
            source,
        })?;
        let p = |n: &str| dir.join(n).display().to_string();
        let (conf, pid, checkers, vrrp) = (p("keepalived.conf"), p("keepalived.pid"), p("checkers.pid"), p("vrrp.pid"));
        let mut args = vec!["--dont-fork"];
        if check_only {
            args.push("--check");
        }
        args.extend(["--use-file", &conf, "--pid", &pid, "--checkers_pid", &checkers, "--vrrp_pid", &vrrp]);
        let child = crate::apply::spawn_in(&self.hosts[host], "keepalived", &args).map_err(|source| LabError::Io {
            step: format!("{host}: starting keepalived"),
            source,
        })?;
        self.daemons.0.push(child);
        Ok(())
    }

    /// The director the proofs look at: the pair's master, or the only one.
    pub fn active_director(&self) -> Option<&HostPlan> {
        match &self.pair {
            Some(p) => self.plan.hosts.iter().find(|h| h.name == p.master),
            None => self.plan.director(),
        }
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
        let Some(director) = self.active_director().cloned() else {
            return Err(LabError::plan("plan", "the plan has no client or no director"));
        };
        let seen = self.observe(&director, options, progress)?;
        let observed = self.observed(&director, &seen);
        // 0. The kernel state, read back and compared with the topology.
        let mut checks = self.state_checks()?;
        // 1. Every connection answered, and each real server saw the client's own address.
        for p in &plan.probes {
            checks.push(proofs::connectivity(&observed, p));
            checks.push(proofs::source_ip(&observed, p));
        }
        // 2. Replies bypassed the director.
        checks.extend(proofs::reply_bypass(&observed));
        checks.extend(proofs::reply_via_director(&observed));
        checks.extend(proofs::tunnel(&observed));
        if options.ipvs_stats {
            checks.push(proofs::ipvs_stats(&observed));
        }
        // 3. The client's ARP entry for the VIP is the director's.
        checks.extend(proofs::arp_owner(&observed));
        // 4. The split is the predicted one (and, as a warning, the one the weights ask for).
        let mut split = BTreeMap::new();
        for p in &plan.probes {
            let (check, report) = proofs::split(&observed, p);
            checks.push(check);
            checks.extend(proofs::weights(&observed, p));
            split.insert(p.service.clone(), report);
        }
        proofs::explain(&mut checks, &self.topology, plan);

        let mut timings = BTreeMap::new();
        timings.insert("build".to_string(), self.build_ms);
        timings.insert("probes".to_string(), seen.probes_ms);
        timings.insert("stats_poll".to_string(), seen.stats_ms);
        timings.insert("verify".to_string(), started.elapsed().as_millis() as u64);
        Ok(Report {
            topology: plan.topology.clone(),
            pass: crate::report::verdict(&checks),
            kernel: String::new(),
            ipvs_version: String::new(),
            applied_with: self.apply.name().to_string(),
            checks,
            connections: seen.connections.clone(),
            split,
            ipvs: seen
                .table
                .iter()
                .map(|(s, ds)| crate::report::ServiceCounters::from_entry(s, ds.clone()))
                .collect(),
            timings_ms: timings,
            namespaces: vec![],
            failover: None,
            methods: plan.methods().into_iter().map(String::from).collect(),
            frames: seen.frames.clone(),
        })
    }
}

/// What one round of probes through a director saw.
pub(crate) struct Seen {
    pub connections: Vec<ConnectionResult>,
    pub replies: Vec<ReplyFrame>,
    pub neighbours: Vec<(std::net::IpAddr, Option<[u8; 6]>)>,
    pub table: IpvsTable,
    pub director_packets: (u64, u64),
    /// Packets each LVS-TUN real server received on its tunnel device.
    pub tunnel_packets: BTreeMap<HostName, u64>,
    pub probes_ms: u64,
    pub stats_ms: u64,
    /// Every leg of every connection, when asked for.
    pub frames: Option<crate::frames::FrameLog>,
}

impl Lab {
    /// Runs the plan's probes from the client through `director` and reads
    /// back what they left: reply frames, the neighbour entries for the VIPs,
    /// the director's IPVS table and packet counters.
    pub(crate) fn observe(&self, director: &HostPlan, options: &VerifyOptions, progress: &mut dyn FnMut(&str)) -> Result<Seen, LabError> {
        let started = Instant::now();
        let plan = &self.plan;
        let Some(client) = plan.hosts.iter().find(|h| h.role == Role::Client).cloned() else {
            return Err(LabError::plan("plan", "the plan has no client or no director"));
        };
        let client_ns = self.hosts[&client.name].ns.clone();
        let director_ns = self.hosts[&director.name].ns.clone();
        let before = link_counters(&director_ns, "director", &director.interface)?;
        // Where the replies and the VIP's neighbour entry are seen: the client, or
        // the router in front of the LAN when the client is behind one (on its LAN
        // side, where the real servers' replies arrive).
        let router = plan.hosts.iter().find(|h| h.role == Role::Router);
        let (observer_ns, observer_if, observer) = match router {
            Some(r) => (self.hosts[&r.name].ns.clone(), Some(r.interface.to_string()), r.name.to_string()),
            None => (client_ns.clone(), None, client.name.to_string()),
        };
        let vips = plan.probed_vips();
        let capture = observer_ns
            .run(|| Capture::start(&vips, observer_if.as_deref()))?
            .map_err(|source| LabError::Io {
                step: format!("{observer}: capturing reply frames (AF_PACKET)"),
                source,
            })?;
        let legs = if options.frames { Some(self.capture_legs()?) } else { None };
        let lanes = self.lanes(progress);
        let connections: Vec<ConnectionResult> = client_ns
            .run(|| probe::probe_lanes(&lanes, options.connect_timeout))?
            .map_err(|source| LabError::Io {
                step: "client: probes".into(),
                source,
            })?
            .into_iter()
            .flatten()
            .collect();
        let probes_ms = started.elapsed().as_millis() as u64;
        let replies = capture.stop().map_err(|source| LabError::Io {
            step: "client: reading reply frames".into(),
            source,
        })?;
        let frames = legs.map(|c| c.stop()).transpose().map_err(|source| LabError::Io {
            step: "lan: reading the bridge's frames".into(),
            source,
        })?;
        let neighbours = neighbours_of(&observer_ns, &observer, &vips)?;
        let poll_started = Instant::now();
        let table = self.table_after_probes(director, options, &neighbours, progress)?;
        let after = link_counters(&director_ns, "director", &director.interface)?;
        let stats_ms = poll_started.elapsed().as_millis() as u64;
        Ok(Seen {
            frames,
            tunnel_packets: self.tunnel_packets()?,
            connections,
            replies,
            neighbours,
            table,
            director_packets: (
                after.rx_packets.saturating_sub(before.rx_packets),
                after.tx_packets.saturating_sub(before.tx_packets),
            ),
            probes_ms,
            stats_ms,
        })
    }

    /// What the proofs read: one round of probes through `director`.
    pub(crate) fn observed<'a>(&'a self, director: &'a HostPlan, seen: &'a Seen) -> Observed<'a> {
        let plan = &self.plan;
        Observed {
            plan,
            director,
            connections: &seen.connections,
            replies: &seen.replies,
            table: &seen.table,
            neighbours: &seen.neighbours,
            macs: &self.macs,
            director_packets: seen.director_packets,
            tunnel_packets: &seen.tunnel_packets,
            ids: plan
                .services
                .iter()
                .zip(&self.specs)
                .map(|(sp, (spec, _))| (sp.name.clone(), spec.id))
                .collect(),
            // keepalived adds real servers as their checks succeed, not in topology order.
            order_matters: self.apply != ApplyWith::Keepalived,
        }
    }
}

/// A planned service as the IPVS client writes it; the plan's numbers become typed values here.
pub fn service_spec(s: &lvsdr_core::plan::ServicePlan) -> Result<ipvs::Service, LabError> {
    let invalid = |what: String| LabError::plan(format!("service {}", s.name), what);
    // A fwmark service's address is the unspecified one of its family.
    let id = if s.fwmark != 0 {
        ipvs::ServiceId::Fwmark {
            mark: s.fwmark,
            family: ipvs::Family::of(s.address),
        }
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
        netmask: match s.netmask {
            std::net::IpAddr::V4(m) => ipvs::Netmask::V4(m),
            // IPVS takes an IPv6 service's granularity as a prefix length.
            std::net::IpAddr::V6(m) => ipvs::Netmask::V6(u128::from(m).leading_ones() as u8),
        },
    })
}

pub fn dest_spec(d: &lvsdr_core::plan::DestPlan) -> Result<ipvs::Dest, LabError> {
    Ok(ipvs::Dest {
        address: d.address,
        port: d.port,
        forward: ipvs::ForwardMethod::from_value(d.forward).ok_or_else(|| {
            LabError::plan(
                format!("real server {}", d.server),
                format!("forwarding method {} is not masq, local, tunnel or route", d.forward),
            )
        })?,
        weight: d.weight,
        upper_threshold: d.upper_threshold,
        lower_threshold: d.lower_threshold,
    })
}
