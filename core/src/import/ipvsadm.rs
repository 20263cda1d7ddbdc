//! Reads one `ipvsadm` command line (already split into words) and applies
//! it to a [`Builder`]. Shared by the script and `ipvsadm -S` importers.

use super::builder::Builder;
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
    Other,
}

/// `192.168.1.192:80`, `192.168.1.192`, `[2001:db8::1]:80` or `[2001:db8::1]`.
pub fn parse_addr_port(w: &Word) -> Option<(At<IpAddr>, Option<At<u16>>)> {
    let text = w.text.as_str();
    let (a, p) = if let Some(rest) = text.strip_prefix('[') {
        let (a, after) = rest.split_once(']')?;
        match after {
            "" => (a, None),
            _ => (a, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((a, p)) if !a.contains(':') => (a, Some(p)),
            _ => (text, None),
        }
    };
    let addr: IpAddr = a.parse().ok()?;
    let port = match p {
        Some(p) => Some(At::new(p.parse::<u16>().ok()?, w.span)),
        None => None,
    };
    Some((At::new(addr, w.span), port))
}

/// Applies `ipvsadm ARGS…`. `command_span` covers the whole line.
pub fn apply(b: &mut Builder, args: &[Word], command_span: Span) {
    b.director_span.get_or_insert(command_span);
    let mut action = Action::Other;
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
        b.note("DR101", format!("`{}`: {what}", w.text), w.span, help);
    };
    let mut i = 0;
    while i < args.len() {
        let w = &args[i];
        let next = args.get(i + 1);
        let opt = w.text.as_str();
        let take = |i: &mut usize| {
            *i += 1;
            next
        };
        match opt {
            "-A" | "--add-service" => action = Action::AddService,
            "-E" | "--edit-service" => action = Action::EditService,
            "-D" | "--delete-service" => action = Action::DeleteService,
            "-a" | "--add-server" => action = Action::AddDest,
            "-e" | "--edit-server" => action = Action::EditDest,
            "-d" | "--delete-server" => action = Action::DeleteDest,
            "-C" | "--clear" => action = Action::Clear,
            "-n" | "--numeric" => {}
            "-t" | "--tcp-service" | "-u" | "--udp-service" | "--sctp-service" => {
                let protocol = match opt {
                    "-t" | "--tcp-service" => Protocol::Tcp,
                    "-u" | "--udp-service" => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                match take(&mut i).and_then(|v| parse_addr_port(v).map(|p| (v, p))) {
                    Some((v, (addr, port))) => {
                        let port = port.map(|p| p.value).unwrap_or(0);
                        service = Some((At::new(ServiceKey::Port { protocol, port }, v.span), Some(addr)));
                    }
                    None => return bad(b, w, "expects VIP:PORT after it", "write it as -t 192.168.1.192:80"),
                }
            }
            "-f" | "--fwmark-service" => match take(&mut i).and_then(|v| v.text.parse::<u32>().ok().map(|m| (v, m))) {
                Some((v, m)) => service = Some((At::new(ServiceKey::Fwmark(m), v.span), None)),
                None => return bad(b, w, "expects a firewall mark number", "for example -f 1"),
            },
            "-s" | "--scheduler" => match take(&mut i).map(|v| (v, Scheduler::parse(&v.text))) {
                Some((v, Some(s))) => scheduler = Some(At::new(s, v.span)),
                Some((v, None)) => {
                    return bad(
                        b,
                        v,
                        "is not a scheduler",
                        "use rr, wrr, lc, wlc, sed, nq, sh, dh, fo, ovf, mh, lblc or lblcr",
                    )
                }
                None => return bad(b, w, "expects a scheduler name", "for example -s wrr"),
            },
            "-p" | "--persistent" => {
                let t = next.and_then(|v| v.text.parse::<u32>().ok().map(|t| At::new(t, v.span)));
                if t.is_some() {
                    i += 1;
                }
                persistence = Some(t.unwrap_or_else(|| At::new(300, w.span)));
            }
            "-M" | "--netmask" => match take(&mut i) {
                Some(v) => netmask = Some(At::new(v.text.clone(), v.span)),
                None => return bad(b, w, "expects a netmask", "for example -M 255.255.255.0"),
            },
            "-6" | "--ipv6" => ipv6 = true,
            "-b" | "--sched-flags" => match take(&mut i) {
                Some(v) => {
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
                None => return bad(b, w, "expects scheduler flags", "for example -b sh-port"),
            },
            "-o" | "--ops" => one_packet = Some(At::new(true, w.span)),
            "-r" | "--real-server" => match take(&mut i).and_then(parse_addr_port) {
                Some(r) => real = Some(r),
                None => return bad(b, w, "expects REAL-SERVER[:PORT]", "write it as -r 192.168.1.213:80"),
            },
            "-g" | "--gatewaying" => forward = Some(At::new(Forward::Route, w.span)),
            "-m" | "--masquerading" => forward = Some(At::new(Forward::Masq, w.span)),
            "-i" | "--ipip" => forward = Some(At::new(Forward::Tunnel, w.span)),
            "-w" | "--weight" | "-x" | "--u-threshold" | "-y" | "--l-threshold" => {
                match take(&mut i).and_then(|v| v.text.parse::<u32>().ok().map(|n| At::new(n, v.span))) {
                    Some(n) => match opt {
                        "-w" | "--weight" => weight = Some(n),
                        "-x" | "--u-threshold" => upper = Some(n),
                        _ => lower = Some(n),
                    },
                    None => return bad(b, w, "expects a number", ""),
                }
            }
            _ => {
                b.note(
                    "DR100",
                    format!("ipvsadm option `{opt}` is not modelled by lvsdr and was skipped"),
                    w.span,
                    "",
                );
            }
        }
        i += 1;
    }

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
        Action::Clear => b.services.clear(),
        Action::Other => b.note("DR100", "this ipvsadm command changes nothing lvsdr models", command_span, ""),
        Action::AddService | Action::EditService => {
            let Some((key, vip)) = service else {
                return b.note(
                    "DR101",
                    "ipvsadm -A/-E without a service (-t, -u, --sctp-service or -f)",
                    command_span,
                    "add -t VIP:PORT",
                );
            };
            let vip_value = vip.as_ref().map(|v| v.value);
            let existing = b.service_mut(key.value, vip_value, family).is_some();
            if action == Action::EditService && !existing {
                return b.note(
                    "DR101",
                    format!("ipvsadm -E edits service {}, which was not added", label(&key, &vip)),
                    command_span,
                    "add it first with -A",
                );
            }
            if action == Action::AddService && existing {
                b.note(
                    "DR101",
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
                                "DR101",
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
                    "DR101",
                    "ipvsadm -a/-e/-d needs both a service and -r REAL-SERVER",
                    command_span,
                    "for example: ipvsadm -a -t VIP:80 -r 192.168.1.213:80 -g -w 1",
                );
            };
            if Family::of(&raddr.value) != family {
                return b.note(
                    "DR101",
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
                    "DR101",
                    format!("real server added to service {service_label}, which was not added first"),
                    command_span,
                    "add the service with -A before its real servers",
                );
            };
            let vport = match key.value {
                ServiceKey::Port { port, .. } => port,
                ServiceKey::Fwmark(_) => 0,
            };
            let pos = draft.destinations.iter().position(|d| d.server.value == name);
            match action {
                Action::DeleteDest => {
                    if let Some(p) = pos {
                        draft.destinations.remove(p);
                    }
                }
                Action::AddDest if pos.is_some() => {
                    b.note(
                        "DR101",
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
