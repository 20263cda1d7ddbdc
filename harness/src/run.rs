//! The job behind `lvsdr lab`: choose a kernel, build, verify, tear down,
//! report. Usable from a user's own `cargo test`.

use crate::apply::ApplyWith;
use crate::lab::{Lab, VerifyOptions};
use crate::report::Report;
use crate::{kernel, uml};
use lvsdr_core::Topology;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where the lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelChoice {
    /// The host when it has IPVS (after trying `modprobe ip_vs`), UML otherwise.
    Auto,
    Host,
    Uml,
}

impl KernelChoice {
    pub fn parse(s: &str) -> Option<KernelChoice> {
        match s {
            "auto" => Some(KernelChoice::Auto),
            "host" => Some(KernelChoice::Host),
            "uml" => Some(KernelChoice::Uml),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network namespaces.\n  Run it as `sudo lvsdr lab FILE`, or `cargo xtask lab`, which asks sudo for this step only.")]
    NotRoot,
    #[error("the host kernel ({0}) has no IPVS and `modprobe ip_vs` did not load it.\n  Use `--kernel uml` (or `--kernel auto`) to run the lab under User-Mode Linux.")]
    NoHostIpvs(String),
    #[error(transparent)]
    Lab(#[from] crate::lab::LabError),
    #[error(transparent)]
    Uml(#[from] uml::UmlError),
    #[error("`--apply-with {2}` needs `{0}`, which is not installed: install the Debian package `{1}` (apt-get install {1})")]
    MissingTool(&'static str, &'static str, &'static str),
    #[error("the lab inside UML failed (exit {0}):\n{1}")]
    Guest(i32, String),
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
    /// The input format of the topology file, when not guessed from its text;
    /// passed on to the lab inside UML, which reads the file again.
    pub from: Option<lvsdr_core::Format>,
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
            from: None,
        }
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs the lab for a topology on this kernel: build, verify, tear down.
/// Uses `options.connections`, `clients`, `apply` and `verify`.
pub fn run_here(topology: &Topology, options: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Report, RunError> {
    let started = Instant::now();
    let plan = lvsdr_core::plan::plan(topology, options.connections, options.clients);
    let lab = Lab::build(topology, plan, options.apply, progress)?;
    let mut report = lab.verify(&options.verify, progress)?;
    report.ipvs_version = lab.ipvs_version().unwrap_or_default();
    report.applied_with = options.apply.name().to_string();
    let torn = Instant::now();
    drop(lab);
    report.timings_ms.insert("teardown".into(), torn.elapsed().as_millis() as u64);
    report.timings_ms.insert("total".into(), started.elapsed().as_millis() as u64);
    report.kernel = format!("{} {}", if uml::is_guest() { "uml" } else { "host" }, kernel::release());
    Ok(report)
}

/// Runs `n` labs of the same topology at once on this kernel, each in its
/// own namespaces, to show that labs do not collide.
pub fn run_parallel(topology: &Topology, options: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Vec<Report>, RunError> {
    let n = options.parallel;
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

/// The command line of the lab inside UML: the same lab, on the guest's kernel,
/// with every option that changes what it reads or does.
fn guest_args(path: &Path, options: &RunOptions) -> Vec<String> {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut args = vec![
        "lab".to_string(),
        abs.display().to_string(),
        "--kernel".into(),
        "host".into(),
        "--format".into(),
        "json".into(),
        "--connections".into(),
        options.connections.to_string(),
        "--clients".into(),
        options.clients.to_string(),
        "--parallel".into(),
        options.parallel.to_string(),
        "--apply-with".into(),
        options.apply.name().into(),
    ];
    if let Some(f) = options.from {
        args.extend(["--from".to_string(), f.name().to_string()]);
    }
    args
}

/// Runs the lab for the topology file at `path` on the chosen kernel.
/// Under UML the same binary runs inside the guest as init.
pub fn run_file(path: &Path, topology: &Topology, options: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Vec<Report>, RunError> {
    if !is_root() {
        return Err(RunError::NotRoot);
    }
    let use_host = match options.kernel {
        KernelChoice::Host => {
            if !kernel::try_load_host_ipvs() {
                return Err(RunError::NoHostIpvs(kernel::release()));
            }
            true
        }
        KernelChoice::Uml => false,
        KernelChoice::Auto => uml::is_guest() || kernel::try_load_host_ipvs(),
    };
    if use_host {
        progress(&format!("kernel: host {} has IPVS", kernel::release()));
        return run_parallel(topology, options, progress);
    }
    let started = Instant::now();
    let umlk = uml::find()?;
    progress(&format!(
        "kernel: host {} has no IPVS; booting User-Mode Linux ({})",
        kernel::release(),
        umlk.binary.display()
    ));
    let args = guest_args(path, options);
    let result = uml::run(&umlk, &args, options.timeout, progress)?;
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
    let mut args = vec!["kernel-exec".to_string(), "--".to_string()];
    args.extend(command.iter().cloned());
    let result = uml::run(&umlk, &args, timeout, &mut |l| eprintln!("  · {l}"))?;
    Ok((result.exit_code, result.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_gets_every_option_that_matters() {
        let options = RunOptions {
            connections: 5,
            clients: 2,
            parallel: 3,
            apply: ApplyWith::Restore,
            from: Some(lvsdr_core::Format::Script),
            ..RunOptions::default()
        };
        let args = guest_args(Path::new("/nonexistent/x.sh"), &options).join(" ");
        assert_eq!(
            args,
            "lab /nonexistent/x.sh --kernel host --format json --connections 5 --clients 2 --parallel 3 --apply-with restore --from script"
        );
        let plain = guest_args(Path::new("/x.toml"), &RunOptions::default());
        assert!(!plain.contains(&"--from".to_string()));
    }
}
