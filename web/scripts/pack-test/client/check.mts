// Type-checks against the installed declarations (strict). A missing or `any`-typed .d.ts fails
// here: implicit any is an error, and each @ts-expect-error must meet a real type error.
import {
  type ClientEvents,
  type ConnectionState,
  type Json,
  type MontageDocument,
  type Op,
  type Participant,
  MontageClient,
  apply,
  decodeOp,
} from "@montage/client";

const op: Op = decodeOp([{ op: "set", path: ["title"], value: "typed" }]);
const next: Json = apply({ title: "" }, op).doc;
const client = new MontageClient({ url: "ws://localhost/v1/ws", session: "s", autoConnect: false, getToken: async () => "jwt" });
const state: ConnectionState = client.connectionState;
const people: Participant[] = client.participants;
const off: () => void = client.on("change", (ev: ClientEvents["change"]) => {
  const local: boolean = ev.local;
  const doc = ev.doc as unknown as MontageDocument;
  void [local, doc.title];
});
client.on("presence", ({ user, data }) => void [user.toUpperCase(), data]);
// @ts-expect-error: no such event
client.on("no-such-event", () => {});
// @ts-expect-error: session is required
new MontageClient({ url: "ws://localhost/v1/ws" });
// @ts-expect-error: an edit is an array of components, not a string
client.submit("set title");
// Typed documents and presence.
const typed = new MontageClient<MontageDocument, { x: number }>({ url: "ws://localhost/v1/ws", session: "s", token: () => "jwt", autoConnect: false });
typed.on("change", (ev) => void [ev.doc.title.toUpperCase(), ev.origin]);
typed.setPresence({ x: 1 });
// @ts-expect-error: presence is { x: number }
typed.setPresence("here");
void [next, state, people, off];
