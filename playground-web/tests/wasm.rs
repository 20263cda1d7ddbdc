//! The playground API as WebAssembly (run with wasm-bindgen-test-runner).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::wasm_bindgen_test;

const SEED: &str = include_str!("../../fixtures/seed-dr.toml");
const SCRIPT: &str = include_str!("../../fixtures/seed-dr.sh");

fn parse(s: String) -> serde_json::Value {
    serde_json::from_str(&s).unwrap()
}

#[wasm_bindgen_test]
fn analyze_the_seed_script() {
    let v = parse(lvsdr_wasm::analyze(SCRIPT));
    assert_eq!(v["format"], "script");
    let codes: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"DR008") && codes.contains(&"DR104"), "{codes:?}");
}

#[wasm_bindgen_test]
fn render_and_predict() {
    assert!(parse(lvsdr_wasm::render(SEED, "real-server"))["text"]
        .as_str()
        .unwrap()
        .contains("arp_ignore=1"));
    let p = parse(lvsdr_wasm::predict(&SEED.replace("\"rr\"", "\"wrr\""), 8, 1));
    assert_eq!(p["predictions"][0]["counts"]["rs1"], 6);
}

#[wasm_bindgen_test]
fn walk_and_garbage() {
    assert_eq!(parse(lvsdr_wasm::walk(SEED, ""))["steps"].as_array().unwrap().len(), 6);
    let v = parse(lvsdr_wasm::analyze("{{{ not a topology"));
    assert_eq!(v["diagnostics"][0]["code"], "DR000");
}
