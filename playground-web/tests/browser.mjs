// Browser tests for the playground, in Debian's Chromium driven by
// playwright-core. Usage: node browser.mjs URL SCREENSHOT_DIR
// (LVSDR_BROWSER_ONLY=TEXT runs only the tests whose names hold TEXT).
// Prints one line per test and a closing "N passed, M failed" line.
import { createRequire } from "node:module";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { deflateRawSync, gzipSync } from "node:zlib";
import path from "node:path";

const require = createRequire(path.join(process.env.LVSDR_NODE_MODULES || "node_modules", "noop.js"));
const { chromium } = require("playwright-core");
const [url, shots] = process.argv.slice(2);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const seedScript = readFileSync(path.join(root, "fixtures/seed-dr.sh"), "utf8");
const seedToml = readFileSync(path.join(root, "fixtures/seed-dr.toml"), "utf8");
const fixture = (name) => readFileSync(path.join(root, "fixtures", name), "utf8");

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
  await settled(p);
  return p;
}

/** Waits until every view shows the current reading (the list is `aria-busy` until then). */
const settled = (p) => p.waitForSelector('[data-testid="diagnostics"][aria-busy="false"] li');

/** The active tab's text, as the editor shows it (its lines; the test sources fit in its viewport). */
const editorText = (p) => p.$eval('[data-testid="editor"]', (e) => [...e.querySelectorAll(".cm-line, .preview-text")].map((l) => l.textContent).join("\n"));

/** Waits until the active tab shows `text` (the editor draws lines as it measures them). */
const waitForText = (p, text) =>
  p
    .waitForFunction(
      (t) => [...document.querySelector("#editor-host").shadowRoot.querySelectorAll('[data-testid="editor"] :is(.cm-line, .preview-text)')].map((l) => l.textContent).join("\n") === t,
      text,
      { timeout: 5000 },
    )
    .then(
      () => true,
      () => false,
    );

/** Replaces the active tab's text by pasting it (a clipboard paste event, as the browser sends one),
 * once the focus has brought the real editor (a test of its own covers keys that come before it). */
async function paste(p, text) {
  await p.focus('[data-testid="editor"]');
  await p.waitForSelector('[data-testid="editor"].cm-content');
  await p.keyboard.press("Control+a");
  await p.$eval(
    '[data-testid="editor"]',
    (editor, t) => {
      const clipboardData = new DataTransfer();
      clipboardData.setData("text/plain", t);
      editor.dispatchEvent(new ClipboardEvent("paste", { clipboardData, bubbles: true, cancelable: true }));
    },
    text,
  );
}

/** Pastes `text` into the active tab, and waits until the editor shows it and the reading is done. */
async function setSource(p, text) {
  await paste(p, text);
  await p.waitForFunction(
    (t) => [...document.querySelector("#editor-host").shadowRoot.querySelectorAll('[data-testid="editor"] :is(.cm-line, .preview-text)')].map((l) => l.textContent).join("\n") === t,
    text,
  );
  await settled(p);
}

/** The findings in the list: code, text, line, and the tab they are in. */
const findings = (p) => p.$$eval('[data-testid="diagnostic"]', (els) => els.map((e) => ({ code: e.querySelector(".code").textContent, text: e.textContent, line: Number(e.dataset.line), file: Number(e.dataset.file) })));

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

// LVSDR_BROWSER_ONLY=text runs only the tests whose name holds it (while working on one).
const only = process.env.LVSDR_BROWSER_ONLY;

async function test(name, body) {
  if (only && !name.includes(only)) return;
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
  // Clicking a diagnostic puts the cursor on its span: typing replaces it.
  await p.click('[data-testid="diagnostic"]:has-text("DR104")');
  await p.keyboard.type("X");
  assert((await editorText(p)).includes("route add -host $vip X\n"), "the DR104 span (lo:1) was selected");
});

await test("a pasted seed script is underlined at each finding, with gutter markers", async (p) => {
  await setSource(p, seedScript);
  const ranges = await p.$$eval(".cm-lintRange", (els) => els.map((e) => ({ cls: e.className, text: e.textContent, line: e.closest(".cm-line").textContent })));
  const rr = ranges.find((r) => r.line === "$ipvs -A -t $vip:80 -s rr");
  assert(rr && rr.cls.includes("cm-lintRange-warning"), `DR008 underlines the rr line: ${JSON.stringify(ranges)}`);
  assert(ranges.some((r) => r.text === "lo:1" && r.cls.includes("warning")), `DR104 underlines lo:1: ${JSON.stringify(ranges)}`);
  assert(ranges.some((r) => r.cls.includes("cm-lintRange-info")), "the note is underlined in its own colour");
  assert((await p.$$eval(".cm-lint-marker-warning", (els) => els.length)) >= 3, "warning markers in the gutter");
});

await test("hovering an underline shows the DR code, message and help, and the code opens the rule", async (p) => {
  await setSource(p, seedScript);
  await p.hover('.cm-line:has-text("-A -t $vip:80 -s rr") .cm-lintRange');
  const tooltip = await p.waitForSelector(".cm-tooltip-lint");
  const text = await tooltip.textContent();
  assert(text.includes("DR008") && text.includes("ignores the weights") && text.includes("help: use `wrr`"), text);
  await p.click('.cm-tooltip-lint a[data-code="DR008"]');
  await p.waitForSelector("#rule-panel:not([hidden])");
  assert((await p.textContent("#rule-doc")).includes("What it does"), "the rule's text opens");
});

await test("a quick fix in the tooltip edits the text in place, and undo takes it back", async (p) => {
  await setSource(p, seedScript);
  await p.hover('.cm-line:has-text("-A -t $vip:80 -s rr") .cm-lintRange');
  const action = await p.waitForSelector(".cm-tooltip-lint .cm-diagnosticAction");
  assert((await action.textContent()).startsWith("Fix (changes behaviour)"), await action.textContent());
  await action.click();
  await settled(p);
  const text = await editorText(p);
  assert(text.includes("$ipvs -A -t $vip:80 -s wrr\n") && text.includes("$ipvs -A -t $vip:25 -s rr\n"), "only tcp/80's scheduler changed");
  const dr008 = (await findings(p)).filter((f) => f.code === "DR008");
  assert(dr008.length === 1 && dr008[0].text.includes("tcp/25"), `one DR008 left: ${JSON.stringify(dr008)}`);
  await p.focus('[data-testid="editor"]');
  await p.keyboard.press("Control+z");
  await settled(p);
  assert(await waitForText(p, seedScript), "undo restores the script");
});

// The seed script is the director's part and the real servers' part; as two tabs it is the same setup.
const [seedDirector, seedRealServers] = (() => {
  const cut = seedScript.indexOf("#!/bin/sh", 1);
  return [seedScript.slice(0, cut), seedScript.slice(cut)];
})();

async function twoTabs(p) {
  await setSource(p, seedDirector);
  assert((await findings(p)).some((f) => f.code === "DR103" && f.text.includes("nothing of the real servers")), "alone, the director's part assumes the real servers");
  await p.click('[data-testid="add-file"]');
  await p.waitForFunction(() => document.querySelectorAll('[data-testid="file-tab"]').length === 2);
  await setSource(p, seedRealServers);
}

await test("two tabs are one setup: the seed script split in two reads as the whole", async (p) => {
  await twoTabs(p);
  const two = await findings(p);
  assert(!two.some((f) => f.code === "DR103"), `nothing assumed: ${JSON.stringify(two)}`);
  assert(two.filter((f) => f.code === "DR008").every((f) => f.file === 0), "DR008 in the first tab");
  const route = two.find((f) => f.code === "DR104");
  assert(route && route.file === 1 && route.line === seedRealServers.split("\n").findIndex((l) => l.includes("route add")) + 1, `DR104 in the second tab at its own line: ${JSON.stringify(route)}`);
  assert(route.text.includes("file2:"), `the list names the tab: ${route.text}`);
  // The same findings as the whole script in one tab.
  const whole = await page();
  await whole.bringToFront();
  await setSource(whole, seedScript);
  const codes = (list) => list.map((f) => f.code).sort().join();
  assert(codes(two) === codes(await findings(whole)), `${codes(two)} vs ${codes(await findings(whole))}`);
  await whole.context().close();
  await p.bringToFront();
  // Clicking the DR104 finding shows the second tab with the cursor on it.
  await p.click('[data-testid="file-tab"]:first-child .tab-name');
  await p.click('[data-testid="diagnostic"]:has-text("DR104")');
  assert(await waitForText(p, seedRealServers), "the second tab is shown");
  const nodes = await p.$$eval('[data-testid="node"]', (els) => els.map((e) => e.dataset.node).sort());
  assert(nodes.join() === "client,director,rs1,rs2", `nodes: ${nodes}`);
});

await test("a share link holds every tab, with its name", async (p) => {
  await twoTabs(p);
  await p.dblclick('[data-testid="file-tab"]:nth-child(2) .tab-name');
  await p.fill(".tab-rename", "real-servers.sh");
  await p.keyboard.press("Enter");
  await p.click('[data-testid="share"]');
  await p.waitForFunction(() => location.hash.startsWith("#f="));
  const q = await p.context().newPage();
  await q.goto(p.url());
  await q.bringToFront();
  await settled(q);
  const tabs = await q.$$eval('[data-testid="file-tab"] .tab-name', (els) => els.map((e) => e.textContent));
  const first = await p.textContent('[data-testid="file-tab"]:first-child .tab-name');
  assert(tabs.join() === `${first},real-servers.sh`, `tabs: ${tabs}`);
  assert(await waitForText(q, seedDirector), "the first tab's text");
  await q.click('[data-testid="file-tab"]:nth-child(2) .tab-name');
  assert(await waitForText(q, seedRealServers), "the second tab's text");
  assert((await findings(q)).some((f) => f.code === "DR104" && f.text.includes("real-servers.sh:")), "findings name the renamed tab");
});

await test("the examples include a director script with a real-server script, and a keepalived pair", async (p) => {
  await pickExample(p, "with the real servers' script");
  assert((await p.$$eval('[data-testid="file-tab"]', (els) => els.length)) === 2, "two tabs");
  assert(!(await findings(p)).some((f) => f.code === "DR103"), "read as one setup");
  await pickExample(p, "keepalived pair");
  const tabs = await p.$$eval('[data-testid="file-tab"] .tab-name', (els) => els.map((e) => e.textContent));
  assert(tabs.join() === "lb1.conf,lb2.conf,rs.sh", `tabs: ${tabs}`);
  const directors = await p.$$eval('[data-testid="node"]', (els) => els.filter((g) => g.dataset.role === "director").length);
  assert(directors === 2, "both directors drawn");
});

await test("every tab is linted without being shown: its findings are listed, and its squiggles are there when it first shows", async (p) => {
  await pickExample(p, "keepalived pair");
  // lb2.conf, never shown, is read with the others: its finding is in the list.
  const second = (await findings(p)).filter((f) => f.file === 1);
  assert(second.some((f) => f.code === "DR103" && f.text.includes("lb2.conf:")), `lb2.conf's findings: ${JSON.stringify(await findings(p))}`);
  const editors = await p.evaluate(() => document.querySelector("#editor-host").shadowRoot.querySelectorAll(".cm-editor, .preview").length);
  assert(editors === 1, `only the shown tab has an editor yet: ${editors}`);
  // Shown, it carries its underlines at once, with no new reading in between
  // (in its light view: nobody has touched an editor yet).
  await p.click('[data-testid="file-tab"]:nth-child(2) .tab-name');
  const ranges = await p.$$eval('[data-testid="editor"] :is(.cm-lintRange, .preview-mark)', (els) => els.length);
  assert(ranges >= 1 && (await p.getAttribute('[data-testid="diagnostics"]', "aria-busy")) === "false", `underlines in lb2.conf on showing it: ${ranges}`);
});

await test("completion offers the core's scheduler names and the fields of the table", async (p) => {
  await setSource(p, seedToml);
  await p.click('.cm-line:has-text("scheduler = \\"rr\\"")');
  await p.keyboard.press("End");
  for (let i = 0; i < 3; i++) await p.keyboard.press("Backspace");
  await p.keyboard.type("w");
  await p.waitForSelector(".cm-tooltip-autocomplete");
  const options = await p.$$eval(".cm-tooltip-autocomplete li", (els) => els.map((e) => e.textContent));
  assert(options.includes("wrr") && options.includes("wlc") && !options.includes("rr"), `schedulers: ${options}`);
  await p.keyboard.press("Escape");
  // A new line in [[real_server]] offers its fields.
  await p.click('.cm-line:has-text("vip_on_lo = 32") >> nth=0');
  await p.keyboard.press("End");
  await p.keyboard.press("Enter");
  await p.keyboard.type("vi");
  await p.waitForSelector(".cm-tooltip-autocomplete");
  const fields = await p.$$eval(".cm-tooltip-autocomplete li", (els) => els.map((e) => e.textContent));
  assert(fields.includes("vip_on_lo"), `fields: ${fields}`);
});

/** The completion list after typing `text` on a new line below the editor line that is exactly `line`. */
async function completeAfter(p, line, text) {
  const exact = new RegExp(`^\\s*${line.trim().replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*$`);
  await p.locator(".cm-line").filter({ hasText: exact }).first().click();
  await p.keyboard.press("End");
  await p.keyboard.press("Enter");
  await p.keyboard.type(text);
  await p.waitForSelector(".cm-tooltip-autocomplete");
  const options = await p.$$eval(".cm-tooltip-autocomplete li", (els) => els.map((e) => e.textContent));
  await p.keyboard.press("Escape");
  return options;
}

await test("completion in keepalived.conf offers the keywords the importer knows in the block at the cursor", async (p) => {
  await setSource(p, fixture("seed-keepalived.conf"));
  // In a real_server: its settings and the checkers, not the virtual_server's.
  const real = await completeAfter(p, "        weight 3", "w");
  assert(real.includes("weight") && !real.includes("lb_algo"), `real_server: ${real}`);
  const checkers = await completeAfter(p, "        weight 1", "T");
  assert(checkers.includes("TCP_CHECK"), `checkers in a real_server: ${checkers}`);
  // In the virtual_server, after the real_server blocks closed above the cursor.
  const virtual = await completeAfter(p, "    lb_algo rr", "l");
  assert(virtual.includes("lb_algo") && virtual.includes("lb_kind"), `virtual_server: ${virtual}`);
  assert(!virtual.includes("lthreshold") && !virtual.includes("uthreshold"), `no real_server keywords in a virtual_server: ${virtual}`);
  // In a checker, and in vrrp_instance.
  const checker = await completeAfter(p, "            connect_timeout 3", "conn");
  assert(checker.includes("connect_port") && checker.includes("connect_ip") && !checker.includes("weight"), `TCP_CHECK: ${checker}`);
  const vrrp = await completeAfter(p, "    priority 100", "vi");
  assert(vrrp.includes("virtual_router_id") && vrrp.includes("virtual_ipaddress") && !vrrp.includes("virtual_server"), `vrrp_instance: ${vrrp}`);
});

await test("Format as TOML turns the pasted script into canonical TOML that reads the same", async (p) => {
  await setSource(p, seedScript);
  const before = (await findings(p)).filter((f) => f.code.startsWith("DR0")).map((f) => f.code).sort().join();
  await p.click('[data-testid="format-toml"]');
  await settled(p);
  const text = await editorText(p);
  assert(text.startsWith("version = 2") || text.includes("\nversion = 2"), text.slice(0, 200));
  assert((await p.textContent('[data-testid="format"]')).trim() === "toml", "now TOML");
  const after = (await findings(p)).filter((f) => f.code.startsWith("DR0")).map((f) => f.code).sort().join();
  assert(after === before, `the same rule findings: ${before} vs ${after}`);
});

/** An `ipvsadm -S -n` dump of `vips` VIPs with 11 real servers each: 12 lines per VIP. */
function bigDump(vips) {
  const lines = [];
  for (let v = 0; v < vips; v++) {
    const vip = `10.${(v >> 8) & 255}.${v & 255}.1`;
    lines.push(`-A -t ${vip}:80 -s wrr`);
    for (let r = 0; r < 11; r++) lines.push(`-a -t ${vip}:80 -r 192.168.${r}.${(v % 250) + 2}:80 -g -w 1`);
  }
  return lines.join("\n") + "\n";
}

// The issue's target is 300 ms, three runs out of three; BENCHMARKS.md has the
// figures (120-140 ms). This bound, with room for a loaded CI machine, keeps them from growing. The first key after a paste also
// pays one-time costs: it is recorded apart, and so is the page's own split of
// each reading (performance.measure: the wasm read, the findings as JSON, shown).
await test("a keystroke in a 12,000-line dump shows its squiggles within 500 ms, the first after a paste too", async (p) => {
  const dump = bigDump(1000);
  // Pasted as a visitor would (the editor draws only the lines in view, so the wait is on the reading).
  await paste(p, dump);
  await p.waitForFunction(() => document.querySelector('[data-testid="format"]').textContent.trim() === "ipvsadm-save", null, { timeout: 30000 });
  await settled(p);
  assert((await p.$$eval('[data-testid="diagnostic"]', (els) => els.length)) === 500, "the dump's findings are listed (the first 500)");
  // The diagram draws 23 of its 2,750 real servers and a box counting the rest, and
  // at most 12 lines a box: a thousand VIPs are not 30,000 SVG elements to paint at every key.
  const diagram = await p.evaluate(() => ({
    elements: document.querySelectorAll("#topology svg *").length,
    servers: document.querySelectorAll('#topology [data-role="real_server"]').length,
    more: document.querySelector('#topology [data-testid="more-servers"]')?.dataset.count,
    director: [...document.querySelectorAll('#topology [data-node="director"] text')].map((t) => t.textContent),
  }));
  measurements.dump_12000_diagram_elements = diagram.elements;
  assert(diagram.servers === 23 && diagram.more === "2727" && diagram.elements < 1000, `the dump's diagram: ${JSON.stringify(diagram).slice(0, 400)}`);
  assert(diagram.director.length === 13 && /… and \d+ more/.test(diagram.director[12]), `the director's box: ${diagram.director}`);
  await p.focus('[data-testid="editor"]');
  await p.keyboard.press("Control+End");
  await p.evaluate(() => performance.clearMeasures());
  const [first, ...times] = await keystrokes(p, ["#", " ", "x", "Backspace"]);
  const worst = Math.max(...times);
  const split = await p.evaluate(() => performance.getEntriesByType("measure").filter((m) => m.name.startsWith("lvsdr ")).map((m) => [m.name.slice(6), Math.round(m.duration)]));
  measurements.dump_12000_first_keystroke_after_paste_ms = Number(first.toFixed(1));
  measurements.dump_12000_keystroke_to_squiggles_ms = times.map((t) => Number(t.toFixed(1)));
  measurements.dump_12000_reading_split_ms = split;
  assert(first < 500 && worst < 500, `keystroke to squiggles: first ${first.toFixed(1)}, then ${times.map((t) => t.toFixed(1)).join(", ")} ms`);
});

await test("the diagram has one node per host", async (p) => {
  await setSource(p, seedToml);
  const nodes = await p.$$eval('[data-testid="topology"] [data-testid="node"]', (els) => els.map((e) => e.dataset.node));
  assert(JSON.stringify(nodes.sort()) === JSON.stringify(["client", "director", "rs1", "rs2"]), `nodes: ${nodes}`);
});

/** Picks the example whose name contains `needle` from the menu, as a visitor would. */
async function pickExample(p, needle) {
  const options = await p.$$eval('[data-testid="examples"] option', (els) => els.map((e) => ({ value: e.value, name: e.textContent })));
  const option = options.find((o) => o.name.includes(needle));
  assert(option, `no example named ${needle}: ${options.map((o) => o.name).join(" / ")}`);
  await p.selectOption('[data-testid="examples"]', option.value);
  await settled(p);
}

await test("the dual-stack example draws every VIP, IPv6 too, and walks the IPv6 service by neighbour solicitation", async (p) => {
  await pickExample(p, "Dual stack");
  // The editor draws the lines in view (71 lines are more): those are the fixture's first ones.
  const shown = await editorText(p);
  assert(shown.length > 400 && fixture("dual-stack.toml").startsWith(shown), "the editor holds fixtures/dual-stack.toml");
  const vips = await p.$$eval('[data-testid="node"]', (els) => Object.fromEntries(els.map((g) => [g.dataset.node, [...g.querySelectorAll("[data-vip]")].map((t) => t.dataset.vip)])));
  const all = ["192.168.1.192", "192.168.1.193", "2001:db8:1::192"];
  assert(JSON.stringify(vips.director) === JSON.stringify(all), `director VIPs: ${JSON.stringify(vips)}`);
  // Each real server holds on lo the VIPs of its services.
  assert(JSON.stringify(vips.rs2) === JSON.stringify(all), `rs2's lo VIPs: ${vips.rs2}`);
  assert(JSON.stringify(vips.rs3) === JSON.stringify(["192.168.1.193", "2001:db8:1::192"]), `rs3's lo VIPs: ${vips.rs3}`);
  const director = await p.textContent('[data-testid="node"][data-node="director"]');
  assert(director.includes("2001:db8:1::191/64") && director.includes("IPVS 2001:db8:1::192: tcp/80"), director);
  // Services by label, in both the simulator and the walk.
  const labels = await p.$$eval("#walk-service option", (els) => els.map((e) => e.value));
  assert(JSON.stringify(labels) === JSON.stringify(["tcp 192.168.1.192:80", "tcp 192.168.1.193:25", "tcp [2001:db8:1::192]:80"]), `walk services: ${labels}`);
  await p.selectOption('[data-testid="sim-service"]', "tcp [2001:db8:1::192]:80");
  const counts = await p.textContent('[data-testid="sim-counts"]');
  assert(["rs1", "rs2", "rs3"].every((rs) => counts.includes(`${rs}: `)), `IPv6 mh counts: ${counts}`);
  assert((await p.textContent("#sim-scheduler")).includes("mh: which real server the kernel picks for each new IPv6 connection"), "the simulator names the IPv6 service's scheduler");
  await p.selectOption('[data-testid="walk-service"]', "tcp [2001:db8:1::192]:80");
  assert((await p.textContent('[data-testid="walk-pos"]')).startsWith("step 1 of"), "the walk starts over");
  const what = await p.textContent("#f-what");
  assert(what.includes("neighbour solicitation for 2001:db8:1::192"), `first hop: ${what}`);
  assert((await p.textContent("#f-ip_src")) === "2001:db8:1::100", "from the client's IPv6 address");
  const titles = [];
  for (let i = 0; i < 10; i++) {
    titles.push(await p.textContent('[data-testid="walk-title"]'));
    if (await p.isDisabled('[data-testid="walk-next"]')) break;
    await p.click('[data-testid="walk-next"]');
  }
  assert(titles.some((t) => t.includes("straight to the client")), titles.join(" / "));
  // The IPv4 service on the second VIP still asks by ARP.
  await p.selectOption('[data-testid="walk-service"]', "tcp 192.168.1.193:25");
  assert((await p.textContent("#f-what")).includes("ARP"), await p.textContent("#f-what"));
});

await test("a long IPv6 address is cut in the diagram but kept whole in its tooltip", async (p) => {
  const long = "2001:db8:1:0:aaaa:bbbb:cccc:192";
  await setSource(p, fixture("ipv6-dr.toml").replace('vip = "2001:db8:1::192"', `vip = "${long}"`).replace('interface = "eth0"\n', 'interface = "eth0-uplink-x"\n'));
  const line = await p.$eval('[data-testid="node"][data-node="director"] [data-vip]', (t) => ({ vip: t.dataset.vip, shown: t.firstChild.textContent, title: t.querySelector("title") && t.querySelector("title").textContent }));
  assert(line.vip === long && line.shown.includes("…") && !line.shown.includes(long), `the line is cut: ${JSON.stringify(line)}`);
  assert(line.title === `VIP ${long}/128 eth0-uplink-x deprecated`, `the tooltip holds it whole: ${JSON.stringify(line)}`);
});

await test("the routed example draws the router between the client and the LAN", async (p) => {
  await pickExample(p, "behind a router");
  const nodes = await p.$$eval('[data-testid="node"]', (els) => els.map((g) => ({ name: g.dataset.node, role: g.dataset.role, box: { y: Number(g.querySelector("rect").getAttribute("y")), height: Number(g.querySelector("rect").getAttribute("height")) }, text: g.textContent })));
  const router = nodes.find((n) => n.role === "router");
  const client = nodes.find((n) => n.role === "client");
  const director = nodes.find((n) => n.role === "director");
  assert(router && router.text.includes("10.0.0.1/24") && router.text.includes("198.51.100.1/24 outside"), `router: ${JSON.stringify(router)}`);
  assert(client.box.y + client.box.height < router.box.y && router.box.y === director.box.y, `client above the router, router beside the director: ${JSON.stringify(nodes.map((n) => [n.name, n.box.y]))}`);
  assert(director.text.includes("VIP 203.0.113.10/32 eth0"), director.text);
  assert((await p.textContent('[data-testid="topology"] svg > title')).includes("behind a router"), "the diagram's title says so");
});

await test("the director pair example draws both directors and walks the failover", async (p) => {
  await pickExample(p, "director pair");
  const directors = await p.$$eval('[data-testid="node"]', (els) => els.filter((g) => g.dataset.role === "director").map((g) => g.dataset.node));
  assert(directors.join(",") === "lb1,lb2", `directors: ${directors}`);
  await p.selectOption('[data-testid="walk-service"]', "failover");
  const titles = [];
  for (let i = 0; i < 10; i++) {
    titles.push(await p.textContent('[data-testid="walk-title"]'));
    if (await p.isDisabled('[data-testid="walk-next"]')) break;
    await p.click('[data-testid="walk-next"]');
  }
  assert(titles.some((t) => t.includes("lb2 takes the VIP")), titles.join(" / "));
  assert(titles[titles.length - 1].includes("synced entry"), titles.join(" / "));
});

await test("the fwmark example shows its marking rule on the director", async (p) => {
  await pickExample(p, "fwmark");
  const director = await p.textContent('[data-testid="node"][data-node="director"]');
  assert(director.includes("marks: 1 → 192.168.1.192 tcp 80,443") && director.includes("IPVS: fwmark/1"), director);
  assert((await p.$$eval("#sim-service option", (els) => els.map((e) => e.value))).join() === "fwmark/1", "the simulator lists fwmark/1");
  const counts = await p.textContent('[data-testid="sim-counts"]');
  assert(counts.includes("rs1: ") && counts.includes("rs2: "), counts);
});

await test("every artifact tab is non-empty", async (p) => {
  await setSource(p, seedToml);
  // Each file is generated when its tab is picked.
  for (const id of ["director", "real-server", "restore", "sysctl", "keepalived"]) {
    await p.click(`button[data-artifact="${id}"]`);
    assert(await p.isVisible(`[data-testid="artifact-${id}"]`), `the ${id} tab shows`);
    const text = await p.textContent(`[data-testid="artifact-${id}"]`);
    assert(text.trim().length > 40 && !text.includes("cannot generate"), `${id} is empty`);
  }
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

// Share links come from strangers: malformed, huge or crafted ones are refused
// quickly with a message, and the page still works (issue #27).
const BROKEN_LINKS = [
  ["not base64", "#f=%%%not-base64***"],
  ["base64 that is not deflate", `#f=${Buffer.from("plain text, not deflate").toString("base64url")}`],
  ["deflate that is not JSON", `#f=${deflateRawSync("{not json").toString("base64url")}`],
  ["JSON that is not a list of files", `#f=${deflateRawSync(JSON.stringify({ name: "x" })).toString("base64url")}`],
  ["a thousand files", `#f=${deflateRawSync(JSON.stringify(Array.from({ length: 1000 }, () => ({ name: "a", text: "" })))).toString("base64url")}`],
  ["a deflate bomb (64 MB of one letter)", `#f=${deflateRawSync(Buffer.alloc(64 * 1024 * 1024, 0x41), { level: 9 }).toString("base64url")}`],
  ["a 1.5 MB link", `#f=${"A".repeat(1536 * 1024)}`],
  ["invalid UTF-8", `#s=${deflateRawSync(Buffer.from([0x69, 0x70, 0xc3, 0x28, 0xff])).toString("base64url")}`],
];
for (const [what, hash] of BROKEN_LINKS) {
  await test(`a share link with ${what} is refused quickly and the page still works`, async (p) => {
    // A new page: on the open one, a new hash is only a same-document navigation.
    const q = await p.context().newPage();
    const started = Date.now();
    await q.goto(url + hash);
    await q.waitForFunction(() => document.querySelector("#share-status").textContent.includes("could not be read"), null, { timeout: 10000 });
    await settled(q);
    assert(Date.now() - started < 10000, `took ${Date.now() - started} ms`);
    assert((await q.$$('[data-testid="file-tab"]')).length >= 1, "an example is open");
    assert((await findings(q)).length > 0, "the example is linted");
  });
}

await test("a share link with odd values in its file list opens what it can, as text", async (p) => {
  const files = [{ name: { toString: 1 }, text: 42 }, { name: "<img src=x onerror=window.__pwned=1>", text: "ipvsadm -A -t 192.168.1.192:80 -s rr\n" }];
  const q = await p.context().newPage();
  await q.goto(`${url}#f=${deflateRawSync(JSON.stringify(files)).toString("base64url")}`);
  await settled(q);
  const tabs = await q.$$eval('[data-testid="file-tab"] .tab-name', (els) => els.map((e) => e.textContent));
  assert(tabs[0] === "file1" && tabs[1].startsWith("<img"), `tabs: ${tabs}`);
  assert((await q.evaluate(() => window.__pwned)) === undefined, "nothing ran");
});

await test("a share URL round-trips", async (p) => {
  const text = seedToml.replace('name = "seed"', 'name = "shared-by-test"');
  await setSource(p, text);
  await p.click('[data-testid="share"]');
  await p.waitForFunction(() => location.hash.startsWith("#f="));
  const shared = p.url();
  const q = await p.context().newPage();
  await q.goto(shared);
  await q.bringToFront();
  await settled(q);
  // Sharing again from the restored page gives the same link: every tab's name and text came back.
  const shown = await editorText(q);
  assert(shown.length > 400 && text.startsWith(shown), "the editor shows the shared topology");
  await q.click('[data-testid="share"]');
  await q.waitForFunction(() => location.hash.startsWith("#f="));
  assert(q.url() === shared, "the restored page shares the same link");
  // A link from before tabs (`#s=`, one text) still opens.
  const old = await p.context().newPage();
  await old.goto(`${url}#s=${deflateRawSync(text).toString("base64url")}`);
  await old.bringToFront();
  await settled(old);
  const oldShown = await editorText(old);
  assert(oldShown.length > 400 && text.startsWith(oldShown) && oldShown.includes("shared-by-test"), "an old one-text link opens");
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

/**
 * Presses `keys` in the active editor, one at a time, and returns for each the
 * time from its keydown to the editor's new findings (the squiggles and the
 * list are updated in one step). Measured in the page, through the DOM only.
 */
async function keystrokes(p, keys) {
  await p.evaluate(() => {
    const editor = document.querySelector("#editor-host").shadowRoot.querySelector('[data-testid="editor"]');
    window.__test = { times: [] };
    editor.addEventListener("keydown", () => (window.__test.start = performance.now()), true);
    new MutationObserver(() => {
      if (window.__test.start === undefined) return;
      window.__test.times.push(performance.now() - window.__test.start);
      window.__test.start = undefined;
    }).observe(document.querySelector("#diagnostics"), { childList: true });
  });
  await p.focus('[data-testid="editor"]');
  for (const key of keys) {
    const before = await p.evaluate(() => window.__test.times.length);
    await p.keyboard.press(key);
    await p.waitForFunction((n) => window.__test.times.length > n, before);
    await settled(p);
  }
  return p.evaluate(() => window.__test.times);
}

await test("a safe fix applies, and a keystroke shows its squiggles within 50 ms (median of 4 keys; none over 100 ms)", async (p) => {
  await setSource(p, seedToml.replace("vip_on_lo = 32", "vip_on_lo = 24"));
  await p.click('[data-testid="diagnostic"]:has-text("DR004") button.fix');
  await settled(p);
  const value = await editorText(p);
  assert(!value.includes("vip_on_lo = 24") && value.includes("vip_on_lo = 32"), "the fix replaced the prefix");
  await setSource(p, seedToml);
  await p.focus('[data-testid="editor"]');
  await p.keyboard.press("End");
  // The first key after a paste also pays one-time costs (it is recorded apart); the next four are the figure.
  const [first, ...times] = await keystrokes(p, ["#", " ", "x", "Backspace", " "]);
  const worst = Math.max(...times);
  // The median holds the 50 ms target; one key may be slower on this shared machine
  // (a garbage collection, another job on the cores), but none twice as slow.
  const sorted = [...times].sort((a, b) => a - b);
  const median = (sorted[1] + sorted[2]) / 2;
  measurements.seed_first_keystroke_ms = Number(first.toFixed(1));
  measurements.seed_keystroke_to_squiggles_ms = Number(worst.toFixed(1));
  measurements.seed_keystroke_to_squiggles_median_ms = Number(median.toFixed(1));
  assert(times.length === 4 && median < 50 && worst < 100, `keystroke to squiggles: ${times.join(", ")} ms`);
});

await test("the examples menu loads every example without errors", async (p) => {
  const count = await p.$$eval('[data-testid="examples"] option', (o) => o.length);
  assert(count >= 8, `${count} examples`);
  for (let i = 0; i < count; i++) {
    await p.selectOption('[data-testid="examples"]', String(i));
    await settled(p);
    const n = await p.$$eval('[data-testid="topology"] [data-testid="node"]', (els) => els.length);
    assert(n >= 3, `example ${i} draws a topology`);
  }
});

/** Opens the page and returns what it fetched: { file: gzipped bytes }, and the page. */
async function weigh(before) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const q = await context.newPage();
  const bodies = [];
  q.on("response", (r) => bodies.push(r.body().then((b) => [new URL(r.url()).pathname, gzipSync(b, { level: 9 }).length], () => null)));
  await q.goto(url);
  await settled(q);
  const sizes = async () => Object.fromEntries((await Promise.all(bodies)).filter(Boolean));
  return { q, sizes };
}

// Everything a visitor downloads to open the page, examples aside: the HTML, the
// page with its light view of the text, the stylesheets, and the first wasm
// module (TOML and JSON) with its glue: the wasm core is 198 KB of it. No chunk:
// CodeMirror comes at the first focus, touch or key in an editor, with its key
// bindings, highlighting and completion; the module with the importers when a
// tab holds a script, a dump or a keepalived.conf; the capture reader with the
// kernel; the rule texts when one is opened. The issue's target is 260 KB.
await test("the page loads at most 260 KB gzipped; the editor, the importers and the rest come when needed", async () => {
  const { q, sizes } = await weigh();
  try {
    const first = await sizes();
    const total = (files) => Object.entries(files).filter(([f]) => f !== "/examples.js").reduce((n, [, b]) => n + b, 0);
    measurements.page_gzip_bytes = total(first);
    measurements.page_files = first;
    const late = ["lvsdr_wasm", "rules.json", "kernel", "/chunks/"];
    assert(!Object.keys(first).some((f) => late.some((l) => f.includes(l))), `loaded at once: ${Object.keys(first)}`);
    assert(measurements.page_gzip_bytes <= 260_000, `${measurements.page_gzip_bytes} bytes gzipped: ${JSON.stringify(first)}`);
    await setSource(q, seedScript);
    const after = await sizes();
    measurements.page_with_editor_and_importers_gzip_bytes = total(after);
    assert(Object.keys(after).includes("/pkg/lvsdr_wasm_bg.wasm"), "the importers load for a script");
    assert(Object.keys(after).some((f) => f.startsWith("/chunks/codemirror-")), "focusing the editor loads CodeMirror");
    assert(Object.keys(after).some((f) => f.startsWith("/chunks/editing-")), "focusing the editor loads its editing chunk");
  } finally {
    await q.context().close();
  }
});

await test("before CodeMirror comes, a tab shows its lines and findings; what is clicked and typed while it loads is kept", async (p) => {
  // The first screen: the light view, with the example's findings underlined and marked.
  const preview = await p.$eval('[data-testid="editor"]', (e) => ({
    light: e.classList.contains("preview"),
    lines: e.querySelectorAll(".preview-line").length,
    marks: [...e.querySelectorAll(".preview-mark")].map((m) => [m.className, m.title]),
    markers: e.querySelectorAll(".preview-marker.warning, .preview-marker.error, .preview-marker.info").length,
  }));
  const text = await editorText(p);
  assert(preview.light && preview.lines === text.split("\n").length, `the light view draws every line: ${JSON.stringify(preview)}`);
  const findings0 = await findings(p);
  assert(preview.marks.length >= 1 && findings0.every((f) => preview.marks.some(([, title]) => title.includes(f.code))), `each finding underlined: ${JSON.stringify(preview.marks)} / ${JSON.stringify(findings0)}`);
  assert(preview.markers >= 1, "gutter markers");
  // Hold the editor's chunks back 400 ms, click into line 2 and type at once.
  await p.route("**/chunks/**", (route) => setTimeout(() => route.continue(), 400));
  const line2 = '[data-testid="editor"] .preview-line[data-line="2"] .preview-text';
  const box = await p.$eval(line2, (e) => { const r = e.getBoundingClientRect(); return { x: r.left + 1, y: r.top + r.height / 2 }; });
  await p.mouse.click(box.x, box.y);
  await p.keyboard.type("#k ");
  assert(await p.$('[data-testid="editor"].preview'), "the keys came before the editor");
  await p.waitForSelector('[data-testid="editor"].cm-content:focus');
  const lines = (await editorText(p)).split("\n");
  assert(lines[1] === "#k " + text.split("\n")[1], `typed at the start of line 2: ${JSON.stringify(lines.slice(0, 3))}`);
  // Once there, it edits as usual.
  await p.keyboard.press("End");
  await p.keyboard.type("!");
  assert((await editorText(p)).split("\n")[1].endsWith("!"), "the editor edits as usual once there");
  // Ctrl+A and a paste before it comes replace the whole text.
  await p.reload();
  await settled(p);
  await p.focus('[data-testid="editor"]');
  await p.keyboard.press("Control+a");
  await p.$eval('[data-testid="editor"]', (e) => {
    const clipboardData = new DataTransfer();
    clipboardData.setData("text/plain", "[director]\n");
    e.dispatchEvent(new ClipboardEvent("paste", { clipboardData, bubbles: true, cancelable: true }));
  });
  assert(await p.$('[data-testid="editor"].preview'), "the paste came before the editor");
  assert(await waitForText(p, "[director]\n"), `the paste replaced the text: ${await editorText(p)}`);
});

await test("a diagnostic's code opens its rule text", async (p) => {
  await setSource(p, seedToml);
  await p.click('[data-testid="diagnostic"]:has-text("DR008") a.code');
  await p.waitForSelector("#rule-panel:not([hidden])");
  const doc = await p.textContent("#rule-doc");
  assert(doc.includes("What it does") && doc.includes("wrr"), doc.slice(0, 200));
});

await test("the page and the server carry one CSP, and it refuses inline script", async (p) => {
  const response = await p.goto(url);
  await settled(p);
  const header = response.headers()["content-security-policy"];
  const meta = await p.$eval('meta[http-equiv="Content-Security-Policy"]', (e) => e.content);
  assert(header && header === meta, `header: ${header}\nmeta:   ${meta}`);
  const refused = await p.evaluate(
    () =>
      new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation", (e) => resolve(e.effectiveDirective), { once: true });
        document.head.append(Object.assign(document.createElement("script"), { textContent: "window.__inline = 1" }));
      }),
  );
  assert(refused === "script-src-elem" && (await p.evaluate(() => window.__inline)) === undefined, `refused by ${refused}`);
  // Chromium logs the refusal this test provoked; any other error still fails it.
  await p.waitForTimeout(100);
  p.consoleErrors = p.consoleErrors.filter((e) => !e.includes("Content Security Policy"));
});

// Share links carry any text. These put markup and script in every free-text
// field a topology has; the page must show it as text and run none of it,
// whether the core loads the topology or rejects the names with a diagnostic.
// Shell and keepalived split words on spaces, so their payloads have none.
const XSS = [`eth0<img src=x onerror="window.__pwned=1">`, `</text><script>window.__pwned=2</script>`, `"><svg onload=window.__pwned=3>`];
const XSS_WORD = [`eth0<svg/onload=window.__pwned=4>`, `</text><script>window.__pwned=5</script>`, `<details/open/ontoggle=window.__pwned=6>`];
// Host names are checked by the core today (DR000, which quotes them), so
// markup in them gets its own link; the first link loads and draws.
const hostileToml = (extra = {}) => {
  const [client, director, rs] = extra.hostNames ? [`client${XSS[2]}`, `director${XSS[1]}`, `rs1${XSS[2]}`] : ["client", "director", "rs1"];
  return `name = '${XSS[1]}'
[lan]
subnet = "192.168.1.0/24"
[client]
name = '${client}'
address = "192.168.1.100"
[director]
name = '${director}'
address = "192.168.1.191"
interface = '${XSS[0]}'
vip = "192.168.1.192"
sysctl = { "net.ipv4.ip_forward" = 1, '${XSS[0]}' = 1 }
[[service]]
protocol = "tcp"
port = 80
scheduler = '${extra.scheduler || "rr"}'
real_server = [ { server = '${rs}', weight = 1${extra.healthCheck ? `, health_check = '${extra.healthCheck}'` : ""} } ]
[[real_server]]
name = '${rs}'
address = "192.168.1.213"
interface = '${XSS[1]}'
vip_on_lo = 32
listen = [80]
sysctl = { "net.ipv4.conf.lo.arp_ignore" = 1, "net.ipv4.conf.lo.arp_announce" = 2, "net.ipv4.conf.all.arp_ignore" = 1, "net.ipv4.conf.all.arp_announce" = 2, '${XSS[2]}' = 1 }
${extra.unknownKey ? `'${extra.unknownKey}' = 1\n` : ""}`;
};
const hostileJson = (hostNames) =>
  JSON.stringify({
    name: XSS[0],
    lan: { subnet: "192.168.1.0/24" },
    client: { name: hostNames ? XSS[1] : "client", address: "192.168.1.100" },
    director: { name: hostNames ? XSS[2] : "director", address: "192.168.1.191", interface: XSS[0], vip: "192.168.1.192", sysctl: { [XSS[1]]: 1 } },
    service: [{ protocol: "tcp", port: 80, scheduler: "rr", real_server: [{ server: hostNames ? XSS[1] + "rs" : "rs1", weight: 1 }] }],
    real_server: [{ name: hostNames ? XSS[1] + "rs" : "rs1", address: "192.168.1.213", interface: XSS[2], vip_on_lo: 32 }],
  });
// Quoted, as an attacker must write them: unquoted, the shell reads `<` and `>` as redirections.
const hostileScript = `#!/bin/sh
sysctl -w net.ipv4.ip_forward=1
sysctl -w '${XSS_WORD[0]}=1'
vip=192.168.1.192
ifconfig '${XSS_WORD[0]}' 192.168.1.191 netmask 255.255.255.0 up
ifconfig '${XSS_WORD[0]}:1' $vip broadcast $vip netmask 255.255.255.255 up
route add -host $vip dev ${XSS_WORD[2]}
ipvsadm -A -t $vip:80 -s ${XSS_WORD[1]}
ipvsadm -A -t $vip:25 -s rr
ipvsadm -a -t $vip:25 -r 192.168.1.213:25 -g -w 1 ${XSS_WORD[2]}
${XSS_WORD[1]}
${XSS[0]}
`;
const hostileKeepalived = `global_defs {
    router_id ${XSS_WORD[1]}
}
vrrp_instance ${XSS_WORD[2]} {
    state MASTER
    interface ${XSS_WORD[0]}
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.168.1.192/32 dev ${XSS_WORD[0]}
    }
}
virtual_server 192.168.1.192 80 {
    lb_algo ${XSS_WORD[1]}
    lb_kind DR
    protocol TCP
    real_server 192.168.1.213 80 {
        weight 1
        ${XSS_WORD[2]} {
            connect_timeout 3
        }
    }
}
virtual_server 192.168.1.192 25 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    ${XSS_WORD[0]} 1
    real_server 192.168.1.213 25 {
        weight 1
        TCP_CHECK {
            ${XSS_WORD[1]} 3
        }
    }
}
`;
// [what, source, text the diagram must show as text when the core draws it]
const HOSTILE = [
  ["a TOML topology with markup in its name, interfaces, VIP device and sysctl keys", hostileToml(), XSS[0]],
  ["a TOML topology with markup in its host names", hostileToml({ hostNames: true }), XSS[2]],
  ["a TOML topology whose health_check is markup", hostileToml({ healthCheck: XSS[0] }), XSS[0]],
  ["a TOML topology whose scheduler is markup", hostileToml({ scheduler: XSS[2] }), XSS[0]],
  ["a TOML topology with a markup key", hostileToml({ unknownKey: XSS[1] }), XSS[0]],
  ["a JSON topology with markup in its name, interfaces and sysctl keys", hostileJson(false), XSS[0]],
  ["a JSON topology with markup in its host names", hostileJson(true), XSS[2]],
  ["an ipvsadm script with markup in devices, sysctls, schedulers and commands", hostileScript, XSS_WORD[0]],
  ["a keepalived.conf with markup in names, interfaces, devices and keywords", hostileKeepalived, XSS_WORD[0]],
  ["two tabs whose file names are markup", hostileScript, XSS_WORD[0], [XSS[0], XSS[1]]],
];

/** Opens `source` as a share link would, with the CSP on or bypassed (to prove the DOM building alone is inert). */
async function openShared(source, bypassCSP, names) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, bypassCSP });
  const q = await context.newPage();
  const errors = [];
  q.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  q.on("pageerror", (e) => errors.push(String(e)));
  const link = names
    ? `#f=${deflateRawSync(JSON.stringify([{ name: names[0], text: source }, { name: names[1], text: "ipvsadm -A -t 192.168.1.192:80 -s rr\n" }])).toString("base64url")}`
    : `#s=${deflateRawSync(source).toString("base64url")}`;
  await q.goto(url + link);
  await settled(q);
  assert(await waitForText(q, source), "the share link holds the hostile source");
  // Walk every view a visitor can open: each diagnostic's rule, each artifact tab, each packet-walk step.
  for (const code of await q.$$eval("#diagnostics a.code", (els) => [...new Set(els.map((e) => e.dataset.code))])) await q.click(`#diagnostics a.code[data-code="${code}"]`);
  for (const id of await q.$$eval("[data-artifact]", (els) => els.map((e) => e.dataset.artifact))) await q.click(`button[data-artifact="${id}"]`);
  for (let i = 0; i < 10 && !(await q.isDisabled('[data-testid="walk-next"]')); i++) await q.click('[data-testid="walk-next"]');
  return { q, errors };
}

for (const [what, source, drawn, names] of HOSTILE) {
  await test(`a share link with ${what} runs none of it and shows it as text`, async () => {
    // As written in the source: raw, or with its quotes escaped inside a JSON string.
    const payloads = [...XSS, ...XSS_WORD].filter((x) => source.includes(x) || source.includes(JSON.stringify(x).slice(1, -1)) || (names || []).includes(x));
    for (const bypassCSP of [false, true]) {
      const { q, errors } = await openShared(source, bypassCSP, names);
      const mode = bypassCSP ? "CSP bypassed" : "CSP on";
      try {
        const page = await q.evaluate(() => {
          // The page and the editors' shadow root.
          const roots = [document, document.querySelector("#editor-host").shadowRoot];
          const all = (selector) => roots.flatMap((r) => [...r.querySelectorAll(selector)]);
          const onAttributes = all("*").filter((e) => [...e.attributes].some((a) => a.name.startsWith("on")));
          const shown = ["#file-tabs", "#diagnostics", "#topology", "#artifacts", "#sim-counts", "#packet-walk", "#rule-panel"].map((s) => document.querySelector(s).textContent).join("\n");
          return {
            pwned: window.__pwned,
            injected: all("img, iframe, object, embed, details, script:not([src='app.js'])").length,
            scripts: all("script").length,
            svgs: all("svg").filter((s) => s.parentElement.id !== "topology").length,
            onAttributes: onAttributes.map((e) => e.outerHTML.slice(0, 80)),
            shown,
            nodes: [...document.querySelectorAll('[data-testid="node"]')].map((g) => ({ name: g.dataset.node, title: g.querySelector(".title").textContent })),
            diagram: document.querySelector("#topology").textContent,
          };
        });
        assert(page.pwned === undefined, `${mode}: window.__pwned = ${page.pwned}`);
        assert(page.injected === 0 && page.scripts === 1 && page.svgs === 0, `${mode}: injected elements: ${JSON.stringify(page)}`);
        assert(page.onAttributes.length === 0, `${mode}: event-handler attributes: ${page.onAttributes.join(" | ")}`);
        // Loaded, the diagram names each host verbatim; rejected, the diagnostics quote the text.
        for (const n of page.nodes) assert(n.title.startsWith(`${n.name} (`), `${mode}: node title ${n.title} for ${n.name}`);
        assert(!page.nodes.length || page.diagram.includes(drawn), `${mode}: the diagram does not show ${drawn}: ${page.diagram}`);
        // A refused value is quoted cut short (the core shows its first 40 characters).
        assert(payloads.some((x) => page.shown.includes(x) || page.shown.includes(x.slice(0, 24))), `${mode}: no payload shown as text in: ${page.shown.slice(0, 400)}`);
        assert(errors.length === 0, `${mode}: console errors: ${errors.join(" | ")}`);
      } finally {
        await q.context().close();
      }
    }
  });
}

// The real kernel in the tab (v86): the seed's proofs pass, and a fault fails for
// real, in the same booted machine. Timed from the button to the report.
async function runOnKernel(p) {
  const started = Date.now();
  await p.click('[data-testid="run-kernel"]');
  await p.waitForFunction(
    () => {
      const status = document.querySelector('[data-testid="kernel-status"]').textContent;
      return status.startsWith("Done") || status.startsWith("The kernel could not");
    },
    null,
    { timeout: 120_000 },
  );
  const ms = Date.now() - started;
  const status = await p.textContent('[data-testid="kernel-status"]');
  assert(status.startsWith("Done"), status);
  const checks = Object.fromEntries(await p.$$eval('[data-testid="kernel-check"]', (els) => els.map((e) => [e.dataset.check, { result: e.dataset.result, text: e.textContent }])));
  return { ms, checks, verdict: await p.textContent('[data-testid="kernel-verdict"]') };
}

/** Every step of the packet walk as shown: its leg's state, title and header cells. */
async function walkSteps(p) {
  await p.selectOption('[data-testid="walk-service"]', "tcp/80");
  while (!(await p.isDisabled('[data-testid="walk-prev"]'))) await p.click('[data-testid="walk-prev"]');
  const steps = [];
  for (let i = 0; i < 12; i++) {
    steps.push(
      await p.evaluate(() => {
        const cell = (f) => document.querySelector(`#f-${f}`);
        const fields = ["eth_src", "eth_dst", "ip_src", "ip_dst", "what"];
        return {
          title: document.querySelector('[data-testid="walk-title"]').textContent,
          state: document.querySelector('[data-testid="walk-real"]').dataset.state,
          source: document.querySelector('[data-testid="walk-real"]').textContent,
          codes: [...document.querySelectorAll('[data-testid="walk-real"] a[data-code]')].map((a) => a.dataset.code),
          checks: [...document.querySelectorAll('[data-testid="walk-check"]')].map((li) => li.dataset.check),
          cells: Object.fromEntries(fields.map((f) => [f, cell(f).textContent])),
          changed: fields.filter((f) => cell(f).classList.contains("changed")),
        };
      }),
    );
    if (await p.isDisabled('[data-testid="walk-next"]')) break;
    await p.click('[data-testid="walk-next"]');
  }
  return steps;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

await test("the seed's proofs pass on a real kernel in the tab, its walk shows the real frames and its capture downloads; faults fail there, one marked where it broke", async (p) => {
  await setSource(p, seedToml);
  // Before any run, the walk shows the model's placeholders.
  const before = await walkSteps(p);
  assert(before.every((s) => s.state === "model" && s.cells.eth_src.startsWith("MAC(")), `placeholders before a run: ${JSON.stringify(before[0])}`);
  assert(await p.isHidden('[data-testid="download-pcap"]'), "no capture to download before a run");
  const seed = await runOnKernel(p);
  measurements.kernel_cold_button_to_report_ms = seed.ms;
  assert(seed.verdict.startsWith("PASS: seed on v86 "), seed.verdict);
  for (const proof of ["source-ip tcp/80", "source-ip tcp/25", "reply-bypass", "arp-owner", "split tcp/80", "split tcp/25"]) {
    assert(seed.checks[proof] && seed.checks[proof].result === "pass", `${proof}: ${JSON.stringify(seed.checks[proof])}`);
  }
  // The walk: each step the frame the kernel sent, with real MACs, addresses and ports.
  const walk = await walkSteps(p);
  assert(walk.length === 6 && walk.every((s) => s.state === "captured"), `every step captured: ${JSON.stringify(walk.map((s) => [s.state, s.source]))}`);
  const [, answer, syn, forward, , reply] = walk;
  assert(MAC.test(syn.cells.eth_src) && MAC.test(syn.cells.eth_dst) && syn.cells.ip_src.startsWith("192.168.1.100:") && syn.cells.ip_dst === "192.168.1.192:80", `the client's SYN: ${JSON.stringify(syn.cells)}`);
  assert(answer.cells.what.includes(`is at ${syn.cells.eth_dst}`), `the director's ARP answer is the MAC the SYN went to: ${JSON.stringify(answer.cells)}`);
  assert(
    forward.cells.ip_src === syn.cells.ip_src && forward.cells.ip_dst === syn.cells.ip_dst && forward.cells.eth_dst !== syn.cells.eth_dst && forward.changed.includes("eth_dst") && !forward.changed.includes("ip_src"),
    `at the director only the frame changes, the destination MAC highlighted: ${JSON.stringify(forward)}`,
  );
  assert(reply.cells.ip_src === "192.168.1.192:80" && reply.cells.eth_src === forward.cells.eth_dst && reply.cells.eth_dst === syn.cells.eth_src, `the answer from the VIP and the real server's MAC: ${JSON.stringify(reply.cells)}`);
  // A picture of the director's step, as a visitor sees it.
  for (let i = 0; i < 2; i++) await p.click('[data-testid="walk-prev"]');
  await p.locator('[data-testid="packet-walk"]').screenshot({ path: path.join(shots, "walk-real-frames.png") });
  // The capture as a pcapng file: the page's own bytes, read back by tshark where it is installed.
  const [download] = await Promise.all([p.waitForEvent("download"), p.click('[data-testid="download-pcap"]')]);
  const file = await download.path();
  const bytes = readFileSync(file);
  assert(download.suggestedFilename() === "seed.pcapng" && bytes.readUInt32LE(0) === 0x0a0d0d0a && bytes.readUInt32LE(8) === 0x1a2b3c4d, `a pcapng file: ${download.suggestedFilename()}, ${bytes.length} bytes`);
  const tshark = spawnSync("tshark", ["-r", file, "-T", "fields", "-e", "frame.interface_name", "-e", "eth.dst", "-e", "frame.comment"], { encoding: "utf8" });
  if (!tshark.error) {
    const rows = tshark.stdout.trim().split("\n").map((l) => l.split("\t"));
    const copy = rows.find(([port, dst, comment]) => port === "director" && dst === forward.cells.eth_dst && /^tcp\/80 from 192\.168\.1\.100:\d+: the kernel chose rs\d; director → rs\d$/.test(comment));
    assert(tshark.status === 0 && copy, `tshark reads the director's copy with its comment: ${tshark.stderr} ${JSON.stringify(rows.slice(0, 8))}`);
  }
  // rs2 answers ARP for the VIP: the client's neighbour entry is rs2's MAC, on the real kernel.
  await pickExample(p, "no arp sysctls");
  assert((await walkSteps(p)).every((s) => s.state === "model"), "another setup: the walk is the model's again");
  const fault = await runOnKernel(p);
  measurements.kernel_warm_button_to_report_ms = fault.ms;
  assert(fault.verdict.startsWith("FAIL: "), fault.verdict);
  const arp = fault.checks["arp-owner"];
  assert(arp && arp.result === "fail" && /DR00\d/.test(arp.text), `arp-owner: ${JSON.stringify(arp)}`);
  // rs2 holds no VIP on lo: the director's copy reaches it and nothing comes back.
  await pickExample(p, "no vip on lo");
  await runOnKernel(p);
  const dropped = await walkSteps(p);
  const broken = dropped.filter((s) => s.state === "broken");
  assert(broken.length === 1 && broken[0].title.includes("drops the packet"), `marked where it broke: ${JSON.stringify(dropped.map((s) => [s.state, s.title]))}`);
  assert(broken[0].checks.some((c) => c.startsWith("connectivity")) && broken[0].codes.includes("DR003"), `with the check and its code: ${JSON.stringify(broken[0])}`);
  await p.locator('[data-testid="packet-walk"]').screenshot({ path: path.join(shots, "walk-broken-step.png") });
  assert(dropped.slice(0, dropped.indexOf(broken[0])).every((s) => s.state === "captured"), "the frames before it came");
  // On a phone, dark: the report's cells break between words only, and the example menu stays on the screen.
  await p.emulateMedia({ colorScheme: "dark" });
  await p.setViewportSize({ width: 390, height: 844 });
  await p.$eval('[data-testid="kernel-report"]', (e) => e.scrollIntoView());
  await p.screenshot({ path: path.join(shots, "kernel-report-dark-phone.png"), fullPage: true });
  const narrow = await phoneLayout(p);
  assert(narrow.cells > 20 && narrow.broken.length === 0, `${narrow.broken.length} of ${narrow.cells} report cells break inside a word: ${JSON.stringify(narrow.broken.slice(0, 5))}`);
  assert(narrow.menuRight <= 390 && narrow.pageWidth <= 390, `the example menu ends at ${narrow.menuRight} px, the page is ${narrow.pageWidth} px wide`);
});

/**
 * How the page lays out on a narrow screen: the report's cells with a word cut
 * across two lines (each word's rectangles must share one line), the example
 * menu's right edge, and the page's scroll width.
 */
function phoneLayout(p) {
  return p.evaluate(() => {
    const broken = [];
    const cells = [...document.querySelectorAll('[data-testid="kernel-report"] td')];
    for (const cell of cells) {
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (const m of node.data.matchAll(/\S+/g)) {
          const range = document.createRange();
          range.setStart(node, m.index);
          range.setEnd(node, m.index + m[0].length);
          const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
          if (tops.size > 1) broken.push({ word: m[0], cell: cell.textContent.slice(0, 60) });
        }
      }
    }
    return {
      cells: cells.length,
      broken,
      menuRight: Math.round(document.querySelector('[data-testid="examples"]').getBoundingClientRect().right),
      pageWidth: document.scrollingElement.scrollWidth,
    };
  });
}

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
