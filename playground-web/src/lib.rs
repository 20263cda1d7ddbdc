//! The playground's boundary over `lvsdr-core`: source text in, JSON out, so
//! the browser side needs no knowledge of Rust types. The wasm-bindgen
//! exports and the static site build on these functions.

use serde_json::{json, Value};

/// Reads and lints a source in any supported format: the detected format,
/// the diagnostics with lines and columns, and the canonical topology.
pub fn analyze(source: &str) -> Value {
    let analysis = lvsdr_core::analyze(source, None);
    let diagnostics: Vec<_> = analysis.diagnostics.iter().map(|d| d.located(source)).collect();
    json!({
        "format": analysis.format.name(),
        "diagnostics": diagnostics,
        "topology": analysis.topology.as_ref().map(lvsdr_core::topology_file::to_value),
    })
}

/// One generated artifact (`director`, `real-server`, `restore`, `sysctl`, `keepalived`, `toml`, `json`).
pub fn render(source: &str, artifact: &str) -> Result<String, String> {
    let artifact = lvsdr_core::render::Artifact::parse(artifact).ok_or_else(|| format!("unknown artifact `{artifact}`"))?;
    let (_, loaded) = lvsdr_core::load(source, None);
    let (topology, _) = loaded.map_err(|e| e.message)?;
    Ok(lvsdr_core::render::render(&topology, artifact))
}

/// The scheduler prediction for every service.
pub fn predict(source: &str, connections: usize, clients: usize) -> Result<Value, String> {
    let (_, loaded) = lvsdr_core::load(source, None);
    let (topology, _) = loaded.map_err(|e| e.message)?;
    let events = lvsdr_core::predict::sequential(connections, clients, topology.client.address.value);
    serde_json::to_value(lvsdr_core::predict::predict_all(&topology, &events)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../fixtures/seed-dr.toml");
    const SCRIPT: &str = include_str!("../../fixtures/seed-dr.sh");

    #[test]
    fn analyze_reports_format_and_lines() {
        let v = analyze(SCRIPT);
        assert_eq!(v["format"], "script");
        let route = v["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "DR104").unwrap();
        assert_eq!(route["line"], 26);
        assert_eq!(v["topology"]["director"]["vip"], "192.168.1.192");
    }

    #[test]
    fn render_and_predict() {
        assert!(render(SEED, "restore").unwrap().contains("-A -t 192.168.1.192:80 -s rr"));
        assert!(render(SEED, "nope").is_err());
        let p = predict(&SEED.replace("\"rr\"", "\"wrr\""), 8, 1).unwrap();
        assert_eq!(p[0]["counts"]["rs1"], 6);
        assert_eq!(p[0]["counts"]["rs2"], 2);
    }
}
