//! Templates are not configurations: a file that still holds a placeholder
//! (`{{ vip }}`, `{% … %}`, `<%= vip %>`, `<virtual-ip-address>`) is refused
//! (DR111) with the placeholder named, rather than read with its values
//! missing and reported as "no virtual service found".

use crate::source::Span;
use crate::LoadError;

/// The first placeholder on a line that is not a comment, and where it is.
pub fn placeholder(text: &str, base: usize) -> Option<(String, Span)> {
    let mut offset = base;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        for (open, close) in [("{{", "}}"), ("{%", "%}"), ("<%", "%>")] {
            if let Some(i) = line.find(open) {
                if let Some(j) = line[i + open.len()..].find(close) {
                    let end = i + open.len() + j + close.len();
                    return Some((line[i..end].to_string(), Span::new(start + i, start + end)));
                }
            }
        }
        if let Some((i, end)) = angle_placeholder(line) {
            return Some((line[i..end].to_string(), Span::new(start + i, start + end)));
        }
    }
    None
}

/// `<virtual-ip-address>`, `<real_server_ip>`, `<VIP>`: a name in angle brackets, as
/// documentation writes what the reader must fill in (not `<<EOF`, not `<html>`).
fn angle_placeholder(line: &str) -> Option<(usize, usize)> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while let Some(k) = line[i..].find('<') {
        let at = i + k;
        let rest = &line[at + 1..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..len];
        let closed = rest[len..].starts_with('>');
        let after_lt = at > 0 && bytes[at - 1] == b'<';
        let shaped = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && (name.contains(['-', '_']) || (name.len() > 1 && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())));
        if closed && !after_lt && shaped {
            return Some((at, at + 1 + len + 1));
        }
        i = at + 1;
    }
    None
}

/// The refusal of a template, naming its placeholder.
pub fn refusal(found: &str, span: Span) -> LoadError {
    LoadError {
        code: crate::codes::code::TEMPLATE_PLACEHOLDER,
        message: format!(
            "this file is a template: `{}` is a placeholder, not a value",
            crate::names::shown(found)
        ),
        span,
        help: Some("render the template first (ansible, helm, erb, …) and give lvsdr the result".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Option<String> {
        placeholder(text, 0).map(|(p, _)| p)
    }

    #[test]
    fn placeholders_are_found_and_shell_is_not_taken_for_one() {
        assert_eq!(found("virtual_server {{ vip }} 80 {\n").as_deref(), Some("{{ vip }}"));
        assert_eq!(
            found("ipvsadm -A -t <virtual-ip-address>:80\n").as_deref(),
            Some("<virtual-ip-address>")
        );
        assert_eq!(found("VIP=<VIP>\n").as_deref(), Some("<VIP>"));
        assert_eq!(found("x = <%= @vip %>\n").as_deref(), Some("<%= @vip %>"));
        assert_eq!(found("# {{ vip }} in a comment\ncat <<EOF >/etc/x\n<html>\nEOF\n"), None);
        assert_eq!(found("ipvsadm -R < /etc/ipvs.rules\nexec 3<>file\nVIP=${VIP:-10.0.0.1}\n"), None);
    }
}
