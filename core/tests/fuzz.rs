//! A bounded, grammar-aware mutation fuzzer for every reader (TOML, JSON,
//! script, `ipvsadm -S` dump, keepalived.conf), run by `cargo test` and so by
//! `cargo xtask ci`.
//!
//! Each reader starts from every fixture of its format and mutates it with
//! its own grammar's tokens (braces and `include` for keepalived.conf, `$(`,
//! `if`, heredocs and quotes for scripts, tables and inline arrays for TOML):
//! splices, deletions, byte flips, truncation, and repeats of a slice a
//! hundred to twenty thousand times (the nesting and size blow-ups). The
//! reproducers of issue #27 are regression cases. A reader fails the run by
//! panicking, by aborting (the test binary dies), by taking more than
//! [`MAX_SECONDS`] on one input, or by growing the process past
//! [`MAX_MEMORY_MB`]. A failing input is written to
//! `target/fuzz-failures/` with the message naming it; after an abort, the
//! input in flight is there as `in-flight-FORMAT.txt`.
//!
//! `LVSDR_FUZZ_RUNS=20000 LVSDR_FUZZ_SEED=7 cargo test --release --test fuzz`
//! runs longer, from another seed.

use lvsdr_core::{analyze, Format};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// No input may take longer than this to read and lint.
const MAX_SECONDS: u64 = 10;
/// Nor grow the process's peak memory past this.
const MAX_MEMORY_MB: u64 = 512;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*: a fixed sequence for a seed, so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Each reader's grammar, as tokens a mutation splices in.
fn dictionary(format: Format) -> &'static [&'static str] {
    match format {
        Format::Toml => &[
            "[",
            "]",
            "[[",
            "]]",
            "{",
            "}",
            "=",
            "\"",
            "'''",
            "\"\"\"",
            ",",
            "\n",
            "#",
            "\\u00e9",
            "é",
            "[[service]]\n",
            "[[real_server]]\n",
            "[director]\n",
            "vrrp = {",
            "instance = \"",
            "interface = \"-x\"",
            "sysctl = {",
            "\"net.ipv4.conf.all.arp_ignore\" = 99999999999999",
            "port = 65536",
            "weight = -1",
            "a = [",
            "{b=",
            "scheduler = \"",
            "address = \"",
            "\u{0}",
            "\r\n",
            "nan",
            "1e999",
            "9223372036854775808",
        ],
        Format::Json => &[
            "{",
            "}",
            "[",
            "]",
            "\"",
            ":",
            ",",
            "\\u",
            "\\ud800",
            "\\",
            "é",
            "\u{0}",
            "null",
            "1e999",
            "-",
            "\"service\":",
            "\"real_server\":",
            "\"vrrp\":{\"instance\":\"",
            "\"interface\":\"",
            "9223372036854775808",
        ],
        Format::Script => &[
            "$(",
            ")",
            "`",
            "${",
            "}",
            "${x:-",
            "\"",
            "'",
            "\\",
            ";",
            "&&",
            "||",
            "|",
            "(",
            "{ ",
            "if true; then\n",
            "fi\n",
            "for i in 1 2 3; do\n",
            "done\n",
            "while true; do\n",
            "case $1 in\n",
            "start)",
            ";;",
            "esac\n",
            "f() {\n",
            "f\n",
            "<<EOF\n",
            "EOF\n",
            "a=\"$a$a$a$a\"\n",
            "$a",
            "$@",
            "\n",
            "#",
            "ipvsadm -A -t ",
            "ipvsadm -a -t ",
            " -r ",
            " -g",
            " -s wrr",
            "192.168.1.192:80",
            "ip addr add ",
            " dev lo",
            " dev -x",
            "sysctl -w net.ipv4.conf.all.arp_ignore=",
            "99999999999999",
            "eval ",
            "source ",
            "é",
        ],
        Format::IpvsadmSave => &[
            "-A -t ",
            "-a -t ",
            "-A -f ",
            " -r ",
            " -s ",
            " -g",
            " -i",
            " -m",
            " -w ",
            " -x ",
            " -y ",
            " -p ",
            " -M ",
            " -b ",
            "mh-fallback,mh-port",
            "192.168.1.192:80",
            "[2001:db8::1]:80",
            ":",
            "[",
            "]",
            "\n",
            "4294967296",
            "-1",
            "lb-web:https",
            "é",
        ],
        Format::Keepalived => &[
            "{",
            "}",
            "{\n",
            "}\n",
            "\"",
            "!",
            "#",
            "\\\n",
            "include /etc/shadow\n",
            "vrrp_instance ",
            "VI_1 ",
            "virtual_server ",
            "real_server ",
            "192.168.1.192 80 ",
            "lb_kind DR\n",
            "lb_algo ",
            "weight ",
            "virtual_ipaddress {\n",
            "notify_master \"/bin/sh\"\n",
            "global_defs {\n",
            "lvs_sync_daemon eth0 ",
            "authentication {\n auth_type ",
            "TCP_CHECK {\n",
            "virtual_server_group ",
            "é",
        ],
    }
}

fn fixtures_of(format: Format) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Ok(text) = std::fs::read_to_string(&p) {
                // Small seeds: a mutation of a 130 KB dump repeated 20,000 times proves no more.
                if p.extension().is_none_or(|x| x != "expect") && text.len() <= 32 * 1024 && Format::detect(&text) == format {
                    files.push((p.display().to_string(), text));
                }
            }
        }
    }
    files.sort();
    files
}

/// The reproducers of issue #27, each given to the reader it broke.
fn reproducers() -> Vec<(&'static str, Format, String)> {
    vec![
        ("json split char", Format::Json, "{\u{e9}".to_string()),
        ("15,000 nested braces", Format::Keepalived, "x {\n".repeat(15_000)),
        (
            "10,000 nested subshells",
            Format::Script,
            format!("{}true\n{}", "(\n".repeat(10_000), ")\n".repeat(10_000)),
        ),
        (
            "10,000 nested ifs",
            Format::Script,
            format!("{}true\n{}", "if true; then\n".repeat(10_000), "fi\n".repeat(10_000)),
        ),
        (
            "10,000 nested functions",
            Format::Script,
            format!(
                "{}true\n{}",
                (0..10_000).map(|i| format!("f{i}() {{\n")).collect::<String>(),
                "}\n".repeat(10_000)
            ),
        ),
        (
            "10,000 nested $(",
            Format::Script,
            format!("x={}echo a{}\n", "$(".repeat(10_000), ")".repeat(10_000)),
        ),
        (
            "doubling expansion",
            Format::Script,
            format!("a=xxxxxxxxxxxxxxxx\n{}ipvsadm -A -t 1.2.3.4:80 -s rr\n", "a=\"$a$a\"\n".repeat(40)),
        ),
        (
            "deep TOML arrays",
            Format::Toml,
            format!("a = {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
        ),
        (
            "deep TOML tables",
            Format::Toml,
            format!("a = {}1{}\n", "{b=".repeat(100_000), "}".repeat(100_000)),
        ),
        (
            "deep JSON",
            Format::Json,
            format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000)),
        ),
        ("a 1 MB line", Format::Script, format!("ipvsadm -A -t {}:80\n", "x".repeat(1 << 20))),
    ]
}

/// Peak resident memory of this process so far, in MB.
fn peak_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn failures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures")
}

/// Reads `text` as `format` with every check; an error names the saved input.
fn try_input(what: &str, format: Format, text: &str, baseline_mb: u64) -> Result<(), String> {
    // An abort (a stack overflow) cannot be caught: the input in flight is on disk first.
    let dir = failures_dir();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("in-flight-{}.txt", format.name())), text);
    let started = Instant::now();
    let outcome = std::panic::catch_unwind(|| analyze(text, Some(format)));
    let took = started.elapsed();
    let grown = peak_mb().saturating_sub(baseline_mb);
    let problem = match outcome {
        Err(_) => Some("panicked".to_string()),
        Ok(_) if took > Duration::from_secs(MAX_SECONDS) => Some(format!("took {took:?}")),
        Ok(_) if grown > MAX_MEMORY_MB => Some(format!("grew the process by {grown} MB")),
        Ok(_) => None,
    };
    let Some(problem) = problem else { return Ok(()) };
    let file = dir.join(format!("{}-{}.txt", format.name(), std::process::id()));
    let _ = std::fs::write(&file, text);
    Err(format!(
        "{} reader {problem} on {what}; input saved as {}",
        format.name(),
        file.display()
    ))
}

fn mutate(rng: &mut Rng, seed: &str, dict: &[&str]) -> String {
    let mut text = seed.to_string();
    for _ in 0..1 + rng.below(4) {
        let mut at = rng.below(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        match rng.below(6) {
            0 | 1 => text.insert_str(at, rng.pick(dict)),
            2 => {
                let mut end = (at + rng.below(40)).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, "");
            }
            3 => text.truncate(at),
            4 => {
                // A nesting or size blow-up: one token repeated many times.
                let times = [100, 1_000, 20_000][rng.below(3)];
                text.insert_str(at, &rng.pick(dict).repeat(times));
            }
            _ => {
                let mut bytes = text.into_bytes();
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    text
}

#[test]
fn the_issue_27_reproducers_end_within_the_limits() {
    let baseline = peak_mb();
    for (what, format, text) in reproducers() {
        try_input(what, format, &text, baseline).unwrap();
        let a = analyze(&text, Some(format));
        assert!(a.topology.is_none() || what == "a 1 MB line", "{what}: refused");
        if what.contains("nested") || what.contains("doubling") || what.starts_with("deep") {
            let d = &a.diagnostics[0];
            assert!(matches!(d.code, "DR109" | "DR000"), "{what}: {} {}", d.code, d.message);
        }
    }
}

#[test]
fn every_reader_survives_bounded_mutation_fuzzing() {
    let runs = env("LVSDR_FUZZ_RUNS", 1_000);
    let mut rng = Rng(env("LVSDR_FUZZ_SEED", 0x5eed_1d5e_a5e5_0027) | 1);
    let baseline = peak_mb();
    let started = Instant::now();
    for format in Format::ALL {
        let seeds = fixtures_of(format);
        assert!(!seeds.is_empty(), "no fixture reads as {}", format.name());
        let dict = dictionary(format);
        for n in 0..runs {
            let (name, seed) = &seeds[rng.below(seeds.len())];
            let text = mutate(&mut rng, seed, dict);
            try_input(&format!("run {n} from {name}"), format, &text, baseline).unwrap();
        }
    }
    eprintln!(
        "fuzz: {} inputs over {} readers in {:.1} s, peak memory {} MB",
        runs * Format::ALL.len() as u64,
        Format::ALL.len(),
        started.elapsed().as_secs_f64(),
        peak_mb()
    );
}
