// The lvsdr playground. All DR knowledge comes from the Rust core (pkg/,
// built to WebAssembly); this file only draws what the core returns.
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

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function lineOffsets(text, line) {
  const lines = text.split("\n");
  let start = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
  return [start, start + (lines[line - 1] || "").length];
}

function renderGutter(diags) {
  const bad = new Set(diags.filter((d) => d.severity !== "info").map((d) => d.line));
  const n = editor.value.split("\n").length;
  let html = "";
  for (let i = 1; i <= n; i++) html += bad.has(i) ? `<span class="bad">${i}</span>\n` : `${i}\n`;
  $("gutter").innerHTML = html;
  $("gutter").scrollTop = editor.scrollTop;
}

function renderDiagnostics(diags) {
  const list = $("diagnostics");
  const count = (s) => diags.filter((d) => d.severity === s).length;
  $("diag-summary").textContent = `${count("error")} error(s), ${count("warning")} warning(s), ${count("info")} note(s)`;
  if (!diags.length) {
    list.innerHTML = `<li class="ok-msg" data-testid="no-diagnostics">No problems found. This setup follows every rule.</li>`;
    return;
  }
  list.innerHTML = diags
    .map(
      (d, i) => `<li data-testid="diagnostic" class="${d.severity}" data-index="${i}" data-line="${d.line}" tabindex="0">
        <a href="#rule-${d.code}" class="code" data-code="${d.code}">${d.code}</a><span class="sev">${d.severity}</span>:
        ${escape(d.message)}<span class="where">line ${d.line}:${d.column}</span>
        ${d.fix && d.fix.applicability === "safe" ? `<button type="button" class="fix" data-fix="${i}">apply fix: ${escape(d.fix.description)}</button>` : ""}
        ${d.help ? `<div class="help">help: ${escape(d.help)}</div>` : ""}
      </li>`,
    )
    .join("");
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

function renderDiagram() {
  const plan = state.analysis && state.analysis.plan;
  const box = $("topology");
  if (!plan) {
    box.innerHTML = `<p class="muted">Fix the errors above to see the topology.</p>`;
    return;
  }
  const problems = new Set(state.analysis.diagnostics.filter((d) => d.node && d.severity !== "info").map((d) => d.node));
  const top = plan.hosts.filter((h) => h.role !== "real_server");
  const bottom = plan.hosts.filter((h) => h.role === "real_server");
  const w = 236, h = 92, gap = 22;
  const width = Math.max(top.length, bottom.length, 2) * (w + gap) + gap;
  const busY = 150;
  const ports = (host) => host.listeners.map((l) => `${l.port}/${l.kind}`).join(" ") || "no listener";
  const node = (host, x, y) => {
    const own = host.addresses.filter((a) => !a.vip).map((a) => `${a.address}/${a.prefix}`)[0] || "";
    const vip = host.addresses.find((a) => a.vip);
    const cls = ["node", problems.has(host.name) ? "problem" : "", state.selectedNode === host.name ? "highlight" : ""].join(" ");
    const vipLine = vip ? `<text x="${x + 10}" y="${y + 56}" class="vip">VIP ${vip.address}/${vip.prefix} ${vip.device}</text>` : host.role === "real_server" ? `<text x="${x + 10}" y="${y + 56}">no VIP on lo</text>` : "";
    const extra = host.role === "real_server" ? `<text x="${x + 10}" y="${y + 74}">listens ${escape(ports(host))}</text>` : host.role === "director" ? `<text x="${x + 10}" y="${y + 74}">IPVS: ${plan.services.map((s) => s.name).join(", ")}</text>` : "";
    const linkY = y < busY ? y + h : y;
    return `<g class="${cls}" data-testid="node" data-node="${escape(host.name)}">
      <line class="link" x1="${x + w / 2}" y1="${linkY}" x2="${x + w / 2}" y2="${busY}"/>
      <rect x="${x}" y="${y}" width="${w}" height="${h}"/>
      <text x="${x + 10}" y="${y + 20}" class="title">${escape(host.name)} (${host.role.replace("_", " ")})</text>
      <text x="${x + 10}" y="${y + 38}">${host.interface} ${own}</text>${vipLine}${extra}</g>`;
  };
  let svg = `<svg viewBox="0 0 ${width} 300" role="img" aria-label="Topology diagram"><title>client, director and real servers on one LAN</title>`;
  svg += `<line class="bus" x1="${gap / 2}" y1="${busY}" x2="${width - gap / 2}" y2="${busY}"/><text x="${gap}" y="${busY - 6}">LAN ${escape(state.analysis.topology.lan.subnet)}</text>`;
  top.forEach((host, i) => (svg += node(host, gap + i * (w + gap), 20)));
  bottom.forEach((host, i) => (svg += node(host, gap + i * (w + gap), 190)));
  box.innerHTML = svg + "</svg>";
}

function renderArtifacts() {
  const tabs = $("artifact-tabs");
  tabs.innerHTML = ARTIFACTS.map(([id, label]) => `<button type="button" role="tab" data-artifact="${id}" aria-selected="${id === state.artifact}">${label}</button>`).join("");
  $("artifacts").innerHTML = ARTIFACTS.map(([id]) => {
    const r = JSON.parse(core.render(editor.value, id));
    const text = r.ok ? r.text : `# cannot generate: ${r.error}`;
    return `<pre class="artifact" data-testid="artifact-${id}" ${id === state.artifact ? "" : "hidden"}>${escape(text)}</pre>`;
  }).join("");
}

function renderSimulator() {
  const services = state.analysis.topology ? state.analysis.topology.service.map((s) => (s.fwmark !== undefined ? `fwmark/${s.fwmark}` : `${s.protocol}/${s.port}`)) : [];
  const select = $("sim-service");
  const previous = select.value;
  select.innerHTML = services.map((s) => `<option>${s}</option>`).join("");
  if (services.includes(previous)) select.value = previous;
  simulate();
}

function simulate() {
  const n = Math.min(10000, Math.max(1, Number($("sim-connections").value) || 8));
  const clients = Math.min(1000, Math.max(1, Number($("sim-clients").value) || 1));
  const r = JSON.parse(core.predict(editor.value, n, clients));
  const p = r.ok && r.predictions.find((x) => x.service === $("sim-service").value);
  if (!p) {
    $("sim-picks").innerHTML = "";
    $("sim-counts").textContent = r.ok ? "no service" : r.error;
    $("sim-scheduler").textContent = "";
    return;
  }
  const names = Object.keys(p.counts);
  const color = (name) => COLORS[names.indexOf(name) % COLORS.length];
  $("sim-scheduler").textContent = `${p.scheduler}: which real server the kernel picks for each new connection, in order.`;
  $("sim-picks").innerHTML = p.picks.slice(0, 200).map((x, i) => `<span title="connection ${i + 1}" style="background:${x ? color(x) : "#777"}">${x || "none"}</span>`).join("");
  const max = Math.max(1, ...Object.values(p.counts));
  $("sim-counts").innerHTML = names.map((k) => `<div class="bar"><span>${k}: ${p.counts[k]}</span><i style="width:${(160 * p.counts[k]) / max}px;background:${color(k)}"></i></div>`).join("") + (p.unscheduled ? `<div>unscheduled: ${p.unscheduled}</div>` : "");
}

function renderWalk() {
  const r = JSON.parse(core.walk(editor.value, $("sim-service").value || ""));
  const steps = r.ok ? r.steps : [];
  // A different walk starts from its first hop; the same walk keeps its place.
  if (JSON.stringify(steps.map((s) => s.title)) !== JSON.stringify(state.walk.map((s) => s.title))) state.step = 0;
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

function markdown(md) {
  return md
    .split(/\n(?=## )/)
    .map((section) => {
      const parts = section.split("```");
      return parts.map((p, i) => (i % 2 ? `<pre>${escape(p.replace(/^\w*\n/, ""))}</pre>` : escape(p).replace(/^## (.*)$/gm, "<h3>$1</h3>").replace(/`([^`]+)`/g, "<code>$1</code>").replace(/\n\n/g, "<br>"))).join("");
    })
    .join("");
}

function showRule(code) {
  const r = state.rules.get(code);
  if (!r) return;
  $("rule-panel").hidden = false;
  $("rule-title").textContent = `${r.code} ${r.name} (${r.severity}): ${r.summary}`;
  $("rule-doc").innerHTML = markdown(r.doc);
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
  $("examples").innerHTML = EXAMPLES.map((e, i) => `<option value="${i}">${escape(e.name)}</option>`).join("");
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
  for (const id of ["sim-service", "sim-connections", "sim-clients"]) $(id).addEventListener("input", () => (simulate(), renderWalk()));
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
