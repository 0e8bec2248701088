/**
 * `MontageConnection`: one WebSocket speaking protocol v1 (docs/PROTOCOL.md) — JSON text frames,
 * or with the `binary` option the protobuf frames of subprotocol `montage.v1.proto` — and its token
 * lifecycle, shared by every session opened on it (`connection.session(id)`, a `MontageSession`).
 *
 * The token is a string or a (possibly async) function called before every connection, after
 * the server closed the socket for its token (close code 4401), and when the server says it is
 * expiring (then sent as `auth` on the open socket). A 4401 with a fixed token ends in the
 * `unauthorized` state at once; with a function the client fetches a fresh token and retries
 * once, at once, and a second 4401 before any session joined ends there too. Other closes are
 * retried with exponential backoff.
 *
 * Messages are routed to sessions by their `session` field, or by their `rid`: a session's
 * rids go out prefixed with its tag (`s1:op:5`) and come back to it without.
 */
import { type FetchLike, SessionsApi, tokenSubject } from "./access.js";
import type { Json } from "./json.js";
import { AuthError, BINARY_SUBPROTOCOL, CLOSE_UNAUTHORIZED, JSON_SUBPROTOCOL, type ErrorCode, ServerError, type Notification, type Tier, type TierEvent, readNotification, tierForMbps } from "./protocol.js";
import { MontageSession, type SessionOptions } from "./session.js";

/** A handler property of a socket. Checked bivariantly (as methods are), so a socket whose
 * handlers take richer events — the browser's `WebSocket`, the `ws` package's — fits. */
type Listener<E> = { bivarianceHack(ev: E): void }["bivarianceHack"];

/** The part of the WebSocket API the client uses: the browser's `WebSocket` and the `ws`
 * package's fit as they are. */
export interface SocketLike {
  readonly readyState: number;
  /** The subprotocol the server chose (read in binary mode, which needs `montage.v1.proto`). */
  readonly protocol?: string;
  /** Set by the client in binary mode to `"arraybuffer"`. */
  binaryType?: string;
  /** Sends one frame: text (JSON), or binary bytes in binary mode. */
  send(data: string | Uint8Array): void;
  /** Closes the socket (its `onclose` follows). */
  close(code?: number, reason?: string): void;
  /** Set by the client: the socket opened. */
  onopen: Listener<unknown> | null;
  /** Set by the client: a frame arrived (`data` a string; in binary mode an `ArrayBuffer` or a
   * byte view). */
  onmessage: Listener<{ data: unknown }> | null;
  /** Set by the client: the socket closed, with the server's code and reason. */
  onclose: Listener<{ code?: number; reason?: string }> | null;
  /** Set by the client: the socket failed (a close follows). */
  onerror: Listener<unknown> | null;
}
/** Opens a socket: `(url, protocols) => new WebSocket(url, protocols)`. */
export type SocketFactory = (url: string, protocols: string[]) => SocketLike;
/** A WebSocket class (the `ws` package's `WebSocket`, the browser's). */
export type SocketConstructor = new (url: string, protocols: string[]) => SocketLike;

/**
 * The timers the connection schedules reconnects with: the global ones by default (a fake clock in
 * tests).
 */
export interface Timers {
  /** Calls `fn` after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a scheduled call. */
  clearTimeout(handle: unknown): void;
}

/** A token, or a function giving a fresh one (a JWT). */
export type TokenSource = string | (() => string | Promise<string>);

/** Options of a {@link MontageConnection} (and, with the session's, of a {@link MontageClient}). */
export interface ConnectionOptions {
  /** `ws://host:port/v1/ws` (the token is appended as `?token=`). */
  url: string;
  /**
   * The token, or a function giving a fresh one: called before every connection (the first and
   * each reconnect), after the server refused the token (close 4401: one retry at once), and on
   * `token_expiring` (the client then sends `auth`). If the function throws, the attempt counts
   * as a failed connection (retried with backoff) and an `error` with code `unauthorized` is
   * emitted.
   */
  token?: TokenSource;
  /** The older name of a `token` function; used when `token` is not a function. */
  getToken?: () => string | Promise<string>;
  /** The user this client acts as, to recognise messages about itself; read from the token's
   * `sub` when not given. */
  user?: string;
  /** A socket factory or a WebSocket class: the global `WebSocket` by default (Node 20 has none:
   * pass the `ws` package's `WebSocket`). */
  socket?: SocketFactory | SocketConstructor;
  /** Reconnect backoff: first delay, cap, growth factor; a random jitter of up to `jitter`
   * (a fraction) is added. Defaults: 250 ms, 10 s, 2, 0.2. */
  backoff?: { initialMs?: number; maxMs?: number; factor?: number; jitter?: number };
  /** Timers for the backoff (default: the global `setTimeout`/`clearTimeout`). */
  timers?: Timers;
  /** Randomness for the backoff's jitter, in [0, 1) (default `Math.random`). */
  random?: () => number;
  /** Connect at construction (default true). */
  autoConnect?: boolean;
  /** For the HTTP calls (`api`, and the download of a large session state: docs/PROTOCOL.md
   * "Large states"): the global `fetch` by default. */
  fetch?: FetchLike;
  /**
   * Speak the binary form (docs/PROTOCOL.md "Binary frames") with this codec — `binaryFrames`
   * from `@montage/client/binary`, a separate entry point so the protobuf runtime ships only
   * with apps that use it: ask for subprotocol `montage.v1.proto` alone and send and receive
   * protobuf frames — the same messages, about half the bytes of JSON for an edit. A server
   * that does not choose it fails the connection with an `error` of code `not_supported` (and
   * no retry). Default: JSON.
   */
  binary?: BinaryCodec;
}

/** The binary form's codec (`binaryFrames` in `@montage/client/binary`): the SDK's JSON
 * message objects to protobuf frames and back. Either function throws on what it can't map. */
export interface BinaryCodec {
  /** A client message object (with its `rid`) as a `ClientFrame`'s bytes. */
  encodeClientFrame(msg: Record<string, unknown>): Uint8Array;
  /** A `ServerFrame`'s bytes as the object its JSON text would parse to (with `rid`). */
  decodeServerFrame(bytes: Uint8Array): Record<string, unknown>;
}

/** `unauthorized`: the server refused the token and the client stopped (see `AuthError`). */
export type ConnectionState = "connecting" | "online" | "reconnecting" | "offline" | "unauthorized";

/** The `status` event of a connection: its state, and on a reconnect how it goes. */
export interface ConnectionStatus {
  state: ConnectionState;
  /** Reconnect attempt (1, 2, …) while reconnecting or waiting. */
  attempt?: number;
  /** When offline and a retry is scheduled: its delay. */
  retryInMs?: number;
  /** The close code and reason of the socket that just closed (4401: the token). */
  closeCode?: number;
  closeReason?: string;
}

/**
 * The events of a connection, for {@link MontageConnection.on}: each key an event name, each value
 * what its handler receives.
 */
export interface ConnectionEvents {
  status: ConnectionStatus;
  /** The server took a refreshed token (`auth`); `exp`: its expiry, seconds since the epoch. */
  authed: { exp: number };
  /** The token expires at `exp` (about a minute from now). With a token function the client
   * refreshes it by itself; otherwise call `authenticate(token)`. */
  tokenExpiring: { exp: number };
  /** The server refused the token for good: the connection stopped (`connect()` tries again). */
  unauthorized: AuthError;
  /** The connection's tier (after `setQuality`, or when the server's measure changes). */
  tier: TierEvent;
  /** An item of the user's inbox was made or updated (a grouped reply comes again, same `id`):
   * sent to every connection of the user, whichever sessions it has open. */
  notification: Notification;
  /** An error about no session in particular (a refused `auth`, a token function that failed,
   * a frame that is not JSON — or, in binary mode, not a `montage.v1` protobuf message —, a
   * server without the binary subprotocol). */
  error: { code: ErrorCode; message: string; rid?: string };
  /** Every server message, as received. */
  message: Record<string, unknown>;
}

/** @internal What a connection tells each session opened on it. */
export interface SessionPort {
  readonly session: string;
  /** Prefix of its rids. */
  readonly tag: string;
  socketOpened(): void;
  /** A message for this session (its rid without the tag). */
  received(m: Record<string, unknown>): void;
  socketClosed(): void;
  statusChanged(s: ConnectionStatus): void;
  /** `authed`, `tokenExpiring` and session-less errors, for the session's own listeners. */
  connectionEvent<K extends "authed" | "tokenExpiring" | "error">(event: K, ev: ConnectionEvents[K]): void;
  unauthorized(e: AuthError): void;
  /** The connection stopped for good for another reason (a server without the binary form):
   * whoever waits for the join hears `e`. */
  failed(e: Error): void;
}

/** @inline */
type Handler<T> = (ev: T) => void;
const OPEN = 1;
/** Bodies smaller than this arrive in a packet or two and say little about bandwidth. */
const MIN_SAMPLE_BYTES = 4 * 1024;
/** Weight of the newest download in the downlink estimate. */
const DOWNLINK_SMOOTHING = 0.5;

function socketFactory(s: SocketFactory | SocketConstructor | undefined): SocketFactory {
  if (s === undefined) {
    const WS = (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
    if (WS === undefined) throw new Error("no global WebSocket here: pass the `socket` option (e.g. the `ws` package's WebSocket)");
    return (url, protocols) => new WS(url, protocols);
  }
  // A WebSocket class has `send` on its prototype; a factory function does not.
  const proto = (s as { prototype?: { send?: unknown } }).prototype;
  if (typeof proto?.send === "function") {
    const WS = s as SocketConstructor;
    return (url, protocols) => new WS(url, protocols);
  }
  return s as SocketFactory;
}

/** The HTTP origin of a `ws(s)://` URL (`""` when it can't be read). */
export function httpOrigin(wsUrl: string): string {
  try {
    const u = new URL(wsUrl);
    u.protocol = u.protocol === "wss:" ? "https:" : u.protocol === "ws:" ? "http:" : u.protocol;
    return u.origin;
  } catch {
    return "";
  }
}

/**
 * One WebSocket to the server, speaking protocol v1 (JSON, or binary with the `binary` option), and
 * its token lifecycle (refresh on `token_expiring`, one retry with a fresh token after a 4401,
 * then `unauthorized`) and reconnect backoff, shared by every session opened on it with {@link MontageConnection.session}.
 */
export class MontageConnection {
  readonly url: string;
  /** The server's HTTP origin, from `url`. */
  readonly httpBase: string;
  /** Speaking the binary subprotocol `montage.v1.proto` (the `binary` option). */
  readonly binary: boolean;
  private readonly codec: BinaryCodec | null;
  /** The user this connection acts as (the `user` option or the token's `sub`), when known. */
  user: string | null;
  /** Why the connection stopped, while it is `unauthorized`; null otherwise. */
  authError: AuthError | null = null;
  /** Why the connection stopped, when the server did not choose the binary subprotocol (a
   * `ServerError` with code `not_supported`); null otherwise, and again after `connect()`. */
  protocolError: ServerError | null = null;

  private readonly opts: ConnectionOptions;
  private readonly makeSocket: SocketFactory;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly tokenFn: (() => string | Promise<string>) | null;
  private handlers = new Map<keyof ConnectionEvents, Set<Handler<never>>>();
  private ports = new Map<string, SessionPort>();
  private byTag = new Map<string, SessionPort>();
  private tagSeq = 0;

  private sock: SocketLike | null = null;
  private state: ConnectionState = "offline";
  private attempt = 0;
  private retryTimer: unknown = null;
  private wantOnline = false;
  private opened = false;
  /** The smoothed downlink estimate (Mbit/s) and the tier last hinted to the server. */
  private downlink: number | null = null;
  private hinted: Tier | null = null;
  /** The token the next connection uses (the latest given or fetched). */
  private token: string | undefined;
  /** While the token function runs before a connection: its attempt number (stale answers
   * are dropped). */
  private tokenWait: number | null = null;
  private tokenAttempts = 0;
  private refreshing = false;
  /** An `auth` sent and not answered yet. */
  private authPending: { token: string; rid: string } | null = null;
  private ridSeq = 0;
  /** Closes for the token (4401) since a session last joined. */
  private refusedInARow = 0;
  /** The close code and reason of the last socket, until the next one opens. */
  private lastClose: { closeCode?: number; closeReason?: string } = {};
  private apiCache: SessionsApi | null = null;

  constructor(opts: ConnectionOptions) {
    this.opts = opts;
    this.url = opts.url;
    this.httpBase = httpOrigin(opts.url);
    this.codec = opts.binary ?? null;
    this.binary = this.codec !== null;
    this.makeSocket = socketFactory(opts.socket);
    this.timers = opts.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    this.random = opts.random ?? Math.random;
    const t = opts.token;
    this.tokenFn = typeof t === "function" ? t : (opts.getToken ?? null);
    this.token = typeof t === "string" ? t : undefined;
    this.user = opts.user ?? (this.token !== undefined ? tokenSubject(this.token) : null);
    if (opts.autoConnect !== false) this.connect();
  }

  /**
   * The socket's state: `connecting`, `online`, `reconnecting`, `offline` (a retry may be
   * scheduled) or `unauthorized` (stopped).
   */
  get connectionState(): ConnectionState {
    return this.state;
  }
  /** Is the socket open? */
  get isOpen(): boolean {
    return this.sock !== null && this.sock.readyState === OPEN && this.state === "online";
  }

  /**
   * Calls `fn` on every `event` (see {@link ConnectionEvents}); returns a function that removes it.
   */
  on<K extends keyof ConnectionEvents>(event: K, fn: Handler<ConnectionEvents[K]>): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(fn as Handler<never>);
    return () => set.delete(fn as Handler<never>);
  }
  private emit<K extends keyof ConnectionEvents>(event: K, ev: ConnectionEvents[K]): void {
    for (const fn of this.handlers.get(event) ?? []) (fn as Handler<ConnectionEvents[K]>)(ev);
  }

  /** Typed HTTP calls with this connection's token (sessions, invites, uploads, …). */
  get api(): SessionsApi {
    const fetch = this.opts.fetch;
    this.apiCache ??= new SessionsApi({ baseUrl: this.httpBase, token: () => this.currentToken(), ...(fetch ? { fetch } : {}) });
    return this.apiCache;
  }

  /** The token in use, or a fresh one from the token function when there is none yet. */
  async currentToken(): Promise<string> {
    if (this.token !== undefined) return this.token;
    if (this.tokenFn !== null) {
      this.setToken(await callTokenFn(this.tokenFn));
      return this.token ?? "";
    }
    return "";
  }

  // ---- sessions ----------------------------------------------------------------------------

  /** Opens session `id` on this connection (joined at once unless `autoJoin: false`); the same
   * session again gives the client already open. */
  session<Doc = Json, Presence = Json>(id: string, opts: SessionOptions = {}): MontageSession<Doc, Presence> {
    const open = this.ports.get(id);
    if (open !== undefined) return open as unknown as MontageSession<Doc, Presence>;
    return new MontageSession<Doc, Presence>(this, id, opts);
  }
  /** The sessions open on this connection. */
  get sessions(): string[] {
    return [...this.ports.keys()];
  }

  /** @internal A session registers to receive its messages; its rids get the returned tag. */
  attach(port: SessionPort): void {
    if (this.ports.has(port.session)) throw new Error(`session ${port.session} is already open on this connection`);
    this.ports.set(port.session, port);
    this.byTag.set(port.tag, port);
  }
  /** @internal */
  nextTag(): string {
    return `s${++this.tagSeq}`;
  }
  /** @internal */
  detach(port: SessionPort): void {
    if (this.ports.get(port.session) === port) this.ports.delete(port.session);
    this.byTag.delete(port.tag);
  }
  /** @internal A session joined: the token works, and backoff starts over. */
  noteJoined(): void {
    this.refusedInARow = 0;
    this.attempt = 0;
  }
  /** @internal Runs `fn` after `ms` on the connection's timers; returns a function cancelling
   * it. */
  later(fn: () => void, ms: number): () => void {
    const h = this.timers.setTimeout(fn, ms);
    return () => this.timers.clearTimeout(h);
  }
  /** @internal The `fetch` of HTTP calls: the `fetch` option, or the global one (called as a
   * plain function: a browser's refuses another `this`); null when there is neither. */
  get fetcher(): FetchLike | null {
    if (this.opts.fetch !== undefined) return this.opts.fetch;
    const g = globalThis as { fetch?: FetchLike };
    return g.fetch === undefined ? null : (url, init) => g.fetch!(url, init);
  }
  /** @internal Sends a session's message, its rid prefixed with the session's tag. */
  transmit(port: SessionPort, msg: Record<string, unknown>): boolean {
    const rid = msg["rid"];
    return this.send(rid === undefined ? msg : { ...msg, rid: `${port.tag}:${String(rid)}` });
  }

  // ---- messages ----------------------------------------------------------------------------

  /** Sends a message as it is; false when the socket is not open (nothing is queued). */
  sendMessage(msg: Record<string, unknown>): boolean {
    return this.send(msg);
  }
  private send(msg: Record<string, unknown>): boolean {
    const s = this.sock;
    if (s === null || s.readyState !== OPEN) return false;
    if (this.codec === null) {
      s.send(JSON.stringify(msg));
      return true;
    }
    let frame: Uint8Array;
    try {
      frame = this.codec.encodeClientFrame(msg);
    } catch (e) {
      // What the server answers a JSON frame it can't read: a `bad_request` error with the
      // rid, here made locally (no binary frame can say it), after this call returns.
      const refusal: Record<string, unknown> = { type: "error", code: "bad_request", message: errorMessage(e) };
      if (msg["rid"] !== undefined) refusal["rid"] = msg["rid"];
      void Promise.resolve().then(() => {
        if (this.sock === s) this.onMessage(refusal);
      });
      return true;
    }
    s.send(frame);
    return true;
  }

  /** Tells the server this client's downlink estimate; it answers with the connection's tier
   * (`tier` event), which caps how often presence and previews come. */
  setQuality(downlinkMbps: number): boolean {
    return this.send({ type: "quality", downlink_mbps: downlinkMbps });
  }

  /**
   * Reports a download from the server — a preview, a frame, an asset — of `bytes` whose body
   * took `ms` to arrive (time it from the response's headers: the server's own work, rendering
   * a picture, is not the link's). The socket itself carries small frames and says little about
   * the link; pictures do. The
   * connection keeps a smoothed estimate ({@link MontageConnection.downlinkMbps}) and sends it as
   * a `quality` hint whenever it crosses into another tier (and again after every reconnect), so
   * the server sizes and paces previews for what the link really carries. Bodies under 4 KiB
   * are ignored. Returns the estimate.
   */
  reportDownload(bytes: number, ms: number): number | null {
    if (!(bytes >= MIN_SAMPLE_BYTES) || !(ms > 0) || !Number.isFinite(ms)) return this.downlink;
    const mbps = (bytes * 8) / (ms * 1000);
    this.downlink = this.downlink === null ? mbps : DOWNLINK_SMOOTHING * mbps + (1 - DOWNLINK_SMOOTHING) * this.downlink;
    const tier = tierForMbps(this.downlink);
    if (tier !== this.hinted && this.setQuality(this.downlink)) this.hinted = tier;
    return this.downlink;
  }

  /** The downlink estimate from {@link MontageConnection.reportDownload}, in Mbit/s (null before
   * any). */
  get downlinkMbps(): number | null {
    return this.downlink;
  }

  /**
   * Replaces the connection's token with `token` (same user): sent as `auth` now when online
   * (answered by `authed`), and used for every later connection. A token of another user is
   * refused by the server, which then closes the socket (4401).
   */
  authenticate(token: string): void {
    if (!this.isOpen) {
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

  /** On `token_expiring`: a new token from the token function, sent as `auth`. */
  private refreshToken(): void {
    const fn = this.tokenFn;
    if (fn === null || this.refreshing) return;
    this.refreshing = true;
    const sock = this.sock;
    callTokenFn(fn).then(
      (t) => {
        this.refreshing = false;
        // A connection made meanwhile fetched its own token.
        if (this.sock === sock) this.authenticate(t);
        else this.setToken(t);
      },
      (e: unknown) => {
        this.refreshing = false;
        this.connectionError({ code: "unauthorized", message: `could not refresh the token: ${errorMessage(e)}` });
      },
    );
  }

  private connectionError(ev: ConnectionEvents["error"]): void {
    this.emit("error", ev);
    for (const p of this.ports.values()) p.connectionEvent("error", ev);
  }

  private onMessage(m: Record<string, unknown>): void {
    this.emit("message", m);
    switch (m["type"]) {
      case "authed": {
        this.settleAuth();
        const ev = { exp: Number(m["exp"]) };
        this.emit("authed", ev);
        for (const p of this.ports.values()) p.connectionEvent("authed", ev);
        return;
      }
      case "token_expiring": {
        const ev = { exp: Number(m["exp"]) };
        this.emit("tokenExpiring", ev);
        for (const p of this.ports.values()) p.connectionEvent("tokenExpiring", ev);
        this.refreshToken();
        return;
      }
      case "tier":
        this.emit("tier", { tier: String(m["tier"]) as Tier, fps: Number(m["fps"]), resolution: m["resolution"] as [number, number] });
        return;
      case "notification": {
        // Not a session's: the item names its session inside, and may be of one not open here.
        // One without an id, kind or session could be neither shown nor marked read: dropped.
        const n = readNotification(m["notification"]);
        if (n !== null) this.emit("notification", n);
        return;
      }
    }
    const rid = m["rid"];
    if (typeof rid === "string") {
      const cut = rid.indexOf(":");
      const port = cut > 0 ? this.byTag.get(rid.slice(0, cut)) : undefined;
      if (port !== undefined) return port.received({ ...m, rid: rid.slice(cut + 1) });
    }
    const session = m["session"];
    if (typeof session === "string") {
      this.ports.get(session)?.received(m);
      return;
    }
    if (m["type"] === "error") {
      if (rid !== undefined && rid === this.authPending?.rid) this.authPending = null; // refused
      const ev: ConnectionEvents["error"] = { code: String(m["code"] ?? "internal") as ErrorCode, message: String(m["message"] ?? "") };
      if (typeof rid === "string") ev.rid = rid;
      this.connectionError(ev);
    }
  }

  // ---- connecting --------------------------------------------------------------------------

  /** Opens the connection (and keeps reconnecting until `disconnect`). */
  connect(): void {
    this.wantOnline = true;
    this.authError = null;
    this.protocolError = null;
    if (this.sock !== null || this.tokenWait !== null) return;
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.setState(this.opened ? "reconnecting" : "connecting");
    const fn = this.tokenFn;
    if (fn === null) return this.open();
    const attempt = ++this.tokenAttempts;
    this.tokenWait = attempt;
    callTokenFn(fn).then(
      (t) => {
        if (this.tokenWait !== attempt) return; // disconnected meanwhile
        this.tokenWait = null;
        this.setToken(t);
        this.open();
      },
      (e: unknown) => {
        if (this.tokenWait !== attempt) return;
        this.tokenWait = null;
        this.connectionError({ code: "unauthorized", message: `could not get a token: ${errorMessage(e)}` });
        this.onClosed(undefined);
      },
    );
  }

  /** Opens the socket with the current token. */
  private open(): void {
    let url = this.url;
    if (this.token !== undefined) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(this.token);
    let sock: SocketLike;
    try {
      sock = this.makeSocket(url, [this.binary ? BINARY_SUBPROTOCOL : JSON_SUBPROTOCOL]);
      if (this.binary) sock.binaryType = "arraybuffer";
    } catch {
      this.onClosed(undefined);
      return;
    }
    this.sock = sock;
    sock.onopen = () => {
      if (this.sock !== sock) return;
      if (this.binary && sock.protocol !== BINARY_SUBPROTOCOL) {
        // A server without the binary form would read none of our frames: stop, don't retry.
        const chose = sock.protocol ? `"${sock.protocol}"` : "none";
        const message = `the server did not choose subprotocol ${BINARY_SUBPROTOCOL} (it chose ${chose}): it does not speak the binary form; connect without \`binary\``;
        this.disconnect();
        this.protocolError = new ServerError("not_supported", message);
        this.connectionError({ code: "not_supported", message });
        for (const p of [...this.ports.values()]) p.failed(this.protocolError);
        return;
      }
      this.opened = true;
      this.lastClose = {};
      // The server's hint is per socket: a new one hears the estimate again.
      if (this.downlink !== null) this.hinted = this.setQuality(this.downlink) ? tierForMbps(this.downlink) : null;
      this.setState("online");
      for (const p of [...this.ports.values()]) p.socketOpened();
    };
    sock.onmessage = (ev) => {
      if (this.sock !== sock) return;
      let msg: unknown;
      if (this.codec !== null) {
        const bytes = frameBytes(ev.data);
        if (bytes === null) {
          this.connectionError({ code: "bad_frame", message: `the server sent a ${typeof ev.data === "string" ? "text" : "non-binary"} frame on the binary subprotocol` });
          return;
        }
        try {
          msg = this.codec.decodeServerFrame(bytes);
        } catch (e) {
          this.connectionError({ code: "bad_frame", message: `the server sent a frame that is not a montage.v1 message: ${errorMessage(e)}` });
          return;
        }
        this.onMessage(msg as Record<string, unknown>);
        return;
      }
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        this.connectionError({ code: "bad_frame", message: "the server sent a frame that is not JSON" });
        return;
      }
      if (typeof msg === "object" && msg !== null && !Array.isArray(msg)) this.onMessage(msg as Record<string, unknown>);
    };
    sock.onclose = (ev) => {
      if (this.sock !== sock) return;
      this.sock = null;
      this.onClosed(ev);
    };
    sock.onerror = () => {
      // A close event follows.
    };
  }

  /** Closes the socket and stays offline (sessions keep their edits queued locally). */
  disconnect(): void {
    this.stop("bye");
    this.lastClose = {};
    this.setState("offline");
  }

  /** Stops connecting and closes the socket. */
  private stop(reason: string): void {
    this.wantOnline = false;
    this.tokenWait = null;
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.settleAuth();
    const s = this.sock;
    this.sock = null;
    if (s !== null) {
      try {
        s.close(1000, reason);
      } catch {
        // already closing
      }
      for (const p of [...this.ports.values()]) p.socketClosed();
    }
  }

  private onClosed(ev: { code?: number; reason?: string } | undefined): void {
    this.settleAuth();
    for (const p of [...this.ports.values()]) p.socketClosed();
    this.lastClose = {};
    if (typeof ev?.code === "number") this.lastClose.closeCode = ev.code;
    if (typeof ev?.reason === "string") this.lastClose.closeReason = ev.reason;
    if (ev?.code === CLOSE_UNAUTHORIZED) {
      this.refusedInARow++;
      if (this.tokenFn !== null && this.refusedInARow === 1 && this.wantOnline) {
        // The token function may give one that works (it expired, or was revoked): once, at once.
        this.connect();
        return;
      }
      return this.refused(new AuthError(ev.reason ?? "", ev.code));
    }
    if (!this.wantOnline) {
      this.setState("offline");
      return;
    }
    const b = this.opts.backoff ?? {};
    const base = Math.min(b.maxMs ?? 10_000, (b.initialMs ?? 250) * Math.pow(b.factor ?? 2, this.attempt));
    const delay = Math.round(base * (1 + (b.jitter ?? 0.2) * this.random()));
    this.attempt++;
    this.setState("offline", { attempt: this.attempt, retryInMs: delay });
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      if (this.wantOnline) this.connect();
    }, delay);
  }

  /** The server does not take the token: stop, and tell every session and listener. */
  private refused(err: AuthError): void {
    this.stop("unauthorized");
    this.authError = err;
    this.refusedInARow = 0;
    this.setState("unauthorized");
    for (const p of [...this.ports.values()]) p.unauthorized(err);
    this.emit("unauthorized", err);
  }

  private setState(state: ConnectionState, extra: Omit<ConnectionStatus, "state"> = {}): void {
    this.state = state;
    const ev: ConnectionStatus = { state, ...extra, ...(state === "online" ? {} : this.lastClose) };
    if (state === "reconnecting" && ev.attempt === undefined) ev.attempt = this.attempt;
    this.emit("status", ev);
    for (const p of [...this.ports.values()]) p.statusChanged(ev);
  }
}

function callTokenFn(f: () => string | Promise<string>): Promise<string> {
  try {
    return Promise.resolve(f()).then((t) => {
      if (typeof t !== "string" || t === "") throw new Error("the token function gave no token");
      return t;
    });
  } catch (e) {
    return Promise.reject(e);
  }
}

/** The bytes of a binary frame (`binaryType` "arraybuffer"; Node's `ws` may hand a Buffer). */
function frameBytes(data: unknown): Uint8Array | null {
  // (An ArrayBuffer of another realm, e.g. a test environment's, fails `instanceof`.)
  if (data instanceof ArrayBuffer || Object.prototype.toString.call(data) === "[object ArrayBuffer]") return new Uint8Array(data as ArrayBuffer);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
