//! The GitHub Action (`.github/actions/lvsdr-lab`), its shell steps run here
//! the way a runner runs them: in order, with `RUNNER_TEMP`,
//! `GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`, `GITHUB_WORKSPACE` and
//! `GITHUB_ACTION_PATH` set and the inputs in the environment.
//!
//! Most cases test how the steps handle a lab's report (the summary table,
//! hostile text made inert, exit codes), so `lvsdr lab` is stood in for by a
//! report built here with the harness's own types. Inputs that lvsdr refuses
//! before any lab (exit 2) go to the real `lvsdr lab`, and
//! `the_steps_prove_the_seed_and_fail_the_fault_on_the_real_kernel` (root,
//! like the other lab tests) runs the real lab on the seed and on
//! `no-arp-sysctls.toml`: on the host's IPVS, or under User-Mode Linux. With
//! `LVSDR_ACTION_REAL_LAB=1` (as root) the real lab runs for every case.

use lvsdr_core::plan::CheckKind;
use lvsdr_harness::report::{Check, Report, SplitReport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn real_lab() -> bool {
    std::env::var_os("LVSDR_ACTION_REAL_LAB").is_some_and(|v| v == "1")
}

/// A runner's folders for one job, and `lvsdr` where the install step puts it.
struct Runner {
    dir: PathBuf,
}

impl Runner {
    fn new(name: &str) -> Runner {
        let dir = std::env::temp_dir().join(format!("lvsdr-action-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["temp", "home/bin", "shims"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        // As a cache hit leaves it: the lvsdr built from this tree, behind a
        // stand-in for `lab` when the test gives it a report.
        let wrapper = format!(
            "#!/bin/sh\nif [ \"$1\" = lab ] && [ -n \"$LVSDR_TEST_REPORT\" ]; then cat \"$LVSDR_TEST_REPORT\"; echo '  · stand-in lab' >&2; exit \"$LVSDR_TEST_LAB_EXIT\"; fi\nexec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_lvsdr")
        );
        let bin = dir.join("home/bin/lvsdr");
        std::fs::write(&bin, wrapper).unwrap();
        // A runner's user reaches root through sudo; here the options are dropped.
        let sudo = dir.join("shims/sudo");
        std::fs::write(&sudo, "#!/bin/sh\nwhile [ \"${1#-}\" != \"$1\" ]; do shift; done\nexec \"$@\"\n").unwrap();
        for f in [&bin, &sudo] {
            Command::new("chmod").arg("+x").arg(f).status().unwrap();
        }
        std::fs::write(dir.join("output"), "").unwrap();
        std::fs::write(dir.join("summary.md"), "").unwrap();
        Runner { dir }
    }

    /// Runs one step of the action: its exit code and its log (stdout and stderr).
    fn step(&self, step: &str, env: &[(&str, &str)]) -> (i32, String) {
        let path = format!("{}:{}", self.dir.join("shims").display(), std::env::var("PATH").unwrap_or_default());
        let out = Command::new("bash")
            .arg(root().join(".github/actions/lvsdr-lab/lvsdr-lab.sh"))
            .arg(step)
            .current_dir(root())
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.join("home"))
            .env("RUNNER_TEMP", self.dir.join("temp"))
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("GITHUB_OUTPUT", self.dir.join("output"))
            .env("GITHUB_STEP_SUMMARY", self.dir.join("summary.md"))
            .env("GITHUB_WORKSPACE", root())
            .env("GITHUB_ACTION_PATH", root().join(".github/actions/lvsdr-lab"))
            .env("LVSDR_HOME", self.dir.join("home"))
            .envs(env.iter().copied())
            .output()
            .expect("run bash");
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), log)
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn check(name: &str, kind: CheckKind, pass: bool, expected: &str, seen: &str) -> Check {
    let mut c = Check::new(name, kind, pass, expected, seen);
    if !pass {
        c.explained_by = kind.codes().iter().map(|c| c.to_string()).collect();
    }
    c
}

/// A report with the shape `lvsdr lab --format json` writes.
fn report(topology: &str, arp_owner_ok: bool) -> Report {
    let checks = vec![
        check("connectivity", CheckKind::Connectivity, true, "8 of 8 connect", "8 of 8"),
        check(
            "source-ip",
            CheckKind::SourceIp,
            true,
            "each real server sees 192.168.1.100",
            "192.168.1.100",
        ),
        check(
            "reply-bypass",
            CheckKind::ReplyBypass,
            arp_owner_ok,
            "replies from a real server's MAC",
            "director's MAC",
        ),
        check(
            "arp-owner",
            CheckKind::ArpOwner,
            arp_owner_ok,
            "the client's neighbour entry for the VIP holds the director's MAC",
            if arp_owner_ok { "director" } else { "rs1 | <b>answered</b>" },
        ),
    ];
    let mut split = BTreeMap::new();
    split.insert(
        "tcp/80".to_string(),
        SplitReport {
            scheduler: "rr".into(),
            expected: [("rs1".to_string(), 4), ("rs2".to_string(), 4)].into(),
            seen: [("rs1".to_string(), 4), ("rs2".to_string(), 4)].into(),
            expected_order: vec![],
            seen_order: vec![],
            matches: true,
        },
    );
    Report {
        topology: topology.into(),
        pass: arp_owner_ok,
        kernel: "uml 7.2.7".into(),
        ipvs_version: "1.2.1".into(),
        applied_with: "netlink".into(),
        checks,
        connections: vec![],
        split,
        ipvs: vec![],
        timings_ms: BTreeMap::new(),
        namespaces: vec![],
        failover: None,
        frames: None,
        methods: vec!["DR".into()],
    }
}

/// Every step of the action on `files`: the verdict's exit code, the whole log, and the summary.
fn run_action(runner: &Runner, files: &str, stand_in: Option<(&Report, i32)>) -> (i32, String, String) {
    run_action_on(runner, files, stand_in, "host")
}

/// The kernel the real lab can run on here: the host's when it has IPVS, else UML.
fn lab_kernel() -> &'static str {
    if lvsdr_harness::kernel::try_load_host_ipvs() {
        "host"
    } else {
        "uml"
    }
}

fn run_action_on(runner: &Runner, files: &str, stand_in: Option<(&Report, i32)>, kernel: &str) -> (i32, String, String) {
    let mut log = String::new();
    let (code, out) = runner.step("source", &[("ACTION_REF", "v1")]);
    assert_eq!(code, 0, "{out}");
    log += &out;
    let (code, out) = runner.step("install", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("lvsdr from the cache"), "the cached build is used: {out}");
    log += &out;
    let (code, out) = runner.step("lint", &[("FILES", files)]);
    assert_eq!(code, 0, "lint's status waits for the verdict: {out}");
    log += &out;
    let (code, out) = runner.step("kernel", &[("KERNEL", kernel)]);
    assert_eq!(code, 0, "{out}");
    log += &out;
    let report_file = runner.dir.join("stand-in.json");
    let mut env = vec![("FILES", files), ("KERNEL", kernel), ("CONNECTIONS", "8")];
    let exit;
    if let (Some((report, code)), false) = (stand_in, real_lab()) {
        std::fs::write(&report_file, serde_json::to_string_pretty(report).unwrap()).unwrap();
        exit = code.to_string();
        env.push(("LVSDR_TEST_REPORT", report_file.to_str().unwrap()));
        env.push(("LVSDR_TEST_LAB_EXIT", &exit));
    }
    let (code, out) = runner.step("lab", &env);
    assert_eq!(code, 0, "the lab's status waits for the verdict: {out}");
    log += &out;
    let (code, out) = runner.step("verdict", &[]);
    log += &out;
    (code, log, runner.read("summary.md"))
}

#[test]
fn the_seed_passes() {
    let runner = Runner::new("seed");
    let (code, log, summary) = run_action(
        &runner,
        "fixtures/seed-dr.toml\n",
        Some((&report("fixtures/seed-dr.toml", true), 0)),
    );
    assert_eq!(code, 0, "{log}");
    // The cache key names the ref and the source tree.
    let output = runner.read("output");
    let key = output.lines().find_map(|l| l.strip_prefix("key=")).expect("a cache key");
    assert!(
        key.starts_with("lvsdr-Linux-X64-v1-") && key.len() == "lvsdr-Linux-X64-v1-".len() + 16,
        "{key}"
    );
    assert!(output.contains("uml=false"), "{output}");
    // Lint first, as annotations: DR008 on the seed's `scheduler = "rr"`.
    assert!(
        log.contains(
            "::warning file=fixtures/seed-dr.toml,line=21,col=13,endLine=21,endColumn=17,title=DR008 (scheduler-ignores-weights)::"
        ),
        "{log}"
    );
    assert!(summary.contains("| Check | Result | Expected | Seen | Explained by |"), "{summary}");
    assert!(summary.contains("✅ passed"), "{summary}");
    assert!(summary.contains("| tcp&#47;80 | rr | rs1: 4, rs2: 4 |"), "the split: {summary}");
    assert!(!summary.contains("FAIL"), "{summary}");
}

#[test]
fn a_fault_fails_with_the_failed_check_in_the_summary() {
    let runner = Runner::new("fault");
    let fault = "fixtures/faults/no-arp-sysctls.toml";
    let (code, log, summary) = run_action(&runner, fault, Some((&report(fault, false), 1)));
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("::error title=lvsdr-lab::lvsdr lab: a check failed"), "{log}");
    assert!(log.contains("title=DR001 (arp-sysctls-missing)"), "lint names the cause: {log}");
    let row = summary
        .lines()
        .find(|l| l.starts_with("| arp&#45;owner |"))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(row.contains("❌ **FAIL**") && row.contains("DR001"), "{row}");
    // Text from the report is inert: no table cell ends early, no HTML.
    assert!(row.contains("rs1 &#124; &#60;b&#62;answered"), "{row}");
    assert_eq!(row.matches(" | ").count(), 4, "{row}");
    // The report is kept for the artifact upload.
    assert!(runner.dir.join("temp/lvsdr-lab/report.json").exists());
}

/// The action's steps with the real lab, on the kernel's real IPVS: the seed
/// passes with its checks in the summary; the fault fails with the failed
/// `arp-owner` check and its cause.
#[test]
#[ignore = "needs root"]
fn the_steps_prove_the_seed_and_fail_the_fault_on_the_real_kernel() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the lab needs root: run `cargo xtask ci` (it runs the test binaries through sudo)"
    );
    let kernel = lab_kernel();
    let runner = Runner::new("real-seed");
    let (code, log, summary) = run_action_on(&runner, "fixtures/seed-dr.toml", None, kernel);
    assert_eq!(code, 0, "{log}");
    assert!(summary.contains("✅ passed"), "{summary}");
    assert!(summary.contains("| arp&#45;owner |"), "{summary}");
    let runner = Runner::new("real-fault");
    let (code, log, summary) = run_action_on(&runner, "fixtures/faults/no-arp-sysctls.toml", None, kernel);
    assert_eq!(code, 1, "{log}");
    let row = summary
        .lines()
        .find(|l| l.starts_with("| arp&#45;owner |"))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(row.contains("❌ **FAIL**") && row.contains("DR001"), "{row}");
}

#[test]
fn unusable_input_keeps_its_reason() {
    let runner = Runner::new("missing");
    // A glob is not expanded, and a missing file is exit 2 from lint and lab, before any lab.
    let (code, log, summary) = run_action(&runner, "fixtures/faults/*.toml  missing.sh", None);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("error: cannot read fixtures/faults/*.toml"),
        "lvsdr's own reason: {log}"
    );
    assert!(
        log.contains("::error title=lvsdr-lab::lvsdr lint could not read the input (exit 2)"),
        "{log}"
    );
    assert!(
        log.contains("::error title=lvsdr-lab::lvsdr lab could not use the input, or cannot run as asked (exit 2)"),
        "{log}"
    );
    assert!(summary.contains("exit 2") && summary.contains("<pre>"), "{summary}");
    assert!(
        summary.contains("cannot read fixtures/faults/*.toml"),
        "the reason in the summary: {summary}"
    );
    assert!(!log.contains("jq"), "{log}");
}

#[test]
fn several_files_and_the_kernel_input() {
    let runner = Runner::new("split");
    let (code, log) = runner.step(
        "lint",
        &[(
            "FILES",
            " fixtures/real/split-scripts/director.sh\n\tfixtures/real/split-scripts/real-server.sh \n",
        )],
    );
    assert_eq!(code, 0, "{log}");
    assert_eq!(runner.read("temp/lvsdr-lab/lint.status").trim(), "0", "{log}");
    assert!(
        log.contains("lvsdr lint: no errors") && !log.contains("cannot read"),
        "both files read: {log}"
    );
    let (code, log) = runner.step("lint", &[("FILES", " \n ")]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("::error title=lvsdr-lab::the input `files` is empty"), "{log}");
    let (code, _) = runner.step("kernel", &[("KERNEL", "uml")]);
    assert_eq!(code, 0);
    assert!(runner.read("output").contains("uml=true"));
    let (code, log) = runner.step("kernel", &[("KERNEL", "qemu; rm -rf /")]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("must be auto, host or uml"), "{log}");
}

/// action.yml runs the script's steps in this order, each once, and pins
/// lvsdr to the action's ref: the cache key and the build come from the
/// action's own checkout.
#[test]
fn action_yml_runs_the_steps_in_order() {
    let yml = std::fs::read_to_string(root().join(".github/actions/lvsdr-lab/action.yml")).unwrap();
    let steps: Vec<&str> = yml
        .lines()
        .filter_map(|l| l.split_once("lvsdr-lab.sh\" ").map(|(_, s)| s.trim()))
        .collect();
    assert_eq!(steps, ["source", "install", "lint", "kernel", "lab", "verdict"]);
    assert!(yml.contains("ACTION_REF: ${{ github.action_ref }}"));
    assert!(yml.contains("key: ${{ steps.source.outputs.key }}"));
    assert!(yml.contains("run: cargo xtask setup-uml"));
    assert!(yml.contains("uses: actions/upload-artifact@v4"));
    // No input reaches a `run:` script by `${{ }}`, where it would be shell code.
    let mut in_run = false;
    for line in yml.lines() {
        let t = line.trim_start();
        if t.starts_with("run:") {
            in_run = true;
        } else if t.starts_with("- name:") || t.starts_with("shell:") || t.starts_with("if:") || t.starts_with("env:") {
            in_run = false;
        }
        assert!(!(in_run && line.contains("${{")), "an expression inside a run script: {line}");
    }
}
