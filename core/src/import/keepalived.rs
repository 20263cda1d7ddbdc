//! Reads keepalived.conf as keepalived's checker reads it, into what it
//! installs in IPVS once every real server passes its checks:
//!
//! - the grammar of keepalived.conf(5): `!` and `#` comments (not inside a
//!   quoted string), `"…"` as one word, a trailing `\` that continues the
//!   line, `{`/`}` attached to words;
//! - `virtual_server IP [PORT]`, `virtual_server fwmark N` and
//!   `virtual_server group NAME`, whose `virtual_server_group` expands to one
//!   service per member (`ADDR PORT`, `ADDR-END PORT`, `ADDR/LEN PORT`,
//!   `fwmark N [inet|inet6]`);
//! - keepalived's defaults, which differ from ipvsadm's: NAT when `lb_kind`
//!   is missing, wlc, UDP when `protocol` is missing, 360 s for a bare
//!   `persistence_timeout` and for a service on every port, the real server's
//!   port from the service in DR and TUN.
//!
//! What only acts when checks fail (`sorry_server`, `quorum`, `alpha`,
//! `inhibit_on_failure`, …) or runs outside IPVS (scripts, `include`d
//! files) is not modelled, and each is said with its span (DR100).

use super::builder::Builder;
use crate::diagnostic::{Diagnostic, Severity};
use crate::model::*;
use crate::names::{HealthCheck, HttpStatus, NameError, UrlDigest, UrlPath, VrrpAuth, VrrpInstance};
use crate::source::{At, Span};
use crate::LoadError;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The keywords this importer knows, block by block: those it reads and
/// those it accepts and skips (they act outside IPVS or only when checks
/// fail). The editor's completion offers them at the cursor, so it never
/// suggests a word the importer would call unknown (DR100).
pub mod keywords {
    /// The top level of the file.
    pub const TOP_LEVEL: &[&str] = &["global_defs", "vrrp_instance", "virtual_server", "include"];
    /// Top-level blocks that configure keepalived beyond IPVS, skipped.
    pub const TOP_LEVEL_SKIPPED: &[&str] = &[
        "vrrp_sync_group",
        "vrrp_script",
        "virtual_server_group",
        "static_ipaddress",
        "static_routes",
        "static_rules",
        "vrrp_track_process",
        "vrrp_track_file",
        "track_file",
        "garp_group",
        "bfd_instance",
    ];
    /// `global_defs { … }` (anything else there is skipped).
    pub const GLOBAL_DEFS: &[&str] = &["router_id", "lvs_sync_daemon", "lvs_sync_daemon_interface", "include"];
    /// `vrrp_instance NAME { … }` (anything else there is skipped).
    pub const VRRP_INSTANCE: &[&str] = &[
        "state",
        "interface",
        "virtual_router_id",
        "priority",
        "advert_int",
        "version",
        "nopreempt",
        "authentication",
        "virtual_ipaddress",
        "virtual_ipaddress_excluded",
        "lvs_sync_daemon_interface",
        "include",
    ];
    /// `virtual_server … { … }`: read, or said not to be modelled.
    pub const VIRTUAL_SERVER: &[&str] = &[
        "lb_algo",
        "lvs_sched",
        "lb_kind",
        "lvs_method",
        "protocol",
        "persistence_timeout",
        "persistence_granularity",
        "ip_family",
        "ops",
        "weight",
        "sh-port",
        "sh-fallback",
        "mh-port",
        "mh-fallback",
        "real_server",
        "sorry_server",
        "sorry_server_inhibit",
        "sorry_server_lvs_method",
        "quorum",
        "hysteresis",
        "quorum_up",
        "quorum_down",
        "alpha",
        "omega",
        "inhibit_on_failure",
        "persistence_engine",
        "include",
    ];
    /// Checker timing and the like in a `virtual_server`, skipped.
    pub const VIRTUAL_SERVER_SKIPPED: &[&str] = &[
        "delay_loop",
        "retry",
        "delay_before_retry",
        "warmup",
        "connect_timeout",
        "ha_suspend",
        "smtp_alert",
        "virtualhost",
        "hashed",
        "snmp_name",
    ];
    /// `real_server ADDR PORT { … }`, besides the checkers ([`crate::names::HEALTH_CHECKS`]).
    pub const REAL_SERVER: &[&str] = &[
        "weight",
        "lvs_method",
        "uthreshold",
        "lthreshold",
        "inhibit_on_failure",
        "alpha",
        "notify_up",
        "notify_down",
        "include",
    ];
    /// Checker timing in a `real_server`, skipped.
    pub const REAL_SERVER_SKIPPED: &[&str] = &[
        "delay_loop",
        "retry",
        "delay_before_retry",
        "warmup",
        "connect_timeout",
        "smtp_alert",
        "virtualhost",
        "snmp_name",
    ];
    /// Inside a checker (`TCP_CHECK { … }`, `HTTP_GET { … }`).
    pub const CHECKER: &[&str] = &[
        "connect_port",
        "connect_ip",
        "bindto",
        "bind_port",
        "connect_timeout",
        "retry",
        "delay_before_retry",
        "url",
        "misc_path",
        "virtualhost",
    ];
    /// Inside an HTTP_GET or SSL_GET `url { … }`.
    pub const URL: &[&str] = &["path", "status_code", "digest"];
}

#[derive(Debug, Clone)]
struct Token {
    text: String,
    span: Span,
    /// Written in quotes: never a brace, never a line end.
    quoted: bool,
}

/// A statement: words, and an optional `{ … }` body.
#[derive(Debug, Clone)]
struct Stmt {
    words: Vec<Token>,
    body: Option<Vec<Stmt>>,
    span: Span,
}

/// The words of one logical line, as keepalived's `decomment` and
/// `alloc_strvec` split it.
struct Line<'a> {
    tokens: &'a mut Vec<Token>,
    /// The word being read: where it starts, its text, where it ends so far.
    word: Option<(usize, String, usize)>,
}

impl Line<'_> {
    fn end_word(&mut self) {
        if let Some((start, text, end)) = self.word.take() {
            self.tokens.push(Token {
                text,
                span: Span::new(start, end),
                quoted: false,
            });
        }
    }
    /// Adds `c`, written in the text from `at` to `end`.
    fn push_char(&mut self, at: usize, end: usize, c: char) {
        let w = self.word.get_or_insert_with(|| (at, String::new(), end));
        w.1.push(c);
        w.2 = end;
    }
}

fn tokens(text: &str, base: usize, notes: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut out = Vec::new();
    let mut offset = base;
    // A quoted string goes on over a continued line.
    let mut quote: Option<(usize, String)> = None;
    for raw in text.split_inclusive('\n') {
        let content = raw.trim_end_matches(['\n', '\r']);
        let mut line = Line {
            tokens: &mut out,
            word: None,
        };
        let mut continued = false;
        let mut chars = content.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let at = offset + i;
            if let Some((start, mut s)) = quote.take() {
                // A continued line joins the string with one space, as
                // keepalived drops the indentation of each line.
                if s.ends_with('\n') {
                    if c.is_whitespace() {
                        quote = Some((start, s));
                        continue;
                    }
                    s.pop();
                    s.push(' ');
                }
                if c == '\\' && chars.peek().is_none() {
                    s.truncate(s.trim_end().len());
                    s.push('\n');
                    quote = Some((start, s));
                    continued = true;
                    break;
                }
                if c == '"' {
                    line.tokens.push(Token {
                        text: s,
                        span: Span::new(start, at + 1),
                        quoted: true,
                    });
                } else {
                    s.push(c);
                    quote = Some((start, s));
                }
                continue;
            }
            match c {
                '"' => {
                    line.end_word();
                    quote = Some((at, String::new()));
                }
                '#' | '!' => break,
                '\\' => match chars.peek().copied() {
                    None => {
                        continued = true;
                        break;
                    }
                    // `\#` and `\!` are the characters themselves, not comments.
                    Some((j, n @ ('#' | '!'))) => {
                        chars.next();
                        line.push_char(at, offset + j + 1, n);
                    }
                    Some((j, n)) => {
                        chars.next();
                        line.push_char(at, offset + j, '\\');
                        line.push_char(at, offset + j + n.len_utf8(), n);
                    }
                },
                '{' | '}' => {
                    line.end_word();
                    line.tokens.push(Token {
                        text: c.to_string(),
                        span: Span::new(at, at + 1),
                        quoted: false,
                    });
                }
                c if c.is_whitespace() => line.end_word(),
                c => line.push_char(at, at + c.len_utf8(), c),
            }
        }
        let end = offset + content.len();
        if let Some((start, s)) = quote.take_if(|_| !continued) {
            notes.push(
                Diagnostic::new(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    Severity::Warning,
                    "a quoted string is not closed on its line",
                    Span::new(start, end),
                )
                .help("add the closing `\"`"),
            );
            line.tokens.push(Token {
                text: s,
                span: Span::new(start, end),
                quoted: true,
            });
        }
        line.end_word();
        if !continued {
            out.push(Token {
                text: "\n".into(),
                span: Span::new(end, end),
                quoted: false,
            });
        }
        offset += raw.len();
    }
    if let Some((start, mut s)) = quote {
        notes.push(
            Diagnostic::new(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                Severity::Warning,
                "a quoted string is not closed at the end of the file",
                Span::new(start, offset),
            )
            .help("add the closing `\"`"),
        );
        s.pop();
        out.push(Token {
            text: s,
            span: Span::new(start, offset),
            quoted: true,
        });
    }
    out
}

/// Ends the statement being collected, if any.
fn end_statement(words: &mut Vec<Token>, out: &mut Vec<Stmt>) {
    if let (Some(first), Some(last)) = (words.first(), words.last()) {
        let span = Span::new(first.span.start, last.span.end);
        out.push(Stmt {
            words: std::mem::take(words),
            body: None,
            span,
        });
    }
}

/// Reads the statements of one block. A `{` past [`crate::MAX_NESTING`]
/// levels sets `too_deep` to where it stands and ends the reading.
fn parse_block(toks: &[Token], i: &mut usize, depth: usize, notes: &mut Vec<Diagnostic>, too_deep: &mut Option<Span>) -> Vec<Stmt> {
    let mut out = Vec::new();
    let mut words: Vec<Token> = Vec::new();
    while *i < toks.len() {
        let t = &toks[*i];
        *i += 1;
        if t.quoted {
            words.push(t.clone());
            continue;
        }
        match t.text.as_str() {
            "\n" => {
                end_statement(&mut words, &mut out);
            }
            "{" => {
                if depth + 1 > crate::MAX_NESTING {
                    *too_deep = Some(t.span);
                    *i = toks.len();
                    return out;
                }
                let start = words.first().map(|w| w.span.start).unwrap_or(t.span.start);
                let body = parse_block(toks, i, depth + 1, notes, too_deep);
                let end = toks.get(i.saturating_sub(1)).map(|t| t.span.end).unwrap_or(t.span.end);
                out.push(Stmt {
                    words: std::mem::take(&mut words),
                    body: Some(body),
                    span: Span::new(start, end),
                });
            }
            "}" => {
                if depth == 0 {
                    notes.push(
                        Diagnostic::new(
                            crate::codes::code::IMPORT_MALFORMED_COMMAND,
                            Severity::Warning,
                            "`}` without a matching `{`",
                            t.span,
                        )
                        .help("remove it, or add the block it closes"),
                    );
                    continue;
                }
                end_statement(&mut words, &mut out);
                return out;
            }
            _ => words.push(t.clone()),
        }
    }
    if depth > 0 && too_deep.is_none() {
        let at = toks.last().map(|t| t.span).unwrap_or(Span::NONE);
        notes.push(
            Diagnostic::new(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                Severity::Warning,
                "a `{` block is never closed",
                at,
            )
            .help("add the missing `}`"),
        );
    }
    out
}

fn word(s: &Stmt, n: usize) -> Option<&Token> {
    s.words.get(n)
}

fn keyword(s: &Stmt) -> &str {
    s.words.first().map(|w| w.text.as_str()).unwrap_or("")
}

/// The words after the keyword, as written.
fn rest(s: &Stmt) -> String {
    s.words.iter().skip(1).map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")
}

fn number<T: std::str::FromStr>(b: &mut Builder, s: &Stmt) -> Option<At<T>> {
    let Some(w) = word(s, 1) else {
        b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            format!("`{}` expects a number", keyword(s)),
            s.span,
            "",
        );
        return None;
    };
    match w.text.parse::<T>() {
        Ok(v) => Some(At::new(v, w.span)),
        Err(_) => {
            b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                format!("`{}` expects a number, not `{}`", keyword(s), w.text),
                w.span,
                "",
            );
            None
        }
    }
}

/// `lb_kind`/`lvs_method`: keepalived compares the word exactly, capitals only.
fn forward_of(b: &mut Builder, s: &Stmt) -> Option<At<Forward>> {
    let w = word(s, 1)?;
    match w.text.as_str() {
        "DR" => Some(At::new(Forward::Route, w.span)),
        "TUN" => Some(At::new(Forward::Tunnel, w.span)),
        "NAT" => Some(At::new(Forward::Masq, w.span)),
        other => {
            b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                format!(
                    "`{} {other}`: keepalived knows DR, NAT and TUN, in capitals, and ignores this line",
                    keyword(s)
                ),
                w.span,
                "write DR, NAT or TUN",
            );
            None
        }
    }
}

/// Says that a line is read but not modelled, and why.
fn not_modelled(b: &mut Builder, s: &Stmt, why: &str) {
    let what = match rest(s) {
        r if r.is_empty() || s.body.is_some() => keyword(s).to_string(),
        r => format!("{} {r}", keyword(s)),
    };
    b.note(
        crate::codes::code::IMPORT_SKIPPED_LINE,
        format!("`{what}` is not modelled: {why}"),
        s.span,
        "",
    );
}

/// `include FILE` names a file lvsdr cannot open from here.
fn include(b: &mut Builder, s: &Stmt) {
    let file = rest(s);
    b.note(
        crate::codes::code::IMPORT_SKIPPED_LINE,
        format!("`include {file}` is not followed: lvsdr opens no file named inside another, so what {file} holds is not in this topology"),
        s.span,
        "give the included files to lvsdr along with this one; they are read as one setup",
    );
}

pub fn import(text: &str) -> Result<(Topology, Vec<Diagnostic>), LoadError> {
    let mut b = Builder::default();
    read(&mut b, text, 0);
    b.finish()
}

/// Reads one keepalived.conf into `b`, its spans counted from `base` (the
/// file's place among several read as one setup).
pub fn read(b: &mut Builder, text: &str, base: usize) {
    if let Some((found, span)) = super::template::placeholder(text, base) {
        b.refused.get_or_insert(super::template::refusal(&found, span));
        return;
    }
    let toks = tokens(text, base, &mut b.diagnostics);
    let mut i = 0;
    let mut too_deep = None;
    let stmts = parse_block(&toks, &mut i, 0, &mut b.diagnostics, &mut too_deep);
    if let Some(at) = too_deep {
        b.refused.get_or_insert(LoadError::limit(
            format!("blocks nest more than {} levels deep (MAX_NESTING)", crate::MAX_NESTING),
            at,
            "keepalived.conf nests a few levels (virtual_server, real_server, checker); flatten the blocks",
        ));
        return;
    }
    // keepalived links groups to virtual servers after reading the whole file.
    let mut groups: HashMap<&str, Vec<Member>> = HashMap::new();
    // And it settles each VRRP instance's version after reading the whole file:
    // `vrrp_version` in global_defs is the default, wherever global_defs stands.
    let mut vrrp_version = None;
    for s in &stmts {
        if let ("global_defs", Some(body)) = (keyword(s), &s.body) {
            if let Some(v) = body.iter().find(|x| keyword(x) == "vrrp_version") {
                vrrp_version = version(b, v);
            }
        }
        if let ("virtual_server_group", Some(body)) = (keyword(s), &s.body) {
            match word(s, 1) {
                Some(name) => {
                    let members = group_members(b, body);
                    groups.insert(name.text.as_str(), members);
                }
                None => b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    "virtual_server_group needs a name",
                    s.span,
                    "for example: virtual_server_group WEB {",
                ),
            }
        }
    }
    let mut vrrp_addresses: Vec<Vip> = Vec::new();
    for s in &stmts {
        match (keyword(s), &s.body) {
            ("virtual_server", Some(body)) => virtual_server(b, s, body, &groups),
            ("vrrp_instance", Some(body)) => vrrp_instance(b, s, body, vrrp_version, &mut vrrp_addresses),
            ("global_defs", Some(body)) => global_defs(b, body),
            ("include", None) => include(b, s),
            (k, _) if keywords::TOP_LEVEL_SKIPPED.contains(&k) => {}
            (k, _) => b.note(
                crate::codes::code::IMPORT_SKIPPED_LINE,
                format!("`{k}` is not something lvsdr imports; skipped"),
                s.span,
                "",
            ),
        }
    }
    // A VRRP address is a VIP only when a virtual_server serves it; it then
    // tells the prefix. Other VRRP addresses (management) are not services.
    for v in vrrp_addresses {
        if b.services
            .iter()
            .any(|s| s.vip.as_ref().is_some_and(|a| a.value == v.address.value))
        {
            b.add_vip(v.address, v.prefix);
        } else {
            let address = v.address.value;
            let (why, help) = if b.services.iter().any(|s| s.vip.is_none()) {
                (
                    "a fwmark service may serve it, which only its marking rules can tell",
                    "give lvsdr the iptables or nft rules that mark packets for the fwmark service along with this file",
                )
            } else {
                ("read as the director's own (management or gateway), not as a VIP", "")
            };
            b.note(
                crate::codes::code::IMPORT_SKIPPED_LINE,
                format!("VRRP address {address} is not the address of any virtual_server here: {why}"),
                v.address.span,
                help,
            );
        }
    }
}

/// `global_defs`: the IPVS sync daemon (`lvs_sync_daemon IFACE INSTANCE [id N]`).
fn global_defs(b: &mut Builder, body: &[Stmt]) {
    for s in body {
        match keyword(s) {
            "lvs_sync_daemon" => sync_daemon(b, s, 1),
            // The director's name, when it is a valid host name.
            "router_id" => {
                if let Some(name) = word(s, 1).and_then(|w| crate::names::HostName::parse(&w.text).ok()) {
                    b.director_name = Some(name);
                }
            }
            "lvs_sync_daemon_interface" => sync_daemon(b, s, 1),
            "include" => include(b, s),
            _ => {}
        }
    }
}

/// `lvs_sync_daemon IFACE [INSTANCE] [id N] …` or `lvs_sync_daemon_interface IFACE`.
fn sync_daemon(b: &mut Builder, s: &Stmt, at: usize) {
    let Some(w) = word(s, at) else {
        return b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            "the sync daemon needs an interface",
            s.span,
            "for example: lvs_sync_daemon eth0 VI_1",
        );
    };
    let Some(interface) = b.interface(&w.text, w.span) else { return };
    let id = s
        .words
        .windows(2)
        .find(|p| p[0].text == "id")
        .and_then(|p| p[1].text.parse::<u8>().ok().map(|n| At::new(n, p[1].span)))
        .unwrap_or_else(|| At::implied(0));
    b.sync = Some(SyncDaemon {
        interface,
        id,
        span: s.span,
    });
}

/// A VRRP version (`vrrp_version N`, `version N`): 2 or 3.
fn version(b: &mut Builder, s: &Stmt) -> Option<u8> {
    let w = word(s, 1)?;
    match w.text.as_str() {
        "2" => Some(2),
        "3" => Some(3),
        _ => {
            b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                format!("VRRP version `{}` is not 2 or 3", w.text),
                w.span,
                "",
            );
            None
        }
    }
}

/// The advert interval keepalived runs with: VRRPv2 counts whole seconds
/// (it rounds any other value to the nearest, at least 1 s, and says so),
/// VRRPv3 centiseconds up to 40.95 s.
fn settled_advert(b: &mut Builder, asked: At<u32>, version: u8) -> At<u32> {
    let ms = asked.value;
    let (runs, why) = match version {
        2 if !ms.is_multiple_of(1000) => (
            ((ms + 500) / 1000 * 1000).max(1000),
            "VRRPv2 advertises in whole seconds; for sub-second adverts add `version 3` to the vrrp_instance (or `vrrp_version 3` to global_defs) on both directors",
        ),
        3 if ms > 40_950 => (40_950, "VRRPv3 advertises at most every 40.95 s"),
        3 if !ms.is_multiple_of(10) => ((ms + 5) / 10 * 10, "VRRPv3 counts centiseconds"),
        _ => return asked,
    };
    b.note(
        crate::codes::code::IMPORT_MALFORMED_COMMAND,
        format!(
            "advert_int {} s is not what keepalived runs: it uses {} s",
            ms as f64 / 1000.0,
            runs as f64 / 1000.0
        ),
        asked.span,
        why,
    );
    At::new(runs, asked.span)
}

fn vrrp_instance(b: &mut Builder, head: &Stmt, body: &[Stmt], default_version: Option<u8>, addresses: &mut Vec<Vip>) {
    // The name goes back into keepalived.conf (`vrrp_instance NAME {`,
    // `lvs_sync_daemon IFACE NAME`): one plain word, or the file is refused.
    let name = match word(head, 1) {
        Some(w) => match VrrpInstance::parse(&w.text) {
            Ok(n) => At::new(n, w.span),
            Err(e) => return b.refuse(e, w.span),
        },
        None => At::new(VrrpInstance::known("VI_1"), head.span),
    };
    let mut router_id: Option<At<u8>> = None;
    let mut priority = At::implied(100u8);
    let mut master = At::implied(false);
    let mut advert_ms = At::implied(1000u32);
    let mut instance_version = None;
    let mut nopreempt = None;
    let mut auth = None;
    let mut carried: Vec<At<IpAddr>> = Vec::new();
    for s in body {
        match (keyword(s), &s.body) {
            ("state", None) => {
                if let Some(w) = word(s, 1) {
                    master = At::new(w.text.eq_ignore_ascii_case("MASTER"), w.span);
                }
            }
            ("virtual_router_id", None) => router_id = number::<u8>(b, s),
            ("priority", None) => priority = number::<u8>(b, s).unwrap_or(priority),
            ("advert_int", None) => {
                if let Some(w) = word(s, 1) {
                    match w.text.parse::<f64>() {
                        Ok(secs) if secs > 0.0 && secs <= 255.0 => advert_ms = At::new((secs * 1000.0).round() as u32, w.span),
                        _ => b.note(
                            crate::codes::code::IMPORT_MALFORMED_COMMAND,
                            format!("advert_int `{}` is not a number of seconds", w.text),
                            w.span,
                            "",
                        ),
                    }
                }
            }
            ("version", None) => instance_version = version(b, s),
            ("nopreempt", None) => nopreempt = Some(s.span),
            ("authentication", Some(a)) => {
                let kind = a.iter().find(|x| keyword(x) == "auth_type").and_then(|x| word(x, 1));
                auth = match kind {
                    None => Some(At::new(VrrpAuth::known("PASS"), s.span)),
                    Some(w) => match VrrpAuth::parse(&w.text) {
                        Ok(k) => Some(At::new(k, w.span)),
                        Err(e) => return b.refuse(e, w.span),
                    },
                };
            }
            ("lvs_sync_daemon_interface", None) => sync_daemon(b, s, 1),
            ("interface", None) => {
                if let Some(w) = word(s, 1) {
                    b.director_interface = b.interface(&w.text, w.span);
                }
            }
            ("virtual_ipaddress" | "virtual_ipaddress_excluded", Some(addrs)) => {
                for first in addrs.iter().filter_map(|a| word(a, 0)) {
                    let (addr, prefix) = first
                        .text
                        .split_once('/')
                        .map(|(a, p)| (a, p.parse::<u8>().ok()))
                        .unwrap_or((first.text.as_str(), None));
                    if let Ok(a) = addr.parse::<IpAddr>() {
                        carried.push(At::new(a, first.span));
                        let host = Family::of(&a).host_prefix();
                        if let Some(p) = prefix.or(Some(host)).filter(|p| *p <= host) {
                            addresses.push(Vip {
                                address: At::new(a, first.span),
                                prefix: At::new(p, first.span),
                                // keepalived adds its IPv6 VIPs with IFA_F_NODAD.
                                dad: None,
                                preferred: None,
                            });
                        }
                    }
                }
            }
            ("include", None) => include(b, s),
            _ => {}
        }
    }
    let Some(router_id) = router_id else {
        return b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            format!("vrrp_instance {} has no virtual_router_id; keepalived refuses it", name.value),
            head.span,
            "add `virtual_router_id 51` (1 to 255, the same on both directors of the pair)",
        );
    };
    let advert_ms = settled_advert(b, advert_ms, instance_version.or(default_version).unwrap_or(2));
    if let Some(first) = &b.vrrp {
        return b.note(
            crate::codes::code::IMPORT_SKIPPED_LINE,
            format!(
                "vrrp_instance {} is not modelled: lvsdr keeps the first instance, {}",
                name.value, first.instance.value
            ),
            head.span,
            "",
        );
    }
    b.vrrp = Some(Vrrp {
        instance: name,
        router_id,
        priority,
        master,
        advert_ms,
        nopreempt,
        auth,
        vips: carried,
        span: head.span,
    });
}

/// What a virtual server (or one member of its group) is to IPVS.
#[derive(Debug, Clone)]
enum Member {
    Address { address: At<IpAddr>, port: At<u16> },
    Mark { mark: At<u32>, family: Option<Family> },
}

/// keepalived expands a range to one IPVS service per address; more than
/// this many is read as a mistake.
const MAX_RANGE: u128 = 256;

fn group_members(b: &mut Builder, body: &[Stmt]) -> Vec<Member> {
    let mut out = Vec::new();
    for s in body {
        let Some(first) = word(s, 0) else { continue };
        if first.text == "fwmark" {
            let Some(m) = number::<u32>(b, s) else { continue };
            let family = match word(s, 2).map(|w| (w, w.text.as_str())) {
                None => None,
                Some((_, "inet")) => Some(Family::V4),
                Some((_, "inet6")) => Some(Family::V6),
                Some((w, other)) => {
                    b.note(
                        crate::codes::code::IMPORT_MALFORMED_COMMAND,
                        format!("fwmark family `{other}` is not inet or inet6; keepalived skips this member"),
                        w.span,
                        "",
                    );
                    continue;
                }
            };
            out.push(Member::Mark { mark: m, family });
            continue;
        }
        if first.text == "include" {
            include(b, s);
            continue;
        }
        let port = match word(s, 1) {
            None => At::new(0, first.span),
            Some(p) => match p.text.parse::<u16>() {
                Ok(v) => At::new(v, p.span),
                Err(_) => {
                    b.note(
                        crate::codes::code::IMPORT_MALFORMED_COMMAND,
                        format!("`{}` is not a port; keepalived skips this member", p.text),
                        p.span,
                        "",
                    );
                    continue;
                }
            },
        };
        match addresses(&first.text) {
            Ok(list) => out.extend(list.into_iter().map(|a| Member::Address {
                address: At::new(a, first.span),
                port: port.clone(),
            })),
            Err(why) => b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                format!("virtual_server_group member `{}`: {why}; keepalived skips it", first.text),
                first.span,
                "write ADDRESS PORT, ADDRESS-LAST PORT (10.0.0.1-5 80), ADDRESS/PREFIX PORT or fwmark N",
            ),
        }
    }
    out
}

/// The addresses of a group member: `A`, `A-N` (the last byte of IPv4, the
/// last 16 bits of IPv6 in hex), `A-B`, or `A/LEN`.
fn addresses(text: &str) -> Result<Vec<IpAddr>, String> {
    let (start, end) = if let Some((a, len)) = text.split_once('/') {
        let start: IpAddr = a.parse().map_err(|_| format!("`{a}` is not an address"))?;
        let bits = u32::from(Family::of(&start).host_prefix());
        let len: u32 = len
            .parse()
            .ok()
            .filter(|l| (1..=bits).contains(l))
            .ok_or_else(|| format!("`/{len}` is not a prefix length"))?;
        let host = if len == bits { 0 } else { (1u128 << (bits - len)) - 1 };
        let first = as_number(start);
        if first & host != 0 {
            return Err("the address has host bits set".into());
        }
        (first, first | host)
    } else if let Some((a, e)) = text.split_once('-') {
        let start: IpAddr = a.parse().map_err(|_| format!("`{a}` is not an address"))?;
        let first = as_number(start);
        let last = if e.contains(['.', ':']) {
            let end: IpAddr = e.parse().map_err(|_| format!("`{e}` is not an address"))?;
            if Family::of(&end) != Family::of(&start) {
                return Err("the range mixes IPv4 and IPv6".into());
            }
            as_number(end)
        } else {
            let (n, low) = match start {
                IpAddr::V4(_) => (e.parse::<u128>().ok().filter(|n| *n <= 0xff), 0xffu128),
                IpAddr::V6(_) => (u128::from_str_radix(e, 16).ok().filter(|n| *n <= 0xffff), 0xffffu128),
            };
            let n = n.ok_or_else(|| format!("`{e}` is not the last part of an address"))?;
            (first & !low) | n
        };
        if last <= first {
            return Err("the range ends before it starts".into());
        }
        (first, last)
    } else {
        let a: IpAddr = text.parse().map_err(|_| format!("`{text}` is not an address"))?;
        return Ok(vec![a]);
    };
    if end - start >= MAX_RANGE {
        return Err(format!(
            "{} addresses, more than the {MAX_RANGE} lvsdr reads from one member",
            end - start + 1
        ));
    }
    let v4 = text.contains('.') && !text.contains(':');
    Ok((start..=end)
        .map(|n| {
            if v4 {
                IpAddr::V4(Ipv4Addr::from(n as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(n))
            }
        })
        .collect())
}

fn as_number(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// A `real_server` as written, before it is placed in each service.
struct Real<'a> {
    stmt: &'a Stmt,
    address: At<IpAddr>,
    port: Option<At<u16>>,
    forward: Option<At<Forward>>,
    weight: Option<At<u32>>,
    upper_threshold: Option<At<u32>>,
    lower_threshold: Option<At<u32>>,
    health_check: Option<At<HealthCheck>>,
    urls: Vec<HealthUrl>,
}

/// Settings of a `virtual_server` block that IPVS holds.
#[derive(Default)]
struct Settings {
    protocol: Option<At<Protocol>>,
    scheduler: Option<At<Scheduler>>,
    forward: Option<At<Forward>>,
    flags: Vec<At<SchedFlag>>,
    persistence: Option<At<u32>>,
    granularity: Option<At<String>>,
    family: Option<Family>,
    one_packet: Option<Span>,
    weight: Option<At<u32>>,
}

/// The members a `virtual_server` line names, or why it names none.
fn members(b: &mut Builder, s: &Stmt, groups: &HashMap<&str, Vec<Member>>) -> Option<Vec<Member>> {
    match (word(s, 1), word(s, 2)) {
        (Some(g), Some(name)) if g.text == "group" => match groups.get(name.text.as_str()) {
            Some(m) if !m.is_empty() => Some(m.clone()),
            Some(_) => {
                b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    format!(
                        "virtual_server_group {} has no member keepalived can read; it serves nothing",
                        name.text
                    ),
                    name.span,
                    "",
                );
                None
            }
            None => {
                b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    format!("virtual_server_group {} is not defined in this file", name.text),
                    name.span,
                    "define it with `virtual_server_group NAME { ADDRESS PORT }`, or give lvsdr the file it is in along with this one",
                );
                None
            }
        },
        (Some(f), Some(m)) if f.text == "fwmark" => match m.text.parse::<u32>() {
            Ok(mark) => Some(vec![Member::Mark {
                mark: At::new(mark, m.span),
                family: None,
            }]),
            Err(_) => {
                b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    format!("fwmark `{}` is not a number", m.text),
                    m.span,
                    "",
                );
                None
            }
        },
        (Some(a), p) if a.text.parse::<IpAddr>().is_ok() => {
            let port = match p.map(|p| (p, p.text.parse::<u16>())) {
                None => At::new(0, a.span),
                Some((p, Ok(v))) => At::new(v, p.span),
                Some((p, Err(_))) => {
                    b.note(
                        crate::codes::code::IMPORT_MALFORMED_COMMAND,
                        format!("`{}` is not a port", p.text),
                        p.span,
                        "",
                    );
                    return None;
                }
            };
            Some(vec![Member::Address {
                address: At::new(a.text.parse().ok()?, a.span),
                port,
            }])
        }
        _ => {
            b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                "virtual_server expects `ADDRESS [PORT]`, `fwmark N` or `group NAME`",
                s.span,
                "for example: virtual_server 192.168.1.192 80 {",
            );
            None
        }
    }
}

fn settings<'a>(b: &mut Builder, body: &'a [Stmt], reals: &mut Vec<Real<'a>>) -> Settings {
    let mut v = Settings::default();
    for st in body {
        match (keyword(st), &st.body) {
            ("lb_algo" | "lvs_sched", None) => match word(st, 1).map(|w| (w, Scheduler::parse(&w.text))) {
                Some((w, Some(sc))) => v.scheduler = Some(At::new(sc, w.span)),
                Some((w, None)) => b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    format!("`{}` is not a scheduler; keepalived ignores the line", w.text),
                    w.span,
                    "use rr, wrr, lc, wlc, sed, nq, sh, dh, fo, ovf, mh, lblc or lblcr",
                ),
                None => {}
            },
            ("lb_kind" | "lvs_method", None) => v.forward = forward_of(b, st).or(v.forward.take()),
            ("protocol", None) => match word(st, 1).map(|w| (w, Protocol::parse(&w.text.to_ascii_lowercase()))) {
                Some((w, Some(p))) => v.protocol = Some(At::new(p, w.span)),
                Some((w, None)) => b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    format!("protocol `{}` is not TCP, UDP or SCTP; keepalived ignores the line", w.text),
                    w.span,
                    "",
                ),
                None => {}
            },
            // `persistence_timeout 0` is keepalived's way to say "not persistent".
            ("persistence_timeout", None) => {
                v.persistence = match word(st, 1) {
                    None => Some(At::new(360, st.span)),
                    Some(_) => number::<u32>(b, st).filter(|t| t.value > 0),
                }
            }
            ("persistence_granularity", None) => v.granularity = word(st, 1).map(|w| At::new(w.text.clone(), w.span)),
            ("ip_family", None) => match word(st, 1).map(|w| w.text.as_str()) {
                Some("inet") => v.family = Some(Family::V4),
                Some("inet6") => v.family = Some(Family::V6),
                _ => b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    "ip_family takes inet or inet6",
                    st.span,
                    "",
                ),
            },
            ("ops", None) => v.one_packet = Some(st.span),
            ("weight", None) => v.weight = number::<u32>(b, st),
            (k @ ("sh-port" | "sh-fallback" | "mh-port" | "mh-fallback"), None) => {
                if let Some(f) = SchedFlag::parse(k) {
                    v.flags.push(At::new(f, st.span));
                }
            }
            ("real_server", Some(rb)) => {
                if let Some(r) = real_server(b, st, rb) {
                    reals.push(r);
                }
            }
            ("sorry_server", _) => not_modelled(
                b,
                st,
                "keepalived adds the sorry server only when every real server is down; lvsdr models the table with them up",
            ),
            ("sorry_server_inhibit" | "sorry_server_lvs_method", _) => {}
            ("quorum" | "hysteresis", _) => not_modelled(
                b,
                st,
                "it decides when keepalived counts the pool as down, which only matters when checks fail",
            ),
            ("quorum_up" | "quorum_down", _) => {
                not_modelled(b, st, "a script keepalived runs when the quorum is gained or lost, outside IPVS")
            }
            ("alpha", _) => not_modelled(
                b,
                st,
                "keepalived adds each real server only after its first good check; lvsdr models the table once all checks pass",
            ),
            ("omega", _) => not_modelled(
                b,
                st,
                "it clears the pool when the quorum is lost, which only happens when checks fail",
            ),
            ("inhibit_on_failure", _) => not_modelled(
                b,
                st,
                "a failing real server stays in IPVS with weight 0 instead of being removed; lvsdr models the healthy table",
            ),
            ("persistence_engine", _) => not_modelled(b, st, "lvsdr does not model IPVS persistence engines"),
            ("include", None) => include(b, st),
            (k, _) if keywords::VIRTUAL_SERVER_SKIPPED.contains(&k) => {}
            (k, _) => b.note(
                crate::codes::code::IMPORT_SKIPPED_LINE,
                format!("`{k}` in a virtual_server is not a setting lvsdr knows; skipped"),
                st.span,
                "",
            ),
        }
    }
    v
}

fn real_server<'a>(b: &mut Builder, st: &'a Stmt, body: &'a [Stmt]) -> Option<Real<'a>> {
    let Some(a) = word(st, 1) else {
        b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            "real_server needs an address",
            st.span,
            "for example: real_server 192.168.1.213 80 {",
        );
        return None;
    };
    let Ok(address) = a.text.parse::<IpAddr>() else {
        b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            format!("real_server `{}` is not an IP address", a.text),
            a.span,
            "",
        );
        return None;
    };
    // keepalived reads port 0 as no port.
    let port = match word(st, 2).map(|p| (p, p.text.parse::<u16>())) {
        None => None,
        Some((_, Ok(0))) => None,
        Some((p, Ok(v))) => Some(At::new(v, p.span)),
        Some((p, Err(_))) => {
            b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                format!("`{}` is not a port; keepalived skips this real server", p.text),
                p.span,
                "",
            );
            return None;
        }
    };
    let mut r = Real {
        stmt: st,
        address: At::new(address, a.span),
        port,
        forward: None,
        weight: None,
        upper_threshold: None,
        lower_threshold: None,
        health_check: None,
        urls: Vec::new(),
    };
    for x in body {
        match keyword(x) {
            "weight" => r.weight = number::<u32>(b, x).or(r.weight.take()),
            "lvs_method" => r.forward = forward_of(b, x).or(r.forward.take()),
            "uthreshold" => r.upper_threshold = number::<u32>(b, x),
            "lthreshold" => r.lower_threshold = number::<u32>(b, x),
            "inhibit_on_failure" => not_modelled(
                b,
                x,
                "a failing real server stays in IPVS with weight 0 instead of being removed; lvsdr models the healthy table",
            ),
            "alpha" => not_modelled(
                b,
                x,
                "keepalived adds this real server only after its first good check; lvsdr models the table once all checks pass",
            ),
            "notify_up" | "notify_down" => not_modelled(b, x, "a script keepalived runs when the real server changes state, outside IPVS"),
            "include" => include(b, x),
            k if HEALTH_CHECKS.contains(&k) => {
                checker_details(b, x, r.port.as_ref().map(|p| p.value));
                // The real server's last checker is the one kept, with its own urls.
                r.urls = if matches!(k, "HTTP_GET" | "SSL_GET") {
                    urls(b, x)
                } else {
                    Vec::new()
                };
                r.health_check = HealthCheck::parse(k).ok().map(|h| At::new(h, x.span));
            }
            k if keywords::REAL_SERVER_SKIPPED.contains(&k) => {}
            k => b.note(
                crate::codes::code::IMPORT_SKIPPED_LINE,
                format!("`{k}` in a real_server is not a setting lvsdr knows; skipped"),
                x.span,
                "",
            ),
        }
    }
    Some(r)
}

/// What a checker does that lvsdr keeps only by the checker's name. An
/// HTTP_GET or SSL_GET `url` is read by [`urls`]. `port` is the real
/// server's own, which a `connect_port` may repeat.
fn checker_details(b: &mut Builder, check: &Stmt, port: Option<u16>) {
    let Some(body) = &check.body else { return };
    let web = matches!(keyword(check), "HTTP_GET" | "SSL_GET");
    let mut stack: Vec<&Stmt> = body.iter().collect();
    while let Some(s) = stack.pop() {
        match keyword(s) {
            "url" if web => {}
            "misc_path" => not_modelled(
                b,
                s,
                "MISC_CHECK runs this script on the director; lvsdr keeps the checker's name, not the script",
            ),
            "connect_port" if port.is_some() && word(s, 1).map(|w| w.text.parse::<u16>().ok()) == Some(port) => {}
            "connect_port" | "connect_ip" | "bindto" | "bind_port" | "virtualhost" => not_modelled(
                b,
                s,
                "the checker lvsdr writes connects from the director to the real server's own address and port",
            ),
            _ => stack.extend(s.body.iter().flatten()),
        }
    }
}

/// The `url` blocks of an HTTP_GET or SSL_GET check, kept as written:
/// `path`, `status_code` and `digest`. Whatever else a url says is a finding,
/// and a value that cannot be written back safely refuses the file (DR106),
/// as a VRRP word does.
fn urls(b: &mut Builder, check: &Stmt) -> Vec<HealthUrl> {
    fn value<T>(b: &mut Builder, x: &Stmt, parse: fn(&str) -> Result<T, NameError>) -> Option<At<T>> {
        let w = word(x, 1)?;
        match parse(&w.text) {
            Ok(v) => Some(At::new(v, w.span)),
            Err(e) => {
                b.refuse(e, w.span);
                None
            }
        }
    }
    let mut out = Vec::new();
    for u in check.body.iter().flatten().filter(|s| keyword(s) == "url") {
        let Some(body) = &u.body else {
            b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                "`url` takes a block; keepalived skips it",
                u.span,
                "for example: url { path /healthz status_code 200 }",
            );
            continue;
        };
        let (mut path, mut status_code, mut digest) = (None, None, None);
        for x in body {
            match keyword(x) {
                "path" => path = value(b, x, UrlPath::parse).or(path),
                "digest" => digest = value(b, x, UrlDigest::parse).or(digest),
                // One code; a list (`200 204`) or a range (`200-299`) is not kept.
                "status_code" if x.words.len() == 2 && !x.words[1].text.contains('-') => {
                    status_code = value(b, x, HttpStatus::parse).or(status_code)
                }
                "status_code" => not_modelled(
                    b,
                    x,
                    "lvsdr keeps one status code per url, not a list or a range; the url is written without it, so keepalived's default applies",
                ),
                _ => not_modelled(b, x, "lvsdr keeps a url's path, status_code and digest"),
            }
        }
        match path {
            Some(path) => out.push(HealthUrl {
                path,
                status_code,
                digest,
                span: u.span,
            }),
            None => b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                "a `url` without a `path` checks nothing; lvsdr skips it",
                u.span,
                "add the page to fetch: path /healthz",
            ),
        }
    }
    out
}

fn virtual_server(b: &mut Builder, s: &Stmt, body: &[Stmt], groups: &HashMap<&str, Vec<Member>>) {
    b.director_span.get_or_insert(s.span);
    let mut reals = Vec::new();
    let v = settings(b, body, &mut reals);
    let Some(members) = members(b, s, groups) else { return };
    let has_address = members.iter().any(|m| matches!(m, Member::Address { .. }));
    let forward = v.forward.clone().unwrap_or_else(|| {
        b.note(
            crate::codes::code::IMPORT_ASSUMED_VALUE,
            "no `lb_kind`: keepalived defaults to NAT",
            s.span,
            "add `lb_kind DR` for direct routing",
        );
        At::new(Forward::Masq, s.span)
    });
    let scheduler = v.scheduler.clone().unwrap_or_else(|| {
        b.note(
            crate::codes::code::IMPORT_ASSUMED_VALUE,
            "no `lb_algo`: keepalived uses wlc",
            s.span,
            "",
        );
        At::new(Scheduler::Wlc, s.span)
    });
    let protocol = match (&v.protocol, has_address) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                "no `protocol`: keepalived installs this service as UDP",
                s.span,
                "add `protocol TCP` for a TCP service",
            );
            At::new(Protocol::Udp, s.span)
        }
        (None, false) => At::implied(Protocol::Tcp),
    };
    let mut one_packet = v.one_packet.map(|at| At::new(true, at)).unwrap_or(At::implied(false));
    if let (Some(at), true, false) = (v.one_packet, has_address, protocol.value == Protocol::Udp) {
        b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            format!(
                "`ops` needs UDP: keepalived clears it for this {} service",
                protocol.value.name().to_ascii_uppercase()
            ),
            at,
            "remove `ops`",
        );
        one_packet = At::implied(false);
    }
    let mut persistence = v.persistence.clone();
    if let (None, Some(g)) = (&persistence, &v.granularity) {
        b.note(
            crate::codes::code::IMPORT_ASSUMED_VALUE,
            "persistence_granularity without persistence_timeout: keepalived makes the service persistent for 360 s",
            g.span,
            "",
        );
        persistence = Some(At::new(360, g.span));
    }
    let every_port = members.iter().find_map(|m| match m {
        Member::Address { port, .. } if port.value == 0 => Some(port.span),
        _ => None,
    });
    if let (None, Some(at)) = (&persistence, every_port) {
        b.note(
            crate::codes::code::IMPORT_ASSUMED_VALUE,
            "no port: the service takes every port, which IPVS allows only when persistent; keepalived sets persistence_timeout 360",
            at,
            "add `persistence_timeout` with the time you want",
        );
        persistence = Some(At::new(360, at));
    }
    // A fwmark service's family: its own, `ip_family`, or its first real server's.
    let vs_family = v.family.or_else(|| {
        reals
            .iter()
            .find(|r| r.forward.as_ref().unwrap_or(&forward).value != Forward::Tunnel)
            .map(|r| Family::of(&r.address.value))
    });
    let mut placed = vec![false; reals.len()];
    let mut seen: Vec<(IpAddr, Option<u16>)> = Vec::new();
    for (i, r) in reals.iter().enumerate() {
        let id = (r.address.value, r.port.as_ref().map(|p| p.value));
        if seen.contains(&id) {
            b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                format!(
                    "real_server {} is listed twice in this virtual_server; keepalived removes the second",
                    r.address.value
                ),
                r.address.span,
                "",
            );
            placed[i] = true;
        }
        seen.push(id);
    }
    let duplicates = placed.clone();
    for m in &members {
        let (key, key_span, vip, family, port) = match m {
            Member::Address { address, port } => (
                ServiceKey::Port {
                    protocol: protocol.value,
                    port: port.value,
                },
                port.span,
                Some(address.clone()),
                Family::of(&address.value),
                port.value,
            ),
            Member::Mark { mark, family } => (
                ServiceKey::Fwmark(mark.value),
                mark.span,
                None,
                family.or(vs_family).unwrap_or(Family::V4),
                0,
            ),
        };
        let netmask = granularity(b, &v.granularity, family);
        let mut service = VirtualService {
            key: At::new(key, key_span),
            vip,
            family,
            scheduler: scheduler.clone(),
            flags: v.flags.clone(),
            persistence: persistence.clone().map(|t| Persistence { timeout: t, netmask }),
            one_packet: one_packet.clone(),
            destinations: vec![],
            span: s.span,
        };
        for (i, r) in reals.iter().enumerate() {
            if duplicates[i] || Family::of(&r.address.value) != family {
                continue;
            }
            placed[i] = true;
            let fwd = r.forward.clone().unwrap_or_else(|| forward.clone());
            // DR and TUN cannot map ports: keepalived gives the real server the
            // service's port (none for fwmark). A single virtual_server keeps a
            // port written otherwise, for DR005 to point at.
            let rport = match (&r.port, fwd.value == Forward::Masq, m, members.len()) {
                (Some(p), true, _, _) => p.clone(),
                (None, true, Member::Address { .. }, 1) => At::implied(port),
                (None, true, _, _) => At::implied(0),
                (_, false, Member::Mark { .. }, _) => At::implied(0),
                (Some(p), false, Member::Address { .. }, 1) => p.clone(),
                (_, false, Member::Address { .. }, _) => At::implied(port),
            };
            let name = b.server_name(r.address.clone());
            service.destinations.push(Destination {
                server: At::new(name, r.address.span),
                port: rport,
                forward: fwd,
                weight: r.weight.clone().or(v.weight.clone()).unwrap_or(At::implied(1)),
                upper_threshold: r.upper_threshold.clone(),
                lower_threshold: r.lower_threshold.clone(),
                // Kept as metadata only when it is not what lvsdr would generate for this port.
                health_check: r.health_check.clone().filter(|h| h.value != default_health_check(port)),
                urls: r.urls.clone(),
                span: r.stmt.span,
            });
        }
        b.services.push(service);
    }
    for (r, placed) in reals.iter().zip(placed) {
        if !placed {
            b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                format!(
                    "real_server {} is {} but this virtual_server serves no {} address; keepalived skips it",
                    r.address.value,
                    Family::of(&r.address.value).name(),
                    Family::of(&r.address.value).name()
                ),
                r.address.span,
                "direct routing needs the real server and the service in one address family",
            );
        }
    }
}

/// `persistence_granularity` as a prefix length for `family`.
fn granularity(b: &mut Builder, g: &Option<At<String>>, family: Family) -> At<u8> {
    let Some(m) = g else {
        return At::implied(family.host_prefix());
    };
    match (family, m.value.parse::<Ipv4Addr>(), m.value.parse::<u8>()) {
        (Family::V4, Ok(mask), _) if v4_prefix_of(mask).is_some() => At::new(v4_prefix_of(mask).unwrap_or(32), m.span),
        (Family::V6, _, Ok(p)) if (1..=128).contains(&p) => At::new(p, m.span),
        _ => {
            b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                format!("persistence_granularity `{}` is not a netmask for {}", m.value, family.name()),
                m.span,
                "IPv4 takes a netmask such as 255.255.255.0, IPv6 a prefix length such as 64",
            );
            At::implied(family.host_prefix())
        }
    }
}

#[cfg(test)]
mod keyword_tests {
    use super::keywords::*;

    /// Whether the importer calls `word` unknown where `block` puts it: a
    /// DR100 that says "not a setting lvsdr knows" or "not something lvsdr imports".
    fn unknown(block: &str) -> Vec<String> {
        let (_, diagnostics) = super::import(block).expect("the file reads");
        diagnostics
            .into_iter()
            .filter(|d| {
                d.code == "DR100" && (d.message.contains("not a setting lvsdr knows") || d.message.contains("not something lvsdr imports"))
            })
            .map(|d| d.message)
            .collect()
    }

    const VS: &str = "virtual_server 192.0.2.1 80 {\n  lb_kind DR\n  protocol TCP\n  @VS\n  real_server 192.0.2.11 80 {\n    @RS\n  }\n}\n";

    /// Every keyword the completion offers in a block is one the importer
    /// knows there; and a word it does not know is still called unknown.
    #[test]
    fn the_tables_are_what_the_importer_knows() {
        for k in TOP_LEVEL.iter().chain(TOP_LEVEL_SKIPPED).filter(|k| **k != "include") {
            let text = format!("{k} X {{\n}}\n{}", VS.replace("@VS", "").replace("@RS", ""));
            assert_eq!(unknown(&text), Vec::<String>::new(), "top level: {k}");
        }
        for k in VIRTUAL_SERVER.iter().chain(VIRTUAL_SERVER_SKIPPED).filter(|k| **k != "real_server") {
            let text = VS.replace("@VS", &format!("{k} 1")).replace("@RS", "");
            assert_eq!(unknown(&text), Vec::<String>::new(), "virtual_server: {k}");
        }
        for k in REAL_SERVER
            .iter()
            .chain(REAL_SERVER_SKIPPED)
            .chain(crate::names::HEALTH_CHECKS.iter())
        {
            let text = VS.replace("@VS", "").replace("@RS", &format!("{k} 1"));
            assert_eq!(unknown(&text), Vec::<String>::new(), "real_server: {k}");
        }
        assert_eq!(unknown(&VS.replace("@VS", "lb_algoo rr").replace("@RS", "")).len(), 1);
        assert_eq!(unknown(&VS.replace("@VS", "").replace("@RS", "weigth 1")).len(), 1);
        assert_eq!(
            unknown(&format!("vrrp_instanse X {{\n}}\n{}", VS.replace("@VS", "").replace("@RS", ""))).len(),
            1
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokens(text, 0, &mut Vec::new()).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn comments_end_a_line_but_not_a_quoted_string() {
        assert_eq!(
            words("misc_path \"/bin/check #1 !a\" # note\n"),
            ["misc_path", "/bin/check #1 !a", "\n"]
        );
        assert_eq!(words("weight 2 ! less\n"), ["weight", "2", "\n"]);
        assert_eq!(words("tag a\\#b\n"), ["tag", "a#b", "\n"]);
    }

    #[test]
    fn a_trailing_backslash_continues_the_line_and_braces_split_words() {
        assert_eq!(
            words("real_server 10.0.0.1 \\\n    80{\n"),
            ["real_server", "10.0.0.1", "80", "{", "\n"]
        );
        assert_eq!(words("misc_path \"/bin/a \\\n    b\"\n"), ["misc_path", "/bin/a b", "\n"]);
        assert_eq!(
            words("TCP_CHECK {connect_timeout 3}\n"),
            ["TCP_CHECK", "{", "connect_timeout", "3", "}", "\n"]
        );
    }

    #[test]
    fn group_members_expand_like_keepalived() {
        let v4: Vec<String> = addresses("10.0.0.1-3").unwrap().iter().map(|a| a.to_string()).collect();
        assert_eq!(v4, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        let v6: Vec<String> = addresses("2001:db8::a-b").unwrap().iter().map(|a| a.to_string()).collect();
        assert_eq!(v6, ["2001:db8::a", "2001:db8::b"], "the end of an IPv6 range is hex");
        assert_eq!(addresses("10.0.0.4/30").unwrap().len(), 4);
        assert_eq!(addresses("10.0.0.9-10.0.0.10").unwrap().len(), 2);
        assert!(addresses("10.0.0.5-3").is_err());
        assert!(addresses("10.0.0.0/8").is_err(), "too many services to be meant");
    }

    #[test]
    fn a_group_with_two_vips_and_a_fwmark_is_one_service_each() {
        let text = "virtual_server_group G {\n 10.0.0.1 80\n 10.0.0.2 80\n fwmark 7\n}\nvirtual_server group G {\n lb_kind DR\n protocol TCP\n real_server 10.0.0.11 {\n }\n}\n";
        let (t, _) = import(text).unwrap();
        let ids: Vec<String> = t.services.iter().map(|s| s.ipvsadm_id()).collect();
        assert_eq!(ids, ["-t 10.0.0.1:80", "-t 10.0.0.2:80", "-f 7"]);
        let ports: Vec<u16> = t.services.iter().map(|s| s.destinations[0].port.value).collect();
        assert_eq!(ports, [80, 80, 0], "DR gives the real server the member's port, none for a mark");
    }

    #[test]
    fn a_sub_second_advert_needs_vrrp_version_3() {
        let instance =
            |extra: &str| format!("vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n advert_int 0.25\n{extra}}}\n");
        let advert = |text: &str| {
            let mut b = Builder::default();
            read(&mut b, text, 0);
            let said = b
                .diagnostics
                .iter()
                .filter(|d| d.code == "DR101")
                .map(|d| d.message.clone())
                .collect::<Vec<_>>();
            (b.vrrp.unwrap().advert_ms.value, said)
        };
        // VRRPv2, keepalived's default: rounded to whole seconds, at least one.
        let (ms, said) = advert(&instance(""));
        assert_eq!(ms, 1000);
        assert_eq!(said, ["advert_int 0.25 s is not what keepalived runs: it uses 1 s"]);
        assert_eq!(advert(&instance(" version 3\n")), (250, vec![]));
        // global_defs gives the default, even after the instance.
        assert_eq!(
            advert(&format!("{}global_defs {{\n vrrp_version 3\n}}\n", instance(""))),
            (250, vec![])
        );
        assert_eq!(
            advert(&format!("global_defs {{\n vrrp_version 3\n}}\n{}", instance(" version 2\n"))).0,
            1000,
            "the instance's own version wins"
        );
        let (ms, said) = advert(&instance(" version 3\n").replace("0.25", "0.255"));
        assert_eq!((ms, said.len()), (260, 1), "centiseconds: {said:?}");
        let (_, said) = advert(&instance(" version 4\n"));
        assert_eq!(said[0], "VRRP version `4` is not 2 or 3");
        assert_eq!(said.len(), 2, "and read as VRRPv2: {said:?}");
    }

    #[test]
    fn an_undefined_group_is_said_and_nothing_is_served() {
        let mut b = Builder::default();
        read(&mut b, "virtual_server group NOPE {\n lb_kind DR\n}\n", 0);
        assert!(b.services.is_empty());
        assert!(b.diagnostics.iter().any(|d| d.code == "DR101" && d.message.contains("NOPE")));
    }
}
