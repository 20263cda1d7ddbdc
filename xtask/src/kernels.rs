//! `cargo xtask setup-kernels [SERIES…]`: the distribution kernels a lab can
//! run on under QEMU (`lvsdr lab --kernel qemu:6.1`, issue #30).
//!
//! For each series, the newest Debian package of it, through a private apt
//! state (as [`crate::install::ensure_uml`] does), so the host's own sources
//! stay as they are:
//!
//! | series | suites | packages |
//! | --- | --- | --- |
//! | 5.10 | bullseye, bullseye-security | `linux-image-5.10.0-N-amd64` |
//! | 6.1 | bookworm, bookworm-security | `linux-image-6.1.0-N-amd64` |
//! | 6.12 | bookworm, -updates, -security | `linux-image-6.12.N+debV-amd64` |
//! | 7.2 | unstable | `linux-binary-7.2.N+debV-amd64` + `linux-modules-…` (the image is a metapackage) |
//!
//! From each, into `/var/cache/lvsdr/kernels/<series>/<package version>/`:
//! - `vmlinux`: the uncompressed kernel, taken out of the bzImage (QEMU's
//!   microvm boots it directly; 1.5–3.5 s faster under TCG than the bzImage);
//! - `modules.cpio`: a cpio (newc) of `lib/modules/<release>/` holding only
//!   the modules a lab can need and their dependencies, uncompressed (6.12
//!   and 7.2 ship `.ko.xz`), with a `modules.dep` of our own: the .debs carry
//!   none, and we fold each module's soft `pre:` dependencies into it
//!   (`libcrc32c` needs a `crc32c` before it loads, and the guest has no
//!   `modprobe` to ask for one);
//! - `release`, and `package` (the .debs it came from).
//!
//! `<series>/current` names the folder in use. The harness
//! (`harness/src/qemu.rs`) adds `/init`, a static lvsdr, when it boots one.
//! The .debs stay in `kernels/debs/`: nothing is downloaded twice.

use crate::commands::{privileged, run, step};
use crate::install::apt_install;
use crate::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub(crate) const KERNELS_DIR: &str = "/var/cache/lvsdr/kernels";

/// A kernel series we know how to fetch.
pub(crate) struct Series {
    pub name: &'static str,
    /// `deb` lines' URL and suite, each with `main`.
    suites: &'static [&'static str],
    /// The package holding the kernel, as an `apt-cache search --names-only` pattern.
    pattern: &'static str,
}

pub(crate) const SERIES: &[Series] = &[
    Series {
        name: "5.10",
        suites: &[
            "http://deb.debian.org/debian bullseye",
            "http://deb.debian.org/debian-security bullseye-security",
        ],
        pattern: r"^linux-image-5\.10\.0-[0-9]+-amd64$",
    },
    Series {
        name: "6.1",
        suites: &[
            "http://deb.debian.org/debian bookworm",
            "http://deb.debian.org/debian-security bookworm-security",
        ],
        pattern: r"^linux-image-6\.1\.0-[0-9]+-amd64$",
    },
    Series {
        name: "6.12",
        suites: &[
            "http://deb.debian.org/debian bookworm",
            "http://deb.debian.org/debian bookworm-updates",
            "http://deb.debian.org/debian-security bookworm-security",
        ],
        pattern: r"^linux-image-6\.12\.[0-9]+\+deb[0-9]+-amd64$",
    },
    Series {
        name: "7.2",
        suites: &["http://deb.debian.org/debian unstable"],
        pattern: r"^linux-binary-7\.2\.[0-9]+\+deb[0-9]+-amd64$",
    },
];

/// The modules a lab may load (the harness's `kernel::LAB_MODULES` and
/// `OPTIONAL_LAB_MODULES`, a test keeps them in step), plus every IPVS
/// module, so that the guest can tell which schedulers its kernel has.
const WANTED: &[&str] = &[
    "ip_vs",
    "veth",
    "bridge",
    "ipip",
    "nf_tables",
    "sch_ingress",
    "cls_flower",
    "act_skbedit",
];
/// Every module in these folders is taken too.
const WANTED_DIRS: &[&str] = &["kernel/net/netfilter/ipvs/"];

fn io(what: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", what.display())
}

/// The private apt state of one series: its own sources list, lists and cache.
struct AptState {
    dir: PathBuf,
}

impl AptState {
    fn new(series: &Series) -> Result<AptState> {
        let dir = Path::new(KERNELS_DIR).join("apt").join(series.name);
        for d in ["lists/partial", "archives/partial"] {
            std::fs::create_dir_all(dir.join(d)).map_err(io(&dir))?;
        }
        let list: String = series
            .suites
            .iter()
            .map(|s| format!("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {s} main\n"))
            .collect();
        std::fs::write(dir.join("sources.list"), list).map_err(io(&dir))?;
        Ok(AptState { dir })
    }

    fn command(&self, program: &str) -> Command {
        let mut c = privileged(program);
        c.arg(format!("-oDir::Etc::sourcelist={}", self.dir.join("sources.list").display()))
            .arg("-oDir::Etc::sourceparts=-")
            .arg(format!("-oDir::State::Lists={}", self.dir.join("lists").display()))
            .arg(format!("-oDir::Cache={}", self.dir.display()))
            .arg("-oAPT::Sandbox::User=root")
            .arg("-qq");
        c
    }

    fn output(&self, program: &str, args: &[&str]) -> Result<String> {
        let out = self
            .command(program)
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if !out.status.success() {
            return Err(format!("{program} {} failed ({})", args.join(" "), out.status));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Compares Debian-style versions well enough for one series' package
/// names: runs of digits as numbers, everything else as text.
fn version_key(s: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let text: String = std::iter::from_fn(|| chars.next_if(|c| !c.is_ascii_digit())).collect();
        let digits: String = std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_digit())).collect();
        key.push((digits.parse().unwrap_or(0), text));
    }
    // (number, text) pairs: the text before each number is compared after it,
    // which is enough to order `5.10.0-9` before `5.10.0-46`.
    key
}

/// The packages of the newest kernel of a series, and its version.
fn newest(apt: &AptState, series: &Series) -> Result<(Vec<String>, String)> {
    let found = apt.output("apt-cache", &["search", "--names-only", series.pattern])?;
    let mut names: Vec<&str> = found.lines().filter_map(|l| l.split_whitespace().next()).collect();
    names.sort_by_key(|n| version_key(n));
    let Some(name) = names.last() else {
        return Err(format!("no package matches {} in {}", series.pattern, series.suites.join(", ")));
    };
    let show = apt.output("apt-cache", &["show", "--no-all-versions", name])?;
    let version = show
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .ok_or_else(|| format!("apt-cache show {name}: no version"))?
        .to_string();
    let mut packages = vec![name.to_string()];
    if let Some(rest) = name.strip_prefix("linux-binary-") {
        packages.push(format!("linux-modules-{rest}"));
    }
    Ok((packages, version))
}

/// The .deb of a package in `debs`, downloading it when it is missing.
fn deb(apt: &AptState, debs: &Path, package: &str, version: &str) -> Result<PathBuf> {
    let file = debs.join(format!("{package}_{}_amd64.deb", version.replace(':', "%3a")));
    if file.exists() {
        eprintln!("xtask: cached {}", file.display());
        return Ok(file);
    }
    step(&format!("downloading {package} {version}"));
    let started = Instant::now();
    run(apt
        .command("apt-get")
        .args(["download", &format!("{package}={version}")])
        .current_dir(debs))?;
    if !file.exists() {
        return Err(format!("apt-get download {package} left no {}", file.display()));
    }
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    eprintln!("xtask: {} MB in {:.1} s", size / 1_000_000, started.elapsed().as_secs_f64());
    Ok(file)
}

/// Decompresses `data` with a command-line tool, keeping what it wrote even
/// when it complains about trailing bytes (the payload sits inside the bzImage).
fn decompress(tool: &str, data: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new(tool)
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{tool}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let input = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().map_err(|e| format!("{tool}: {e}"))?;
    let _ = writer.join();
    Ok(out.stdout)
}

/// The uncompressed kernel inside a bzImage, found the way Linux's
/// `scripts/extract-vmlinux` does: try each compressed stream's magic, and
/// keep the first that decompresses to an ELF file.
pub(crate) fn extract_vmlinux(bzimage: &[u8]) -> Result<Vec<u8>> {
    const FORMATS: &[(&[u8], &str)] = &[
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
        (&[0x1f, 0x8b, 0x08], "gzip"),
    ];
    for (magic, tool) in FORMATS {
        let mut from = 0;
        while let Some(at) = bzimage[from..].windows(magic.len()).position(|w| w == *magic) {
            let start = from + at;
            let out = decompress(tool, &bzimage[start..])?;
            if out.starts_with(b"\x7fELF") {
                return Ok(out);
            }
            from = start + 1;
        }
    }
    Err("no compressed ELF kernel found in the bzImage".into())
}

/// A module's name from its path, as the kernel spells it (`-` as `_`).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split('.').next().unwrap_or("").replace('-', "_")
}

/// The modules to take from a full `modules.dep` (paths relative to the
/// release folder), with each one's dependencies, soft `pre:` ones folded in.
fn closure(dep: &str, softdep: &str, aliases: &str) -> BTreeMap<String, Vec<String>> {
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut path_of: BTreeMap<String, String> = BTreeMap::new();
    for line in dep.lines() {
        let Some((module, rest)) = line.split_once(':') else { continue };
        path_of.insert(module_name(module), module.to_string());
        deps.insert(module.to_string(), rest.split_whitespace().map(str::to_string).collect());
    }
    // `alias crc32c crc32c_generic`: a soft dependency may name an alias.
    let mut alias: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in aliases.lines() {
        let mut w = line.split_whitespace();
        if let (Some("alias"), Some(a), Some(m)) = (w.next(), w.next(), w.next()) {
            alias.entry(a.to_string()).or_default().push(m.replace('-', "_"));
        }
    }
    for line in softdep.lines() {
        let mut w = line.split_whitespace();
        if w.next() != Some("softdep") {
            continue;
        }
        let Some(module) = w.next().and_then(|m| path_of.get(&m.replace('-', "_"))).cloned() else {
            continue;
        };
        let mut pre = false;
        for word in w {
            match word {
                "pre:" => pre = true,
                "post:" => pre = false,
                name if pre => {
                    let name = name.replace('-', "_");
                    // The generic implementation: it works on any CPU QEMU emulates.
                    let candidates = alias.get(&name).cloned().unwrap_or_else(|| vec![name.clone()]);
                    let pick = candidates
                        .iter()
                        .find(|c| c.ends_with("_generic"))
                        .or(candidates.first())
                        .and_then(|c| path_of.get(c));
                    if let Some(p) = pick.cloned() {
                        let list = deps.entry(module.clone()).or_default();
                        if !list.contains(&p) && p != module {
                            list.push(p);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let mut take: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = path_of
        .iter()
        .filter(|(name, path)| WANTED.contains(&name.as_str()) || WANTED_DIRS.iter().any(|d| path.starts_with(d)))
        .map(|(_, p)| p.clone())
        .collect();
    while let Some(p) = todo.pop() {
        if take.insert(p.clone()) {
            todo.extend(deps.get(&p).cloned().unwrap_or_default());
        }
    }
    // Each module's full list of dependencies, deepest first, as modules.dep has them.
    let mut out = BTreeMap::new();
    for p in &take {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        fn visit(p: &str, deps: &BTreeMap<String, Vec<String>>, seen: &mut BTreeSet<String>, order: &mut Vec<String>) {
            for d in deps.get(p).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    visit(d, deps, seen, order);
                    order.push(d.clone());
                }
            }
        }
        visit(p, &deps, &mut seen, &mut order);
        order.reverse();
        out.insert(p.clone(), order);
    }
    out
}

/// The module's path without its compression suffix.
fn plain(path: &str) -> &str {
    path.strip_suffix(".xz")
        .or_else(|| path.strip_suffix(".zst"))
        .or_else(|| path.strip_suffix(".gz"))
        .unwrap_or(path)
}

/// Builds `modules.cpio` from a release folder that has a full `modules.dep`.
fn modules_cpio(release: &str, moddir: &Path) -> Result<(Vec<u8>, usize)> {
    let read = |f: &str| std::fs::read_to_string(moddir.join(f)).unwrap_or_default();
    let dep = read("modules.dep");
    if dep.is_empty() {
        return Err(format!("{}: no modules.dep after depmod", moddir.display()));
    }
    let modules = closure(&dep, &read("modules.softdep"), &read("modules.alias"));
    let mut out = Vec::new();
    let mut ino = 1;
    let base = format!("lib/modules/{release}");
    let mut dirs = BTreeSet::new();
    for d in ["lib", "lib/modules", &base] {
        dirs.insert(d.to_string());
    }
    for p in modules.keys() {
        let mut d = Path::new(plain(p)).parent();
        while let Some(x) = d.filter(|x| !x.as_os_str().is_empty()) {
            dirs.insert(format!("{base}/{}", x.display()));
            d = x.parent();
        }
    }
    for d in &dirs {
        crate::cpio::entry_plain(&mut out, ino, d, 0o040755, &[]);
        ino += 1;
    }
    let mut depfile = String::new();
    for (p, deps) in &modules {
        let bytes = std::fs::read(moddir.join(p)).map_err(io(&moddir.join(p)))?;
        let bytes = if p.ends_with(".xz") {
            decompress("xz", &bytes)?
        } else if p.ends_with(".zst") {
            decompress("zstd", &bytes)?
        } else if p.ends_with(".gz") {
            decompress("gzip", &bytes)?
        } else {
            bytes
        };
        if !bytes.starts_with(b"\x7fELF") {
            return Err(format!("{p}: not a module after decompression"));
        }
        crate::cpio::entry_plain(&mut out, ino, &format!("{base}/{}", plain(p)), 0o100644, &bytes);
        ino += 1;
        let deps: Vec<&str> = deps.iter().map(|d| plain(d)).collect();
        depfile.push_str(&format!("{}: {}\n", plain(p), deps.join(" ")));
    }
    crate::cpio::entry_plain(&mut out, ino, &format!("{base}/modules.dep"), 0o100644, depfile.as_bytes());
    crate::cpio::entry_plain(&mut out, 0, "TRAILER!!!", 0, &[]);
    Ok((out, modules.len()))
}

/// Unpacks the .debs, extracts vmlinux and packs the modules into `dir`.
fn unpack(debs: &[PathBuf], dir: &Path) -> Result<String> {
    let work = PathBuf::from(format!("{}.build", dir.display()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    for d in debs {
        run(Command::new("dpkg-deb").arg("-x").arg(d).arg(&work))?;
    }
    // 7.2 keeps its modules and vmlinuz in /usr/lib/modules, the others in /lib/modules.
    let (root, moddirs) = ["lib/modules", "usr/lib/modules"]
        .iter()
        .find_map(|m| {
            let entries: Vec<PathBuf> = std::fs::read_dir(work.join(m)).ok()?.flatten().map(|e| e.path()).collect();
            let root = if m.starts_with("usr/") { work.join("usr") } else { work.clone() };
            (!entries.is_empty()).then_some((root, entries))
        })
        .ok_or("the packages hold no lib/modules/<release>")?;
    let moddir = moddirs.first().ok_or("no release folder")?.clone();
    let release = moddir
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .ok_or("no release name")?;
    let vmlinuz = [work.join(format!("boot/vmlinuz-{release}")), moddir.join("vmlinuz")]
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| format!("no vmlinuz for {release} in the packages"))?;
    eprintln!("xtask: {release}: extracting vmlinux from {}", vmlinuz.display());
    let bz = std::fs::read(&vmlinuz).map_err(io(&vmlinuz))?;
    let vmlinux = extract_vmlinux(&bz)?;
    eprintln!("xtask: depmod -b {} {release}", root.display());
    run(Command::new("depmod").arg("-b").arg(&root).arg(&release).stderr(Stdio::null()))?;
    let (cpio, count) = modules_cpio(&release, &moddir)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::write(dir.join("vmlinux"), &vmlinux).map_err(io(dir))?;
    std::fs::write(dir.join("modules.cpio"), &cpio).map_err(io(dir))?;
    std::fs::write(dir.join("release"), format!("{release}\n")).map_err(io(dir))?;
    let names: Vec<String> = debs
        .iter()
        .filter_map(|d| d.file_name().map(|f| f.to_string_lossy().into_owned()))
        .collect();
    std::fs::write(dir.join("package"), names.join("\n") + "\n").map_err(io(dir))?;
    let _ = std::fs::remove_dir_all(&work);
    eprintln!(
        "xtask: {release}: vmlinux {} MB, {count} modules ({} MB)",
        vmlinux.len() / 1_000_000,
        cpio.len() / 1_000_000
    );
    Ok(release)
}

/// Sets up one series; returns its folder.
fn setup_one(series: &Series) -> Result<PathBuf> {
    let apt = AptState::new(series)?;
    let base = Path::new(KERNELS_DIR).join(series.name);
    step(&format!("kernel {}: looking for the newest Debian package", series.name));
    let found = run(apt.command("apt-get").arg("update")).and_then(|()| newest(&apt, series));
    let (packages, version) = match found {
        Ok(f) => f,
        Err(e) => {
            // Offline: keep what is there.
            let current = std::fs::read_to_string(base.join("current")).unwrap_or_default();
            if !current.trim().is_empty() && base.join(current.trim()).join("vmlinux").exists() {
                eprintln!("xtask: {e}; keeping the cached kernel {}", current.trim());
                return Ok(base.join(current.trim()));
            }
            return Err(e);
        }
    };
    let key = version.replace([':', '/'], "_");
    let dir = base.join(&key);
    eprintln!("xtask: {} {version}", packages.join(" + "));
    if !(dir.join("vmlinux").exists() && dir.join("modules.cpio").exists()) {
        let debs_dir = Path::new(KERNELS_DIR).join("debs");
        std::fs::create_dir_all(&debs_dir).map_err(io(&debs_dir))?;
        let debs = packages
            .iter()
            .map(|p| deb(&apt, &debs_dir, p, &version))
            .collect::<Result<Vec<_>>>()?;
        unpack(&debs, &dir)?;
    } else {
        eprintln!("xtask: cached in {}", dir.display());
    }
    std::fs::write(base.join("current.tmp"), format!("{key}\n")).map_err(io(&base))?;
    std::fs::rename(base.join("current.tmp"), base.join("current")).map_err(io(&base))?;
    Ok(dir)
}

/// `cargo xtask setup-kernels [SERIES…]` (all four when none is named).
pub(crate) fn setup_kernels(args: &[String]) -> Result {
    let wanted: Vec<&Series> = if args.is_empty() {
        SERIES.iter().collect()
    } else {
        args.iter()
            .map(|a| {
                SERIES.iter().find(|s| s.name == a).ok_or_else(|| {
                    format!(
                        "unknown kernel series `{a}`; known: {}",
                        SERIES.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                    )
                })
            })
            .collect::<Result<_>>()?
    };
    ensure_tools()?;
    for s in wanted {
        let dir = setup_one(s)?;
        eprintln!("xtask: kernel {} ready in {}", s.name, dir.display());
    }
    Ok(())
}

const GUEST_TARGET: &str = "x86_64-unknown-linux-musl";

/// The static lvsdr the guests run as `/init` (and that runs the matrix on
/// the host, so both sides are the same build); a copy is left in the cache
/// as `lvsdr-init` for a dynamically linked lvsdr's `--kernel qemu:…`.
pub(crate) fn static_lvsdr() -> Result<PathBuf> {
    crate::install::rust_target(GUEST_TARGET)?;
    step(&format!("building lvsdr for {GUEST_TARGET} (static, profile guest)"));
    let started = Instant::now();
    run(crate::commands::cargo().args([
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
    ]))?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::commands::root().join("target"));
    let bin = target_dir.join(GUEST_TARGET).join("guest/lvsdr");
    eprintln!("xtask: built in {:.0} s", started.elapsed().as_secs_f64());
    let cached = Path::new(KERNELS_DIR).join("lvsdr-init");
    let tmp = cached.with_extension("tmp");
    if std::fs::copy(&bin, &tmp).and_then(|_| std::fs::rename(&tmp, &cached)).is_err() {
        eprintln!("xtask: could not leave a copy in {}", cached.display());
    }
    Ok(bin)
}

/// The labs of the matrix: the seed, and a fault that must fail `arp-owner`.
pub(crate) const MATRIX_LABS: &[&str] = &["fixtures/seed-dr.toml", "fixtures/faults/no-arp-sysctls.toml"];

/// `cargo xtask kernel-matrix [SERIES…]`: installs what is missing, then runs
/// [`MATRIX_LABS`] on each kernel (all four when none is named) with
/// `lvsdr lab --kernel-matrix`. Returns the number of kernels.
pub(crate) fn kernel_matrix(args: &[String]) -> Result<usize> {
    setup_kernels(args)?;
    let bin = static_lvsdr()?;
    let count = if args.is_empty() { SERIES.len() } else { args.len() };
    step(&format!(
        "the seed and no-arp-sysctls on {} under QEMU",
        if args.is_empty() {
            "every kernel".to_string()
        } else {
            args.join(", ")
        }
    ));
    let started = Instant::now();
    let mut cmd = privileged(bin.to_str().unwrap_or("lvsdr"));
    cmd.arg("lab")
        .args(MATRIX_LABS)
        .arg("--kernel-matrix")
        .current_dir(crate::commands::root());
    if !args.is_empty() {
        cmd.arg("--series").arg(args.join(","));
    }
    run(&mut cmd)?;
    eprintln!("xtask: kernel matrix in {:.1} s", started.elapsed().as_secs_f64());
    Ok(count)
}

/// QEMU and what unpacking needs.
pub(crate) fn ensure_tools() -> Result {
    apt_install(&[
        "qemu-system-x86",
        "xz-utils",
        "zstd",
        "kmod",
        "ca-certificates",
        "debian-archive-keyring",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_number() {
        let mut v = [
            "linux-image-5.10.0-9-amd64",
            "linux-image-5.10.0-46-amd64",
            "linux-image-5.10.0-32-amd64",
        ];
        v.sort_by_key(|n| version_key(n));
        assert_eq!(v.last(), Some(&"linux-image-5.10.0-46-amd64"));
    }

    #[test]
    fn the_closure_takes_dependencies_and_soft_pre_dependencies() {
        let dep = "kernel/net/netfilter/ipvs/ip_vs.ko.xz: kernel/net/netfilter/nf_conntrack.ko.xz kernel/lib/libcrc32c.ko.xz\n\
                   kernel/net/netfilter/ipvs/ip_vs_rr.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko.xz kernel/net/netfilter/nf_conntrack.ko.xz kernel/lib/libcrc32c.ko.xz\n\
                   kernel/net/netfilter/nf_conntrack.ko.xz: kernel/lib/libcrc32c.ko.xz\n\
                   kernel/lib/libcrc32c.ko.xz:\n\
                   kernel/crypto/crc32c_generic.ko.xz:\n\
                   kernel/arch/x86/crypto/crc32c-intel.ko.xz:\n\
                   kernel/drivers/unrelated.ko.xz:\n";
        let soft = "softdep libcrc32c pre: crc32c\n";
        let alias = "alias crc32c crc32c_intel\nalias crc32c crc32c_generic\n";
        let got = closure(dep, soft, alias);
        assert!(!got.contains_key("kernel/drivers/unrelated.ko.xz"));
        assert_eq!(got["kernel/lib/libcrc32c.ko.xz"], ["kernel/crypto/crc32c_generic.ko.xz"]);
        let ip_vs = &got["kernel/net/netfilter/ipvs/ip_vs.ko.xz"];
        let at = |m: &str| ip_vs.iter().position(|x| x == m).unwrap();
        // modprobe's order: the last is loaded first.
        assert!(at("kernel/crypto/crc32c_generic.ko.xz") > at("kernel/lib/libcrc32c.ko.xz"));
        assert!(at("kernel/lib/libcrc32c.ko.xz") > at("kernel/net/netfilter/nf_conntrack.ko.xz"));
        assert!(got.contains_key("kernel/net/netfilter/ipvs/ip_vs_rr.ko.xz"));
    }

    /// Every module the harness loads is in the initrd.
    #[test]
    fn the_initrd_has_every_module_the_harness_loads() {
        let harness = include_str!("../../harness/src/kernel.rs");
        for list in ["pub const LAB_MODULES", "pub const OPTIONAL_LAB_MODULES"] {
            let at = harness.find(list).expect(list);
            let body = &harness[at..];
            let body = &body[..body.find("];").expect("end of list")];
            for name in body.split('"').skip(1).step_by(2) {
                assert!(
                    WANTED.contains(&name) || name.starts_with("ip_vs"),
                    "{name} is loaded by the harness but not put into the initrd"
                );
            }
        }
    }

    #[test]
    fn a_cpio_entry_is_aligned() {
        let mut out = Vec::new();
        crate::cpio::entry_plain(&mut out, 1, "init", 0o100755, b"abc");
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
    }
}
