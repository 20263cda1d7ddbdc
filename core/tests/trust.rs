//! The trust boundary: hostile topologies from `fixtures/hostile/` are
//! refused by every reader, with the code of the check and the span of the
//! offending value, before lint, render or plan can see them.

use lvsdr_core::{analyze, load, Severity};
use std::path::Path;

/// Each hostile fixture, the code that refuses it, and text the span must cover.
const HOSTILE: [(&str, &str, &str); 15] = [
    ("sysctl-traversal.toml", "DR105", "net/../../../tmp/lvsdr-pwned"),
    ("sysctl-host-knob.toml", "DR105", "kernel.panic"),
    ("interface-markup.toml", "DR106", "eth0<img src=x onerror=alert(1)>"),
    ("host-name-shell.toml", "DR106", "rs2'$(reboot)'"),
    ("name-newline.toml", "DR106", "seed\\nreboot"),
    ("sysctl-traversal.sh", "DR105", "net/../../../etc/lvsdr-pwned=1"),
    ("interface.conf", "DR106", "eth0;reboot"),
    ("interface-markup.json", "DR106", ""),
    ("vrrp-instance-notify.toml", "DR106", "notify_master"),
    ("vrrp-instance-include.conf", "DR106", "include /etc/shadow"),
    ("interface-option.toml", "DR106", "-x"),
    ("sysctl-range.toml", "DR108", "99999999999999"),
    ("json-split-char.json", "DR000", ""),
    ("url-path-notify.toml", "DR106", "notify_up"),
    ("url-path-include.conf", "DR106", "include /etc/shadow"),
];

fn read(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hostile").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_hostile_fixture_is_refused_with_its_code_and_span() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hostile");
    let on_disk = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(on_disk, HOSTILE.len(), "every fixture in fixtures/hostile/ is listed here");
    for (file, code, covered) in HOSTILE {
        let text = read(file);
        let (_, result) = load(&text, None);
        let err = match result {
            Ok(_) => panic!("{file}: read as a topology"),
            Err(e) => e,
        };
        assert_eq!(err.code, code, "{file}: {}", err.message);
        assert!(err.help.is_some(), "{file}: the refusal says what to do");
        if !covered.is_empty() {
            let spanned = &text[err.span.start..err.span.end];
            assert!(spanned.contains(covered), "{file}: span covers `{spanned}`, expected `{covered}`");
        }
        let analysis = analyze(&text, None);
        assert!(analysis.topology.is_none(), "{file}: nothing past the reader");
        assert_eq!(analysis.diagnostics.len(), 1, "{file}");
        assert_eq!(analysis.diagnostics[0].code, code, "{file}");
        assert_eq!(analysis.diagnostics[0].severity, Severity::Error, "{file}");
    }
}

/// The rustc-style report never passes a control character from the input to the terminal.
#[test]
fn human_output_is_inert_in_a_terminal() {
    let text = read("sysctl-traversal.sh").replace("etc/lvsdr", "etc/\u{1b}[2Jlvsdr");
    let a = analyze(&text, None);
    assert!(text.contains('\u{1b}'));
    let out = lvsdr_core::diagnostic::render_human(&a.diagnostics, &text, "x.sh", lvsdr_core::diagnostic::Style { color: false });
    assert!(out.contains("DR105"), "{out}");
    assert!(!out.contains('\u{1b}'), "{out:?}");
}

/// Values that look alike but are fine stay accepted.
#[test]
fn ordinary_names_and_keys_still_read() {
    let text = read("sysctl-host-knob.toml").replace(
        r#", "kernel.panic" = 1"#,
        r#", "net.ipv4.vs.conntrack" = 0, "net/ipv4/conf/eth0/send_redirects" = 0"#,
    );
    let (_, result) = load(&text, None);
    let (t, _) = result.expect("reads");
    let keys: Vec<&str> = t.director().sysctls.values.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        ["net.ipv4.conf.eth0.send_redirects", "net.ipv4.ip_forward", "net.ipv4.vs.conntrack"]
    );
}
