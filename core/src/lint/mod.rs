//! The lint engine. Each rule lives in its own file under `rules/` with a
//! doc block (What it does / Why it matters / Example / Fix / References)
//! that `lvsdr explain` and the playground show as they are.

pub(crate) use crate::codes::doc_text;
pub use crate::codes::RuleMeta;

pub mod rules;

use crate::diagnostic::{Diagnostic, Edit};
use crate::model::{Forward, RealServer, Topology};
use crate::source::Span;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// A rule: its documentation and its check.
pub struct Rule {
    pub meta: &'static RuleMeta,
    pub check: fn(&LintContext, &mut Vec<Diagnostic>),
}

/// What a rule sees: the topology and the text it came from (for fixes).
pub struct LintContext<'a> {
    pub topology: &'a Topology,
    pub source: &'a str,
    /// Real servers by name, so that rules over every destination stay linear.
    servers: HashMap<&'a str, &'a RealServer>,
    /// For each real server (by name), the indices of the services it belongs to.
    membership: HashMap<&'a str, Vec<usize>>,
    /// Real servers that at least one service reaches by direct routing.
    direct_routed: HashSet<&'a str>,
    /// For each real server (by name), the VIPs it serves, in order.
    served: HashMap<&'a str, Vec<IpAddr>>,
    /// For each VIP, the indices of the services on it.
    on_vip: HashMap<IpAddr, Vec<usize>>,
}

impl<'a> LintContext<'a> {
    pub fn new(topology: &'a Topology, source: &'a str) -> Self {
        let servers = topology.real_servers.iter().map(|r| (r.name.value.as_str(), r)).collect();
        let mut membership: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut direct_routed = HashSet::new();
        let mut served: HashMap<&str, Vec<IpAddr>> = HashMap::new();
        let mut on_vip: HashMap<IpAddr, Vec<usize>> = HashMap::new();
        for (i, s) in topology.services.iter().enumerate() {
            let vips = topology.service_vips(s);
            for v in &vips {
                on_vip.entry(*v).or_default().push(i);
            }
            for d in &s.destinations {
                let list = served.entry(d.server.value.as_str()).or_default();
                for v in &vips {
                    if !list.contains(v) {
                        list.push(*v);
                    }
                }
                let list = membership.entry(d.server.value.as_str()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
                if d.forward.value == Forward::Route {
                    direct_routed.insert(d.server.value.as_str());
                }
            }
        }
        LintContext {
            topology,
            source,
            servers,
            membership,
            direct_routed,
            served,
            on_vip,
        }
    }

    /// The VIPs a real server serves through any service (what it needs on `lo`).
    pub fn vips_served_by(&self, name: &str) -> &[IpAddr] {
        self.served.get(name).map(Vec::as_slice).unwrap_or(&[])
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
        self.membership.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_direct_routed(&self, name: &str) -> bool {
        self.direct_routed.contains(name)
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

/// The documentation of any code: a lint rule, or a note of the readers (DR000, DR1xx).
pub fn doc(code: &str) -> Option<&'static RuleMeta> {
    rule(code).map(|r| r.meta).or_else(|| crate::codes::reader(code))
}
