//! The guest side of the playground's in-browser kernel: PID 1 of an i386
//! Linux that the v86 emulator boots in a browser tab (or under node), talking
//! to the page over the first serial port.
//!
//! The initrd's `/init` is the `lvsdr` binary built for
//! `i686-unknown-linux-musl`, and the kernel command line carries
//! `LVSDR_SERIAL=1`, which the kernel hands to init as an environment
//! variable. Like a UML guest ([`crate::uml::guest_init`]), the program enters
//! here from the ELF `.init_array` ([`crate::guest`]) before `main`, and runs
//! the very same [`crate::guest::run_task`]: the same plan, proofs and report.
//! Unlike UML, it does not power off after one job: it serves jobs until the
//! machine is thrown away, so a second run reuses the booted kernel.
//!
//! The protocol on the serial line, one frame per line, so that the host can
//! find them among kernel messages:
//!
//! - guest → host, once at start: `@@LVSDR READY <kernel release>`
//! - host → guest: one line of JSON, a [`GuestTask`], ended by `\n`
//! - guest → host, while it runs: `@@LVSDR PROGRESS <text>`
//! - guest → host, when a job runs long: `@@LVSDR STUCK <where each thread waits>`
//! - guest → host, at the end: `@@LVSDR RESULT <n>`, a newline, exactly `n`
//!   bytes of JSON ([`SerialResult`]), a newline, and `@@LVSDR END`
//!
//! The line is in raw mode (no echo, no line editing, no `\r` added), so
//! nothing limits the length of a job and the byte count is exact.

use crate::job::{GuestOutcome, GuestProgress, GuestTask, TaskRunner};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

/// The kernel command-line key that makes our init serve jobs on the serial port.
pub const SERIAL_ENV: &str = "LVSDR_SERIAL";

/// The marker every frame line starts with.
pub const MARKER: &str = "@@LVSDR";

/// What the guest hands back for one job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SerialResult {
    /// The exit code `lvsdr` would have: 0 pass, 1 a failed check, 2 unusable
    /// input, 3 the lab could not run.
    pub code: i32,
    /// What `lvsdr lab --format json` prints: the JSON array of reports (for
    /// an `exec` task, the command's output).
    pub stdout: String,
    /// The same reports as the CLI's table (`Report::render_human`), for people.
    pub text: String,
    /// The progress lines, as they were also sent while the job ran.
    pub progress: Vec<String>,
    /// How long the job took in the guest, in milliseconds.
    pub ms: u64,
}

/// Whether this process is PID 1 of a serial guest (the playground's kernel).
pub fn is_guest() -> bool {
    std::process::id() == 1 && std::env::var_os(SERIAL_ENV).is_some()
}

/// The value of [`SERIAL_ENV`] when QEMU booted a distribution kernel
/// (`crate::qemu` sets it); the playground's v86 sets `1`.
pub const SERIAL_QEMU: &str = "qemu";

/// Where the serial guest runs, for its reports: `qemu` when QEMU booted a
/// distribution kernel, else the playground's `v86`.
pub fn place() -> &'static str {
    match std::env::var(SERIAL_ENV).as_deref() {
        Ok(SERIAL_QEMU) => "qemu",
        _ => "v86",
    }
}

/// A line of text safe inside one frame: no control characters.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// PID 1 of the playground's kernel: set up, then serve jobs from the serial
/// port for ever. Never returns.
pub fn guest_init(run: TaskRunner) -> ! {
    let port = match setup() {
        Ok(port) => port,
        Err(e) => {
            // Nothing to talk over: say why on the console, where the page shows the tail.
            let _ = std::fs::write("/dev/console", format!("\n{MARKER} FATAL {}\n", one_line(&e)));
            halt()
        }
    };
    serve(port, run)
}

fn halt() -> ! {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Mounts what the lab needs and opens the serial port in raw mode.
fn setup() -> Result<std::fs::File, String> {
    use nix::mount::{mount, MsFlags};
    let m = |src: &str, target: &str, fs: &str| -> Result<(), String> {
        let _ = std::fs::create_dir_all(target);
        mount(Some(src), target, Some(fs), MsFlags::empty(), None::<&str>).map_err(|e| format!("mount {fs} on {target}: {e}"))
    };
    std::env::set_var("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    m("proc", "/proc", "proc")?;
    m("sysfs", "/sys", "sysfs")?;
    m("devtmpfs", "/dev", "devtmpfs")?;
    // /run/netns holds the lab's namespaces; /tmp for anything else written.
    m("tmpfs", "/run", "tmpfs")?;
    m("tmpfs", "/tmp", "tmpfs")?;
    // Kernel messages share the serial line: keep all but emergencies off it,
    // so that they cannot land inside a result frame.
    let _ = std::fs::write("/proc/sys/kernel/printk", "1");
    let port = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/ttyS0")
        .or_else(|_| std::fs::OpenOptions::new().read(true).write(true).open("/dev/console"))
        .map_err(|e| format!("cannot open the serial port: {e}"))?;
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    let mut t = tcgetattr(&port).map_err(|e| format!("serial port: {e}"))?;
    cfmakeraw(&mut t);
    tcsetattr(&port, SetArg::TCSANOW, &t).map_err(|e| format!("serial port: {e}"))?;
    Ok(port)
}

fn serve(port: std::fs::File, run: TaskRunner) -> ! {
    let mut out = match port.try_clone() {
        Ok(o) => o,
        Err(_) => halt(),
    };
    let _ = write!(out, "\n{MARKER} READY {}\n", one_line(&crate::kernel::release()));
    let mut input = BufReader::new(port);
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let result = run_job(run, text, &out);
        let body = serde_json::to_string(&result).unwrap_or_else(|e| {
            format!(
                "{{\"code\":3,\"stdout\":\"\",\"text\":\"cannot encode the result: {}\",\"progress\":[],\"ms\":0}}",
                one_line(&e.to_string())
            )
        });
        let frame = format!("\n{MARKER} RESULT {}\n{body}\n{MARKER} END\n", body.len());
        let _ = out.write_all(frame.as_bytes());
        let _ = out.flush();
    }
}

/// Runs one job, sending its progress lines as they come.
fn run_job(run: TaskRunner, text: &str, out: &std::fs::File) -> SerialResult {
    let started = Instant::now();
    let task: GuestTask = match serde_json::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let msg = format!("lvsdr (serial guest): the job is not a task: {e}\n");
            return SerialResult {
                code: 2,
                stdout: msg.clone(),
                text: msg,
                progress: vec![],
                ms: 0,
            };
        }
    };
    // A distribution kernel under QEMU has its modules in the initrd.
    let modules = match crate::facts::load_for(&task) {
        Ok(line) => line,
        Err(e) => {
            let msg = format!("lvsdr (serial guest): {e}\n");
            return SerialResult {
                code: 3,
                stdout: msg.clone(),
                text: msg,
                progress: vec![],
                ms: started.elapsed().as_millis() as u64,
            };
        }
    };
    let lines = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut sink = out.try_clone().ok();
    let seen = lines.clone();
    let mut progress = GuestProgress::new(move |l: &str| {
        let l = one_line(l);
        if let Some(s) = sink.as_mut() {
            let _ = s.write_all(format!("\n{MARKER} PROGRESS {l}\n").as_bytes());
        }
        seen.borrow_mut().push(l);
    });
    if let Some(line) = modules {
        progress.line(&line);
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    watchdog(done.clone(), out.try_clone().ok());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&task, &mut progress)));
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(progress);
    let outcome = outcome.unwrap_or_else(|p| {
        GuestOutcome::said(
            3,
            format!("lvsdr (serial guest): the task panicked: {}\n", crate::job::panic_text(&*p)),
        )
    });
    let code = outcome.code;
    // The page reads a lab's reports as JSON from `stdout`, and shows `text`.
    let (stdout, text) = match &task {
        GuestTask::Lab { .. } if !outcome.reports.is_empty() => (
            serde_json::to_string(&outcome.reports).unwrap_or_default(),
            outcome.reports.iter().map(|r| r.render_human(false)).collect::<Vec<_>>().join("\n"),
        ),
        _ => (outcome.output.clone(), outcome.output),
    };
    let progress = std::mem::take(&mut *lines.borrow_mut());
    SerialResult {
        code,
        stdout,
        text,
        progress,
        ms: started.elapsed().as_millis() as u64,
    }
}

/// While a job runs longer than it should, says every 15 s where each of our
/// threads waits (`/proc/1/task/*`: state, wait channel, system call), as
/// `@@LVSDR STUCK` lines: a hung lab in the browser must say where it hangs.
fn watchdog(done: std::sync::Arc<std::sync::atomic::AtomicBool>, out: Option<std::fs::File>) {
    let Some(mut out) = out else { return };
    let _ = std::thread::Builder::new().name("watchdog".into()).spawn(move || {
        let started = Instant::now();
        let mut next = 15;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if started.elapsed().as_secs() < next {
                continue;
            }
            next += 15;
            let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
                continue;
            };
            for t in tasks.flatten() {
                let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
                let stat = read("stat");
                let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next().unwrap_or('?')).unwrap_or('?');
                let line = format!(
                    "\n{MARKER} STUCK {}s tid {} {} state {state} wchan {} syscall {}\n",
                    started.elapsed().as_secs(),
                    t.file_name().to_string_lossy(),
                    one_line(read("comm").trim()),
                    one_line(read("wchan").trim()),
                    one_line(read("syscall").trim()),
                );
                let _ = out.write_all(line.as_bytes());
                // A thread waiting in epoll: what it waits for, and what its
                // namespace's netlink sockets hold.
                let syscall = read("syscall");
                let mut words = syscall.split_whitespace();
                if words.next() == Some("319") {
                    if let Some(fd) = words.next().and_then(|w| i64::from_str_radix(w.trim_start_matches("0x"), 16).ok()) {
                        let info = format!("{} | {}", read(&format!("fdinfo/{fd}")), read("net/netlink"));
                        let _ = out.write_all(format!("\n{MARKER} STUCK epoll {}\n", one_line(&info)).as_bytes());
                    }
                }
            }
        }
    });
}
