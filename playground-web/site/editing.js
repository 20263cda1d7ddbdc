// What the editor needs once someone edits: key bindings and undo history,
// syntax highlighting for each format, bracket matching, and completion from
// the core's tables. A chunk of its own (CodeMirror's commands, language
// package and legacy modes, the completion UI), fetched the first time an
// editor is focused or touched, so the first screen does not wait for it.
import { StreamLanguage, syntaxHighlighting, bracketMatching } from "@codemirror/language";
import { autocompletion } from "@codemirror/autocomplete";
import { history, historyKeymap, standardKeymap } from "@codemirror/commands";
import { keymap } from "@codemirror/view";
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
/** The format's language, with highlighting and bracket matching. */
export const languageFor = (format) => [LANGUAGES[format] || [], syntaxHighlighting(classHighlighter), bracketMatching()];

// The TOML table the cursor is in: the last `[name]` or `[[name]]` above it.
function tomlTable(state, pos) {
  for (let n = state.doc.lineAt(pos).number - 1; n >= 1; n--) {
    const m = /^\s*\[\[?\s*([\w.]+)\s*\]\]?/.exec(state.doc.line(n).text);
    if (m) return m[1];
  }
  return "";
}

// The keepalived block the cursor is in: the first word of the statement
// that opened the innermost `{` still open above it ("" at the top level).
// Comments (`#`, `!`) and quoted strings hold no braces.
function keepalivedBlock(state, pos) {
  let depth = 0;
  const line0 = state.doc.lineAt(pos);
  for (let n = line0.number; n >= 1; n--) {
    const line = state.doc.line(n);
    const text = (n === line0.number ? line.text.slice(0, pos - line.from) : line.text).replace(/"[^"]*"?/g, '""').replace(/[#!].*$/, "");
    for (let i = text.length - 1; i >= 0; i--) {
      if (text[i] === "}") depth++;
      else if (text[i] === "{" && depth-- === 0) {
        // The opener's keyword: the first word of its line, or of the line above when the brace stands alone.
        let head = text.slice(0, i).trim();
        for (let m = n - 1; !head && m >= 1; m--) head = state.doc.line(m).text.replace(/[#!].*$/, "").trim();
        return head.split(/\s+/)[0] || "";
      }
    }
  }
  return "";
}

// Completion from the core's tables: fields of the TOML table the cursor is
// in, scheduler names where a scheduler goes, sysctl keys where a key goes,
// in keepalived.conf the keywords the importer knows in the block at the cursor.
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
    if (format === "keepalived" && /^\s*$/.test(before)) {
      const block = keepalivedBlock(context.state, word.from);
      const key = tables.health_checks.includes(block) ? "checker" : block;
      const keywords = tables.keepalived && tables.keepalived[key];
      if (!keywords) return null;
      return result([...options(keywords, "keyword"), ...(key === "real_server" ? options(tables.health_checks, "type") : [])]);
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

/** Key bindings, undo history, and completion from the core's tables
 * (with its own keys: Ctrl+Space, arrows, Enter); `formatOf()` says what the tab holds now. */
export const editing = (tables, formatOf) => [history(), autocompletion({ override: [completionSource(tables, () => formatOf())] }), keymap.of([...standardKeymap, ...historyKeymap])];
