//! A connection the client keeps open across a failover, blocking: the
//! failover lab opens a few, one at a time, and asks again after the failover.

use super::{client_socket, parse_facts, ListenerKind};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// Opens a connection from `client:client_port` to `vip:port`: the SYN,
/// which is when IPVS schedules it to a real server.
fn connect(client: IpAddr, client_port: u16, vip: IpAddr, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let socket = client_socket(client, client_port, vip, false)?;
    socket.connect_timeout(&SocketAddr::new(vip, port).into(), timeout)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(stream)
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
