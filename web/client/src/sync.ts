/**
 * The client side of Montage's client–server OT, without I/O (the Jupiter / ShareDB client,
 * exactly as the Rust reference `crates/ot/tests/it/sim.rs` `Client`): local edits apply at
 * once; one edit is in flight, the rest are composed into one pending edit; a server edit is
 * transformed against the in-flight edit, then the pending one (`transformX(incoming, local,
 * "left")`: the server's edit was ordered first), and both sides are replaced.
 *
 * Per-user undo/redo lives here too (docs/PROTOCOL.md "Durability"): undoing inverts my edit against the state
 * before it and transforms that inverse past every later edit of others.
 */
import { applyUnchecked, apply, compose, transform, transformX } from "./op.js";
import { type Component, type Op, type WireComponent, decodeOp, encodeOp } from "./component.js";
import type { Json } from "./json.js";
import { pathEq } from "./path.js";
import { transformComponent } from "./transform.js";
import type { Path } from "./path.js";

/** An edit ready to send: `{"type":"op","base":B,"seq":N,"ops":[…]}`. */
export interface Outgoing {
  base: number;
  seq: number;
  op: Op;
}

/** @inline */
interface Inflight extends Outgoing {
  /** The edit exactly as sent with `base`: a resend must carry this, not `op`, which has
   * been transformed past the server edits received since. */
  sent: Op;
  /** How many local edits it carries (for "n pending"). */
  edits: number;
  /** In an encrypted session: `sent` sealed (its `data` and key epoch), made when it is first
   * sent and repeated byte for byte by a resend; a rebase drops it (the edit is sealed again). */
  sealed?: SealedEdit | undefined;
}

/** An edit of an encrypted session as sealed for the wire: `data` (base64) and its key epoch. */
export interface SealedEdit {
  data: string;
  keyEpoch: number;
}

/** Why a local edit was made: a new edit, an undo or a redo. */
export type EditKind = "edit" | "undo" | "redo";

/** What a replica must keep to survive a page reload while offline (docs/PROTOCOL.md "Durability"): the document,
 * its version, and the unacknowledged edits with their base and seq. Plain JSON. */
export interface SyncSnapshot {
  v: 1;
  doc: Json;
  version: number;
  lastSeq: number;
  inflight: {
    base: number;
    seq: number;
    sent: WireComponent[];
    op: WireComponent[];
    edits: number;
    /** In an encrypted session, the edit as sealed when it was first sent. */
    sealed?: { data: string; key_epoch: number };
  } | null;
  pending: WireComponent[] | null;
  pendingEdits: number;
}

/**
 * The sans-I/O client model of one replica: local edits apply at once, one is in flight, the rest
 * are composed into one pending edit; server edits are transformed past them; per-user undo/redo.
 * No I/O: {@link MontageSession} drives one over a socket.
 */
export class SyncDoc {
  doc: Json;
  version: number;
  inflight: Inflight | null = null;
  pending: Op | null = null;
  private pendingEdits = 0;
  private lastSeq: number;
  private undoStack: Op[] = [];
  private redoStack: Op[] = [];
  /** Most undo steps kept. */
  undoLimit = 200;

  constructor(doc: Json, version: number, lastSeq = 0) {
    this.doc = doc;
    this.version = version;
    this.lastSeq = lastSeq;
  }

  /** The last seq handed out. */
  get lastSeqUsed(): number {
    return this.lastSeq;
  }
  /** Local edits not yet acknowledged by the server. */
  get pendingCount(): number {
    return (this.inflight?.edits ?? 0) + this.pendingEdits;
  }
  /** True if {@link SyncDoc.undo} has an edit of mine to take back. */
  get canUndo(): boolean {
    return this.undoStack.length > 0;
  }
  /** True if {@link SyncDoc.redo} has an undone edit to make again. */
  get canRedo(): boolean {
    return this.redoStack.length > 0;
  }

  /**
   * A local edit: validated and applied at once (throws `OtError` and changes nothing if the
   * edit is refused), then queued. Returns the applied edit.
   */
  edit(op: Op, kind: EditKind = "edit"): Op {
    const before = this.doc;
    const { doc } = apply(before, op);
    const inverse = undoInverse(before, op);
    this.doc = doc;
    if (kind === "edit") {
      this.undoStack.push(inverse);
      if (this.undoStack.length > this.undoLimit) this.undoStack.shift();
      this.redoStack = [];
    } else if (kind === "undo") {
      this.redoStack.push(inverse);
    } else {
      this.undoStack.push(inverse);
    }
    this.pending = this.pending === null ? op.slice() : compose(this.pending, op);
    this.pendingEdits++;
    return op;
  }

  /** Undoes my latest edit that still applies; returns the edit applied, or null. */
  undo(): Op | null {
    return this.step(this.undoStack, "undo");
  }
  /** Makes my latest undone edit again; returns the edit applied, or null. */
  redo(): Op | null {
    return this.step(this.redoStack, "redo");
  }
  private step(stack: Op[], kind: "undo" | "redo"): Op | null {
    while (stack.length > 0) {
      const op = stack.pop()!;
      if (op.length === 0) continue; // wholly overtaken by others' edits
      try {
        return this.edit(op, kind);
      } catch {
        // Others' edits made it meaningless (e.g. its target is gone): skip it.
      }
    }
    return null;
  }

  /** The next edit to send, if none is in flight. */
  takeOutgoing(): Outgoing | null {
    if (this.inflight !== null || this.pending === null) return null;
    const op = this.pending;
    this.pending = null;
    this.inflight = { base: this.version, seq: ++this.lastSeq, op, sent: op, edits: this.pendingEdits };
    this.pendingEdits = 0;
    return { base: this.inflight.base, seq: this.inflight.seq, op };
  }

  /** Queues an empty edit, counted as no edit and with no undo step, when nothing else is
   * queued or in flight: an encrypted session's key check (see `MontageSession`). */
  queueEmpty(): void {
    if (this.inflight === null && this.pending === null) this.pending = [];
  }

  /** The in-flight edit as first sent, with its original base and seq, for resending after a
   * reconnect (the server transforms it past everything since `base` again). */
  resend(): Outgoing | null {
    const f = this.inflight;
    return f === null ? null : { base: f.base, seq: f.seq, op: f.sent };
  }

  /** The server refused my in-flight edit as too costly to rebase there (`conflict` with the
   * head version): it was not applied. It goes out again as it stands on the replica, already
   * transformed past every server edit received, on the current version and under a new seq. */
  rebase(): Outgoing | null {
    const f = this.inflight;
    if (f === null) return null;
    if (f.op.length === 0 && f.edits === 0 && this.version > 0) {
      // An encrypted session's key check beaten by another's: that one serves.
      this.inflight = null;
      return null;
    }
    f.base = this.version;
    f.seq = ++this.lastSeq;
    f.sent = f.op;
    f.sealed = undefined;
    return { base: f.base, seq: f.seq, op: f.op };
  }

  /** The server acknowledged my in-flight edit as `version`. */
  ack(seq: number, version: number): void {
    if (this.inflight === null || this.inflight.seq !== seq) {
      throw new Error(`ack for seq ${seq}, but ${this.inflight ? `seq ${this.inflight.seq}` : "nothing"} is in flight`);
    }
    if (version !== this.version + 1) {
      throw new Error(`ack names version ${version}, expected ${this.version + 1}`);
    }
    this.version = version;
    this.inflight = null;
  }

  /** An edit of someone else, ordered by the server as `version`. Returns the edit as applied
   * to the local document. `from`: the version it was made on when it stands for several
   * (a compact catch-up). */
  remote(version: number, op: Op, from: number = version - 1): Op {
    if (from !== this.version || version <= from) {
      throw new Error(`server edit version ${version}, expected ${this.version + 1}`);
    }
    let incoming = op;
    if (this.inflight !== null) {
      const [a, b] = transformX(incoming, this.inflight.op, "left");
      incoming = a;
      this.inflight.op = b;
    }
    if (this.pending !== null) {
      const [a, b] = transformX(incoming, this.pending, "left");
      incoming = a;
      this.pending = b;
    }
    // Applied without the shape check: the server already checked it on its state.
    this.doc = applyUnchecked(this.doc, incoming).doc;
    this.version = version;
    // My undo steps are later than everything the server has ordered.
    this.undoStack = this.undoStack.map((u) => transform(u, incoming, "right"));
    this.redoStack = this.redoStack.map((u) => transform(u, incoming, "right"));
    return incoming;
  }

  /** The state to persist (undo history is not kept). */
  snapshot(): SyncSnapshot {
    const f = this.inflight;
    let inflight: SyncSnapshot["inflight"] = null;
    if (f !== null) {
      inflight = { base: f.base, seq: f.seq, sent: encodeOp(f.sent), op: encodeOp(f.op), edits: f.edits };
      if (f.sealed !== undefined) inflight.sealed = { data: f.sealed.data, key_epoch: f.sealed.keyEpoch };
    }
    return {
      v: 1,
      doc: this.doc,
      version: this.version,
      lastSeq: this.lastSeq,
      inflight,
      pending: this.pending && encodeOp(this.pending),
      pendingEdits: this.pendingEdits,
    };
  }

  /** A replica from a snapshot; throws on an unknown snapshot version or a malformed edit. */
  static restore(s: SyncSnapshot): SyncDoc {
    if (s.v !== 1) throw new Error(`unknown snapshot version ${String(s.v)}`);
    const d = new SyncDoc(s.doc, s.version, s.lastSeq);
    if (s.inflight) {
      const f = s.inflight;
      d.inflight = { base: f.base, seq: f.seq, sent: decodeOp(f.sent), op: decodeOp(f.op), edits: f.edits };
      if (f.sealed !== undefined) d.inflight.sealed = { data: String(f.sealed.data), keyEpoch: Number(f.sealed.key_epoch) };
    }
    d.pending = s.pending && decodeOp(s.pending);
    d.pendingEdits = s.pendingEdits;
    return d;
  }

  /** Drops every unacknowledged edit (after the server refused one) and adopts `doc`. */
  reset(doc: Json, version: number): void {
    this.doc = doc;
    this.version = version;
    this.inflight = null;
    this.pending = null;
    this.pendingEdits = 0;
    this.undoStack = [];
    this.redoStack = [];
  }
}

/**
 * The inverse used for undo: the exact inverse, except that undoing a `rotate` or `adjust`
 * that created its container is narrowed to `rotate −D` / `del adjust/K`, so a later
 * colleague's change of the same container survives (docs/OT.md §13 Q3).
 */
export function undoInverse(before: Json, op: Op): Op {
  let cur = before;
  const parts: Op[] = [];
  for (const c of op) {
    const r = applyUnchecked(cur, [c]);
    let inv = r.inverse;
    if (c.op === "rotate" && inv.length === 1 && inv[0]!.op === "del") {
      inv = [{ op: "rotate", path: c.path, by: -c.by }];
    } else if (c.op === "adjust" && inv.length === 1 && inv[0]!.op === "del" && inv[0]!.path.length === c.path.length + 1) {
      inv = [{ op: "del", path: [...c.path, "adjust", c.param] }];
    }
    parts.push(inv);
    cur = r.doc;
  }
  return parts.reverse().flat();
}

/** A caret (or selection end) in a string of the document. */
export interface Caret {
  path: Path;
  /** Scalar index into the string. */
  pos: number;
}

/**
 * Moves a caret past an edit (for presence: others' carets must follow concurrent typing and
 * list changes). Returns null if the string it was in was replaced or removed.
 */
export function transformCaret(caret: Caret, op: readonly Component[], stickAfter = false): Caret | null {
  let path = caret.path;
  let pos = caret.pos;
  for (const c of op) {
    if (c.op === "text" && pathEq(c.path, path)) {
      pos = c.text.transformPosition(pos, stickAfter);
      continue;
    }
    const out: Component[] = [];
    transformComponent({ op: "add", path, value: 0 }, c, "right", out);
    if (out.length === 0) return null;
    path = out[0]!.path;
  }
  return { path, pos };
}
