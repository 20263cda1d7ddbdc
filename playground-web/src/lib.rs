//! The playground's boundary over `lvsdr-core`: source text in, JSON text
//! out, so the page needs no knowledge of Rust types (after ruff's
//! `ruff_wasm`). The rule documentation is not compiled in (the core's
//! `docs` feature is off here): the page loads it from `rules.json`, which
//! `cargo xtask playground` writes with `lvsdr rules --format json`. Every function here is also callable natively, which is how
//! the unit tests below exercise it; `tests/wasm.rs` runs the same API as
//! WebAssembly.

use serde_json::{json, Value};
use wasm_bindgen::prelude::wasm_bindgen;

fn load(source: &str) -> Result<lvsdr_core::Topology, String> {
    let (_, loaded) = lvsdr_core::load(source, None);
    loaded.map(|(t, _)| t).map_err(|e| e.message)
}

/// Reads and lints a source in any supported format: the detected format,
/// the diagnostics with lines and columns, the canonical topology, and the
/// lab plan (for the diagram).
pub fn analyze_value(source: &str) -> Value {
    let analysis = lvsdr_core::analyze(source, None);
    let diagnostics: Vec<_> = analysis.diagnostics.iter().map(|d| d.located(source)).collect();
    json!({
        "format": analysis.format.name(),
        "diagnostics": diagnostics,
        "topology": analysis.topology.as_ref().map(lvsdr_core::topology_file::to_value),
        "plan": analysis.topology.as_ref().map(|t| lvsdr_core::plan::plan(t, 8, 1)),
    })
}

/// One generated artifact (`director`, `real-server`, `restore`, `sysctl`, `keepalived`, `toml`, `json`).
pub fn render_value(source: &str, artifact: &str) -> Value {
    let result = lvsdr_core::render::Artifact::parse(artifact)
        .ok_or_else(|| format!("unknown artifact `{artifact}`"))
        .and_then(|a| load(source).map(|t| lvsdr_core::render::render(&t, a)));
    match result {
        Ok(text) => json!({ "ok": true, "text": text }),
        Err(e) => json!({ "ok": false, "error": e }),
    }
}

/// The scheduler prediction for every service.
pub fn predict_value(source: &str, connections: usize, clients: usize) -> Value {
    match load(source) {
        Ok(t) => {
            json!({ "ok": true, "predictions": lvsdr_core::predict::predict_sequential(&t, connections.min(100_000), clients.max(1)) })
        }
        Err(e) => json!({ "ok": false, "error": e }),
    }
}

/// The packet walk of one connection to `service` (`tcp/80`; empty for the first).
pub fn walk_value(source: &str, service: &str) -> Value {
    match load(source) {
        Ok(t) => json!({ "ok": true, "steps": lvsdr_core::walk::walk(&t, (!service.is_empty()).then_some(service)) }),
        Err(e) => json!({ "ok": false, "error": e }),
    }
}

/// The source with the fix of diagnostic number `index` applied.
pub fn apply_fix_text(source: &str, index: usize) -> String {
    let analysis = lvsdr_core::analyze(source, None);
    match analysis.diagnostics.get(index).and_then(|d| d.fix.as_ref()) {
        Some(fix) => lvsdr_core::diagnostic::apply_fixes(source, [fix]),
        None => source.to_string(),
    }
}

#[wasm_bindgen]
pub fn analyze(source: &str) -> String {
    analyze_value(source).to_string()
}

#[wasm_bindgen]
pub fn render(source: &str, artifact: &str) -> String {
    render_value(source, artifact).to_string()
}

#[wasm_bindgen]
pub fn predict(source: &str, connections: usize, clients: usize) -> String {
    predict_value(source, connections, clients).to_string()
}

#[wasm_bindgen]
pub fn walk(source: &str, service: &str) -> String {
    walk_value(source, service).to_string()
}

#[wasm_bindgen]
pub fn apply_fix(source: &str, index: usize) -> String {
    apply_fix_text(source, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../fixtures/seed-dr.toml");
    const SCRIPT: &str = include_str!("../../fixtures/seed-dr.sh");
    const DUAL_STACK: &str = include_str!("../../fixtures/dual-stack.toml");

    #[test]
    fn analyze_reports_format_lines_and_plan() {
        let v = analyze_value(SCRIPT);
        assert_eq!(v["format"], "script");
        let route = v["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "DR104").unwrap();
        assert_eq!(route["line"], 26);
        assert_eq!(v["topology"]["director"]["vip"], "192.168.1.192");
        assert_eq!(v["plan"]["hosts"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn render_predict_walk_rules_and_fixes() {
        assert!(render_value(SEED, "restore")["text"]
            .as_str()
            .unwrap()
            .contains("-A -t 192.168.1.192:80 -s rr"));
        assert_eq!(render_value(SEED, "nope")["ok"], false);
        let p = predict_value(&SEED.replace("\"rr\"", "\"wrr\""), 8, 1);
        assert_eq!(p["predictions"][0]["counts"]["rs1"], 6);
        assert_eq!(p["predictions"][0]["counts"]["rs2"], 2);
        assert_eq!(walk_value(SEED, "tcp/25")["steps"].as_array().unwrap().len(), 6);
        let bad = SEED.replacen("vip_on_lo = 32", "vip_on_lo = 24", 1);
        let idx = analyze_value(&bad)["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .position(|d| d["code"] == "DR004")
            .unwrap();
        assert!(apply_fix_text(&bad, idx).contains("vip_on_lo = 32"));
    }

    /// The page lists services by the plan's labels and hands them back to
    /// `predict` and `walk`: with several VIPs, IPv6 ones in brackets.
    #[test]
    fn several_vips_go_by_label() {
        let v = analyze_value(DUAL_STACK);
        let labels: Vec<&str> = v["plan"]["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(labels, ["tcp 192.168.1.192:80", "tcp 192.168.1.193:25", "tcp [2001:db8:1::192]:80"]);
        let p = predict_value(DUAL_STACK, 8, 1);
        for (i, label) in labels.iter().enumerate() {
            assert_eq!(p["predictions"][i]["service"], *label);
        }
        let w = walk_value(DUAL_STACK, labels[2]);
        assert!(w["steps"][0]["frame"]["what"]
            .as_str()
            .unwrap()
            .contains("neighbour solicitation for 2001:db8:1::192"));
        let w = walk_value(DUAL_STACK, labels[1]);
        assert_eq!(w["steps"][0]["frame"]["ip_dst"], "192.168.1.193");
    }
}
