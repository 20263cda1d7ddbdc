//! `lvsdr`: lint, import, render, predict and prove LVS Direct Routing setups.
//! The command line lives in [`cli`].

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Behave like other Unix tools when the reader goes away (`lvsdr rules | head`).
    // SAFETY: setting a signal disposition before any thread starts.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(exit) | Err(exit) => exit.into(),
    }
}
