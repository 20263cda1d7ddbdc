//! Which real server the kernel picks for each new connection, following the
//! code of `net/netfilter/ipvs/ip_vs_<scheduler>.c` step by step.
//!
//! The kernel keeps a service's destinations in a list to which new
//! destinations are added at the *head* (`list_add_rcu` in
//! `__ip_vs_update_dest`), so the list order is the reverse of the order in
//! which they were added. The harness adds them in topology order, and so
//! does [`predict`].
//!
//! Least-connection schedulers depend on each destination's active and
//! inactive connection counts; [`Event::Close`] moves a connection from
//! active to inactive, as a TCP connection in TIME_WAIT is counted.

use crate::model::{Family, SchedFlag, Scheduler, ServiceKey, Topology, VirtualService};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// Something that happens to a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A new connection from a client address and source port.
    Connect { client: IpAddr, port: u16 },
    /// The `n`-th connection (0-based, counting `Connect` events) closes.
    Close { connection: usize },
    /// A real server's weight changes (0 quiesces it).
    SetWeight { server: String, weight: u32 },
    /// A real server is removed from the service.
    Remove { server: String },
}

/// The outcome for one service. In JSON, `picks` lists real server names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    pub service: String,
    pub scheduler: &'static str,
    /// The service's real servers, in topology order: what `picks` indexes.
    pub servers: Vec<String>,
    /// The real server picked for each `Connect` (an index into `servers`),
    /// or `None` if none was available.
    pub picks: Vec<Option<u32>>,
    pub counts: BTreeMap<String, usize>,
    pub unscheduled: usize,
}

impl Prediction {
    /// The name of the real server picked for the `i`-th connection.
    pub fn pick(&self, i: usize) -> Option<&str> {
        self.picks
            .get(i)
            .copied()
            .flatten()
            .and_then(|s| self.servers.get(s as usize))
            .map(String::as_str)
    }
    /// Every pick as a real server name.
    pub fn pick_names(&self) -> Vec<Option<String>> {
        (0..self.picks.len()).map(|i| self.pick(i).map(str::to_string)).collect()
    }
}

impl Serialize for Prediction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = serializer.serialize_struct("Prediction", 5)?;
        st.serialize_field("service", &self.service)?;
        st.serialize_field("scheduler", &self.scheduler)?;
        st.serialize_field("picks", &self.pick_names())?;
        st.serialize_field("counts", &self.counts)?;
        st.serialize_field("unscheduled", &self.unscheduled)?;
        st.end()
    }
}

/// `n` connections, one after the other, each closed before the next one
/// opens; from `clients` client addresses in turn, starting at `first_client`,
/// with source ports counting up from 40000.
pub fn sequential(n: usize, clients: usize, first_client: IpAddr) -> Vec<Event> {
    held(n, clients, first_client, 0)
}

/// The same `n` connections, each held open until `hold` later ones have
/// opened: connection `i - hold` closes just before connection `i` opens, so
/// that `hold` connections are established (the kernel's *active* count)
/// when each new one is scheduled. `hold` 0 closes each before the next
/// opens, as [`sequential`]; `hold >= n` keeps every one open to the end.
pub fn held(n: usize, clients: usize, first_client: IpAddr, hold: usize) -> Vec<Event> {
    let clients = clients.max(1);
    let mut events = Vec::with_capacity(n * 2);
    for i in 0..n {
        if hold > 0 && i >= hold {
            events.push(Event::Close { connection: i - hold });
        }
        let client = next_address(first_client, (i % clients) as u32);
        events.push(Event::Connect {
            client,
            port: 40000u16.wrapping_add(i as u16),
        });
        if hold == 0 {
            events.push(Event::Close { connection: i });
        }
    }
    events
}

/// The address `n` above `ip` (the lab's extra client addresses).
pub fn next_address(ip: IpAddr, n: u32) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(n))),
        IpAddr::V6(a) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(a).wrapping_add(u128::from(n)))),
    }
}

/// The 32 bits the kernel's hashing schedulers (sh, dh, mh, lblc) take from
/// an address, in host order: IPv4 as is, IPv6 as the XOR of its four words
/// (`addr->ip6[0] ^ addr->ip6[1] ^ addr->ip6[2] ^ addr->ip6[3]`).
pub fn fold(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => a
            .octets()
            .chunks_exact(4)
            .fold(0, |acc, w| acc ^ u32::from_be_bytes([w[0], w[1], w[2], w[3]])),
    }
}

/// An address masked to a prefix, as persistence templates key clients.
fn masked(ip: IpAddr, prefix: u8) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a) & crate::model::v4_mask(prefix)),
        IpAddr::V6(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            u128::from(a) & m
        }
    }
}

#[derive(Debug, Clone)]
struct Dest {
    /// Position in the topology's destination list (stable across removals).
    id: u32,
    name: String,
    address: IpAddr,
    port: u16,
    weight: i64,
    active: i64,
    inactive: i64,
}

impl Dest {
    /// `ip_vs_dest_conn_overhead`: an active connection weighs 256 inactive ones.
    fn overhead(&self) -> i64 {
        (self.active << 8) + self.inactive
    }
}

/// The scheduler's own state between connections.
struct State {
    /// Kernel list order.
    dests: Vec<Dest>,
    scheduler: Scheduler,
    flags: u32,
    /// rr/wrr: index of the last pick (`None` = list head).
    cursor: Option<usize>,
    wrr_cw: i64,
    wrr_mw: i64,
    wrr_di: i64,
    /// sh/dh: 256 buckets of dest names.
    buckets: Vec<Option<String>>,
    mh: Option<crate::predict::maglev::Table>,
    /// lblcr: the cache entry's set of servers (their ids), the newest first,
    /// for the one destination address every connection has (the VIP).
    set: Vec<u32>,
}

const GOLDEN_RATIO_32: u32 = 0x61C8_8647;
const SH_TAB_BITS: u32 = 8;
const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;

fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl State {
    /// Builds the state the way the kernel does: an empty service, then one
    /// `add_dest` per destination in topology order, each inserted at the
    /// head of the list and followed by the scheduler's `add_dest` hook
    /// (wrr's current weight depends on that history).
    fn new(topology: &Topology, service: &VirtualService) -> State {
        let mut s = State {
            dests: Vec::with_capacity(service.destinations.len()),
            scheduler: service.scheduler.value,
            flags: service.flag_bits(),
            cursor: None,
            wrr_cw: 0,
            wrr_mw: 0,
            wrr_di: 1,
            buckets: vec![],
            mh: None,
            set: vec![],
        };
        let last = service.destinations.len().saturating_sub(1);
        for (i, d) in service.destinations.iter().enumerate() {
            s.dests.insert(
                0,
                Dest {
                    id: i as u32,
                    name: d.server.value.to_string(),
                    address: topology
                        .real_server(&d.server.value)
                        .and_then(|r| r.address.of(service.family))
                        .map(|a| a.value)
                        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                    port: d.port.value,
                    weight: i64::from(d.weight.value),
                    active: 0,
                    inactive: 0,
                },
            );
            // Only wrr carries state across additions; the table-based
            // schedulers rebuild from scratch, so only the last rebuild counts.
            if s.scheduler == Scheduler::Wrr || i == last {
                s.dests_changed();
            }
        }
        s
    }

    /// What the schedulers' add_dest/del_dest/upd_dest hooks do.
    fn dests_changed(&mut self) {
        match self.scheduler {
            Scheduler::Wrr => {
                self.cursor = None;
                let g = self
                    .dests
                    .iter()
                    .map(|d| d.weight)
                    .filter(|w| *w > 0)
                    .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
                self.wrr_di = if g > 0 { g } else { 1 };
                self.wrr_mw = self.dests.iter().map(|d| d.weight).max().unwrap_or(0).max(0) - (self.wrr_di - 1);
                if self.wrr_cw > self.wrr_mw || self.wrr_cw == 0 {
                    self.wrr_cw = self.wrr_mw;
                } else if self.wrr_di > 1 {
                    self.wrr_cw = (self.wrr_cw / self.wrr_di) * self.wrr_di + 1;
                }
            }
            Scheduler::Sh | Scheduler::Dh => {
                self.buckets = vec![None; SH_TAB_SIZE];
                if self.dests.is_empty() {
                    return;
                }
                let mut p = 0;
                let mut count = 0;
                for b in self.buckets.iter_mut() {
                    let d = &self.dests[p];
                    *b = Some(d.name.clone());
                    count += 1;
                    if self.scheduler == Scheduler::Dh || count >= d.weight {
                        p = (p + 1) % self.dests.len();
                        count = 0;
                    }
                }
            }
            Scheduler::Mh => {
                let entries: Vec<(IpAddr, u16, i64)> = self.dests.iter().map(|d| (d.address, d.port, d.weight)).collect();
                self.mh = Some(maglev::Table::build(&entries));
            }
            Scheduler::Rr if self.cursor.is_some_and(|c| c >= self.dests.len()) => {
                self.cursor = None;
            }
            _ => {}
        }
    }

    fn available(&self, i: usize) -> bool {
        self.dests[i].weight > 0
    }

    fn schedule(&mut self, client: IpAddr, port: u16, vip: IpAddr) -> Option<usize> {
        match self.scheduler {
            Scheduler::Rr => self.rr(),
            Scheduler::Wrr => self.wrr(),
            Scheduler::Lc => self.lc(),
            Scheduler::Wlc => self.weighted_least(Dest::overhead),
            Scheduler::Sed => self.weighted_least(|d| d.active + 1),
            Scheduler::Nq => self.nq(),
            Scheduler::Fo => self.heaviest(|_| true),
            // ip_vs_ovf.c skips a server whose active count *exceeds* its weight.
            Scheduler::Ovf => self.heaviest(|d| d.active <= d.weight),
            Scheduler::Sh => self.sh(client, port),
            Scheduler::Dh => self.dh(vip),
            Scheduler::Mh => {
                let port = if self.flags & SchedFlag::MhPort.bits() != 0 { port } else { 0 };
                let fallback = self.flags & SchedFlag::MhFallback.bits() != 0;
                let table = self.mh.as_ref()?;
                table.lookup(client, port, fallback, |i| self.dests.get(i).is_some_and(|d| d.weight > 0))
            }
            Scheduler::Lblc => self.lblc(),
            Scheduler::Lblcr => self.lblcr(),
        }
    }

    /// rr: `list_for_each_entry_continue` from the last pick, wrapping once.
    fn rr(&mut self) -> Option<usize> {
        let n = self.dests.len();
        let start = self.cursor.map(|c| c + 1).unwrap_or(0);
        let i = (0..n).map(|k| (start + k) % n).find(|i| self.available(*i))?;
        self.cursor = Some(i);
        Some(i)
    }

    /// lc: the least connection overhead, the first of equals.
    fn lc(&self) -> Option<usize> {
        self.dests
            .iter()
            .enumerate()
            .filter(|(_, d)| d.weight > 0)
            .fold(None, |best: Option<(usize, i64)>, (i, d)| match best {
                Some((_, b)) if d.overhead() >= b => best,
                _ => Some((i, d.overhead())),
            })
            .map(|(i, _)| i)
    }

    /// The least `overhead` for its weight (wlc with the connection
    /// overhead, sed with active + 1), the first of equals.
    fn weighted_least(&self, overhead: impl Fn(&Dest) -> i64) -> Option<usize> {
        let mut least: Option<(usize, i64)> = None;
        for (i, d) in self.dests.iter().enumerate().filter(|(_, d)| d.weight > 0) {
            let doh = overhead(d);
            match least {
                None => least = Some((i, doh)),
                Some((l, loh)) if loh * d.weight > doh * self.dests[l].weight => least = Some((i, doh)),
                _ => {}
            }
        }
        least.map(|(i, _)| i)
    }

    /// nq: the first idle server, else the least active + 1 for its weight,
    /// the last of equals.
    fn nq(&self) -> Option<usize> {
        let mut least: Option<(usize, i64)> = None;
        for (i, d) in self.dests.iter().enumerate().filter(|(_, d)| d.weight > 0) {
            let doh = d.active + 1;
            if d.active == 0 {
                return Some(i);
            }
            match least {
                Some((l, loh)) if loh * d.weight <= doh * self.dests[l].weight => {}
                _ => least = Some((i, doh)),
            }
        }
        least.map(|(i, _)| i)
    }

    /// fo and ovf: the heaviest server that `may` take the connection, the first of equals.
    fn heaviest(&self, may: impl Fn(&Dest) -> bool) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, d) in self.dests.iter().enumerate() {
            if d.weight > 0 && may(d) && best.is_none_or(|b| d.weight > self.dests[b].weight) {
                best = Some(i);
            }
        }
        best
    }

    /// sh: the bucket of the client's address (and port, with `sh-port`);
    /// with `sh-fallback`, the next available bucket around the table.
    fn sh(&self, client: IpAddr, port: u16) -> Option<usize> {
        let port = if self.flags & SchedFlag::ShPort.bits() != 0 { port } else { 0 };
        let key = |offset: u32| {
            ((offset.wrapping_add(hash_32(u32::from(port).wrapping_add(fold(client)), SH_TAB_BITS))) as usize) & (SH_TAB_SIZE - 1)
        };
        let pick = |h: usize| {
            self.buckets[h]
                .as_ref()
                .and_then(|name| self.dests.iter().position(|d| &d.name == name))
        };
        let first = pick(key(0))?;
        if self.available(first) {
            return Some(first);
        }
        if self.flags & SchedFlag::ShFallback.bits() == 0 {
            return None;
        }
        let ihash = key(0) as u32;
        (0..SH_TAB_SIZE as u32)
            .filter_map(|offset| pick(key((offset + ihash) % SH_TAB_SIZE as u32)))
            .find(|i| self.available(*i))
    }

    /// dh: the bucket of the destination address. Kernels since 6.x hash it
    /// with hash_32, as sh does.
    fn dh(&self, vip: IpAddr) -> Option<usize> {
        let h = hash_32(fold(vip), SH_TAB_BITS) as usize;
        let name = self.buckets.get(h)?.as_ref()?;
        let i = self.dests.iter().position(|d| &d.name == name)?;
        self.available(i).then_some(i)
    }

    /// lblc: with one VIP every connection has the same destination address.
    /// The first pick is wlc's, and the entry then sticks while that server
    /// is not overloaded.
    fn lblc(&mut self) -> Option<usize> {
        match self.cursor {
            Some(c) if c < self.dests.len() && self.available(c) && !self.overloaded(c) => Some(c),
            _ => {
                self.cursor = self.weighted_least(Dest::overhead);
                self.cursor
            }
        }
    }

    /// lblcr: the entry holds a set of servers (ip_vs_lblcr.c). The pick is
    /// the set's weighted least-loaded member while that one is not
    /// overloaded; otherwise wlc's choice over all, which joins the set at its head.
    fn lblcr(&mut self) -> Option<usize> {
        if let Some(m) = self.set_min() {
            if !self.overloaded(m) {
                return Some(m);
            }
        }
        let least = self.weighted_least(Dest::overhead)?;
        let id = self.dests[least].id;
        if !self.set.contains(&id) {
            self.set.insert(0, id);
        }
        Some(least)
    }

    /// lblcr's `ip_vs_dest_set_min`: the first member with a weight, then
    /// any later member with less overhead for its weight.
    fn set_min(&self) -> Option<usize> {
        let mut members = self.set.iter().filter_map(|id| self.dests.iter().position(|d| d.id == *id));
        let mut least = members.find(|i| self.dests[*i].weight > 0)?;
        for i in members {
            let (d, l) = (&self.dests[i], &self.dests[least]);
            if l.overhead() * d.weight > d.overhead() * l.weight {
                least = i;
            }
        }
        Some(least)
    }

    /// lblc's and lblcr's `is_overloaded`: more active connections than its
    /// weight, while another server has fewer than half its weight.
    fn overloaded(&self, c: usize) -> bool {
        self.dests[c].active > self.dests[c].weight && self.dests.iter().any(|d| d.weight > 0 && 2 * d.active < d.weight)
    }

    fn wrr(&mut self) -> Option<usize> {
        let n = self.dests.len();
        if self.wrr_mw == 0 || n == 0 {
            return None;
        }
        let last = self.cursor;
        let mut stop: Option<usize> = None;
        let mut dest = self.cursor;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            let mut i = dest.map(|d| d + 1).unwrap_or(0);
            while i < n {
                if self.dests[i].weight >= self.wrr_cw {
                    self.cursor = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    self.cursor = Some(i);
                    return None;
                }
                i += 1;
            }
            dest = None;
            self.wrr_cw -= self.wrr_di;
            if self.wrr_cw <= 0 {
                self.wrr_cw = self.wrr_mw;
                if last_pass || last.is_none() {
                    self.cursor = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.wrr_cw <= self.wrr_di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}

/// Predicts the real server for every connection event on one service.
pub fn predict(topology: &Topology, service: &VirtualService, events: &[Event]) -> Prediction {
    let mut state = State::new(topology, service);
    // The destination address the packets carry: the service's VIP, or the first its marks cover.
    let vip = topology
        .service_vips(service)
        .first()
        .copied()
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let netmask = service.persistence.as_ref().map(|p| p.netmask.value);
    let servers: Vec<String> = service.destinations.iter().map(|d| d.server.value.to_string()).collect();
    let position = |state: &State, id: u32| state.dests.iter().position(|d| d.id == id);
    let mut templates: std::collections::HashMap<u128, u32> = std::collections::HashMap::new();
    let connects = events.iter().filter(|e| matches!(e, Event::Connect { .. })).count();
    let mut picks: Vec<Option<u32>> = Vec::with_capacity(connects);
    let mut per_server = vec![0usize; servers.len()];
    let mut unscheduled = 0;
    for event in events {
        match event {
            Event::Connect { client, port } => {
                let sticky = netmask.and_then(|m| {
                    let id = *templates.get(&masked(*client, m))?;
                    let i = position(&state, id)?;
                    state.available(i).then_some(i)
                });
                let chosen = sticky.or_else(|| state.schedule(*client, *port, vip));
                let id = chosen.map(|i| {
                    state.dests[i].active += 1;
                    state.dests[i].id
                });
                match id {
                    Some(id) => {
                        per_server[id as usize] += 1;
                        if let Some(m) = netmask {
                            templates.insert(masked(*client, m), id);
                        }
                    }
                    None => unscheduled += 1,
                }
                picks.push(id);
            }
            Event::Close { connection } => {
                // `picks` doubles as the table of open connections: a closed one is marked by
                // moving it to the inactive count once.
                if let Some(Some(id)) = picks.get(*connection).copied() {
                    if let Some(i) = position(&state, id) {
                        if state.dests[i].active > 0 {
                            state.dests[i].active -= 1;
                            state.dests[i].inactive += 1;
                        }
                    }
                }
            }
            Event::SetWeight { server, weight } => {
                if let Some(d) = state.dests.iter_mut().find(|d| &d.name == server) {
                    d.weight = i64::from(*weight);
                }
                state.dests_changed();
            }
            Event::Remove { server } => {
                state.dests.retain(|d| &d.name != server);
                state.cursor = None;
                state.dests_changed();
            }
        }
    }
    let counts = servers.iter().cloned().zip(per_server).collect();
    Prediction {
        service: topology.label(service),
        scheduler: service.scheduler.name(),
        servers,
        picks,
        counts,
        unscheduled,
    }
}

/// Predicts every service of a topology for the same events.
pub fn predict_all(topology: &Topology, events: &[Event]) -> Vec<Prediction> {
    topology.services.iter().map(|s| predict(topology, s, events)).collect()
}

/// Predicts every service for `n` sequential connections from `clients`
/// client addresses, each service from the client's address of its family.
pub fn predict_sequential(topology: &Topology, n: usize, clients: usize) -> Vec<Prediction> {
    predict_held(topology, n, clients, 0)
}

/// [`predict_sequential`] with each connection held open until `hold` later
/// ones have opened (see [`held`]).
pub fn predict_held(topology: &Topology, n: usize, clients: usize, hold: usize) -> Vec<Prediction> {
    let mut by_family: BTreeMap<Family, Vec<Event>> = BTreeMap::new();
    topology
        .services
        .iter()
        .map(|s| {
            let events = by_family.entry(s.family).or_insert_with(|| {
                topology
                    .client
                    .address
                    .of(s.family)
                    .map(|a| held(n, clients, a.value, hold))
                    .unwrap_or_default()
            });
            predict(topology, s, events)
        })
        .collect()
}

/// The port a service key listens on, for callers that build events.
pub fn service_port(key: &ServiceKey) -> Option<u16> {
    match key {
        ServiceKey::Port { port, .. } => Some(*port),
        ServiceKey::Fwmark(_) => None,
    }
}

pub mod maglev;
