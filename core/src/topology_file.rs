//! The topology file formats: TOML (for people) and JSON (for machines and
//! the playground). Reading happens in two steps, as in smoltcp's
//! `Packet`/`Repr` split: serde reads loose `Raw*` structs that keep every
//! value's span, then [`validate`] builds the [`Topology`], refusing input
//! that cannot describe a DR setup at all (a bad address, an unknown
//! scheduler, a destination naming no real server).

use crate::model::*;
use crate::names::{
    check_sysctl_value, check_title, HealthCheck, HostName, HttpStatus, IfName, NameError, SysctlKey, UrlDigest, UrlPath, VrrpAuth,
    VrrpInstance,
};
use crate::source::{At, Span};
use crate::LoadError;
use serde_json::{json, Map, Value};
use std::net::{IpAddr, Ipv4Addr};

/// A value as read, before it means anything: TOML and JSON both become this.
#[derive(Debug, Clone)]
enum Loose {
    Str(String),
    Int(i64),
    Bool(bool),
    Array(Vec<L>),
    Table(Vec<(String, Span, L)>),
    /// Something a topology never holds (a float, a datetime, null), by name.
    Other(&'static str),
}

/// A loose value and where it was written.
#[derive(Debug, Clone)]
struct L {
    v: Loose,
    span: Span,
}

fn kind(v: &Loose) -> &'static str {
    match v {
        Loose::Str(_) => "a string",
        Loose::Int(_) => "an integer",
        Loose::Bool(_) => "a boolean",
        Loose::Array(_) => "an array",
        Loose::Table(_) => "a table",
        Loose::Other(k) => k,
    }
}

fn from_de(v: &toml::de::DeValue, span: Span) -> L {
    use toml::de::DeValue;
    let v = match v {
        DeValue::String(s) => Loose::Str(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
            Ok(n) => Loose::Int(n),
            Err(_) => Loose::Other("an integer out of range"),
        },
        DeValue::Float(_) => Loose::Other("a float"),
        DeValue::Boolean(b) => Loose::Bool(*b),
        DeValue::Datetime(_) => Loose::Other("a datetime"),
        DeValue::Array(a) => Loose::Array(a.iter().map(|x| from_de(x.get_ref(), x.span().into())).collect()),
        DeValue::Table(t) => Loose::Table(
            t.iter()
                .map(|(k, x)| (k.get_ref().to_string(), Span::from(k.span()), from_de(x.get_ref(), x.span().into())))
                .collect(),
        ),
    };
    L { v, span }
}

fn from_json_value(v: &Value) -> L {
    let v = match v {
        Value::String(s) => Loose::Str(s.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Loose::Int(i),
            None => Loose::Other("a non-integer number"),
        },
        Value::Bool(b) => Loose::Bool(*b),
        Value::Array(a) => Loose::Array(a.iter().map(from_json_value).collect()),
        Value::Object(o) => Loose::Table(o.iter().map(|(k, x)| (k.clone(), Span::NONE, from_json_value(x))).collect()),
        Value::Null => Loose::Other("null"),
    };
    L { v, span: Span::NONE }
}

fn err(message: impl Into<String>, span: Span, help: &str) -> LoadError {
    LoadError {
        code: crate::codes::code::UNREADABLE_TOPOLOGY,
        message: message.into(),
        span,
        help: (!help.is_empty()).then(|| help.to_string()),
    }
}

/// A table being read: field access with the errors serde would give.
struct Obj<'a> {
    fields: &'a [(String, Span, L)],
    span: Span,
    what: &'static str,
}

impl<'a> Obj<'a> {
    fn of(l: &'a L, what: &'static str) -> Result<Obj<'a>, LoadError> {
        match &l.v {
            Loose::Table(fields) => Ok(Obj {
                fields,
                span: l.span,
                what,
            }),
            other => Err(err(format!("{what} must be a table, not {}", kind(other)), l.span, "")),
        }
    }
    /// Refuses fields this table does not know, as a typo is better caught than ignored.
    fn only(&self, allowed: &[&str]) -> Result<(), LoadError> {
        for (k, span, _) in self.fields {
            if !allowed.contains(&k.as_str()) {
                let expected = allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
                return Err(err(
                    format!("unknown field `{k}` in {}, expected one of {expected}", self.what),
                    *span,
                    "check the spelling; fixtures/seed-dr.toml shows every field",
                ));
            }
        }
        Ok(())
    }
    fn get(&self, name: &str) -> Option<&'a L> {
        self.fields.iter().find(|(k, _, _)| k == name).map(|(_, _, v)| v)
    }
    fn missing(&self, name: &str) -> LoadError {
        err(
            format!("missing field `{name}` in {}", self.what),
            self.span,
            &format!("add `{name} = …` to {}", self.what),
        )
    }
    fn str(&self, name: &str) -> Result<Option<At<String>>, LoadError> {
        match self.get(name) {
            None => Ok(None),
            Some(L { v: Loose::Str(s), span }) => Ok(Some(At::new(s.clone(), *span))),
            Some(l) => Err(err(
                format!("`{name}` in {} must be a string, not {}", self.what, kind(&l.v)),
                l.span,
                "",
            )),
        }
    }
    /// A field that names a host or an interface, checked at the trust boundary.
    fn checked<T>(&self, name: &str, parse: fn(&str) -> Result<T, NameError>) -> Result<Option<At<T>>, LoadError> {
        self.str(name)?
            .map(|s| {
                parse(&s.value)
                    .map(|v| At::new(v, s.span))
                    .map_err(|e| LoadError::refused(e, s.span))
            })
            .transpose()
    }
    fn req_str(&self, name: &str) -> Result<At<String>, LoadError> {
        self.str(name)?.ok_or_else(|| self.missing(name))
    }
    /// A field that holds one string or an array of them.
    fn strs(&self, name: &str) -> Result<Vec<At<String>>, LoadError> {
        match self.get(name) {
            None => Ok(vec![]),
            Some(L { v: Loose::Str(s), span }) => Ok(vec![At::new(s.clone(), *span)]),
            Some(L { v: Loose::Array(a), .. }) => a
                .iter()
                .map(|x| match &x.v {
                    Loose::Str(s) => Ok(At::new(s.clone(), x.span)),
                    other => Err(err(
                        format!("`{name}` in {} must hold strings, not {}", self.what, kind(other)),
                        x.span,
                        "",
                    )),
                })
                .collect(),
            Some(l) => Err(err(
                format!(
                    "`{name}` in {} must be a string or an array of strings, not {}",
                    self.what,
                    kind(&l.v)
                ),
                l.span,
                "",
            )),
        }
    }
    /// A host's addresses: one string, or an array of at most one IPv4 and one IPv6 address.
    fn addresses(&self, what: &str) -> Result<Addresses, LoadError> {
        let list = self.strs("address")?;
        if list.is_empty() {
            return Err(self.missing("address"));
        }
        let mut out: Vec<At<IpAddr>> = Vec::new();
        for a in &list {
            let a = ip(a, what)?;
            if out.iter().any(|o| o.is_ipv4() == a.is_ipv4()) {
                return Err(err(
                    format!("{what} has two addresses of the same family"),
                    a.span,
                    "give a host one IPv4 and at most one IPv6 address: address = [\"192.168.1.10\", \"2001:db8::10\"]",
                ));
            }
            out.push(a);
        }
        Ok(Addresses(out))
    }
    fn int(&self, name: &str) -> Result<Option<At<i64>>, LoadError> {
        match self.get(name) {
            None => Ok(None),
            Some(L { v: Loose::Int(i), span }) => Ok(Some(At::new(*i, *span))),
            Some(l) => Err(err(
                format!("`{name}` in {} must be an integer, not {}", self.what, kind(&l.v)),
                l.span,
                "",
            )),
        }
    }
    fn bool(&self, name: &str) -> Result<Option<At<bool>>, LoadError> {
        match self.get(name) {
            None => Ok(None),
            Some(L { v: Loose::Bool(b), span }) => Ok(Some(At::new(*b, *span))),
            Some(l) => Err(err(
                format!("`{name}` in {} must be true or false, not {}", self.what, kind(&l.v)),
                l.span,
                "",
            )),
        }
    }
    fn array(&self, name: &str) -> Result<&'a [L], LoadError> {
        match self.get(name) {
            None => Ok(&[]),
            Some(L { v: Loose::Array(a), .. }) => Ok(a),
            Some(l) => Err(err(
                format!("`{name}` in {} must be an array, not {}", self.what, kind(&l.v)),
                l.span,
                "",
            )),
        }
    }
    fn sysctls(&self) -> Result<Sysctls, LoadError> {
        let mut out = Sysctls::default();
        if let Some(l) = self.get("sysctl") {
            for (k, kspan, v) in Obj::of(l, "`sysctl`")?.fields {
                let key = SysctlKey::parse(k).map_err(|e| LoadError::refused(e, *kspan))?;
                match &v.v {
                    Loose::Int(i) => {
                        let value = check_sysctl_value(&key, *i).map_err(|e| LoadError::refused(e, v.span))?;
                        out.set(key, value, v.span)
                    }
                    other => return Err(err(format!("sysctl `{k}` must be an integer, not {}", kind(other)), v.span, "")),
                }
            }
        }
        Ok(out)
    }
}

/// A destination's `url` tables: what its HTTP_GET or SSL_GET check fetches.
fn health_urls(dd: &Obj, check: Option<&At<HealthCheck>>) -> Result<Vec<HealthUrl>, LoadError> {
    let list = dd.array("url")?;
    if let (Some(first), false) = (
        list.first(),
        check.is_some_and(|c| matches!(c.value.as_str(), "HTTP_GET" | "SSL_GET")),
    ) {
        return Err(err(
            "`url` is for an HTTP_GET or SSL_GET check",
            first.span,
            "add health_check = \"HTTP_GET\" to this real_server, or remove its urls",
        ));
    }
    let mut out = Vec::new();
    for u_l in list {
        let u = Obj::of(u_l, "a `url`")?;
        u.only(fields::URL)?;
        let path = u.checked("path", UrlPath::parse)?.ok_or_else(|| u.missing("path"))?;
        let status_code = match u.int("status_code")? {
            Some(c) => Some(At::new(
                HttpStatus::new(c.value).map_err(|e| LoadError::refused(e, c.span))?,
                c.span,
            )),
            None => None,
        };
        out.push(HealthUrl {
            path,
            status_code,
            digest: u.checked("digest", UrlDigest::parse)?,
            span: u_l.span,
        });
    }
    Ok(out)
}

fn ip(s: &At<String>, what: &str) -> Result<At<IpAddr>, LoadError> {
    s.value.parse().map(|a| At::new(a, s.span)).map_err(|_| {
        err(
            format!("{what} `{}` is not an IP address", s.value),
            s.span,
            "write a dotted quad such as 192.168.1.10, or an IPv6 address such as 2001:db8::10",
        )
    })
}

fn subnet(s: &At<String>, example: &str) -> Result<At<Subnet>, LoadError> {
    Subnet::parse(&s.value)
        .map(|v| At::new(v, s.span))
        .map_err(|m| err(m, s.span, &format!("for example: {example}")))
}

/// An address with an optional prefix (`192.168.1.192`, `2001:db8::1/128`);
/// without one, the host prefix of its family.
fn prefixed(s: &At<String>, what: &str) -> Result<At<Subnet>, LoadError> {
    if s.value.contains('/') {
        return subnet(s, "192.168.1.192/32");
    }
    let a = ip(s, what)?;
    Ok(At::new(
        Subnet {
            address: a.value,
            prefix: Family::of(&a.value).host_prefix(),
        },
        s.span,
    ))
}

fn int<T: TryFrom<i64>>(s: &At<i64>, what: &str, range: &str) -> Result<At<T>, LoadError> {
    T::try_from(s.value).map(|v| At::new(v, s.span)).map_err(|_| {
        err(
            format!("{what} {} is out of range", s.value),
            s.span,
            &format!("use a value in {range}"),
        )
    })
}

/// Parses a TOML topology.
pub fn from_toml(text: &str) -> Result<Topology, LoadError> {
    let doc = toml::de::DeTable::parse(text).map_err(|e| LoadError {
        code: crate::codes::code::UNREADABLE_TOPOLOGY,
        message: e.message().trim().to_string(),
        span: e.span().map(Span::from).unwrap_or(Span::NONE),
        help: Some("see `fixtures/seed-dr.toml` for a complete, commented example".into()),
    })?;
    let root = from_de(&toml::de::DeValue::Table(doc.get_ref().clone()), doc.span().into());
    validate(&root)
}

/// Parses a JSON topology (same shape as the TOML). Spans of JSON input are
/// not kept: diagnostics on it point at line 1.
pub fn from_json(text: &str) -> Result<Topology, LoadError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let line_start: usize = text.split_inclusive('\n').take(e.line().saturating_sub(1)).map(str::len).sum();
        let at = line_start + e.column().saturating_sub(1);
        err(e.to_string(), Span::new(at, at + 1), "the input must be one JSON object")
    })?;
    if !value.is_object() {
        return Err(err(
            "the top level must be an object with `lan`, `director`, `service` and `real_server`",
            Span::NONE,
            "",
        ));
    }
    validate(&from_json_value(&value))
}

/// The format versions lvsdr reads: 1 (one director, one VIP, IPv4; files
/// without `version`) and 2 (several VIPs and directors, IPv6, fwmark rules).
/// The fields each table of a topology file takes: what the reader accepts,
/// and what the playground's editor offers to complete.
pub mod fields {
    /// the top level
    pub const TOP: &[&str] = &[
        "version",
        "name",
        "lan",
        "client",
        "router",
        "director",
        "service",
        "real_server",
        "mark",
    ];
    /// `[lan]`
    pub const LAN: &[&str] = &["subnet"];
    /// `[[director]]`
    pub const DIRECTOR: &[&str] = &[
        "name",
        "address",
        "interface",
        "vip",
        "ipv6_dad",
        "ipv6_preferred",
        "sysctl",
        "vrrp",
        "sync",
        "service",
        "placeholder",
        "nic",
    ];
    /// a director's `sync`
    pub const SYNC: &[&str] = &["interface", "id"];
    /// `[client]`
    pub const CLIENT: &[&str] = &["name", "address"];
    /// `[router]`
    pub const ROUTER: &[&str] = &["name", "address", "outside"];
    /// `[[real_server]]`
    pub const REAL_SERVER: &[&str] = &[
        "name",
        "address",
        "interface",
        "vip_on_lo",
        "lo",
        "sysctl",
        "listen",
        "nic",
        "route",
    ];
    /// a real server's `nic`
    pub const NIC: &[&str] = &["interface", "address"];
    /// a real server's `route`
    pub const ROUTE: &[&str] = &["to", "dev"];
    /// a director's `vrrp`
    pub const VRRP: &[&str] = &[
        "instance",
        "router_id",
        "priority",
        "state",
        "advert_int",
        "advert_ms",
        "nopreempt",
        "auth",
        "vips",
    ];
    /// `[[mark]]`
    pub const MARK: &[&str] = &["mark", "destination", "protocol", "ports", "tool"];
    /// `[[service]]`
    pub const SERVICE: &[&str] = &[
        "vip",
        "family",
        "protocol",
        "port",
        "fwmark",
        "scheduler",
        "flags",
        "persistence",
        "persistence_netmask",
        "one_packet",
        "real_server",
    ];
    /// a service's `real_server`
    pub const DESTINATION: &[&str] = &[
        "server",
        "port",
        "method",
        "weight",
        "upper_threshold",
        "lower_threshold",
        "health_check",
        "url",
    ];
    /// a destination's `url` (an HTTP_GET or SSL_GET check's)
    pub const URL: &[&str] = &["path", "status_code", "digest"];
    /// Every table by its dotted path (`""` is the top level).
    pub const ALL: [(&str, &[&str]); 14] = [
        ("", TOP),
        ("lan", LAN),
        ("director", DIRECTOR),
        ("director.sync", SYNC),
        ("client", CLIENT),
        ("router", ROUTER),
        ("real_server", REAL_SERVER),
        ("real_server.nic", NIC),
        ("real_server.route", ROUTE),
        ("director.vrrp", VRRP),
        ("mark", MARK),
        ("service", SERVICE),
        ("service.real_server", DESTINATION),
        ("service.real_server.url", URL),
    ];
}

pub const FORMAT_VERSION: i64 = 2;

fn validate(root: &L) -> Result<Topology, LoadError> {
    let top = Obj::of(root, "the topology")?;
    top.only(fields::TOP)?;
    if let Some(v) = top.int("version")? {
        if !(1..=FORMAT_VERSION).contains(&v.value) {
            return Err(err(
                format!("topology format version {} is not one lvsdr reads", v.value),
                v.span,
                "lvsdr reads versions 1 and 2; `lvsdr import FILE` writes version 2",
            ));
        }
    }
    let mut lans = Vec::new();
    if let Some(lan_l) = top.get("lan") {
        let lan_o = Obj::of(lan_l, "[lan]")?;
        lan_o.only(fields::LAN)?;
        for sn in lan_o.strs("subnet")? {
            lans.push(subnet(&sn, "subnet = \"192.168.1.0/24\"")?);
        }
    }

    let mut directors: Vec<Director> = Vec::new();
    // A pair's director may list its own services (read from its own keepalived.conf),
    // compared with the topology's for drift; read once the real servers are known.
    let mut own_ls: Vec<&[L]> = Vec::new();
    let d_ls: Vec<&L> = match top.get("director") {
        None => return Err(top.missing("director")),
        Some(L { v: Loose::Array(a), .. }) => a.iter().collect(),
        Some(l) => vec![l],
    };
    for d_l in d_ls {
        let d = Obj::of(d_l, "[director]")?;
        d.only(fields::DIRECTOR)?;
        own_ls.push(d.array("service")?);
        // lvsdr adds IPv6 VIPs with `nodad` and `preferred_lft 0`; `ipv6_dad = true`
        // and `ipv6_preferred = true` say that this director does not.
        let dad = d.bool("ipv6_dad")?.filter(|b| b.value).map(|b| b.span);
        let preferred = d.bool("ipv6_preferred")?.filter(|b| b.value).map(|b| b.span);
        let mut vips: Vec<Vip> = Vec::new();
        for v in d.strs("vip")? {
            let sn = prefixed(&v, "the VIP")?;
            if vips.iter().any(|x| x.address.value == sn.address) {
                return Err(err(format!("VIP {} is listed twice", sn.address), v.span, "list each VIP once"));
            }
            vips.push(Vip {
                address: At::new(sn.address, v.span),
                prefix: At::new(sn.prefix, v.span),
                dad: dad.filter(|_| sn.address.is_ipv6()),
                preferred: preferred.filter(|_| sn.address.is_ipv6()),
            });
        }
        let name = d
            .checked("name", HostName::parse)?
            .map(|n| n.value)
            .unwrap_or_else(|| HostName::known(if directors.is_empty() { "director" } else { "director2" }));
        if directors.iter().any(|x| x.name == name) {
            return Err(err(
                format!("director `{name}` is defined twice"),
                d_l.span,
                "give each director its own `name`",
            ));
        }
        let vrrp = match d.get("vrrp") {
            Some(v) => Some(validate_vrrp(v, &vips)?),
            None => None,
        };
        let interface = d
            .checked("interface", IfName::parse)?
            .unwrap_or_else(|| At::implied(IfName::known("eth0")));
        let mut extra_nics: Vec<Nic> = Vec::new();
        for n_l in d.array("nic")? {
            let n = Obj::of(n_l, "a `nic`")?;
            n.only(fields::NIC)?;
            let nic_if = n.checked("interface", IfName::parse)?.ok_or_else(|| n.missing("interface"))?;
            if nic_if.value == interface.value || extra_nics.iter().any(|x| x.interface.value == nic_if.value) {
                return Err(err(
                    format!("director `{name}` has the interface `{}` twice", nic_if.value),
                    nic_if.span,
                    "give each NIC its own name",
                ));
            }
            extra_nics.push(Nic {
                address: ip(&n.req_str("address")?, "the NIC's address")?,
                interface: nic_if,
            });
        }
        directors.push(Director {
            name,
            address: d.addresses("the director address")?,
            interface,
            extra_nics,
            vips,
            sysctls: d.sysctls()?,
            span: d_l.span,
            // An imported real-server-only setup says nothing of its director: it only stands in.
            placeholder: d.bool("placeholder")?.is_some_and(|b| b.value),
            vrrp,
            sync: match d.get("sync") {
                Some(l) => {
                    let o = Obj::of(l, "a director's `sync`")?;
                    o.only(fields::SYNC)?;
                    Some(SyncDaemon {
                        interface: o
                            .checked("interface", IfName::parse)?
                            .unwrap_or_else(|| At::implied(IfName::known("eth0"))),
                        id: match o.int("id")? {
                            Some(i) => int::<u8>(&i, "sync id", "0..=255")?,
                            None => At::implied(0),
                        },
                        span: l.span,
                    })
                }
                None => None,
            },
            own_services: vec![],
        });
    }
    if directors.is_empty() {
        return Err(top.missing("director"));
    }
    let services_l = top.array("service")?;
    let only_fwmark = !services_l.is_empty()
        && services_l
            .iter()
            .all(|s| matches!(&s.v, Loose::Table(f) if f.iter().any(|(k, _, _)| k == "fwmark")));
    if directors.iter().all(|d| d.vips.is_empty()) && !only_fwmark {
        return Err(err(
            "no director carries a VIP",
            directors[0].span,
            "add `vip = \"192.168.1.192\"` (or a list of VIPs) to [director]",
        ));
    }
    let first_address = directors[0].address.main().value;
    let client = match top.get("client") {
        Some(c_l) => {
            let c = Obj::of(c_l, "[client]")?;
            c.only(fields::CLIENT)?;
            Client {
                name: c
                    .checked("name", HostName::parse)?
                    .map(|n| n.value)
                    .unwrap_or_else(|| HostName::known("client")),
                address: c.addresses("the client address")?,
            }
        }
        None => {
            let mut address: Vec<At<IpAddr>> = Vec::new();
            for family in [Family::V4, Family::V6] {
                if directors[0].address.of(family).is_some() {
                    let lan = lans.iter().find(|l| l.family() == family).map(|l| l.value).unwrap_or_else(|| {
                        Subnet::assumed_around(directors[0].address.of(family).map(|a| a.value).unwrap_or(first_address))
                    });
                    address.push(At::implied(default_client_address(&lan)));
                }
            }
            Client {
                name: HostName::known("client"),
                address: Addresses(address),
            }
        }
    };

    let router = match top.get("router") {
        None => None,
        Some(r_l) => {
            let r = Obj::of(r_l, "[router]")?;
            r.only(fields::ROUTER)?;
            let outside = r.strs("outside")?;
            if outside.is_empty() {
                return Err(r.missing("outside"));
            }
            let mut out: Vec<At<IpAddr>> = Vec::new();
            for a in &outside {
                out.push(ip(a, "the router's outside address")?);
            }
            Some(Router {
                name: r
                    .checked("name", HostName::parse)?
                    .map(|n| n.value)
                    .unwrap_or_else(|| HostName::known("router")),
                address: r.addresses("the router's LAN address")?,
                outside: Addresses(out),
                span: r_l.span,
            })
        }
    };

    // `vip_on_lo` is shorthand for "every VIP this server serves", known once the services are read.
    let mut lo_shorthand: Vec<Option<At<u8>>> = Vec::new();
    let mut real_servers: Vec<RealServer> = Vec::new();
    for r_l in top.array("real_server")? {
        let r = Obj::of(r_l, "a [[real_server]]")?;
        r.only(fields::REAL_SERVER)?;
        let name = r.checked("name", HostName::parse)?.ok_or_else(|| r.missing("name"))?;
        if real_servers.iter().any(|x| x.name.value == name.value) {
            return Err(err(
                format!("real server `{}` is defined twice", name.value),
                name.span,
                "give each real server its own name",
            ));
        }
        lo_shorthand.push(match r.get("vip_on_lo") {
            None | Some(L { v: Loose::Bool(false), .. }) => None,
            Some(L {
                v: Loose::Bool(true),
                span,
            }) => Some(At::new(32u8, *span)),
            Some(L { v: Loose::Int(p), span }) => Some(int::<u8>(&At::new(*p, *span), "prefix", "0..=32")?),
            Some(l) => {
                return Err(err(
                    format!("`vip_on_lo` must be a prefix length or false, not {}", kind(&l.v)),
                    l.span,
                    "write `vip_on_lo = 32`",
                ))
            }
        });
        if let Some(p) = lo_shorthand.last().cloned().flatten() {
            if p.value > 32 {
                return Err(err(
                    format!("prefix {} is out of range", p.value),
                    p.span,
                    "use a value in 0..=32 (IPv6 VIPs go on lo as /128)",
                ));
            }
        }
        let mut lo = Vec::new();
        for a in r.strs("lo")? {
            lo.push(prefixed(&a, "an address on lo")?);
        }
        let listen = match r.get("listen") {
            None => None,
            Some(l) => {
                let mut ports = Vec::new();
                for p in r.array("listen")? {
                    match &p.v {
                        Loose::Int(i) => ports
                            .push(u16::try_from(*i).map_err(|_| err(format!("port {i} is out of range"), p.span, "ports are 0..=65535"))?),
                        other => return Err(err(format!("ports must be integers, not {}", kind(other)), p.span, "")),
                    }
                }
                Some(At::new(ports, l.span))
            }
        };
        let interface = r
            .checked("interface", IfName::parse)?
            .unwrap_or_else(|| At::implied(IfName::known("eth0")));
        let mut extra_nics: Vec<Nic> = Vec::new();
        for n_l in r.array("nic")? {
            let n = Obj::of(n_l, "a `nic`")?;
            n.only(fields::NIC)?;
            let nic_if = n.checked("interface", IfName::parse)?.ok_or_else(|| n.missing("interface"))?;
            if nic_if.value == interface.value || extra_nics.iter().any(|x| x.interface.value == nic_if.value) {
                return Err(err(
                    format!("real server `{}` has the interface `{}` twice", name.value, nic_if.value),
                    nic_if.span,
                    "give each NIC its own name",
                ));
            }
            extra_nics.push(Nic {
                address: ip(&n.req_str("address")?, "the NIC's address")?,
                interface: nic_if,
            });
        }
        let mut routes = Vec::new();
        for x_l in r.array("route")? {
            let x = Obj::of(x_l, "a `route`")?;
            x.only(fields::ROUTE)?;
            let to = subnet(&x.req_str("to")?, "to = \"192.168.1.100/32\"")?;
            let device = x.checked("dev", IfName::parse)?.ok_or_else(|| x.missing("dev"))?;
            if device.value != interface.value && !extra_nics.iter().any(|n| n.interface.value == device.value) {
                return Err(err(
                    format!(
                        "route to {} leaves by `{}`, which real server `{}` does not have",
                        to.value, device.value, name.value
                    ),
                    device.span,
                    "name the real server's `interface` or one of its `nic`s",
                ));
            }
            routes.push(HostRoute { to, device });
        }
        real_servers.push(RealServer {
            address: r.addresses("the real server address")?,
            name,
            interface,
            lo,
            sysctls: r.sysctls()?,
            listen,
            extra_nics,
            routes,
            span: r_l.span,
        });
    }

    let mut marks = Vec::new();
    for m_l in top.array("mark")? {
        marks.push(validate_mark(m_l)?);
    }

    // A pair's directors carry the same VIPs: each counts once.
    let mut all_vips: Vec<IpAddr> = Vec::new();
    for v in directors.iter().flat_map(|d| d.vips.iter().map(|v| v.address.value)) {
        if !all_vips.contains(&v) {
            all_vips.push(v);
        }
    }
    let mut services: Vec<VirtualService> = Vec::new();
    for s_l in top.array("service")? {
        services.push(validate_service(s_l, &real_servers, &all_vips)?);
    }
    for (d, ls) in directors.iter_mut().zip(own_ls) {
        for s_l in ls {
            d.own_services.push(validate_service(s_l, &real_servers, &all_vips)?);
        }
    }
    let mut topology = Topology {
        name: top
            .checked("name", check_title)?
            .map(|n| n.value)
            .unwrap_or_else(|| "lvs-dr".into()),
        lans,
        client,
        directors,
        services,
        real_servers,
        marks,
        router,
    };
    for (i, short) in lo_shorthand.into_iter().enumerate() {
        let Some(p) = short else { continue };
        let name = topology.real_servers[i].name.value.to_string();
        for vip in topology.vips_served_by(&name) {
            if topology.real_servers[i].lo_vip(vip).is_some() {
                continue;
            }
            let prefix = if vip.is_ipv4() { p.value } else { 128 };
            topology.real_servers[i].lo.push(At::new(Subnet { address: vip, prefix }, p.span));
        }
    }
    Ok(topology)
}

/// A client address for topologies that do not name one: `.100` in the LAN
/// (`::100` in an IPv6 one), or the first free host address.
pub fn default_client_address(lan: &Subnet) -> IpAddr {
    match lan.address {
        IpAddr::V4(_) => lan.host(u128::from(100u32.min(!lan.mask()).max(1))),
        IpAddr::V6(_) => lan.host(0x100),
    }
}

fn validate_vrrp(l: &L, vips: &[Vip]) -> Result<Vrrp, LoadError> {
    let o = Obj::of(l, "a director's `vrrp`")?;
    o.only(fields::VRRP)?;
    let router_id = o.int("router_id")?.ok_or_else(|| o.missing("router_id"))?;
    let router_id = int::<u8>(&router_id, "virtual_router_id", "1..=255")?;
    let priority = match o.int("priority")? {
        Some(p) => int::<u8>(&p, "priority", "1..=254")?,
        None => At::implied(100),
    };
    let master = match o.str("state")? {
        None => At::implied(false),
        Some(s) if s.value.eq_ignore_ascii_case("master") => At::new(true, s.span),
        Some(s) if s.value.eq_ignore_ascii_case("backup") => At::new(false, s.span),
        Some(s) => {
            return Err(err(
                format!("VRRP state `{}` is not MASTER or BACKUP", s.value),
                s.span,
                "write state = \"MASTER\" or \"BACKUP\"",
            ))
        }
    };
    let advert_ms =
        match (o.int("advert_int")?, o.int("advert_ms")?) {
            (Some(s), None) if (1..=255).contains(&s.value) => At::new(s.value as u32 * 1000, s.span),
            (Some(s), None) => {
                return Err(err(
                    format!("advert_int {} is out of range", s.value),
                    s.span,
                    "use 1..=255 seconds (VRRPv2), or `advert_ms` for sub-second adverts",
                ))
            }
            // keepalived's ranges: VRRPv2 whole seconds up to 255 s; VRRPv3 (which
            // lvsdr writes for any other interval) centiseconds up to 40.95 s.
            (None, Some(ms))
                if (ms.value % 1000 == 0 && (1000..=255_000).contains(&ms.value))
                    || (ms.value % 10 == 0 && (10..=40_950).contains(&ms.value)) =>
            {
                At::new(ms.value as u32, ms.span)
            }
            (None, Some(ms)) => return Err(err(
                format!("advert_ms {} is not an interval keepalived can advertise at", ms.value),
                ms.span,
                "use whole seconds up to 255000 (VRRPv2), or 10..=40950 in steps of 10 (VRRPv3, which lvsdr writes for sub-second adverts)",
            )),
            (None, None) => At::implied(1000),
            (Some(s), Some(_)) => return Err(err("give `advert_int` (seconds) or `advert_ms`, not both", s.span, "")),
        };
    let mut carried = Vec::new();
    for v in o.strs("vips")? {
        carried.push(ip(&v, "a VRRP address")?);
    }
    if o.get("vips").is_none() {
        carried = vips.iter().map(|v| v.address.clone()).collect();
    }
    Ok(Vrrp {
        instance: o
            .checked("instance", VrrpInstance::parse)?
            .unwrap_or_else(|| At::implied(VrrpInstance::known("VI_1"))),
        router_id,
        priority,
        master,
        advert_ms,
        nopreempt: o.bool("nopreempt")?.filter(|b| b.value).map(|b| b.span),
        auth: o.checked("auth", VrrpAuth::parse)?,
        vips: carried,
        span: l.span,
    })
}

fn validate_mark(m_l: &L) -> Result<MarkRule, LoadError> {
    let m = Obj::of(m_l, "a [[mark]]")?;
    m.only(fields::MARK)?;
    let mark = m.int("mark")?.ok_or_else(|| m.missing("mark"))?;
    let mark = int::<u32>(&mark, "fwmark", "1..=4294967295")?;
    let destination = prefixed(&m.req_str("destination")?, "the marked destination")?;
    let protocol = match m.str("protocol")? {
        None => None,
        Some(p) => Some(At::new(
            Protocol::parse(&p.value).ok_or_else(|| err(format!("unknown protocol `{}`", p.value), p.span, "use tcp, udp or sctp"))?,
            p.span,
        )),
    };
    let mut ports = Vec::new();
    for p in m.array("ports")? {
        match &p.v {
            Loose::Int(i) => {
                ports.push(u16::try_from(*i).map_err(|_| err(format!("port {i} is out of range"), p.span, "ports are 0..=65535"))?)
            }
            other => return Err(err(format!("ports must be integers, not {}", kind(other)), p.span, "")),
        }
    }
    let tool = match m.str("tool")? {
        None => MarkTool::Nft,
        Some(t) => {
            MarkTool::parse(&t.value).ok_or_else(|| err(format!("unknown marking tool `{}`", t.value), t.span, "use nft or iptables"))?
        }
    };
    Ok(MarkRule {
        ports: At::new(ports, m.get("ports").map(|l| l.span).unwrap_or(Span::NONE)),
        mark,
        destination,
        protocol,
        tool,
        span: m_l.span,
    })
}

fn validate_service(s_l: &L, servers: &[RealServer], vips: &[IpAddr]) -> Result<VirtualService, LoadError> {
    let r = Obj::of(s_l, "a [[service]]")?;
    r.only(fields::SERVICE)?;
    let sspan = s_l.span;
    let key = match (r.int("fwmark")?, r.int("port")?) {
        (Some(m), None) => At::new(ServiceKey::Fwmark(int::<u32>(&m, "fwmark", "1..=4294967295")?.value), m.span),
        (None, Some(p)) => {
            let protocol = match r.str("protocol")? {
                None => Protocol::Tcp,
                Some(p) => Protocol::parse(&p.value)
                    .ok_or_else(|| err(format!("unknown protocol `{}`", p.value), p.span, "use tcp, udp or sctp"))?,
            };
            let port = int::<u16>(&p, "port", "0..=65535")?;
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
                m.span,
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
    let vip = match (key.value, r.str("vip")?) {
        (ServiceKey::Fwmark(_), Some(v)) => {
            return Err(err(
                "a fwmark service has no VIP of its own",
                v.span,
                "remove `vip`; the [[mark]] rules with this mark say which addresses it serves",
            ))
        }
        (ServiceKey::Fwmark(_), None) => None,
        (ServiceKey::Port { .. }, Some(v)) => {
            let a = ip(&v, "the service's VIP")?;
            if !vips.contains(&a.value) {
                return Err(err(
                    format!("service VIP {} is not carried by any director", a.value),
                    a.span,
                    "add it to the director's `vip` list",
                ));
            }
            Some(a)
        }
        (ServiceKey::Port { .. }, None) => match vips {
            [only] => Some(At::implied(*only)),
            _ => {
                return Err(err(
                    format!("service {} does not say its VIP, and the directors carry {}", key.value, vips.len()),
                    key.span,
                    "add `vip = \"…\"` to the service",
                ))
            }
        },
    };
    let family = match (&vip, r.str("family")?) {
        (Some(v), None) => Family::of(&v.value),
        (Some(v), Some(f)) if f.value == family_name(Family::of(&v.value)) => Family::of(&v.value),
        (None, None) => Family::V4,
        (None, Some(f)) if f.value == "ipv4" => Family::V4,
        (None, Some(f)) if f.value == "ipv6" => Family::V6,
        (_, Some(f)) => {
            return Err(err(
                format!("`family = \"{}\"` does not fit this service", f.value),
                f.span,
                "use \"ipv4\" or \"ipv6\"; a service on a VIP has the VIP's family",
            ))
        }
    };
    let scheduler = match r.str("scheduler")? {
        None => At::implied(Scheduler::Wlc),
        Some(sc) => At::new(
            Scheduler::parse(&sc.value).ok_or_else(|| {
                err(
                    format!("unknown scheduler `{}`", sc.value),
                    sc.span,
                    "use one of rr, wrr, lc, wlc, sed, nq, sh, dh, fo, ovf, mh, lblc, lblcr",
                )
            })?,
            sc.span,
        ),
    };
    let mut flags = Vec::new();
    for f in r.array("flags")? {
        let Loose::Str(name) = &f.v else {
            return Err(err(format!("flags must be strings, not {}", kind(&f.v)), f.span, ""));
        };
        flags.push(At::new(
            SchedFlag::parse(name).ok_or_else(|| {
                err(
                    format!("unknown scheduler flag `{name}`"),
                    f.span,
                    "use sh-fallback, sh-port, mh-fallback or mh-port",
                )
            })?,
            f.span,
        ));
    }
    let persistence = match r.int("persistence")? {
        None => None,
        Some(t) => Some(Persistence {
            timeout: int::<u32>(&t, "persistence timeout", "1..=4294967295 seconds")?,
            netmask: match r.get("persistence_netmask") {
                None => At::implied(family.host_prefix()),
                Some(L { v: Loose::Int(p), span }) => {
                    let p = int::<u8>(&At::new(*p, *span), "persistence prefix", "0..=128")?;
                    if p.value > family.host_prefix() {
                        return Err(err(format!("prefix {} is too long for {}", p.value, family.name()), p.span, ""));
                    }
                    p
                }
                Some(_) => {
                    let m = r.req_str("persistence_netmask")?;
                    let mask: Ipv4Addr = m.value.parse().map_err(|_| {
                        err(
                            format!("persistence netmask `{}` is not an IPv4 netmask", m.value),
                            m.span,
                            "write 255.255.255.0, or a prefix length such as 24",
                        )
                    })?;
                    let prefix = v4_prefix_of(mask).ok_or_else(|| {
                        err(
                            format!("persistence netmask {mask} is not contiguous"),
                            m.span,
                            "write a netmask of leading ones, such as 255.255.255.0",
                        )
                    })?;
                    At::new(prefix, m.span)
                }
            },
        }),
    };
    let default_port = match key.value {
        ServiceKey::Port { port, .. } => port,
        ServiceKey::Fwmark(_) => 0,
    };
    let mut destinations = Vec::new();
    for d_l in r.array("real_server")? {
        let dd = Obj::of(d_l, "a service's real_server")?;
        dd.only(fields::DESTINATION)?;
        let name = dd.checked("server", HostName::parse)?.ok_or_else(|| dd.missing("server"))?;
        let Some(server) = servers.iter().find(|x| x.name.value == name.value) else {
            return Err(err(
                format!("service {} names real server `{}`, which is not defined", key.value, name.value),
                name.span,
                "add a [[real_server]] with this name, or fix the spelling",
            ));
        };
        if server.address.of(family).is_none() {
            return Err(err(
                format!(
                    "{} service {} names real server `{}`, which has no {} address",
                    family.name(),
                    key.value,
                    name.value,
                    family.name()
                ),
                name.span,
                "add an address of that family to the real server: address = [\"192.168.1.10\", \"2001:db8::10\"]",
            ));
        }
        let forward = match dd.str("method")? {
            None => At::implied(Forward::Route),
            Some(m) => At::new(
                Forward::parse(&m.value).ok_or_else(|| {
                    err(
                        format!("unknown forwarding method `{}`", m.value),
                        m.span,
                        "use route (DR), masq, tunnel or local",
                    )
                })?,
                m.span,
            ),
        };
        let threshold =
            |f: &str| -> Result<Option<At<u32>>, LoadError> { dd.int(f)?.map(|t| int::<u32>(&t, "threshold", "0..")).transpose() };
        let port = match dd.int("port")? {
            Some(p) => int::<u16>(&p, "port", "0..=65535")?,
            None => At::implied(default_port),
        };
        // IPVS names a destination by address and port: one real server may serve a service at two ports.
        if destinations
            .iter()
            .any(|x: &Destination| x.server.value == name.value && x.port.value == port.value)
        {
            return Err(err(
                format!(
                    "real server `{}` is listed twice at port {} in service {}",
                    name.value, port.value, key.value
                ),
                name.span,
                "list each real server once per port in a service",
            ));
        }
        let health_check = dd.checked("health_check", HealthCheck::parse)?;
        let urls = health_urls(&dd, health_check.as_ref())?;
        destinations.push(Destination {
            port,
            forward,
            weight: match dd.int("weight")? {
                Some(w) => int::<u32>(&w, "weight", "0..=65535")?,
                None => At::implied(1),
            },
            upper_threshold: threshold("upper_threshold")?,
            lower_threshold: threshold("lower_threshold")?,
            health_check,
            urls,
            span: d_l.span,
            server: name,
        });
    }
    Ok(VirtualService {
        key,
        vip,
        family,
        scheduler,
        flags,
        persistence,
        one_packet: r.bool("one_packet")?.unwrap_or_else(|| At::implied(false)),
        destinations,
        span: sspan,
    })
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// One value, or an array when there are several.
fn one_or_many(items: Vec<String>) -> Value {
    match items.as_slice() {
        [one] => json!(one),
        _ => json!(items),
    }
}

fn addresses_value(a: &Addresses) -> Value {
    one_or_many(a.iter().map(|x| x.value.to_string()).collect())
}

/// An address with its prefix, the prefix left out when it is the host prefix.
fn prefixed_text(address: IpAddr, prefix: u8) -> String {
    if prefix == Family::of(&address).host_prefix() {
        address.to_string()
    } else {
        format!("{address}/{prefix}")
    }
}

/// Whether a real server's `lo` is exactly what `vip_on_lo = N` expands to, and N.
fn lo_shorthand(t: &Topology, r: &RealServer) -> Option<u8> {
    let served = t.vips_served_by(&r.name.value);
    if served.is_empty() || r.lo.len() != served.len() {
        return None;
    }
    let v4: Vec<u8> = r.lo.iter().filter(|a| a.address.is_ipv4()).map(|a| a.prefix).collect();
    let p = v4.first().copied().unwrap_or(32);
    let fits =
        r.lo.iter()
            .all(|a| served.contains(&a.address) && if a.address.is_ipv4() { a.prefix == p } else { a.prefix == 128 });
    fits.then_some(p)
}

/// The topology as a JSON value in the file shape (version 2), in canonical order.
pub fn to_value(t: &Topology) -> Value {
    fn sysctl_map(s: &Sysctls) -> Value {
        Value::Object(s.values.iter().map(|(k, v)| (k.to_string(), json!(v.value))).collect())
    }
    let many = t.many_vips();
    let directors: Vec<Value> = t
        .directors
        .iter()
        .map(|d| {
            let mut director = Map::new();
            director.insert("name".into(), json!(d.name));
            director.insert("address".into(), addresses_value(&d.address));
            director.insert("interface".into(), json!(d.interface.value));
            director.insert(
                "vip".into(),
                one_or_many(d.vips.iter().map(|v| prefixed_text(v.address.value, v.prefix.value)).collect()),
            );
            if d.vips.iter().any(|v| v.dad.is_some()) {
                director.insert("ipv6_dad".into(), json!(true));
            }
            if d.vips.iter().any(|v| v.preferred.is_some()) {
                director.insert("ipv6_preferred".into(), json!(true));
            }
            if let Some(v) = &d.vrrp {
                let mut m = Map::new();
                m.insert("instance".into(), json!(v.instance.value));
                m.insert("router_id".into(), json!(v.router_id.value));
                m.insert("priority".into(), json!(v.priority.value));
                m.insert("state".into(), json!(if v.master.value { "MASTER" } else { "BACKUP" }));
                if v.advert_ms.value % 1000 == 0 {
                    m.insert("advert_int".into(), json!(v.advert_ms.value / 1000));
                } else {
                    m.insert("advert_ms".into(), json!(v.advert_ms.value));
                }
                if v.nopreempt.is_some() {
                    m.insert("nopreempt".into(), json!(true));
                }
                if let Some(a) = &v.auth {
                    m.insert("auth".into(), json!(a.value));
                }
                let own: Vec<IpAddr> = d.vips.iter().map(|x| x.address.value).collect();
                let carried: Vec<IpAddr> = v.vips.iter().map(|x| x.value).collect();
                if carried != own {
                    m.insert("vips".into(), json!(carried.iter().map(|a| a.to_string()).collect::<Vec<_>>()));
                }
                director.insert("vrrp".into(), Value::Object(m));
            }
            if let Some(s) = &d.sync {
                director.insert("sync".into(), json!({ "interface": s.interface.value, "id": s.id.value }));
            }
            if !d.own_services.is_empty() {
                director.insert(
                    "service".into(),
                    Value::Array(d.own_services.iter().map(|s| service_value(s, many)).collect()),
                );
            }
            if !d.sysctls.values.is_empty() {
                director.insert("sysctl".into(), sysctl_map(&d.sysctls));
            }
            if d.placeholder {
                director.insert("placeholder".into(), json!(true));
            }
            if !d.extra_nics.is_empty() {
                let nics: Vec<Value> = d
                    .extra_nics
                    .iter()
                    .map(|n| json!({ "interface": n.interface.value, "address": n.address.to_string() }))
                    .collect();
                director.insert("nic".into(), Value::Array(nics));
            }
            Value::Object(director)
        })
        .collect();
    let services: Vec<Value> = t.services.iter().map(|s| service_value(s, many)).collect();
    let servers: Vec<Value> = t
        .real_servers
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("name".into(), json!(r.name.value));
            m.insert("address".into(), addresses_value(&r.address));
            m.insert("interface".into(), json!(r.interface.value));
            match (lo_shorthand(t, r), r.lo.is_empty()) {
                (_, true) => m.insert("vip_on_lo".into(), json!(false)),
                (Some(p), false) => m.insert("vip_on_lo".into(), json!(p)),
                (None, false) => m.insert(
                    "lo".into(),
                    json!(r.lo.iter().map(|a| prefixed_text(a.address, a.prefix)).collect::<Vec<_>>()),
                ),
            };
            if let Some(l) = &r.listen {
                m.insert("listen".into(), json!(l.value));
            }
            if !r.sysctls.values.is_empty() {
                m.insert("sysctl".into(), sysctl_map(&r.sysctls));
            }
            if !r.extra_nics.is_empty() {
                let nics: Vec<Value> = r
                    .extra_nics
                    .iter()
                    .map(|n| json!({ "interface": n.interface.value, "address": n.address.to_string() }))
                    .collect();
                m.insert("nic".into(), Value::Array(nics));
            }
            if !r.routes.is_empty() {
                let routes: Vec<Value> = r
                    .routes
                    .iter()
                    .map(|x| json!({ "to": x.to.to_string(), "dev": x.device.value }))
                    .collect();
                m.insert("route".into(), Value::Array(routes));
            }
            Value::Object(m)
        })
        .collect();
    let marks: Vec<Value> = t
        .marks
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("mark".into(), json!(r.mark.value));
            m.insert(
                "destination".into(),
                json!(prefixed_text(r.destination.address, r.destination.prefix)),
            );
            if let Some(p) = &r.protocol {
                m.insert("protocol".into(), json!(p.name()));
            }
            if !r.ports.is_empty() {
                m.insert("ports".into(), json!(r.ports.value));
            }
            m.insert("tool".into(), json!(r.tool.name()));
            Value::Object(m)
        })
        .collect();
    let mut top = Map::new();
    top.insert("version".into(), json!(FORMAT_VERSION));
    top.insert("name".into(), json!(t.name));
    if !t.lans.is_empty() {
        top.insert(
            "lan".into(),
            json!({ "subnet": one_or_many(t.lans.iter().map(|l| l.to_string()).collect()) }),
        );
    }
    top.insert(
        "client".into(),
        json!({ "name": t.client.name, "address": addresses_value(&t.client.address) }),
    );
    if let Some(r) = &t.router {
        top.insert(
            "router".into(),
            json!({ "name": r.name, "address": addresses_value(&r.address), "outside": addresses_value(&r.outside) }),
        );
    }
    match <[Value; 1]>::try_from(directors) {
        Ok([one]) => top.insert("director".into(), one),
        Err(many) => top.insert("director".into(), Value::Array(many)),
    };
    top.insert("service".into(), Value::Array(services));
    top.insert("real_server".into(), Value::Array(servers));
    if !marks.is_empty() {
        top.insert("mark".into(), Value::Array(marks));
    }
    Value::Object(top)
}

/// One service in the file shape.
fn service_value(s: &VirtualService, many: bool) -> Value {
    let mut m = Map::new();
    match s.key.value {
        ServiceKey::Port { protocol, port } => {
            if let (true, Some(v)) = (many, &s.vip) {
                m.insert("vip".into(), json!(v.value.to_string()));
            }
            m.insert("protocol".into(), json!(protocol.name()));
            m.insert("port".into(), json!(port));
        }
        ServiceKey::Fwmark(f) => {
            m.insert("fwmark".into(), json!(f));
            if s.family == Family::V6 {
                m.insert("family".into(), json!("ipv6"));
            }
        }
    }
    m.insert("scheduler".into(), json!(s.scheduler.name()));
    if !s.flags.is_empty() {
        m.insert("flags".into(), json!(s.flags.iter().map(|f| f.name()).collect::<Vec<_>>()));
    }
    if let Some(p) = &s.persistence {
        m.insert("persistence".into(), json!(p.timeout.value));
        if p.netmask.value != s.family.host_prefix() {
            match s.family {
                Family::V4 => m.insert("persistence_netmask".into(), json!(p.v4_netmask().to_string())),
                Family::V6 => m.insert("persistence_netmask".into(), json!(p.netmask.value)),
            };
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
            if let Some(h) = &d.health_check {
                dm.insert("health_check".into(), json!(h.value));
            }
            if !d.urls.is_empty() {
                let urls = d.urls.iter().map(|u| {
                    let mut um = Map::new();
                    um.insert("path".into(), json!(u.path.value));
                    if let Some(c) = &u.status_code {
                        um.insert("status_code".into(), json!(c.value.get()));
                    }
                    if let Some(x) = &u.digest {
                        um.insert("digest".into(), json!(x.value));
                    }
                    Value::Object(um)
                });
                dm.insert("url".into(), Value::Array(urls.collect()));
            }
            Value::Object(dm)
        })
        .collect();
    m.insert("real_server".into(), Value::Array(dests));
    Value::Object(m)
}

/// Canonical TOML form of a topology, written from [`to_value`]: scalars
/// first, then `[table]`s, then `[[array]]`s of tables, each level in turn.
pub fn to_toml(t: &Topology) -> String {
    let mut out = String::new();
    if let Value::Object(top) = to_value(t) {
        write_table(&mut out, "", &top);
    }
    out
}

fn toml_key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        k.to_string()
    } else {
        toml_value(&Value::String(k.to_string()))
    }
}

fn toml_value(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let mut q = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => q.push_str("\\\""),
                    '\\' => q.push_str("\\\\"),
                    '\n' => q.push_str("\\n"),
                    '\t' => q.push_str("\\t"),
                    '\r' => q.push_str("\\r"),
                    c if (c as u32) < 0x20 || c == '\u{7f}' => q.push_str(&format!("\\u{:04X}", c as u32)),
                    c => q.push(c),
                }
            }
            q.push('"');
            q
        }
        Value::Array(a) => format!("[{}]", a.iter().map(toml_value).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{ {} }}",
            o.iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Null => "\"\"".into(),
        other => other.to_string(),
    }
}

fn is_table_array(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object))
}

fn write_table(out: &mut String, path: &str, table: &Map<String, Value>) {
    let sub = |k: &str| {
        if path.is_empty() {
            toml_key(k)
        } else {
            format!("{path}.{}", toml_key(k))
        }
    };
    for (k, v) in table {
        // Tables of plain values read best inline (sysctl = { … }), others as sections.
        if (!v.is_object() && !is_table_array(v)) || k == "sysctl" {
            out.push_str(&format!("{} = {}\n", toml_key(k), toml_value(v)));
        }
    }
    for (k, v) in table {
        if let (false, Value::Object(o)) = (k == "sysctl", v) {
            out.push_str(&format!("\n[{}]\n", sub(k)));
            write_table(out, &sub(k), o);
        }
    }
    for (k, v) in table {
        if let (true, Value::Array(items)) = (is_table_array(v), v) {
            for item in items {
                out.push_str(&format!("\n[[{}]]\n", sub(k)));
                if let Value::Object(o) = item {
                    write_table(out, &sub(k), o);
                }
            }
        }
    }
}

/// Canonical JSON form of a topology.
pub fn to_json(t: &Topology) -> String {
    serde_json::to_string_pretty(&to_value(t)).unwrap_or_default()
}
