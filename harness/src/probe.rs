//! Probe servers and the client driver. Servers run inside a real server's
//! namespace and tell each client who answered and which peer address they
//! saw; the client opens connections to the VIP and records the answers.

use lvsdr_core::plan::ListenerKind;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

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

/// Answers HTTP requests on one connection: one with HTTP/1.0 (the probes),
/// and as many as the client sends when it asks to keep the connection open
/// (HTTP/1.1 without `Connection: close`, or `Connection: keep-alive`), as the
/// failover lab's held connection does.
fn serve_http(mut stream: TcpStream, server: &str, peer: SocketAddr) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    loop {
        let mut keep_alive = None;
        let mut first = true;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if first {
                keep_alive = Some(lower.trim_end().ends_with("http/1.1"));
                first = false;
            } else if let Some(value) = lower.strip_prefix("connection:") {
                keep_alive = Some(value.trim() == "keep-alive");
            }
        }
        let keep_alive = keep_alive.unwrap_or(false);
        let body = format!("{}\n", facts(server, peer));
        // One write, one segment: piecewise writes would wait on Nagle and delayed ACKs.
        stream.write_all(
            format!(
                "HTTP/1.{} 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{body}",
                u8::from(keep_alive),
                body.len(),
                if keep_alive { "keep-alive" } else { "close" }
            )
            .as_bytes(),
        )?;
        if !keep_alive {
            return Ok(());
        }
    }
}

fn serve_smtp(mut stream: TcpStream, server: &str, peer: SocketAddr) -> std::io::Result<()> {
    stream.write_all(format!("220 {} lvsdr probe ESMTP\r\n", facts(server, peer)).as_bytes())?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" => format!("250-{server} greets you\r\n250 8BITMIME\r\n"),
            "HELO" => format!("250 {server} greets you\r\n"),
            "QUIT" => return stream.write_all(format!("221 {server} bye\r\n").as_bytes()),
            "NOOP" => "250 OK\r\n".to_string(),
            _ => "502 not implemented\r\n".to_string(),
        };
        stream.write_all(answer.as_bytes())?;
    }
}

/// A listener thread serving one port until stopped, each connection on a
/// thread of its own: keepalived's health checks and the probes must get
/// through while the failover lab holds a connection open.
pub struct ProbeServer {
    stop: Arc<AtomicBool>,
    fd: i32,
    thread: Option<JoinHandle<()>>,
    /// The open connections, shut down on drop so that their threads end at once.
    open: OpenConnections,
}

/// Each open connection's peer and a copy of its socket, to shut it down.
type OpenConnections = Arc<Mutex<Vec<(SocketAddr, TcpStream)>>>;

/// Workers per probe server: held connections, health checks and probes at once.
const WORKERS: usize = 16;

/// How long a connection may sit idle before the server drops it: longer
/// than a failover, during which a held connection says nothing.
const IDLE: Duration = Duration::from_secs(30);

impl ProbeServer {
    /// Binds `[::]:port` dual-stack (IPv4 clients arrive v4-mapped, and
    /// [`normalise`] maps them back) on a thread that enters `ns` first (so its
    /// connections stay there), and serves there. A kernel without IPv6 gets `0.0.0.0:port`.
    pub fn start(ns: Arc<crate::netns::NetNs>, server: String, port: u16, kind: ListenerKind) -> std::io::Result<ProbeServer> {
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let open: OpenConnections = Arc::default();
        let open2 = open.clone();
        let thread = std::thread::Builder::new().name(format!("probe-{server}-{port}")).spawn(move || {
            let listener = ns
                .enter_current_thread()
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|_| listen_any(port));
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
            // A few workers serve the connections: a held one (the failover lab's) does not
            // stop the others, and no thread is made per connection (costly under UML).
            let (work, queue) = std::sync::mpsc::channel::<(TcpStream, SocketAddr)>();
            let queue = Arc::new(Mutex::new(queue));
            // Workers are made as the load asks, up to WORKERS: a lab of 64 real servers
            // has 128 listeners, and most of them only ever need one.
            let busy = Arc::new(AtomicUsize::new(0));
            let spawn_worker = |i: usize| {
                let queue = queue.clone();
                let server = server.clone();
                let open = open2.clone();
                let stopping = stop2.clone();
                let busy = busy.clone();
                // Spawned from this thread, so in the namespace too.
                std::thread::Builder::new()
                    .name(format!("probe-{port}-{i}"))
                    .spawn(move || loop {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((stream, peer)) = next else { break };
                        if let Ok(closer) = stream.try_clone() {
                            let key = peer;
                            open.lock().unwrap_or_else(|e| e.into_inner()).push((key, closer));
                            if stopping.load(Ordering::Relaxed) {
                                // Accepted as the server stops: not served.
                                let _ = stream.shutdown(std::net::Shutdown::Both);
                            }
                            let _ = match kind {
                                ListenerKind::Http => serve_http(stream, &server, peer),
                                ListenerKind::Smtp => serve_smtp(stream, &server, peer),
                            };
                            // The list holds a copy of the socket: closing ours would not end
                            // the connection, and the client waits for its end.
                            let mut list = open.lock().unwrap_or_else(|e| e.into_inner());
                            if let Some(at) = list.iter().position(|(k, _)| *k == key) {
                                let (_, c) = list.swap_remove(at);
                                let _ = c.shutdown(std::net::Shutdown::Both);
                            }
                        }
                        busy.fetch_sub(1, Ordering::SeqCst);
                    })
                    .ok()
            };
            let mut workers: Vec<JoinHandle<()>> = Vec::new();
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let _ = stream.set_read_timeout(Some(IDLE));
                let _ = stream.set_nodelay(true);
                let Ok(peer) = stream.peer_addr() else { continue };
                // `busy` counts the connections queued or being served.
                if busy.fetch_add(1, Ordering::SeqCst) >= workers.len() && workers.len() < WORKERS {
                    if let Some(w) = spawn_worker(workers.len()) {
                        workers.push(w);
                    }
                }
                if work.send((stream, peer)).is_err() {
                    break;
                }
            }
            // No more work: the workers finish what they hold (drop shuts it down) and end.
            drop(work);
            for w in workers {
                let _ = w.join();
            }
        })?;
        let fd = rx.recv().map_err(|_| std::io::Error::other("probe thread died"))??;
        Ok(ProbeServer {
            stop,
            fd,
            thread: Some(thread),
            open,
        })
    }
}

/// A listener on every address of both families.
fn listen_any(port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (socket, address) = match Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)) {
        Ok(socket) => {
            socket.set_only_v6(false)?;
            (socket, SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port))
        }
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => (
            Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?,
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
        ),
        Err(e) => return Err(e),
    };
    // As std's TcpListener::bind: a port in TIME_WAIT from the last run can be bound again.
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
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
        // The open connections first, so that the workers holding them return,
        // then the accept thread, which joins its workers.
        for (_, stream) in self.open.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
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

/// Opens a connection from `client:client_port` to `vip:port`: the SYN,
/// which is when IPVS schedules it to a real server.
pub fn connect(client: IpAddr, client_port: u16, vip: IpAddr, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let socket = client_socket(client, client_port, vip)?;
    socket.connect_timeout(&SocketAddr::new(vip, port).into(), timeout)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Speaks the probe protocol on an open connection and returns what the real server said.
pub fn converse(mut stream: TcpStream, vip: IpAddr, kind: ListenerKind) -> std::io::Result<String> {
    match kind {
        ListenerKind::Http => {
            // RFC 3986: an IPv6 literal in Host goes in brackets.
            let host = match vip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            stream.write_all(format!("GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: lvsdr\r\n\r\n").as_bytes())?;
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
            stream.write_all(b"EHLO lvsdr\r\n")?;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.starts_with("250 ") {
                    break;
                }
            }
            stream.write_all(b"QUIT\r\n")?;
            line.clear();
            reader.read_line(&mut line)?;
            Ok(banner)
        }
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

/// One probe connection, start to end: connect, speak, close.
pub fn probe_once(
    service: &str,
    client: IpAddr,
    client_port: u16,
    vip: IpAddr,
    port: u16,
    kind: ListenerKind,
    timeout: Duration,
) -> ConnectionResult {
    let started = std::time::Instant::now();
    let said = connect(client, client_port, vip, port, timeout).and_then(|s| converse(s, vip, kind));
    outcome(service, client, client_port, said, started.elapsed().as_millis() as u64)
}

/// A connection the client keeps open across a failover: an HTTP keep-alive
/// connection or an SMTP session, which can carry one more request later.
pub struct HeldConnection {
    pub service: String,
    pub client_port: u16,
    /// The real server that answered when the connection was opened.
    pub real_server: String,
    kind: ListenerKind,
    vip: IpAddr,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl HeldConnection {
    /// Opens the connection and has its first exchange: an HTTP/1.1 request
    /// asking to keep the connection, or the SMTP banner and `EHLO`.
    /// The kernel picks the client's port.
    pub fn open(
        service: &str,
        client: IpAddr,
        vip: IpAddr,
        port: u16,
        kind: ListenerKind,
        timeout: Duration,
    ) -> std::io::Result<HeldConnection> {
        let stream = connect(client, 0, vip, port, timeout)?;
        let client_port = stream.local_addr()?.port();
        let reader = BufReader::new(stream.try_clone()?);
        let mut held = HeldConnection {
            service: service.to_string(),
            client_port,
            real_server: String::new(),
            kind,
            vip,
            stream,
            reader,
        };
        held.real_server = match kind {
            ListenerKind::Http => held.request()?,
            ListenerKind::Smtp => {
                let mut banner = String::new();
                held.reader.read_line(&mut banner)?;
                let (server, _) = parse_facts(&banner);
                held.stream.write_all(b"EHLO lvsdr\r\n")?;
                held.read_smtp_reply()?;
                server.ok_or_else(|| std::io::Error::other(format!("unexpected SMTP banner: {}", banner.trim())))?
            }
        };
        Ok(held)
    }

    /// One more request on the open connection, with `timeout` for its
    /// answer; returns the real server that answered.
    pub fn again(&mut self, timeout: Duration) -> std::io::Result<String> {
        self.stream.set_read_timeout(Some(timeout))?;
        match self.kind {
            ListenerKind::Http => self.request(),
            ListenerKind::Smtp => {
                // `250 rs1 greets you`
                self.stream.write_all(b"HELO lvsdr\r\n")?;
                let reply = self.read_smtp_reply()?;
                reply
                    .strip_prefix("250 ")
                    .and_then(|r| r.split_whitespace().next())
                    .map(str::to_string)
                    .ok_or_else(|| std::io::Error::other(format!("unexpected SMTP reply: {}", reply.trim())))
            }
        }
    }

    fn request(&mut self) -> std::io::Result<String> {
        let host = match self.vip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        self.stream
            .write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lvsdr\r\nConnection: keep-alive\r\n\r\n").as_bytes())?;
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v
                    .trim()
                    .parse()
                    .map_err(|_| std::io::Error::other(format!("bad header: {}", line.trim())))?;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        parse_facts(&String::from_utf8_lossy(&body))
            .0
            .ok_or_else(|| std::io::Error::other("the answer names no server"))
    }

    /// Reads an SMTP reply up to its last line (`250 …`, not `250-…`) and returns that line.
    fn read_smtp_reply(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line);
            }
        }
    }
}

/// What went wrong with a connection, in words (a reset, a timeout, …).
pub fn error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => "connection reset by peer (a RST came back)".into(),
        _ => describe(e),
    }
}

/// Sends the SYN of a connection without waiting for the handshake: the
/// kernel schedules it at once, in the order the SYNs are sent.
fn start_connect(client: IpAddr, client_port: u16, vip: IpAddr, port: u16) -> std::io::Result<socket2::Socket> {
    let socket = client_socket(client, client_port, vip)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&SocketAddr::new(vip, port).into()) {
        Ok(()) => Ok(socket),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(socket),
        Err(e) => Err(e),
    }
}

/// A TCP socket of the VIP's family, bound to `client:client_port` unless
/// the port is 0 (then the kernel picks the source).
fn client_socket(client: IpAddr, client_port: u16, vip: IpAddr) -> std::io::Result<socket2::Socket> {
    if client.is_ipv4() != vip.is_ipv4() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("client {client} and VIP {vip} are of different address families"),
        ));
    }
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(SocketAddr::new(vip, 0)),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if client_port != 0 {
        socket.bind(&SocketAddr::new(client, client_port).into())?;
    }
    Ok(socket)
}

/// Waits for a started connection's handshake, then makes it an ordinary blocking stream.
fn finish_connect(socket: socket2::Socket, timeout: Duration) -> std::io::Result<TcpStream> {
    use std::os::fd::AsFd;
    let mut fds = [nix::poll::PollFd::new(socket.as_fd(), nix::poll::PollFlags::POLLOUT)];
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(millis)).map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
    if ready == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
    }
    if let Some(e) = socket.take_error()? {
        return Err(e);
    }
    socket.set_nonblocking(false)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Probes connections in the order given, as the kernel must see their SYNs
/// for the prediction to hold, but overlaps everything after the SYN: up to
/// `concurrency` connections are in flight at once. Only for schedulers that
/// do not count open connections (the plan says which).
#[allow(clippy::too_many_arguments)]
pub fn probe_overlapped(
    service: &str,
    connections: &[(IpAddr, u16)],
    vip: IpAddr,
    port: u16,
    kind: ListenerKind,
    timeout: Duration,
    concurrency: usize,
) -> Vec<ConnectionResult> {
    let mut results = Vec::with_capacity(connections.len());
    for wave in connections.chunks(concurrency.max(1)) {
        let started = std::time::Instant::now();
        // The SYNs, one after another from this thread: the order the kernel schedules in.
        let sockets: Vec<_> = wave.iter().map(|&(c, p)| start_connect(c, p, vip, port)).collect();
        std::thread::scope(|s| {
            let talks: Vec<_> = sockets
                .into_iter()
                .map(|socket| s.spawn(move || converse(finish_connect(socket?, timeout)?, vip, kind)))
                .collect();
            for (&(client, client_port), talk) in wave.iter().zip(talks) {
                let said = talk
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the probe thread panicked")));
                results.push(outcome(service, client, client_port, said, started.elapsed().as_millis() as u64));
            }
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// One listener on `[::]` answers IPv4 and IPv6 clients, and each is
    /// reported with its own address (the IPv4 one not v4-mapped). On a
    /// kernel without IPv6 the listener falls back to 0.0.0.0 and only the
    /// IPv4 half runs.
    #[test]
    fn the_listener_is_dual_stack() {
        let listener = listen_any(0).unwrap();
        let local = listener.local_addr().unwrap();
        let mut clients: Vec<IpAddr> = vec![Ipv4Addr::LOCALHOST.into()];
        if local.is_ipv6() {
            clients.push(Ipv6Addr::LOCALHOST.into());
        }
        let served = clients.len();
        let server = std::thread::spawn(move || {
            for conn in listener.incoming().take(served) {
                let stream = conn.unwrap();
                let peer = stream.peer_addr().unwrap();
                serve_http(stream, "rs1", peer).unwrap();
            }
        });
        for client in clients {
            let timeout = Duration::from_secs(5);
            let said = connect(client, 0, client, local.port(), timeout).and_then(|s| converse(s, client, ListenerKind::Http));
            let (server, peer) = parse_facts(&said.unwrap());
            assert_eq!((server.as_deref(), peer), (Some("rs1"), Some(client.to_string())));
        }
        server.join().unwrap();
    }

    #[test]
    fn a_client_of_the_other_family_is_refused_before_any_packet() {
        let err = client_socket("192.168.1.100".parse().unwrap(), 40000, "2001:db8::1".parse().unwrap()).unwrap_err();
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
