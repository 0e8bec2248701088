/**
 * `MontageClient`: one session over its own connection — a `MontageSession` that owns its
 * `MontageConnection`. For several sessions over one socket, open a `MontageConnection` and
 * call `connection.session(id)` for each.
 *
 * The socket is injectable (`socket` option): the browser's `WebSocket` by default, Node's
 * global one where it exists (Node ≥ 22), the `ws` package's `WebSocket` class, or a factory
 * (a fake in tests).
 */
import type { Json } from "./json.js";
import { type ConnectionOptions, MontageConnection } from "./connection.js";
import { MontageSession, type SessionEvents, type SessionOptions } from "./session.js";

/**
 * Options of a {@link MontageClient}: its connection's, the session's, and which session to join.
 */
export interface ClientOptions extends ConnectionOptions, Omit<SessionOptions, "autoJoin"> {
  /** The session to join (created, with me as its owner, if it does not exist). */
  session: string;
}

/** The events of a `MontageClient` with untyped document and presence. */
export type ClientEvents = SessionEvents<Json, Json>;

/**
 * One session over its own connection: a {@link MontageSession} that owns its {@link
 * MontageConnection}, connected at construction unless `autoConnect` is false. For several sessions
 * over one socket, use a `MontageConnection` and {@link MontageConnection.session}.
 */
export class MontageClient<Doc = Json, Presence = Json> extends MontageSession<Doc, Presence> {
  constructor(opts: ClientOptions) {
    super(new MontageConnection({ ...opts, autoConnect: false }), opts.session, { ...opts, autoJoin: opts.autoConnect !== false });
  }

  /**
   * Replaces the connection's token with `token` (same user): sent as `auth` now when online
   * (answered by `authed`), and used for every later connection.
   */
  authenticate(token: string): void {
    this.connection.authenticate(token);
  }

  /** Closes the connection and stays offline (edits keep queueing locally); `connect()` comes
   * back. */
  disconnect(): void {
    this.connection.disconnect();
  }

  /** Leaves the session and closes the connection. */
  override leave(): void {
    super.leave();
    this.connection.disconnect();
  }

  /** Out of its only session: nothing is left for the socket to do. */
  protected override denied(): void {
    this.connection.disconnect();
  }
}
