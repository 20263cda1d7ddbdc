//! The command line's input options, run as a user would: the `lvsdr` binary
//! on the repository's fixtures. No root, no lab.

mod common;

use common::*;

const DUMP: &str = "fixtures/real/dump-names-only.txt";

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = lvsdr(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ipvsadm -S` without `-n` names hosts. Unmapped, every command that reads
/// the dump refuses it with DR110 and exit 1, saying how to map the name;
/// mapped with `--resolve` or `--hosts`, it reads and lints clean.
#[test]
fn host_names_in_a_dump_read_only_as_mapped_on_the_command_line() {
    for args in [
        vec!["lint", DUMP],
        vec!["import", DUMP],
        vec!["render", DUMP, "--artifact", "restore"],
        vec!["plan", DUMP],
        vec!["predict", DUMP],
    ] {
        let (code, stdout, stderr) = run(&args);
        let all = format!("{stdout}{stderr}");
        assert_eq!(code, Some(1), "{args:?}: {all}");
        assert!(all.contains("DR110") && all.contains("--resolve lb-web="), "{args:?}: {all}");
    }
    let dir = TestDir::new("cli-hosts");
    let hosts = dir.0.join("hosts");
    std::fs::write(
        &hosts,
        "# the director's /etc/hosts\n192.0.2.21 web1\n192.0.2.22 web2 web2.lan.example\n192.0.2.99 lb-web\n",
    )
    .unwrap();
    let hosts = hosts.to_str().unwrap();
    // --resolve wins over the file (lb-web is .99 there).
    let mapped = ["--hosts", hosts, "--resolve", "lb-web=192.0.2.10"];
    let (code, stdout, stderr) = run(&with(&["lint", DUMP], &mapped));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("0 error(s)"), "{stdout}");
    let (code, stdout, stderr) = run(&with(&["render", DUMP, "--artifact", "restore"], &mapped));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "-A -t 192.0.2.10:443 -s wlc\n-a -t 192.0.2.10:443 -r 192.0.2.21:443 -g -w 1\n-a -t 192.0.2.10:443 -r 192.0.2.22:443 -g -w 1\n\
         -A -t 192.0.2.10:80 -s wlc\n-a -t 192.0.2.10:80 -r 192.0.2.21:80 -g -w 1\n-a -t 192.0.2.10:80 -r 192.0.2.22:80 -g -w 1\n"
    );
    for args in [vec!["import", DUMP], vec!["plan", DUMP], vec!["predict", DUMP]] {
        let (code, _, stderr) = run(&with(&args, &mapped));
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
    }
    // Only --resolve flags, the same.
    let (code, _, stderr) = run(&[
        "lint",
        DUMP,
        "--resolve",
        "lb-web=192.0.2.10",
        "--resolve",
        "web1=192.0.2.21",
        "--resolve",
        "web2=192.0.2.22",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    // Half mapped: still refused, now naming the real server.
    let (code, stdout, _) = run(&["lint", DUMP, "--resolve", "lb-web=192.0.2.10"]);
    assert_eq!(code, Some(1));
    assert!(stdout.contains("`web1`"), "{stdout}");
}

/// `args` followed by `more`.
fn with<'a>(args: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    [args, more].concat()
}

/// A mapping that is not one is unusable input (exit 2), named, never ignored.
#[test]
fn bad_mappings_are_refused_with_what_to_write() {
    let (code, _, stderr) = run(&["lint", DUMP, "--resolve", "lb-web"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--resolve lb-web") && stderr.contains("NAME=ADDRESS"), "{stderr}");
    let (code, _, stderr) = run(&["lint", DUMP, "--resolve", "lb-web=192.0.2.300"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not an IP address"), "{stderr}");
    let dir = TestDir::new("cli-bad-hosts");
    let hosts = dir.0.join("hosts");
    std::fs::write(&hosts, "192.0.2.21 web1\n192.0.2.22 $(reboot)\n").unwrap();
    let (code, _, stderr) = run(&["lint", DUMP, "--hosts", hosts.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("line 2"), "{stderr}");
    let (code, _, stderr) = run(&["lint", DUMP, "--hosts", "/nonexistent/hosts"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("/nonexistent/hosts"), "{stderr}");
}

/// Every command that reads input files takes the same input options, and
/// `--help` teaches them with an example.
#[test]
fn every_reading_command_takes_the_input_options() {
    for cmd in ["lint", "import", "render", "predict", "plan", "lab"] {
        let (code, help, _) = run(&[cmd, "--help"]);
        assert_eq!(code, Some(0), "{cmd}");
        for needle in [
            "--from",
            "--resolve <NAME=ADDRESS>",
            "--hosts <FILE>",
            "lb-web=192.0.2.10",
            "hosts(5)",
        ] {
            assert!(help.contains(needle), "{cmd} --help lacks {needle}:\n{help}");
        }
    }
}
