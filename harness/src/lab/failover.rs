//! An active/backup pair under keepalived, and what survives when the master
//! goes away. keepalived runs in both director namespaces with the
//! keepalived.conf lvsdr generates for each ([`lvsdr_core::render::keepalived_director`]);
//! its VRRP puts the VIPs on the master, and its IPVS sync daemon copies the
//! master's connections to the backup. Then:
//!
//! 1. the client holds connections open through the master (an HTTP
//!    keep-alive connection, an SMTP session), and each real server says who it is;
//! 2. the master goes away: `kill -9` of its keepalived (parent, VRRP and
//!    checker children, from their pid files), or its LAN link set down;
//! 3. `failover-vip`: the client's neighbour entry for the VIP moves to the
//!    backup's MAC (its gratuitous ARP), timed from the kill;
//! 4. `failover-established`: each held connection carries one more request,
//!    answered by the same real server (the backup knew it from the sync daemon);
//! 5. `failover-new`: new connections are scheduled by the backup, whose table
//!    starts with no connection of its own: the plan's prediction from an empty table;
//! 6. the DR proofs again, against the backup (`… after failover`).

use super::{step, Lab, LabError, VerifyOptions};
use crate::probe::{self, ConnectionResult, HeldConnection};
use crate::report::Check;
use crate::rtnl::{self, format_mac};
use lvsdr_core::names::HostName;
use lvsdr_core::plan::{CheckKind, LabPlan, Role};
use lvsdr_core::Topology;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How the master goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Failover {
    /// `kill -9` of the master's keepalived, all its processes: it sends no
    /// goodbye, and the backup takes over when the adverts stop.
    #[default]
    Kill,
    /// `ip link set eth0 down` on the master: its keepalived lives on, cut off.
    Link,
}

impl Failover {
    pub fn name(self) -> &'static str {
        match self {
            Failover::Kill => "kill",
            Failover::Link => "link",
        }
    }
}

/// The two directors of a VRRP pair, as the lab runs them.
#[derive(Debug, Clone)]
pub struct Pair {
    pub master: HostName,
    /// Its index in [`Topology::directors`], for its keepalived.conf.
    pub master_index: usize,
    pub backup: HostName,
    pub backup_index: usize,
    /// The VIPs VRRP moves.
    pub vips: Vec<IpAddr>,
    /// Whether both run the IPVS connection sync daemon.
    pub sync: bool,
}

impl Pair {
    /// The pair of a topology: exactly two directors with `vrrp`; the higher
    /// priority is master (on a tie, the one that starts as MASTER).
    pub fn of(topology: &Topology, plan: &LabPlan) -> Result<Pair, String> {
        let mut vrrp: Vec<(usize, &lvsdr_core::model::Director, &lvsdr_core::model::Vrrp)> = topology
            .directors
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.vrrp.as_ref().map(|v| (i, d, v)))
            .collect();
        if vrrp.len() != 2 {
            return Err(format!(
                "--failover needs an active/backup pair: two directors with `vrrp` (keepalived's VRRP); {} has {} director(s), {} with vrrp. See fixtures/pair-dr.toml",
                topology.name,
                topology.directors.len(),
                vrrp.len()
            ));
        }
        vrrp.sort_by_key(|(_, _, v)| std::cmp::Reverse((v.priority.value, v.master.value)));
        let (master_index, master, mv) = vrrp[0];
        let (backup_index, backup, _) = vrrp[1];
        for d in [master, backup] {
            if !plan.hosts.iter().any(|h| h.name == d.name && h.role == Role::Director) {
                return Err(format!("the lab plan has no namespace for director {}", d.name));
            }
        }
        let vips: Vec<IpAddr> = if mv.vips.is_empty() {
            master.vips.iter().map(|v| v.address.value).collect()
        } else {
            mv.vips.iter().map(|v| v.value).collect()
        };
        Ok(Pair {
            master: master.name.clone(),
            master_index,
            backup: backup.name.clone(),
            backup_index,
            vips,
            sync: master.sync.is_some() && backup.sync.is_some(),
        })
    }
}

/// What the failover added to the report.
pub struct FailoverOutcome {
    pub checks: Vec<Check>,
    /// The connections of the probes after the failover.
    pub connections: Vec<ConnectionResult>,
    pub timings_ms: BTreeMap<String, u64>,
    /// The frames of the probes after the failover, when asked for.
    pub frames: Option<crate::frames::FrameLog>,
}

/// How long the backup may take: VRRP's master-down interval is three adverts
/// plus a skew (3.6 s with `advert_int 1`), and the gratuitous ARP follows.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the client's neighbour entry is read while waiting for the takeover.
const NEIGHBOUR_POLL: Duration = Duration::from_millis(15);
/// The master's sync daemon sends its buffer at least every 2 s (IPVS_SYNC_FLUSH_TIME).
const SYNC_TIMEOUT: Duration = Duration::from_secs(8);

impl Lab {
    /// Fails the pair's master over to its backup and proves what survives:
    /// the VIP moves, held connections carry on, new ones go to the backup,
    /// and DR still works through it. Call after [`Lab::verify`].
    pub fn failover(&self, mode: Failover, options: &VerifyOptions, progress: &mut dyn FnMut(&str)) -> Result<FailoverOutcome, LabError> {
        let started = Instant::now();
        let pair = self
            .pair
            .clone()
            .ok_or_else(|| LabError::plan("failover", "this lab was not built as an active/backup pair"))?;
        let host = |name: &HostName| self.plan.hosts.iter().find(|h| &h.name == name).cloned();
        let (Some(client), Some(master), Some(backup)) = (
            self.plan.hosts.iter().find(|h| h.role == Role::Client).cloned(),
            host(&pair.master),
            host(&pair.backup),
        ) else {
            return Err(LabError::plan("plan", "the plan has no client, or not both directors"));
        };
        let client_ns = self.hosts[&client.name].ns.clone();
        let mut timings = BTreeMap::new();

        // 1. Connections held open through the master, one per service.
        progress(&format!("client: holding a connection open per service through {}", pair.master));
        let hold_timeout = options.connect_timeout.max(Duration::from_secs(2));
        let mut held: Vec<(String, Result<HeldConnection, String>)> = Vec::new();
        for p in &self.plan.probes {
            let from = p.connections.first().map(|c| c.client).unwrap_or(p.address);
            let h = client_ns.run(|| HeldConnection::open(&p.service, from, p.address, p.port, p.kind, hold_timeout))?;
            held.push((p.service.clone(), h.map_err(|e| probe::error_text(&e))));
        }
        let ports: Vec<u16> = held.iter().filter_map(|(_, h)| h.as_ref().ok().map(|h| h.client_port)).collect();
        let synced = if pair.sync {
            progress(&format!(
                "{}: waiting for the sync daemon to copy the held connections",
                pair.backup
            ));
            let waited = Instant::now();
            let synced = self.wait_synced(&pair.backup, &ports, SYNC_TIMEOUT)?;
            timings.insert("sync_wait".to_string(), waited.elapsed().as_millis() as u64);
            Some(synced)
        } else {
            None
        };

        // 2. The master goes away.
        let backup_mac = self.macs.get(&pair.backup).copied();
        let vip = pair.vips.first().copied().unwrap_or(self.plan.vip);
        let t0 = Instant::now();
        let how = match mode {
            Failover::Kill => {
                let killed = self.kill_keepalived(&pair.master);
                progress(&format!("{}: killed keepalived pids {killed:?}", pair.master));
                format!("kill -9 of {}'s keepalived", pair.master)
            }
            Failover::Link => {
                self.hosts[&pair.master].apply(
                    pair.master.as_str(),
                    &[rtnl::Change::Down {
                        device: master.interface.to_string(),
                    }],
                )?;
                format!("ip link set {} down on {}", master.interface, pair.master)
            }
        };
        progress(&format!("{how}; watching the client's neighbour entry for {vip}"));

        // 3. The VIP moves: the client's neighbour entry takes the backup's MAC.
        let (moved_to, takeover_ms) = step(
            "client: neighbour table",
            client_ns.run(|| {
                rtnl::with_handle(async |h| loop {
                    let mac = rtnl::neighbour(&h, vip).await?;
                    if mac.is_some() && mac == backup_mac || t0.elapsed() > TAKEOVER_TIMEOUT {
                        return Ok((mac, t0.elapsed().as_millis() as u64));
                    }
                    tokio::time::sleep(NEIGHBOUR_POLL).await;
                })
            })?,
        )?;
        timings.insert("takeover".to_string(), takeover_ms);
        let owner = |mac: &Option<[u8; 6]>| match mac {
            Some(m) => format!(
                "{} ({})",
                format_mac(m),
                self.macs
                    .iter()
                    .find(|(_, x)| *x == m)
                    .map(|(n, _)| n.to_string())
                    .unwrap_or_else(|| "unknown host".into())
            ),
            None => "no entry".into(),
        };
        let moved = moved_to.is_some() && moved_to == backup_mac;
        let mut checks = vec![Check::new(
            "failover-vip",
            CheckKind::Failover,
            moved,
            format!(
                "{vip} → {} ({}) after {how}",
                backup_mac.map(|m| format_mac(&m)).unwrap_or_default(),
                pair.backup
            ),
            if moved {
                format!("{vip} → {} after {takeover_ms} ms", owner(&moved_to))
            } else {
                format!("{vip} → {} still, {takeover_ms} ms after", owner(&moved_to))
            },
        )];
        progress(&format!("{vip} → {} after {takeover_ms} ms", owner(&moved_to)));

        // 4. The held connections carry one more request each, to the same real server.
        let mut lines = Vec::new();
        let mut all_carried = !held.is_empty();
        for (service, h) in &mut held {
            match h {
                Ok(h) => {
                    let again = client_ns.run(|| h.again(Duration::from_secs(3)))?;
                    match again {
                        Ok(server) if server == h.real_server => lines.push(format!("{service} on {server}: carried on")),
                        Ok(server) => {
                            all_carried = false;
                            lines.push(format!("{service} on {}: answered by {server}", h.real_server));
                        }
                        Err(e) => {
                            all_carried = false;
                            lines.push(format!("{service} on {}: {}", h.real_server, probe::error_text(&e)));
                        }
                    }
                }
                Err(e) => {
                    all_carried = false;
                    lines.push(format!("{service}: could not be opened before the failover: {e}"));
                }
            }
        }
        let sync_text = match &synced {
            Some(n) => format!("; {}'s table had {n} of {} before the failover", pair.backup, ports.len()),
            None => format!("; no connection sync between {} and {}", pair.master, pair.backup),
        };
        checks.push(Check::new(
            "failover-established",
            CheckKind::Failover,
            all_carried,
            format!("{} held connection(s) answered by the same real server", held.len()),
            format!("{}{sync_text}", lines.join("; ")),
        ));

        // 5 and 6. New connections through the backup, and the DR proofs against it.
        progress(&format!("new connections through {}", pair.backup));
        let quiet = VerifyOptions {
            ipvs_stats: false,
            ..options.clone()
        };
        let seen = self.observe(&backup, &quiet, progress)?;
        let observed = self.observed(&backup, &seen);
        let mut after = Vec::new();
        for p in &self.plan.probes {
            after.push(proofs_after(super::proofs::connectivity(&observed, p)));
            after.push(proofs_after(super::proofs::source_ip(&observed, p)));
        }
        after.extend(super::proofs::reply_bypass(&observed).map(proofs_after));
        after.extend(super::proofs::arp_owner(&observed).into_iter().map(proofs_after));
        checks.push(failover_new(&self.plan, &pair, &seen.connections, &seen.table));
        checks.extend(after);

        super::proofs::explain(&mut checks, &self.topology, &self.plan);
        if !pair.sync {
            for c in checks.iter_mut().filter(|c| c.name == "failover-established" && !c.pass) {
                if !c
                    .explained_by
                    .iter()
                    .any(|e| e.starts_with(lvsdr_core::codes::code::NO_CONNECTION_SYNC))
                {
                    c.explained_by.insert(
                        0,
                        format!(
                            "{}: no connection sync in the pair: {} never saw the connections {} scheduled, so their next packets find no entry there and are reset; add `sync` (lvs_sync_daemon) to both directors",
                            lvsdr_core::codes::code::NO_CONNECTION_SYNC,
                            pair.backup,
                            pair.master
                        ),
                    );
                }
            }
        }
        timings.insert("failover".to_string(), started.elapsed().as_millis() as u64);
        Ok(FailoverOutcome {
            checks,
            connections: seen.connections,
            timings_ms: timings,
            frames: seen.frames,
        })
    }

    /// `kill -9` of every keepalived process of a director: the VRRP child
    /// first (so no goodbye advert goes out), then the checkers and the parent,
    /// from their pid files; then the whole process group. Returns the pids killed.
    fn kill_keepalived(&self, host: &HostName) -> Vec<i32> {
        use nix::sys::signal::{kill, killpg, Signal};
        use nix::unistd::Pid;
        let Some(dir) = self.workdirs.get(host) else {
            return vec![];
        };
        let mut killed = Vec::new();
        let mut parent = None;
        for file in ["vrrp.pid", "checkers.pid", "keepalived.pid"] {
            let Some(pid) = std::fs::read_to_string(dir.0.join(file))
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            else {
                continue;
            };
            if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                killed.push(pid);
            }
            if file == "keepalived.pid" {
                parent = Some(pid);
            }
        }
        // The parent leads its process group (see `apply::spawn_in`).
        if let Some(pid) = parent {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        killed
    }

    /// Waits until the backup's connection table (`/proc/net/ip_vs_conn`, as
    /// `ipvsadm -Lnc` reads it) lists every one of the client's `ports`, and
    /// returns how many it lists.
    fn wait_synced(&self, backup: &HostName, ports: &[u16], timeout: Duration) -> Result<usize, LabError> {
        let started = Instant::now();
        loop {
            // A thread's own view: /proc/self/net would be the process's namespace.
            let table = self.hosts[backup]
                .run(|| std::fs::read_to_string("/proc/thread-self/net/ip_vs_conn"))?
                .map_err(|source| LabError::Io {
                    step: format!("{backup}: reading /proc/net/ip_vs_conn"),
                    source,
                })?;
            let listed = ports
                .iter()
                .filter(|p| {
                    let hex = format!("{p:04X}");
                    table.lines().any(|l| l.split_whitespace().nth(2) == Some(hex.as_str()))
                })
                .count();
            if listed == ports.len() || started.elapsed() > timeout {
                return Ok(listed);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The name a check's part of the run has after the failover: the end of
/// the check's name, and of the captured frames' comments.
pub(crate) const AFTER_FAILOVER: &str = "after failover";

fn proofs_after(mut c: Check) -> Check {
    c.name.push(' ');
    c.name.push_str(AFTER_FAILOVER);
    c
}

/// New connections after the failover are the backup's: its IPVS table
/// scheduled them, and the real servers that answered split as predicted
/// from an empty table (the backup scheduled nothing before).
fn failover_new(plan: &LabPlan, pair: &Pair, connections: &[ConnectionResult], table: &super::proofs::IpvsTable) -> Check {
    let attempts: usize = plan.probes.iter().map(|p| p.connections.len()).sum();
    let scheduled: u64 = table
        .iter()
        .flat_map(|(_, ds)| ds.iter())
        .map(|d| u64::from(d.active_conns) + u64::from(d.inactive_conns))
        .sum();
    let mut pass = scheduled >= attempts as u64 && !plan.probes.is_empty();
    let mut expected = Vec::new();
    let mut seen = Vec::new();
    let text = |c: &BTreeMap<String, usize>| c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
    for p in &plan.probes {
        let mut counts: BTreeMap<String, usize> = p.expected.counts.keys().map(|k| (k.clone(), 0)).collect();
        let mut failed = 0;
        for c in connections.iter().filter(|c| c.service == p.service) {
            match &c.real_server {
                Some(s) => *counts.entry(s.clone()).or_default() += 1,
                None => failed += 1,
            }
        }
        pass &= failed == 0 && counts == p.expected.counts;
        expected.push(format!("{} {} ({})", p.service, text(&p.expected.counts), p.expected.scheduler));
        seen.push(format!(
            "{} {}{}",
            p.service,
            text(&counts),
            if failed > 0 {
                format!(", {failed} unanswered")
            } else {
                String::new()
            }
        ));
    }
    Check::new(
        "failover-new",
        CheckKind::Failover,
        pass,
        format!("{}, scheduled by {} from an empty table", expected.join("; "), pair.backup),
        format!("{}; {}'s IPVS holds {scheduled} connection(s)", seen.join("; "), pair.backup),
    )
}
