//! Service names for ports, as `ipvsadm -S` writes them without `-n`
//! (`192.168.1.192:http`) and as scripts write them (`-t $VIP:https`).
//!
//! A small table of the common IANA names that lvsdr ships, rather than
//! `/etc/services`: the core does no I/O, so that it runs in a browser and
//! reads the same everywhere. A name not here is reported, never guessed.

/// (name, port), the names `/etc/services` gives these ports, aliases included.
const SERVICES: [(&str, u16); 58] = [
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("time", 37),
    ("whois", 43),
    ("nicname", 43),
    ("tacacs", 49),
    ("domain", 53),
    ("bootps", 67),
    ("bootpc", 68),
    ("tftp", 69),
    ("gopher", 70),
    ("finger", 79),
    ("http", 80),
    ("www", 80),
    ("www-http", 80),
    ("kerberos", 88),
    ("pop3", 110),
    ("pop-3", 110),
    ("sunrpc", 111),
    ("auth", 113),
    ("ident", 113),
    ("nntp", 119),
    ("ntp", 123),
    ("netbios-ns", 137),
    ("netbios-dgm", 138),
    ("netbios-ssn", 139),
    ("imap", 143),
    ("imap2", 143),
    ("snmp", 161),
    ("snmp-trap", 162),
    ("bgp", 179),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("submissions", 465),
    ("smtps", 465),
    ("syslog", 514),
    ("shell", 514),
    ("printer", 515),
    ("submission", 587),
    ("ldaps", 636),
    ("rsync", 873),
    ("imaps", 993),
    ("pop3s", 995),
    ("openvpn", 1194),
    ("ms-sql-s", 1433),
    ("radius", 1812),
    ("mysql", 3306),
    ("ms-wbt-server", 3389),
    ("sip", 5060),
    ("sip-tls", 5061),
    ("postgresql", 5432),
    ("amqp", 5672),
    ("http-alt", 8080),
    ("webcache", 8080),
];

/// The port of a service name, or of a number written as text.
pub fn port(name: &str) -> Option<u16> {
    name.parse()
        .ok()
        .or_else(|| SERVICES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, p)| *p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(port("http"), Some(80));
        assert_eq!(port("https"), Some(443));
        assert_eq!(port("domain"), Some(53));
        assert_eq!(port("8443"), Some(8443));
        assert_eq!(port("gopherz"), None);
        assert_eq!(port("70000"), None);
    }
}
