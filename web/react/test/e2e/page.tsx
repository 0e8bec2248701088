// The Chromium test page: one user's view of a session, built only from @montage/react's
// hooks. The test opens it as
// index.html#ws=ws://…/v1/ws&token=JWT&session=ID
// and reads the DOM: [data-state]/[data-pending] (useStatus), #title (useDoc), #others
// (useOthers), #who (useSession); it edits through the form (useClient().submit), the note
// field (useMyPresence) and the Undo/Redo buttons (useUndo).
import { type FormEvent, StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import { set } from "@montage/client";
import { MontageProvider, useClient, useDoc, useMyPresence, useOthers, useSession, useStatus, useUndo } from "@montage/react";

type Note = { note?: string };
const params = new URLSearchParams(location.hash.slice(1));
const options = { url: params.get("ws") ?? "", token: params.get("token") ?? "", session: params.get("session") ?? "" };

declare global {
  interface Window {
    /** How often <Title> rendered: presence traffic must not re-render it. */
    titleRenders: number;
  }
}
window.titleRenders = 0;

function Title() {
  const title = useDoc((d: { title: string }) => d.title);
  window.titleRenders++;
  return <h1 id="title">{title ?? ""}</h1>;
}

function Others() {
  const others = useOthers<Note>();
  return (
    <ul id="others">
      {others.map((o) => (
        <li key={o.user} data-other={o.user} style={{ color: o.color }}>
          {o.name ?? o.user}: {o.presence?.note ?? ""}
        </li>
      ))}
    </ul>
  );
}

function Editor() {
  const client = useClient();
  const [draft, setDraft] = useState("");
  const [me, setMe] = useMyPresence<Note>();
  const { undo, redo, canUndo, canRedo } = useUndo();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    client.submit([set(["title"], draft)]);
  };
  return (
    <>
      <form onSubmit={submit}>
        <label>
          New title <input value={draft} onChange={(e) => setDraft(e.target.value)} />
        </label>
        <button type="submit">Set title</button>
      </form>
      <label>
        My note <input value={me?.note ?? ""} onChange={(e) => setMe({ note: e.target.value })} />
      </label>
      <button disabled={!canUndo} onClick={() => undo()}>
        Undo
      </button>
      <button disabled={!canRedo} onClick={() => redo()}>
        Redo
      </button>
    </>
  );
}

function App() {
  const status = useStatus();
  const session = useSession();
  return (
    <main data-state={status.state} data-pending={status.pending}>
      <p id="who">
        {session.user} ({session.role ?? "…"})
      </p>
      <Title />
      <Editor />
      <Others />
    </main>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <MontageProvider options={options}>
      <App />
    </MontageProvider>
  </StrictMode>,
);
