//! Where a lab runs: on this kernel when it has IPVS, or inside User-Mode
//! Linux, whose init is this very program ([`crate::guest`]) running the
//! same labs ([`crate::run`]). The entry points of `lvsdr lab`,
//! `lvsdr kernel-exec` and a user's own `cargo test`.

use crate::job::{GuestTask, KernelChoice, RunOptions};
use crate::report::Report;
use crate::run::{is_root, run_parallel, RunError};
use crate::{guest, kernel, uml};
use lvsdr_core::Topology;
use std::time::{Duration, Instant};

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
    if let KernelChoice::Qemu(series) = options.kernel {
        return run_labs_in_qemu(series, topologies, options, progress);
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
        KernelChoice::Qemu(_) => false,
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
    let task = GuestTask::Lab {
        topologies: topologies.iter().map(lvsdr_core::topology_file::to_toml).collect(),
        options: options.clone(),
    };
    guest::linked();
    let outcome = uml::run(&umlk, &task, options.timeout, progress)?;
    if outcome.reports.is_empty() {
        return Err(RunError::Guest(outcome.code, outcome.output));
    }
    let mut reports = outcome.reports;
    for r in &mut reports {
        r.timings_ms.insert("uml_total".into(), started.elapsed().as_millis() as u64);
    }
    Ok(reports)
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

/// Runs a command on the lab's kernel: directly when the host has IPVS (or
/// `choice` is `Host`), else as the job of a User-Mode Linux guest.
/// Returns its exit code and standard output.
pub fn exec_in_kernel(choice: KernelChoice, command: &[String], timeout: Duration) -> Result<(i32, String), RunError> {
    let Some(program) = command.first() else {
        return Err(RunError::Guest(2, "no command to run".into()));
    };
    if let KernelChoice::Qemu(series) = choice {
        return exec_in_qemu(series, command, timeout);
    }
    let here = match choice {
        KernelChoice::Host => true,
        KernelChoice::Qemu(_) => false,
        KernelChoice::Uml => false,
        KernelChoice::Auto => kernel::try_load_host_ipvs(),
    };
    if here {
        let out = std::process::Command::new(program)
            .args(&command[1..])
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| RunError::Guest(3, format!("cannot run {program}: {e}")))?;
        return Ok((out.status.code().unwrap_or(3), String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    let umlk = uml::find()?;
    let task = GuestTask::Exec { command: command.to_vec() };
    guest::linked();
    let outcome = uml::run(&umlk, &task, timeout, &mut |l| eprintln!("  · {l}"))?;
    Ok((outcome.code, outcome.output))
}

/// The labs in one boot of a distribution kernel under QEMU ([`crate::qemu`]).
fn run_labs_in_qemu(
    series: crate::job::KernelSeries,
    topologies: &[Topology],
    options: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Report>, RunError> {
    let started = Instant::now();
    let kernel = crate::qemu::find(series)?;
    let mut machine = crate::qemu::Machine::boot(&kernel, options.timeout, progress)?;
    progress(&format!(
        "kernel: {} up in {} ms ({})",
        kernel.release,
        machine.boot.as_millis(),
        machine.accel.name()
    ));
    let task = GuestTask::Lab {
        topologies: topologies.iter().map(lvsdr_core::topology_file::to_toml).collect(),
        options: options.clone(),
    };
    let outcome = machine.run(&task, options.timeout, progress)?;
    if outcome.reports.is_empty() {
        return Err(RunError::Guest(outcome.code, outcome.output));
    }
    let mut reports = outcome.reports;
    for r in &mut reports {
        r.timings_ms.insert("qemu_boot".into(), machine.boot.as_millis() as u64);
        r.timings_ms.insert("qemu_total".into(), started.elapsed().as_millis() as u64);
    }
    Ok(reports)
}

/// A command in a distribution kernel under QEMU. The guest has no shell and
/// no tools but lvsdr itself (`/init`).
fn exec_in_qemu(series: crate::job::KernelSeries, command: &[String], timeout: Duration) -> Result<(i32, String), RunError> {
    let kernel = crate::qemu::find(series)?;
    let mut say = |l: &str| eprintln!("  · {l}");
    let mut machine = crate::qemu::Machine::boot(&kernel, timeout, &mut say)?;
    let outcome = machine.run(&GuestTask::Exec { command: command.to_vec() }, timeout, &mut say)?;
    Ok((outcome.code, outcome.output))
}
