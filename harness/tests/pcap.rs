//! `lvsdr lab --pcap`: the frames of a real lab, read back by Debian's
//! `tshark` (installed by `cargo xtask setup`). The seed's first connection
//! shows DR's lesson: the client's SYN to the director, the director's copy
//! to a real server with the destination MAC rewritten, and the real
//! server's SYN-ACK straight to the client from the VIP. A fault scenario's
//! failed check names the frames that show it.

mod common;

use common::{labs_ran, require_root, root};
use std::process::Command;

/// The fields of every frame, as tshark reads the file: one map per frame.
fn tshark(file: &std::path::Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let fields = [
        "frame.number",
        "frame.interface_name",
        "frame.comment",
        "eth.src",
        "eth.dst",
        "ip.src",
        "ip.dst",
        "ip.ttl",
        "tcp.srcport",
        "tcp.dstport",
        "tcp.flags.str",
        "arp.opcode",
        "arp.src.proto_ipv4",
        "arp.src.hw_mac",
    ];
    let mut cmd = Command::new("tshark");
    cmd.args(["-r"])
        .arg(file)
        .args(["-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark runs (Debian's `tshark`; `cargo xtask setup` installs it)");
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            fields
                .iter()
                .zip(line.split('\t'))
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[test]
#[ignore = "needs root"]
fn tshark_reads_the_seeds_legs_and_a_faults_frames() {
    require_root();
    let dir = tempdir("seed");
    let file = dir.join("lab.pcapng");
    let ran = labs_ran(
        &["fixtures/seed-dr.toml".into(), "fixtures/faults/no-arp-sysctls.toml".into()],
        &["--pcap", file.to_str().unwrap()],
    );
    let reports = ran.json.as_array().cloned().unwrap_or_default();
    assert_eq!(reports.len(), 2, "{}", ran.stderr);
    assert_eq!(reports[0]["pass"], true, "the seed passes:\n{}", ran.stderr);

    // The seed: connection 192.168.1.100:40000 → 192.168.1.192:80, frame by frame.
    let frames = tshark(&file);
    let first = |interface: &str, flags: &str, from_client: bool| -> &std::collections::BTreeMap<String, String> {
        let (sport, dport) = if from_client { ("40000", "80") } else { ("80", "40000") };
        frames
            .iter()
            .find(|f| {
                f["frame.interface_name"] == interface
                    && f["tcp.srcport"] == sport
                    && f["tcp.dstport"] == dport
                    && f["tcp.flags.str"].ends_with(flags)
            })
            .unwrap_or_else(|| panic!("no {flags} frame of the first connection on {interface}; tshark read:\n{frames:#?}"))
    };
    let syn = first("client", "··········S·", true);
    let forwarded = first("director", "··········S·", true);
    let comment = &forwarded["frame.comment"];
    assert!(
        comment.starts_with("tcp/80 from 192.168.1.100:40000: the kernel chose rs"),
        "{comment}"
    );
    let chosen = comment
        .split("the kernel chose ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_string();
    let reply = first(&chosen, "·······A··S·", false);
    // The MACs of the hosts, from the frames each sent.
    let mac_of = |host: &str| {
        frames
            .iter()
            .find(|f| f["frame.interface_name"] == host && !f["eth.src"].is_empty())
            .map(|f| f["eth.src"].clone())
            .unwrap()
    };
    let (client_mac, director_mac, rs_mac) = (mac_of("client"), mac_of("director"), mac_of(&chosen));
    eprintln!("client → director SYN: {syn:?}\ndirector → {chosen} SYN: {forwarded:?}\n{chosen} → client SYN-ACK: {reply:?}");
    assert_eq!((&syn["eth.src"], &syn["eth.dst"]), (&client_mac, &director_mac));
    assert_eq!((&syn["ip.src"][..], &syn["ip.dst"][..]), ("192.168.1.100", "192.168.1.192"));
    // The director rewrote the destination MAC to the real server's; the IP packet is the client's.
    assert_eq!((&forwarded["eth.src"], &forwarded["eth.dst"]), (&director_mac, &rs_mac));
    assert_eq!(
        (&forwarded["ip.src"][..], &forwarded["ip.dst"][..]),
        ("192.168.1.100", "192.168.1.192")
    );
    // The real server answered the client itself, from the VIP.
    assert_eq!((&reply["eth.src"], &reply["eth.dst"]), (&rs_mac, &client_mac));
    assert_eq!((&reply["ip.src"][..], &reply["ip.dst"][..]), ("192.168.1.192", "192.168.1.100"));

    // Byte by byte, from the library's own data: the forwarded SYN's IP packet is the
    // client's but for the TTL the kernel took one from and the checksum that follows it.
    let log = &reports[0]["frames"];
    let bytes = |n: &str| hex(log["frames"][n.parse::<usize>().unwrap() - 1]["bytes"].as_str().unwrap());
    let (a, b) = (bytes(&syn["frame.number"]), bytes(&forwarded["frame.number"]));
    assert_eq!(a.len(), b.len());
    let differ: Vec<usize> = (14..a.len()).filter(|i| a[*i] != b[*i]).collect();
    assert!(
        differ.iter().all(|i| [14 + 8, 14 + 10, 14 + 11].contains(i)),
        "bytes {differ:?} differ"
    );
    assert_eq!(a[14 + 8], b[14 + 8] + 1, "TTL");
    assert_eq!(log["dropped"], 0);

    // The fault: rs2 answers ARP for the VIP. The failed arp-owner check names frames,
    // and those frames are ARP replies for the VIP from a real server.
    assert_eq!(reports[1]["pass"], false);
    let fault_file = dir.join("lab-2.pcapng");
    let fault = tshark(&fault_file);
    let line = ran
        .stderr
        .lines()
        .find(|l| l.contains("lab-2.pcapng: check `arp-owner` failed: see frame"))
        .unwrap_or_else(|| panic!("the failed arp-owner check names no frames:\n{}", ran.stderr));
    let numbers: Vec<usize> = line
        .split("see frame")
        .nth(1)
        .unwrap()
        .trim_start_matches('s')
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(!numbers.is_empty(), "{line}");
    for n in numbers {
        let f = &fault[n - 1];
        assert_eq!(f["frame.number"], n.to_string());
        assert_eq!(
            (&f["arp.opcode"][..], &f["arp.src.proto_ipv4"][..]),
            ("2", "192.168.1.192"),
            "frame {n}: {f:?}"
        );
        assert!(f["frame.interface_name"].starts_with("rs"), "frame {n}: {f:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A failover lab's file holds both parts: the probes through the master
/// (lb1), then, commented `after failover`, the new connections through the
/// backup (lb2), whose director leg is lb2's port.
#[test]
#[ignore = "needs root"]
fn a_failovers_frames_follow_the_first_probes_in_the_file() {
    require_root();
    let dir = tempdir("failover");
    let file = dir.join("pair.pcapng");
    let ran = labs_ran(
        &["fixtures/pair-dr.toml".into()],
        &["--failover=link", "--connections", "4", "--pcap", file.to_str().unwrap()],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let frames = tshark(&file);
    let director_syns = |after: bool| -> Vec<String> {
        frames
            .iter()
            .filter(|f| f["frame.comment"].starts_with("after failover: ") == after)
            .filter(|f| f["tcp.flags.str"].ends_with("··········S·") && f["frame.comment"].contains("; lb"))
            .map(|f| f["frame.interface_name"].clone())
            .collect()
    };
    let (before, after) = (director_syns(false), director_syns(true));
    assert!(!before.is_empty() && before.iter().all(|i| i == "lb1"), "before: {before:?}");
    assert!(
        !after.is_empty() && after.iter().all(|i| i == "lb2"),
        "after the failover: {after:?}"
    );
    let first_after = frames
        .iter()
        .position(|f| f["frame.comment"].starts_with("after failover: "))
        .unwrap();
    assert!(
        frames[..first_after]
            .iter()
            .all(|f| !f["frame.comment"].starts_with("after failover")),
        "the failover's frames come after the first probes'"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A folder of the test's own: the tests run side by side, and each removes its folder.
fn tempdir(test: &str) -> std::path::PathBuf {
    let dir = root().join("target").join(format!("pcap-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
