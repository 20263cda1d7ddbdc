//! `lvsdr lint`, `explain` and `rules`: the diagnostics and the catalogue behind them.

use super::{read, Exit, InputFormat, Outcome, OutputFormat};
use lvsdr_core::diagnostic::{render_human, Style};
use lvsdr_core::Severity;
use std::path::PathBuf;

/// `lvsdr lint`
pub fn lint(file: PathBuf, format: OutputFormat, from: Option<InputFormat>, fix: bool, color: bool) -> Outcome {
    let text = read(&file)?;
    let analysis = lvsdr_core::analyze(&text, from.map(InputFormat::core));
    if fix {
        let fixes: Vec<_> = analysis
            .diagnostics
            .iter()
            .filter_map(|d| d.fix.as_ref())
            .filter(|f| f.applicability == lvsdr_core::diagnostic::Applicability::Safe)
            .collect();
        if !fixes.is_empty() {
            let fixed = lvsdr_core::diagnostic::apply_fixes(&text, fixes.iter().copied());
            std::fs::write(&file, fixed).map_err(|e| {
                eprintln!("error: cannot write {}: {e}", file.display());
                Exit::Unusable
            })?;
            eprintln!("applied {} safe fix(es) to {}", fixes.len(), file.display());
            // Lint the fixed file, as it now is.
            return lint(file, format, from, false, color);
        }
    }
    let name = file.display().to_string();
    match format {
        OutputFormat::Json => {
            let located: Vec<_> = analysis.diagnostics.iter().map(|d| d.located(&text)).collect();
            println!("{}", serde_json::to_string_pretty(&located).unwrap_or_default());
        }
        OutputFormat::Human => {
            print!("{}", render_human(&analysis.diagnostics, &text, &name, Style { color }));
            let count = |s| analysis.diagnostics.iter().filter(|d| d.severity == s).count();
            println!(
                "{name} ({}): {} error(s), {} warning(s), {} note(s)",
                analysis.format.name(),
                count(Severity::Error),
                count(Severity::Warning),
                count(Severity::Info)
            );
        }
    }
    if analysis.topology.is_none() {
        Err(Exit::Unusable)
    } else if analysis.has_errors() {
        Err(Exit::Failed)
    } else {
        Ok(Exit::Success)
    }
}

/// `lvsdr explain`
pub fn explain(code: String) -> Outcome {
    match lvsdr_core::lint::doc(&code) {
        Some(m) => {
            println!("{} ({}, {}): {}\n", m.code, m.name, m.severity.name(), m.summary);
            println!("{}", m.doc.trim_end());
            Ok(Exit::Success)
        }
        None => {
            eprintln!("error: no rule `{code}`. `lvsdr rules` lists them all.");
            Err(Exit::Unusable)
        }
    }
}

/// `lvsdr rules`
pub fn rules(format: OutputFormat) -> Outcome {
    let rules = lvsdr_core::lint::all_rules();
    if format == OutputFormat::Json {
        // Every documented code: the rules, then the readers' notes (DR000, DR1xx).
        let metas: Vec<_> = rules.iter().map(|r| r.meta).chain(lvsdr_core::codes::READERS.iter()).collect();
        println!("{}", serde_json::to_string_pretty(&metas).unwrap_or_default());
    } else {
        for r in rules {
            println!(
                "{}  {:<8} {:<32} {}",
                r.meta.code,
                r.meta.severity.name(),
                r.meta.name,
                r.meta.summary
            );
        }
    }
    Ok(Exit::Success)
}
