//! Just enough shell to read configuration scripts: words with spans,
//! quotes, comments, and `$var` / `${var}` expansion from earlier assignments.

use crate::source::Span;
use std::collections::HashMap;

/// A word after expansion, with the span of the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub span: Span,
}

/// Splits one line (starting at byte `offset` of the file) into words,
/// expanding variables. Returns `None` for an unterminated quote.
pub fn words(line: &str, offset: usize, vars: &HashMap<String, String>) -> Option<Vec<Word>> {
    let mut out = Vec::new();
    let bytes: Vec<(usize, char)> = line.char_indices().collect();
    let mut i = 0;
    while i < bytes.len() {
        let (start, c) = bytes[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        let mut text = String::new();
        let mut end = start;
        let mut quote: Option<char> = None;
        while i < bytes.len() {
            let (pos, ch) = bytes[i];
            if quote.is_none() && (ch.is_whitespace() || ch == ';') {
                break;
            }
            end = pos + ch.len_utf8();
            match (quote, ch) {
                (None, '\'') | (None, '"') => quote = Some(ch),
                (Some(q), c) if c == q => quote = None,
                (None, '\\') | (Some('"'), '\\') => {
                    if let Some(&(_, next)) = bytes.get(i + 1) {
                        text.push(next);
                        i += 1;
                    }
                }
                (q, '$') if q != Some('\'') => {
                    let rest: String = bytes[i + 1..].iter().map(|(_, c)| *c).collect();
                    let (name, used) = if let Some(stripped) = rest.strip_prefix('{') {
                        match stripped.find('}') {
                            Some(close) => (stripped[..close].to_string(), close + 2),
                            None => (String::new(), 0),
                        }
                    } else {
                        let n: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                        let used = n.chars().count();
                        (n, used)
                    };
                    if name.is_empty() {
                        text.push('$');
                    } else {
                        text.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
                        i += used;
                        end = bytes.get(i).map(|(p, c)| p + c.len_utf8()).unwrap_or(line.len());
                    }
                }
                (_, c) => text.push(c),
            }
            i += 1;
        }
        if quote.is_some() {
            return None;
        }
        if i < bytes.len() && bytes[i].1 == ';' {
            end = bytes[i].0;
            i += 1;
        }
        out.push(Word {
            text,
            span: Span::new(offset + start, offset + end.max(start)),
        });
    }
    Some(out)
}

/// `name=value` with no command after it.
pub fn assignment(words: &[Word]) -> Option<(String, String)> {
    if words.len() != 1 {
        return None;
    }
    let (name, value) = words[0].text.split_once('=')?;
    let valid =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with(|c: char| c.is_ascii_digit());
    valid.then(|| (name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables_and_keeps_spans() {
        let mut vars = HashMap::new();
        vars.insert("vip".to_string(), "10.0.0.1".to_string());
        let w = words("cmd -t $vip:80 '${vip}' \"${vip}x\" # c", 10, &vars).unwrap();
        let texts: Vec<_> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["cmd", "-t", "10.0.0.1:80", "${vip}", "10.0.0.1x"]);
        assert_eq!(w[2].span, Span::new(17, 24));
    }

    #[test]
    fn unterminated_quote_is_refused() {
        assert!(words("echo 'oops", 0, &HashMap::new()).is_none());
    }

    #[test]
    fn assignments() {
        let w = words("vip_addr=192.168.1.192", 0, &HashMap::new()).unwrap();
        assert_eq!(assignment(&w), Some(("vip_addr".into(), "192.168.1.192".into())));
        let w = words("a=1 cmd", 0, &HashMap::new()).unwrap();
        assert_eq!(assignment(&w), None);
    }
}
