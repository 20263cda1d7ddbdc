//! What one round of probes leaves to observe, read piece by piece: the
//! frames on the bridge's ports, the client's lanes of connections, the
//! neighbour entries for the VIPs, the IPVS table after the probes, and the
//! packet counters of links and tunnels.

use super::{step, Lab, LabError, VerifyOptions, PROBES_AT_ONCE, TUNNEL_DEVICE};
use crate::capture::legs;
use crate::netns::NetNs;
use crate::probe;
use crate::rtnl;
use lvsdr_core::names::HostName;
use lvsdr_core::plan::{HostPlan, LabPlan};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The VIPs the client talks to, each once: the neighbour entry of each is checked.
pub(super) trait ProbedVips {
    fn probed_vips(&self) -> Vec<IpAddr>;
}

impl ProbedVips for LabPlan {
    fn probed_vips(&self) -> Vec<IpAddr> {
        let mut vips: Vec<IpAddr> = self.probes.iter().map(|p| p.address).collect();
        vips.sort();
        vips.dedup();
        if vips.is_empty() {
            vips.push(self.vip);
        }
        vips
    }
}

impl Lab {
    /// Capture on every port of the bridge (`--pcap`): the frames of the
    /// planned connections, by their client ends, and of each service by its
    /// ends (its VIP and port, and NAT's director → real server leg).
    pub(super) fn capture_legs(&self) -> Result<legs::LegCapture, LabError> {
        let plan = &self.plan;
        let clients = plan
            .probes
            .iter()
            .flat_map(|p| &p.connections)
            .map(|c| SocketAddr::new(c.client, c.port));
        let services = plan
            .probes
            .iter()
            .map(|p| {
                let dests = plan.services.iter().filter(|s| s.name == p.service).flat_map(|s| &s.destinations);
                let ends = std::iter::once(SocketAddr::new(p.address, p.port))
                    .chain(dests.map(|d| SocketAddr::new(d.address, d.port)))
                    .collect();
                (p.service.clone(), ends)
            })
            .collect();
        self.lan
            .run(|| legs::LegCapture::start(&self.bridge_ports, clients, services))?
            .map_err(|source| LabError::Io {
                step: "lan: capturing on the bridge's ports (AF_PACKET)".into(),
                source,
            })
    }

    /// The client's lanes, one per probed service, saying what each does
    /// (one line in all past a summary's size).
    pub(super) fn lanes(&self, progress: &mut dyn FnMut(&str)) -> Vec<probe::Lane<'_>> {
        let plan = &self.plan;
        if plan.probes.len() > crate::report::SUMMARY_AFTER {
            let total: usize = plan.probes.iter().map(|p| p.connections.len()).sum();
            progress(&format!("client: {total} connections to {} services", plan.probes.len()));
        } else {
            for p in &plan.probes {
                progress(&format!(
                    "client: {} connections to {} ({}, {})",
                    p.connections.len(),
                    SocketAddr::new(p.address, p.port),
                    p.service,
                    match (p.overlap, plan.hold) {
                        (true, 0) => "overlapping after each SYN".to_string(),
                        (false, 0) => "one at a time: the scheduler counts open connections".to_string(),
                        (true, n) => format!("overlapping after each SYN, {n} held open"),
                        (false, n) => format!("one at a time, each held open until {n} more have opened"),
                    }
                ));
            }
        }
        plan.probes
            .iter()
            .map(|p| probe::Lane {
                service: &p.service,
                vip: p.address,
                port: p.port,
                kind: p.kind,
                connections: p.connections.iter().map(|c| (c.client, c.port)).collect(),
                at_once: if p.overlap { PROBES_AT_ONCE } else { 1 },
                hold: plan.hold,
            })
            .collect()
    }

    /// The IPVS table after the probes: its per-destination connection counts
    /// change at once. Its traffic statistics lag (a 2 s timer) and are
    /// polled only when asked for.
    pub(super) fn table_after_probes(
        &self,
        director: &HostPlan,
        options: &VerifyOptions,
        neighbours: &[Neighbour],
        progress: &mut dyn FnMut(&str),
    ) -> Result<super::IpvsTable, LabError> {
        let attempts: u64 = self.plan.probes.iter().map(|p| p.connections.len() as u64).sum();
        let started = Instant::now();
        let mut table = self.ipvs_table_of(&director.name)?;
        if !options.ipvs_stats {
            return Ok(table);
        }
        progress("director: polling IPVS statistics (refreshed every 2 s)");
        // When the client sent its traffic to another host's MAC, the director saw none of it:
        // one refresh of the counters is enough to show that.
        let arp_elsewhere = neighbours
            .iter()
            .any(|(_, n)| n.is_some() && *n != self.macs.get(&director.name).copied());
        let timeout = if arp_elsewhere {
            options.stats_timeout.min(Duration::from_millis(2500))
        } else {
            options.stats_timeout
        };
        while table.iter().map(|(s, _)| s.stats.conns).sum::<u64>() < attempts && started.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(100));
            table = self.ipvs_table_of(&director.name)?;
        }
        Ok(table)
    }

    /// Packets each LVS-TUN real server received on its tunnel device.
    pub(super) fn tunnel_packets(&self) -> Result<BTreeMap<HostName, u64>, LabError> {
        let mut out = BTreeMap::new();
        for h in self.plan.hosts.iter().filter(|h| h.tunnel) {
            let counters = link_counters(&self.hosts[&h.name], h.name.as_str(), TUNNEL_DEVICE)?;
            out.insert(h.name.clone(), counters.rx_packets);
        }
        Ok(out)
    }
}

/// A link's packet counters, inside its namespace (`ip -s link show DEV`).
pub(super) fn link_counters(ns: &NetNs, host: &str, device: &str) -> Result<rtnl::LinkCounters, LabError> {
    step(format!("{host}: {device} counters"), ns.run(|| rtnl::counters(device))?)
}

/// A VIP and the MAC a neighbour table holds for it, if any.
pub(super) type Neighbour = (IpAddr, Option<[u8; 6]>);

/// Whose MAC the observer (the client, or the router) holds for each VIP.
pub(super) fn neighbours_of(ns: &NetNs, observer: &str, vips: &[IpAddr]) -> Result<Vec<Neighbour>, LabError> {
    step(
        format!("{observer} neighbour table"),
        ns.run(|| {
            rtnl::with_handle(async |h| {
                let mut out = Vec::new();
                for vip in vips {
                    out.push((*vip, rtnl::neighbour(&h, *vip).await?));
                }
                Ok(out)
            })
        })?,
    )
}
