//! `lvsdr`: lint, import, render, predict and prove LVS Direct Routing setups.

use clap::{Parser, Subcommand, ValueEnum};
use lvsdr_core::diagnostic::{render_human, Style};
use lvsdr_core::render::Artifact;
use lvsdr_core::{Format, Severity};
use lvsdr_harness::apply::ApplyWith;
use lvsdr_harness::run::{self, KernelChoice, RunOptions};
use lvsdr_harness::uml;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
struct Cli {
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

#[derive(clap::Args)]
struct LabArgs {
    /// The topology (TOML, JSON, an ipvsadm script or dump, keepalived.conf).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// With several FILEs: prove each as its own lab, one after the other, in one
    /// kernel (one UML boot for all); one report each, exit 1 if any fails.
    #[arg(long)]
    each: bool,
    /// Connections per service.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Client addresses to connect from, in turn (for schedulers that hash the source).
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Run this many copies of the lab at once in one kernel (they must not collide).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// How to put the configuration in place: lvsdr's own netlink client, or the generated
    /// artifacts run with the real tools (director and real-server scripts; `ipvsadm -R`; keepalived).
    #[arg(long, value_enum, default_value = "netlink")]
    apply_with: ApplyWith,
    #[arg(long, value_enum, default_value = "human")]
    format: OutputFormat,
    /// Leave the lab up (host kernel only) and print how to enter it; Ctrl-C removes it.
    #[arg(long)]
    keep: bool,
    /// auto: the host kernel if it has IPVS, else User-Mode Linux.
    #[arg(long, value_enum, default_value = "auto")]
    kernel: KernelChoice,
    /// Give up (and clean up) after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    #[arg(long, value_enum)]
    from: Option<InputFormat>,
    /// Also check IPVS's traffic statistics (packets in > 0, out = 0). The kernel refreshes
    /// them every 2 s, so this waits up to one refresh; the four proofs need no timer.
    #[arg(long)]
    ipvs_stats: bool,
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
    Lab(LabArgs),
    /// Remove what labs killed outright left behind: namespaces, keepalived daemons and
    /// their folders, UML job folders and the UML kernels still running for them. Labs
    /// that are still running are left alone.
    Clean,
    /// Check lvsdr's IPVS client against this kernel: add, edit, list and delete in a
    /// namespace of its own (needs root and IPVS; run it in UML with `kernel-exec`).
    #[command(hide = true)]
    IpvsCheck,
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

fn read(file: &Path) -> Result<String, ExitCode> {
    std::fs::read_to_string(file).map_err(|e| {
        eprintln!("error: cannot read {}: {e}", file.display());
        ExitCode::from(2)
    })
}

/// Loads a topology, printing a rustc-style error naming file, line and column.
fn load(file: &Path, from: Option<InputFormat>) -> Result<(String, lvsdr_core::Topology), ExitCode> {
    let text = read(file)?;
    let (_, result) = lvsdr_core::load(&text, from.map(InputFormat::core));
    match result {
        Ok((t, _)) => Ok((text, t)),
        Err(e) => {
            let style = Style {
                color: std::io::stderr().is_terminal(),
            };
            eprint!("{}", render_human(&[e.to_diagnostic()], &text, &file.display().to_string(), style));
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    // Behave like other Unix tools when the reader goes away (`lvsdr rules | head`).
    // SAFETY: setting a signal disposition before any thread starts.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match run_cli(cli) {
        Ok(code) | Err(code) => code,
    }
}

fn run_cli(cli: Cli) -> Result<ExitCode, ExitCode> {
    let color = std::io::stdout().is_terminal();
    match cli.command {
        Cmd::Lint { file, format, from, fix } => {
            let text = read(&file)?;
            let analysis = lvsdr_core::analyze(&text, from.map(InputFormat::core));
            if fix {
                let fixes: Vec<_> = analysis
                    .diagnostics
                    .iter()
                    .filter_map(|d| d.fix.as_ref())
                    .filter(|f| f.applicability == lvsdr_core::diagnostic::Applicability::Safe)
                    .collect();
                if !fixes.is_empty() {
                    let fixed = lvsdr_core::diagnostic::apply_fixes(&text, fixes.iter().copied());
                    std::fs::write(&file, fixed).map_err(|e| {
                        eprintln!("error: cannot write {}: {e}", file.display());
                        ExitCode::from(2)
                    })?;
                    eprintln!("applied {} safe fix(es) to {}", fixes.len(), file.display());
                    return run_cli(Cli {
                        command: Cmd::Lint {
                            file,
                            format,
                            from,
                            fix: false,
                        },
                    });
                }
            }
            let name = file.display().to_string();
            match format {
                OutputFormat::Json => {
                    let located: Vec<_> = analysis.diagnostics.iter().map(|d| d.located(&text)).collect();
                    println!("{}", serde_json::to_string_pretty(&located).unwrap_or_default());
                }
                OutputFormat::Human => {
                    print!("{}", render_human(&analysis.diagnostics, &text, &name, Style { color }));
                    let count = |s| analysis.diagnostics.iter().filter(|d| d.severity == s).count();
                    println!(
                        "{name} ({}): {} error(s), {} warning(s), {} note(s)",
                        analysis.format.name(),
                        count(Severity::Error),
                        count(Severity::Warning),
                        count(Severity::Info)
                    );
                }
            }
            if analysis.topology.is_none() {
                Err(ExitCode::from(2))
            } else if analysis.has_errors() {
                Err(ExitCode::from(1))
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }
        Cmd::Explain { code } => match lvsdr_core::lint::doc(&code) {
            Some(m) => {
                println!("{} ({}, {}): {}\n", m.code, m.name, m.severity.name(), m.summary);
                println!("{}", m.doc.trim_end());
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("error: no rule `{code}`. `lvsdr rules` lists them all.");
                Err(ExitCode::from(2))
            }
        },
        Cmd::Rules { format } => {
            let rules = lvsdr_core::lint::all_rules();
            if format == OutputFormat::Json {
                // Every documented code: the rules, then the readers' notes (DR000, DR1xx).
                let metas: Vec<_> = rules.iter().map(|r| r.meta).chain(lvsdr_core::codes::READERS.iter()).collect();
                println!("{}", serde_json::to_string_pretty(&metas).unwrap_or_default());
            } else {
                for r in rules {
                    println!(
                        "{}  {:<8} {:<32} {}",
                        r.meta.code,
                        r.meta.severity.name(),
                        r.meta.name,
                        r.meta.summary
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Import { file, from } => {
            let (_, t) = load(&file, from)?;
            print!("{}", lvsdr_core::topology_file::to_toml(&t));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Render { file, artifact, from } => {
            let Some(a) = Artifact::parse(&artifact) else {
                eprintln!(
                    "error: unknown artifact `{artifact}`; use one of: {}",
                    Artifact::ALL.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
                );
                return Err(ExitCode::from(2));
            };
            let (_, t) = load(&file, from)?;
            print!("{}", lvsdr_core::render::render(&t, a));
            Ok(ExitCode::SUCCESS)
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
            let events = lvsdr_core::predict::sequential(connections, clients, t.client.address.value);
            let mut predictions = lvsdr_core::predict::predict_all(&t, &events);
            if let Some(s) = &service {
                predictions.retain(|p| &p.service == s);
                if predictions.is_empty() {
                    eprintln!(
                        "error: no service `{s}` in {}; it has: {}",
                        file.display(),
                        t.services.iter().map(|s| s.key.value.to_string()).collect::<Vec<_>>().join(", ")
                    );
                    return Err(ExitCode::from(2));
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
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Plan { file, connections, from } => {
            let (_, t) = load(&file, from)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&lvsdr_core::plan::plan(&t, connections, 1)).unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Lab(a) => lab(a, color),
        Cmd::IpvsCheck => match lvsdr_harness::ipvs::check::run() {
            Ok(lines) => {
                for l in &lines {
                    println!("{l}");
                }
                println!("{} passed, 0 failed", lines.len());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                println!("{e}");
                Err(ExitCode::from(1))
            }
        },
        Cmd::KernelExec { kernel, timeout, command } => {
            if !run::is_root() {
                eprintln!("error: {}", run::RunError::NotRoot);
                return Err(ExitCode::from(2));
            }
            let choice = kernel;
            match run::exec_in_kernel(choice, &command, std::time::Duration::from_secs(timeout)) {
                Ok((code, stdout)) => {
                    print!("{stdout}");
                    if code == 0 {
                        Ok(ExitCode::SUCCESS)
                    } else {
                        Err(ExitCode::from(code.clamp(1, 255) as u8))
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Err(ExitCode::from(3))
                }
            }
        }
        Cmd::Clean => {
            let c = lvsdr_harness::leftovers::clean();
            let list = |v: Vec<String>| {
                if v.is_empty() {
                    String::new()
                } else {
                    format!(": {}", v.join(", "))
                }
            };
            println!(
                "removed {} stale lab namespace(s){}",
                c.namespaces.len(),
                list(c.namespaces.clone())
            );
            println!(
                "removed {} stale lab folder(s){}",
                c.folders.len(),
                list(c.folders.iter().map(|f| f.display().to_string()).collect())
            );
            println!(
                "killed {} leftover process(es){}",
                c.processes.len(),
                list(c.processes.iter().map(i32::to_string).collect())
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

impl LabArgs {
    fn options(&self) -> RunOptions {
        RunOptions {
            kernel: self.kernel,
            connections: self.connections,
            clients: self.clients,
            parallel: self.parallel,
            apply: self.apply_with,
            timeout: std::time::Duration::from_secs(self.timeout),
            verify: lvsdr_harness::VerifyOptions {
                ipvs_stats: self.ipvs_stats,
                ..Default::default()
            },
        }
    }
}

fn lab(a: LabArgs, color: bool) -> Result<ExitCode, ExitCode> {
    let options = a.options();
    let LabArgs {
        files,
        each,
        connections,
        format,
        keep,
        from,
        parallel,
        ..
    } = a;
    if files.len() > 1 && !each {
        eprintln!("error: several files make one setup only with `--each`, which proves each file as its own lab.\n  Reading several files as one setup (a director's script with the real servers' script) is not supported yet.");
        return Err(ExitCode::from(2));
    }
    if files.len() > 1 && (keep || parallel > 1) {
        eprintln!("error: `--each` runs labs one after the other: it does not combine with `--keep` or `--parallel`.");
        return Err(ExitCode::from(2));
    }
    let mut topologies = Vec::new();
    for file in &files {
        topologies.push(load(file, from)?.1);
    }
    let mut progress = |line: &str| {
        eprintln!("  · {line}");
    };
    if !run::is_root() {
        eprintln!("error: {}", run::RunError::NotRoot);
        return Err(ExitCode::from(2));
    }
    if keep {
        return keep_lab(&topologies[0], &options);
    }
    for (file, topology) in files.iter().zip(&topologies) {
        eprintln!(
            "lvsdr lab {}: {} service(s), {} real server(s), {connections} connection(s) per service",
            file.display(),
            topology.services.len(),
            topology.real_servers.len()
        );
    }
    match run::run_labs(&topologies, &options, &mut progress) {
        Ok(reports) => {
            match format {
                OutputFormat::Json if reports.len() == 1 && !each => {
                    println!("{}", serde_json::to_string_pretty(&reports[0]).unwrap_or_default())
                }
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&reports).unwrap_or_default()),
                OutputFormat::Human => {
                    for r in &reports {
                        print!("{}", r.render_human(color));
                    }
                }
            }
            if reports.iter().all(|r| r.pass) {
                Ok(ExitCode::SUCCESS)
            } else {
                Err(ExitCode::from(1))
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(3))
        }
    }
}

fn keep_lab(topology: &lvsdr_core::Topology, options: &RunOptions) -> Result<ExitCode, ExitCode> {
    if options.kernel == KernelChoice::Uml || !lvsdr_harness::kernel::try_load_host_ipvs() {
        eprintln!("error: --keep needs a host kernel with IPVS (a UML lab cannot be entered from the host).\n  Load it with `modprobe ip_vs`, or run without --keep.");
        return Err(ExitCode::from(2));
    }
    let interrupted = uml::catch_interrupts();
    let plan = lvsdr_core::plan::plan(topology, options.connections, options.clients);
    let lab = lvsdr_harness::Lab::build(topology, plan, options.apply, &mut |l| eprintln!("  · {l}")).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(3)
    })?;
    println!("The lab is up. Enter a host with:");
    for h in &lab.plan.hosts {
        if let Some(ns) = lab.namespace(&h.name) {
            println!("  ip netns exec {ns} bash     # {}", h.name);
        }
    }
    println!("Press Ctrl-C to remove it.");
    while !interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(lab);
    eprintln!("lab removed");
    Ok(ExitCode::SUCCESS)
}
