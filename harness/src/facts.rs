//! What a guest kernel's IPVS offers, measured in the guest: its version, the
//! schedulers whose modules load, and the defaults of its `net.ipv4.vs.*`
//! sysctls. The kernel matrix ([`crate::matrix`]) compares them across
//! distribution kernels, so that what differs is found, not remembered.
//!
//! Also the guest's module loading for a QEMU boot, whose initrd holds
//! `lib/modules/<release>/` with the lab's modules and a `modules.dep`
//! (`cargo xtask setup-kernels`): the guest has no `modprobe`, so lvsdr loads
//! them itself ([`crate::kernel::load_modules`]).

use crate::job::{GuestOutcome, GuestTask};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelFacts {
    /// `uname -r`.
    pub release: String,
    /// IPVS's own version (`/proc/net/ip_vs`'s first line: `1.2.1`).
    pub ipvs_version: String,
    /// Schedulers whose module loaded, by name (`rr`, `mh`…).
    pub schedulers: Vec<String>,
    /// Schedulers lvsdr knows whose module did not load, with why.
    pub missing_schedulers: BTreeMap<String, String>,
    /// `net.ipv4.vs.*` as the kernel set them, before anyone changed them.
    pub sysctls: BTreeMap<String, String>,
}

/// The modules folder of the running kernel, when the initrd has one.
pub fn modules_dir() -> Option<PathBuf> {
    let dir = PathBuf::from("/lib/modules").join(crate::kernel::release());
    dir.join("modules.dep").exists().then_some(dir)
}

/// Loads what a task needs from the initrd's modules, when there are any (a
/// kernel with IPVS built in, like the playground's, has none). Returns a
/// line for the progress, or why a module that a lab needs did not load.
pub fn load_for(task: &GuestTask) -> Result<Option<String>, String> {
    let Some(dir) = modules_dir() else { return Ok(None) };
    let started = std::time::Instant::now();
    let (required, optional) = match task {
        GuestTask::Lab { topologies, .. } => match topologies
            .iter()
            .map(|t| lvsdr_core::topology_file::from_toml(t))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(t) => crate::kernel::modules_for(&t),
            // The task itself reports what does not read.
            Err(_) => (vec!["ip_vs"], false),
        },
        GuestTask::Exec { .. } => (crate::kernel::LAB_MODULES.to_vec(), true),
        GuestTask::Facts => (vec!["ip_vs"], false),
    };
    let loaded = crate::kernel::load_modules(&dir, &required).map_err(|e| e.to_string())?;
    let mut missing = String::new();
    for m in crate::kernel::OPTIONAL_LAB_MODULES.iter().filter(|_| optional) {
        if let Err(e) = crate::kernel::load_modules(&dir, &[*m]) {
            missing.push_str(&format!("; optional module not loaded: {e}"));
        }
    }
    Ok(Some(format!(
        "modules: {} loaded in {} ms{missing}",
        loaded.len(),
        started.elapsed().as_millis()
    )))
}

/// Gathers the facts, in the guest (loading every scheduler's module).
pub fn gather() -> KernelFacts {
    let mut facts = KernelFacts {
        release: crate::kernel::release(),
        ..Default::default()
    };
    // The sysctls' defaults first, as ip_vs set them when it loaded.
    if let Ok(entries) = std::fs::read_dir("/proc/sys/net/ipv4/vs") {
        for e in entries.flatten() {
            if let Ok(v) = std::fs::read_to_string(e.path()) {
                let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
                facts.sysctls.insert(e.file_name().to_string_lossy().into_owned(), v);
            }
        }
    }
    let first = std::fs::read_to_string("/proc/net/ip_vs").unwrap_or_default();
    facts.ipvs_version = first
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "version").nth(1))
        .unwrap_or("")
        .to_string();
    let dir = modules_dir();
    for s in lvsdr_core::model::Scheduler::ALL {
        let module = format!("ip_vs_{}", s.name());
        let built_in = std::path::Path::new("/sys/module").join(&module).exists();
        let result = match &dir {
            _ if built_in => Ok(()),
            Some(d) => crate::kernel::load_modules(d, &[module.as_str()])
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("no modules folder".to_string()),
        };
        match result {
            Ok(()) => facts.schedulers.push(s.name().to_string()),
            Err(e) => {
                facts.missing_schedulers.insert(s.name().to_string(), e);
            }
        }
    }
    facts
}

/// The guest's answer to [`GuestTask::Facts`].
pub fn outcome() -> GuestOutcome {
    match serde_json::to_string(&gather()) {
        Ok(json) => GuestOutcome::said(0, json),
        Err(e) => GuestOutcome::said(3, format!("cannot encode the kernel's facts: {e}")),
    }
}
