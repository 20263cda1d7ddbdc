//! The kernel matrix (`lvsdr lab FILE… --kernel-matrix`): the same labs on
//! every distribution kernel installed for QEMU, one boot each, and one
//! table, kernel by check, with what differs between the kernels stated:
//! IPVS's version, the schedulers whose modules load, and the defaults of
//! the `net.ipv4.vs.*` sysctls, as each kernel reports them ([`crate::facts`]).

use crate::facts::KernelFacts;
use crate::job::{GuestTask, KernelSeries, RunOptions};
use crate::qemu::{Machine, QemuKernel};
use crate::report::Report;
use lvsdr_core::Topology;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// One lab of the matrix, with what it is expected to do.
pub struct MatrixLab {
    pub name: String,
    pub topology: Topology,
    /// Checks that must fail (a fault scenario's `# expect-fail:` header);
    /// none: the lab must pass.
    pub expect_fail: Vec<String>,
}

/// What one lab did on one kernel.
#[derive(Debug, Clone, Serialize)]
pub struct LabCell {
    pub lab: String,
    pub pass: bool,
    /// The checks that failed (warnings aside), each with the codes that explain it.
    pub failed: Vec<String>,
    /// Whether that is what the lab expects.
    pub as_expected: bool,
    pub ms: u64,
    /// Why it could not run.
    pub error: Option<String>,
}

/// One kernel's row.
#[derive(Debug, Clone, Serialize)]
pub struct KernelRow {
    pub series: String,
    pub release: String,
    pub package: String,
    pub accel: String,
    pub boot_ms: u64,
    pub facts: Option<KernelFacts>,
    pub labs: Vec<LabCell>,
    pub error: Option<String>,
}

impl KernelRow {
    pub fn as_expected(&self) -> bool {
        self.error.is_none() && self.labs.iter().all(|l| l.as_expected)
    }
}

/// The `# key: a, b` header of a topology file, as a list.
pub fn header_list(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("# {key}:")))
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

fn cell(lab: &MatrixLab, report: &Report, ms: u64) -> LabCell {
    let failed: Vec<&crate::report::Check> = report.checks.iter().filter(|c| !c.pass && !c.advisory).collect();
    let names: BTreeSet<&str> = failed.iter().map(|c| c.name.as_str()).collect();
    let as_expected = if lab.expect_fail.is_empty() {
        report.pass
    } else {
        !report.pass
            && lab
                .expect_fail
                .iter()
                .all(|n| names.contains(n.as_str()) && failed.iter().any(|c| c.name == *n && !c.explained_by.is_empty()))
    };
    LabCell {
        lab: lab.name.clone(),
        pass: report.pass,
        failed: failed
            .iter()
            .map(|c| {
                // The codes only: `DR001: real server …` is the same on every kernel.
                let codes: BTreeSet<&str> = c.explained_by.iter().map(|e| e.split(':').next().unwrap_or(e)).collect();
                if codes.is_empty() {
                    c.name.clone()
                } else {
                    format!("{} ({})", c.name, codes.into_iter().collect::<Vec<_>>().join(", "))
                }
            })
            .collect(),
        as_expected,
        ms,
        error: None,
    }
}

/// Boots each kernel once and runs the facts and every lab in it.
pub fn run(kernels: &[QemuKernel], labs: &[MatrixLab], options: &RunOptions, progress: &mut dyn FnMut(&str)) -> Vec<KernelRow> {
    kernels.iter().map(|k| run_one(k, labs, options, progress)).collect()
}

fn run_one(kernel: &QemuKernel, labs: &[MatrixLab], options: &RunOptions, progress: &mut dyn FnMut(&str)) -> KernelRow {
    let mut row = KernelRow {
        series: kernel.series.name().to_string(),
        release: kernel.release.clone(),
        package: kernel.package.clone(),
        accel: String::new(),
        boot_ms: 0,
        facts: None,
        labs: Vec::new(),
        error: None,
    };
    let mut machine = match Machine::boot(kernel, options.timeout, progress) {
        Ok(m) => m,
        Err(e) => {
            row.error = Some(e.to_string());
            return row;
        }
    };
    row.accel = machine.accel.name().to_string();
    row.boot_ms = machine.boot.as_millis() as u64;
    progress(&format!("kernel: {} up in {} ms ({})", kernel.release, row.boot_ms, row.accel));
    match machine.run(&GuestTask::Facts, options.timeout, progress) {
        Ok(o) if o.code == 0 => row.facts = serde_json::from_str(&o.output).ok(),
        Ok(o) => progress(&format!("facts: exit {}: {}", o.code, o.output.trim())),
        Err(e) => progress(&format!("facts: {e}")),
    }
    for lab in labs {
        let task = GuestTask::Lab {
            topologies: vec![lvsdr_core::topology_file::to_toml(&lab.topology)],
            options: options.clone(),
        };
        let started = Instant::now();
        let result = machine.run(&task, options.timeout, &mut |_| {});
        let ms = started.elapsed().as_millis() as u64;
        let c = match result {
            Ok(o) => match o.reports.first() {
                Some(r) => cell(lab, r, ms),
                None => LabCell {
                    lab: lab.name.clone(),
                    pass: false,
                    failed: vec![],
                    as_expected: false,
                    ms,
                    error: Some(format!("exit {}: {}", o.code, o.output.trim())),
                },
            },
            Err(e) => LabCell {
                lab: lab.name.clone(),
                pass: false,
                failed: vec![],
                as_expected: false,
                ms,
                error: Some(e.to_string()),
            },
        };
        progress(&format!(
            "{} on {}: {} in {} ms",
            lab.name,
            kernel.release,
            if c.pass { "pass" } else { "fail" },
            c.ms
        ));
        row.labs.push(c);
    }
    row
}

/// What differs between the kernels' facts, one line each.
pub fn differences(rows: &[KernelRow]) -> Vec<String> {
    let with: Vec<(&str, &KernelFacts)> = rows
        .iter()
        .filter_map(|r| r.facts.as_ref().map(|f| (r.series.as_str(), f)))
        .collect();
    let mut out = Vec::new();
    if with.len() < 2 {
        return out;
    }
    let per = |value: &dyn Fn(&KernelFacts) -> Option<String>| -> Option<String> {
        let values: Vec<(&str, Option<String>)> = with.iter().map(|(s, f)| (*s, value(f))).collect();
        let distinct: BTreeSet<&Option<String>> = values.iter().map(|(_, v)| v).collect();
        (distinct.len() > 1).then(|| {
            values
                .iter()
                .map(|(s, v)| format!("{s}: {}", v.as_deref().unwrap_or("absent")))
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    if let Some(d) = per(&|f| Some(f.ipvs_version.clone())) {
        out.push(format!("IPVS version: {d}"));
    }
    let all: BTreeSet<&String> = with.iter().flat_map(|(_, f)| &f.schedulers).collect();
    for s in all {
        if let Some(d) = per(&|f| Some(if f.schedulers.contains(s) { "yes" } else { "no" }.to_string())) {
            out.push(format!("scheduler {s}: {d}"));
        }
    }
    let keys: BTreeSet<&String> = with.iter().flat_map(|(_, f)| f.sysctls.keys()).collect();
    for k in keys {
        if let Some(d) = per(&|f| f.sysctls.get(k).cloned()) {
            // The kernel sizes this one from the machine's memory, not by version.
            let note = if k == "sync_qlen_max" { " (sized from memory)" } else { "" };
            out.push(format!("net.ipv4.vs.{k}: {d}{note}"));
        }
    }
    out
}

/// The matrix as a table for people.
pub fn render(rows: &[KernelRow]) -> String {
    let mut out = String::new();
    // The labs in the order they ran.
    let mut labs: Vec<&str> = Vec::new();
    for l in rows.iter().flat_map(|r| &r.labs) {
        if !labs.contains(&l.lab.as_str()) {
            labs.push(&l.lab);
        }
    }
    out.push_str(&format!(
        "{:<6} {:<22} {:<5} {:>8} {:<7} {:>7}",
        "series", "release", "accel", "boot", "IPVS", "scheds"
    ));
    for l in &labs {
        out.push_str(&format!("  {l}"));
    }
    out.push('\n');
    for r in rows {
        let facts = r.facts.clone().unwrap_or_default();
        out.push_str(&format!(
            "{:<6} {:<22} {:<5} {:>6}ms {:<7} {:>7}",
            r.series,
            r.release,
            r.accel,
            r.boot_ms,
            facts.ipvs_version,
            facts.schedulers.len()
        ));
        for name in &labs {
            let text = match r.labs.iter().find(|c| c.lab == *name) {
                Some(c) if c.error.is_some() => "ERROR".to_string(),
                Some(c) => format!(
                    "{} {}ms{}",
                    if c.pass { "pass" } else { "fail" },
                    c.ms,
                    if c.as_expected { "" } else { " (UNEXPECTED)" }
                ),
                None => "-".into(),
            };
            out.push_str(&format!("  {text:<w$}", w = name.len()));
        }
        out.push('\n');
        if let Some(e) = &r.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        for c in &r.labs {
            if let Some(e) = &c.error {
                out.push_str(&format!("  {}: {e}\n", c.lab));
            } else if !c.failed.is_empty() {
                out.push_str(&format!("  {}: failed {}\n", c.lab, c.failed.join("; ")));
            }
        }
    }
    let diffs = differences(rows);
    if !diffs.is_empty() {
        out.push_str("\nwhat differs between the kernels:\n");
        for d in diffs {
            out.push_str(&format!("  {d}\n"));
        }
    }
    // The defaults the issue asks about, where every kernel agrees.
    let facts: Vec<&KernelFacts> = rows.iter().filter_map(|r| r.facts.as_ref()).collect();
    let same: BTreeMap<&str, &str> = ["conn_reuse_mode", "expire_nodest_conn", "expire_quiescent_template", "conntrack"]
        .into_iter()
        .filter_map(|k| {
            let v = facts.first()?.sysctls.get(k)?;
            facts.iter().all(|f| f.sysctls.get(k) == Some(v)).then_some((k, v.as_str()))
        })
        .collect();
    if !same.is_empty() && facts.len() > 1 {
        out.push_str(&format!(
            "\nthe same on every kernel: {}\n",
            same.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
        ));
    }
    let missing: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let f = r.facts.as_ref()?;
            (!f.missing_schedulers.is_empty()).then(|| {
                format!(
                    "  {}: no {}",
                    r.series,
                    f.missing_schedulers.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })
        })
        .collect();
    if !missing.is_empty() {
        out.push_str("\nschedulers lvsdr knows that a kernel lacks:\n");
        out.push_str(&missing.join("\n"));
        out.push('\n');
    }
    out
}

/// The kernels of these series, or every installed one when none is named.
pub fn kernels(series: &[KernelSeries]) -> Result<Vec<QemuKernel>, crate::qemu::QemuError> {
    if series.is_empty() {
        return Ok(crate::qemu::installed());
    }
    series.iter().map(|s| crate::qemu::find(*s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(series: &str, version: &str, schedulers: &[&str], reuse: &str) -> KernelRow {
        KernelRow {
            series: series.into(),
            release: series.into(),
            package: String::new(),
            accel: "tcg".into(),
            boot_ms: 1,
            facts: Some(KernelFacts {
                release: series.into(),
                ipvs_version: version.into(),
                schedulers: schedulers.iter().map(|s| s.to_string()).collect(),
                missing_schedulers: BTreeMap::new(),
                sysctls: [("conn_reuse_mode".to_string(), reuse.to_string())].into(),
            }),
            labs: vec![],
            error: None,
        }
    }

    #[test]
    fn differences_name_each_kernel_and_only_what_differs() {
        let rows = [row("5.10", "1.2.1", &["rr", "mh"], "1"), row("7.2", "1.2.1", &["rr"], "0")];
        let d = differences(&rows);
        assert_eq!(
            d,
            ["scheduler mh: 5.10: yes, 7.2: no", "net.ipv4.vs.conn_reuse_mode: 5.10: 1, 7.2: 0"]
        );
        assert!(differences(&rows[..1]).is_empty());
    }

    #[test]
    fn header_lists_read_names_with_spaces() {
        let text = "# expect-fail: arp-owner, connectivity tcp/80\nname = \"x\"\n";
        assert_eq!(header_list(text, "expect-fail"), ["arp-owner", "connectivity tcp/80"]);
        assert!(header_list(text, "expect-pass").is_empty());
    }
}
