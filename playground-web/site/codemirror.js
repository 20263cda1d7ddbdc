// A tab's CodeMirror 6 editor. It knows nothing about DR: the diagnostics
// come from the core (app.js turns them into lint ranges), and completion
// offers the core's own tables (`tables()` in the wasm), not a second copy
// in JavaScript.
//
// A chunk of its own: editor.js shows a tab's text and findings without it,
// and loads it the first time someone focuses, touches or types in a tab (or
// the page must change a tab's text). The key bindings, undo history,
// highlighting and completion (editing.js) come at the same first use.
import { EditorState, Compartment } from "@codemirror/state";
import { EditorView, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection } from "@codemirror/view";
import { lintGutter, setDiagnostics } from "@codemirror/lint";

let editingChunk = null;
/** The editing chunk, fetched once. */
const loadEditing = () => (editingChunk ||= import("./editing.js"));

/** One tab's editor, placed before `before` in `parent`. `formatOf()` says what the tab holds now. */
export function createCodeMirror({ parent, before, doc, format, tables, formatOf, onChange, label }) {
  const language = new Compartment();
  const editing = new Compartment();
  const attributes = new Compartment();
  let current = format;
  let module = null;
  // The first focus or touch brings highlighting and completion to this editor.
  const upgrade = () =>
    loadEditing().then((m) => {
      if (module) return;
      module = m;
      view.dispatch({ effects: [language.reconfigure(m.languageFor(current)), editing.reconfigure(m.editing(tables, formatOf))] });
    });
  const view = new EditorView({
    root: parent.getRootNode(),
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        highlightActiveLine(),
        highlightActiveLineGutter(),
        drawSelection(),
        lintGutter(),
        language.of([]),
        attributes.of(EditorView.contentAttributes.of({ "aria-label": label, spellcheck: "false", autocapitalize: "off", autocorrect: "off" })),
        editing.of([]),
        EditorView.domEventHandlers({ focus: () => void upgrade(), pointerdown: () => void upgrade(), keydown: () => void upgrade() }),
        EditorView.updateListener.of((u) => u.docChanged && onChange(u)),
      ],
    }),
  });
  parent.insertBefore(view.dom, before);
  // Once the chunk is here (another editor was focused), a new editor gets it at once.
  if (editingChunk) void upgrade();
  return {
    text: () => view.state.doc.toString(),
    length: () => view.state.doc.length,
    setHidden: (hidden) => (view.dom.hidden = hidden),
    change: (changes) => view.dispatch({ changes }),
    focus: () => view.focus(),
    destroy: () => view.destroy(),
    scrollTo: (top) => (view.scrollDOM.scrollTop = top),
    // What came before this editor did (editor.js kept it): the cursor where
    // the text was clicked, the keys typed, a paste; in that order.
    replay: (input) => {
      for (const i of input) {
        if (i.line) {
          const line = view.state.doc.line(Math.min(i.line, view.state.doc.lines));
          view.dispatch({ selection: { anchor: line.from + Math.min(i.column, line.length) } });
        } else if (i.selectAll) view.dispatch({ selection: { anchor: 0, head: view.state.doc.length } });
        else view.dispatch(view.state.replaceSelection(i.insert), { scrollIntoView: true, userEvent: "input" });
      }
    },
    setFormat: (f) => {
      current = f;
      if (module) view.dispatch({ effects: language.reconfigure(module.languageFor(f)) });
    },
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
    // After the history is there, so that Ctrl+Z takes it back.
    replace: (text) => upgrade().then(() => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } })),
  };
}
