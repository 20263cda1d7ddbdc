//! Every string of a topology is untrusted (issue #27). This walks every
//! string in the JSON form of several topologies, keys of objects included,
//! and replaces it with hostile payloads: a newline, braces with an
//! `include`, quotes, `$(…)`, backticks, `;`, markup, a leading `-`. For each
//! one, the reader refuses the file, or every artifact holds the payload only
//! as inert data:
//! - in the scripts, the `ipvsadm -R` file, `sysctl.d` and keepalived.conf,
//!   a line that holds the payload is a comment, and there are as many
//!   lines that are not comments as without the payload;
//! - the scripts still pass `bash -n`, and each keepalived.conf passes
//!   `keepalived -t` as before;
//! - the TOML and JSON artifacts read back to the same topology (the same
//!   canonical JSON).

use lvsdr_core::render::{keepalived_director, render, Artifact};
use lvsdr_core::topology_file::{from_json, from_toml, to_json};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const MARK: &str = "PWNED";

fn payloads() -> Vec<String> {
    [
        "x\nPWNED",
        "x\r\nPWNED",
        "x} include /etc/PWNED {",
        "x {\n notify_master \"/bin/PWNED\"\n#",
        "x\"PWNED",
        "x'PWNED",
        "$(PWNED)",
        "`PWNED`",
        "x;PWNED",
        "include PWNED",
        "x#PWNED",
        "x!PWNED",
        "<b>PWNED</b>",
        "-PWNED",
        "PWNED\u{0}",
        "PWNED\u{1b}[2J",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Paths to every string in `v`: `Err(path)` names an object key, `Ok(path)` a value.
fn strings(v: &Value, path: &mut Vec<String>, out: &mut Vec<Result<Vec<String>, Vec<String>>>) {
    match v {
        Value::String(_) => out.push(Ok(path.clone())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(i.to_string());
                strings(x, path, out);
                path.pop();
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                path.push(k.clone());
                out.push(Err(path.clone()));
                strings(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, p| match v {
        Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
        Value::Object(m) => m.get_mut(p).unwrap(),
        _ => unreachable!(),
    })
}

fn with_payload(base: &Value, target: &Result<Vec<String>, Vec<String>>, payload: &str, append: bool) -> Value {
    let mut v = base.clone();
    match target {
        Ok(path) => {
            let s = at(&mut v, path);
            let old = s.as_str().unwrap_or_default().to_string();
            *s = Value::String(if append { format!("{old}{payload}") } else { payload.to_string() });
        }
        Err(path) => {
            let (key, parent) = path.split_last().unwrap();
            if let Value::Object(m) = at(&mut v, parent) {
                if let Some(x) = m.remove(key) {
                    m.insert(if append { format!("{key}{payload}") } else { payload.to_string() }, x);
                }
            }
        }
    }
    v
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

fn checked(tool: &str, args: &[&str], text: &str) -> bool {
    let dir = std::env::temp_dir().join(format!("lvsdr-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("artifact");
    std::fs::write(&file, text).unwrap();
    let ok = Command::new(tool).args(args).arg(&file).output().unwrap().status.success();
    let _ = std::fs::remove_dir_all(&dir);
    ok
}

/// Lines that are not comments (`#` for scripts and sysctl.d, `#` and `!` for keepalived).
fn code_lines(text: &str) -> usize {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .count()
}

fn artifacts(t: &lvsdr_core::Topology) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = [
        Artifact::Director,
        Artifact::RealServer,
        Artifact::Restore,
        Artifact::Sysctl,
        Artifact::Keepalived,
    ]
    .into_iter()
    .map(|a| (a.name().to_string(), render(t, a)))
    .collect();
    for i in 0..t.directors.len() {
        if let Some(conf) = keepalived_director(t, i) {
            out.push((format!("keepalived-{i}"), conf));
        }
    }
    out
}

#[test]
fn every_string_field_refuses_or_holds_hostile_text_inert() {
    assert!(have("bash"), "bash is needed for `bash -n`");
    let keepalived = have("keepalived");
    assert!(
        keepalived || std::env::var_os("LVSDR_NO_KEEPALIVED").is_some(),
        "keepalived is required for `keepalived -t`: `cargo xtask setup` installs it (apt-get install keepalived), or set LVSDR_NO_KEEPALIVED=1 to skip that part"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let (mut fields, mut refused, mut accepted, mut bash_runs, mut keepalived_runs) = (0, 0, 0, 0, 0);
    for name in [
        "pair-dr.toml",
        "seed-dr.toml",
        "dual-stack.toml",
        "fwmark-dr.toml",
        "routed-dr.toml",
    ] {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        let base_topology = from_toml(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let base: Value = serde_json::from_str(&to_json(&base_topology)).unwrap();
        let base_artifacts = artifacts(&base_topology);
        let base_keepalived: Vec<bool> = base_artifacts
            .iter()
            .map(|(a, t)| keepalived && a.starts_with("keepalived-") && checked("keepalived", &["-t", "-f"], t))
            .collect();
        let mut targets = Vec::new();
        strings(&base, &mut vec![], &mut targets);
        for target in &targets {
            fields += 1;
            for payload in payloads() {
                for append in [false, true] {
                    let json = serde_json::to_string(&with_payload(&base, target, &payload, append)).unwrap();
                    let what = format!("{name} {target:?} = {payload:?} (appended: {append})");
                    let t = match from_json(&json) {
                        Err(e) => {
                            refused += 1;
                            assert!(e.code.starts_with("DR"), "{what}: {}", e.message);
                            continue;
                        }
                        Ok(t) => t,
                    };
                    accepted += 1;
                    let rendered = artifacts(&t);
                    assert_eq!(rendered.len(), base_artifacts.len(), "{what}");
                    for (((kind, art), (_, base_art)), base_ok) in rendered.iter().zip(&base_artifacts).zip(&base_keepalived) {
                        // `lb1-PWNED` is a fine host name: only text with syntax in it must stay in comments.
                        let syntax = payload.chars().any(|c| !(c.is_ascii_alphanumeric() || c == '-'));
                        for line in art.lines().filter(|l| syntax && l.contains(MARK)) {
                            let l = line.trim_start();
                            assert!(
                                l.starts_with('#') || l.starts_with('!'),
                                "{what}: {kind} holds it outside a comment:\n{line}"
                            );
                        }
                        if syntax {
                            assert_eq!(code_lines(art), code_lines(base_art), "{what}: {kind} changed shape:\n{art}");
                        }
                        if syntax && matches!(kind.as_str(), "director" | "real-server") {
                            bash_runs += 1;
                            assert!(checked("bash", &["-n"], art), "{what}: bash -n refuses {kind}:\n{art}");
                        }
                        if *base_ok && syntax {
                            keepalived_runs += 1;
                            assert!(
                                checked("keepalived", &["-t", "-f"], art),
                                "{what}: keepalived -t refuses {kind}:\n{art}"
                            );
                        }
                    }
                    for (form, text) in [("toml", render(&t, Artifact::Toml)), ("json", render(&t, Artifact::Json))] {
                        let back = if form == "toml" { from_toml(&text) } else { from_json(&text) };
                        let back = back.unwrap_or_else(|e| panic!("{what}: the {form} artifact does not read back: {e}\n{text}"));
                        assert_eq!(to_json(&back), to_json(&t), "{what}: the {form} artifact reads back differently");
                    }
                }
            }
        }
    }
    eprintln!(
        "{fields} string fields, {refused} hostile variants refused, {accepted} accepted and inert \
         ({bash_runs} bash -n, {keepalived_runs} keepalived -t)"
    );
    assert!(fields > 50 && refused > 0 && accepted > 0 && bash_runs > 0);
}
