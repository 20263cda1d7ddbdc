//! The job behind `lvsdr lab`: choose a kernel, build, verify, tear down,
//! report. Usable from a user's own `cargo test`.

use crate::apply::ApplyWith;
use crate::lab::failover::{Failover, Pair};
use crate::lab::{Lab, VerifyOptions};
use crate::report::Report;
use crate::{kernel, uml};
use lvsdr_core::Topology;
use std::time::{Duration, Instant};

/// Where the lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KernelChoice {
    /// The host when it has IPVS (after trying `modprobe ip_vs`), UML otherwise.
    Auto,
    /// The running kernel; an error if it has no IPVS.
    Host,
    /// User-Mode Linux, whatever the host has.
    Uml,
}

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
    #[error("`--apply-with {2}` needs `{0}`, which is not installed: install the Debian package `{1}` (apt-get install {1})")]
    MissingTool(&'static str, &'static str, &'static str),
    #[error("{0}")]
    NoPair(String),
    #[error("the lab inside UML failed (exit {0}):\n{1}")]
    Guest(i32, String),
    #[error("{0}")]
    TooLarge(String),
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub kernel: KernelChoice,
    pub connections: usize,
    /// Client addresses the connections come from, in turn.
    pub clients: usize,
    /// Labs of the same topology to run at once.
    pub parallel: usize,
    /// How the DR configuration reaches the kernel.
    pub apply: ApplyWith,
    pub verify: VerifyOptions,
    pub timeout: Duration,
    /// Prove an active/backup pair's failover after the DR proofs: keepalived
    /// runs on both directors, and the master goes away this way.
    pub failover: Option<Failover>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            kernel: KernelChoice::Auto,
            connections: 8,
            clients: 1,
            parallel: 1,
            apply: ApplyWith::Netlink,
            verify: VerifyOptions::default(),
            timeout: Duration::from_secs(120),
            failover: None,
        }
    }
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
    let plan = lvsdr_core::plan::plan(topology, options.connections, options.clients);
    let lab = match options.failover {
        Some(_) => Lab::build_pair(topology, plan, progress)?,
        None => Lab::build(topology, plan, options.apply, progress)?,
    };
    let mut report = lab.verify(&options.verify, progress)?;
    report.ipvs_version = lab.ipvs_version().unwrap_or_default();
    report.applied_with = options.apply.name().to_string();
    if let Some(mode) = options.failover {
        let outcome = lab.failover(mode, &options.verify, progress)?;
        report.checks.extend(outcome.checks);
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
        "v86"
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

/// Runs the lab for a topology on the chosen kernel, as `lvsdr lab` does:
/// the host's when it has IPVS (after trying `modprobe ip_vs`), else User-Mode
/// Linux, whose init is this very program (see [`crate::guest`]). Returns one
/// report per lab (`options.parallel`).
pub fn run_lab(topology: &Topology, options: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Vec<Report>, RunError> {
    run_labs(std::slice::from_ref(topology), options, progress)
}

/// Runs a lab for each topology, one after the other, in one kernel: under
/// UML, one boot for all of them. Each lab has its own namespaces, as always.
/// Returns the reports in order (`options.parallel` of them per topology).
pub fn run_labs(topologies: &[Topology], options: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Vec<Report>, RunError> {
    for t in topologies {
        lvsdr_core::plan::check_size(t, options.connections, options.parallel).map_err(RunError::TooLarge)?;
    }
    if !is_root() {
        return Err(RunError::NotRoot);
    }
    let use_host = match options.kernel {
        KernelChoice::Host => {
            if !uml::is_guest() && !kernel::try_load_host_ipvs() {
                return Err(RunError::NoHostIpvs(kernel::release()));
            }
            true
        }
        KernelChoice::Uml => false,
        KernelChoice::Auto => uml::is_guest() || kernel::try_load_host_ipvs(),
    };
    if use_host {
        progress(&format!("kernel: host {} has IPVS", kernel::release()));
        let mut reports = Vec::new();
        for t in topologies {
            reports.extend(run_parallel(t, options, progress)?);
        }
        return Ok(reports);
    }
    let started = Instant::now();
    let umlk = uml::find()?;
    progress(&format!(
        "kernel: host {} has no IPVS; booting User-Mode Linux ({})",
        kernel::release(),
        umlk.binary.display()
    ));
    let task = uml::GuestTask::Lab {
        topologies: topologies.iter().map(lvsdr_core::topology_file::to_toml).collect(),
        connections: options.connections,
        clients: options.clients,
        parallel: options.parallel,
        apply: options.apply,
        ipvs_stats: options.verify.ipvs_stats,
        failover: options.failover,
    };
    let result = uml::run(&umlk, &task, options.timeout, progress)?;
    let reports =
        serde_json::from_str::<Vec<Report>>(&result.stdout).or_else(|_| serde_json::from_str::<Report>(&result.stdout).map(|r| vec![r]));
    match reports {
        Ok(mut reports) => {
            for r in &mut reports {
                r.timings_ms.insert("uml_total".into(), started.elapsed().as_millis() as u64);
            }
            Ok(reports)
        }
        Err(_) => Err(RunError::Guest(result.exit_code, result.stdout)),
    }
}

/// Proves a topology with the default options (8 connections per service, one
/// client, lvsdr's netlink client) on whichever kernel has IPVS, quietly: the
/// one call a user's own `cargo test` needs. Needs root.
///
/// ```no_run
/// let text = std::fs::read_to_string("lvs/topology.toml").unwrap();
/// let topology = lvsdr_core::topology_file::from_toml(&text).unwrap();
/// let report = lvsdr_harness::prove(&topology).unwrap();
/// report.assert_pass();
/// ```
pub fn prove(topology: &Topology) -> Result<Report, RunError> {
    let mut reports = run_lab(topology, &RunOptions::default(), &mut |_| {})?;
    reports.pop().ok_or_else(|| RunError::Guest(3, "the lab returned no report".into()))
}

/// What a caught panic said, for a guest's report of a task that panicked.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The guest's work, in the guest: what [`uml::guest_init`] runs.
/// Returns the exit code and what goes back to the host as standard output.
pub(crate) fn run_task(task: &uml::GuestTask, progress: &mut uml::GuestProgress) -> (i32, String) {
    match task {
        uml::GuestTask::Lab {
            topologies,
            connections,
            clients,
            parallel,
            apply,
            ipvs_stats,
            failover,
        } => {
            // Read and validated again: the guest trusts nothing it is handed.
            let topologies = match topologies
                .iter()
                .map(|t| lvsdr_core::topology_file::from_toml(t))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(t) => t,
                Err(e) => return (2, format!("a topology handed to the guest does not read: {e}\n")),
            };
            let options = RunOptions {
                kernel: KernelChoice::Host,
                connections: *connections,
                clients: *clients,
                parallel: *parallel,
                apply: *apply,
                verify: VerifyOptions {
                    ipvs_stats: *ipvs_stats,
                    ..VerifyOptions::default()
                },
                failover: *failover,
                ..RunOptions::default()
            };
            let mut all = Vec::new();
            for topology in &topologies {
                match run_parallel(topology, &options, &mut |l| progress.line(l)) {
                    Ok(reports) => all.extend(reports),
                    Err(e) => return (3, format!("{}: {e}\n", topology.name)),
                }
            }
            (
                if all.iter().all(|r| r.pass) { 0 } else { 1 },
                serde_json::to_string(&all).unwrap_or_default(),
            )
        }
        uml::GuestTask::Exec { command } => {
            let Some((program, args)) = command.split_first() else {
                return (2, "no command to run\n".into());
            };
            match std::process::Command::new(program).args(args).output() {
                Ok(o) => {
                    let code = o.status.code().unwrap_or(3);
                    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                    if code != 0 {
                        text.push_str(&String::from_utf8_lossy(&o.stderr));
                    }
                    (code, text)
                }
                Err(e) => (3, format!("cannot run {program}: {e}\n")),
            }
        }
    }
}

/// Runs a command on the lab's kernel: directly when the host has IPVS (or
/// `choice` is `Host`), else as the job of a User-Mode Linux guest.
/// Returns its exit code and standard output.
pub fn exec_in_kernel(choice: KernelChoice, command: &[String], timeout: Duration) -> Result<(i32, String), RunError> {
    let here = match choice {
        KernelChoice::Host => true,
        KernelChoice::Uml => false,
        KernelChoice::Auto => kernel::try_load_host_ipvs(),
    };
    if here {
        let out = std::process::Command::new(&command[0])
            .args(&command[1..])
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| RunError::Guest(3, format!("cannot run {}: {e}", command[0])))?;
        return Ok((out.status.code().unwrap_or(3), String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    let umlk = uml::find()?;
    let task = uml::GuestTask::Exec { command: command.to_vec() };
    let result = uml::run(&umlk, &task, timeout, &mut |l| eprintln!("  · {l}"))?;
    Ok((result.exit_code, result.stdout))
}
