/**
 * `MontageClient`: one session over a WebSocket speaking protocol v1 JSON (DESIGN §3), on top
 * of `SyncDoc`. Optimistic local edits, one in flight, reconnect with backoff, resend of the
 * in-flight edit with its original base and seq after `join` with `since`, presence, per-user
 * undo/redo, and connection state events.
 *
 * The socket is injectable (`socket` option): the browser's `WebSocket` by default, Node's
 * global one where it exists (Node ≥ 22), or any object with the same small surface (the `ws`
 * package, or a fake in tests).
 */
import { type Op, decodeOp, encodeOp } from "./component.js";
import type { Json } from "./json.js";
import { SyncDoc, type SyncSnapshot } from "./sync.js";

/** The part of the WebSocket API the client uses. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type SocketFactory = (url: string, protocols: string[]) => SocketLike;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ClientOptions {
  /** `ws://host:port/v1/ws` (a `token` is appended as `?token=`). */
  url: string;
  token?: string;
  session: string;
  /** Identifies this replica for idempotent resends; random by default. */
  clientId?: string;
  socket?: SocketFactory;
  /** Reconnect backoff: first delay, cap, growth factor; a random jitter of up to `jitter`
   * (a fraction) is added. Defaults: 250 ms, 10 s, 2, 0.2. */
  backoff?: { initialMs?: number; maxMs?: number; factor?: number; jitter?: number };
  timers?: Timers;
  random?: () => number;
  /** Connect at construction (default true). */
  autoConnect?: boolean;
  /**
   * Keeps the replica (document, version, unacknowledged edits, client id) across page reloads,
   * e.g. in `localStorage`. A client built on a stored replica shows it at once and, once
   * connected, resends its edits with their original base and seq.
   */
  storage?: ClientStorage;
}

/** Where a client keeps its replica: one string per session. */
export interface ClientStorage {
  load(): string | null;
  save(value: string): void;
}

interface Stored {
  session: string;
  clientId: string;
  sync: SyncSnapshot;
}

export type ConnectionState = "connecting" | "online" | "reconnecting" | "offline";

export interface StatusEvent {
  state: ConnectionState;
  /** Local edits the server has not acknowledged yet. */
  pending: number;
  /** Reconnect attempt (1, 2, …) while reconnecting or waiting. */
  attempt?: number;
  /** When offline and a retry is scheduled: its delay. */
  retryInMs?: number;
}

export interface Participant {
  user: string;
  role: string;
  online: boolean;
  /** Display name (the token's `name`), when the server sends it. */
  name?: string;
  /** `#rrggbb`, stable per user, when the server sends it. */
  color?: string;
}

export interface ClientEvents {
  /** The document changed: by a local edit, an undo/redo, or someone else's edit. */
  change: { doc: Json; op: Op; local: boolean; user?: string; version: number };
  status: StatusEvent;
  joined: { version: number; role: string; participants: Participant[] };
  presence: { user: string; data: Json };
  participants: Participant[];
  role: { user: string; role: string };
  /** The server refused one of my edits; local edits were dropped and the state reloaded. */
  rejected: { seq: number; code: string; message: string; lost: number };
  error: { code: string; message: string; rid?: string };
  /** Every server message, as received. */
  message: Record<string, unknown>;
}

type Handler<T> = (ev: T) => void;

const OPEN = 1;

function defaultSocket(): SocketFactory {
  const WS = (globalThis as { WebSocket?: new (url: string, protocols: string[]) => SocketLike }).WebSocket;
  if (WS === undefined) {
    throw new Error("no global WebSocket here: pass the `socket` option (e.g. the `ws` package)");
  }
  return (url, protocols) => new WS(url, protocols);
}

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

export class MontageClient {
  readonly session: string;
  readonly clientId: string;
  private readonly opts: ClientOptions;
  private readonly makeSocket: SocketFactory;
  private readonly timers: Timers;
  private readonly random: () => number;
  private handlers = new Map<keyof ClientEvents, Set<Handler<never>>>();

  private sock: SocketLike | null = null;
  private sync: SyncDoc | null = null;
  private state: ConnectionState = "offline";
  private attempt = 0;
  private retryTimer: unknown = null;
  private wantOnline = false;
  private joined = false;
  /** While a resent edit awaits its ack, server edits are held here (see `onJoined`). */
  private held: { version: number; op: Op; user?: string }[] | null = null;
  private presenceData: Json | undefined;
  /** The last seq used, kept across resyncs: (client, seq) must never repeat. */
  private seqFloor = 0;
  private participantMap = new Map<string, Participant>();
  private presences = new Map<string, Json>();
  private readyWaiters: (() => void)[] = [];
  role: string | null = null;

  constructor(opts: ClientOptions) {
    this.opts = opts;
    this.session = opts.session;
    const stored = MontageClient.loadStored(opts);
    this.clientId = stored?.clientId ?? opts.clientId ?? randomId();
    if (stored) {
      this.sync = SyncDoc.restore(stored.sync);
      this.joined = true; // the next join names `since`
    }
    this.makeSocket = opts.socket ?? defaultSocket();
    this.timers = opts.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    this.random = opts.random ?? Math.random;
    if (opts.autoConnect !== false) this.connect();
  }

  private static loadStored(opts: ClientOptions): Stored | null {
    const raw = opts.storage?.load();
    if (raw === null || raw === undefined) return null;
    try {
      const s = JSON.parse(raw) as Stored;
      if (s.session !== opts.session) return null;
      SyncDoc.restore(s.sync);
      return s;
    } catch {
      return null; // unreadable: start afresh
    }
  }

  /** Writes the replica to `storage`, if any. */
  private persist(): void {
    const st = this.opts.storage;
    if (st === undefined || this.sync === null) return;
    const s: Stored = { session: this.session, clientId: this.clientId, sync: this.sync.snapshot() };
    st.save(JSON.stringify(s));
  }

  // ---- state -------------------------------------------------------------------------------

  /** The local document (with my unacknowledged edits applied); null before the first join. */
  get doc(): Json | null {
    return this.sync?.doc ?? null;
  }
  /** The last server version this replica has seen. */
  get version(): number {
    return this.sync?.version ?? 0;
  }
  get connectionState(): ConnectionState {
    return this.state;
  }
  get pendingCount(): number {
    return this.sync?.pendingCount ?? 0;
  }
  get participants(): Participant[] {
    return [...this.participantMap.values()];
  }
  /** Latest presence data of each other user. */
  get presence(): ReadonlyMap<string, Json> {
    return this.presences;
  }
  get canUndo(): boolean {
    return this.sync?.canUndo ?? false;
  }
  get canRedo(): boolean {
    return this.sync?.canRedo ?? false;
  }

  /** Resolves once the session is joined (at once if it already is). */
  ready(): Promise<void> {
    if (this.joined && this.state === "online") return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  on<K extends keyof ClientEvents>(event: K, fn: Handler<ClientEvents[K]>): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(fn as Handler<never>);
    return () => set!.delete(fn as Handler<never>);
  }
  private emit<K extends keyof ClientEvents>(event: K, ev: ClientEvents[K]): void {
    if (event === "change") this.persist();
    for (const fn of this.handlers.get(event) ?? []) (fn as Handler<ClientEvents[K]>)(ev);
  }

  // ---- editing -----------------------------------------------------------------------------

  /** Applies a local edit at once and sends it when it can. Throws `OtError` if the edit is
   * invalid for the current document (nothing changes then). */
  submit(op: Op): void {
    const sync = this.requireSync();
    sync.edit(op);
    this.emit("change", { doc: sync.doc, op, local: true, version: sync.version });
    this.flush();
    if (this.state !== "online") this.emit("status", { state: this.state, pending: this.pendingCount });
  }
  /** Undoes my latest edit (others' work stays). Returns false if there was nothing to undo. */
  undo(): boolean {
    return this.localStep((s) => s.undo());
  }
  redo(): boolean {
    return this.localStep((s) => s.redo());
  }
  private localStep(f: (s: SyncDoc) => Op | null): boolean {
    const sync = this.requireSync();
    const op = f(sync);
    if (op === null) return false;
    this.emit("change", { doc: sync.doc, op, local: true, version: sync.version });
    this.flush();
    return true;
  }
  private requireSync(): SyncDoc {
    if (this.sync === null) throw new Error("the session is not joined yet: wait for ready()");
    return this.sync;
  }

  /**
   * Sends any other protocol message (comments, `preview_subscribe`, …) on the open socket.
   * Returns false when not connected: such messages are not queued (unlike edits).
   */
  sendMessage(msg: Record<string, unknown>): boolean {
    if (this.state !== "online" || this.sock === null || this.sock.readyState !== OPEN) return false;
    this.send(msg);
    return true;
  }

  /** Publishes my presence (cursor, selection, …); the latest value is re-sent on reconnect. */
  setPresence(data: Json): void {
    this.presenceData = data;
    if (this.state === "online") this.send({ type: "presence", session: this.session, data });
  }

  // ---- connection --------------------------------------------------------------------------

  /** Opens the connection (and keeps reconnecting until `disconnect`). */
  connect(): void {
    this.wantOnline = true;
    if (this.sock !== null) return;
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.setState(this.joined ? "reconnecting" : "connecting");
    let url = this.opts.url;
    if (this.opts.token !== undefined) {
      url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(this.opts.token);
    }
    let sock: SocketLike;
    try {
      sock = this.makeSocket(url, ["montage.v1.json"]);
    } catch {
      this.onClosed();
      return;
    }
    this.sock = sock;
    sock.onopen = () => {
      if (this.sock !== sock) return;
      const join: Record<string, unknown> = { type: "join", session: this.session, client: this.clientId };
      if (this.sync !== null) join["since"] = this.sync.version;
      this.send(join);
    };
    sock.onmessage = (ev) => {
      if (this.sock !== sock) return;
      let msg: unknown;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        this.emit("error", { code: "bad_frame", message: "the server sent a frame that is not JSON" });
        return;
      }
      if (typeof msg === "object" && msg !== null && !Array.isArray(msg)) this.onMessage(msg as Record<string, unknown>);
    };
    sock.onclose = () => {
      if (this.sock !== sock) return;
      this.sock = null;
      this.onClosed();
    };
    sock.onerror = () => {
      // A close event follows.
    };
  }

  /** Closes the connection and stays offline (edits keep queueing locally). */
  disconnect(): void {
    this.wantOnline = false;
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    const s = this.sock;
    this.sock = null;
    this.held = null;
    if (s !== null) {
      try {
        if (s.readyState === OPEN) s.send(JSON.stringify({ type: "leave", session: this.session }));
        s.close(1000, "bye");
      } catch {
        // already closing
      }
    }
    this.setState("offline");
  }

  private onClosed(): void {
    this.held = null;
    if (!this.wantOnline) {
      this.setState("offline");
      return;
    }
    const b = this.opts.backoff ?? {};
    const initial = b.initialMs ?? 250;
    const max = b.maxMs ?? 10_000;
    const factor = b.factor ?? 2;
    const jitter = b.jitter ?? 0.2;
    const base = Math.min(max, initial * Math.pow(factor, this.attempt));
    const delay = Math.round(base * (1 + jitter * this.random()));
    this.attempt++;
    this.setState("offline", { attempt: this.attempt, retryInMs: delay });
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      if (this.wantOnline) this.connect();
    }, delay);
  }

  private setState(state: ConnectionState, extra: { attempt?: number; retryInMs?: number } = {}): void {
    this.state = state;
    const ev: StatusEvent = { state, pending: this.pendingCount, ...extra };
    if (state === "reconnecting" && ev.attempt === undefined) ev.attempt = this.attempt;
    this.emit("status", ev);
  }

  private send(msg: Record<string, unknown>): void {
    const s = this.sock;
    if (s === null || s.readyState !== OPEN) return;
    s.send(JSON.stringify(msg));
  }

  private flush(): void {
    if (this.state !== "online" || this.sync === null || this.held !== null) return;
    const out = this.sync.takeOutgoing();
    if (out !== null) {
      // Stored before it leaves: a reload must resend it under this seq, never reuse the seq.
      this.persist();
      this.sendOp(out.base, out.seq, out.op);
    }
  }
  private sendOp(base: number, seq: number, op: Op): void {
    this.send({ type: "op", session: this.session, base, seq, ops: encodeOp(op), rid: `op:${seq}` });
  }

  // ---- server messages ---------------------------------------------------------------------

  private onMessage(m: Record<string, unknown>): void {
    this.emit("message", m);
    if (typeof m["session"] === "string" && m["session"] !== this.session) return;
    try {
      switch (m["type"]) {
        case "joined":
          return this.onJoined(m);
        case "ack":
          return this.onAck(Number(m["seq"]), Number(m["version"]));
        case "op":
          return this.onRemote(Number(m["version"]), decodeOp(m["ops"]), String(m["user"] ?? ""));
        case "presence": {
          const user = String(m["user"]);
          this.presences.set(user, (m["data"] ?? null) as Json);
          return this.emit("presence", { user, data: (m["data"] ?? null) as Json });
        }
        case "participant_joined": {
          const p: Participant = { user: String(m["user"]), role: String(m["role"]), online: true };
          if (typeof m["name"] === "string") p.name = m["name"];
          if (typeof m["color"] === "string") p.color = m["color"];
          this.participantMap.set(p.user, p);
          return this.emit("participants", this.participants);
        }
        case "participant_left":
          this.participantMap.delete(String(m["user"]));
          this.presences.delete(String(m["user"]));
          return this.emit("participants", this.participants);
        case "role_changed": {
          const user = String(m["user"]);
          const p = this.participantMap.get(user);
          if (p) p.role = String(m["role"]);
          return this.emit("role", { user, role: String(m["role"]) });
        }
        case "error":
          return this.onError(m);
        default:
          return;
      }
    } catch (e) {
      // A message this replica can't follow (a version gap, an op it can't apply): start over
      // from the server's state rather than drift.
      this.emit("error", { code: "desync", message: (e as Error).message });
      this.resync();
    }
  }

  private onJoined(m: Record<string, unknown>): void {
    const version = Number(m["version"]);
    this.role = String(m["role"] ?? "");
    const participants = (Array.isArray(m["participants"]) ? m["participants"] : []) as Participant[];
    this.participantMap = new Map(participants.map((p) => [p.user, { ...p }]));
    // Participants' latest presence, when the server sends it with `joined`.
    for (const p of participants as (Participant & { presence?: Json })[]) {
      if (p.presence !== undefined && p.presence !== null) this.presences.set(p.user, p.presence);
    }
    const state = m["state"] as Json | undefined;
    const ops = m["ops"] as { version: number; user: string; ops: unknown }[] | undefined;

    if (this.sync === null || state !== undefined) {
      if (this.sync !== null && this.sync.pendingCount > 0) {
        // The server sent a whole state instead of the ops since my version: my unacknowledged
        // edits can't be rebased onto it. They are dropped (and reported).
        this.emit("rejected", {
          seq: this.sync.inflight?.seq ?? 0,
          code: "resync",
          message: "the server sent a full state; unacknowledged edits were dropped",
          lost: this.sync.pendingCount,
        });
      }
      if (state === undefined) throw new Error("joined without state or ops");
      if (this.sync === null) this.sync = new SyncDoc(state, version, this.seqFloor);
      else this.sync.reset(state, version);
      this.emit("change", { doc: this.sync.doc, op: [], local: false, version });
    }
    const sync = this.sync;
    const entries = (ops ?? []).map((e) => ({ version: Number(e.version), op: decodeOp(e.ops), user: String(e.user) }));

    this.joined = true;
    this.attempt = 0;
    this.state = "online";
    const resend = sync.resend();
    if (resend !== null && state === undefined) {
      // My in-flight edit may or may not have been applied before the connection dropped. Resend
      // it with its original base and seq; the ack names its version. Until then hold the
      // server's edits, so that if one of them *is* my edit it is taken as the ack, not applied
      // twice.
      this.held = entries;
      this.sendOp(resend.base, resend.seq, resend.op);
    } else {
      for (const e of entries) this.applyRemote(e.version, e.op, e.user);
    }
    this.emit("joined", { version: sync.version, role: this.role, participants: this.participants });
    this.emit("participants", this.participants);
    this.emit("status", { state: "online", pending: this.pendingCount });
    if (this.presenceData !== undefined) this.send({ type: "presence", session: this.session, data: this.presenceData });
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w();
    this.flush();
  }

  private onAck(seq: number, version: number): void {
    const sync = this.requireSync();
    if (this.held !== null) {
      const held = this.held;
      this.held = null;
      for (const e of held) {
        if (e.version === version) sync.ack(seq, version);
        else this.applyRemote(e.version, e.op, e.user ?? "");
      }
      if (sync.inflight !== null && sync.inflight.seq === seq) sync.ack(seq, version);
    } else {
      sync.ack(seq, version);
    }
    this.flush();
    this.persist();
    this.emit("status", { state: this.state, pending: this.pendingCount });
  }

  private onRemote(version: number, op: Op, user: string): void {
    if (this.held !== null) {
      this.held.push({ version, op, user });
      return;
    }
    this.applyRemote(version, op, user);
  }

  private applyRemote(version: number, op: Op, user: string): void {
    const sync = this.requireSync();
    if (version <= sync.version) return; // already seen (a duplicate after a reconnect)
    const applied = sync.remote(version, op);
    this.emit("change", { doc: sync.doc, op: applied, local: false, user, version });
  }

  private onError(m: Record<string, unknown>): void {
    const code = String(m["code"] ?? "internal");
    const message = String(m["message"] ?? "");
    const r = m["rid"];
    const rid = typeof r === "string" ? r : undefined;
    const inflight = this.sync?.inflight;
    if (rid !== undefined && inflight && rid === `op:${inflight.seq}`) {
      if (code === "rate_limited") {
        const delay = Number(m["retry_after_ms"] ?? 1000);
        this.timers.setTimeout(() => {
          const r = this.sync?.resend();
          if (r && this.state === "online" && this.held === null) this.sendOp(r.base, r.seq, r.op);
        }, delay);
        return;
      }
      // The server refused my edit: the local state holds it and anything built on it. Drop
      // them and reload the server's state.
      this.emit("rejected", { seq: inflight.seq, code, message, lost: this.sync!.pendingCount });
      this.resync();
      return;
    }
    this.emit("error", rid === undefined ? { code, message } : { code, message, rid });
  }

  /** Drops local state and joins again for the whole document. */
  private resync(): void {
    if (this.sync !== null) this.seqFloor = Math.max(this.seqFloor, this.sync.lastSeqUsed);
    this.sync = null;
    this.held = null;
    this.send({ type: "join", session: this.session, client: this.clientId });
  }
}
