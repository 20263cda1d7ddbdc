//! `cargo xtask guest-kernel`: the playground's real kernel, which the v86
//! emulator boots in the browser tab (issue #20).
//!
//! - **The kernel**: Debian's `linux-source-6.12` built for i386 with
//!   `gcc-i686-linux-gnu`, from `tinyconfig` plus the fragment
//!   [`CONFIG_FRAGMENT`]. The bzImage is cached in `/var/cache/lvsdr/v86/<hash>/`,
//!   keyed by the fragment and the versions of the source and compiler
//!   packages, so a second build costs nothing.
//! - **The guest program**: the `lvsdr` binary for `i686-unknown-linux-musl`,
//!   static, in the size-tuned `guest` profile; in the guest it is PID 1 and
//!   serves lab jobs over the serial port (`harness/src/serial.rs`).
//! - **The initrd**: a gzipped cpio (newc) with that program as `/init`.
//! - **The emulator**: the `v86` npm package ([`V86_NPM`]) and Debian's SeaBIOS.
//!
//! [`stage`] lays all of it out in one folder for the page and for
//! `playground-web/tests/kernel.mjs`, which boots it under node.

use crate::commands::{cargo, is_root, privileged, root, run, step};
use crate::install::{apt_install, npm_package, V86_NPM};
use crate::Result;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The kernel configuration, merged onto `make tinyconfig`.
pub(crate) const CONFIG_FRAGMENT: &str = "playground-web/kernel/i386.config";
/// Debian's kernel source package (its tarball is in /usr/src).
pub(crate) const SOURCE_PACKAGE: &str = "linux-source-6.12";
const CROSS_PACKAGE: &str = "gcc-i686-linux-gnu";
const CROSS: &str = "i686-linux-gnu-";
const CACHE: &str = "/var/cache/lvsdr/v86";
const GUEST_TARGET: &str = "i686-unknown-linux-musl";
/// Debian's SeaBIOS files: the 128 KB BIOS and the Bochs VBE video BIOS.
const BIOS: &str = "/usr/share/seabios/bios.bin";
const VGABIOS: &str = "/usr/share/seabios/vgabios-stdvga.bin";

fn package_version(package: &str) -> Result<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .map_err(|e| e.to_string())?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if v.is_empty() {
        return Err(format!("{package} is not installed"));
    }
    Ok(v)
}

/// FNV-1a, 64 bits: a cache key that stays the same across Rust releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The options the fragment sets, as `CONFIG_X=value` (`=n` for "is not set").
fn fragment_options(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Checks that every option of the fragment made it into the final .config:
/// `olddefconfig` silently drops an option whose dependencies are not met.
fn check_config(fragment: &str, config: &str) -> Result {
    let mut wrong = Vec::new();
    for (key, want) in fragment_options(fragment) {
        let set = config.lines().find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string));
        let ok = match (want.as_str(), &set) {
            ("n", None) => true,
            (_, Some(got)) => *got == want,
            _ => false,
        };
        if !ok {
            wrong.push(format!("{key}={want} (got {})", set.unwrap_or_else(|| "not set".into())));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{CONFIG_FRAGMENT}: these options did not survive `make olddefconfig` (a dependency is missing): {}",
            wrong.join(", ")
        ))
    }
}

/// Builds the guest kernel, or finds it in the cache. Returns the bzImage.
pub(crate) fn kernel() -> Result<PathBuf> {
    apt_install(&[
        SOURCE_PACKAGE,
        CROSS_PACKAGE,
        "make",
        "bc",
        "flex",
        "bison",
        "xz-utils",
        "libelf-dev",
    ])?;
    let fragment = std::fs::read_to_string(root().join(CONFIG_FRAGMENT)).map_err(|e| format!("{CONFIG_FRAGMENT}: {e}"))?;
    let source_version = package_version(SOURCE_PACKAGE)?;
    let cross_version = package_version(CROSS_PACKAGE)?;
    let key = format!("{fragment}\n{SOURCE_PACKAGE} {source_version}\n{CROSS_PACKAGE} {cross_version}\n");
    let dir = Path::new(CACHE).join(format!("{:016x}", fnv1a(key.as_bytes())));
    let bzimage = dir.join("bzImage");
    if bzimage.exists() {
        eprintln!(
            "xtask: guest kernel cached: {} ({SOURCE_PACKAGE} {source_version})",
            bzimage.display()
        );
        return Ok(bzimage);
    }
    if std::fs::create_dir_all(CACHE).is_err() && !is_root() {
        // The cache is shared by every checkout, like the UML kernel's.
        run(privileged("install").args(["-d", "-m", "1777", CACHE]))?;
    }
    let started = Instant::now();
    step(&format!(
        "building the guest kernel: {SOURCE_PACKAGE} {source_version}, i386, tinyconfig + {CONFIG_FRAGMENT} (about 4 minutes on 2 cores)"
    ));
    let work = dir.with_extension("build");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let tarball = format!("/usr/src/{SOURCE_PACKAGE}.tar.xz");
    eprintln!("xtask: unpacking {tarball}");
    run(Command::new("tar")
        .args(["xf", &tarball, "-C"])
        .arg(&work)
        .arg("--strip-components=1"))?;
    let out = work.join("out");
    let make = |args: &[&str]| -> Result {
        run(Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(&work)
            .arg(format!("O={}", out.display()))
            .args(["ARCH=i386", &format!("CROSS_COMPILE={CROSS}")])
            .args(args))
    };
    make(&["tinyconfig"])?;
    std::fs::write(out.join("lvsdr.config"), &fragment).map_err(|e| e.to_string())?;
    run(Command::new(work.join("scripts/kconfig/merge_config.sh"))
        .args(["-m", "-O"])
        .arg(&out)
        .arg(out.join(".config"))
        .arg(out.join("lvsdr.config"))
        .current_dir(&work)
        .stdout(Stdio::null()))?;
    make(&["olddefconfig"])?;
    let config = std::fs::read_to_string(out.join(".config")).map_err(|e| e.to_string())?;
    check_config(&fragment, &config)?;
    eprintln!("xtask: configured in {:.0} s; compiling", started.elapsed().as_secs_f64());
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    make(&[&format!("-j{jobs}"), "bzImage"])?;
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::copy(out.join("arch/x86/boot/bzImage"), dir.join("bzImage.tmp")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("config"), &config).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("source"),
        format!("{SOURCE_PACKAGE} {source_version}\n{CROSS_PACKAGE} {cross_version}\n"),
    )
    .map_err(|e| e.to_string())?;
    std::fs::rename(dir.join("bzImage.tmp"), &bzimage).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&work);
    eprintln!(
        "xtask: guest kernel built in {:.0} s: {} ({} KB)",
        started.elapsed().as_secs_f64(),
        bzimage.display(),
        size(&bzimage) / 1024
    );
    Ok(bzimage)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Builds the guest program: `lvsdr` for i686-unknown-linux-musl, static.
pub(crate) fn guest_program() -> Result<PathBuf> {
    apt_install(&[CROSS_PACKAGE])?;
    crate::install::rust_target(GUEST_TARGET)?;
    step(&format!("building the guest program: lvsdr for {GUEST_TARGET} (profile guest)"));
    // musl's C runtime and libc come with the Rust target (self-contained);
    // the cross gcc only drives the link.
    run(cargo()
        .args([
            "build",
            "--quiet",
            "-p",
            "lvsdr-harness",
            "--bin",
            "lvsdr",
            "--target",
            GUEST_TARGET,
            "--profile",
            "guest",
        ])
        .env("CARGO_TARGET_I686_UNKNOWN_LINUX_MUSL_LINKER", format!("{CROSS}gcc")))?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    Ok(target_dir.join(GUEST_TARGET).join("guest/lvsdr"))
}

/// The initrd: `program` as `/init`, the mount points it uses, and
/// `/dev/console` (the kernel opens it for init's standard streams before
/// devtmpfs is mounted). Returns the cpio archive, not yet compressed.
pub(crate) fn initrd(program: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ino = 1;
    for dir in ["dev", "proc", "sys", "run", "tmp"] {
        crate::cpio::entry(&mut out, ino, dir, 0o040755, (0, 0), &[]);
        ino += 1;
    }
    crate::cpio::entry(&mut out, ino, "dev/console", 0o020600, (5, 1), &[]);
    crate::cpio::entry(&mut out, ino + 1, "init", 0o100755, (0, 0), program);
    crate::cpio::entry(&mut out, 0, "TRAILER!!!", 0, (0, 0), &[]);
    out
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())
}

/// Builds (or finds) everything the in-browser kernel needs and copies it into
/// `dir`: libv86.mjs, v86.wasm, bios.bin, vgabios.bin, bzImage, initrd.gz and
/// kernel.js. Prints each file's size, raw and gzipped (what a server sends).
pub(crate) fn stage(dir: &Path) -> Result<PathBuf> {
    let started = Instant::now();
    apt_install(&["seabios"])?;
    let bzimage = kernel()?;
    let program = guest_program()?;
    let modules = npm_package("v86", V86_NPM)?;
    let v86 = modules.join("node_modules/v86");
    let binary = std::fs::read(&program).map_err(|e| format!("{}: {e}", program.display()))?;
    let cpio = initrd(&binary);
    let initrd_gz = gzip(&cpio)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let copies: [(&str, PathBuf); 6] = [
        ("libv86.mjs", v86.join("build/libv86.mjs")),
        ("v86.wasm", v86.join("build/v86.wasm")),
        ("bios.bin", PathBuf::from(BIOS)),
        ("vgabios.bin", PathBuf::from(VGABIOS)),
        ("bzImage", bzimage),
        ("kernel.js", root().join("playground-web/site/kernel.js")),
    ];
    for (name, from) in &copies {
        std::fs::copy(from, dir.join(name)).map_err(|e| format!("{} -> {name}: {e}", from.display()))?;
    }
    std::fs::write(dir.join("initrd.gz"), &initrd_gz).map_err(|e| e.to_string())?;
    std::fs::copy(v86.join("LICENSE"), dir.join("LICENSE.v86")).map_err(|e| e.to_string())?;
    eprintln!("xtask: the in-browser kernel is in {}:", dir.display());
    eprintln!("  {:<12} {:>9} {:>9}", "file", "bytes", "gzip -9");
    let mut total = 0;
    for name in ["libv86.mjs", "v86.wasm", "bios.bin", "vgabios.bin", "bzImage", "initrd.gz"] {
        let bytes = std::fs::read(dir.join(name)).map_err(|e| e.to_string())?;
        let gz = if name.ends_with(".gz") { bytes.len() } else { gzip(&bytes)?.len() };
        total += gz;
        eprintln!("  {name:<12} {:>9} {:>9}", bytes.len(), gz);
    }
    eprintln!(
        "  {:<12} {:>9} {:>9}   (guest program {} bytes, initrd {} bytes raw)",
        "total",
        "",
        total,
        binary.len(),
        cpio.len()
    );
    eprintln!("xtask: staged in {:.1} s", started.elapsed().as_secs_f64());
    Ok(dir.to_path_buf())
}

/// `cargo xtask guest-kernel`: stage into target/playground/kernel.
pub(crate) fn guest_kernel(_args: &[String]) -> Result {
    stage(&root().join("target/playground/kernel")).map(|_| ())
}

/// The node test of the in-browser kernel: boots it under v86 and runs the
/// seed and a fault example in one machine. Returns (passed, failed).
pub(crate) fn kernel_tests() -> Result<(u64, u64)> {
    let dir = stage(&root().join("target/v86-guest"))?;
    // The page's core, whose packet walk the test fills with the captured frames.
    let pkg = root().join("target/v86-guest-core");
    crate::wasm::build_core(&pkg, crate::wasm::CoreModule::Lite)?;
    step("in-browser kernel test (v86 under node): playground-web/tests/kernel.mjs");
    crate::commands::node_tests(
        Command::new("node")
            .arg(root().join("playground-web/tests/kernel.mjs"))
            .arg(&dir)
            .arg(&pkg),
        "kernel",
        "in-browser kernel test(s)",
    )
}
