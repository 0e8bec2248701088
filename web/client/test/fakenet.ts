// An in-memory WebSocket network and a Montage server speaking protocol v1 — JSON, or binary
// (`montage.v1.proto`, through src/binary.ts) to a client that asks for it alone —, for testing
// MontageClient without I/O. Messages travel in per-direction FIFO queues; a test steps them
// in order (`drain`) or in a random interleaving (`step`), and can drop a connection with
// whatever is still in its queues. With `access` set it also keeps who may see the session
// (docs/PROTOCOL.md "Access"): an owner, grants, a link role, deletion, and token refresh (`auth`).
import {
  type Json,
  type Op,
  type SocketLike,
  type Timers,
  GENESIS_CHAIN,
  apply,
  chainHex,
  chainNext,
  composeAll,
  isBase64,
  parseChain,
  decodeOp,
  encodeOp,
  tokenClaims,
  tokenSubject,
  transform,
  MontageClient,
} from "../src/index.js";
import { createHash } from "node:crypto";
import type { FetchLike } from "../src/access.js";
import { decodeClientFrame, encodeServerFrame } from "../src/binary.js";

/** A frame on the fake wire: JSON text, or a binary frame's bytes. */
export type Frame = string | Uint8Array;

/** A JWT-shaped token (unsigned: the fake server reads it without checking). */
export function fakeJwt(sub: string, exp = 2_000_000_000, extra: Record<string, unknown> = {}): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp, ...extra })}.sig`;
}

const RANK: Record<string, number> = { none: -1, viewer: 0, commenter: 1, editor: 2, owner: 3 };

/** Who may see the fake's sessions. */
export interface FakeAccess {
  owner: string;
  linkRole: string;
  grants: Map<string, string>;
  deleted: boolean;
  title?: string;
  /** How a user left without access is told: `role_changed` to `none`, an unsolicited
   * `forbidden` error frame, or both (the contract allows either). */
  removal: "role_changed" | "forbidden" | "both";
}

export class FakeClock implements Timers {
  now = 0;
  private seq = 0;
  tasks = new Map<number, { at: number; fn: () => void }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.tasks.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.tasks.delete(h as number);
  }
  /** Runs the earliest timer; false if none. */
  runNext(): boolean {
    let best: [number, { at: number; fn: () => void }] | undefined;
    for (const e of this.tasks) if (!best || e[1].at < best[1].at) best = e;
    if (!best) return false;
    this.tasks.delete(best[0]);
    this.now = Math.max(this.now, best[1].at);
    best[1].fn();
    return true;
  }
}

class Conn {
  c2s: Frame[] = [];
  s2c: Frame[] = [];
  /** Chose subprotocol `montage.v1.proto`: binary frames both ways. */
  binary = false;
  open = false;
  dead = false;
  sessions = new Set<string>();
  client = "";
  url = "";
  /** Close code the server closed with, when it did. */
  closedWith: number | undefined;
  /** Sessions joined with `ranges`, and the `op` frame last queued (to merge the next into). */
  ranges = new Set<string>();
  tailOp: { msg: Record<string, unknown>; frame: Frame } | undefined;
  /** For a real socket (the `ws` test): where server messages go instead of `s2c`. */
  sink: ((data: string) => void) | undefined;
  constructor(
    readonly sock: FakeSocket,
    readonly user: string,
  ) {}
}

export class FakeSocket implements SocketLike {
  readyState = 0;
  protocol = "";
  binaryType = "blob";
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  conn!: Conn;
  constructor(private readonly net: FakeNet) {}
  send(data: Frame): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    if (typeof data !== "string") data = data.slice(); // the bytes as sent
    this.conn.c2s.push(data);
  }
  close(): void {
    this.net.drop(this.conn);
  }
}

interface Room {
  doc: Json;
  history: Entry[];
  applied: Map<string, number>; // "client/seq" → version
  comments: Record<string, unknown>[];
  suggestions: Record<string, unknown>[];
  /** Joined once (a join's `create` counts only then). */
  created?: boolean;
  /** An end-to-end encrypted session (docs/PROTOCOL.md "Encrypted sessions"): the fake orders
   * the sealed payloads blind, like crates/server/src/sync/core/sealed.rs. */
  encrypted?: boolean;
  keyEpoch?: number;
  /** The newest client snapshot of an encrypted session. */
  snapshot?: { version: number; data: string; key_epoch: number; chain: string };
}

interface Entry {
  version: number;
  user: string;
  ops: Op;
  client: string;
  seq: number;
  /** An encrypted session's payload as stored, with its chain value. */
  sealed?: { data: string; key_epoch: number; chain: string };
}

export class FakeNet {
  conns: Conn[] = [];
  /** Opening handshakes waiting to be delivered. */
  opening: Conn[] = [];
  /** Connection attempts refused while the network is down, their close not yet delivered. */
  refused: FakeSocket[] = [];
  /** Each session's state, made from the constructor's document when first joined. */
  rooms = new Map<string, Room>();
  private readonly initial: Json;
  /** Reject edits that touch this path's first key (to test refusals). */
  refuseKey: string | undefined;
  log: Record<string, unknown>[] = [];
  /** Merge the next version into an `op` still queued for a connection that joined with
   * `ranges`, as the server does for a backlogged reader; and how many were. */
  mergeRanges = false;
  merged = 0;
  /** Refuse the next joins, one each, with these errors (e.g. `internal` while the server
   * reloads the session, `rate_limited` with `retry_after_ms`); the connection's sessions stay
   * as they were. */
  refuseJoins: { code: string; message: string; retry_after_ms?: number }[] = [];
  /** Answer the next edits with `rate_limited` (retry_after_ms 100). */
  rateLimit = 0;
  /** Component pairs an edit's rebase may compare (its components × those of the versions it
   * is behind); past it the edit is refused with `conflict` and the head, like the server. */
  transformBudget = Infinity;
  online = true;
  /** Decides whether a connection's token (from its URL) is taken: a refusal reason, or null.
   * A refused connection is opened, told `unauthorized` and closed with 4401 and the reason,
   * as the server does. */
  checkToken: (token: string | null) => string | null = () => null;
  /** Chooses `montage.v1.proto` for a client that asks for it (false: a server without it). */
  speaksBinary = true;
  /** Access rules; null: everyone is an editor (the tests of the client model). */
  access: FakeAccess | null = null;
  /** A join that asks for `state_ref` gets one instead of a `state` of more bytes of JSON than
   * this, as with `serve --inline-state-bytes` (docs/PROTOCOL.md "Large states"). */
  inlineStateBytes = Infinity;
  /** The states joins named by reference, as `GET …/state?version=V` serves them, by
   * `session@version`. */
  stateBytes = new Map<string, Uint8Array>();

  constructor(doc: Json) {
    this.initial = doc;
  }

  /** Moves an encrypted session's key epoch on (a member removed): `key_rotated` to everyone. */
  rotateKey(session: string): number {
    const r = this.room(session);
    r.keyEpoch = (r.keyEpoch ?? 0) + 1;
    this.broadcast(session, null, { type: "key_rotated", session, key_epoch: r.keyEpoch });
    return r.keyEpoch;
  }

  room(session: string): Room {
    let r = this.rooms.get(session);
    if (r === undefined) this.rooms.set(session, (r = { doc: this.initial, history: [], applied: new Map(), comments: [], suggestions: [] }));
    return r;
  }
  /** The first session's state (the only one in most tests). */
  private get main(): Room {
    return this.rooms.values().next().value ?? { doc: this.initial, history: [], applied: new Map(), comments: [], suggestions: [] };
  }
  get doc(): Json {
    return this.main.doc;
  }
  get history(): Entry[] {
    return this.main.history;
  }

  /** A SocketFactory for user `user`. */
  factory(user: string) {
    return (url: string, protocols: string[] = []): SocketLike => {
      const s = new FakeSocket(this);
      const c = new Conn(s, user);
      s.conn = c;
      c.url = url;
      if (protocols.length === 1 && protocols[0] === "montage.v1.proto" && this.speaksBinary) {
        c.binary = true;
        s.protocol = "montage.v1.proto";
      } else if (protocols.includes("montage.v1.json")) s.protocol = "montage.v1.json";
      if (!url.startsWith("ws://")) throw new Error("bad url");
      if (this.online) this.opening.push(c);
      else {
        c.dead = true;
        this.refused.push(s);
      }
      return s;
    };
  }

  /** Turns on access rules: `owner` owns the session, link role `none` (private). */
  restrict(owner: string, opts: Partial<FakeAccess> = {}): FakeAccess {
    this.access = { owner, linkRole: "none", grants: new Map(), deleted: false, removal: "role_changed", ...opts };
    return this.access;
  }
  roleOf(user: string): string {
    const a = this.access;
    if (a === null) return "editor";
    if (a.deleted) return "none";
    return a.grants.get(user) ?? (user === a.owner ? "owner" : a.linkRole);
  }
  /** The owner deletes the session: `session_deleted` to everyone in it. */
  deleteSession(session: string): void {
    if (this.access) this.access.deleted = true;
    for (const c of this.conns) {
      if (c.sessions.delete(session)) this.sendTo(c, { type: "session_deleted", session });
    }
  }
  /** Sends `msg` to every connection of `user`. */
  push(user: string, msg: Record<string, unknown>): void {
    for (const c of this.conns) if (c.user === user) this.sendTo(c, msg);
  }
  /** Takes users left without access out of `session`, telling them as `access.removal` says. */
  private evict(session: string): void {
    const how = this.access?.removal ?? "role_changed";
    for (const c of this.conns) {
      if (!c.sessions.has(session) || this.roleOf(c.user) !== "none") continue;
      if (how !== "forbidden") this.broadcast(session, null, { type: "role_changed", session, user: c.user, role: "none" });
      if (how !== "role_changed") this.sendTo(c, { type: "error", code: "forbidden", message: "you no longer have access to this session", session });
      c.sessions.delete(session);
      this.broadcast(session, c, { type: "participant_left", session, user: c.user });
    }
  }

  drop(c: Conn, code = 1006, reason = ""): void {
    if (c.dead) return;
    c.closedWith = code;
    c.dead = true;
    c.c2s = [];
    c.s2c = [];
    c.sock.readyState = 3;
    this.conns = this.conns.filter((x) => x !== c);
    this.opening = this.opening.filter((x) => x !== c);
    for (const s of c.sessions) this.broadcast(s, c, { type: "participant_left", session: s, user: c.user });
    c.sock.onclose?.({ code, reason });
  }
  dropAll(): void {
    for (const c of [...this.conns, ...this.opening]) this.drop(c);
  }

  /** Every possible next delivery. */
  private moves(): (() => void)[] {
    const m: (() => void)[] = [];
    for (const s of this.refused) {
      m.push(() => {
        this.refused = this.refused.filter((x) => x !== s);
        s.readyState = 3;
        s.onclose?.({ code: 1006 });
      });
    }
    for (const c of this.opening) m.push(() => this.accept(c));
    for (const c of this.conns) {
      if (c.c2s.length) m.push(() => this.serverReceive(c, c.c2s.shift()!));
      if (c.s2c.length) m.push(() => deliver(c, c.s2c.shift()!));
    }
    return m;
  }
  /** Delivers one message chosen by `pick`; false if nothing is in flight. */
  step(pick: (n: number) => number): boolean {
    const m = this.moves();
    if (m.length === 0) return false;
    m[pick(m.length)]!();
    return true;
  }
  /** Delivers the messages this connection sent to the server, and nothing else. */
  deliverToServer(c: Conn): void {
    while (c.c2s.length) this.serverReceive(c, c.c2s.shift()!);
  }
  /** Delivers the messages the server sent this connection, and nothing else. */
  deliverToClient(c: Conn): void {
    while (c.s2c.length) deliver(c, c.s2c.shift()!);
  }
  /** Delivers everything, oldest connection first. */
  drain(): void {
    while (this.step(() => 0));
  }

  private accept(c: Conn): void {
    this.opening = this.opening.filter((x) => x !== c);
    if (c.dead) return;
    this.conns.push(c);
    c.open = true;
    c.sock.readyState = 1;
    c.sock.onopen?.({});
    const refused = this.checkToken(new URL(c.url).searchParams.get("token"));
    if (refused !== null) {
      this.sendTo(c, { type: "error", code: "unauthorized", message: refused });
      this.closeUnauthorized(c, refused);
    }
  }

  /** Closes `c` for its token (4401), after what the server sent reaches the client. */
  closeUnauthorized(c: Conn, reason: string): void {
    while (c.s2c.length && !c.sink) deliver(c, c.s2c.shift()!);
    this.drop(c, 4401, reason);
  }

  private sendTo(c: Conn, msg: Record<string, unknown>): void {
    if (c.dead) return;
    if (c.sink) return c.sink(JSON.stringify(msg));
    const frame = (m: Record<string, unknown>) => (c.binary ? encodeServerFrame(m) : JSON.stringify(m));
    // Like the server for a backlogged reader that asked for ranges (docs/PROTOCOL.md "Ranges"):
    // the next version of a session merges into its `op` still queued at the tail. Composed side
    // by side, which is exact for transforms.
    const tail = c.tailOp;
    c.tailOp = undefined;
    const session = String(msg["session"]);
    if (
      this.mergeRanges &&
      msg["type"] === "op" &&
      msg["data"] === undefined &&
      c.ranges.has(session) &&
      tail !== undefined &&
      c.s2c.length > 0 &&
      c.s2c[c.s2c.length - 1] === tail.frame &&
      tail.msg["session"] === session &&
      Number(tail.msg["version"]) + 1 === Number(msg["version"])
    ) {
      const merged: Record<string, unknown> = {
        ...tail.msg,
        from: tail.msg["from"] ?? tail.msg["version"],
        version: msg["version"],
        user: tail.msg["user"] === msg["user"] ? msg["user"] : "",
        ops: [...(tail.msg["ops"] as unknown[]), ...(msg["ops"] as unknown[])],
      };
      const f = frame(merged);
      c.s2c[c.s2c.length - 1] = f;
      c.tailOp = { msg: merged, frame: f };
      this.merged++;
      return;
    }
    const f = frame(msg);
    c.s2c.push(f);
    if (msg["type"] === "op") c.tailOp = { msg, frame: f };
  }
  private broadcast(session: string, except: Conn | null, msg: Record<string, unknown>): void {
    for (const c of this.conns) if (c !== except && c.sessions.has(session)) this.sendTo(c, msg);
  }

  /** Sends `msg` to everyone in `session`: to `sender` with its `rid`. */
  private answer(session: string, sender: Conn, rid: unknown, msg: Record<string, unknown>): void {
    this.broadcast(session, sender, msg);
    if (sender.sessions.has(session)) this.sendTo(sender, rid === undefined ? msg : { ...msg, rid });
  }

  /** Serves a real WebSocket connection with the same server logic. */
  attach(user: string, send: (data: string) => void): { receive: (data: string) => void; closed: () => void } {
    const dummy = new FakeSocket(this);
    const c = new Conn(dummy, user);
    dummy.conn = c;
    c.sink = send;
    c.open = true;
    this.conns.push(c);
    return { receive: (data) => this.serverReceive(c, data), closed: () => this.drop(c) };
  }

  private serverReceive(c: Conn, data: Frame): void {
    if (typeof data === "string" ? c.binary : !c.binary) {
      const form = c.binary ? "binary" : "text";
      this.sendTo(c, { type: "error", code: "bad_request", message: `this connection speaks ${form} frames` });
      return;
    }
    const m = typeof data === "string" ? (JSON.parse(data) as Record<string, unknown>) : decodeClientFrame(data);
    this.log.push({ ...m, from: c.user });
    if (m["type"] === "quality") return; // a downlink hint: no tiers here
    const session = String(m["session"]);
    const room = this.room(session);
    const rid = m["rid"];
    const err = (code: string, message: string) =>
      this.sendTo(c, rid === undefined ? { type: "error", code, message } : { type: "error", code, message, rid });
    const a = this.access;
    if (a !== null && m["type"] !== "join" && m["type"] !== "auth" && !c.sessions.has(session)) {
      err("not_found", "not joined to that session");
      return;
    }
    const role = this.roleOf(c.user);
    switch (m["type"]) {
      case "join": {
        const refusal = this.refuseJoins.shift();
        if (refusal !== undefined) return this.sendTo(c, rid === undefined ? { type: "error", ...refusal } : { type: "error", ...refusal, rid });
        if (a !== null && a.deleted) return err("not_found", "no such session");
        if (role === "none") return err("forbidden", "you don't have access to this session: ask its owner to share it");
        // Like the server: joining again a session this connection is in answers the head with
        // no state and no ops (the connection already has them); `since` is answered as usual.
        const repeat = c.sessions.has(session) && typeof m["since"] !== "number";
        c.sessions.add(session);
        c.client = String(m["client"]);
        if (m["ranges"] === true) c.ranges.add(session);
        else c.ranges.delete(session);
        const since = repeat ? room.history.length : m["since"];
        const participants = [...new Set(this.conns.filter((x) => x.sessions.has(session)).map((x) => x.user))].map(
          (user) => ({ user, role: this.roleOf(user), online: true }),
        );
        if (!room.created) {
          room.created = true;
          room.encrypted = (m["create"] as { encrypted?: unknown } | undefined)?.encrypted === true;
        }
        const base: Record<string, unknown> = { type: "joined", session, version: room.history.length, role, participants };
        if (a !== null) {
          base["link_role"] = a.linkRole;
          if (a.title !== undefined) base["title"] = a.title;
        }
        if (rid !== undefined) base["rid"] = rid;
        const missed = typeof since === "number" ? room.history.slice(since) : [];
        if (room.encrypted) {
          // No state: the snapshot and entries after it (a first join), or the entries after
          // `since`; `compact` is ignored.
          const entry = (e: Entry) => ({ version: e.version, user: e.user, time: 0, ops: [], ...e.sealed });
          const joined: Record<string, unknown> = { ...base, encrypted: true, key_epoch: room.keyEpoch ?? 0 };
          if (typeof since === "number") {
            joined["ops"] = missed.map(entry);
          } else {
            joined["whole"] = true;
            if (room.snapshot) joined["snapshot"] = room.snapshot;
            joined["ops"] = room.history.slice(room.snapshot?.version ?? 0).map(entry);
          }
          this.sendTo(c, joined);
        } else if (typeof since === "number" && m["compact"] === true && missed.length >= 8) {
          // Like the server's compact catch-up: the missed edits composed into one delta.
          const runs = composeAll(missed.map((e) => e.ops)).map((c) => ({ c: encodeOp([c]) }));
          this.sendTo(c, { ...base, delta: { base_version: since, runs } });
        } else if (typeof since === "number") {
          const ops = missed.map((e) => ({ version: e.version, user: e.user, ops: encodeOp(e.ops) }));
          this.sendTo(c, { ...base, ops });
        } else {
          const bytes = new TextEncoder().encode(JSON.stringify(room.doc));
          if (m["state_ref"] === true && bytes.length > this.inlineStateBytes) {
            this.stateBytes.set(`${session}@${room.history.length}`, bytes);
            this.sendTo(c, { ...base, state_ref: { bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") } });
          } else {
            this.sendTo(c, { ...base, state: room.doc });
          }
        }
        this.broadcast(session, c, { type: "participant_joined", session, user: c.user, role });
        return;
      }
      case "set_link_role":
        if (a === null || role !== "owner") return err("forbidden", "only the owner changes link access");
        a.linkRole = String(m["role"]);
        this.broadcast(session, null, { type: "link_role_changed", session, role: a.linkRole });
        this.evict(session);
        return;
      case "set_role": {
        if (a === null || role !== "owner") return err("forbidden", "only the owner changes roles");
        const user = String(m["user"]);
        a.grants.set(user, String(m["role"]));
        this.answer(session, c, rid, { type: "role_changed", session, user, role: String(m["role"]) });
        this.evict(session);
        return;
      }
      case "auth": {
        const token = String(m["token"]);
        if (tokenSubject(token) !== c.user) {
          err("unauthorized", "the new token is for another user");
          this.closeUnauthorized(c, "token of another user");
          return;
        }
        this.sendTo(c, { type: "authed", exp: Number(tokenClaims(token)?.["exp"]), rid });
        return;
      }
      case "op": {
        if ((RANK[role] ?? -1) < RANK["editor"]!) return err("forbidden", "editing needs the editor role");
        const client = c.client;
        const seq = Number(m["seq"]);
        const key = `${client}/${seq}`;
        if (this.rateLimit > 0) {
          this.rateLimit--;
          this.sendTo(c, { type: "error", code: "rate_limited", message: "slow down", retry_after_ms: 100, rid });
          return;
        }
        const done = room.applied.get(key);
        if (done !== undefined) {
          const sealed = room.history[done - 1]?.sealed;
          this.sendTo(c, sealed ? { type: "ack", session, seq, version: done, chain: sealed.chain } : { type: "ack", session, seq, version: done });
          return;
        }
        if (room.encrypted || m["data"] !== undefined) return this.applySealed(c, room, session, m, key, seq);
        let op: Op;
        try {
          op = decodeOp(m["ops"]);
          const b = Number(m["base"]);
          if (b > room.history.length) throw new Error("base in the future");
          const work = op.length * room.history.slice(b).reduce((n, h) => n + h.ops.length, 0);
          if (work > this.transformBudget) {
            const version = room.history.length;
            this.sendTo(c, { type: "error", code: "conflict", message: "too far behind", version, rid });
            return;
          }
          for (const h of room.history.slice(b)) op = transform(op, h.ops, "right");
          if (this.refuseKey !== undefined && op.some((x) => x.path[0] === this.refuseKey)) {
            throw new Error(`edits of ${this.refuseKey} are refused`);
          }
          room.doc = apply(room.doc, op).doc;
        } catch (e) {
          err("bad_request", (e as Error).message);
          return;
        }
        const version = room.history.length + 1;
        room.history.push({ version, user: c.user, ops: op, client, seq });
        room.applied.set(key, version);
        this.sendTo(c, { type: "ack", session, seq, version });
        this.broadcast(session, c, { type: "op", session, version, user: c.user, ops: encodeOp(op) });
        return;
      }
      case "snapshot": {
        // An encrypted session's client snapshot: of a version this fake has, newer than the
        // stored one, under the session's key epoch; no answer on success.
        if (!room.encrypted) return err("bad_request", "snapshots are sent only in encrypted sessions");
        if ((RANK[role] ?? -1) < RANK["editor"]!) return err("forbidden", "snapshots need the editor role");
        const version = Number(m["version"]);
        const data = m["data"];
        if (typeof data !== "string" || !isBase64(data)) return err("bad_request", "data is not base64");
        if (version < 1 || version > room.history.length) return err("bad_request", `no version ${version}`);
        if (version <= (room.snapshot?.version ?? 0)) return err("conflict", "a newer snapshot is stored");
        if (Number(m["key_epoch"] ?? 0) !== (room.keyEpoch ?? 0)) return err("conflict", "key epoch retired");
        room.snapshot = { version, data, key_epoch: room.keyEpoch ?? 0, chain: room.history[version - 1]!.sealed!.chain };
        return;
      }
      case "presence":
        this.broadcast(session, c, { type: "presence", session, user: c.user, data: m["data"] });
        return;
      // Comments, suggestions and previews, as far as the client's requests need: the answer
      // carries the request's rid to its sender, everyone else gets it without.
      case "comment": {
        if ((RANK[role] ?? -1) < RANK["commenter"]!) return err("forbidden", "commenting needs the commenter role");
        const n = m["comment"] as Record<string, unknown>;
        if (typeof n["content"] !== "string" || n["content"] === "") return err("bad_request", "empty comment");
        const comment = { id: `c${room.comments.length + 1}`, asset_id: "", author_id: c.user, timestamp: "2026-01-01T00:00:00Z", annotations: [], resolved: false, deleted: false, edited: false, reactions: {}, mentions: [], ...n };
        room.comments.push(comment);
        return this.answer(session, c, rid, { type: "comment_added", session, comment });
      }
      case "comment_resolve": {
        const comment = room.comments.find((x) => x["id"] === m["id"]);
        if (comment === undefined) return err("bad_request", "no such comment");
        comment["resolved"] = m["resolved"];
        return this.answer(session, c, rid, { type: "comment_updated", session, comment });
      }
      case "suggest": {
        const suggestion: Record<string, unknown> = { id: `s${room.suggestions.length + 1}`, author_id: c.user, base: m["base"], ops: m["ops"], note: m["note"] ?? "", status: "pending", timestamp: "2026-01-01T00:00:00Z" };
        room.suggestions.push(suggestion);
        return this.answer(session, c, rid, { type: "suggestion_added", session, suggestion });
      }
      case "suggestion_accept": {
        if ((RANK[role] ?? -1) < RANK["editor"]!) return err("forbidden", "accepting needs the editor role");
        const sg = room.suggestions.find((x) => x["id"] === m["id"]);
        if (sg === undefined || sg["status"] !== "pending") return err("conflict", "already decided");
        let op = decodeOp(sg["ops"]);
        for (const h of room.history.slice(Number(sg["base"]))) op = transform(op, h.ops, "right");
        room.doc = apply(room.doc, op).doc;
        const version = room.history.length + 1;
        const author = String(sg["author_id"]);
        room.history.push({ version, user: author, ops: op, client: `suggestion:${String(sg["id"])}`, seq: 1 });
        this.broadcast(session, null, { type: "op", session, version, user: author, ops: encodeOp(op) });
        Object.assign(sg, { status: "accepted", version, credited: author, decided_by: c.user });
        return this.answer(session, c, rid, { type: "suggestion_updated", session, suggestion: sg });
      }
      case "preview_subscribe": {
        const tier = String(m["tier"] ?? "excellent");
        const v = room.history.length;
        const path = `/v1/sessions/${encodeURIComponent(session)}`;
        const follow = m["follow"] !== undefined;
        const preview: Record<string, unknown> = follow
          ? { type: "preview", session, version: v, tier, t: 0, url: `${path}/frame?t=0&tier=${tier}&v=${v}` }
          : { type: "preview", session, version: v, tier, url: `${path}/preview?tier=${tier}&v=${v}` };
        if (rid !== undefined) preview["rid"] = rid;
        return this.sendTo(c, preview);
      }
      case "leave":
        c.sessions.delete(session);
        this.broadcast(session, c, { type: "participant_left", session, user: c.user });
        return;
      default:
        err("bad_request", "unknown message type");
    }
  }

  /** An encrypted session's edit, as `apply_sealed`: on the head only (`conflict` with the head
   * otherwise: the client rebases and seals again), under the session's key epoch, stored as
   * sent with the next chain value. */
  private applySealed(c: Conn, room: Room, session: string, m: Record<string, unknown>, key: string, seq: number): void {
    const rid = m["rid"];
    const err = (code: string, message: string, extra: Record<string, unknown> = {}) =>
      this.sendTo(c, { type: "error", code, message, ...extra, ...(rid === undefined ? {} : { rid }) });
    const data = m["data"];
    if (!room.encrypted) return err("bad_request", "a plain session takes ops, not data");
    if (m["ops"] !== undefined || typeof data !== "string" || !isBase64(data)) return err("bad_request", "an encrypted session takes base64 data and no ops");
    const head = room.history.length;
    const b = Number(m["base"]);
    if (b > head) return err("bad_request", `base ${b} is ahead of the head ${head}`);
    if (b !== head) return err("conflict", `an encrypted session takes edits on the head only: base ${b} is behind ${head}`, { version: head });
    const epoch = Number(m["key_epoch"] ?? 0);
    const now = room.keyEpoch ?? 0;
    if (epoch > now) return err("bad_request", `key epoch ${epoch} is ahead of the session's, ${now}`);
    if (epoch < now) return err("conflict", `key epoch ${epoch} is retired`, { version: head });
    const prev = head === 0 ? GENESIS_CHAIN : parseChain(room.history[head - 1]!.sealed!.chain)!;
    const version = head + 1;
    const chain = chainHex(chainNext(prev, version, epoch, data));
    room.history.push({ version, user: c.user, ops: [], client: c.client, seq, sealed: { data, key_epoch: epoch, chain } });
    room.applied.set(key, version);
    this.sendTo(c, { type: "ack", session, seq, version, chain });
    this.broadcast(session, c, { type: "op", session, version, user: c.user, data, key_epoch: epoch, chain });
  }
}

/** Hands a frame to the client's socket: binary ones as an ArrayBuffer (`binaryType`
 * "arraybuffer", which the client sets), text as a string. */
function deliver(c: Conn, f: Frame): void {
  if (typeof f !== "string" && c.sock.binaryType !== "arraybuffer") throw new Error("a binary frame to a socket whose binaryType is not arraybuffer");
  c.sock.onmessage?.({ data: typeof f === "string" ? f : f.slice().buffer });
}

/** Lets promise callbacks (an async token function) run. */
export const tick = () => new Promise<void>((r) => setTimeout(r, 0));

/** Delivers messages and runs promise callbacks until both are quiet. */
export async function settle(net: FakeNet): Promise<void> {
  for (let i = 0; i < 20; i++) {
    net.drain();
    await tick();
  }
  net.drain();
}

/** A client of session `s1` on `net` as `user`, on the fake clock, with `extra` options. */
export function fakeClient(
  net: FakeNet,
  clock: FakeClock,
  user: string,
  extra: Partial<ConstructorParameters<typeof MontageClient>[0]> = {},
): MontageClient {
  return new MontageClient({
    url: "ws://montage.test/v1/ws",
    session: "s1",
    clientId: `c-${user}`,
    token: fakeJwt(user),
    socket: net.factory(user),
    timers: clock,
    random: () => 0,
    ...extra,
  });
}

/** How one request of a {@link FakeStateHttp} ends (in its `plan`; without one it serves the
 * rest whole): the body fails after `cut` bytes (a connection reset), or stops after `stall`
 * bytes and never ends; fetch `throws` before an answer; a `status` with the server's error body;
 * or the body whole with one byte changed (`tamper`: the hash won't match). */
export type Piece = { cut: number } | { stall: number } | { throws: true } | { status: number } | { tamper: true };

/** A request a {@link FakeStateHttp} took: its `Range` and `If-Range`, what it answered (from
 * byte `from`), and how many body bytes went out. */
export interface StateRequest {
  url: string;
  auth: string | undefined;
  range: string | undefined;
  ifRange: string | undefined;
  status: number;
  from: number;
  sent: number;
}

/** `GET /v1/sessions/{id}/state?version=V` of the states `net` named by reference, as the
 * server serves them (`ETag`; `Range: bytes=A-` with a matching `If-Range` → 206 with
 * `Content-Range`, past the end 416, another `If-Range` → 200 whole), its bodies streamed in
 * 16 KiB chunks as they are read, each request ending as `plan` says. */
export class FakeStateHttp {
  plan: Piece[] = [];
  /** Decides how each request ends instead of `plan` (`n`: the requests before it). */
  pieceFor: ((req: StateRequest, n: number) => Piece) | null = null;
  /** Like a proxy that takes no `Range`: every answer is the whole body (200). */
  ignoreRange = false;
  requests: StateRequest[] = [];
  constructor(private readonly net: FakeNet) {}
  /** Body bytes sent in all. */
  get served(): number {
    return this.requests.reduce((n, r) => n + r.sent, 0);
  }
  readonly fetch: FetchLike = async (url, init) => {
    const req: StateRequest = { url, auth: init.headers["Authorization"], range: init.headers["Range"], ifRange: init.headers["If-Range"], status: 0, from: 0, sent: 0 };
    this.requests.push(req);
    const piece: Piece | { whole: true } = this.pieceFor?.(req, this.requests.length - 1) ?? this.plan.shift() ?? { whole: true };
    const answer = (status: number, headers: Record<string, string>, body?: ReadableStream<Uint8Array>, text = "") => {
      req.status = status;
      return { status, ok: status >= 200 && status < 300, headers: { get: (n: string) => headers[n.toLowerCase()] ?? null }, text: async () => text, body: body ?? null };
    };
    const refuse = (status: number) => {
      const code = { 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 429: "rate_limited" }[status] ?? "internal";
      return answer(status, { "content-type": "application/json" }, undefined, JSON.stringify({ type: "error", code, message: `refused with ${status}` }));
    };
    if ("throws" in piece) throw new TypeError("fetch failed");
    if (init.method !== "GET" || !req.auth?.startsWith("Bearer ")) return refuse(401);
    if ("status" in piece) return refuse(piece.status);
    const u = new URL(url);
    const path = /^\/v1\/sessions\/([^/]+)\/state$/.exec(u.pathname);
    const bytes = path === null ? undefined : this.net.stateBytes.get(`${decodeURIComponent(path[1]!)}@${u.searchParams.get("version")}`);
    if (bytes === undefined) return refuse(404);
    const etag = `"${createHash("sha256").update(bytes).digest("hex")}"`;
    const headers: Record<string, string> = { etag, "accept-ranges": "bytes", "content-type": "application/json" };
    const range = req.range === undefined ? null : /^bytes=(\d+)-$/.exec(req.range);
    let status = 200;
    if (range !== null && !this.ignoreRange && (req.ifRange === undefined || req.ifRange === etag)) {
      req.from = Number(range[1]);
      if (req.from >= bytes.length) return answer(416, { "content-range": `bytes */${bytes.length}` });
      status = 206;
      headers["content-range"] = `bytes ${req.from}-${bytes.length - 1}/${bytes.length}`;
    }
    const body = bytes.slice(req.from);
    if ("tamper" in piece) body[body.length >> 1]! ^= 1;
    const limit = "cut" in piece ? piece.cut : "stall" in piece ? piece.stall : Infinity;
    let at = 0;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull: (ctl) => {
          if (at >= limit) {
            if ("stall" in piece) return new Promise<void>(() => {}); // nothing more, ever
            ctl.error(new TypeError("terminated: other side closed"));
            return;
          }
          if (at >= body.length) return ctl.close();
          const chunk = body.slice(at, Math.min(at + 16 * 1024, limit, body.length));
          at += chunk.length;
          req.sent += chunk.length;
          ctl.enqueue(chunk);
        },
      },
      // Pulled only as read: `sent` counts what reached the reader.
      { highWaterMark: 0 },
    );
    return answer(status, headers, stream);
  };
}
