//! Names and keys that reach the kernel, a shell or a web page: host names,
//! interface names and sysctl keys. Topologies are untrusted input that root
//! runs, so these are checked once, when a reader builds them, and the rest of
//! lvsdr only ever sees values that passed. Each type can be built only
//! through its `parse`, which says what is wrong and what to write instead.

use serde::Serialize;
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// Why a name or key was refused, with the help text a reader attaches to its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// The diagnostic code: `DR105` for sysctl keys, `DR106` for names.
    pub code: &'static str,
    pub message: String,
    pub help: String,
}

fn refuse(code: &'static str, message: String, help: &str) -> NameError {
    NameError {
        code,
        message,
        help: help.to_string(),
    }
}

/// Shows a refused value safely: control characters escaped, long values cut.
/// (By hand rather than `escape_debug`, whose Unicode tables would cost the
/// playground's WebAssembly several kilobytes.)
pub fn shown(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(40) {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    if text.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// A topology's title: free text for people, shown in reports, script
/// comments and the page title, so it holds no control characters (a newline
/// would end a script's comment line) and stays short.
pub fn check_title(text: &str) -> Result<String, NameError> {
    if (1..=80).contains(&text.chars().count()) && !text.chars().any(char::is_control) {
        Ok(text.to_string())
    } else {
        Err(refuse(
            crate::codes::code::INVALID_NAME,
            format!("`{}` is not a valid topology name", shown(text)),
            "use one line of at most 80 characters",
        ))
    }
}

macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// A name lvsdr itself wrote (a default such as `eth0`, or `rs3`),
            /// never text from input; checked in debug builds.
            #[allow(dead_code)]
            pub(crate) fn known(text: impl Into<String>) -> Self {
                let text = text.into();
                debug_assert!(Self::parse(&text).is_ok(), "{text}");
                $name(text)
            }
        }
        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

checked_string!(
    /// A host's name: it names a network namespace, a shell `case` label and
    /// a node in the playground's diagram. 1 to 15 ASCII letters, digits and
    /// `-`, starting with a letter.
    HostName
);

impl HostName {
    pub fn parse(text: &str) -> Result<HostName, NameError> {
        let ok = (1..=15).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_alphabetic())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if ok {
            Ok(HostName(text.to_string()))
        } else {
            Err(refuse(
                crate::codes::code::INVALID_NAME,
                format!("`{}` is not a valid host name", shown(text)),
                "use 1 to 15 letters, digits and `-`, starting with a letter (it names a network namespace)",
            ))
        }
    }
}

checked_string!(
    /// A network interface name as the kernel accepts it (`dev_valid_name`):
    /// at most 15 bytes, not `.` or `..`, no `/`, `:` or whitespace; plus the
    /// alias form `eth0:1` that `ifconfig` uses for address labels. lvsdr
    /// keeps to ASCII letters, digits, `-`, `_` and `.` so that a name is
    /// safe in a shell word and on a web page as it is.
    IfName
);

impl IfName {
    pub fn parse(text: &str) -> Result<IfName, NameError> {
        // Not starting with `-`: in a generated script the name is a word on
        // `ip`'s command line, where `-x` would read as an option.
        let plain = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && !s.starts_with('-')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        let ok = text.len() <= 15
            && match text.split_once(':') {
                None => plain(text),
                Some((base, label)) => {
                    plain(base) && !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                }
            };
        if ok {
            Ok(IfName(text.to_string()))
        } else {
            Err(refuse(
                crate::codes::code::INVALID_NAME,
                format!("`{}` is not a valid interface name", shown(text)),
                "use at most 15 letters, digits, `-`, `_` or `.` (the kernel's rule), not starting with `-`, with an optional alias `:N` as in eth0:1",
            ))
        }
    }

    /// The device without an alias label: `eth0` for `eth0:1`.
    pub fn device(&self) -> IfName {
        IfName(self.0.split(':').next().unwrap_or(&self.0).to_string())
    }
}

checked_string!(
    /// A sysctl key in dotted form (`net.ipv4.conf.all.arp_ignore`), limited
    /// to the networking keys a DR setup needs. Every key on the list is
    /// private to a network namespace, so writing it in a lab namespace can
    /// never change the host; each dotted segment matches `[A-Za-z0-9_-]+`,
    /// so the key maps to a path under `/proc/sys/net/` and nowhere else.
    SysctlKey
);

/// The allow-list, as patterns of dotted segments: `*` is any one segment.
/// `conf` and `neigh` take an interface (or `all`/`default`) and a knob.
pub const SYSCTL_ALLOWED: [&str; 8] = [
    "net.ipv4.conf.*.*",
    "net.ipv6.conf.*.*",
    "net.ipv4.neigh.*.*",
    "net.ipv6.neigh.*.*",
    "net.ipv4.vs.*",
    "net.ipv4.ip_forward",
    "net.ipv4.ip_nonlocal_bind",
    "net.ipv6.ip_nonlocal_bind",
];

/// The keys a DR setup sets, that lvsdr's rules and generators speak of: the
/// playground's editor offers them to complete. Every one is in
/// [`SYSCTL_ALLOWED`].
pub const SYSCTL_KEYS: [&str; 14] = [
    "net.ipv4.conf.all.arp_ignore",
    "net.ipv4.conf.all.arp_announce",
    "net.ipv4.conf.lo.arp_ignore",
    "net.ipv4.conf.lo.arp_announce",
    "net.ipv4.conf.eth0.arp_ignore",
    "net.ipv4.conf.eth0.arp_announce",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.all.send_redirects",
    "net.ipv4.conf.eth0.send_redirects",
    "net.ipv4.ip_forward",
    "net.ipv4.ip_nonlocal_bind",
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv6.conf.eth0.accept_dad",
    "net.ipv4.vs.conntrack",
];

impl SysctlKey {
    /// Reads `net.ipv4.conf.all.arp_ignore` or the slash form `sysctl` also
    /// takes (`net/ipv4/conf/all/arp_ignore`).
    pub fn parse(text: &str) -> Result<SysctlKey, NameError> {
        let dotted = if text.contains('/') && !text.contains('.') {
            text.replace('/', ".")
        } else {
            text.to_string()
        };
        let segments: Vec<&str> = dotted.split('.').collect();
        if let Some(bad) = segments
            .iter()
            .find(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(refuse(
                crate::codes::code::SYSCTL_KEY_NOT_ALLOWED,
                format!("sysctl key `{}` is malformed: segment `{}`", shown(text), shown(bad)),
                "write the key in dotted form, each part made of letters, digits, `_` and `-`, e.g. net.ipv4.conf.all.arp_ignore",
            ));
        }
        let allowed = SYSCTL_ALLOWED.iter().any(|p| {
            let pattern: Vec<&str> = p.split('.').collect();
            pattern.len() == segments.len() && pattern.iter().zip(&segments).all(|(p, s)| *p == "*" || p == s)
        });
        if !allowed {
            return Err(refuse(
                crate::codes::code::SYSCTL_KEY_NOT_ALLOWED,
                format!("sysctl key `{}` is not one of the networking keys lvsdr sets", shown(text)),
                &format!(
                    "lvsdr sets only per-namespace networking keys: {} (remove this key from the topology)",
                    SYSCTL_ALLOWED.join(", ")
                ),
            ));
        }
        Ok(SysctlKey(dotted))
    }

    /// `net.ipv4.conf.IFACE.KNOB`, when the interface's name fits a key
    /// segment (a VLAN device such as `eth0.100` does not).
    pub fn ipv4_conf(iface: &str, knob: &str) -> Option<SysctlKey> {
        SysctlKey::parse(&format!("net.ipv4.conf.{iface}.{knob}")).ok()
    }

    /// The file under `/proc/sys` that holds the key: always below `net/`.
    pub fn proc_path(&self) -> String {
        format!("/proc/sys/{}", self.0.replace('.', "/"))
    }
}

checked_string!(
    /// A keepalived `vrrp_instance` name. keepalived.conf is a language of
    /// words and braces with `include` and script hooks, so the name is one
    /// plain word: 1 to 32 ASCII letters, digits, `_`, `-` and `.`, starting
    /// with a letter, a digit or `_`. It can end no line, open or close no
    /// block and quote nothing.
    VrrpInstance
);

impl VrrpInstance {
    pub fn parse(text: &str) -> Result<VrrpInstance, NameError> {
        let ok = (1..=32).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && text.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if ok {
            Ok(VrrpInstance(text.to_string()))
        } else {
            Err(refuse(
                crate::codes::code::INVALID_NAME,
                format!("`{}` is not a valid VRRP instance name", shown(text)),
                "use one word of 1 to 32 letters, digits, `_`, `-` and `.`, such as VI_1 (it is written into keepalived.conf)",
            ))
        }
    }
}

checked_string!(
    /// A VRRP authentication type (`authentication { auth_type PASS }`):
    /// `PASS` or `AH`, the two keepalived knows.
    VrrpAuth
);

impl VrrpAuth {
    pub fn parse(text: &str) -> Result<VrrpAuth, NameError> {
        match text.to_ascii_uppercase().as_str() {
            kind @ ("PASS" | "AH") => Ok(VrrpAuth(kind.to_string())),
            _ => Err(refuse(
                crate::codes::code::INVALID_NAME,
                format!("`{}` is not a VRRP authentication type", shown(text)),
                "use PASS or AH (keepalived's auth_type)",
            )),
        }
    }
}

/// keepalived checkers lvsdr knows by name.
pub const HEALTH_CHECKS: [&str; 10] = [
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "SMTP_CHECK",
    "MISC_CHECK",
    "DNS_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "BFD_CHECK",
    "FILE_CHECK",
];

checked_string!(
    /// A keepalived health checker's keyword, one of [`HEALTH_CHECKS`].
    HealthCheck
);

impl HealthCheck {
    pub fn parse(text: &str) -> Result<HealthCheck, NameError> {
        if HEALTH_CHECKS.contains(&text) {
            Ok(HealthCheck(text.to_string()))
        } else {
            Err(refuse(
                crate::codes::code::INVALID_NAME,
                format!("unknown health check `{}`", shown(text)),
                &format!("use one of {}", HEALTH_CHECKS.join(", ")),
            ))
        }
    }
}

checked_string!(
    /// The `path` of an HTTP_GET or SSL_GET `url` block: the request target
    /// keepalived sends. It is written into keepalived.conf as one word, so
    /// it holds no whitespace, braces, quotes, backslash, `#` or `!` (which
    /// start a comment there) and no control characters; at most 1024
    /// printable ASCII characters, percent-encoded as a URL is.
    UrlPath
);

impl UrlPath {
    pub fn parse(text: &str) -> Result<UrlPath, NameError> {
        let ok = (1..=1024).contains(&text.len()) && text.chars().all(|c| c.is_ascii_graphic() && !"{}\"'\\#!".contains(c));
        if ok {
            Ok(UrlPath(text.to_string()))
        } else {
            Err(refuse(
                crate::codes::code::INVALID_NAME,
                format!("`{}` is not a health check path lvsdr can write", shown(text)),
                "use one word of printable ASCII, such as /healthz, with no space, brace, quote, backslash, `#` or `!` (percent-encode them: %20, %23)",
            ))
        }
    }
}

checked_string!(
    /// The `digest` of an HTTP_GET or SSL_GET `url` block: the MD5 of the
    /// page that `genhash` prints, 32 hexadecimal digits, kept as written.
    UrlDigest
);

impl UrlDigest {
    pub fn parse(text: &str) -> Result<UrlDigest, NameError> {
        if text.len() == 32 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(UrlDigest(text.to_string()))
        } else {
            Err(refuse(
                crate::codes::code::INVALID_NAME,
                format!("`{}` is not an MD5 digest", shown(text)),
                "use the 32 hexadecimal digits `genhash -s ADDRESS -p PORT -u PATH` prints",
            ))
        }
    }
}

/// The `status_code` of an HTTP_GET or SSL_GET `url` block: an HTTP status,
/// 100 to 599.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct HttpStatus(u16);

impl HttpStatus {
    pub const OK: HttpStatus = HttpStatus(200);

    pub fn new(code: i64) -> Result<HttpStatus, NameError> {
        match u16::try_from(code) {
            Ok(c @ 100..=599) => Ok(HttpStatus(c)),
            _ => Err(refuse(
                crate::codes::code::INVALID_NAME,
                format!("`{code}` is not an HTTP status code"),
                "use a status from 100 to 599, such as 200 or 204",
            )),
        }
    }

    /// Reads the decimal form keepalived.conf holds.
    pub fn parse(text: &str) -> Result<HttpStatus, NameError> {
        match text.parse::<i64>() {
            Ok(c) if text.chars().all(|c| c.is_ascii_digit()) => HttpStatus::new(c),
            _ => Err(refuse(
                crate::codes::code::INVALID_NAME,
                format!("`{}` is not an HTTP status code", shown(text)),
                "use a status from 100 to 599, such as 200 or 204",
            )),
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The values a sysctl on the allow-list may take, by its last segment:
/// the kernel's own range where it has one (`arp_ignore` 0..=8), else what
/// fits the kernel's `int`. A value outside is refused (DR108) before it
/// reaches a script or a lab, where the kernel would answer EINVAL.
pub fn sysctl_range(key: &SysctlKey) -> std::ops::RangeInclusive<i64> {
    let knob = key.rsplit('.').next().unwrap_or("");
    match knob {
        // ip-sysctl.rst: 0..=3 and 8 defined (4-7 reserved), 0..=2, 0..=2.
        "arp_ignore" => 0..=8,
        "arp_announce" | "rp_filter" => 0..=2,
        // Switches.
        "send_redirects"
        | "accept_redirects"
        | "ip_forward"
        | "ip_nonlocal_bind"
        | "disable_ipv6"
        | "proxy_arp"
        | "arp_filter"
        | "log_martians"
        | "conntrack"
        | "expire_nodest_conn"
        | "expire_quiescent_template"
        | "backup_only"
        | "sloppy_tcp"
        | "sloppy_sctp"
        | "snat_reroute"
        | "pmtu_disc"
        | "cache_bypass"
        | "schedule_icmp"
        | "ignore_tunneled"
        | "run_estimation" => 0..=1,
        "conn_reuse_mode" => 0..=3,
        // Anything else is the kernel's `int`.
        _ => i64::from(i32::MIN)..=i64::from(i32::MAX),
    }
}

/// Checks a sysctl's value against [`sysctl_range`].
pub fn check_sysctl_value(key: &SysctlKey, value: i64) -> Result<i64, NameError> {
    let range = sysctl_range(key);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(refuse(
            crate::codes::code::SYSCTL_VALUE_OUT_OF_RANGE,
            format!("{key} = {value} is out of range"),
            &format!("{key} takes {}..={}", range.start(), range.end()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_completion_keys_are_allowed() {
        for k in SYSCTL_KEYS {
            assert!(SysctlKey::parse(k).is_ok(), "{k}");
        }
    }

    #[test]
    fn sysctl_keys() {
        for ok in [
            "net.ipv4.conf.all.arp_ignore",
            "net.ipv4.conf.eth0.arp_announce",
            "net.ipv4.vs.conntrack",
            "net.ipv4.ip_forward",
            "net.ipv6.conf.lo.disable_ipv6",
            "net.ipv4.neigh.eth0.gc_stale_time",
        ] {
            assert_eq!(SysctlKey::parse(ok).map(|k| k.to_string()), Ok(ok.to_string()));
        }
        assert_eq!(
            SysctlKey::parse("net/ipv4/conf/all/arp_ignore").unwrap().proc_path(),
            "/proc/sys/net/ipv4/conf/all/arp_ignore"
        );
        for bad in [
            "net/../../../tmp/x",
            "net.ipv4.conf.all/../../x",
            "kernel.panic",
            "kernel.core_pattern",
            "vm.overcommit_memory",
            "net.core.somaxconn",
            "net.ipv4.conf.all",
            "net.ipv4.conf..arp_ignore",
            "net.ipv4.conf.all.arp_ignore ",
            "net.ipv4.conf.all.arp_ignore\n",
            "",
            "net.ipv4.vs.conntrack.x",
        ] {
            let e = SysctlKey::parse(bad).expect_err(bad);
            assert_eq!(e.code, "DR105", "{bad}");
        }
    }

    #[test]
    fn interface_names() {
        for ok in ["eth0", "lo", "lo:0", "eth0:1", "eth0.100", "br-lan", "enp3s0f0np0_x"] {
            assert!(IfName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "eth0/1",
            "eth 0",
            "eth0\t",
            "a234567890123456",
            "eth0<img src=x onerror=alert(1)>",
            "eth0:",
            ":1",
            "eth0:1:2",
            "eth0;reboot",
            "eth0$(id)",
            "éth0",
            "-x",
            "-eth0:1",
        ] {
            assert_eq!(IfName::parse(bad).map_err(|e| e.code), Err("DR106"), "{bad:?}");
        }
        assert_eq!(IfName::parse("lo:0").unwrap().device(), "lo");
        assert_eq!(SysctlKey::ipv4_conf("eth0.100", "arp_ignore"), None);
    }

    #[test]
    fn host_names() {
        assert!(HostName::parse("rs1").is_ok());
        assert!(HostName::parse("web-01").is_ok());
        for bad in ["", "1rs", "rs_1", "a234567890123456", "rs1<b>", "rs 1", "rs1'"] {
            assert!(HostName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn vrrp_words() {
        for ok in ["VI_1", "vi-web.1", "_x", "1"] {
            assert!(VrrpInstance::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "VI 1",
            "VI_1 {",
            "VI_1\n    notify_master \"/bin/sh\"\n#",
            "VI_1 } include /etc/shadow { x",
            "\"VI_1\"",
            "-VI",
            "VI_$(id)",
            "VI_`id`",
            "VI#1",
            &"V".repeat(33),
        ] {
            assert_eq!(VrrpInstance::parse(bad).map_err(|e| e.code), Err("DR106"), "{bad:?}");
        }
        assert_eq!(VrrpAuth::parse("pass").unwrap(), "PASS");
        assert!(VrrpAuth::parse("PASS\n}").is_err());
        assert!(HealthCheck::parse("TCP_CHECK").is_ok());
        assert!(HealthCheck::parse("TCP_CHECK {\n").is_err());
    }

    #[test]
    fn health_check_urls() {
        for ok in ["/", "/healthz", "/testurl/test.jsp", "/a?b=c&d=%20e", "*"] {
            assert!(UrlPath::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a b",
            "/a\n    notify_up /bin/sh",
            "/a}",
            "/{",
            "/\"x",
            "/'x",
            "/#x",
            "/!x",
            "/a\\",
            "/é",
            "/\u{7f}",
            &format!("/{}", "a".repeat(1024)),
        ] {
            assert_eq!(UrlPath::parse(bad).map_err(|e| e.code), Err("DR106"), "{bad:?}");
        }
        assert!(UrlDigest::parse("640205b7b0fc66c1ea91c463fac6334D").is_ok());
        for bad in [
            "",
            "640205b7",
            "640205b7b0fc66c1ea91c463fac6334g",
            "640205b7b0fc66c1ea91c463fac6334d ",
        ] {
            assert!(UrlDigest::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(HttpStatus::parse("204").map(HttpStatus::get), Ok(204));
        for bad in ["99", "600", "-200", "+200", "2OO", "", "65736"] {
            assert!(HttpStatus::parse(bad).is_err(), "{bad:?}");
        }
        assert!(HttpStatus::new(i64::MAX).is_err());
    }

    #[test]
    fn sysctl_values() {
        let key = |k: &str| SysctlKey::parse(k).unwrap();
        assert_eq!(check_sysctl_value(&key("net.ipv4.conf.all.arp_ignore"), 1), Ok(1));
        for (k, v) in [
            ("net.ipv4.conf.all.arp_ignore", 99_999_999_999_999),
            ("net.ipv4.conf.all.arp_ignore", 9),
            ("net.ipv4.conf.eth0.arp_announce", 3),
            ("net.ipv4.conf.all.rp_filter", -1),
            ("net.ipv4.vs.conntrack", 4),
            ("net.ipv4.neigh.eth0.gc_stale_time", 1 << 40),
        ] {
            assert_eq!(check_sysctl_value(&key(k), v).map_err(|e| e.code), Err("DR108"), "{k} = {v}");
        }
    }

    #[test]
    fn refused_values_are_shown_inert() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown("a\u{1b}[2J\"b"), "a\\u{1b}[2J\"b");
        assert_eq!(shown(&"x".repeat(50)).chars().count(), 41);
    }
}
