//! Generated artifacts: snapshots for the seed, `bash -n` and `shellcheck`
//! on every script, and proof that hostile names run nothing.

use lvsdr_core::render::{render, Artifact};
use lvsdr_core::topology_file::from_toml;
use std::path::Path;
use std::process::Command;

fn seed() -> lvsdr_core::Topology {
    from_toml(&std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/seed-dr.toml")).unwrap()).unwrap()
}

#[test]
fn seed_artifacts_snapshots() {
    let t = seed();
    for a in Artifact::ALL {
        insta::assert_snapshot!(format!("seed_{}", a.name()), render(&t, a));
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// A test's own temporary folder, removed when it drops: a test that fails
/// (shellcheck missing, a hostile name that ran) leaves nothing behind.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check_script(script: &str, what: &str) {
    let guard = TempDir::new(&format!("lvsdr-render-{what}"));
    let dir = &guard.0;
    let path = dir.join("script.sh");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(out.status.success(), "bash -n {what}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        have("shellcheck"),
        "shellcheck is required for these tests: `cargo xtask setup` installs it (apt-get install shellcheck)"
    );
    let out = Command::new("shellcheck").arg("--severity=style").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "shellcheck {what}:\n{}\n{script}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn generated_scripts_pass_bash_n_and_shellcheck() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut files = vec![root.join("seed-dr.toml"), root.join("clean-dr.toml")];
    files.extend(std::fs::read_dir(root.join("schedulers")).unwrap().flatten().map(|e| e.path()));
    for f in files {
        let t = from_toml(&std::fs::read_to_string(&f).unwrap()).unwrap();
        for a in [Artifact::Director, Artifact::RealServer] {
            check_script(
                &render(&t, a),
                &format!("{}-{}", f.file_stem().unwrap().to_string_lossy(), a.name()),
            );
        }
    }
}

/// A topology name full of shell metacharacters ends up only inside quotes:
/// the script passes shellcheck and, run with stand-in tools that log their
/// arguments, executes nothing but those tools.
#[test]
fn hostile_names_run_nothing() {
    let evil = "x'; touch \"$MARK\"; echo '$(touch $MARK)`touch $MARK`";
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/seed-dr.toml"))
        .unwrap()
        .replace("name = \"seed\"", &format!("name = {}", serde_json::to_string(evil).unwrap()));
    let t = from_toml(&text).unwrap();
    assert_eq!(t.name, evil);
    let guard = TempDir::new("lvsdr-inject");
    let dir = &guard.0;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls.log");
    for tool in ["ip", "ipvsadm", "sysctl"] {
        let p = bin.join(tool);
        std::fs::write(&p, format!("#!/bin/sh\necho {tool} \"$@\" >> '{}'\n", log.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mark = dir.join("pwned");
    for a in [Artifact::Director, Artifact::RealServer] {
        let script = render(&t, a);
        check_script(&script, &format!("evil-{}", a.name()));
        let path = dir.join(format!("{}.sh", a.name()));
        std::fs::write(&path, &script).unwrap();
        let out = Command::new("bash")
            .arg(&path)
            .arg("rs1")
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("MARK", &mark)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(!mark.exists(), "a hostile name ran a command");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains("ipvsadm -A -t 192.168.1.192:80 -s rr"), "{calls}");
    assert!(calls.contains("ip addr replace 192.168.1.192/32 dev lo"), "{calls}");
}

#[test]
fn director_script_and_restore_file_import_back() {
    let t = seed();
    let (_, back) = lvsdr_core::load(&render(&t, Artifact::Director), Some(lvsdr_core::Format::Script));
    let (back, _) = back.unwrap();
    assert_eq!(back.without_spans().services, t.without_spans().services);
    assert_eq!(back.director().vips[0].address.value, t.director().vips[0].address.value);
    assert_eq!(
        back.director().sysctls.values.keys().collect::<Vec<_>>(),
        t.director().sysctls.values.keys().collect::<Vec<_>>()
    );
    let (_, back) = lvsdr_core::load(&render(&t, Artifact::Restore), None);
    let (back, _) = back.unwrap();
    assert_eq!(back.without_spans().services, t.without_spans().services);
}
