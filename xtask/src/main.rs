//! Project tasks: `cargo xtask lab | ci | setup | setup-uml | bench`.
//!
//! Each task installs what it needs when it is missing, so it works on a
//! fresh Debian/Ubuntu machine. When not run as root it uses `sudo` only for
//! the steps that need it (installing packages, running the lab), and never
//! builds as root.

mod bench;
mod ci;
mod commands;
mod cpio;
mod guest_kernel;
mod install;
mod kernels;
mod playground;
mod wasm;

use commands::{cargo, privileged, root, run, step};
use install::ensure_uml;
use std::process::ExitCode;

pub(crate) type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "lab" => lab(rest),
        "ci" => ci::ci(),
        "setup" => install::setup(true),
        "setup-uml" => ensure_uml(true),
        "setup-kernels" => kernels::setup_kernels(rest),
        "kernel-matrix" => kernels::kernel_matrix(rest).map(|_| ()),
        "bench" => bench::bench(rest),
        "playground" => playground::playground(rest),
        "guest-kernel" => guest_kernel::guest_kernel(rest),
        "kernel-test" => guest_kernel::kernel_tests().map(|_| ()),
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
  setup               Install what the tests need (shellcheck, promtool, wasm32 target, UML when the kernel lacks IPVS)
  setup-uml           Install a User-Mode Linux kernel with IPVS into /var/cache/lvsdr/uml
  setup-kernels [SERIES…]
                      Fetch Debian's 5.10, 6.1, 6.12 and 7.2 kernels (or those named) into
                      /var/cache/lvsdr/kernels: vmlinux and the lab's modules, for `--kernel qemu:SERIES`
  kernel-matrix [SERIES…]
                      Set those kernels up, build a static lvsdr, and run the seed and a fault on each
                      under QEMU (KVM where the host has it, else TCG): one table, kernel by lab
  bench [--quick] [--lab-only]
                      Benchmarks: core lint and predict at scale (not with --lab-only), and the lab lifecycle against a shell baseline
  playground [--build-only] [--test]
                      Build the browser playground into target/playground and serve it on 127.0.0.1
                      (--test runs the browser tests in Debian's Chromium instead of serving)
  guest-kernel        Build the playground's in-browser kernel (i386 Linux, cached in /var/cache/lvsdr/v86),
                      its guest program and initrd, and v86, into target/playground/kernel
  kernel-test         Boot that kernel under v86 in node and run the seed and a fault lab in it";

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
