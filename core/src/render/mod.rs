//! Generators: every artifact a DR setup needs, from a [`Topology`].
//!
//! Every value that reaches a shell script passes through [`shell_quote`],
//! and names are validated on the way into the model, so a topology cannot
//! smuggle commands into what we generate.

mod keepalived;
mod scripts;

pub use keepalived::{keepalived, keepalived_director, DELAY_LOOP_S, FIRST_CHECKS_WITHIN_MS};
pub(crate) use scripts::{addr_replace, dest_options, real_server_sysctls, service_arg, service_options};
pub use scripts::{director_script, real_server_script, restore_file, sysctl_files};

use crate::model::Topology;
use serde::Serialize;

/// The artifacts `lvsdr render --artifact NAME` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Artifact {
    Director,
    RealServer,
    Restore,
    Sysctl,
    Keepalived,
    Toml,
    Json,
}

impl Artifact {
    pub const ALL: [Artifact; 7] = [
        Artifact::Director,
        Artifact::RealServer,
        Artifact::Restore,
        Artifact::Sysctl,
        Artifact::Keepalived,
        Artifact::Toml,
        Artifact::Json,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Artifact::Director => "director",
            Artifact::RealServer => "real-server",
            Artifact::Restore => "restore",
            Artifact::Sysctl => "sysctl",
            Artifact::Keepalived => "keepalived",
            Artifact::Toml => "toml",
            Artifact::Json => "json",
        }
    }
    pub fn parse(s: &str) -> Option<Artifact> {
        Artifact::ALL.into_iter().find(|a| a.name() == s)
    }
}

/// Renders one artifact.
pub fn render(topology: &Topology, artifact: Artifact) -> String {
    match artifact {
        Artifact::Director => director_script(topology),
        Artifact::RealServer => real_server_script(topology),
        Artifact::Restore => restore_file(topology),
        Artifact::Sysctl => sysctl_files(topology),
        // A pair gets one whole keepalived.conf per director, VRRP and sync included.
        Artifact::Keepalived if topology.directors.iter().any(|d| d.vrrp.is_some()) => (0..topology.directors.len())
            .filter_map(|i| keepalived_director(topology, i))
            .collect::<Vec<_>>()
            .join("\n"),
        Artifact::Keepalived => keepalived(topology),
        Artifact::Toml => crate::topology_file::to_toml(topology),
        Artifact::Json => crate::topology_file::to_json(topology),
    }
}

/// Quotes a word for POSIX shells: plain words stay as they are, anything
/// else goes in single quotes with embedded quotes escaped.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("192.168.1.1:80"), "192.168.1.1:80");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("x'; rm -rf /; '"), r"'x'\''; rm -rf /; '\'''");
        assert_eq!(shell_quote(""), "''");
    }
}
