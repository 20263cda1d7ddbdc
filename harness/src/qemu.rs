//! Labs on a distribution's kernel under QEMU (`--kernel qemu:6.1`): Debian's
//! stock 5.10, 6.1, 6.12 and 7.2 kernels, the ones production directors boot.
//!
//! `cargo xtask setup-kernels` puts each kernel in the cache
//! (`/var/cache/lvsdr/kernels/<series>/<package version>/`, the folder named
//! by `<series>/current`): the uncompressed `vmlinux`, and `modules.cpio`
//! with the lab's modules and their `modules.dep`. Here the host side boots
//! one: it appends a second cpio whose `/init` is a static lvsdr (this very
//! program when it is static, else `LVSDR_QEMU_INIT`, else the one xtask
//! left in the cache), and starts
//!
//! ```text
//! qemu-system-x86_64 -M microvm -kernel vmlinux -initrd … -display none -serial stdio
//!   -append 'console=ttyS0 quiet panic=-1 rdinit=/init LVSDR_SERIAL=qemu tsc_early_khz=…'
//! ```
//!
//! The guest is the serial guest of the playground's kernel
//! ([`crate::serial`]), unchanged: it says `READY`, takes one job per line and
//! answers with a `RESULT` frame, so one boot serves several labs.
//!
//! Acceleration: KVM where the host has hardware virtualisation, TCG
//! otherwise, and TCG again when a KVM boot fails. Some hosts have a
//! `/dev/kvm` that is a software stand-in (`kvm_pvm`), on which stock kernels
//! die in their decompressor: that one is not used.

use crate::job::{GuestOutcome, GuestTask, KernelSeries};
use crate::serial::{SerialResult, MARKER};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Where `cargo xtask setup-kernels` caches the kernels.
pub const KERNELS_DIR: &str = "/var/cache/lvsdr/kernels";
/// A static lvsdr for the guest's `/init`, when this program is not static.
pub const INIT_ENV: &str = "LVSDR_QEMU_INIT";
/// Forces the accelerator: `kvm` or `tcg`.
pub const ACCEL_ENV: &str = "LVSDR_QEMU_ACCEL";
/// What the guest finds on its command line, so it can name where it runs.
pub use crate::serial::SERIAL_QEMU as SERIAL_VALUE;

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("kernel {0} is not installed (looked in {1}).\n  Install it: `cargo xtask setup-kernels {0}` in a checkout of lvsdr fetches Debian's package into {KERNELS_DIR}.")]
    NotInstalled(KernelSeries, String),
    #[error("the guest needs a static lvsdr as its /init, and this program ({0}) is dynamically linked.\n  Build one (`cargo build --release --target x86_64-unknown-linux-musl --bin lvsdr`) and name it in {INIT_ENV},\n  or run `cargo xtask setup-kernels`, which leaves one in {KERNELS_DIR}/lvsdr-init.")]
    NoStaticInit(String),
    #[error("cannot start QEMU ({0}): {1}.\n  Install Debian's `qemu-system-x86` (`cargo xtask setup-kernels` does).")]
    NoQemu(String, std::io::Error),
    #[error("cannot prepare the QEMU job folder: {0}")]
    Io(#[from] std::io::Error),
    #[error("the kernel {0} did not boot to lvsdr within {1} s. Last console lines:\n{2}")]
    NoBoot(String, u64, String),
    #[error("the guest on {0} did not answer within {1} s; QEMU was stopped. Last lines:\n{2}")]
    Timeout(String, u64, String),
    #[error("QEMU stopped without a result. Last console lines:\n{0}")]
    Stopped(String),
    #[error("the guest's answer does not read: {0}")]
    BadResult(String),
}

/// A cached distribution kernel.
#[derive(Debug, Clone)]
pub struct QemuKernel {
    pub series: KernelSeries,
    pub dir: PathBuf,
    pub release: String,
    /// The Debian package(s) it came from.
    pub package: String,
}

fn kernels_dir() -> PathBuf {
    std::env::var_os("LVSDR_KERNELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(KERNELS_DIR))
}

/// The installed kernel of a series.
pub fn find(series: KernelSeries) -> Result<QemuKernel, QemuError> {
    let base = kernels_dir().join(series.name());
    let current = std::fs::read_to_string(base.join("current")).unwrap_or_default();
    let current = current.trim();
    // The name is ours (xtask wrote it), but it must not lead out of the cache.
    let dir = base.join(current);
    if current.is_empty() || current.contains('/') || current.starts_with('.') || !dir.join("vmlinux").exists() {
        return Err(QemuError::NotInstalled(series, base.display().to_string()));
    }
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default().trim().to_string();
    Ok(QemuKernel {
        series,
        release: read("release"),
        package: read("package").lines().collect::<Vec<_>>().join(" + "),
        dir,
    })
}

/// Every installed kernel, oldest series first.
pub fn installed() -> Vec<QemuKernel> {
    KernelSeries::ALL.into_iter().filter_map(|s| find(s).ok()).collect()
}

/// The accelerators to try, in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// KVM when `/dev/kvm` is there, the CPU has hardware virtualisation and
/// the module behind it is not the `kvm_pvm` stand-in; TCG after it, or alone.
pub fn accelerators() -> Vec<Accel> {
    match std::env::var(ACCEL_ENV).as_deref() {
        Ok("kvm") => return vec![Accel::Kvm],
        Ok("tcg") => return vec![Accel::Tcg],
        _ => {}
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hardware = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    let real_kvm = Path::new("/dev/kvm").exists() && hardware && !Path::new("/sys/module/kvm_pvm").exists();
    if real_kvm {
        vec![Accel::Kvm, Accel::Tcg]
    } else {
        vec![Accel::Tcg]
    }
}

/// Whether an ELF file has no program interpreter (is statically linked).
pub fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| bytes.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |o: usize| bytes.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .and_then(|v| usize::try_from(v).ok())
    };
    // ELF64, little-endian, x86_64.
    if !bytes.starts_with(b"\x7fELF\x02\x01") || u16_at(0x12) != Some(0x3e) {
        return false;
    }
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    const PT_INTERP: u32 = 3;
    (0..count).all(|i| phoff.checked_add(i * size).and_then(u32_at).is_some_and(|t| t != PT_INTERP))
}

/// The static lvsdr that becomes the guest's `/init`.
fn init_program() -> Result<Vec<u8>, QemuError> {
    let me = std::env::current_exe().unwrap_or_default();
    if let Ok(bytes) = std::fs::read("/proc/self/exe") {
        if is_static_elf(&bytes) {
            return Ok(bytes);
        }
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os(INIT_ENV).map(PathBuf::from).into_iter().collect();
    candidates.push(kernels_dir().join("lvsdr-init"));
    for c in candidates {
        if let Ok(bytes) = std::fs::read(&c) {
            if is_static_elf(&bytes) {
                return Ok(bytes);
            }
        }
    }
    Err(QemuError::NoStaticInit(me.display().to_string()))
}

/// One cpio "newc" entry.
fn cpio_entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let fields = [
        ino,
        mode,
        0,
        0,
        if mode & 0o040000 != 0 { 2 } else { 1 },
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// The second archive of the initrd: `/init`, its mount points and
/// `/dev/console` (the kernel opens it for init before devtmpfs is mounted).
pub fn init_cpio(program: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ino = 100_000;
    for dir in ["dev", "proc", "sys", "run", "tmp"] {
        cpio_entry(&mut out, ino, dir, 0o040755, (0, 0), &[]);
        ino += 1;
    }
    cpio_entry(&mut out, ino, "dev/console", 0o020600, (5, 1), &[]);
    cpio_entry(&mut out, ino + 1, "init", 0o100755, (0, 0), program);
    cpio_entry(&mut out, 0, "TRAILER!!!", 0, (0, 0), &[]);
    out
}

/// A job folder of our own for the initrd, removed when the machine goes.
fn job_folder() -> std::io::Result<PathBuf> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    for _ in 0..100 {
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("lvsdr-qemu-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temp folder name"))
}

/// A booted guest, serving jobs. Dropping it stops QEMU and removes its folder.
pub struct Machine {
    pub kernel: QemuKernel,
    pub accel: Accel,
    /// From QEMU's start to the guest's `READY`.
    pub boot: Duration,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    tail: Vec<String>,
    folder: PathBuf,
}

impl Machine {
    /// Boots the kernel, on KVM or TCG ([`accelerators`]), and waits for the guest.
    pub fn boot(kernel: &QemuKernel, timeout: Duration, progress: &mut dyn FnMut(&str)) -> Result<Machine, QemuError> {
        let folder = job_folder()?;
        let initrd = folder.join("initrd.cpio");
        let made = std::fs::read(kernel.dir.join("modules.cpio")).and_then(|mut cpio| {
            cpio.extend(init_cpio(&init_program().map_err(std::io::Error::other)?));
            std::fs::write(&initrd, cpio)
        });
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&folder);
            // Say the real reason when it is the missing static program.
            return Err(match init_program() {
                Err(no_init) => no_init,
                Ok(_) => QemuError::Io(e),
            });
        }
        let mut last = None;
        for accel in accelerators() {
            progress(&format!(
                "kernel: booting {} ({}) under QEMU ({})",
                kernel.release,
                kernel.package,
                accel.name()
            ));
            match Machine::start(kernel, accel, &folder, &initrd, timeout) {
                Ok(m) => return Ok(m),
                Err(e) => last = Some(e),
            }
        }
        let _ = std::fs::remove_dir_all(&folder);
        Err(last.unwrap_or_else(|| QemuError::Stopped(String::new())))
    }

    fn start(kernel: &QemuKernel, accel: Accel, folder: &Path, initrd: &Path, timeout: Duration) -> Result<Machine, QemuError> {
        let started = Instant::now();
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio"])
            .args(["-m", "1024", "-smp", "1", "-no-reboot", "-M", "microvm"])
            .args(["-accel", accel.name()]);
        if accel == Accel::Kvm {
            cmd.args(["-cpu", "host"]);
        }
        // Without tsc_early_khz, microvm's 5.10 and 7.2 sometimes hang calibrating the TSC.
        cmd.arg("-kernel")
            .arg(kernel.dir.join("vmlinux"))
            .arg("-initrd")
            .arg(initrd)
            .arg("-append")
            .arg(format!(
                "console=ttyS0 quiet panic=-1 rdinit=/init {}={SERIAL_VALUE} tsc_early_khz=2100000",
                crate::serial::SERIAL_ENV
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| QemuError::NoQemu("qemu-system-x86_64".into(), e))?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            return Err(QemuError::Stopped("no pipes to QEMU".into()));
        };
        let (tx, lines) = std::sync::mpsc::channel();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
                        if tx.send(text).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx2.send(format!("qemu: {l}")).is_err() {
                    break;
                }
            }
        });
        let mut m = Machine {
            kernel: kernel.clone(),
            accel,
            boot: Duration::ZERO,
            child,
            stdin,
            lines,
            tail: Vec::new(),
            // Set once it is up: a failed start leaves the initrd for the next try.
            folder: PathBuf::new(),
        };
        let ready = format!("{MARKER} READY ");
        loop {
            match m.next_line(started + timeout) {
                Ok(l) if l.starts_with(&ready) => break,
                Ok(l) if l.starts_with(&format!("{MARKER} FATAL")) => {
                    return Err(QemuError::NoBoot(kernel.release.clone(), timeout.as_secs(), m.tail_text()));
                }
                Ok(_) => {}
                Err(_) => return Err(QemuError::NoBoot(kernel.release.clone(), timeout.as_secs(), m.tail_text())),
            }
        }
        m.boot = started.elapsed();
        m.folder = folder.to_path_buf();
        Ok(m)
    }

    fn tail_text(&self) -> String {
        self.tail.join("\n")
    }

    /// The next line from the guest, keeping the last ones for errors.
    fn next_line(&mut self, deadline: Instant) -> Result<String, RecvTimeoutError> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let line = self.lines.recv_timeout(wait)?;
        if !line.trim().is_empty() && !line.starts_with(&format!("{MARKER} PROGRESS")) {
            self.tail.push(line.clone());
            if self.tail.len() > 30 {
                self.tail.remove(0);
            }
        }
        Ok(line)
    }

    /// Runs one job in the guest and returns what it handed back.
    pub fn run(&mut self, task: &GuestTask, timeout: Duration, progress: &mut dyn FnMut(&str)) -> Result<GuestOutcome, QemuError> {
        let json = serde_json::to_string(task).map_err(|e| QemuError::BadResult(e.to_string()))?;
        self.stdin.write_all(format!("{json}\n").as_bytes())?;
        self.stdin.flush()?;
        let deadline = Instant::now() + timeout;
        let progress_marker = format!("{MARKER} PROGRESS ");
        let result_marker = format!("{MARKER} RESULT ");
        loop {
            let line = match self.next_line(deadline) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(QemuError::Timeout(self.kernel.release.clone(), timeout.as_secs(), self.tail_text()))
                }
                Err(RecvTimeoutError::Disconnected) => return Err(QemuError::Stopped(self.tail_text())),
            };
            if let Some(p) = line.strip_prefix(&progress_marker) {
                progress(p);
                continue;
            }
            let Some(n) = line.strip_prefix(&result_marker) else { continue };
            let n: usize = n.trim().parse().map_err(|_| QemuError::BadResult(line.clone()))?;
            let body = self.next_line(deadline).map_err(|_| QemuError::Stopped(self.tail_text()))?;
            if body.len() != n {
                return Err(QemuError::BadResult(format!("{n} bytes announced, {} came", body.len())));
            }
            let result: SerialResult = serde_json::from_str(&body).map_err(|e| QemuError::BadResult(e.to_string()))?;
            return Ok(outcome_of(task, result));
        }
    }
}

/// The serial guest's result as the outcome a UML guest hands back.
fn outcome_of(task: &GuestTask, result: SerialResult) -> GuestOutcome {
    let reports = match task {
        GuestTask::Lab { .. } => serde_json::from_str(&result.stdout).unwrap_or_default(),
        _ => Vec::new(),
    };
    GuestOutcome {
        code: result.code,
        output: if reports.is_empty() { result.stdout } else { String::new() },
        reports,
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.folder.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.folder);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_program_is_told_from_a_dynamic_one() {
        let mut elf = vec![0u8; 0x40 + 2 * 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x12] = 0x3e;
        elf[0x20] = 0x40; // phoff
        elf[0x36] = 56; // phentsize
        elf[0x38] = 2; // phnum
        elf[0x40] = 1; // PT_LOAD
        elf[0x40 + 56] = 6; // PT_PHDR
        assert!(is_static_elf(&elf));
        elf[0x40 + 56] = 3; // PT_INTERP
        assert!(!is_static_elf(&elf));
        // Truncated or foreign input is not static, and does not panic.
        assert!(!is_static_elf(&elf[..0x50]));
        assert!(!is_static_elf(b"#!/bin/sh"));
        elf[0x38] = 0xff;
        assert!(!is_static_elf(&elf));
    }

    #[test]
    fn the_init_archive_ends_with_its_trailer() {
        let cpio = init_cpio(b"\x7fELF");
        assert_eq!(cpio.len() % 4, 0);
        let text = String::from_utf8_lossy(&cpio);
        assert!(text.contains("init\0"));
        assert!(text.contains("TRAILER!!!"));
    }
}
