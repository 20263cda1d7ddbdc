//! Lab tests on real kernel IPVS: the host's when it has IPVS, User-Mode
//! Linux otherwise (`LVSDR_KERNEL=host|uml|auto` forces a choice). They need
//! root to create namespaces, so they are `#[ignore = "needs root"]`: a plain
//! `cargo test` lists them as ignored, never as passed, and `cargo xtask ci`
//! runs them as root with `--include-ignored`. Run without root, they fail.
//!
//! The tests run the `lvsdr` binary itself, as a user would, one lab at a
//! time: a lock keeps their timing honest on a two-core machine, and several
//! of them look for leftovers of every lab this binary started (namespaces,
//! UML kernels and job folders, by the pids in their names) and at the host's
//! links, which another lab running beside them would add to. The labs that mostly wait on keepalived's timers
//! are in `keepalived.rs`, where they run side by side.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
#[ignore = "needs root"]
fn seed_lab_proves_dr_on_ports_80_and_25() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Once with IPVS's timer-refreshed statistics too (the proofs need no timer).
    let (code, r, stderr) = lab("fixtures/seed-dr.toml", &["--ipvs-stats"]);
    assert_eq!(code, 0, "the seed lab must pass: {r:#}\n{stderr}");
    assert_eq!(r["pass"], true);
    assert!(r["kernel"].as_str().unwrap().len() > 4, "kernel named: {}", r["kernel"]);
    for name in [
        "connectivity tcp/80",
        "connectivity tcp/25",
        "source-ip tcp/80",
        "source-ip tcp/25",
        "reply-bypass",
        "ipvs-stats",
        "arp-owner",
        "split tcp/80",
        "split tcp/25",
    ] {
        assert_eq!(check(&r, name)["pass"], true, "{name}: {}", check(&r, name));
    }
    let conns = r["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 16);
    for c in conns {
        assert_eq!(c["source_seen"], "192.168.1.100", "{c}");
        assert!(c["real_server"] == "rs1" || c["real_server"] == "rs2", "{c}");
    }
    // rr ignores the 3:1 weights: 4:4, as predicted and as IPVS counted.
    assert_eq!(r["split"]["tcp/80"]["seen"]["rs1"], 4);
    assert_eq!(r["split"]["tcp/80"]["seen"]["rs2"], 4);
    // Replies bypassed the director: every reply frame came from a real server's
    // MAC, and IPVS saw packets in and none out.
    let bypass = check(&r, "reply-bypass")["seen"].as_str().unwrap().to_string();
    assert!(bypass.contains("from rs1 (") && bypass.contains("rs2 ("), "{bypass}");
    for s in r["ipvs"].as_array().unwrap() {
        assert!(s["inpkts"].as_u64().unwrap() > 0);
        assert_eq!(s["outpkts"], 0);
    }
}

/// `# expect-lint: DR001`, `# expect-fail: a, b`, `# expect-pass: c` headers.
fn expectations(text: &str, key: &str) -> Vec<String> {
    // A comma-separated list of check names, each of which may hold a space ("connectivity tcp/80").
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("# {key}:")))
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

#[test]
#[ignore = "needs root"]
fn fault_scenarios_fail_the_way_their_lint_says() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let files = fixtures("fixtures/faults", 8);
    // Every scenario in one kernel boot, each its own lab.
    let (all_code, reports, stderr) = labs(&files, &["--connections", "4"]);
    assert_eq!(all_code, 1, "some scenario fails: {stderr}");
    let mut failing = 0;
    for (rel, r) in files.iter().zip(&reports) {
        let text = std::fs::read_to_string(root().join(rel)).unwrap();
        let lint = lvsdr_core::analyze(&text, None);
        for code in expectations(&text, "expect-lint") {
            assert!(lint.diagnostics.iter().any(|d| d.code == code), "{rel}: lint {code} expected");
        }
        assert_eq!(r["topology"], lint.topology.as_ref().unwrap().name, "reports in file order");
        let code = if r["pass"] == true { 0 } else { 1 };
        let fails = expectations(&text, "expect-fail");
        for name in &fails {
            let c = check(r, name);
            assert_eq!(c["pass"], false, "{rel}: {name} should fail: {c}\n{stderr}");
            let explained = c["explained_by"].as_array().map(|a| a.len()).unwrap_or(0);
            assert!(explained > 0, "{rel}: {name} should name its lint: {c}");
        }
        for name in expectations(&text, "expect-warn") {
            let c = check(r, &name);
            assert_eq!(
                (&c["pass"], &c["advisory"]),
                (&Value::Bool(false), &Value::Bool(true)),
                "{rel}: {name} should warn: {c}"
            );
            let codes = c["explained_by"].as_array().cloned().unwrap_or_default();
            assert!(!codes.is_empty(), "{rel}: {name} should name its lint: {c}");
            let service = name.split_whitespace().nth(1).unwrap_or_default();
            assert!(
                codes.iter().all(|e| e.as_str().is_some_and(|e| e.contains(service))),
                "{rel}: {name} is explained by findings about {service} only: {c}"
            );
        }
        for name in expectations(&text, "expect-pass") {
            assert_eq!(check(r, &name)["pass"], true, "{rel}: {name} should pass: {}", check(r, &name));
        }
        let failed: Vec<&Value> = r["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["pass"] == false && c["advisory"] != true)
            .collect();
        assert_eq!(
            code == 0,
            fails.is_empty(),
            "{rel}: exit {code} with expected failures {fails:?}; failed: {failed:?}"
        );
        if code == 1 {
            failing += 1;
        }
    }
    assert!(
        failing >= 7,
        "{failing} of the fault scenarios make the lab exit 1; at least 7 must"
    );
}

#[test]
#[ignore = "needs root"]
fn every_scheduler_agrees_with_predict_connection_by_connection() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let files = fixtures("fixtures/schedulers", 13);
    let (all_code, reports, stderr) = labs(&files, &["--connections", "24", "--clients", "12"]);
    // On a failure, say which lab and which check, with what the check saw.
    let failed: Vec<String> = files
        .iter()
        .zip(&reports)
        .flat_map(|(rel, r)| {
            r["checks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["pass"] == false && c["advisory"] != true)
                .map(move |c| format!("{rel}: {} saw {}", c["name"], c["seen"]))
        })
        .collect();
    assert_eq!(all_code, 0, "failed checks: {failed:#?}\n{stderr}");
    for (rel, r) in files.iter().zip(&reports) {
        let code = if r["pass"] == true { 0 } else { 1 };
        let split = &r["split"]["tcp/80"];
        assert_eq!(
            split["matches"], true,
            "{rel}: expected {} seen {}\n{stderr}",
            split["expected_order"], split["seen_order"]
        );
        assert_eq!(split["expected_order"], split["seen_order"], "{rel}");
        // rr and lc ignore the 3:2:1 weights (DR008): their weights check warns, nothing fails.
        let warned: Vec<&Value> = r["checks"].as_array().unwrap().iter().filter(|c| c["pass"] == false).collect();
        let ignores_weights = rel.ends_with("/rr.toml") || rel.ends_with("/lc.toml");
        assert_eq!(warned.len(), usize::from(ignores_weights), "{rel}: {warned:?}");
        assert!(
            warned.iter().all(|c| c["advisory"] == true && c["kind"] == "weights"),
            "{rel}: {warned:?}"
        );
        assert_eq!(code, 0, "{rel}: {r:#}");
    }
}

/// `--hold 3`: each connection stays open until three later ones have opened,
/// so the kernel schedules with active connections in its counts. Every
/// scheduler still agrees with `lvsdr predict --hold 3` connection by
/// connection, and the ones that count connections spread their picks, where
/// with each connection closed first sed, nq, lblc and lblcr pick one server
/// every time (the held counts are what found predict's off-by-one in ovf and
/// its single-server lblcr).
#[test]
#[ignore = "needs root"]
fn held_connections_agree_with_predict_and_spread_the_counting_schedulers() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let files = fixtures("fixtures/schedulers", 13);
    let (code, reports, stderr) = labs(&files, &["--connections", "24", "--clients", "12", "--hold", "3"]);
    assert_eq!(code, 0, "{stderr}");
    for (rel, r) in files.iter().zip(&reports) {
        let split = &r["split"]["tcp/80"];
        assert_eq!(
            split["expected_order"], split["seen_order"],
            "{rel} with --hold 3: expected {} seen {}",
            split["expected_order"], split["seen_order"]
        );
        let picked: std::collections::BTreeSet<&str> = split["seen_order"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let counting = ["/lc.toml", "/wlc.toml", "/sed.toml", "/nq.toml", "/lblc.toml", "/lblcr.toml"];
        if counting.iter().any(|c| rel.ends_with(c)) {
            assert!(picked.len() >= 2, "{rel}: held connections spread the picks: {picked:?}");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn eight_labs_at_once_do_not_collide() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (code, r, stderr) = lab("fixtures/seed-dr.toml", &["--parallel", "8", "--connections", "4"]);
    let reports = r.as_array().unwrap_or_else(|| panic!("an array of reports: {r}"));
    assert_eq!(reports.len(), 8);
    assert!(reports.iter().all(|x| x["pass"] == true), "{stderr}");
    assert_eq!(code, 0);
}

/// Starts a lab long enough (2 × 2,000 connections) to be interrupted while it
/// runs, and returns once it has made something on the host, plus a moment.
fn start_long_lab(before: &HostState) -> std::process::Child {
    let k = kernel();
    let child = Command::new(env!("CARGO_BIN_EXE_lvsdr"))
        .args(["lab", "fixtures/seed-dr.toml", "--kernel", &k, "--connections", "2000"])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    remember(child.id());
    let deadline = Instant::now() + Duration::from_secs(20);
    while host_state() == *before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(host_state(), *before, "the lab started");
    std::thread::sleep(Duration::from_millis(600));
    child
}

#[test]
#[ignore = "needs root"]
fn nothing_is_left_behind_after_pass_fail_or_interrupt() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let (code, _, _) = lab("fixtures/clean-dr.toml", &["--connections", "2"]);
    assert_eq!(code, 0);
    assert_eq!(host_state(), before, "after a passing lab");
    let (code, _, _) = lab("fixtures/faults/no-listener-25.toml", &["--connections", "2"]);
    assert_eq!(code, 1);
    assert_eq!(host_state(), before, "after a failing lab");

    // Ctrl-C in the middle of a lab.
    let mut child = start_long_lab(&before);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "stopped promptly");
    assert!(!status.success(), "an interrupted lab does not claim success");
    let deadline = Instant::now() + Duration::from_secs(5);
    while host_state() != before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(host_state(), before, "after an interrupted lab");

    // kill -9 in the middle of a lab: nothing can run on the way out, so
    // `lvsdr clean` removes what is left (namespaces, folders, processes).
    let mut child = start_long_lab(&before);
    child.kill().unwrap();
    child.wait().unwrap();
    let out = lvsdr(&["clean"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while host_state() != before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(host_state(), before, "after kill -9 and `lvsdr clean`: {said}");
}

#[test]
fn unreadable_topology_names_file_line_and_column() {
    let dir = TestDir::new("unreadable");
    let f = dir.0.join("bad.toml");
    std::fs::write(
        &f,
        "[lan]\nsubnet = \"192.168.1.0/24\"\n[director]\naddress = \"192.168.1.300\"\nvip = \"192.168.1.192\"\n",
    )
    .unwrap();
    let out = lvsdr(&["lab", f.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.toml:4:11"), "{err}");
    assert!(err.contains("192.168.1.300"), "{err}");
}

/// Under UML, a hang and a kernel panic inside the guest each end as a clear
/// error within the timeout, and leave nothing behind.
#[test]
#[ignore = "needs root"]
fn uml_hang_and_panic_end_as_clear_errors() {
    require_root();
    if kernel() == "host" || lvsdr_harness::uml::find().is_err() {
        eprintln!("SKIPPED: no UML kernel here (the lab runs on the host kernel)");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let started = Instant::now();
    let out = lvsdr(&["kernel-exec", "--kernel", "uml", "--timeout", "2", "--", "sleep", "600"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("did not finish within 2 s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(host_state(), before, "after a hang");

    let out = lvsdr(&[
        "kernel-exec",
        "--kernel",
        "uml",
        "--timeout",
        "30",
        "--",
        "sh",
        "-c",
        "echo c > /proc/sysrq-trigger",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("kernel panic"), "{err}");
    assert_eq!(host_state(), before, "after a panic");
}

/// The guest is not root on the host (issue #27): code inside the UML guest
/// mounts the host's `/etc`, `/tmp` and `/` over hostfs, as a keepalived
/// notify script could, and tries to write to each and to read
/// `/etc/shadow`. The mounts succeed (the attack is real), every write and
/// the read fail, and the host holds none of the files afterwards.
#[test]
#[ignore = "needs root"]
fn the_uml_guest_cannot_write_the_hosts_files() {
    require_root();
    if kernel() == "host" || lvsdr_harness::uml::find().is_err() {
        eprintln!("SKIPPED: no UML kernel here (the lab runs on the host kernel)");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let marker = format!("lvsdr-escape-{}", std::process::id());
    let targets = [
        format!("/etc/{marker}"),
        format!("/tmp/{marker}"),
        format!("/var/tmp/{marker}"),
        format!("/{marker}"),
    ];
    for t in &targets {
        let _ = std::fs::remove_file(t);
    }
    let script = format!(
        "mkdir -p /run/h/etc /run/h/tmp /run/h/vartmp /run/h/root
         mount -t hostfs none /run/h/etc -o /etc && echo mounted-etc
         mount -t hostfs none /run/h/tmp -o /tmp && echo mounted-tmp
         mount -t hostfs none /run/h/vartmp -o /var/tmp && echo mounted-vartmp
         mount -t hostfs none /run/h/root -o / && echo mounted-root
         mount -o remount,rw /run/h/root
         for d in etc tmp vartmp root; do touch /run/h/$d/{marker} 2>/dev/null && echo wrote-$d; done
         cat /run/h/etc/shadow >/dev/null 2>&1 && echo read-shadow
         echo done"
    );
    let out = lvsdr(&["kernel-exec", "--kernel", "uml", "--timeout", "60", "--", "/bin/sh", "-c", &script]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("done"), "the guest ran the script: {text}\n{err}");
    for m in ["mounted-etc", "mounted-tmp", "mounted-root"] {
        assert!(text.contains(m), "hostfs itself works inside the guest ({m}): {text}");
    }
    assert!(!text.contains("wrote-"), "the guest wrote to the host: {text}");
    assert!(!text.contains("read-shadow"), "the guest read /etc/shadow: {text}");
    for t in &targets {
        assert!(!Path::new(t).exists(), "{t} exists on the host");
    }
    assert_eq!(host_state(), before);
}

/// The injected VRRP instance of issue #27 is refused before any lab starts,
/// with the code and the field, and nothing is run.
#[test]
#[ignore = "needs root"]
fn an_injected_vrrp_instance_is_refused_by_the_lab() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let out = lvsdr(&["lab", "fixtures/hostile/vrrp-instance-notify.toml", "--failover=kill"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("DR106") && err.contains("VRRP instance name"), "{err}");
    assert!(err.contains("vrrp-instance-notify.toml:"), "names the file and line: {err}");
    assert_eq!(host_state(), before);
}

/// A lab larger than its kernel holds is refused up front, naming the limit,
/// where it used to end in a UML out-of-memory panic (issue #27).
#[test]
#[ignore = "needs root"]
fn a_lab_too_large_for_its_kernel_is_refused_up_front() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let dir = TestDir::new("too-large");
    let mut toml = String::from(
        "[lan]\nsubnet = \"10.0.0.0/16\"\n[client]\naddress = \"10.0.0.100\"\n[director]\naddress = \"10.0.0.1\"\nvip = \"10.0.0.2\"\n[[service]]\nport = 80\nscheduler = \"rr\"\nreal_server = [",
    );
    let n = lvsdr_core::plan::MAX_LAB_REAL_SERVERS + 1;
    toml.push_str(&(0..n).map(|i| format!("{{ server = \"rs{i}\" }}")).collect::<Vec<_>>().join(", "));
    toml.push_str("]\n");
    for i in 0..n {
        toml.push_str(&format!(
            "[[real_server]]\nname = \"rs{i}\"\naddress = \"10.0.{}.{}\"\n",
            1 + i / 200,
            1 + i % 200
        ));
    }
    let file = dir.0.join("big.toml");
    std::fs::write(&file, toml).unwrap();
    let out = lvsdr(&["lab", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("MAX_LAB_REAL_SERVERS"), "{err}");
    let out = lvsdr(&["lab", "fixtures/seed-dr.toml", "--connections", "30000"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("MAX_CONNECTIONS_PER_SERVICE"), "{err}");
    assert_eq!(host_state(), before);
}

/// A production director (issue #28): 635 services on 123 VIPs, 19 real
/// servers, `wrr` and `mh`, 5,080 connections, proven in one lab; the human
/// report stays a page, the JSON holds every connection.
#[test]
#[ignore = "needs root"]
fn a_production_director_is_proven_and_its_report_stays_readable() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let k = kernel();
    let file = "fixtures/scale/production-director.dump";
    let out = lvsdr(&["lab", file, "--kernel", &k, "--format", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .map(|a| a.iter().filter(|c| c["pass"] == false && c["advisory"] != true).take(10).collect())
        .unwrap_or_default();
    assert_eq!(out.status.code(), Some(0), "failed checks (the first 10): {failed:#?}\n{err}");
    assert_eq!(report["connections"].as_array().map(Vec::len), Some(635 * 8));
    let out = lvsdr(&["lab", file, "--kernel", &k]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() < 120, "a page, not {} lines:\n{text}", text.lines().count());
    assert!(text.contains("5080 connection(s) to 635 service(s): 5080 answered"), "{text}");
    assert!(text.contains("connectivity") && text.contains("635 of 635 passed"), "{text}");
    assert_eq!(host_state(), before);
}

/// Every call of the IPVS client (add, edit, list, delete, flush, version)
/// against the lab's kernel.
#[test]
#[ignore = "needs root"]
fn ipvs_client_agrees_with_the_kernel() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let k = kernel();
    let out = lvsdr(&["kernel-exec", "--kernel", &k, "--", env!("CARGO_BIN_EXE_lvsdr"), "ipvs-check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("17 passed, 0 failed"), "{text}");
}

/// The lab's firewall marks reach an IPVS fwmark service on the lab's kernel,
/// and nothing they do not match does (nf_tables, or tc ingress under UML).
#[test]
#[ignore = "needs root"]
fn marks_reach_the_fwmark_service_and_nothing_else() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let k = kernel();
    let out = lvsdr(&["kernel-exec", "--kernel", &k, "--", env!("CARGO_BIN_EXE_lvsdr"), "marks-check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("the fwmark service's destination has 1 connection"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

/// The codes that refuse a hostile input: unreadable (DR000), a sysctl key
/// (DR105), a name (DR106), a sysctl value (DR108), a reader's limit (DR109).
const REFUSALS: [&str; 5] = ["DR000", "DR105", "DR106", "DR108", "DR109"];

/// Hostile topologies are refused before the lab touches the kernel: run as
/// root, `lvsdr lab` exits 2 naming the code, creates no namespace or link,
/// and writes nothing where the hostile keys point.
#[test]
#[ignore = "needs root"]
fn hostile_topologies_are_refused_with_nothing_written() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let targets = [Path::new("/tmp/lvsdr-pwned"), Path::new("/etc/lvsdr-pwned")];
    for t in targets {
        assert!(!t.exists(), "{} exists before the test", t.display());
    }
    let files = fixtures("fixtures/hostile", 13);
    for rel in files {
        for apply in ["netlink", "script"] {
            let k = kernel();
            let out = lvsdr(&["lab", &rel, "--kernel", &k, "--apply-with", apply]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{rel}: {err}");
            assert!(REFUSALS.iter().any(|c| err.contains(c)), "{rel}: names the code: {err}");
            assert_eq!(host_state(), before, "{rel}: nothing was built");
        }
    }
    for t in targets {
        assert!(!t.exists(), "{} was written", t.display());
    }
}

/// Every face refuses the hostile fixtures with their code: `lint` (exit 2,
/// in both output formats), `plan` and `render` (exit 2, nothing on stdout).
#[test]
fn hostile_topologies_are_refused_by_lint_plan_and_render() {
    let files = fixtures("fixtures/hostile", 13);
    for rel in files {
        let json = lvsdr(&["lint", &rel, "--format", "json"]);
        assert_eq!(json.status.code(), Some(2), "{rel}");
        let diags: Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let code = diags[0]["code"].as_str().unwrap_or_default().to_string();
        assert!(REFUSALS.contains(&code.as_str()), "{rel}: {diags}");
        assert!(diags[0]["line"].as_u64().unwrap_or(0) >= 1, "{rel}: a line");
        for args in [
            vec!["lint", rel.as_str()],
            vec!["plan", rel.as_str()],
            vec!["render", rel.as_str(), "--artifact", "director"],
            vec!["render", rel.as_str(), "--artifact", "real-server"],
        ] {
            let out = lvsdr(&args);
            let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
            assert!(all.contains(&code), "{args:?} names {code}: {all}");
            if args[0] != "lint" {
                assert!(out.stdout.is_empty(), "{args:?} printed nothing to run: {all}");
            }
        }
    }
}

/// Every forwarding method with its own proofs, in one boot (issue #28): LVS-TUN
/// (the packets arrive IP-in-IP on each real server's tunl0, replies bypass the
/// director), LVS-NAT (replies come back through the director, a port mapped),
/// and DR, TUN and NAT on one director.
#[test]
#[ignore = "needs root"]
fn tunnel_nat_and_mixed_setups_prove_their_own_methods() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let files: Vec<String> = ["fixtures/tunnel.toml", "fixtures/nat.toml", "fixtures/mixed-methods.toml"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (code, reports, stderr) = labs(&files, &[]);
    for (file, r) in files.iter().zip(&reports) {
        for c in r["checks"].as_array().unwrap().iter().filter(|c| c["advisory"] != true) {
            assert_eq!(c["pass"], true, "{file}: {c}\n{stderr}");
        }
        assert_eq!(check(r, "source-ip tcp/80")["seen"], "192.168.1.100", "{file}");
    }
    assert_eq!(code, 0, "{stderr}");
    let names = |r: &Value| -> Vec<String> {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (tun, nat, mixed) = (&reports[0], &reports[1], &reports[2]);
    assert_eq!(tun["methods"], serde_json::json!(["TUN"]));
    for rs in ["rs1", "rs2"] {
        assert!(
            check(tun, &format!("tunnel {rs}"))["seen"]
                .as_str()
                .unwrap()
                .contains("tunl0 received"),
            "{tun:#}"
        );
    }
    assert!(check(tun, "reply-bypass")["seen"].as_str().unwrap().contains("from rs1"));
    assert_eq!(nat["methods"], serde_json::json!(["NAT"]));
    assert!(!names(nat).contains(&"reply-bypass".to_string()), "NAT has no bypass to prove");
    assert!(check(nat, "reply-via-director")["seen"].as_str().unwrap().contains("from director"));
    assert_eq!(nat["split"]["tcp/80"]["matches"], true, "rs2 answers on its mapped port 8080");
    assert_eq!(mixed["methods"], serde_json::json!(["DR", "TUN", "NAT"]));
    for name in ["reply-bypass", "reply-via-director", "tunnel rs3", "split tcp/9000"] {
        assert!(names(mixed).contains(&name.to_string()), "{name}: {:?}", names(mixed));
    }
}

/// Topology v2 on the kernel, in one boot: IPv6 DR, three VIPs of both
/// families, real servers in a private subnet behind a router with a public
/// VIP, an IPv6 keepalived.conf, a 12-service dump on three VIPs, and fwmark
/// services with their nft and iptables marking rules.
#[test]
#[ignore = "needs root"]
fn v2_topologies_prove_dr_on_the_kernel() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let files: Vec<String> = [
        "fixtures/ipv6-dr.toml",
        "fixtures/dual-stack.toml",
        "fixtures/routed-dr.toml",
        "fixtures/ipv6-keepalived.conf",
        "fixtures/multi-vip.dump",
        "fixtures/fwmark-dr.toml",
        "fixtures/fwmark-iptables.sh",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, reports, stderr) = labs(&files, &["--clients", "6", "--connections", "12"]);
    for (file, r) in files.iter().zip(&reports) {
        for c in r["checks"].as_array().unwrap().iter().filter(|c| c["advisory"] != true) {
            assert_eq!(c["pass"], true, "{file}: {c}\n{stderr}");
        }
    }
    assert_eq!(code, 0, "{stderr}");
    // IPv6: the real servers saw the client's IPv6 address, and the neighbour entry is the director's.
    let v6 = &reports[0];
    assert_eq!(check(v6, "source-ip tcp/80")["seen"].as_str().unwrap().split(", ").count(), 6);
    assert!(check(v6, "source-ip tcp/80")["seen"].as_str().unwrap().starts_with("2001:db8:1::"));
    assert_eq!(check(v6, "arp-owner")["pass"], true);
    // Several VIPs: one neighbour check each, and services named by VIP.
    let dual = &reports[1];
    for vip in ["192.168.1.192", "192.168.1.193", "2001:db8:1::192"] {
        assert_eq!(check(dual, &format!("arp-owner {vip}"))["pass"], true, "{vip}");
    }
    assert_eq!(dual["split"]["tcp [2001:db8:1::192]:80"]["matches"], true, "mh over IPv6, in order");
    // Behind a router: the router holds the director's MAC for the public VIP, and
    // every reply reaching it on the LAN came from a real server.
    let routed = &reports[2];
    assert_eq!(
        check(routed, "source-ip tcp/80")["seen"],
        "198.51.100.100, 198.51.100.101, 198.51.100.102, 198.51.100.103, 198.51.100.104, 198.51.100.105"
    );
    assert!(check(routed, "reply-bypass")["seen"].as_str().unwrap().contains("from rs1"));
    // The dump's 12 services on 3 VIPs: every TCP service with a port was probed.
    assert!(reports[4]["split"].as_object().unwrap().len() >= 9, "{}", reports[4]["split"]);
    // fwmark: the marking rule (nf_tables, or a tc ingress filter where the kernel's
    // nf_tables has no inet family) sends port 80 of the VIP to the fwmark service.
    for r in &reports[5..] {
        assert_eq!(check(r, "connectivity fwmark/1")["pass"], true, "{r:#}");
        assert_eq!(r["split"]["fwmark/1"]["matches"], true, "{r:#}");
    }
}

/// A lab script in the shape of the kernel selftest `ipvs.sh` (DR case): one
/// script sets up a client, a director and a real server, each in its own
/// namespace with `ip netns exec NS …` and `ip -n NS …`. It imports as the
/// hosts it builds, and that topology proves DR on the kernel: the real
/// server saw the script's client address, replies bypassed the director,
/// and the client's neighbour entry for the VIP is the director's.
#[test]
#[ignore = "needs root"]
fn a_namespace_script_like_the_kernel_selftest_proves_dr() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let (code, r, stderr) = lab("fixtures/real/script-netns-hosts.sh", &[]);
    for c in r["checks"].as_array().unwrap().iter().filter(|c| c["advisory"] != true) {
        assert_eq!(c["pass"], true, "{c}\n{stderr}");
    }
    assert_eq!(code, 0, "{r:#}\n{stderr}");
    for name in [
        "connectivity tcp/80",
        "source-ip tcp/80",
        "reply-bypass",
        "arp-owner",
        "split tcp/80",
    ] {
        assert_eq!(check(&r, name)["pass"], true, "{name}: {}", check(&r, name));
    }
    let conns = r["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 8);
    for c in conns {
        assert_eq!(c["source_seen"], "10.0.0.50", "the script's client address: {c}");
    }
    assert_eq!(host_state(), before, "nothing left behind");
}

/// Every `fixtures/real/` setup that imports cleanly, handed to the guest in
/// one boot: the guest reads each one (a topology it cannot read ends the
/// run with exit 2, "does not read", before any lab), and runs a lab for it,
/// whatever that lab then finds. What the guest reads is what the host read
/// (`tests/guest.rs` checks that without a kernel, for folders too).
#[test]
#[ignore = "needs root"]
fn the_guest_reads_every_imported_real_world_setup() {
    require_root();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let files = clean_real_fixtures();
    assert!(files.len() >= 20, "{files:?}");
    let started = Instant::now();
    let r = ran_each_uml(&files);
    assert!(
        r.code == 0 || r.code == 1,
        "exit {} (2: a topology the guest does not read; 3: a lab that could not run)\n{}",
        r.code,
        r.stderr
    );
    assert!(!r.stderr.contains("does not read"), "{}", r.stderr);
    let reports = r.json.as_array().unwrap();
    assert_eq!(reports.len(), files.len(), "one report per setup");
    eprintln!("{} setups in one boot: {:?}", files.len(), started.elapsed());
    assert_eq!(host_state(), before, "nothing left behind");
}

/// The `fixtures/real/` inputs that import with no error, as paths relative to
/// the repository (a folder is one setup of several files, which `--each`
/// cannot take: those are left out).
fn clean_real_fixtures() -> Vec<String> {
    fixtures("fixtures/real", 40)
        .into_iter()
        .filter(|f| !f.ends_with(".expect") && !root().join(f).is_dir())
        .filter(|f| lvsdr(&["import", f]).status.code() == Some(0))
        .collect()
}

/// `lvsdr lab --each FILES` under User-Mode Linux, as JSON.
fn ran_each_uml(files: &[String]) -> Ran {
    let (out, pid) = lvsdr_with_pid(
        &[
            &["lab", "--each", "--format", "json", "--kernel", "uml", "--connections", "2"][..],
            &files.iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Ran {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
        pid,
    }
}
