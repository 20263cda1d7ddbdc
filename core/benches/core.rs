//! Core benchmarks: lint at scale (1,000 services × 32 real servers) and
//! predict at scale (one million connections, wrr and mh over 32 servers).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use lvsdr_core::predict::{predict, Event};
use std::hint::black_box;
use std::net::Ipv4Addr;

fn big_topology(services: usize, servers: usize) -> String {
    let mut t = String::from("[lan]\nsubnet = \"10.0.0.0/16\"\n[director]\naddress = \"10.0.0.2\"\nvip = \"10.0.0.10\"\nsysctl = { \"net.ipv4.conf.all.send_redirects\" = 0, \"net.ipv4.conf.eth0.send_redirects\" = 0 }\n");
    for s in 0..services {
        t.push_str(&format!(
            "[[service]]\nport = {}\nscheduler = \"{}\"\nreal_server = [",
            1000 + s,
            if s % 2 == 0 { "wrr" } else { "rr" }
        ));
        for r in 0..servers {
            t.push_str(&format!("{{ server = \"rs{}\", weight = {} }},", r + 1, 1 + r % 4));
        }
        t.push_str("]\n");
    }
    for r in 0..servers {
        t.push_str(&format!(
            "[[real_server]]\nname = \"rs{}\"\naddress = \"10.0.1.{}\"\nvip_on_lo = 32\nsysctl = {{ \"net.ipv4.conf.all.arp_ignore\" = 1, \"net.ipv4.conf.all.arp_announce\" = 2 }}\n",
            r + 1,
            r + 10
        ));
    }
    t
}

/// 1,000 services over 200 VIPs (five ports each), 32 real servers per
/// service from a pool of 640 (each group of ten VIPs shares 32 servers).
fn many_vips_topology() -> String {
    let vip = |v: usize| format!("10.1.{}.{}", v / 250, v % 250 + 1);
    let vips: Vec<String> = (0..200).map(|v| format!("\"{}\"", vip(v))).collect();
    let mut t = format!(
        "version = 2\n[lan]\nsubnet = \"10.0.0.0/8\"\n[director]\naddress = \"10.0.0.2\"\nvip = [{}]\nsysctl = {{ \"net.ipv4.conf.all.send_redirects\" = 0, \"net.ipv4.conf.eth0.send_redirects\" = 0 }}\n",
        vips.join(", ")
    );
    for s in 0..1000 {
        let v = s / 5;
        t.push_str(&format!(
            "[[service]]\nvip = \"{}\"\nport = {}\nscheduler = \"wrr\"\nreal_server = [",
            vip(v),
            80 + s % 5
        ));
        for r in 0..32 {
            t.push_str(&format!("{{ server = \"rs{}\", weight = {} }},", (v / 10) * 32 + r + 1, 1 + r % 4));
        }
        t.push_str("]\n");
    }
    for r in 0..640 {
        t.push_str(&format!(
            "[[real_server]]\nname = \"rs{}\"\naddress = \"10.0.{}.{}\"\nvip_on_lo = 32\nsysctl = {{ \"net.ipv4.conf.all.arp_ignore\" = 1, \"net.ipv4.conf.all.arp_announce\" = 2 }}\n",
            r + 1,
            2 + r / 250,
            r % 250 + 1
        ));
    }
    t
}

/// An `ipvsadm -Sn` dump of 12,000 lines: 375 services on 125 VIPs, 31 real servers each.
fn big_dump() -> String {
    let mut d = String::new();
    for s in 0..375 {
        let vip = format!("198.51.{}.{}:{}", 100 + s / 3 / 250, (s / 3) % 250 + 1, [80, 443, 25][s % 3]);
        d.push_str(&format!("-A -t {vip} -s wrr\n"));
        for r in 0..31 {
            d.push_str(&format!(
                "-a -t {vip} -r 10.0.{}.{}:{} -g -w {}\n",
                s % 40,
                r + 1,
                [80, 443, 25][s % 3],
                1 + r % 3
            ));
        }
    }
    d
}

fn scheduler_topology(scheduler: &str) -> lvsdr_core::Topology {
    let text = big_topology(1, 32).replace("scheduler = \"wrr\"", &format!("scheduler = \"{scheduler}\""));
    lvsdr_core::topology_file::from_toml(&text).unwrap()
}

fn million_connections() -> Vec<Event> {
    (0..1_000_000u32)
        .map(|i| Event::Connect {
            client: std::net::IpAddr::V4(Ipv4Addr::from(0x0a02_0000 + (i % 50_000))),
            port: (i % 60_000) as u16 + 1024,
        })
        .collect()
}

/// `ipvsadm -S -n` of 100,000 services, each on its own VIP in 10.0.0.0/16
/// (and up), with two real servers of twenty.
fn hundred_thousand_services() -> String {
    let mut t = String::with_capacity(100_000 * 120);
    for i in 0..100_000u32 {
        let vip = Ipv4Addr::from(0x0a00_0000 + i);
        t.push_str(&format!("-A -t {vip}:80 -s wrr\n"));
        for r in [i % 20, (i + 7) % 20] {
            t.push_str(&format!("-a -t {vip}:80 -r 192.168.{}.{}:80 -g -w 1\n", 1 + r / 200, 10 + r));
        }
    }
    t
}

fn benches(c: &mut Criterion) {
    let text = big_topology(1000, 32);
    let topology = lvsdr_core::topology_file::from_toml(&text).unwrap();
    let mut g = c.benchmark_group("lint");
    g.sample_size(20);
    g.bench_function("parse 1000x32 (baseline)", |b| {
        b.iter(|| lvsdr_core::topology_file::from_toml(black_box(&text)).unwrap())
    });
    g.bench_function("lint 1000x32", |b| b.iter(|| lvsdr_core::lint::lint(black_box(&topology), &text)));
    let many = many_vips_topology();
    let many_t = lvsdr_core::topology_file::from_toml(&many).unwrap();
    assert_eq!(many_t.vips().len(), 200);
    g.bench_function("lint 1000x32 over 200 VIPs", |b| {
        b.iter(|| lvsdr_core::lint::lint(black_box(&many_t), &many))
    });
    let dump = big_dump();
    assert_eq!(dump.lines().count(), 12_000);
    g.bench_function("import 12000-line ipvsadm -Sn dump", |b| {
        b.iter(|| lvsdr_core::import::ipvsadm_save::import(black_box(&dump)).unwrap())
    });
    g.bench_function("analyze 12000-line dump (import + lint)", |b| {
        b.iter(|| lvsdr_core::analyze(black_box(&dump), None))
    });
    let analysis = lvsdr_core::analyze(&dump, None);
    g.bench_function("JSON findings of the 12000-line dump", |b| {
        b.iter(|| serde_json::to_string_pretty(&lvsdr_core::diagnostic::locate_all(black_box(&analysis.diagnostics), &dump)).unwrap())
    });
    g.bench_function("human findings of the 12000-line dump", |b| {
        b.iter(|| {
            lvsdr_core::diagnostic::render_human(
                black_box(&analysis.diagnostics),
                &dump,
                "dump",
                lvsdr_core::diagnostic::Style { color: false },
            )
        })
    });
    g.finish();

    // Issue #27: the dump reader and lint are linear. 100,000 services, one
    // VIP each across a /16 (the shape that put every VIP in one bucket of the
    // FxHash tables: 20,000 services took 13 s), against the 12,000-line dump.
    let huge = hundred_thousand_services();
    let mut g = c.benchmark_group("scale");
    g.sample_size(10);
    g.bench_function("analyze 12000-line dump (baseline)", |b| {
        b.iter(|| lvsdr_core::analyze(black_box(&dump), None))
    });
    g.bench_function("analyze 100,000-service dump", |b| {
        b.iter(|| lvsdr_core::analyze(black_box(&huge), None))
    });
    g.finish();

    let events = million_connections();
    let mut g = c.benchmark_group("predict");
    g.sample_size(10);
    for s in ["rr", "wrr", "mh"] {
        let t = scheduler_topology(s);
        g.bench_function(format!("{s} 32 servers, 1M connections"), |b| {
            b.iter_batched(|| (), |_| predict(black_box(&t), &t.services[0], &events), BatchSize::PerIteration)
        });
    }
    g.finish();
}

criterion_group!(core_benches, benches);
criterion_main!(core_benches);
