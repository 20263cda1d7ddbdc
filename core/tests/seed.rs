//! The seed setup: its TOML, its shell scripts, and what lvsdr says of them.

use lvsdr_core::source::SourceMap;
use lvsdr_core::{analyze, Format};
use std::path::Path;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name)).unwrap()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn seed_toml_warns_that_rr_ignores_the_weights_on_the_right_line() {
    let text = fixture("seed-dr.toml");
    let a = analyze(&text, None);
    assert_eq!(a.format, Format::Toml);
    assert!(!a.has_errors());
    let map = SourceMap::new(&text);
    let rr: Vec<_> = a.diagnostics.iter().filter(|d| d.code == "DR008").collect();
    assert_eq!(rr.len(), 2, "one per service");
    let first = rr[0].located(&text);
    assert_eq!(first.line, line_of(&text, "scheduler = \"rr\""));
    assert!(rr[0].help.as_deref().unwrap().contains("wrr"));
    assert_eq!(map.line_text(first.line).trim(), "scheduler = \"rr\"");
}

#[test]
fn seed_script_imports_into_the_seed_topology() {
    let script = fixture("seed-dr.sh");
    let (format, result) = lvsdr_core::load(&script, None);
    assert_eq!(format, Format::Script);
    let (imported, _) = result.unwrap();
    let toml = lvsdr_core::topology_file::from_toml(&fixture("seed-dr.toml")).unwrap();
    let mut a = imported.without_spans();
    let b = toml.without_spans();
    a.name = b.name.clone();
    assert_eq!(a, b);
}

#[test]
fn seed_script_route_line_without_dev_is_reported_at_its_line() {
    let script = fixture("seed-dr.sh");
    let a = analyze(&script, None);
    let d = a.diagnostics.iter().find(|d| d.code == "DR104").expect("route without dev");
    let located = d.located(&script);
    assert_eq!(located.line, line_of(&script, "route add -host $vip lo:1"));
    assert_eq!(SourceMap::new(&script).line_text(located.line), "route add -host $vip lo:1");
    // And the rr warning points into the script too, at the -s rr line.
    let rr = a.diagnostics.iter().find(|d| d.code == "DR008").unwrap().located(&script);
    assert_eq!(rr.line, line_of(&script, "$ipvs -A -t $vip:80 -s rr"));
}

#[test]
fn seed_lint_output_snapshot() {
    let text = fixture("seed-dr.toml");
    let a = analyze(&text, None);
    insta::assert_snapshot!(lvsdr_core::diagnostic::render_human(
        &a.diagnostics,
        &text,
        "fixtures/seed-dr.toml",
        lvsdr_core::diagnostic::Style { color: false }
    ));
    let json: Vec<_> = a.diagnostics.iter().map(|d| d.located(&text)).collect();
    insta::assert_json_snapshot!(json);
}

#[test]
fn bad_input_names_line_and_column() {
    let a = analyze(
        "[lan]\nsubnet = \"192.168.1.0/24\"\n[director]\naddress = \"192.168.1.999\"\nvip = \"192.168.1.192\"\n",
        Some(Format::Toml),
    );
    let d = &a.diagnostics[0];
    assert_eq!(d.code, "DR000");
    let l = d.located("[lan]\nsubnet = \"192.168.1.0/24\"\n[director]\naddress = \"192.168.1.999\"\nvip = \"192.168.1.192\"\n");
    assert_eq!((l.line, l.column), (4, 11));
    assert!(d.message.contains("192.168.1.999"));
}

#[test]
fn json_topology_reads_like_toml() {
    let t = lvsdr_core::topology_file::from_toml(&fixture("seed-dr.toml")).unwrap();
    let json = lvsdr_core::topology_file::to_json(&t);
    let back = lvsdr_core::topology_file::from_json(&json).unwrap();
    assert_eq!(back.without_spans(), t.without_spans());
    let toml = lvsdr_core::topology_file::to_toml(&t);
    let again = lvsdr_core::topology_file::from_toml(&toml).unwrap();
    assert_eq!(again.without_spans(), t.without_spans());
}

#[test]
fn keepalived_config_imports_with_keepalived_defaults() {
    let text = fixture("seed-keepalived.conf");
    let a = analyze(&text, None);
    assert_eq!(a.format, Format::Keepalived);
    let t = a.topology.as_ref().unwrap();
    assert_eq!(t.director().vips[0].address.value.to_string(), "192.168.1.192");
    let web = t.service("tcp/80").unwrap();
    assert_eq!(
        web.persistence.as_ref().unwrap().timeout.value,
        360,
        "a bare persistence_timeout is 6 minutes"
    );
    assert_eq!(web.destinations[0].forward.value, lvsdr_core::model::Forward::Route);
    let mail = t.service("tcp/25").unwrap();
    assert_eq!(
        mail.destinations[0].forward.value,
        lvsdr_core::model::Forward::Masq,
        "no lb_kind means NAT"
    );
    // Health checkers are kept as metadata when they are not lvsdr's default for the port.
    assert_eq!(
        web.destinations[0].health_check.as_ref().map(|h| h.value.as_str()),
        Some("HTTP_GET")
    );
    assert_eq!(web.destinations[1].health_check, None, "TCP_CHECK on 80 is the default");
    assert!(lvsdr_core::render::keepalived(t).contains("HTTP_GET {"));
    // The forgotten lb_kind is reported at the mail service, in the user's file.
    let nat = a.diagnostics.iter().find(|d| d.code == "DR019").unwrap().located(&text);
    assert_eq!(
        nat.line,
        text.lines().position(|l| l.contains("virtual_server 192.168.1.192 25")).unwrap() + 1
    );
}

#[test]
fn seed_lab_plan_snapshot() {
    let t = lvsdr_core::topology_file::from_toml(&fixture("seed-dr.toml")).unwrap();
    insta::assert_json_snapshot!(lvsdr_core::plan::plan(&t, 8, 1));
}
