/**
 * `MontageClient`: one session over a WebSocket speaking protocol v1 JSON (DESIGN §3), on top
 * of `SyncDoc`. Optimistic local edits, one in flight, reconnect with backoff, resend of the
 * in-flight edit with its original base and seq after `join` with `since`, presence, per-user
 * undo/redo, and connection state events. Access (DESIGN §9.1): a fresh token from `getToken`
 * for every connection and when the server says the token is expiring (`auth`), the owner's
 * `setLinkRole`, and `accessDenied` (an `AccessError`) when the session can't be joined or the
 * user is taken out of it; the client then stops until `connect()` is called again.
 *
 * The socket is injectable (`socket` option): the browser's `WebSocket` by default, Node's
 * global one where it exists (Node ≥ 22), or any object with the same small surface (the `ws`
 * package, or a fake in tests).
 */
import { type Op, decodeOp, encodeOp } from "./component.js";
import type { Json } from "./json.js";
import { SyncDoc, type SyncSnapshot } from "./sync.js";
import { AccessError, type AccessReason, type LinkRole, tokenSubject } from "./access.js";

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
  /**
   * Gives a fresh token (a JWT): called before every connection (the first and each reconnect)
   * and when the server sends `token_expiring`, after which the client sends `auth` with it.
   * Without it `token` is used as it is. If it throws, the attempt counts as a failed
   * connection (retried with backoff) and an `error` with code `unauthorized` is emitted.
   */
  getToken?: () => string | Promise<string>;
  /** The user this client acts as, to recognise messages about itself (`role_changed`); read
   * from the token's `sub` when not given. */
  user?: string;
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
  joined: { version: number; role: string; participants: Participant[]; linkRole: string | null; title?: string };
  presence: { user: string; data: Json };
  participants: Participant[];
  role: { user: string; role: string };
  /** The server refused one of my edits; local edits were dropped and the state reloaded. */
  rejected: { seq: number; code: string; message: string; lost: number };
  error: { code: string; message: string; rid?: string };
  /** The server took a refreshed token (`auth`); `exp`: its expiry, seconds since the epoch. */
  authed: { exp: number };
  /** The connection's token expires at `exp` (about a minute from now). With `getToken` the
   * client refreshes it by itself; otherwise call `authenticate(token)`. */
  tokenExpiring: { exp: number };
  /** The owner opened or closed link access. */
  linkRoleChanged: { role: string };
  /** The owner deleted the session (an `accessDenied` with reason `deleted` follows). */
  sessionDeleted: { session: string };
  /** The session can't be joined, or the user was taken out of it: the client stopped
   * (`connect()` tries again). */
  accessDenied: AccessError;
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
  private readyWaiters: { resolve: () => void; reject: (e: AccessError) => void }[] = [];
  /** The token the next connection uses (the latest from `getToken` or `authenticate`). */
  private token: string | undefined;
  /** While `getToken` runs before a connection: its attempt number (stale answers are dropped). */
  private tokenWait: number | null = null;
  private tokenAttempts = 0;
  private refreshing = false;
  /** An `auth` sent and not answered yet. */
  private authPending: { token: string; rid: string } | null = null;
  /** A `join` was sent on this socket and its answer has not come yet. */
  private awaitingJoin = false;
  private ridSeq = 0;
  /** My role in the session (from `joined`, then `role_changed`). */
  role: string | null = null;
  /** The session's link role, when the server says it (`joined`, `link_role_changed`). */
  linkRole: string | null = null;
  /** The session's title from `joined`, when the server sends one. */
  title: string | undefined;
  /** Why the client is out of its session, while it is; null otherwise. */
  accessError: AccessError | null = null;
  /** The user this client acts as (the `user` option or the token's `sub`), when known. */
  user: string | null = null;

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
    this.token = opts.token;
    this.user = opts.user ?? (opts.token !== undefined ? tokenSubject(opts.token) : null);
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

  /** Resolves once the session is joined (at once if it already is); rejects with an
   * `AccessError` if the join is refused (or the client is out of its session now). */
  ready(): Promise<void> {
    if (this.joined && this.state === "online") return Promise.resolve();
    if (this.accessError !== null && !this.wantOnline) return Promise.reject(this.accessError);
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
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

  /**
   * Opens or closes link access (owner only): what a signed-in user without a grant receives.
   * Everyone in the session gets `linkRoleChanged`; users left without access are taken out.
   * A refusal comes as an `error` whose `rid` starts with `link_role:`. Returns false when not
   * connected (not queued).
   */
  setLinkRole(role: LinkRole): boolean {
    return this.sendMessage({ type: "set_link_role", session: this.session, role, rid: `link_role:${++this.ridSeq}` });
  }

  /**
   * Replaces the connection's token with `token` (same user): sent as `auth` now when online
   * (answered by `authed`), and used for every later connection. A token of another user is
   * refused by the server, which then closes the socket.
   */
  authenticate(token: string): void {
    if (this.state !== "online") {
      this.setToken(token);
      return;
    }
    // Adopted once the server takes it (`authed`); a token it refuses is not used again.
    const rid = `auth:${++this.ridSeq}`;
    this.authPending = { token, rid };
    this.send({ type: "auth", token, rid });
  }

  /** The socket is going: a refreshed token the server neither took nor refused is used for
   * the next connection (it is the newest the app gave). */
  private settleAuth(): void {
    if (this.authPending !== null) this.setToken(this.authPending.token);
    this.authPending = null;
  }

  private setToken(token: string): void {
    this.token = token;
    if (this.opts.user === undefined) this.user = tokenSubject(token) ?? this.user;
  }

  /** On `token_expiring`: a new token from `getToken`, sent as `auth`. */
  private refreshToken(): void {
    const getToken = this.opts.getToken;
    if (getToken === undefined || this.refreshing) return;
    this.refreshing = true;
    const sock = this.sock;
    callGetToken(getToken).then(
      (t) => {
        this.refreshing = false;
        // A connection made meanwhile fetched its own token.
        if (this.sock === sock) this.authenticate(t);
        else this.setToken(t);
      },
      (e: unknown) => {
        this.refreshing = false;
        this.emit("error", { code: "unauthorized", message: `could not refresh the token: ${errorMessage(e)}` });
      },
    );
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
    this.accessError = null;
    if (this.sock !== null || this.tokenWait !== null) return;
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.setState(this.joined ? "reconnecting" : "connecting");
    const getToken = this.opts.getToken;
    if (getToken === undefined) {
      this.open();
      return;
    }
    const attempt = ++this.tokenAttempts;
    this.tokenWait = attempt;
    callGetToken(getToken).then(
      (t) => {
        if (this.tokenWait !== attempt) return; // disconnected meanwhile
        this.tokenWait = null;
        this.setToken(t);
        this.open();
      },
      (e: unknown) => {
        if (this.tokenWait !== attempt) return;
        this.tokenWait = null;
        this.emit("error", { code: "unauthorized", message: `could not get a token: ${errorMessage(e)}` });
        this.onClosed();
      },
    );
  }

  /** Opens the socket with the current token. */
  private open(): void {
    let url = this.opts.url;
    if (this.token !== undefined) {
      url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(this.token);
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
      this.sendJoin(this.sync === null ? undefined : this.sync.version);
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
    this.stop(true, "bye");
    this.setState("offline");
  }

  /** Stops connecting and closes the socket (saying `leave` first if asked). */
  private stop(leave: boolean, reason: string): void {
    this.wantOnline = false;
    this.tokenWait = null;
    this.awaitingJoin = false;
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.settleAuth();
    const s = this.sock;
    this.sock = null;
    this.held = null;
    if (s !== null) {
      try {
        if (leave && s.readyState === OPEN) s.send(JSON.stringify({ type: "leave", session: this.session }));
        s.close(1000, reason);
      } catch {
        // already closing
      }
    }
  }

  /** Out of the session: stop, and tell whoever waits or listens. */
  private deny(reason: AccessReason, message: string): void {
    const err = new AccessError(this.session, reason, message);
    this.accessError = err;
    this.stop(false, "no access");
    this.setState("offline");
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(err);
    this.emit("accessDenied", err);
  }

  /** Drops the socket and connects again at once: a fresh `joined` says whether (and as what)
   * I am still in the session. */
  private rejoinFresh(): void {
    this.settleAuth();
    const s = this.sock;
    this.sock = null;
    this.held = null;
    this.awaitingJoin = false;
    if (s !== null) {
      try {
        s.close(1000, "rejoin");
      } catch {
        // already closing
      }
    }
    this.connect();
  }

  private onClosed(): void {
    this.settleAuth();
    this.held = null;
    this.awaitingJoin = false;
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

  private sendJoin(since: number | undefined): void {
    const join: Record<string, unknown> = { type: "join", session: this.session, client: this.clientId, rid: "join" };
    if (since !== undefined) join["since"] = since;
    this.awaitingJoin = true;
    this.send(join);
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
          const role = String(m["role"]);
          const p = this.participantMap.get(user);
          if (role === "none") this.participantMap.delete(user);
          else if (p) p.role = role;
          // A grant to someone not here yet: listed as a member who is away (as `joined` lists).
          else this.participantMap.set(user, { user, role, online: false });
          if (user === this.user) {
            this.role = role;
            if (role === "none") {
              this.emit("role", { user, role });
              return this.deny("removed", "you no longer have access to this session: ask the owner to share it");
            }
          }
          this.emit("role", { user, role });
          return this.emit("participants", this.participants);
        }
        case "link_role_changed":
          this.linkRole = String(m["role"]);
          return this.emit("linkRoleChanged", { role: this.linkRole });
        case "session_deleted":
          this.emit("sessionDeleted", { session: this.session });
          return this.deny("deleted", "the owner deleted this session");
        case "authed":
          this.settleAuth();
          return this.emit("authed", { exp: Number(m["exp"]) });
        case "token_expiring":
          this.emit("tokenExpiring", { exp: Number(m["exp"]) });
          return this.refreshToken();
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
    this.awaitingJoin = false;
    this.role = String(m["role"] ?? "");
    this.linkRole = typeof m["link_role"] === "string" ? m["link_role"] : null;
    this.title = typeof m["title"] === "string" ? m["title"] : undefined;
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
    const joined: ClientEvents["joined"] = { version: sync.version, role: this.role, participants: this.participants, linkRole: this.linkRole };
    if (this.title !== undefined) joined.title = this.title;
    this.emit("joined", joined);
    this.emit("participants", this.participants);
    this.emit("status", { state: "online", pending: this.pendingCount });
    if (this.presenceData !== undefined) this.send({ type: "presence", session: this.session, data: this.presenceData });
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.resolve();
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
    if (rid !== undefined && rid === this.authPending?.rid) this.authPending = null; // refused
    const access = code === "forbidden" || code === "not_found";
    if (access && (rid === "join" || (rid === undefined && this.awaitingJoin))) {
      // The join was refused: no access (ask the owner), or no such session.
      // A client that was in the session before (a reconnect, a resync) has been taken out.
      const reason: AccessReason = code === "not_found" ? "not_found" : this.joined ? "removed" : "forbidden";
      return this.deny(reason, message);
    }
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
      if (code === "conflict" && typeof m["version"] === "number") {
        // Too costly to rebase on the server (DESIGN §9.2): it was not applied. Server edits
        // held since a rejoin are not it, so they apply now; then it is rebased here and resent.
        const held = this.held ?? [];
        this.held = null;
        for (const e of held) this.applyRemote(e.version, e.op, e.user ?? "");
        const r = this.sync!.rebase();
        this.persist();
        if (r && this.state === "online") this.sendOp(r.base, r.seq, r.op);
        return;
      }
      // The server refused my edit: the local state holds it and anything built on it. Drop
      // them and reload the server's state.
      this.emit("rejected", { seq: inflight.seq, code, message, lost: this.sync!.pendingCount });
      this.resync();
      return;
    }
    this.emit("error", rid === undefined ? { code, message } : { code, message, rid });
    if (access && rid === undefined && this.state === "online") {
      // Not an answer to anything of mine: the server may have taken me out of the session
      // (after a link role change or a removal it answers my messages so). A fresh join says.
      this.rejoinFresh();
    }
  }

  /** Drops local state and joins again for the whole document. */
  private resync(): void {
    if (this.sync !== null) this.seqFloor = Math.max(this.seqFloor, this.sync.lastSeqUsed);
    this.sync = null;
    this.held = null;
    // Joining again a session this socket is in answers no state (PROTOCOL.md `join`): leave it
    // first, so the join is a first one.
    if (this.state === "online") this.send({ type: "leave", session: this.session });
    this.sendJoin(undefined);
  }
}

function callGetToken(f: () => string | Promise<string>): Promise<string> {
  try {
    return Promise.resolve(f()).then((t) => {
      if (typeof t !== "string" || t === "") throw new Error("getToken gave no token");
      return t;
    });
  } catch (e) {
    return Promise.reject(e);
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
