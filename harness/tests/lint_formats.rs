//! `lvsdr lint --format github` and `--format sarif`, run as CI runs them.
//! No lab, no root.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn lint_in(dir: &Path, workspace: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lvsdr"));
    cmd.arg("lint").args(args).current_dir(dir).env_remove("LVSDR_DOCS_URL");
    match workspace {
        Some(w) => cmd.env("GITHUB_WORKSPACE", w),
        None => cmd.env_remove("GITHUB_WORKSPACE"),
    };
    cmd.output().expect("run lvsdr")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

/// The reverse of GitHub's escaping of a property or a message.
fn unescape(s: &str) -> String {
    s.replace("%0A", "\n")
        .replace("%0D", "\r")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

/// A workflow command line read the way the runner reads it: the command
/// name up to the first space, the properties up to the first `::`, then
/// the message.
struct WorkflowCommand {
    level: String,
    props: Vec<(String, String)>,
    message: String,
}

fn parse(line: &str) -> WorkflowCommand {
    let rest = line
        .strip_prefix("::")
        .unwrap_or_else(|| panic!("not a workflow command: {line:?}"));
    let (head, message) = rest
        .split_once("::")
        .unwrap_or_else(|| panic!("no `::` before the message: {line:?}"));
    let (level, props) = head.split_once(' ').unwrap_or((head, ""));
    let props = props
        .split(',')
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .unwrap_or_else(|| panic!("property without `=`: {p:?} in {line:?}"));
            (k.to_string(), unescape(v))
        })
        .collect();
    WorkflowCommand {
        level: level.to_string(),
        props,
        message: unescape(message),
    }
}

impl WorkflowCommand {
    fn prop(&self, key: &str) -> &str {
        self.props
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no `{key}` in {:?}", self.props))
    }
}

#[test]
fn github_annotations_name_dr008_on_the_seed_scripts_lines() {
    let out = lint_in(&root(), Some(&root()), &["--format", "github", "fixtures/seed-dr.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let commands: Vec<WorkflowCommand> = stdout(&out).lines().map(parse).collect();
    let dr008: Vec<&WorkflowCommand> = commands
        .iter()
        .filter(|c| c.prop("title") == "DR008 (scheduler-ignores-weights)")
        .collect();
    assert_eq!(dr008.len(), 2, "DR008 for tcp/80 and tcp/25");
    for (c, line) in dr008.iter().zip(["15", "18"]) {
        assert_eq!(c.level, "warning");
        assert_eq!(c.prop("file"), "fixtures/seed-dr.sh");
        assert_eq!((c.prop("line"), c.prop("col")), (line, "24"));
        assert_eq!((c.prop("endLine"), c.prop("endColumn")), (line, "26"));
        assert!(c.message.starts_with("scheduler `rr` ignores the weights 3:1"), "{}", c.message);
        assert!(c.message.contains("\nhelp: use `wrr`"), "{}", c.message);
    }
    // Every finding, one command each, with GitHub's levels.
    let json: Value = serde_json::from_slice(&lint_in(&root(), None, &["--format", "json", "fixtures/seed-dr.sh"]).stdout).unwrap();
    assert_eq!(commands.len(), json.as_array().unwrap().len());
    assert!(commands.iter().any(|c| c.level == "notice"), "info findings are notices");
}

#[test]
fn github_paths_are_relative_to_the_workspace() {
    // Run from elsewhere with an absolute path: the file is named from GITHUB_WORKSPACE.
    let seed = root().join("fixtures/seed-dr.sh").canonicalize().unwrap();
    let out = lint_in(
        &std::env::temp_dir(),
        Some(&root()),
        &["--format", "github", seed.to_str().unwrap()],
    );
    for line in stdout(&out).lines() {
        assert_eq!(parse(line).prop("file"), "fixtures/seed-dr.sh");
    }
    // Without GITHUB_WORKSPACE: the current folder.
    let out = lint_in(&root().join("fixtures"), None, &["--format", "github", "seed-dr.sh"]);
    assert_eq!(parse(stdout(&out).lines().next().unwrap()).prop("file"), "seed-dr.sh");
    // Several files, one setup: each finding names its own file.
    let out = lint_in(
        &root(),
        Some(&root()),
        &[
            "--format",
            "github",
            "fixtures/real/split-scripts/director.sh",
            "fixtures/real/split-scripts/real-server.sh",
        ],
    );
    let files: std::collections::BTreeSet<String> = stdout(&out).lines().map(|l| parse(l).prop("file").to_string()).collect();
    assert!(files.iter().all(|f| f.starts_with("fixtures/real/split-scripts/")), "{files:?}");
}

/// A file whose name and text hold `::`, newlines, `%` and commas: each
/// finding is still exactly one command, and the name and messages come
/// back intact from the escaping.
#[test]
fn hostile_names_and_messages_forge_no_commands() {
    let dir = std::env::temp_dir().join(format!("lvsdr-annotate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = "evil,a::error::b%0A\n::error file=x.sh::forged\r.sh";
    let text = "ipvsadm -A -t 10.0.0.1:80 -s rr\n\
                ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2 -g -w 3\n\
                ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.3 -g -w 1\n\
                frob \"x\n::error file=forged.sh::forged,%0A\"\n\
                route add -host 10.0.0.1 \"lo:1::warning::zz%0A,\r\n::error::cr\"\n";
    std::fs::write(dir.join(name), text).unwrap();
    let out = lint_in(&dir, Some(&dir), &["--format", "github", "--", name]);
    let json: Value = serde_json::from_slice(&lint_in(&dir, None, &["--format", "json", "--", name]).stdout).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let printed = stdout(&out);
    let json_count = json.as_array().unwrap().len();
    let lines: Vec<&str> = printed.split('\n').filter(|l| !l.is_empty()).collect();
    assert!(!printed.contains('\r'), "a CR would end the line for the runner");
    assert_eq!(lines.len(), json_count, "one line a finding:\n{printed}");
    let commands: Vec<WorkflowCommand> = lines.iter().map(|l| parse(l)).collect();
    for c in &commands {
        assert!(["error", "warning", "notice"].contains(&c.level.as_str()), "{}", c.level);
        let keys: Vec<&str> = c.props.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["file", "line", "col", "endLine", "endColumn", "title"]);
        assert_eq!(c.prop("file"), name, "the file name comes back whole");
    }
    let route = commands.iter().find(|c| c.prop("title").starts_with("DR104")).expect("DR104");
    assert!(route.message.contains("`lo:1::warning::zz%0A,"), "{}", route.message);
}

fn sarif(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lvsdr"))
        .args(["lint", "--format", "sarif"])
        .args(args)
        .current_dir(root())
        .env("GITHUB_WORKSPACE", root())
        .env("LVSDR_DOCS_URL", "https://github.com/OWNER/lvsdr/blob/v1")
        .output()
        .expect("run lvsdr");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("SARIF is JSON: {e}"))
}

fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {path} in {v}"))
}

/// The fields SARIF 2.1.0 requires, and the ones code scanning uses,
/// checked by hand (the schema check is `sarif_passes_the_multitool`).
#[test]
fn sarif_has_every_rule_and_located_results_with_fixes() {
    let log = sarif(&["fixtures/seed-dr.sh"]);
    assert_eq!(text(&log, "/version"), "2.1.0");
    assert!(text(&log, "/$schema").ends_with("sarif-schema-2.1.0.json"));
    let run = &log["runs"][0];
    assert_eq!(text(run, "/tool/driver/name"), "lvsdr");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let rules_json: Value = serde_json::from_slice(
        &Command::new(env!("CARGO_BIN_EXE_lvsdr"))
            .args(["rules", "--format", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(rules.len(), rules_json.as_array().unwrap().len(), "every documented code");
    for r in rules {
        let id = text(r, "/id");
        assert!(!text(r, "/shortDescription/text").is_empty());
        assert!(text(r, "/help/text").contains("## What it does"), "{id} has its documentation");
        let uri = text(r, "/helpUri");
        assert!(uri.starts_with("https://github.com/OWNER/lvsdr/blob/v1/core/src/"), "{uri}");
        let file = uri.trim_start_matches("https://github.com/OWNER/lvsdr/blob/v1/");
        let source = std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{id}: {file}: {e}"));
        // The entry names its code through the catalogue's constant, named for the rule.
        let name = text(r, "/name");
        let constant = format!("code::{}", name.to_uppercase().replace('-', "_"));
        assert!(
            source.contains(&format!("\"{name}\"")) && source.contains(&constant),
            "{file} documents {id} ({name}, {constant})"
        );
    }
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for r in results {
        let id = text(r, "/ruleId");
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(text(&rules[index], "/id"), id);
        assert!(["error", "warning", "note"].contains(&text(r, "/level")));
        assert!(!text(r, "/message/text").is_empty());
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(text(loc, "/artifactLocation/uri"), "fixtures/seed-dr.sh");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
    let dr008: Vec<&Value> = results.iter().filter(|r| r["ruleId"] == "DR008").collect();
    let lines: Vec<u64> = dr008
        .iter()
        .map(|r| r["locations"][0]["physicalLocation"]["region"]["startLine"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [15, 18]);
    let fix = &dr008[0]["fixes"][0];
    assert_eq!(text(fix, "/description/text"), "use `wrr`");
    let replacement = &fix["artifactChanges"][0]["replacements"][0];
    assert_eq!(text(replacement, "/insertedContent/text"), "wrr");
    assert_eq!(replacement["deletedRegion"]["startColumn"], 24);
    assert_eq!(replacement["deletedRegion"]["endColumn"], 26);
}

/// The multitool from npm (`@microsoft/sarif-multitool`, installed by
/// `cargo xtask ci` into target/tools/npm): its `validate` checks the log
/// against the SARIF 2.1.0 schema and Microsoft's rules for SARIF producers.
#[test]
fn sarif_passes_the_multitool() {
    let tool = root().join("target/tools/npm/node_modules/@microsoft/sarif-multitool/bin.js");
    if !tool.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing: `cargo xtask ci` installs it",
            tool.display()
        );
        eprintln!("skipped: no SARIF multitool at {}", tool.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("lvsdr-sarif-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inputs: [&[&str]; 4] = [
        &["fixtures/seed-dr.sh"],
        &["fixtures/rules/DR004-fail.toml"],
        &[
            "fixtures/real/split-scripts/director.sh",
            "fixtures/real/split-scripts/real-server.sh",
        ],
        &["fixtures/hostile/interface-markup.toml"],
    ];
    let mut files = vec![];
    for (i, args) in inputs.iter().enumerate() {
        let f = dir.join(format!("{i}.sarif"));
        std::fs::write(&f, serde_json::to_vec_pretty(&sarif(args)).unwrap()).unwrap();
        files.push(f);
    }
    // A log that breaks the schema, to show the tool reports errors at all.
    let broken = dir.join("broken.sarif");
    std::fs::write(&broken, r#"{"version": "2.1.0", "runs": [{"results": []}]}"#).unwrap();
    let validate = |files: &[PathBuf], name: &str| -> Value {
        let out = dir.join(name);
        let status = Command::new("node")
            .arg(&tool)
            .arg("validate")
            .args(files)
            .arg("--output")
            .arg(&out)
            .args(["--log", "ForceOverwrite"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run node");
        assert!(status.success(), "the multitool failed on {files:?}");
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
    };
    let findings = |v: &Value| -> Vec<String> {
        v["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["results"].as_array().cloned().unwrap_or_default())
            .map(|r| format!("{} {}: {}", r["level"], r["ruleId"], r["message"]))
            .collect()
    };
    let bad = findings(&validate(&[broken], "broken.out"));
    assert!(
        bad.iter().any(|f| f.starts_with("\"error\"")),
        "the multitool reports a broken log: {bad:?}"
    );
    let found = findings(&validate(&files, "ours.out"));
    assert!(found.is_empty(), "{found:#?}");
    std::fs::remove_dir_all(&dir).ok();
}
