//! The guest side of a lab under User-Mode Linux, or in the playground's
//! in-browser kernel ([`crate::serial`]), in whatever binary runs it.
//!
//! A UML lab boots a kernel whose `init` is the program that asked for the
//! lab: the `lvsdr` binary, or a user's own `cargo test` binary. That program
//! must know, before its `main` (or libtest's) does anything, that it is PID 1
//! of a guest, and then do the guest's work instead. So lvsdr-harness puts one
//! function in the ELF `.init_array`, which the C runtime calls before `main`
//! in every binary that links this crate: in a guest it sets up the kernel,
//! runs the job, writes the result and powers off; anywhere else it returns at
//! once. A user's test needs no macro, no `main` and no second binary.
//!
//! The guest's work itself, [`run_task`], is here too: the kernel-side
//! modules ([`crate::uml`], [`crate::serial`]) are handed it, and know
//! nothing of labs.

use crate::job::{GuestOutcome, GuestProgress, GuestTask, KernelChoice};
use crate::run::run_parallel;

/// Called by the C runtime before `main`, in every process of a binary that
/// links lvsdr-harness.
extern "C" fn enter_if_guest() {
    if crate::uml::is_guest() {
        // std's own start-up, which ignores SIGPIPE, has not run yet; a probe
        // writing to a reset connection must not kill PID 1.
        // SAFETY: setting a signal disposition, before any thread exists.
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        crate::uml::guest_init(run_task)
    }
    if crate::serial::is_guest() {
        // SAFETY: as above.
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        crate::serial::guest_init(run_task)
    }
}

#[used]
#[link_section = ".init_array"]
static ENTER_IF_GUEST: extern "C" fn() = enter_if_guest;

/// Keeps [`ENTER_IF_GUEST`] in any binary that can start a UML lab: the linker
/// takes an object from a library only when something refers to it.
pub(crate) fn linked() {
    std::hint::black_box(&ENTER_IF_GUEST);
}

/// The guest's work, in the guest: what [`crate::uml::guest_init`] and
/// [`crate::serial::guest_init`] run, on the guest's own kernel.
pub fn run_task(task: &GuestTask, progress: &mut GuestProgress) -> GuestOutcome {
    match task {
        GuestTask::Lab { topologies, options } => {
            // Read and validated again: the guest trusts nothing it is handed.
            let topologies = match topologies
                .iter()
                .map(|t| lvsdr_core::topology_file::from_toml(t))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(t) => t,
                Err(e) => return GuestOutcome::said(2, format!("a topology handed to the guest does not read: {e}\n")),
            };
            // The caller's options, whole; the kernel is this one.
            let mut options = options.clone();
            options.kernel = KernelChoice::Host;
            let mut reports = Vec::new();
            for topology in &topologies {
                match run_parallel(topology, &options, &mut |l| progress.line(l)) {
                    Ok(r) => reports.extend(r),
                    Err(e) => return GuestOutcome::said(3, format!("{}: {e}\n", topology.name)),
                }
            }
            GuestOutcome {
                code: if reports.iter().all(|r| r.pass) { 0 } else { 1 },
                reports,
                output: String::new(),
            }
        }
        GuestTask::Facts => crate::facts::outcome(),
        GuestTask::Exec { command } => {
            let Some((program, args)) = command.split_first() else {
                return GuestOutcome::said(2, "no command to run\n");
            };
            match std::process::Command::new(program).args(args).output() {
                Ok(o) => {
                    let code = o.status.code().unwrap_or(3);
                    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                    if code != 0 {
                        text.push_str(&String::from_utf8_lossy(&o.stderr));
                    }
                    GuestOutcome::said(code, text)
                }
                Err(e) => GuestOutcome::said(3, format!("cannot run {program}: {e}\n")),
            }
        }
    }
}
