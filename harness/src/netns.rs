//! Named network namespaces, as `ip netns add` makes them: a bind mount of
//! a namespace file under `/run/netns/`. Each lab owns its namespaces and
//! [`NetNs`]'s `Drop` removes them, even while unwinding.
//!
//! `setns` changes only the calling thread, so work inside a namespace runs
//! on a scoped thread of its own ([`NetNs::run`]); the caller's namespace is
//! never touched.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use lvsdr_core::names::SysctlKey;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

pub const NETNS_DIR: &str = "/run/netns";
/// Every namespace a lab makes starts with this, so leftovers are easy to find.
pub const PREFIX: &str = "lvsdr-";

#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    #[error("cannot create network namespace {name}: {source} (creating namespaces needs root or CAP_SYS_ADMIN)")]
    Create { name: String, source: std::io::Error },
    #[error("cannot enter network namespace {name}: {source}")]
    Enter { name: String, source: std::io::Error },
}

/// A named network namespace that is removed when dropped.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    path: PathBuf,
    file: File,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A prefix unique to this process and call: `lvsdr-<pid>-<n>-`.
pub fn unique_prefix() -> String {
    format!("{PREFIX}{}-{}-", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn io(e: nix::Error) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

fn ensure_netns_dir() -> std::io::Result<()> {
    std::fs::create_dir_all(NETNS_DIR)
}

/// Brings `lo` up in the calling thread's namespace (one ioctl, no netlink
/// session). A namespace starts with `lo` down, and without it the kernel has
/// no local table: IPVS refuses every destination, and nothing can talk.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a datagram socket we own for the duration, and an ifreq we fill in full.
    #[allow(unsafe_code)]
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let sock = <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as libc::Ioctl, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as libc::Ioctl, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

impl NetNs {
    /// Creates `/run/netns/<name>` holding a new, empty network namespace with
    /// `lo` up. Equivalent to `ip netns add <name>` and `ip -n <name> link set lo up`.
    pub fn create(name: &str) -> Result<NetNs, NetNsError> {
        ensure_netns_dir().map_err(|source| NetNsError::Create {
            name: name.to_string(),
            source,
        })?;
        std::thread::scope(|s| {
            s.spawn(|| NetNs::create_here(name))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Makes the namespace by moving the calling thread into it
    /// (`unshare`): only for threads of our own that end soon after.
    fn create_here(name: &str) -> Result<NetNs, NetNsError> {
        let err = |source| NetNsError::Create {
            name: name.to_string(),
            source,
        };
        let path = Path::new(NETNS_DIR).join(name);
        // O_EXCL: never take over a file someone else put there.
        std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(err)?;
        let made = unshare(CloneFlags::CLONE_NEWNET).map_err(io).and_then(|()| {
            loopback_up()?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(io)
        });
        if let Err(e) = made {
            let _ = std::fs::remove_file(&path);
            return Err(err(e));
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = umount2(&path, MntFlags::MNT_DETACH);
                let _ = std::fs::remove_file(&path);
                return Err(err(e));
            }
        };
        Ok(NetNs {
            name: name.to_string(),
            path,
            file,
        })
    }

    /// Creates several namespaces as [`NetNs::create`] does, from one thread.
    /// On an error, the ones already made are removed again.
    pub fn create_all(names: &[String]) -> Result<Vec<NetNs>, NetNsError> {
        NetNs::create_all_then(names, |_| Ok::<(), NetNsError>(())).map(|made| made.into_iter().map(|(ns, ())| ns).collect())
    }

    /// As [`NetNs::create_all`], and runs `then` in each namespace as soon as
    /// it is made, while the thread is still inside it (no second visit).
    pub fn create_all_then<T: Send, E: From<NetNsError> + Send>(
        names: &[String],
        mut then: impl FnMut(&NetNs) -> Result<T, E> + Send,
    ) -> Result<Vec<(NetNs, T)>, E> {
        ensure_netns_dir().map_err(|source| NetNsError::Create {
            name: names.first().cloned().unwrap_or_default(),
            source,
        })?;
        std::thread::scope(|s| {
            s.spawn(|| {
                names
                    .iter()
                    .map(|n| {
                        let ns = NetNs::create_here(n)?;
                        let t = then(&ns)?;
                        Ok((ns, t))
                    })
                    .collect()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Runs `f` on a thread that has entered this namespace.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R, NetNsError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetNsError::Enter {
                    name: self.name.clone(),
                    source: io(e),
                })?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Runs `f` once for each namespace, in order, on one thread that enters
    /// each in turn: one thread for many namespaces, where [`NetNs::run`]
    /// makes one each (a thread costs some twenty system calls, slow under UML).
    /// Stops at the first error `f` returns.
    pub fn run_in_each<T: Send, E: From<NetNsError> + Send>(
        namespaces: &[&NetNs],
        mut f: impl FnMut(usize) -> Result<T, E> + Send,
    ) -> Result<Vec<T>, E> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut out = Vec::with_capacity(namespaces.len());
                for (i, ns) in namespaces.iter().enumerate() {
                    ns.enter_current_thread()?;
                    out.push(f(i)?);
                }
                Ok(out)
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Enters this namespace on the *current* thread, for threads that
    /// live in it for good (probe servers).
    pub fn enter_current_thread(&self) -> Result<(), NetNsError> {
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetNsError::Enter {
            name: self.name.clone(),
            source: io(e),
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = umount2(&self.path, MntFlags::MNT_DETACH) {
            eprintln!("lvsdr: could not unmount {}: {e}", self.path.display());
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            eprintln!("lvsdr: could not remove {}: {e}", self.path.display());
        }
    }
}

/// Names of lab namespaces present now (for leak checks and `lvsdr clean`).
pub fn lab_namespaces() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(PREFIX))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Removes namespaces left by labs whose process is gone.
pub fn remove_stale() -> Vec<String> {
    let mut removed = Vec::new();
    for name in lab_namespaces() {
        let pid: Option<i32> = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse().ok());
        let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let path = Path::new(NETNS_DIR).join(&name);
            let _ = umount2(&path, MntFlags::MNT_DETACH);
            if std::fs::remove_file(&path).is_ok() {
                removed.push(name);
            }
        }
    }
    removed
}

/// The file of a sysctl key, refusing anything outside `/proc/sys/net/`.
/// [`SysctlKey`] already guarantees this; the lab checks again right before
/// it writes as root, so no future change to the key type can widen it.
fn sysctl_path(key: &SysctlKey) -> std::io::Result<String> {
    let path = key.proc_path();
    let inside = path
        .strip_prefix("/proc/sys/net/")
        .is_some_and(|rest| rest.split('/').all(|p| !p.is_empty() && p != "." && p != ".."));
    if inside {
        Ok(path)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{path}: the lab writes only below /proc/sys/net/"),
        ))
    }
}

/// Writes a sysctl inside the current thread's namespace
/// (`net.ipv4.conf.all.arp_ignore` → `/proc/sys/net/ipv4/conf/all/arp_ignore`).
/// The file must exist: nothing is ever created under `/proc/sys`.
pub fn write_sysctl(key: &SysctlKey, value: i64) -> std::io::Result<()> {
    use std::io::Write;
    let path = sysctl_path(key)?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()))
        .map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}")))
}

pub fn read_sysctl(key: &SysctlKey) -> std::io::Result<i64> {
    let path = sysctl_path(key)?;
    let text = std::fs::read_to_string(&path)?;
    text.trim()
        .parse()
        .map_err(|_| std::io::Error::other(format!("{path}: not a number")))
}
