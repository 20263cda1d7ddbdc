//! The forms of an [`Audit`]: rustc-style text grouped by area, and the
//! Prometheus text exposition format for node_exporter's textfile collector.
//! The JSON form is the [`Audit`] itself, serialised.

use super::{Audit, Finding, Kind};
use crate::diagnostic::Severity;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The human report: findings grouped by area, each with the commands that
/// restore the setup's state, then a summary line.
pub fn human(audit: &Audit, source: &str, color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    let mut area = None;
    for f in &audit.findings {
        if area != Some(f.area) {
            area = Some(f.area);
            let _ = writeln!(out, "{}", paint("1", &format!("── {} ──", f.area.name())));
        }
        let (word, tint) = match f.severity {
            Severity::Error => ("error", "1;31"),
            Severity::Warning => ("warning", "1;33"),
            Severity::Info => ("info", "1;36"),
        };
        let _ = writeln!(out, "{}: {}", paint(tint, &format!("{word}[{}]", f.code)), f.message);
        let _ = writeln!(out, "  --> {} on {}", audit.host, source);
        for line in &f.restore {
            let _ = writeln!(out, "   = restore: {line}");
        }
        let _ = writeln!(out, "   = explain: lvsdr explain {}", f.code);
        out.push('\n');
    }
    let drift = audit.findings.iter().filter(|f| f.is_drift()).count();
    let notes = audit.findings.len() - drift;
    let c = &audit.compared;
    let _ = writeln!(
        out,
        "{} ({}): {} — {drift} drift(s), {notes} note(s); compared {} service(s), {} real-server entries, {} address(es), {} sysctl(s), {} listener(s)",
        audit.host,
        audit.role.replace('_', " "),
        if audit.ok {
            paint("1;32", "matches the setup")
        } else {
            paint("1;31", "has drifted")
        },
        c.services,
        c.real_servers,
        c.addresses,
        c.sysctls,
        c.listeners
    );
    out
}

/// A label value in the text exposition format: `\`, `"` and newline escaped.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A `# HELP` text: `\` and newline escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
    format!("{{{}}}", inner.join(","))
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// A float as the exposition format writes it.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The metrics every audit writes, read or not.
fn head(out: &mut String, host: &str, up: bool, ok: bool, timestamp: f64, duration: f64) {
    let host_label = labels(&[("host", host)]);
    family(
        out,
        "lvsdr_audit_up",
        "Whether lvsdr audit could read the live state (1) or not (0).",
    );
    let _ = writeln!(out, "lvsdr_audit_up{host_label} {}", u8::from(up));
    family(
        out,
        "lvsdr_audit_ok",
        "Whether the live state matches the setup (1) or has drifted or could not be read (0).",
    );
    let _ = writeln!(out, "lvsdr_audit_ok{host_label} {}", u8::from(ok));
    family(
        out,
        "lvsdr_audit_last_run_timestamp_seconds",
        "When lvsdr audit ran, in seconds since the Unix epoch.",
    );
    let _ = writeln!(out, "lvsdr_audit_last_run_timestamp_seconds{host_label} {}", number(timestamp));
    family(
        out,
        "lvsdr_audit_duration_seconds",
        "How long lvsdr audit took to read and compare.",
    );
    let _ = writeln!(out, "lvsdr_audit_duration_seconds{host_label} {duration}");
}

/// The Prometheus text exposition format: `lvsdr_audit_up`, `lvsdr_audit_ok`,
/// the time of the audit, the count of findings of every kind, and a gauge per
/// kind with one series per finding, labelled with host, service, real server
/// and key (and the expected and found values).
pub fn prometheus(audit: &Audit, timestamp: f64, duration: f64) -> String {
    let mut out = String::new();
    head(&mut out, &audit.host, true, audit.ok, timestamp, duration);
    family(
        &mut out,
        "lvsdr_audit_findings",
        "Findings of each kind (code DR2xx: lvsdr explain CODE); kinds of severity info are not drift.",
    );
    for k in Kind::ALL {
        let count = audit.findings.iter().filter(|f| f.kind == *k).count();
        let l = labels(&[
            ("host", &audit.host),
            ("kind", &k.name()),
            ("code", k.code()),
            ("severity", k.severity().name()),
        ]);
        let _ = writeln!(out, "lvsdr_audit_findings{l} {count}");
    }
    let mut by_kind: BTreeMap<Kind, BTreeMap<String, usize>> = BTreeMap::new();
    for f in &audit.findings {
        *by_kind.entry(f.kind).or_default().entry(series(&audit.host, f)).or_default() += 1;
    }
    for (kind, series) in by_kind {
        let name = kind.metric();
        family(
            &mut out,
            &name,
            &format!("{}: {} (one series per finding).", kind.code(), kind.meta().summary),
        );
        for (labels, n) in series {
            let _ = writeln!(out, "{name}{labels} {n}");
        }
    }
    out
}

fn series(host: &str, f: &Finding) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![("host", host)];
    for (k, v) in [
        ("service", &f.service),
        ("real_server", &f.real_server),
        ("key", &f.key),
        ("expected", &f.expected),
        ("found", &f.found),
    ] {
        if let Some(v) = v {
            pairs.push((k, v));
        }
    }
    labels(&pairs)
}

/// The metrics of an audit that could not read the live state (or find its
/// host): `lvsdr_audit_up 0`, so that an alert fires on it too.
pub fn prometheus_unreadable(host: &str, timestamp: f64, duration: f64) -> String {
    let mut out = String::new();
    head(&mut out, host, false, false, timestamp, duration);
    out
}
