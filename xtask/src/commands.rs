//! How xtask runs things: the repository root, cargo, and commands that need
//! root (directly when we are root, else through sudo).

use crate::Result;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub(crate) fn step(title: &str) {
    eprintln!("\n==> {title}");
}

/// Runs a command, failing with its name if it fails.
pub(crate) fn run(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}");
    let status = cmd.status().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

/// A command run as root: directly when we are root, else through sudo.
pub(crate) fn privileged(program: &str) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.arg("--preserve-env=PATH,LVSDR_UML_DIR").arg(program);
        c
    }
}

pub(crate) fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs a node test script that prints one line per test and a closing
/// "N passed, M failed" line; echoes its lines under `tag` and returns
/// (passed, failed), or an error when a test failed or it did not finish.
pub(crate) fn node_tests(cmd: &mut Command, tag: &str, what: &str) -> Result<(u64, u64)> {
    let out = cmd
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        println!("{tag}: {line}");
    }
    let summary = text.lines().rev().find_map(|l| {
        let mut w = l.split_whitespace();
        let p = w.next()?.parse::<u64>().ok()?;
        w.next().filter(|x| *x == "passed,")?;
        let f = w.next()?.parse::<u64>().ok()?;
        Some((p, f))
    });
    match summary {
        Some((p, 0)) if out.status.success() => Ok((p, 0)),
        Some((_, f)) => Err(format!("{f} {what} failed")),
        None => Err(format!("the {what} did not finish ({})", out.status)),
    }
}
