//! # lvsdr-core
//!
//! Everything lvsdr knows about Linux Virtual Server in Direct Routing mode,
//! as pure functions with no I/O (it compiles to `wasm32-unknown-unknown`).
//!
//! - [`model`]: the validated [`Topology`]: director, VIP, virtual services,
//!   real servers, client.
//! - [`names`]: host names, interface names and sysctl keys, checked once
//!   on the way in (topologies are untrusted input that root runs).
//! - [`topology_file`]: the TOML and JSON formats, read in two steps (loose
//!   input with spans, then validation into the model).
//! - [`import`]: what users already have (`ipvsadm` shell scripts,
//!   `ipvsadm -S` dumps), with spans into *their* file.
//! - [`codes`]: the catalogue of codes (the readers' here, each rule's in its file).
//! - [`lint`]: the rule catalogue; one rule a file, each with its doc.
//! - [`render`]: every artifact a DR setup needs.
//! - [`predict`]: which real server the kernel's scheduler picks, connection
//!   by connection.
//! - [`plan`]: the [`plan::LabPlan`], plain data that the harness executes.
//! - [`audit`]: a live machine's state (read by the harness) against its
//!   setup, as plain data, with the drift codes (DR2xx).
#![deny(unsafe_code)]

pub mod audit;
pub mod codes;
pub mod diagnostic;
pub mod import;
pub mod lint;
pub mod model;
pub mod names;
pub mod plan;
pub mod predict;
pub mod render;
pub mod source;
pub mod topology_file;
pub mod walk;

pub use diagnostic::{Diagnostic, LocatedDiagnostic, Severity};
pub use model::Topology;
pub use source::Span;

use serde::Serialize;

/// Input that cannot be read as a topology at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LoadError {
    /// `DR000`, or the code of the check that refused a value (`DR105`, `DR106`).
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    pub help: Option<String>,
}

impl LoadError {
    /// A refused name or key, at the span it was written.
    pub fn refused(e: names::NameError, span: Span) -> Self {
        LoadError {
            code: e.code,
            message: e.message,
            span,
            help: Some(e.help),
        }
    }
    /// A build without the `importers` feature (the playground's first
    /// WebAssembly module) met a format only they read.
    #[cfg(not(feature = "importers"))]
    pub fn needs_importers(format: Format) -> Self {
        LoadError {
            code: crate::codes::code::UNREADABLE_TOPOLOGY,
            message: format!("this build reads TOML and JSON only; {} input needs the importers", format.name()),
            span: Span::new(0, 0),
            help: Some("build lvsdr-core with its `importers` feature (the default)".into()),
        }
    }
    pub fn to_diagnostic(&self) -> Diagnostic {
        let mut d = Diagnostic::new(self.code, Severity::Error, self.message.clone(), self.span);
        d.help = self.help.clone();
        d
    }
}

/// The formats lvsdr reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Toml,
    Json,
    Script,
    IpvsadmSave,
    Keepalived,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Toml, Format::Json, Format::Script, Format::IpvsadmSave, Format::Keepalived];
    pub fn name(self) -> &'static str {
        match self {
            Format::Toml => "toml",
            Format::Json => "json",
            Format::Script => "script",
            Format::IpvsadmSave => "ipvsadm-save",
            Format::Keepalived => "keepalived",
        }
    }
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Guesses the format from the text itself.
    pub fn detect(text: &str) -> Format {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            return Format::Json;
        }
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        if !lines.is_empty() && lines.iter().all(|l| l.starts_with("-A ") || l.starts_with("-a ")) {
            return Format::IpvsadmSave;
        }
        if lines
            .iter()
            .any(|l| l.starts_with("virtual_server ") || l.starts_with("vrrp_instance "))
        {
            return Format::Keepalived;
        }
        let tomlish = lines
            .iter()
            .filter(|l| l.starts_with('[') || (l.contains(" = ") && !l.contains("$(")))
            .count();
        if (text.starts_with("#!")
            || lines
                .iter()
                .any(|l| l.contains("ipvsadm") || l.starts_with("ifconfig") || l.starts_with("sysctl ") || l.starts_with("ip ")))
            && tomlish * 2 < lines.len()
        {
            return Format::Script;
        }
        Format::Toml
    }
}

/// The result of reading and linting one source text.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub format: Format,
    pub topology: Option<Topology>,
    /// Importer findings, then lint findings; a load error alone when the input is unreadable.
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// The largest input any reader takes, in bytes (DR109). A 12,700-line
/// production dump is about 1 MB, and 100,000 services about 7 MB.
pub const MAX_INPUT_BYTES: usize = 32 << 20;

/// The deepest nesting a reader follows (DR109): blocks in keepalived.conf;
/// subshells, groups, functions, `if`, `case`, loops, `$(…)` and `${…:-…}` in
/// a script. The readers recurse once per level, and a debug build's test
/// thread has 2 MB of stack and the playground's WebAssembly 1 MB.
/// Real files nest a few levels; a hostile one nests thousands, which would
/// otherwise exhaust the stack of the CLI or the browser tab.
pub const MAX_NESTING: usize = 64;

impl LoadError {
    /// Input past one of the readers' limits (DR109), at `span`.
    pub fn limit(what: impl Into<String>, span: Span, help: &str) -> Self {
        LoadError {
            code: crate::codes::code::INPUT_LIMIT,
            message: what.into(),
            span,
            help: Some(help.to_string()),
        }
    }
}

/// Reads a topology in the given (or detected) format.
pub fn load(text: &str, format: Option<Format>) -> (Format, Result<(Topology, Vec<Diagnostic>), LoadError>) {
    load_with(text, format, &import::resolve::NameMap::default())
}

/// [`load`], with the host names the user mapped to addresses: a dump's
/// `-A -t lb-web:https` reads as the address given for `lb-web`.
pub fn load_with(
    text: &str,
    format: Option<Format>,
    names: &import::resolve::NameMap,
) -> (Format, Result<(Topology, Vec<Diagnostic>), LoadError>) {
    if text.len() > MAX_INPUT_BYTES {
        let e = LoadError::limit(
            format!(
                "the input is {} bytes, more than the {MAX_INPUT_BYTES} lvsdr reads (MAX_INPUT_BYTES)",
                text.len()
            ),
            Span::new(0, 0),
            "split the input into several files, or leave out what is not part of the LVS setup",
        );
        return (format.unwrap_or(Format::Toml), Err(e));
    }
    let format = format.unwrap_or_else(|| Format::detect(text));
    let result = match format {
        Format::Toml => topology_file::from_toml(text).map(|t| (t, vec![])),
        Format::Json => topology_file::from_json(text).map(|t| (t, vec![])),
        #[cfg(feature = "importers")]
        Format::Script | Format::IpvsadmSave | Format::Keepalived => {
            let mut b = import::builder::Builder::with_names(names.clone());
            match format {
                Format::Script => import::script::read(&mut b, text, 0),
                Format::IpvsadmSave => import::ipvsadm_save::read(&mut b, text, 0),
                _ => import::keepalived::read(&mut b, text, 0),
            }
            b.finish()
        }
        #[cfg(not(feature = "importers"))]
        Format::Script | Format::IpvsadmSave | Format::Keepalived => {
            let _ = names;
            Err(LoadError::needs_importers(format))
        }
    };
    (format, result)
}

/// Sorts findings into source order and folds repeats: a real-server setting
/// that several real servers share (one script run on each) is one finding
/// at its line, not one per server.
fn settle(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| (a.span.start, a.code).cmp(&(b.span.start, b.code)));
    let mut out: Vec<Diagnostic> = Vec::with_capacity(diagnostics.len());
    let mut seen = std::collections::HashSet::new();
    let mut repeats = 0usize;
    for d in diagnostics.drain(..) {
        match out.last_mut() {
            Some(last) if !d.span.is_none() && last.span == d.span && last.code == d.code && last.node != d.node && last.node.is_some() => {
                repeats += 1;
                continue;
            }
            _ => {}
        }
        // The same note twice (two files assuming the same thing): once.
        if !seen.insert((d.span.start, d.span.end, d.code, d.message.clone())) {
            continue;
        }
        if repeats > 0 {
            if let Some(last) = out.last_mut() {
                last.message.push_str(&format!(" (and {repeats} more real server(s))"));
            }
            repeats = 0;
        }
        out.push(d);
    }
    if repeats > 0 {
        if let Some(last) = out.last_mut() {
            last.message.push_str(&format!(" (and {repeats} more real server(s))"));
        }
    }
    *diagnostics = out;
}

/// Reads and lints a source text: what `lvsdr lint` and the playground do.
pub fn analyze(text: &str, format: Option<Format>) -> Analysis {
    analyze_with(text, format, &import::resolve::NameMap::default())
}

/// [`analyze`], with the host names the user mapped to addresses.
pub fn analyze_with(text: &str, format: Option<Format>, names: &import::resolve::NameMap) -> Analysis {
    let (format, result) = load_with(text, format, names);
    match result {
        Ok((topology, mut diagnostics)) => {
            diagnostics.extend(lint::lint(&topology, text));
            // One list in source order, whichever step found them.
            settle(&mut diagnostics);
            Analysis {
                format,
                topology: Some(topology),
                diagnostics,
            }
        }
        Err(e) => Analysis {
            format,
            topology: None,
            diagnostics: vec![e.to_diagnostic()],
        },
    }
}

/// Adds the director of `other` (read from its own keepalived.conf) to
/// `topology` as director number `n`, with its own virtual services for the
/// drift check; its real servers are the topology's, found by address.
fn join_director(topology: &mut Topology, other: Topology, n: usize) -> Option<Diagnostic> {
    let mut director = other.directors.into_iter().next()?;
    if topology.directors.iter().any(|d| d.name == director.name) {
        director.name = names::HostName::known(format!("director{n}"));
    }
    // An address assumed for each file alone may be the same twice: take the next free one.
    let taken = |a: &std::net::IpAddr, t: &Topology| {
        t.directors.iter().any(|d| d.address.contains(*a))
            || t.real_servers.iter().any(|r| r.address.contains(*a))
            || t.client.address.contains(*a)
    };
    let mut note = None;
    if director.address.main().span.is_none() {
        let (lan, _) = topology.lan_of(model::Family::of(&director.address.main().value));
        if taken(&director.address.main().value, topology) {
            if let Some(free) = (1..=254u128)
                .map(|h| lan.host(h))
                .find(|a| !taken(a, topology) && !topology.vips().iter().any(|v| v.address.value == *a))
            {
                director.address = model::Addresses::one(source::At::implied(free));
            }
        }
        let msg = format!(
            "{}'s own address is not in its file; assumed {}",
            director.name,
            director.address.main().value
        );
        note = Some(
            Diagnostic::new(crate::codes::code::IMPORT_ASSUMED_VALUE, Severity::Info, msg, director.span)
                .help("add `ip addr add ADDR/PREFIX dev eth0` for this director, or edit the imported topology"),
        );
    }
    let mut services = other.services;
    for s in &mut services {
        for d in &mut s.destinations {
            let Some(address) = other
                .real_servers
                .iter()
                .find(|r| r.name.value == d.server.value)
                .map(|r| r.address.main().value)
            else {
                continue;
            };
            let name = match topology.real_servers.iter().find(|r| r.address.contains(address)) {
                Some(r) => r.name.value.clone(),
                None => {
                    // A real server only this director sends to (drift): it joins the topology.
                    let name = names::HostName::known(format!("rs{}", topology.real_servers.len() + 1));
                    if let Some(r) = other.real_servers.iter().find(|r| r.address.contains(address)) {
                        let mut r = r.clone();
                        r.name.value = name.clone();
                        topology.real_servers.push(r);
                    }
                    name
                }
            };
            d.server.value = name;
        }
    }
    director.own_services = services;
    topology.directors.push(director);
    note
}

/// One file of a setup read from several ([`analyze_files`]): where its text
/// sits in the joined text that the spans point into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceFile {
    pub name: String,
    pub format: Format,
    pub start: usize,
    pub end: usize,
}

/// Several files read as one setup: the analysis, the joined text its spans
/// point into, and where each file sits in it.
#[derive(Debug, Clone)]
pub struct SetupAnalysis {
    pub analysis: Analysis,
    pub text: String,
    pub files: Vec<SourceFile>,
}

impl SetupAnalysis {
    /// The diagnostics in machine form, each naming its file when there are several.
    pub fn located(&self) -> Vec<diagnostic::LocatedDiagnostic> {
        if self.files.len() < 2 {
            return diagnostic::locate_all(&self.analysis.diagnostics, &self.text);
        }
        let maps: Vec<source::SourceMap> = self
            .files
            .iter()
            .map(|f| source::SourceMap::new(&self.text[f.start..f.end]))
            .collect();
        self.analysis
            .diagnostics
            .iter()
            .map(|d| match self.locate(d.span) {
                Some((f, span)) => {
                    let i = self.files.iter().position(|x| std::ptr::eq(x, f)).unwrap_or(0);
                    let mut moved = d.clone();
                    moved.span = span;
                    moved.located_in(&maps[i], Some(&f.name))
                }
                None => d.located(&self.text),
            })
            .collect()
    }

    /// The rustc-style rendering, file by file, each finding under its own file's name.
    pub fn render_human(&self, style: diagnostic::Style) -> String {
        let mut out = String::new();
        for (i, f) in self.files.iter().enumerate() {
            let mine: Vec<Diagnostic> = self
                .analysis
                .diagnostics
                .iter()
                .filter_map(|d| match self.locate(d.span) {
                    Some((g, span)) if std::ptr::eq(g, f) => {
                        let mut moved = d.clone();
                        moved.span = span;
                        Some(moved)
                    }
                    None if i == 0 => Some(d.clone()),
                    _ => None,
                })
                .collect();
            out.push_str(&diagnostic::render_human(&mine, &self.text[f.start..f.end], &f.name, style));
        }
        out
    }

    /// The file a span falls in, and the span made relative to that file.
    pub fn locate(&self, span: Span) -> Option<(&SourceFile, Span)> {
        let f = self
            .files
            .iter()
            .find(|f| span.start >= f.start && span.start <= f.end && (span.start < f.end || f.start == f.end))
            .or_else(|| self.files.iter().rev().find(|f| span.start >= f.start))?;
        Some((
            f,
            Span::new(span.start - f.start, span.end.saturating_sub(f.start).min(f.end - f.start)),
        ))
    }
}

/// Reads several files as one setup, as `lvsdr lint a.sh b.sh` does: a
/// director's script with the real servers' script, a keepalived.conf with a
/// real-server script. Each file is read in its own format (given, or
/// detected file by file) into one topology. A TOML or JSON topology is
/// complete in itself and is read alone.
pub fn analyze_files(files: &[(String, String)], format: Option<Format>) -> SetupAnalysis {
    let formats = vec![format; files.len()];
    analyze_files_as(files, &formats)
}

/// [`analyze_files`] with a format for each file (`None`: detected).
pub fn analyze_files_as(files: &[(String, String)], formats: &[Option<Format>]) -> SetupAnalysis {
    analyze_files_with(files, formats, &import::resolve::NameMap::default())
}

/// [`analyze_files_as`], with the host names the user mapped to addresses
/// (`--resolve NAME=ADDRESS`, a hosts file): lvsdr never resolves names itself.
pub fn analyze_files_with(files: &[(String, String)], formats: &[Option<Format>], names: &import::resolve::NameMap) -> SetupAnalysis {
    let mut text = String::new();
    let mut sources = Vec::new();
    for ((name, body), format) in files.iter().zip(formats.iter().chain(std::iter::repeat(&None))) {
        let format = *format;
        let start = text.len();
        text.push_str(body);
        let end = text.len();
        if !body.ends_with('\n') && !body.is_empty() {
            text.push('\n');
        }
        sources.push(SourceFile {
            name: name.clone(),
            format: format.unwrap_or_else(|| Format::detect(body)),
            start,
            end,
        });
    }
    if let [one] = files {
        let analysis = analyze_with(&one.1, formats.first().copied().flatten(), names);
        sources[0].format = analysis.format;
        return SetupAnalysis {
            analysis,
            text,
            files: sources,
        };
    }
    let first = sources.first().map(|f| f.format).unwrap_or(Format::Toml);
    if let Some(whole) = sources.iter().find(|f| matches!(f.format, Format::Toml | Format::Json)) {
        let e = LoadError {
            code: crate::codes::code::UNREADABLE_TOPOLOGY,
            message: format!(
                "{} is a complete topology ({}); it cannot be merged with other files",
                whole.name,
                whole.format.name()
            ),
            span: Span::new(whole.start, whole.start),
            help: Some("read it alone, or give only scripts, ipvsadm dumps and keepalived.conf files to read as one setup".into()),
        };
        return SetupAnalysis {
            analysis: Analysis {
                format: whole.format,
                topology: None,
                diagnostics: vec![e.to_diagnostic()],
            },
            text,
            files: sources,
        };
    }
    // Two keepalived.conf files or more are the directors of a pair: each is read
    // into its own director; scripts and dumps go with the first.
    let keepalived: Vec<usize> = sources
        .iter()
        .enumerate()
        .filter(|(_, f)| f.format == Format::Keepalived)
        .map(|(i, _)| i)
        .collect();
    let pair = keepalived.len() >= 2;
    let fresh = || import::builder::Builder::with_names(names.clone());
    let mut b = fresh();
    let mut others: Vec<import::builder::Builder> = Vec::new();
    for (i, (f, (_, body))) in sources.iter().zip(files).enumerate() {
        let target = if pair && keepalived[1..].contains(&i) {
            others.push(fresh());
            others.last_mut().expect("just pushed")
        } else {
            &mut b
        };
        #[cfg(not(feature = "importers"))]
        let _ = (target, body, f);
        #[cfg(feature = "importers")]
        match f.format {
            Format::Script => import::script::read(target, body, f.start),
            Format::IpvsadmSave => import::ipvsadm_save::read(target, body, f.start),
            Format::Keepalived => import::keepalived::read(target, body, f.start),
            Format::Toml | Format::Json => {}
        }
    }
    let finished = b.finish().and_then(|(mut topology, mut diagnostics)| {
        for (n, other) in others.into_iter().enumerate() {
            let (t2, d2) = other.finish()?;
            // Its real servers are the first file's: what that file alone had to assume of them is moot.
            diagnostics.extend(d2.into_iter().filter(|d| {
                !(d.code == crate::codes::code::IMPORT_ASSUMED_VALUE
                    && (d.message.contains("real servers") || d.message.contains("director's own address")))
            }));
            if let Some(note) = join_director(&mut topology, t2, n + 2) {
                diagnostics.push(note);
            }
        }
        Ok((topology, diagnostics))
    });
    let analysis = match finished {
        Ok((topology, mut diagnostics)) => {
            diagnostics.extend(lint::lint(&topology, &text));
            settle(&mut diagnostics);
            Analysis {
                format: first,
                topology: Some(topology),
                diagnostics,
            }
        }
        Err(e) => Analysis {
            format: first,
            topology: None,
            diagnostics: vec![e.to_diagnostic()],
        },
    };
    SetupAnalysis {
        analysis,
        text,
        files: sources,
    }
}
