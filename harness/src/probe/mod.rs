//! Probes: the servers inside the real servers' namespaces tell each client
//! who answered and which peer address they saw; the client opens the
//! planned connections to the VIP and records the answers.
//!
//! - [`server`]: every listener of a lab, served by one event loop;
//! - [`client`]: every planned connection, driven by one event loop;
//! - [`held`]: a connection kept open across a failover, blocking, one at a time.

mod client;
mod held;
mod server;

pub use client::{probe_lanes, Lane};
pub use held::HeldConnection;
pub use server::{Listener, ProbeServers};

use lvsdr_core::plan::ListenerKind;
use std::net::{IpAddr, SocketAddr};

/// Strips the v4-mapped form (`::ffff:a.b.c.d`) that dual-stack sockets report.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// One answer line, shared by both protocols: `server=rs1 peer=192.168.1.100:40000`,
/// or `peer=[2001:db8::100]:40000` from an IPv6 client.
fn facts(server: &str, peer: SocketAddr) -> String {
    format!("server={server} peer={}", SocketAddr::new(normalise(peer.ip()), peer.port()))
}

/// What one client connection saw.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnectionResult {
    pub service: String,
    pub client: IpAddr,
    pub client_port: u16,
    /// The real server that answered, from its own words.
    pub real_server: Option<String>,
    /// The client address that real server saw.
    pub source_seen: Option<String>,
    pub error: Option<String>,
    pub millis: u64,
}

fn parse_facts(text: &str) -> (Option<String>, Option<String>) {
    let mut server = None;
    let mut peer = None;
    for word in text.split_whitespace() {
        if let Some(s) = word.strip_prefix("server=") {
            server = Some(s.to_string());
        } else if let Some(p) = word.strip_prefix("peer=") {
            // `1.2.3.4:40000` or `[2001:db8::100]:40000`: the address without port or brackets.
            peer = p
                .rsplit_once(':')
                .map(|(ip, _)| ip.trim_start_matches('[').trim_end_matches(']').to_string());
        }
    }
    (server, peer)
}

fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused (a RST came back)".into(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out (no answer to the SYN or the request)".into(),
        _ => e.to_string(),
    }
}

fn outcome(service: &str, client: IpAddr, client_port: u16, said: std::io::Result<String>, millis: u64) -> ConnectionResult {
    let (real_server, source_seen, error) = match said {
        Ok(text) => {
            let (server, peer) = parse_facts(&text);
            (server, peer, None)
        }
        Err(e) => (None, None, Some(describe(&e))),
    };
    ConnectionResult {
        service: service.into(),
        client,
        client_port,
        real_server,
        source_seen,
        error,
        millis,
    }
}

/// What went wrong with a connection, in words (a reset, a timeout, …).
pub fn error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => "connection reset by peer (a RST came back)".into(),
        _ => describe(e),
    }
}

/// A TCP socket of the VIP's family, bound to `client:client_port` unless
/// the port is 0 (then the kernel picks the source).
/// Non-blocking when asked (the event loop's), and close-on-exec.
fn client_socket(client: IpAddr, client_port: u16, vip: IpAddr, nonblocking: bool) -> std::io::Result<socket2::Socket> {
    if client.is_ipv4() != vip.is_ipv4() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("client {client} and VIP {vip} are of different address families"),
        ));
    }
    let kind = socket2::Type::STREAM.cloexec();
    let kind = if nonblocking { kind.nonblocking() } else { kind };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(SocketAddr::new(vip, 0)),
        kind,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if client_port != 0 {
        socket.bind(&SocketAddr::new(client, client_port).into())?;
    }
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    #[test]
    fn the_peer_a_server_reports_is_read_back_for_both_families() {
        let v4: SocketAddr = "192.168.1.100:40000".parse().unwrap();
        assert_eq!(facts("rs1", v4), "server=rs1 peer=192.168.1.100:40000");
        // A dual-stack listener sees an IPv4 client v4-mapped: reported as plain IPv4.
        let mapped: SocketAddr = "[::ffff:192.168.1.100]:40000".parse().unwrap();
        assert_eq!(facts("rs1", mapped), "server=rs1 peer=192.168.1.100:40000");
        let v6: SocketAddr = "[2001:db8::100]:40000".parse().unwrap();
        assert_eq!(facts("rs2", v6), "server=rs2 peer=[2001:db8::100]:40000");
        for (addr, ip) in [(v4, "192.168.1.100"), (v6, "2001:db8::100")] {
            let (server, peer) = parse_facts(&format!("220 {} lvsdr probe ESMTP", facts("rs", addr)));
            assert_eq!((server.as_deref(), peer.as_deref()), (Some("rs"), Some(ip)));
            assert_eq!(
                peer.as_deref(),
                Some(addr.ip().to_string().as_str()),
                "compares equal to the client's own address"
            );
        }
    }

    /// The two event loops against each other on loopback: one listener on
    /// `[::]` answers IPv4 and IPv6 clients, each reported with its own address
    /// (the IPv4 one not v4-mapped), over HTTP and SMTP; a port nobody listens
    /// on is refused; and a held HTTP/1.1 connection gets two answers. On a
    /// kernel without IPv6 the listener falls back to 0.0.0.0 and only IPv4 runs.
    #[test]
    fn the_event_loops_talk_both_protocols_and_both_families() {
        let listeners: Vec<Listener> = [ListenerKind::Http, ListenerKind::Smtp]
            .into_iter()
            .map(|kind| Listener {
                ns: None,
                server: "rs1".into(),
                port: 0,
                kind,
            })
            .collect();
        let servers = ProbeServers::start(&listeners).unwrap();
        let ports = servers.ports();
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut clients: Vec<IpAddr> = vec![Ipv4Addr::LOCALHOST.into()];
        if servers.dual_stack() {
            clients.push(Ipv6Addr::LOCALHOST.into());
        }
        let timeout = Duration::from_secs(5);
        for client in clients {
            let lane = |port: u16, kind: ListenerKind, at_once: usize| Lane {
                service: "svc",
                vip: client,
                port,
                kind,
                connections: vec![(client, 0); 5],
                at_once,
                hold: 0,
            };
            let lanes = [
                lane(ports[0], ListenerKind::Http, 3),
                lane(ports[1], ListenerKind::Smtp, 1),
                lane(unused, ListenerKind::Http, 2),
            ];
            let results = probe_lanes(&lanes, timeout).unwrap();
            for r in results[0].iter().chain(&results[1]) {
                assert_eq!(
                    (r.real_server.as_deref(), r.source_seen.clone()),
                    (Some("rs1"), Some(client.to_string())),
                    "{r:?}"
                );
                assert_eq!(r.error, None);
            }
            assert_eq!(results[2].len(), 5);
            for r in &results[2] {
                assert_eq!(r.error.as_deref(), Some("connection refused (a RST came back)"), "{r:?}");
            }
            let mut held = HeldConnection::open("svc", client, client, ports[0], ListenerKind::Http, timeout).unwrap();
            assert_eq!(held.real_server, "rs1");
            assert_eq!(held.again(timeout).unwrap(), "rs1", "a second request on the same connection");
            let mut held = HeldConnection::open("svc", client, client, ports[1], ListenerKind::Smtp, timeout).unwrap();
            assert_eq!(held.again(timeout).unwrap(), "rs1", "HELO on the same session");
        }
    }

    #[test]
    fn a_client_of_the_other_family_is_refused_before_any_packet() {
        let err = client_socket("192.168.1.100".parse().unwrap(), 40000, "2001:db8::1".parse().unwrap(), true).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn connection_results_serialise_as_before_for_ipv4() {
        let r = outcome(
            "tcp/80",
            IpAddr::V4(Ipv4Addr::new(192, 168, 1, 100)),
            40000,
            Ok("server=rs1 peer=192.168.1.100:40000".into()),
            3,
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"client\":\"192.168.1.100\""), "{json}");
        assert_eq!(serde_json::from_str::<ConnectionResult>(&json).unwrap(), r);
    }
}
