use super::prelude::*;

pub static META: RuleMeta = RuleMeta {
    code: crate::codes::code::OVERLAPPING_MARKS,
    name: "overlapping-marks",
    severity: Severity::Warning,
    summary: "two marking rules give different marks to the same traffic",
    doc: crate::lint::doc_text!(r#"## What it does
Finds pairs of marking rules that match the same destination, protocol and
port but set different marks.

## Why it matters
Each rule overwrites the mark the previous one set, so the traffic goes to
the service of whichever rule comes last. Which one that is depends on the
order the rules were loaded in, and changes silently when a script is
edited.

## Example
```toml
[[mark]]
mark = 1
destination = "192.168.1.192"
protocol = "tcp"
ports = [80, 443]
[[mark]]
mark = 2
destination = "192.168.1.0/24"
protocol = "tcp"
ports = [443]
```

## Fix
Make the rules disjoint: one destination, protocol and port per mark.

## References
- `iptables-extensions(8)`, MARK: "--set-mark … zeroes and ORs"
"#),
};

fn overlap(a: &MarkRule, b: &MarkRule) -> Option<String> {
    if a.family() != b.family() {
        return None;
    }
    let (wide, narrow) = if a.destination.prefix <= b.destination.prefix { (a, b) } else { (b, a) };
    if !wide.destination.contains(narrow.destination.address) {
        return None;
    }
    let protocol = match (&a.protocol, &b.protocol) {
        (Some(x), Some(y)) if x.value != y.value => return None,
        (Some(x), _) | (_, Some(x)) => Some(x.value),
        (None, None) => None,
    };
    let port = match (a.ports.is_empty(), b.ports.is_empty()) {
        (true, true) => None,
        (true, false) => b.ports.first().copied(),
        (false, true) => a.ports.first().copied(),
        (false, false) => Some(*a.ports.iter().find(|p| b.ports.contains(p))?),
    };
    let mut what = narrow.destination.address.to_string();
    if let Some(p) = protocol {
        what = format!("{} {what}", p.name());
    }
    if let Some(p) = port {
        what = format!("{what} port {p}");
    }
    Some(what)
}

pub fn check(cx: &LintContext, out: &mut Vec<Diagnostic>) {
    let marks = &cx.topology.marks;
    for (i, a) in marks.iter().enumerate() {
        for b in &marks[i + 1..] {
            if a.mark.value == b.mark.value {
                continue;
            }
            if let Some(what) = overlap(a, b) {
                out.push(
                    cx.diag(&META, format!("marks {} and {} both match {what}; the rule applied last wins", a.mark.value, b.mark.value), b.span.or(a.span))
                        .help("give each destination, protocol and port one mark")
                        .node("director"),
                );
            }
        }
    }
}
