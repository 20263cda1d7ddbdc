//! Diagnostics: what the linter and the importers say about a source file,
//! and their rustc-style rendering.

use crate::source::{SourceMap, Span};
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Whether a fix keeps the setup's behaviour apart from the mistake it cures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Applicability {
    /// Applying it cannot change anything the user meant.
    Safe,
    /// It changes behaviour (say, the traffic split): a person should decide.
    Unsafe,
}

/// One replacement in the source text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edit {
    pub span: Span,
    pub replacement: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub description: String,
    pub applicability: Applicability,
    pub edits: Vec<Edit>,
}

/// A finding about a topology, tied to where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    /// Short text shown under the `^^^` marker.
    pub label: Option<String>,
    pub help: Option<String>,
    pub fix: Option<Fix>,
    /// The host the finding is about (`director`, `rs1`, …), for the diagram.
    pub node: Option<String>,
}

impl Diagnostic {
    pub fn new(code: &'static str, severity: Severity, message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            code,
            severity,
            message: message.into(),
            span,
            label: None,
            help: None,
            fix: None,
            node: None,
        }
    }
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }
    pub fn fix(mut self, description: impl Into<String>, applicability: Applicability, edits: Vec<Edit>) -> Self {
        self.fix = Some(Fix {
            description: description.into(),
            applicability,
            edits,
        });
        self
    }

    /// The machine form, with line and column resolved against the source.
    /// For many diagnostics use [`locate_all`], which indexes the text once.
    pub fn located(&self, source: &str) -> LocatedDiagnostic {
        self.located_in(&SourceMap::new(source), None)
    }

    /// The machine form against an indexed source, naming its file when the
    /// setup was read from several.
    pub fn located_in(&self, map: &SourceMap, file: Option<&str>) -> LocatedDiagnostic {
        let start = map.line_col(self.span.start);
        let end = map.line_col(self.span.end);
        LocatedDiagnostic {
            file: file.map(str::to_string),
            code: self.code,
            severity: self.severity,
            message: self.message.clone(),
            line: start.line,
            column: start.column,
            end_line: end.line,
            end_column: end.column,
            help: self.help.clone(),
            fix: self.fix.clone(),
            node: self.node.clone(),
        }
    }
}

/// Every diagnostic in machine form, the source indexed once: linear in the
/// size of the input and the number of findings.
pub fn locate_all(diags: &[Diagnostic], source: &str) -> Vec<LocatedDiagnostic> {
    let map = SourceMap::new(source);
    diags.iter().map(|d| d.located_in(&map, None)).collect()
}

/// A diagnostic as JSON consumers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocatedDiagnostic {
    /// The file it is in, when several were read as one setup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub help: Option<String>,
    pub fix: Option<Fix>,
    pub node: Option<String>,
}

/// ANSI colours for terminals, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Text from the input, made safe for a terminal: control characters (an
/// escape sequence could rewrite the screen) become U+FFFD, one character
/// each, so the `^^^` markers stay aligned.
fn inert(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\t' { '\u{fffd}' } else { c })
        .collect()
}

/// The widest source line a report shows, in characters. A longer line (a
/// minified file, a hostile one-line input of megabytes) is shown as a window
/// of this many characters around the span, with `…` where it was cut.
pub const SNIPPET_CHARS: usize = 160;

/// The part of `line` a report shows for a span at 1-based `column` of
/// `width` characters: the text, and the span's column and width in it.
fn snippet_window(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let count = line.chars().count();
    if count <= SNIPPET_CHARS {
        return (line.to_string(), column, width);
    }
    let first = column
        .saturating_sub(1 + SNIPPET_CHARS / 4)
        .min(count.saturating_sub(SNIPPET_CHARS));
    let mut text: String = line.chars().skip(first).take(SNIPPET_CHARS).collect();
    let mut column = column - first;
    if first > 0 {
        text.insert(0, '…');
        column += 1;
    }
    if first + SNIPPET_CHARS < count {
        text.push('…');
    }
    let width = width.min(SNIPPET_CHARS + 2 - column).max(1);
    (text, column, width)
}

/// Renders diagnostics the way rustc does: header, `-->` location, the
/// source line with `^^^` under the span, then `help:`.
pub fn render_human(diags: &[Diagnostic], source: &str, file: &str, style: Style) -> String {
    let map = SourceMap::new(source);
    let mut out = String::new();
    for d in diags {
        let sev_color = match d.severity {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "1;36",
        };
        let _ = writeln!(
            out,
            "{}{}",
            style.paint(sev_color, &format!("{}[{}]", d.severity.name(), d.code)),
            style.paint("1", &format!(": {}", inert(&d.message)))
        );
        let start = map.line_col(d.span.start);
        let gutter = start.line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(
            out,
            "{pad}{} {}:{}:{}",
            style.paint("1;34", "-->"),
            inert(file),
            start.line,
            start.column
        );
        if !source.is_empty() {
            let line = map.line_text(start.line);
            let end = map.line_col(d.span.end);
            let width = if end.line == start.line {
                end.column.saturating_sub(start.column).max(1)
            } else {
                line.chars().count().saturating_sub(start.column - 1).max(1)
            };
            let (text, column, width) = snippet_window(line, start.column, width);
            let bar = style.paint("1;34", "|");
            let _ = writeln!(out, "{pad} {bar}");
            let _ = writeln!(out, "{} {bar} {}", style.paint("1;34", &start.line.to_string()), inert(&text));
            let marks = format!(
                "{}{}{}",
                " ".repeat(column - 1),
                "^".repeat(width),
                d.label.as_ref().map(|l| format!(" {}", inert(l))).unwrap_or_default()
            );
            let _ = writeln!(out, "{pad} {bar} {}", style.paint(sev_color, &marks));
        }
        if let Some(h) = &d.help {
            let _ = writeln!(out, "{pad} {} {}: {}", style.paint("1;34", "="), style.paint("1", "help"), inert(h));
        }
        if let Some(f) = &d.fix {
            let kind = match f.applicability {
                Applicability::Safe => "safe fix",
                Applicability::Unsafe => "unsafe fix",
            };
            let _ = writeln!(
                out,
                "{pad} {} {}: {}",
                style.paint("1;34", "="),
                style.paint("1", kind),
                inert(&f.description)
            );
        }
        out.push('\n');
    }
    out
}

/// Applies the edits of the given fixes to a source text, last edit first so
/// that earlier spans stay valid. Overlapping edits after the first are skipped.
pub fn apply_fixes<'a>(source: &str, fixes: impl IntoIterator<Item = &'a Fix>) -> String {
    let mut edits: Vec<&Edit> = fixes.into_iter().flat_map(|f| f.edits.iter()).collect();
    edits.sort_by_key(|e| std::cmp::Reverse((e.span.start, e.span.end)));
    let mut out = source.to_string();
    let mut floor = usize::MAX;
    for e in edits {
        if e.span.end > floor || e.span.end > out.len() || !out.is_char_boundary(e.span.start) || !out.is_char_boundary(e.span.end) {
            continue;
        }
        out.replace_range(e.span.start..e.span.end, &e.replacement);
        floor = e.span.start;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_span() {
        let line = format!("{}BAD{}", "a".repeat(5000), "b".repeat(5000));
        let (text, column, width) = snippet_window(&line, 5001, 3);
        assert!(text.chars().count() <= SNIPPET_CHARS + 2, "{}", text.len());
        assert!(text.starts_with('…') && text.ends_with('…'));
        assert_eq!(text.chars().skip(column - 1).take(width).collect::<String>(), "BAD");
        // Short lines are shown whole.
        assert_eq!(snippet_window("abc", 2, 1), ("abc".to_string(), 2, 1));
        // A span at the very end of a long line.
        let (text, column, width) = snippet_window(&"x".repeat(1000), 1000, 1);
        assert_eq!(text.chars().nth(column - 1), Some('x'));
        assert!(column + width - 1 <= text.chars().count());
    }
}
