//! The playground's boundary over `lvsdr-core`: source text in, JSON text
//! out, so the page needs no knowledge of Rust types (after ruff's
//! `ruff_wasm`).
//!
//! The page holds one [`Setup`]: the files of its editor tabs, read as one
//! setup exactly as `lvsdr lint FILE...` reads them, once per change. Every
//! view (diagnostics, diagram, generated files, simulator, packet walk) asks
//! that one reading; nothing is parsed twice.
//!
//! This crate is built twice for the page. Without the `importers` feature
//! it reads TOML and JSON topologies (the first module the page loads);
//! with it, it also reads ipvsadm scripts, `ipvsadm -S` dumps and
//! keepalived.conf (a second module, loaded when a tab holds one of those).
//! The rule documentation is not compiled in (the core's `docs` feature is
//! off): the page loads `rules.json`, which `cargo xtask playground` writes
//! with `lvsdr rules --format json`.
//!
//! Every function here is also callable natively, which is how the unit
//! tests below exercise it; `tests/wasm.rs` runs the same API as WebAssembly.

use lvsdr_core::{Format, SetupAnalysis, Span, Topology};
use serde_json::{json, Value};
use wasm_bindgen::prelude::wasm_bindgen;

/// The editor's tabs, read as one setup.
#[wasm_bindgen]
pub struct Setup {
    read: SetupAnalysis,
    /// Each tab's own text, for offsets in the editor's units, and whether
    /// it is all ASCII (then bytes and UTF-16 units are the same).
    texts: Vec<(String, bool)>,
}

/// Positions in a file's text as the editor counts them: UTF-16 code units.
fn utf16((text, ascii): &(String, bool), byte: usize) -> usize {
    let mut byte = byte.min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    if *ascii {
        byte
    } else {
        text[..byte].encode_utf16().count()
    }
}

impl Setup {
    /// Reads `(name, text)` files as one setup.
    pub fn read(files: Vec<(String, String)>) -> Setup {
        let read = lvsdr_core::analyze_files(&files, None);
        Setup {
            read,
            texts: files
                .into_iter()
                .map(|(_, t)| {
                    let ascii = t.is_ascii();
                    (t, ascii)
                })
                .collect(),
        }
    }

    fn topology(&self) -> Result<&Topology, String> {
        self.read
            .analysis
            .topology
            .as_ref()
            .ok_or_else(|| "the setup does not read; fix the errors first".to_string())
    }

    /// A span of the joined text as (tab, from, to) in that tab's editor units.
    /// A finding about the whole setup (no span) marks the first tab's first line.
    fn place(&self, span: Span) -> (usize, usize, usize) {
        let (file, local) = match self.read.locate(span) {
            Some((f, local)) => (self.read.files.iter().position(|x| std::ptr::eq(x, f)).unwrap_or(0), local),
            None => (0, span),
        };
        let empty = (String::new(), true);
        let text = self.texts.get(file).unwrap_or(&empty);
        if span.is_none() {
            return (file, 0, utf16(text, text.0.find('\n').unwrap_or(text.0.len())));
        }
        (file, utf16(text, local.start), utf16(text, local.end))
    }

    /// The reading: formats, and every diagnostic placed in its tab. What
    /// the editors need at each keystroke, and no more.
    pub fn analysis_value(&self) -> Value {
        let located = self.read.located();
        let diagnostics: Vec<Value> = self
            .read
            .analysis
            .diagnostics
            .iter()
            .zip(located)
            .map(|(d, at)| {
                let (file, from, to) = self.place(d.span);
                let fix = d.fix.as_ref().map(|fix| {
                    let edits: Vec<Value> = fix
                        .edits
                        .iter()
                        .map(|e| {
                            let (file, from, to) = self.place(e.span);
                            json!({ "file": file, "from": from, "to": to, "insert": e.replacement })
                        })
                        .collect();
                    json!({ "description": fix.description, "applicability": fix.applicability, "edits": edits })
                });
                json!({
                    "code": d.code,
                    "severity": d.severity,
                    "message": d.message,
                    "help": d.help,
                    "node": d.node,
                    "file": file,
                    "from": from,
                    "to": to,
                    "line": at.line,
                    "column": at.column,
                    "fix": fix,
                })
            })
            .collect();
        json!({
            "format": self.read.analysis.format.name(),
            "files": self.read.files.iter().map(|f| json!({ "name": f.name, "format": f.format.name() })).collect::<Vec<_>>(),
            "reads": self.read.analysis.topology.is_some(),
            "diagnostics": diagnostics,
        })
    }

    /// For the diagram and the other views: the lab plan and the stated LAN.
    pub fn views_value(&self) -> Value {
        let topology = self.read.analysis.topology.as_ref();
        json!({
            "plan": topology.map(|t| lvsdr_core::plan::plan(t, 8, 1)),
            "lan": topology.map(|t| lvsdr_core::topology_file::to_value(t)["lan"].clone()),
        })
    }

    /// One generated artifact (`director`, `real-server`, `restore`, `sysctl`, `keepalived`, `toml`, `json`).
    pub fn render_value(&self, artifact: &str) -> Value {
        let result = lvsdr_core::render::Artifact::parse(artifact)
            .ok_or_else(|| format!("unknown artifact `{artifact}`"))
            .and_then(|a| self.topology().map(|t| lvsdr_core::render::render(t, a)));
        match result {
            Ok(text) => json!({ "ok": true, "text": text }),
            Err(e) => json!({ "ok": false, "error": e }),
        }
    }

    /// The scheduler prediction for every service.
    pub fn predict_value(&self, connections: usize, clients: usize) -> Value {
        match self.topology() {
            Ok(t) => json!({
                "ok": true,
                "predictions": lvsdr_core::predict::predict_sequential(t, connections.min(100_000), clients.max(1)),
            }),
            Err(e) => json!({ "ok": false, "error": e }),
        }
    }

    /// The packet walk of one connection to `service` (a plan label; empty for the first).
    pub fn walk_value(&self, service: &str) -> Value {
        match self.topology() {
            Ok(t) => json!({ "ok": true, "steps": lvsdr_core::walk::walk(t, (!service.is_empty()).then_some(service)) }),
            Err(e) => json!({ "ok": false, "error": e }),
        }
    }
}

#[wasm_bindgen]
impl Setup {
    /// `files`: a JSON array of `{"name": ..., "text": ...}`, one per tab.
    #[wasm_bindgen(constructor)]
    pub fn new(files: &str) -> Setup {
        let files: Vec<(String, String)> = match serde_json::from_str::<Value>(files) {
            Ok(Value::Array(items)) => items
                .iter()
                .map(|f| {
                    let field = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                    (field("name"), field("text"))
                })
                .collect(),
            _ => Vec::new(),
        };
        Setup::read(files)
    }

    pub fn analysis(&self) -> String {
        self.analysis_value().to_string()
    }

    pub fn views(&self) -> String {
        self.views_value().to_string()
    }

    pub fn render(&self, artifact: &str) -> String {
        self.render_value(artifact).to_string()
    }

    pub fn predict(&self, connections: usize, clients: usize) -> String {
        self.predict_value(connections, clients).to_string()
    }

    pub fn walk(&self, service: &str) -> String {
        self.walk_value(service).to_string()
    }
}

/// The format a text is read as (`toml`, `json`, `script`, `ipvsadm-save`,
/// `keepalived`), and whether this module reads it: the page loads the
/// module with the importers when it does not.
pub fn detect_value(text: &str) -> Value {
    let format = Format::detect(text);
    let readable = matches!(format, Format::Toml | Format::Json) || cfg!(feature = "importers");
    json!({ "format": format.name(), "readable": readable })
}

#[wasm_bindgen]
pub fn detect(text: &str) -> String {
    detect_value(text).to_string()
}

/// What the editor completes, from the core's own tables: each TOML table's
/// fields, the scheduler names, the sysctl keys DR setups set, the keepalived
/// checkers, and the artifacts.
pub fn tables_value() -> Value {
    let fields: serde_json::Map<String, Value> = lvsdr_core::topology_file::fields::ALL
        .iter()
        .map(|(table, keys)| (table.to_string(), json!(keys)))
        .collect();
    json!({
        "fields": fields,
        "schedulers": lvsdr_core::model::Scheduler::ALL.map(|s| s.name()),
        "sysctl": lvsdr_core::names::SYSCTL_KEYS,
        "health_checks": lvsdr_core::model::HEALTH_CHECKS,
        "artifacts": lvsdr_core::render::Artifact::ALL.map(|a| a.name()),
        "keepalived": keepalived_keywords(),
    })
}

/// The keywords keepalived's importer knows in each block (`""` is the top
/// level, `checker` any checker's block), read and skipped alike. Only the
/// module with the importers has them: it is the one a keepalived.conf loads.
#[cfg(not(feature = "importers"))]
fn keepalived_keywords() -> Value {
    Value::Null
}

/// The keywords keepalived's importer knows in each block (`""` is the top
/// level, `checker` any checker's block), read and skipped alike.
#[cfg(feature = "importers")]
fn keepalived_keywords() -> Value {
    use lvsdr_core::import::keepalived::keywords::*;
    fn join(a: &[&'static str], b: &[&'static str]) -> Vec<&'static str> {
        a.iter().chain(b).copied().collect()
    }
    json!({
        "": join(TOP_LEVEL, TOP_LEVEL_SKIPPED),
        "global_defs": GLOBAL_DEFS,
        "vrrp_instance": VRRP_INSTANCE,
        "virtual_server": join(VIRTUAL_SERVER, VIRTUAL_SERVER_SKIPPED),
        "real_server": join(REAL_SERVER, REAL_SERVER_SKIPPED),
        "checker": CHECKER,
        "url": URL,
    })
}

#[wasm_bindgen]
pub fn tables() -> String {
    tables_value().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../fixtures/seed-dr.toml");
    const SCRIPT: &str = include_str!("../../fixtures/seed-dr.sh");
    const DUAL_STACK: &str = include_str!("../../fixtures/dual-stack.toml");

    fn one(text: &str) -> Setup {
        Setup::read(vec![("topology".into(), text.into())])
    }

    #[test]
    fn analysis_places_findings_in_their_tab() {
        let v = one(SCRIPT).analysis_value();
        assert_eq!(v["format"], "script");
        let route = v["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "DR104").unwrap();
        assert_eq!(route["line"], 26);
        let (from, to) = (route["from"].as_u64().unwrap() as usize, route["to"].as_u64().unwrap() as usize);
        assert_eq!(&SCRIPT[from..to], "lo:1");
        assert_eq!(v["reads"], true);
        let views = one(SCRIPT).views_value();
        assert_eq!(views["lan"]["subnet"], "192.168.1.0/24");
        assert_eq!(views["plan"]["hosts"].as_array().unwrap().len(), 4);
    }

    /// Two tabs are one setup, as `lvsdr lint director.sh real-server.sh`:
    /// each finding names its tab and counts from that tab's start.
    #[test]
    fn two_tabs_read_as_one_setup() {
        let dir = include_str!("../../fixtures/real/split-scripts/director.sh");
        let rs = include_str!("../../fixtures/real/split-scripts/real-server.sh");
        // Alone, the director's script says nothing of the real servers.
        let alone = one(dir).analysis_value();
        assert!(alone["diagnostics"].as_array().unwrap().iter().any(|d| d["code"] == "DR103"));
        let both = Setup::read(vec![("director.sh".into(), dir.into()), ("real-server.sh".into(), rs.into())]);
        let v = both.analysis_value();
        assert_eq!(v["files"][1]["format"], "script");
        let d = v["diagnostics"].as_array().unwrap();
        assert!(d.iter().all(|d| d["severity"] != "error" && d["code"] != "DR103"), "{d:?}");
        for d in d.iter().filter(|d| d["file"] == 1) {
            assert!(d["to"].as_u64().unwrap() as usize <= rs.len(), "{d}");
        }
        assert!(both.render_value("real-server")["text"].as_str().unwrap().contains("arp_ignore"));
    }

    #[test]
    fn fixes_are_edits_in_their_tab() {
        let bad = SEED.replacen("vip_on_lo = 32", "vip_on_lo = 24", 1);
        let v = one(&bad).analysis_value();
        let d = v["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "DR004").unwrap();
        let edit = &d["fix"]["edits"][0];
        assert_eq!(d["fix"]["applicability"], "safe");
        let (from, to) = (edit["from"].as_u64().unwrap() as usize, edit["to"].as_u64().unwrap() as usize);
        let fixed = format!("{}{}{}", &bad[..from], edit["insert"].as_str().unwrap(), &bad[to..]);
        assert!(fixed.contains("vip_on_lo = 32") && !fixed.contains("vip_on_lo = 24"));
    }

    /// Offsets are UTF-16 code units, as the editor counts: a comment with
    /// `…` and `ü` before the finding moves it by two units, not five bytes.
    #[test]
    fn offsets_count_utf16_units() {
        let text = format!("# ü…\n{}", SEED.replacen("vip_on_lo = 32", "vip_on_lo = 24", 1));
        let v = one(&text).analysis_value();
        let d = v["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "DR004").unwrap();
        let units: Vec<u16> = text.encode_utf16().collect();
        let (from, to) = (d["from"].as_u64().unwrap() as usize, d["to"].as_u64().unwrap() as usize);
        assert!(String::from_utf16(&units[from..to]).unwrap().contains("24"), "{d}");
    }

    #[test]
    fn render_predict_walk() {
        let seed = one(SEED);
        assert!(seed.render_value("restore")["text"]
            .as_str()
            .unwrap()
            .contains("-A -t 192.168.1.192:80 -s rr"));
        assert_eq!(seed.render_value("nope")["ok"], false);
        let p = one(&SEED.replace("\"rr\"", "\"wrr\"")).predict_value(8, 1);
        assert_eq!(p["predictions"][0]["counts"]["rs1"], 6);
        assert_eq!(p["predictions"][0]["counts"]["rs2"], 2);
        assert_eq!(seed.walk_value("tcp/25")["steps"].as_array().unwrap().len(), 6);
        assert_eq!(one("{{{").render_value("director")["ok"], false);
    }

    /// The page lists services by the plan's labels and hands them back to
    /// `predict` and `walk`: with several VIPs, IPv6 ones in brackets.
    #[test]
    fn several_vips_go_by_label() {
        let setup = one(DUAL_STACK);
        let v = setup.views_value();
        let labels: Vec<&str> = v["plan"]["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(labels, ["tcp 192.168.1.192:80", "tcp 192.168.1.193:25", "tcp [2001:db8:1::192]:80"]);
        let p = setup.predict_value(8, 1);
        for (i, label) in labels.iter().enumerate() {
            assert_eq!(p["predictions"][i]["service"], *label);
        }
        let w = setup.walk_value(labels[2]);
        assert!(w["steps"][0]["frame"]["what"]
            .as_str()
            .unwrap()
            .contains("neighbour solicitation for 2001:db8:1::192"));
        let w = setup.walk_value(labels[1]);
        assert_eq!(w["steps"][0]["frame"]["ip_dst"], "192.168.1.193");
    }

    #[test]
    fn tables_come_from_the_core() {
        let t = tables_value();
        assert!(t["fields"]["real_server"].as_array().unwrap().contains(&json!("vip_on_lo")));
        assert!(t["fields"]["service.real_server"].as_array().unwrap().contains(&json!("weight")));
        assert_eq!(t["schedulers"].as_array().unwrap().len(), 13);
        assert!(t["sysctl"].as_array().unwrap().contains(&json!("net.ipv4.conf.all.arp_ignore")));
        let k = &t["keepalived"];
        assert!(k["real_server"].as_array().unwrap().contains(&json!("weight")));
        assert!(k["virtual_server"].as_array().unwrap().contains(&json!("lb_algo")));
        assert!(k[""].as_array().unwrap().contains(&json!("vrrp_instance")));
        assert_eq!(detect_value(SCRIPT)["format"], "script");
        assert_eq!(detect_value(SEED)["readable"], true);
    }
}
