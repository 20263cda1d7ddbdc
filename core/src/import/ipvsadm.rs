//! Reads one `ipvsadm` command line (already split into words) and applies
//! it to a [`Builder`]. Shared by the script and `ipvsadm -S` importers.
//!
//! Options are read the way ipvsadm's popt table reads them: long options
//! (`--add-service`, `--scheduler=wrr`), short ones alone or combined
//! (`-At VIP:80`, `-Ln`), a short option's value attached (`-swrr`, `-s=wrr`)
//! or in the next word, and `-p` with or without its timeout. An option
//! ipvsadm does not have makes it refuse the line: a DR101 warning, and the
//! line is not applied.

use super::builder::Builder;
use super::ports;
use super::shell::Word;

use crate::model::*;
use crate::source::{At, Span};
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    AddService,
    EditService,
    DeleteService,
    AddDest,
    EditDest,
    DeleteDest,
    Clear,
    /// A command that changes nothing lvsdr models, with what it does.
    Other(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    Value,
    /// `-p [timeout]`: the next word when it does not start with `-`.
    MaybeValue,
}

/// ipvsadm's options: long name, short letter, what follows.
const OPTIONS: [(&str, Option<char>, Takes); 55] = [
    ("add-service", Some('A'), Takes::Nothing),
    ("edit-service", Some('E'), Takes::Nothing),
    ("delete-service", Some('D'), Takes::Nothing),
    ("clear", Some('C'), Takes::Nothing),
    ("list", Some('L'), Takes::Nothing),
    ("list", Some('l'), Takes::Nothing),
    ("zero", Some('Z'), Takes::Nothing),
    ("add-server", Some('a'), Takes::Nothing),
    ("edit-server", Some('e'), Takes::Nothing),
    ("delete-server", Some('d'), Takes::Nothing),
    ("set", None, Takes::Nothing),
    ("help", Some('h'), Takes::Nothing),
    ("version", Some('v'), Takes::Nothing),
    ("restore", Some('R'), Takes::Nothing),
    ("save", Some('S'), Takes::Nothing),
    ("start-daemon", None, Takes::Value),
    ("stop-daemon", None, Takes::Value),
    ("tcp-service", Some('t'), Takes::Value),
    ("udp-service", Some('u'), Takes::Value),
    ("sctp-service", None, Takes::Value),
    ("fwmark-service", Some('f'), Takes::Value),
    ("scheduler", Some('s'), Takes::Value),
    ("pe", None, Takes::Value),
    ("persistent", Some('p'), Takes::MaybeValue),
    ("netmask", Some('M'), Takes::Value),
    ("real-server", Some('r'), Takes::Value),
    ("masquerading", Some('m'), Takes::Nothing),
    ("ipip", Some('i'), Takes::Nothing),
    ("gatewaying", Some('g'), Takes::Nothing),
    ("weight", Some('w'), Takes::Value),
    ("u-threshold", Some('x'), Takes::Value),
    ("l-threshold", Some('y'), Takes::Value),
    ("numeric", Some('n'), Takes::Nothing),
    ("connection", Some('c'), Takes::Nothing),
    ("mcast-interface", None, Takes::Value),
    ("mcast-group", None, Takes::Value),
    ("mcast-port", None, Takes::Value),
    ("mcast-ttl", None, Takes::Value),
    ("sync-maxlen", None, Takes::Value),
    ("syncid", None, Takes::Value),
    ("timeout", None, Takes::Nothing),
    ("daemon", None, Takes::Nothing),
    ("stats", None, Takes::Nothing),
    ("rate", None, Takes::Nothing),
    ("thresholds", None, Takes::Nothing),
    ("persistent-conn", None, Takes::Nothing),
    ("nosort", None, Takes::Nothing),
    ("sort", None, Takes::Nothing),
    ("exact", Some('X'), Takes::Nothing),
    ("ipv6", Some('6'), Takes::Nothing),
    ("ops", Some('o'), Takes::Nothing),
    ("sched-flags", Some('b'), Takes::Value),
    ("tun-type", None, Takes::Value),
    ("tun-port", None, Takes::Value),
    ("tun-nocsum", None, Takes::Nothing),
];

/// One option as read: its long name, where it was written, and its value.
#[derive(Debug, Clone)]
struct Opt {
    name: &'static str,
    /// The option as written (`-t`, `--scheduler`), for messages.
    written: String,
    span: Span,
    value: Option<Word>,
}

/// Why a command line is refused, as ipvsadm would refuse it.
struct Refusal {
    message: String,
    span: Span,
    help: &'static str,
}

/// Splits ipvsadm's arguments into options, popt's way, and the words left over.
fn options(args: &[Word]) -> Result<(Vec<Opt>, Vec<Word>), Refusal> {
    let mut out = Vec::new();
    let mut rest = Vec::new();
    let mut i = 0;
    let unknown = |written: &str, span: Span| Refusal {
        message: format!("ipvsadm has no option `{written}`; it refuses the whole line, so the line was not read"),
        span,
        help: "see `ipvsadm --help` for the options it takes",
    };
    while i < args.len() {
        let w = &args[i];
        let t = w.text.as_str();
        if t == "--" {
            rest.extend(args[i + 1..].iter().cloned());
            break;
        }
        if let Some(long) = t.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let Some(&(canonical, _, takes)) = OPTIONS.iter().find(|o| o.0 == name) else {
                return Err(unknown(t, w.span));
            };
            let value_word = |text: &str| Word {
                text: text.to_string(),
                span: w.span,
            };
            let value = match (takes, inline) {
                (Takes::Nothing, Some(_)) => {
                    return Err(Refusal {
                        message: format!("`--{name}` takes no value"),
                        span: w.span,
                        help: "",
                    })
                }
                (Takes::Nothing, None) => None,
                (_, Some(v)) => Some(value_word(v)),
                (Takes::Value, None) => {
                    i += 1;
                    Some(args.get(i).cloned().ok_or_else(|| Refusal {
                        message: format!("`{t}` expects a value after it"),
                        span: w.span,
                        help: "",
                    })?)
                }
                (Takes::MaybeValue, None) => match args.get(i + 1) {
                    Some(n) if !n.text.starts_with('-') => {
                        i += 1;
                        Some(n.clone())
                    }
                    _ => None,
                },
            };
            out.push(Opt {
                name: canonical,
                written: format!("--{name}"),
                span: w.span,
                value,
            });
        } else if t.len() > 1 && t.starts_with('-') {
            let cluster: Vec<char> = t[1..].chars().collect();
            let mut k = 0;
            while k < cluster.len() {
                let c = cluster[k];
                let Some(&(canonical, _, takes)) = OPTIONS.iter().find(|o| o.1 == Some(c)) else {
                    return Err(unknown(&format!("-{c}"), w.span));
                };
                let attached: String = cluster[k + 1..].iter().collect();
                let attached = attached.strip_prefix('=').unwrap_or(&attached).to_string();
                let value = match takes {
                    Takes::Nothing => None,
                    _ if !attached.is_empty() => {
                        k = cluster.len();
                        Some(Word {
                            text: attached,
                            span: w.span,
                        })
                    }
                    Takes::Value => {
                        i += 1;
                        Some(args.get(i).cloned().ok_or_else(|| Refusal {
                            message: format!("`-{c}` expects a value after it"),
                            span: w.span,
                            help: "",
                        })?)
                    }
                    Takes::MaybeValue => match args.get(i + 1) {
                        Some(n) if !n.text.starts_with('-') => {
                            i += 1;
                            Some(n.clone())
                        }
                        _ => None,
                    },
                };
                out.push(Opt {
                    name: canonical,
                    written: format!("-{c}"),
                    span: w.span,
                    value,
                });
                k += 1;
            }
        } else {
            rest.push(w.clone());
        }
        i += 1;
    }
    Ok((out, rest))
}

/// Why an address could not be read.
pub enum AddrError {
    /// A name, which lvsdr never resolves.
    HostName(String),
    /// A port that is neither a number nor a service name lvsdr knows.
    Port(String),
    /// No address before the port (an empty variable, most often).
    Empty,
    Malformed,
}

/// `192.168.1.192:80`, `192.168.1.192:http`, `192.168.1.192`, `[2001:db8::1]:80` or `[2001:db8::1]`.
pub fn parse_addr_port(w: &Word) -> Result<(At<IpAddr>, Option<At<u16>>), AddrError> {
    let text = w.text.as_str();
    let (a, p) = if let Some(rest) = text.strip_prefix('[') {
        let (a, after) = rest.split_once(']').ok_or(AddrError::Malformed)?;
        match after {
            "" => (a, None),
            _ => (a, Some(after.strip_prefix(':').ok_or(AddrError::Malformed)?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((a, p)) if !a.contains(':') => (a, Some(p)),
            _ => (text, None),
        }
    };
    let addr: IpAddr = match a.parse() {
        Ok(a) => a,
        Err(_) if a.is_empty() => return Err(AddrError::Empty),
        Err(_)
            if a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
                && a.chars().any(|c| c.is_ascii_alphabetic()) =>
        {
            return Err(AddrError::HostName(a.to_string()))
        }
        Err(_) => return Err(AddrError::Malformed),
    };
    let port = match p {
        Some(p) => Some(At::new(ports::port(p).ok_or_else(|| AddrError::Port(p.to_string()))?, w.span)),
        None => None,
    };
    Ok((At::new(addr, w.span), port))
}

/// [`parse_addr_port`], with the host names the user mapped (`--resolve NAME=ADDRESS`) read as their addresses.
fn addr_port(b: &Builder, w: &Word) -> Result<(At<IpAddr>, Option<At<u16>>), AddrError> {
    match parse_addr_port(w) {
        Err(AddrError::HostName(name)) => {
            let Some(address) = b.names.get(&name) else {
                return Err(AddrError::HostName(name));
            };
            let host = match address {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            };
            let port = w.text.get(name.len()..).unwrap_or("");
            parse_addr_port(&Word {
                text: format!("{host}{port}"),
                span: w.span,
            })
        }
        other => other,
    }
}

/// Says why an address was not read; the line is then not applied. A host
/// name nobody mapped refuses the file: half a table would pass for a whole one.
fn address_refused(b: &mut Builder, w: &Word, e: AddrError, example: &str) {
    match e {
        AddrError::HostName(name) => {
            let name = crate::names::shown(&name);
            b.refused.get_or_insert(crate::LoadError {
                code: crate::codes::code::UNRESOLVED_HOST_NAME,
                message: format!("`{name}` is a host name; lvsdr never resolves names, so it cannot know which address the table holds"),
                span: w.span,
                help: Some(format!(
                    "map it to its address (`--resolve {name}=ADDRESS`, or a hosts(5) file with `--hosts FILE`), or dump the table with `ipvsadm -S -n`, which writes addresses"
                )),
            });
        }
        AddrError::Port(port) => b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            format!("`{port}` is not a port number nor a service name lvsdr knows, so this line was not read"),
            w.span,
            "write the port as a number (lvsdr knows the common names: http, https, smtp, domain, ssh, …)",
        ),
        AddrError::Empty => b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            format!("`{}`: no address before the port; is the variable that should hold it set?", w.text),
            w.span,
            example,
        ),
        AddrError::Malformed => b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            format!("`{}`: not an ADDRESS[:PORT]", w.text),
            w.span,
            example,
        ),
    }
}

/// Applies `ipvsadm ARGS…`. `command_span` covers the whole line.
pub fn apply(b: &mut Builder, args: &[Word], command_span: Span) {
    b.director_span.get_or_insert(command_span);
    let (opts, rest) = match options(args) {
        Ok(o) => o,
        Err(r) => return b.note(crate::codes::code::IMPORT_MALFORMED_COMMAND, r.message, r.span, r.help),
    };
    let mut action: Option<Action> = None;
    let mut service: Option<(At<ServiceKey>, Option<At<IpAddr>>)> = None;
    let mut ipv6 = false;
    let mut scheduler: Option<At<Scheduler>> = None;
    let mut persistence: Option<At<u32>> = None;
    let mut netmask: Option<At<String>> = None;
    let mut flags: Vec<At<SchedFlag>> = Vec::new();
    let mut one_packet: Option<At<bool>> = None;
    let mut real: Option<(At<IpAddr>, Option<At<u16>>)> = None;
    let mut forward: Option<At<Forward>> = None;
    let mut weight: Option<At<u32>> = None;
    let mut upper: Option<At<u32>> = None;
    let mut lower: Option<At<u32>> = None;

    let bad = |b: &mut Builder, w: &Word, what: &str, help: &str| {
        b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            format!("`{}`: {what}", w.text),
            w.span,
            help,
        );
    };
    for o in &opts {
        let command = match o.name {
            "add-service" => Some(Action::AddService),
            "edit-service" => Some(Action::EditService),
            "delete-service" => Some(Action::DeleteService),
            "add-server" => Some(Action::AddDest),
            "edit-server" => Some(Action::EditDest),
            "delete-server" => Some(Action::DeleteDest),
            "clear" => Some(Action::Clear),
            "list" => Some(Action::Other("lists the table")),
            "zero" => Some(Action::Other("zeroes the counters")),
            "save" => Some(Action::Other("prints the table")),
            "restore" => Some(Action::Other("reads commands from its standard input")),
            "set" => Some(Action::Other("sets connection timeouts")),
            "start-daemon" | "stop-daemon" => Some(Action::Other("runs the connection sync daemon")),
            "help" | "version" => Some(Action::Other("prints its help")),
            _ => None,
        };
        if let Some(c) = command {
            if action.is_some() {
                return b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    format!(
                        "`{}` is a second command on one line; ipvsadm refuses it (\"multiple commands specified\")",
                        o.written
                    ),
                    o.span,
                    "one ipvsadm command a line",
                );
            }
            action = Some(c);
            continue;
        }
        let Some(v) = o.value.as_ref() else {
            match o.name {
                "ipv6" => ipv6 = true,
                "ops" => one_packet = Some(At::new(true, o.span)),
                "gatewaying" => forward = Some(At::new(Forward::Route, o.span)),
                "masquerading" => forward = Some(At::new(Forward::Masq, o.span)),
                "ipip" => forward = Some(At::new(Forward::Tunnel, o.span)),
                "persistent" => persistence = Some(At::new(300, o.span)),
                "tun-nocsum" => b.note(
                    crate::codes::code::IMPORT_SKIPPED_LINE,
                    format!("ipvsadm option `{}` is not modelled by lvsdr and was skipped", o.written),
                    o.span,
                    "",
                ),
                _ => {} // listing options: -n, -c, --stats, …
            }
            continue;
        };
        match o.name {
            "tcp-service" | "udp-service" | "sctp-service" => {
                let protocol = match o.name {
                    "tcp-service" => Protocol::Tcp,
                    "udp-service" => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                match addr_port(b, v) {
                    Ok((addr, port)) => {
                        let port = port.map(|p| p.value).unwrap_or(0);
                        service = Some((At::new(ServiceKey::Port { protocol, port }, v.span), Some(addr)));
                    }
                    Err(e) => return address_refused(b, v, e, "write it as -t 192.168.1.192:80"),
                }
            }
            "fwmark-service" => match v.text.parse::<u32>() {
                Ok(m) => service = Some((At::new(ServiceKey::Fwmark(m), v.span), None)),
                Err(_) => return bad(b, v, "is not a firewall mark number", "for example -f 1"),
            },
            "scheduler" => match Scheduler::parse(&v.text) {
                Some(s) => scheduler = Some(At::new(s, v.span)),
                None => {
                    return bad(
                        b,
                        v,
                        "is not a scheduler",
                        "use rr, wrr, lc, wlc, sed, nq, sh, dh, fo, ovf, mh, lblc or lblcr",
                    )
                }
            },
            "persistent" => match v.text.parse::<u32>() {
                Ok(t) if t > 0 => persistence = Some(At::new(t, v.span)),
                _ => {
                    return bad(
                        b,
                        v,
                        "is not a persistence timeout in seconds",
                        "for example -p 300, or -p alone for 300",
                    )
                }
            },
            "netmask" => netmask = Some(At::new(v.text.clone(), v.span)),
            "sched-flags" => {
                for f in v.text.split(',') {
                    match SchedFlag::parse(f) {
                        Some(f) => flags.push(At::new(f, v.span)),
                        None => bad(
                            b,
                            v,
                            "holds an unknown scheduler flag",
                            "use sh-fallback, sh-port, mh-fallback or mh-port",
                        ),
                    }
                }
            }
            "real-server" => match addr_port(b, v) {
                Ok(r) => real = Some(r),
                Err(e) => return address_refused(b, v, e, "write it as -r 192.168.1.213:80"),
            },
            "weight" | "u-threshold" | "l-threshold" => match v.text.parse::<u32>() {
                Ok(n) => {
                    let n = At::new(n, v.span);
                    match o.name {
                        "weight" => weight = Some(n),
                        "u-threshold" => upper = Some(n),
                        _ => lower = Some(n),
                    }
                }
                Err(_) => return bad(b, v, &format!("`{}` expects a number", o.written), ""),
            },
            "pe" | "tun-type" | "tun-port" => b.note(
                crate::codes::code::IMPORT_SKIPPED_LINE,
                format!("ipvsadm option `{}` is not modelled by lvsdr and was skipped", o.written),
                o.span,
                "",
            ),
            _ => {} // listing and sync-daemon options
        }
    }
    if let Some(extra) = rest.first().filter(|_| action != Some(Action::Other("sets connection timeouts"))) {
        return b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            format!(
                "`{}` is not an option; ipvsadm refuses the line (\"unexpected argument\")",
                extra.text
            ),
            extra.span,
            "",
        );
    }
    let Some(action) = action else {
        if opts.is_empty() {
            return b.note(
                crate::codes::code::IMPORT_SKIPPED_LINE,
                "`ipvsadm` alone lists the table; it changes nothing lvsdr models",
                command_span,
                "",
            );
        }
        return b.note(
            crate::codes::code::IMPORT_MALFORMED_COMMAND,
            "this ipvsadm line has no command (-A, -E, -D, -a, -e, -d, -C, …); ipvsadm refuses it",
            command_span,
            "for example: ipvsadm -A -t 192.168.1.192:80 -s wrr",
        );
    };

    let family = match &service {
        Some((_, Some(a))) => Family::of(&a.value),
        _ if ipv6 => Family::V6,
        _ => Family::V4,
    };
    // How the messages name the service: as the command wrote it.
    let label = |key: &At<ServiceKey>, vip: &Option<At<IpAddr>>| match (key.value, vip) {
        (ServiceKey::Port { protocol, port }, Some(v)) => format!("{} {}", protocol.name(), host_port(v.value, port)),
        (k, _) => k.to_string(),
    };
    match action {
        Action::Clear => b.clear_services(),
        Action::Other(what) => b.note(
            crate::codes::code::IMPORT_SKIPPED_LINE,
            format!("this ipvsadm command {what}; it changes nothing lvsdr models"),
            command_span,
            "",
        ),
        Action::AddService | Action::EditService => {
            let Some((key, vip)) = service else {
                return b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    "ipvsadm -A/-E without a service (-t, -u, --sctp-service or -f)",
                    command_span,
                    "add -t VIP:PORT",
                );
            };
            let vip_value = vip.as_ref().map(|v| v.value);
            let existing = b.service_mut(key.value, vip_value, family).is_some();
            if action == Action::EditService && !existing {
                return b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    format!("ipvsadm -E edits service {}, which was not added", label(&key, &vip)),
                    command_span,
                    "add it first with -A",
                );
            }
            if action == Action::AddService && existing {
                b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    format!(
                        "service {} is added twice; ipvsadm fails with \"Service already exists\"",
                        label(&key, &vip)
                    ),
                    command_span,
                    "use -E to edit an existing service",
                );
                return;
            }
            let netmask = match netmask {
                None => At::implied(family.host_prefix()),
                Some(m) => {
                    let prefix = match family {
                        Family::V4 => m.value.parse::<Ipv4Addr>().ok().and_then(v4_prefix_of),
                        Family::V6 => m.value.parse::<u8>().ok().filter(|p| (1..=128).contains(p)),
                    };
                    match prefix {
                        Some(p) => At::new(p, m.span),
                        None => {
                            b.note(
                                crate::codes::code::IMPORT_MALFORMED_COMMAND,
                                format!("`{}`: not a persistence netmask for {}", m.value, family.name()),
                                m.span,
                                "IPv4 takes a contiguous mask such as 255.255.255.0, IPv6 a prefix length such as 64",
                            );
                            At::implied(family.host_prefix())
                        }
                    }
                }
            };
            if action == Action::AddService {
                b.services.push(VirtualService {
                    key: key.clone(),
                    vip: vip.clone(),
                    family,
                    scheduler: At::implied(Scheduler::Wlc),
                    flags: vec![],
                    persistence: None,
                    one_packet: At::implied(false),
                    destinations: vec![],
                    span: command_span,
                });
            }
            let Some(s) = b.service_mut(key.value, vip_value, family) else {
                return;
            };
            if let Some(sc) = scheduler {
                s.scheduler = sc;
            }
            if !flags.is_empty() {
                s.flags = flags;
            }
            if let Some(t) = persistence {
                s.persistence = Some(Persistence { timeout: t, netmask });
            }
            if let Some(o) = one_packet {
                s.one_packet = o;
            }
        }
        Action::DeleteService => {
            if let Some((key, vip)) = service {
                let vip = vip.map(|v| v.value);
                b.services
                    .retain(|s| !(s.key.value == key.value && s.vip.as_ref().map(|v| v.value) == vip && s.family == family));
            }
        }
        Action::AddDest | Action::EditDest | Action::DeleteDest => {
            let (Some((key, vip)), Some((raddr, rport))) = (service, real) else {
                return b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    "ipvsadm -a/-e/-d needs both a service and -r REAL-SERVER",
                    command_span,
                    "for example: ipvsadm -a -t VIP:80 -r 192.168.1.213:80 -g -w 1",
                );
            };
            if Family::of(&raddr.value) != family {
                return b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    format!(
                        "real server {} is {} but service {} is {}; ipvsadm refuses the mix for direct routing",
                        raddr.value,
                        Family::of(&raddr.value).name(),
                        label(&key, &vip),
                        family.name()
                    ),
                    raddr.span,
                    "give the service a real server address of its own family",
                );
            }
            let name = b.server_name(raddr.clone());
            let service_label = label(&key, &vip);
            let Some(draft) = b.service_mut(key.value, vip.map(|v| v.value), family) else {
                return b.note(
                    crate::codes::code::IMPORT_MALFORMED_COMMAND,
                    format!("real server added to service {service_label}, which was not added first"),
                    command_span,
                    "add the service with -A before its real servers",
                );
            };
            let vport = match key.value {
                ServiceKey::Port { port, .. } => port,
                ServiceKey::Fwmark(_) => 0,
            };
            // IPVS names a destination by address and port (without a port, ipvsadm takes the service's).
            let dport = rport.as_ref().map(|p| p.value).unwrap_or(vport);
            let pos = draft
                .destinations
                .iter()
                .position(|d| d.server.value == name && d.port.value == dport);
            match action {
                Action::DeleteDest => {
                    if let Some(p) = pos {
                        draft.destinations.remove(p);
                    }
                }
                Action::AddDest if pos.is_some() => {
                    b.note(
                        crate::codes::code::IMPORT_MALFORMED_COMMAND,
                        format!("{} is added twice to service {service_label}", raddr.value),
                        command_span,
                        "use -e to edit an existing real server",
                    );
                }
                _ => {
                    let d = match pos {
                        Some(p) => &mut draft.destinations[p],
                        None => {
                            draft.destinations.push(Destination {
                                server: At::new(name, raddr.span),
                                port: rport.clone().unwrap_or_else(|| At::implied(vport)),
                                forward: At::implied(Forward::Route),
                                weight: At::implied(1),
                                upper_threshold: None,
                                lower_threshold: None,
                                health_check: None,
                                urls: Vec::new(),
                                span: command_span,
                            });
                            draft.destinations.last_mut().expect("just pushed")
                        }
                    };
                    if let Some(p) = rport {
                        d.port = p;
                    }
                    if let Some(f) = forward {
                        d.forward = f;
                    }
                    if let Some(w) = weight {
                        d.weight = w;
                    }
                    if upper.is_some() {
                        d.upper_threshold = upper;
                    }
                    if lower.is_some() {
                        d.lower_threshold = lower;
                    }
                }
            }
        }
    }
}
