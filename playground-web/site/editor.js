// The playground's editor: CodeMirror 6, one view per tab. It knows nothing
// about DR: the diagnostics come from the core (app.js turns them into lint
// ranges), and completion offers the core's own tables (`tables()` in the
// wasm), not a second copy in JavaScript.
import { EditorState, Compartment } from "@codemirror/state";
import { EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection } from "@codemirror/view";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
import { StreamLanguage, syntaxHighlighting, bracketMatching } from "@codemirror/language";
import { history, historyKeymap, standardKeymap } from "@codemirror/commands";
import { autocompletion, completionKeymap } from "@codemirror/autocomplete";
import { toml } from "@codemirror/legacy-modes/mode/toml";
import { shell } from "@codemirror/legacy-modes/mode/shell";
import { classHighlighter } from "@lezer/highlight";

// keepalived.conf: keywords open a line, blocks are braces, `#` and `!` start
// comments; checkers (TCP_CHECK) are upper case; addresses and numbers stand out.
const keepalived = {
  name: "keepalived",
  startState: () => ({ first: true }),
  token(stream, state) {
    if (stream.sol()) state.first = true;
    if (stream.eatSpace()) return null;
    const ch = stream.peek();
    if (ch === "#" || ch === "!") {
      stream.skipToEnd();
      return "comment";
    }
    if (ch === "{" || ch === "}") {
      stream.next();
      state.first = ch === "}";
      return "bracket";
    }
    if (ch === '"') {
      stream.next();
      while (!stream.eol() && stream.next() !== '"');
      state.first = false;
      return "string";
    }
    stream.eatWhile(/[^\s{}"#!]/);
    const word = stream.current();
    const first = state.first;
    state.first = false;
    if (first) return /^[A-Z][A-Z0-9_]*$/.test(word) ? "typeName" : "keyword";
    if (/\d/.test(word) && /^[\d.:/a-fA-F]+$/.test(word)) return "number";
    return /^[A-Z][A-Z0-9_]*$/.test(word) ? "atom" : null;
  },
  languageData: { commentTokens: { line: "#" } },
};

const LANGUAGES = {
  toml: StreamLanguage.define(toml),
  script: StreamLanguage.define(shell),
  "ipvsadm-save": StreamLanguage.define(shell),
  keepalived: StreamLanguage.define(keepalived),
};
const languageFor = (format) => LANGUAGES[format] || [];

// The TOML table the cursor is in: the last `[name]` or `[[name]]` above it.
function tomlTable(state, pos) {
  for (let n = state.doc.lineAt(pos).number - 1; n >= 1; n--) {
    const m = /^\s*\[\[?\s*([\w.]+)\s*\]\]?/.exec(state.doc.line(n).text);
    if (m) return m[1];
  }
  return "";
}

// Completion from the core's tables: fields of the TOML table the cursor is
// in, scheduler names where a scheduler goes, sysctl keys where a key goes,
// keepalived checkers in keepalived.conf.
function completionSource(tables, formatOf) {
  const options = (labels, type, apply) => labels.map((label) => ({ label, type, apply: apply ? apply(label) : label }));
  return (context) => {
    const word = context.matchBefore(/[\w.\-/]*/);
    if (!word || (word.from === word.to && !context.explicit)) return null;
    const line = context.state.doc.lineAt(context.pos);
    const before = line.text.slice(0, word.from - line.from);
    const format = formatOf(context.state);
    const result = (list) => ({ from: word.from, options: list, validFor: /^[\w.\-/]*$/ });
    if (/(scheduler\s*=\s*["']|(^|\s)-s\s+|--scheduler[=\s]\s*|lb_algo\s+|lvs_sched\s+)$/.test(before)) {
      return result(options(tables.schedulers, "enum"));
    }
    if (/^net\b/.test(word.text) || /sysctl\s+(-w\s+)?$/.test(before) || (format === "toml" && /sysctl\s*=\s*\{[^}]*["']$/.test(before))) {
      return result(options(tables.sysctl, "property"));
    }
    if (format === "keepalived" && /^\s*$/.test(before) && /^[A-Z]/.test(word.text)) {
      return result(options(tables.health_checks, "type"));
    }
    if (format === "toml" && /^\s*$/.test(before)) {
      const table = tomlTable(context.state, context.pos);
      const fields = tables.fields[table] || tables.fields[""];
      return result(options(fields, "property", (key) => `${key} = `));
    }
    if (format === "toml" && /^\s*\[\[?$/.test(before)) {
      return result(options(Object.keys(tables.fields).filter((t) => t && !t.includes(".")), "class"));
    }
    return null;
  };
}

/** One tab's editor. `formatOf()` says what the tab holds now. */
export function createEditor({ parent, doc, format, tables, formatOf, onChange, label }) {
  const language = new Compartment();
  const attributes = new Compartment();
  const view = new EditorView({
    parent,
    root: parent.getRootNode(),
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        highlightActiveLine(),
        highlightActiveLineGutter(),
        history(),
        drawSelection(),
        bracketMatching(),
        lintGutter(),
        syntaxHighlighting(classHighlighter),
        language.of(languageFor(format)),
        attributes.of(EditorView.contentAttributes.of({ "aria-label": label, spellcheck: "false", autocapitalize: "off", autocorrect: "off" })),
        autocompletion({ override: [completionSource(tables, () => formatOf())] }),
        keymap.of([...completionKeymap, ...standardKeymap, ...historyKeymap]),
        EditorView.updateListener.of((u) => u.docChanged && onChange(u)),
      ],
    }),
  });
  return {
    view,
    text: () => view.state.doc.toString(),
    setFormat: (f) => view.dispatch({ effects: language.reconfigure(languageFor(f)) }),
    // `data-testid="editor"` sits on the editable element of the active tab only.
    setActive: (active) =>
      view.dispatch({
        effects: attributes.reconfigure(
          EditorView.contentAttributes.of({ "aria-label": label, spellcheck: "false", autocapitalize: "off", autocorrect: "off", ...(active ? { "data-testid": "editor" } : {}) }),
        ),
      }),
    showDiagnostics: (diagnostics) => view.dispatch(setDiagnostics(view.state, diagnostics)),
    select: (from, to) => {
      view.dispatch({ selection: { anchor: from, head: to }, scrollIntoView: true });
      view.focus();
    },
    replace: (text) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
  };
}
