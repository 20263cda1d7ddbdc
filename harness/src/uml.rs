//! Runs the lab under User-Mode Linux when the host kernel has no IPVS.
//!
//! The host side ([`run`]) boots `linux.uml` with the host filesystem as a
//! read-only root and this very binary as `init`, passing a job folder on
//! the kernel command line. The guest side ([`guest_init`]) mounts what it
//! needs, loads the IPVS modules, runs the lab exactly as on a host kernel,
//! writes the report and the exit status into the job folder, and powers
//! off. The host side enforces a timeout, always kills the whole UML process
//! group, and removes the job folder.

use crate::job::{GuestOutcome, GuestProgress, GuestTask, TaskRunner};
use crate::leftovers::JOB_ENV;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const GUEST_JOB_DIR: &str = "/run/lvsdr-job";
/// The file in the job folder that holds the guest's [`GuestOutcome`], as JSON.
const OUTCOME_FILE: &str = "outcome.json";

/// What the guest is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub task: GuestTask,
    /// `lib/modules/<release>` of the UML kernel.
    pub modules: PathBuf,
    /// The caller's working directory, so relative paths resolve.
    pub cwd: PathBuf,
}

/// A UML kernel and its modules.
#[derive(Debug, Clone)]
pub struct UmlKernel {
    pub binary: PathBuf,
    pub modules: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum UmlError {
    #[error("this kernel has no IPVS and no User-Mode Linux kernel was found to run the lab in (looked in {looked}).\n  Install one: `cargo xtask setup-uml` in a checkout of lvsdr ({checkout}) puts Debian's user-mode-linux into /var/cache/lvsdr/uml,\n  or point LVSDR_UML_DIR at a folder holding `linux.uml` and `modules/<release>/`.\n  Or load IPVS into this kernel: `sudo modprobe ip_vs`.")]
    NotFound { looked: String, checkout: String },
    #[error("cannot prepare the UML job folder: {0}")]
    Io(#[from] std::io::Error),
    #[error("the UML kernel did not finish within {0} s; it was killed. Last console lines:\n{1}")]
    Timeout(u64, String),
    #[error("interrupted; the UML kernel was stopped and its files removed")]
    Interrupted,
    #[error("this UML kernel cannot run user space on this CPU (`ptrace set fp regs failed`: its XSAVE area is too small for this CPU's AMX state). Use UML 6.14 or newer: `cargo xtask setup-uml` installs one.")]
    CpuUnsupported,
    #[error("the UML kernel stopped without a result ({0}). Last console lines:\n{1}")]
    NoResult(String, String),
}

fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("LVSDR_UML_DIR") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("/var/cache/lvsdr/uml"));
    dirs
}

/// Finds a UML kernel: `$LVSDR_UML_DIR`, then the one `cargo xtask setup-uml`
/// installs, then Debian's `/usr/bin/linux.uml`.
pub fn find() -> Result<UmlKernel, UmlError> {
    let mut looked = Vec::new();
    for dir in candidates() {
        let binary = dir.join("linux.uml");
        looked.push(dir.display().to_string());
        if binary.exists() {
            if let Some(modules) = first_release(&dir.join("modules")) {
                return Ok(UmlKernel { binary, modules });
            }
        }
    }
    let debian = PathBuf::from("/usr/bin/linux.uml");
    looked.push("/usr/bin/linux.uml".into());
    if debian.exists() {
        if let Some(modules) = first_release(Path::new("/usr/lib/uml/modules")) {
            return Ok(UmlKernel { binary: debian, modules });
        }
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .display()
        .to_string();
    Err(UmlError::NotFound {
        looked: looked.join(", "),
        checkout,
    })
}

fn first_release(dir: &Path) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("modules.dep").exists())
        .collect();
    entries.sort();
    entries.pop()
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes Ctrl-C and SIGTERM set a flag instead of killing us, so that
/// cleanup runs. Returns the flag.
pub fn catch_interrupts() -> &'static AtomicBool {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        #[allow(unsafe_code)]
        unsafe {
            let _ = sigaction(s, &action);
        }
    }
    &INTERRUPTED
}

struct JobDir(PathBuf);
impl Drop for JobDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Kernel parameters that take a UML boot from about 1.0 s to 0.1 s and make
/// its system calls cheaper, measured on UML 7.2.7 (BENCHMARKS.md):
/// - `initcall_blacklist=raid6_init`: Debian's kernel builds the RAID-6 library
///   in, and its init times each algorithm for 16 jiffies: 0.72 s of every boot.
///   No lab uses RAID (md or btrfs), which are the library's only callers.
/// - `lpj=`: skips the delay-loop calibration (40–80 ms). The value only sets how
///   long `udelay()` spins, which nothing in a lab depends on; it is this
///   machine's measured value.
/// - `seccomp=auto`: UML runs its processes' system calls through a seccomp filter
///   and shared memory instead of ptrace where the host allows it (about 20 % off
///   the probes), and falls back to ptrace where it does not.
const FAST_BOOT: [&str; 3] = ["initcall_blacklist=raid6_init", "lpj=29102080", "seccomp=auto"];

/// Boots UML with this very program as its init, runs `task` inside, and
/// returns its exit code and standard output. Progress lines from the guest go
/// to `progress`. Any binary that links lvsdr-harness can be that init: see
/// [`crate::guest`].
pub fn run(kernel: &UmlKernel, task: &GuestTask, timeout: Duration, progress: &mut dyn FnMut(&str)) -> Result<GuestOutcome, UmlError> {
    let interrupted = catch_interrupts();
    let dir = JobDir(tempdir()?);
    let job = Job {
        task: task.clone(),
        modules: kernel.modules.clone(),
        cwd: std::env::current_dir()?,
    };
    std::fs::write(dir.0.join("job.json"), serde_json::to_vec(&job).map_err(std::io::Error::other)?)?;
    let console = std::fs::File::create(dir.0.join("console.log"))?;
    let exe = std::env::current_exe()?;
    // As root, the kernel runs as `nobody` in a read-only view of the host (see `confine`).
    let confinement = crate::confine::Confinement::prepare(&dir.0)?;
    let init = match &confinement {
        Some(c) => {
            for (path, exec) in [(&kernel.binary, true), (&kernel.modules.join("modules.dep"), false)] {
                if !c.can_read(path, exec) {
                    return Err(UmlError::Io(std::io::Error::other(format!(
                        "the UML kernel runs as `{}`, which cannot read {}: make it and the folders above it readable by others (chmod o+rX)",
                        crate::confine::GUEST_USER,
                        path.display()
                    ))));
                }
            }
            c.reachable_copy(&exe, &dir.0)?
        }
        None => exe,
    };
    let mut command = Command::new(&kernel.binary);
    // If lvsdr is killed outright, the kernel goes with it (`lvsdr clean` removes the folder).
    // SAFETY: unshare(2), mount(2), mount_setattr(2), setgroups(2), setgid(2),
    // setuid(2) and prctl(2) are system calls on values prepared before the
    // fork; the parent-death signal is set last, since a change of user clears it.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            if let Some(c) = &confinement {
                c.enter()?;
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // UML's memory file and its umid folder: the private /dev/shm, or the job folder.
    let scratch = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        dir.0.clone()
    };
    let mut child = command
        .env("TMPDIR", &scratch)
        .args([
            "mem=256M".to_string(),
            "root=/dev/root".into(),
            "rootfstype=hostfs".into(),
            "rootflags=/".into(),
            "ro".into(),
            "quiet".into(),
            format!("init={}", init.display()),
            format!("uml_dir={}", dir.0.display()),
            "con=null".into(),
            "con0=fd:0,fd:1".into(),
            format!("{JOB_ENV}={}", dir.0.display()),
        ])
        .args(FAST_BOOT)
        .stdin(Stdio::null())
        .stdout(console.try_clone()?)
        .stderr(console)
        .process_group(0)
        .spawn()?;
    let pgid = child.id() as i32;
    let kill_all = || {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
    };
    let started = Instant::now();
    let progress_path = dir.0.join("progress.log");
    let mut offset = 0u64;
    let mut last_console_check = Instant::now();
    let mut forward = |offset: &mut u64| {
        if let Ok(mut f) = std::fs::File::open(&progress_path) {
            if f.seek(SeekFrom::Start(*offset)).is_ok() {
                let mut text = String::new();
                if f.read_to_string(&mut text).is_ok() {
                    let complete = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
                    for line in text[..complete].lines() {
                        progress(line);
                    }
                    *offset += complete as u64;
                }
            }
        }
    };
    let mut pinned = false;
    let status = loop {
        forward(&mut offset);
        // The guest's first line says it has booted: from then on, keep the kernel on one CPU.
        if !pinned && offset > 0 {
            pinned = true;
            pin_group(pgid);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                kill_all();
                return Err(e.into());
            }
        }
        if interrupted.load(Ordering::SeqCst) {
            kill_all();
            let _ = child.wait();
            return Err(UmlError::Interrupted);
        }
        // A panicking UML kernel does not exit on its own: notice it and stop at once.
        if last_console_check.elapsed() > Duration::from_millis(200) {
            last_console_check = Instant::now();
            let log = std::fs::read_to_string(dir.0.join("console.log")).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| l.contains("Kernel panic")) {
                let line = line.trim().to_string();
                kill_all();
                let _ = child.wait();
                if log.contains("ptrace set fp regs failed") {
                    return Err(UmlError::CpuUnsupported);
                }
                return Err(UmlError::NoResult(
                    format!("the guest kernel panicked: {line}"),
                    tail(&dir.0.join("console.log"), 20),
                ));
            }
        }
        if started.elapsed() > timeout {
            kill_all();
            let _ = child.wait();
            return Err(UmlError::Timeout(timeout.as_secs(), tail(&dir.0.join("console.log"), 15)));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    forward(&mut offset);
    kill_all(); // helper processes, if any survived the kernel
    let console_log = dir.0.join("console.log");
    let outcome = std::fs::read_to_string(dir.0.join(OUTCOME_FILE))
        .ok()
        .and_then(|s| serde_json::from_str::<GuestOutcome>(&s).ok());
    match outcome {
        Some(outcome) => Ok(outcome),
        None => {
            let log = std::fs::read_to_string(&console_log).unwrap_or_default();
            if log.contains("ptrace set fp regs failed") {
                Err(UmlError::CpuUnsupported)
            } else if log.contains("Kernel panic") {
                Err(UmlError::NoResult("kernel panic".into(), tail(&console_log, 20)))
            } else {
                Err(UmlError::NoResult(
                    format!("linux.uml exited with {status}"),
                    tail(&console_log, 20),
                ))
            }
        }
    }
}

/// Puts every thread of the UML kernel's process group (the kernel and the host
/// processes that run its user space) on one host CPU, chosen among the ones
/// this process may use, a different one for each kernel started here. UML has
/// one virtual CPU: its kernel and user space hand every system call to each
/// other, and across two CPUs each hand-off waits for the other CPU to wake up.
/// Measured, the 1,000-connection lab's probes took 390–778 ms spread over two
/// CPUs and 292–341 ms on one. The boot itself is faster spread out (it reads the
/// modules while the kernel runs), so this waits for the guest's first line.
/// Processes the kernel starts later inherit the CPU. Best effort: a thread
/// that cannot be moved stays where it is.
fn pin_group(pgid: i32) {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Ok(mine) = sched_getaffinity(Pid::from_raw(0)) else { return };
    let allowed: Vec<usize> = (0..CpuSet::count()).filter(|&c| mine.is_set(c).unwrap_or(false)).collect();
    if allowed.len() < 2 {
        return;
    }
    let cpu = allowed[(std::process::id() as usize + STARTED.fetch_add(1, Ordering::Relaxed)) % allowed.len()];
    let mut one = CpuSet::new();
    if one.set(cpu).is_err() {
        return;
    }
    // Twice: a process forked by one not yet moved during the first pass is caught by the second.
    for _ in 0..2 {
        let Ok(entries) = std::fs::read_dir("/proc") else { return };
        for pid in entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        {
            if nix::unistd::getpgid(Some(Pid::from_raw(pid))) != Ok(Pid::from_raw(pgid)) {
                continue;
            }
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for tid in tasks
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
            {
                let _ = sched_setaffinity(Pid::from_raw(tid), &one);
            }
        }
    }
}

fn tempdir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..1000u32 {
        let p = base.join(format!("{}{}-{i}", crate::leftovers::JOB_DIR_PREFIX, std::process::id()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temp folder name"))
}

/// Whether this process is the init of a UML guest started by [`run`].
pub fn is_guest() -> bool {
    std::process::id() == 1 && std::env::var_os(JOB_ENV).is_some()
}

/// PID 1 inside UML: set up, run the job's task, report, power off.
/// Never returns. A panic in the task is reported as its result.
pub fn guest_init(run: TaskRunner) -> ! {
    let outcome = match guest_setup() {
        Ok((job, mut progress)) => {
            let _ = std::env::set_current_dir(&job.cwd);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&job.task, &mut progress))).unwrap_or_else(|p| {
                GuestOutcome::said(3, format!("lvsdr (UML init): the task panicked: {}\n", crate::job::panic_text(&*p)))
            })
        }
        Err(e) => {
            eprintln!("lvsdr (UML init): {e}");
            GuestOutcome::said(3, format!("lvsdr (UML init): {e}\n"))
        }
    };
    let text = serde_json::to_string(&outcome).unwrap_or_default();
    let _ = std::fs::write(Path::new(GUEST_JOB_DIR).join(OUTCOME_FILE), text);
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn guest_setup() -> Result<(Job, GuestProgress), String> {
    use nix::mount::{mount, MsFlags};
    let m = |src: &str, target: &str, fs: &str, data: Option<&str>| -> Result<(), String> {
        let _ = std::fs::create_dir_all(target);
        mount(Some(src), target, Some(fs), MsFlags::empty(), data).map_err(|e| format!("mount {fs} on {target}: {e}"))
    };
    // The kernel starts init with an almost empty environment.
    std::env::set_var("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    m("proc", "/proc", "proc", None)?;
    m("sysfs", "/sys", "sysfs", None)?;
    m("tmpfs", "/run", "tmpfs", None)?;
    let host_dir = std::env::var(JOB_ENV).map_err(|_| format!("{JOB_ENV} is not set"))?;
    m("none", GUEST_JOB_DIR, "hostfs", Some(&host_dir))?;
    let progress = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(GUEST_JOB_DIR).join("progress.log"))
        .map_err(|e| format!("progress log: {e}"))?;
    let mut progress = GuestProgress::new(move |text: &str| {
        use std::io::Write;
        let mut file = &progress;
        let _ = writeln!(file, "{text}");
        let _ = file.flush();
    });
    let text = std::fs::read_to_string(Path::new(GUEST_JOB_DIR).join("job.json")).map_err(|e| format!("job.json: {e}"))?;
    let job: Job = serde_json::from_str(&text).map_err(|e| format!("job.json: {e}"))?;
    let started = Instant::now();
    // A lab loads what its topologies use; a command may need anything.
    let (required, optional) = match &job.task {
        GuestTask::Lab { topologies, .. } => match topologies
            .iter()
            .map(|t| lvsdr_core::topology_file::from_toml(t))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(topologies) => crate::kernel::modules_for(&topologies),
            // The task itself reports what does not read.
            Err(_) => (crate::kernel::LAB_MODULES.to_vec(), true),
        },
        GuestTask::Exec { .. } | GuestTask::Facts => (crate::kernel::LAB_MODULES.to_vec(), true),
    };
    let mut loaded = crate::kernel::load_modules(&job.modules, &required).map_err(|e| e.to_string())?;
    let mut missing = String::new();
    for m in crate::kernel::OPTIONAL_LAB_MODULES.iter().filter(|_| optional) {
        match crate::kernel::load_modules(&job.modules, &[*m]) {
            Ok(more) => loaded.extend(more),
            Err(e) => missing.push_str(&format!("; optional module not loaded: {e}")),
        }
    }
    progress.line(&format!(
        "uml: kernel {} up, {} modules loaded in {} ms{missing}",
        crate::kernel::release(),
        loaded.len(),
        started.elapsed().as_millis()
    ));
    Ok((job, progress))
}
