// The playground's editor, one per tab. A tab first shows its text in a
// light view drawn here: the lines with their numbers, each finding
// underlined in its severity's colour with its message on hover, and a
// marker in the gutter. That is all the first screen needs, and it costs no
// editor engine: CodeMirror (codemirror.js, about 80 KB gzipped) comes the
// first time someone focuses, touches or types in a tab, or when the page
// must change a tab's text (a fix, Format as TOML). Once it is here, every
// tab shown after gets it at once.
//
// What a visitor does while it loads is kept and replayed into it: where
// the text was clicked, the keys typed, Ctrl+A, a paste.
import { h } from "./dom.js";

let engine = null; // the promise of codemirror.js
let loaded = null; // codemirror.js, once here
const loadEngine = () => (engine ||= import("./codemirror.js").then((m) => (loaded = m)));

// The light view draws at most this many lines; a longer text gets the real
// editor at once, which draws only the lines in view.
const PREVIEW_LINES = 2000;
const RANK = { error: 3, warning: 2, info: 1 };

/** One tab's editor. The options are codemirror.js's: `formatOf()` says what the tab holds now. */
export function createEditor(options) {
  let text = options.doc;
  let cm = null;
  let upgrading = null;
  let destroyed = false;
  let diagnostics = [];
  let active = false;
  let hidden = false;
  let format = options.format;
  const input = [];

  const preview = h("div", { class: "preview", role: "textbox", "aria-multiline": "true", "aria-label": options.label, tabindex: 0 });
  options.parent.append(preview);

  const mount = (m, focus) => {
    if (destroyed || cm) return cm;
    cm = m.createCodeMirror({ ...options, before: preview, doc: text, format });
    cm.setActive(active);
    cm.setHidden(hidden);
    cm.showDiagnostics(diagnostics);
    cm.scrollTo(preview.scrollTop);
    cm.replay(input.splice(0));
    preview.remove();
    if (focus) cm.focus();
    return cm;
  };
  /** The real editor: at once if its code is here, else when it comes. */
  const upgrade = (focus) => {
    if (cm || loaded) return Promise.resolve(mount(loaded, focus));
    // Focus follows only if the text still has it: a keyboard user may have tabbed on.
    upgrading ||= loadEngine().then((m) => mount(m, preview.matches(":focus")));
    return upgrading;
  };
  // Keep what the visitor does while the engine loads.
  preview.addEventListener("focus", () => void upgrade(true));
  preview.addEventListener("pointerdown", (e) => {
    const at = caretAt(e);
    if (at) input.push(at);
    void upgrade(true);
  });
  preview.addEventListener("keydown", (e) => {
    const command = e.ctrlKey || e.metaKey;
    if (command && e.key.toLowerCase() === "a") input.push({ selectAll: true });
    else if (!command && !e.altKey && e.key.length === 1) input.push({ insert: e.key });
    else if (e.key === "Enter") input.push({ insert: "\n" });
    else return;
    e.preventDefault();
    void upgrade(true);
  });
  preview.addEventListener("paste", (e) => {
    e.preventDefault();
    input.push({ insert: e.clipboardData.getData("text/plain") });
    void upgrade(true);
  });

  const draw = () => {
    if (cm || destroyed) return;
    if (text.split("\n", PREVIEW_LINES + 1).length > PREVIEW_LINES) {
      void upgrade(false);
      return;
    }
    preview.replaceChildren(...lines(text, diagnostics));
  };
  draw();
  if (loaded) mount(loaded, false);

  return {
    text: () => (cm ? cm.text() : text),
    length: () => (cm ? cm.length() : text.length),
    setFormat: (f) => {
      format = f;
      if (cm) cm.setFormat(f);
    },
    // `data-testid="editor"` sits on the active tab's editable element (or its light view) only.
    setActive: (a) => {
      active = a;
      if (cm) cm.setActive(a);
      else if (a) preview.setAttribute("data-testid", "editor");
      else preview.removeAttribute("data-testid");
    },
    setHidden: (hide) => {
      hidden = hide;
      if (cm) cm.setHidden(hide);
      else preview.hidden = hide;
    },
    showDiagnostics: (d) => {
      diagnostics = d;
      if (cm) cm.showDiagnostics(d);
      else draw();
    },
    // The page's own changes go through the real editor, so that Ctrl+Z takes them back.
    change: (changes) => upgrade(false).then((e) => e && e.change(changes)),
    replace: (t) => upgrade(false).then((e) => e && e.replace(t)),
    select: (from, to) => {
      if (!cm) preview.focus({ preventScroll: true }); // keys typed now wait for the editor
      return upgrade(true).then((e) => e && e.select(from, to));
    },
    focus: () => (cm ? cm.focus() : preview.focus()),
    destroy: () => {
      destroyed = true;
      if (cm) cm.destroy();
      preview.remove();
    },
  };
}

/** Where a click in the light view puts the cursor: its line, and its column
 * in that line (the line's start in the gutter, its end past the text). */
function caretAt(e) {
  const row = e.target.closest?.(".preview-line");
  if (!row) return null;
  const text = row.querySelector(".preview-text");
  let column = e.target.closest(".preview-gutter") ? 0 : text.textContent.length;
  const pos = document.caretPositionFromPoint?.(e.clientX, e.clientY, { shadowRoots: [text.getRootNode()] });
  if (pos && text.contains(pos.offsetNode)) {
    const range = document.createRange();
    range.setStart(text, 0);
    range.setEnd(pos.offsetNode, pos.offset);
    column = range.toString().length;
  }
  return { line: Number(row.dataset.line), column };
}

/** The light view's lines: number, marker and text, findings underlined. */
function lines(text, diagnostics) {
  const starts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  const lineOf = (pos) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  // Each finding, cut at line ends, as [from, to, diagnostic] within its lines.
  const marks = starts.map(() => []);
  for (const d of diagnostics) {
    const from = Math.min(d.from, text.length);
    const to = Math.max(from, Math.min(d.to, text.length));
    const first = lineOf(from);
    for (let l = first; l < starts.length && (l === first || starts[l] < to); l++) {
      const end = l + 1 < starts.length ? starts[l + 1] - 1 : text.length;
      marks[l].push([Math.max(from, starts[l]) - starts[l], Math.min(to, end) - starts[l], d]);
    }
  }
  return starts.map((start, l) => {
    const end = l + 1 < starts.length ? starts[l + 1] - 1 : text.length;
    const line = text.slice(start, end);
    const worst = marks[l].reduce((w, [, , d]) => (!w || RANK[d.severity] > RANK[w.severity] ? d : w), null);
    return h(
      "div",
      { class: "preview-line", "data-line": l + 1 },
      h("span", { class: "preview-gutter", "aria-hidden": "true" }, h("span", { class: "preview-number" }, String(l + 1)), h("span", { class: `preview-marker ${worst ? worst.severity : ""}` })),
      h("span", { class: "preview-text" }, segments(line, marks[l])),
    );
  });
}

/** A line's text in pieces, each underlined by the worst finding over it. */
function segments(line, marks) {
  if (!marks.length) return line;
  const cuts = [...new Set([0, line.length, ...marks.flatMap(([f, t]) => [f, t])])].sort((a, b) => a - b);
  // An empty finding (at a line's end, say) still shows where it is.
  const empty = (at) => marks.filter(([f, t]) => f === at && t === at).map(([, , d]) => h("span", { class: `preview-mark empty ${d.severity}`, title: d.message }));
  const out = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const [a, b] = [cuts[i], cuts[i + 1]];
    out.push(...empty(a));
    const over = marks.filter(([f, t]) => f <= a && b <= t).map(([, , d]) => d);
    const piece = line.slice(a, b);
    if (!over.length) out.push(piece);
    else {
      const worst = over.reduce((w, d) => (RANK[d.severity] > RANK[w.severity] ? d : w));
      out.push(h("span", { class: `preview-mark ${worst.severity}`, title: over.map((d) => d.message).join("\n") }, piece));
    }
  }
  out.push(...empty(line.length));
  return out;
}
