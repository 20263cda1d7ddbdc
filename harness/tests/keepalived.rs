//! Lab tests of keepalived on real kernel IPVS: its health checkers and the
//! active/backup pair's VRRP failover, with the configurations lvsdr generates
//! and the files users keep. Like `lab.rs`, they need root and are
//! `#[ignore = "needs root"]`.
//!
//! Most of their time is keepalived's own timers (VRRP's 3.6 s master-down
//! interval with `advert_int 1`, `delay_loop 2`, `connect_timeout 3`), not
//! work, so they run side by side: each lab has its own namespaces (or its own
//! UML kernel), and each test looks only for what its own `lvsdr` process
//! left behind (its namespaces, job folders and processes are named after its
//! process id), with the host's links, which no lab touches. Cargo runs this
//! binary after `lab.rs`, whose tests look at the whole host.

mod common;

use common::*;
use serde_json::Value;

/// The generated artifacts, run with the real tools, leave exactly the state
/// the topology describes, and DR works through them.
#[test]
#[ignore = "needs root"]
fn generated_artifacts_prove_themselves_on_the_kernel() {
    require_root();
    for mode in ["script", "restore", "keepalived"] {
        let (code, r, stderr) = lab("fixtures/seed-dr.toml", &["--apply-with", mode]);
        assert_eq!(r["applied_with"], mode);
        // The seed's rr ignores its 3:1 weights: that check only warns (DR008).
        for c in r["checks"].as_array().unwrap().iter().filter(|c| c["advisory"] != true) {
            assert_eq!(c["pass"], true, "{mode}: {c}\n{stderr}");
        }
        assert!(
            r["checks"].as_array().unwrap().iter().any(|c| c["name"] == "state ipvs"),
            "{mode}: the IPVS table is read back"
        );
        assert_eq!(code, 0, "{mode}");
    }
}

/// keepalived's SMTP_CHECK takes the real server without a mail server out of
/// the port-25 service, and port 25 works again through the other one.
#[test]
#[ignore = "needs root"]
fn keepalived_health_check_removes_the_server_without_port_25() {
    require_root();
    let (code, r, stderr) = lab("fixtures/faults/no-listener-25.toml", &["--apply-with", "keepalived"]);
    assert_eq!(code, 1, "the table differs from the topology: {stderr}");
    let state = check(&r, "state ipvs");
    assert_eq!(state["pass"], false);
    assert!(
        state["seen"]
            .as_str()
            .unwrap()
            .contains("service tcp 192.168.1.192:25: real server rs2 (192.168.1.189) is missing (DR203)"),
        "{state}"
    );
    assert!(!state["seen"].as_str().unwrap().contains(":80"), "port 80 keeps both: {state}");
    let port25 = check(&r, "connectivity tcp/25");
    assert_eq!(port25["pass"], true, "port 25 works through rs1: {port25}\n{stderr}");
    for c in r["connections"].as_array().unwrap().iter().filter(|c| c["service"] == "tcp/25") {
        assert_eq!(c["real_server"], "rs1", "{c}");
    }
}

/// An IPv6 VIP added to the director as a preferred address becomes the source
/// of keepalived's health checks; the real servers answer it on their own lo,
/// and keepalived takes every real server out (DR031).
#[test]
#[ignore = "needs root"]
fn a_preferred_ipv6_vip_breaks_keepalived_health_checks() {
    require_root();
    let lint = lvsdr(&["lint", "fixtures/rules/DR031-fail.toml", "--format", "json"]);
    assert!(String::from_utf8_lossy(&lint.stdout).contains("DR031"));
    let (code, bad, _) = lab("fixtures/rules/DR031-fail.toml", &["--apply-with", "keepalived"]);
    assert_eq!(code, 1);
    assert_eq!(check(&bad, "connectivity tcp/80")["pass"], false);
    let (_, good, stderr) = lab("fixtures/rules/DR031-pass.toml", &["--apply-with", "keepalived"]);
    // keepalived adds the real servers as their checks pass, in no set order, so a
    // hashing scheduler's split cannot be predicted there; everything else must pass.
    for c in good["checks"].as_array().unwrap().iter().filter(|c| c["kind"] != "split") {
        assert_eq!(c["pass"], true, "{c}\n{stderr}");
    }
}

/// The takeover time in a `failover-vip` check's `seen`: `… (lb2) after 3416 ms`.
fn takeover_ms(report: &Value) -> u64 {
    let seen = check(report, "failover-vip")["seen"].as_str().unwrap().to_string();
    seen.rsplit_once(" after ")
        .and_then(|(_, t)| t.strip_suffix(" ms"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no takeover time in `{seen}`"))
}

/// keepalived in both directors of a pair, kill -9 of the master's: with the
/// sync daemon the held connections carry on through the backup, to the same
/// real servers; without it they are reset, and the report names DR033. One
/// UML boot for both labs.
#[test]
#[ignore = "needs root"]
fn failover_kill_keeps_synced_connections_and_resets_unsynced_ones() {
    require_root();
    let links = host_links();
    let files = ["fixtures/pair-dr.toml".to_string(), "fixtures/pair-nosync.toml".to_string()];
    let ran = labs_ran(&files, &["--failover"]);
    let (code, reports, stderr) = (ran.code, ran.json.as_array().unwrap(), &ran.stderr);
    assert_eq!(code, 1, "the pair without sync fails: {stderr}");
    let (synced, unsynced) = (&reports[0], &reports[1]);

    assert_eq!(synced["pass"], true, "{synced:#}\n{stderr}");
    assert_eq!(synced["failover"], "kill");
    for name in [
        "arp-owner",
        "failover-vip",
        "failover-established",
        "failover-new",
        "connectivity tcp/80 after failover",
        "connectivity tcp/25 after failover",
        "source-ip tcp/80 after failover",
        "source-ip tcp/25 after failover",
        "reply-bypass after failover",
        "arp-owner after failover",
    ] {
        assert_eq!(check(synced, name)["pass"], true, "{name}: {}", check(synced, name));
    }
    assert!(check(synced, "failover-vip")["seen"].as_str().unwrap().contains("(lb2)"));
    let ms = takeover_ms(synced);
    assert!((500..15_000).contains(&ms), "takeover {ms} ms");
    assert_eq!(synced["timings_ms"]["takeover"], ms);
    eprintln!("pair-dr: takeover after kill -9 in {ms} ms");

    let established = check(unsynced, "failover-established");
    assert_eq!(established["pass"], false, "{established}");
    assert!(established["seen"].as_str().unwrap().contains("reset"), "{established}");
    assert!(
        established["explained_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("DR033")),
        "names DR033: {established}"
    );
    assert_eq!(established["kind"], "failover");
    for name in [
        "failover-vip",
        "failover-new",
        "arp-owner after failover",
        "reply-bypass after failover",
    ] {
        assert_eq!(check(unsynced, name)["pass"], true, "{name}: {}", check(unsynced, name));
    }
    assert_left_nothing(ran.pid, &links);
}

/// The master's LAN link goes down instead: its keepalived lives on, cut off,
/// and the backup still takes the VIP.
#[test]
#[ignore = "needs root"]
fn failover_link_down_moves_the_vip_to_the_backup() {
    require_root();
    let links = host_links();
    let ran = lab_ran("fixtures/pair-dr.toml", &["--failover=link", "--connections", "4"]);
    let (code, r, stderr) = (ran.code, &ran.json, &ran.stderr);
    assert_eq!(code, 0, "{r:#}\n{stderr}");
    assert_eq!(r["failover"], "link");
    for name in ["failover-vip", "failover-established", "failover-new", "arp-owner after failover"] {
        assert_eq!(check(r, name)["pass"], true, "{name}: {}", check(r, name));
    }
    let ms = takeover_ms(r);
    assert!((500..15_000).contains(&ms), "takeover {ms} ms");
    eprintln!("pair-dr: takeover after link down in {ms} ms");
    assert_left_nothing(ran.pid, &links);
}

/// The pair as users keep it: two keepalived.conf files and the real servers'
/// script, read as one setup, lint without an error and fail over on the kernel.
#[test]
#[ignore = "needs root"]
fn a_keepalived_pair_and_a_real_server_script_fail_over() {
    require_root();
    let files = [
        "fixtures/real/keepalived-pair/lb1.conf",
        "fixtures/real/keepalived-pair/lb2.conf",
        "fixtures/real/keepalived-pair/rs.sh",
    ];
    let mut args = vec!["lint"];
    args.extend(files);
    let lint = lvsdr(&args);
    assert_eq!(lint.status.code(), Some(0), "{}", String::from_utf8_lossy(&lint.stdout));
    let k = kernel();
    // keepalived adds the real servers in the order their checks pass, so wrr's counts
    // are the same whatever the order only over whole cycles (weights 2 and 1: 3).
    let mut args = vec!["lab", "--format", "json", "--kernel", &k, "--failover", "--connections", "6"];
    args.extend(files);
    let out = lvsdr(&args);
    let r: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    for name in ["failover-vip", "failover-established", "failover-new"] {
        assert_eq!(check(&r, name)["pass"], true, "{name}: {}", check(&r, name));
    }
    assert_eq!(out.status.code(), Some(0), "{r:#}");
}

/// `--failover` needs a VRRP pair: a single director is refused before anything runs.
#[test]
fn failover_without_a_vrrp_pair_is_a_clear_error() {
    let out = lvsdr(&["lab", "fixtures/seed-dr.toml", "--failover"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--failover needs an active/backup pair"), "{stderr}");
    assert!(stderr.contains("pair-dr.toml"), "{stderr}");
}

/// A sub-second advert (`advert_ms = 250`), which `lvsdr render` writes as
/// VRRPv3: the backup takes over after VRRP's master-down interval for it,
/// 3 × 250 ms plus a skew of (256 − 100) / 256 × 250 ms, 0.9 s after the last
/// advert (so 0.65 to 0.9 s after the kill), where `advert_int 1` takes about 3.6 s.
#[test]
#[ignore = "needs root"]
fn a_sub_second_advert_fails_over_in_under_a_second_and_a_half() {
    require_root();
    let links = host_links();
    let dir = TestDir::new("advert");
    let file = dir.0.join("pair-fast.toml");
    let pair = std::fs::read_to_string(root().join("fixtures/pair-dr.toml")).unwrap();
    std::fs::write(&file, pair.replace("advert_int = 1 }", "advert_ms = 250 }")).unwrap();
    let ran = lab_ran(file.to_str().unwrap(), &["--failover", "--connections", "4"]);
    let r = &ran.json;
    assert_eq!(ran.code, 0, "{r:#}\n{}", ran.stderr);
    for name in ["failover-vip", "failover-established", "failover-new"] {
        assert_eq!(check(r, name)["pass"], true, "{name}: {}", check(r, name));
    }
    let ms = takeover_ms(r);
    assert!((500..1_500).contains(&ms), "takeover {ms} ms");
    eprintln!("advert_ms 250: takeover after kill -9 in {ms} ms");
    assert_left_nothing(ran.pid, &links);
}
