// Compiled, never run (`tsc -p tsconfig.test.json`): typed use of the SDK under `strict`, with
// the `ws` package's WebSocket and no casts. A line marked @ts-expect-error that compiles fails
// the type check.
import WebSocket from "ws";
import {
  type AuthError,
  type Comment,
  type ErrorCode,
  MontageClient,
  MontageConnection,
  type MontageDocument,
  type PreviewEvent,
  type SocketFactory,
  media,
} from "../src/index.js";

interface Cursor {
  cursor: { x: number; y: number } | null;
  selection: string[];
}

export async function typedUse(): Promise<void> {
  // The ws class itself, or a factory returning its sockets, is a socket.
  const factory: SocketFactory = (url, protocols) => new WebSocket(url, protocols);
  const client = new MontageClient<MontageDocument, Cursor>({
    url: "ws://127.0.0.1:7070/v1/ws",
    token: async () => "jwt",
    session: "poster",
    socket: WebSocket,
  });
  new MontageClient({ url: "ws://x/v1/ws", getToken: () => "jwt", session: "s", socket: factory });

  await client.ready();
  const doc: MontageDocument | null = client.doc;
  const title: string | undefined = doc?.title;
  client.setPresence({ cursor: { x: 1, y: 2 }, selection: ["L1"] });
  // @ts-expect-error presence has the app's type
  client.setPresence({ cursor: "here" });
  const theirs: Cursor | undefined = client.presence.get("bob");
  client.on("presence", ({ data }) => data.selection.length);
  client.on("change", ({ doc, origin }) => {
    const layers: number = doc.canvas.layers.length;
    // @ts-expect-error origin is load | local | remote
    if (origin === "server") return layers;
    return layers;
  });
  client.on("error", ({ code }) => exhaustive(code));
  client.on("unauthorized", (e: AuthError) => e.reason);
  client.on("status", (s) => (s.state === "unauthorized" ? s.closeReason : s.pending));
  if (doc) client.submit(media.rotate(doc, "L1", 90));
  const c: Comment = await client.addComment({ content: "crop this", annotations: [{ region: { x: 0, y: 0, w: 1, h: 1 } }] });
  await client.reply(c.id, "done");
  const p: PreviewEvent = await client.subscribePreviews("good");
  // @ts-expect-error tiers are named
  await client.subscribePreviews("ultra");
  void [title, theirs, p];

  const conn = new MontageConnection({ url: "ws://127.0.0.1:7070/v1/ws", token: "jwt", socket: WebSocket });
  const a = conn.session<MontageDocument>("a");
  const b = conn.session("b");
  a.on("change", (e) => e.doc.timeline.tracks);
  b.leave();
}

function exhaustive(code: ErrorCode): string {
  switch (code) {
    case "unauthorized":
    case "forbidden":
    case "bad_request":
    case "not_found":
    case "rate_limited":
    case "too_large":
    case "conflict":
    case "not_supported":
    case "internal":
    case "bad_frame":
    case "desync":
    case "resync":
    case "disconnected":
    case "offline":
      return code;
    default: {
      const never: never = code;
      return never;
    }
  }
}
