//! The kernel state, read back: addresses and sysctls in every namespace,
//! compared with the plan, and the IPVS table, compared field by field by
//! `lvsdr audit`'s comparison (`lvsdr_core::audit::compare::ipvs`).

use super::failover::Pair;
use super::proofs::IpvsTable;
use super::{step, Lab, LabError, ProgrammedService};
use crate::netns;
use crate::report::Check;
use crate::rtnl;
use lvsdr_core::names::HostName;
use lvsdr_core::plan::CheckKind;
use std::time::{Duration, Instant};

impl Lab {
    /// The director's IPVS table: every service with its destinations (`ipvsadm -L -n --stats`).
    pub(super) fn ipvs_table(&self) -> Result<IpvsTable, LabError> {
        let director = self
            .active_director()
            .ok_or_else(|| LabError::plan("plan", "the plan has no director"))?;
        self.ipvs_table_of(&director.name)
    }

    /// The IPVS table in one host's namespace (`ip netns exec NS ipvsadm -L -n --stats`).
    pub(super) fn ipvs_table_of(&self, host: &HostName) -> Result<IpvsTable, LabError> {
        // The host's own IPVS socket, opened once: the lab polls the table.
        let ipvs = self.hosts[host].ipvs()?;
        let mut out = Vec::new();
        for s in ipvs.services()? {
            let dests = ipvs.dests(&s.service.id)?;
            out.push((s, dests));
        }
        Ok(out)
    }

    /// Each director's table without counters, and whether it has every planned service.
    fn programmed(&self, host: &HostName) -> Result<(Vec<ProgrammedService>, bool), LabError> {
        let table: Vec<ProgrammedService> = self
            .ipvs_table_of(host)?
            .into_iter()
            .map(|(s, ds)| (s.service, ds.into_iter().map(|d| d.dest).collect()))
            .collect();
        let complete = self.specs.iter().all(|(sp, _)| table.iter().any(|(s, _)| s.id == sp.id));
        Ok((table, complete))
    }

    /// Waits until keepalived has programmed every service on each of
    /// `directors` and its health checkers have settled: every checker has
    /// run once (keepalived starts them within
    /// [`FIRST_CHECKS_WITHIN_MS`](lvsdr_core::render::FIRST_CHECKS_WITHIN_MS)
    /// of programming the table), the IPVS tables have not changed for longer
    /// than one checker cycle (`delay_loop`), and `ready` is true (the pair's
    /// master holding the VIPs).
    fn wait_until_settled(
        &self,
        directors: &[HostName],
        timeout: Duration,
        mut ready: impl FnMut() -> Result<bool, LabError>,
        what: &str,
    ) -> Result<(), LabError> {
        let started = Instant::now();
        let mut last: Option<(Instant, Vec<Vec<ProgrammedService>>)> = None;
        // When every table first had every service: keepalived's checkers start then.
        let mut complete_since: Option<Instant> = None;
        let first_checks = Duration::from_millis(lvsdr_core::render::FIRST_CHECKS_WITHIN_MS + 500);
        let quiet = Duration::from_millis(lvsdr_core::render::DELAY_LOOP_S * 1000 + 500);
        loop {
            let mut tables = Vec::new();
            let mut complete = true;
            for d in directors {
                let (table, all) = self.programmed(d)?;
                complete &= all;
                tables.push(table);
            }
            if complete {
                complete_since.get_or_insert_with(Instant::now);
            }
            let checked = complete_since.is_some_and(|t| t.elapsed() > first_checks);
            let settled = match &last {
                Some((since, t)) if *t == tables => complete && checked && since.elapsed() > quiet,
                _ => {
                    last = Some((Instant::now(), tables));
                    false
                }
            };
            // Asked every round, so that it can time what it waits for.
            let ready = ready()?;
            if settled && ready {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(LabError::Timeout {
                    what: "keepalived".into(),
                    detail: format!(
                        "{what} within {} s: check its configuration with `keepalived -t -f FILE`",
                        timeout.as_secs()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until keepalived has programmed every service on each of
    /// `directors` and its health checkers have settled.
    pub(super) fn wait_for_keepalived(&self, directors: &[HostName], timeout: Duration) -> Result<(), LabError> {
        self.wait_until_settled(directors, timeout, || Ok(true), "keepalived did not program every service")
    }

    /// Waits until the pair's master holds every VIP (VRRP took them), the
    /// backup none, and keepalived has programmed and settled both IPVS
    /// tables. Returns when the master got the VIPs, in ms after the build started.
    pub(super) fn wait_for_pair(&self, pair: &Pair, timeout: Duration) -> Result<u64, LabError> {
        let started = Instant::now();
        let mut vip_ms = None;
        self.wait_until_settled(
            &[pair.master.clone(), pair.backup.clone()],
            timeout,
            || {
                let on_master = self.holds_vips(&pair.master, &pair.vips)?;
                let on_backup = self.holds_vips(&pair.backup, &pair.vips)?;
                if on_master && vip_ms.is_none() {
                    vip_ms = Some(started.elapsed().as_millis() as u64);
                }
                Ok(on_master && !on_backup)
            },
            &format!("keepalived did not make {} master and program both directors", pair.master),
        )?;
        Ok(vip_ms.unwrap_or_default())
    }

    /// Whether every one of `vips` is an address in `host`'s namespace (`ip addr show`).
    pub(super) fn holds_vips(&self, host: &HostName, vips: &[std::net::IpAddr]) -> Result<bool, LabError> {
        let addrs = step(
            format!("{host}: addresses"),
            self.hosts[host].run(|| rtnl::with_handle(async |h| rtnl::addresses(&h).await))?,
        )?;
        Ok(vips.iter().all(|v| addrs.iter().any(|(_, a, _)| a == v)))
    }

    /// Reads the kernel state back and compares it with the plan, field by
    /// field: addresses and sysctls in every namespace, and the IPVS table.
    pub fn state_checks(&self) -> Result<Vec<Check>, LabError> {
        let mut checks = Vec::new();
        // Every namespace read from one thread, on one runtime.
        let rtnl = step("netlink session", rtnl::Session::new())?;
        let hosts = &self.plan.hosts;
        let namespaces: Vec<&crate::netns::NetNs> = hosts.iter().map(|h| &*self.hosts[&h.name]).collect();
        let seen = crate::netns::NetNs::run_in_each(&namespaces, |i| -> Result<_, LabError> {
            let h = &hosts[i];
            let addrs = step(
                format!("{}: addresses", h.name),
                rtnl.with_handle(async |hd| rtnl::addresses(&hd).await),
            )?;
            let sysctls: Vec<(String, Option<i64>)> = h.sysctls.iter().map(|(k, _)| (k.to_string(), netns::read_sysctl(k).ok())).collect();
            Ok((addrs, sysctls))
        })?;
        for (h, (addrs, sysctls)) in hosts.iter().zip(seen) {
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
                CheckKind::State,
                diffs.is_empty(),
                format!(
                    "{} address(es), {} sysctl(s) as the topology says",
                    h.addresses.len(),
                    h.sysctls.len()
                ),
                if diffs.is_empty() { "as expected".into() } else { diffs.join("; ") },
            ));
        }
        if let Some(director) = self.active_director() {
            // The IPVS table through `lvsdr audit`'s own comparison: one comparison, not two.
            let live = lvsdr_core::audit::Live {
                ipvs: self
                    .ipvs_table()?
                    .iter()
                    .map(|(s, ds)| crate::audit::live_service(&s.service, ds.iter().map(|d| &d.dest)))
                    .collect(),
                ..Default::default()
            };
            let index = self.topology.directors.iter().position(|d| d.name == director.name).unwrap_or(0);
            let options = lvsdr_core::audit::Options {
                // keepalived's checkers may quiesce a real server (weight 0): a note, not drift.
                keepalived: self.apply == crate::apply::ApplyWith::Keepalived || self.pair.is_some(),
                keepalived_configs: vec![],
            };
            let mut findings = Vec::new();
            let mut compared = lvsdr_core::audit::Compared::default();
            lvsdr_core::audit::compare::ipvs(&self.topology, index, &live, &options, &mut findings, &mut compared);
            let say = |drift: bool| -> Vec<String> {
                findings
                    .iter()
                    .filter(|f| f.is_drift() == drift)
                    .map(|f| format!("{} ({})", f.message, f.code))
                    .collect()
            };
            let (diffs, notes) = (say(true), say(false));
            checks.push(Check::new(
                "state ipvs",
                CheckKind::State,
                diffs.is_empty(),
                format!("{} service(s) as the topology says", compared.services),
                if diffs.is_empty() {
                    std::iter::once("as expected, field by field".to_string())
                        .chain(notes)
                        .collect::<Vec<_>>()
                        .join("; ")
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
        self.hosts[&director.name].ipvs().ok()?.version().ok()
    }
}
