//! The corpus of real-world shapes in `fixtures/real/`: each input (written by
//! us, in the shape of configurations found in public repositories, named in
//! its first comment) has a `NAME.expect` beside it:
//!
//! ```text
//! codes: DR012 DR103          (the sorted distinct codes, or `codes: none`)
//! -A -t 192.168.1.192:80 -s wrr
//! -a -t 192.168.1.192:80 -r 192.168.1.213:80 -g -w 1
//! ```
//!
//! after the first line, exactly what `lvsdr render --artifact restore` writes:
//! the kernel's own language is the oracle of what was read. A folder
//! `NAME/` is one setup of several files, read together.

use lvsdr_core::render::{render, Artifact};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/real")
}

/// The analysis of one corpus entry: a file, or a folder of files read as one setup.
fn analyze(path: &Path) -> lvsdr_core::Analysis {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        let sources: Vec<(String, String)> = files
            .iter()
            .map(|f| (f.display().to_string(), std::fs::read_to_string(f).unwrap()))
            .collect();
        lvsdr_core::analyze_files(&sources, None).analysis
    } else {
        lvsdr_core::analyze(&std::fs::read_to_string(path).unwrap(), None)
    }
}

#[test]
fn every_real_world_fixture_reads_to_its_expected_restore_lines_and_codes() {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_none_or(|e| e != "expect"))
        .collect();
    entries.sort();
    let mut failures = Vec::new();
    for input in &entries {
        let stem = input.file_stem().unwrap().to_string_lossy().to_string();
        let expect_path = corpus().join(format!("{stem}.expect"));
        let Ok(expect) = std::fs::read_to_string(&expect_path) else {
            failures.push(format!("{}: no {stem}.expect", input.display()));
            continue;
        };
        let (codes_line, restore) = expect.split_once('\n').unwrap_or((expect.as_str(), ""));
        let want_codes: Vec<&str> = codes_line
            .strip_prefix("codes:")
            .unwrap_or_else(|| panic!("{stem}.expect must start with `codes:`"))
            .split_whitespace()
            .filter(|c| *c != "none")
            .collect();
        let a = analyze(input);
        let mut got_codes: Vec<&str> = a.diagnostics.iter().map(|d| d.code).collect();
        got_codes.sort_unstable();
        got_codes.dedup();
        let got_restore = a.topology.as_ref().map(|t| render(t, Artifact::Restore)).unwrap_or_default();
        if got_codes != want_codes {
            failures.push(format!("{stem}: codes {got_codes:?}, expected {want_codes:?}"));
        }
        if got_restore != restore {
            failures.push(format!("{stem}: restore\n{got_restore}--- expected\n{restore}---"));
        }
        if a.topology
            .as_ref()
            .is_some_and(|t| t.services.is_empty() && t.real_servers.is_empty())
            && a.diagnostics.is_empty()
        {
            failures.push(format!("{stem}: an empty topology with no finding"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
}
