//! The lint engine. Each rule lives in its own file under `rules/` with a
//! doc block (What it does / Why it matters / Example / Fix / References)
//! that `lvsdr explain` and the playground show as they are.

pub(crate) use crate::codes::doc_text;
pub use crate::codes::RuleMeta;

pub mod rules;

use crate::diagnostic::{Diagnostic, Edit};
use crate::model::{Forward, RealServer, Topology};
use crate::source::Span;

use std::collections::HashMap;

/// The lint context's lookup tables: std's keyed SipHash. Their keys (VIPs,
/// real-server names) come from the input, and a fixed hash lets a crafted
/// file put every key in one bucket (FxHash, used here before, put every VIP
/// of a /16 in one bucket: 20,000 services took 13 s).
type FastMap<K, V> = HashMap<K, V>;
use std::net::IpAddr;

/// A rule: its documentation and its check.
pub struct Rule {
    pub meta: &'static RuleMeta,
    pub check: fn(&LintContext, &mut Vec<Diagnostic>),
    /// Its file in the repository, which holds its documentation
    /// (`core/src/lint/rules/dr_port_mapping.rs`): where SARIF's help links point.
    pub source: &'static str,
}

/// What a rule sees: the topology and the text it came from (for fixes).
pub struct LintContext<'a> {
    pub topology: &'a Topology,
    pub source: &'a str,
    /// Real servers by name, so that rules over every destination stay linear.
    servers: FastMap<&'a str, &'a RealServer>,
    /// What the services say of each real server (by name).
    facts: FastMap<&'a str, ServerFacts>,
    /// For each VIP, the indices of the services on it.
    on_vip: FastMap<IpAddr, Vec<usize>>,
}

/// What the services say of one real server, gathered in one pass.
#[derive(Default)]
struct ServerFacts {
    /// Indices of the services it belongs to, ascending.
    services: Vec<usize>,
    /// The VIPs it serves, in order of first mention.
    vips: Vec<IpAddr>,
    /// Whether at least one service reaches it by direct routing.
    direct: bool,
    /// Whether at least one service reaches it through a tunnel (LVS-TUN).
    tunnelled: bool,
}

impl<'a> LintContext<'a> {
    pub fn new(topology: &'a Topology, source: &'a str) -> Self {
        let servers = topology.real_servers.iter().map(|r| (r.name.value.as_str(), r)).collect();
        let mut facts: FastMap<&str, ServerFacts> = FastMap::default();
        let mut on_vip: FastMap<IpAddr, Vec<usize>> = FastMap::default();
        for (i, s) in topology.services.iter().enumerate() {
            let vips = topology.service_vips(s);
            for v in &vips {
                on_vip.entry(*v).or_default().push(i);
            }
            for d in &s.destinations {
                let f = facts.entry(d.server.value.as_str()).or_default();
                for v in &vips {
                    if !f.vips.contains(v) {
                        f.vips.push(*v);
                    }
                }
                if f.services.last() != Some(&i) {
                    f.services.push(i);
                }
                f.direct |= d.forward.value == Forward::Route;
                f.tunnelled |= d.forward.value == Forward::Tunnel;
            }
        }
        LintContext {
            topology,
            source,
            servers,
            facts,
            on_vip,
        }
    }

    /// The VIPs a real server serves through any service (what it needs on `lo`).
    pub fn vips_served_by(&self, name: &str) -> &[IpAddr] {
        self.facts.get(name).map(|f| f.vips.as_slice()).unwrap_or(&[])
    }

    /// Indices into `topology.services` of the services on a VIP.
    pub fn services_on(&self, vip: IpAddr) -> &[usize] {
        self.on_vip.get(&vip).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn real_server(&self, name: &str) -> Option<&'a RealServer> {
        self.servers.get(name).copied()
    }

    /// Indices into `topology.services` of the services a real server is in.
    pub fn services_of(&self, name: &str) -> &[usize] {
        self.facts.get(name).map(|f| f.services.as_slice()).unwrap_or(&[])
    }

    pub fn is_direct_routed(&self, name: &str) -> bool {
        self.facts.get(name).is_some_and(|f| f.direct)
    }

    /// Whether any service reaches the real server through a tunnel.
    pub fn is_tunnelled(&self, name: &str) -> bool {
        self.facts.get(name).is_some_and(|f| f.tunnelled)
    }
}

impl LintContext<'_> {
    /// An edit that replaces the value written at `span` with `value`,
    /// keeping TOML quotes if the original had them. `None` for implied values.
    pub fn replace_value(&self, span: Span, value: &str) -> Option<Edit> {
        let text = self.source.get(span.start..span.end)?;
        if span.is_none() || text.is_empty() {
            return None;
        }
        let replacement = if text.starts_with('"') {
            format!("\"{value}\"")
        } else {
            value.to_string()
        };
        Some(Edit { span, replacement })
    }

    pub fn diag(&self, meta: &RuleMeta, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic::new(meta.code, meta.severity, message, span)
    }
}

/// Every rule, in code order.
pub fn all_rules() -> &'static [Rule] {
    rules::ALL
}

pub fn rule(code: &str) -> Option<&'static Rule> {
    all_rules()
        .iter()
        .find(|r| r.meta.code.eq_ignore_ascii_case(code) || r.meta.name == code)
}

/// Runs every rule and returns the findings sorted by position, then code.
pub fn lint(topology: &Topology, source: &str) -> Vec<Diagnostic> {
    let ctx = LintContext::new(topology, source);
    let mut out = Vec::new();
    for r in all_rules() {
        (r.check)(&ctx, &mut out);
    }
    out.sort_by(|a, b| (a.span.start, a.code).cmp(&(b.span.start, b.code)));
    out
}

/// The documentation of any code: a lint rule, a note of the readers (DR000,
/// DR1xx), or a kind of drift `lvsdr audit` reports (DR2xx).
pub fn doc(code: &str) -> Option<&'static RuleMeta> {
    rule(code)
        .map(|r| r.meta)
        .or_else(|| crate::codes::reader(code))
        .or_else(|| crate::audit::kinds::meta(code))
}
