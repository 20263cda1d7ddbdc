//! Exercises every call of the IPVS client against the running kernel, in a
//! namespace of its own, and checks that what it reads back is what it
//! wrote: add, edit and delete services and destinations, list, flush and
//! version. `lvsdr ipvs-check` runs it; the lab tests run it on the lab's kernel.

use super::{Dest, Family, ForwardMethod, Ipvs, Netmask, Protocol, Service, ServiceFlags, ServiceId};
use crate::netns::NetNs;
use std::net::{IpAddr, Ipv4Addr};

fn ensure(cond: bool, what: &str, log: &mut Vec<String>) -> Result<(), String> {
    if cond {
        log.push(format!("ok   {what}"));
        Ok(())
    } else {
        Err(format!("FAIL {what}"))
    }
}

/// Runs the check; returns one line per step, or the first failure.
pub fn run() -> Result<Vec<String>, String> {
    let ns = NetNs::create(&format!("{}ipvs-check", crate::netns::unique_prefix())).map_err(|e| e.to_string())?;
    ns.run(|| -> Result<Vec<String>, String> {
        let mut log = Vec::new();
        // (NetNs::create brought lo up: without it the kernel refuses every destination.)
        let e = |e: super::IpvsError| e.to_string();
        let ipvs = Ipvs::connect().map_err(e)?;
        let version = ipvs.version().map_err(e)?;
        ensure(version.starts_with('1'), &format!("version {version}"), &mut log)?;
        ipvs.flush().map_err(e)?;
        ensure(ipvs.services().map_err(e)?.is_empty(), "flush leaves no service", &mut log)?;
        let id = ServiceId::Port {
            protocol: Protocol::Tcp,
            address: IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)),
            port: 80,
        };
        let mut svc = Service {
            id,
            scheduler: "wrr".into(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: Netmask::host(Family::Ipv4),
        };
        ipvs.add_service(&svc).map_err(e)?;
        let got = ipvs.services().map_err(e)?;
        ensure(
            got.len() == 1 && got.first().is_some_and(|g| g.service.scheduler == "wrr" && g.service.id == id),
            "add service (ipvsadm -A), read back",
            &mut log,
        )?;
        ensure(ipvs.add_service(&svc).is_err(), "adding it twice is refused", &mut log)?;
        svc.scheduler = "sh".into();
        svc.flags = ServiceFlags::PERSISTENT | ServiceFlags::SCHED2;
        svc.timeout = 300;
        svc.netmask = Netmask::V4(Ipv4Addr::new(255, 255, 255, 0));
        ipvs.edit_service(&svc).map_err(e)?;
        let edited = ipvs.services().map_err(e)?;
        ensure(
            edited.first().is_some_and(|g| {
                let g = &g.service;
                g.scheduler == "sh" && g.flags.settings() == svc.flags && g.timeout == 300 && g.netmask == svc.netmask
            }),
            "edit service (ipvsadm -E): scheduler, flags, persistence",
            &mut log,
        )?;
        let d1 = Dest {
            address: IpAddr::V4(Ipv4Addr::new(10, 9, 0, 11)),
            port: 80,
            forward: ForwardMethod::Route,
            weight: 3,
            upper_threshold: 100,
            lower_threshold: 10,
        };
        let d2 = Dest {
            address: IpAddr::V4(Ipv4Addr::new(10, 9, 0, 12)),
            port: 80,
            forward: ForwardMethod::Route,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        ipvs.add_dest(&id, &d1).map_err(e)?;
        ipvs.add_dest(&id, &d2).map_err(e)?;
        let dests = ipvs.dests(&id).map_err(e)?;
        ensure(
            dests.len() == 2 && dests.iter().any(|d| d.dest == d1) && dests.iter().any(|d| d.dest == d2),
            "add destinations (ipvsadm -a), read back with thresholds",
            &mut log,
        )?;
        ensure(
            dests.first().is_some_and(|d| d.dest.address == d2.address),
            "the kernel lists the last added destination first",
            &mut log,
        )?;
        let mut d1b = d1.clone();
        d1b.weight = 0;
        ipvs.edit_dest(&id, &d1b).map_err(e)?;
        ensure(
            ipvs.dests(&id)
                .map_err(e)?
                .iter()
                .any(|d| d.dest.address == d1.address && d.dest.weight == 0),
            "edit destination (ipvsadm -e): quiesce",
            &mut log,
        )?;
        ipvs.delete_dest(&id, &d2).map_err(e)?;
        ensure(ipvs.dests(&id).map_err(e)?.len() == 1, "delete destination (ipvsadm -d)", &mut log)?;
        ipvs.delete_service(&id).map_err(e)?;
        ensure(ipvs.services().map_err(e)?.is_empty(), "delete service (ipvsadm -D)", &mut log)?;
        ensure(ipvs.delete_service(&id).is_err(), "deleting a missing service is refused", &mut log)?;
        let fw = ServiceId::Fwmark {
            mark: 7,
            family: Family::Ipv4,
        };
        ipvs.add_service(&Service {
            id: fw,
            scheduler: "rr".into(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: Netmask::host(Family::Ipv4),
        })
        .map_err(e)?;
        ensure(
            ipvs.services().map_err(e)?.iter().any(|s| s.service.id == fw),
            "fwmark service (ipvsadm -A -f 7)",
            &mut log,
        )?;
        let dns = ServiceId::Port {
            protocol: Protocol::Udp,
            address: IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)),
            port: 53,
        };
        ipvs.add_service(&Service {
            id: dns,
            scheduler: "rr".into(),
            flags: ServiceFlags::ONE_PACKET,
            timeout: 0,
            netmask: Netmask::host(Family::Ipv4),
        })
        .map_err(e)?;
        let dns_tcp = ServiceId::Port {
            protocol: Protocol::Tcp,
            address: IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)),
            port: 53,
        };
        ipvs.add_service(&Service {
            id: dns_tcp,
            scheduler: "wrr".into(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: Netmask::host(Family::Ipv4),
        })
        .map_err(e)?;
        let listed = ipvs.services().map_err(e)?;
        let find = |id: ServiceId| listed.iter().find(|s| s.service.id == id).map(|s| &s.service);
        ensure(
            find(dns).is_some_and(|s| s.flags.settings() == ServiceFlags::ONE_PACKET && s.scheduler == "rr"),
            "one-packet UDP service (ipvsadm -A -u … -o), read back with its flag",
            &mut log,
        )?;
        ensure(
            find(dns_tcp).is_some_and(|s| s.flags.settings() == ServiceFlags::default() && s.scheduler == "wrr"),
            "tcp/53 beside udp/53 on the same address: two services, told apart by protocol",
            &mut log,
        )?;
        ipvs.flush().map_err(e)?;
        ensure(ipvs.services().map_err(e)?.is_empty(), "flush (ipvsadm -C)", &mut log)?;
        // A restore: 600 services of 4 destinations, pipelined, read back whole.
        let table: Vec<(Service, Vec<Dest>)> = (0..600u32)
            .map(|i| {
                let id = ServiceId::Port {
                    protocol: Protocol::Tcp,
                    address: IpAddr::V4(Ipv4Addr::from(0x0a60_0000 + i / 5)),
                    port: 80 + (i % 5) as u16,
                };
                let dests = (0..4u8)
                    .map(|k| Dest {
                        address: IpAddr::V4(Ipv4Addr::new(10, 9, 1, 10 + k)),
                        port: 80 + (i % 5) as u16,
                        forward: ForwardMethod::Route,
                        weight: u32::from(k) + 1,
                        upper_threshold: 0,
                        lower_threshold: 0,
                    })
                    .collect();
                (
                    Service {
                        id,
                        scheduler: "wrr".into(),
                        flags: ServiceFlags::default(),
                        timeout: 0,
                        netmask: Netmask::host(Family::Ipv4),
                    },
                    dests,
                )
            })
            .collect();
        ipvs.restore(&table).map_err(e)?;
        let listed = ipvs.services().map_err(e)?;
        let all_there = listed.len() == table.len()
            && table.iter().all(|(s, dests)| {
                ipvs.dests(&s.id)
                    .is_ok_and(|got| got.len() == dests.len() && dests.iter().all(|d| got.iter().any(|g| g.dest == *d)))
            });
        ensure(
            all_there,
            "restore (ipvsadm -R): 600 services, 2,400 destinations, pipelined",
            &mut log,
        )?;
        let again = ipvs.restore(&table[..1]).map_err(e);
        ensure(
            again.as_ref().is_err_and(|m| m.contains("add service") && m.contains("already")),
            "a restore that adds a service twice says which request failed",
            &mut log,
        )?;
        ipvs.flush().map_err(e)?;
        Ok(log)
    })
    .map_err(|e| e.to_string())?
}
