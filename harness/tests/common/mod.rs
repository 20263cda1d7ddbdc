//! What the lab test binaries share: running `lvsdr` as a user would, reading
//! its JSON reports, and looking for what a lab could leave on the host.
//! Each test binary uses its own part of it.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Fails the test unless it runs as root: a lab test that cannot build its lab proves nothing.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "lab tests need root to create network namespaces; run `cargo xtask ci` (it runs the test binaries through sudo)"
    );
}

pub fn kernel() -> String {
    std::env::var("LVSDR_KERNEL").unwrap_or_else(|_| "auto".into())
}

/// Runs `lvsdr` and returns its output and its process id, the id its
/// namespaces and UML job folders are named after.
pub fn lvsdr_with_pid(args: &[&str]) -> (Output, u32) {
    let child = Command::new(env!("CARGO_BIN_EXE_lvsdr"))
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lvsdr");
    let pid = child.id();
    remember(pid);
    (child.wait_with_output().expect("wait for lvsdr"), pid)
}

/// The `lvsdr` processes this test binary started, whose leftovers
/// [`host_state`] looks for.
static STARTED: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Notes an `lvsdr` process this test binary started (see [`host_state`]).
pub fn remember(pid: u32) {
    STARTED.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

/// Whether `name` (`lvsdr-PID-…`, `lvsdr-uml-PID-…`, or a command line naming
/// one) belongs to a process this test binary started, or to itself.
fn ours(name: &str) -> bool {
    let started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    std::iter::once(std::process::id())
        .chain(started.iter().copied())
        .any(|pid| name.contains(&format!("lvsdr-{pid}-")) || name.contains(&format!("{}{pid}-", lvsdr_harness::leftovers::JOB_DIR_PREFIX)))
}

pub fn lvsdr(args: &[&str]) -> Output {
    lvsdr_with_pid(args).0
}

/// A lab's outcome: exit code, JSON report(s), stderr, and lvsdr's process id.
pub struct Ran {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
    pub pid: u32,
}

fn ran(args: &[&str], what: &str) -> Ran {
    let (out, pid) = lvsdr_with_pid(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON report from {what} ({e}); stderr:\n{stderr}"));
    Ran {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
        pid,
    }
}

/// Runs a lab and returns everything about the run.
pub fn lab_ran(file: &str, extra: &[&str]) -> Ran {
    let k = kernel();
    let mut args = vec!["lab", file, "--format", "json", "--kernel", &k];
    args.extend_from_slice(extra);
    ran(&args, file)
}

/// Runs a lab and returns (exit code, JSON report(s), stderr).
pub fn lab(file: &str, extra: &[&str]) -> (i32, Value, String) {
    let r = lab_ran(file, extra);
    (r.code, r.json, r.stderr)
}

/// Runs a lab for each file in one kernel (`--each`); the JSON is the reports in file order.
pub fn labs_ran(files: &[String], extra: &[&str]) -> Ran {
    let k = kernel();
    let mut args = vec!["lab", "--each", "--format", "json", "--kernel", &k];
    args.extend(files.iter().map(String::as_str));
    args.extend_from_slice(extra);
    let r = ran(&args, "--each");
    let reports = r.json.as_array().unwrap_or_else(|| panic!("an array of reports: {}", r.json));
    assert_eq!(reports.len(), files.len(), "one report per file");
    r
}

/// Runs a lab for each file in one kernel (`--each`) and returns (exit code,
/// the reports in file order, stderr).
pub fn labs(files: &[String], extra: &[&str]) -> (i32, Vec<Value>, String) {
    let r = labs_ran(files, extra);
    (r.code, r.json.as_array().cloned().unwrap_or_default(), r.stderr)
}

/// The files of a fixture folder, sorted, as paths relative to the repository.
pub fn fixtures(dir: &str, at_least: usize) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .flatten()
        .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
        .collect();
    files.sort();
    assert!(files.len() >= at_least, "{dir}: {} files", files.len());
    files
}

pub fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

/// A folder of a test's own under the temp folder, removed when it drops,
/// whether the test passes or panics.
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(what: &str) -> TestDir {
        let dir = std::env::temp_dir().join(format!("lvsdr-test-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The names in `dir` that start with `prefix`, sorted.
fn names_in(dir: &str, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The command lines of the host's processes.
fn command_lines() -> Vec<String> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .collect()
        })
        .unwrap_or_default()
}

/// What the labs of this test binary could leak on the host: the namespaces,
/// UML kernels and UML job folders named after the `lvsdr` processes it
/// started (or itself), and all of the host's own links. Labs that other
/// programs run on the same machine at the same time (another checkout's
/// tests, a developer's lab) are not counted: their names hold other pids.
#[derive(Debug, PartialEq, Eq)]
pub struct HostState {
    namespaces: Vec<String>,
    links: Vec<String>,
    uml_processes: usize,
    uml_dirs: Vec<String>,
}

pub fn host_state() -> HostState {
    HostState {
        namespaces: names_in("/run/netns", "lvsdr-").into_iter().filter(|n| ours(n)).collect(),
        links: names_in("/sys/class/net", ""),
        uml_processes: command_lines()
            .iter()
            .filter(|c| c.contains("linux.uml") && c.contains("LVSDR_JOB") && ours(c))
            .count(),
        uml_dirs: names_in(&std::env::temp_dir().to_string_lossy(), lvsdr_harness::leftovers::JOB_DIR_PREFIX)
            .into_iter()
            .filter(|n| ours(n))
            .collect(),
    }
}

/// The host's network links: no lab adds one to the host's own namespace, so
/// they must be the same after any lab, whatever else runs at the time.
pub fn host_links() -> Vec<String> {
    names_in("/sys/class/net", "")
}

/// What one `lvsdr` process (by its id) left behind: its namespaces
/// (`lvsdr-PID-…`), its UML job folders (`lvsdr-uml-PID-…`), its daemons'
/// folders, and any process (a UML kernel, a keepalived) started with one of
/// those names on its command line. Unlike [`host_state`], this holds while
/// other labs run.
pub fn leftovers_of(pid: u32) -> Vec<String> {
    let lab = format!("lvsdr-{pid}-");
    let job = format!("{}{pid}-", lvsdr_harness::leftovers::JOB_DIR_PREFIX);
    let mut left: Vec<String> = names_in("/run/netns", &lab)
        .into_iter()
        .map(|n| format!("namespace {n}"))
        .chain(
            names_in(lvsdr_harness::leftovers::DAEMON_DIR, &lab)
                .into_iter()
                .map(|n| format!("daemon folder {n}")),
        )
        .chain(
            names_in(&std::env::temp_dir().to_string_lossy(), &job)
                .into_iter()
                .map(|n| format!("UML job folder {n}")),
        )
        .collect();
    left.extend(
        command_lines()
            .into_iter()
            .filter(|c| c.contains(&lab) || c.contains(&job))
            .map(|c| format!("process {c}")),
    );
    left
}

/// Asserts that the `lvsdr` process `pid` left nothing behind ([`leftovers_of`])
/// and that the host's links are the ones it had before.
pub fn assert_left_nothing(pid: u32, links_before: &[String]) {
    assert_eq!(leftovers_of(pid), Vec::<String>::new(), "nothing left behind");
    assert_eq!(host_links(), links_before, "the host's links are untouched");
}
