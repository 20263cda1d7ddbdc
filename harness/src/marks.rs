//! Firewall marks for IPVS fwmark services, by whichever means the kernel
//! has: nf_tables ([`crate::nft`]) where it has the inet family, tc ingress
//! filters ([`crate::tc`]) where it does not, as under the User-Mode Linux
//! kernel the lab runs on.

use lvsdr_core::plan::MarkPlan;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

/// What [`apply`] returns when nf_tables set the marks.
pub const NF_TABLES: &str = "nf_tables";
/// What [`apply`] returns when tc ingress filters set the marks.
pub const TC_INGRESS: &str = "tc ingress";

/// Applies `marks` in the calling thread's network namespace and returns
/// which way: [`NF_TABLES`] ([`crate::nft::apply_marks`], every interface of
/// the namespace) or, when nf_tables is missing or lacks the inet family
/// (EOPNOTSUPP, EPROTONOSUPPORT), [`TC_INGRESS`] ([`crate::tc::apply_marks`],
/// packets arriving on `device`: give it the director's LAN interface).
///
/// nf_tables applies its transaction whole or not at all, so after such a
/// refusal nothing of it is left to clash with tc. Any other nf_tables error
/// (a plan it refuses, a table already there, no permission) is returned as
/// it is; so is a tc error, after the nf_tables one.
pub fn apply(device: &str, marks: &[MarkPlan]) -> io::Result<&'static str> {
    match crate::nft::apply_marks(marks) {
        Ok(()) => Ok(NF_TABLES),
        Err(nft) if nft.kind() == io::ErrorKind::Unsupported => match crate::tc::apply_marks(device, marks) {
            Ok(()) => Ok(TC_INGRESS),
            Err(tc) => Err(io::Error::new(tc.kind(), format!("{nft}; then {tc}"))),
        },
        Err(nft) => Err(nft),
    }
}

/// `lvsdr marks-check`: on this kernel (run it in UML with `kernel-exec`),
/// marks set by [`apply`] reach an IPVS fwmark service, and only they.
pub fn self_check() -> Result<String, String> {
    fwmark_reaches_ipvs(&apply)
}

/// Proves on the running kernel that an IPVS fwmark service receives
/// what `apply` marks, and nothing else:
///
/// ```text
///  client namespace                      director namespace
///  br0 10.0.0.1/24 ── c0 ════ veth ════ d0 10.0.0.2/24, VIP 10.0.0.100/32
///                                        IPVS fwmark 1 → 10.0.0.100:80 (local)
///                                        listeners on :80 and :81
/// ```
///
/// A connection to VIP:80 before the marks must miss the service; after
/// them it must reach it; VIP:81 and 10.0.0.2:80 must still miss it.
/// Returns one line per step and the name `apply` returned, or the first failure.
fn fwmark_reaches_ipvs(apply: &(dyn Fn(&str, &[MarkPlan]) -> io::Result<&'static str> + Sync)) -> Result<String, String> {
    use crate::ipvs::{Dest, Family, ForwardMethod, Ipvs, Netmask, Service, ServiceFlags, ServiceId};
    use crate::netns::NetNs;
    use crate::rtnl;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::time::Duration;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DIRECTOR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const MARK: u32 = 1;
    let id = ServiceId::Fwmark {
        mark: MARK,
        family: Family::Ipv4,
    };
    let s = |e: &dyn std::fmt::Display| e.to_string();
    let mut log = String::new();
    let mut ok = |line: &str| log.push_str(&format!("ok   {line}\n"));

    let prefix = crate::netns::unique_prefix();
    let client = NetNs::create(&format!("{prefix}client")).map_err(|e| s(&e))?;
    let director = NetNs::create(&format!("{prefix}director")).map_err(|e| s(&e))?;
    let director_fd = director.fd();
    let address = |device: &str, ip: Ipv4Addr, prefix: u8| rtnl::Change::Address {
        device: device.into(),
        address: IpAddr::V4(ip),
        prefix,
        deprecated: false,
    };
    client
        .run(|| -> Result<(), rtnl::RtnlError> {
            let route = rtnl::Route::open()?;
            route.apply(&[rtnl::Change::Bridge { name: "br0".into() }])?;
            route.apply(&[
                rtnl::Change::VethToBridge {
                    name: "c0".into(),
                    peer: "d0".into(),
                    peer_ns_fd: director_fd,
                    bridge: "br0".into(),
                },
                address("br0", CLIENT, 24),
            ])
        })
        .map_err(|e| s(&e))?
        .map_err(|e| s(&e))?;
    let listeners = director
        .run(|| -> Result<Vec<TcpListener>, String> {
            rtnl::Route::open()
                .and_then(|route| {
                    route.apply(&[
                        rtnl::Change::Up { device: "d0".into() },
                        address("d0", DIRECTOR, 24),
                        address("d0", VIP, 32),
                    ])
                })
                .map_err(|e| s(&e))?;
            let ipvs = Ipvs::connect().map_err(|e| s(&e))?;
            ipvs.add_service(&Service {
                id,
                scheduler: "rr".into(),
                flags: ServiceFlags::default(),
                timeout: 0,
                netmask: Netmask::host(Family::Ipv4),
            })
            .map_err(|e| s(&e))?;
            ipvs.add_dest(
                &id,
                &Dest {
                    address: IpAddr::V4(VIP),
                    port: 80,
                    forward: ForwardMethod::Local,
                    weight: 1,
                    upper_threshold: 0,
                    lower_threshold: 0,
                },
            )
            .map_err(|e| s(&e))?;
            // Sockets stay in the namespace they were made in; the kernel
            // completes handshakes into the backlog without an accept().
            [80, 81]
                .iter()
                .map(|p| TcpListener::bind((Ipv4Addr::UNSPECIFIED, *p)).map_err(|e| format!("listen on :{p}: {e}")))
                .collect()
        })
        .map_err(|e| s(&e))??;
    ok("client and director namespaces, veth c0/d0, VIP 10.0.0.100 on d0");
    ok("IPVS fwmark 1 (rr) → 10.0.0.100:80 local; listeners on :80 and :81");

    // Active + inactive connections of the one destination. IPVS makes the entry when it
    // schedules the SYN, so it is there once connect() returns: no wait for the 2 s
    // statistics estimator.
    let entries = || -> Result<u32, String> {
        director
            .run(|| -> Result<u32, String> {
                let ipvs = Ipvs::connect().map_err(|e| s(&e))?;
                let dests = ipvs.dests(&id).map_err(|e| s(&e))?;
                let d = dests.first().ok_or("the fwmark service has no destination")?;
                Ok(d.active_conns + d.inactive_conns)
            })
            .map_err(|e| s(&e))?
    };
    let connect = |to: Ipv4Addr, port: u16| -> Result<(), String> {
        client
            .run(|| {
                TcpStream::connect_timeout(&SocketAddr::from((to, port)), Duration::from_secs(3))
                    .map(drop)
                    .map_err(|e| format!("FAIL connect to {to}:{port}: {e}"))
            })
            .map_err(|e| s(&e))?
    };
    connect(VIP, 80)?;
    let before = entries()?;
    if before != 0 {
        return Err(format!(
            "FAIL without marks, VIP:80 reached the fwmark service: {before} connection(s)"
        ));
    }
    ok("without marks: connect to 10.0.0.100:80 succeeds (local listener), the fwmark service sees nothing (0 conns)");

    let marks = [MarkPlan {
        mark: MARK,
        destination: IpAddr::V4(VIP),
        prefix: 32,
        protocol: 6,
        ports: vec![80],
    }];
    let used = director
        .run(|| apply("d0", &marks))
        .map_err(|e| s(&e))?
        .map_err(|e| format!("FAIL apply marks on d0: {e}"))?;
    ok(&format!("marks applied on d0 with {used}: mark 1, 10.0.0.100/32 tcp port 80"));

    connect(VIP, 80)?;
    let after = entries()?;
    if after != 1 {
        return Err(format!(
            "FAIL after marks, VIP:80 gave {after} connection(s) on the fwmark service, not 1"
        ));
    }
    ok("connect to 10.0.0.100:80: the fwmark service's destination has 1 connection");

    connect(VIP, 81)?;
    connect(DIRECTOR, 80)?;
    let unmarked = entries()?;
    if unmarked != 1 {
        return Err(format!(
            "FAIL an unmarked connection reached the fwmark service: {unmarked} connection(s)"
        ));
    }
    ok("connect to 10.0.0.100:81 and 10.0.0.2:80 succeed locally; the fwmark service still has 1");

    match director.run(|| apply("d0", &marks)).map_err(|e| s(&e))? {
        Err(e) => ok(&format!("a second apply is refused: {e}")),
        Ok(used) => return Err(format!("FAIL a second apply on d0 succeeded ({used})")),
    }
    drop(listeners);
    Ok(log)
}
