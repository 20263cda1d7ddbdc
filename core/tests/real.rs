//! The corpus of real-world shapes in `fixtures/real/`: each input (written by
//! us, in the shape of configurations found in public repositories, named in
//! its first comment) has a `NAME.expect` beside it:
//!
//! ```text
//! codes: DR012 DR103          (the sorted distinct codes, or `codes: none`)
//! -A -t 192.168.1.192:80 -s wrr
//! -a -t 192.168.1.192:80 -r 192.168.1.213:80 -g -w 1
//! ```
//!
//! after the first line, exactly what `lvsdr render --artifact restore` writes:
//! the kernel's own language is the oracle of what was read. A folder
//! `NAME/` is one setup of several files, read together.

use lvsdr_core::render::{render, Artifact};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/real")
}

/// The analysis of one corpus entry: a file, or a folder of files read as one setup.
fn analyze(path: &Path) -> lvsdr_core::Analysis {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        let sources: Vec<(String, String)> = files
            .iter()
            .map(|f| (f.display().to_string(), std::fs::read_to_string(f).unwrap()))
            .collect();
        lvsdr_core::analyze_files(&sources, None).analysis
    } else {
        lvsdr_core::analyze(&std::fs::read_to_string(path).unwrap(), None)
    }
}

#[test]
fn every_real_world_fixture_reads_to_its_expected_restore_lines_and_codes() {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_none_or(|e| e != "expect"))
        .collect();
    entries.sort();
    let mut failures = Vec::new();
    for input in &entries {
        let stem = input.file_stem().unwrap().to_string_lossy().to_string();
        let expect_path = corpus().join(format!("{stem}.expect"));
        let Ok(expect) = std::fs::read_to_string(&expect_path) else {
            failures.push(format!("{}: no {stem}.expect", input.display()));
            continue;
        };
        let (codes_line, restore) = expect.split_once('\n').unwrap_or((expect.as_str(), ""));
        let want_codes: Vec<&str> = codes_line
            .strip_prefix("codes:")
            .unwrap_or_else(|| panic!("{stem}.expect must start with `codes:`"))
            .split_whitespace()
            .filter(|c| *c != "none")
            .collect();
        let a = analyze(input);
        let mut got_codes: Vec<&str> = a.diagnostics.iter().map(|d| d.code).collect();
        got_codes.sort_unstable();
        got_codes.dedup();
        let got_restore = a.topology.as_ref().map(|t| render(t, Artifact::Restore)).unwrap_or_default();
        if got_codes != want_codes {
            failures.push(format!("{stem}: codes {got_codes:?}, expected {want_codes:?}"));
        }
        if got_restore != restore {
            failures.push(format!("{stem}: restore\n{got_restore}--- expected\n{restore}---"));
        }
        if a.topology
            .as_ref()
            .is_some_and(|t| t.services.is_empty() && t.real_servers.is_empty())
            && a.diagnostics.is_empty()
        {
            failures.push(format!("{stem}: an empty topology with no finding"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
}

/// Every corpus entry, inputs only.
fn entries() -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_none_or(|e| e != "expect"))
        .collect();
    entries.sort();
    entries
}

#[test]
fn every_imported_fixture_reads_back_from_its_canonical_toml_and_json() {
    let mut failures = Vec::new();
    for input in entries() {
        // A script that sets nothing up (DR107) has no topology to write.
        let Some(t) = analyze(&input).topology.filter(|t| !t.vips().is_empty() || !t.services.is_empty()) else {
            continue;
        };
        let want = t.without_spans();
        let toml = lvsdr_core::topology_file::to_toml(&t);
        match lvsdr_core::topology_file::from_toml(&toml) {
            Ok(back) if back.without_spans() == want => {}
            Ok(back) => failures.push(format!(
                "{}: TOML reads back as another topology:\n{}",
                input.display(),
                difference(&want, &back.without_spans())
            )),
            Err(e) => failures.push(format!("{}: TOML refused: {e}\n{toml}", input.display())),
        }
        let json = lvsdr_core::topology_file::to_json(&t);
        match lvsdr_core::topology_file::from_json(&json) {
            Ok(back) if back.without_spans() == want => {}
            Ok(back) => failures.push(format!(
                "{}: JSON reads back as another topology:\n{}",
                input.display(),
                difference(&want, &back.without_spans())
            )),
            Err(e) => failures.push(format!("{}: JSON refused: {e}", input.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The first lines where two topologies' debug forms differ.
fn difference(want: &lvsdr_core::Topology, got: &lvsdr_core::Topology) -> String {
    let (a, b) = (format!("{want:#?}"), format!("{got:#?}"));
    a.lines()
        .zip(b.lines())
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .take(3)
        .map(|(i, (x, y))| format!("  line {i}: imported `{}`, read back `{}`", x.trim(), y.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `LVSDR_FIXTURE=NAME cargo test -p lvsdr-core --test real print_expect -- --ignored --nocapture`
/// prints what NAME reads to, in the `.expect` form, with every finding: for
/// writing a new entry's `.expect` (after checking each line by hand).
#[test]
#[ignore]
fn print_expect() {
    let Ok(name) = std::env::var("LVSDR_FIXTURE") else { return };
    let a = analyze(&corpus().join(name));
    let mut codes: Vec<&str> = a.diagnostics.iter().map(|d| d.code).collect();
    codes.sort_unstable();
    codes.dedup();
    println!("codes: {}", if codes.is_empty() { "none".to_string() } else { codes.join(" ") });
    print!("{}", a.topology.as_ref().map(|t| render(t, Artifact::Restore)).unwrap_or_default());
    for d in &a.diagnostics {
        eprintln!("{} {:?} {} [{}..{}]", d.code, d.severity, d.message, d.span.start, d.span.end);
    }
}

/// The topology a corpus entry reads to; it must read.
fn topology(name: &str) -> lvsdr_core::Topology {
    let a = analyze(&corpus().join(name));
    a.topology.unwrap_or_else(|| panic!("{name} does not read: {:?}", a.diagnostics))
}

#[test]
fn a_director_with_several_nics_keeps_the_one_reaching_its_real_servers_and_no_deleted_or_peer_address() {
    let t = topology("script-two-nics.sh");
    let d = t.director();
    assert_eq!(d.address.main().value.to_string(), "192.0.2.1");
    assert_eq!(d.interface.value.as_str(), "eth0");
    assert_eq!(t.lans[0].value.to_string(), "192.0.2.0/24");
    let vips: Vec<String> = d.vips.iter().map(|v| v.address.value.to_string()).collect();
    assert_eq!(vips, ["192.0.2.10"], "neither the deleted 192.0.2.11 nor the peer address is a VIP");
    let nics: Vec<(String, String)> = d
        .extra_nics
        .iter()
        .map(|n| (n.interface.value.as_str().to_string(), n.address.value.to_string()))
        .collect();
    assert_eq!(
        nics,
        [("eth1".into(), "198.51.100.7".into()), ("gre1".into(), "10.99.0.1".into())],
        "the other interfaces are kept, the deleted eth2 address is not"
    );
}

#[test]
fn a_script_of_namespaces_reads_as_its_hosts() {
    let t = topology("script-netns-hosts.sh");
    let d = t.director();
    assert_eq!(d.address.main().value.to_string(), "10.0.0.1");
    assert_eq!(d.interface.value.as_str(), "veth-d");
    assert!(d.sysctls.get("net.ipv4.conf.all.send_redirects").is_some());
    assert!(
        d.sysctls.get("net.ipv4.conf.all.arp_ignore").is_none(),
        "the real server's sysctls stay on the real server"
    );
    assert_eq!(t.client.address.main().value.to_string(), "10.0.0.50");
    let [rs] = t.real_servers.as_slice() else {
        panic!("one real server: {:?}", t.real_servers)
    };
    assert_eq!(rs.address.main().value.to_string(), "10.0.0.20");
    assert_eq!(rs.interface.value.as_str(), "veth-r");
    assert_eq!(rs.lo.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["10.0.0.100/32"]);
    assert_eq!(rs.sysctls.get("net.ipv4.conf.veth-r.rp_filter").map(|v| v.value), Some(0));
    assert_eq!(rs.sysctls.get("net.ipv4.conf.all.arp_ignore").map(|v| v.value), Some(1));
}

#[test]
fn commands_inside_sh_c_are_read_and_point_into_the_string() {
    let text = std::fs::read_to_string(corpus().join("script-sh-c.sh")).unwrap();
    let t = topology("script-sh-c.sh");
    assert_eq!(t.director().address.main().value.to_string(), "172.16.5.2");
    assert!(t.director().sysctls.get("net.ipv4.conf.eth0.send_redirects").is_some());
    let rs = &t.real_servers[0];
    assert_eq!(rs.lo.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["172.16.5.80/32"]);
    assert_eq!(rs.sysctls.get("net.ipv4.conf.all.arp_announce").map(|v| v.value), Some(2));
    // A string written as it reads: the address points at its own text inside the quotes.
    let lo = &rs.lo[0];
    assert_eq!(&text[lo.span.start..lo.span.end], "172.16.5.80/32");
}

#[test]
fn host_names_in_a_dump_read_only_as_the_user_maps_them() {
    use lvsdr_core::import::resolve::NameMap;
    let text = std::fs::read_to_string(corpus().join("dump-names-only.txt")).unwrap();
    // Unmapped: refused, naming the host and how to map it; never a quiet success.
    let a = lvsdr_core::analyze(&text, None);
    assert!(a.topology.is_none() && a.has_errors());
    let d = &a.diagnostics[0];
    assert_eq!(d.code, "DR110");
    assert!(d.message.contains("`lb-web`"), "{}", d.message);
    assert!(d.help.as_deref().unwrap_or("").contains("--resolve lb-web="), "{:?}", d.help);
    // Half mapped: still refused, now for the real server.
    let mut names = NameMap::new();
    names.parse_mapping("lb-web=192.0.2.10").unwrap();
    let a = lvsdr_core::analyze_with(&text, None, &names);
    assert_eq!(a.diagnostics[0].code, "DR110");
    assert!(a.diagnostics[0].message.contains("`web1`"));
    // Mapped (a flag and a hosts file): the whole table.
    names.parse_hosts("192.0.2.21 web1\n192.0.2.22 web2 web2.lan.example\n").unwrap();
    let a = lvsdr_core::analyze_with(&text, None, &names);
    let t = a.topology.clone().expect("reads once every name is mapped");
    assert_eq!(
        render(&t, Artifact::Restore),
        "-A -t 192.0.2.10:443 -s wlc\n-a -t 192.0.2.10:443 -r 192.0.2.21:443 -g -w 1\n-a -t 192.0.2.10:443 -r 192.0.2.22:443 -g -w 1\n\
         -A -t 192.0.2.10:80 -s wlc\n-a -t 192.0.2.10:80 -r 192.0.2.21:80 -g -w 1\n-a -t 192.0.2.10:80 -r 192.0.2.22:80 -g -w 1\n"
    );
    assert!(!a.has_errors(), "{:?}", a.diagnostics);
    // Several files read as one setup take the same mapping.
    let s = lvsdr_core::analyze_files_with(
        &[
            ("dump".into(), text.clone()),
            ("rs.sh".into(), "ip addr add 192.0.2.10/32 dev lo\n".into()),
        ],
        &[None, None],
        &names,
    );
    assert!(s.analysis.topology.is_some(), "{:?}", s.analysis.diagnostics);
}

#[test]
fn refusals_name_their_cause() {
    let first = |name: &str| {
        let a = analyze(&corpus().join(name));
        assert!(a.topology.is_none(), "{name} must be refused");
        a.diagnostics.into_iter().next().expect("one refusal")
    };
    let d = first("keepalived-template.conf");
    assert_eq!(d.code, "DR111");
    assert!(d.message.contains("template") && d.message.contains("`{{ vip }}`"), "{}", d.message);
    let d = first("script-doc-placeholder.sh");
    assert!(d.message.contains("`<virtual-ip-address>`"), "{}", d.message);
    let d = first("script-variable-typo.sh");
    assert_eq!(d.code, "DR112");
    assert!(d.message.contains("`$VPI`") && d.message.contains("`$VIP`"), "{}", d.message);
}

#[test]
fn an_unset_variable_in_a_script_that_still_reads_is_an_error_on_its_line() {
    let text = "VIP=10.0.0.10\nRIP1=10.0.0.21\nipvsadm -A -t $VIP:80 -s rr\nipvsadm -a -t $VIP:80 -r $RIP_1:80 -g\nipvsadm -a -t $VIP:80 -r ${RIP2:-10.0.0.22}:80 -g\n";
    let a = lvsdr_core::analyze(text, None);
    let d = a.diagnostics.iter().find(|d| d.code == "DR112").expect("DR112");
    assert!(d.message.contains("`$RIP_1`") && d.message.contains("`$RIP1`"), "{}", d.message);
    assert_eq!(&text[d.span.start..d.span.end], "$RIP_1:80");
    assert_eq!(
        a.diagnostics.iter().filter(|d| d.code == "DR112").count(),
        1,
        "a default is not unset"
    );
    assert!(a.has_errors());
}

#[test]
fn http_checks_keep_their_urls_and_render_them_back_as_written() {
    use lvsdr_core::render::keepalived;
    let t = topology("keepalived-http-url.conf");
    let out = keepalived(&t);
    // The first real server's two urls, in order, each with what it expects.
    assert!(
        out.contains(
            "        HTTP_GET {\n            url {\n                path /healthz\n                status_code 204\n            }\n            \
             url {\n                path /ready?probe=lb\n                digest 9e107d9d372bb6826bd81d3542a419d6\n                status_code 200\n            }\n"
        ),
        "{out}"
    );
    // A range lvsdr cannot keep leaves the url without a status code (and a finding), not with 200.
    assert!(
        out.contains("        HTTP_GET {\n            url {\n                path /healthz\n            }\n"),
        "{out}"
    );
    assert_eq!(
        out.matches("SSL_GET {\n            url {\n                path /status\n                status_code 200\n")
            .count(),
        2,
        "{out}"
    );
    assert!(!out.contains("path /\n"), "no url is replaced by lvsdr's own: {out}");
    let a = analyze(&corpus().join("keepalived-http-url.conf"));
    let dropped: Vec<&str> = a
        .diagnostics
        .iter()
        .filter(|d| d.code == "DR100")
        .map(|d| d.message.as_str())
        .collect();
    assert!(dropped.iter().any(|m| m.contains("`status_code 200-299`")), "{dropped:?}");
    assert!(dropped.iter().any(|m| m.contains("`virtualhost web.example.org`")), "{dropped:?}");
    // The digest sample keeps its digests too.
    let out = keepalived(&topology("keepalived-http-digest.conf"));
    assert_eq!(out.matches("digest 640205b7b0fc66c1ea91c463fac6334d").count(), 2, "{out}");
}

#[test]
fn a_health_check_url_that_cannot_be_written_back_safely_is_refused() {
    let conf = |url: &str| {
        format!(
            "virtual_server 192.0.2.10 80 {{\n lb_kind DR\n real_server 192.0.2.21 80 {{\n  HTTP_GET {{\n   url {{\n{url}\n   }}\n  }}\n }}\n}}\n"
        )
    };
    for bad in [
        "path \"/a b\"",
        "path \"/a } include /etc/shadow\"",
        "path /ok\ndigest xyz",
        "path /ok\nstatus_code 999",
    ] {
        let a = lvsdr_core::analyze(&conf(bad), None);
        assert!(a.topology.is_none(), "{bad:?} must be refused");
        assert_eq!(a.diagnostics[0].code, "DR106", "{bad:?}: {:?}", a.diagnostics);
    }
}
