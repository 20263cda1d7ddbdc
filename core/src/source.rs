//! Byte spans into the text a topology was read from, and their line/column form.

use serde::Serialize;

/// A byte range in the source text. `Span::NONE` marks values that came
/// from defaults rather than from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub const NONE: Span = Span { start: 0, end: 0 };

    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    pub fn is_none(&self) -> bool {
        self.start == 0 && self.end == 0
    }

    /// The first non-empty of the given spans, for a value whose own span is unknown.
    pub fn or(self, other: Span) -> Span {
        if self.is_none() {
            other
        } else {
            self
        }
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Self {
        Span::new(r.start, r.end)
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    pub value: T,
    pub span: Span,
}

impl<T> At<T> {
    pub fn new(value: T, span: Span) -> Self {
        At { value, span }
    }
    /// A value that was not written in the source (a default).
    pub fn implied(value: T) -> Self {
        At { value, span: Span::NONE }
    }
}

impl<T> std::ops::Deref for At<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// 1-based line and column of a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

/// Finds lines and columns in a source text.
pub struct SourceMap<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceMap { text, line_starts }
    }

    pub fn line_col(&self, offset: usize) -> LineCol {
        let mut offset = offset.min(self.text.len());
        // A reader may point into the middle of a character (a JSON error at
        // the byte that broke a UTF-8 sequence): count from its start.
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        LineCol { line: line + 1, column }
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &'a str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = self.line_starts.get(line).map(|e| e - 1).unwrap_or(self.text.len());
        self.text[start..end.max(start)].trim_end_matches('\r')
    }

    /// Byte span of a whole 1-based line.
    pub fn line_span(&self, line: usize) -> Span {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return Span::NONE;
        };
        Span::new(start, start + self.line_text(line).len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_of_offsets() {
        let map = SourceMap::new("ab\ncdé\n\nx");
        assert_eq!(map.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(map.line_col(4), LineCol { line: 2, column: 2 });
        assert_eq!(map.line_col(9), LineCol { line: 4, column: 1 });
        assert_eq!(map.line_text(2), "cdé");
        assert_eq!(map.line_text(3), "");
        assert_eq!(map.line_text(9), "");
        // Inside the two bytes of `é`: the column of `é` itself.
        assert_eq!(map.line_col(6), LineCol { line: 2, column: 3 });
    }
}
