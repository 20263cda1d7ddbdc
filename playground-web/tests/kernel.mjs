// The playground's real kernel under node: boots the i386 guest of
// `cargo xtask guest-kernel` in v86 and proves DR in it, as the page will.
//
//   node playground-web/tests/kernel.mjs DIR PKG
//
// DIR holds what `cargo xtask guest-kernel` stages (libv86.mjs, v86.wasm,
// bios.bin, vgabios.bin, bzImage, initrd.gz, kernel.js); PKG the page's first
// WebAssembly core (lvsdr_lite.js and its wasm), whose packet walk the
// captured frames fill in. LVSDR_BIN names a host
// `lvsdr` binary, used only to turn the fixtures into canonical TOML (`lvsdr
// import`), as the page's WebAssembly core does. `cargo xtask kernel-test`
// runs this; it ends with `N passed, M failed`.
//
// 1. The seed topology: the lab passes on the guest's kernel, with the proofs
//    source-ip, reply-bypass, arp-owner and split present and passing.
// 2. In the same booted machine, the fault where rs2 answers ARP for the VIP:
//    arp-owner fails, on the real kernel.
// 3. The frames of both (the page asks for them): the seed's first connection
//    on every leg, in the walk and in a pcapng file (site/capture.js) that
//    Debian's tshark reads back, when it is installed.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.argv[2];
if (!dir || !process.argv[3]) {
  console.error("usage: node kernel.mjs DIR PKG");
  process.exit(2);
}
const lvsdr = process.env.LVSDR_BIN || "target/debug/lvsdr";
const { boot, files } = await import(pathToFileURL(path.join(dir, "kernel.js")).href);
const capture = await import(new URL("../site/capture.js", import.meta.url).href);

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${detail ? `\n     ${detail.replace(/\n/g, "\n     ")}` : ""}`);
  }
}

const canonical = (file) => execFileSync(lvsdr, ["import", file], { encoding: "utf8" });

/** The checks of a report whose name is `kind` or starts with `kind `. */
const checksOf = (report, kind) => report.checks.filter((c) => c.name === kind || c.name.startsWith(kind + " "));

const t0 = performance.now();
let kernel;
try {
  kernel = await boot(files(dir), {
    onProgress: (stage, detail) => {
      if (stage !== "progress") console.log(`#    ${stage}${detail ? `: ${detail}` : ""}`);
    },
  });
} catch (e) {
  check("the guest boots", false, e.message);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(1);
}
const bootMs = performance.now() - t0;
check("the guest boots", /^\d+\.\d+/.test(kernel.release), `release: ${kernel.release}`);

async function lab(name, file) {
  const started = performance.now();
  const result = await kernel.lab(canonical(file));
  const ms = performance.now() - started;
  console.log(`#    ${name}: ${Math.round(ms)} ms (in the guest ${result.ms} ms), exit ${result.code}`);
  for (const line of result.text.split("\n")) console.log(`#    | ${line}`);
  return { result, ms };
}

/** The core's packet walk of a fixture's first service, from the page's own
 * WebAssembly core (PKG: its pkg/ folder, which `cargo xtask kernel-test` builds). */
const pkg = process.argv[3];
const core = pkg ? await import(pathToFileURL(path.join(pkg, "lvsdr_lite.js")).href) : null;
if (core) await core.default({ module_or_path: readFileSync(path.join(pkg, "lvsdr_lite_bg.wasm")) });
function walkOf(file) {
  const setup = new core.Setup(JSON.stringify([{ name: path.basename(file), text: readFileSync(file, "utf8") }]));
  const r = JSON.parse(setup.walk(""));
  setup.free();
  if (!r.ok) throw new Error(`${file}: ${r.error}`);
  return r.steps;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** The seed's frames: every leg in the walk, and a pcapng file tshark reads. */
function framesOfSeed(report, stdout) {
  const log = report.frames;
  check("seed: the report carries the frames of every leg", !!log && log.frames.length > 0 && log.ports.length === 4, stdout.slice(0, 300));
  if (!log) return;
  const walk = capture.realWalk(walkOf("fixtures/seed-dr.toml"), report, "tcp/80");
  const legs = Object.fromEntries(walk.filter((s) => s.real).map((s) => [s.leg, s.real]));
  const missing = walk.filter((s) => !s.real || s.real.missing).map((s) => s.leg);
  check("seed: each step of the walk has its captured frame", missing.length === 0, `missing: ${missing}\n${JSON.stringify(walk.map((s) => s.real), null, 1)}`);
  if (missing.length) return;
  const [syn, fwd, reply] = [legs.syn.frame, legs.forward.frame, legs.reply.frame];
  check(
    "seed: the director's copy keeps the IP packet and changes the destination MAC",
    [syn.eth_src, syn.eth_dst, fwd.eth_dst].every((m) => MAC.test(m)) && fwd.ip_src === syn.ip_src && fwd.ip_dst === syn.ip_dst && fwd.eth_dst !== syn.eth_dst && legs.forward.changed.includes("eth_dst") && !legs.forward.changed.includes("ip_src"),
    JSON.stringify({ syn, fwd, changed: legs.forward.changed }),
  );
  check(
    "seed: the real server answers straight to the client, from the VIP and its own MAC",
    reply.ip_src === "192.168.1.192:80" && reply.eth_dst === syn.eth_src && reply.eth_src === fwd.eth_dst && legs.reply.port.role === "real-server",
    JSON.stringify({ reply, port: legs.reply.port }),
  );
  const pcap = new Uint8Array(capture.pcapngBytes(report));
  check("seed: the pcapng file starts with a section header", pcap.length > 100 && new DataView(pcap.buffer).getUint32(0, true) === 0x0a0d0d0a && new DataView(pcap.buffer).getUint32(8, true) === 0x1a2b3c4d);
  const tshark = spawnSync("tshark", ["--version"]);
  if (tshark.error) {
    console.log("#    tshark is not installed: the pcapng file is not read back");
    return;
  }
  const folder = mkdtempSync(path.join(tmpdir(), "lvsdr-kernel-pcap-"));
  try {
    const file = path.join(folder, "seed.pcapng");
    writeFileSync(file, pcap);
    const fields = ["frame.number", "frame.interface_name", "frame.comment", "eth.src", "eth.dst", "ip.src", "tcp.flags.str"];
    const out = spawnSync("tshark", ["-r", file, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f", ...fields.flatMap((f) => ["-e", f])], { encoding: "utf8" });
    const rows = out.stdout
      .trim()
      .split("\n")
      .map((l) => Object.fromEntries(l.split("\t").map((v, i) => [fields[i], v])));
    check("seed: tshark reads every frame of the file", out.status === 0 && rows.length === log.frames.length, `${out.stderr}\n${rows.length} of ${log.frames.length}`);
    const row = (n) => rows.find((r) => Number(r["frame.number"]) === n) || {};
    const [a, b, c] = [row(legs.syn.number), row(legs.forward.number), row(legs.reply.number)];
    check(
      "seed: tshark shows the SYN on the client's port, its copy on the director's with the destination MAC rewritten, and the SYN-ACK from the VIP on the real server's",
      a["frame.interface_name"] === "client" &&
        b["frame.interface_name"] === "director" &&
        c["frame.interface_name"] === legs.reply.port.host &&
        a["eth.dst"] !== b["eth.dst"] &&
        b["eth.dst"] === c["eth.src"] &&
        c["ip.src"] === "192.168.1.192" &&
        /tcp\/80 from 192\.168\.1\.100:\d+: the kernel chose rs\d; director → rs\d/.test(b["frame.comment"] || ""),
      JSON.stringify([a, b, c]),
    );
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

let first = 0;
let second = 0;
try {
  // 1. The seed: DR works, all four proofs.
  const seed = await lab("seed", "fixtures/seed-dr.toml");
  first = seed.ms;
  const report = seed.result.reports && seed.result.reports[0];
  check("seed: a report comes back", !!report, seed.result.stdout);
  if (report) {
    check("seed: the lab ran on the guest kernel", report.kernel === `v86 ${kernel.release}`, report.kernel);
    check("seed: the lab passes (exit 0)", report.pass && seed.result.code === 0, seed.result.text);
    for (const kind of ["source-ip", "reply-bypass", "arp-owner", "split"]) {
      const cs = checksOf(report, kind);
      check(
        `seed: ${kind} present and passing`,
        cs.length > 0 && cs.every((c) => c.pass),
        cs.map((c) => `${c.name}: expected ${c.expected}, seen ${c.seen}`).join("\n") || "missing",
      );
    }
    check(
      "seed: every connection reached a real server that saw the client",
      report.connections.length === 16 && report.connections.every((c) => c.real_server && c.source_seen === c.client),
      JSON.stringify(report.connections.slice(0, 3)),
    );
    check("seed: the human table names the kernel", seed.result.text.includes(`kernel: v86 ${kernel.release}`));
    framesOfSeed(report, seed.result.stdout);
  }

  // 2. A fault, in the same machine: rs2 answers ARP for the VIP.
  const fault = await lab("no-arp-sysctls", "fixtures/faults/no-arp-sysctls.toml");
  second = fault.ms;
  const bad = fault.result.reports && fault.result.reports[0];
  check("fault: a report comes back", !!bad, fault.result.stdout);
  if (bad) {
    const arp = checksOf(bad, "arp-owner");
    check(
      "fault: arp-owner fails (rs2's MAC, not the director's)",
      arp.length > 0 && arp.some((c) => !c.pass),
      arp.map((c) => `${c.name}: expected ${c.expected}, seen ${c.seen}`).join("\n") || "missing",
    );
    check("fault: the lab fails (exit 1)", !bad.pass && fault.result.code === 1, fault.result.text);
  }

  // 3. A fault whose frame never comes: rs2 has no VIP on lo and drops what the director sends it.
  const drop = await lab("no-vip-on-lo", "fixtures/faults/no-vip-on-lo.toml");
  const dropped = drop.result.reports && drop.result.reports[0];
  check("no-vip-on-lo: a report with frames comes back", !!(dropped && dropped.frames), drop.result.stdout.slice(0, 400));
  if (dropped && dropped.frames) {
    const walk = capture.realWalk(walkOf("fixtures/faults/no-vip-on-lo.toml"), dropped, "tcp/80");
    const broken = walk.find((s) => s.real && s.real.broken);
    check(
      "no-vip-on-lo: the walk breaks where rs2 takes the packet, with the failed check and DR003",
      broken && broken.leg === "deliver" && broken.real.checks.some((c) => c.name.startsWith("connectivity") && (c.explained_by || []).some((e) => e.startsWith("DR003"))),
      JSON.stringify(walk.map((s) => [s.leg, s.real && (s.real.number || s.real.note)]), null, 1) + "\n" + JSON.stringify(broken && broken.real.checks),
    );
  }
} catch (e) {
  check("the labs run", false, e.stack || String(e));
}

console.log(
  `# timings: boot ${Math.round(bootMs)} ms (download ${kernel.timings.downloadMs} ms), first lab ${Math.round(first)} ms, second lab ${Math.round(second)} ms`,
);
await kernel.destroy();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
