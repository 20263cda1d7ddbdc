//! The lint engine. Each rule lives in its own file under `rules/` with a
//! doc block (What it does / Why it matters / Example / Fix / References)
//! that `lvsdr explain` and the playground show as they are.

pub mod rules;

use crate::diagnostic::{Diagnostic, Edit, Severity};
use crate::model::Topology;
use crate::source::Span;
use serde::Serialize;

/// The fixed facts about a rule.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RuleMeta {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    /// Markdown: What it does / Why it matters / Example / Fix / References.
    pub doc: &'static str,
}

/// A rule: its documentation and its check.
pub struct Rule {
    pub meta: &'static RuleMeta,
    pub check: fn(&LintContext, &mut Vec<Diagnostic>),
}

/// What a rule sees: the topology and the text it came from (for fixes).
pub struct LintContext<'a> {
    pub topology: &'a Topology,
    pub source: &'a str,
}

impl LintContext<'_> {
    /// An edit that replaces the value written at `span` with `value`,
    /// keeping TOML quotes if the original had them. `None` for implied values.
    pub fn replace_value(&self, span: Span, value: &str) -> Option<Edit> {
        let text = self.source.get(span.start..span.end)?;
        if span.is_none() || text.is_empty() {
            return None;
        }
        let replacement = if text.starts_with('"') {
            format!("\"{value}\"")
        } else {
            value.to_string()
        };
        Some(Edit { span, replacement })
    }

    pub fn diag(&self, meta: &RuleMeta, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic::new(meta.code, meta.severity, message, span)
    }
}

/// Every rule, in code order.
pub fn all_rules() -> &'static [Rule] {
    rules::ALL
}

pub fn rule(code: &str) -> Option<&'static Rule> {
    all_rules()
        .iter()
        .find(|r| r.meta.code.eq_ignore_ascii_case(code) || r.meta.name == code)
}

/// Runs every rule and returns the findings sorted by position, then code.
pub fn lint(topology: &Topology, source: &str) -> Vec<Diagnostic> {
    let ctx = LintContext { topology, source };
    let mut out = Vec::new();
    for r in all_rules() {
        (r.check)(&ctx, &mut out);
    }
    out.sort_by(|a, b| (a.span.start, a.code).cmp(&(b.span.start, b.code)));
    out
}

/// The documentation of any code: a lint rule, or a note of the readers (DR000, DR1xx).
pub fn doc(code: &str) -> Option<&'static RuleMeta> {
    rule(code).map(|r| r.meta).or_else(|| {
        crate::import::notes::NOTES
            .iter()
            .find(|m| m.code.eq_ignore_ascii_case(code) || m.name == code)
    })
}
