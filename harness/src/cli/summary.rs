//! `lvsdr summary REPORT.json`: a lab report as Markdown, for a CI job
//! summary. The report's text comes from the input (host names, service
//! labels, error messages), so every character of it that Markdown or HTML
//! could read as markup is written as a character reference.

use super::{Exit, Outcome};
use lvsdr_harness::report::Report;
use std::fmt::Write;
use std::io::Read;
use std::path::Path;

#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum SummaryFormat {
    Markdown,
    Human,
}

/// `lvsdr summary`
pub fn summary(path: &Path, format: SummaryFormat) -> Outcome {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    if let Err(e) = read {
        eprintln!("error: cannot read {}: {e}", path.display());
        return Err(Exit::Unusable);
    }
    let reports: Vec<Report> = match serde_json::from_str::<Report>(&text) {
        Ok(one) => vec![one],
        Err(_) => serde_json::from_str(&text).map_err(|e| {
            eprintln!("error: {} is not a report of `lvsdr lab --format json`: {e}", path.display());
            Exit::Unusable
        })?,
    };
    match format {
        SummaryFormat::Markdown => print!("{}", markdown(&reports)),
        SummaryFormat::Human => {
            for r in &reports {
                print!("{}", r.render_human(false));
            }
        }
    }
    Ok(Exit::Success)
}

/// Text made inert in Markdown and HTML: letters, digits, spaces and
/// non-ASCII characters stay; other ASCII characters become `&#N;`, line
/// breaks a space, other control characters U+FFFD.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{fffd}'),
            c if c.is_ascii_alphanumeric() || c == ' ' || !c.is_ascii() => out.push(c),
            c => {
                let _ = write!(out, "&#{};", c as u32);
            }
        }
    }
    out
}

/// The reports as Markdown: a heading with the verdict, the checks as a table, then the split.
pub fn markdown(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports {
        let _ = writeln!(
            out,
            "### {} lvsdr lab: {}\n",
            if r.pass { "✅ passed," } else { "❌ failed," },
            inert(&r.topology)
        );
        let _ = writeln!(
            out,
            "Kernel {}, IPVS {}, applied with {}, {} connection(s).\n",
            inert(&r.kernel),
            inert(&r.ipvs_version),
            inert(&r.applied_with),
            r.connections.len()
        );
        out.push_str("| Check | Result | Expected | Seen | Explained by |\n| --- | --- | --- | --- | --- |\n");
        for c in &r.checks {
            let result = if c.pass {
                "✅ pass"
            } else if c.advisory {
                "⚠️ warn"
            } else {
                "❌ **FAIL**"
            };
            let codes: Vec<String> = c.explained_by.iter().map(|e| inert(e)).collect();
            let _ = writeln!(
                out,
                "| {} | {result} | {} | {} | {} |",
                inert(&c.name),
                inert(&c.expected),
                inert(&c.seen),
                codes.join(", ")
            );
        }
        if !r.split.is_empty() {
            out.push_str("\n| Service | Scheduler | Expected split | Seen split | Matches |\n| --- | --- | --- | --- | --- |\n");
            for (service, s) in &r.split {
                let counts = |m: &std::collections::BTreeMap<String, usize>| {
                    m.iter().map(|(k, v)| format!("{}: {v}", inert(k))).collect::<Vec<_>>().join(", ")
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    inert(service),
                    inert(&s.scheduler),
                    counts(&s.expected),
                    counts(&s.seen),
                    if s.matches { "yes" } else { "**no**" }
                );
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_inert() {
        assert_eq!(inert("a|b"), "a&#124;b");
        assert_eq!(inert("<img src=x>"), "&#60;img src&#61;x&#62;");
        assert_eq!(inert("rs1\n# head"), "rs1 &#35; head");
        assert_eq!(inert("é\u{1b}"), "é\u{fffd}");
    }
}
