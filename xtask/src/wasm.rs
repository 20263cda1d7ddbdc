//! The core built for WebAssembly: the playground's page loads it, and the
//! kernel tests run it in the tab's guest. A module of its own, so that the
//! playground and the guest kernel both use it without using each other.

use crate::commands::{cargo, root, run, step};
use crate::install::wasm_bindgen_cli;
use crate::Result;
use std::process::Command;

/// The page's two WebAssembly cores.
#[derive(Clone, Copy)]
pub(crate) enum CoreModule {
    /// `lvsdr_lite`: TOML and JSON only, the module the page loads first.
    Lite,
    /// `lvsdr_wasm`: with the importers, loaded when a tab needs them.
    Full,
}

/// Builds one of the page's cores into `pkg` (`NAME.js` and `NAME_bg.wasm`).
/// The first has its own target folder, so the two feature sets never
/// rebuild each other.
pub(crate) fn build_core(pkg: &std::path::Path, module: CoreModule) -> Result {
    let bindgen = wasm_bindgen_cli()?;
    let (name, features, profile, target_dir) = match module {
        CoreModule::Lite => (
            "lvsdr_lite",
            &["--no-default-features"][..],
            "wasm",
            root().join("target/wasm-lite"),
        ),
        CoreModule::Full => ("lvsdr_wasm", &[][..], "wasm-fast", root().join("target")),
    };
    std::fs::create_dir_all(pkg).map_err(|e| e.to_string())?;
    step(&format!("building {name} for wasm32 (profile {profile})"));
    run(cargo()
        .args([
            "build",
            "--quiet",
            "-p",
            "lvsdr-wasm",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            profile,
        ])
        .args(features)
        .arg("--target-dir")
        .arg(&target_dir))?;
    run(Command::new(&bindgen)
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--remove-name-section",
            "--remove-producers-section",
            "--out-name",
            name,
            "--out-dir",
        ])
        .arg(pkg)
        .arg(target_dir.join("wasm32-unknown-unknown").join(profile).join("lvsdr_wasm.wasm")))
}
