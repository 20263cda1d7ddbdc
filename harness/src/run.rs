//! Labs on this kernel: build, verify, tear down, report; several at once
//! when asked. [`crate::launch`] chooses the kernel (this one, or a guest that
//! runs these same functions).

use crate::lab::failover::Pair;
use crate::lab::Lab;
use crate::report::Report;
use crate::{kernel, uml};
use lvsdr_core::Topology;
use std::time::Instant;

pub use crate::job::{KernelChoice, RunOptions};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network namespaces.\n  Run it as `sudo lvsdr lab FILE`, or `cargo xtask lab`, which asks sudo for this step only.\n  In your own tests, build as yourself and run the test binaries as root:\n  CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER='sudo -E' cargo test")]
    NotRoot,
    #[error("the host kernel ({0}) has no IPVS and `modprobe ip_vs` did not load it.\n  Use `--kernel uml` (or `--kernel auto`) to run the lab under User-Mode Linux;\n  from your own tests, call `lvsdr_harness::prove` or `run_lab`, which fall back to it.")]
    NoHostIpvs(String),
    #[error(transparent)]
    Lab(#[from] crate::lab::LabError),
    #[error(transparent)]
    Uml(#[from] uml::UmlError),
    #[error(transparent)]
    Qemu(#[from] crate::qemu::QemuError),
    #[error("`--apply-with {2}` needs `{0}`, which is not installed: install the Debian package `{1}` (apt-get install {1})")]
    MissingTool(&'static str, &'static str, &'static str),
    #[error("{0}")]
    NoPair(String),
    #[error("the lab inside UML failed (exit {0}):\n{1}")]
    Guest(i32, String),
    #[error("{0}")]
    TooLarge(String),
    #[error("this lab needs about {0} open files, and this process may open {1} (`ulimit -n`, whose hard limit only root can raise).\n  Raise it (`ulimit -n {0}`), or prove the setup with fewer --connections.")]
    OpenFiles(u64, u64),
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs the lab for a topology on this kernel: build, verify, tear down.
/// Uses `options.connections`, `clients`, `apply` and `verify`.
pub fn run_here(topology: &Topology, options: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Report, RunError> {
    if !is_root() {
        return Err(RunError::NotRoot);
    }
    if !uml::is_guest() && !kernel::try_load_host_ipvs() {
        return Err(RunError::NoHostIpvs(kernel::release()));
    }
    let started = Instant::now();
    let plan = lvsdr_core::plan::plan_held(topology, options.connections, options.clients, options.hold);
    kernel::raise_open_files(kernel::open_files_needed(&plan)).map_err(|(need, limit)| RunError::OpenFiles(need, limit))?;
    let lab = match options.failover {
        Some(_) => Lab::build_pair(topology, plan, progress)?,
        None => Lab::build(topology, plan, options.apply, progress)?,
    };
    // The client opens every service's connections side by side: with thousands in
    // flight (a production director's 5,080) a busy kernel answers the last SYNs
    // late, so the time a connection may take grows with how many there are
    // (half a millisecond each). A small lab keeps the given timeout.
    let in_flight = topology.services.len() * options.connections;
    let mut verify = options.verify.clone();
    verify.connect_timeout = verify.connect_timeout.max(std::time::Duration::from_micros(500 * in_flight as u64));
    let mut report = lab.verify(&verify, progress)?;
    report.ipvs_version = lab.ipvs_version().unwrap_or_default();
    report.applied_with = options.apply.name().to_string();
    if let Some(mode) = options.failover {
        let outcome = lab.failover(mode, &verify, progress)?;
        report.checks.extend(outcome.checks);
        if let (Some(log), Some(later)) = (report.frames.as_mut(), outcome.frames) {
            log.append(later, crate::lab::failover::AFTER_FAILOVER, report.connections.len());
        }
        report.connections.extend(outcome.connections);
        report.timings_ms.extend(outcome.timings_ms);
        report.pass = crate::report::verdict(&report.checks);
        report.applied_with = "keepalived (active/backup pair)".to_string();
        report.failover = Some(mode.name().to_string());
    }
    let torn = Instant::now();
    drop(lab);
    report.timings_ms.insert("teardown".into(), torn.elapsed().as_millis() as u64);
    report.timings_ms.insert("total".into(), started.elapsed().as_millis() as u64);
    let place = if uml::is_guest() {
        "uml"
    } else if crate::serial::is_guest() {
        crate::serial::place()
    } else {
        "host"
    };
    report.kernel = format!("{place} {}", kernel::release());
    Ok(report)
}

/// Runs `n` labs of the same topology at once on this kernel, each in its
/// own namespaces, to show that labs do not collide.
pub fn run_parallel(topology: &Topology, options: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Vec<Report>, RunError> {
    let n = options.parallel;
    if options.failover.is_some() {
        Pair::of(topology, &lvsdr_core::plan::plan(topology, 1, 1)).map_err(RunError::NoPair)?;
    }
    if let Some((program, package)) = options.apply.requires() {
        if !crate::apply::available(program) {
            return Err(RunError::MissingTool(program, package, options.apply.name()));
        }
    }
    if n <= 1 {
        return run_here(topology, options, progress).map(|r| vec![r]);
    }
    progress(&format!("starting {n} labs at once"));
    let results: Vec<Result<Report, RunError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(|| run_here(topology, options, &mut |_| {}))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let reports = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    progress(&format!("{} of {n} labs passed", reports.iter().filter(|r| r.pass).count()));
    Ok(reports)
}
