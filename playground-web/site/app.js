// The lvsdr playground. All DR knowledge comes from the Rust core (pkg/,
// built to WebAssembly); this file only draws what the core returns.
// A share link can hold any text, and the core echoes that text in names and
// messages, so nothing here is ever parsed as markup: every node is built with
// h()/svg() and every value lands in a text node or an attribute value.
import init, * as core from "./pkg/lvsdr_wasm.js";
import { EXAMPLES } from "./examples.js";

const $ = (id) => document.getElementById(id);
const editor = $("editor");
const ARTIFACTS = [
  ["director", "Director script", "director.sh"],
  ["real-server", "Real-server script", "real-server.sh"],
  ["restore", "ipvsadm -R file", "ipvs.rules"],
  ["sysctl", "sysctl.d", "90-lvs.conf"],
  ["keepalived", "keepalived.conf", "keepalived.conf"],
];
const COLORS = ["#2457c5", "#c2410c", "#15803d", "#7c3aed", "#be123c", "#0e7490", "#a16207", "#4d7c0f"];
const state = { analysis: null, artifact: "director", walk: [], step: 0, rules: new Map(), selectedNode: null };
window.__lvsdr = { timings: [] };

const SVG_NS = "http://www.w3.org/2000/svg";

// Attributes: null/false leave one out, true sets it empty, `style` takes an
// object (CSSOM, which the page's CSP allows where a style attribute is not).
// Children: nodes, or anything else as text; arrays are flattened.
function fill(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "style") Object.assign(el.style, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}
const h = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);
const svg = (tag, attrs, ...children) => fill(document.createElementNS(SVG_NS, tag), attrs, children);

function lineOffsets(text, line) {
  const lines = text.split("\n");
  let start = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
  return [start, start + (lines[line - 1] || "").length];
}

function renderGutter(diags) {
  const bad = new Set(diags.filter((d) => d.severity !== "info").map((d) => d.line));
  const n = editor.value.split("\n").length;
  const lines = [];
  let plain = "";
  for (let i = 1; i <= n; i++) {
    if (!bad.has(i)) {
      plain += `${i}\n`;
      continue;
    }
    lines.push(plain, h("span", { class: "bad" }, i), "\n");
    plain = "";
  }
  lines.push(plain);
  $("gutter").replaceChildren(...lines.filter((x) => x !== ""));
  $("gutter").scrollTop = editor.scrollTop;
}

function renderDiagnostics(diags) {
  const list = $("diagnostics");
  const count = (s) => diags.filter((d) => d.severity === s).length;
  $("diag-summary").textContent = `${count("error")} error(s), ${count("warning")} warning(s), ${count("info")} note(s)`;
  if (!diags.length) {
    list.replaceChildren(h("li", { class: "ok-msg", "data-testid": "no-diagnostics" }, "No problems found. This setup follows every rule."));
    return;
  }
  list.replaceChildren(
    ...diags.map((d, i) =>
      h(
        "li",
        { "data-testid": "diagnostic", class: d.severity, "data-index": i, "data-line": d.line, tabindex: 0 },
        h("a", { href: `#rule-${d.code}`, class: "code", "data-code": d.code }, d.code),
        h("span", { class: "sev" }, d.severity),
        ": ",
        d.message,
        h("span", { class: "where" }, `line ${d.line}:${d.column}`),
        d.fix && d.fix.applicability === "safe" && [" ", h("button", { type: "button", class: "fix", "data-fix": i }, `apply fix: ${d.fix.description}`)],
        d.help && h("div", { class: "help" }, `help: ${d.help}`),
      ),
    ),
  );
}

function selectDiagnostic(li) {
  document.querySelectorAll(".diagnostics li.selected").forEach((e) => e.classList.remove("selected"));
  li.classList.add("selected");
  const d = state.analysis.diagnostics[Number(li.dataset.index)];
  const [start, end] = lineOffsets(editor.value, d.line);
  editor.focus();
  editor.setSelectionRange(start, end);
  const lineHeight = 19.5;
  editor.scrollTop = Math.max(0, (d.line - 5) * lineHeight);
  state.selectedNode = d.node || null;
  renderDiagram();
}

const PROTOCOLS = { 0: "any", 6: "tcp", 17: "udp", 132: "sctp" };
// Monospace advance at the diagram's 12px: what decides when a line is cut.
const CHAR_WIDTH = 7.3;

// The lines one host's box shows: its own addresses, every VIP it holds, and
// on a director the IPVS services and marking rules.
function hostLines(host, plan) {
  const lines = [];
  const outside = host.outside_interfaces || [];
  const own = host.addresses.filter((a) => !a.vip);
  for (const a of own) lines.push({ text: `${a.device} ${a.address}/${a.prefix}${outside.includes(a.device) ? " outside" : ""}` });
  if (!own.length) lines.push({ text: host.interface });
  const vips = host.addresses.filter((a) => a.vip);
  for (const v of vips) lines.push({ text: `VIP ${v.address}/${v.prefix} ${v.device}${v.deprecated ? " deprecated" : ""}`, cls: "vip", vip: v.address });
  if (host.role === "real_server") {
    if (!vips.length) lines.push({ text: "no VIP on lo" });
    lines.push({ text: `listens ${host.listeners.map((l) => `${l.port}/${l.kind}`).join(" ") || "no listener"}` });
  }
  if (host.role === "director") {
    // One line per VIP: the services it carries (a fwmark service has no VIP of its own).
    const groups = new Map();
    for (const s of plan.services) {
      const fwmark = s.fwmark !== 0;
      const key = fwmark || !plan.vips ? "" : s.address;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(fwmark ? `fwmark/${s.fwmark}` : `${PROTOCOLS[s.protocol] || s.protocol}/${s.port}`);
    }
    for (const [vip, names] of groups) lines.push({ text: `IPVS${vip ? ` ${vip}` : ""}: ${names.join(", ")}` });
    for (const m of plan.marks || []) {
      const host = m.prefix === (m.destination.includes(":") ? 128 : 32);
      const ports = m.ports.length ? ` ${m.ports.join(",")}` : "";
      lines.push({ text: `marks: ${m.mark} → ${m.destination}${host ? "" : `/${m.prefix}`} ${PROTOCOLS[m.protocol] || m.protocol}${ports}`, cls: "mark" });
    }
  }
  return lines;
}

// A line longer than the box keeps its start and end around an ellipsis
// (an address's network and host parts); the full text stays in a <title>.
function shorten(text, max) {
  if (text.length <= max) return text;
  const head = Math.ceil((max - 1) / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (max - 1 - head))}`;
}

function renderDiagram() {
  const plan = state.analysis && state.analysis.plan;
  const box = $("topology");
  if (!plan) {
    box.replaceChildren(h("p", { class: "muted" }, "Fix the errors above to see the topology."));
    return;
  }
  const problems = new Set(state.analysis.diagnostics.filter((d) => d.node && d.severity !== "info").map((d) => d.node));
  const router = plan.hosts.find((host) => host.role === "router");
  // Behind a router the client sits on its own link, above the router.
  const outside = router ? plan.hosts.filter((host) => host.outside) : [];
  const upper = plan.hosts.filter((host) => host.role !== "real_server" && !outside.includes(host));
  upper.sort((a, b) => (b.role === "router") - (a.role === "router"));
  const servers = plan.hosts.filter((host) => host.role === "real_server");
  // Real servers take two rows when there are many, the second between the first's boxes.
  const columns = Math.max(2, upper.length, outside.length, Math.min(servers.length, Math.max(5, Math.ceil((servers.length + 1) / 2))));
  const lower = [servers.slice(0, columns), servers.slice(columns)].filter((row) => row.length);
  const lines = new Map(plan.hosts.map((host) => [host.name, hostLines(host, plan)]));
  const longest = Math.max(0, ...[...lines.values()].flat().map((l) => l.text.length));
  const nodeWidth = Math.min(330, Math.max(220, Math.ceil(longest * CHAR_WIDTH) + 20));
  const maxChars = Math.floor((nodeWidth - 20) / CHAR_WIDTH);
  const gap = 22, lineHeight = 18;
  const width = columns * (nodeWidth + gap) + gap;
  const rowHeight = (row) => 36 + lineHeight * Math.max(1, ...row.map((host) => lines.get(host.name).length));
  const columnX = (column) => gap + column * (nodeWidth + gap);

  const node = (host, x, y, height, link) => {
    const cls = ["node", host.role.replace("_", "-"), problems.has(host.name) ? "problem" : "", state.selectedNode === host.name ? "highlight" : ""].join(" ");
    const text = (dy, { text, cls, vip }) => {
      const shown = shorten(text, maxChars);
      return svg("text", { x: x + 10, y: y + dy, class: cls, "data-vip": vip }, shown, shown !== text && svg("title", {}, text));
    };
    return svg(
      "g",
      { class: cls, "data-testid": "node", "data-node": host.name, "data-role": host.role },
      link,
      svg("rect", { x, y, width: nodeWidth, height }),
      svg("text", { x: x + 10, y: y + 20, class: "title" }, `${host.name} (${host.role.replace("_", " ")})`),
      lines.get(host.name).map((l, i) => text(38 + i * lineHeight, l)),
    );
  };

  const drawn = [];
  let y = 20;
  const routerX = columnX(0) + nodeWidth / 2;
  if (outside.length) {
    const height = rowHeight(outside);
    outside.forEach((host, i) => {
      const x = columnX(i);
      const link = svg("line", { class: "link outside-link", x1: x + nodeWidth / 2, y1: y + height, x2: routerX, y2: y + height + 40 });
      drawn.push(node(host, x, y, height, link));
    });
    drawn.push(svg("text", { x: routerX + 8, y: y + height + 24, class: "muted-label" }, "outside link"));
    y += height + 40;
  }
  const upperHeight = rowHeight(upper);
  const busY = y + upperHeight + 30;
  upper.forEach((host, i) => {
    const x = columnX(i);
    drawn.push(node(host, x, y, upperHeight, svg("line", { class: "link", x1: x + nodeWidth / 2, y1: y + upperHeight, x2: x + nodeWidth / 2, y2: busY })));
  });
  y = busY + 30;
  lower.forEach((row, r) => {
    const height = rowHeight(row);
    row.forEach((host, i) => {
      const x = columnX(i + r / 2);
      drawn.push(node(host, x, y, height, svg("line", { class: "link", x1: x + nodeWidth / 2, y1: y, x2: x + nodeWidth / 2, y2: busY })));
    });
    y += height + 24;
  });
  // An ipvsadm dump or a keepalived.conf does not name the LAN.
  const lan = state.analysis.topology.lan;
  const subnet = lan ? [lan.subnet].flat().join(", ") : "";
  const summary = router ? "the client behind a router; the router, director and real servers on one LAN" : "client, director and real servers on one LAN";
  box.replaceChildren(
    svg(
      "svg",
      { viewBox: `0 0 ${width} ${y}`, role: "img", "aria-label": "Topology diagram" },
      svg("title", {}, summary),
      svg("line", { class: "bus", x1: gap / 2, y1: busY, x2: width - gap / 2, y2: busY }),
      svg("text", { x: gap, y: busY - 6, class: "lan" }, subnet ? `LAN ${subnet}` : "LAN"),
      drawn,
    ),
  );
}

function renderArtifacts() {
  const tabs = $("artifact-tabs");
  tabs.replaceChildren(...ARTIFACTS.map(([id, label]) => h("button", { type: "button", role: "tab", "data-artifact": id, "aria-selected": String(id === state.artifact) }, label)));
  $("artifacts").replaceChildren(
    ...ARTIFACTS.map(([id]) => {
      const r = JSON.parse(core.render(editor.value, id));
      const text = r.ok ? r.text : `# cannot generate: ${r.error}`;
      return h("pre", { class: "artifact", "data-testid": `artifact-${id}`, hidden: id !== state.artifact }, text);
    }),
  );
}

// Services by the core's label: `tcp/80` with one VIP, `tcp 192.0.2.1:80` or
// `tcp [2001:db8::1]:80` with several, `fwmark/1`. The core takes the same
// label back to pick a service for its prediction and its walk.
function serviceOptions(select, withFailover = false) {
  const plan = state.analysis.plan;
  const labels = plan ? plan.services.map((s) => s.name) : [];
  // A director pair's failover story is one more walk.
  if (withFailover && plan && plan.hosts.filter((x) => x.role === "director").length > 1) labels.push("failover");
  const previous = select.value;
  select.replaceChildren(...labels.map((s) => h("option", { value: s }, s)));
  if (labels.includes(previous)) select.value = previous;
}

function renderSimulator() {
  serviceOptions($("sim-service"));
  simulate();
}

function simulate() {
  const n = Math.min(10000, Math.max(1, Number($("sim-connections").value) || 8));
  const clients = Math.min(1000, Math.max(1, Number($("sim-clients").value) || 1));
  const r = JSON.parse(core.predict(editor.value, n, clients));
  const p = r.ok && r.predictions.find((x) => x.service === $("sim-service").value);
  if (!p || !p.picks.length) {
    $("sim-picks").replaceChildren();
    $("sim-counts").textContent = !r.ok ? r.error : p ? "No connections: the client has no address of this service's family." : "no service";
    $("sim-scheduler").textContent = "";
    return;
  }
  const names = Object.keys(p.counts);
  const color = (name) => COLORS[names.indexOf(name) % COLORS.length];
  const service = state.analysis.plan.services.find((s) => s.name === p.service);
  const family = service && service.address.includes(":") ? "IPv6" : "IPv4";
  $("sim-scheduler").textContent = `${p.scheduler}: which real server the kernel picks for each new ${family} connection, in order.`;
  $("sim-picks").replaceChildren(...p.picks.slice(0, 200).map((x, i) => h("span", { title: `connection ${i + 1}`, style: { background: x ? color(x) : "#777" } }, x || "none")));
  const max = Math.max(1, ...Object.values(p.counts));
  $("sim-counts").replaceChildren(
    ...names.map((k) => h("div", { class: "bar" }, h("span", {}, `${k}: ${p.counts[k]}`), h("i", { style: { width: `${(160 * p.counts[k]) / max}px`, background: color(k) } }))),
    p.unscheduled ? h("div", {}, `unscheduled: ${p.unscheduled}`) : "",
  );
}

function renderWalk() {
  serviceOptions($("walk-service"), true);
  const r = JSON.parse(core.walk(editor.value, $("walk-service").value || ""));
  const steps = r.ok ? r.steps : [];
  // A different walk starts from its first hop; the same walk keeps its place.
  const hops = (walk) => JSON.stringify(walk.map((s) => [s.title, s.frame]));
  if (hops(steps) !== hops(state.walk)) state.step = 0;
  state.walk = steps;
  showStep();
}

function showStep() {
  const s = state.walk[state.step];
  $("walk-pos").textContent = s ? `step ${state.step + 1} of ${state.walk.length}: ${s.from} → ${s.to}` : "";
  $("walk-title").textContent = s ? s.title : "Fix the errors above to walk a packet.";
  $("walk-title").className = s && s.problem ? "problem-step" : "";
  $("walk-text").textContent = s ? s.explanation : "";
  for (const f of ["eth_src", "eth_dst", "ip_src", "ip_dst", "what"]) {
    const cell = $("f-" + f);
    cell.textContent = s ? s.frame[f] : "";
    cell.classList.toggle("changed", !!s && s.changed.includes(f));
  }
  $("walk-prev").disabled = state.step <= 0;
  $("walk-next").disabled = state.step >= state.walk.length - 1;
  state.selectedNode = s ? s.to : state.selectedNode;
}

// The little markdown the rule docs use: `## ` headings, fenced blocks,
// `code` spans and blank-line breaks, built as nodes.
function markdown(md) {
  const breaks = (text) => text.split("\n\n").flatMap((t, i) => (i ? [h("br"), t] : [t]));
  const inline = (text) => text.split(/`([^`]+)`/).map((t, i) => (i % 2 ? h("code", {}, breaks(t)) : breaks(t)));
  const prose = (text) => text.split(/^## (.*)$/m).map((t, i) => (i % 2 ? h("h3", {}, inline(t)) : inline(t)));
  return md
    .split(/\n(?=## )/)
    .flatMap((section) => section.split("```").map((p, i) => (i % 2 ? h("pre", {}, p.replace(/^\w*\n/, "")) : prose(p))))
    .flat(Infinity)
    .filter((x) => x !== "");
}

function showRule(code) {
  const r = state.rules.get(code);
  if (!r) return;
  $("rule-panel").hidden = false;
  $("rule-title").textContent = `${r.code} ${r.name} (${r.severity}): ${r.summary}`;
  $("rule-doc").replaceChildren(...markdown(r.doc));
}

function update() {
  const t0 = performance.now();
  state.analysis = JSON.parse(core.analyze(editor.value));
  $("format").textContent = state.analysis.format;
  renderDiagnostics(state.analysis.diagnostics);
  renderGutter(state.analysis.diagnostics);
  const diagnosticsMs = performance.now() - t0;
  renderDiagram();
  renderSimulator();
  renderWalk();
  renderArtifacts();
  window.__lvsdr.timings.push({ diagnosticsMs, totalMs: performance.now() - t0 });
}

async function compress(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  let bin = "";
  bytes.forEach((b) => (bin += String.fromCharCode(b)));
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function decompress(data) {
  const bin = atob(data.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return await new Response(stream).text();
}

async function main() {
  await init();
  // The rule docs come from `lvsdr rules --format json`, the same text as `lvsdr explain`.
  for (const r of await (await fetch("rules.json")).json()) state.rules.set(r.code, r);
  $("examples").replaceChildren(...EXAMPLES.map((e, i) => h("option", { value: i }, e.name)));
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("s")) {
    try {
      editor.value = await decompress(hash.get("s"));
    } catch (e) {
      editor.value = EXAMPLES[0].text;
      $("share-status").textContent = "That link could not be read; showing an example.";
    }
  } else {
    editor.value = EXAMPLES[0].text;
  }
  update();

  editor.addEventListener("input", update);
  editor.addEventListener("scroll", () => ($("gutter").scrollTop = editor.scrollTop));
  $("examples").addEventListener("change", () => {
    editor.value = EXAMPLES[Number($("examples").value)].text;
    state.step = 0;
    update();
  });
  $("diagnostics").addEventListener("click", (ev) => {
    const code = ev.target.closest("[data-code]");
    if (code) {
      ev.preventDefault();
      showRule(code.dataset.code);
      return;
    }
    const fix = ev.target.closest("[data-fix]");
    if (fix) {
      editor.value = core.apply_fix(editor.value, Number(fix.dataset.fix));
      update();
      return;
    }
    const li = ev.target.closest("li[data-index]");
    if (li) selectDiagnostic(li);
  });
  $("diagnostics").addEventListener("keydown", (ev) => {
    const li = ev.target.closest("li[data-index]");
    if (li && (ev.key === "Enter" || ev.key === " ")) {
      ev.preventDefault();
      selectDiagnostic(li);
    }
  });
  for (const id of ["sim-service", "sim-connections", "sim-clients"]) $(id).addEventListener("input", simulate);
  $("walk-service").addEventListener("input", () => (renderWalk(), renderDiagram()));
  $("walk-prev").addEventListener("click", () => (state.step--, showStep(), renderDiagram()));
  $("walk-next").addEventListener("click", () => (state.step++, showStep(), renderDiagram()));
  $("artifact-tabs").addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-artifact]");
    if (!b) return;
    state.artifact = b.dataset.artifact;
    renderArtifacts();
  });
  const current = () => document.querySelector(`[data-testid="artifact-${state.artifact}"]`).textContent;
  $("copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(current());
      $("share-status").textContent = "Copied.";
    } catch {
      $("share-status").textContent = "Copying is not allowed here; select the text instead.";
    }
  });
  $("download").addEventListener("click", () => {
    const [, , file] = ARTIFACTS.find(([id]) => id === state.artifact);
    const a = Object.assign(document.createElement("a"), { href: URL.createObjectURL(new Blob([current()])), download: file });
    a.click();
    URL.revokeObjectURL(a.href);
  });
  $("share").addEventListener("click", async () => {
    location.hash = "s=" + (await compress(editor.value));
    try {
      await navigator.clipboard.writeText(location.href);
      $("share-status").textContent = "Link copied.";
    } catch {
      $("share-status").textContent = "The link is in the address bar.";
    }
  });
}

main();
