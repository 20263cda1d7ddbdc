//! The host and the guest can never disagree about a topology: what the host
//! hands to a User-Mode Linux guest (each topology as canonical TOML, inside
//! the job file's JSON) is read there to the very topology the host read. No
//! kernel needed; `lab.rs` runs the same setups through a real guest.

use lvsdr_harness::job::{GuestTask, RunOptions};
use lvsdr_harness::uml::Job;
use std::path::{Path, PathBuf};

/// Every `fixtures/real/` setup (a file, or a folder of files read as one)
/// that imports, as the host reads it.
fn imported_setups() -> Vec<(PathBuf, lvsdr_core::Topology)> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/real");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_none_or(|e| e != "expect"))
        .collect();
    entries.sort();
    entries
        .into_iter()
        .filter_map(|path| {
            let files: Vec<PathBuf> = if path.is_dir() {
                let mut f: Vec<PathBuf> = std::fs::read_dir(&path).unwrap().flatten().map(|e| e.path()).collect();
                f.sort();
                f
            } else {
                vec![path.clone()]
            };
            let sources: Vec<(String, String)> = files
                .iter()
                .map(|f| (f.display().to_string(), std::fs::read_to_string(f).unwrap()))
                .collect();
            let t = lvsdr_core::analyze_files(&sources, None).analysis.topology?;
            (!t.services.is_empty() || !t.real_servers.is_empty()).then_some((path, t))
        })
        .collect()
}

#[test]
fn the_guest_reads_every_imported_setup_as_the_host_read_it() {
    let setups = imported_setups();
    assert!(setups.len() >= 40, "{} setups", setups.len());
    // As `launch::run_labs` builds the task, and `uml::run` writes it to job.json.
    let task = GuestTask::Lab {
        topologies: setups.iter().map(|(_, t)| lvsdr_core::topology_file::to_toml(t)).collect(),
        options: RunOptions::default(),
    };
    let job = Job {
        task,
        modules: PathBuf::from("/lib/modules/x"),
        cwd: PathBuf::from("/"),
    };
    let wire = serde_json::to_vec(&job).expect("the job serializes");
    // In the guest: the job read back, each topology read and validated again.
    let job: Job = serde_json::from_slice(&wire).expect("the guest reads the job");
    let GuestTask::Lab { topologies, .. } = job.task else {
        panic!("a lab task")
    };
    assert_eq!(topologies.len(), setups.len());
    let mut failures = Vec::new();
    for ((path, host), text) in setups.iter().zip(&topologies) {
        match lvsdr_core::topology_file::from_toml(text) {
            Ok(guest) if guest.without_spans() == host.without_spans() => {}
            Ok(_) => failures.push(format!("{}: the guest reads another topology\n{text}", path.display())),
            Err(e) => failures.push(format!("{}: the guest cannot read it: {e}\n{text}", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
