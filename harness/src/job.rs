//! A lab job: its options, and what crosses from the host into a guest kernel
//! (User-Mode Linux, or the playground's in-browser kernel) and back. Typed
//! on both sides, so that every option reaches the guest (a test says so) and
//! the result is a value, not a string to guess at.
//!
//! This is a leaf: the host side ([`crate::launch`], [`crate::uml`]) and the
//! guest side ([`crate::guest`], [`crate::serial`]) both speak it, and it
//! speaks of neither.

use crate::apply::ApplyWith;
use crate::lab::failover::Failover;
use crate::lab::VerifyOptions;
use crate::report::Report;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where the lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelChoice {
    /// The host when it has IPVS (after trying `modprobe ip_vs`), UML otherwise.
    Auto,
    /// The running kernel; an error if it has no IPVS.
    Host,
    /// User-Mode Linux, whatever the host has.
    Uml,
    /// A distribution's kernel of this series under QEMU ([`crate::qemu`]),
    /// as `cargo xtask setup-kernels` put it in the cache.
    Qemu(KernelSeries),
}

/// The distribution kernels a lab can run on under QEMU: Debian's newest
/// package of each series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KernelSeries {
    /// Debian 11 (bullseye).
    #[serde(rename = "5.10")]
    V5_10,
    /// Debian 12 (bookworm).
    #[serde(rename = "6.1")]
    V6_1,
    /// Debian 12's newer kernel.
    #[serde(rename = "6.12")]
    V6_12,
    /// Debian unstable.
    #[serde(rename = "7.2")]
    V7_2,
}

impl KernelSeries {
    pub const ALL: [KernelSeries; 4] = [KernelSeries::V5_10, KernelSeries::V6_1, KernelSeries::V6_12, KernelSeries::V7_2];

    pub fn name(self) -> &'static str {
        match self {
            KernelSeries::V5_10 => "5.10",
            KernelSeries::V6_1 => "6.1",
            KernelSeries::V6_12 => "6.12",
            KernelSeries::V7_2 => "7.2",
        }
    }
}

impl std::fmt::Display for KernelSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KernelSeries {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        KernelSeries::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let known: Vec<&str> = KernelSeries::ALL.iter().map(|k| k.name()).collect();
            format!("unknown kernel series `{s}` (known: {})", known.join(", "))
        })
    }
}

impl std::fmt::Display for KernelChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelChoice::Auto => f.write_str("auto"),
            KernelChoice::Host => f.write_str("host"),
            KernelChoice::Uml => f.write_str("uml"),
            KernelChoice::Qemu(s) => write!(f, "qemu:{s}"),
        }
    }
}

/// `auto`, `host`, `uml` or `qemu:SERIES` (`qemu:6.1`), as `--kernel` takes it.
impl std::str::FromStr for KernelChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(KernelChoice::Auto),
            "host" => Ok(KernelChoice::Host),
            "uml" => Ok(KernelChoice::Uml),
            _ => match s.strip_prefix("qemu:") {
                Some(series) => series.parse().map(KernelChoice::Qemu),
                None => Err(format!(
                    "unknown kernel `{s}`: use auto, host, uml or qemu:SERIES (5.10, 6.1, 6.12, 7.2)"
                )),
            },
        }
    }
}

/// How a lab runs: the options of `lvsdr lab`, and of [`crate::run_lab`].
/// A field left out of a job's JSON takes its default (the playground sends
/// only what it sets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
    /// Each service's connections stay open until this many later ones have
    /// opened (`lvsdr lab --hold N`): the least-connection schedulers then
    /// see active connections. 0 closes each before the next.
    pub hold: usize,
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
            hold: 0,
        }
    }
}

/// What a guest is asked to do: the same for the `lvsdr` binary and for a
/// user's test binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuestTask {
    /// Run a lab for each topology, one after the other (canonical TOML, read
    /// and validated again in the guest), with the caller's options, whole:
    /// the guest runs them on its own kernel.
    Lab { topologies: Vec<String>, options: RunOptions },
    /// Run a command and hand back its exit code and standard output.
    Exec { command: Vec<String> },
    /// Say what this kernel's IPVS offers ([`crate::facts::KernelFacts`], as
    /// JSON in the outcome's `output`): the kernel matrix compares them.
    Facts,
}

/// What a guest hands back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GuestOutcome {
    /// 0 every lab passed (or the command succeeded), 1 a check failed, 2 the
    /// task was unusable, 3 it could not run; a command's own exit code.
    pub code: i32,
    /// One report per lab run.
    pub reports: Vec<Report>,
    /// A command's standard output, or what went wrong.
    pub output: String,
}

impl GuestOutcome {
    /// A task that ended without reports: `code` and what it said.
    pub fn said(code: i32, output: impl Into<String>) -> GuestOutcome {
        GuestOutcome {
            code,
            reports: vec![],
            output: output.into(),
        }
    }
}

/// The guest's work, handed to the guest's init by the one module that knows
/// how to run a lab ([`crate::guest`]).
pub type TaskRunner = fn(&GuestTask, &mut GuestProgress) -> GuestOutcome;

/// A sink for guest progress lines: the job folder's `progress.log` under UML,
/// framed lines on the serial port in the playground's kernel ([`crate::serial`]).
pub struct GuestProgress(Box<dyn FnMut(&str)>);

impl GuestProgress {
    pub fn new(sink: impl FnMut(&str) + 'static) -> GuestProgress {
        GuestProgress(Box::new(sink))
    }

    pub fn line(&mut self, text: &str) {
        (self.0)(text)
    }
}

/// What a caught panic said, for a guest's report of a task that panicked.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option of a lab reaches the guest as it was given: the task
    /// goes through JSON (the job file, the serial line) and comes back equal,
    /// with every field away from its default.
    #[test]
    fn every_option_reaches_the_guest() {
        let options = RunOptions {
            kernel: KernelChoice::Qemu(KernelSeries::V6_12),
            connections: 37,
            clients: 3,
            parallel: 2,
            apply: ApplyWith::Keepalived,
            verify: VerifyOptions {
                connect_timeout: Duration::from_millis(1234),
                ipvs_stats: true,
                stats_timeout: Duration::from_millis(5678),
                frames: true,
            },
            timeout: Duration::from_secs(99),
            failover: Some(Failover::Link),
            hold: 5,
        };
        let defaults = RunOptions::default();
        // Each field differs from its default, so a field dropped on the way shows.
        let fields = serde_json::to_value(&options).unwrap();
        let default_fields = serde_json::to_value(&defaults).unwrap();
        for (name, value) in fields.as_object().unwrap() {
            assert_ne!(Some(value), default_fields.get(name), "{name} is at its default in the test");
        }
        let task = GuestTask::Lab {
            topologies: vec!["name = \"x\"".into()],
            options: options.clone(),
        };
        let back: GuestTask = serde_json::from_str(&serde_json::to_string(&task).unwrap()).unwrap();
        assert_eq!(back, task);
    }

    #[test]
    fn kernel_choices_read_as_they_print() {
        for text in ["auto", "host", "uml", "qemu:5.10", "qemu:6.1", "qemu:6.12", "qemu:7.2"] {
            let choice: KernelChoice = text.parse().unwrap();
            assert_eq!(choice.to_string(), text);
        }
        assert!("qemu:4.19".parse::<KernelChoice>().unwrap_err().contains("5.10, 6.1, 6.12, 7.2"));
        assert!("v86".parse::<KernelChoice>().is_err());
    }
}
