//! `lvsdr lab`: build the lab for one or more topologies and prove DR.

use super::{load, Exit, InputOptions, Outcome, OutputFormat, TrafficOptions};
use lvsdr_harness::apply::ApplyWith;
use lvsdr_harness::lab::failover::{Failover, Pair};
use lvsdr_harness::run::{self, KernelChoice, RunOptions};
use lvsdr_harness::uml;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct LabArgs {
    /// The topology (TOML, JSON), or the files of one setup (ipvsadm scripts and dumps,
    /// keepalived.conf: a director's script with the real servers' script); with `--each`,
    /// several topologies, one lab each.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// With several FILEs: prove each as its own lab, one after the other, in one
    /// kernel (one UML boot for all); one report each, exit 1 if any fails.
    #[arg(long)]
    each: bool,
    #[command(flatten)]
    traffic: TrafficOptions,
    /// Run this many copies of the lab at once in one kernel (they must not collide).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// How to put the configuration in place: lvsdr's own netlink client, or the generated
    /// artifacts run with the real tools (director and real-server scripts; `ipvsadm -R`; keepalived).
    #[arg(long, value_enum, default_value = "netlink")]
    apply_with: ApplyWith,
    #[arg(long, value_enum, default_value = "human")]
    format: OutputFormat,
    /// List every connection and check in the human report. A lab of more than 64
    /// connections or checks (a production director) is otherwise summed up: counts per
    /// service and per kind of check, with every failed connection and check in full.
    #[arg(long, short)]
    verbose: bool,
    /// Leave the lab up (host kernel only) and print how to enter it; Ctrl-C removes it.
    #[arg(long)]
    keep: bool,
    /// auto: the host kernel if it has IPVS, else User-Mode Linux; host; uml; or
    /// qemu:SERIES, a distribution's kernel under QEMU (5.10, 6.1, 6.12, 7.2; see `lvsdr kernels`).
    #[arg(long, default_value = "auto")]
    kernel: KernelChoice,
    /// Run each FILE as its own lab on every distribution kernel installed for QEMU
    /// (or those of --series), one boot per kernel, and print one table, kernel by lab,
    /// with what differs between the kernels. A file's `# expect-fail:` header says which
    /// checks must fail. Exit 0 when every kernel did what each file expects.
    #[arg(long)]
    kernel_matrix: bool,
    /// With --kernel-matrix: only these series (comma-separated: 5.10,7.2).
    #[arg(long, value_delimiter = ',', requires = "kernel_matrix")]
    series: Vec<lvsdr_harness::KernelSeries>,
    /// Give up (and clean up) after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    #[command(flatten)]
    input: InputOptions,
    /// Also check IPVS's traffic statistics (packets in > 0, out = 0). The kernel refreshes
    /// them every 2 s, so this waits up to one refresh; the four proofs need no timer.
    #[arg(long)]
    ipvs_stats: bool,
    /// For an active/backup pair (two directors with `vrrp`): run keepalived on both,
    /// prove DR through the master, then make the master go away (`kill`: kill -9 of its
    /// keepalived; `link`: its LAN link down) and prove the VIP moved, held connections
    /// carried on, and new ones go to the backup.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "kill", value_name = "HOW")]
    failover: Option<Failover>,
    /// Capture every leg of every connection on the bridge's ports and write them to FILE
    /// as pcapng (Wireshark, `tshark -r FILE`): one interface per host, each frame of a
    /// connection commented with its service and the real server the kernel chose. A failed
    /// check names the frames that show it. With several labs, FILE gets `-2`, `-3`… for the others.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
}

impl LabArgs {
    fn options(&self) -> RunOptions {
        RunOptions {
            kernel: self.kernel,
            connections: self.traffic.connections,
            clients: self.traffic.clients,
            parallel: self.parallel,
            timeout: std::time::Duration::from_secs(self.timeout),
            verify: lvsdr_harness::VerifyOptions {
                ipvs_stats: self.ipvs_stats,
                frames: self.pcap.is_some(),
                ..Default::default()
            },
            // keepalived sets up the pair's directors.
            apply: if self.failover.is_some() {
                ApplyWith::Keepalived
            } else {
                self.apply_with
            },
            failover: self.failover,
            hold: self.traffic.hold,
        }
    }
}

pub fn lab(a: LabArgs, color: bool) -> Outcome {
    let options = a.options();
    if a.kernel_matrix {
        return kernel_matrix(&a.files, &a.series, &options, &a.input, a.format);
    }
    let a_apply = a.apply_with;
    let LabArgs {
        files,
        each,
        format,
        keep,
        verbose,
        input,
        parallel,
        pcap,
        ..
    } = a;
    if options.failover.is_some() && (keep || !matches!(a_apply, ApplyWith::Netlink | ApplyWith::Keepalived)) {
        eprintln!(
            "error: `--failover` runs keepalived on both directors of the pair: it does not combine with `--keep` or `--apply-with {}`.",
            a_apply.name()
        );
        return Err(Exit::Unusable);
    }
    if files.len() > 1 && each && (keep || parallel > 1) {
        eprintln!("error: `--each` runs labs one after the other: it does not combine with `--keep` or `--parallel`.");
        return Err(Exit::Unusable);
    }
    // Several files are one setup (a director's script with the real servers'), or
    // with `--each` one lab each.
    let mut topologies = Vec::new();
    let groups: Vec<Vec<PathBuf>> = if each {
        files.iter().map(|f| vec![f.clone()]).collect()
    } else {
        vec![files.clone()]
    };
    for group in &groups {
        topologies.push(load(group, &input)?.1);
    }
    if options.failover.is_some() {
        for t in &topologies {
            if let Err(e) = Pair::of(t, &lvsdr_core::plan::plan(t, 1, 1)) {
                eprintln!("error: {e}");
                return Err(Exit::Unusable);
            }
        }
    }
    let mut progress = |line: &str| {
        eprintln!("  · {line}");
    };
    if !run::is_root() {
        eprintln!("error: {}", run::RunError::NotRoot);
        return Err(Exit::Unusable);
    }
    for (group, topology) in groups.iter().zip(&topologies) {
        if let Err(e) = lvsdr_core::plan::check_size(topology, options.connections, options.parallel) {
            let files = group.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" ");
            eprintln!("error: {files}: {e}");
            return Err(Exit::Unusable);
        }
    }
    if keep && pcap.is_some() {
        eprintln!("error: `--pcap` writes the frames of the lab's probes: it does not combine with `--keep`.");
        return Err(Exit::Unusable);
    }
    if keep {
        return keep_lab(&topologies[0], &options);
    }
    for (group, topology) in groups.iter().zip(&topologies) {
        eprintln!(
            "lvsdr lab {}: {} service(s), {} real server(s), {} connection(s) per service",
            group.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" "),
            topology.services.len(),
            topology.real_servers.len(),
            options.connections
        );
    }
    match lvsdr_harness::launch::run_labs(&topologies, &options, &mut progress) {
        Ok(reports) => {
            match format {
                OutputFormat::Json if reports.len() == 1 && !each => {
                    println!("{}", serde_json::to_string_pretty(&reports[0]).unwrap_or_default())
                }
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&reports).unwrap_or_default()),
                OutputFormat::Human => {
                    for r in &reports {
                        print!("{}", r.render_human_with(color, verbose));
                    }
                }
            }
            if let Some(file) = &pcap {
                super::pcap::write_all(file, &reports, matches!(format, OutputFormat::Human))?;
            }
            if reports.iter().all(|r| r.pass) {
                Ok(Exit::Success)
            } else {
                Err(Exit::Failed)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(Exit::Broken)
        }
    }
}

fn keep_lab(topology: &lvsdr_core::Topology, options: &RunOptions) -> Outcome {
    if options.kernel == KernelChoice::Uml || !lvsdr_harness::kernel::try_load_host_ipvs() {
        eprintln!("error: --keep needs a host kernel with IPVS (a UML lab cannot be entered from the host).\n  Load it with `modprobe ip_vs`, or run without --keep.");
        return Err(Exit::Unusable);
    }
    let interrupted = uml::catch_interrupts();
    let plan = lvsdr_core::plan::plan_held(topology, options.connections, options.clients, options.hold);
    let lab = lvsdr_harness::Lab::build(topology, plan, options.apply, &mut |l| eprintln!("  · {l}")).map_err(|e| {
        eprintln!("error: {e}");
        Exit::Broken
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
    Ok(Exit::Success)
}

/// `lvsdr lab FILE… --kernel-matrix`: every file on every installed kernel.
fn kernel_matrix(
    files: &[PathBuf],
    series: &[lvsdr_harness::KernelSeries],
    options: &RunOptions,
    input: &InputOptions,
    format: OutputFormat,
) -> Outcome {
    use lvsdr_harness::matrix;
    let mut labs = Vec::new();
    for f in files {
        let topology = load(std::slice::from_ref(f), input)?.1;
        let text = std::fs::read_to_string(f).unwrap_or_default();
        labs.push(matrix::MatrixLab {
            name: topology.name.clone(),
            expect_fail: matrix::header_list(&text, "expect-fail"),
            topology,
        });
    }
    if !run::is_root() {
        eprintln!("error: {}", run::RunError::NotRoot);
        return Err(Exit::Unusable);
    }
    let kernels = matrix::kernels(series).map_err(|e| {
        eprintln!("error: {e}");
        Exit::Broken
    })?;
    if kernels.is_empty() {
        eprintln!(
            "error: no distribution kernel is installed for QEMU. `cargo xtask setup-kernels` fetches Debian's 5.10, 6.1, 6.12 and 7.2."
        );
        return Err(Exit::Broken);
    }
    let rows = matrix::run(&kernels, &labs, options, &mut |l| eprintln!("  · {l}"));
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default()),
        OutputFormat::Human => print!("{}", matrix::render(&rows)),
    }
    if rows.iter().all(|r| r.as_expected()) {
        Ok(Exit::Success)
    } else {
        Err(Exit::Failed)
    }
}

/// `lvsdr kernels`: the distribution kernels installed for QEMU, and those that can be.
pub fn kernels() -> Outcome {
    println!("{:<6} {:<24} package", "series", "release");
    for s in lvsdr_harness::KernelSeries::ALL {
        match lvsdr_harness::qemu::find(s) {
            Ok(k) => println!("{:<6} {:<24} {}", s.name(), k.release, k.package),
            Err(_) => println!("{:<6} {:<24} not installed: cargo xtask setup-kernels {}", s.name(), "-", s.name()),
        }
    }
    let accel: Vec<&str> = lvsdr_harness::qemu::accelerators().iter().map(|a| a.name()).collect();
    println!(
        "
QEMU accelerator here: {}",
        accel.join(", then ")
    );
    Ok(Exit::Success)
}
