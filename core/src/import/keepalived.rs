//! Reads keepalived.conf: `virtual_server` blocks with their `real_server`s,
//! and the VIP and interface of `vrrp_instance` blocks. keepalived's defaults
//! differ from ipvsadm's and are applied as keepalived applies them: NAT when
//! `lb_kind` is missing, 360 s for a bare `persistence_timeout`.

use super::builder::Builder;
use crate::diagnostic::{Diagnostic, Severity};
use crate::model::*;
use crate::source::{At, Span};
use crate::LoadError;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone)]
struct Token {
    text: String,
    span: Span,
}

/// A statement: words, and an optional `{ … }` body.
#[derive(Debug, Clone)]
struct Stmt {
    words: Vec<Token>,
    body: Option<Vec<Stmt>>,
    span: Span,
}

fn tokens(text: &str, base: usize) -> Vec<Token> {
    let mut out = Vec::new();
    let mut offset = base;
    for line in text.split_inclusive('\n') {
        let content = match line.find(['#', '!']) {
            Some(i) => &line[..i],
            None => line,
        };
        let mut start = None;
        for (i, c) in content.char_indices() {
            let brace = c == '{' || c == '}';
            if c.is_whitespace() || brace {
                if let Some(s) = start.take() {
                    out.push(Token {
                        text: content[s..i].to_string(),
                        span: Span::new(offset + s, offset + i),
                    });
                }
                if brace {
                    out.push(Token {
                        text: c.to_string(),
                        span: Span::new(offset + i, offset + i + 1),
                    });
                }
            } else if start.is_none() {
                start = Some(i);
            }
        }
        if let Some(s) = start {
            let end = content.trim_end().len().max(s);
            out.push(Token {
                text: content[s..end].to_string(),
                span: Span::new(offset + s, offset + end),
            });
            out.push(Token {
                text: "\n".into(),
                span: Span::new(offset + end, offset + end),
            });
        } else {
            out.push(Token {
                text: "\n".into(),
                span: Span::new(offset + content.len(), offset + content.len()),
            });
        }
        offset += line.len();
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

fn parse_block(toks: &[Token], i: &mut usize, depth: usize, notes: &mut Vec<Diagnostic>) -> Vec<Stmt> {
    let mut out = Vec::new();
    let mut words: Vec<Token> = Vec::new();
    while *i < toks.len() {
        let t = &toks[*i];
        *i += 1;
        match t.text.as_str() {
            "\n" => {
                end_statement(&mut words, &mut out);
            }
            "{" => {
                let start = words.first().map(|w| w.span.start).unwrap_or(t.span.start);
                let body = parse_block(toks, i, depth + 1, notes);
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
                        Diagnostic::new("DR101", Severity::Warning, "`}` without a matching `{`", t.span)
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
    if depth > 0 {
        let at = toks.last().map(|t| t.span).unwrap_or(Span::NONE);
        notes.push(Diagnostic::new("DR101", Severity::Warning, "a `{` block is never closed", at).help("add the missing `}`"));
    }
    out
}

fn word(s: &Stmt, n: usize) -> Option<&Token> {
    s.words.get(n)
}

fn keyword(s: &Stmt) -> &str {
    s.words.first().map(|w| w.text.as_str()).unwrap_or("")
}

fn number<T: std::str::FromStr>(b: &mut Builder, s: &Stmt) -> Option<At<T>> {
    let w = word(s, 1)?;
    match w.text.parse::<T>() {
        Ok(v) => Some(At::new(v, w.span)),
        Err(_) => {
            b.note("DR101", format!("`{}` expects a number, not `{}`", keyword(s), w.text), w.span, "");
            None
        }
    }
}

pub fn import(text: &str) -> Result<(Topology, Vec<Diagnostic>), LoadError> {
    let mut b = Builder::default();
    read(&mut b, text, 0);
    b.finish()
}

/// Reads one keepalived.conf into `b`, its spans counted from `base` (the
/// file's place among several read as one setup).
pub fn read(b: &mut Builder, text: &str, base: usize) {
    let toks = tokens(text, base);
    let mut i = 0;
    let stmts = parse_block(&toks, &mut i, 0, &mut b.diagnostics);
    let mut vrrp_addresses: Vec<Vip> = Vec::new();
    for s in &stmts {
        match (keyword(s), &s.body) {
            ("virtual_server", Some(body)) => virtual_server(b, s, body),
            ("vrrp_instance", Some(body)) => vrrp_instance(b, body, &mut vrrp_addresses),
            ("global_defs" | "vrrp_sync_group" | "vrrp_script" | "virtual_server_group" | "static_ipaddress" | "static_routes", _) => {}
            (k, _) => b.note("DR100", format!("`{k}` is not something lvsdr imports; skipped"), s.span, ""),
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
        }
    }
}

fn vrrp_instance(b: &mut Builder, body: &[Stmt], addresses: &mut Vec<Vip>) {
    for s in body {
        match (keyword(s), &s.body) {
            ("interface", None) => {
                if let Some(w) = word(s, 1) {
                    b.director_interface = b.interface(&w.text, w.span);
                }
            }
            ("virtual_ipaddress", Some(addrs)) => {
                for first in addrs.iter().filter_map(|a| word(a, 0)) {
                    let (addr, prefix) = first
                        .text
                        .split_once('/')
                        .map(|(a, p)| (a, p.parse::<u8>().ok()))
                        .unwrap_or((first.text.as_str(), None));
                    if let Ok(a) = addr.parse::<IpAddr>() {
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
            _ => {}
        }
    }
}

fn virtual_server(b: &mut Builder, s: &Stmt, body: &[Stmt]) {
    b.director_span.get_or_insert(s.span);
    let (key_span, address, port, fwmark) = match (word(s, 1), word(s, 2)) {
        (Some(f), Some(m)) if f.text == "fwmark" => match m.text.parse::<u32>() {
            Ok(mark) => (m.span, None, 0, Some(mark)),
            Err(_) => return b.note("DR101", format!("fwmark `{}` is not a number", m.text), m.span, ""),
        },
        (Some(a), Some(p)) if a.text.parse::<IpAddr>().is_ok() && p.text.parse::<u16>().is_ok() => (
            p.span,
            a.text.parse().ok().map(|ip| At::new(ip, a.span)),
            p.text.parse().unwrap_or(0),
            None,
        ),
        _ => {
            return b.note(
                "DR101",
                "virtual_server expects `ADDRESS PORT` or `fwmark N`",
                s.span,
                "for example: virtual_server 192.168.1.192 80 {",
            )
        }
    };
    let mut protocol = Protocol::Tcp;
    let mut scheduler: Option<At<Scheduler>> = None;
    let mut forward = At::new(Forward::Masq, s.span);
    let mut kind_given = false;
    let mut flags = Vec::new();
    let mut persistence: Option<At<u32>> = None;
    let mut netmask: Option<At<String>> = None;
    let mut ipv6 = false;
    let mut one_packet = At::implied(false);
    let mut reals: Vec<(&Stmt, &Vec<Stmt>)> = Vec::new();
    for st in body {
        match (keyword(st), &st.body) {
            ("lb_algo", None) => match word(st, 1).map(|w| (w, Scheduler::parse(&w.text))) {
                Some((w, Some(sc))) => scheduler = Some(At::new(sc, w.span)),
                Some((w, None)) => b.note(
                    "DR101",
                    format!("`{}` is not a scheduler", w.text),
                    w.span,
                    "use rr, wrr, lc, wlc, sed, nq, sh, dh, fo, ovf, mh, lblc or lblcr",
                ),
                None => {}
            },
            ("lb_kind", None) => {
                if let Some(w) = word(st, 1) {
                    kind_given = true;
                    forward = match w.text.to_ascii_uppercase().as_str() {
                        "DR" => At::new(Forward::Route, w.span),
                        "TUN" => At::new(Forward::Tunnel, w.span),
                        "NAT" => At::new(Forward::Masq, w.span),
                        _ => {
                            b.note("DR101", format!("lb_kind `{}` is not DR, NAT or TUN", w.text), w.span, "");
                            forward
                        }
                    };
                }
            }
            ("protocol", None) => {
                if let Some(p) = word(st, 1).map(|w| w.text.to_ascii_lowercase()) {
                    protocol = Protocol::parse(&p).unwrap_or(Protocol::Tcp)
                }
            }
            ("persistence_timeout", None) => {
                persistence = Some(if word(st, 1).is_some() {
                    number::<u32>(b, st).unwrap_or(At::new(360, st.span))
                } else {
                    At::new(360, st.span)
                })
            }
            ("persistence_granularity", None) => netmask = word(st, 1).map(|w| At::new(w.text.clone(), w.span)),
            ("ip_family", None) => ipv6 = word(st, 1).is_some_and(|w| w.text == "inet6"),
            ("ops", None) => one_packet = At::new(true, st.span),
            (k @ ("sh-port" | "sh-fallback" | "mh-port" | "mh-fallback"), None) => {
                if let Some(f) = SchedFlag::parse(k) {
                    flags.push(At::new(f, st.span));
                }
            }
            ("real_server", Some(rb)) => reals.push((st, rb)),
            _ => {}
        }
    }
    if !kind_given {
        b.note(
            "DR103",
            "no `lb_kind`: keepalived defaults to NAT",
            s.span,
            "add `lb_kind DR` for direct routing",
        );
    }
    let scheduler = scheduler.unwrap_or_else(|| {
        b.note("DR103", "no `lb_algo`: keepalived uses wlc", s.span, "");
        At::new(Scheduler::Wlc, s.span)
    });
    let key = match fwmark {
        Some(m) => ServiceKey::Fwmark(m),
        None => ServiceKey::Port { protocol, port },
    };
    let family = match &address {
        Some(a) => Family::of(&a.value),
        None if ipv6 => Family::V6,
        None => Family::V4,
    };
    let netmask = match netmask {
        None => At::implied(family.host_prefix()),
        Some(m) => match (family, m.value.parse::<Ipv4Addr>(), m.value.parse::<u8>()) {
            (Family::V4, Ok(mask), _) if v4_prefix_of(mask).is_some() => At::new(v4_prefix_of(mask).unwrap_or(32), m.span),
            (Family::V6, _, Ok(p)) if (1..=128).contains(&p) => At::new(p, m.span),
            _ => {
                b.note(
                    "DR101",
                    format!("persistence_granularity `{}` is not a netmask for {}", m.value, family.name()),
                    m.span,
                    "IPv4 takes a netmask such as 255.255.255.0, IPv6 a prefix length such as 64",
                );
                At::implied(family.host_prefix())
            }
        },
    };
    let mut service = VirtualService {
        key: At::new(key, key_span),
        vip: address,
        family,
        scheduler,
        flags,
        // `persistence_timeout 0` is keepalived's way to say "not persistent".
        persistence: persistence.filter(|t| t.value > 0).map(|t| Persistence { timeout: t, netmask }),
        one_packet,
        destinations: vec![],
        span: s.span,
    };
    for (st, rb) in reals {
        let (Some(a), p) = (word(st, 1), word(st, 2)) else { continue };
        let Ok(addr) = a.text.parse::<IpAddr>() else {
            b.note("DR101", format!("real_server `{}` is not an IP address", a.text), a.span, "");
            continue;
        };
        if Family::of(&addr) != family {
            b.note(
                "DR101",
                format!(
                    "real_server {addr} is {} but the virtual_server is {}",
                    Family::of(&addr).name(),
                    family.name()
                ),
                a.span,
                "direct routing needs the real server and the service in one address family",
            );
            continue;
        }
        let rport = match p.map(|p| (p, p.text.parse::<u16>())) {
            Some((p, Ok(v))) => At::new(v, p.span),
            _ => At::implied(port),
        };
        let name = b.server_name(At::new(addr, a.span));
        let mut d = Destination {
            server: At::new(name, a.span),
            port: rport,
            forward: forward.clone(),
            weight: At::implied(1),
            upper_threshold: None,
            lower_threshold: None,
            health_check: None,
            span: st.span,
        };
        for x in rb {
            match keyword(x) {
                "weight" => d.weight = number::<u32>(b, x).unwrap_or(d.weight),
                "uthreshold" => d.upper_threshold = number::<u32>(b, x),
                "lthreshold" => d.lower_threshold = number::<u32>(b, x),
                // Kept as metadata only when it is not what lvsdr would generate for this port.
                k if HEALTH_CHECKS.contains(&k) && k != default_health_check(port) => d.health_check = Some(At::new(k.to_string(), x.span)),
                _ => {}
            }
        }
        service.destinations.push(d);
    }
    b.services.push(service);
}
