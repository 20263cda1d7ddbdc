//! What the kernel itself costs for the work no lab can skip, timed with as
//! few system calls as the kernel allows: `HOSTS` network namespaces (one
//! `unshare` and one `open` each), a veth pair from a bridge into each (one
//! rtnetlink request each, on its bridge and up as it is made, 64 requests to
//! a datagram), and
//! `CONNECTIONS` TCP connections over loopback (connect, accept, two closes;
//! no data, no IPVS, no bridge), and as many again from one of those
//! namespaces to another across the bridge, with a system call for each step
//! and then batched through io_uring. `cargo xtask bench` runs it in the lab's
//! kernel (`lvsdr kernel-exec -- …/kernel_floor 66 1000`) beside the scale
//! runs, to set their targets against what the kernel alone takes.
//!
//! Needs root. Everything it makes lives in namespaces of its own, which go
//! away with the process: it never touches the namespace it starts in.
//! Prints one JSON object: `{"hosts":66,"namespaces_ms":…,"named_namespaces_ms":…,"links_ms":…,"connections":1000,"connections_ms":…,"bridged_ms":…,"bridged_io_uring_ms":…,"dr_ms":…,"dr_captured_ms":…}`.

use lvsdr_harness::netns;
use lvsdr_harness::rtnl::{Change, Route};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("kernel_floor: {e}");
        std::process::exit(1);
    }
}

fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}

fn run() -> Result<(), String> {
    let arg = |i: usize, default: usize| -> Result<usize, String> {
        std::env::args()
            .nth(i)
            .map(|a| {
                a.parse()
                    .map_err(|_| format!("`{a}` is not a count; usage: kernel_floor [HOSTS] [CONNECTIONS]"))
            })
            .unwrap_or(Ok(default))
    };
    let (hosts, connections) = (arg(1, 66)?, arg(2, 1000)?);
    // Our own namespace first (the LAN's), so that nothing lands where we started.
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare (needs root): {e}"))?;
    let lan = File::open("/proc/thread-self/ns/net").map_err(|e| e.to_string())?;

    let started = Instant::now();
    let mut namespaces = Vec::with_capacity(hosts);
    for _ in 0..hosts {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare: {e}"))?;
        namespaces.push(File::open("/proc/thread-self/ns/net").map_err(|e| e.to_string())?);
    }
    setns(&lan, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
    let namespaces_ms = ms(started);
    // The same namespaces named, as `ip netns add` makes them (a file in
    // /run/netns with the namespace bound on it) and with `lo` up: what a lab
    // needs to find, keep (`--keep`) and clean up its namespaces by name.
    let started = Instant::now();
    let names: Vec<String> = (0..hosts).map(|i| format!("{}floor{i}", netns::unique_prefix())).collect();
    let named = netns::NetNs::create_all(&names).map_err(|e| format!("named namespaces: {e}"))?;
    let named_ms = ms(started);
    drop(named);

    // The links as cheaply as netlink allows: one request each, 64 to a datagram.
    let started = Instant::now();
    let route = Route::open().map_err(|e| format!("links: {e}"))?;
    route
        .apply(&[Change::Bridge { name: "br0".into() }])
        .map_err(|e| format!("links: {e}"))?;
    let veths: Vec<Change> = namespaces
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            use std::os::fd::AsRawFd;
            Change::VethToBridge {
                name: format!("port{i}"),
                peer: "eth0".into(),
                peer_ns_fd: ns.as_raw_fd(),
                bridge: "br0".into(),
            }
        })
        .chain(std::iter::once(Change::Up { device: "lo".into() }))
        .collect();
    route.apply(&veths).map_err(|e| format!("links: {e}"))?;
    let links_ms = ms(started);

    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let started = Instant::now();
    for _ in 0..connections {
        let client = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
        let (server, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        drop(server);
        drop(client);
    }
    let connections_ms = ms(started);
    let (bridged_ms, batched_ms) = across_the_bridge(&namespaces, connections)?;
    let batched_ms = batched_ms.map_or("null".to_string(), |m| m.to_string());
    let (dr_ms, dr_captured_ms) = match through_a_director(&namespaces, connections)? {
        Some((plain, captured)) => (plain.to_string(), captured.to_string()),
        None => ("null".to_string(), "null".to_string()),
    };
    println!(
        "{{\"hosts\":{hosts},\"namespaces_ms\":{namespaces_ms},\"named_namespaces_ms\":{named_ms},\"links_ms\":{links_ms},\"connections\":{connections},\"connections_ms\":{connections_ms},\"bridged_ms\":{bridged_ms},\"bridged_io_uring_ms\":{batched_ms},\"dr_ms\":{dr_ms},\"dr_captured_ms\":{dr_captured_ms}}}"
    );
    Ok(())
}

/// The same connections from one namespace to another across the bridge
/// (client 10.0.0.1, server 10.0.0.2, each on its veth): the path of a lab's
/// probe without IPVS in the middle, nor any data. Then once more with the
/// connects, accepts and closes batched through io_uring, 64 connections a
/// submission (`None` where the kernel has no io_uring).
fn across_the_bridge(namespaces: &[File], connections: usize) -> Result<(f64, Option<f64>), String> {
    let [client, server, ..] = namespaces else {
        return Err("the connections across the bridge need two hosts".into());
    };
    let set_up = |ns: &File, address: &str| -> Result<(), String> {
        setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
        let ip: std::net::IpAddr = address.parse().map_err(|e| format!("{e}"))?;
        let route = Route::open().map_err(|e| format!("{address}: {e}"))?;
        let up = |device: &str| Change::Up { device: device.into() };
        let address = Change::Address {
            device: "eth0".into(),
            address: ip,
            prefix: 24,
            deprecated: false,
        };
        route.apply(&[up("lo"), up("eth0"), address]).map_err(|e| format!("{ip}: {e}"))?;
        route
            .wait_running(&["eth0".to_string()], std::time::Duration::from_secs(3))
            .map_err(|e| e.to_string())
    };
    set_up(server, "10.0.0.2")?;
    // A socket keeps the namespace it was made in.
    let listener = TcpListener::bind("10.0.0.2:8080").map_err(|e| e.to_string())?;
    set_up(client, "10.0.0.1")?;
    // The first connection resolves the neighbour; the floor is the steady cost.
    drop(TcpStream::connect("10.0.0.2:8080").map_err(|e| format!("connect: {e}"))?);
    drop(listener.accept().map_err(|e| format!("accept: {e}"))?);
    let started = Instant::now();
    for _ in 0..connections {
        let client = TcpStream::connect("10.0.0.2:8080").map_err(|e| format!("connect: {e}"))?;
        let (server, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        drop(server);
        drop(client);
    }
    let bridged = ms(started);
    let started = Instant::now();
    let batched = match batched(&listener, connections) {
        Ok(true) => Some(ms(started)),
        Ok(false) => None,
        Err(e) => return Err(format!("io_uring: {e}")),
    };
    Ok((bridged, batched))
}

/// The work of a lab's probe with nothing of lvsdr's around it: the same
/// connections to a VIP through an IPVS director by direct routing (a third
/// namespace, 10.0.0.3, holding VIP 10.0.0.100 and the service; the server
/// holding the VIP on `lo` with the DR ARP sysctls), each with a one-byte
/// request and a one-byte answer, one after another, blocking: the cheapest
/// way to do what each probe must. `None` where the kernel has no IPVS.
fn through_a_director(namespaces: &[File], connections: usize) -> Result<Option<(f64, f64)>, String> {
    use lvsdr_core::names::SysctlKey;
    use lvsdr_harness::ipvs::{Dest, Family, ForwardMethod, Ipvs, Netmask, Protocol, Service, ServiceFlags, ServiceId};
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr};
    let [client, server, director, ..] = namespaces else {
        return Err("the connections through a director need three hosts".into());
    };
    let vip = Ipv4Addr::new(10, 0, 0, 100);
    let address = |device: &str, ip: Ipv4Addr, prefix: u8| Change::Address {
        device: device.into(),
        address: IpAddr::V4(ip),
        prefix,
        deprecated: false,
    };
    let up = |device: &str| Change::Up { device: device.into() };
    setns(director, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
    let route = Route::open().map_err(|e| format!("director: {e}"))?;
    route
        .apply(&[
            up("lo"),
            up("eth0"),
            address("eth0", Ipv4Addr::new(10, 0, 0, 3), 24),
            address("eth0", vip, 32),
        ])
        .map_err(|e| format!("director: {e}"))?;
    route
        .wait_running(&["eth0".to_string()], std::time::Duration::from_secs(3))
        .map_err(|e| e.to_string())?;
    let Ok(ipvs) = Ipvs::connect() else {
        return Ok(None);
    };
    let id = ServiceId::Port {
        protocol: Protocol::Tcp,
        address: IpAddr::V4(vip),
        port: 8081,
    };
    ipvs.add_service(&Service {
        id,
        scheduler: "rr".into(),
        flags: ServiceFlags::default(),
        timeout: 0,
        netmask: Netmask::host(Family::Ipv4),
    })
    .map_err(|e| e.to_string())?;
    let real = Dest {
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        port: 8081,
        forward: ForwardMethod::Route,
        weight: 1,
        upper_threshold: 0,
        lower_threshold: 0,
    };
    ipvs.add_dest(&id, &real).map_err(|e| e.to_string())?;
    setns(server, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
    for key in ["net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.all.arp_announce"] {
        let value = if key.ends_with("ignore") { 1 } else { 2 };
        let key = SysctlKey::parse(key).map_err(|e| e.message)?;
        netns::write_sysctl(&key, value).map_err(|e| format!("{key}: {e}"))?;
    }
    Route::open()
        .and_then(|r| r.apply(&[address("lo", vip, 32)]))
        .map_err(|e| format!("server: {e}"))?;
    let listener = TcpListener::bind((vip, 8081)).map_err(|e| e.to_string())?;
    setns(client, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
    let one = |byte: u8| -> Result<(), String> {
        let io = |e: std::io::Error| format!("through the director: {e}");
        let mut c = TcpStream::connect((vip, 8081)).map_err(io)?;
        c.write_all(&[byte]).map_err(io)?;
        let (mut s, _) = listener.accept().map_err(io)?;
        let mut b = [0u8];
        s.read_exact(&mut b).map_err(io)?;
        s.write_all(&b).map_err(io)?;
        c.read_exact(&mut b).map_err(io)?;
        Ok(())
    };
    // The first connection resolves the neighbours; the floor is the steady cost.
    one(b'x')?;
    let started = Instant::now();
    for _ in 0..connections {
        one(b'x')?;
    }
    let plain = ms(started);
    // Once more with what the lab's reply proof needs on top: every frame that
    // reaches the client also queued on a packet socket (never read here, which
    // is cheaper than reading it).
    let started = Instant::now();
    let capture = packet_socket().map_err(|e| format!("packet socket: {e}"))?;
    for _ in 0..connections {
        one(b'x')?;
    }
    drop(capture);
    Ok(Some((plain, ms(started))))
}

/// An `AF_PACKET` socket taking every IPv4 frame that arrives, as the lab's
/// reply capture opens it (`PACKET_IGNORE_OUTGOING`, an 8 MiB queue).
fn packet_socket() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: socket(2) and setsockopt(2) with int options of their size; the descriptor is owned at once.
    #[allow(unsafe_code)]
    unsafe {
        let raw = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(0x0800u16.to_be()));
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = std::os::fd::OwnedFd::from_raw_fd(raw);
        for (level, name, value) in [(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 8 << 20), (libc::SOL_PACKET, 23, 1)] {
            let v: libc::c_int = value;
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        Ok(fd)
    }
}

/// `connections` connections to the listener's address, each made with one
/// `socket` call, their connects, accepts and closes submitted to io_uring 64
/// at a time. `Ok(false)` when the kernel has no io_uring.
fn batched(listener: &TcpListener, connections: usize) -> std::io::Result<bool> {
    use io_uring::{opcode, types, IoUring};
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
    let mut ring = match IoUring::new(256) {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) || e.raw_os_error() == Some(libc::EPERM) => return Ok(false),
        Err(e) => return Err(e),
    };
    let to: socket2::SockAddr = listener.local_addr()?.into();
    let mut done = 0;
    while done < connections {
        let clients: Vec<OwnedFd> = (0..(connections - done).min(64))
            .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).map(OwnedFd::from))
            .collect::<Result<_, _>>()?;
        let mut fds = Vec::with_capacity(clients.len() * 2);
        // SAFETY: each entry points at `to` and at descriptors we own, all of
        // which outlive the submission: it is waited for before they drop.
        #[allow(unsafe_code)]
        unsafe {
            let mut sq = ring.submission();
            for c in &clients {
                let connect = opcode::Connect::new(types::Fd(c.as_raw_fd()), to.as_ptr().cast(), to.len())
                    .build()
                    .user_data(0);
                sq.push(&connect).map_err(std::io::Error::other)?;
            }
            for _ in &clients {
                let accept = opcode::Accept::new(types::Fd(listener.as_raw_fd()), std::ptr::null_mut(), std::ptr::null_mut())
                    .build()
                    .user_data(1);
                sq.push(&accept).map_err(std::io::Error::other)?;
            }
        }
        ring.submit_and_wait(clients.len() * 2)?;
        for cqe in ring.completion() {
            if cqe.result() < 0 {
                return Err(std::io::Error::from_raw_os_error(-cqe.result()));
            }
            if cqe.user_data() == 1 {
                // SAFETY: a successful accept's result is a new descriptor, ours alone.
                #[allow(unsafe_code)]
                fds.push(unsafe { OwnedFd::from_raw_fd(cqe.result()) });
            }
        }
        fds.extend(clients);
        let count = fds.len();
        // SAFETY: each close takes a descriptor out of our hands (into_raw_fd), once.
        #[allow(unsafe_code)]
        unsafe {
            let mut sq = ring.submission();
            for fd in fds {
                sq.push(&opcode::Close::new(types::Fd(fd.into_raw_fd())).build().user_data(2))
                    .map_err(std::io::Error::other)?;
            }
        }
        ring.submit_and_wait(count)?;
        ring.completion().for_each(drop);
        done += count / 2;
    }
    Ok(true)
}
