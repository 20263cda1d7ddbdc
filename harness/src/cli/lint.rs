//! `lvsdr lint`, `explain` and `rules`: the diagnostics and the catalogue behind them.

use super::{annotate, sarif, Exit, InputOptions, Outcome, OutputFormat};
use lvsdr_core::diagnostic::{Edit, Fix, Style};
use lvsdr_core::source::Span;
use lvsdr_core::Severity;
use std::path::PathBuf;

/// What `lvsdr lint` prints: for people, for programs, for GitHub.
#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum LintFormat {
    /// rustc-style reports.
    Human,
    /// The findings as a JSON array.
    Json,
    /// GitHub workflow commands: one annotation a finding, on the pull request's diff.
    Github,
    /// SARIF 2.1.0, for GitHub code scanning (`upload-sarif`) and other SARIF readers.
    Sarif,
}

/// `lvsdr lint`
pub fn lint(files: Vec<PathBuf>, format: LintFormat, input: InputOptions, fix: bool, color: bool) -> Outcome {
    let setup = super::analyze(&files, &input)?;
    let analysis = &setup.analysis;
    if fix {
        let fixes: Vec<_> = analysis
            .diagnostics
            .iter()
            .filter_map(|d| d.fix.as_ref())
            .filter(|f| f.applicability == lvsdr_core::diagnostic::Applicability::Safe)
            .collect();
        if !fixes.is_empty() {
            // Each file gets the edits that fall in it, made relative to it.
            for (path, f) in files.iter().zip(&setup.files) {
                let mine: Vec<Fix> = fixes
                    .iter()
                    .map(|fx| Fix {
                        edits: fx
                            .edits
                            .iter()
                            .filter(|e| e.span.start >= f.start && e.span.end <= f.end)
                            .map(|e| Edit {
                                span: Span::new(e.span.start - f.start, e.span.end - f.start),
                                replacement: e.replacement.clone(),
                            })
                            .collect(),
                        ..(*fx).clone()
                    })
                    .filter(|fx| !fx.edits.is_empty())
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let fixed = lvsdr_core::diagnostic::apply_fixes(&setup.text[f.start..f.end], mine.iter());
                std::fs::write(path, fixed).map_err(|e| {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    Exit::Unusable
                })?;
                eprintln!("applied {} safe fix(es) to {}", mine.len(), path.display());
            }
            // Lint the fixed files, as they now are.
            return lint(files, format, input, false, color);
        }
    }
    let name = files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" ");
    match format {
        LintFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&setup.located()).unwrap_or_default());
        }
        LintFormat::Github => print!("{}", annotate::render(&setup, &annotate::workspace())),
        LintFormat::Sarif => {
            let log = sarif::render(&setup, &annotate::workspace());
            println!("{}", serde_json::to_string_pretty(&log).unwrap_or_default());
        }
        LintFormat::Human => {
            print!("{}", setup.render_human(Style { color }));
            let count = |s| analysis.diagnostics.iter().filter(|d| d.severity == s).count();
            let formats: Vec<&str> = setup.files.iter().map(|f| f.format.name()).collect();
            println!(
                "{name} ({}): {} error(s), {} warning(s), {} note(s)",
                formats.join(", "),
                count(Severity::Error),
                count(Severity::Warning),
                count(Severity::Info)
            );
        }
    }
    let empty = analysis
        .topology
        .as_ref()
        .is_some_and(|t| t.services.is_empty() && t.real_servers.is_empty());
    if analysis.topology.is_none() {
        Err(super::refused(analysis))
    } else if empty {
        // An input that sets nothing up is never a clean pass.
        eprintln!("error: nothing to check: {name} sets up no virtual service and no real server");
        Err(Exit::Failed)
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
        let metas: Vec<_> = rules
            .iter()
            .map(|r| r.meta)
            .chain(lvsdr_core::codes::READERS.iter())
            .chain(lvsdr_core::audit::kinds::CATALOGUE.iter())
            .collect();
        println!("{}", serde_json::to_string_pretty(&metas).unwrap_or_default());
    } else {
        // The lint rules, then the kinds of drift `lvsdr audit` reports.
        for m in rules.iter().map(|r| r.meta).chain(lvsdr_core::audit::kinds::CATALOGUE.iter()) {
            println!("{}  {:<8} {:<32} {}", m.code, m.severity.name(), m.name, m.summary);
        }
    }
    Ok(Exit::Success)
}
