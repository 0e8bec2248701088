// The hooks rendered with react-dom into happy-dom, over a real MontageClient whose socket is a
// fake the test speaks protocol v1 through (joined, op, presence, ack, …).
import { act, type ReactNode, StrictMode } from "react";
import { type Root, createRoot } from "react-dom/client";
import { renderToString } from "react-dom/server";
import { afterEach, describe, expect, it } from "vitest";
import { type Json, MontageClient, type MontageSession, type SocketLike, newDocument, set } from "@montage/client";
import {
  MontageProvider,
  type Other,
  shallowEqual,
  useClient,
  useDoc,
  useMyPresence,
  useOthers,
  useSession,
  useStatus,
  useUndo,
} from "../src/index.js";

// React warns unless it knows it runs under a test's act().
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({});
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  /** The server closes the socket (4401: it refuses the token). */
  serverClose(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  receive(m: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify({ session: "s", ...m }) });
  }
}

const sockets: FakeSocket[] = [];
const socket = (url: string) => {
  const s = new FakeSocket(url);
  sockets.push(s);
  return s;
};
const last = () => sockets[sockets.length - 1]!;

const roots: Root[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) act(() => r.unmount());
  sockets.length = 0;
});

function render(node: ReactNode): HTMLElement {
  const el = document.createElement("div");
  const root = createRoot(el);
  roots.push(root);
  act(() => root.render(node));
  return el;
}

const people = [
  { user: "alice", role: "owner", online: true },
  { user: "bob", role: "editor", online: true, name: "Bob", color: "#112233" },
  { user: "carol", role: "viewer", online: false },
];

/** A client for alice, joined at version 0 with the new-session document. */
function joinedClient(): { client: MontageClient; sock: FakeSocket } {
  const client = new MontageClient({ url: "ws://x/v1/ws", token: "t", user: "alice", session: "s", socket, autoConnect: false });
  client.connect();
  const sock = last();
  act(() => {
    sock.open();
    sock.receive({ type: "joined", version: 0, role: "owner", link_role: "none", participants: people, state: newDocument() });
  });
  return { client, sock };
}

describe("useDoc", () => {
  it("re-renders only when the selected value changes", () => {
    const { client, sock } = joinedClient();
    const renders: string[] = [];
    function Title() {
      const title = useDoc((d: { title: string }) => d.title);
      renders.push(String(title));
      return <h1>{title}</h1>;
    }
    const el = render(
      <MontageProvider client={client}>
        <Title />
      </MontageProvider>,
    );
    expect(el.textContent).toBe("");
    expect(renders).toEqual([""]);

    // Someone else edits another part of the document: no render.
    act(() => sock.receive({ type: "op", version: 1, user: "bob", ops: [{ op: "set", path: ["meta", "note"], value: "x" }] }));
    expect(renders).toEqual([""]);
    // … and the title: one render, with the new title.
    act(() => sock.receive({ type: "op", version: 2, user: "bob", ops: [{ op: "set", path: ["title"], value: "Hi" }] }));
    expect(renders).toEqual(["", "Hi"]);
    expect(el.textContent).toBe("Hi");
  });

  it("keeps an equal selection with shallowEqual, and is undefined before the join", () => {
    const client = new MontageClient({ url: "ws://x/v1/ws", token: "t", user: "alice", session: "s", socket, autoConnect: false });
    const renders: (string[] | undefined)[] = [];
    function Keys() {
      const keys = useDoc((d: Record<string, Json>) => Object.keys(d.meta as object), shallowEqual);
      renders.push(keys);
      return <p>{keys === undefined ? "loading" : keys.join(",")}</p>;
    }
    const el = render(
      <MontageProvider client={client}>
        <Keys />
      </MontageProvider>,
    );
    expect(el.textContent).toBe("loading");
    client.connect();
    const sock = last();
    act(() => {
      sock.open();
      sock.receive({ type: "joined", version: 0, role: "owner", participants: people, state: newDocument() });
    });
    expect(el.textContent).toBe("");
    const n = renders.length;
    // A new array with the same keys each time: equal, so no render.
    act(() => sock.receive({ type: "op", version: 1, user: "bob", ops: [{ op: "set", path: ["title"], value: "t" }] }));
    expect(renders.length).toBe(n);
    act(() => sock.receive({ type: "op", version: 2, user: "bob", ops: [{ op: "set", path: ["meta", "k"], value: 1 }] }));
    expect(el.textContent).toBe("k");
  });
});

describe("useOthers and useMyPresence", () => {
  it("lists the others online with their presence, and publishes mine", () => {
    const { client, sock } = joinedClient();
    let seen: readonly Other<{ cursor: number }>[] = [];
    let renders = 0;
    function People() {
      seen = useOthers<{ cursor: number }>();
      renders++;
      const [mine, setMine] = useMyPresence<{ cursor: number }>();
      return (
        <div>
          <button onClick={() => setMine((p) => ({ cursor: (p?.cursor ?? 0) + 1 }))}>move</button>
          <span id="mine">{mine?.cursor ?? "none"}</span>
          {seen.map((o) => (
            <span key={o.user} data-user={o.user}>
              {o.name ?? o.user}:{o.presence?.cursor ?? "-"}
            </span>
          ))}
        </div>
      );
    }
    const el = render(
      <MontageProvider client={client}>
        <People />
      </MontageProvider>,
    );
    // Me and carol (offline) are not others.
    expect(seen.map((o) => o.user)).toEqual(["bob"]);
    expect(seen[0]).toEqual({ user: "bob", role: "editor", name: "Bob", color: "#112233", presence: undefined });
    const before = seen;
    act(() => sock.receive({ type: "presence", user: "bob", data: { cursor: 7 } }));
    expect(el.querySelector('[data-user="bob"]')!.textContent).toBe("Bob:7");
    expect(seen).not.toBe(before);

    // A roster message that changes nothing keeps the same array (no render).
    const n = renders;
    act(() => sock.receive({ type: "participant_joined", user: "bob", role: "editor", name: "Bob", color: "#112233" }));
    expect(renders).toBe(n);
    act(() => sock.receive({ type: "participant_joined", user: "dan", role: "viewer" }));
    expect(seen.map((o) => o.user)).toEqual(["bob", "dan"]);
    act(() => sock.receive({ type: "role_changed", user: "dan", role: "editor" }));
    expect(seen[1]!.role).toBe("editor");
    act(() => sock.receive({ type: "participant_left", user: "bob" }));
    expect(seen.map((o) => o.user)).toEqual(["dan"]);

    // My presence: the setter (with an updater) sends it and re-renders its readers.
    expect(el.querySelector("#mine")!.textContent).toBe("none");
    act(() => el.querySelector("button")!.click());
    act(() => el.querySelector("button")!.click());
    expect(el.querySelector("#mine")!.textContent).toBe("2");
    expect(sock.sent.filter((m) => m["type"] === "presence").map((m) => m["data"])).toEqual([{ cursor: 1 }, { cursor: 2 }]);
  });
});

describe("useStatus, useUndo and useSession", () => {
  it("follow edits, acks, undo and the connection", () => {
    const { client, sock } = joinedClient();
    const seen: { state: string; pending: number; canUndo: boolean; canRedo: boolean; role: string | null }[] = [];
    let api: ReturnType<typeof useUndo> | null = null;
    let c: MontageSession | null = null;
    function Bar() {
      const status = useStatus();
      const u = useUndo();
      const session = useSession();
      api = u;
      c = useClient();
      seen.push({ ...status, canUndo: u.canUndo, canRedo: u.canRedo, role: session.role });
      return null;
    }
    render(
      <MontageProvider client={client}>
        <Bar />
      </MontageProvider>,
    );
    expect(c).toBe(client);
    expect(seen.at(-1)).toEqual({ state: "online", pending: 0, canUndo: false, canRedo: false, role: "owner" });

    act(() => client.submit([set(["title"], "mine")]));
    expect(seen.at(-1)).toEqual({ state: "online", pending: 1, canUndo: true, canRedo: false, role: "owner" });
    const op = sock.sent.find((m) => m["type"] === "op")!;
    act(() => sock.receive({ type: "ack", seq: op["seq"], version: 1 }));
    expect(seen.at(-1)!.pending).toBe(0);

    act(() => expect(api!.undo()).toBe(true));
    expect(client.doc).toMatchObject({ title: "" });
    expect(seen.at(-1)).toMatchObject({ canUndo: false, canRedo: true });
    act(() => expect(api!.redo()).toBe(true));
    expect(client.doc).toMatchObject({ title: "mine" });

    act(() => sock.receive({ type: "role_changed", user: "alice", role: "editor" }));
    expect(seen.at(-1)!.role).toBe("editor");
    act(() => client.disconnect());
    expect(seen.at(-1)!.state).toBe("offline");
  });
});

describe("a refused token", () => {
  it("shows as status unauthorized and useSession's authError", () => {
    const { client, sock } = joinedClient();
    let status = "";
    let authError: unknown = null;
    function Probe2() {
      status = useStatus().state;
      authError = useSession().authError;
      return null;
    }
    render(
      <MontageProvider client={client}>
        <Probe2 />
      </MontageProvider>,
    );
    expect([status, authError]).toEqual(["online", null]);
    // A fixed token the server refuses (close 4401) is terminal.
    act(() => sock.serverClose(4401, "token expired"));
    expect(status).toBe("unauthorized");
    expect(authError).toBe(client.authError);
    expect(authError).not.toBeNull();
  });
});

describe("MontageProvider with options", () => {
  it("connects its own client in an effect (once under StrictMode) and disconnects on unmount", () => {
    function State() {
      return <p>{useStatus().state}</p>;
    }
    const el = document.createElement("div");
    const root = createRoot(el);
    act(() =>
      root.render(
        <StrictMode>
          <MontageProvider options={{ url: "ws://x/v1/ws", token: "t", user: "alice", session: "s", socket }}>
            <State />
          </MontageProvider>
        </StrictMode>,
      ),
    );
    // StrictMode mounts, unmounts and mounts again: one socket left open.
    const open = sockets.filter((s) => s.readyState !== 3);
    expect(open.length).toBe(1);
    expect(el.textContent).toBe("connecting");
    act(() => {
      open[0]!.open();
      open[0]!.receive({ type: "joined", version: 0, role: "owner", participants: people, state: newDocument() });
    });
    expect(el.textContent).toBe("online");
    act(() => root.unmount());
    expect(open[0]!.readyState).toBe(3);
    expect(open[0]!.sent.at(-1)).toEqual({ type: "leave", session: "s" });
  });

  it("renders on the server without connecting", () => {
    const html = renderToString(
      <MontageProvider options={{ url: "ws://x/v1/ws", token: "t", session: "s", socket }}>
        <Probe />
      </MontageProvider>,
    );
    expect(html).toBe("<p>offline<!-- -->|<!-- -->none</p>");
    expect(sockets.length).toBe(0);
  });

  it("says where the hooks belong", () => {
    function Lost() {
      useStatus();
      return null;
    }
    expect(() => renderToString(<Lost />)).toThrow(/inside <MontageProvider>/);
  });
});

function Probe() {
  const title = useDoc((d: { title: string }) => d.title);
  return (
    <p>
      {useStatus().state}|{title ?? "none"}
    </p>
  );
}
