//! Host names the user maps to addresses. `ipvsadm -S` without `-n` writes
//! names (`-A -t lb-web:https`), and lvsdr never resolves a name at run time:
//! the answer would depend on the machine and the moment it runs on, not on
//! the file. The user says what each name is instead (`NAME=ADDRESS`, or a
//! file in the `hosts(5)` format), and a name nobody mapped refuses the
//! input (DR110) with what to write.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Names mapped to addresses, compared without regard to case (as DNS does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameMap(BTreeMap<String, IpAddr>);

/// The longest name kept (a DNS name is at most 253 characters).
const MAX_NAME: usize = 253;

impl NameMap {
    pub fn new() -> NameMap {
        NameMap::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Maps `name` to `address`. A name is letters, digits, `-`, `_` and `.`;
    /// a later mapping of the same name wins, as in a hosts file.
    pub fn insert(&mut self, name: &str, address: IpAddr) -> Result<(), String> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && name.chars().any(|c| c.is_ascii_alphabetic());
        if !valid {
            return Err(format!(
                "`{}` is not a host name (letters, digits, `-`, `_` and `.`, at most {MAX_NAME})",
                crate::names::shown(name)
            ));
        }
        self.0.insert(name.to_ascii_lowercase(), address);
        Ok(())
    }

    /// One `NAME=ADDRESS` mapping, as `--resolve` takes it.
    pub fn parse_mapping(&mut self, text: &str) -> Result<(), String> {
        let (name, address) = text
            .split_once('=')
            .ok_or_else(|| format!("`{}` is not NAME=ADDRESS", crate::names::shown(text)))?;
        let address: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not an IP address", crate::names::shown(address)))?;
        self.insert(name.trim(), address)
    }

    /// A file in the `hosts(5)` format: `ADDRESS NAME [ALIAS…]` a line, `#` comments.
    pub fn parse_hosts(&mut self, text: &str) -> Result<(), String> {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let Some(address) = fields.next() else { continue };
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("line {}: `{}` is not an IP address", n + 1, crate::names::shown(address)))?;
            let mut any = false;
            for name in fields {
                self.insert(name, address).map_err(|e| format!("line {}: {e}", n + 1))?;
                any = true;
            }
            if !any {
                return Err(format!("line {}: an address with no name", n + 1));
            }
        }
        Ok(())
    }

    /// The address mapped to `name`.
    pub fn get(&self, name: &str) -> Option<IpAddr> {
        self.0.get(&name.to_ascii_lowercase()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_and_hosts_files_read() {
        let mut m = NameMap::new();
        m.parse_mapping("lb-web=192.0.2.10").unwrap();
        m.parse_hosts("# comment\n192.0.2.21 web1 web1.lan.example\n2001:db8::5 v6host\n\n")
            .unwrap();
        assert_eq!(m.get("LB-WEB"), "192.0.2.10".parse().ok());
        assert_eq!(m.get("web1.lan.example"), "192.0.2.21".parse().ok());
        assert_eq!(m.get("v6host"), "2001:db8::5".parse().ok());
        assert!(m.get("other").is_none());
        assert!(m.parse_mapping("lb-web").is_err());
        assert!(m.parse_mapping("lb web=192.0.2.1").is_err());
        assert!(m.parse_mapping("x=not-an-address").is_err());
        assert!(m.parse_hosts("192.0.2.1\n").is_err());
        assert!(m.parse_hosts("192.0.2.1 $(reboot)\n").is_err());
    }
}
