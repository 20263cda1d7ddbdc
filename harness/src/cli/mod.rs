//! The `lvsdr` command line: its commands and options (`Cli`), the exit
//! codes (`Exit`), reading input, and the dispatch, with the short commands
//! (import, render, predict, plan) inline. `lab`, `lint` (with `explain` and
//! `rules`), `audit` and the kernel commands have modules of their own.

mod annotate;
mod audit;
mod kernel;
mod lab;
mod lint;
mod pcap;
mod predict;
mod sarif;
mod summary;

use clap::{Parser, Subcommand, ValueEnum};
use lvsdr_core::diagnostic::Style;
use lvsdr_core::import::resolve::NameMap;
use lvsdr_core::names::shown;
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

/// The connections `lvsdr lab` opens and `lvsdr predict` predicts: one set
/// of options, so that both say the same of the same flags.
#[derive(clap::Args, Clone, Copy)]
struct TrafficOptions {
    /// Connections per service.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Client addresses the connections come from, in turn (for schedulers that hash the source).
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Hold each connection of a service open until N later ones have opened (in the lab:
    /// HTTP/1.1 kept alive, SMTP without QUIT), so that the least-connection schedulers
    /// (lc, wlc, sed, nq, ovf, lblc, lblcr) pick with active connections in their counts.
    /// 0, the default, closes each connection before the next opens.
    #[arg(long, default_value_t = 0, value_name = "N")]
    hold: usize,
}

/// How the input files are read: the options of every command that reads them.
#[derive(clap::Args)]
struct InputOptions {
    /// Input format, for all files or one per file (`--from script,keepalived`); guessed
    /// from the content when left out.
    #[arg(long, value_enum, value_delimiter = ',', help_heading = "Reading the input")]
    from: Vec<InputFormat>,
    /// Map a host name in the input to its address (repeat for each name).
    ///
    /// `ipvsadm -S` without `-n` writes host names (`-A -t lb-web:https -s wlc`). lvsdr never
    /// looks a name up itself, as the answer would depend on where and when it runs: a name
    /// nobody mapped is an error (DR110) that names it.
    ///
    /// Example: --resolve lb-web=192.0.2.10 --resolve web1=192.0.2.21
    #[arg(long, value_name = "NAME=ADDRESS", help_heading = "Reading the input")]
    resolve: Vec<String>,
    /// Map host names to addresses from a file in the hosts(5) format (repeatable).
    ///
    /// One address a line, then its names; `#` starts a comment. A copy of the /etc/hosts of
    /// the machine the dump came from will do. `--resolve` wins over a file, and a later file
    /// over an earlier one.
    ///
    /// Example: --hosts lb-hosts.txt, holding `192.0.2.21 web1 web1.lan.example`
    #[arg(long, value_name = "FILE", help_heading = "Reading the input")]
    hosts: Vec<PathBuf>,
}

impl InputOptions {
    /// The names the user mapped: hosts files first, then `--resolve`, the later winning.
    fn names(&self) -> Result<NameMap, Exit> {
        let mut names = NameMap::new();
        for file in &self.hosts {
            let text = read(file)?;
            names.parse_hosts(&text).map_err(|e| {
                eprintln!("error: --hosts {}: {e}", file.display());
                Exit::Unusable
            })?;
        }
        for mapping in &self.resolve {
            names.parse_mapping(mapping).map_err(|e| {
                eprintln!(
                    "error: --resolve {}: {e}
  write NAME=ADDRESS, as in --resolve lb-web=192.0.2.10",
                    shown(mapping)
                );
                Exit::Unusable
            })?;
        }
        Ok(names)
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a topology for DR mistakes (exit 0: no errors, 1: errors, 2: unreadable input).
    Lint {
        /// The input: a topology (TOML, JSON), or one or more of: ipvsadm scripts, `ipvsadm -S`
        /// dumps, keepalived.conf files, read as one setup (a director's script with the real
        /// servers' script, a keepalived.conf with a real-server script).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: lint::LintFormat,
        #[command(flatten)]
        input: InputOptions,
        /// Apply the safe fixes to the files in place.
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
        /// The input: a topology (TOML, JSON), or one or more of: ipvsadm scripts, `ipvsadm -S`
        /// dumps, keepalived.conf files, read as one setup (a director's script with the real
        /// servers' script, a keepalived.conf with a real-server script).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        input: InputOptions,
    },
    /// Write an artifact: director, real-server, restore, sysctl, keepalived, toml, json.
    Render {
        /// The input: a topology (TOML, JSON), or one or more of: ipvsadm scripts, `ipvsadm -S`
        /// dumps, keepalived.conf files, read as one setup (a director's script with the real
        /// servers' script, a keepalived.conf with a real-server script).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        artifact: String,
        #[command(flatten)]
        input: InputOptions,
    },
    /// Predict which real server each new connection gets, with the kernel schedulers' semantics.
    Predict(predict::PredictArgs),
    /// Print the lab plan (namespaces, addresses, sysctls, IPVS table, probes) as JSON.
    Plan {
        /// The input: a topology (TOML, JSON), or one or more of: ipvsadm scripts, `ipvsadm -S`
        /// dumps, keepalived.conf files, read as one setup (a director's script with the real
        /// servers' script, a keepalived.conf with a real-server script).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[command(flatten)]
        input: InputOptions,
    },
    /// Build the topology in network namespaces on real kernel IPVS and prove DR works (needs root).
    Lab(lab::LabArgs),
    /// Write a lab's JSON report (`lvsdr lab --format json`) as Markdown: the checks as a
    /// table and the split, for a CI job summary (`$GITHUB_STEP_SUMMARY`).
    Summary {
        /// The report; `-` for standard input.
        report: PathBuf,
        /// markdown, or human: the table `lvsdr lab` prints.
        #[arg(long, value_enum, default_value = "markdown")]
        format: summary::SummaryFormat,
    },
    /// Compare this machine's live state with its setup, read-only (exit 0: matches, 1: drift,
    /// 2: unusable input or no matching host, 3: live state unreadable).
    #[command(long_about = audit::LONG_ABOUT, after_help = audit::EXAMPLES)]
    Audit(audit::AuditArgs),
    /// Remove what labs killed outright left behind: namespaces, keepalived daemons and
    /// their folders, UML job folders and the UML kernels still running for them. Labs
    /// that are still running are left alone.
    Clean,
    /// The distribution kernels installed for `--kernel qemu:SERIES` and `--kernel-matrix`,
    /// and those that `cargo xtask setup-kernels` can install.
    Kernels,
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
        #[arg(long, default_value = "auto")]
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

/// The formats given for the files: none (each detected), one for all, or one each.
fn formats(files: &[PathBuf], from: &[InputFormat]) -> Result<Vec<Option<lvsdr_core::Format>>, Exit> {
    match from {
        [] => Ok(vec![None; files.len()]),
        [one] => Ok(vec![Some(one.core()); files.len()]),
        many if many.len() == files.len() => Ok(many.iter().map(|f| Some(f.core())).collect()),
        many => {
            eprintln!(
                "error: {} formats for {} files: give one `--from` for all files, or one per file, in order",
                many.len(),
                files.len()
            );
            Err(Exit::Unusable)
        }
    }
}

/// Reads the files as one setup, linted.
fn analyze(files: &[PathBuf], input: &InputOptions) -> Result<lvsdr_core::SetupAnalysis, Exit> {
    let formats = formats(files, &input.from)?;
    let names = input.names()?;
    let mut sources = Vec::new();
    for f in files {
        sources.push((f.display().to_string(), read(f)?));
    }
    Ok(lvsdr_core::analyze_files_with(&sources, &formats, &names))
}

/// Loads a topology from one or more files, printing a rustc-style error
/// naming the file, line and column when it cannot be read.
fn load(files: &[PathBuf], input: &InputOptions) -> Result<(lvsdr_core::SetupAnalysis, lvsdr_core::Topology), Exit> {
    let setup = analyze(files, input)?;
    match setup.analysis.topology.clone() {
        Some(t) if t.services.is_empty() && t.real_servers.is_empty() => {
            let style = Style {
                color: std::io::stderr().is_terminal(),
            };
            eprint!("{}", setup.render_human(style));
            eprintln!("error: nothing to work with: the input sets up no virtual service and no real server");
            Err(Exit::Failed)
        }
        Some(t) => Ok((setup, t)),
        None => {
            let style = Style {
                color: std::io::stderr().is_terminal(),
            };
            eprint!("{}", setup.render_human(style));
            Err(refused(&setup.analysis))
        }
    }
}

/// How a command ends when the input was refused. An unmapped host name
/// (DR110) is not an unreadable file: the file read, and lacks a fact only
/// the user has, so it ends as any error found in the input does (exit 1);
/// everything else the readers refuse is unusable input (exit 2).
fn refused(analysis: &lvsdr_core::Analysis) -> Exit {
    if analysis
        .diagnostics
        .iter()
        .any(|d| d.code == lvsdr_core::codes::code::UNRESOLVED_HOST_NAME)
    {
        Exit::Failed
    } else {
        Exit::Unusable
    }
}

/// Runs one command line.
pub fn run(cli: Cli) -> Outcome {
    let color = std::io::stdout().is_terminal();
    match cli.command {
        Cmd::Lint { files, format, input, fix } => lint::lint(files, format, input, fix, color),
        Cmd::Explain { code } => lint::explain(code),
        Cmd::Rules { format } => lint::rules(format),
        Cmd::Import { files, input } => {
            let (_, t) = load(&files, &input)?;
            print!("{}", lvsdr_core::topology_file::to_toml(&t));
            Ok(Exit::Success)
        }
        Cmd::Render { files, artifact, input } => {
            let Some(a) = Artifact::parse(&artifact) else {
                eprintln!(
                    "error: unknown artifact `{artifact}`; use one of: {}",
                    Artifact::ALL.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
                );
                return Err(Exit::Unusable);
            };
            let (_, t) = load(&files, &input)?;
            print!("{}", lvsdr_core::render::render(&t, a));
            Ok(Exit::Success)
        }
        Cmd::Predict(a) => predict::predict(a),
        Cmd::Plan { files, connections, input } => {
            let (_, t) = load(&files, &input)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&lvsdr_core::plan::plan(&t, connections, 1)).unwrap_or_default()
            );
            Ok(Exit::Success)
        }
        Cmd::Lab(a) => lab::lab(a, color),
        Cmd::Summary { report, format } => summary::summary(&report, format),
        Cmd::Audit(a) => audit::audit(a, color),
        Cmd::IpvsCheck => kernel::ipvs_check(),
        Cmd::MarksCheck => kernel::marks_check(),
        Cmd::KernelExec { kernel, timeout, command } => kernel::kernel_exec(kernel, timeout, command),
        Cmd::Clean => kernel::clean(),
        Cmd::Kernels => lab::kernels(),
    }
}
