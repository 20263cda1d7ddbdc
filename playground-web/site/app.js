// The lvsdr playground. All DR knowledge comes from the Rust core (pkg/,
// built to WebAssembly); this file only draws what the core returns.
//
// The page starts with the core that reads TOML and JSON (pkg/lvsdr_lite.js)
// and loads the one with the importers (pkg/lvsdr_wasm.js) the first time a
// tab holds an ipvsadm script, an `ipvsadm -S` dump or a keepalived.conf.
// Every tab's text is read as one setup once per change (a `Setup`); the
// diagnostics go into the editors at once, the other views follow.
import initLite, * as lite from "./pkg/lvsdr_lite.js";
import { EXAMPLES } from "./examples.js";
import { $, h } from "./dom.js";
import { drawTopology } from "./diagram.js";
import { createEditor } from "./editor.js";

const ARTIFACTS = [
  ["director", "Director script", "director.sh"],
  ["real-server", "Real-server script", "real-server.sh"],
  ["restore", "ipvsadm -R file", "ipvs.rules"],
  ["sysctl", "sysctl.d", "90-lvs.conf"],
  ["keepalived", "keepalived.conf", "keepalived.conf"],
];
const COLORS = ["#2457c5", "#c2410c", "#15803d", "#7c3aed", "#be123c", "#0e7490", "#a16207", "#4d7c0f"];
const LABEL = "A file of the setup: TOML, JSON, an ipvsadm script, an ipvsadm -S dump or keepalived.conf";

const state = {
  core: lite,
  importers: null, // the promise of the full module, once asked for
  tables: null,
  setup: null, // the current reading (a wasm object: freed when replaced)
  analysis: null,
  tabs: [], // { name, text, editor } — `editor` is made the first time the tab shows
  active: 0,
  artifact: "director",
  walk: [],
  step: 0,
  rules: null,
  selectedNode: null,
  timer: 0,
  changed: 0, // when the first edit not yet read came (performance.now())
  views: 0,
  kernel: null, // the promise of the booted guest, after the first run
  onKernel: () => {},
  // The last run on the real kernel: the TOML it ran, its reports, and the
  // capture module (site/capture.js), loaded with the kernel. The walk shows
  // its frames while the setup still reads as that TOML.
  lab: null, // { toml, reports, capture }
};

// ---- the core ------------------------------------------------------------

function loadImporters() {
  if (!state.importers) {
    $("share-status").textContent = "Loading the importers…";
    state.importers = import("./pkg/lvsdr_wasm.js").then(async (full) => {
      await full.default();
      state.core = full;
      // The importers' own tables (keepalived's keywords), for completion; the editors share this object.
      Object.assign(state.tables, JSON.parse(full.tables()));
      $("share-status").textContent = "";
      return full;
    });
  }
  return state.importers;
}

const textOf = (tab) => (tab.editor ? tab.editor.text() : tab.text);
const formatOf = (text) => JSON.parse(state.core.detect(text));

/** Reads every tab as one setup and shows the findings in the editors; the other views follow. */
async function analyze() {
  const begun = performance.now();
  if (state.changed) performance.measure("lvsdr wait", { start: state.changed, end: begun });
  state.changed = 0;
  clearTimeout(state.timer);
  // Busy until every view shows this reading (assistive technology waits; so do the browser tests).
  $("diagnostics").setAttribute("aria-busy", "true");
  const files = state.tabs.map((t) => ({ name: t.name, text: textOf(t) }));
  if (state.core === lite && files.some((f) => !formatOf(f.text).readable)) await loadImporters();
  const freed = performance.now();
  if (state.setup) state.setup.free();
  const started = performance.now();
  performance.measure("lvsdr prepare", { start: begun, end: freed });
  performance.measure("lvsdr free", { start: freed, end: started });
  state.setup = new state.core.Setup(JSON.stringify(files));
  const read = performance.now();
  state.analysis = JSON.parse(state.setup.analysis());
  // Where a reading's time goes, for the browser tests and the devtools: read, findings as JSON, shown.
  performance.measure("lvsdr read", { start: started, end: read });
  performance.measure("lvsdr analysis", { start: read, end: performance.now() });
  state.analysis.files.forEach((f, i) => {
    const tab = state.tabs[i];
    if (!tab || tab.format === f.format) return;
    if (tab.format) renameForFormat(tab, f.format);
    tab.format = f.format;
    if (tab.editor) tab.editor.setFormat(f.format);
  });
  const shown = performance.now();
  showFindings();
  performance.measure("lvsdr findings", { start: shown, end: performance.now() });
  // The diagram, simulator, walk and files are one frame later: typing stays quick.
  cancelAnimationFrame(state.views);
  state.views = requestAnimationFrame(() => {
    Object.assign(state.analysis, JSON.parse(state.setup.views()));
    drawTopology($("topology"), state.analysis, state.selectedNode);
    renderSimulator();
    renderWalk();
    renderArtifacts();
    $("diagnostics").setAttribute("aria-busy", "false");
  });
}

// A tab named for what it held (`seed-dr.toml`) that now holds a script is
// renamed for it, so that findings never point into a misnamed file.
const EXTENSIONS = { toml: ".toml", json: ".json", script: ".sh", "ipvsadm-save": ".rules", keepalived: ".conf" };
const DEFAULT_NAMES = { toml: "topology.toml", json: "topology.json", script: "script.sh", "ipvsadm-save": "ipvs.rules", keepalived: "keepalived.conf" };
function renameForFormat(tab, format) {
  const claimed = Object.entries(EXTENSIONS).find(([, ext]) => tab.name.endsWith(ext));
  if (!claimed || claimed[0] === format || (claimed[1] === ".conf" && format === "keepalived")) return;
  const taken = new Set(state.tabs.filter((t) => t !== tab).map((t) => t.name));
  const [base, ext] = DEFAULT_NAMES[format].split(/(?=\.[^.]+$)/);
  let name = base + ext;
  for (let n = 2; taken.has(name); n++) name = `${base}${n}${ext}`;
  tab.name = name;
}

/** After an edit, as a task of its own: keystrokes that arrive while a large
 * setup is being read run first, and their edits make one reading, not one each. */
function scheduleAnalyze() {
  state.changed ||= performance.now();
  clearTimeout(state.timer);
  $("diagnostics").setAttribute("aria-busy", "true");
  state.timer = setTimeout(analyze, 0);
}

// ---- findings: in the text and in the list --------------------------------

function ruleLink(code) {
  return h("a", { href: `#rule-${code}`, class: "code", "data-code": code }, code);
}

/** A lab check's explanation, `DR003: real server …`: the code as a link to its rule, then the finding. */
function explanation(text) {
  const m = /^(DR\d+)(?::\s*)?(.*)$/s.exec(String(text));
  return m ? [ruleLink(m[1]), m[2] ? ` ${m[2]}` : ""] : [String(text)];
}

/** Applies a fix's edits, each in its own tab. */
function applyFix(fix) {
  state.tabs.forEach((tab, i) => {
    const changes = fix.edits.filter((e) => e.file === i).map((e) => ({ from: e.from, to: e.to, insert: e.insert }));
    if (!changes.length) return;
    if (tab.editor) void tab.editor.change(changes);
    else {
      for (const c of [...changes].sort((a, b) => b.from - a.from)) tab.text = tab.text.slice(0, c.from) + c.insert + tab.text.slice(c.to);
      scheduleAnalyze();
    }
  });
}

// A safe fix keeps everything the user meant; an unsafe one changes behaviour
// (the traffic split, say), so its button says so and the user decides.
const fixLabel = (fix) => (fix.applicability === "safe" ? `Fix: ${fix.description}` : `Fix (changes behaviour): ${fix.description}`);

function lintRanges(tab, i) {
  const length = tab.editor.length();
  return state.analysis.diagnostics
    .filter((d) => d.file === i)
    .map((d) => {
      const from = Math.min(d.from, length);
      return {
        from,
        to: Math.max(from, Math.min(d.to, length)),
        severity: d.severity,
        message: `${d.code}: ${d.message}`,
        renderMessage: () => h("div", { class: "lint-message" }, ruleLink(d.code), " ", d.message, d.help && h("div", { class: "help" }, `help: ${d.help}`)),
        actions: d.fix ? [{ name: fixLabel(d.fix), apply: () => applyFix(d.fix) }] : [],
      };
    });
}

function showFindings() {
  state.tabs.forEach((tab, i) => tab.editor && tab.editor.showDiagnostics(lintRanges(tab, i)));
  renderTabs();
  const diags = state.analysis.diagnostics;
  const list = $("diagnostics");
  const count = (s) => diags.filter((d) => d.severity === s).length;
  $("diag-summary").textContent = `${count("error")} error(s), ${count("warning")} warning(s), ${count("info")} note(s)`;
  const active = state.tabs[state.active];
  $("format").textContent = active ? active.format || "toml" : "toml";
  if (!diags.length) {
    list.replaceChildren(h("li", { class: "ok-msg", "data-testid": "no-diagnostics" }, "No problems found. This setup follows every rule."));
    return;
  }
  const several = state.tabs.length > 1;
  list.replaceChildren(
    ...diags.slice(0, 500).map((d, i) =>
      h(
        "li",
        { "data-testid": "diagnostic", class: d.severity, "data-index": i, "data-line": d.line, "data-file": d.file, tabindex: 0 },
        ruleLink(d.code),
        h("span", { class: "sev" }, d.severity),
        ": ",
        d.message,
        h("span", { class: "where" }, `${several ? `${state.tabs[d.file].name}:` : "line "}${d.line}:${d.column}`),
        d.fix && [" ", h("button", { type: "button", class: `fix ${d.fix.applicability}`, "data-fix": i }, fixLabel(d.fix))],
        d.help && h("div", { class: "help" }, `help: ${d.help}`),
      ),
    ),
    diags.length > 500 ? h("li", { class: "muted" }, `… and ${diags.length - 500} more`) : "",
  );
}

/** Shows a finding's span: its tab, the cursor on it. */
function selectDiagnostic(li) {
  document.querySelectorAll(".diagnostics li.selected").forEach((e) => e.classList.remove("selected"));
  li.classList.add("selected");
  const d = state.analysis.diagnostics[Number(li.dataset.index)];
  showTab(d.file);
  state.tabs[d.file].editor.select(d.from, d.to);
  state.selectedNode = d.node || null;
  drawTopology($("topology"), state.analysis, state.selectedNode);
}

// ---- tabs -----------------------------------------------------------------

function renderTabs() {
  $("file-tabs").replaceChildren(
    ...state.tabs.map((tab, i) => {
      const findings = state.analysis ? state.analysis.diagnostics.filter((d) => d.file === i && d.severity !== "info").length : 0;
      return h(
        "span",
        { class: "file-tab", role: "tab", "aria-selected": String(i === state.active), "data-testid": "file-tab", "data-tab": i },
        h("button", { type: "button", class: "tab-name", "data-tab": i, title: "Double-click to rename" }, tab.name),
        findings ? h("span", { class: "tab-findings", title: `${findings} error(s) and warning(s)` }, findings) : "",
        state.tabs.length > 1 ? h("button", { type: "button", class: "tab-close", "data-close": i, "aria-label": `Close ${tab.name}` }, "×") : "",
      );
    }),
  );
}

/** Where the editors live: a shadow root, so CodeMirror's styles go into a
 * constructable stylesheet, which the CSP allows (it refuses <style> elements). */
function editorsRoot() {
  const host = $("editor-host");
  if (!host.shadowRoot) {
    host.attachShadow({ mode: "open" }).append(h("link", { rel: "stylesheet", href: "editor.css" }), h("div", { class: "editors" }));
  }
  return host.shadowRoot.querySelector(".editors");
}

/** Makes tab `i` the visible one, building its editor the first time. */
function showTab(i) {
  state.active = i;
  state.tabs.forEach((tab, j) => {
    if (j === i && !tab.editor) {
      tab.editor = createEditor({
        parent: editorsRoot(),
        doc: tab.text,
        format: formatOf(tab.text).format,
        tables: state.tables,
        formatOf: () => tab.format || "toml",
        onChange: () => scheduleAnalyze(),
        label: LABEL,
      });
      if (state.analysis) tab.editor.showDiagnostics(lintRanges(tab, j));
    }
    if (!tab.editor) return;
    tab.editor.setHidden(j !== i);
    tab.editor.setActive(j === i);
  });
  renderTabs();
  const active = state.tabs[i];
  $("format").textContent = active.format || formatOf(textOf(active)).format;
}

/** Replaces every tab with `files` ([{name, text}]). */
function openFiles(files) {
  for (const tab of state.tabs) if (tab.editor) tab.editor.destroy();
  state.tabs = files.map((f) => ({ name: f.name, text: f.text, editor: null }));
  state.step = 0;
  showTab(0);
  return analyze();
}

function addTab() {
  const names = new Set(state.tabs.map((t) => t.name));
  let n = state.tabs.length + 1;
  while (names.has(`file${n}`)) n++;
  state.tabs.push({ name: `file${n}`, text: "", editor: null });
  showTab(state.tabs.length - 1);
  state.tabs[state.active].editor.focus();
  analyze();
}

function closeTab(i) {
  const [tab] = state.tabs.splice(i, 1);
  if (tab.editor) tab.editor.destroy();
  showTab(Math.min(state.active >= i && state.active > 0 ? state.active - 1 : state.active, state.tabs.length - 1));
  analyze();
}

function renameTab(i) {
  const span = document.querySelector(`.file-tab[data-tab="${i}"]`);
  const input = h("input", { class: "tab-rename", value: state.tabs[i].name, "aria-label": "File name", maxlength: 64 });
  span.replaceChildren(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (keep) => {
    if (done) return;
    done = true;
    const name = input.value.trim();
    if (keep && name) state.tabs[i].name = name;
    renderTabs();
    analyze();
  };
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") finish(true);
    if (ev.key === "Escape") finish(false);
  });
  input.addEventListener("blur", () => finish(true));
}

// ---- views ------------------------------------------------------------------

function renderArtifacts() {
  $("artifact-tabs").replaceChildren(...ARTIFACTS.map(([id, label]) => h("button", { type: "button", role: "tab", "data-artifact": id, "aria-selected": String(id === state.artifact) }, label)));
  // Only the file shown is generated; the others when their tab is picked.
  $("artifacts").replaceChildren(
    ...ARTIFACTS.map(([id]) => {
      if (id !== state.artifact) return h("pre", { class: "artifact", "data-testid": `artifact-${id}`, hidden: true });
      const r = JSON.parse(state.setup.render(id));
      return h("pre", { class: "artifact", "data-testid": `artifact-${id}` }, r.ok ? r.text : `# cannot generate: ${r.error}`);
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
  const r = JSON.parse(state.setup.predict(n, clients));
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

/** The report of the last run on the real kernel, while the setup is still the one it ran. */
function labReport() {
  if (!state.lab || !state.lab.reports.length) return null;
  const toml = JSON.parse(state.setup.render("toml"));
  return toml.ok && toml.text === state.lab.toml ? state.lab.reports[0] : null;
}

function renderWalk() {
  serviceOptions($("walk-service"), true);
  const service = $("walk-service").value || "";
  const r = JSON.parse(state.setup.walk(service));
  const report = r.ok && labReport();
  // After a run on the real kernel, each step carries the frame the kernel sent there.
  const steps = !r.ok ? [] : report && report.frames ? state.lab.capture.realWalk(r.steps, report, service) : r.steps;
  // A different walk starts from its first hop; the same walk keeps its place.
  const hops = (walk) => JSON.stringify(walk.map((s) => [s.title, s.frame]));
  if (hops(steps) !== hops(state.walk)) state.step = 0;
  state.walk = steps;
  showStep();
}

function showStep() {
  const s = state.walk[state.step];
  const real = s && s.real;
  $("walk-pos").textContent = s ? `step ${state.step + 1} of ${state.walk.length}: ${s.from} → ${s.to}` : "";
  $("walk-title").textContent = s ? s.title : "Fix the errors above to walk a packet.";
  $("walk-title").className = real && real.broken ? "problem-step broken-step" : s && s.problem ? "problem-step" : "";
  $("walk-text").textContent = s ? s.explanation : "";
  $("walk-real").replaceChildren(...(s ? walkSource(s) : []));
  $("walk-real").dataset.state = !s ? "" : !real ? (s.leg && state.walk.some((x) => x.real) ? "off-bridge" : "model") : real.broken ? "broken" : real.missing ? "not-reached" : "captured";
  // A captured frame replaces the placeholders; a missing one leaves them, struck through.
  const frame = real && real.frame ? real.frame : s ? s.frame : null;
  const changed = real && real.frame ? real.changed : s ? s.changed : [];
  $("walk-frame").classList.toggle("missing", !!(real && real.missing));
  for (const f of ["eth_src", "eth_dst", "ip_src", "ip_dst", "what"]) {
    const cell = $("f-" + f);
    cell.textContent = frame ? frame[f] : "";
    cell.classList.toggle("changed", !!s && changed.includes(f));
  }
  $("walk-prev").disabled = state.step <= 0;
  $("walk-next").disabled = state.step >= state.walk.length - 1;
  state.selectedNode = s ? s.to : state.selectedNode;
}

/** Where the step's frame comes from: the capture (its number and port), or the model. */
function walkSource(s) {
  const real = s.real;
  if (!real) {
    if (!state.walk.some((x) => x.real)) return [h("span", { class: "muted" }, "Placeholders: Run on a real kernel to see the frames the kernel sends.")];
    return [h("span", { class: "muted" }, s.leg ? `Not captured: ${s.from} is not on the LAN's bridge.` : "Not something the lab captures.")];
  }
  if (real.missing) {
    return [
      h("strong", {}, real.broken ? "It broke here. " : ""),
      real.note,
      real.broken && real.checks.length
        ? h(
            "ul",
            { class: "walk-checks" },
            real.checks.map((c) =>
              h("li", { "data-testid": "walk-check", "data-check": c.name }, `check ${c.name} failed: expected ${c.expected}, seen ${c.seen}`, (c.explained_by || []).map((e) => h("div", { class: "explained" }, "→ see ", explanation(e)))),
            ),
          )
        : "",
    ];
  }
  return [`Captured: frame ${real.number}, sent on ${real.port.host}'s port (${real.port.interface}).`, real.note ? ` ${real.note}` : ""];
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

/** The rule's text, from `lvsdr rules --format json` (the same as `lvsdr explain`), fetched the first time. */
async function showRule(code) {
  if (!state.rules) {
    state.rules = fetch("rules.json")
      .then((r) => r.json())
      .then((all) => new Map(all.map((r) => [r.code, r])));
  }
  const r = (await state.rules).get(code);
  if (!r) return;
  $("rule-panel").hidden = false;
  $("rule-title").textContent = `${r.code} ${r.name} (${r.severity}): ${r.summary}`;
  $("rule-doc").replaceChildren(...markdown(r.doc));
  $("rule-panel").scrollIntoView({ block: "nearest" });
}

// ---- the real kernel -------------------------------------------------------------
// v86, the i386 kernel and the initrd with the lab are fetched on the first run
// (kernel/, from `cargo xtask guest-kernel`); later runs reuse the booted machine.

const KERNEL_STAGES = {
  downloading: () => "Downloading the emulator, the kernel and the lab…",
  booting: () => "Booting Linux…",
  kernel: (release) => `Linux ${release} is up.`,
  running: () => "Running the lab…",
  progress: (line) => `Running the lab: ${line}`,
};

function runOnKernel() {
  const status = $("kernel-status");
  const toml = JSON.parse(state.setup.render("toml"));
  if (!toml.ok) {
    status.textContent = "Fix the errors first: the lab runs a setup that reads.";
    return;
  }
  $("run-kernel").disabled = true;
  status.textContent = state.kernel ? KERNEL_STAGES.running() : KERNEL_STAGES.downloading();
  const started = performance.now();
  const say = (stage, detail) => KERNEL_STAGES[stage] && (status.textContent = KERNEL_STAGES[stage](detail));
  if (!state.kernel) {
    state.kernel = import("./kernel/kernel.js").then((k) => k.boot(k.files(new URL("kernel/", location.href).href), { onProgress: (stage, detail) => state.onKernel(stage, detail) }));
  }
  state.onKernel = say;
  const capture = import("./capture.js");
  state.kernel
    .then((guest) => {
      say("running");
      return guest.lab(toml.text);
    })
    .then(async (result) => {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      status.textContent = `Done in ${seconds} s.`;
      state.lab = { toml: toml.text, reports: result.reports || [], capture: await capture };
      showKernelReport(result);
      renderWalk();
      drawTopology($("topology"), state.analysis, state.selectedNode);
    })
    .catch((e) => {
      state.kernel = null;
      status.textContent = `The kernel could not run the lab: ${e.message}`;
    })
    .finally(() => ($("run-kernel").disabled = false));
}

/** The lab's report as the CLI prints it: kernel, connections, then every check. */
function showKernelReport(result) {
  const reports = result.reports || [];
  const frames = reports[0] && reports[0].frames;
  $("download-pcap").hidden = !frames;
  $("pcap-status").textContent = frames
    ? `${frames.frames.length} frame(s) captured on ${frames.ports.length} bridge port(s)${frames.dropped || frames.lost ? `; ${frames.dropped} not kept, ${frames.lost} lost` : ""}. The packet walk shows them.`
    : "";
  if (!reports.length) {
    $("kernel-report").replaceChildren(h("pre", { class: "artifact" }, result.stdout || `exit code ${result.code}`));
    return;
  }
  $("kernel-report").replaceChildren(
    ...reports.map((r) => {
      // Each cell names its column: on a narrow screen a row is a card of labelled lines.
      const row = (cells, labels) => h("tr", {}, cells.map((c, i) => h("td", { "data-label": labels[i] }, c)));
      const CONNECTION = ["service", "client", "real server", "saw"];
      const result = (c) => (c.pass ? "pass" : c.advisory ? "warn" : "fail");
      return h(
        "div",
        { "data-testid": "kernel-lab", "data-pass": String(r.pass) },
        h("p", { class: `kernel-verdict ${r.pass ? "pass" : "fail"}`, "data-testid": "kernel-verdict" }, `${r.pass ? "PASS" : "FAIL"}: ${r.topology} on ${r.kernel}, IPVS ${r.ipvs_version}, applied with ${r.applied_with}`),
        h(
          "div",
          { class: "kernel-connections" },
          h(
            "table",
            { class: "checks", "aria-label": "Connections: client → VIP → real server" },
            h("thead", {}, h("tr", {}, CONNECTION.map((t) => h("th", {}, t)))),
            h("tbody", {}, r.connections.map((c) => row([c.service, `${c.client}:${c.client_port}`, c.real_server || "none", c.source_seen || c.error || ""], CONNECTION))),
          ),
        ),
        h(
          "table",
          { class: "checks", "aria-label": "Checks" },
          h("thead", {}, h("tr", {}, ["check", "expected", "result", "seen"].map((t) => h("th", {}, t)))),
          h(
            "tbody",
            {},
            r.checks.map((c) =>
              h(
                "tr",
                { "data-testid": "kernel-check", "data-check": c.name, "data-result": result(c) },
                h("td", { "data-label": "check" }, c.name),
                h("td", { "data-label": "expected" }, c.expected),
                h("td", { class: result(c), "data-label": "result" }, result(c)),
                h("td", { "data-label": "seen" }, c.seen, (c.explained_by || []).map((e) => h("div", { class: "explained" }, "→ see ", explanation(e)))),
              ),
            ),
          ),
        ),
      );
    }),
  );
}

// ---- share links --------------------------------------------------------------

async function compress(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  let bin = "";
  bytes.forEach((b) => (bin += String.fromCharCode(b)));
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The longest share link the page reads, in characters of its hash: a link
 * holds a setup of a few kilobytes, a 12,000-line dump about 150 KB. */
const MAX_LINK_CHARS = 1024 * 1024;
/** The most text a link may inflate to. Deflate packs up to about 1,000:1, so
 * without a bound a 1 MB link would become 1 GB in the tab. */
const MAX_LINK_TEXT_BYTES = 8 * 1024 * 1024;

async function decompress(data) {
  if (data.length > MAX_LINK_CHARS) throw new Error("the link is too long");
  const bin = atob(data.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  // Read chunk by chunk and stop at the bound, rather than inflating it all first.
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > MAX_LINK_TEXT_BYTES) {
      await reader.cancel();
      throw new Error("the link holds too much text");
    }
    chunks.push(value);
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(await new Blob(chunks).arrayBuffer());
}

/** The files a link holds: `#f=` every tab (JSON), or the older `#s=` one text. Anything else is refused. */
async function sharedFiles(hash) {
  const params = new URLSearchParams(hash.slice(1));
  if (params.get("f")) {
    const files = JSON.parse(await decompress(params.get("f")));
    if (!Array.isArray(files) || !files.length || files.length > 16) throw new Error("not a list of files");
    return files.map((f, i) => ({
      name: String((f && typeof f.name === "string" && f.name) || `file${i + 1}`).slice(0, 64),
      text: f && typeof f.text === "string" ? f.text : "",
    }));
  }
  if (params.get("s")) return [{ name: "topology", text: await decompress(params.get("s")) }];
  return null;
}

// ---- start ----------------------------------------------------------------------

function wire() {
  $("examples").addEventListener("change", () => openFiles(EXAMPLES[Number($("examples").value)].files));
  $("add-file").addEventListener("click", addTab);
  $("file-tabs").addEventListener("click", (ev) => {
    const close = ev.target.closest("[data-close]");
    if (close) return closeTab(Number(close.dataset.close));
    // Clicking the tab already shown leaves it be (a double-click renames it).
    const tab = ev.target.closest(".tab-name");
    if (tab && Number(tab.dataset.tab) !== state.active) showTab(Number(tab.dataset.tab));
  });
  $("file-tabs").addEventListener("dblclick", (ev) => {
    const tab = ev.target.closest(".tab-name");
    if (tab) renameTab(Number(tab.dataset.tab));
  });
  // A rule code, in the list or in an editor's tooltip, opens the rule's text.
  document.addEventListener("click", (ev) => {
    // composedPath: a click in the editors' shadow root reaches the document retargeted to its host.
    const target = ev.composedPath()[0];
    const code = target.closest && target.closest("a[data-code]");
    if (code) {
      ev.preventDefault();
      showRule(code.dataset.code);
    }
  });
  $("diagnostics").addEventListener("click", (ev) => {
    if (ev.target.closest("[data-code]")) return;
    const fix = ev.target.closest("[data-fix]");
    if (fix) return applyFix(state.analysis.diagnostics[Number(fix.dataset.fix)].fix);
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
  const redraw = () => drawTopology($("topology"), state.analysis, state.selectedNode);
  $("walk-service").addEventListener("input", () => (renderWalk(), redraw()));
  $("walk-prev").addEventListener("click", () => (state.step--, showStep(), redraw()));
  $("walk-next").addEventListener("click", () => (state.step++, showStep(), redraw()));
  $("artifact-tabs").addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-artifact]");
    if (!b) return;
    state.artifact = b.dataset.artifact;
    renderArtifacts();
  });
  const current = () => JSON.parse(state.setup.render(state.artifact)).text || "";
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
  $("run-kernel").addEventListener("click", runOnKernel);
  $("download-pcap").addEventListener("click", () => {
    const report = state.lab && state.lab.reports[0];
    const blob = report && state.lab.capture.pcapng(report);
    if (!blob) return;
    // The topology's name comes from the setup: only safe characters reach the file name.
    const name = String(report.topology).replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 60) || "lab";
    const a = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: `${name}.pcapng` });
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 0);
  });
  $("format-toml").addEventListener("click", () => {
    const r = JSON.parse(state.setup.render("toml"));
    if (!r.ok) {
      $("share-status").textContent = "Fix the errors first: only a setup that reads can be formatted.";
      return;
    }
    const tab = state.tabs[state.active];
    if (state.tabs.length === 1 && tab.format === "toml") tab.editor.replace(r.text);
    else openFiles([{ name: "topology.toml", text: r.text }]);
  });
  $("share").addEventListener("click", async () => {
    const files = state.tabs.map((t) => ({ name: t.name, text: textOf(t) }));
    history.replaceState(null, "", "#f=" + (await compress(JSON.stringify(files))));
    try {
      await navigator.clipboard.writeText(location.href);
      $("share-status").textContent = "Link copied.";
    } catch {
      $("share-status").textContent = "The link is in the address bar.";
    }
  });
}

async function main() {
  await initLite();
  state.tables = JSON.parse(lite.tables());
  $("examples").replaceChildren(...EXAMPLES.map((e, i) => h("option", { value: i }, e.name)));
  let files = null;
  try {
    files = await sharedFiles(location.hash);
  } catch {
    $("share-status").textContent = "That link could not be read; showing an example.";
  }
  wire();
  await openFiles(files || EXAMPLES[0].files);
}

main();
