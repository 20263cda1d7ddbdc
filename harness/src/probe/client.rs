//! The probe client: every planned connection, driven by one thread with
//! epoll. A service's SYNs leave in the planned order, which is the order
//! the kernel schedules them in; what follows the SYN overlaps, up to a bound,
//! when the service's scheduler never counts open connections, and otherwise
//! each connection ends before the next one starts. Services run side by side.
//! A lane that holds connections (`lvsdr lab --hold N`) keeps each answered
//! one open until N newer ones are, so that the kernel counts them active.
//!
//! A conversation costs the client eight system calls: socket, setsockopt,
//! bind, connect, epoll_ctl, one write and one read (HTTP: the request, and
//! the answer, complete by its `Content-Length`; SMTP: the banner, `QUIT`, and
//! `221`, one read more), and close.

use super::server::find;
use super::{outcome, ConnectionResult, ListenerKind};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// One service's planned connections, in the order their SYNs must leave.
pub struct Lane<'a> {
    pub service: &'a str,
    pub vip: IpAddr,
    pub port: u16,
    pub kind: ListenerKind,
    /// The client address and port of each connection.
    pub connections: Vec<(IpAddr, u16)>,
    /// How many of this service's connections may be open at once: 1 when
    /// its scheduler counts open connections.
    pub at_once: usize,
    /// How many answered connections stay open while the next ones start
    /// (HTTP/1.1 kept alive, SMTP without `QUIT`): the oldest closes before a
    /// new one starts once this many are held. 0 closes each as it ends.
    pub hold: usize,
}

/// Runs every lane's connections and returns their results lane by lane, in
/// the planned order. Runs on the calling thread, which must be in the
/// client's namespace. `timeout` bounds each wait: for the handshake, and
/// then for each answer.
pub fn probe_lanes(lanes: &[Lane], timeout: Duration) -> std::io::Result<Vec<Vec<ConnectionResult>>> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(std::io::Error::from)?;
    let mut results: Vec<Vec<Option<ConnectionResult>>> = lanes.iter().map(|l| vec![None; l.connections.len()]).collect();
    let mut next = vec![0usize; lanes.len()];
    let mut open = vec![0usize; lanes.len()];
    // Slot `i` holds a conversation in flight; its token is `i`.
    let mut slots: Vec<Option<Talk>> = Vec::new();
    let mut events = vec![EpollEvent::empty(); 64];
    // Answered connections held open, oldest first, per lane; closed (dropped)
    // at the end, or as newer ones need their place.
    let mut held: Vec<std::collections::VecDeque<TcpStream>> = lanes.iter().map(|_| Default::default()).collect();
    // One clock read per round, after each wait: a system call under UML.
    let mut now = Instant::now();
    loop {
        // Start what the bounds allow, lane by lane, each lane's SYNs in its order.
        for (l, lane) in lanes.iter().enumerate() {
            while open[l] < lane.at_once.max(1) && next[l] < lane.connections.len() {
                let i = next[l];
                next[l] += 1;
                while lane.hold > 0 && held[l].len() >= lane.hold {
                    // Its FIN leaves before the next SYN: the kernel counts it inactive first.
                    held[l].pop_front();
                }
                let (client, client_port) = lane.connections[i];
                let started = now;
                match Talk::start(lane, l, i, client, client_port, timeout, now) {
                    Ok(talk) => {
                        let slot = slots.iter().position(Option::is_none).unwrap_or_else(|| {
                            slots.push(None);
                            slots.len() - 1
                        });
                        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLET;
                        match epoll.add(talk.stream.as_fd(), EpollEvent::new(flags, slot as u64)) {
                            Ok(()) => {
                                slots[slot] = Some(talk);
                                open[l] += 1;
                            }
                            Err(e) => results[l][i] = Some(finish(lane, client, client_port, Err(e.into()), started, now)),
                        }
                    }
                    Err(e) => results[l][i] = Some(finish(lane, client, client_port, Err(e), started, now)),
                }
            }
        }
        if slots.iter().all(Option::is_none) {
            break;
        }
        let soonest = slots.iter().flatten().map(|t| t.deadline).min().unwrap_or(now);
        let wait = soonest.saturating_duration_since(now);
        let millis = u16::try_from(wait.as_millis() + 1).unwrap_or(u16::MAX);
        let n = match epoll.wait(&mut events, EpollTimeout::from(millis)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        now = Instant::now();
        for (slot, said) in ended(&mut slots, &events[..n], lanes, now) {
            if let Some(talk) = slots[slot].take() {
                let lane = &lanes[talk.lane];
                open[talk.lane] -= 1;
                let (client, client_port) = lane.connections[talk.index];
                let answered = said.is_ok();
                results[talk.lane][talk.index] = Some(finish(lane, client, client_port, said, talk.started, now));
                if lane.hold > 0 && answered {
                    epoll.delete(talk.stream.as_fd()).map_err(std::io::Error::from)?;
                    held[talk.lane].push_back(talk.stream);
                }
                // Otherwise dropping the talk closes its socket, which leaves the epoll set.
            }
        }
    }
    Ok(results.into_iter().map(|lane| lane.into_iter().flatten().collect()).collect())
}

/// The conversations that ended in this round, by slot: those the events
/// finished, then those past their deadline.
fn ended(slots: &mut [Option<Talk>], events: &[EpollEvent], lanes: &[Lane], now: Instant) -> Vec<(usize, std::io::Result<String>)> {
    let mut ended: Vec<(usize, std::io::Result<String>)> = Vec::new();
    for ev in events {
        let slot = ev.data() as usize;
        if let Some(talk) = slots.get_mut(slot).and_then(Option::as_mut) {
            if let Some(said) = talk.step(ev.events(), &lanes[talk.lane], now) {
                ended.push((slot, said));
            }
        }
    }
    for (slot, talk) in slots.iter().enumerate() {
        if talk.as_ref().is_some_and(|t| t.deadline <= now) && !ended.iter().any(|(s, _)| *s == slot) {
            ended.push((slot, Err(std::io::Error::from(ErrorKind::TimedOut))));
        }
    }
    ended
}

fn finish(
    lane: &Lane,
    client: IpAddr,
    client_port: u16,
    said: std::io::Result<String>,
    started: Instant,
    now: Instant,
) -> ConnectionResult {
    outcome(
        lane.service,
        client,
        client_port,
        said,
        now.duration_since(started).as_millis() as u64,
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// The SYN is out; waiting for the handshake (HTTP) or the banner (SMTP).
    Connecting,
    /// HTTP: the request is out; reading the answer.
    Answer,
    /// SMTP: `QUIT` is out after the banner; reading `221`.
    Bye,
}

/// One conversation in flight.
struct Talk {
    stream: TcpStream,
    lane: usize,
    index: usize,
    phase: Phase,
    input: Vec<u8>,
    /// SMTP: the banner, which carries the facts.
    banner: String,
    started: Instant,
    deadline: Instant,
    timeout: Duration,
}

impl Talk {
    /// Sends the SYN: the kernel schedules the connection now.
    fn start(
        lane: &Lane,
        l: usize,
        index: usize,
        client: IpAddr,
        client_port: u16,
        timeout: Duration,
        now: Instant,
    ) -> std::io::Result<Talk> {
        let socket = super::client_socket(client, client_port, lane.vip, true)?;
        match socket.connect(&SocketAddr::new(lane.vip, lane.port).into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(Talk {
            stream: socket.into(),
            lane: l,
            index,
            phase: Phase::Connecting,
            input: Vec::new(),
            banner: String::new(),
            started: now,
            deadline: now + timeout,
            timeout,
        })
    }

    /// Moves the conversation on after an event; `Some` once it has ended,
    /// with what the real server said.
    fn step(&mut self, flags: EpollFlags, lane: &Lane, now: Instant) -> Option<std::io::Result<String>> {
        if self.phase == Phase::Connecting && flags.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP) {
            // A refused or unreachable connection: the socket holds the reason.
            let e = socket2::SockRef::from(&self.stream)
                .take_error()
                .ok()
                .flatten()
                .unwrap_or_else(|| std::io::Error::from(ErrorKind::ConnectionReset));
            return Some(Err(e));
        }
        if self.phase == Phase::Connecting && lane.kind == ListenerKind::Http && flags.contains(EpollFlags::EPOLLOUT) {
            let host = match lane.vip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            // HTTP/1.1 keeps the connection open after the answer, for a lane that holds it.
            let version = if lane.hold > 0 { 1 } else { 0 };
            let request = format!("GET / HTTP/1.{version}\r\nHost: {host}\r\nUser-Agent: lvsdr\r\n\r\n");
            if let Err(e) = self.stream.write_all(request.as_bytes()) {
                return Some(Err(e));
            }
            self.phase = Phase::Answer;
            self.deadline = now + self.timeout;
        }
        if !flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR) {
            return None;
        }
        // Edge-triggered: read until the socket is empty, or the message is whole.
        let mut buf = [0u8; 2048];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return self.at_end(),
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    if let Some(done) = self.whole(lane, now) {
                        return Some(done);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// What to do with the input read so far: `Some` when the conversation is over.
    fn whole(&mut self, lane: &Lane, now: Instant) -> Option<std::io::Result<String>> {
        match (lane.kind, &self.phase) {
            (ListenerKind::Http, _) => {
                let head_end = find(&self.input, b"\r\n\r\n")? + 4;
                let head = String::from_utf8_lossy(&self.input[..head_end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())?;
                let body = self.input.get(head_end..head_end + length)?;
                Some(Ok(String::from_utf8_lossy(body).into_owned()))
            }
            (ListenerKind::Smtp, Phase::Connecting) => {
                let end = self.input.iter().position(|&b| b == b'\n')?;
                self.banner = String::from_utf8_lossy(&self.input[..end]).trim_end().to_string();
                self.input.drain(..=end);
                if !self.banner.starts_with("220") {
                    return Some(Err(std::io::Error::other(format!("unexpected SMTP banner: {}", self.banner))));
                }
                if lane.hold > 0 {
                    // Held: the banner said who answered; no `QUIT`, the session stays open.
                    return Some(Ok(self.banner.clone()));
                }
                if let Err(e) = self.stream.write_all(b"QUIT\r\n") {
                    return Some(Err(e));
                }
                self.phase = Phase::Bye;
                self.deadline = now + self.timeout;
                None
            }
            (ListenerKind::Smtp, _) => self.input.contains(&b'\n').then(|| Ok(self.banner.clone())),
        }
    }

    /// The peer closed: what was said is the answer (an HTTP answer without
    /// `Content-Length`), or the conversation was cut short.
    fn at_end(&mut self) -> Option<std::io::Result<String>> {
        match self.phase {
            Phase::Answer => {
                let text = String::from_utf8_lossy(&self.input).into_owned();
                Some(Ok(text.split("\r\n\r\n").nth(1).unwrap_or("").to_string()))
            }
            Phase::Bye => Some(Ok(self.banner.clone())),
            Phase::Connecting => Some(Err(std::io::Error::from(ErrorKind::UnexpectedEof))),
        }
    }
}
