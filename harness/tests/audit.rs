//! `lvsdr audit` on real kernel IPVS, inside User-Mode Linux: a director and
//! a real server are built in two namespaces of the guest from the scripts
//! `lvsdr render` writes, then audited clean, after each drift made by hand,
//! and around a before/after dump that shows the audit wrote nothing.
//!
//! Everything happens inside the guest (`lvsdr kernel-exec --kernel uml`),
//! so these tests neither look at nor touch the host's namespaces, addresses
//! or IPVS table, and can run beside the lab tests' whole-host leak checks.
//! They need root to boot the guest, so they are `#[ignore = "needs root"]`;
//! they skip, saying so, where there is no UML kernel.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

const SEED: &str = "fixtures/seed-dr.toml";
const PAIR: &str = "fixtures/pair-dr.toml";

/// Whether a UML kernel is here to run the guest in; says why not when not.
fn uml_available() -> bool {
    if lvsdr_harness::uml::find().is_err() {
        eprintln!("SKIPPED: no UML kernel here (`cargo xtask setup-uml` installs one); the audit tests run inside UML only");
        return false;
    }
    true
}

/// The guest's setup: namespaces `dir` and `rs1` joined by a veth pair
/// (`eth0` on each side), a spare `eth1` on the director, the generated
/// director and real-server scripts run in them, and listeners on 80 and 25
/// in `rs1` (their pids in `$L80` and `$L25`). Helpers `audit NAME NS
/// [ARGS]` print an audit's JSON between markers with its exit code, and
/// `restore` runs the generated scripts again.
fn setup_script() -> String {
    let lvsdr = env!("CARGO_BIN_EXE_lvsdr");
    let root = root();
    let topology = root.join(SEED).display().to_string();
    format!(
        r#"set -u
L={lvsdr}
T={topology}
mkdir -p /run/audit && cd /run/audit || exit 90
$L render "$T" --artifact director > director.sh || exit 91
$L render "$T" --artifact real-server > rs.sh || exit 92
ip netns add dir && ip netns add rs1 || exit 93
# No duplicate address detection on the links to come: their addresses are
# final at once, and the before/after dumps do not catch DAD finishing.
for n in dir rs1; do ip netns exec $n sysctl -q -w net.ipv6.conf.default.accept_dad=0; done
ip -n dir link add eth0 type veth peer name eth0 netns rs1 || exit 94
ip -n dir link add eth1 type veth peer name eth1p || exit 95
ip -n dir addr add 192.168.1.191/24 dev eth0
ip -n rs1 addr add 192.168.1.213/24 dev eth0
for n in dir rs1; do ip -n $n link set lo up; ip -n $n link set eth0 up; done
ip -n dir link set eth1 up
# Until both ends of the veth are up, with their carrier.
for i in $(seq 200); do
  ip -n dir link show eth0 | grep -q 'state UP' && ip -n rs1 link show eth0 | grep -q 'state UP' && break
  sleep 0.02
done
restore() {{
  ip netns exec dir bash director.sh >/dev/null || exit 96
  ip netns exec rs1 bash rs.sh rs1 >/dev/null || exit 97
}}
restore
listen() {{
  ip netns exec rs1 perl -e 'use Socket; socket(S, PF_INET, SOCK_STREAM, 0) or die; setsockopt(S, SOL_SOCKET, SO_REUSEADDR, 1); bind(S, sockaddr_in($ARGV[0], INADDR_ANY)) or die; listen(S, 5); sleep 600' "$1" >/dev/null 2>&1 &
}}
listen 80; L80=$!
listen 25; L25=$!
# Until both listen.
for i in $(seq 100); do
  [ "$(ip netns exec rs1 awk '$4 == "0A"' /proc/net/tcp | wc -l)" -ge 2 ] && break
  sleep 0.05
done
audit() {{
  name=$1; ns=$2; shift 2
  out=$(ip netns exec $ns $L audit "$T" --format json "$@" 2>/run/audit/err); code=$?
  echo "@@begin $name"
  echo "$out"
  echo "@@end $name $code"
  sed 's/^/@@stderr /' /run/audit/err
}}
"#
    )
}

/// Runs `script` in a UML guest and returns its standard output.
fn guest(script: &str) -> String {
    let out = lvsdr(&["kernel-exec", "--kernel", "uml", "--timeout", "120", "--", "bash", "-c", script]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the guest script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Each audit's exit code and JSON report, by step name.
fn audits(output: &str) -> BTreeMap<String, (i32, Value)> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("@@begin ") {
            current = Some((name.to_string(), String::new()));
        } else if let Some(rest) = line.strip_prefix("@@end ") {
            let (name, code) = rest.rsplit_once(' ').expect("@@end NAME CODE");
            let (begun, json) = current.take().expect("@@begin before @@end");
            assert_eq!(begun, name);
            let value = serde_json::from_str(&json).unwrap_or(Value::Null);
            out.insert(name.to_string(), (code.parse().expect("an exit code"), value));
        } else if let Some((_, json)) = current.as_mut() {
            json.push_str(line);
            json.push('\n');
        }
    }
    out
}

fn codes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .map(|f| f.iter().map(|f| f["code"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

fn finding<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["code"] == code))
        .unwrap_or_else(|| panic!("no {code} in {report:#}"))
}

#[test]
#[ignore = "needs root"]
fn audit_finds_each_drift_made_by_hand_on_real_ipvs() {
    require_root();
    if !uml_available() {
        return;
    }
    let script = format!(
        r#"{}
audit clean-director dir
audit clean-rs1 rs1
audit picked-by-address dir
ip netns exec dir ipvsadm -e -t 192.168.1.192:80 -r 192.168.1.213:80 -g -w 1
audit weight dir; restore
ip netns exec dir ipvsadm -D -t 192.168.1.192:25
audit deleted-service dir; restore
ip netns exec dir ipvsadm -A -t 192.168.1.192:8080 -s rr
audit extra-service dir; restore
ip netns exec dir ipvsadm -E -t 192.168.1.192:80 -s wlc
audit scheduler dir; restore
ip -n dir addr del 192.168.1.192/32 dev eth0; ip -n dir addr add 192.168.1.192/32 dev eth1
audit vip-moved dir; ip -n dir addr del 192.168.1.192/32 dev eth1; restore
ip -n dir addr add 192.168.1.199/32 dev eth0
audit stale-vip dir; ip -n dir addr del 192.168.1.199/32 dev eth0
ip -n rs1 addr add 192.168.1.150/32 dev lo
audit stale-vip-on-lo rs1; ip -n rs1 addr del 192.168.1.150/32 dev lo
ip netns exec rs1 sysctl -q -w net.ipv4.conf.all.arp_ignore=0
audit arp-ignore-all rs1
ip netns exec rs1 sysctl -q -w net.ipv4.conf.eth0.arp_ignore=0
audit arp-ignore-effective rs1; restore
ip -n rs1 addr del 192.168.1.192/32 dev lo
audit vip-off-lo rs1; restore
kill $L25; wait $L25 2>/dev/null
audit no-listener-25 rs1
audit wrong-host dir --host nobody
ip netns exec dir ipvsadm -e -t 192.168.1.192:80 -r 192.168.1.213:80 -g -w 1
echo "@@prometheus-begin"
ip netns exec dir $L audit "$T" --format prometheus --textfile /run/audit/lvsdr.prom
echo "@@prometheus-end $?"
echo "@@textfile $(ls -A /run/audit | grep -c prom) $(cmp -s /run/audit/lvsdr.prom /dev/null; echo $?)"
exit 0
"#,
        setup_script()
    );
    let output = guest(&script);
    let runs = audits(&output);
    let step = |name: &str| -> &(i32, Value) { runs.get(name).unwrap_or_else(|| panic!("no step {name} in:\n{output}")) };

    for clean in ["clean-director", "clean-rs1"] {
        let (code, r) = step(clean);
        assert_eq!(*code, 0, "{clean}: {r:#}\n{output}");
        assert_eq!(r["ok"], true);
        assert!(codes(r).is_empty(), "{clean}: {r:#}");
    }
    assert_eq!(step("clean-director").1["compared"]["services"], 2);
    assert_eq!(step("clean-rs1").1["compared"]["listeners"], 2);
    assert!(
        output.contains("@@stderr auditing host `director`"),
        "without --host, the director is found by its address and named:\n{output}"
    );

    let (code, r) = step("weight");
    assert_eq!((*code, codes(r)), (1, vec!["DR205".to_string()]), "{r:#}");
    let f = finding(r, "DR205");
    assert_eq!(
        (&f["expected"], &f["found"], &f["real_server"]),
        (&"3".into(), &"1".into(), &"rs1".into())
    );

    let (code, r) = step("deleted-service");
    assert_eq!((*code, codes(r)), (1, vec!["DR200".to_string()]), "{r:#}");
    assert_eq!(finding(r, "DR200")["service"], "tcp 192.168.1.192:25");

    let (code, r) = step("extra-service");
    assert_eq!((*code, codes(r)), (1, vec!["DR201".to_string()]), "{r:#}");
    assert_eq!(finding(r, "DR201")["service"], "tcp 192.168.1.192:8080");

    let (code, r) = step("scheduler");
    assert_eq!((*code, codes(r)), (1, vec!["DR202".to_string()]), "{r:#}");
    let f = finding(r, "DR202");
    assert_eq!(
        (&f["key"], &f["expected"], &f["found"]),
        (&"scheduler".into(), &"rr".into(), &"wlc".into())
    );

    // A VIP left behind: on the director's NIC, on a real server's lo (DR213).
    for (name, shown, restore) in [
        ("stale-vip", "192.168.1.199/32 on eth0", "ip addr del 192.168.1.199/32 dev eth0"),
        ("stale-vip-on-lo", "192.168.1.150/32 on lo", "ip addr del 192.168.1.150/32 dev lo"),
    ] {
        let (code, r) = step(name);
        assert_eq!((*code, codes(r)), (1, vec!["DR213".to_string()]), "{name}: {r:#}");
        let f = finding(r, "DR213");
        assert_eq!((&f["found"], &f["restore"][0]), (&shown.into(), &restore.into()), "{name}: {r:#}");
    }

    let (code, r) = step("vip-moved");
    assert_eq!((*code, codes(r)), (1, vec!["DR207".to_string()]), "{r:#}");
    assert!(finding(r, "DR207")["message"].as_str().unwrap().contains("on eth1"), "{r:#}");

    let (code, r) = step("arp-ignore-all");
    assert_eq!((*code, codes(r)), (1, vec!["DR209".to_string()]), "{r:#}");
    assert_eq!(finding(r, "DR209")["key"], "net.ipv4.conf.all.arp_ignore");
    let (code, r) = step("arp-ignore-effective");
    assert_eq!((*code, codes(r)), (1, vec!["DR209".to_string()]), "{r:#}");
    let message = finding(r, "DR209")["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("net.ipv4.conf.all.arp_ignore=0") && message.contains("net.ipv4.conf.eth0.arp_ignore=0"),
        "both keys named: {message}"
    );

    let (code, r) = step("vip-off-lo");
    assert_eq!((*code, codes(r)), (1, vec!["DR207".to_string()]), "{r:#}");
    assert!(finding(r, "DR207")["message"].as_str().unwrap().contains("not on lo"));

    let (code, r) = step("no-listener-25");
    assert_eq!((*code, codes(r)), (1, vec!["DR210".to_string()]), "{r:#}");
    assert_eq!(finding(r, "DR210")["key"], "tcp/25");

    let (code, _) = step("wrong-host");
    assert_eq!(*code, 2, "an unknown --host is unusable input:\n{output}");

    // The Prometheus text, and the textfile written atomically beside it.
    let metrics = output
        .split("@@prometheus-begin\n")
        .nth(1)
        .and_then(|rest| rest.split("@@prometheus-end").next())
        .unwrap_or_else(|| panic!("no Prometheus output in:\n{output}"));
    assert!(output.contains("@@prometheus-end 1"), "drift exits 1:\n{output}");
    assert!(metrics.contains("lvsdr_audit_ok{host=\"director\"} 0"), "{metrics}");
    assert!(metrics.contains("key=\"weight\",expected=\"3\",found=\"1\"} 1"), "{metrics}");
    assert!(
        output.contains("@@textfile 1 1"),
        "one .prom file, not empty, no temporary file left:\n{output}"
    );
    promtool_accepts(metrics);
}

/// `promtool check metrics` (Debian's `prometheus`) accepts the text.
fn promtool_accepts(metrics: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!("promtool cannot run ({e}): install Debian's `prometheus` package (`cargo xtask setup` does)"),
    };
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(metrics.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics refused:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs root"]
fn audit_writes_nothing() {
    require_root();
    if !uml_available() {
        return;
    }
    // Everything a DR setup lives in, per namespace: the IPVS table with its
    // settings, links, addresses, routes of every table, neighbours, sysctls.
    let script = format!(
        r#"{}
dump() {{
  for ns in dir rs1; do
    echo "== $ns"
    ip netns exec $ns ipvsadm -S -n
    ip netns exec $ns ipvsadm -L -n --persistent-conn
    ip -n $ns -d link show
    ip -n $ns addr show
    ip -n $ns route show table all
    ip -n $ns -6 route show table all
    ip -n $ns neigh show
    ip netns exec $ns sysctl -a -r '^net\.' 2>/dev/null | grep -v -e '^net.netfilter.nf_conntrack_count' -e 'stable_secret'
  done
}}
dump > before
audit director dir
audit director-prometheus dir --textfile /run/audit/lvsdr.prom
audit rs1 rs1
audit rs1-again rs1 --host rs1
dump > after
echo "@@lines $(wc -l < before)"
if cmp -s before after; then echo "@@same"; else echo "@@differ"; diff before after; fi
exit 0
"#,
        setup_script()
    );
    let output = guest(&script);
    let runs = audits(&output);
    for step in ["director", "director-prometheus", "rs1", "rs1-again"] {
        assert_eq!(runs.get(step).map(|r| r.0), Some(0), "{step} audits clean:\n{output}");
    }
    let lines: usize = output
        .lines()
        .find_map(|l| l.strip_prefix("@@lines "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(lines > 100, "the dump holds the state ({lines} lines):\n{output}");
    assert!(output.contains("@@same"), "the audit changed the kernel's state:\n{output}");
}

/// An active/backup pair run by the real keepalived in the guest, each
/// director with the keepalived.conf `lvsdr render` writes for it, the real
/// servers with the real-server script and listeners that speak enough SMTP
/// for keepalived's SMTP_CHECK.
fn pair_script() -> String {
    let lvsdr = env!("CARGO_BIN_EXE_lvsdr");
    let topology = root().join(PAIR).display().to_string();
    format!(
        r#"set -u
L={lvsdr}
T={topology}
mkdir -p /run/pair && cd /run/pair || exit 90
$L render "$T" --artifact keepalived > all.conf || exit 91
awk '/^# keepalived.conf for /{{n++}} {{print > ("lb" n ".conf")}}' all.conf
$L render "$T" --artifact real-server > rs.sh || exit 92
$L render "$T" --artifact director | grep '^sysctl' > director-sysctls.sh
ip link add br0 type bridge && ip link set br0 up || exit 93
for h in lb1 lb2 rs1 rs2; do
  ip netns exec $h true 2>/dev/null || ip netns add $h
  ip netns exec $h sysctl -q -w net.ipv6.conf.default.accept_dad=0
  ip link add v-$h type veth peer name eth0 netns $h || exit 94
  ip link set v-$h master br0 up
  ip -n $h link set lo up; ip -n $h link set eth0 up
done
ip -n lb1 addr add 192.168.1.191/24 dev eth0
ip -n lb2 addr add 192.168.1.190/24 dev eth0
ip -n rs1 addr add 192.168.1.213/24 dev eth0
ip -n rs2 addr add 192.168.1.189/24 dev eth0
for h in lb1 lb2; do ip netns exec $h sh director-sysctls.sh; done
for h in rs1 rs2; do
  ip netns exec $h bash rs.sh $h >/dev/null || exit 95
  for p in 80 25; do
    ip netns exec $h perl -e 'use Socket; socket(S, PF_INET, SOCK_STREAM, 0) or die; setsockopt(S, SOL_SOCKET, SO_REUSEADDR, 1); bind(S, sockaddr_in($ARGV[0], INADDR_ANY)) or die; listen(S, 16); while (accept(C, S)) {{ select(C); $| = 1; print "220 lvsdr ESMTP\r\n" if $ARGV[0] == 25; while (<C>) {{ if (/^QUIT/i) {{ print "221 bye\r\n"; last }} print "250 ok\r\n" }} close C }}' $p >/dev/null 2>&1 &
  done
done
for h in lb1 lb2; do
  ip netns exec $h keepalived --dont-fork --use-file /run/pair/$h.conf --pid /run/pair/$h.pid --checkers_pid /run/pair/$h-c.pid --vrrp_pid /run/pair/$h-v.pid >/dev/null 2>&1 &
done
settled() {{
  ip -n lb1 addr show dev eth0 | grep -q 192.168.1.192 || return 1
  for h in lb1 lb2; do [ "$(ip netns exec $h ipvsadm -S -n | grep -c '^-a')" = 4 ] || return 1; done
}}
# keepalived adds its real servers after their first checks; with other guests
# beside this one on two cores that can take a while.
for i in $(seq 900); do settled && break; sleep 0.1; done
settled && echo "@@settled after $i" || echo "@@unsettled after 90 s"
audit() {{ name=$1; ns=$2; shift 2; audit_file $name $ns "$T" "$@"; }}
audit_file() {{
  name=$1; ns=$2; shift 2
  out=$(ip netns exec $ns $L audit "$@" --format json 2>/run/pair/err); code=$?
  echo "@@begin $name"
  echo "$out"
  echo "@@end $name $code"
  sed 's/^/@@stderr /' /run/pair/err
}}
audit master lb1
audit backup lb2
audit rs1 rs1
audit_file conf-master lb1 /run/pair/lb1.conf --host lb1
audit_file conf-elsewhere lb2 /run/pair/lb1.conf --host lb1
ip -n lb2 addr add 192.168.1.192/32 dev eth0
audit backup-with-vip lb2
ip -n lb2 addr del 192.168.1.192/32 dev eth0
kill -9 $(cat /run/pair/lb1.pid) $(cat /run/pair/lb1-c.pid) $(cat /run/pair/lb1-v.pid)
audit master-killed lb1
for i in $(seq 100); do ip -n lb2 addr show dev eth0 | grep -q 192.168.1.192 && break; sleep 0.1; done
audit backup-took-over lb2
exit 0
"#
    )
}

#[test]
#[ignore = "needs root"]
fn audit_of_a_keepalived_pair_follows_each_directors_vrrp_role() {
    require_root();
    if !uml_available() {
        return;
    }
    if !std::path::Path::new("/usr/sbin/keepalived").exists() {
        eprintln!("SKIPPED: no keepalived here (Debian's keepalived; `cargo xtask setup` installs it)");
        return;
    }
    let output = guest(&pair_script());
    assert!(
        !output.contains("@@unsettled"),
        "keepalived never programmed both tables:\n{output}"
    );
    let runs = audits(&output);
    let step = |name: &str| -> &(i32, Value) { runs.get(name).unwrap_or_else(|| panic!("no step {name} in:\n{output}")) };
    for clean in ["master", "backup", "rs1", "conf-master"] {
        let (code, r) = step(clean);
        assert_eq!(*code, 0, "{clean}: {r:#}\n{output}");
        assert!(codes(r).is_empty(), "{clean}: {r:#}");
    }
    assert!(output.contains("@@stderr auditing host `lb2`"), "{output}");
    // The backup holding no VIP was clean; holding it while the master is up is drift.
    let (code, r) = step("backup-with-vip");
    assert_eq!((*code, codes(r)), (1, vec!["DR212".to_string()]), "{r:#}");
    assert!(finding(r, "DR212")["message"].as_str().unwrap().contains("BACKUP"));
    // lb1's keepalived.conf, audited where keepalived runs with lb2's.
    let (code, r) = step("conf-elsewhere");
    assert_eq!(*code, 1, "{r:#}");
    assert!(codes(r).contains(&"DR211".to_string()), "{r:#}");
    // keepalived killed on the master: DR211 there; the backup takes the VIP: DR212 there.
    // keepalived gives its children a parent-death signal: a child may see the
    // parent die before its own -9 lands and clean up on its way out: the VRRP
    // child removes the VIP (then the master lacks the VIP its role says it holds:
    // DR212), the checker child the services (DR200). Or neither.
    let (code, r) = step("master-killed");
    let found = codes(r);
    assert_eq!(*code, 1, "{r:#}");
    assert!(found.contains(&"DR211".to_string()), "{r:#}");
    assert!(found.iter().all(|c| ["DR200", "DR211", "DR212"].contains(&c.as_str())), "{r:#}");
    let (code, r) = step("backup-took-over");
    assert_eq!((*code, codes(r)), (1, vec!["DR212".to_string()]), "{r:#}");
}

/// The production-sized director (635 services on 123 VIPs, 2,540 real-server
/// entries) programmed with `ipvsadm -R` in the guest audits clean, and the
/// audit's time is printed beside `ipvsadm -S -n`'s in the same kernel (the
/// median of 5; the test binary's build, so debug unless built with --release).
#[test]
#[ignore = "needs root"]
fn a_production_director_audits_clean_and_its_time_is_printed() {
    require_root();
    if !uml_available() {
        return;
    }
    // The script `cargo xtask bench` runs too.
    let script = format!(
        "bash {} {} {} 5",
        root().join("xtask/bench/audit-director.sh").display(),
        env!("CARGO_BIN_EXE_lvsdr"),
        root().join("fixtures/scale/production-director.dump").display()
    );
    let output = guest(&script);
    let runs = audits(&output);
    let (code, r) = runs.get("production").unwrap_or_else(|| panic!("no audit in:\n{output}"));
    assert_eq!(*code, 0, "the restored production table matches its dump: {r:#}");
    assert_eq!(
        (&r["compared"]["services"], &r["compared"]["real_servers"]),
        (&635.into(), &2540.into())
    );
    let mut audit_ms = Vec::new();
    let mut ipvsadm_ms = Vec::new();
    for line in output.lines().filter_map(|l| l.strip_prefix("@@time ")) {
        let mut n = line.split(' ').filter_map(|n| n.parse::<u64>().ok());
        audit_ms.extend(n.next());
        ipvsadm_ms.extend(n.next());
    }
    assert_eq!(audit_ms.len(), 5, "{output}");
    audit_ms.sort_unstable();
    ipvsadm_ms.sort_unstable();
    let (a, i) = (audit_ms[2], ipvsadm_ms[2].max(1));
    eprintln!(
        "audit of 635 services, 2,540 real-server entries: {a} ms (median of 5); ipvsadm -S -n: {i} ms; ratio {:.2}",
        a as f64 / i as f64
    );
}
