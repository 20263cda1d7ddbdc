//! `lvsdr lint --format github`: each finding as a GitHub workflow command
//! (`::error file=…,line=…::message`), which the runner turns into an
//! annotation on the pull request's diff. Also where a finding sits for the
//! CI formats (this one and SARIF): its file relative to the workspace, and
//! its line and column in that file.
//!
//! The runner reads a command from any line of the job's output that starts
//! with `::`, so everything from the input (file names, messages that quote
//! it) is escaped as GitHub's toolkit does: `%`, CR and LF in the message;
//! also `:` and `,` in the properties. A finding is then always one line, and
//! its properties cannot end early.

use lvsdr_core::diagnostic::{Diagnostic, Fix};
use lvsdr_core::source::{SourceMap, Span};
use lvsdr_core::{SetupAnalysis, Severity};
use std::path::{Component, Path, PathBuf};

/// Where a span sits: its file (as CI tools name it) and its 1-based
/// lines and columns (columns in characters; the end is exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

/// The setup's files, indexed once, with their names as CI tools want them.
pub struct Places<'a> {
    setup: &'a SetupAnalysis,
    maps: Vec<SourceMap<'a>>,
    names: Vec<String>,
}

impl<'a> Places<'a> {
    pub fn new(setup: &'a SetupAnalysis, workspace: &Path) -> Self {
        Places {
            maps: setup.files.iter().map(|f| SourceMap::new(&setup.text[f.start..f.end])).collect(),
            names: setup.files.iter().map(|f| relative_to(&f.name, workspace)).collect(),
            setup,
        }
    }

    /// The place of a span of the joined text.
    pub fn of(&self, span: Span) -> Place {
        let Some((file, span)) = self.setup.locate(span) else {
            let map = SourceMap::new(&self.setup.text);
            return place(&map, span, self.names.first().cloned().unwrap_or_default());
        };
        let i = self.setup.files.iter().position(|f| std::ptr::eq(f, file)).unwrap_or(0);
        place(&self.maps[i], span, self.names[i].clone())
    }
}

fn place(map: &SourceMap, span: Span, file: String) -> Place {
    let start = map.line_col(span.start);
    let end = map.line_col(span.end.max(span.start));
    Place {
        file,
        line: start.line,
        column: start.column,
        end_line: end.line,
        end_column: end.column,
    }
}

/// The folder paths are made relative to: `GITHUB_WORKSPACE` when set (the
/// checkout on a runner), else the current directory.
pub fn workspace() -> PathBuf {
    match std::env::var_os("GITHUB_WORKSPACE") {
        Some(w) if !w.is_empty() => PathBuf::from(w),
        _ => std::env::current_dir().unwrap_or_default(),
    }
}

/// `name` relative to `workspace`, with `/` between parts, when it lies
/// inside it; as given otherwise. Symbolic links are followed on both sides
/// where they can be, so `./a/../b.sh` and an absolute path both come out as
/// `b.sh`.
pub fn relative_to(name: &str, workspace: &Path) -> String {
    let path = Path::new(name);
    let absolute = |p: &Path| -> PathBuf {
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        std::fs::canonicalize(&joined).unwrap_or_else(|_| lexical(&joined))
    };
    let (file, base) = (absolute(path), absolute(workspace));
    match file.strip_prefix(&base) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
        _ => name.to_string(),
    }
}

/// `.` and `..` taken out without asking the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A workflow command's message: `%`, CR and LF escaped.
pub fn escape_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// A workflow command's property value: as a message, and `:` and `,` too.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The annotation level GitHub has for a severity.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "notice",
    }
}

/// The text under an annotation: the message, then the help and the fix on lines of their own.
pub fn full_message(d: &Diagnostic) -> String {
    let mut text = d.message.clone();
    if let Some(help) = &d.help {
        text.push_str("\nhelp: ");
        text.push_str(help);
    }
    if let Some(fix) = &d.fix {
        text.push_str(&fix_line(fix));
    }
    text
}

fn fix_line(fix: &Fix) -> String {
    let kind = match fix.applicability {
        lvsdr_core::diagnostic::Applicability::Safe => "fix (safe, `lvsdr lint --fix` applies it)",
        lvsdr_core::diagnostic::Applicability::Unsafe => "fix (unsafe: it changes behaviour)",
    };
    format!("\n{kind}: {}", fix.description)
}

/// One workflow command a finding.
pub fn render(setup: &SetupAnalysis, workspace: &Path) -> String {
    let places = Places::new(setup, workspace);
    let mut out = String::new();
    for d in &setup.analysis.diagnostics {
        let at = places.of(d.span);
        let name = lvsdr_core::lint::doc(d.code).map(|m| m.name).unwrap_or("");
        let title = if name.is_empty() {
            d.code.to_string()
        } else {
            format!("{} ({name})", d.code)
        };
        out.push_str(&format!(
            "::{} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
            level(d.severity),
            escape_property(&at.file),
            at.line,
            at.column,
            at.end_line,
            at.end_column,
            escape_property(&title),
            escape_data(&full_message(d)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_the_toolkit_does() {
        assert_eq!(escape_data("50% of\r\nit::x"), "50%25 of%0D%0Ait::x");
        assert_eq!(escape_property("a,b:c%\n"), "a%2Cb%3Ac%25%0A");
    }

    #[test]
    fn paths_relative_to_the_workspace() {
        let ws = Path::new("/srv/repo");
        assert_eq!(relative_to("/srv/repo/lvs/./dr.sh", ws), "lvs/dr.sh");
        assert_eq!(relative_to("/srv/repo/lvs/../dr.sh", ws), "dr.sh");
        assert_eq!(relative_to("/elsewhere/dr.sh", ws), "/elsewhere/dr.sh");
    }
}
