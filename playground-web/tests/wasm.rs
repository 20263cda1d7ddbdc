//! The playground API as WebAssembly (run with wasm-bindgen-test-runner).
#![cfg(target_arch = "wasm32")]

use lvsdr_wasm::Setup;
use wasm_bindgen_test::wasm_bindgen_test;

const SEED: &str = include_str!("../../fixtures/seed-dr.toml");
const SCRIPT: &str = include_str!("../../fixtures/seed-dr.sh");
const DUAL_STACK: &str = include_str!("../../fixtures/dual-stack.toml");

fn parse(s: String) -> serde_json::Value {
    serde_json::from_str(&s).unwrap()
}

fn one(text: &str) -> Setup {
    Setup::new(&serde_json::json!([{ "name": "topology", "text": text }]).to_string())
}

#[wasm_bindgen_test]
fn analyze_the_seed_script() {
    let v = parse(one(SCRIPT).analysis());
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
    assert!(parse(one(SEED).render("real-server"))["text"]
        .as_str()
        .unwrap()
        .contains("arp_ignore=1"));
    let p = parse(one(&SEED.replace("\"rr\"", "\"wrr\"")).predict(8, 1));
    assert_eq!(p["predictions"][0]["counts"]["rs1"], 6);
}

#[wasm_bindgen_test]
fn walk_and_garbage() {
    assert_eq!(parse(one(SEED).walk(""))["steps"].as_array().unwrap().len(), 6);
    let v = parse(one("{{{ not a topology").analysis());
    assert_eq!(v["diagnostics"][0]["code"], "DR000");
    // Not even a list of files: an empty setup, not a panic.
    assert_eq!(parse(Setup::new("not json").views())["plan"], serde_json::Value::Null);
}

#[wasm_bindgen_test]
fn dual_stack_by_service_label() {
    let setup = one(DUAL_STACK);
    let v = parse(setup.views());
    assert_eq!(
        v["plan"]["vips"],
        serde_json::json!(["192.168.1.192", "192.168.1.193", "2001:db8:1::192"])
    );
    let v6 = "tcp [2001:db8:1::192]:80";
    assert_eq!(v["plan"]["services"][2]["name"], v6);
    let p = parse(setup.predict(9, 1));
    let counts = &p["predictions"][2]["counts"];
    assert_eq!(p["predictions"][2]["service"], v6);
    assert_eq!(["rs1", "rs2", "rs3"].map(|rs| counts[rs].as_u64().unwrap()).iter().sum::<u64>(), 9);
    let w = parse(setup.walk(v6));
    assert_eq!(w["steps"][0]["frame"]["ip_src"], "2001:db8:1::100");
    assert!(w["steps"][0]["frame"]["what"].as_str().unwrap().contains("neighbour solicitation"));
}

#[wasm_bindgen_test]
fn tables_and_detect() {
    let t = parse(lvsdr_wasm::tables());
    assert_eq!(t["schedulers"][0], "rr");
    assert_eq!(parse(lvsdr_wasm::detect(SCRIPT))["format"], "script");
}
