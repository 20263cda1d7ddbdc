//! How the DR configuration reaches the kernel. `Netlink` is lvsdr's own
//! path; the others run the artifacts lvsdr generates with the tools users
//! run in production, so that the lab proves those artifacts too:
//! `Script` (the director and real-server scripts with `ip`, `ipvsadm` and
//! `sysctl`), `Restore` (`ipvsadm -R` with the restore file) and `Keepalived`
//! (the keepalived daemon with the generated `virtual_server` blocks).

use crate::netns::NetNs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ApplyWith {
    Netlink,
    Script,
    Restore,
    Keepalived,
}

impl ApplyWith {
    pub fn name(self) -> &'static str {
        match self {
            ApplyWith::Netlink => "netlink",
            ApplyWith::Script => "script",
            ApplyWith::Restore => "restore",
            ApplyWith::Keepalived => "keepalived",
        }
    }
    /// Whether lvsdr itself puts the VIPs and sysctls in place (all but `Script`).
    pub fn lvsdr_sets_hosts(self) -> bool {
        self != ApplyWith::Script
    }
    /// The outside program this mode needs, and the Debian package that has it.
    pub fn requires(self) -> Option<(&'static str, &'static str)> {
        match self {
            ApplyWith::Netlink => None,
            ApplyWith::Script => Some(("ipvsadm", "ipvsadm")),
            ApplyWith::Restore => Some(("ipvsadm", "ipvsadm")),
            ApplyWith::Keepalived => Some(("keepalived", "keepalived")),
        }
    }
}

fn command_in(ns: &NetNs, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let fd = ns.fd();
    // SAFETY: setns(2) is async-signal-safe; the child enters the namespace before exec.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Runs a program inside a namespace with `stdin` as its input, and waits.
pub fn run_in(ns: &NetNs, program: &str, args: &[&str], stdin: &str) -> std::io::Result<Output> {
    let mut child = command_in(ns, program, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    child.wait_with_output()
}

/// Starts a long-running program inside a namespace.
pub fn spawn_in(ns: &NetNs, program: &str, args: &[&str]) -> std::io::Result<Child> {
    command_in(ns, program, args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}

/// Whether a program can be found on PATH.
pub fn available(program: &str) -> bool {
    ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .any(|d| std::path::Path::new(d).join(program).exists())
}
