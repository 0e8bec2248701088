/**
 * `MontageSession`: one session joined over a `MontageConnection`, on top of `SyncDoc`.
 * Optimistic local edits, one in flight, rejoin with `since` after a reconnect (or versions missed
 * on the way) and resend of the in-flight edit with its original base and seq, a large state
 * downloaded over HTTP in resumable pieces (`loading`), presence, per-user undo/redo, comments,
 * suggestions, roles, previews; access (docs/PROTOCOL.md "Access"): `accessDenied` (an `AccessError`) when
 * the session can't be joined or the user is taken out of it (the session then stops until
 * `connect()`).
 *
 * `Doc` and `Presence` type the document and presence data (e.g. `MontageDocument`); the client
 * does not check them beyond the document shape rules of docs/PROTOCOL.md "The document".
 */
import { type Op, decodeDelta, decodeOp, encodeOp } from "./component.js";
import { diff, restoreElement } from "./diff.js";
import { type Json, newDocument } from "./json.js";
import { apply } from "./op.js";
import { SyncDoc, type SyncSnapshot } from "./sync.js";
import { AccessError, type AccessReason, type AssetInfo, type LinkRole, type Role, roleAtLeast } from "./access.js";
import { DownloadError, LOADING_STEP, type PartialState, StateDownload, type StateRef, sha256Hex, stateRefOf } from "./download.js";
import { E2eState, GENESIS_CHAIN, type Keyring, SealError, SessionKey, chainHex, openComment, parseChain, sealComment, toKeyring } from "./sealed.js";
import type { ConnectionEvents, ConnectionState, ConnectionStatus, MontageConnection, SessionPort } from "./connection.js";
import {
  type AuthError,
  type Comment,
  type ErrorCode,
  type NewComment,
  type PreviewEvent,
  type Suggestion,
  type TaskInfo,
  type Tier,
  ServerError,
} from "./protocol.js";

/** Where a client keeps its replica: one string per session. */
export interface ClientStorage {
  /** The stored replica, or null when there is none. */
  load(): string | null;
  /** Stores the replica, whenever it changed (an edit before it is sent). */
  save(value: string): void;
}

/** Options of one session, for {@link MontageConnection.session} (and {@link MontageClient}). */
export interface SessionOptions {
  /** Identifies this replica for idempotent resends; random by default. */
  clientId?: string;
  /**
   * Keeps the replica (document, version, unacknowledged edits, client id) across page reloads,
   * e.g. in `localStorage`. A client built on a stored replica shows it at once and, once
   * joined, resends its edits with their original base and seq.
   */
  storage?: ClientStorage;
  /** Join at once (default true). */
  autoJoin?: boolean;
  /**
   * Makes this an end-to-end encrypted session (docs/E2E.md): its keys, as a {@link Keyring}, one
   * {@link SessionKey} (key epoch 0) or their text (`KEY`, or `EPOCH:KEY,…` — e.g. read from the
   * page's `#key=` fragment, which is never sent to a server). Edits, snapshots and comment texts
   * are sealed before they leave and opened when they arrive, and the server's order is checked
   * (its hash chain); a join of a session that does not exist creates it encrypted. Throws a
   * {@link SealError} for unreadable key text.
   */
  keys?: Keyring | SessionKey | string;
}

interface Stored {
  session: string;
  clientId: string;
  sync: SyncSnapshot;
  /** An encrypted session's chain value (hex) at `sync.version`, to go on checking from there. */
  chain?: string;
}

/** The `status` event: the connection's state and my unacknowledged edits. */
export interface StatusEvent extends ConnectionStatus {
  /** Local edits the server has not acknowledged yet. */
  pending: number;
}

/** Someone with access to the session, as the server lists them. */
export interface Participant {
  user: string;
  role: string;
  online: boolean;
  /** Display name (the token's `name`), when the server sends it. */
  name?: string;
  /** `#rrggbb`, stable per user, when the server sends it. */
  color?: string;
}

/** Where a change came from: the state the server sent on join (or a reload after a refusal),
 * my own edit (or undo/redo), or someone else's edit. */
export type ChangeOrigin = "load" | "local" | "remote";

/** The `change` event: the document after the change and the edit that made it. */
export interface ChangeEvent<Doc = Json> {
  doc: Doc;
  op: Op;
  origin: ChangeOrigin;
  /** `origin === "local"` (kept for older code). */
  local: boolean;
  /** Who made a remote edit. */
  user?: string;
  version: number;
}

/**
 * The events of a session, for {@link MontageSession.on}: each key an event name, each value what
 * its handler receives.
 */
export interface SessionEvents<Doc = Json, Presence = Json> {
  /** The document changed: loaded, by a local edit or undo/redo, or by someone else's edit. */
  change: ChangeEvent<Doc>;
  status: StatusEvent;
  joined: { version: number; role: string; participants: Participant[]; linkRole: string | null; title?: string };
  /**
   * The session's state is large and being downloaded over HTTP (docs/PROTOCOL.md "Large
   * states"): `received` of `total` bytes so far — at the start (past 0 when a cut download
   * resumes), about every 64 KiB, and at the end. Until it is here the session is not joined:
   * `status` stays `connecting` (or `reconnecting`) and `ready()` waits. A download that fails
   * for good is an `error`, and the session joins again.
   */
  loading: { received: number; total: number };
  presence: { user: string; data: Presence };
  participants: Participant[];
  role: { user: string; role: string };
  /** The server refused one of my edits; local edits were dropped and the state reloaded. */
  rejected: { seq: number; code: ErrorCode; message: string; lost: number };
  /** A refusal of something sent with `sendMessage` or `setLinkRole`, or an error about no
   * request (promise-returning methods reject instead). */
  error: { code: ErrorCode; message: string; rid?: string };
  authed: ConnectionEvents["authed"];
  tokenExpiring: ConnectionEvents["tokenExpiring"];
  /** The server refused the token for good: the client stopped (`connect()` tries again). */
  unauthorized: AuthError;
  /**
   * An encrypted session's payload did not open (a wrong or missing key, or a payload changed on
   * the way) or its hash chain broke (the server's history does not add up): nothing more of the
   * session is applied and the session stopped (`sealError`; `connect()` tries again, e.g. after
   * {@link MontageSession.addKey}).
   */
  undecryptable: SealError;
  /**
   * An encrypted session's key moved to `keyEpoch` (a member was removed or link access
   * narrowed). Without its key (`haveKey` false) my edits wait until {@link
   * MontageSession.addKey} hands it over.
   */
  keyRotated: { keyEpoch: number; haveKey: boolean };
  /** The owner opened or closed link access. */
  linkRoleChanged: { role: string };
  /** The owner deleted the session (an `accessDenied` with reason `deleted` follows). */
  sessionDeleted: { session: string };
  /** The session can't be joined, or the user was taken out of it: the session stopped
   * (`connect()` tries again). */
  accessDenied: AccessError;
  commentAdded: Comment;
  commentUpdated: Comment;
  suggestionAdded: Suggestion;
  suggestionUpdated: Suggestion;
  /** A newer preview of the session can be fetched (after `subscribePreviews`). */
  preview: PreviewEvent;
  /** A task of the session changed state (a share being delivered, …). */
  task: TaskInfo;
  /** Every server message for this session, as received (its rid as this session sent it). */
  message: Record<string, unknown>;
}

/** @inline */
type Handler<T> = (ev: T) => void;

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

/**
 * One session joined over a {@link MontageConnection}: the replica (optimistic local edits, resent
 * after a reconnect), presence, per-user undo/redo, and the session's requests (comments,
 * suggestions, roles, previews, uploads). Get one from {@link MontageConnection.session}; a {@link
 * MontageClient} is one that owns its connection. `accessDenied` or `unauthorized` stop it until
 * `connect()`.
 */
export class MontageSession<Doc = Json, Presence = Json> implements SessionPort {
  readonly session: string;
  readonly clientId: string;
  readonly connection: MontageConnection;
  /** @internal */
  readonly tag: string;
  private readonly storage: ClientStorage | undefined;
  private handlers = new Map<keyof SessionEvents<Doc, Presence>, Set<Handler<never>>>();

  private sync: SyncDoc | null = null;
  private state: ConnectionState = "offline";
  /** The app wants this session joined (false after `leave`, a denial, or before `connect`). */
  private wantJoined = false;
  /** Joined once (the next join names `since`). */
  private joined = false;
  /** Joined on the current socket. */
  private inSession = false;
  /** A `join` was sent on this socket and its answer has not come yet. */
  private awaitingJoin = false;
  /** Joins sent so far (on any socket): tells a retry after a passing refusal (see `joinLater`)
   * whether its join is still the one awaited. */
  private joinsSent = 0;
  /** While a resent edit awaits its ack, server edits are held here (see `onJoined`). */
  private held: { version: number; op: Op; user?: string }[] | null = null;
  /** A `joined` naming a large state to download (`state_ref`), and every message of the session
   * after it, held until the state is here. */
  private loading: { joined: Record<string, unknown>; after: Record<string, unknown>[]; download: StateDownload } | null = null;
  /** The bytes of a large state downloaded so far, by its SHA-256: kept when a download is cut
   * (with its socket, or given up), so a download of the same state (the same version joined
   * again) resumes from them. */
  private partial: PartialState | null = null;
  /** Downloads failed since the session last joined (see `stateRefOk`). */
  private downloadFailures = 0;
  private presenceData: Presence | undefined;
  /** The last seq used, kept across resyncs: (client, seq) must never repeat. */
  private seqFloor = 0;
  private participantMap = new Map<string, Participant>();
  private presences = new Map<string, Presence>();
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private requests = new Map<string, { resolve: (m: Record<string, unknown>) => void; reject: (e: ServerError) => void }>();
  private ridSeq = 0;
  /** My role in the session (from `joined`, then `role_changed`). */
  role: string | null = null;
  /** The session's link role, when the server says it (`joined`, `link_role_changed`). */
  linkRole: string | null = null;
  /** The session's title from `joined`, when the server sends one. */
  title: string | undefined;
  /** Why the client is out of its session, while it is; null otherwise. */
  accessError: AccessError | null = null;
  /** Why an encrypted session stopped (`undecryptable`), while it is; null otherwise. */
  sealError: SealError | null = null;
  /** An encrypted session's keys and chain (the `keys` option); null for a plain session. */
  private e2e: E2eState | null = null;
  /** The in-flight edit could not be sealed for want of the key of the session's epoch: it goes
   * out once `addKey` brings it. */
  private keyWait = false;

  constructor(connection: MontageConnection, session: string, opts: SessionOptions = {}) {
    this.connection = connection;
    this.session = session;
    this.storage = opts.storage;
    const stored = this.loadStored();
    this.clientId = stored?.clientId ?? opts.clientId ?? randomId();
    if (opts.keys !== undefined) this.e2e = new E2eState(toKeyring(opts.keys));
    if (stored) {
      this.sync = SyncDoc.restore(stored.sync);
      this.joined = true; // the next join names `since`
      const chain = stored.chain === undefined ? null : parseChain(stored.chain);
      if (this.e2e !== null && chain !== null) this.e2e.record(this.sync.version, chain);
    }
    this.tag = connection.nextTag();
    connection.attach(this);
    if (opts.autoJoin !== false) this.connect();
  }

  private loadStored(): Stored | null {
    const raw = this.storage?.load();
    if (raw === null || raw === undefined) return null;
    try {
      const s = JSON.parse(raw) as Stored;
      if (s.session !== this.session) return null;
      SyncDoc.restore(s.sync);
      return s;
    } catch {
      return null; // unreadable: start afresh
    }
  }

  /** Writes the replica to `storage`, if any. */
  private persist(): void {
    if (this.storage === undefined || this.sync === null) return;
    const s: Stored = { session: this.session, clientId: this.clientId, sync: this.sync.snapshot() };
    const chain = this.e2e?.chainAt(this.sync.version);
    if (chain) s.chain = chainHex(chain);
    this.storage.save(JSON.stringify(s));
  }

  // ---- state -------------------------------------------------------------------------------

  /** The local document (with my unacknowledged edits applied); null before the first join. */
  get doc(): Doc | null {
    return (this.sync?.doc ?? null) as Doc | null;
  }
  /** The last server version this replica has seen. */
  get version(): number {
    return this.sync?.version ?? 0;
  }
  /** The connection's state as this session sees it (`offline` once the session stopped). */
  get connectionState(): ConnectionState {
    return this.state;
  }
  /** My local edits the server has not acknowledged yet. */
  get pendingCount(): number {
    return this.sync?.pendingCount ?? 0;
  }
  /** Everyone with access to the session (online or not), with their role. */
  get participants(): Participant[] {
    return [...this.participantMap.values()];
  }
  /** Latest presence data of each other user. */
  get presence(): ReadonlyMap<string, Presence> {
    return this.presences;
  }
  /** True if {@link MontageSession.undo} has an edit of mine to take back. */
  get canUndo(): boolean {
    return this.sync?.canUndo ?? false;
  }
  /** True if {@link MontageSession.redo} has an undone edit to make again. */
  get canRedo(): boolean {
    return this.sync?.canRedo ?? false;
  }
  /** The user this client acts as (the `user` option or the token's `sub`), when known. */
  get user(): string | null {
    return this.connection.user;
  }
  /** Why the connection stopped for its token, while it is `unauthorized`; null otherwise. */
  get authError(): AuthError | null {
    return this.connection.authError;
  }
  /** Whether this is an end-to-end encrypted session (opened with the `keys` option). */
  get encrypted(): boolean {
    return this.e2e !== null;
  }
  /** The key epoch an encrypted session's server takes now (from `joined` and `key_rotated`);
   * null for a plain session. */
  get keyEpoch(): number | null {
    return this.e2e?.keyEpoch ?? null;
  }
  /** An encrypted session's keys (a copy: add keys with {@link MontageSession.addKey}); null for
   * a plain session. */
  get keys(): Keyring | null {
    return this.e2e?.keys.clone() ?? null;
  }

  /**
   * Adds the key of an encrypted session's key epoch `epoch` (after `keyRotated`: the app hands
   * the new key to the members that stay): an edit waiting for it goes out. A key as text is
   * parsed ({@link SessionKey.parse}; throws a {@link SealError} if it is not one). Does nothing
   * in a plain session.
   */
  addKey(epoch: number, key: SessionKey | string): void {
    if (this.e2e === null) return;
    this.e2e.keys.add(epoch, typeof key === "string" ? SessionKey.parse(key) : key);
    if (this.keyWait && this.state === "online" && this.inSession) this.sendOp();
  }

  /**
   * A comment of an encrypted session as its author wrote it: `content` and `annotations` opened
   * from the sealed `content` (e.g. of comments listed over HTTP, which come sealed). A comment that
   * is not sealed comes back as it is; one that does not open throws a {@link SealError}. The
   * comments of `commentAdded`, `commentUpdated` and the comment methods come opened already.
   */
  openComment(comment: Comment): Comment {
    if (this.e2e === null) return comment;
    const body = openComment(this.e2e.keys, this.session, comment.content);
    if (body === null) return comment;
    return { ...comment, content: body.content, annotations: (body.annotations ?? []) as Comment["annotations"] };
  }

  /** Resolves once the session is joined (at once if it already is); rejects with an
   * `AccessError` if the join is refused, an `AuthError` if the token is, a {@link SealError}
   * if an encrypted session's payloads don't open, or a `ServerError` with code `not_supported`
   * if the connection asked for binary frames and the server does not speak them. */
  ready(): Promise<void> {
    if (this.inSession && this.state === "online") return Promise.resolve();
    if (this.accessError !== null && !this.wantJoined) return Promise.reject(this.accessError);
    if (this.sealError !== null && !this.wantJoined) return Promise.reject(this.sealError);
    if (this.connection.authError !== null) return Promise.reject(this.connection.authError);
    if (this.connection.protocolError !== null) return Promise.reject(this.connection.protocolError);
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /**
   * Calls `fn` on every `event` (see {@link SessionEvents}); returns a function that removes it.
   */
  on<K extends keyof SessionEvents<Doc, Presence>>(event: K, fn: Handler<SessionEvents<Doc, Presence>[K]>): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(fn as Handler<never>);
    return () => set.delete(fn as Handler<never>);
  }
  private emit<K extends keyof SessionEvents<Doc, Presence>>(event: K, ev: SessionEvents<Doc, Presence>[K]): void {
    if (event === "change") this.persist();
    for (const fn of this.handlers.get(event) ?? []) (fn as Handler<SessionEvents<Doc, Presence>[K]>)(ev);
  }
  private change(op: Op, origin: ChangeOrigin, user?: string): void {
    const sync = this.requireSync();
    const ev: ChangeEvent<Doc> = { doc: sync.doc as Doc, op, origin, local: origin === "local", version: sync.version };
    if (user !== undefined) ev.user = user;
    this.emit("change", ev);
  }

  // ---- editing -----------------------------------------------------------------------------

  /** Applies a local edit at once and sends it when it can. Throws `OtError` if the edit is
   * invalid for the current document (nothing changes then). */
  submit(op: Op): void {
    const sync = this.requireSync();
    sync.edit(op);
    this.change(op, "local");
    this.flush();
    if (this.state !== "online") this.emitStatus({});
  }
  /**
   * Turns the local document into `old` — a past state, e.g. `(await new SessionsApi(…).state(id,
   * version)).state` — with one local edit of mine, like {@link MontageSession.submit}: the whole
   * document, or with `opts.id` only that layer, track or clip (a clip whose track is gone can't
   * come back). The edit is computed against the local document (my unacknowledged edits
   * included) and touches only what differs ({@link diff}, {@link restoreElement}), so others'
   * concurrent edits elsewhere stay. It is undoable: {@link MontageSession.undo} brings the newer
   * state back (unlike `SessionsApi.restore`, an edit of someone else's as far as the session is
   * concerned).
   *
   * Returns false, changing nothing, when nothing differs or the element is in neither
   * document. Throws like `submit` before the first join, or with an `OtError` if the result
   * breaks the document's shape rules (an `old` that is not a valid document).
   */
  restoreTo(old: Doc | Json | Readonly<Record<string, unknown>>, opts: { id?: string } = {}): boolean {
    const doc = this.requireSync().doc;
    const past = old as Json;
    const op = opts.id === undefined ? diff(doc, past) : restoreElement(doc, past, opts.id);
    if (op === null || op.length === 0) return false;
    this.submit(op);
    return true;
  }
  /** Undoes my latest edit (others' work stays). Returns false if there was nothing to undo. */
  undo(): boolean {
    return this.localStep((s) => s.undo());
  }
  /** Makes my latest undone edit again. Returns false if there was nothing to redo. */
  redo(): boolean {
    return this.localStep((s) => s.redo());
  }
  private localStep(f: (s: SyncDoc) => Op | null): boolean {
    const op = f(this.requireSync());
    if (op === null) return false;
    this.change(op, "local");
    this.flush();
    return true;
  }
  private requireSync(): SyncDoc {
    if (this.sync === null) throw new Error("the session is not joined yet: wait for ready()");
    return this.sync;
  }

  /** Publishes my presence (cursor, selection, …); the latest value is re-sent on rejoin. */
  setPresence(data: Presence): void {
    this.presenceData = data;
    if (this.state === "online") this.send({ type: "presence", session: this.session, data });
  }

  // ---- other messages ----------------------------------------------------------------------

  /**
   * Sends any other protocol message on the open socket (its `rid`, if any, comes back on the
   * answer and on `error`). Returns false when not joined: such messages are not queued
   * (unlike edits).
   */
  sendMessage(msg: Record<string, unknown>): boolean {
    if (this.state !== "online") return false;
    return this.send(msg);
  }

  /**
   * Opens or closes link access (owner only): what a signed-in user without a grant receives.
   * Everyone in the session gets `linkRoleChanged`; users left without access are taken out.
   * A refusal comes as an `error` whose `rid` starts with `link_role:`. Returns false when not
   * joined (not queued).
   */
  setLinkRole(role: LinkRole): boolean {
    return this.sendMessage({ type: "set_link_role", session: this.session, role, rid: `link_role:${++this.ridSeq}` });
  }

  /** Grants `user` a role (owner only); `none` removes them for good (until granted again). */
  async setRole(user: string, role: Role | "none"): Promise<void> {
    await this.request({ type: "set_role", user, role }, "role");
  }

  /** Comments (commenter or above); resolves with the comment as stored. In an encrypted session
   * its content and annotations are sealed into one opaque `content` (and opened again in the
   * answer and the events); without the key of the session's epoch it rejects with a
   * {@link SealError}. */
  async addComment(comment: NewComment): Promise<Comment> {
    let c: NewComment = comment;
    if (this.e2e !== null) {
      const { annotations, ...rest } = comment;
      const body = annotations === undefined ? { content: comment.content } : { content: comment.content, annotations };
      c = { ...rest, content: sealComment(this.e2e.keys, this.e2e.keyEpoch, this.session, body) };
    }
    return commentOf(await this.request({ type: "comment", comment: c }, "comment"));
  }
  /** A reply in the thread of `parentId`. */
  reply(parentId: string, content: string, extra: Omit<NewComment, "content" | "parent_id"> = {}): Promise<Comment> {
    return this.addComment({ ...extra, content, parent_id: parentId });
  }
  /** Changes my comment's text (sealed in an encrypted session, like {@link
   * MontageSession.addComment}). */
  async editComment(id: string, content: string): Promise<Comment> {
    const text = this.e2e === null ? content : sealComment(this.e2e.keys, this.e2e.keyEpoch, this.session, { content });
    return commentOf(await this.request({ type: "comment_edit", id, content: text }, "comment"));
  }
  /** Deletes a comment (mine, or any as owner): a tombstone stays so replies keep their thread. */
  async deleteComment(id: string): Promise<Comment> {
    return commentOf(await this.request({ type: "comment_delete", id }, "comment"));
  }
  /** Resolves (or with `false` reopens) a thread. */
  async resolveComment(id: string, resolved = true): Promise<Comment> {
    return commentOf(await this.request({ type: "comment_resolve", id, resolved }, "comment"));
  }
  /** Adds (or with `false` removes) my reaction. */
  async react(id: string, emoji: string, on = true): Promise<Comment> {
    return commentOf(await this.request({ type: "comment_react", id, emoji, on }, "comment"));
  }

  /**
   * Suggests an edit (commenter or above) for an editor to accept or reject. It is made on the
   * server's state at `version` (the replica without my unacknowledged edits).
   */
  async suggest(op: Op, note?: string): Promise<Suggestion> {
    const msg: Record<string, unknown> = { type: "suggest", base: this.version, ops: encodeOp(op) };
    if (note !== undefined) msg["note"] = note;
    return suggestionOf(await this.request(msg, "suggest"));
  }
  /** Applies a pending suggestion (editor or above), credited to its author. */
  async acceptSuggestion(id: string): Promise<Suggestion> {
    return suggestionOf(await this.request({ type: "suggestion_accept", id }, "suggest"));
  }
  /** Turns down a pending suggestion (editor or above). */
  async rejectSuggestion(id: string): Promise<Suggestion> {
    return suggestionOf(await this.request({ type: "suggestion_reject", id }, "suggest"));
  }

  /**
   * Live previews of the session (`preview` events), at `tier` or, without one, at the
   * connection's tier as it changes. Resolves with the first preview (the current version).
   * Subscriptions end with `unsubscribePreviews` or the socket: subscribe again after a
   * reconnect.
   */
  async subscribePreviews(tier?: Tier): Promise<PreviewEvent> {
    const msg: Record<string, unknown> = { type: "preview_subscribe" };
    if (tier !== undefined) msg["tier"] = tier;
    return this.previewOf(await this.request(msg, "preview"));
  }
  /**
   * Live frames of the timeline at `user`'s playhead (`preview` events with `t`; the user's
   * presence `playhead`, 0 until they set one), at `tier` or the connection's; the newest
   * position always arrives, at most at the tier's frame rate. Replaces this session's
   * {@link MontageSession.subscribePreviews}. Resolves with the first frame.
   */
  async subscribeTimeline(user: string, tier?: Tier): Promise<PreviewEvent> {
    const msg: Record<string, unknown> = { type: "preview_subscribe", follow: user };
    if (tier !== undefined) msg["tier"] = tier;
    return this.previewOf(await this.request(msg, "preview"));
  }
  /**
   * Ends the `preview` events of {@link MontageSession.subscribePreviews}. Returns false when not
   * joined (nothing sent).
   */
  unsubscribePreviews(): boolean {
    return this.sendMessage({ type: "preview_unsubscribe", session: this.session });
  }
  /** Where the session's current canvas is rendered at `tier` (GET it with the token as
   * `Authorization: Bearer`). */
  previewUrl(tier: Tier): string {
    return `${this.connection.httpBase}/v1/sessions/${encodeURIComponent(this.session)}/preview?tier=${tier}`;
  }
  /**
   * Uploads an image, video or audio file for this session (editor or above): `POST
   * /v1/assets?session=S`. Reference it from a layer or clip by its `id`.
   *
   * In an encrypted session the file is sealed first, with the key of the session's current key
   * epoch ({@link SessionsApi.uploadSealedAsset}): the server stores bytes it can't read and
   * answers `kind: "sealed"` without dimensions, so the app reads those from the file itself
   * and puts them in the document (which is sealed too). Rejects with a `no_key`
   * {@link SealError} without that key (after `keyRotated`, until {@link MontageSession.addKey}).
   */
  upload(body: Blob | ArrayBuffer | Uint8Array): Promise<AssetInfo> {
    const e = this.e2e;
    if (e === null) return this.connection.api.uploadAsset(body, { session: this.session });
    return this.connection.api.uploadSealedAsset(this.session, e.keys, e.keyEpoch, body);
  }

  /**
   * An asset's file, as it was uploaded: `GET /v1/assets/{id}` — in an encrypted session opened
   * with the session's keys (any epoch held), as a page drawing the canvas itself needs, since
   * the server renders nothing of it. Rejects with an `ApiError` when the server refuses, or a
   * {@link SealError} when the bytes don't open (`no_key`, `tampered`; `malformed` when they are
   * not sealed).
   */
  async download(id: string): Promise<Uint8Array<ArrayBuffer>> {
    const e = this.e2e;
    return e === null ? this.connection.api.asset(id) : this.connection.api.openSealedAsset(id, this.session, e.keys);
  }

  /** Sends `msg` for this session with a fresh rid and waits for the answer carrying it. */
  private request(msg: Record<string, unknown>, kind: string): Promise<Record<string, unknown>> {
    if (this.state !== "online") return Promise.reject(new ServerError("offline", `not joined to ${this.session}: nothing was sent`));
    const rid = `${kind}:${++this.ridSeq}`;
    return new Promise((resolve, reject) => {
      this.requests.set(rid, { resolve, reject });
      this.send({ ...msg, session: this.session, rid });
    });
  }
  private failRequests(): void {
    const pending = [...this.requests.values()];
    this.requests.clear();
    for (const r of pending) r.reject(new ServerError("disconnected", "the connection closed before the answer came; the request may or may not have been applied"));
  }

  private previewOf(m: Record<string, unknown>): PreviewEvent {
    const url = String(m["url"] ?? "");
    return {
      session: this.session,
      version: Number(m["version"]),
      tier: String(m["tier"]) as Tier,
      url,
      href: url.startsWith("/") ? this.connection.httpBase + url : url,
      ...(typeof m["t"] === "number" ? { t: m["t"] } : {}),
    };
  }

  // ---- joining -----------------------------------------------------------------------------

  /** Joins the session (connecting first if needed) and stays joined, rejoining after
   * reconnects, until `leave`. After a denial or `unauthorized`, tries again. */
  connect(): void {
    this.wantJoined = true;
    this.accessError = null;
    this.sealError = null;
    if (this.connection.isOpen) {
      if (!this.inSession && !this.awaitingJoin && this.loading === null) this.sendJoin(this.sync?.version);
    } else {
      this.connection.connect();
    }
    this.emitStatus({});
  }

  /** Leaves the session (`leave`: the others see me go); `connect()` joins again. Unsent edits
   * stay queued. */
  leave(): void {
    const wasIn = this.inSession || this.awaitingJoin || this.loading !== null;
    this.wantJoined = false;
    if (wasIn) this.send({ type: "leave", session: this.session });
    this.socketClosed();
    this.emitStatus({});
  }

  /** Leaves the session and lets go of the connection (this object is done). */
  close(): void {
    this.leave();
    this.connection.detach(this);
  }

  private sendJoin(since: number | undefined): void {
    const join: Record<string, unknown> = { type: "join", session: this.session, client: this.clientId, rid: "join" };
    if (since !== undefined) {
      join["since"] = since;
      // With nothing in flight the missed edits may come composed into one (`joined.delta`);
      // an in-flight edit is resent on its old base and must see them one by one, as the
      // server transforms it. (An encrypted session's server can't compose: it reads nothing.)
      if (this.sync?.resend() === null && this.e2e === null) join["compact"] = true;
    }
    // Live edits may come composed into ranges (`op` with `from`) when this connection is slow;
    // not while a resent edit is unconfirmed: it could come back inside one as someone else's.
    if (this.sync?.resend() == null && this.e2e === null) join["ranges"] = true;
    // A large state may come as a reference to download (`joined.state_ref`), in resumable
    // pieces, instead of one frame a slow link takes minutes over.
    if (this.stateRefOk()) join["state_ref"] = true;
    // A missing session is created encrypted (ignored when it exists).
    if (this.e2e !== null) join["create"] = { encrypted: true };
    this.awaitingJoin = true;
    this.joinsSent++;
    this.send(join);
  }

  private send(msg: Record<string, unknown>): boolean {
    return this.connection.transmit(this, msg);
  }

  private flush(): void {
    if (this.state !== "online" || this.sync === null || this.held !== null) return;
    const out = this.sync.takeOutgoing();
    if (out !== null) {
      // Stored before it leaves: a reload must resend it under this seq, never reuse the seq.
      this.persist();
      this.sendOp();
    }
  }
  /** Sends the in-flight edit as it was made on its base (`sent`): in an encrypted session sealed
   * (once: a resend repeats the same bytes) — or held back while the key of the session's epoch
   * is missing (`addKey` sends it). */
  private sendOp(): void {
    const f = this.sync?.inflight;
    if (f === null || f === undefined) return;
    const { base, seq } = f;
    this.keyWait = false;
    if (this.e2e === null) {
      this.send({ type: "op", session: this.session, base, seq, ops: encodeOp(f.sent), rid: `op:${seq}` });
      return;
    }
    if (f.sealed === undefined) {
      try {
        f.sealed = this.e2e.sealEdit(this.session, base, JSON.stringify(encodeOp(f.sent)));
      } catch (e) {
        if (e instanceof SealError && e.kind === "no_key") {
          this.keyWait = true;
          return;
        }
        throw e;
      }
      // Kept before it leaves: a resend after a reload repeats these bytes.
      this.persist();
    }
    this.send({ type: "op", session: this.session, base, seq, data: f.sealed.data, key_epoch: f.sealed.keyEpoch, rid: `op:${seq}` });
  }

  /** Versions between the sealed snapshots an encrypted session's clients store. */
  static readonly SNAPSHOT_EVERY = 100;

  /** In an encrypted session, a sealed snapshot of the replica when one is due: every
   * {@link MontageSession.SNAPSHOT_EVERY} versions, sent by an editor with nothing
   * unacknowledged (the replica is then exactly the server's version), so joins replay little. */
  private maybeSnapshot(): void {
    const e = this.e2e;
    const sync = this.sync;
    if (e === null || sync === null || this.state !== "online" || !this.inSession || this.held !== null) return;
    if (sync.inflight !== null || sync.pending !== null || !roleAtLeast(this.role, "editor")) return;
    if (sync.version < e.snapshotVersion + MontageSession.SNAPSHOT_EVERY) return;
    let sealed: { data: string; keyEpoch: number };
    try {
      sealed = e.sealSnapshot(this.session, sync.version, JSON.stringify(sync.doc));
    } catch {
      return; // no key for the session's epoch yet
    }
    e.snapshotVersion = sync.version;
    // A refusal (another client stored a newer one first, say) comes as an `error` with this rid.
    this.send({ type: "snapshot", session: this.session, version: sync.version, data: sealed.data, key_epoch: sealed.keyEpoch, rid: `snapshot:${sync.version}` });
  }

  // ---- what the connection tells ------------------------------------------------------------

  /** @internal */
  socketOpened(): void {
    if (this.wantJoined) this.sendJoin(this.sync?.version);
  }

  /** @internal */
  socketClosed(): void {
    this.inSession = false;
    this.awaitingJoin = false;
    this.held = null;
    this.stopLoading();
    this.failRequests();
  }

  /** @internal */
  statusChanged(s: ConnectionStatus): void {
    this.emitStatus(s);
  }

  /** @internal */
  connectionEvent<K extends "authed" | "tokenExpiring" | "error">(event: K, ev: ConnectionEvents[K]): void {
    this.emit(event, ev as SessionEvents<Doc, Presence>[K]);
  }

  /** @internal */
  failed(e: Error): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(e);
  }

  /** @internal */
  unauthorized(e: AuthError): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(e);
    this.emit("unauthorized", e);
  }

  /** The session's own state, from the connection's and whether it is joined. */
  private emitStatus(s: Omit<ConnectionStatus, "state">): void {
    const c = this.connection.connectionState;
    let state: ConnectionState;
    if (c === "unauthorized") state = "unauthorized";
    else if (!this.wantJoined) state = "offline";
    else if (c === "online") state = this.inSession ? "online" : this.joined ? "reconnecting" : "connecting";
    else if (c === "offline") state = "offline";
    else state = this.joined ? "reconnecting" : "connecting";
    this.state = state;
    this.emit("status", { ...s, state, pending: this.pendingCount });
  }

  /** Out of the session: stop, and tell whoever waits or listens. */
  private deny(reason: AccessReason, message: string): void {
    const err = new AccessError(this.session, reason, message);
    this.accessError = err;
    this.wantJoined = false;
    this.stopWith(err);
    this.emit("accessDenied", err);
  }

  /** Out of the session for good: the socket's part ends, and whoever waits for `ready` hears
   * `err`. */
  private stopWith(err: Error): void {
    this.socketClosed();
    this.denied();
    this.emitStatus({});
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  /** Called when the session is out for good (a `MontageClient` closes its own socket then). */
  protected denied(): void {}

  // ---- server messages ---------------------------------------------------------------------

  /** @internal */
  received(raw: Record<string, unknown>): void {
    this.emit("message", raw);
    this.handle(raw);
  }

  /** Handles one server message of the session (or holds it behind a state download). */
  private handle(raw: Record<string, unknown>): void {
    if (this.sealError !== null) return; // stopped: nothing more of the session is applied
    const l = this.loading;
    if (l !== null) {
      // They follow the state being downloaded (ops from its version + 1): in order, after it.
      if (l.after.length >= MAX_HELD_BEHIND_DOWNLOAD) return this.loadFailed(new DownloadError("internal", "the session moved on too far meanwhile"));
      l.after.push(raw);
      return;
    }
    if (this.leftToJoin(raw)) return;
    let m = raw;
    const notes: { code: ErrorCode; message: string }[] = [];
    if (this.e2e !== null || raw["type"] === "joined") {
      try {
        m = this.unseal(raw, notes);
      } catch (e) {
        if (!(e instanceof SealError)) throw e;
        return this.undecryptable(e);
      }
    }
    const rid = m["rid"];
    const req = typeof rid === "string" ? this.requests.get(rid) : undefined;
    if (req !== undefined) {
      this.requests.delete(rid as string);
      if (m["type"] === "error") {
        const retry = m["retry_after_ms"];
        req.reject(new ServerError(String(m["code"] ?? "internal") as ErrorCode, String(m["message"] ?? ""), typeof retry === "number" ? retry : undefined));
        return;
      }
      req.resolve(m);
    }
    for (const n of notes) this.emit("error", n);
    this.guarded(() => {
      this.dispatch(m, req !== undefined);
      this.maybeSnapshot();
    });
  }

  /** Runs `f`, which follows the server; if this replica can't (an op it can't apply), it starts
   * over from the server's state rather than drift. */
  private guarded(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.emit("error", { code: "desync", message: (e as Error).message });
      this.resync();
    }
  }

  /**
   * Whether `m` is an edit (an `op`, or the ack of my in-flight edit) to leave to a join's answer,
   * which carries every version up to its `version` (frames before it are older): one that comes
   * while a join is awaited, or one past versions this replica missed — then it joins again from
   * its version, which it is still right as of (a reset would drop my unacknowledged edits).
   * Checked before an encrypted edit is opened: its chain needs the version before it.
   */
  private leftToJoin(m: Record<string, unknown>): boolean {
    const type = m["type"];
    if (type !== "op" && type !== "ack") return false;
    if (this.awaitingJoin) return true;
    const sync = this.sync;
    if (sync === null || (type === "ack" && Number(m["seq"]) !== sync.inflight?.seq)) return false;
    const version = Number(m["version"]);
    // The version it stands on: for a range, the one before `from`.
    const base = m["from"] === undefined ? version - 1 : Number(m["from"]) - 1;
    // While a resend awaits its ack, server edits wait in `held`, following the replica.
    const held = this.held;
    const seen = held !== null && held.length > 0 ? held[held.length - 1]!.version : sync.version;
    if (base <= seen) return false;
    if (this.inSession) this.catchUp();
    return true;
  }

  /**
   * Versions were missed on the way: joins again with `since` (local edits stay). A repeated join
   * with `since` is answered as a first one, with the versions after it (PROTOCOL.md `join`), so
   * it needs no `leave` (the others would see me go and come back). Edits wait for the answer: an
   * in-flight edit is resent then, on its old base, as after a reconnect.
   */
  private catchUp(): void {
    this.inSession = false;
    this.held = null; // the answer carries them again
    this.sendJoin(this.requireSync().version);
    this.emitStatus({});
  }

  /** Handles one (plain, or made plain) server message for this session. */
  private dispatch(m: Record<string, unknown>, answered: boolean): void {
    switch (m["type"]) {
      case "joined": {
        const ref = this.e2e === null && m["state"] === undefined ? stateRefOf(m["state_ref"]) : null;
        return ref === null ? this.onJoined(m) : this.load(m, ref);
      }
      case "ack":
        return this.onAck(Number(m["seq"]), Number(m["version"]));
      case "op": {
        const version = Number(m["version"]);
        // A range (`from`..=`version` composed) stands on the version before `from`.
        const from = m["from"] === undefined ? version : Number(m["from"]);
        return this.onRemote(version, decodeOp(m["ops"]), String(m["user"] ?? ""), from - 1);
      }
      case "presence": {
        const user = String(m["user"]);
        const data = (m["data"] ?? null) as Presence;
        this.presences.set(user, data);
        return this.emit("presence", { user, data });
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
      case "role_changed":
        return this.onRoleChanged(String(m["user"]), String(m["role"]));
      case "link_role_changed":
        this.linkRole = String(m["role"]);
        return this.emit("linkRoleChanged", { role: this.linkRole });
      case "session_deleted":
        this.emit("sessionDeleted", { session: this.session });
        return this.deny("deleted", "the owner deleted this session");
      case "comment_added":
        return this.emit("commentAdded", m["comment"] as Comment);
      case "comment_updated":
        return this.emit("commentUpdated", m["comment"] as Comment);
      case "suggestion_added":
        return this.emit("suggestionAdded", m["suggestion"] as Suggestion);
      case "suggestion_updated":
        return this.emit("suggestionUpdated", m["suggestion"] as Suggestion);
      case "preview":
        return this.emit("preview", this.previewOf(m));
      case "task":
        return this.emit("task", m["task"] as TaskInfo);
      case "key_rotated": {
        const keyEpoch = Number(m["key_epoch"]);
        return this.emit("keyRotated", { keyEpoch, haveKey: this.e2e?.keys.get(keyEpoch) !== undefined });
      }
      case "error":
        if (!answered) this.onError(m);
        return;
      default:
        return;
    }
  }

  /**
   * An encrypted session's message made plain (anything else as it is), as the Rust client's
   * `unseal`: sealed edits opened and their chain checked against the server's, a join's snapshot
   * and entries turned into the state (the snapshot, or the empty new document, with every entry
   * applied) or the plain entries after the version held, my acks' chain values checked, the key
   * epoch followed, comments opened (one that does not open keeps its sealed text and is reported
   * in `notes`). Throws a {@link SealError} when the session can't go on.
   */
  private unseal(m: Record<string, unknown>, notes: { code: ErrorCode; message: string }[]): Record<string, unknown> {
    const session = this.session;
    const e = this.e2e;
    if (e === null) {
      if (m["encrypted"] === true) throw SealError.malformed(`session ${session} is end-to-end encrypted: join it with its key`);
      return m;
    }
    const openOp = (version: number, keyEpoch: number, data: string, chain: unknown): unknown => {
      const plain = e.openEdit(session, version, keyEpoch, data, typeof chain === "string" ? chain : undefined);
      try {
        const wire = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain)) as unknown;
        decodeOp(wire);
        return wire;
      } catch (err) {
        throw SealError.malformed(`version ${version} opened to no edit: ${(err as Error).message}`);
      }
    };
    const epochOf = (v: unknown): number => (typeof v === "number" ? v : 0);
    switch (m["type"]) {
      case "joined": {
        if (m["encrypted"] !== true) throw SealError.malformed(`session ${session} is not end-to-end encrypted: join it without keys`);
        e.keyEpoch = epochOf(m["key_epoch"]);
        let doc: Json | null = null;
        const snap = m["snapshot"] as { version?: unknown; data?: unknown; key_epoch?: unknown; chain?: unknown } | undefined | null;
        if (snap !== undefined && snap !== null) {
          const plain = e.openSnapshot(session, { version: Number(snap.version), data: String(snap.data), keyEpoch: epochOf(snap.key_epoch), chain: String(snap.chain) });
          try {
            doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain)) as Json;
          } catch (err) {
            throw SealError.malformed(`the snapshot opened to no document: ${(err as Error).message}`);
          }
        } else if (m["whole"] === true) {
          // The whole session from nothing: the chain starts at the genesis value. (Without
          // `whole` the entries follow what this replica has: a `since` join, or a repeated join.)
          e.record(0, GENESIS_CHAIN);
          doc = newDocument();
        }
        const entries: { version: number; user: string; ops: unknown }[] = [];
        for (const entry of (Array.isArray(m["ops"]) ? m["ops"] : []) as Record<string, unknown>[]) {
          if (typeof entry["data"] !== "string") continue;
          const version = Number(entry["version"]);
          entries.push({ version, user: String(entry["user"] ?? ""), ops: openOp(version, epochOf(entry["key_epoch"]), entry["data"], entry["chain"]) });
        }
        const out: Record<string, unknown> = { ...m, whole: false };
        delete out["snapshot"];
        delete out["delta"];
        delete out["state"];
        delete out["ops"];
        if (doc !== null) {
          // The state at `version`: the snapshot (or the empty document) and every entry after it.
          for (const en of entries) {
            try {
              doc = apply(doc, decodeOp(en.ops)).doc;
            } catch (err) {
              throw SealError.malformed(`version ${en.version} does not apply: ${(err as Error).message}`);
            }
          }
          out["state"] = doc;
        } else {
          out["ops"] = entries;
        }
        return out;
      }
      case "op": {
        if (typeof m["data"] !== "string") return m;
        const version = Number(m["version"]);
        const ops = openOp(version, epochOf(m["key_epoch"]), m["data"], m["chain"]);
        return { type: "op", session: m["session"], version, user: m["user"], ops };
      }
      case "ack": {
        const f = this.sync?.inflight;
        if (f && f.seq === Number(m["seq"]) && f.sealed !== undefined) {
          e.acked(Number(m["version"]), f.sealed.keyEpoch, f.sealed.data, typeof m["chain"] === "string" ? m["chain"] : undefined);
        }
        return m;
      }
      case "key_rotated":
        e.keyEpoch = Math.max(e.keyEpoch, Number(m["key_epoch"]));
        return m;
      case "comment_added":
      case "comment_updated": {
        const c = m["comment"] as Comment | undefined;
        if (c === undefined || typeof c.content !== "string") return m;
        try {
          return { ...m, comment: this.openComment(c) };
        } catch (err) {
          notes.push({ code: "bad_request", message: `comment ${c.id}: ${(err as Error).message}` });
          return m;
        }
      }
      default:
        return m;
    }
  }

  /** A payload did not open or the chain broke: the session stops, and the app hears why. */
  private undecryptable(err: SealError): void {
    this.sealError = err;
    const wasIn = this.inSession || this.awaitingJoin;
    this.wantJoined = false;
    if (wasIn) this.send({ type: "leave", session: this.session });
    this.stopWith(err);
    this.emit("undecryptable", err);
  }

  private onRoleChanged(user: string, role: string): void {
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
    this.emit("participants", this.participants);
  }

  // ---- large states ---------------------------------------------------------------------------

  /**
   * Whether a join asks for a large state by reference (`state_ref`): not in an encrypted session
   * (its server reads no state), not without a `fetch` to download it with, and not after two
   * downloads in a row failed since the session last joined (the state then comes inline, so a
   * download that can't succeed — a refusal, a proxy that breaks it — can't loop). SHA-256 is
   * always at hand (see `sha256Hex`).
   */
  private stateRefOk(): boolean {
    return this.e2e === null && this.downloadFailures < MAX_DOWNLOAD_FAILURES && this.connection.fetcher !== null;
  }

  /** A `joined` naming the state to download instead of carrying it: the session waits for it
   * (not joined yet), holding what comes after. */
  private load(m: Record<string, unknown>, ref: StateRef): void {
    // This is the join's answer: the frames after it (ops from its version + 1) are held for the
    // state, not left to a join as they are while one is awaited.
    this.awaitingJoin = false;
    this.stopLoading();
    const fetch = this.connection.fetcher;
    let part = this.partial;
    if (part === null || part.sha256 !== ref.sha256 || part.buf.length !== ref.bytes) {
      part = null;
      this.partial = null;
      try {
        part = { sha256: ref.sha256, buf: new Uint8Array(ref.bytes), have: 0 };
      } catch {
        // (No memory for it.)
      }
    }
    if (fetch === null || part === null) {
      return this.loadFailed(new DownloadError("internal", fetch === null ? "no fetch to download it with" : `no room for ${ref.bytes} bytes`));
    }
    this.partial = part;
    const total = ref.bytes;
    const from = part.have;
    let told = from;
    const url = `${this.connection.httpBase}/v1/sessions/${encodeURIComponent(this.session)}/state?version=${Number(m["version"])}`;
    const download: StateDownload = new StateDownload({
      url,
      fetch,
      token: () => this.connection.currentToken(),
      ref,
      part,
      later: (fn, ms) => this.connection.later(fn, ms),
      progress: (received) => {
        if (this.loading?.download !== download) return;
        // (Fewer bytes than told: a download that had to start over says so.)
        if (received >= told + LOADING_STEP || received < told || received === total) {
          told = received;
          this.emit("loading", { received, total });
        }
      },
    });
    this.loading = { joined: m, after: [], download };
    this.emit("loading", { received: from, total });
    const started = Date.now();
    void this.finishLoading(download, ref, () => [part.have - from, Date.now() - started]);
  }

  /** The download ends: its state answers the join, then the messages held behind it apply
   * (or, failing, the session joins again). `fresh`: the bytes it brought and the time. */
  private async finishLoading(download: StateDownload, ref: StateRef, fresh: () => [number, number]): Promise<void> {
    let bytes: Uint8Array<ArrayBuffer>;
    let hash: string;
    try {
      bytes = await download.run();
      const [n, ms] = fresh();
      hash = await sha256Hex(bytes);
      // A sample of the downlink, as a preview's download is.
      if (this.loading?.download === download) this.connection.reportDownload(n, ms);
    } catch (e) {
      if (this.loading?.download === download) this.loadFailed(e instanceof DownloadError ? e : new DownloadError("internal", String(e)));
      return;
    }
    const l = this.loading;
    if (l?.download !== download) return; // superseded, or its socket closed
    let state: Json;
    try {
      if (bytes.length !== ref.bytes || hash !== ref.sha256) {
        throw new Error(`${bytes.length} bytes with SHA-256 ${hash} came; the server announced ${ref.bytes} bytes with ${ref.sha256}`);
      }
      state = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Json;
    } catch (e) {
      // Bytes not worth resuming from.
      this.partial = null;
      return this.loadFailed(new DownloadError("desync", (e as Error).message));
    }
    this.partial = null;
    this.loading = null;
    const joined: Record<string, unknown> = { ...l.joined, state };
    delete joined["state_ref"];
    this.guarded(() => this.onJoined(joined));
    for (const m of l.after) this.handle(m);
  }

  /** The download failed for good: say so, and join again — with a leave first when the state
   * is wanted whole, since the server counts this socket in the session already and answers a
   * repeated join with no state; a replica joins again from its version (a join with `since` is
   * answered as a first one). The bytes so far stay in `partial` (unless they are wrong): the
   * same version joined again names the same bytes, and its download resumes. */
  private loadFailed(err: DownloadError): void {
    this.stopLoading();
    this.downloadFailures++;
    this.emit("error", { code: err.code, message: `downloading the session's state: ${err.message}; joining again` });
    if (!this.wantJoined || !this.connection.isOpen) return; // the next socket joins
    if (this.sync === null) {
      this.send({ type: "leave", session: this.session });
      this.sendJoin(undefined);
    } else {
      this.sendJoin(this.sync.version);
    }
  }

  /** Drops the state download under way, if any (its bytes so far stay in `partial`). */
  private stopLoading(): void {
    const l = this.loading;
    this.loading = null;
    l?.download.cancel();
  }

  private onJoined(m: Record<string, unknown>): void {
    const version = Number(m["version"]);
    this.awaitingJoin = false;
    this.downloadFailures = 0;
    this.role = String(m["role"] ?? "");
    this.linkRole = typeof m["link_role"] === "string" ? m["link_role"] : null;
    this.title = typeof m["title"] === "string" ? m["title"] : undefined;
    const participants = (Array.isArray(m["participants"]) ? m["participants"] : []) as Participant[];
    this.participantMap = new Map(participants.map((p) => [p.user, { ...p }]));
    // Participants' latest presence, when the server sends it with `joined`.
    for (const p of participants as (Participant & { presence?: Presence })[]) {
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
      this.change([], "load");
    }
    const sync = this.sync;
    const entries = (ops ?? []).map((e) => ({ version: Number(e.version), op: decodeOp(e.ops), user: String(e.user) }));
    if (state === undefined && m["delta"] !== undefined) {
      // A compact catch-up: every missed edit as one, of no single author.
      const { baseVersion, op } = decodeDelta(m["delta"]);
      // Asked for only with nothing in flight (see sendJoin); anything else resyncs.
      if (sync.resend() !== null) throw new Error("a compact catch-up with an edit in flight");
      this.change(sync.remote(version, op, baseVersion), "remote", "");
    }

    this.joined = true;
    this.inSession = true;
    this.connection.noteJoined();
    this.state = "online";
    const resend = sync.resend();
    if (resend !== null && state === undefined) {
      // My in-flight edit may or may not have been applied before the connection dropped. Resend
      // it with its original base and seq; the ack names its version. Until then hold the
      // server's edits, so that if one of them *is* my edit it is taken as the ack, not applied
      // twice.
      this.held = entries;
      this.sendOp();
    } else {
      for (const e of entries) this.applyRemote(e.version, e.op, e.user);
    }
    const joined: SessionEvents<Doc, Presence>["joined"] = { version: sync.version, role: this.role, participants: this.participants, linkRole: this.linkRole };
    if (this.title !== undefined) joined.title = this.title;
    this.emit("joined", joined);
    this.emit("participants", this.participants);
    this.emitStatus({});
    if (this.presenceData !== undefined) this.send({ type: "presence", session: this.session, data: this.presenceData });
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.resolve();
    // An encrypted session with no payload yet gets one at once from the editor who opens it
    // (its creator): an empty sealed edit. Whoever joins later opens it before editing, so a
    // wrong key shows at the join instead of writing a first payload nobody else can open.
    if (this.e2e !== null && sync.version === 0 && roleAtLeast(this.role, "editor")) sync.queueEmpty();
    this.flush();
  }

  private onAck(seq: number, version: number): void {
    const sync = this.requireSync();
    // An edit resent on the same socket (a rejoin) is acked twice: the repeat is no news.
    if (sync.inflight === null || sync.inflight.seq !== seq) return;
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
    this.emitStatus({});
  }

  private onRemote(version: number, op: Op, user: string, base: number = version - 1): void {
    if (this.held !== null) {
      // Ranges were not asked for while a resend is unconfirmed (see sendJoin).
      if (base !== version - 1) throw new Error(`a range of versions ${base + 1}..${version} while a resend awaits its ack`);
      this.held.push({ version, op, user });
      return;
    }
    this.applyRemote(version, op, user, base);
  }

  private applyRemote(version: number, op: Op, user: string, base: number = version - 1): void {
    const sync = this.requireSync();
    if (version <= sync.version) return; // already seen (a duplicate after a rejoin)
    this.change(sync.remote(version, op, base), "remote", user);
  }

  private onError(m: Record<string, unknown>): void {
    const code = String(m["code"] ?? "internal") as ErrorCode;
    const message = String(m["message"] ?? "");
    const r = m["rid"];
    const rid = typeof r === "string" ? r : undefined;
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
        this.connection.later(() => {
          const r = this.sync?.resend();
          if (r && this.state === "online" && this.held === null) this.sendOp();
        }, delay);
        return;
      }
      if (code === "conflict" && typeof m["version"] === "number") {
        // Too costly to rebase on the server (docs/PROTOCOL.md "Limits"): it was not applied. Server edits
        // held since a rejoin are not it, so they apply now; then it is rebased here and resent.
        const held = this.held ?? [];
        this.held = null;
        for (const e of held) this.applyRemote(e.version, e.op, e.user ?? "");
        const r = this.sync!.rebase();
        this.persist();
        if (r && this.state === "online") this.sendOp();
        else this.flush();
        return;
      }
      // The server refused my edit: the local state holds it and anything built on it. Drop
      // them and reload the server's state.
      this.emit("rejected", { seq: inflight.seq, code, message, lost: this.sync!.pendingCount });
      this.resync();
      return;
    }
    this.emit("error", rid === undefined ? { code, message } : { code, message, rid });
    if (rid === "join" && (code === "rate_limited" || code === "internal")) return this.joinLater(m["retry_after_ms"]);
    if (access && rid === undefined && this.state === "online") {
      // Not an answer to anything of mine: the server may have taken me out of the session
      // (after a link role change or a removal it answers my messages so). A fresh join says
      // whether (and as what) I am still in.
      this.inSession = false;
      this.held = null;
      this.sendJoin(this.sync?.version);
    }
  }

  /**
   * My join was refused for a while (`rate_limited`, or `internal`: the server is busy or
   * reloading the session): joins again after `retryAfterMs` (at most
   * `MAX_JOIN_RETRY_MS`; `JOIN_RETRY_MS` without one), as the Rust SDK's
   * `Refusal::Retry`. The join stays awaited meanwhile (edits that come are left to its answer).
   * Not if by then the session is not wanted, the socket closed, or another join went out (a
   * reconnect's): that one is awaited instead.
   */
  private joinLater(retryAfterMs: unknown): void {
    const ms = typeof retryAfterMs === "number" && Number.isFinite(retryAfterMs) && retryAfterMs >= 0 ? Math.min(retryAfterMs, MAX_JOIN_RETRY_MS) : JOIN_RETRY_MS;
    const refused = this.joinsSent;
    this.connection.later(() => {
      if (!this.wantJoined || !this.awaitingJoin || this.joinsSent !== refused || !this.connection.isOpen) return;
      this.sendJoin(this.sync?.version);
    }, ms);
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

/** The pause before joining again after a passing refusal that names no `retry_after_ms`. */
const JOIN_RETRY_MS = 500;
/** The longest pause before joining again after a passing refusal (as the Rust SDK's). */
const MAX_JOIN_RETRY_MS = 5_000;
/** Downloads of a large state that may fail in a row before a join asks for the state inline. */
const MAX_DOWNLOAD_FAILURES = 2;
/** Messages held behind a state download at most; past them the download gives up and the
 * session joins again (a newer version), rather than memory growing with a busy session on a slow
 * link. */
const MAX_HELD_BEHIND_DOWNLOAD = 20_000;

function commentOf(m: Record<string, unknown>): Comment {
  return m["comment"] as Comment;
}
function suggestionOf(m: Record<string, unknown>): Suggestion {
  return m["suggestion"] as Suggestion;
}
