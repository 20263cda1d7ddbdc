//! The probe servers: every listener of every real server, served by one
//! thread with epoll. A listening socket stays in the namespace it was made
//! in, so one thread can accept for all of them; under User-Mode Linux, where
//! a system call costs some 15 µs and every thread switch more, one event
//! loop answers a connection in about five system calls where a thread per
//! listener and per connection took some twenty.
//!
//! Each connection is a small state machine ([`Conn`]): HTTP requests are
//! answered when their headers are complete (several on one connection when
//! the client keeps it alive, as the failover lab's held connection does),
//! SMTP lines one by one. Idle connections are dropped after [`IDLE`].

use super::{facts, ListenerKind};
use crate::netns::NetNs;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a connection may sit idle before the server drops it: longer
/// than a failover, during which a held connection says nothing.
const IDLE: Duration = Duration::from_secs(30);

/// A request or line longer than this is not one of ours: the connection is dropped.
const MAX_INPUT: usize = 16 * 1024;

/// The event loop's token for the stop signal; listeners are `0..n`, and a
/// connection is `n + slot`, with its generation in the high 32 bits.
const STOP: u64 = u64::MAX;

/// One listener to serve: a real server's port, in the real server's namespace.
#[derive(Clone)]
pub struct Listener {
    /// The namespace to listen in; `None` is the calling thread's.
    pub ns: Option<Arc<NetNs>>,
    /// The real server's name, which every answer carries.
    pub server: String,
    pub port: u16,
    pub kind: ListenerKind,
}

/// Every probe listener of a lab, served until dropped.
pub struct ProbeServers {
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
    /// Each listener's port, in the order given (the kernel's pick for port 0).
    ports: Vec<u16>,
    dual_stack: bool,
}

impl ProbeServers {
    /// Binds every listener in its namespace, then serves them all from one
    /// thread. Fails, with nothing left running, if any cannot be bound.
    pub fn start(listeners: &[Listener]) -> std::io::Result<ProbeServers> {
        let bound = bind_all(listeners)?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(std::io::Error::from)?;
        let stop = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).map_err(std::io::Error::from)?;
        epoll
            .add(stop.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, STOP))
            .map_err(std::io::Error::from)?;
        for (i, l) in bound.iter().enumerate() {
            epoll
                .add(l.socket.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                .map_err(std::io::Error::from)?;
        }
        let ports = bound
            .iter()
            .map(|b| b.socket.local_addr().map(|a| a.port()))
            .collect::<std::io::Result<Vec<_>>>()?;
        let dual_stack = bound.first().is_some_and(|b| b.socket.local_addr().is_ok_and(|a| a.is_ipv6()));
        let thread = std::thread::Builder::new()
            .name("probe-servers".into())
            .spawn(move || EventLoop::new(epoll, bound).run())?;
        Ok(ProbeServers {
            stop,
            thread: Some(thread),
            ports,
            dual_stack,
        })
    }

    /// How many listeners are served.
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// Each listener's port, in the order given.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Whether the listeners are on `[::]`, taking both families (a kernel without IPv6 has `0.0.0.0`).
    pub fn dual_stack(&self) -> bool {
        self.dual_stack
    }
}

impl Drop for ProbeServers {
    /// Stops the loop, which closes every listener and open connection (a
    /// held connection's client sees the end of its stream), and waits for it.
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Bound {
    socket: TcpListener,
    server: String,
    kind: ListenerKind,
}

/// Makes every listener inside its own namespace, from one helper thread that
/// enters each namespace in turn: a socket keeps the namespace it was made in.
fn bind_all(listeners: &[Listener]) -> std::io::Result<Vec<Bound>> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut bound = Vec::with_capacity(listeners.len());
            // The caller's namespace, to come back to for a listener without one.
            let home = std::fs::File::open("/proc/thread-self/ns/net")?;
            let mut current: Option<&Arc<NetNs>> = None;
            for l in listeners {
                match (&l.ns, current) {
                    (Some(ns), Some(c)) if Arc::ptr_eq(ns, c) => {}
                    (Some(ns), _) => {
                        ns.enter_current_thread().map_err(|e| std::io::Error::other(e.to_string()))?;
                        current = Some(ns);
                    }
                    (None, Some(_)) => {
                        nix::sched::setns(&home, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
                        current = None;
                    }
                    (None, None) => {}
                }
                let socket = listen_any(l.port)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: listening on port {}: {e}", l.server, l.port)))?;
                bound.push(Bound {
                    socket,
                    server: l.server.clone(),
                    kind: l.kind,
                });
            }
            Ok(bound)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the thread binding the probe listeners panicked")))
    })
}

/// A non-blocking listener on every address of both families (`[::]`,
/// dual-stack; IPv4 clients arrive v4-mapped and [`normalise`] maps them
/// back). A kernel without IPv6 gets `0.0.0.0`.
pub(super) fn listen_any(port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let kind = Type::STREAM.nonblocking().cloexec();
    let (socket, address) = match Socket::new(Domain::IPV6, kind, Some(Protocol::TCP)) {
        Ok(socket) => {
            socket.set_only_v6(false)?;
            (socket, SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port))
        }
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => (
            Socket::new(Domain::IPV4, kind, Some(Protocol::TCP))?,
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

/// Accepts one connection as a non-blocking socket, with its peer's address,
/// in one system call (`accept4`); `Ok(None)` when none is waiting.
fn accept(listener: &TcpListener) -> std::io::Result<Option<(TcpStream, SocketAddr)>> {
    // SAFETY: accept4 writes at most `len` bytes into the zeroed storage we own
    // (its length and family then describe it, as SockAddr::new asks), and a
    // descriptor it returns is ours alone, owned at once by `OwnedFd`.
    #[allow(unsafe_code)]
    unsafe {
        let mut storage = socket2::SockAddrStorage::zeroed();
        let mut len = storage.size_of();
        let fd = libc::accept4(
            listener.as_raw_fd(),
            storage.view_as(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        );
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                ErrorKind::WouldBlock => Ok(None),
                _ => Err(e),
            };
        }
        let stream = TcpStream::from(OwnedFd::from_raw_fd(fd));
        let peer = socket2::SockAddr::new(storage, len).as_socket();
        Ok(peer.map(|p| (stream, p)))
    }
}

/// One open connection and where its conversation stands.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    listener: usize,
    generation: u32,
    input: Vec<u8>,
    /// Bytes the socket would not take yet; the loop waits to write them.
    output: Vec<u8>,
    /// Close once `output` is written (HTTP/1.0, or after `221`).
    close_after: bool,
    last: Instant,
}

enum Next {
    Keep,
    Close,
}

struct EventLoop {
    epoll: Epoll,
    listeners: Vec<Bound>,
    slots: Vec<Option<Conn>>,
    free: Vec<usize>,
    generation: u32,
    /// The time after the last wait: one clock read per round (a system call under UML).
    now: Instant,
}

impl EventLoop {
    fn new(epoll: Epoll, listeners: Vec<Bound>) -> EventLoop {
        EventLoop {
            epoll,
            listeners,
            slots: Vec::new(),
            free: Vec::new(),
            generation: 0,
            now: Instant::now(),
        }
    }

    fn token(&self, slot: usize, generation: u32) -> u64 {
        ((generation as u64) << 32) | (self.listeners.len() + slot) as u64
    }

    fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); 128];
        let mut swept = Instant::now();
        loop {
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(1000u16)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            self.now = Instant::now();
            for ev in &events[..n] {
                let token = ev.data();
                if token == STOP {
                    // Dropping the loop closes every socket it holds.
                    return;
                }
                let index = (token & 0xffff_ffff) as usize;
                if index < self.listeners.len() {
                    self.accept_all(index);
                } else {
                    let slot = index - self.listeners.len();
                    let live = self.slots.get(slot).and_then(|s| s.as_ref()).map(|c| c.generation);
                    if live == Some((token >> 32) as u32) {
                        self.ready(slot, ev.events());
                    }
                }
            }
            if self.now.duration_since(swept) > Duration::from_secs(1) {
                swept = self.now;
                let now = self.now;
                let idle: Vec<usize> = (0..self.slots.len())
                    .filter(|&i| self.slots[i].as_ref().is_some_and(|c| now.duration_since(c.last) > IDLE))
                    .collect();
                for slot in idle {
                    self.close(slot);
                }
            }
        }
    }

    /// Accepts every waiting connection of one listener. An HTTP request is
    /// usually there already, and is answered before the socket ever joins
    /// the loop; an SMTP client waits for the banner first.
    fn accept_all(&mut self, listener: usize) {
        while let Ok(Some((stream, peer))) = accept(&self.listeners[listener].socket) {
            let mut conn = Conn {
                stream,
                peer,
                listener,
                generation: 0,
                input: Vec::new(),
                output: Vec::new(),
                close_after: false,
                last: self.now,
            };
            let next = match self.listeners[listener].kind {
                ListenerKind::Http => self.read(&mut conn),
                ListenerKind::Smtp => {
                    let banner = format!("220 {} lvsdr probe ESMTP\r\n", facts(&self.listeners[listener].server, conn.peer));
                    send(&mut conn, banner.as_bytes())
                }
            };
            if let Next::Close = next {
                continue;
            }
            if conn.close_after && conn.output.is_empty() {
                continue;
            }
            self.insert(conn);
        }
    }

    fn insert(&mut self, mut conn: Conn) {
        self.generation = self.generation.wrapping_add(1);
        conn.generation = self.generation;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let mut flags = EpollFlags::EPOLLIN;
        if !conn.output.is_empty() {
            flags |= EpollFlags::EPOLLOUT;
        }
        if self
            .epoll
            .add(conn.stream.as_fd(), EpollEvent::new(flags, self.token(slot, conn.generation)))
            .is_ok()
        {
            self.slots[slot] = Some(conn);
        } else {
            self.free.push(slot);
        }
    }

    fn close(&mut self, slot: usize) {
        // Closing the socket also takes it out of the epoll set.
        if self.slots[slot].take().is_some() {
            self.free.push(slot);
        }
    }

    fn ready(&mut self, slot: usize, flags: EpollFlags) {
        let Some(mut conn) = self.slots[slot].take() else { return };
        let had_output = !conn.output.is_empty();
        let mut next = Next::Keep;
        if flags.contains(EpollFlags::EPOLLOUT) && had_output {
            next = flush(&mut conn);
        }
        if matches!(next, Next::Keep) && flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR) {
            next = self.read(&mut conn);
        }
        let done = matches!(next, Next::Close) || (conn.close_after && conn.output.is_empty());
        if done {
            self.free.push(slot);
            return;
        }
        // Wait for the socket to take the rest of an answer, or stop waiting once it has.
        let has_output = !conn.output.is_empty();
        if had_output != has_output {
            let mut flags = EpollFlags::EPOLLIN;
            if !conn.output.is_empty() {
                flags |= EpollFlags::EPOLLOUT;
            }
            let mut event = EpollEvent::new(flags, self.token(slot, conn.generation));
            if self.epoll.modify(conn.stream.as_fd(), &mut event).is_err() {
                self.free.push(slot);
                return;
            }
        }
        self.slots[slot] = Some(conn);
    }

    /// Reads what the peer sent and answers every complete request or line.
    fn read(&self, conn: &mut Conn) -> Next {
        let mut buf = [0u8; 4096];
        match conn.stream.read(&mut buf) {
            Ok(0) => return Next::Close,
            Ok(n) => conn.input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Keep,
            Err(e) if e.kind() == ErrorKind::Interrupted => return Next::Keep,
            Err(_) => return Next::Close,
        }
        conn.last = self.now;
        let listener = &self.listeners[conn.listener];
        let next = match listener.kind {
            ListenerKind::Http => answer_http(conn, &listener.server),
            ListenerKind::Smtp => answer_smtp(conn, &listener.server),
        };
        if matches!(next, Next::Keep) && conn.input.len() > MAX_INPUT {
            return Next::Close;
        }
        next
    }
}

/// Writes `bytes`, or as much as the socket takes and keeps the rest for later.
fn send(conn: &mut Conn, bytes: &[u8]) -> Next {
    if !conn.output.is_empty() {
        conn.output.extend_from_slice(bytes);
        return Next::Keep;
    }
    match conn.stream.write(bytes) {
        Ok(n) => {
            conn.output.extend_from_slice(&bytes[n..]);
            Next::Keep
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            conn.output.extend_from_slice(bytes);
            Next::Keep
        }
        Err(_) => Next::Close,
    }
}

fn flush(conn: &mut Conn) -> Next {
    match conn.stream.write(&conn.output) {
        Ok(n) => {
            conn.output.drain(..n);
            Next::Keep
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => Next::Keep,
        Err(_) => Next::Close,
    }
}

/// Answers each complete request in the input: HTTP/1.0 closes after its
/// answer, HTTP/1.1 keeps the connection unless it asks for `close`.
fn answer_http(conn: &mut Conn, server: &str) -> Next {
    while let Some(end) = find(&conn.input, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(&conn.input, b"\n\n").map(|i| i + 2))
    {
        let head = String::from_utf8_lossy(&conn.input[..end]).to_ascii_lowercase();
        conn.input.drain(..end);
        let mut lines = head.lines();
        let mut keep_alive = lines.next().is_some_and(|l| l.trim_end().ends_with("http/1.1"));
        for line in lines {
            if let Some(value) = line.strip_prefix("connection:") {
                keep_alive = value.trim() == "keep-alive";
            }
        }
        let body = format!("{}\n", facts(server, conn.peer));
        // One write, one segment: piecewise writes would wait on Nagle and delayed ACKs.
        let answer = format!(
            "HTTP/1.{} 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{body}",
            u8::from(keep_alive),
            body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        if let Next::Close = send(conn, answer.as_bytes()) {
            return Next::Close;
        }
        if !keep_alive {
            conn.close_after = true;
            return Next::Keep;
        }
    }
    Next::Keep
}

/// Answers each complete SMTP line: EHLO, HELO, NOOP and QUIT.
fn answer_smtp(conn: &mut Conn, server: &str) -> Next {
    while let Some(end) = conn.input.iter().position(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(&conn.input[..end]).into_owned();
        conn.input.drain(..=end);
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" => format!("250-{server} greets you\r\n250 8BITMIME\r\n"),
            "HELO" => format!("250 {server} greets you\r\n"),
            "QUIT" => {
                conn.close_after = true;
                format!("221 {server} bye\r\n")
            }
            "NOOP" => "250 OK\r\n".to_string(),
            _ => "502 not implemented\r\n".to_string(),
        };
        if let Next::Close = send(conn, answer.as_bytes()) {
            return Next::Close;
        }
        if conn.close_after {
            return Next::Keep;
        }
    }
    Next::Keep
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::super::normalise;
    use super::*;

    fn conn_pair() -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        stream.set_nonblocking(true).unwrap();
        let conn = Conn {
            stream,
            peer: SocketAddr::new(normalise(peer.ip()), peer.port()),
            listener: 0,
            generation: 0,
            input: Vec::new(),
            output: Vec::new(),
            close_after: false,
            last: Instant::now(),
        };
        (conn, client)
    }

    #[test]
    fn http_answers_each_request_and_closes_after_http_1_0() {
        let (mut conn, mut client) = conn_pair();
        let peer = conn.peer;
        conn.input.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\n");
        assert!(matches!(answer_http(&mut conn, "rs1"), Next::Keep));
        assert!(!conn.close_after, "HTTP/1.1 keeps the connection");
        assert_eq!(conn.input, b"GET / HTTP/1.0\r\n", "the incomplete request waits");
        conn.input.extend_from_slice(b"\r\n");
        answer_http(&mut conn, "rs1");
        assert!(conn.close_after, "HTTP/1.0 closes after its answer");
        drop(conn);
        let mut text = String::new();
        client.read_to_string(&mut text).unwrap();
        let expected = format!("server=rs1 peer={peer}\n");
        assert_eq!(text.matches(&expected).count(), 2, "{text}");
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\n") && text.contains("Connection: keep-alive"),
            "{text}"
        );
        assert!(text.contains("HTTP/1.0 200 OK\r\n") && text.contains("Connection: close"), "{text}");
    }

    #[test]
    fn smtp_answers_line_by_line_and_quit_closes() {
        let (mut conn, mut client) = conn_pair();
        conn.input.extend_from_slice(b"EHLO me\r\nNOOP\r\nVRFY x\r\nQUIT\r\nEHLO again\r\n");
        answer_smtp(&mut conn, "rs2");
        assert!(conn.close_after);
        assert_eq!(conn.input, b"EHLO again\r\n", "nothing after QUIT is answered");
        drop(conn);
        let mut text = String::new();
        client.read_to_string(&mut text).unwrap();
        assert_eq!(
            text,
            "250-rs2 greets you\r\n250 8BITMIME\r\n250 OK\r\n502 not implemented\r\n221 rs2 bye\r\n"
        );
    }
}
