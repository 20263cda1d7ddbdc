//! Reads the firewall marking rules that feed fwmark services, where users
//! keep them beside their `ipvsadm` lines:
//!
//! - `iptables -t mangle -A PREROUTING -d VIP -p tcp --dport 80 -j MARK --set-mark 1`
//!   (and `-m multiport --dports 80,443`, `--set-xmark 1/0xffffffff`, `ip6tables`);
//! - `nft add rule inet TABLE CHAIN ip daddr VIP tcp dport { 80, 443 } meta mark set 1`.
//!
//! A rule that marks is read into a [`MarkRule`]; a firewall line that does
//! something else is skipped with a note, and one that marks in a way lvsdr
//! cannot read is a DR102 warning with its span.

use super::builder::Builder;
use super::shell::Word;
use crate::model::*;
use crate::source::{At, Span};
use std::net::IpAddr;

/// A destination written as `ADDRESS` or `ADDRESS/PREFIX`.
fn destination(text: &str) -> Option<Subnet> {
    match text.split_once('/') {
        Some(_) => Subnet::parse(text).ok(),
        None => text.parse::<IpAddr>().ok().map(|a| Subnet {
            address: a,
            prefix: Family::of(&a).host_prefix(),
        }),
    }
}

/// `80`, `80,443`, `80:82` (a range, as iptables writes it), `80-82` (nft).
fn ports(text: &str) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once([':', '-']) {
            Some((a, b)) => {
                let (a, b) = (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?);
                if b < a || b - a > 1024 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(port_number(part)?),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A port as a number or an IANA service name, from the table lvsdr ships.
fn port_number(text: &str) -> Option<u16> {
    super::ports::port(text)
}

fn mark_value(text: &str) -> Option<u32> {
    let value = text.split('/').next()?;
    match value.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

/// `iptables …` or `ip6tables …` (the command word included).
pub fn iptables(b: &mut Builder, words: &[Word], span: Span) {
    let six = words[0].text.ends_with("ip6tables");
    let mut table = "filter";
    let mut appends = false;
    let mut chain = "";
    let mut dest: Option<At<Subnet>> = None;
    let mut protocol: Option<At<Protocol>> = None;
    let mut port_list: Option<At<Vec<u16>>> = None;
    let mut mark: Option<At<u32>> = None;
    let mut target = "";
    let mut i = 1;
    while i < words.len() {
        let w = words[i].text.as_str();
        let next = words.get(i + 1);
        let mut took = true;
        match (w, next) {
            ("-t" | "--table", Some(v)) => table = v.text.as_str(),
            ("-A" | "--append" | "-I" | "--insert", Some(v)) => {
                appends = true;
                chain = v.text.as_str();
                // `-I CHAIN N`: the position is not part of the rule.
                if words.get(i + 2).is_some_and(|n| n.text.parse::<u32>().is_ok()) {
                    i += 1;
                }
            }
            ("-d" | "--destination" | "--dst", Some(v)) => match destination(&v.text) {
                Some(d) => dest = Some(At::new(d, v.span)),
                None => return unread(b, v, "is not an address or prefix"),
            },
            ("-p" | "--protocol", Some(v)) => match Protocol::parse(&v.text.to_ascii_lowercase()) {
                Some(p) => protocol = Some(At::new(p, v.span)),
                None => return unread(b, v, "is not tcp, udp or sctp"),
            },
            ("--dport" | "--destination-port" | "--dports" | "--destination-ports", Some(v)) => match ports(&v.text) {
                Some(p) => port_list = Some(At::new(p, v.span)),
                None => return unread(b, v, "is not a port list"),
            },
            ("-j" | "--jump", Some(v)) => target = v.text.as_str(),
            ("--set-mark" | "--set-xmark", Some(v)) => match mark_value(&v.text) {
                Some(m) => mark = Some(At::new(m, v.span)),
                None => return unread(b, v, "is not a mark"),
            },
            ("-m" | "--match", Some(_)) => {}
            _ => took = false,
        }
        i += if took { 2 } else { 1 };
    }
    if table != "mangle" || target != "MARK" || !appends {
        return b.note(
            crate::codes::code::IMPORT_SKIPPED_LINE,
            "this firewall rule sets no mark for IPVS; line skipped",
            span,
            "",
        );
    }
    if chain != "PREROUTING" {
        b.note(
            crate::codes::code::IMPORT_UNREAD_MARK_RULE,
            format!("the MARK rule is in chain {chain}; IPVS sees the mark only when it is set in PREROUTING"),
            span,
            "add the rule to the mangle table's PREROUTING chain",
        );
    }
    finish(b, dest, protocol, port_list, mark, MarkTool::Iptables, six, span);
}

/// `nft add rule FAMILY TABLE CHAIN <match…> meta mark set N` (the command word included).
/// Rules given as one quoted word are split the way nft splits them.
pub fn nft(b: &mut Builder, words: &[Word], span: Span) {
    let mut tokens: Vec<(String, Span)> = Vec::new();
    for w in &words[1..] {
        let spaced = w.text.replace('{', " { ").replace('}', " } ").replace(',', " , ");
        tokens.extend(spaced.split_whitespace().map(|t| (t.to_string(), w.span)));
    }
    let text: Vec<&str> = tokens.iter().map(|(t, _)| t.as_str()).collect();
    let Some(rule_at) = text.windows(2).position(|p| matches!(p[0], "add" | "insert") && p[1] == "rule") else {
        return b.note(
            crate::codes::code::IMPORT_SKIPPED_LINE,
            "this nft command adds no rule; line skipped",
            span,
            "",
        );
    };
    let Some(set_at) = text.windows(2).position(|p| p[0] == "mark" && p[1] == "set") else {
        return b.note(
            crate::codes::code::IMPORT_SKIPPED_LINE,
            "this nft rule sets no mark for IPVS; line skipped",
            span,
            "",
        );
    };
    let body = rule_at
        + 2
        + if matches!(text.get(rule_at + 2), Some(&("ip" | "ip6" | "inet"))) {
            3
        } else {
            2
        };
    let mut dest: Option<At<Subnet>> = None;
    let mut protocol: Option<At<Protocol>> = None;
    let mut port_list: Option<At<Vec<u16>>> = None;
    let mut six = false;
    let mut i = body;
    while i < set_at {
        let (t, s) = (&tokens[i].0, tokens[i].1);
        match t.as_str() {
            "ip" | "ip6" if text.get(i + 1) == Some(&"daddr") => {
                six = t == "ip6";
                match text.get(i + 2).and_then(|d| destination(d)) {
                    Some(d) => dest = Some(At::new(d, tokens[i + 2].1)),
                    None => {
                        return b.note(
                            crate::codes::code::IMPORT_UNREAD_MARK_RULE,
                            "nft `daddr` is followed by no address lvsdr can read",
                            s,
                            "write `ip daddr VIP`",
                        )
                    }
                }
                i += 3;
            }
            "tcp" | "udp" | "sctp" if text.get(i + 1) == Some(&"dport") => {
                protocol = Protocol::parse(t).map(|p| At::new(p, s));
                let (list, used) = match text.get(i + 2) {
                    Some(&"{") => {
                        let end = text[i + 2..].iter().position(|x| *x == "}").map(|e| i + 2 + e).unwrap_or(set_at);
                        (
                            text[i + 3..end]
                                .iter()
                                .filter(|x| **x != ",")
                                .copied()
                                .collect::<Vec<_>>()
                                .join(","),
                            end + 1 - i,
                        )
                    }
                    Some(p) => (p.to_string(), 3),
                    None => (String::new(), 2),
                };
                match ports(&list) {
                    Some(p) => port_list = Some(At::new(p, s)),
                    None => {
                        return b.note(
                            crate::codes::code::IMPORT_UNREAD_MARK_RULE,
                            format!("nft `dport {list}` is not a port list lvsdr can read"),
                            s,
                            "",
                        )
                    }
                }
                i += used;
            }
            "meta" if text.get(i + 1) == Some(&"l4proto") => {
                protocol = text.get(i + 2).and_then(|p| Protocol::parse(p)).map(|p| At::new(p, s));
                i += 3;
            }
            _ => i += 1,
        }
    }
    let mark = text
        .get(set_at + 2)
        .and_then(|m| mark_value(m))
        .map(|m| At::new(m, tokens[set_at + 2].1));
    finish(b, dest, protocol, port_list, mark, MarkTool::Nft, six, span);
}

fn unread(b: &mut Builder, w: &Word, what: &str) {
    b.note(
        crate::codes::code::IMPORT_UNREAD_MARK_RULE,
        format!("`{}` {what}; this marking rule was not read", w.text),
        w.span,
        "write the rule as `-d VIP -p tcp --dport PORT -j MARK --set-mark N`",
    );
}

#[allow(clippy::too_many_arguments)]
fn finish(
    b: &mut Builder,
    dest: Option<At<Subnet>>,
    protocol: Option<At<Protocol>>,
    port_list: Option<At<Vec<u16>>>,
    mark: Option<At<u32>>,
    tool: MarkTool,
    six: bool,
    span: Span,
) {
    let Some(mark) = mark else {
        return b.note(
            crate::codes::code::IMPORT_UNREAD_MARK_RULE,
            "this MARK rule sets no mark lvsdr can read",
            span,
            "write `--set-mark N` (or nft `meta mark set N`)",
        );
    };
    let Some(destination) = dest else {
        return b.note(
            crate::codes::code::IMPORT_UNREAD_MARK_RULE,
            format!(
                "the rule for mark {} matches no destination address; lvsdr cannot tell which VIP it serves",
                mark.value
            ),
            span,
            "add `-d VIP` (nft: `ip daddr VIP`)",
        );
    };
    if six != (destination.family() == Family::V6) && tool == MarkTool::Iptables {
        b.note(
            crate::codes::code::IMPORT_UNREAD_MARK_RULE,
            format!(
                "{} is {}, but this command is {}",
                destination.address,
                destination.family().name(),
                if six { "ip6tables" } else { "iptables" }
            ),
            destination.span,
            "use iptables for IPv4 addresses and ip6tables for IPv6 ones",
        );
        return;
    }
    b.marks.push(MarkRule {
        mark,
        destination,
        protocol,
        ports: port_list.unwrap_or_else(|| At::implied(vec![])),
        tool,
        span,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Word> {
        super::super::shell::words(line, 0, &std::collections::HashMap::new()).unwrap()
    }

    #[test]
    fn iptables_multiport_rule() {
        let mut b = Builder::default();
        iptables(
            &mut b,
            &words("iptables -t mangle -A PREROUTING -d 203.0.113.10/32 -p tcp -m multiport --dports 80,443 -j MARK --set-mark 7"),
            Span::NONE,
        );
        assert_eq!(b.marks.len(), 1, "{:?}", b.diagnostics);
        let m = &b.marks[0];
        assert_eq!(m.mark.value, 7);
        assert_eq!(m.destination.to_string(), "203.0.113.10/32");
        assert_eq!(m.ports.value, [80, 443]);
        assert_eq!(m.protocol.as_ref().map(|p| p.value), Some(Protocol::Tcp));
    }

    #[test]
    fn nft_rule_with_a_set_of_ports() {
        let mut b = Builder::default();
        nft(
            &mut b,
            &words("nft add rule inet lvs pre ip6 daddr 2001:db8::10 tcp dport { 80, 443 } meta mark set 0x2"),
            Span::NONE,
        );
        assert_eq!(b.marks.len(), 1, "{:?}", b.diagnostics);
        assert_eq!(b.marks[0].mark.value, 2);
        assert_eq!(b.marks[0].family(), Family::V6);
        assert_eq!(b.marks[0].ports.value, [80, 443]);
    }

    #[test]
    fn filter_rules_are_skipped_and_unreadable_marks_reported() {
        let mut b = Builder::default();
        iptables(&mut b, &words("iptables -A INPUT -p tcp --dport 22 -j ACCEPT"), Span::NONE);
        iptables(
            &mut b,
            &words("iptables -t mangle -A PREROUTING -p tcp --dport 80 -j MARK --set-mark 1"),
            Span::NONE,
        );
        assert!(b.marks.is_empty());
        let codes: Vec<&str> = b.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["DR100", "DR102"]);
    }
}
