//! Reads shell scripts that set up a DR director and its real servers, in
//! the style of the LVS-DR walkthroughs and init scripts: shell variables,
//! `ipvsadm`, `ifconfig`, `ip addr`, `route`/`ip route`, `sysctl -w` and
//! knobs written under `/proc/sys` (`echo 1 > …`, `echo 1 | tee …`).
//!
//! The script is followed as it runs (see [`shell`]): the `start` path of an
//! init script, functions with their arguments, `for` loops over word lists.
//! Commands run through `sudo`, `env`, `nice` or `ip netns exec NS` are read
//! as the command they run.
//!
//! A file may hold the director's script and the real servers' script one
//! after the other, each starting with its own `#!` line. A part that runs
//! `ipvsadm` is the director's; a part that puts the VIP on `lo` is the
//! real servers' (it is run on every real server). In a file with a single
//! part, each line goes where it obviously belongs.

use super::addresses::{HostAddresses, Placed};
use super::builder::{Builder, ServerSetup};
use super::shell::{self, Event, Redirection, Run, Word};
use super::{ipvsadm, marks};
use crate::diagnostic::Diagnostic;
use crate::model::Family;
use crate::model::Topology;
use crate::names::{check_sysctl_value, shown, SysctlKey};
use crate::source::{At, Span};
use crate::LoadError;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Director,
    RealServer,
}

struct Line {
    part: usize,
    /// The network namespace it runs in (`ip netns exec NS …`, `ip -n NS …`), if one is named.
    host: Option<String>,
    /// The command's own words, after `sudo`, `env` and the like.
    words: Vec<Word>,
    span: Span,
    run: Run,
}

/// What following a script gives once `sh -c '…'` strings are read as the scripts they are.
enum Flat {
    Run(Run, Option<String>),
    Note(shell::Note),
    /// A variable expanded while never set, and the word it is in.
    Unset(String, Span),
}

/// How deep `sh -c "sh -c '…'"` is followed.
const INLINE_DEPTH: usize = 4;

fn command_name(w: &Word) -> &str {
    w.text.rsplit('/').next().unwrap_or(&w.text)
}

fn is_ipvsadm(words: &[Word]) -> bool {
    words.first().is_some_and(|w| command_name(w) == "ipvsadm")
}

fn configures_lo(words: &[Word]) -> bool {
    let name = words.first().map(command_name).unwrap_or("");
    (name == "ifconfig"
        && words.get(1).is_some_and(|w| w.text == "lo" || w.text.starts_with("lo:"))
        && words.len() > 2
        && words[2].text.parse::<Ipv4Addr>().is_ok())
        || (name == "ip"
            && words.iter().any(|w| w.text == "add" || w.text == "replace")
            && words
                .windows(2)
                .any(|p| p[0].text == "dev" && (p[1].text == "lo" || p[1].text.starts_with("lo:"))))
}

fn real_server_sysctl(key: &str) -> bool {
    key.contains("arp_ignore") || key.contains("arp_announce") || key.contains(".lo.")
}

/// Netmask to prefix length; `None` if not contiguous.
fn mask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let p = m.leading_ones();
    (m.checked_shl(p).unwrap_or(0) == 0).then_some(p as u8)
}

/// ifconfig's classful default when no netmask is given.
fn classful_prefix(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

pub fn import(text: &str) -> Result<(Topology, Vec<Diagnostic>), LoadError> {
    let mut b = Builder::default();
    read(&mut b, text, 0);
    b.finish()
}

/// Commands that run another command: `sudo ipvsadm …`, `ip netns exec NS ipvsadm …`.
/// Returns the words of the command itself.
fn strip_prefixes(words: &[Word]) -> &[Word] {
    strip_prefixes_host(words).0
}

/// `ip -n NS …`, `ip -netns NS …`: the namespace an `ip` command acts in.
fn ip_namespace(words: &[Word]) -> Option<&Word> {
    if words.first().map(command_name) != Some("ip") {
        return None;
    }
    let mut k = 1;
    while let Some(o) = words.get(k).filter(|o| o.text.starts_with('-')) {
        if matches!(o.text.as_str(), "-n" | "-net" | "-netns" | "--netns") {
            return words.get(k + 1);
        }
        k += 1;
    }
    None
}

/// [`strip_prefixes`], and the network namespace the command runs in, if one is named.
fn strip_prefixes_host(words: &[Word]) -> (&[Word], Option<String>) {
    let mut w = words;
    let mut host = None;
    loop {
        let Some(first) = w.first() else { return (w, host) };
        let skip = match command_name(first) {
            "sudo" | "doas" => {
                let mut k = 1;
                while let Some(o) = w.get(k).filter(|o| o.text.starts_with('-')) {
                    k += if matches!(o.text.as_str(), "-u" | "-g" | "-p" | "-C" | "-h" | "-U" | "-r" | "-t" | "-D") {
                        2
                    } else {
                        1
                    };
                    if o.text == "--" {
                        break;
                    }
                }
                k
            }
            "env" => {
                let mut k = 1;
                while let Some(o) = w.get(k) {
                    if o.text == "-u" || o.text == "-C" {
                        k += 2;
                    } else if o.text.starts_with('-') || (o.text.contains('=') && !o.text.starts_with('=')) {
                        k += 1;
                    } else {
                        break;
                    }
                }
                k
            }
            "nice" | "ionice" | "chrt" | "taskset" => {
                let mut k = 1;
                while let Some(o) = w.get(k).filter(|o| o.text.starts_with('-')) {
                    let takes = matches!(o.text.as_str(), "-n" | "-c" | "-p" | "--adjustment" | "--class" | "--classdata");
                    k += if takes { 2 } else { 1 };
                }
                if matches!(command_name(first), "chrt" | "taskset") {
                    k += 1; // the priority or the CPU mask
                }
                k
            }
            "timeout" => {
                let mut k = 1;
                while w.get(k).is_some_and(|o| o.text.starts_with('-')) {
                    k += 1;
                }
                k + 1
            }
            "nohup" | "time" | "exec" | "builtin" | "stdbuf" => {
                let mut k = 1;
                while w.get(k).is_some_and(|o| o.text.starts_with('-')) {
                    k += 1;
                }
                k
            }
            "command" if w.get(1).is_some_and(|o| o.text != "-v" && o.text != "-V") => {
                1 + usize::from(w.get(1).is_some_and(|o| o.text == "-p"))
            }
            "ip" if w.get(1).is_some_and(|o| o.text == "netns") && w.get(2).is_some_and(|o| o.text == "exec") => {
                host = w.get(3).map(|n| n.text.clone());
                4
            }
            _ => {
                let host = ip_namespace(w).map(|n| n.text.clone()).or(host);
                return (w, host);
            }
        };
        w = w.get(skip.min(w.len())..).unwrap_or(&[]);
    }
}

/// Whether a command sets something up, so that the branch holding it is the
/// one a script runs when it is started.
fn configures(run: &Run) -> bool {
    let words = strip_prefixes(&run.words);
    let Some(first) = words.first() else { return false };
    let has = |t: &str| words.iter().any(|w| w.text == t);
    match command_name(first) {
        "ipvsadm" => words[1..].iter().any(|w| {
            let t = w.text.as_str();
            t.starts_with("--add-") || t.starts_with("--edit-") || t == "--restore" || {
                let short = t.strip_prefix('-').filter(|s| !s.starts_with('-')).unwrap_or("");
                short.starts_with(['A', 'a', 'E', 'e', 'R'])
            }
        }),
        "ifconfig" => words.get(2).is_some_and(|w| w.text.parse::<Ipv4Addr>().is_ok()),
        "ip" => (has("add") || has("replace")) && has("dev"),
        "sysctl" => words[1..].iter().any(|w| w.text.contains('=')),
        "echo" | "printf" | "cat" => run.redirects.iter().any(writes_sysctl),
        "tee" => words[1..].iter().any(|w| sysctl_file(&w.text)),
        n if n.starts_with("iptables") || n.starts_with("ip6tables") || n == "nft" => {
            words.iter().any(|w| w.text.contains("MARK") || w.text == "mark")
        }
        _ => false,
    }
}

/// `/proc/sys/…`, `/etc/sysctl.conf` or `/etc/sysctl.d/*.conf`.
fn sysctl_file(path: &str) -> bool {
    path.starts_with("/proc/sys/") || path == "/etc/sysctl.conf" || path.starts_with("/etc/sysctl.d/")
}

fn writes_sysctl(r: &Redirection) -> bool {
    matches!(r.op.as_str(), ">" | ">>" | ">|") && sysctl_file(&r.target.text)
}

/// Whether a command reads or changes anything lvsdr models, wherever it is.
fn modelled(run: &Run) -> bool {
    let words = strip_prefixes(&run.words);
    words
        .first()
        .is_some_and(|w| matches!(command_name(w), "ipvsadm" | "ifconfig" | "ip" | "sysctl" | "route"))
        || configures(run)
}

/// Reads one script into `b`, its spans counted from `base`.
pub fn read(b: &mut Builder, text: &str, base: usize) {
    if let Some((found, span)) = super::template::placeholder(text, base) {
        b.refused.get_or_insert(super::template::refusal(&found, span));
        return;
    }
    let trace = shell::run(text, base, &configures);
    if let Some((what, at)) = trace.limit {
        b.refused.get_or_insert(LoadError::limit(
            what,
            at,
            "real scripts stay far below this limit; flatten the nesting, or split the script",
        ));
        return;
    }
    let mut flat: Vec<Flat> = trace.unset.into_iter().map(|(n, s)| Flat::Unset(n, s)).collect();
    flatten(b, trace.events, None, text, base, 0, &mut flat);
    // A second `#!` line starts another script in the same file.
    let mut part_starts = Vec::new();
    let mut offset = base;
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        if n > 0 && raw.trim_start().starts_with("#!") {
            part_starts.push(offset);
        }
        offset += raw.len();
    }
    let part_of = |span: Span| part_starts.iter().filter(|s| **s <= span.start).count();
    let parts = part_starts.len() + 1;
    let mut lines = Vec::new();
    let mut unset = Vec::new();
    for e in flat {
        match e {
            Flat::Note(n) => b.note(n.code, n.message.clone(), n.span, &n.help),
            Flat::Unset(name, span) => unset.push((name, span)),
            Flat::Run(r, host) => {
                let words = strip_prefixes(&r.words).to_vec();
                if !words.is_empty() {
                    lines.push(Line {
                        part: part_of(r.span),
                        host,
                        words,
                        span: r.span,
                        run: r,
                    });
                }
            }
        }
    }
    // `ip netns exec NS …` lines are several hosts: the one that runs `ipvsadm` is the
    // director (with the lines of no namespace); the others are real servers or clients.
    let director_host: Option<String> = lines
        .iter()
        .find(|l| is_ipvsadm(&l.words) && l.host.is_some())
        .and_then(|l| l.host.clone())
        .filter(|_| !lines.iter().any(|l| is_ipvsadm(&l.words) && l.host.is_none()));
    let undefined = undefined_variables(b, text, &unset, &lines);
    let (mine, theirs): (Vec<Line>, Vec<Line>) = lines.into_iter().partition(|l| l.host.is_none() || l.host == director_host);
    let role_of_part: Vec<Option<Role>> = (0..parts)
        .map(|p| {
            let ls: Vec<&Line> = mine.iter().filter(|l| l.part == p).collect();
            if ls.iter().any(|l| is_ipvsadm(&l.words)) {
                Some(Role::Director)
            } else if ls.iter().any(|l| configures_lo(&l.words)) {
                Some(Role::RealServer)
            } else {
                None
            }
        })
        .collect();

    let before = Snapshot::of(b);
    let mut addresses = HostAddresses::default();
    for line in &mine {
        let part_role = if parts > 1 { role_of_part[line.part] } else { None };
        // A real servers' part of the file puts the VIP on their `lo`; their own NIC addresses are not the director's.
        let mut theirs_only = HostAddresses::default();
        let target = if part_role == Some(Role::RealServer) {
            &mut theirs_only
        } else {
            &mut addresses
        };
        apply(b, line, part_role, target);
        b.real_server_lo.extend(theirs_only.on_lo());
    }
    addresses.settle_director(b);
    read_other_hosts(b, &theirs);
    let all: Vec<&Line> = mine.iter().chain(&theirs).collect();
    let sets_up_nothing = b.services.is_empty() && b.vips.is_empty() && b.real_server_lo.is_empty();
    // An unset variable where the VIP belongs (DR112) is the cause to name, not "nothing on the path".
    if sets_up_nothing
        && undefined == 0
        && Snapshot::of(b) == before
        && (all.iter().any(|l| modelled(&l.run)) || !trace.not_applied.is_empty())
    {
        let (message, span) = match trace.not_applied.first() {
            Some((_, span)) => {
                let names: Vec<&str> = trace.not_applied.iter().take(4).map(|(n, _)| n.as_str()).collect();
                let more = if trace.not_applied.len() > 4 { ", …" } else { "" };
                (
                    format!(
                        "this script sets up no virtual service, VIP or real server on the path lvsdr follows; left out: {}{more}",
                        names.join(", ")
                    ),
                    *span,
                )
            }
            None => (
                "this script runs commands but sets up no virtual service, VIP or real server".to_string(),
                all.iter()
                    .find(|l| modelled(&l.run))
                    .map(|l| l.span)
                    .unwrap_or(Span::new(base, base)),
            ),
        };
        b.note(
            crate::codes::code::IMPORT_NOTHING_APPLIED,
            message,
            span,
            "lvsdr follows the `start` path of an init script; a script that only tears down or lists has nothing to check",
        );
        b.allow_empty = true;
    }
}

/// Reads one command of the director's host (or of a single-host script) into `b`.
fn apply(b: &mut Builder, line: &Line, part_role: Option<Role>, addresses: &mut HostAddresses) {
    let words = &line.words;
    let name = command_name(&words[0]).to_string();
    match name.as_str() {
        "ipvsadm" => ipvsadm_line(b, line),
        "iptables" | "ip6tables" | "iptables-legacy" | "ip6tables-legacy" | "iptables-nft" | "ip6tables-nft" => {
            marks::iptables(b, words, line.span)
        }
        "nft" => marks::nft(b, words, line.span),
        "sysctl" => {
            let mut args = words[1..].iter().peekable();
            while let Some(w) = args.next() {
                if w.text == "-p" || w.text == "--load" || w.text == "--system" {
                    let file = args
                        .next_if(|f| !f.text.starts_with('-'))
                        .map(|f| f.text.clone())
                        .unwrap_or_else(|| "/etc/sysctl.conf".into());
                    b.note(
                        crate::codes::code::IMPORT_SKIPPED_LINE,
                        format!("`sysctl {}` loads settings from {file}, which lvsdr does not open", w.text),
                        line.span,
                        "write the settings as `sysctl -w KEY=VALUE` in the script for lvsdr to read them",
                    );
                    continue;
                }
                if w.text.starts_with('-') {
                    continue;
                }
                let Some((key, value)) = w.text.split_once('=') else {
                    b.note(
                        crate::codes::code::IMPORT_SKIPPED_LINE,
                        format!("`sysctl {}` reads a value; nothing to import", w.text),
                        w.span,
                        "",
                    );
                    continue;
                };
                set_sysctl(b, key.trim(), value.trim(), w.span, part_role);
            }
        }
        "echo" | "printf" | "cat" => {
            // `cat >> /etc/sysctl.conf <<EOF`: the body comes with the heredoc's own redirection.
            let heredoc = line.run.redirects.iter().find_map(|r| r.heredoc.as_ref());
            for r in line.run.redirects.iter().filter(|r| writes_sysctl(r)) {
                let value = match (heredoc, name.as_str()) {
                    (Some(body), _) => body.iter().map(|(ws, _)| joined(ws)).collect::<Vec<_>>().join("\n"),
                    (None, "echo") => echo_text(&words[1..]),
                    (None, "printf") => printf_text(&words[1..]),
                    _ => continue,
                };
                write_sysctl_file(b, &r.target, &value, line.span, part_role);
            }
        }
        "tee" => {
            let value = match &line.run.piped {
                Some(p) if p.first().is_some_and(|w| w.text == "echo") => echo_text(&p[1..]),
                Some(p) if p.first().is_some_and(|w| w.text == "printf") => printf_text(&p[1..]),
                _ => match line.run.redirects.iter().find_map(|r| r.heredoc.as_ref()) {
                    Some(body) => body.iter().map(|(ws, _)| joined(ws)).collect::<Vec<_>>().join("\n"),
                    None => {
                        if words[1..].iter().any(|w| sysctl_file(&w.text)) {
                            b.note(
                                crate::codes::code::IMPORT_SKIPPED_LINE,
                                "`tee` writes what it reads, which lvsdr cannot see here",
                                line.span,
                                "",
                            );
                        }
                        return;
                    }
                },
            };
            for target in words[1..].iter().filter(|w| sysctl_file(&w.text)) {
                write_sysctl_file(b, target, &value, line.span, part_role);
            }
        }
        "ifconfig" => ifconfig(b, words, line.span, addresses),
        "ip" => ip(b, words, line.span, addresses),
        "route" => route(b, words, line.span),
        "set" | "modprobe" | "exit" | "true" | "systemctl" | "service" | "logger" | "sleep" | "lsmod" | "grep" | "arping" | "chkconfig"
        | "update-rc.d" | "touch" | "rm" | "mkdir" | "chmod" | "usage" => {}
        _ => b.note(
            crate::codes::code::IMPORT_SKIPPED_LINE,
            format!("`{name}` is not something lvsdr imports; line skipped"),
            line.span,
            "",
        ),
    }
}

/// The hosts of a script of several (`ip netns exec NS …`) other than the
/// director's: a host that holds the address of a real server of the table
/// is that real server, with its own `lo` and sysctls; the others are clients.
fn read_other_hosts(b: &mut Builder, lines: &[Line]) {
    let mut hosts: Vec<&str> = Vec::new();
    for l in lines {
        if let Some(h) = l.host.as_deref().filter(|h| !hosts.contains(h)) {
            hosts.push(h);
        }
    }
    for host in hosts {
        let mut hb = Builder::default();
        let mut addresses = HostAddresses::default();
        let mine: Vec<&Line> = lines.iter().filter(|l| l.host.as_deref() == Some(host)).collect();
        for line in &mine {
            apply(&mut hb, line, Some(Role::RealServer), &mut addresses);
        }
        b.diagnostics.append(&mut hb.diagnostics);
        if let Some(e) = hb.refused.take() {
            b.refused.get_or_insert(e);
        }
        let first = mine.first().map(|l| l.span).unwrap_or(Span::NONE);
        if !hb.services.is_empty() {
            b.note(
                crate::codes::code::IMPORT_SKIPPED_LINE,
                format!(
                    "namespace `{}` runs ipvsadm too; lvsdr reads one director per file, and its table is left out",
                    shown(host)
                ),
                first,
                "give each director's setup to lvsdr as a file of its own",
            );
        }
        let held = b.servers.iter().find_map(|s| addresses.holds(s.value)).cloned();
        match held {
            Some(p) => {
                let mut sysctls = hb.real_server_sysctls;
                for (k, v) in hb.director_sysctls.values {
                    sysctls.values.insert(k, v);
                }
                let interface = b.interface(p.device(), p.span);
                b.server_setups.insert(
                    p.address.value,
                    ServerSetup {
                        interface,
                        lo: addresses.on_lo(),
                        sysctls,
                    },
                );
            }
            None => match addresses.own().next() {
                Some(p) if b.client_address.is_none() => b.client_address = Some(p.address.clone()),
                _ => b.note(
                    crate::codes::code::IMPORT_SKIPPED_LINE,
                    format!(
                        "namespace `{}` holds no real server of the table and is not the client; lvsdr leaves it out",
                        shown(host)
                    ),
                    first,
                    "",
                ),
            },
        }
    }
}

/// DR112: a variable that a command lvsdr reads expands while never set: the
/// command runs without it. Says which set variable it probably meant.
/// Returns how many it reported.
fn undefined_variables(b: &mut Builder, text: &str, unset: &[(String, Span)], lines: &[Line]) -> usize {
    let defined = assigned_names(text);
    let mut said: Vec<(&str, Span)> = Vec::new();
    for (name, span) in unset {
        if said.contains(&(name.as_str(), *span)) {
            continue;
        }
        // On a line that sets something up: a modelled command, or one whose command word was the variable.
        let reads = lines.iter().any(|l| {
            l.span.start <= span.start
                && span.end <= l.span.end
                && (modelled(&l.run) || l.words.first().is_some_and(|w| w.text.starts_with('-')))
        });
        if !reads {
            continue;
        }
        said.push((name, *span));
        let (message, help) = match near_miss(name, &defined) {
            Some(meant) => (
                format!("`${name}` is never set, so this line runs without it; did you mean `${meant}`?"),
                format!("write `${meant}`, or set {name} before this line"),
            ),
            None => (
                format!("`${name}` is never set, so this line runs without it"),
                format!("set {name} before this line, or write the value itself"),
            ),
        };
        b.note(crate::codes::code::UNDEFINED_VARIABLE, message, *span, &help);
    }
    said.len()
}

/// The names a script assigns anywhere: `NAME=…`, `for NAME in`, `read NAME`, `local NAME`, `export NAME`.
fn assigned_names(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut previous = "";
    for token in text.split(|c: char| c.is_whitespace() || matches!(c, ';' | '(' | ')' | '&' | '|' | '`')) {
        if token.is_empty() {
            continue;
        }
        let head = token.split(['=', '[']).next().unwrap_or("");
        let named = token.contains('=') || matches!(previous, "for" | "read" | "local" | "export" | "declare" | "typeset" | "readonly");
        let valid = !head.is_empty()
            && head.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !head.starts_with(|c: char| c.is_ascii_digit());
        if named && valid && !out.iter().any(|n| n == head) {
            out.push(head.to_string());
        }
        previous = token;
    }
    out
}

/// The set name closest to `name`: the same but for case, or at most two edits away (one for short names).
fn near_miss<'a>(name: &str, defined: &'a [String]) -> Option<&'a str> {
    let limit = if name.chars().count() <= 3 { 1 } else { 2 };
    defined
        .iter()
        .filter(|d| d.as_str() != name)
        .map(|d| (if d.eq_ignore_ascii_case(name) { 0 } else { edit_distance(name, d) }, d))
        .filter(|(n, _)| *n <= limit)
        .min_by_key(|(n, _)| *n)
        .map(|(_, d)| d.as_str())
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 || a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Follows `sh -c '…'`, `bash -c "…"`, `su -c '…'` into the script they run, and
/// says which namespace each command runs in.
fn flatten(b: &mut Builder, events: Vec<Event>, host: Option<String>, text: &str, base: usize, depth: usize, out: &mut Vec<Flat>) {
    for e in events {
        let r = match e {
            Event::Note(n) => {
                out.push(Flat::Note(n));
                continue;
            }
            Event::Run(r) => r,
        };
        let (words, own_host) = strip_prefixes_host(&r.words);
        let host = own_host.or_else(|| host.clone());
        let Some(script) = inline_script(words) else {
            out.push(Flat::Run(r, host));
            continue;
        };
        if depth >= INLINE_DEPTH {
            b.note(
                crate::codes::code::IMPORT_SKIPPED_LINE,
                format!("`sh -c` nested more than {INLINE_DEPTH} deep; the inner script is not read"),
                script.span,
                "",
            );
            continue;
        }
        // Where the string's text sits in the file: inside its quotes, when it is written there as it reads.
        let written = text
            .get(script.span.start.saturating_sub(base)..script.span.end.saturating_sub(base))
            .unwrap_or("");
        let inner = written
            .strip_prefix('\'')
            .and_then(|w| w.strip_suffix('\''))
            .or_else(|| written.strip_prefix('"').and_then(|w| w.strip_suffix('"')))
            .unwrap_or(written);
        let exact = inner == script.text;
        let start = script.span.start + if inner.len() < written.len() { 1 } else { 0 };
        let mut trace = shell::run(&script.text, start, &configures);
        let inner_unset = std::mem::take(&mut trace.unset);
        out.extend(
            inner_unset
                .into_iter()
                .map(|(n, s)| Flat::Unset(n, if exact { s } else { script.span })),
        );
        if let Some((what, at)) = trace.limit {
            b.refused.get_or_insert(LoadError::limit(
                what,
                at,
                "real scripts stay far below this limit; flatten the nesting, or split the script",
            ));
            return;
        }
        if !exact {
            // Expanded or escaped: every finding points at the string as a whole.
            for e in &mut trace.events {
                respan(e, script.span);
            }
        }
        flatten(b, trace.events, host, text, base, depth + 1, out);
    }
}

/// The script string of `sh -c STRING`, `bash -ec STRING`, `su [USER] -c STRING`, `su --command=STRING`.
fn inline_script(words: &[Word]) -> Option<Word> {
    let name = command_name(words.first()?);
    match name {
        "sh" | "bash" | "dash" | "ash" | "ksh" | "zsh" => {
            let mut k = 1;
            while let Some(o) = words.get(k).filter(|o| o.text.starts_with('-') && !o.text.starts_with("--")) {
                if o.text[1..].contains('c') {
                    return words.get(k + 1).cloned();
                }
                k += 1;
            }
            None
        }
        "su" => words[1..].iter().enumerate().find_map(|(k, o)| match o.text.as_str() {
            "-c" | "--command" => words.get(k + 2).cloned(),
            t => t.strip_prefix("--command=").map(|c| Word {
                text: c.to_string(),
                span: o.span,
            }),
        }),
        _ => None,
    }
}

/// Points every span of an event at `span`.
fn respan(e: &mut Event, span: Span) {
    match e {
        Event::Note(n) => n.span = span,
        Event::Run(r) => {
            r.span = span;
            for w in r.words.iter_mut().chain(r.piped.iter_mut().flatten()) {
                w.span = span;
            }
            for x in &mut r.redirects {
                x.target.span = span;
                for (ws, s) in x.heredoc.iter_mut().flatten() {
                    *s = span;
                    for w in ws {
                        w.span = span;
                    }
                }
            }
        }
    }
}

/// What a builder holds, to tell whether a file added anything.
#[derive(PartialEq, Eq)]
struct Snapshot([usize; 8]);

impl Snapshot {
    fn of(b: &Builder) -> Snapshot {
        Snapshot([
            b.services.len(),
            b.services.iter().map(|s| s.destinations.len()).sum(),
            b.vips.len(),
            b.real_server_lo.len(),
            b.real_server_sysctls.values.len(),
            b.director_sysctls.values.len(),
            b.marks.len(),
            usize::from(b.director_address.is_some()),
        ])
    }
}

fn joined(words: &[Word]) -> String {
    words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")
}

/// What `echo [-n] [-e] WORDS…` prints.
fn echo_text(args: &[Word]) -> String {
    let skip = args
        .iter()
        .take_while(|w| matches!(w.text.as_str(), "-n" | "-e" | "-E" | "-ne" | "-en"))
        .count();
    joined(&args[skip..])
}

/// What `printf FORMAT [ARGS…]` prints, for the simple formats scripts use.
fn printf_text(args: &[Word]) -> String {
    let Some(format) = args.first() else { return String::new() };
    let format = format.text.replace("\\n", "\n");
    match args.get(1) {
        Some(arg) if format.contains("%s") || format.contains("%d") => format.replacen("%s", &arg.text, 1).replacen("%d", &arg.text, 1),
        _ => format,
    }
}

/// `echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore` (one value), or lines
/// `KEY = VALUE` written to `/etc/sysctl.conf`.
fn write_sysctl_file(b: &mut Builder, target: &Word, value: &str, span: Span, part_role: Option<Role>) {
    if let Some(path) = target.text.strip_prefix("/proc/sys/") {
        let key = path.trim_matches('/').replace('/', ".");
        set_sysctl(b, &key, value.trim(), target.span, part_role);
        return;
    }
    for l in value.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        match l.split_once('=') {
            // A well-formed key of another subsystem (`kernel.sysrq`), written to a file and
            // not applied here: skipped. Anything else meets the trust boundary.
            Some((key, _))
                if !key.trim().starts_with("net.")
                    && key
                        .trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
            {
                b.note(
                    crate::codes::code::IMPORT_SKIPPED_LINE,
                    format!("`{}` is not a networking setting; lvsdr skips it", key.trim()),
                    span,
                    "",
                )
            }
            Some((key, value)) => set_sysctl(b, key.trim(), value.trim(), target.span.or(span), part_role),
            None => b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                format!("`{l}` written to {} is not KEY = VALUE", target.text),
                span,
                "",
            ),
        }
    }
}

/// One sysctl setting, checked at the trust boundary: a key outside the
/// allow-list refuses the whole file, as in `sysctl -w`.
fn set_sysctl(b: &mut Builder, key: &str, value: &str, span: Span, part_role: Option<Role>) {
    let Ok(value) = value.trim_matches(|c| c == '"' || c == '\'').parse::<i64>() else {
        b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            format!("sysctl `{key}` is set to `{value}`, which is not a number"),
            span,
            "",
        );
        return;
    };
    let role = part_role.unwrap_or(if real_server_sysctl(key) {
        Role::RealServer
    } else {
        Role::Director
    });
    let key = match SysctlKey::parse(key) {
        Ok(k) => k,
        Err(e) => return b.refuse(e, span),
    };
    let value = match check_sysctl_value(&key, value) {
        Ok(v) => v,
        Err(e) => return b.refuse(e, span),
    };
    match role {
        Role::Director => b.director_sysctls.set(key, value, span),
        Role::RealServer => b.real_server_sysctls.set(key, value, span),
    }
}

/// `ipvsadm …`, and `ipvsadm -R` fed by a heredoc: each of its lines is one command.
fn ipvsadm_line(b: &mut Builder, line: &Line) {
    let args = &line.words[1..];
    let restore = args.iter().any(|w| w.text == "-R" || w.text == "--restore");
    if !restore {
        return ipvsadm::apply(b, args, line.span);
    }
    b.director_span.get_or_insert(line.span);
    match line.run.redirects.iter().find_map(|r| r.heredoc.as_ref()) {
        Some(body) => {
            for (words, span) in body {
                if !words.is_empty() && !words[0].text.starts_with('#') {
                    ipvsadm::apply(b, words, *span);
                }
            }
        }
        None => {
            let from = line
                .run
                .redirects
                .iter()
                .find(|r| r.op == "<")
                .map(|r| r.target.text.clone())
                .unwrap_or_else(|| "its standard input".into());
            b.note(
                crate::codes::code::IMPORT_SKIPPED_LINE,
                format!("`ipvsadm -R` reads its table from {from}, which lvsdr does not open"),
                line.span,
                "give lvsdr that file too (it reads `ipvsadm -S -n` dumps), or write the table in the script with a heredoc",
            );
        }
    }
}

/// `ifconfig IFACE [ADDR] [netmask M] [broadcast B] [up|down]`
fn ifconfig(b: &mut Builder, words: &[Word], span: Span, addresses: &mut HostAddresses) {
    let Some(iface) = words.get(1) else { return };
    let Some(addr_word) = words.get(2) else { return };
    let Ok(addr) = addr_word.text.parse::<Ipv4Addr>() else {
        // `ifconfig eth0:0 down` takes the alias's address away.
        if addr_word.text == "down" && iface.text.contains(':') {
            addresses.clear(&iface.text);
        }
        return;
    };
    let mask = words
        .windows(2)
        .find(|p| p[0].text == "netmask")
        .map(|p| (p[1].text.parse::<Ipv4Addr>().ok().and_then(mask_prefix), p[1].span));
    let prefix = match mask {
        Some((Some(p), s)) => At::new(p, s),
        Some((None, s)) => {
            return b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                "this netmask is not a valid contiguous mask",
                s,
                "use a netmask such as 255.255.255.255",
            )
        }
        None => At::new(classful_prefix(addr), addr_word.span),
    };
    addresses.add(Placed {
        label: iface.text.clone(),
        address: At::new(IpAddr::V4(addr), addr_word.span),
        prefix,
        peer: false,
        span,
    });
}

/// `ip addr add ADDR/P dev IFACE`, `ip route …`, `ip link …`
fn ip(b: &mut Builder, words: &[Word], span: Span, addresses: &mut HostAddresses) {
    // `ip -6 addr add …`, `ip -4 …`: the address says its family itself; `ip -n NS` names the host.
    let mut flags = 0;
    while let Some(w) = words.get(1 + flags).filter(|w| w.text.starts_with('-')) {
        flags += if matches!(w.text.as_str(), "-n" | "-net" | "-netns" | "--netns") {
            2
        } else {
            1
        };
    }
    let words: Vec<Word> = words[..1].iter().chain(words.get(1 + flags..).unwrap_or(&[])).cloned().collect();
    let words = words.as_slice();
    let object = words.get(1).map(|w| w.text.as_str()).unwrap_or("");
    let verb = words.get(2).map(|w| w.text.as_str()).unwrap_or("");
    let is_address = "address".starts_with(object) && !object.is_empty();
    if is_address && (verb == "del" || verb == "delete") {
        // `ip addr del ADDR[/P] dev IFACE`: a VIP or NIC address taken away again.
        let Some(a) = words.get(3) else { return };
        let dev = words.windows(2).find(|p| p[0].text == "dev").map(|p| p[1].text.as_str());
        match a.text.split('/').next().unwrap_or("").parse::<IpAddr>() {
            Ok(addr) => {
                addresses.delete(addr, dev);
            }
            Err(_) => b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                "`ip addr del` needs an address",
                span,
                "for example: ip addr del 192.168.1.192/32 dev lo",
            ),
        }
        return;
    }
    if is_address && verb == "flush" {
        if let Some(dev) = words
            .windows(2)
            .find(|p| p[0].text == "dev")
            .map(|p| p[1].text.as_str())
            .or(words.get(3).map(|w| w.text.as_str()))
        {
            addresses.clear(dev);
        }
        return;
    }
    if is_address && (verb == "add" || verb == "replace") {
        let Some(a) = words.get(3) else { return };
        let dev = words.windows(2).find(|p| p[0].text == "dev").map(|p| p[1].text.clone());
        let (text, prefix) = match a.text.split_once('/') {
            Some((t, p)) => (t, p.parse::<u8>().ok()),
            None => (a.text.as_str(), None),
        };
        let addr = text.parse::<IpAddr>();
        let prefix = match (&addr, prefix) {
            (Ok(a), None) => Some(Family::of(a).host_prefix()),
            (Ok(a), Some(p)) => Some(p).filter(|p| *p <= Family::of(a).host_prefix()),
            _ => None,
        };
        let (Ok(addr), Some(prefix), Some(dev)) = (addr, prefix, dev) else {
            return b.note(
                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                "`ip addr add` needs ADDRESS/PREFIX and `dev IFACE`",
                span,
                "for example: ip addr add 192.168.1.192/32 dev lo",
            );
        };
        let nodad = words.iter().any(|w| w.text == "nodad");
        let deprecated = words.windows(2).any(|p| p[0].text == "preferred_lft" && p[1].text == "0");
        addresses.add(Placed {
            label: dev,
            address: At::new(addr, a.span),
            prefix: At::new(prefix, a.span),
            peer: words.iter().any(|w| w.text == "peer"),
            span,
        });
        if addr.is_ipv6() && !nodad {
            if let Some(v) = b.vips.iter_mut().find(|v| v.address.value == addr) {
                v.dad = Some(span);
            }
        }
        if addr.is_ipv6() && !deprecated {
            if let Some(v) = b.vips.iter_mut().find(|v| v.address.value == addr) {
                v.preferred = Some(span);
            }
        }
    } else if !("link".starts_with(object) || "route".starts_with(object) || object == "netns") || object.is_empty() {
        b.note(
            crate::codes::code::IMPORT_SKIPPED_LINE,
            "this `ip` command is not something lvsdr imports; line skipped",
            span,
            "",
        );
    }
}

/// `route add -host ADDR dev IFACE`: nothing to import (the address on an
/// interface already makes its route), but a missing `dev` is worth a word.
fn route(b: &mut Builder, words: &[Word], span: Span) {
    if words.get(1).map(|w| w.text.as_str()) != Some("add") {
        return;
    }
    let has_dev = words.iter().any(|w| w.text == "dev");
    let has_gw = words.iter().any(|w| w.text == "gw");
    if !has_dev && !has_gw {
        if let Some(last) = words.last() {
            if last.text.parse::<Ipv4Addr>().is_err() && !last.text.starts_with('-') {
                b.note(
                    crate::codes::code::ROUTE_WITHOUT_DEV,
                    format!("`route add` names the interface `{}` without `dev`", last.text),
                    last.span,
                    &format!("write `dev {}`, or better drop the line: adding the address to the interface already adds this route (ip route add … dev {})", last.text, last.text),
                );
                return;
            }
        }
        b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            "`route add` without `dev` or `gw`",
            span,
            "name the interface with `dev IFACE`",
        );
    }
}
