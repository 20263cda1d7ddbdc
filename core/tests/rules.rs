//! Every rule has a failing fixture and a passing one under
//! `fixtures/rules/`; the rendered diagnostics of each are snapshots.

use lvsdr_core::diagnostic::{render_human, Style};
use std::path::Path;

fn lint_file(path: &Path) -> (String, Vec<lvsdr_core::Diagnostic>) {
    let text = std::fs::read_to_string(path).unwrap();
    let analysis = lvsdr_core::analyze(&text, None);
    assert!(analysis.topology.is_some(), "{} must load", path.display());
    (text, analysis.diagnostics)
}

#[test]
fn each_failing_fixture_fires_its_rule() {
    insta::glob!("../../fixtures/rules", "*-fail.toml", |path| {
        let code = path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches("-fail.toml")
            .to_string();
        let (text, diags) = lint_file(path);
        assert!(diags.iter().any(|d| d.code == code), "{code} did not fire on {}", path.display());
        let name = format!("fixtures/rules/{}", path.file_name().unwrap().to_str().unwrap());
        insta::assert_snapshot!(render_human(&diags, &text, &name, Style { color: false }));
    });
}

#[test]
fn each_passing_fixture_is_free_of_its_rule() {
    insta::glob!("../../fixtures/rules", "*-pass.toml", |path| {
        let code = path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches("-pass.toml")
            .to_string();
        let (_, diags) = lint_file(path);
        assert!(!diags.iter().any(|d| d.code == code), "{code} fired on {}", path.display());
    });
}

#[test]
fn every_rule_has_fixtures_and_a_complete_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rules");
    let rules = lvsdr_core::lint::all_rules();
    assert!(rules.len() >= 20);
    for r in rules {
        let m = r.meta;
        for part in ["## What it does", "## Why it matters", "## Example", "## Fix", "## References"] {
            assert!(m.doc.contains(part), "{} doc lacks {part}", m.code);
        }
        assert!(
            root.join(format!("{}-fail.toml", m.code)).exists(),
            "{} has no failing fixture",
            m.code
        );
        assert!(
            root.join(format!("{}-pass.toml", m.code)).exists(),
            "{} has no passing fixture",
            m.code
        );
    }
    let mut codes: Vec<_> = rules
        .iter()
        .map(|r| r.meta.code)
        .chain(lvsdr_core::codes::READERS.iter().map(|n| n.code))
        .chain(lvsdr_core::audit::kinds::CATALOGUE.iter().map(|n| n.code))
        .collect();
    let all = codes.len();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all, "codes are unique across rules, readers and audit kinds");
}

#[test]
fn clean_topology_has_no_findings() {
    let (_, diags) = lint_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/clean-dr.toml"));
    assert!(diags.is_empty(), "{diags:?}");
}

#[test]
fn safe_fixes_cure_their_finding() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rules/DR004-fail.toml");
    let (text, diags) = lint_file(&path);
    let fixes: Vec<_> = diags.iter().filter_map(|d| d.fix.as_ref()).collect();
    assert!(!fixes.is_empty());
    let fixed = lvsdr_core::diagnostic::apply_fixes(&text, fixes);
    let after = lvsdr_core::analyze(&fixed, None);
    assert!(!after.diagnostics.iter().any(|d| d.code == "DR004"), "{fixed}");
}
