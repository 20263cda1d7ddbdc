// Browser tests for the playground, in Debian's Chromium driven by
// playwright-core. Usage: node browser.mjs URL SCREENSHOT_DIR
// Prints one line per test and a closing "N passed, M failed" line.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";

const require = createRequire(path.join(process.env.LVSDR_NODE_MODULES || "node_modules", "noop.js"));
const { chromium } = require("playwright-core");
const [url, shots] = process.argv.slice(2);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const seedScript = readFileSync(path.join(root, "fixtures/seed-dr.sh"), "utf8");
const seedToml = readFileSync(path.join(root, "fixtures/seed-dr.toml"), "utf8");

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let passed = 0, failed = 0;
const measurements = {};

async function page(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, ...options });
  const p = await context.newPage();
  p.consoleErrors = [];
  p.on("console", (m) => m.type() === "error" && p.consoleErrors.push(m.text()));
  p.on("pageerror", (e) => p.consoleErrors.push(String(e)));
  await p.goto(url);
  await p.waitForSelector('[data-testid="diagnostics"] li');
  return p;
}

async function setSource(p, text) {
  await p.fill('[data-testid="editor"]', text);
  await p.waitForFunction((t) => document.querySelector('[data-testid="editor"]').value === t, text);
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

async function test(name, body) {
  const p = await page();
  try {
    await body(p);
    assert(p.consoleErrors.length === 0, `console errors: ${p.consoleErrors.join(" | ")}`);
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  } finally {
    await p.context().close();
  }
}

await test("the seed script shows the rr-weights warning and the route line", async (p) => {
  await setSource(p, seedScript);
  assert((await p.textContent('[data-testid="format"]')).trim() === "script", "format is script");
  const items = await p.$$eval('[data-testid="diagnostic"]', (els) => els.map((e) => ({ text: e.textContent, line: Number(e.dataset.line) })));
  const lineOf = (needle) => seedScript.split("\n").findIndex((l) => l.includes(needle)) + 1;
  const rr = items.find((i) => i.text.includes("DR008"));
  assert(rr && rr.line === lineOf("-s rr"), `DR008 at line ${lineOf("-s rr")}: ${JSON.stringify(rr)}`);
  const route = items.find((i) => i.text.includes("DR104"));
  assert(route && route.line === lineOf("route add -host $vip lo:1"), `DR104 at the route line: ${JSON.stringify(route)}`);
  // Clicking a diagnostic selects its line in the editor.
  await p.click('[data-testid="diagnostic"]:has-text("DR104")');
  const selected = await p.$eval('[data-testid="editor"]', (e) => e.value.slice(e.selectionStart, e.selectionEnd));
  assert(selected === "route add -host $vip lo:1", `selected: ${selected}`);
});

await test("the diagram has one node per host", async (p) => {
  await setSource(p, seedToml);
  const nodes = await p.$$eval('[data-testid="topology"] [data-testid="node"]', (els) => els.map((e) => e.dataset.node));
  assert(JSON.stringify(nodes.sort()) === JSON.stringify(["client", "director", "rs1", "rs2"]), `nodes: ${nodes}`);
});

await test("every artifact tab is non-empty", async (p) => {
  await setSource(p, seedToml);
  for (const id of ["director", "real-server", "restore", "sysctl", "keepalived"]) {
    const text = await p.textContent(`[data-testid="artifact-${id}"]`);
    assert(text.trim().length > 40 && !text.includes("cannot generate"), `${id} is empty`);
  }
  await p.click('button[data-artifact="restore"]');
  assert(await p.isVisible('[data-testid="artifact-restore"]'), "the restore tab shows");
});

await test("the simulator gives 6:2 for wrr 3:1 over 8 connections", async (p) => {
  await setSource(p, seedToml.replaceAll('scheduler = "rr"', 'scheduler = "wrr"'));
  await p.fill("#sim-connections", "8");
  const counts = await p.textContent('[data-testid="sim-counts"]');
  assert(counts.includes("rs1: 6") && counts.includes("rs2: 2"), `counts: ${counts}`);
  // Changing a weight updates it live.
  await setSource(p, seedToml.replaceAll('scheduler = "rr"', 'scheduler = "wrr"').replaceAll("weight = 3", "weight = 1"));
  const even = await p.textContent('[data-testid="sim-counts"]');
  assert(even.includes("rs1: 4") && even.includes("rs2: 4"), `counts after the edit: ${even}`);
});

await test("a share URL round-trips", async (p) => {
  const text = seedToml.replace('name = "seed"', 'name = "shared-by-test"');
  await setSource(p, text);
  await p.click('[data-testid="share"]');
  await p.waitForFunction(() => location.hash.startsWith("#s="));
  const shared = p.url();
  const q = await p.context().newPage();
  await q.goto(shared);
  await q.waitForSelector('[data-testid="diagnostics"] li');
  const restored = await q.$eval('[data-testid="editor"]', (e) => e.value);
  assert(restored === text, "the editor holds the shared topology");
});

await test("the packet walk steps through every hop", async (p) => {
  await setSource(p, seedToml);
  const titles = [];
  for (let i = 0; i < 10; i++) {
    titles.push(await p.textContent('[data-testid="walk-title"]'));
    if (await p.isDisabled('[data-testid="walk-next"]')) break;
    await p.click('[data-testid="walk-next"]');
  }
  assert(titles.length === 6, `6 hops, got ${titles.length}: ${titles.join(" / ")}`);
  assert(titles[0].includes("asks who has the VIP") && titles[3].includes("rewrites only the destination MAC") && titles[5].includes("straight to the client"), titles.join(" / "));
  // The ARP mistake shows a real server answering.
  await setSource(p, readFileSync(path.join(root, "fixtures/faults/no-arp-sysctls.toml"), "utf8"));
  await p.click('[data-testid="walk-next"]');
  const trap = await p.textContent('[data-testid="walk-title"]');
  assert(trap.includes("rs2 answers the ARP request"), trap);
});

await test("a safe fix applies and diagnostics update within 50 ms of a keystroke", async (p) => {
  await setSource(p, seedToml.replace("vip_on_lo = 32", "vip_on_lo = 24"));
  await p.click('[data-testid="diagnostic"]:has-text("DR004") button.fix');
  const value = await p.$eval('[data-testid="editor"]', (e) => e.value);
  assert(!value.includes("vip_on_lo = 24"), "the fix replaced the prefix");
  await setSource(p, seedToml);
  await p.evaluate(() => (window.__lvsdr.timings = []));
  await p.focus('[data-testid="editor"]');
  for (const key of ["End", "#", " ", "x"]) await p.keyboard.press(key);
  const timings = await p.evaluate(() => window.__lvsdr.timings);
  const worst = Math.max(...timings.map((t) => t.diagnosticsMs));
  measurements.keystroke_to_diagnostics_ms = Number(worst.toFixed(2));
  measurements.keystroke_full_update_ms = Number(Math.max(...timings.map((t) => t.totalMs)).toFixed(2));
  assert(timings.length >= 3 && worst < 50, `diagnostics took ${worst} ms`);
});

await test("the examples menu loads every example without errors", async (p) => {
  const count = await p.$$eval('[data-testid="examples"] option', (o) => o.length);
  assert(count >= 8, `${count} examples`);
  for (let i = 0; i < count; i++) {
    await p.selectOption('[data-testid="examples"]', String(i));
    const n = await p.$$eval('[data-testid="topology"] [data-testid="node"]', (els) => els.length);
    assert(n >= 3, `example ${i} draws a topology`);
  }
});

await test("the release wasm is at most 400 KB, 150 KB gzipped", async (p) => {
  const wasm = readFileSync(path.join(root, "target/playground/pkg/lvsdr_wasm_bg.wasm"));
  measurements.wasm_bytes = wasm.length;
  measurements.wasm_gzip_bytes = gzipSync(wasm, { level: 9 }).length;
  assert(wasm.length <= 400_000 && measurements.wasm_gzip_bytes <= 150_000, `${wasm.length} bytes, ${measurements.wasm_gzip_bytes} gzipped`);
});

await test("a diagnostic's code opens its rule text", async (p) => {
  await setSource(p, seedToml);
  await p.click('[data-testid="diagnostic"]:has-text("DR008") a.code');
  const doc = await p.textContent("#rule-doc");
  assert(doc.includes("What it does") && doc.includes("wrr"), doc.slice(0, 200));
});

// Screenshots: light and dark, desktop and phone.
for (const [name, options] of [
  ["light-desktop", { colorScheme: "light", viewport: { width: 1400, height: 1000 } }],
  ["dark-desktop", { colorScheme: "dark", viewport: { width: 1400, height: 1000 } }],
  ["light-phone", { colorScheme: "light", viewport: { width: 390, height: 844 }, isMobile: true }],
  ["dark-phone", { colorScheme: "dark", viewport: { width: 390, height: 844 }, isMobile: true }],
]) {
  const p = await page(options);
  await setSource(p, seedScript);
  await p.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  await p.context().close();
}

await browser.close();
console.log(`measurements: ${JSON.stringify(measurements)}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
