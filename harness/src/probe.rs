//! Probe servers and the client driver. Servers run inside a real server's
//! namespace and tell each client who answered and which peer address they
//! saw; the client opens connections to the VIP and records the answers.

use lvsdr_core::plan::ListenerKind;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Strips the v4-mapped form (`::ffff:a.b.c.d`) that dual-stack sockets report.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// One answer line, shared by both protocols: `server=rs1 peer=192.168.1.100:40000`.
fn facts(server: &str, peer: SocketAddr) -> String {
    format!("server={server} peer={}:{}", normalise(peer.ip()), peer.port())
}

fn serve_http(mut stream: TcpStream, server: &str, peer: SocketAddr) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let body = format!("{}\n", facts(server, peer));
    write!(
        stream,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn serve_smtp(mut stream: TcpStream, server: &str, peer: SocketAddr) -> std::io::Result<()> {
    write!(stream, "220 {} lvsdr probe ESMTP\r\n", facts(server, peer))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => write!(stream, "250-{server} greets you\r\n250 8BITMIME\r\n")?,
            "HELO" => write!(stream, "250 {server} greets you\r\n")?,
            "QUIT" => return write!(stream, "221 {server} bye\r\n"),
            "NOOP" => write!(stream, "250 OK\r\n")?,
            _ => write!(stream, "502 not implemented\r\n")?,
        }
    }
}

/// A listener thread serving one port until stopped.
pub struct ProbeServer {
    stop: Arc<AtomicBool>,
    fd: i32,
    thread: Option<JoinHandle<()>>,
}

impl ProbeServer {
    /// Binds `0.0.0.0:port` in the current thread's namespace and serves on a
    /// thread that enters `ns` first (so its connections stay there).
    pub fn start(ns: Arc<crate::netns::NetNs>, server: String, port: u16, kind: ListenerKind) -> std::io::Result<ProbeServer> {
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new().name(format!("probe-{server}-{port}")).spawn(move || {
            let listener = ns
                .enter_current_thread()
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|_| TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)));
            let listener = match listener {
                Ok(l) => {
                    let _ = tx.send(Ok(l.as_raw_fd()));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(peer) = stream.peer_addr() else { continue };
                let _ = match kind {
                    ListenerKind::Http => serve_http(stream, &server, peer),
                    ListenerKind::Smtp => serve_smtp(stream, &server, peer),
                };
            }
        })?;
        let fd = rx.recv().map_err(|_| std::io::Error::other("probe thread died"))??;
        Ok(ProbeServer {
            stop,
            fd,
            thread: Some(thread),
        })
    }
}

impl Drop for ProbeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the blocked accept() with EINVAL; the loop then sees `stop`.
        // SAFETY: `fd` is the listener owned by our thread, still open until it exits.
        #[allow(unsafe_code)]
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What one client connection saw.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnectionResult {
    pub service: String,
    pub client: Ipv4Addr,
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
            peer = p.rsplit_once(':').map(|(ip, _)| ip.to_string());
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

/// Opens one connection from `client:client_port` to `vip:port`, speaks the
/// protocol, and returns what the real server said.
pub fn probe_once(
    service: &str,
    client: Ipv4Addr,
    client_port: u16,
    vip: Ipv4Addr,
    port: u16,
    kind: ListenerKind,
    timeout: Duration,
) -> ConnectionResult {
    let started = std::time::Instant::now();
    let outcome = (|| -> std::io::Result<String> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if client_port != 0 {
            socket.bind(&SocketAddr::V4(SocketAddrV4::new(client, client_port)).into())?;
        }
        socket.connect_timeout(&SocketAddr::V4(SocketAddrV4::new(vip, port)).into(), timeout)?;
        let mut stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        match kind {
            ListenerKind::Http => {
                write!(stream, "GET / HTTP/1.0\r\nHost: {vip}\r\nUser-Agent: lvsdr\r\n\r\n")?;
                let mut text = String::new();
                stream.read_to_string(&mut text)?;
                Ok(text.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
            }
            ListenerKind::Smtp => {
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut banner = String::new();
                reader.read_line(&mut banner)?;
                if !banner.starts_with("220") {
                    return Err(std::io::Error::other(format!("unexpected SMTP banner: {}", banner.trim())));
                }
                write!(stream, "EHLO lvsdr\r\n")?;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 || line.starts_with("250 ") {
                        break;
                    }
                }
                write!(stream, "QUIT\r\n")?;
                line.clear();
                reader.read_line(&mut line)?;
                Ok(banner)
            }
        }
    })();
    let millis = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(text) => {
            let (real_server, source_seen) = parse_facts(&text);
            ConnectionResult {
                service: service.into(),
                client,
                client_port,
                real_server,
                source_seen,
                error: None,
                millis,
            }
        }
        Err(e) => ConnectionResult {
            service: service.into(),
            client,
            client_port,
            real_server: None,
            source_seen: None,
            error: Some(describe(&e)),
            millis,
        },
    }
}
