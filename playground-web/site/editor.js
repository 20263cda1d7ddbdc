// The playground's editor: CodeMirror 6, one view per tab. It knows nothing
// about DR: the diagnostics come from the core (app.js turns them into lint
// ranges), and completion offers the core's own tables (`tables()` in the
// wasm), not a second copy in JavaScript.
//
// This module is what a tab needs to show its text and its findings; the
// key bindings, undo history, highlighting and completion (editing.js) come
// the first time an editor is focused or touched, before its first keystroke.
import { EditorState, Compartment } from "@codemirror/state";
import { EditorView, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection } from "@codemirror/view";
import { lintGutter, setDiagnostics } from "@codemirror/lint";

let editingChunk = null;
/** The editing chunk, fetched once. */
const loadEditing = () => (editingChunk ||= import("./editing.js"));

/** One tab's editor. `formatOf()` says what the tab holds now. */
export function createEditor({ parent, doc, format, tables, formatOf, onChange, label }) {
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
    parent,
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
  // Once the chunk is here (another editor was focused), a new editor gets it at once.
  if (editingChunk) void upgrade();
  return {
    view,
    text: () => view.state.doc.toString(),
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
