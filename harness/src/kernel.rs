//! Which kernel runs the lab: the host's, when it has IPVS, or a User-Mode
//! Linux kernel otherwise. Also loads kernel modules without `modprobe`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules a DR lab needs: IPVS with every scheduler, veth and bridge.
pub const LAB_MODULES: &[&str] = &[
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_sed",
    "ip_vs_nq",
    "ip_vs_sh",
    "ip_vs_dh",
    "ip_vs_fo",
    "ip_vs_ovf",
    "ip_vs_mh",
    "ip_vs_lblc",
    "ip_vs_lblcr",
    "veth",
    "bridge",
    "ipip",
];

/// Modules only some labs need, loaded best-effort: a kernel without them
/// still runs every lab that does not use them, and the layer that needs one
/// reports its absence. All are for fwmark services' marking rules:
/// nf_tables for [`crate::nft::apply_marks`] (nfnetlink, which it needs, is
/// built in where it is not a module), and the ingress qdisc, the flower
/// classifier and the skbedit action for [`crate::tc::apply_marks`], which
/// [`crate::marks::apply`] falls back to where nf_tables has no inet family.
pub const OPTIONAL_LAB_MODULES: &[&str] = &["nf_tables", "sch_ingress", "cls_flower", "act_skbedit"];

/// The modules some labs need: what [`LAB_MODULES`] loads, less the
/// schedulers none of them uses, and with [`OPTIONAL_LAB_MODULES`] when one
/// has fwmark marking rules. Each module costs the boot about 2 ms, and every
/// network namespace made afterwards runs each loaded module's setup for it.
pub fn modules_for(topologies: &[lvsdr_core::Topology]) -> (Vec<&'static str>, bool) {
    let mut wanted: Vec<&'static str> = vec!["ip_vs", "veth", "bridge"];
    for s in topologies.iter().flat_map(|t| &t.services) {
        let name = s.scheduler.value.name();
        // The module named for the scheduler, found in the list so the name is a known one.
        if let Some(m) = LAB_MODULES.iter().find(|m| m.strip_prefix("ip_vs_") == Some(name)) {
            if !wanted.contains(m) {
                wanted.push(m);
            }
        }
    }
    // LVS-TUN: `ipip` gives every namespace its `tunl0` (and the director its encapsulation).
    let tunnel = topologies
        .iter()
        .flat_map(|t| &t.services)
        .any(|s| s.destinations.iter().any(|d| d.forward.value == lvsdr_core::model::Forward::Tunnel));
    if tunnel {
        wanted.push("ipip");
    }
    let marks = topologies.iter().any(|t| !t.marks.is_empty());
    (wanted, marks)
}

pub fn release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Whether the running kernel has IPVS now (built in or loaded).
pub fn host_has_ipvs() -> bool {
    Path::new("/proc/net/ip_vs").exists() || Path::new("/sys/module/ip_vs").exists()
}

/// Tries to load IPVS into the host kernel with `modprobe ip_vs` (and the
/// lab's other modules). Returns whether IPVS is there afterwards.
pub fn try_load_host_ipvs() -> bool {
    if host_has_ipvs() {
        return true;
    }
    for m in LAB_MODULES.iter().chain(OPTIONAL_LAB_MODULES) {
        let _ = std::process::Command::new("modprobe")
            .arg("-q")
            .arg(m)
            .stderr(std::process::Stdio::null())
            .status();
    }
    host_has_ipvs()
}

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("module {0} is not in modules.dep")]
    Unknown(String),
    #[error("loading {module}: {source}")]
    Load { module: String, source: std::io::Error },
}

/// Loads modules and their dependencies from a `lib/modules/<release>`
/// folder with `finit_module(2)`, as `modprobe -d` would.
pub fn load_modules(dir: &Path, names: &[&str]) -> Result<Vec<String>, ModuleError> {
    let dep_path = dir.join("modules.dep");
    let text = std::fs::read_to_string(&dep_path).map_err(|source| ModuleError::Read {
        path: dep_path.clone(),
        source,
    })?;
    let mut deps: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    let name_of = |p: &str| {
        Path::new(p)
            .file_name()
            .map(|f| f.to_string_lossy().split('.').next().unwrap_or("").replace('-', "_"))
            .unwrap_or_default()
    };
    for line in text.lines() {
        let Some((module, rest)) = line.split_once(':') else { continue };
        deps.insert(
            name_of(module),
            (module.to_string(), rest.split_whitespace().map(name_of).collect()),
        );
    }
    let mut loaded = Vec::new();
    let mut done = BTreeSet::new();
    fn visit(
        name: &str,
        deps: &BTreeMap<String, (String, Vec<String>)>,
        dir: &Path,
        done: &mut BTreeSet<String>,
        loaded: &mut Vec<String>,
    ) -> Result<(), ModuleError> {
        if !done.insert(name.to_string()) {
            return Ok(());
        }
        let (path, requires) = deps.get(name).ok_or_else(|| ModuleError::Unknown(name.to_string()))?;
        for r in requires {
            visit(r, deps, dir, done, loaded)?;
        }
        let full = dir.join(path);
        let file = std::fs::File::open(&full).map_err(|source| ModuleError::Read {
            path: full.clone(),
            source,
        })?;
        match nix::kmod::finit_module(&file, c"", nix::kmod::ModuleInitFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {
                loaded.push(name.to_string());
                Ok(())
            }
            Err(e) => Err(ModuleError::Load {
                module: name.to_string(),
                source: std::io::Error::from_raw_os_error(e as i32),
            }),
        }
    }
    for n in names {
        visit(n, &deps, dir, &mut done, &mut loaded)?;
    }
    Ok(loaded)
}

/// Open files a lab needs: two sockets per listener (IPv4 and IPv6), three
/// per planned connection (the client's, the server's accepted one, and one
/// held while the next opens), and some for netlink, namespaces and threads.
pub fn open_files_needed(plan: &lvsdr_core::plan::LabPlan) -> u64 {
    let listeners: usize = plan.hosts.iter().map(|h| h.listeners.len()).sum();
    let connections: usize = plan.probes.iter().map(|p| p.connections.len()).sum();
    (2 * listeners + 3 * connections + 512) as u64
}

/// Raises this process's open-file limit to at least `need` (the soft limit
/// up to the hard one, and the hard one too where root may), and says so
/// when it cannot: a production director's lab serves thousands of sockets,
/// past the usual 1,024.
pub fn raise_open_files(need: u64) -> Result<u64, (u64, u64)> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return Ok(need);
    };
    if soft >= need {
        return Ok(soft);
    }
    if setrlimit(Resource::RLIMIT_NOFILE, need, hard.max(need)).is_ok() {
        return Ok(need);
    }
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    if hard >= need {
        return Ok(hard);
    }
    Err((need, hard))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(file: &str) -> lvsdr_core::Topology {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(file);
        lvsdr_core::topology_file::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_lab_loads_the_schedulers_it_uses_and_the_marking_modules_only_for_marks() {
        let (seed, marks) = modules_for(&[topology("seed-dr.toml")]);
        assert_eq!(seed, ["ip_vs", "veth", "bridge", "ip_vs_rr"]);
        assert!(!marks);
        let (both, marks) = modules_for(&[topology("seed-dr.toml"), topology("fwmark-dr.toml")]);
        assert_eq!(both, ["ip_vs", "veth", "bridge", "ip_vs_rr", "ip_vs_wrr"], "each module once");
        assert!(marks, "a fwmark topology's marking rules need nf_tables or tc");
        // Every scheduler the core knows has its module in the list.
        for s in lvsdr_core::model::Scheduler::ALL {
            assert!(LAB_MODULES.contains(&format!("ip_vs_{}", s.name()).as_str()), "{}", s.name());
        }
    }
}
