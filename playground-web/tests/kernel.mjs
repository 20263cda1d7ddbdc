// The playground's real kernel under node: boots the i386 guest of
// `cargo xtask guest-kernel` in v86 and proves DR in it, as the page will.
//
//   node playground-web/tests/kernel.mjs DIR
//
// DIR holds what `cargo xtask guest-kernel` stages (libv86.mjs, v86.wasm,
// bios.bin, vgabios.bin, bzImage, initrd.gz, kernel.js). LVSDR_BIN names a host
// `lvsdr` binary, used only to turn the fixtures into canonical TOML (`lvsdr
// import`), as the page's WebAssembly core does. `cargo xtask kernel-test`
// runs this; it ends with `N passed, M failed`.
//
// 1. The seed topology: the lab passes on the guest's kernel, with the proofs
//    source-ip, reply-bypass, arp-owner and split present and passing.
// 2. In the same booted machine, the fault where rs2 answers ARP for the VIP:
//    arp-owner fails, on the real kernel.

import { execFileSync } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node kernel.mjs DIR");
  process.exit(2);
}
const lvsdr = process.env.LVSDR_BIN || "target/debug/lvsdr";
const { boot, files } = await import(pathToFileURL(path.join(dir, "kernel.js")).href);

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
} catch (e) {
  check("the labs run", false, e.stack || String(e));
}

console.log(
  `# timings: boot ${Math.round(bootMs)} ms (download ${kernel.timings.downloadMs} ms), first lab ${Math.round(first)} ms, second lab ${Math.round(second)} ms`,
);
await kernel.destroy();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
