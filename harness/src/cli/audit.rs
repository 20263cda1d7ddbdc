//! `lvsdr audit`: this machine's live state against its setup, read-only.

use super::{Exit, InputOptions, Outcome};
use lvsdr_core::audit::{self, HostRef, Options};
use lvsdr_core::Format;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum AuditFormat {
    Human,
    Json,
    Prometheus,
}

/// `lvsdr audit --help`: what it compares, how it reads, the exit codes.
pub const LONG_ABOUT: &str = "Compare this machine's live state with its setup, and report each difference (drift).\n\n\
It reads the live state of the network namespace it runs in, and only reads: IPVS and rtnetlink\n\
dumps (as `ipvsadm -L -n` and `ip addr show` do), /proc/sys/net and /proc/net. It changes nothing.\n\n\
On a director it compares the IPVS table field by field (services, schedulers, flags, persistence,\n\
real servers with method, weight and thresholds; missing and extra entries), the VIPs on the NIC,\n\
the sysctls the setup sets, and with keepalived, the keepalived process and the VIPs its VRRP role\n\
says it holds. A real server's weight 0 under keepalived's health checker is a note (quiesced).\n\
On a real server it compares the VIPs on lo, arp_ignore/arp_announce/rp_filter as the kernel uses\n\
them (the larger of `all` and the interface), and looks for a listener on every service port.\n\n\
Each kind of drift has a code (DR200-DR212): `lvsdr explain DR205`. Each finding carries the\n\
command that restores the setup's state.\n\n\
Exit status: 0 the machine matches its setup (notes allowed), 1 drift found, 2 the input cannot\n\
be read, the options clash, or no single host of the setup is this machine, 3 the live state\n\
could not be read (e.g. the IPVS table of a director without root or without ip_vs loaded).";

/// `lvsdr audit --help`: examples.
pub const EXAMPLES: &str = "Examples:
  # Which host? The one whose own address is on this machine; it says which.
  sudo lvsdr audit /etc/lvsdr/topology.toml
  sudo lvsdr audit topology.toml --host rs1 --format json
  sudo lvsdr audit /etc/keepalived/keepalived.conf rs.sh --from keepalived,script
  # For node_exporter's textfile collector, every minute from a systemd timer:
  sudo lvsdr audit topology.toml --format prometheus \\
    --textfile /var/lib/prometheus/node-exporter/lvsdr.prom";

#[derive(clap::Args)]
pub struct AuditArgs {
    /// The setup, as for `lint`: a topology (TOML, JSON), or ipvsadm scripts, `ipvsadm -S`
    /// dumps and keepalived.conf files read as one setup.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The host of the setup this machine is (`director`, `rs1`, one director of a pair).
    /// Left out: the host whose own address is on this machine.
    #[arg(long)]
    host: Option<String>,
    #[arg(long, value_enum, default_value = "human")]
    format: AuditFormat,
    #[command(flatten)]
    input: InputOptions,
    /// Also write the Prometheus text to this file, atomically (a temporary file in the
    /// same folder, then renamed): for node_exporter's textfile collector (`*.prom`).
    #[arg(long)]
    textfile: Option<PathBuf>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Writes `text` to `path` atomically: a temporary file beside it, then a rename.
fn write_atomically(path: &Path, text: &str) -> Result<(), Exit> {
    let fail = |e: std::io::Error| {
        eprintln!("error: cannot write {}: {e}", path.display());
        Exit::Unusable
    };
    let name = path.file_name().ok_or_else(|| fail(std::io::Error::other("not a file name")))?;
    let temp = path.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let written = std::fs::File::create(&temp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|_| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(fail(e));
    }
    Ok(())
}

/// `lvsdr audit`
pub fn audit(args: AuditArgs, color: bool) -> Outcome {
    let started = Instant::now();
    let (setup, t) = super::load(&args.files, &args.input)?;
    let keepalived_configs: Vec<String> = args
        .files
        .iter()
        .zip(&setup.files)
        .filter(|(_, f)| f.format == Format::Keepalived)
        .map(|(p, _)| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()).display().to_string())
        .collect();
    let options = Options {
        keepalived: !keepalived_configs.is_empty() || t.directors.iter().any(|d| d.vrrp.is_some()),
        keepalived_configs,
    };
    let source = args.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" ");
    // An audit that cannot run still says so to Prometheus: `lvsdr_audit_up 0`.
    let unreadable = |host: &str, message: String, exit: Exit| -> Exit {
        eprintln!("error: {message}");
        let text = audit::output::prometheus_unreadable(host, now(), started.elapsed().as_secs_f64());
        if args.format == AuditFormat::Prometheus {
            print!("{text}");
        }
        if let Some(path) = &args.textfile {
            if let Err(e) = write_atomically(path, &text) {
                return e;
            }
        }
        exit
    };
    let host: HostRef = match &args.host {
        Some(name) => match audit::host_named(&t, name) {
            Some(h) => h,
            None => {
                let names: Vec<String> = audit::hosts(&t).into_iter().map(|(n, _)| n).collect();
                return Err(unreadable(
                    name,
                    format!("no host `{name}` in {source}; it has: {}", names.join(", ")),
                    Exit::Unusable,
                ));
            }
        },
        None => {
            let present = lvsdr_harness::audit::present_addresses()
                .map_err(|e| unreadable("", format!("cannot find which host this is: {e}"), Exit::Broken))?;
            match audit::identify(&t, &present).as_slice() {
                [(name, h)] => {
                    eprintln!("auditing host `{name}` of {source}: its address is on this machine (`--host` names another)");
                    *h
                }
                [] => {
                    let names: Vec<String> = audit::hosts(&t).into_iter().map(|(n, _)| n).collect();
                    return Err(unreadable(
                        "",
                        format!(
                            "none of the hosts of {source} ({}) has its address on this machine: name one with `--host`",
                            names.join(", ")
                        ),
                        Exit::Unusable,
                    ));
                }
                many => {
                    let names: Vec<&str> = many.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(unreadable(
                        "",
                        format!(
                            "several hosts of {source} have their address on this machine ({}): name one with `--host`",
                            names.join(", ")
                        ),
                        Exit::Unusable,
                    ));
                }
            }
        }
    };
    let name = host.name(&t);
    let wants = audit::wants(&t, host, &options);
    let live = lvsdr_harness::audit::read(&wants).map_err(|e| {
        let hint = if lvsdr_harness::run::is_root() {
            ""
        } else {
            " (reading the IPVS table needs root: run it with sudo)"
        };
        unreadable(&name, format!("cannot read the live state of `{name}`: {e}{hint}"), Exit::Broken)
    })?;
    let result = audit::audit(&t, host, &live, &options);
    let elapsed = started.elapsed().as_secs_f64();
    let metrics = audit::output::prometheus(&result, now(), elapsed);
    match args.format {
        AuditFormat::Human => print!("{}", audit::output::human(&result, &source, color)),
        AuditFormat::Json => println!("{}", serde_json::to_string_pretty(&result).unwrap_or_default()),
        AuditFormat::Prometheus => print!("{metrics}"),
    }
    if let Some(path) = &args.textfile {
        write_atomically(path, &metrics)?;
    }
    if result.ok {
        Ok(Exit::Success)
    } else {
        Err(Exit::Failed)
    }
}
