//! Reads shell scripts that set up a DR director and its real servers, in
//! the style of the LVS-DR walkthroughs: shell variables, `ipvsadm`,
//! `ifconfig`, `ip addr`, `route`/`ip route` and `sysctl -w`.
//!
//! A file may hold the director's script and the real servers' script one
//! after the other, each starting with its own `#!` line. A part that runs
//! `ipvsadm` is the director's; a part that puts the VIP on `lo` is the
//! real servers' (it is run on every real server). In a file with a single
//! part, each line goes where it obviously belongs.

use super::builder::Builder;
use super::shell::{self, Word};
use super::{ipvsadm, marks};
use crate::diagnostic::Diagnostic;
use crate::model::Family;
use crate::model::{Subnet, Topology};
use crate::names::SysctlKey;
use crate::source::{At, Span};
use crate::LoadError;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Director,
    RealServer,
}

struct Line {
    part: usize,
    words: Vec<Word>,
    span: Span,
}

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

/// Reads one script into `b`, its spans counted from `base`.
pub fn read(b: &mut Builder, text: &str, base: usize) {
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut lines = Vec::new();
    let mut part = 0;
    let mut offset = base;
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        let content = raw.trim_end_matches(['\n', '\r']);
        let span = Span::new(offset + (content.len() - content.trim_start().len()), offset + content.len());
        let here = offset;
        offset += raw.len();
        if content.trim_start().starts_with("#!") && n > 0 {
            part += 1;
        }
        let Some(words) = shell::words(content, here, &vars) else {
            b.note("DR101", "unterminated quote", span, "close the quote");
            continue;
        };
        if words.is_empty() {
            continue;
        }
        if let Some((name, value)) = shell::assignment(&words) {
            vars.insert(name, value);
            continue;
        }
        lines.push(Line { part, words, span });
    }
    let parts = part + 1;
    let role_of_part: Vec<Option<Role>> = (0..parts)
        .map(|p| {
            let ls: Vec<&Line> = lines.iter().filter(|l| l.part == p).collect();
            if ls.iter().any(|l| is_ipvsadm(&l.words)) {
                Some(Role::Director)
            } else if ls.iter().any(|l| configures_lo(&l.words)) {
                Some(Role::RealServer)
            } else {
                None
            }
        })
        .collect();

    for line in &lines {
        let words = &line.words;
        let name = command_name(&words[0]).to_string();
        let part_role = if parts > 1 { role_of_part[line.part] } else { None };
        match name.as_str() {
            "ipvsadm" => ipvsadm::apply(b, &words[1..], line.span),
            "iptables" | "ip6tables" | "iptables-legacy" | "ip6tables-legacy" | "iptables-nft" | "ip6tables-nft" => {
                marks::iptables(b, words, line.span)
            }
            "nft" => marks::nft(b, words, line.span),
            "sysctl" => {
                for w in words[1..].iter().filter(|w| !w.text.starts_with('-')) {
                    let Some((key, value)) = w.text.split_once('=') else {
                        b.note("DR100", format!("`sysctl {}` reads a value; nothing to import", w.text), w.span, "");
                        continue;
                    };
                    let key = key.trim();
                    let Ok(value) = value.trim().parse::<i64>() else {
                        b.note(
                            "DR101",
                            format!("sysctl `{key}` is set to `{value}`, which is not a number"),
                            w.span,
                            "",
                        );
                        continue;
                    };
                    let role = part_role.unwrap_or(if real_server_sysctl(key) {
                        Role::RealServer
                    } else {
                        Role::Director
                    });
                    let key = match SysctlKey::parse(key) {
                        Ok(k) => k,
                        Err(e) => {
                            b.refuse(e, w.span);
                            continue;
                        }
                    };
                    match role {
                        Role::Director => b.director_sysctls.set(key, value, w.span),
                        Role::RealServer => b.real_server_sysctls.set(key, value, w.span),
                    }
                }
            }
            "ifconfig" => ifconfig(b, words, line.span),
            "ip" => ip(b, words, line.span),
            "route" => route(b, words, line.span),
            "echo" | "set" | "modprobe" | "exit" | "true" | "systemctl" | "service" => {}
            _ => b.note(
                "DR100",
                format!("`{name}` is not something lvsdr imports; line skipped"),
                line.span,
                "",
            ),
        }
    }
}

/// `ifconfig IFACE [ADDR] [netmask M] [broadcast B] [up|down]`
fn ifconfig(b: &mut Builder, words: &[Word], span: Span) {
    let Some(iface) = words.get(1) else { return };
    let Some(addr_word) = words.get(2) else { return };
    let Ok(addr) = addr_word.text.parse::<Ipv4Addr>() else {
        return; // `ifconfig eth0:0 down` and the like
    };
    let mask = words
        .windows(2)
        .find(|p| p[0].text == "netmask")
        .map(|p| (p[1].text.parse::<Ipv4Addr>().ok().and_then(mask_prefix), p[1].span));
    let prefix = match mask {
        Some((Some(p), s)) => At::new(p, s),
        Some((None, s)) => {
            return b.note(
                "DR101",
                "this netmask is not a valid contiguous mask",
                s,
                "use a netmask such as 255.255.255.255",
            )
        }
        None => At::new(classful_prefix(addr), addr_word.span),
    };
    place_address(b, &iface.text, At::new(IpAddr::V4(addr), addr_word.span), prefix, span);
}

fn place_address(b: &mut Builder, iface: &str, addr: At<IpAddr>, prefix: At<u8>, span: Span) {
    let base = iface.split(':').next().unwrap_or(iface);
    let host = Family::of(&addr.value).host_prefix();
    if base == "lo" {
        if !addr.value.is_loopback() {
            b.real_server_lo.push(At::new(
                Subnet {
                    address: addr.value,
                    prefix: prefix.value,
                },
                prefix.span.or(addr.span),
            ));
        }
    } else if iface.contains(':') || prefix.value == host {
        b.director_span.get_or_insert(span);
        b.add_vip(addr, prefix);
        b.director_interface = b.interface(base, span);
    } else {
        let lan = Subnet {
            address: addr.value,
            prefix: prefix.value,
        };
        b.director_span = Some(span);
        if b.director_address.as_ref().is_none_or(|a| a.is_ipv4() == addr.is_ipv4()) {
            b.director_address = Some(addr.clone());
        }
        b.lan = Some(At::new(
            Subnet {
                address: lan.network(),
                prefix: lan.prefix,
            },
            addr.span,
        ));
        b.director_interface = b.interface(base, span);
    }
}

/// `ip addr add ADDR/P dev IFACE`, `ip route …`, `ip link …`
fn ip(b: &mut Builder, words: &[Word], span: Span) {
    // `ip -6 addr add …`, `ip -4 …`: the address says its family itself.
    let flags = words.iter().skip(1).take_while(|w| w.text == "-6" || w.text == "-4").count();
    let words: Vec<Word> = words[..1].iter().chain(&words[1 + flags..]).cloned().collect();
    let words = words.as_slice();
    let object = words.get(1).map(|w| w.text.as_str()).unwrap_or("");
    let verb = words.get(2).map(|w| w.text.as_str()).unwrap_or("");
    if "address".starts_with(object) && !object.is_empty() && (verb == "add" || verb == "replace") {
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
                "DR101",
                "`ip addr add` needs ADDRESS/PREFIX and `dev IFACE`",
                span,
                "for example: ip addr add 192.168.1.192/32 dev lo",
            );
        };
        let nodad = words.iter().any(|w| w.text == "nodad");
        let deprecated = words.windows(2).any(|p| p[0].text == "preferred_lft" && p[1].text == "0");
        place_address(b, &dev, At::new(addr, a.span), At::new(prefix, a.span), span);
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
    } else if !("link".starts_with(object) || "route".starts_with(object)) || object.is_empty() {
        b.note("DR100", "this `ip` command is not something lvsdr imports; line skipped", span, "");
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
                    "DR104",
                    format!("`route add` names the interface `{}` without `dev`", last.text),
                    last.span,
                    &format!("write `dev {}`, or better drop the line: adding the address to the interface already adds this route (ip route add … dev {})", last.text, last.text),
                );
                return;
            }
        }
        b.note(
            "DR101",
            "`route add` without `dev` or `gw`",
            span,
            "name the interface with `dev IFACE`",
        );
    }
}
