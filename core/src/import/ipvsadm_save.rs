//! Reads `ipvsadm -S -n` output: one `-A` or `-a` command a line.

use super::builder::Builder;
use super::{ipvsadm, shell};
use crate::diagnostic::Diagnostic;
use crate::model::Topology;
use crate::source::Span;
use crate::LoadError;
use std::collections::HashMap;

pub fn import(text: &str) -> Result<(Topology, Vec<Diagnostic>), LoadError> {
    let mut b = Builder::default();
    read(&mut b, text, 0);
    b.finish()
}

/// Reads one dump into `b`, its spans counted from `base`.
pub fn read(b: &mut Builder, text: &str, base: usize) {
    if let Some((found, span)) = super::template::placeholder(text, base) {
        b.refused.get_or_insert(super::template::refusal(&found, span));
        return;
    }
    let vars = HashMap::new();
    let mut offset = base;
    for line in text.split_inclusive('\n') {
        let span = Span::new(offset, offset + line.trim_end().len());
        match shell::words(line, offset, &vars) {
            Some(words) if words.is_empty() => {}
            Some(words) => ipvsadm::apply(b, &words, span),
            None => b.note(crate::codes::code::IMPORT_MALFORMED_COMMAND, "unterminated quote", span, ""),
        }
        offset += line.len();
    }
}
