//! What the audit reads from `/proc`: listening sockets (`/proc/net/tcp`,
//! `tcp6`, `udp`, `udp6`, `sctp/eps`, the calling process's namespace) and keepalived
//! processes (`/proc/PID/comm`, `cmdline`, `cwd` and `ns/net`). Reads only.
//!
//! Listeners come from `/proc/net`, not from inet_diag (`SOCK_DIAG_BY_FAMILY`,
//! what `ss` asks): the kernel answers a sock_diag request for a protocol
//! whose handler is not loaded by loading it (`request_module` for
//! `inet_diag`, `tcp_diag`, `udp_diag`), and loading a module is a change an
//! audit must not make. `/proc/net/tcp` lists the same sockets; on a server
//! with very many connections it is slower, as it prints them all.

use super::ReadError;
use lvsdr_core::audit::{LiveKeepalived, LiveListener};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// TCP's `LISTEN` state in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";
/// A UDP socket bound and not connected (`TCP_CLOSE`, 07): a server's.
const UDP_UNCONNECTED: &str = "07";

/// Listening TCP and bound UDP sockets of this namespace.
pub fn listeners() -> Result<Vec<LiveListener>, ReadError> {
    let mut out = Vec::new();
    for (file, protocol, state) in [
        ("tcp", 6, TCP_LISTEN),
        ("tcp6", 6, TCP_LISTEN),
        ("udp", 17, UDP_UNCONNECTED),
        ("udp6", 17, UDP_UNCONNECTED),
    ] {
        let path = format!("/proc/net/{file}");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            // No IPv6 in this kernel: no tcp6.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ReadError::Proc { what: path, source }),
        };
        out.extend(parse_sockets(&text, protocol, state));
    }
    // SCTP's endpoints, when its module is loaded: without it nothing can
    // listen on SCTP, and the table is absent.
    match std::fs::read_to_string(SCTP_ENDPOINTS) {
        Ok(text) => out.extend(parse_sctp_endpoints(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ReadError::Proc {
                what: SCTP_ENDPOINTS.to_string(),
                source,
            })
        }
    }
    Ok(out)
}

/// SCTP's endpoint table (net/sctp/proc.c): one line per bound socket.
const SCTP_ENDPOINTS: &str = "/proc/net/sctp/eps";
/// An SCTP socket after `listen()`, both styles (`SCTP_SS_LISTENING`, TCP's 10).
const SCTP_LISTENING: &str = "10";

/// The listening endpoints of `/proc/net/sctp/eps`: after its eight columns
/// (`ENDPT SOCK STY SST HBKT LPORT UID INODE`) come the bound addresses,
/// each as `%pI4` or `%pI6` (every group written out); one listener each.
pub(super) fn parse_sctp_endpoints(text: &str) -> Vec<LiveListener> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 || fields[3] != SCTP_LISTENING {
            continue;
        }
        let Ok(port) = fields[5].parse::<u16>() else { continue };
        for a in &fields[8..] {
            if let Ok(address) = a.trim_start_matches('*').parse::<IpAddr>() {
                out.push(LiveListener {
                    protocol: 132,
                    address,
                    port,
                });
            }
        }
    }
    out
}

/// The sockets in `state` of one `/proc/net/{tcp,udp}{,6}` table.
pub(super) fn parse_sockets(text: &str, protocol: u16, state: &str) -> Vec<LiveListener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let st = fields.nth(1)?;
            if st != state {
                return None;
            }
            let (address, port) = local.split_once(':')?;
            Some(LiveListener {
                protocol,
                address: parse_address(address)?,
                port: u16::from_str_radix(port, 16).ok()?,
            })
        })
        .collect()
}

/// An address as the kernel prints it there: 32-bit words in hex, each in host order.
fn parse_address(hex: &str) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| hex.get(i * 8..i * 8 + 8).and_then(|w| u32::from_str_radix(w, 16).ok()))
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))),
        16 => {
            let a: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// keepalived's own default, when it is started without `-f`.
const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

/// The configuration file in a keepalived command line.
pub(super) fn config_of(args: &[String]) -> String {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "-f" || a == "--use-file" {
            if let Some(v) = it.next() {
                return v.clone();
            }
        } else if let Some(v) = a.strip_prefix("--use-file=") {
            return v.to_string();
        } else if let Some(v) = a.strip_prefix("-f").filter(|v| !v.is_empty()) {
            return v.to_string();
        }
    }
    DEFAULT_CONFIG.to_string()
}

/// keepalived processes whose network namespace is this process's. Its
/// children (the VRRP and checker processes) share the parent's command
/// line: one entry per configuration, the lowest pid.
pub fn keepalived() -> Vec<LiveKeepalived> {
    let ours = std::fs::read_link("/proc/self/ns/net").ok();
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    let mut out: Vec<LiveKeepalived> = Vec::new();
    let mut pids: Vec<u32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    for pid in pids {
        let base = PathBuf::from(format!("/proc/{pid}"));
        let comm = std::fs::read_to_string(base.join("comm")).unwrap_or_default();
        if comm.trim() != "keepalived" {
            continue;
        }
        if std::fs::read_link(base.join("ns/net")).ok() != ours {
            continue;
        }
        let Ok(raw) = std::fs::read(base.join("cmdline")) else { continue };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let config = config_of(&args);
        if out.iter().any(|k| k.config == config) {
            continue;
        }
        let path = Path::new(&config);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::fs::read_link(base.join("cwd")).unwrap_or_default().join(path)
        };
        out.push(LiveKeepalived {
            pid,
            config_resolved: std::fs::canonicalize(&absolute).ok().map(|p| p.display().to_string()),
            config,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tables_read_as_listeners() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: C001A8C0:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: D501A8C0:9C40 C001A8C0:0050 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
";
        let l = parse_sockets(tcp, 6, TCP_LISTEN);
        assert_eq!(l.len(), 2, "the established connection is not a listener");
        assert_eq!((l[0].address, l[0].port), ("0.0.0.0".parse().unwrap(), 80));
        if cfg!(target_endian = "little") {
            assert_eq!((l[1].address, l[1].port), ("192.168.1.192".parse().unwrap(), 25));
        }
        let tcp6 = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1
";
        let l = parse_sockets(tcp6, 6, TCP_LISTEN);
        assert_eq!((l[0].address, l[0].port), ("::".parse().unwrap(), 80));
        assert!(parse_sockets("header\n garbage line\n 0: zz:zz 0 0A\n", 6, TCP_LISTEN).is_empty());
    }

    #[test]
    fn sctp_endpoints_read_as_listeners() {
        // As net/sctp/proc.c prints them: a listener on the VIP, one on every
        // IPv6 address, and a socket bound but not listening.
        let eps = " ENDPT     SOCK   STY SST HBKT LPORT   UID INODE LADDRS
00000000a1b2c3d4 00000000e5f6a7b8 2   10  29   3868      0 24385 192.168.1.192 
00000000a1b2c3d5 00000000e5f6a7b9 1   10  7    9899      0 24386 0000:0000:0000:0000:0000:0000:0000:0000 
00000000a1b2c3d6 00000000e5f6a7ba 2   7   30   5000      0 24387 10.0.0.1 
";
        let l = parse_sctp_endpoints(eps);
        assert_eq!(
            l.iter().map(|l| (l.protocol, l.address, l.port)).collect::<Vec<_>>(),
            [(132, "192.168.1.192".parse().unwrap(), 3868), (132, "::".parse().unwrap(), 9899)]
        );
        assert!(parse_sctp_endpoints("header\nshort line\n").is_empty());
    }

    #[test]
    fn keepalived_command_lines() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(config_of(&args("keepalived -n -l -f /run/k.conf -p x")), "/run/k.conf");
        assert_eq!(config_of(&args("/usr/sbin/keepalived --use-file=/etc/k.conf")), "/etc/k.conf");
        assert_eq!(config_of(&args("keepalived --dont-fork")), DEFAULT_CONFIG);
        assert_eq!(config_of(&args("keepalived -f")), DEFAULT_CONFIG);
    }
}
