//! The topology file formats: TOML (for people) and JSON (for machines and
//! the playground). Reading happens in two steps, as in smoltcp's
//! `Packet`/`Repr` split: serde reads loose `Raw*` structs that keep every
//! value's span, then [`validate`] builds the [`Topology`], refusing input
//! that cannot describe a DR setup at all (a bad address, an unknown
//! scheduler, a destination naming no real server).

use crate::model::*;
use crate::source::{At, Span};
use crate::LoadError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    name: Option<Spanned<String>>,
    lan: Spanned<RawLan>,
    client: Option<Spanned<RawClient>>,
    director: Spanned<RawDirector>,
    #[serde(default, rename = "service")]
    services: Vec<Spanned<RawService>>,
    #[serde(default, rename = "real_server")]
    real_servers: Vec<Spanned<RawRealServer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLan {
    subnet: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    name: Option<String>,
    address: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirector {
    name: Option<String>,
    address: Spanned<String>,
    interface: Option<Spanned<String>>,
    vip: Spanned<String>,
    #[serde(default)]
    sysctl: BTreeMap<String, Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    protocol: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    fwmark: Option<Spanned<i64>>,
    scheduler: Option<Spanned<String>>,
    #[serde(default)]
    flags: Vec<Spanned<String>>,
    persistence: Option<Spanned<i64>>,
    persistence_netmask: Option<Spanned<String>>,
    one_packet: Option<Spanned<bool>>,
    #[serde(default, rename = "real_server")]
    destinations: Vec<Spanned<RawDestination>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDestination {
    server: Spanned<String>,
    port: Option<Spanned<i64>>,
    method: Option<Spanned<String>>,
    weight: Option<Spanned<i64>>,
    upper_threshold: Option<Spanned<i64>>,
    lower_threshold: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealServer {
    name: Spanned<String>,
    address: Spanned<String>,
    interface: Option<Spanned<String>>,
    vip_on_lo: Option<Spanned<VipOnLo>>,
    #[serde(default)]
    sysctl: BTreeMap<String, Spanned<i64>>,
    listen: Option<Spanned<Vec<i64>>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VipOnLo {
    Prefix(i64),
    Present(bool),
}

fn span<T>(s: &Spanned<T>) -> Span {
    s.span().into()
}

fn err(message: impl Into<String>, span: Span, help: &str) -> LoadError {
    LoadError {
        message: message.into(),
        span,
        help: (!help.is_empty()).then(|| help.to_string()),
    }
}

fn ipv4(s: &Spanned<String>, what: &str) -> Result<At<Ipv4Addr>, LoadError> {
    s.get_ref().parse().map(|a| At::new(a, span(s))).map_err(|_| {
        err(
            format!("{what} `{}` is not an IPv4 address", s.get_ref()),
            span(s),
            "write a dotted quad such as 192.168.1.10",
        )
    })
}

fn int<T: TryFrom<i64>>(s: &Spanned<i64>, what: &str, range: &str) -> Result<At<T>, LoadError> {
    T::try_from(*s.get_ref()).map(|v| At::new(v, span(s))).map_err(|_| {
        err(
            format!("{what} {} is out of range", s.get_ref()),
            span(s),
            &format!("use a value in {range}"),
        )
    })
}

fn sysctls(raw: &BTreeMap<String, Spanned<i64>>) -> Sysctls {
    let mut s = Sysctls::default();
    for (k, v) in raw {
        s.set(k, *v.get_ref(), span(v));
    }
    s
}

/// Parses a TOML topology.
pub fn from_toml(text: &str) -> Result<Topology, LoadError> {
    let raw: RawTopology = toml::from_str(text).map_err(|e| LoadError {
        message: e.message().trim().to_string(),
        span: e.span().map(Span::from).unwrap_or(Span::NONE),
        help: Some("see `fixtures/seed-dr.toml` for a complete, commented example".into()),
    })?;
    validate(raw)
}

/// Parses a JSON topology (same shape as the TOML). Spans of JSON input are
/// not kept: diagnostics on it point at line 1.
pub fn from_json(text: &str) -> Result<Topology, LoadError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let line_start: usize = text.split_inclusive('\n').take(e.line().saturating_sub(1)).map(str::len).sum();
        let at = line_start + e.column().saturating_sub(1);
        err(e.to_string(), Span::new(at, at + 1), "the input must be one JSON object")
    })?;
    let toml_text = toml::to_string(&value).map_err(|e| {
        err(
            format!("this JSON has no topology shape: {e}"),
            Span::NONE,
            "the top level must be an object with `lan`, `director`, `service` and `real_server`",
        )
    })?;
    let topology = from_toml(&toml_text).map_err(|mut e| {
        e.span = Span::NONE;
        e
    })?;
    Ok(topology.without_spans())
}

fn validate(raw: RawTopology) -> Result<Topology, LoadError> {
    let lan_span = span(&raw.lan.get_ref().subnet);
    let lan =
        Subnet::parse(raw.lan.get_ref().subnet.get_ref()).map_err(|m| err(m, lan_span, "for example: subnet = \"192.168.1.0/24\""))?;
    let d = raw.director.get_ref();
    let (vip_text, vip_prefix) = match d.vip.get_ref().split_once('/') {
        Some((a, p)) => (a.to_string(), p.parse::<u8>().ok().filter(|p| *p <= 32)),
        None => (d.vip.get_ref().clone(), Some(32)),
    };
    let vip_prefix = vip_prefix.ok_or_else(|| {
        err(
            format!("`{}` has no valid prefix length", d.vip.get_ref()),
            span(&d.vip),
            "write the VIP as an address, or ADDRESS/32",
        )
    })?;
    let vip = ipv4(&Spanned::new(d.vip.span(), vip_text), "the VIP")?;
    let director = Director {
        name: d.name.clone().unwrap_or_else(|| "director".into()),
        address: ipv4(&d.address, "the director address")?,
        interface: d
            .interface
            .as_ref()
            .map(|i| At::new(i.get_ref().clone(), span(i)))
            .unwrap_or_else(|| At::implied("eth0".into())),
        vip,
        vip_prefix: At::new(vip_prefix, span(&d.vip)),
        sysctls: sysctls(&d.sysctl),
        span: span(&raw.director),
    };
    let client = match &raw.client {
        Some(c) => Client {
            name: c.get_ref().name.clone().unwrap_or_else(|| "client".into()),
            address: ipv4(&c.get_ref().address, "the client address")?,
        },
        None => Client {
            name: "client".into(),
            address: At::implied(default_client_address(&lan)),
        },
    };

    let mut real_servers: Vec<RealServer> = Vec::new();
    for r in &raw.real_servers {
        let rr = r.get_ref();
        let name = rr.name.get_ref().clone();
        if !valid_name(&name) {
            return Err(err(
                format!("real server name `{name}` is not a valid host name"),
                span(&rr.name),
                "use 1 to 15 letters, digits and `-`, starting with a letter (it names a network namespace and an interface)",
            ));
        }
        if real_servers.iter().any(|x| x.name.value == name) {
            return Err(err(
                format!("real server `{name}` is defined twice"),
                span(&rr.name),
                "give each real server its own name",
            ));
        }
        let vip_on_lo = match rr.vip_on_lo.as_ref() {
            None => None,
            Some(v) => match v.get_ref() {
                VipOnLo::Present(false) => None,
                VipOnLo::Present(true) => Some(At::new(32u8, span(v))),
                VipOnLo::Prefix(p) => Some(int::<u8>(&Spanned::new(v.span(), *p), "prefix", "0..=32")?),
            },
        };
        let listen = match &rr.listen {
            None => None,
            Some(l) => {
                let mut ports = Vec::new();
                for p in l.get_ref() {
                    ports.push(u16::try_from(*p).map_err(|_| err(format!("port {p} is out of range"), span(l), "ports are 0..=65535"))?);
                }
                Some(At::new(ports, span(l)))
            }
        };
        let interface = rr
            .interface
            .as_ref()
            .map(|i| At::new(i.get_ref().clone(), span(i)))
            .unwrap_or_else(|| At::implied("eth0".into()));
        real_servers.push(RealServer {
            name: At::new(name, span(&rr.name)),
            address: ipv4(&rr.address, "the real server address")?,
            interface,
            vip_on_lo,
            sysctls: sysctls(&rr.sysctl),
            listen,
            span: span(r),
        });
    }

    let mut services = Vec::new();
    for s in &raw.services {
        services.push(validate_service(s, &real_servers)?);
    }
    Ok(Topology {
        name: raw.name.map(|n| n.into_inner()).unwrap_or_else(|| "lvs-dr".into()),
        lan: At::new(lan, lan_span),
        client,
        director,
        services,
        real_servers,
    })
}

/// A client address for topologies that do not name one: `.100` in the LAN,
/// or the first free host address.
pub fn default_client_address(lan: &Subnet) -> Ipv4Addr {
    let base = u32::from(lan.address) & lan.mask();
    Ipv4Addr::from(base | 100u32.min(!lan.mask()).max(1))
}

/// Names become namespace and interface names, so they are kept short and plain.
pub fn valid_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn validate_service(s: &Spanned<RawService>, servers: &[RealServer]) -> Result<VirtualService, LoadError> {
    let r = s.get_ref();
    let sspan = span(s);
    let key = match (&r.fwmark, &r.port) {
        (Some(m), None) => At::new(ServiceKey::Fwmark(int::<u32>(m, "fwmark", "1..=4294967295")?.value), span(m)),
        (None, Some(p)) => {
            let protocol = match &r.protocol {
                None => Protocol::Tcp,
                Some(p) => Protocol::parse(p.get_ref())
                    .ok_or_else(|| err(format!("unknown protocol `{}`", p.get_ref()), span(p), "use tcp, udp or sctp"))?,
            };
            let port = int::<u16>(p, "port", "0..=65535")?;
            At::new(
                ServiceKey::Port {
                    protocol,
                    port: port.value,
                },
                port.span,
            )
        }
        (Some(m), Some(_)) => {
            return Err(err(
                "a service has either a port or a fwmark, not both",
                span(m),
                "remove one of them",
            ))
        }
        (None, None) => {
            return Err(err(
                "this service has neither `port` nor `fwmark`",
                sspan,
                "add `port = 80` (with `protocol`) or `fwmark = 1`",
            ))
        }
    };
    let scheduler = match &r.scheduler {
        None => At::implied(Scheduler::Wlc),
        Some(sc) => At::new(
            Scheduler::parse(sc.get_ref()).ok_or_else(|| {
                err(
                    format!("unknown scheduler `{}`", sc.get_ref()),
                    span(sc),
                    "use one of rr, wrr, lc, wlc, sed, nq, sh, dh, fo, ovf, mh, lblc, lblcr",
                )
            })?,
            span(sc),
        ),
    };
    let mut flags = Vec::new();
    for f in &r.flags {
        flags.push(At::new(
            SchedFlag::parse(f.get_ref()).ok_or_else(|| {
                err(
                    format!("unknown scheduler flag `{}`", f.get_ref()),
                    span(f),
                    "use sh-fallback, sh-port, mh-fallback or mh-port",
                )
            })?,
            span(f),
        ));
    }
    let persistence = match &r.persistence {
        None => None,
        Some(t) => Some(Persistence {
            timeout: int::<u32>(t, "persistence timeout", "1..=4294967295 seconds")?,
            netmask: match &r.persistence_netmask {
                Some(m) => ipv4(m, "persistence netmask")?,
                None => At::implied(Ipv4Addr::BROADCAST),
            },
        }),
    };
    let default_port = match key.value {
        ServiceKey::Port { port, .. } => port,
        ServiceKey::Fwmark(_) => 0,
    };
    let mut destinations = Vec::new();
    for d in &r.destinations {
        let dd = d.get_ref();
        let name = dd.server.get_ref();
        if !servers.iter().any(|x| &x.name.value == name) {
            return Err(err(
                format!("service {} names real server `{name}`, which is not defined", key.value),
                span(&dd.server),
                "add a [[real_server]] with this name, or fix the spelling",
            ));
        }
        if destinations.iter().any(|x: &Destination| &x.server.value == name) {
            return Err(err(
                format!("real server `{name}` is listed twice in service {}", key.value),
                span(&dd.server),
                "list each real server once per service",
            ));
        }
        let forward = match &dd.method {
            None => At::implied(Forward::Route),
            Some(m) => At::new(
                Forward::parse(m.get_ref()).ok_or_else(|| {
                    err(
                        format!("unknown forwarding method `{}`", m.get_ref()),
                        span(m),
                        "use route (DR), masq, tunnel or local",
                    )
                })?,
                span(m),
            ),
        };
        destinations.push(Destination {
            server: At::new(name.clone(), span(&dd.server)),
            port: match &dd.port {
                Some(p) => int::<u16>(p, "port", "0..=65535")?,
                None => At::implied(default_port),
            },
            forward,
            weight: match &dd.weight {
                Some(w) => int::<u32>(w, "weight", "0..=65535")?,
                None => At::implied(1),
            },
            upper_threshold: dd.upper_threshold.as_ref().map(|t| int::<u32>(t, "threshold", "0..")).transpose()?,
            lower_threshold: dd.lower_threshold.as_ref().map(|t| int::<u32>(t, "threshold", "0..")).transpose()?,
            span: span(d),
        });
    }
    Ok(VirtualService {
        key,
        scheduler,
        flags,
        persistence,
        one_packet: r
            .one_packet
            .as_ref()
            .map(|o| At::new(*o.get_ref(), span(o)))
            .unwrap_or_else(|| At::implied(false)),
        destinations,
        span: sspan,
    })
}

/// The topology as a JSON value in the file shape, in canonical order.
pub fn to_value(t: &Topology) -> Value {
    fn sysctl_map(s: &Sysctls) -> Value {
        Value::Object(s.values.iter().map(|(k, v)| (k.clone(), json!(v.value))).collect())
    }
    let mut director = Map::new();
    director.insert("name".into(), json!(t.director.name));
    director.insert("address".into(), json!(t.director.address.to_string()));
    director.insert("interface".into(), json!(t.director.interface.value));
    let vip = if t.director.vip_prefix.value == 32 {
        t.director.vip.to_string()
    } else {
        format!("{}/{}", t.director.vip.value, t.director.vip_prefix.value)
    };
    director.insert("vip".into(), json!(vip));
    if !t.director.sysctls.values.is_empty() {
        director.insert("sysctl".into(), sysctl_map(&t.director.sysctls));
    }
    let services: Vec<Value> = t
        .services
        .iter()
        .map(|s| {
            let mut m = Map::new();
            match s.key.value {
                ServiceKey::Port { protocol, port } => {
                    m.insert("protocol".into(), json!(protocol.name()));
                    m.insert("port".into(), json!(port));
                }
                ServiceKey::Fwmark(f) => {
                    m.insert("fwmark".into(), json!(f));
                }
            }
            m.insert("scheduler".into(), json!(s.scheduler.name()));
            if !s.flags.is_empty() {
                m.insert("flags".into(), json!(s.flags.iter().map(|f| f.name()).collect::<Vec<_>>()));
            }
            if let Some(p) = &s.persistence {
                m.insert("persistence".into(), json!(p.timeout.value));
                if p.netmask.value != Ipv4Addr::BROADCAST {
                    m.insert("persistence_netmask".into(), json!(p.netmask.to_string()));
                }
            }
            if s.one_packet.value {
                m.insert("one_packet".into(), json!(true));
            }
            let dests: Vec<Value> = s
                .destinations
                .iter()
                .map(|d| {
                    let mut dm = Map::new();
                    dm.insert("server".into(), json!(d.server.value));
                    dm.insert("port".into(), json!(d.port.value));
                    dm.insert("method".into(), json!(d.forward.name()));
                    dm.insert("weight".into(), json!(d.weight.value));
                    if let Some(u) = &d.upper_threshold {
                        dm.insert("upper_threshold".into(), json!(u.value));
                    }
                    if let Some(l) = &d.lower_threshold {
                        dm.insert("lower_threshold".into(), json!(l.value));
                    }
                    Value::Object(dm)
                })
                .collect();
            m.insert("real_server".into(), Value::Array(dests));
            Value::Object(m)
        })
        .collect();
    let servers: Vec<Value> = t
        .real_servers
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("name".into(), json!(r.name.value));
            m.insert("address".into(), json!(r.address.to_string()));
            m.insert("interface".into(), json!(r.interface.value));
            match &r.vip_on_lo {
                Some(p) => m.insert("vip_on_lo".into(), json!(p.value)),
                None => m.insert("vip_on_lo".into(), json!(false)),
            };
            if let Some(l) = &r.listen {
                m.insert("listen".into(), json!(l.value));
            }
            if !r.sysctls.values.is_empty() {
                m.insert("sysctl".into(), sysctl_map(&r.sysctls));
            }
            Value::Object(m)
        })
        .collect();
    let mut top = Map::new();
    top.insert("name".into(), json!(t.name));
    top.insert("lan".into(), json!({ "subnet": t.lan.to_string() }));
    top.insert(
        "client".into(),
        json!({ "name": t.client.name, "address": t.client.address.to_string() }),
    );
    top.insert("director".into(), Value::Object(director));
    top.insert("service".into(), Value::Array(services));
    top.insert("real_server".into(), Value::Array(servers));
    Value::Object(top)
}

/// Canonical TOML form of a topology.
pub fn to_toml(t: &Topology) -> String {
    toml::to_string(&to_value(t)).unwrap_or_default()
}

/// Canonical JSON form of a topology.
pub fn to_json(t: &Topology) -> String {
    serde_json::to_string_pretty(&to_value(t)).unwrap_or_default()
}
