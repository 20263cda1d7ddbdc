//! Reads one `ipvsadm` command line (already split into words) and applies
//! it to a [`Builder`]. Shared by the script and `ipvsadm -S` importers.

use super::builder::{Builder, ServiceDraft};
use super::shell::Word;

use crate::model::*;
use crate::source::{At, Span};
use std::net::Ipv4Addr;

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

fn parse_addr_port(w: &Word) -> Option<(At<Ipv4Addr>, Option<At<u16>>)> {
    let (a, p) = match w.text.rsplit_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (w.text.as_str(), None),
    };
    let addr: Ipv4Addr = a.parse().ok()?;
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
    let mut service: Option<(At<ServiceKey>, At<Ipv4Addr>)> = None;
    let mut scheduler: Option<At<Scheduler>> = None;
    let mut persistence: Option<At<u32>> = None;
    let mut netmask: Option<At<Ipv4Addr>> = None;
    let mut flags: Vec<At<SchedFlag>> = Vec::new();
    let mut one_packet: Option<At<bool>> = None;
    let mut real: Option<(At<Ipv4Addr>, Option<At<u16>>)> = None;
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
                        service = Some((At::new(ServiceKey::Port { protocol, port }, v.span), addr));
                    }
                    None => return bad(b, w, "expects VIP:PORT after it", "write it as -t 192.168.1.192:80"),
                }
            }
            "-f" | "--fwmark-service" => match take(&mut i).and_then(|v| v.text.parse::<u32>().ok().map(|m| (v, m))) {
                Some((v, m)) => service = Some((At::new(ServiceKey::Fwmark(m), v.span), At::new(Ipv4Addr::UNSPECIFIED, v.span))),
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
            "-M" | "--netmask" => match take(&mut i).and_then(|v| v.text.parse::<Ipv4Addr>().ok().map(|m| At::new(m, v.span))) {
                Some(m) => netmask = Some(m),
                None => return bad(b, w, "expects a netmask", "for example -M 255.255.255.0"),
            },
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

    match action {
        Action::Clear => b.services.clear(),
        Action::Other => b.note("DR100", "this ipvsadm command changes nothing lvsdr models", command_span, ""),
        Action::AddService | Action::EditService => {
            let Some((key, address)) = service else {
                return b.note(
                    "DR101",
                    "ipvsadm -A/-E without a service (-t, -u, --sctp-service or -f)",
                    command_span,
                    "add -t VIP:PORT",
                );
            };
            if let ServiceKey::Port { .. } = key.value {
                if b.vip.is_none() {
                    b.vip = Some(address.clone());
                }
            }
            let existing = b.service_mut(key.value).is_some();
            if action == Action::EditService && !existing {
                return b.note(
                    "DR101",
                    format!("ipvsadm -E edits service {}, which was not added", key.value),
                    command_span,
                    "add it first with -A",
                );
            }
            if action == Action::AddService && existing {
                b.note(
                    "DR101",
                    format!(
                        "service {} is added twice; ipvsadm fails with \"Service already exists\"",
                        key.value
                    ),
                    command_span,
                    "use -E to edit an existing service",
                );
                return;
            }
            if action == Action::AddService {
                b.services.push(ServiceDraft {
                    address,
                    service: VirtualService {
                        key: key.clone(),
                        scheduler: At::implied(Scheduler::Wlc),
                        flags: vec![],
                        persistence: None,
                        one_packet: At::implied(false),
                        destinations: vec![],
                        span: command_span,
                    },
                });
            }
            let Some(draft) = b.service_mut(key.value) else { return };
            let s = &mut draft.service;
            if let Some(sc) = scheduler {
                s.scheduler = sc;
            }
            if !flags.is_empty() {
                s.flags = flags;
            }
            if let Some(t) = persistence {
                s.persistence = Some(Persistence {
                    timeout: t,
                    netmask: netmask.unwrap_or_else(|| At::implied(Ipv4Addr::BROADCAST)),
                });
            }
            if let Some(o) = one_packet {
                s.one_packet = o;
            }
        }
        Action::DeleteService => {
            if let Some((key, _)) = service {
                b.services.retain(|s| s.service.key.value != key.value);
            }
        }
        Action::AddDest | Action::EditDest | Action::DeleteDest => {
            let (Some((key, _)), Some((raddr, rport))) = (service, real) else {
                return b.note(
                    "DR101",
                    "ipvsadm -a/-e/-d needs both a service and -r REAL-SERVER",
                    command_span,
                    "for example: ipvsadm -a -t VIP:80 -r 192.168.1.213:80 -g -w 1",
                );
            };
            let name = b.server_name(raddr.clone());
            let Some(draft) = b.service_mut(key.value) else {
                return b.note(
                    "DR101",
                    format!("real server added to service {}, which was not added first", key.value),
                    command_span,
                    "add the service with -A before its real servers",
                );
            };
            let vport = match key.value {
                ServiceKey::Port { port, .. } => port,
                ServiceKey::Fwmark(_) => 0,
            };
            let pos = draft.service.destinations.iter().position(|d| d.server.value == name);
            match action {
                Action::DeleteDest => {
                    if let Some(p) = pos {
                        draft.service.destinations.remove(p);
                    }
                }
                Action::AddDest if pos.is_some() => {
                    b.note(
                        "DR101",
                        format!("{} is added twice to service {}", raddr.value, key.value),
                        command_span,
                        "use -e to edit an existing real server",
                    );
                }
                _ => {
                    let d = match pos {
                        Some(p) => &mut draft.service.destinations[p],
                        None => {
                            draft.service.destinations.push(Destination {
                                server: At::new(name, raddr.span),
                                port: rport.clone().unwrap_or_else(|| At::implied(vport)),
                                forward: At::implied(Forward::Route),
                                weight: At::implied(1),
                                upper_threshold: None,
                                lower_threshold: None,
                                health_check: None,
                                span: command_span,
                            });
                            draft.service.destinations.last_mut().expect("just pushed")
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
