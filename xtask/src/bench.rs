//! `cargo xtask bench`: the core's criterion benchmarks and the lab's
//! lifecycle and scale, as ratios measured in one run.

use crate::commands::{cargo, privileged, root, run, step};
use crate::install::ensure_uml;
use crate::Result;
use std::process::Stdio;
use std::time::Instant;

pub(crate) fn bench(args: &[String]) -> Result {
    let quick = args.iter().any(|a| a == "--quick");
    // `--lab-only`: the lab's figures without the core's criterion benchmarks.
    if !args.iter().any(|a| a == "--lab-only") {
        step("core benchmarks (criterion)");
        let mut c = cargo();
        c.args(["bench", "-p", "lvsdr-core", "--bench", "core", "--"]);
        if quick {
            c.arg("--test");
        }
        run(&mut c)?;
    }
    let bin = lab_binary(quick)?;
    bench_lab(&bin, if quick { 1 } else { 5 })?;
    if quick {
        return Ok(());
    }
    bench_curves(&bin)
}

/// The lvsdr to time: built for release, as users run it, or the debug build
/// the tests already made, for `--quick` (CI's smoke run), to save a build.
fn lab_binary(quick: bool) -> Result<String> {
    ensure_uml(false)?;
    let profile = if quick { "debug" } else { "release" };
    step(&format!("building lvsdr ({profile}) for the lab benchmarks"));
    let mut c = cargo();
    c.args(["build", "--quiet", "--bin", "lvsdr"]);
    if !quick {
        c.arg("--release");
    }
    run(&mut c)?;
    Ok(root().join("target").join(profile).join("lvsdr").display().to_string())
}

/// The harness's `kernel_floor` example, built in the profile of `bin`: what
/// the kernel alone costs for the namespaces, links and connections a lab
/// cannot skip.
fn kernel_floor_binary(bin: &str) -> Result<String> {
    let release = bin.contains("/release/");
    let mut c = cargo();
    c.args(["build", "--quiet", "-p", "lvsdr-harness", "--example", "kernel_floor"]);
    if release {
        c.arg("--release");
    }
    run(&mut c)?;
    let profile = if release { "release" } else { "debug" };
    Ok(root()
        .join("target")
        .join(profile)
        .join("examples/kernel_floor")
        .display()
        .to_string())
}

/// Lab time against the number of real servers and of connections: one run
/// each, the lab's own timings (inside the kernel) and the whole run.
fn bench_curves(bin: &str) -> Result {
    step("lab curves: real servers and connections");
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    println!("lab curves (one run each; build, probes and total inside the kernel; wall with the boot):");
    println!("  {:<40} {:>7} {:>7} {:>7} {:>7}", "run", "build", "probes", "total", "wall");
    let runs: Vec<(usize, usize)> = [2, 8, 32, 64]
        .into_iter()
        .map(|rs| (rs, 4))
        .chain([4, 63, 250].into_iter().map(|per_service| (8, per_service)))
        .collect();
    for (i, (servers, per_service)) in runs.into_iter().enumerate() {
        let file = dir.join(format!("curve-{servers}x4.toml"));
        std::fs::write(&file, scale_topology(servers, 4)).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let out = privileged(bin)
            .args([
                "lab",
                &file.display().to_string(),
                "--connections",
                &per_service.to_string(),
                "--format",
                "json",
            ])
            .current_dir(root())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        let wall = started.elapsed().as_millis();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("curve run {i}: no report: {e}"))?;
        let t = |k: &str| report["timings_ms"][k].as_u64().unwrap_or(0);
        let label = format!("{servers} real servers, {} connections", 4 * per_service);
        println!(
            "  {label:<40} {:>5} ms {:>4} ms {:>4} ms {:>5} ms",
            t("build"),
            t("probes"),
            t("total"),
            wall
        );
    }
    Ok(())
}

pub(crate) fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// The seed lab's lifecycle against `xtask/bench/baseline-lab.sh`, which
/// builds the same lab with ip, ipvsadm and sysctl in the same kernel.
pub(crate) fn bench_lab(bin: &str, runs: usize) -> Result {
    step(&format!("lab lifecycle: lvsdr against the shell baseline, {runs} run(s) each"));
    let mut ours: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
    let mut wall = Vec::new();
    let mut baseline = Vec::new();
    let mut baseline_wall = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let out = privileged(bin)
            .args(["lab", "fixtures/seed-dr.toml", "--format", "json"])
            .current_dir(root())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        wall.push(started.elapsed().as_millis() as u64);
        if !out.status.success() {
            return Err(format!(
                "the seed lab failed during the benchmark:\n{}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("the seed lab's report is not JSON: {e}"))?;
        for key in ["build", "probes", "stats_poll", "verify", "teardown", "total"] {
            if let Some(v) = report["timings_ms"][key].as_u64() {
                ours.entry(key).or_default().push(v);
            }
        }
        let started = Instant::now();
        let script = root().join("xtask/bench/baseline-lab.sh");
        let out = privileged(bin)
            .arg("kernel-exec")
            .arg("--")
            .arg(&script)
            .current_dir(root())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        baseline_wall.push(started.elapsed().as_millis() as u64);
        let text = String::from_utf8_lossy(&out.stdout);
        let ms = text
            .lines()
            .find_map(|l| l.strip_prefix("baseline_build_ms="))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("the baseline script failed: {text}"))?;
        baseline.push(ms);
    }
    let ours_build = median(ours.get("build").cloned().unwrap_or_default());
    let base = median(baseline);
    println!("lab lifecycle (median of {runs}):");
    for (k, v) in &ours {
        println!("  lvsdr {k:<11} {:>6} ms", median(v.clone()));
    }
    let seed_wall = median(wall);
    println!("  lvsdr whole run (boot, build, verify, teardown): {seed_wall:>6} ms wall");
    println!(
        "  shell baseline build+apply:                      {base:>6} ms ({} ms wall with boot)",
        median(baseline_wall)
    );
    println!("  build+apply speed-up: {:.1}x", base as f64 / ours_build.max(1) as f64);
    bench_scale(bin, runs)?;
    bench_audit(bin, runs)
}

/// `lvsdr audit` of a director of 635 services on 123 VIPs and 3,000
/// real-server entries, programmed with `ipvsadm -R` in a namespace of the
/// lab's kernel, against `ipvsadm -S -n` there (issue #29's target: under
/// 100 ms). The medians of `runs` rounds, each timing both.
fn bench_audit(bin: &str, runs: usize) -> Result {
    step("audit of a production-sized director against ipvsadm -S -n");
    let script = root().join("xtask/bench/audit-director.sh").display().to_string();
    let dump = root().join("fixtures/scale/audit-director.dump").display().to_string();
    let out = privileged(bin)
        .args(["kernel-exec", "--", "bash", &script, bin, &dump, &runs.to_string()])
        .current_dir(root())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.contains("@@end production 0") {
        return Err(format!(
            "the audited director does not match its dump (the audit found drift): {text}"
        ));
    }
    let times: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("@@time "))
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
        .collect();
    if times.is_empty() {
        return Err(format!("the audit benchmark did not run: {text}"));
    }
    let audit = median(times.iter().map(|t| t.0).collect());
    let ipvsadm = median(times.iter().map(|t| t.1).collect());
    let met = if audit < 100 { "met" } else { "NOT met" };
    println!(
        "audit (median of {}, in the lab's kernel): 635 services, 3,000 real-server entries: lvsdr audit {audit} ms, ipvsadm -S -n {ipvsadm} ms ({:.2}x; issue #29's target < 100 ms: {met})",
        times.len(),
        audit as f64 / ipvsadm.max(1) as f64
    );
    Ok(())
}

/// A topology of `servers` real servers behind `services` TCP services (port
/// 25 speaks SMTP, the others HTTP), all weighted alike, for the scale runs.
pub(crate) fn scale_topology(servers: usize, services: usize) -> String {
    let mut t = format!(
        "name = \"scale-{servers}x{services}\"\n[lan]\nsubnet = \"192.168.0.0/16\"\n[client]\naddress = \"192.168.0.100\"\n\
         [director]\naddress = \"192.168.0.2\"\nvip = \"192.168.0.250\"\n\
         sysctl = {{ \"net.ipv4.conf.all.send_redirects\" = 0, \"net.ipv4.conf.eth0.send_redirects\" = 0 }}\n"
    );
    for port in [80, 25, 8080, 8081].into_iter().take(services) {
        t.push_str(&format!("[[service]]\nport = {port}\nscheduler = \"wrr\"\nreal_server = ["));
        t.push_str(
            &(1..=servers)
                .map(|i| format!("{{ server = \"rs{i}\" }}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        t.push_str("]\n");
    }
    for i in 1..=servers {
        t.push_str(&format!(
            "[[real_server]]\nname = \"rs{i}\"\naddress = \"192.168.1.{i}\"\nvip_on_lo = 32\n\
             sysctl = {{ \"net.ipv4.conf.all.arp_ignore\" = 1, \"net.ipv4.conf.all.arp_announce\" = 2 }}\n"
        ));
    }
    t
}

/// The kernel floor (boot, modules, halt), the seed lab and two scale runs,
/// in interleaved rounds, with the ratios issue #16 sets targets for, and each
/// lab's time inside the kernel (its own `total`, without the boot).
pub(crate) fn bench_scale(bin: &str, runs: usize) -> Result {
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // Wall time of a run and, for a lab, its time inside the kernel, its build and its probes.
    let timed = |args: &[&str]| -> Result<[u64; 4]> {
        let started = Instant::now();
        let out = privileged(bin)
            .args(args)
            .current_dir(root())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        let wall = started.elapsed().as_millis() as u64;
        if !out.status.success() {
            return Err(format!(
                "`lvsdr {}` failed:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        let report = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default();
        let t = |key: &str| report["timings_ms"][key].as_u64().unwrap_or(0);
        Ok([wall, t("total"), t("build"), t("probes")])
    };
    let medians = |v: Vec<[u64; 4]>| -> [u64; 4] { std::array::from_fn(|k| median(v.iter().map(|r| r[k]).collect())) };
    // Rounds, each running all four once, so that a drift in the machine's speed
    // (it shares its cores) moves every run alike and the ratios hold still.
    // (label, lvsdr's arguments, issue #16's target, [wall, inside, build, probes] of each round)
    type Run<'a> = (&'a str, Vec<&'a str>, Option<f64>, Vec<[u64; 4]>);
    let mut runs_of: Vec<Run> = Vec::new();
    let mut files = Vec::new();
    for (servers, services) in [(8, 4), (64, 4)] {
        let file = dir.join(format!("scale-{servers}x{services}.toml"));
        std::fs::write(&file, scale_topology(servers, services)).map_err(|e| e.to_string())?;
        files.push(file.display().to_string());
    }
    runs_of.push((
        "kernel floor (boot, modules, halt)",
        vec!["kernel-exec", "--", "true"],
        None,
        vec![],
    ));
    runs_of.push((
        "seed lab, whole run",
        vec!["lab", "fixtures/seed-dr.toml", "--format", "json"],
        Some(1.45),
        vec![],
    ));
    runs_of.push((
        "1,000 connections (8 real servers, 4 services x 250)",
        vec!["lab", &files[0], "--connections", "250", "--format", "json"],
        Some(1.6),
        vec![],
    ));
    runs_of.push((
        "64 real servers x 4 services",
        vec!["lab", &files[1], "--connections", "8", "--format", "json"],
        Some(1.4),
        vec![],
    ));
    runs_of.push((
        "production director (635 services, 123 VIPs, 19 RS)",
        vec!["lab", "fixtures/scale/production-director.dump", "--format", "json"],
        Some(15.0),
        vec![],
    ));
    // And, in the same rounds, the kernel's own cost for what the two scale runs
    // cannot skip: 66 namespaces with a veth pair each (64 real servers, the
    // director, the client) and 1,000 bare TCP connections (over loopback, across
    // the bridge, and across it batched through io_uring).
    let floor_bin = kernel_floor_binary(bin)?;
    let mut floors: Vec<serde_json::Value> = Vec::new();
    for _ in 0..runs {
        for (_, args, _, times) in runs_of.iter_mut() {
            times.push(timed(args)?);
        }
        let out = privileged(bin)
            .args(["kernel-exec", "--", &floor_bin, "66", "1000"])
            .current_dir(root())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        floors.push(
            serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("kernel_floor: no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))?,
        );
    }
    let floor_of = |key: &str| median(floors.iter().map(|f| f[key].as_f64().unwrap_or(0.0).round() as u64).collect());
    let (namespaces, links) = (floor_of("namespaces_ms"), floor_of("links_ms"));
    let named = floor_of("named_namespaces_ms");
    let (connections, bridged) = (floor_of("connections_ms"), floor_of("bridged_ms"));
    let dr = floors
        .iter()
        .all(|f| f["dr_ms"].is_number() && f["dr_captured_ms"].is_number())
        .then(|| (floor_of("dr_ms"), floor_of("dr_captured_ms")));
    let batched = if floors.iter().all(|f| f["bridged_io_uring_ms"].is_number()) {
        format!("{} ms", floor_of("bridged_io_uring_ms"))
    } else {
        "- (no io_uring)".to_string()
    };
    let rows: Vec<(&str, [u64; 4], Option<f64>)> = runs_of
        .into_iter()
        .map(|(label, _, target, times)| (label, medians(times), target))
        .collect();
    let floor = rows[0].1[0];
    let [seed_wall, seed_total, ..] = rows[1].1;
    let (thousand, servers64) = (rows[2].1, rows[3].1);
    println!("lab scale (median of {runs} interleaved rounds; wall with the UML boot when the host has no IPVS; inside = the lab's own total in the kernel):");
    println!(
        "  {:<54} {:>8} {:>8}   ratio of the walls, issue #16's target",
        "run", "wall", "inside"
    );
    for (label, [ms, inside, ..], target) in rows {
        let (ratio, base) = if label.starts_with("seed") {
            (ms as f64 / floor.max(1) as f64, "the kernel floor")
        } else {
            (ms as f64 / seed_wall.max(1) as f64, "the seed lab")
        };
        let verdict = match target {
            Some(t) if ratio <= t => format!("  {ratio:.2}x {base} (target <= {t}x: met)"),
            Some(t) => format!("  {ratio:.2}x {base} (target <= {t}x: NOT met)"),
            None => String::new(),
        };
        let inside = if inside > 0 { format!("{inside} ms") } else { "-".into() };
        println!("  {label:<54} {ms:>5} ms {inside:>8}{verdict}");
    }
    let met = if seed_total <= 300 { "met" } else { "NOT met" };
    println!("  the seed lab inside the kernel: {seed_total} ms (target <= 300 ms: {met})");
    // A lab's run outside its own work: boot, modules, halt (none on a host with IPVS).
    let around = seed_wall.saturating_sub(seed_total);
    let left = |target: f64| (target * seed_wall as f64) as i64 - around as i64;
    println!("the kernel's own floor (median of {runs}, in the lab's kernel: `lvsdr kernel-exec -- kernel_floor 66 1000`):");
    let dr_text = dr.map_or("- (no IPVS)".to_string(), |(d, c)| {
        format!("{d} ms, and with every frame reaching the client queued on a packet socket as the reply proof needs {c} ms")
    });
    println!(
        "  66 namespaces {namespaces} ms ({named} ms named, as `ip netns add` makes them), a veth pair on a bridge into each {links} ms; 1,000 TCP connections (connect, accept, close) over loopback {connections} ms, across the bridge {bridged} ms, the same batched through io_uring {batched}; through an IPVS director by DR with a byte each way (a probe's work, nothing of lvsdr's) {dr_text}"
    );
    println!(
        "  64 real servers: a wall of 1.4x the seed lab leaves {} ms inside the kernel for the whole lab; its 66 namespaces and links alone take {} ms",
        left(1.4),
        namespaces + links
    );
    println!(
        "  1,000 connections: a wall of 1.6x the seed lab leaves {} ms inside the kernel for the whole lab; 1,000 bare connections across the bridge alone take {bridged} ms",
        left(1.6)
    );
    // The same runs per unit, against the floor: what a target could be stated in.
    let per = |ms: u64, n: u64| ms as f64 / n as f64;
    let verdict = |ratio: f64, target: f64| if ratio <= target { "met" } else { "NOT met" };
    let per_connection = thousand[3] as f64 / bridged.max(1) as f64;
    println!(
        "  per connection: the probes {:.3} ms, the floor across the bridge {:.3} ms ({per_connection:.1}x; issue #28's target <= 2.0x: {})",
        per(thousand[3], 1000),
        per(bridged, 1000),
        verdict(per_connection, 2.0)
    );
    if let Some((_, same)) = dr {
        println!(
            "  per connection against the same work (through the director, a byte each way, the frames captured): the kernel's floor {:.3} ms, the probes {:.1}x it; that floor alone is {:.1}x the bridged one, so a target of 2.0x the bridged floor leaves lvsdr {:.0}% over the kernel's own cost",
            per(same, 1000),
            thousand[3] as f64 / same.max(1) as f64,
            same as f64 / bridged.max(1) as f64,
            (2.0 * bridged as f64 / same.max(1) as f64 - 1.0) * 100.0
        );
    }
    let per_host = servers64[2] as f64 / (namespaces + links).max(1) as f64;
    println!(
        "  per host of the 64-server lab: the build {:.2} ms, the floor's namespace and link {:.2} ms ({per_host:.1}x; issue #28's target <= 1.5x: {}); with named namespaces {:.2} ms ({:.1}x)",
        per(servers64[2], 66),
        per(namespaces + links, 66),
        verdict(per_host, 1.5),
        per(named + links, 66),
        servers64[2] as f64 / (named + links).max(1) as f64
    );
    Ok(())
}
