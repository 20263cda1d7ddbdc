//! The `lvsdr` command line: its commands and options (`Cli`), the exit
//! codes (`Exit`), reading input, and the dispatch, with the short commands
//! (import, render, predict, plan) inline. `lab`, `lint` (with `explain` and
//! `rules`) and the kernel commands have modules of their own.

mod kernel;
mod lab;
mod lint;

use clap::{Parser, Subcommand, ValueEnum};
use lvsdr_core::diagnostic::{render_human, Style};
use lvsdr_core::render::Artifact;
use lvsdr_core::Format;
use lvsdr_harness::run::KernelChoice;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How `lvsdr` ends: the exit codes the README documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: no errors; every lab passed.
    Success,
    /// 1: lint found errors, or a lab check failed.
    Failed,
    /// 2: the input cannot be read, or the command cannot run as asked (not root, options that clash).
    Unusable,
    /// 3: the lab itself could not run (kernel, UML, namespaces).
    Broken,
    /// `kernel-exec`: the command's own exit code.
    Command(u8),
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(match e {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Unusable => 2,
            Exit::Broken => 3,
            Exit::Command(code) => code,
        })
    }
}

/// A command's end: `Err` for the early exits `?` takes.
pub type Outcome = Result<Exit, Exit>;

#[derive(Parser)]
#[command(
    name = "lvsdr",
    version,
    about = "Lint, generate, predict and prove Linux Virtual Server Direct Routing (LVS-DR) setups",
    long_about = "lvsdr reads an LVS-DR topology (TOML, JSON, an ipvsadm shell script or an `ipvsadm -S` dump),\n\
tells you what is wrong with it, writes every script and config file the setup needs, predicts which\n\
real server each connection gets, and proves it all in a lab on real kernel IPVS.",
    after_help = "Examples:\n  lvsdr lint fixtures/seed-dr.toml\n  lvsdr lint my-director.sh --format json\n  lvsdr explain DR001\n  lvsdr render fixtures/seed-dr.toml --artifact real-server\n  lvsdr predict fixtures/seed-dr.toml --connections 8\n  sudo lvsdr lab fixtures/seed-dr.toml"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum OutputFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum InputFormat {
    Toml,
    Json,
    Script,
    IpvsadmSave,
    Keepalived,
}

impl InputFormat {
    fn core(self) -> Format {
        match self {
            InputFormat::Toml => Format::Toml,
            InputFormat::Json => Format::Json,
            InputFormat::Script => Format::Script,
            InputFormat::IpvsadmSave => Format::IpvsadmSave,
            InputFormat::Keepalived => Format::Keepalived,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a topology for DR mistakes (exit 0: no errors, 1: errors, 2: unreadable input).
    Lint {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: OutputFormat,
        /// Input format; guessed from the content when left out.
        #[arg(long, value_enum)]
        from: Option<InputFormat>,
        /// Apply the safe fixes to FILE in place.
        #[arg(long)]
        fix: bool,
    },
    /// Print the documentation of a rule (e.g. `lvsdr explain DR001`).
    Explain { code: String },
    /// List every rule.
    Rules {
        #[arg(long, value_enum, default_value = "human")]
        format: OutputFormat,
    },
    /// Convert any supported input into a canonical TOML topology.
    Import {
        file: PathBuf,
        #[arg(long, value_enum)]
        from: Option<InputFormat>,
    },
    /// Write an artifact: director, real-server, restore, sysctl, keepalived, toml, json.
    Render {
        file: PathBuf,
        #[arg(long)]
        artifact: String,
        #[arg(long, value_enum)]
        from: Option<InputFormat>,
    },
    /// Predict which real server each new connection gets, with the kernel schedulers' semantics.
    Predict {
        file: PathBuf,
        /// Only this service, as `tcp/80`.
        #[arg(long)]
        service: Option<String>,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Number of distinct client addresses, used in turn.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[arg(long, value_enum, default_value = "human")]
        format: OutputFormat,
        #[arg(long, value_enum)]
        from: Option<InputFormat>,
    },
    /// Print the lab plan (namespaces, addresses, sysctls, IPVS table, probes) as JSON.
    Plan {
        file: PathBuf,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, value_enum)]
        from: Option<InputFormat>,
    },
    /// Build the topology in network namespaces on real kernel IPVS and prove DR works (needs root).
    Lab(lab::LabArgs),
    /// Remove what labs killed outright left behind: namespaces, keepalived daemons and
    /// their folders, UML job folders and the UML kernels still running for them. Labs
    /// that are still running are left alone.
    Clean,
    /// Check lvsdr's IPVS client against this kernel: add, edit, list and delete in a
    /// namespace of its own (needs root and IPVS; run it in UML with `kernel-exec`).
    #[command(hide = true)]
    IpvsCheck,
    /// Check that the lab's firewall marks (nf_tables, or tc ingress where nf_tables has no
    /// inet family) reach an IPVS fwmark service, and only they (needs root and IPVS).
    #[command(hide = true)]
    MarksCheck,
    /// Run a command on the lab's kernel: here if it has IPVS, else inside User-Mode Linux
    /// (with IPVS, veth and bridge loaded). Used by the benchmarks' shell baseline.
    #[command(hide = true)]
    KernelExec {
        #[arg(long, value_enum, default_value = "auto")]
        kernel: KernelChoice,
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
}

fn read(file: &Path) -> Result<String, Exit> {
    std::fs::read_to_string(file).map_err(|e| {
        eprintln!("error: cannot read {}: {e}", file.display());
        Exit::Unusable
    })
}

/// Loads a topology, printing a rustc-style error naming file, line and column.
fn load(file: &Path, from: Option<InputFormat>) -> Result<(String, lvsdr_core::Topology), Exit> {
    let text = read(file)?;
    let (_, result) = lvsdr_core::load(&text, from.map(InputFormat::core));
    match result {
        Ok((t, _)) => Ok((text, t)),
        Err(e) => {
            let style = Style {
                color: std::io::stderr().is_terminal(),
            };
            eprint!("{}", render_human(&[e.to_diagnostic()], &text, &file.display().to_string(), style));
            Err(Exit::Unusable)
        }
    }
}

/// Runs one command line.
pub fn run(cli: Cli) -> Outcome {
    let color = std::io::stdout().is_terminal();
    match cli.command {
        Cmd::Lint { file, format, from, fix } => lint::lint(file, format, from, fix, color),
        Cmd::Explain { code } => lint::explain(code),
        Cmd::Rules { format } => lint::rules(format),
        Cmd::Import { file, from } => {
            let (_, t) = load(&file, from)?;
            print!("{}", lvsdr_core::topology_file::to_toml(&t));
            Ok(Exit::Success)
        }
        Cmd::Render { file, artifact, from } => {
            let Some(a) = Artifact::parse(&artifact) else {
                eprintln!(
                    "error: unknown artifact `{artifact}`; use one of: {}",
                    Artifact::ALL.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
                );
                return Err(Exit::Unusable);
            };
            let (_, t) = load(&file, from)?;
            print!("{}", lvsdr_core::render::render(&t, a));
            Ok(Exit::Success)
        }
        Cmd::Predict {
            file,
            service,
            connections,
            clients,
            format,
            from,
        } => {
            let (_, t) = load(&file, from)?;
            let mut predictions = lvsdr_core::predict::predict_sequential(&t, connections, clients);
            if let Some(s) = &service {
                predictions.retain(|p| &p.service == s);
                if predictions.is_empty() {
                    eprintln!(
                        "error: no service `{s}` in {}; it has: {}",
                        file.display(),
                        t.services.iter().map(|s| t.label(s)).collect::<Vec<_>>().join(", ")
                    );
                    return Err(Exit::Unusable);
                }
            }
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&predictions).unwrap_or_default());
            } else {
                for p in &predictions {
                    let picks: Vec<String> = p.pick_names().into_iter().map(|x| x.unwrap_or_else(|| "-".into())).collect();
                    let counts: Vec<String> = p.counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    println!(
                        "{} ({}), {connections} connections from {clients} client(s):",
                        p.service, p.scheduler
                    );
                    println!("  picks:  {}", picks.join(" "));
                    println!(
                        "  split:  {}{}",
                        counts.join(", "),
                        if p.unscheduled > 0 {
                            format!(", unscheduled: {}", p.unscheduled)
                        } else {
                            String::new()
                        }
                    );
                }
            }
            Ok(Exit::Success)
        }
        Cmd::Plan { file, connections, from } => {
            let (_, t) = load(&file, from)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&lvsdr_core::plan::plan(&t, connections, 1)).unwrap_or_default()
            );
            Ok(Exit::Success)
        }
        Cmd::Lab(a) => lab::lab(a, color),
        Cmd::IpvsCheck => kernel::ipvs_check(),
        Cmd::MarksCheck => kernel::marks_check(),
        Cmd::KernelExec { kernel, timeout, command } => kernel::kernel_exec(kernel, timeout, command),
        Cmd::Clean => kernel::clean(),
    }
}
