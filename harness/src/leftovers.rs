//! What a lab that was killed outright (SIGKILL, a power cut in CI) leaves
//! behind, and `lvsdr clean`, which removes it. A lab names everything it
//! makes after its process id, so an artefact is stale exactly when that
//! process is gone:
//!
//! - `/run/netns/lvsdr-PID-N-*`: namespaces of a lab on the host kernel;
//! - `/run/lvsdr/lvsdr-PID-N-`: keepalived's folder, with the pid files of
//!   the daemons it started;
//! - `$TMPDIR/lvsdr-uml-PID-N`: a UML job folder, and the `linux.uml`
//!   processes whose command line names it.

use crate::netns;
use std::path::{Path, PathBuf};

/// Folders of keepalived labs on the host kernel.
pub const DAEMON_DIR: &str = "/run/lvsdr";
/// UML job folders are `$TMPDIR/lvsdr-uml-PID-N`.
pub const JOB_DIR_PREFIX: &str = "lvsdr-uml-";
/// The kernel command-line key that tells a UML guest's init where its job
/// folder is: how a leftover kernel is found by its folder.
pub const JOB_ENV: &str = "LVSDR_JOB";

/// What `clean` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cleaned {
    pub namespaces: Vec<String>,
    pub folders: Vec<PathBuf>,
    /// Process ids killed (UML kernels and their helpers, keepalived).
    pub processes: Vec<i32>,
}

impl Cleaned {
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.folders.is_empty() && self.processes.is_empty()
    }
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid in `<prefix>PID-…`, when the name has one.
fn owner(name: &str, prefix: &str) -> Option<i32> {
    name.strip_prefix(prefix)?.split('-').next()?.parse().ok()
}

/// Entries of `dir` whose name starts with `prefix` and whose owning process is gone.
fn stale_entries(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    owner(&name, prefix).is_some_and(|pid| !alive(pid))
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Processes whose command line contains `needle`.
fn processes_naming(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn kill(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).is_ok()
}

/// Removes every stale artefact of labs whose process no longer exists.
/// Artefacts of running labs are left alone.
pub fn clean() -> Cleaned {
    let mut cleaned = Cleaned::default();
    // UML jobs: kill the kernel that still runs for a dead lab, then drop its folder.
    for dir in stale_entries(&std::env::temp_dir(), JOB_DIR_PREFIX) {
        let needle = format!("{}={}", JOB_ENV, dir.display());
        for pid in processes_naming(&needle) {
            if kill(pid) {
                cleaned.processes.push(pid);
            }
        }
        if std::fs::remove_dir_all(&dir).is_ok() {
            cleaned.folders.push(dir);
        }
    }
    // keepalived of a host lab: the pid files say which daemons are ours.
    for dir in stale_entries(Path::new(DAEMON_DIR), netns::PREFIX) {
        let pids: Vec<i32> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        for pid in pids {
            let ours =
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()));
            if ours && kill(pid) {
                cleaned.processes.push(pid);
            }
        }
        if std::fs::remove_dir_all(&dir).is_ok() {
            cleaned.folders.push(dir);
        }
    }
    cleaned.namespaces = netns::remove_stale();
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_from_names() {
        assert_eq!(owner("lvsdr-uml-1234-0", JOB_DIR_PREFIX), Some(1234));
        assert_eq!(owner("lvsdr-77-3-rs1", netns::PREFIX), Some(77));
        assert_eq!(owner("lvsdr-uml-x-0", JOB_DIR_PREFIX), None);
        assert_eq!(owner("other", netns::PREFIX), None);
    }

    /// A folder named after a process that does not exist is stale; one named after us is not.
    #[test]
    fn stale_means_the_owner_is_gone() {
        let base = std::env::temp_dir().join(format!("lvsdr-leftovers-test-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        // pid_max is at most 2^22: this pid cannot exist.
        let dead = base.join("lvsdr-uml-99999999-0");
        let live = base.join(format!("lvsdr-uml-{}-0", std::process::id()));
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        assert_eq!(stale_entries(&base, JOB_DIR_PREFIX), vec![dead]);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
