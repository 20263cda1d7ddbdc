//! The catalogue of diagnostic codes: what every code means, its severity
//! and its documentation. Lint rules keep their entry in their own file
//! (`lint/rules/`); the readers' codes (DR000, DR1xx) are here. Lint and the
//! readers both take their facts from this module and never from each other.

use crate::diagnostic::Severity;
use serde::Serialize;

/// Every code by its name: code refers to a code through these, never by a
/// literal (the catalogue entries themselves included), so a code is spelt
/// once. `codes::tests` holds each to its catalogue entry.
pub mod code {
    pub const UNREADABLE_TOPOLOGY: &str = "DR000";
    pub const ARP_SYSCTLS_MISSING: &str = "DR001";
    pub const ARP_SYSCTLS_ONLY_ON_LO: &str = "DR002";
    pub const VIP_MISSING_ON_LO: &str = "DR003";
    pub const VIP_ON_LO_PREFIX: &str = "DR004";
    pub const DR_PORT_MAPPING: &str = "DR005";
    pub const REAL_SERVER_OFF_LINK: &str = "DR006";
    pub const MISSING_LISTENER: &str = "DR007";
    pub const SCHEDULER_IGNORES_WEIGHTS: &str = "DR008";
    pub const PORT_ZERO_WITHOUT_PERSISTENCE: &str = "DR009";
    pub const SCHEDULER_FLAG_MISMATCH: &str = "DR010";
    pub const ONE_PACKET_NOT_UDP: &str = "DR011";
    pub const DIRECTOR_SEND_REDIRECTS: &str = "DR012";
    pub const IP_FORWARD_NOT_NEEDED: &str = "DR013";
    pub const REAL_SERVER_RP_FILTER: &str = "DR014";
    pub const SERVICE_WITHOUT_REAL_SERVERS: &str = "DR015";
    pub const ALL_WEIGHTS_ZERO: &str = "DR016";
    pub const DUPLICATE_ADDRESS: &str = "DR017";
    pub const VIP_PLACEMENT: &str = "DR018";
    pub const NOT_DIRECT_ROUTING: &str = "DR019";
    pub const PERSISTENCE_PER_CLIENT: &str = "DR020";
    pub const THRESHOLDS: &str = "DR021";
    pub const WEIGHT_RANGE: &str = "DR022";
    pub const PARTIAL_MEMBERSHIP: &str = "DR023";
    pub const DUPLICATE_SERVICE: &str = "DR024";
    pub const DIRECTOR_VIP_PREFIX: &str = "DR025";
    pub const MARK_WITHOUT_SERVICE: &str = "DR026";
    pub const FWMARK_SERVICE_WITHOUT_MARK: &str = "DR027";
    pub const OVERLAPPING_MARKS: &str = "DR028";
    pub const IPV6_VIP_DAD: &str = "DR029";
    pub const IPV6_DISABLED: &str = "DR030";
    pub const IPV6_VIP_AS_SOURCE: &str = "DR031";
    pub const PAIR_DRIFT: &str = "DR032";
    pub const NO_CONNECTION_SYNC: &str = "DR033";
    pub const VRRP_ELECTION: &str = "DR034";
    pub const VRRP_ROUTER_ID: &str = "DR035";
    pub const VIP_WITHOUT_VRRP: &str = "DR036";
    pub const SLOW_FAILOVER: &str = "DR037";
    pub const TUNNEL_RP_FILTER: &str = "DR038";
    pub const NAT_WITHOUT_IP_FORWARD: &str = "DR039";
    pub const IMPORT_SKIPPED_LINE: &str = "DR100";
    pub const IMPORT_MALFORMED_COMMAND: &str = "DR101";
    pub const IMPORT_UNREAD_MARK_RULE: &str = "DR102";
    pub const IMPORT_ASSUMED_VALUE: &str = "DR103";
    pub const ROUTE_WITHOUT_DEV: &str = "DR104";
    pub const SYSCTL_KEY_NOT_ALLOWED: &str = "DR105";
    pub const INVALID_NAME: &str = "DR106";
    pub const IMPORT_NOTHING_APPLIED: &str = "DR107";
    pub const SYSCTL_VALUE_OUT_OF_RANGE: &str = "DR108";
    pub const INPUT_LIMIT: &str = "DR109";
    pub const UNRESOLVED_HOST_NAME: &str = "DR110";
    pub const TEMPLATE_PLACEHOLDER: &str = "DR111";
    pub const UNDEFINED_VARIABLE: &str = "DR112";
    pub const AUDIT_SERVICE_MISSING: &str = "DR200";
    pub const AUDIT_SERVICE_UNEXPECTED: &str = "DR201";
    pub const AUDIT_SERVICE_SETTING: &str = "DR202";
    pub const AUDIT_REAL_SERVER_MISSING: &str = "DR203";
    pub const AUDIT_REAL_SERVER_UNEXPECTED: &str = "DR204";
    pub const AUDIT_REAL_SERVER_SETTING: &str = "DR205";
    pub const AUDIT_REAL_SERVER_QUIESCED: &str = "DR206";
    pub const AUDIT_VIP_MISSING: &str = "DR207";
    pub const AUDIT_VIP_SETTING: &str = "DR208";
    pub const AUDIT_SYSCTL: &str = "DR209";
    pub const AUDIT_LISTENER_MISSING: &str = "DR210";
    pub const AUDIT_KEEPALIVED_NOT_RUNNING: &str = "DR211";
    pub const AUDIT_VRRP_STATE: &str = "DR212";
    pub const AUDIT_ADDRESS_UNEXPECTED: &str = "DR213";

    /// Every constant above, by name.
    pub const ALL: &[(&str, &str)] = &[
        ("UNREADABLE_TOPOLOGY", UNREADABLE_TOPOLOGY),
        ("ARP_SYSCTLS_MISSING", ARP_SYSCTLS_MISSING),
        ("ARP_SYSCTLS_ONLY_ON_LO", ARP_SYSCTLS_ONLY_ON_LO),
        ("VIP_MISSING_ON_LO", VIP_MISSING_ON_LO),
        ("VIP_ON_LO_PREFIX", VIP_ON_LO_PREFIX),
        ("DR_PORT_MAPPING", DR_PORT_MAPPING),
        ("REAL_SERVER_OFF_LINK", REAL_SERVER_OFF_LINK),
        ("MISSING_LISTENER", MISSING_LISTENER),
        ("SCHEDULER_IGNORES_WEIGHTS", SCHEDULER_IGNORES_WEIGHTS),
        ("PORT_ZERO_WITHOUT_PERSISTENCE", PORT_ZERO_WITHOUT_PERSISTENCE),
        ("SCHEDULER_FLAG_MISMATCH", SCHEDULER_FLAG_MISMATCH),
        ("ONE_PACKET_NOT_UDP", ONE_PACKET_NOT_UDP),
        ("DIRECTOR_SEND_REDIRECTS", DIRECTOR_SEND_REDIRECTS),
        ("IP_FORWARD_NOT_NEEDED", IP_FORWARD_NOT_NEEDED),
        ("REAL_SERVER_RP_FILTER", REAL_SERVER_RP_FILTER),
        ("SERVICE_WITHOUT_REAL_SERVERS", SERVICE_WITHOUT_REAL_SERVERS),
        ("ALL_WEIGHTS_ZERO", ALL_WEIGHTS_ZERO),
        ("DUPLICATE_ADDRESS", DUPLICATE_ADDRESS),
        ("VIP_PLACEMENT", VIP_PLACEMENT),
        ("NOT_DIRECT_ROUTING", NOT_DIRECT_ROUTING),
        ("PERSISTENCE_PER_CLIENT", PERSISTENCE_PER_CLIENT),
        ("THRESHOLDS", THRESHOLDS),
        ("WEIGHT_RANGE", WEIGHT_RANGE),
        ("PARTIAL_MEMBERSHIP", PARTIAL_MEMBERSHIP),
        ("DUPLICATE_SERVICE", DUPLICATE_SERVICE),
        ("DIRECTOR_VIP_PREFIX", DIRECTOR_VIP_PREFIX),
        ("MARK_WITHOUT_SERVICE", MARK_WITHOUT_SERVICE),
        ("FWMARK_SERVICE_WITHOUT_MARK", FWMARK_SERVICE_WITHOUT_MARK),
        ("OVERLAPPING_MARKS", OVERLAPPING_MARKS),
        ("IPV6_VIP_DAD", IPV6_VIP_DAD),
        ("IPV6_DISABLED", IPV6_DISABLED),
        ("IPV6_VIP_AS_SOURCE", IPV6_VIP_AS_SOURCE),
        ("PAIR_DRIFT", PAIR_DRIFT),
        ("NO_CONNECTION_SYNC", NO_CONNECTION_SYNC),
        ("VRRP_ELECTION", VRRP_ELECTION),
        ("VRRP_ROUTER_ID", VRRP_ROUTER_ID),
        ("VIP_WITHOUT_VRRP", VIP_WITHOUT_VRRP),
        ("SLOW_FAILOVER", SLOW_FAILOVER),
        ("TUNNEL_RP_FILTER", TUNNEL_RP_FILTER),
        ("NAT_WITHOUT_IP_FORWARD", NAT_WITHOUT_IP_FORWARD),
        ("IMPORT_SKIPPED_LINE", IMPORT_SKIPPED_LINE),
        ("IMPORT_MALFORMED_COMMAND", IMPORT_MALFORMED_COMMAND),
        ("IMPORT_UNREAD_MARK_RULE", IMPORT_UNREAD_MARK_RULE),
        ("IMPORT_ASSUMED_VALUE", IMPORT_ASSUMED_VALUE),
        ("ROUTE_WITHOUT_DEV", ROUTE_WITHOUT_DEV),
        ("SYSCTL_KEY_NOT_ALLOWED", SYSCTL_KEY_NOT_ALLOWED),
        ("INVALID_NAME", INVALID_NAME),
        ("IMPORT_NOTHING_APPLIED", IMPORT_NOTHING_APPLIED),
        ("SYSCTL_VALUE_OUT_OF_RANGE", SYSCTL_VALUE_OUT_OF_RANGE),
        ("INPUT_LIMIT", INPUT_LIMIT),
        ("UNRESOLVED_HOST_NAME", UNRESOLVED_HOST_NAME),
        ("TEMPLATE_PLACEHOLDER", TEMPLATE_PLACEHOLDER),
        ("UNDEFINED_VARIABLE", UNDEFINED_VARIABLE),
        ("AUDIT_SERVICE_MISSING", AUDIT_SERVICE_MISSING),
        ("AUDIT_SERVICE_UNEXPECTED", AUDIT_SERVICE_UNEXPECTED),
        ("AUDIT_SERVICE_SETTING", AUDIT_SERVICE_SETTING),
        ("AUDIT_REAL_SERVER_MISSING", AUDIT_REAL_SERVER_MISSING),
        ("AUDIT_REAL_SERVER_UNEXPECTED", AUDIT_REAL_SERVER_UNEXPECTED),
        ("AUDIT_REAL_SERVER_SETTING", AUDIT_REAL_SERVER_SETTING),
        ("AUDIT_REAL_SERVER_QUIESCED", AUDIT_REAL_SERVER_QUIESCED),
        ("AUDIT_VIP_MISSING", AUDIT_VIP_MISSING),
        ("AUDIT_VIP_SETTING", AUDIT_VIP_SETTING),
        ("AUDIT_SYSCTL", AUDIT_SYSCTL),
        ("AUDIT_LISTENER_MISSING", AUDIT_LISTENER_MISSING),
        ("AUDIT_KEEPALIVED_NOT_RUNNING", AUDIT_KEEPALIVED_NOT_RUNNING),
        ("AUDIT_VRRP_STATE", AUDIT_VRRP_STATE),
        ("AUDIT_ADDRESS_UNEXPECTED", AUDIT_ADDRESS_UNEXPECTED),
    ];
}

/// A rule's documentation text, or nothing when built without the `docs` feature.
#[cfg(feature = "docs")]
macro_rules! doc_text {
    ($text:expr) => {
        $text
    };
}
#[cfg(not(feature = "docs"))]
macro_rules! doc_text {
    ($text:expr) => {
        ""
    };
}
pub(crate) use doc_text;

/// The fixed facts about a code.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RuleMeta {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    /// Markdown: What it does / Why it matters / Example / Fix / References.
    pub doc: &'static str,
}

/// The entry of a reader's code.
pub fn reader(code: &str) -> Option<&'static RuleMeta> {
    READERS.iter().find(|m| m.code.eq_ignore_ascii_case(code) || m.name == code)
}

/// Codes the readers emit while reading a file (not lint rules: they are
/// about the input text, not about the DR setup). `lvsdr explain` shows them.
pub static READERS: &[RuleMeta] = &[
    RuleMeta {
        code: crate::codes::code::UNREADABLE_TOPOLOGY,
        name: "unreadable-topology",
        severity: Severity::Error,
        summary: "the input cannot be read as a topology",
        doc: doc_text!("## What it does\nReports input that is not a topology at all: a TOML or JSON syntax error, a bad address, an unknown scheduler, a destination naming no real server.\n\n## Why it matters\nNothing else can be checked until the file reads.\n\n## Example\n```toml\naddress = \"192.168.1.999\"\n```\n\n## Fix\nCorrect the value at the line and column given. `fixtures/seed-dr.toml` is a complete example.\n\n## References\n- lvsdr README, \"Topology format\"\n"),
    },
    RuleMeta {
        code: crate::codes::code::IMPORT_SKIPPED_LINE,
        name: "import-skipped-line",
        severity: Severity::Info,
        summary: "a script line lvsdr does not model was skipped",
        doc: doc_text!("## What it does\nNotes lines of an imported script that do not configure IPVS, addresses or sysctls (echo, service restarts, unknown commands).\n\n## Why it matters\nThey are left out of the imported topology; if one of them matters to your DR setup, the topology is incomplete.\n\n## Example\n```sh\nsystemctl restart httpd\n```\n\n## Fix\nNothing, unless the line configures something lvsdr should know about.\n\n## References\n- `lvsdr import --help`\n"),
    },
    RuleMeta {
        code: crate::codes::code::IMPORT_MALFORMED_COMMAND,
        name: "import-malformed-command",
        severity: Severity::Warning,
        summary: "a command in the imported file is malformed",
        doc: doc_text!("## What it does\nReports `ipvsadm`, `ip`, `ifconfig`, `route` or `sysctl` lines whose arguments cannot work: a missing VIP:PORT, a real server added to a service that does not exist, an unterminated quote.\n\n## Why it matters\nThe real command fails (or does something else) when the script runs, and the rest of the script runs without it.\n\n## Example\n```sh\nipvsadm -a -t 192.168.1.192:80 -w 1\n```\n\n## Fix\nComplete the command as the help text says, e.g. add `-r REAL-SERVER:PORT`.\n\n## References\n- `ipvsadm(8)`, `ip-address(8)`, `route(8)`\n"),
    },
    RuleMeta {
        code: crate::codes::code::IMPORT_UNREAD_MARK_RULE,
        name: "import-unread-mark-rule",
        severity: Severity::Warning,
        summary: "a firewall rule marks packets in a way lvsdr cannot read",
        doc: doc_text!("## What it does\nReports `iptables`/`ip6tables`/`nft` rules that set a firewall mark but that lvsdr could not read as a marking rule for a fwmark service: no destination address, a port list it cannot parse, the rule in a chain other than mangle PREROUTING, an IPv6 address given to `iptables`.\n\n## Why it matters\nA fwmark service serves whatever its marking rules send it. A rule lvsdr cannot read leaves the service without known VIPs or ports, so lint, render and the lab cannot check it. A MARK rule outside PREROUTING is set after IPVS has already looked at the packet.\n\n## Example\n```sh\niptables -t mangle -A PREROUTING -p tcp --dport 80 -j MARK --set-mark 1\n```\n\n## Fix\nName the VIP and the ports:\n```sh\niptables -t mangle -A PREROUTING -d 192.168.1.192 -p tcp -m multiport --dports 80,443 -j MARK --set-mark 1\n```\n\n## References\n- `ipvsadm(8)`, `-f, --fwmark-service`\n- `iptables-extensions(8)`, MARK\n"),
    },
    RuleMeta {
        code: crate::codes::code::IMPORT_ASSUMED_VALUE,
        name: "import-assumed-value",
        severity: Severity::Info,
        summary: "the imported file does not say something lvsdr needs; a value was assumed",
        doc: doc_text!("## What it does\nSays which values were assumed because the file does not contain them: the LAN, the director's own address, or (for an `ipvsadm -S` dump) the real servers' settings.\n\n## Why it matters\nThe lint and the lab use the assumed values; check them in `lvsdr import FILE`.\n\n## Example\nAn `ipvsadm -S` dump has no real-server sysctls.\n\n## Fix\nAdd the missing lines to the script, or edit the imported TOML.\n\n## References\n- `lvsdr import --help`\n"),
    },
    RuleMeta {
        code: crate::codes::code::ROUTE_WITHOUT_DEV,
        name: "route-without-dev",
        severity: Severity::Warning,
        summary: "`route add` names an interface without `dev`",
        doc: doc_text!("## What it does\nFinds `route add -host VIP lo:0` and similar lines that give the interface as a bare last word.\n\n## Why it matters\nnet-tools `route` reads a bare last word as the interface only in some positions and versions; written this way the line is easy to misread and to break, and iproute2 rejects it. It is also unnecessary: adding the address to the interface already adds the route.\n\n## Example\n```sh\nroute add -host $vip_addr lo:0\n```\n\n## Fix\n```sh\nroute add -host \"$vip_addr\" dev lo:0   # or drop the line\n```\n\n## References\n- `route(8)`: `[dev] If`\n"),
    },
    RuleMeta {
        code: crate::codes::code::SYSCTL_KEY_NOT_ALLOWED,
        name: "sysctl-key-not-allowed",
        severity: Severity::Error,
        summary: "a sysctl key is malformed or not one of the networking keys lvsdr sets",
        doc: doc_text!("## What it does\nRefuses a topology or script that sets a sysctl outside the allow-list: `net.ipv4.conf.*.*`, `net.ipv6.conf.*.*`, `net.ipv4.neigh.*.*`, `net.ipv6.neigh.*.*`, `net.ipv4.vs.*`, `net.ipv4.ip_forward`, `net.ipv4.ip_nonlocal_bind`, `net.ipv6.ip_nonlocal_bind`. Each dotted part must be made of letters, digits, `_` and `-`.\n\n## Why it matters\nThe lab runs as root and writes each sysctl under `/proc/sys`. A key such as `net/../../../tmp/x` would name a file anywhere, and a key such as `kernel.panic` is not private to a network namespace, so setting it in the lab would change the host. Every key on the list belongs to the namespace it is written in.\n\n## Example\n```toml\n[real_server.sysctl]\n\"kernel.panic\" = 1\n```\n\n## Fix\nRemove the key. DR needs only the ARP, forwarding, `rp_filter` and IPVS keys, all on the list.\n\n## References\n- kernel `Documentation/networking/ip-sysctl.rst`, `Documentation/networking/ipvs-sysctl.rst`\n"),
    },
    RuleMeta {
        code: crate::codes::code::INVALID_NAME,
        name: "invalid-name",
        severity: Severity::Error,
        summary: "a host name, interface name, VRRP word, health check, health check url or topology name is not valid",
        doc: doc_text!("## What it does\nRefuses names the kernel would refuse, or that are not safe to use as they are: host names (1 to 15 letters, digits and `-`, starting with a letter), interface names (at most 15 letters, digits, `-`, `_` or `.`, not starting with `-`, with an optional alias `:N`; never `/`, whitespace or `..`), VRRP instance names (one word of 1 to 32 letters, digits, `_`, `-` and `.`), VRRP authentication types (`PASS` or `AH`), health checkers (keepalived's own keywords, such as `TCP_CHECK`), an HTTP_GET or SSL_GET url's `path` (one word of printable ASCII without space, brace, quote, backslash, `#` or `!`), `digest` (32 hexadecimal digits) and `status_code` (100 to 599), and topology names (one line of at most 80 characters).\n\n## Why it matters\nHost names become network namespace names and shell `case` labels; interface names become links in the lab and words in the generated scripts; VRRP words and url paths are written into keepalived.conf, where a newline, a brace or a quote would add a `notify_master` script (which keepalived runs as root) or an `include`; all of them are drawn in the playground. A name that carries markup, shell syntax or keepalived syntax is refused here, so no face has to trust it.\n\n## Example\n```toml\n[director]\ninterface = \"eth0<img src=x>\"\n```\n\n## Fix\nUse the interface's real name, as `ip link` shows it.\n\n## References\n- kernel `net/core/dev.c`, `dev_valid_name()`\n"),
    },
    RuleMeta {
        code: crate::codes::code::IMPORT_NOTHING_APPLIED,
        name: "import-nothing-applied",
        severity: Severity::Warning,
        summary: "the imported script sets nothing up on the path it runs",
        doc: doc_text!("## What it does\nWarns when a script holds `ipvsadm`, `ip` or `sysctl` commands but none of them sets up a virtual service, a VIP or a real server on the path lvsdr follows: every such command sits in a `stop)` branch, a function that is never called, a loop lvsdr cannot count, or the script only lists or clears the table.\n\n## Why it matters\nlvsdr reads an init script as `start` runs it. If that path configures nothing, there is nothing to check, and a script that looks complete may not be doing what its author thinks.\n\n## Example\n```sh\ncase \"$1\" in\n  stop) ipvsadm -C ;;\nesac\n```\n\n## Fix\nGive lvsdr the script (or the branch) that sets the director up, or an `ipvsadm -S -n` dump of the running table.\n\n## References\n- `lvsdr import --help`\n"),
    },
    RuleMeta {
        code: crate::codes::code::SYSCTL_VALUE_OUT_OF_RANGE,
        name: "sysctl-value-out-of-range",
        severity: Severity::Error,
        summary: "a sysctl is set to a value outside its range",
        doc: doc_text!("## What it does\nRefuses a sysctl value that the kernel does not take for that key: `arp_ignore` outside 0..=8, `arp_announce` or `rp_filter` outside 0..=2, a switch such as `ip_forward` or `vs.conntrack` other than 0 or 1, `vs.conn_reuse_mode` outside 0..=3, and anything that does not fit the kernel's `int`.\n\n## Why it matters\nThe kernel answers such a write with EINVAL or stores a value nobody meant, so the generated `sysctl.d` file and the lab would not do what the topology says, and lint would judge a setting the kernel never holds.\n\n## Example\n```toml\nsysctl = { \"net.ipv4.conf.all.arp_ignore\" = 99999999999999 }\n```\n\n## Fix\nUse a value in the range the message gives: for DR real servers, `arp_ignore = 1` and `arp_announce = 2`.\n\n## References\n- kernel `Documentation/networking/ip-sysctl.rst`, `Documentation/networking/ipvs-sysctl.rst`\n"),
    },
    RuleMeta {
        code: crate::codes::code::INPUT_LIMIT,
        name: "input-limit",
        severity: Severity::Error,
        summary: "the input is larger or deeper than lvsdr reads",
        doc: doc_text!("## What it does\nRefuses input past one of the readers' limits, each named in the message: the size of a file (`MAX_INPUT_BYTES`, 32 MiB), the nesting of blocks in keepalived.conf or of subshells, functions, `if`, loops, `$(…)` and `${…:-…}` in a script (`MAX_NESTING`, 64 levels), and the total text a script's expansions may produce (`MAX_EXPANSION_BYTES`, 64 MiB).\n\n## Why it matters\nTopology files and scripts come from strangers. Without limits, a small hostile file (ten thousand nested braces, or nested `$(` in 20 KB) would exhaust the stack or gigabytes of memory of the tool, the CI job or the browser tab that reads it. Real configurations stay far below every limit: a 12,700-line production dump is 1 MB, and real scripts nest a few levels.\n\n## Example\n```sh\n$($($($( … ten thousand levels … )))) \n```\n\n## Fix\nSplit the input, or flatten its nesting. If a real configuration hits a limit, report it: the limits are constants in `lvsdr-core`.\n\n## References\n- `lvsdr explain DR109`\n"),
    },
    RuleMeta {
        code: crate::codes::code::UNRESOLVED_HOST_NAME,
        name: "unresolved-host-name",
        severity: Severity::Error,
        summary: "an ipvsadm line names a host that the user has not mapped to an address",
        doc: doc_text!("## What it does\nRefuses an `ipvsadm -S` dump (or an `ipvsadm` line in a script) that names a host instead of an address (`-A -t lb-web:https`, what `ipvsadm -S` writes without `-n`), unless the user mapped that name to an address.\n\n## Why it matters\nlvsdr never resolves names: the answer would depend on the machine and the moment it runs on, not on the file. A line it cannot read would leave half a table, and lint and render would pass half a setup as a whole one.\n\n## Example\n```text\n-A -t lb-web:https -s wlc\n```\n\n## Fix\nMap the name: `--resolve lb-web=192.0.2.10`, or a file in the hosts(5) format; or dump the table with `ipvsadm -S -n`, which writes addresses.\n\n## References\n- `ipvsadm(8)`: `-n, --numeric`\n"),
    },
    RuleMeta {
        code: crate::codes::code::TEMPLATE_PLACEHOLDER,
        name: "template-placeholder",
        severity: Severity::Error,
        summary: "the input is a template: it holds a placeholder where a value belongs",
        doc: doc_text!("## What it does\nRefuses a script or keepalived.conf that holds a template placeholder (`{{ vip }}`, `{% … %}`, `<%= vip %>`, `<virtual-ip-address>`) and names it.\n\n## Why it matters\nA template is not a configuration: the values that decide whether DR works are not in it yet. Reading it would give a topology with those values missing, and findings about a setup nobody runs.\n\n## Example\n```text\nvirtual_server {{ vip }} 80 {\n```\n\n## Fix\nRender the template first (ansible, helm, erb, …) and give lvsdr the result.\n\n## References\n- `lvsdr explain DR111`\n"),
    },
    RuleMeta {
        code: crate::codes::code::UNDEFINED_VARIABLE,
        name: "undefined-variable",
        severity: Severity::Error,
        summary: "a command that sets up the director or a real server uses a shell variable that is never set",
        doc: doc_text!("## What it does\nReports a variable that an `ipvsadm`, `ip`, `ifconfig`, `route` or `sysctl` line expands but that the script never sets, and names the variable it probably meant (`$VPI` where `$VIP` is set).\n\n## Why it matters\nThe shell expands an unset variable to nothing, so the command runs without its address or port: ipvsadm refuses it, or adds something else. The script looks complete and sets up less than it says.\n\n## Example\n```sh\nVIP=192.168.1.192\nipvsadm -A -t $VPI:80 -s rr\n```\n\n## Fix\nCorrect the name, or set the variable before the line that uses it.\n\n## References\n- `bash(1)`: `set -u`\n"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry of every catalogue (the readers', the lint rules', the
    /// audit's) spells its code through its constant, and every constant
    /// belongs to exactly one entry, of the same name.
    #[test]
    fn each_code_constant_is_its_entry() {
        let entries: Vec<&RuleMeta> = READERS
            .iter()
            .chain(crate::lint::all_rules().iter().map(|r| r.meta))
            .chain(crate::audit::kinds::CATALOGUE.iter())
            .collect();
        let constants = code::ALL;
        assert_eq!(constants.len(), entries.len(), "one constant per catalogue entry");
        for (name, value) in constants {
            let matching: Vec<&&RuleMeta> = entries.iter().filter(|e| e.code == *value).collect();
            assert_eq!(matching.len(), 1, "{value} is the code of exactly one entry");
            assert_eq!(
                matching[0].name.to_uppercase().replace('-', "_"),
                *name,
                "{value}'s constant is named for its entry"
            );
        }
    }
}
