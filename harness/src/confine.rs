//! The boundary around a User-Mode Linux guest on the host.
//!
//! UML boots with the host's `/` as its root file system (hostfs), and a UML
//! kernel reaches the host's files with the rights of the host process that
//! runs it. Anything root inside the guest can `mount -t hostfs none /x -o
//! /etc`: a keepalived notify script, a bug in a user's test binary (the
//! guest's init), a command given to `lvsdr kernel-exec`. So when lvsdr runs
//! as root, the kernel does not:
//!
//! 1. it runs as `nobody` (no supplementary groups), so hostfs opens the
//!    host's files as `nobody`: nothing of root's is writable, nothing
//!    private (mode 0600) readable;
//! 2. in a mount namespace of its own, where every mount is read-only except
//!    the job folder (owned by `nobody`, where the guest writes its report)
//!    and a private tmpfs on `/dev/shm` (UML's memory file), so that even
//!    world-writable host folders (`/tmp`, `/var/tmp`) are out of reach.
//!
//! UML's `hostfs=` option would move hostfs's root, but the guest needs the
//! host's own `/` (the lvsdr binary, keepalived, the C library, the kernel
//! modules), so the read-only namespace is the boundary instead. When lvsdr is
//! not root, the kernel runs with the caller's own rights, as any program of
//! theirs does.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The account the UML kernel runs under when lvsdr is root.
pub const GUEST_USER: &str = "nobody";

/// What the child between `fork` and `exec` needs, prepared beforehand (no
/// allocation happens after the fork).
#[derive(Debug)]
pub struct Confinement {
    uid: libc::uid_t,
    gid: libc::gid_t,
    job_dir: CString,
    shm: Option<CString>,
}

/// `struct mount_attr` of `mount_setattr(2)` (Linux 5.12).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const AT_RECURSIVE: libc::c_uint = 0x8000;

impl Confinement {
    /// The confinement for a UML kernel whose job folder is `job_dir`, when
    /// lvsdr runs as root; `None` otherwise. Hands the job folder to the
    /// guest's account.
    pub fn prepare(job_dir: &Path) -> io::Result<Option<Confinement>> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let user = nix::unistd::User::from_name(GUEST_USER)
            .ok()
            .flatten()
            .ok_or_else(|| io::Error::other(format!("there is no `{GUEST_USER}` account to run the UML kernel as")))?;
        let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
        std::os::unix::fs::chown(job_dir, Some(uid), Some(gid))?;
        let shm = Path::new("/dev/shm");
        Ok(Some(Confinement {
            uid,
            gid,
            job_dir: cstring(job_dir)?,
            shm: shm.is_dir().then(|| cstring(shm)).transpose()?,
        }))
    }

    pub fn uid(&self) -> libc::uid_t {
        self.uid
    }

    /// Whether the guest's account can open `path` for reading and, with
    /// `exec`, run it: every folder above it searchable and the file readable
    /// by it, from the mode bits.
    pub fn can_read(&self, path: &Path, exec: bool) -> bool {
        use std::os::unix::fs::MetadataExt;
        let allowed = |meta: &std::fs::Metadata, bits: u32| {
            let mode = meta.mode();
            let shift = if meta.uid() == self.uid {
                6
            } else if meta.gid() == self.gid {
                3
            } else {
                0
            };
            (mode >> shift) & bits == bits
        };
        let Ok(path) = path.canonicalize() else { return false };
        let folders_ok = path
            .ancestors()
            .skip(1)
            .all(|dir| std::fs::metadata(dir).is_ok_and(|m| allowed(&m, 0o1)));
        folders_ok && std::fs::metadata(&path).is_ok_and(|m| allowed(&m, if exec { 0o5 } else { 0o4 }))
    }

    /// A copy of `exe` in the job folder, readable and runnable by the
    /// guest's account, for an init it cannot reach where it is (a test
    /// binary under `/root`).
    pub fn reachable_copy(&self, exe: &Path, job_dir: &Path) -> io::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        if self.can_read(exe, true) {
            return Ok(exe.to_path_buf());
        }
        let copy = job_dir.join("init");
        std::fs::copy(exe, &copy)?;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
        Ok(copy)
    }

    /// In the child, between `fork` and `exec`: the private read-only mount
    /// namespace, then the guest's account. Only system calls, no allocation.
    ///
    /// # Safety
    /// Call only from a `pre_exec` hook of the child about to run the kernel.
    #[allow(unsafe_code)]
    pub unsafe fn enter(&self) -> io::Result<()> {
        let fail = |r: libc::c_int| if r != 0 { Err(io::Error::last_os_error()) } else { Ok(()) };
        let root = c"/".as_ptr();
        let none = std::ptr::null::<libc::c_char>();
        // SAFETY (all calls below): arguments are NUL-terminated strings owned
        // by `self` or static, or null where the system call allows it.
        unsafe {
            fail(libc::unshare(libc::CLONE_NEWNS))?;
            // Nothing done here propagates back to the host's mounts.
            fail(libc::mount(none, root, none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()))?;
            // The job folder becomes a mount of its own, to stay writable below.
            let job = self.job_dir.as_ptr();
            fail(libc::mount(job, job, none, libc::MS_BIND, std::ptr::null()))?;
            if let Some(shm) = &self.shm {
                fail(libc::mount(
                    c"tmpfs".as_ptr(),
                    shm.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    c"mode=1777".as_ptr().cast(),
                ))?;
            }
            let set = |path: *const libc::c_char, flags: libc::c_uint, attr: &MountAttr| {
                libc::syscall(
                    libc::SYS_mount_setattr,
                    libc::AT_FDCWD,
                    path,
                    flags,
                    attr as *const MountAttr,
                    std::mem::size_of::<MountAttr>(),
                ) as libc::c_int
            };
            let readonly = MountAttr {
                attr_set: MOUNT_ATTR_RDONLY,
                attr_clr: 0,
                propagation: 0,
                userns_fd: 0,
            };
            let writable = MountAttr {
                attr_set: 0,
                attr_clr: MOUNT_ATTR_RDONLY,
                propagation: 0,
                userns_fd: 0,
            };
            fail(set(root, AT_RECURSIVE, &readonly))?;
            fail(set(job, 0, &writable))?;
            if let Some(shm) = &self.shm {
                fail(set(shm.as_ptr(), 0, &writable))?;
            }
            fail(libc::setgroups(0, std::ptr::null()))?;
            fail(libc::setgid(self.gid))?;
            fail(libc::setuid(self.uid))?;
        }
        Ok(())
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}
