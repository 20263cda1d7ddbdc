//! The lab report: the four proofs as checks, every connection, the split,
//! and the IPVS counters; in JSON for machines and as a table for people.

use crate::ipvs::{DestEntry, ServiceEntry};
use crate::probe::ConnectionResult;
use lvsdr_core::plan::CheckKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// What the check is about, which maps it to the lint codes that explain it.
    pub kind: CheckKind,
    pub pass: bool,
    pub expected: String,
    pub seen: String,
    /// Lint findings on the topology that explain this failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explained_by: Vec<String>,
    /// A check of what the configuration asks for (the weights) rather than
    /// a proof of DR: failing it is a warning, and the lab still passes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub advisory: bool,
}

impl Check {
    pub fn new(name: impl Into<String>, kind: CheckKind, pass: bool, expected: impl Into<String>, seen: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            kind,
            pass,
            expected: expected.into(),
            seen: seen.into(),
            explained_by: vec![],
            advisory: false,
        }
    }

    /// The same check as a warning: reported, named by its lint, but not a failed proof.
    pub fn advisory(mut self) -> Check {
        self.advisory = true;
        self
    }
}

/// A lab passes when every proof passes; advisory checks only warn.
pub fn verdict(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.pass || c.advisory)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitReport {
    pub scheduler: String,
    pub expected: BTreeMap<String, usize>,
    pub seen: BTreeMap<String, usize>,
    pub expected_order: Vec<Option<String>>,
    pub seen_order: Vec<Option<String>>,
    pub matches: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DestCounters {
    pub address: String,
    pub weight: u32,
    pub active: u32,
    pub inactive: u32,
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceCounters {
    pub service: String,
    pub scheduler: String,
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub destinations: Vec<DestCounters>,
}

impl ServiceCounters {
    pub fn from_entry(s: &ServiceEntry, dests: Vec<DestEntry>) -> ServiceCounters {
        ServiceCounters {
            service: s.service.id.to_string(),
            scheduler: s.service.scheduler.clone(),
            conns: s.stats.conns,
            inpkts: s.stats.inpkts,
            outpkts: s.stats.outpkts,
            destinations: dests
                .iter()
                .map(|d| DestCounters {
                    // `10.0.0.2:80`, `[2001:db8::11]:80`.
                    address: std::net::SocketAddr::new(d.dest.address, d.dest.port).to_string(),
                    weight: d.dest.weight,
                    active: d.active_conns,
                    inactive: d.inactive_conns,
                    conns: d.stats.conns,
                    inpkts: d.stats.inpkts,
                    outpkts: d.stats.outpkts,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub topology: String,
    pub pass: bool,
    /// Where it ran and which kernel: `host 6.8.0`, `uml 7.2.7` or `v86 6.12.117` (the playground's).
    pub kernel: String,
    pub ipvs_version: String,
    /// How the configuration was applied: netlink, script, restore or keepalived.
    #[serde(default)]
    pub applied_with: String,
    pub checks: Vec<Check>,
    pub connections: Vec<ConnectionResult>,
    pub split: BTreeMap<String, SplitReport>,
    pub ipvs: Vec<ServiceCounters>,
    pub timings_ms: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// How the pair's master went away, when the lab proved a failover (`kill`, `link`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<String>,
    /// The forwarding methods the lab proved, in the order DR, TUN, NAT.
    #[serde(default)]
    pub methods: Vec<String>,
    /// The frames captured on the bridge's ports, when asked for
    /// (`VerifyOptions::frames`, `lvsdr lab --pcap`): see [`crate::frames`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<crate::frames::FrameLog>,
}

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Past this many connections or checks, the human report sums them up
/// unless asked for every line (`--verbose`).
pub const SUMMARY_AFTER: usize = 64;

fn connection_line(c: &ConnectionResult) -> String {
    format!(
        "    {:<8} {}:{:<5} → {:<6} saw {}{}",
        c.service,
        c.client,
        c.client_port,
        c.real_server.clone().unwrap_or_else(|| "-".into()),
        c.source_seen.clone().unwrap_or_else(|| "-".into()),
        c.error.as_ref().map(|e| format!("  ({e})")).unwrap_or_default()
    )
}

impl Report {
    /// The check with this name (`"split tcp/80"`, `"arp-owner"`, …).
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// How many connections of a service (`"tcp/80"`) each real server got, by
    /// the kernel's own counters.
    pub fn split(&self, service: &str) -> Option<&BTreeMap<String, usize>> {
        self.split.get(service).map(|s| &s.seen)
    }

    /// Panics with the whole report unless every proof passed.
    #[track_caller]
    pub fn assert_pass(&self) {
        assert!(self.pass, "the DR lab failed:\n{}", self.render_human(false));
    }

    /// Panics with the report unless the named check passed (`true`) or failed (`false`):
    /// `report.assert_check("arp-owner", false)` to prove that a fault shows.
    #[track_caller]
    pub fn assert_check(&self, name: &str, pass: bool) {
        match self.check(name) {
            Some(c) => assert!(
                c.pass == pass,
                "check `{name}` {}: expected {}, seen {}\n{}",
                if c.pass { "passed" } else { "failed" },
                c.expected,
                c.seen,
                self.render_human(false)
            ),
            None => panic!(
                "no check `{name}` in the report; there are: {}",
                self.checks.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Panics with the report unless the kernel split a service's connections
    /// exactly so: `report.assert_split("tcp/80", &[("rs1", 6), ("rs2", 2)])`.
    #[track_caller]
    pub fn assert_split(&self, service: &str, expected: &[(&str, usize)]) {
        let want: BTreeMap<String, usize> = expected.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        match self.split(service) {
            Some(seen) => assert!(
                *seen == want,
                "service {service}: expected the split {want:?}, the kernel made {seen:?}\n{}",
                self.render_human(false)
            ),
            None => panic!(
                "no service {service} in the report; there are: {}",
                self.split.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Connections per service, as the kernel scheduled them, and every one
    /// that failed.
    fn connections_summary(&self, out: &mut String) {
        let mut services: Vec<(&str, Vec<&ConnectionResult>)> = Vec::new();
        for c in &self.connections {
            match services.iter_mut().find(|(s, _)| *s == c.service) {
                Some((_, v)) => v.push(c),
                None => services.push((&c.service, vec![c])),
            }
        }
        let answered = self.connections.iter().filter(|c| c.real_server.is_some()).count();
        let _ = writeln!(
            out,
            "    {} connection(s) to {} service(s): {answered} answered",
            self.connections.len(),
            services.len()
        );
        let mut failed = self.connections.iter().filter(|c| c.real_server.is_none() || c.error.is_some());
        for c in failed.by_ref().take(20) {
            let _ = writeln!(out, "{}", connection_line(c));
        }
        let more = failed.count();
        if more > 0 {
            let _ = writeln!(out, "    … and {more} more that failed");
        }
        if services.len() <= SUMMARY_AFTER {
            for (service, conns) in &services {
                let mut by_server: Vec<(String, usize)> = Vec::new();
                for c in conns {
                    let rs = c.real_server.clone().unwrap_or_else(|| "-".into());
                    match by_server.iter_mut().find(|(r, _)| *r == rs) {
                        Some((_, n)) => *n += 1,
                        None => by_server.push((rs, 1)),
                    }
                }
                let split: Vec<String> = by_server.iter().map(|(r, n)| format!("{r} {n}")).collect();
                let _ = writeln!(out, "    {service:<24} {} → {}", conns.len(), split.join(", "));
            }
        }
    }

    /// A table a person can read: the connections, then each check with what
    /// was expected and seen, and what explains each failure. A large lab (a
    /// production director's thousands of connections) is summarised: see
    /// [`Report::render_human_with`].
    pub fn render_human(&self, color: bool) -> String {
        self.render_human_with(color, false)
    }

    /// As [`Report::render_human`]; past [`SUMMARY_AFTER`] connections or
    /// checks, and unless `verbose`, the connections are summed up per
    /// service (every failed one still listed) and the passing checks counted
    /// per kind, every failed or warning check still shown in full.
    pub fn render_human_with(&self, color: bool, verbose: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "lvsdr lab: {}   kernel: {}   IPVS {}   applied with: {}",
            self.topology, self.kernel, self.ipvs_version, self.applied_with
        );
        out.push('\n');
        let _ = writeln!(out, "  connections (client → VIP → real server):");
        if verbose || self.connections.len() <= SUMMARY_AFTER {
            for c in &self.connections {
                let _ = writeln!(out, "{}", connection_line(c));
            }
        } else {
            self.connections_summary(&mut out);
        }
        out.push('\n');
        let summarise = !verbose && self.checks.len() > SUMMARY_AFTER;
        let shown: Vec<&Check> = self.checks.iter().filter(|c| !summarise || !c.pass).collect();
        let w_name = shown.iter().map(|c| c.name.len()).max().unwrap_or(5).max(12);
        let w_exp = shown.iter().map(|c| c.expected.chars().count()).max().unwrap_or(8).clamp(8, 60);
        let _ = writeln!(out, "  {:<w_name$}  {:<w_exp$}  {:<6}  seen", "check", "expected", "result");
        if summarise {
            // Passing checks, counted per kind (`connectivity`, `split`, …), in order of first appearance.
            let mut kinds: Vec<(&str, usize, usize)> = Vec::new();
            for c in &self.checks {
                let kind = c.name.split_whitespace().next().unwrap_or("");
                match kinds.iter_mut().find(|k| k.0 == kind) {
                    Some(k) => {
                        k.1 += 1;
                        k.2 += usize::from(c.pass);
                    }
                    None => kinds.push((kind, 1, usize::from(c.pass))),
                }
            }
            for (kind, all, passed) in kinds {
                let result = if passed == all {
                    paint(color, "1;32", "pass  ")
                } else {
                    "      ".to_string()
                };
                let _ = writeln!(
                    out,
                    "  {:<w_name$}  {:<w_exp$}  {}  {passed} of {all} passed{}",
                    kind,
                    format!("{all} check(s)"),
                    result,
                    if passed == all {
                        String::new()
                    } else {
                        ", the others below".into()
                    }
                );
            }
        }
        for c in shown {
            let result = if c.pass {
                paint(color, "1;32", "pass  ")
            } else if c.advisory {
                paint(color, "1;33", "warn  ")
            } else {
                paint(color, "1;31", "FAIL  ")
            };
            let _ = writeln!(out, "  {:<w_name$}  {:<w_exp$}  {}  {}", c.name, c.expected, result, c.seen);
            for e in &c.explained_by {
                let _ = writeln!(out, "  {:<w_name$}  {} see {e}", "", paint(color, "1;33", "→"));
            }
        }
        if summarise || (!verbose && self.connections.len() > SUMMARY_AFTER) {
            let _ = writeln!(
                out,
                "\n  (a summary: `--verbose` lists every connection and check, `--format json` holds them all)"
            );
        }
        out.push('\n');
        let t = |k: &str| self.timings_ms.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "  timings: build {} ms, probes {} ms, counters {} ms, verify {} ms, teardown {} ms, total {} ms",
            t("build"),
            t("probes"),
            t("stats_poll"),
            t("verify"),
            t("teardown"),
            t("total")
        );
        if let Some(mode) = &self.failover {
            let _ = writeln!(
                out,
                "  failover ({mode}): takeover {} ms (from the {} to the client's neighbour entry holding the backup's MAC), {}, failover proofs {} ms",
                t("takeover"),
                if mode == "link" { "link going down" } else { "kill" },
                match self.timings_ms.get("sync_wait") {
                    Some(ms) => format!("sync wait {ms} ms"),
                    None => "no connection sync".to_string(),
                },
                t("failover")
            );
        }
        let warnings = self.checks.iter().filter(|c| c.advisory && !c.pass).count();
        let works = match self.methods.as_slice() {
            [] => "DR works".to_string(),
            [one] => format!("{one} works"),
            [init @ .., last] => format!("{} and {last} work", init.join(", ")),
        };
        let verdict = if self.pass && warnings > 0 {
            paint(
                color,
                "1;33",
                &format!("PASS: {works} as designed, with {warnings} warning(s): the split is not what the weights ask for"),
            )
        } else if self.pass {
            paint(color, "1;32", &format!("PASS: {works} as designed"))
        } else {
            paint(color, "1;31", "FAIL: see the checks above")
        };
        let _ = writeln!(out, "\n{verdict}");
        out
    }
}

/// The lab's frames (`lvsdr lab --pcap`): the pcapng file and the frames that
/// show each failure.
impl Report {
    /// For each failed check (not the warnings) that frames can show, the numbers of those
    /// frames in the pcapng file [`Report::pcapng`] writes (at most `limit`
    /// of each); nothing when the lab captured no frames.
    /// In the order of the checks: `(check, how many frames, the first `limit` of their numbers)`.
    pub fn frame_evidence(&self, limit: usize) -> Vec<(String, usize, Vec<usize>)> {
        let Some(log) = &self.frames else {
            return vec![];
        };
        let a = crate::frames::Annotated::new(log, &self.connections);
        let vips = crate::frames::vips(&a);
        self.checks
            .iter()
            .filter(|c| !c.pass && !c.advisory)
            .filter_map(|c| {
                let all = a.evidence(&c.name, c.kind, &vips);
                (!all.is_empty()).then(|| (c.name.clone(), all.len(), all.into_iter().take(limit).collect()))
            })
            .collect()
    }

    /// The lab's frames as a pcapng file: one interface per bridge port,
    /// named for its host, and each frame of a planned connection commented
    /// with its service, the real server the kernel chose, and its leg.
    /// `None` when the lab captured no frames (run it with `VerifyOptions::frames`).
    pub fn pcapng(&self) -> Option<Vec<u8>> {
        let log = self.frames.as_ref()?;
        let a = crate::frames::Annotated::new(log, &self.connections);
        let mut file = crate::pcapng::Writer::new(&format!("lvsdr lab: {}", self.topology));
        let mut seen_hosts = std::collections::HashSet::new();
        for p in &log.ports {
            let first = seen_hosts.insert(p.host.clone());
            file.interface(&p.name(first), log.snap);
        }
        for (i, f) in log.frames.iter().enumerate() {
            file.packet(f.port, f.at_ns, f.wire_len, &f.bytes, a.comment(i).as_deref());
        }
        Some(file.finish())
    }

    /// What the failed checks' frames are, for a person: `check X: frames 3, 7, 12 (of 20)`.
    pub fn render_evidence(&self, file: &str) -> String {
        let mut out = String::new();
        for (name, all, shown) in self.frame_evidence(12) {
            let numbers: Vec<String> = shown.iter().map(usize::to_string).collect();
            let more = if all > shown.len() {
                format!(" (and {} more)", all - shown.len())
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {file}: check `{name}` failed: see frame{} {}{more}",
                if all == 1 { "" } else { "s" },
                numbers.join(", ")
            );
        }
        out
    }
}
