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
        crate::uml::guest_init()
    }
    if crate::serial::is_guest() {
        // SAFETY: as above.
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        crate::serial::guest_init()
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
