//! Scheduler semantics, one test per scheduler, on small hand-checked cases.
//! (The lab checks the same code against the kernel: `fixtures/schedulers/`.)

use lvsdr_core::predict::{predict, sequential, Event};
use lvsdr_core::topology_file::from_toml;
use std::net::{IpAddr, Ipv4Addr};

fn topology(scheduler: &str, weights: &[u32], extra: &str) -> lvsdr_core::Topology {
    let mut text = format!(
        "[lan]\nsubnet = \"10.0.0.0/24\"\n[director]\naddress = \"10.0.0.2\"\nvip = \"10.0.0.10\"\n[[service]]\nport = 80\nscheduler = \"{scheduler}\"\n{extra}\nreal_server = [{}]\n",
        weights.iter().enumerate().map(|(i, w)| format!("{{ server = \"rs{}\", weight = {w} }}", i + 1)).collect::<Vec<_>>().join(", ")
    );
    for i in 0..weights.len() {
        text.push_str(&format!(
            "[[real_server]]\nname = \"rs{}\"\naddress = \"10.0.0.{}\"\nvip_on_lo = 32\n",
            i + 1,
            21 + i
        ));
    }
    from_toml(&text).unwrap()
}

fn picks(scheduler: &str, weights: &[u32], n: usize) -> Vec<String> {
    let t = topology(scheduler, weights, "");
    let p = predict(&t, &t.services[0], &sequential(n, 1, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))));
    p.pick_names().into_iter().map(|x| x.unwrap_or_else(|| "-".into())).collect()
}

fn counts(scheduler: &str, weights: &[u32], n: usize) -> Vec<usize> {
    let t = topology(scheduler, weights, "");
    let p = predict(&t, &t.services[0], &sequential(n, 1, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))));
    (1..=weights.len()).map(|i| p.counts[&format!("rs{i}")]).collect()
}

#[test]
fn rr_alternates_and_ignores_weights() {
    // Destinations are added at the head of the kernel's list: the last added goes first.
    assert_eq!(picks("rr", &[3, 1], 4), ["rs2", "rs1", "rs2", "rs1"]);
    assert_eq!(counts("rr", &[3, 1], 8), [4, 4]);
}

#[test]
fn rr_skips_quiesced_servers() {
    assert_eq!(counts("rr", &[0, 1, 1], 6), [0, 3, 3]);
}

#[test]
fn wrr_honours_weights_six_to_two() {
    assert_eq!(counts("wrr", &[3, 1], 8), [6, 2]);
    assert_eq!(picks("wrr", &[3, 1], 4), ["rs2", "rs1", "rs1", "rs1"]);
    assert_eq!(counts("wrr", &[4, 2], 6), [4, 2]);
}

#[test]
fn lc_and_wlc_balance_closed_connections() {
    // Every connection is closed before the next: inactive counts decide.
    assert_eq!(counts("lc", &[3, 1], 8), [4, 4]);
    assert_eq!(counts("wlc", &[3, 1], 8), [6, 2]);
}

#[test]
fn lc_counts_open_connections_first() {
    let t = topology("lc", &[1, 1], "");
    let events = vec![
        Event::Connect {
            client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
            port: 1,
        },
        Event::Connect {
            client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
            port: 2,
        },
        Event::Close { connection: 0 },
        Event::Connect {
            client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
            port: 3,
        },
    ];
    let p = predict(&t, &t.services[0], &events);
    // rs2 (list head) first, rs1 second; rs2's connection closed, so rs2 is least loaded.
    assert_eq!(p.pick_names(), [Some("rs2".into()), Some("rs1".into()), Some("rs2".into())]);
}

#[test]
fn sed_and_nq_prefer_the_heaviest_idle_server() {
    assert_eq!(counts("sed", &[3, 1], 4), [4, 0]);
    // nq takes the first idle server in the kernel's list (its head is the last
    // added, rs2) before it weighs anything: with every connection closed
    // before the next, all go to rs2 — unlike sed, which weighs first.
    assert_eq!(counts("nq", &[3, 1], 4), [0, 4]);
    assert_eq!(picks("nq", &[3, 1], 2), ["rs2", "rs2"]);
}

#[test]
fn fo_and_ovf_pick_the_highest_weight() {
    assert_eq!(counts("fo", &[1, 5, 2], 5), [0, 5, 0]);
    assert_eq!(counts("ovf", &[1, 5, 2], 5), [0, 5, 0]);
}

#[test]
fn sh_is_sticky_per_client_and_weighted() {
    let t = topology("sh", &[1, 1], "");
    let ev = sequential(20, 1, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)));
    let p = predict(&t, &t.services[0], &ev);
    let first = p.picks[0];
    assert!(p.picks.iter().all(|x| *x == first), "one client, one server");
    // With many clients the 3:1 weights show in the bucket table.
    let t = topology("sh", &[3, 1], "");
    let p = predict(&t, &t.services[0], &sequential(400, 400, IpAddr::V4(Ipv4Addr::new(10, 0, 1, 0))));
    assert!(p.counts["rs1"] > p.counts["rs2"] * 2, "{:?}", p.counts);
}

#[test]
fn sh_port_spreads_one_client() {
    let t = topology("sh", &[1, 1], "flags = [\"sh-port\"]");
    let p = predict(&t, &t.services[0], &sequential(20, 1, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))));
    assert!(p.counts["rs1"] > 0 && p.counts["rs2"] > 0, "{:?}", p.counts);
}

#[test]
fn sh_without_fallback_refuses_a_quiesced_bucket() {
    let t = topology("sh", &[1, 0], "");
    let p = predict(&t, &t.services[0], &sequential(50, 50, IpAddr::V4(Ipv4Addr::new(10, 0, 1, 0))));
    assert!(p.unscheduled > 0);
    let t = topology("sh", &[1, 0], "flags = [\"sh-fallback\"]");
    let p = predict(&t, &t.services[0], &sequential(50, 50, IpAddr::V4(Ipv4Addr::new(10, 0, 1, 0))));
    assert_eq!(p.unscheduled, 0);
    assert_eq!(p.counts["rs2"], 0);
}

#[test]
fn dh_sends_everything_for_one_vip_to_one_server() {
    let c = counts("dh", &[1, 1, 1], 9);
    assert_eq!(c.iter().filter(|x| **x == 9).count(), 1);
}

#[test]
fn mh_is_consistent_and_uses_every_server() {
    let t = topology("mh", &[1, 1, 1], "");
    let p = predict(&t, &t.services[0], &sequential(300, 300, IpAddr::V4(Ipv4Addr::new(10, 0, 1, 0))));
    assert!(p.counts.values().all(|c| *c > 50), "{:?}", p.counts);
    let again = predict(&t, &t.services[0], &sequential(300, 300, IpAddr::V4(Ipv4Addr::new(10, 0, 1, 0))));
    assert_eq!(p.picks, again.picks);
}

/// hsiphash_1u32 with ip_vs_mh.c's first key. These values are the ones
/// whose Maglev table matched the kernel connection by connection in the lab
/// (`fixtures/schedulers/mh*.toml`); they pin that agreement down.
#[test]
fn mh_hash_matches_the_kernel_siphash() {
    let key = [2_654_435_761, 2_654_435_761];
    let h = |v| lvsdr_core::predict::maglev::hsiphash_u32(v, &key);
    assert_eq!(h(0), 492_468_162);
    assert_eq!(h(1), 384_591_538);
    assert_eq!(h(0xC0A8_0164), 3_244_109_048);
}

#[test]
fn persistence_pins_a_client() {
    let t = topology("rr", &[1, 1], "persistence = 300");
    let p = predict(&t, &t.services[0], &sequential(6, 1, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))));
    assert!(p.picks.iter().all(|x| *x == p.picks[0]));
    let p = predict(&t, &t.services[0], &sequential(6, 2, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))));
    assert_ne!(p.picks[0], p.picks[1]);
}

#[test]
fn weight_changes_and_removals_apply() {
    let t = topology("rr", &[1, 1], "");
    let c = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
    let events = vec![
        Event::SetWeight {
            server: "rs2".into(),
            weight: 0,
        },
        Event::Connect { client: c, port: 1 },
        Event::Connect { client: c, port: 2 },
        Event::Remove { server: "rs1".into() },
        Event::Connect { client: c, port: 3 },
    ];
    let p = predict(&t, &t.services[0], &events);
    assert_eq!(p.pick_names(), [Some("rs1".into()), Some("rs1".into()), None]);
    assert_eq!(p.unscheduled, 1);
}

#[test]
fn every_scheduler_runs() {
    for s in lvsdr_core::model::Scheduler::ALL {
        let t = topology(s.name(), &[2, 1], "");
        let p = predict(&t, &t.services[0], &sequential(10, 3, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))));
        assert_eq!(p.picks.len(), 10, "{}", s.name());
        assert_eq!(p.unscheduled, 0, "{}", s.name());
    }
}

fn held_picks(scheduler: &str, weights: &[u32], n: usize, hold: usize) -> Vec<String> {
    let t = topology(scheduler, weights, "");
    let events = lvsdr_core::predict::held(n, 1, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)), hold);
    let p = predict(&t, &t.services[0], &events);
    p.pick_names().into_iter().map(|x| x.unwrap_or_else(|| "-".into())).collect()
}

#[test]
fn held_closes_each_connection_after_the_next_ones_open() {
    let e = lvsdr_core::predict::held(4, 1, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)), 2);
    let shape: Vec<String> = e
        .iter()
        .map(|e| match e {
            Event::Connect { port, .. } => format!("open {}", port - 40000),
            Event::Close { connection } => format!("close {connection}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(shape, ["open 0", "open 1", "close 0", "open 2", "close 1", "open 3"]);
    assert_eq!(
        lvsdr_core::predict::held(3, 1, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)), 0),
        sequential(3, 1, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))),
        "hold 0 is sequential"
    );
}

#[test]
fn ovf_keeps_a_server_until_its_active_count_exceeds_its_weight() {
    // ip_vs_ovf.c skips a server only when activeconns > weight: rs1 (weight 2)
    // takes three held connections, rs2 (weight 1) two, and then nobody is left.
    assert_eq!(held_picks("ovf", &[2, 1], 6, 6), ["rs1", "rs1", "rs1", "rs2", "rs2", "-"]);
    // With two held, rs1's count never passes 2: it takes everything.
    assert_eq!(held_picks("ovf", &[2, 1], 6, 2), ["rs1"; 6]);
}

#[test]
fn sed_and_nq_spread_held_connections_by_weight() {
    // Closed first, sed and nq always find every server idle and pick the same one.
    assert_eq!(held_picks("sed", &[3, 1], 4, 0), ["rs1"; 4]);
    // Held, the active counts decide: (active + 1) / weight.
    assert_eq!(held_picks("sed", &[3, 1], 4, 4), ["rs1", "rs1", "rs2", "rs1"]);
}

#[test]
fn lblcr_adds_the_least_loaded_server_to_its_set_when_its_pick_is_overloaded() {
    // Weights 1:1. The first pick (rs2, the list head) stays until its 2 held
    // connections exceed its weight while rs1 has fewer than half of its own:
    // rs1 joins the set, at its head. From then on the pick is the set's least
    // loaded member, the first of equals: rs1 at 1 and at 2 (2 against 2), then
    // rs2 (2 against 3); neither is overloaded, as nobody is under half.
    assert_eq!(held_picks("lblcr", &[1, 1], 6, 6), ["rs2", "rs2", "rs1", "rs1", "rs1", "rs2"]);
    // lblc keeps one server: once rs1 has replaced rs2, it stays (rs2 is not under half).
    assert_eq!(held_picks("lblc", &[1, 1], 6, 6), ["rs2", "rs2", "rs1", "rs1", "rs1", "rs1"]);
}
