//! `lvsdr lint --format sarif`: the findings as SARIF 2.1.0, the format
//! GitHub code scanning (`github/codeql-action/upload-sarif`) and other
//! tools read. The run describes every code of the catalogue (the lint rules
//! and the readers' codes) with its documentation; each result points at its
//! file, lines and columns, and carries its fix as replacements.
//!
//! Columns count characters (`columnKind: unicodeCodePoints`), as the rest of
//! lvsdr does. Help links need to know where lvsdr's source is published:
//! `LVSDR_DOCS_URL` names the tree of the version in use (for example
//! `https://github.com/OWNER/lvsdr/blob/v1`), and each rule's `helpUri` is its
//! file in that tree, which holds its documentation. Without it the rules
//! carry their full documentation as `help` and no link.

use super::annotate::{full_message, Place, Places};
use lvsdr_core::codes::RuleMeta;
use lvsdr_core::diagnostic::{Applicability, Diagnostic};
use lvsdr_core::{SetupAnalysis, Severity};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub const SCHEMA: &str = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// Where the readers' codes are documented.
const READERS_SOURCE: &str = "core/src/codes.rs";
/// Where the kinds of drift `lvsdr audit` reports are documented.
const AUDIT_SOURCE: &str = "core/src/audit/kinds.rs";

/// Every code of the catalogue with the file that documents it: the lint
/// rules in code order, the readers' codes, then the audit's (DR2xx), as
/// `lvsdr rules` lists them.
fn catalogue() -> Vec<(&'static RuleMeta, &'static str)> {
    lvsdr_core::lint::all_rules()
        .iter()
        .map(|r| (r.meta, r.source))
        .chain(lvsdr_core::codes::READERS.iter().map(|m| (m, READERS_SOURCE)))
        .chain(lvsdr_core::audit::kinds::CATALOGUE.iter().map(|m| (m, AUDIT_SOURCE)))
        .collect()
}

/// The base of the help links, from `LVSDR_DOCS_URL`, when it is an http(s)
/// URL with nothing in it that would need escaping.
pub fn docs_url() -> Option<String> {
    let url = std::env::var("LVSDR_DOCS_URL").ok()?;
    let url = url.trim().trim_end_matches('/');
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && url
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c));
    ok.then(|| url.to_string())
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// A path as a URI reference: every byte outside the unreserved set and
/// `/` percent-encoded. An absolute path (outside the workspace) becomes a
/// `file://` URI.
pub fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if path.starts_with('/') {
        format!("file://{out}")
    } else {
        out
    }
}

fn artifact(file: &str) -> Value {
    if file.starts_with('/') {
        json!({ "uri": uri(file) })
    } else {
        json!({ "uri": uri(file), "uriBaseId": "%SRCROOT%" })
    }
}

fn region(at: &Place) -> Value {
    json!({
        "startLine": at.line,
        "startColumn": at.column,
        "endLine": at.end_line,
        "endColumn": at.end_column,
    })
}

fn rule(meta: &RuleMeta, source: &str, docs: Option<&str>) -> Value {
    let doc = meta.doc.trim();
    let help = if doc.is_empty() { meta.summary } else { doc };
    let mut r = json!({
        "id": meta.code,
        "name": meta.name,
        "shortDescription": { "text": meta.summary },
        "fullDescription": { "text": meta.summary },
        "help": { "text": help, "markdown": help },
        "defaultConfiguration": { "level": level(meta.severity) },
        "properties": { "tags": ["lvsdr", "lvs-dr"] },
    });
    if let Some(base) = docs {
        r["helpUri"] = json!(format!("{base}/{source}"));
    }
    r
}

fn result(d: &Diagnostic, index: Option<usize>, places: &Places) -> Value {
    let at = places.of(d.span);
    let mut r = json!({
        "ruleId": d.code,
        "level": level(d.severity),
        "message": { "text": full_message(d) },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": artifact(&at.file),
                "region": region(&at),
            }
        }],
    });
    if let Some(i) = index {
        r["ruleIndex"] = json!(i);
    }
    if let Some(fix) = &d.fix {
        // One change a file, its replacements in order.
        let mut files: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for e in &fix.edits {
            let place = places.of(e.span);
            files.entry(place.file.clone()).or_default().push(json!({
                "deletedRegion": region(&place),
                "insertedContent": { "text": e.replacement },
            }));
        }
        if !files.is_empty() {
            let safe = fix.applicability == Applicability::Safe;
            r["fixes"] = json!([{
                "description": { "text": fix.description },
                "artifactChanges": files
                    .into_iter()
                    .map(|(file, replacements)| json!({ "artifactLocation": artifact(&file), "replacements": replacements }))
                    .collect::<Vec<_>>(),
                "properties": { "applicability": if safe { "safe" } else { "unsafe" } },
            }]);
        }
    }
    r
}

/// The SARIF log of one lint run.
pub fn render(setup: &SetupAnalysis, workspace: &Path) -> Value {
    let docs = docs_url();
    let catalogue = catalogue();
    let places = Places::new(setup, workspace);
    let rules: Vec<Value> = catalogue.iter().map(|(m, s)| rule(m, s, docs.as_deref())).collect();
    let results: Vec<Value> = setup
        .analysis
        .diagnostics
        .iter()
        .map(|d| result(d, catalogue.iter().position(|(m, _)| m.code == d.code), &places))
        .collect();
    let mut driver = json!({
        "name": "lvsdr",
        "version": env!("CARGO_PKG_VERSION"),
        "semanticVersion": env!("CARGO_PKG_VERSION"),
        "rules": rules,
    });
    if let Some(base) = &docs {
        driver["informationUri"] = json!(format!("{base}/README.md"));
    }
    let mut run = json!({
        "tool": { "driver": driver },
        "columnKind": "unicodeCodePoints",
        "results": results,
    });
    let root = std::fs::canonicalize(workspace).unwrap_or_else(|_| workspace.to_path_buf());
    if let Some(root) = root.to_str().filter(|r| r.starts_with('/')) {
        let root = if root.ends_with('/') {
            root.to_string()
        } else {
            format!("{root}/")
        };
        run["originalUriBaseIds"] = json!({ "%SRCROOT%": { "uri": uri(&root) } });
    }
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [run],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_escaped() {
        assert_eq!(uri("lvs/dr one.sh"), "lvs/dr%20one.sh");
        assert_eq!(uri("/a/%b#c"), "file:///a/%25b%23c");
        assert_eq!(uri("é"), "%C3%A9");
    }
}
