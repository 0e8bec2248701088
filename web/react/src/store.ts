/**
 * `ClientStore`: a `MontageClient` (or any `MontageSession`) seen as the external stores `useSyncExternalStore` wants, one
 * per slice (document, others, status, undo, session, my presence). Each slice has a `subscribe`
 * (the client events that can change it) and a `get` that returns the *same* object until the
 * slice's value changes: the client hands out fresh arrays (`participants`) and mutates some
 * values in place (a participant's role, the presence map), so the store compares fields and
 * keeps the previous snapshot when nothing differs. No React in here: it is tested on its own.
 */
import type { AccessError, AuthError, ConnectionState, Json, MontageSession, Participant, SessionEvents } from "@montage/client";

/** Another user in the session, as `useOthers` gives them. */
export interface Other<P = Json> {
  user: string;
  /** Display name (the token's `name`), when the server sends it. */
  name?: string;
  /** `#rrggbb`, stable per user, when the server sends it. */
  color?: string;
  role: string;
  /** Their latest presence (`setPresence` on their side); undefined until they set one. */
  presence: P | undefined;
}

/** What {@link useStatus} gives: the connection's state and my unacknowledged edits. */
export interface Status {
  state: ConnectionState;
  /** Local edits the server has not acknowledged yet. */
  pending: number;
}

/** Whether undo and redo are possible now (the {@link ClientStore}'s undo slice). */
export interface UndoState {
  canUndo: boolean;
  canRedo: boolean;
}

/** What {@link useSession} gives: the session, who I am in it, and why it stopped, if it did. */
export interface SessionState {
  session: string;
  /** The user this client acts as (the `user` option or the token's `sub`), when known. */
  user: string | null;
  /** My role (owner, editor, commenter, viewer) once joined; null before. */
  role: string | null;
  linkRole: string | null;
  title: string | undefined;
  /** Set while the client is out of its session (a refused join, removed, deleted). */
  accessError: AccessError | null;
  /** Set while the server refuses the token for good (status `unauthorized`). */
  authError: AuthError | null;
}

/** @inline */
type Listener = () => void;

/** Subscribes `fn` to each of `events`; returns one function removing them all. */
function onAny<D, P>(client: MontageSession<D, P>, events: readonly (keyof SessionEvents<D, P>)[], fn: Listener): () => void {
  const offs = events.map((e) => client.on(e, fn));
  return () => {
    for (const off of offs) off();
  };
}

function sameOthers(a: readonly Other<unknown>[], b: readonly Other<unknown>[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    // Presence values are replaced, never mutated, when a new one arrives: identity suffices.
    if (x.user !== y.user || x.role !== y.role || x.name !== y.name || x.color !== y.color || x.presence !== y.presence) {
      return false;
    }
  }
  return true;
}

function sameFields<T extends object>(a: T, b: T): boolean {
  for (const k of Object.keys(a) as (keyof T)[]) if (!Object.is(a[k], b[k])) return false;
  return true;
}

const DOC_EVENTS = ["change"] as const;
// `joined` is followed by `participants`; a presence arrives alone.
const OTHERS_EVENTS = ["participants", "presence"] as const;
// An edit made while online changes `pending` without a `status` event (the ack brings one).
const STATUS_EVENTS = ["status", "change"] as const;
const UNDO_EVENTS = ["change", "status", "joined"] as const;
const SESSION_EVENTS = ["joined", "role", "linkRoleChanged", "accessDenied", "unauthorized", "status"] as const;

/**
 * A session seen as the external stores `useSyncExternalStore` wants, one per slice (document,
 * others, status, undo, session, my presence): each slice has a `subscribe` and a `get` that
 * returns the same object until the slice's value changes. No React: a binding for another
 * framework can use it as it is.
 */
export class ClientStore<Doc = Json, Presence = Json> {
  /** The session the slices are read from. */
  readonly client: MontageSession<Doc, Presence>;
  private others: Other<Presence>[] = [];
  private status: Status;
  private undo: UndoState = { canUndo: false, canRedo: false };
  private sessionState: SessionState;
  private myPresence: Presence | undefined = undefined;
  private presenceListeners = new Set<Listener>();

  constructor(client: MontageSession<Doc, Presence>) {
    this.client = client;
    this.status = { state: client.connectionState, pending: client.pendingCount };
    this.sessionState = this.readSession();
  }

  // Arrow properties: React calls these unbound, and their identity must stay stable (a new
  // `subscribe` function would make React resubscribe on every render).
  /** Calls `fn` when the document may have changed; returns the unsubscribe function. */
  readonly subscribeDoc = (fn: Listener) => onAny(this.client, DOC_EVENTS, fn);
  /**
   * Calls `fn` when the other users or their presence may have changed; returns the unsubscribe
   * function.
   */
  readonly subscribeOthers = (fn: Listener) => onAny(this.client, OTHERS_EVENTS, fn);
  /**
   * Calls `fn` when the connection state or the pending count may have changed; returns the
   * unsubscribe function.
   */
  readonly subscribeStatus = (fn: Listener) => onAny(this.client, STATUS_EVENTS, fn);
  /**
   * Calls `fn` when undo or redo may have become possible or impossible; returns the unsubscribe
   * function.
   */
  readonly subscribeUndo = (fn: Listener) => onAny(this.client, UNDO_EVENTS, fn);
  /**
   * Calls `fn` when the session state (role, link role, title, errors) may have changed; returns
   * the unsubscribe function.
   */
  readonly subscribeSession = (fn: Listener) => onAny(this.client, SESSION_EVENTS, fn);
  /**
   * Calls `fn` when {@link ClientStore.setMyPresence} sets my presence; returns the unsubscribe
   * function.
   */
  readonly subscribeMyPresence = (fn: Listener) => {
    this.presenceListeners.add(fn);
    return () => void this.presenceListeners.delete(fn);
  };

  /** The document: a new object after every change (the client never mutates one it handed
   * out), null before the first join. */
  readonly getDoc = (): Doc | null => this.client.doc;

  /** Everyone online in the session but me, in the order the server listed them. */
  readonly getOthers = (): Other<Presence>[] => {
    const me = this.client.user;
    const presence = this.client.presence;
    const next: Other<Presence>[] = [];
    for (const p of this.client.participants as Participant[]) {
      if (!p.online || p.user === me) continue;
      const o: Other<Presence> = { user: p.user, role: p.role, presence: presence.get(p.user) };
      if (p.name !== undefined) o.name = p.name;
      if (p.color !== undefined) o.color = p.color;
      next.push(o);
    }
    if (!sameOthers(this.others, next)) this.others = next;
    return this.others;
  };

  /** The connection's state and pending count; the same object until either changes. */
  readonly getStatus = (): Status => {
    const next: Status = { state: this.client.connectionState, pending: this.client.pendingCount };
    if (!sameFields(this.status, next)) this.status = next;
    return this.status;
  };

  /** Whether undo and redo are possible; the same object until either changes. */
  readonly getUndo = (): UndoState => {
    const next: UndoState = { canUndo: this.client.canUndo, canRedo: this.client.canRedo };
    if (!sameFields(this.undo, next)) this.undo = next;
    return this.undo;
  };

  /** The session state; the same object until a field changes. */
  readonly getSession = (): SessionState => {
    const next = this.readSession();
    if (!sameFields(this.sessionState, next)) this.sessionState = next;
    return this.sessionState;
  };

  /** My presence as last set through `setMyPresence` (the client does not expose its own). */
  readonly getMyPresence = (): Presence | undefined => this.myPresence;

  /** Publishes my presence and tells `useMyPresence` readers. */
  readonly setMyPresence = (data: Presence): void => {
    this.myPresence = data;
    this.client.setPresence(data);
    for (const fn of [...this.presenceListeners]) fn();
  };

  private readSession(): SessionState {
    const c = this.client;
    return {
      session: c.session,
      user: c.user,
      role: c.role,
      linkRole: c.linkRole,
      title: c.title,
      accessError: c.accessError,
      authError: c.authError,
    };
  }
}
