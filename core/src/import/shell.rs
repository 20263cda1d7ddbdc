//! Just enough shell to read configuration scripts the way they run.
//!
//! A script is lexed (quotes, `$var`, `${var:-default}`, `$(…)`, heredocs,
//! redirections, line continuations), parsed into commands (`if`, `for`,
//! `while`, `case`, functions, `&&`/`||`, pipelines) and then *run* without
//! running anything: variables follow the shell's scoping, functions are
//! called with their arguments, `for` loops expand over their word lists.
//! What comes out is the [`Trace`]: every simple command that would run, in
//! order, with its words expanded, and notes on the paths not taken.
//!
//! Where a script chooses at run time, the reader follows the path that sets
//! things up: the `start` branch of an init script's `case`, the body of an
//! `if` that configures (its condition assumed true), not the body of a guard
//! that only gives up. Every branch left out is said (DR100), so that nothing
//! is dropped silently.

use crate::source::Span;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// A word after expansion, with the span of the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub span: Span,
}

/// Splits one line (starting at byte `offset` of the file) into words,
/// expanding `$name` from `vars`. Returns `None` for an unterminated quote.
/// For one-command-a-line inputs such as `ipvsadm -S` dumps.
pub fn words(line: &str, offset: usize, vars: &HashMap<String, String>) -> Option<Vec<Word>> {
    let mut lexer = Lexer::new(line, offset);
    lexer.run();
    if !lexer.errors.is_empty() {
        return None;
    }
    let mut env = Env::default();
    for (k, v) in vars {
        env.set(k, vec![v.clone()]);
    }
    let never = |_: &Run| false;
    let mut sh = Shell::new(line, offset, &never);
    sh.env = env;
    let mut out = Vec::new();
    for t in &lexer.toks {
        match t {
            Tok::Word(w) => out.extend(sh.expand(w)),
            Tok::Op(";", _) => {}
            Tok::Op(..) | Tok::Redir(_) => {}
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone)]
enum Part {
    Lit {
        text: String,
        quoted: bool,
    },
    Param {
        name: String,
        index: Option<String>,
        /// `:-`, `-`, `:=`, `=`, `:+`, `+`, `:?`, `?` with its word (text, offset).
        op: Option<(String, String, usize)>,
        length: bool,
        quoted: bool,
    },
    /// `$(…)` or `` `…` ``: the inner text and its offset.
    Subst {
        inner: String,
        offset: usize,
        quoted: bool,
    },
    /// `NAME=(a b c)`
    Array(Vec<RawWord>),
}

/// A word as written, before expansion.
#[derive(Debug, Clone)]
pub struct RawWord {
    parts: Vec<Part>,
    span: Span,
}

impl RawWord {
    /// The text of a word made only of literal text (quoted or not).
    fn literal(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit { text, .. } => s.push_str(text),
                _ => return None,
            }
        }
        Some(s)
    }
    /// An unquoted keyword such as `if` or `}`.
    fn is(&self, keyword: &str) -> bool {
        matches!(self.parts.as_slice(), [Part::Lit { text, quoted: false }] if text == keyword)
    }
    /// `NAME=…` at the start: the name and the value's parts.
    fn assignment(&self) -> Option<(String, RawWord)> {
        let Some(Part::Lit { text, quoted: false }) = self.parts.first() else {
            return None;
        };
        let (name, rest) = text.split_once('=')?;
        let name = name.strip_suffix('+').unwrap_or(name);
        // `NAME[i]=value`: the name keeps its index, for the runner to set one element.
        let plain = match name.split_once('[') {
            Some((n, i)) if i.ends_with(']') => n,
            _ => name,
        };
        if !valid_name(plain) {
            return None;
        }
        let mut parts = Vec::new();
        if !rest.is_empty() {
            parts.push(Part::Lit {
                text: rest.to_string(),
                quoted: false,
            });
        }
        parts.extend(self.parts[1..].iter().cloned());
        Some((name.to_string(), RawWord { parts, span: self.span }))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[derive(Debug, Clone)]
struct Redir {
    op: String,
    target: RawWord,
    heredoc: Option<Heredoc>,
}

#[derive(Debug, Clone)]
struct Heredoc {
    /// Each body line with its offset in the file.
    lines: Vec<(String, usize)>,
    expand: bool,
}

#[derive(Debug, Clone)]
enum Tok {
    Word(RawWord),
    Op(&'static str, Span),
    Redir(Redir),
}

struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
    base: usize,
    toks: Vec<Tok>,
    /// Heredocs whose bodies start after the current line: (token index, strip tabs).
    pending: Vec<(usize, bool)>,
    errors: Vec<(String, Span)>,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str, base: usize) -> Self {
        Lexer {
            src,
            chars: src.char_indices().collect(),
            i: 0,
            base,
            toks: Vec::new(),
            pending: Vec::new(),
            errors: Vec::new(),
        }
    }
    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).map(|c| c.1)
    }
    fn pos(&self) -> usize {
        self.chars.get(self.i).map(|c| c.0).unwrap_or(self.src.len())
    }
    fn span(&self, from: usize) -> Span {
        Span::new(self.base + from, self.base + self.pos())
    }

    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            let start = self.pos();
            match c {
                '\\' if self.peek(1) == Some('\n') => self.i += 2,
                '\n' => {
                    self.i += 1;
                    self.toks.push(Tok::Op("\n", self.span(start)));
                    self.heredoc_bodies();
                }
                c if c.is_whitespace() => self.i += 1,
                '#' => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.i += 1;
                    }
                }
                ';' => {
                    self.i += 1;
                    let op = if self.peek(0) == Some(';') {
                        self.i += 1;
                        if self.peek(0) == Some('&') {
                            self.i += 1;
                        }
                        ";;"
                    } else if self.peek(0) == Some('&') {
                        self.i += 1;
                        ";;"
                    } else {
                        ";"
                    };
                    self.toks.push(Tok::Op(op, self.span(start)));
                }
                '&' if self.peek(1) == Some('>') => self.redirect(),
                '&' => {
                    self.i += 1;
                    let op = if self.peek(0) == Some('&') {
                        self.i += 1;
                        "&&"
                    } else {
                        "&"
                    };
                    self.toks.push(Tok::Op(op, self.span(start)));
                }
                '|' => {
                    self.i += 1;
                    let op = match self.peek(0) {
                        Some('|') => {
                            self.i += 1;
                            "||"
                        }
                        Some('&') => {
                            self.i += 1;
                            "|"
                        }
                        _ => "|",
                    };
                    self.toks.push(Tok::Op(op, self.span(start)));
                }
                '(' | ')' => {
                    self.i += 1;
                    self.toks.push(Tok::Op(if c == '(' { "(" } else { ")" }, self.span(start)));
                }
                '<' | '>' => self.redirect(),
                c if c.is_ascii_digit() && self.fd_redirect() => self.redirect(),
                _ => {
                    let w = self.word();
                    self.toks.push(Tok::Word(w));
                }
            }
        }
    }

    /// Whether digits here are a file descriptor before `<` or `>` (`2>/dev/null`).
    fn fd_redirect(&self) -> bool {
        let mut k = 0;
        while self.peek(k).is_some_and(|c| c.is_ascii_digit()) {
            k += 1;
        }
        matches!(self.peek(k), Some('<') | Some('>'))
    }

    fn redirect(&mut self) {
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let start = self.pos();
        let mut op = String::new();
        while let Some(c) = self.peek(0) {
            let more = matches!(
                (op.as_str(), c),
                ("", '<' | '>' | '&') | ("&", '>') | (">", '>' | '|' | '&') | ("<", '<' | '&' | '>') | ("<<", '<' | '-') | ("&>", '>')
            );
            if !more {
                break;
            }
            op.push(c);
            self.i += 1;
        }
        while matches!(self.peek(0), Some(' ' | '\t')) {
            self.i += 1;
        }
        let target = match self.peek(0) {
            Some(c) if !matches!(c, '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>') => self.word(),
            _ => {
                self.errors.push((format!("`{op}` without a target"), self.span(start)));
                RawWord {
                    parts: vec![],
                    span: self.span(start),
                }
            }
        };
        let heredoc = (op == "<<" || op == "<<-").then(|| Heredoc {
            lines: vec![],
            expand: target.parts.iter().all(|p| matches!(p, Part::Lit { quoted: false, .. })),
        });
        if heredoc.is_some() {
            self.pending.push((self.toks.len(), op == "<<-"));
        }
        self.toks.push(Tok::Redir(Redir { op, target, heredoc }));
    }

    /// Reads the bodies of the heredocs opened on the line just ended.
    fn heredoc_bodies(&mut self) {
        for (index, strip) in std::mem::take(&mut self.pending) {
            let Some(Tok::Redir(r)) = self.toks.get(index) else { continue };
            let delimiter = r.target.literal().unwrap_or_default();
            let mut lines = Vec::new();
            while self.i < self.chars.len() {
                let start = self.pos();
                let end = self.src[start..].find('\n').map(|e| start + e).unwrap_or(self.src.len());
                let line = &self.src[start..end];
                let compared = if strip { line.trim_start_matches('\t') } else { line };
                while self.pos() < end {
                    self.i += 1;
                }
                if self.peek(0) == Some('\n') {
                    self.i += 1;
                }
                if compared.trim_end_matches('\r') == delimiter {
                    break;
                }
                lines.push((line.to_string(), self.base + start));
            }
            if let Some(Tok::Redir(r)) = self.toks.get_mut(index) {
                if let Some(h) = r.heredoc.as_mut() {
                    h.lines = lines;
                }
            }
        }
    }

    fn word(&mut self) -> RawWord {
        let start = self.pos();
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        fn flush(parts: &mut Vec<Part>, lit: &mut String) {
            if !lit.is_empty() {
                parts.push(Part::Lit {
                    text: std::mem::take(lit),
                    quoted: false,
                });
            }
        }
        while let Some(c) = self.peek(0) {
            match c {
                c if c.is_whitespace() || matches!(c, ';' | '&' | '|' | '<' | '>' | ')') => break,
                '(' => {
                    // `NAME=(a b c)`: a bash array.
                    if parts.is_empty() && lit.ends_with('=') && valid_name(&lit[..lit.len() - 1]) {
                        flush(&mut parts, &mut lit);
                        self.i += 1;
                        parts.push(Part::Array(self.array()));
                        continue;
                    }
                    break;
                }
                '\\' => {
                    if self.peek(1) == Some('\n') {
                        self.i += 2;
                        continue;
                    }
                    flush(&mut parts, &mut lit);
                    if let Some(n) = self.peek(1) {
                        parts.push(Part::Lit {
                            text: n.to_string(),
                            quoted: true,
                        });
                    }
                    self.i += 2;
                }
                '\'' => {
                    flush(&mut parts, &mut lit);
                    let q = self.pos();
                    self.i += 1;
                    let mut text = String::new();
                    loop {
                        match self.peek(0) {
                            None => {
                                self.errors.push(("unterminated quote".into(), self.span(q)));
                                break;
                            }
                            Some('\'') => {
                                self.i += 1;
                                break;
                            }
                            Some(c) => {
                                text.push(c);
                                self.i += 1;
                            }
                        }
                    }
                    parts.push(Part::Lit { text, quoted: true });
                }
                '"' => {
                    flush(&mut parts, &mut lit);
                    self.double_quoted(&mut parts);
                }
                '$' => {
                    flush(&mut parts, &mut lit);
                    if let Some(p) = self.dollar(false) {
                        parts.push(p);
                    } else {
                        lit.push('$');
                        self.i += 1;
                    }
                }
                '`' => {
                    flush(&mut parts, &mut lit);
                    parts.push(self.backtick(false));
                }
                c => {
                    lit.push(c);
                    self.i += 1;
                }
            }
        }
        flush(&mut parts, &mut lit);
        RawWord {
            parts,
            span: self.span(start),
        }
    }

    fn array(&mut self) -> Vec<RawWord> {
        let mut out = Vec::new();
        loop {
            match self.peek(0) {
                None => break,
                Some(')') => {
                    self.i += 1;
                    break;
                }
                Some(c) if c.is_whitespace() => self.i += 1,
                Some('#') => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.i += 1;
                    }
                }
                Some(_) => {
                    let before = self.i;
                    let w = self.word();
                    if self.i == before {
                        self.i += 1; // a stray operator inside ( … )
                    } else {
                        out.push(w);
                    }
                }
            }
        }
        out
    }

    fn double_quoted(&mut self, parts: &mut Vec<Part>) {
        let q = self.pos();
        self.i += 1;
        let mut text = String::new();
        let mut any = false;
        loop {
            match self.peek(0) {
                None => {
                    self.errors.push(("unterminated quote".into(), self.span(q)));
                    break;
                }
                Some('"') => {
                    self.i += 1;
                    break;
                }
                Some('\\') => {
                    match self.peek(1) {
                        Some('\n') => {}
                        Some(n @ ('$' | '`' | '"' | '\\')) => text.push(n),
                        Some(n) => {
                            text.push('\\');
                            text.push(n);
                        }
                        None => text.push('\\'),
                    }
                    self.i += 2;
                }
                Some('$') => match self.dollar(true) {
                    Some(p) => {
                        if !text.is_empty() {
                            parts.push(Part::Lit {
                                text: std::mem::take(&mut text),
                                quoted: true,
                            });
                        }
                        parts.push(p);
                        any = true;
                    }
                    None => {
                        text.push('$');
                        self.i += 1;
                    }
                },
                Some('`') => {
                    if !text.is_empty() {
                        parts.push(Part::Lit {
                            text: std::mem::take(&mut text),
                            quoted: true,
                        });
                    }
                    parts.push(self.backtick(true));
                    any = true;
                }
                Some(c) => {
                    text.push(c);
                    self.i += 1;
                }
            }
        }
        if !text.is_empty() || !any {
            parts.push(Part::Lit { text, quoted: true });
        }
    }

    /// The text up to the bracket closing the one just passed, nesting and quotes respected.
    fn balanced(&mut self, open: char, close: char) -> (String, usize) {
        let from = self.pos();
        let mut depth = 1;
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek(0) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '\\') => self.i += 1,
                (None, c) if c == open => depth += 1,
                (None, c) if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        let inner = self.src[from..self.pos()].to_string();
                        self.i += 1;
                        return (inner, self.base + from);
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        self.errors.push((format!("`{open}` without `{close}`"), self.span(from)));
        (self.src[from..].to_string(), self.base + from)
    }

    fn dollar(&mut self, quoted: bool) -> Option<Part> {
        match self.peek(1)? {
            '{' => {
                self.i += 2;
                let (inner, offset) = self.balanced('{', '}');
                Some(parse_braced(&inner, offset, quoted))
            }
            '(' => {
                self.i += 2;
                let (inner, offset) = self.balanced('(', ')');
                Some(Part::Subst { inner, offset, quoted })
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                self.i += 1;
                let mut name = String::new();
                while let Some(c) = self.peek(0).filter(|c| c.is_ascii_alphanumeric() || *c == '_') {
                    name.push(c);
                    self.i += 1;
                }
                Some(Part::Param {
                    name,
                    index: None,
                    op: None,
                    length: false,
                    quoted,
                })
            }
            c if c.is_ascii_digit() || matches!(c, '@' | '*' | '#' | '?' | '$' | '!' | '-') => {
                self.i += 2;
                Some(Part::Param {
                    name: c.to_string(),
                    index: None,
                    op: None,
                    length: false,
                    quoted,
                })
            }
            _ => None,
        }
    }

    fn backtick(&mut self, quoted: bool) -> Part {
        let q = self.pos();
        self.i += 1;
        let from = self.pos();
        while let Some(c) = self.peek(0) {
            if c == '`' {
                let inner = self.src[from..self.pos()].to_string();
                self.i += 1;
                return Part::Subst {
                    inner,
                    offset: self.base + from,
                    quoted,
                };
            }
            if c == '\\' {
                self.i += 1;
            }
            self.i += 1;
        }
        self.errors.push(("unterminated backquote".into(), self.span(q)));
        Part::Subst {
            inner: self.src[from..].to_string(),
            offset: self.base + from,
            quoted,
        }
    }
}

/// `${NAME}`, `${NAME:-word}`, `${#NAME}`, `${NAME[@]}`.
fn parse_braced(inner: &str, offset: usize, quoted: bool) -> Part {
    let (length, body) = match inner.strip_prefix('#') {
        Some(rest) if !rest.is_empty() => (true, rest),
        _ => (false, inner),
    };
    let name_len = body
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphanumeric() || *c == '_' || (*i == 0 && matches!(c, '@' | '*' | '?' | '$' | '!' | '#'))))
        .map(|(i, _)| i)
        .unwrap_or(body.len());
    let name = body[..name_len].to_string();
    let mut rest = &body[name_len..];
    let mut index = None;
    if let Some(r) = rest.strip_prefix('[') {
        if let Some(close) = r.find(']') {
            index = Some(r[..close].to_string());
            rest = &r[close + 1..];
        }
    }
    let op = [":-", ":=", ":+", ":?", "-", "=", "+", "?", "##", "#", "%%", "%"]
        .into_iter()
        .find(|o| rest.starts_with(o))
        .map(|o| {
            let word_at = offset + (inner.len() - rest.len()) + o.len();
            (o.to_string(), rest[o.len()..].to_string(), word_at)
        });
    Part::Param {
        name,
        index,
        op,
        length,
        quoted,
    }
}

/// `${v#pat}`, `${v##pat}`, `${v%pat}`, `${v%%pat}` for the patterns scripts
/// use: a literal text with `*` at the far end (`${vip##*.}`, `${path%/*}`).
fn trim_pattern(value: &str, op: &str, pattern: &str) -> String {
    let longest = op.len() == 2;
    if op.starts_with('#') {
        let lit = pattern.strip_prefix('*');
        let found = match (lit, longest) {
            (Some(l), true) => value.rfind(l).map(|i| i + l.len()),
            (Some(l), false) => value.find(l).map(|i| i + l.len()),
            (None, _) => value.starts_with(pattern).then_some(pattern.len()),
        };
        found.map(|i| value[i..].to_string()).unwrap_or_else(|| value.to_string())
    } else {
        let lit = pattern.strip_suffix('*');
        let found = match (lit, longest) {
            (Some(l), true) => value.find(l),
            (Some(l), false) => value.rfind(l),
            (None, _) => value.ends_with(pattern).then(|| value.len() - pattern.len()),
        };
        found.map(|i| value[..i].to_string()).unwrap_or_else(|| value.to_string())
    }
}

// ---------------------------------------------------------------- parsing

#[derive(Debug)]
struct Simple {
    assigns: Vec<(String, RawWord)>,
    words: Vec<RawWord>,
    redirs: Vec<Redir>,
    span: Span,
}

#[derive(Debug)]
struct Arm {
    /// The patterns' text, `*` for the default.
    patterns: Vec<String>,
    head: Span,
    body: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Simple(Simple),
    Pipeline(Vec<Node>, Span),
    /// The first command, then each `&&` (false) or `||` (true) and its command.
    AndOr(Box<Node>, Vec<(bool, Node)>),
    If {
        /// Condition, body, and the span of the condition.
        arms: Vec<(Vec<Node>, Vec<Node>, Span)>,
        otherwise: Option<(Vec<Node>, Span)>,
    },
    For {
        var: String,
        items: Option<Vec<RawWord>>,
        body: Vec<Node>,
        head: Span,
    },
    While {
        cond: Vec<Node>,
        body: Vec<Node>,
        head: Span,
        redirs: Vec<Redir>,
    },
    Case {
        arms: Vec<Arm>,
    },
    Function {
        name: String,
        body: Rc<Vec<Node>>,
        head: Span,
    },
    Group {
        body: Vec<Node>,
        subshell: bool,
    },
    /// `for ((…))` and other forms lvsdr does not follow.
    Opaque(Span, &'static str),
}

impl Node {
    fn span(&self) -> Span {
        match self {
            Node::Simple(s) => s.span,
            Node::Pipeline(_, s) => *s,
            Node::AndOr(first, rest) => join(first.span(), rest.last().map(|r| r.1.span()).unwrap_or(Span::NONE)),
            Node::If { arms, .. } => arms.first().map(|a| a.2).unwrap_or(Span::NONE),
            Node::For { head, .. } | Node::While { head, .. } | Node::Function { head, .. } => *head,
            Node::Case { arms } => arms.first().map(|a| a.head).unwrap_or(Span::NONE),
            Node::Group { body, .. } => list_span(body),
            Node::Opaque(s, _) => *s,
        }
    }
}

fn join(a: Span, b: Span) -> Span {
    if a.is_none() {
        return b;
    }
    if b.is_none() {
        return a;
    }
    Span::new(a.start.min(b.start), a.end.max(b.end))
}

fn list_span(nodes: &[Node]) -> Span {
    nodes.iter().fold(Span::NONE, |s, n| join(s, n.span()))
}

const TERMINATORS: [&str; 9] = ["then", "elif", "else", "fi", "do", "done", "esac", "}", "in"];

struct Parser {
    toks: Vec<Tok>,
    i: usize,
    errors: Vec<(String, Span)>,
    /// Compound commands open around the one being read.
    depth: usize,
    /// Where the nesting first went past [`crate::MAX_NESTING`]: the parser
    /// stops there, and the script is refused (DR109).
    too_deep: Option<Span>,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn at_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.is(kw))
    }
    fn at_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o, _)) if *o == op)
    }
    fn tok_span(&self) -> Span {
        match self.peek() {
            Some(Tok::Word(w)) => w.span,
            Some(Tok::Op(_, s)) => *s,
            Some(Tok::Redir(r)) => r.target.span,
            None => self
                .toks
                .last()
                .map(|t| match t {
                    Tok::Word(w) => w.span,
                    Tok::Op(_, s) => *s,
                    Tok::Redir(r) => r.target.span,
                })
                .unwrap_or(Span::NONE),
        }
    }
    fn skip_newlines(&mut self) {
        while self.at_op("\n") || self.at_op(";") {
            self.i += 1;
        }
    }
    /// Consumes `kw` or says it is missing.
    fn expect(&mut self, kw: &str, what: &str, at: Span) -> bool {
        self.skip_newlines();
        if self.at_keyword(kw) {
            self.i += 1;
            true
        } else {
            self.errors.push((format!("{what} without `{kw}`"), at));
            false
        }
    }

    /// The whole script: a list, with stray terminators reported and skipped.
    fn script(&mut self) -> Vec<Node> {
        let mut out = Vec::new();
        loop {
            out.extend(self.list());
            match self.peek() {
                None => break,
                Some(_) => {
                    let s = self.tok_span();
                    let what = match self.peek() {
                        Some(Tok::Word(w)) => w.literal().unwrap_or_default(),
                        Some(Tok::Op(o, _)) => o.to_string(),
                        _ => String::new(),
                    };
                    self.errors.push((format!("unexpected `{what}`"), s));
                    self.i += 1;
                }
            }
        }
        out
    }

    /// Commands up to a terminator keyword, `;;`, `)` or the end.
    fn list(&mut self) -> Vec<Node> {
        let mut out = Vec::new();
        loop {
            while self.at_op("\n") || self.at_op(";") || self.at_op("&") {
                self.i += 1;
            }
            match self.peek() {
                None => break,
                Some(Tok::Word(w)) if TERMINATORS.iter().any(|t| w.is(t)) => break,
                Some(Tok::Op(";;" | ")" | "&&" | "||" | "|", _)) => break,
                _ => {}
            }
            let before = self.i;
            out.push(self.and_or());
            if self.i == before {
                break;
            }
        }
        out
    }

    fn and_or(&mut self) -> Node {
        let first = self.pipeline();
        let mut rest = Vec::new();
        while self.at_op("&&") || self.at_op("||") {
            let or = self.at_op("||");
            self.i += 1;
            while self.at_op("\n") {
                self.i += 1;
            }
            rest.push((or, self.pipeline()));
        }
        if rest.is_empty() {
            first
        } else {
            Node::AndOr(Box::new(first), rest)
        }
    }

    fn pipeline(&mut self) -> Node {
        if self.at_keyword("!") {
            self.i += 1;
        }
        let mut stages = vec![self.command()];
        while self.at_op("|") {
            self.i += 1;
            while self.at_op("\n") {
                self.i += 1;
            }
            stages.push(self.command());
        }
        if stages.len() == 1 {
            stages.pop().expect("one stage")
        } else {
            let span = list_span(&stages);
            Node::Pipeline(stages, span)
        }
    }

    fn command(&mut self) -> Node {
        let start = self.tok_span();
        let compound = match self.peek() {
            Some(Tok::Word(w)) => ["if", "for", "select", "while", "until", "case", "{", "function"]
                .iter()
                .any(|k| w.is(k)),
            Some(Tok::Op("(", _)) => true,
            _ => false,
        };
        if !compound {
            return self.compound_or_simple(start);
        }
        if self.depth >= crate::MAX_NESTING {
            self.too_deep.get_or_insert(start);
            self.i = self.toks.len();
            return Node::Group {
                body: vec![],
                subshell: false,
            };
        }
        self.depth += 1;
        let node = self.compound_or_simple(start);
        self.depth -= 1;
        node
    }

    fn compound_or_simple(&mut self, start: Span) -> Node {
        let node = match self.peek() {
            Some(Tok::Word(w)) if w.is("if") => self.if_clause(),
            Some(Tok::Word(w)) if w.is("for") || w.is("select") => self.for_clause(),
            Some(Tok::Word(w)) if w.is("while") || w.is("until") => self.while_clause(),
            Some(Tok::Word(w)) if w.is("case") => self.case_clause(),
            Some(Tok::Word(w)) if w.is("{") => {
                self.i += 1;
                let body = self.list();
                self.expect("}", "`{`", start);
                Node::Group { body, subshell: false }
            }
            Some(Tok::Word(w)) if w.is("function") => {
                self.i += 1;
                let name = match self.peek() {
                    Some(Tok::Word(w)) => w.literal().unwrap_or_default(),
                    _ => String::new(),
                };
                self.i += 1;
                if self.at_op("(") {
                    self.i += 1;
                    if self.at_op(")") {
                        self.i += 1;
                    }
                }
                self.function(name, start)
            }
            Some(Tok::Op("(", _)) => {
                self.i += 1;
                let body = self.list();
                if self.at_op(")") {
                    self.i += 1;
                } else {
                    self.errors.push(("`(` without `)`".into(), start));
                }
                Node::Group { body, subshell: true }
            }
            Some(Tok::Word(w))
                if matches!(self.toks.get(self.i + 1), Some(Tok::Op("(", _)))
                    && matches!(self.toks.get(self.i + 2), Some(Tok::Op(")", _)))
                    && w.literal().is_some() =>
            {
                let name = w.literal().unwrap_or_default();
                self.i += 3;
                self.function(name, start)
            }
            _ => return self.simple(),
        };
        // Redirections after a compound command (`done <<EOF`, `} >/dev/null`).
        let mut redirs = Vec::new();
        while let Some(Tok::Redir(r)) = self.peek() {
            redirs.push(r.clone());
            self.i += 1;
        }
        match node {
            Node::While { cond, body, head, .. } => Node::While { cond, body, head, redirs },
            n => n,
        }
    }

    fn function(&mut self, name: String, start: Span) -> Node {
        while self.at_op("\n") {
            self.i += 1;
        }
        let head = join(start, self.tok_span());
        let body = match self.command() {
            Node::Group { body, .. } => body,
            other => vec![other],
        };
        Node::Function {
            name,
            body: Rc::new(body),
            head,
        }
    }

    fn if_clause(&mut self) -> Node {
        let mut arms = Vec::new();
        let mut otherwise = None;
        let start = self.tok_span();
        let mut arm_start = start;
        self.i += 1; // if
        loop {
            let cond = self.list();
            let head = join(arm_start, list_span(&cond));
            if !self.expect("then", "`if`", start) {
                arms.push((cond, vec![], head));
                break;
            }
            let body = self.list();
            arms.push((cond, body, head));
            if self.at_keyword("elif") {
                arm_start = self.tok_span();
                self.i += 1;
                continue;
            }
            if self.at_keyword("else") {
                let at = self.tok_span();
                self.i += 1;
                let body = self.list();
                otherwise = Some((body, at));
            }
            self.expect("fi", "`if`", start);
            break;
        }
        Node::If { arms, otherwise }
    }

    fn for_clause(&mut self) -> Node {
        let start = self.tok_span();
        self.i += 1;
        if self.at_op("(") {
            // for ((i = 0; i < n; i++)): arithmetic, not followed.
            while self.peek().is_some() && !self.at_keyword("do") {
                self.i += 1;
            }
            let head = join(start, self.tok_span());
            self.i += 1;
            self.list();
            self.expect("done", "`for`", start);
            return Node::Opaque(head, "an arithmetic `for ((…))` loop");
        }
        let var = match self.peek() {
            Some(Tok::Word(w)) => w.literal().unwrap_or_default(),
            _ => String::new(),
        };
        self.i += 1;
        while self.at_op("\n") {
            self.i += 1;
        }
        let mut items = None;
        if self.at_keyword("in") {
            self.i += 1;
            let mut ws = Vec::new();
            while let Some(Tok::Word(w)) = self.peek() {
                ws.push(w.clone());
                self.i += 1;
            }
            items = Some(ws);
        }
        let head = join(start, self.tok_span());
        if !self.expect("do", "`for`", start) {
            return Node::Opaque(head, "an unfinished `for` loop");
        }
        let body = self.list();
        self.expect("done", "`for`", start);
        Node::For { var, items, body, head }
    }

    fn while_clause(&mut self) -> Node {
        let start = self.tok_span();
        self.i += 1;
        let cond = self.list();
        let head = join(start, list_span(&cond));
        if !self.expect("do", "`while`", start) {
            return Node::Opaque(head, "an unfinished `while` loop");
        }
        let body = self.list();
        self.expect("done", "`while`", start);
        Node::While {
            cond,
            body,
            head,
            redirs: vec![],
        }
    }

    fn case_clause(&mut self) -> Node {
        let start = self.tok_span();
        self.i += 2; // case WORD
        self.skip_newlines();
        if !self.at_keyword("in") {
            self.errors.push(("`case` without `in`".into(), start));
            return Node::Case { arms: vec![] };
        }
        self.i += 1;
        let mut arms = Vec::new();
        loop {
            self.skip_newlines();
            if self.at_keyword("esac") {
                self.i += 1;
                break;
            }
            if self.peek().is_none() {
                self.errors.push(("`case` without `esac`".into(), start));
                break;
            }
            let head_start = self.tok_span();
            if self.at_op("(") {
                self.i += 1;
            }
            let mut patterns = Vec::new();
            loop {
                match self.peek() {
                    Some(Tok::Word(w)) => {
                        patterns.push(w.literal().unwrap_or_else(|| "*".into()));
                        self.i += 1;
                    }
                    Some(Tok::Op("|", _)) => self.i += 1,
                    _ => break,
                }
            }
            let head = join(head_start, self.tok_span());
            if !self.at_op(")") {
                self.errors.push(("a `case` pattern without `)`".into(), head));
                break;
            }
            self.i += 1;
            let body = self.list();
            arms.push(Arm { patterns, head, body });
            if self.at_op(";;") {
                self.i += 1;
            } else if !self.at_keyword("esac") {
                let s = self.tok_span();
                self.errors.push(("a `case` branch without `;;`".into(), s));
                self.i += 1;
            }
        }
        Node::Case { arms }
    }

    fn simple(&mut self) -> Node {
        let mut s = Simple {
            assigns: vec![],
            words: vec![],
            redirs: vec![],
            span: Span::NONE,
        };
        loop {
            match self.peek() {
                Some(Tok::Word(w)) => {
                    s.span = join(s.span, w.span);
                    match w.assignment() {
                        Some(a) if s.words.is_empty() => s.assigns.push(a),
                        _ => s.words.push(w.clone()),
                    }
                }
                Some(Tok::Redir(r)) => {
                    s.span = join(s.span, r.target.span);
                    s.redirs.push(r.clone());
                }
                Some(Tok::Op("(", sp)) => {
                    // `( … )` where a word was expected: not a function definition here.
                    let sp = *sp;
                    self.errors.push(("unexpected `(`".into(), sp));
                }
                _ => break,
            }
            self.i += 1;
        }
        Node::Simple(s)
    }
}

// ---------------------------------------------------------------- running

/// A redirection of a command that runs, its target expanded.
#[derive(Debug, Clone)]
pub struct Redirection {
    /// `>`, `>>`, `<`, `<<`, …
    pub op: String,
    pub target: Word,
    /// A heredoc's body, a line at a time, split into (expanded) words.
    pub heredoc: Option<Vec<(Vec<Word>, Span)>>,
}

/// A simple command that runs.
#[derive(Debug, Clone)]
pub struct Run {
    pub words: Vec<Word>,
    pub span: Span,
    pub redirects: Vec<Redirection>,
    /// The words of the command whose output is piped into this one (`echo 1 | tee …`).
    pub piped: Option<Vec<Word>>,
}

/// What the reader says while following the script.
#[derive(Debug, Clone)]
pub struct Note {
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    pub help: String,
}

#[derive(Debug, Clone)]
pub enum Event {
    Run(Run),
    Note(Note),
}

/// What following a script gives: the commands that run and the notes, in
/// order, and the branches and functions left out.
#[derive(Debug, Default)]
pub struct Trace {
    pub events: Vec<Event>,
    /// How each part left out is named (`stop)`, `function stop`), with its span.
    pub not_applied: Vec<(String, Span)>,
    /// The limit the script went past, if any (DR109): what and where. The
    /// script is then refused, whatever else was read.
    pub limit: Option<(String, Span)>,
    /// Variables expanded while never set (`$VPI`, no `${VPI:-…}`), with the word they are in.
    pub unset: Vec<(String, Span)>,
}

/// Follows `text` (starting at byte `base` of the whole input). `configures`
/// says whether a command sets something up: the branch of a `case` that
/// configures is the one followed when no branch is named `start`.
pub fn run(text: &str, base: usize, configures: &dyn Fn(&Run) -> bool) -> Trace {
    let mut lexer = Lexer::new(text, base);
    lexer.run();
    let mut parser = Parser {
        toks: std::mem::take(&mut lexer.toks),
        i: 0,
        errors: vec![],
        depth: 0,
        too_deep: None,
    };
    let nodes = parser.script();
    if let Some(at) = parser.too_deep {
        return Trace {
            limit: Some((
                format!(
                    "subshells, groups, functions, `if`, `case` and loops nest more than {} levels deep (MAX_NESTING)",
                    crate::MAX_NESTING
                ),
                at,
            )),
            ..Trace::default()
        };
    }
    let mut sh = Shell::new(text, base, configures);
    for (message, span) in lexer.errors.into_iter().chain(parser.errors) {
        sh.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            message,
            span,
            "the rest of the script is read as well as it can be",
        );
    }
    sh.exec_list(&nodes);
    sh.report_uncalled();
    let limit = sh.limit.borrow_mut().take();
    Trace {
        events: sh.events,
        not_applied: sh.not_applied,
        limit,
        unset: sh.unset,
    }
}

/// Variables in scopes: the script's, then one per function call (`local`).
#[derive(Debug, Clone, Default)]
struct Env {
    scopes: Vec<HashMap<String, Vec<String>>>,
    /// Positional parameters of each call; the script's own are unknown (empty).
    args: Vec<Vec<String>>,
}

impl Env {
    fn get(&self, name: &str) -> Option<&Vec<String>> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }
    fn set(&mut self, name: &str, value: Vec<String>) {
        if self.scopes.is_empty() {
            self.scopes.push(HashMap::new());
        }
        let scope = self.scopes.iter().rposition(|s| s.contains_key(name)).unwrap_or_default();
        self.scopes[scope].insert(name.to_string(), value);
    }
    fn set_local(&mut self, name: &str, value: Vec<String>) {
        if self.scopes.is_empty() {
            self.scopes.push(HashMap::new());
        }
        if let Some(top) = self.scopes.last_mut() {
            top.insert(name.to_string(), value);
        }
    }
    fn unset(&mut self, name: &str) {
        if let Some(s) = self.scopes.iter_mut().rev().find(|s| s.contains_key(name)) {
            s.remove(name);
        }
    }
}

#[derive(Debug, Clone)]
struct Func {
    body: Rc<Vec<Node>>,
    head: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Next,
    Break,
    Continue,
    Return,
    Exit,
}

/// The most text a script's expansions may produce and re-read in all
/// (DR109): the values of `$NAME`, `${…}` and `$(…)`, and the text of each
/// `$(…)` read again as commands. A doubling `a="$a$a"` in a loop, or `$(`
/// nested in `$(` thousands of times, would otherwise grow without bound.
pub const MAX_EXPANSION_BYTES: usize = 64 << 20;

/// Commands run at most this many times, and calls nest at most this deep:
/// a script that loops or recurses without end is read up to there.
const STEP_BUDGET: usize = 200_000;
const MAX_DEPTH: usize = 32;
const MAX_ITEMS: usize = 4096;

/// Words that name the path that sets a service up, in order of preference.
const START_WORDS: [&str; 15] = [
    "start",
    "up",
    "on",
    "enable",
    "add",
    "begin",
    "setup",
    "install",
    "load",
    "init",
    "create",
    "restart",
    "reload",
    "force-reload",
    "try-restart",
];
/// Words that name the path that tears it down.
const STOP_WORDS: [&str; 10] = [
    "stop",
    "down",
    "off",
    "disable",
    "remove",
    "del",
    "delete",
    "clean",
    "flush",
    "uninstall",
];

fn label_word(text: &str) -> String {
    text.trim_matches(|c| c == '"' || c == '\'')
        .trim_start_matches('-')
        .to_ascii_lowercase()
}

#[derive(Clone)]
struct Shell<'a> {
    text: &'a str,
    base: usize,
    env: Env,
    funcs: HashMap<String, Func>,
    /// Function names in order of definition.
    order: Vec<String>,
    called: HashSet<String>,
    events: Vec<Event>,
    not_applied: Vec<(String, Span)>,
    /// Variables expanded while never set, with the word they are in.
    unset: Vec<(String, Span)>,
    /// Shared with trial runs, so that trials spend the same budget.
    steps: Rc<Cell<usize>>,
    /// Bytes expanded so far, against [`MAX_EXPANSION_BYTES`]; shared with trial runs.
    expanded: Rc<Cell<usize>>,
    /// `$(…)` and `${…:-…}` open around the one being read.
    subst_depth: usize,
    /// The first limit the script went past (DR109), shared with trial runs.
    limit: Rc<RefCell<Option<(String, Span)>>>,
    depth: usize,
    /// A trial run, to learn whether a branch configures anything.
    dry: bool,
    configures: &'a dyn Fn(&Run) -> bool,
}

impl<'a> Shell<'a> {
    fn new(text: &'a str, base: usize, configures: &'a dyn Fn(&Run) -> bool) -> Self {
        Shell {
            text,
            base,
            env: Env {
                scopes: vec![HashMap::new()],
                args: vec![vec![]],
            },
            funcs: HashMap::new(),
            order: vec![],
            called: HashSet::new(),
            events: vec![],
            not_applied: vec![],
            unset: vec![],
            steps: Rc::new(Cell::new(0)),
            expanded: Rc::new(Cell::new(0)),
            subst_depth: 0,
            limit: Rc::new(RefCell::new(None)),
            depth: 0,
            dry: false,
            configures,
        }
    }

    /// Stops the reading at a limit (DR109): the first one is kept, and the
    /// step budget is spent so that every loop and call ends.
    fn over_limit(&mut self, message: String, span: Span) {
        self.limit.borrow_mut().get_or_insert((message, span));
        self.steps.set(STEP_BUDGET + 1);
    }

    /// Counts `bytes` of expansion against [`MAX_EXPANSION_BYTES`]; false past it.
    fn spend(&mut self, bytes: usize, span: Span) -> bool {
        let total = self.expanded.get().saturating_add(bytes);
        self.expanded.set(total);
        if total > MAX_EXPANSION_BYTES {
            self.over_limit(
                format!("the script's expansions produce more than {MAX_EXPANSION_BYTES} bytes (MAX_EXPANSION_BYTES)"),
                span,
            );
        }
        self.limit.borrow().is_none()
    }

    fn note(&mut self, code: &'static str, message: impl Into<String>, span: Span, help: &str) {
        if !self.dry {
            self.events.push(Event::Note(Note {
                code,
                message: message.into(),
                span,
                help: help.to_string(),
            }));
        }
    }

    /// The source text of a span, on one line and shortened, to name a condition.
    fn source(&self, span: Span) -> String {
        let text = self
            .text
            .get(span.start.saturating_sub(self.base)..span.end.saturating_sub(self.base))
            .unwrap_or("");
        let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if one.chars().count() > 60 {
            format!("{}…", one.chars().take(59).collect::<String>())
        } else {
            one
        }
    }

    fn line_of(&self, span: Span) -> usize {
        let end = span.start.saturating_sub(self.base).min(self.text.len());
        self.text.get(..end).map(|t| t.matches('\n').count()).unwrap_or(0) + 1
    }

    fn leave_out(&mut self, name: String, span: Span, message: String, help: &str) {
        if !self.dry {
            self.note(crate::codes::code::IMPORT_SKIPPED_LINE, message, span, help);
            self.not_applied.push((format!("{name} (line {})", self.line_of(span)), span));
        }
    }

    /// Whether running `nodes` would set anything up (a trial run, every branch taken).
    fn trial(&self, nodes: &[Node]) -> bool {
        let mut s = self.clone();
        s.dry = true;
        s.events.clear();
        s.exec_list(nodes);
        s.events.iter().any(|e| matches!(e, Event::Run(r) if (self.configures)(r)))
    }

    // --- expansion

    fn param(&mut self, name: &str, index: &Option<String>) -> (Vec<String>, bool) {
        let args = self.env.args.last().cloned().unwrap_or_default();
        match name {
            "@" | "*" => (args, true),
            "#" => (vec![args.len().to_string()], false),
            "?" => (vec!["0".into()], false),
            "0" => (vec!["script".into()], false),
            "$" | "!" | "-" => (vec![String::new()], false),
            n if n.chars().all(|c| c.is_ascii_digit()) => {
                let k: usize = n.parse().unwrap_or(0);
                (args.get(k.wrapping_sub(1)).cloned().into_iter().collect(), false)
            }
            n => {
                let v = self.env.get(n).cloned();
                match (v, index.as_deref()) {
                    (None, _) => (vec![], false),
                    (Some(v), Some("@" | "*")) => (v, true),
                    (Some(v), Some(i)) => (
                        i.trim().parse::<usize>().ok().and_then(|i| v.get(i).cloned()).into_iter().collect(),
                        false,
                    ),
                    (Some(v), None) => (v.into_iter().take(1).collect(), false),
                }
            }
        }
    }

    /// The value of one `$…` part: its values, and whether they are separate
    /// fields (`"$@"`), counted against [`MAX_EXPANSION_BYTES`].
    fn part_values(&mut self, part: &Part) -> (Vec<String>, bool) {
        if self.limit.borrow().is_some() {
            return (vec![], false);
        }
        let (values, multi) = self.part_values_unbounded(part);
        let bytes = values.iter().map(String::len).sum::<usize>() + values.len();
        if self.spend(bytes, Span::NONE) {
            (values, multi)
        } else {
            (vec![], false)
        }
    }

    fn part_values_unbounded(&mut self, part: &Part) -> (Vec<String>, bool) {
        match part {
            Part::Lit { text, .. } => (vec![text.clone()], false),
            Part::Param {
                name, index, op, length, ..
            } => {
                let (values, multi) = self.param(name, index);
                if *length {
                    let n = if index.is_some() {
                        values.len()
                    } else {
                        values.first().map(|v| v.chars().count()).unwrap_or(0)
                    };
                    return (vec![n.to_string()], false);
                }
                let Some((op, word, offset)) = op else {
                    return (values, multi);
                };
                let set = !values.is_empty() || self.env.get(name).is_some();
                let empty = values.iter().all(|v| v.is_empty());
                let null = !set || (op.starts_with(':') && empty);
                match op.trim_start_matches(':') {
                    "-" if null => (vec![self.expand_fragment(word, *offset)], false),
                    "=" if null => {
                        let v = self.expand_fragment(word, *offset);
                        if valid_name(name) {
                            self.env.set(name, vec![v.clone()]);
                        }
                        (vec![v], false)
                    }
                    "+" if !null => (vec![self.expand_fragment(word, *offset)], false),
                    "+" => (vec![], false),
                    "#" | "##" | "%" | "%%" => {
                        let pattern = self.expand_fragment(word, *offset);
                        (values.iter().map(|v| trim_pattern(v, op, &pattern)).collect(), multi)
                    }
                    _ => (values, multi),
                }
            }
            Part::Subst { inner, offset, .. } => (vec![self.substitute(inner, *offset)], false),
            Part::Array(items) => {
                let mut out = Vec::new();
                for w in items {
                    out.extend(self.expand(w).into_iter().map(|w| w.text));
                }
                (out, true)
            }
        }
    }

    /// A `${x:-word}` word: quotes and `$` inside, no field splitting.
    fn expand_fragment(&mut self, text: &str, offset: usize) -> String {
        let span = Span::new(offset, offset + text.len().min(1));
        if self.subst_depth >= crate::MAX_NESTING {
            self.over_limit(
                format!("`${{…}}` nests more than {} levels deep (MAX_NESTING)", crate::MAX_NESTING),
                span,
            );
            return String::new();
        }
        if !self.spend(text.len(), span) {
            return String::new();
        }
        self.subst_depth += 1;
        let out = self.expand_fragment_read(text, offset);
        self.subst_depth -= 1;
        out
    }

    fn expand_fragment_read(&mut self, text: &str, offset: usize) -> String {
        let mut lexer = Lexer::new(text, offset);
        let mut parts = Vec::new();
        // Read as one word: whitespace is kept.
        while lexer.peek(0).is_some() {
            let before = lexer.i;
            let w = lexer.word();
            parts.extend(w.parts);
            if let Some(c) = lexer.peek(0) {
                if lexer.i == before || c.is_whitespace() || "();&|<>".contains(c) {
                    parts.push(Part::Lit {
                        text: c.to_string(),
                        quoted: true,
                    });
                    lexer.i += 1;
                }
            }
        }
        self.expand_scalar(&RawWord { parts, span: Span::NONE })
    }

    /// `$(…)`: the few commands whose output is known without running them.
    fn substitute(&mut self, inner: &str, offset: usize) -> String {
        let inner_trim = inner.trim();
        if inner_trim.starts_with('(') {
            return String::new(); // $((arithmetic))
        }
        let span = Span::new(offset, offset + inner.len().min(1));
        if self.subst_depth >= crate::MAX_NESTING {
            self.over_limit(
                format!("`$(…)` nests more than {} levels deep (MAX_NESTING)", crate::MAX_NESTING),
                span,
            );
            return String::new();
        }
        if !self.spend(inner.len(), span) {
            return String::new();
        }
        self.subst_depth += 1;
        let out = self.substitute_read(inner, inner_trim, offset);
        self.subst_depth -= 1;
        out
    }

    fn substitute_read(&mut self, inner: &str, inner_trim: &str, offset: usize) -> String {
        let mut lexer = Lexer::new(inner, offset);
        lexer.run();
        let words: Vec<Word> = lexer
            .toks
            .iter()
            .take_while(|t| matches!(t, Tok::Word(_)))
            .filter_map(|t| match t {
                Tok::Word(w) => Some(w.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .iter()
            .flat_map(|w| self.expand(w))
            .collect();
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        match texts.as_slice() {
            ["which" | "whereis" | "type", .., last] | ["command", "-v" | "-V", .., last] => {
                format!("/usr/sbin/{}", last.rsplit('/').next().unwrap_or(last))
            }
            ["basename", path, ..] => path.rsplit('/').next().unwrap_or(path).to_string(),
            ["echo", rest @ ..] => rest.join(" "),
            _ => {
                let span = Span::new(offset, offset + inner.len());
                self.note(
                    crate::codes::code::IMPORT_SKIPPED_LINE,
                    format!("`$({})` runs a command lvsdr does not run; it is read as empty", inner_trim),
                    span,
                    "write the value itself in the script for lvsdr to read it",
                );
                String::new()
            }
        }
    }

    /// Expands a word into fields, splitting unquoted expansions on whitespace.
    fn expand(&mut self, w: &RawWord) -> Vec<Word> {
        let mut fields: Vec<String> = Vec::new();
        let mut cur = String::new();
        let mut exists = false;
        for part in &w.parts {
            let quoted = match part {
                Part::Lit { quoted, .. } | Part::Param { quoted, .. } | Part::Subst { quoted, .. } => *quoted,
                Part::Array(_) => false,
            };
            if let Part::Lit { text, quoted } = part {
                cur.push_str(text);
                exists |= *quoted || !text.is_empty();
                continue;
            }
            if let Part::Param {
                name,
                op: None,
                length: false,
                ..
            } = part
            {
                if !self.dry && valid_name(name) && self.env.get(name).is_none() {
                    self.unset.push((name.clone(), w.span));
                }
            }
            let (values, multi) = self.part_values(part);
            if quoted {
                if multi {
                    for (k, v) in values.iter().enumerate() {
                        if k > 0 {
                            fields.push(std::mem::take(&mut cur));
                        }
                        cur.push_str(v);
                        exists = true;
                    }
                } else {
                    cur.push_str(&values.join(" "));
                    exists = true;
                }
                continue;
            }
            let text = values.join(" ");
            if text.starts_with(char::is_whitespace) && exists {
                fields.push(std::mem::take(&mut cur));
                exists = false;
            }
            for (k, piece) in text.split_whitespace().enumerate() {
                if k > 0 {
                    fields.push(std::mem::take(&mut cur));
                }
                cur.push_str(piece);
                exists = true;
            }
            if text.ends_with(char::is_whitespace) && exists {
                fields.push(std::mem::take(&mut cur));
                exists = false;
            }
        }
        if exists {
            fields.push(cur);
        }
        fields.into_iter().map(|text| Word { text, span: w.span }).collect()
    }

    /// Expands a word without splitting, as an assignment's value is.
    fn expand_scalar(&mut self, w: &RawWord) -> String {
        let mut out = String::new();
        for part in &w.parts {
            let (values, _) = self.part_values(part);
            out.push_str(&values.join(" "));
        }
        out
    }

    /// The value of `NAME=…`: an array's elements, or one string.
    fn value(&mut self, w: &RawWord) -> Vec<String> {
        match w.parts.as_slice() {
            [Part::Array(items)] => {
                let items = items.clone();
                items.iter().flat_map(|i| self.expand(i)).map(|w| w.text).collect()
            }
            _ => vec![self.expand_scalar(w)],
        }
    }

    // --- running

    fn exec_list(&mut self, nodes: &[Node]) -> Flow {
        for n in nodes {
            let flow = self.exec(n);
            if flow != Flow::Next {
                return flow;
            }
        }
        Flow::Next
    }

    fn exec(&mut self, node: &Node) -> Flow {
        if self.steps.get() > STEP_BUDGET {
            return Flow::Exit;
        }
        match node {
            Node::Simple(s) => self.simple(s, None).0,
            Node::Pipeline(stages, _) => {
                let mut piped = None;
                for st in stages {
                    piped = match st {
                        Node::Simple(s) => self.simple(s, piped.take()).1,
                        other => {
                            self.exec(other);
                            None
                        }
                    };
                }
                Flow::Next
            }
            Node::AndOr(first, rest) => self.and_or(first, rest),
            Node::If { arms, otherwise } => self.if_clause(arms, otherwise),
            Node::For { var, items, body, head } => self.for_clause(var, items, body, *head),
            Node::While { cond, body, head, redirs } => self.while_clause(cond, body, *head, redirs),
            Node::Case { arms } => self.case_clause(arms),
            Node::Function { name, body, head } => {
                if !self.funcs.contains_key(name) {
                    self.order.push(name.clone());
                }
                self.funcs.insert(
                    name.clone(),
                    Func {
                        body: body.clone(),
                        head: *head,
                    },
                );
                Flow::Next
            }
            Node::Group { body, subshell } => match self.exec_list(body) {
                Flow::Exit if *subshell => Flow::Next,
                f => f,
            },
            Node::Opaque(span, what) => {
                let span = *span;
                self.note(
                    crate::codes::code::IMPORT_SKIPPED_LINE,
                    format!("{what} is not followed by lvsdr; its body is not applied"),
                    span,
                    "",
                );
                Flow::Next
            }
        }
    }

    /// Words of a condition that name an init-script action (`start`, `stop`).
    fn labels(&mut self, cond: &[Node]) -> Vec<String> {
        let mut out = Vec::new();
        for n in cond {
            let simple = match n {
                Node::Simple(s) => vec![s],
                Node::AndOr(first, rest) => std::iter::once(first.as_ref())
                    .chain(rest.iter().map(|r| &r.1))
                    .filter_map(|n| match n {
                        Node::Simple(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            };
            for s in simple {
                for w in &s.words {
                    if let Some(t) = w.literal() {
                        let l = label_word(&t);
                        if START_WORDS.contains(&l.as_str()) || STOP_WORDS.contains(&l.as_str()) {
                            out.push(l);
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether a body only gives up: it exits or returns and sets nothing up.
    fn gives_up(&self, body: &[Node]) -> bool {
        fn quits(n: &Node) -> bool {
            match n {
                Node::Simple(s) => s
                    .words
                    .first()
                    .and_then(|w| w.literal())
                    .is_some_and(|t| t == "exit" || t == "return"),
                Node::AndOr(first, rest) => quits(first) || rest.iter().any(|r| quits(&r.1)),
                Node::Group { body, .. } => body.iter().any(quits),
                _ => false,
            }
        }
        body.iter().any(quits) && !self.trial(body)
    }

    /// Which of several alternatives runs: the one named like `start`, else the
    /// only one that configures, else the default (`*`) that configures, else
    /// the first that configures. `None` when none sets anything up.
    fn choose(&self, alternatives: &[(Vec<String>, &[Node])]) -> Option<usize> {
        for word in START_WORDS {
            if let Some(i) = alternatives
                .iter()
                .position(|(labels, _)| labels.iter().any(|l| label_word(l) == word))
            {
                return Some(i);
            }
        }
        // A branch named like `stop` tears down, whatever it writes: never the setup path.
        let stop = |labels: &Vec<String>| !labels.is_empty() && labels.iter().all(|l| STOP_WORDS.contains(&label_word(l).as_str()));
        let configuring: Vec<usize> = (0..alternatives.len())
            .filter(|i| !stop(&alternatives[*i].0) && self.trial(alternatives[*i].1))
            .collect();
        match configuring.as_slice() {
            [] => None,
            [one] => Some(*one),
            many => many
                .iter()
                .copied()
                .find(|i| alternatives[*i].0.iter().any(|l| l == "*"))
                .or(Some(many[0])),
        }
    }

    fn case_clause(&mut self, arms: &[Arm]) -> Flow {
        if self.dry {
            for a in arms {
                let f = self.exec_list(&a.body);
                if f != Flow::Next {
                    return f;
                }
            }
            return Flow::Next;
        }
        let alternatives: Vec<(Vec<String>, &[Node])> = arms.iter().map(|a| (a.patterns.clone(), a.body.as_slice())).collect();
        let chosen = self.choose(&alternatives);
        let taken = chosen.map(|i| format!("`{})`", arms[i].patterns.join("|")));
        for (i, a) in arms.iter().enumerate() {
            if Some(i) == chosen || a.body.is_empty() {
                continue;
            }
            let name = format!("`{})`", a.patterns.join("|"));
            let message = match &taken {
                Some(t) => format!("the {name} branch of this `case` is not applied: lvsdr follows the {t} branch"),
                None => format!(
                    "the {name} branch of this `case` is not applied: lvsdr follows the branch that starts the service, and this `case` has none"
                ),
            };
            self.leave_out(
                name,
                a.head,
                message,
                "lvsdr reads an init script as `start` runs it; read the other branches as separate scripts if they matter",
            );
        }
        match chosen {
            Some(i) => self.exec_list(&arms[i].body),
            None => Flow::Next,
        }
    }

    fn if_clause(&mut self, arms: &[(Vec<Node>, Vec<Node>, Span)], otherwise: &Option<(Vec<Node>, Span)>) -> Flow {
        if self.dry {
            for (_, body, _) in arms {
                let f = self.exec_list(body);
                if f != Flow::Next {
                    return f;
                }
            }
            return match otherwise {
                Some((body, _)) => self.exec_list(body),
                None => Flow::Next,
            };
        }
        let mut alternatives: Vec<(Vec<String>, &[Node], Span, String)> = Vec::new();
        for (cond, body, head) in arms {
            let labels = self.labels(cond);
            alternatives.push((labels, body.as_slice(), *head, format!("`{}`", self.source(*head))));
        }
        if let Some((body, at)) = otherwise {
            alternatives.push((vec!["*".into()], body.as_slice(), *at, "`else`".into()));
        }
        let dispatcher = alternatives.iter().any(|a| !a.0.is_empty() && a.0 != ["*"]);
        let chosen = if dispatcher {
            // `if [ "$1" = start ]; then … elif [ "$1" = stop ]; then …`: alternatives, like a case.
            let alts: Vec<(Vec<String>, &[Node])> = alternatives.iter().map(|a| (a.0.clone(), a.1)).collect();
            self.choose(&alts)
        } else {
            // A guard that only gives up is assumed not to fire; the first other branch runs.
            let mut chosen = None;
            for (i, a) in alternatives.iter().enumerate() {
                if a.1.is_empty() {
                    if a.3 == "`else`" {
                        chosen = Some(i);
                        break;
                    }
                    continue;
                }
                if a.3 != "`else`" && self.gives_up(a.1) {
                    self.note(
                        crate::codes::code::IMPORT_SKIPPED_LINE,
                        format!("{} is assumed false: its body only gives up", a.3),
                        a.2,
                        "",
                    );
                    continue;
                }
                chosen = Some(i);
                break;
            }
            if let Some(i) = chosen {
                let a = &alternatives[i];
                if a.3 != "`else`" && self.trial(a.1) {
                    self.note(
                        crate::codes::code::IMPORT_SKIPPED_LINE,
                        format!("{} is assumed true: its body is applied", a.3),
                        a.2,
                        "",
                    );
                }
            }
            chosen
        };
        for (i, a) in alternatives.iter().enumerate() {
            if Some(i) == chosen || a.1.is_empty() {
                continue;
            }
            if !dispatcher && chosen.is_none_or(|c| i < c) {
                continue; // guards already said
            }
            let message = match chosen {
                Some(c) => format!("the branch of {} is not applied: lvsdr follows {}", a.3, alternatives[c].3),
                None => format!("the branch of {} is not applied: no branch sets anything up", a.3),
            };
            self.leave_out(a.3.clone(), a.2, message, "");
        }
        match chosen {
            Some(i) => {
                let body = alternatives[i].1;
                self.exec_list(body)
            }
            None => Flow::Next,
        }
    }

    fn for_clause(&mut self, var: &str, items: &Option<Vec<RawWord>>, body: &[Node], head: Span) -> Flow {
        let values: Vec<String> = match items {
            Some(ws) => ws.iter().flat_map(|w| self.expand(w)).map(|w| w.text).collect(),
            None => self.env.args.last().cloned().unwrap_or_default(),
        };
        if !body.is_empty() {
            let shown: Vec<&str> = values.iter().take(8).map(String::as_str).collect();
            let more = if values.len() > 8 { ", …" } else { "" };
            let message = if values.is_empty() {
                format!("`for {var}` runs over an empty list: its body is not applied")
            } else {
                format!(
                    "`for {var}` runs its body {} time{}, with {var} = {}{more}",
                    values.len(),
                    if values.len() == 1 { "" } else { "s" },
                    shown.join(", ")
                )
            };
            self.note(crate::codes::code::IMPORT_SKIPPED_LINE, message, head, "");
        }
        for v in values.into_iter().take(MAX_ITEMS) {
            self.env.set(var, vec![v]);
            match self.exec_list(body) {
                Flow::Break => break,
                Flow::Next | Flow::Continue => {}
                f => return f,
            }
        }
        Flow::Next
    }

    fn while_clause(&mut self, cond: &[Node], body: &[Node], head: Span, redirs: &[Redir]) -> Flow {
        // `while read A B; do …; done <<EOF`: the heredoc's lines are the iterations.
        let read_vars: Option<Vec<String>> = match cond {
            [Node::Simple(s)] if s.words.first().is_some_and(|w| w.is("read")) => Some(
                s.words[1..]
                    .iter()
                    .filter_map(|w| w.literal())
                    .filter(|t| !t.starts_with('-'))
                    .collect(),
            ),
            _ => None,
        };
        let heredoc = redirs.iter().find_map(|r| r.heredoc.clone());
        if let (Some(vars), Some(h)) = (read_vars, heredoc) {
            let lines: Vec<String> = h
                .lines
                .iter()
                .map(|(l, off)| if h.expand { self.expand_fragment(l, *off) } else { l.clone() })
                .collect();
            self.note(
                crate::codes::code::IMPORT_SKIPPED_LINE,
                format!("`while read` runs its body once for each of the {} lines that follow", lines.len()),
                head,
                "",
            );
            for line in lines.into_iter().take(MAX_ITEMS) {
                let mut fields: Vec<&str> = line.split_whitespace().collect();
                for (k, v) in vars.iter().enumerate() {
                    let value = if k + 1 == vars.len() {
                        fields.join(" ")
                    } else if fields.is_empty() {
                        String::new()
                    } else {
                        fields.remove(0).to_string()
                    };
                    self.env.set(v, vec![value]);
                }
                match self.exec_list(body) {
                    Flow::Break => break,
                    Flow::Next | Flow::Continue => {}
                    f => return f,
                }
            }
            return Flow::Next;
        }
        if self.dry {
            return self.exec_list(body);
        }
        if self.trial(body) {
            let what = format!("`{}`", self.source(head));
            self.leave_out(
                what.clone(),
                head,
                format!("the loop {what} is not applied: lvsdr cannot tell how often it runs"),
                "list the commands one by one, or loop with `for X in …` over a list in the script",
            );
        }
        Flow::Next
    }

    fn and_or(&mut self, first: &Node, rest: &[(bool, Node)]) -> Flow {
        let mut flow = self.exec(first);
        let first_labels = self.labels(std::slice::from_ref(first));
        for (or, n) in rest {
            if flow != Flow::Next {
                return flow;
            }
            let body = std::slice::from_ref(n);
            if self.dry {
                flow = self.exec(n);
                continue;
            }
            let stop = first_labels.iter().any(|l| STOP_WORDS.contains(&l.as_str()));
            let what = format!("`{}`", self.source(first.span()));
            if *or {
                // `test || exit 1`: assumed to pass. `grep -q … || echo … >> file`: the right side is applied.
                if self.trial(body) {
                    flow = self.exec(n);
                }
            } else if stop {
                if !body.iter().all(|b| matches!(b, Node::Simple(s) if s.words.is_empty())) {
                    self.leave_out(
                        what.clone(),
                        n.span(),
                        format!("the command after {what} is not applied: it belongs to the stop path"),
                        "",
                    );
                }
            } else if self.gives_up(body) {
                self.note(
                    crate::codes::code::IMPORT_SKIPPED_LINE,
                    format!("{what} is assumed false: what follows `&&` only gives up"),
                    n.span(),
                    "",
                );
            } else {
                flow = self.exec(n);
            }
        }
        flow
    }

    /// Runs one simple command; returns the flow and the words it ran with.
    fn simple(&mut self, s: &Simple, piped: Option<Vec<Word>>) -> (Flow, Option<Vec<Word>>) {
        self.steps.set(self.steps.get() + 1);
        if s.words.is_empty() {
            for (name, value) in &s.assigns {
                let v = self.value(value);
                match name.split_once('[') {
                    Some((array, index)) => {
                        let k: usize = index.trim_end_matches(']').trim().parse().unwrap_or(0).min(MAX_ITEMS);
                        let mut all = self.env.get(array).cloned().unwrap_or_default();
                        if all.len() <= k {
                            all.resize(k + 1, String::new());
                        }
                        all[k] = v.join(" ");
                        self.env.set(array, all);
                    }
                    None => self.env.set(name, v),
                }
            }
            return (Flow::Next, None);
        }
        let words: Vec<Word> = s.words.iter().flat_map(|w| self.expand(w)).collect();
        let Some(first) = words.first() else {
            return (Flow::Next, None);
        };
        let name = first.text.clone();
        match name.as_str() {
            "local" | "declare" | "typeset" | "export" | "readonly" => {
                let local = matches!(name.as_str(), "local" | "declare" | "typeset") && self.depth > 0;
                for raw in &s.words[1..] {
                    if let Some((var, value)) = raw.assignment() {
                        let v = self.value(&value);
                        if local {
                            self.env.set_local(&var, v);
                        } else {
                            self.env.set(&var, v);
                        }
                    } else if let Some(var) = raw.literal().filter(|t| valid_name(t)) {
                        if local {
                            self.env.set_local(&var, vec![]);
                        }
                    }
                }
                return (Flow::Next, None);
            }
            "unset" => {
                for w in &words[1..] {
                    self.env.unset(&w.text);
                }
                return (Flow::Next, None);
            }
            "shift" => {
                let n: usize = words.get(1).and_then(|w| w.text.parse().ok()).unwrap_or(1);
                if let Some(args) = self.env.args.last_mut() {
                    args.drain(..n.min(args.len()));
                }
                return (Flow::Next, None);
            }
            "exit" => return (Flow::Exit, None),
            "let" => return (Flow::Next, None),
            "return" => return (Flow::Return, None),
            "break" => return (Flow::Break, None),
            "continue" => return (Flow::Continue, None),
            ":" | "true" | "false" | "[" | "[[" | "test" | "set" | "shopt" | "trap" | "umask" | "cd" | "wait" | "read" => {
                return (Flow::Next, None)
            }
            "." | "source" => {
                let file = words.get(1).map(|w| w.text.clone()).unwrap_or_default();
                self.note(
                    crate::codes::code::IMPORT_SKIPPED_LINE,
                    format!("`{name} {file}` reads another file, which lvsdr does not open"),
                    s.span,
                    "give that file to lvsdr too, or copy the settings it holds into the script",
                );
                return (Flow::Next, None);
            }
            "eval" => {
                self.note(
                    crate::codes::code::IMPORT_SKIPPED_LINE,
                    "`eval` builds a command at run time; lvsdr does not follow it",
                    s.span,
                    "",
                );
                return (Flow::Next, None);
            }
            _ => {}
        }
        if let Some(f) = self.funcs.get(&name).cloned() {
            if self.depth >= MAX_DEPTH {
                self.note(
                    crate::codes::code::IMPORT_SKIPPED_LINE,
                    format!("`{name}` calls itself too deeply; lvsdr stops following it"),
                    s.span,
                    "",
                );
                return (Flow::Next, None);
            }
            if !self.dry {
                self.called.insert(name.clone());
            }
            self.depth += 1;
            self.env.scopes.push(HashMap::new());
            self.env.args.push(words[1..].iter().map(|w| w.text.clone()).collect());
            let flow = self.exec_list(&f.body);
            self.env.args.pop();
            self.env.scopes.pop();
            self.depth -= 1;
            return (if flow == Flow::Exit { Flow::Exit } else { Flow::Next }, None);
        }
        let redirects = s
            .redirs
            .iter()
            .map(|r| {
                let target = Word {
                    text: self.expand_scalar(&r.target),
                    span: r.target.span,
                };
                let heredoc = r.heredoc.as_ref().map(|h| {
                    h.lines
                        .iter()
                        .map(|(line, off)| {
                            let span = Span::new(*off, off + line.trim_end().len());
                            let mut ws = Vec::new();
                            let mut at = 0;
                            for piece in line.split_whitespace() {
                                let start = line[at..].find(piece).map(|p| at + p).unwrap_or(at);
                                at = start + piece.len();
                                let text = if h.expand {
                                    self.expand_fragment(piece, off + start)
                                } else {
                                    piece.to_string()
                                };
                                ws.push(Word {
                                    text,
                                    span: Span::new(off + start, off + at),
                                });
                            }
                            (ws, span)
                        })
                        .collect()
                });
                Redirection {
                    op: r.op.clone(),
                    target,
                    heredoc,
                }
            })
            .collect();
        let run = Run {
            words: words.clone(),
            span: s.span,
            redirects,
            piped,
        };
        self.events.push(Event::Run(run));
        (Flow::Next, Some(words))
    }

    /// Functions never called on the path followed are said, once each.
    fn report_uncalled(&mut self) {
        for name in self.order.clone() {
            if self.called.contains(&name) {
                continue;
            }
            let Some(f) = self.funcs.get(&name).cloned() else { continue };
            if f.body.is_empty() {
                continue;
            }
            self.leave_out(
                format!("function `{name}`"),
                f.head,
                format!("function `{name}` is not called on the path lvsdr follows; it is not applied"),
                "",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(text: &str) -> Vec<String> {
        let t = run(text, 0, &|r| r.words.first().is_some_and(|w| w.text == "ipvsadm"));
        t.events
            .iter()
            .filter_map(|e| match e {
                Event::Run(r) => Some(r.words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn expands_variables_and_keeps_spans() {
        let mut vars = HashMap::new();
        vars.insert("vip".to_string(), "10.0.0.1".to_string());
        let w = words("cmd -t $vip:80 '${vip}' \"${vip}x\" # c", 10, &vars).unwrap();
        let texts: Vec<_> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["cmd", "-t", "10.0.0.1:80", "${vip}", "10.0.0.1x"]);
        assert_eq!(w[2].span, Span::new(17, 24));
    }

    #[test]
    fn unterminated_quote_is_refused() {
        assert!(words("echo 'oops", 0, &HashMap::new()).is_none());
    }

    #[test]
    fn for_loops_split_word_lists_and_functions_take_arguments() {
        let got = runs("RIPS=\"10.0.0.2 10.0.0.3\"\nadd() { local w=${2:-1}; ipvsadm -a -r $1 -w $w; }\nfor r in $RIPS; do add $r 5; done\nadd 10.0.0.4\n");
        assert_eq!(
            got,
            [
                "ipvsadm -a -r 10.0.0.2 -w 5",
                "ipvsadm -a -r 10.0.0.3 -w 5",
                "ipvsadm -a -r 10.0.0.4 -w 1"
            ]
        );
    }

    #[test]
    fn case_follows_start_and_leaves_stop_out() {
        let t = run(
            "case \"$1\" in\n  start)\n    ipvsadm -A\n    ;;\n  stop) ipvsadm -C ;;\nesac\n",
            0,
            &|_| true,
        );
        let texts: Vec<String> = t
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Run(r) => Some(r.words[1].text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["-A"]);
        assert_eq!(t.not_applied.len(), 1);
        assert!(t.not_applied[0].0.contains("stop"));
    }

    #[test]
    fn guards_that_give_up_are_not_followed() {
        let got = runs("IPVSADM=`which ipvsadm`\nif [ ! -x $IPVSADM ]; then\n echo no; exit 1\nfi\n$IPVSADM -C\n");
        assert_eq!(got, ["/usr/sbin/ipvsadm -C"]);
    }

    #[test]
    fn indexed_arrays_and_pattern_trims() {
        let got = runs("V[0]=10.0.0.5\nV[1]=10.0.0.6\nfor v in ${V[@]}; do ipvsadm lo:${v##*.} ${v%.*}; done\n");
        assert_eq!(got, ["ipvsadm lo:5 10.0.0", "ipvsadm lo:6 10.0.0"]);
    }

    #[test]
    fn heredocs_are_not_commands() {
        let got = runs("cat <<EOF\nipvsadm -A\nEOF\nipvsadm -a\n");
        assert_eq!(got, ["cat", "ipvsadm -a"]);
    }

    #[test]
    fn arrays_and_defaults() {
        let got = runs("RS=(10.0.0.2 10.0.0.3)\nVIP=${VIP:-10.0.0.1}\nfor r in \"${RS[@]}\"; do ipvsadm -a -t \"${VIP}:80\" -r $r; done\n");
        assert_eq!(
            got,
            ["ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2", "ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.3"]
        );
    }
}
