//! Property tests: no input makes a reader panic, and generated topologies
//! survive the round trips through every format that can hold them.

use lvsdr_core::render::{render, Artifact};
use lvsdr_core::{analyze, Format};
use proptest::prelude::*;

/// `LVSDR_FUZZ_CASES=100000 cargo test --release --test props` runs a longer fuzz.
fn cases(default: u32) -> u32 {
    std::env::var("LVSDR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

    #[test]
    fn no_reader_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        for f in Format::ALL {
            let _ = analyze(&text, Some(f));
        }
        let _ = analyze(&text, None);
    }

    #[test]
    fn no_reader_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        for f in Format::ALL {
            let _ = analyze(&text, Some(f));
        }
    }

    #[test]
    fn no_reader_panics_on_mangled_seed(cut in 0usize..1500, insert in "[\\[\\]{}=\"$;#\\n a-z0-9.:/-]{0,12}") {
        for name in ["seed-dr.toml", "seed-dr.sh", "clean-dr.toml"] {
            let seed = std::fs::read_to_string(format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            let mut at = cut.min(seed.len());
            while !seed.is_char_boundary(at) { at -= 1; }
            let text = format!("{}{}{}", &seed[..at], insert, &seed[at..]);
            let _ = analyze(&text, None);
            let _ = analyze(&text.replace('\n', " "), Some(Format::Script));
        }
    }
}

fn scheduler() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "fo", "ovf", "mh", "lblc", "lblcr",
    ])
}

prop_compose! {
    fn topology_text()(
        services in proptest::collection::vec((1u16..65535, scheduler(), proptest::option::of(1u32..3600)), 1..4),
        weights in proptest::collection::vec(0u32..100, 1..5),
    ) -> String {
        let mut text = String::from("[lan]\nsubnet = \"10.1.0.0/16\"\n[director]\naddress = \"10.1.0.2\"\nvip = \"10.1.0.10\"\n");
        let mut seen = std::collections::BTreeSet::new();
        for (port, sched, persistence) in services {
            if !seen.insert(port) { continue; }
            text.push_str(&format!("[[service]]\nport = {port}\nscheduler = \"{sched}\"\n"));
            if let Some(p) = persistence { text.push_str(&format!("persistence = {p}\n")); }
            let dests: Vec<String> = weights.iter().enumerate().map(|(i, w)| format!("{{ server = \"rs{}\", weight = {w} }}", i + 1)).collect();
            text.push_str(&format!("real_server = [{}]\n", dests.join(", ")));
        }
        for i in 0..weights.len() {
            text.push_str(&format!("[[real_server]]\nname = \"rs{}\"\naddress = \"10.1.1.{}\"\nvip_on_lo = 32\n", i + 1, i + 10));
        }
        text
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(200), ..ProptestConfig::default() })]

    #[test]
    fn round_trips_hold(text in topology_text()) {
        let t = lvsdr_core::topology_file::from_toml(&text).unwrap();
        let plain = t.without_spans();
        // TOML and JSON hold everything.
        let again = lvsdr_core::topology_file::from_toml(&render(&t, Artifact::Toml)).unwrap();
        prop_assert_eq!(again.without_spans(), plain.clone());
        let again = lvsdr_core::topology_file::from_json(&render(&t, Artifact::Json)).unwrap();
        prop_assert_eq!(again.without_spans(), plain.clone());
        // The restore file, the director script and keepalived.conf hold the IPVS table and the VIP.
        for (artifact, format) in [(Artifact::Restore, Format::IpvsadmSave), (Artifact::Director, Format::Script), (Artifact::Keepalived, Format::Keepalived)] {
            let (_, back) = lvsdr_core::load(&render(&t, artifact), Some(format));
            let (back, _) = back.unwrap();
            prop_assert_eq!(back.without_spans().services, plain.services.clone());
            prop_assert_eq!(back.director().vips[0].address.value, plain.director().vips[0].address.value);
        }
    }
}

prop_compose! {
    /// An `ipvsadm -S -n` dump: services on one or two VIPs (port 0 among
    /// them), each real server at one port or two, with any forwarding method.
    fn dump_text()(
        services in proptest::collection::vec((0u8..2, 0u16..4, scheduler(), proptest::option::of(1u32..3600)), 1..4),
        dests in proptest::collection::vec((1u8..5, 80u16..83, 0u8..3, 0u32..10), 1..6),
    ) -> String {
        let mut text = String::new();
        let mut seen = std::collections::BTreeSet::new();
        for (vip, port, sched, persistence) in services {
            let port = [0, 80, 443, 8080][usize::from(port)];
            if !seen.insert((vip, port)) { continue; }
            let id = format!("-t 192.0.2.{}:{port}", 10 + vip);
            let p = match (persistence, port) {
                (Some(p), _) => format!(" -p {p}"),
                (None, 0) => " -p 300".to_string(),
                (None, _) => String::new(),
            };
            text.push_str(&format!("-A {id} -s {sched}{p}\n"));
            let mut added = std::collections::BTreeSet::new();
            for (rs, rport, method, weight) in &dests {
                let method = ["-g", "-m", "-i"][usize::from(*method)];
                // DR and tunnels keep the service's port; only NAT (or port 0) maps it.
                let rport = if method == "-m" || port == 0 { *rport } else { port };
                if !added.insert((*rs, rport)) { continue; }
                text.push_str(&format!("-a {id} -r 192.0.2.{}:{rport} {method} -w {weight}\n", 20 + rs));
            }
        }
        text
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(200), ..ProptestConfig::default() })]

    /// What an import reads, its canonical TOML and JSON read back to the same topology.
    #[test]
    fn imported_dumps_read_back_from_toml_and_json(text in dump_text()) {
        let (_, read) = lvsdr_core::load(&text, Some(Format::IpvsadmSave));
        let (t, _) = read.unwrap();
        let plain = t.without_spans();
        let again = lvsdr_core::topology_file::from_toml(&render(&t, Artifact::Toml)).unwrap();
        prop_assert_eq!(again.without_spans(), plain.clone());
        let again = lvsdr_core::topology_file::from_json(&render(&t, Artifact::Json)).unwrap();
        prop_assert_eq!(again.without_spans(), plain);
    }
}
