/**
 * Wire shapes of protocol v1 that the SDK hands to apps (docs/PROTOCOL.md; the Rust types in
 * `crates/protocol/src/{message,social,error}.rs` are the truth), and the errors the SDK raises.
 */
import type { Role } from "./access.js";

/** The subprotocol of the binary form (docs/PROTOCOL.md "Binary frames"). */
export const BINARY_SUBPROTOCOL = "montage.v1.proto";
/** The subprotocol of the JSON form (the default). */
export const JSON_SUBPROTOCOL = "montage.v1.json";

/** The `code` of a server `error` frame (docs/PROTOCOL.md, `ErrorCode` in crates/protocol). */
export type ServerErrorCode =
  | "unauthorized"
  | "forbidden"
  | "bad_request"
  | "not_found"
  | "rate_limited"
  | "too_large"
  | "conflict"
  | "not_supported"
  | "internal";

/**
 * Every code an `error` event, a rejected edit or a failed request carries: the server's, plus
 * the client's own — `bad_frame` (the server sent a frame that is not JSON), `desync` (the
 * replica could not follow the server and reloads), `resync` (a full reload dropped
 * unacknowledged edits), `disconnected` (the socket closed before a request was answered; it
 * may or may not have been applied), `offline` (a request made while not joined: not sent).
 */
export type ErrorCode = ServerErrorCode | "bad_frame" | "desync" | "resync" | "disconnected" | "offline";

/** A connection-quality tier (docs/PROTOCOL.md). */
export type Tier = "excellent" | "good" | "fair" | "poor";

/** The tier a downlink of `mbps` Mbit/s gets (DESIGN §7): over 50 excellent, from 10 good, from 5
 * fair, else poor. */
export function tierForMbps(mbps: number): Tier {
  if (mbps > 50) return "excellent";
  if (mbps >= 10) return "good";
  if (mbps >= 5) return "fair";
  return "poor";
}

/** A rectangle in pixels (W3C media fragment `xywh=`). */
export interface Region {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Where a comment points (docs/PROTOCOL.md): a region, a time range, a drawing, and what it follows. */
export interface Annotation {
  region?: Region;
  /** Seconds (W3C media fragment `t=`). */
  time?: { start: number; end: number };
  drawing?: unknown;
  /** A layer or clip id the anchor follows. */
  target?: string;
  /** Set by the server when the target was deleted. */
  orphaned?: boolean;
}

/** What `comment` sends; the server adds id, author, timestamp and state. */
export interface NewComment {
  content: string;
  parent_id?: string;
  asset_id?: string;
  annotations?: Annotation[];
}

/** A comment as the server sends it (`comment_added`, `comment_updated`, `GET …/comments`). */
export interface Comment {
  id: string;
  /** `""` when the comment is about the session's canvas/timeline. */
  asset_id: string;
  author_id: string;
  content: string;
  /** RFC 3339, UTC. */
  timestamp: string;
  parent_id?: string;
  annotations: Annotation[];
  resolved: boolean;
  deleted: boolean;
  edited: boolean;
  /** emoji → users (sorted). */
  reactions: Record<string, string[]>;
  mentions: string[];
}

/** A suggested edit (`suggestion_added`, `suggestion_updated`, `GET …/suggestions`). */
export interface Suggestion {
  id: string;
  author_id: string;
  base: number;
  /** Wire components, as stored (decode with `decodeOp`). */
  ops: unknown[];
  note: string;
  status: "pending" | "accepted" | "rejected";
  timestamp: string;
  /** The version an accepted suggestion was applied as. */
  version?: number;
  credited?: string;
  decided_by?: string;
}

/** A newer committed version of a subscribed session can be fetched at `url` (same token). */
export interface PreviewEvent {
  session: string;
  version: number;
  tier: Tier;
  /** As the server sent it: a path on the server (`/v1/sessions/…/preview?tier=…&v=…`). */
  url: string;
  /** `url` made absolute against the server's HTTP origin. */
  href: string;
  /** The playhead shown (a timeline subscription): `url` is then the composite frame there. */
  t?: number;
}

/** A Task Manager task (`task` frames, `GET /v1/tasks/{id}`). */
export interface TaskInfo {
  id: string;
  kind: string;
  state: "pending" | "running" | "succeeded" | "failed" | "dead";
  attempts: number;
  max_attempts: number;
  session: string | null;
  created_by: string;
  created_at: number;
  updated_at: number;
  next_run_at?: number;
  last_error?: string;
  connector?: unknown;
}

/** What a {@link Notification} is about (docs/PROTOCOL.md "Notifications"). */
export type NotificationKind =
  | "mention"
  | "reply"
  | "invite"
  | "role_changed"
  | "award"
  | "suggestion_accepted"
  | "suggestion_rejected";

/**
 * One item of the user's inbox (`GET /v1/notifications`, and live as the connection's
 * `notification` event). A burst of replies in one thread is one unread item: it comes again,
 * same `id`, with a higher `count` and the latest `actor`, `time` and `comment_id`.
 */
export interface Notification {
  id: string;
  kind: NotificationKind;
  /** The session it happened in. */
  session: string;
  /** Who caused it (`montage` for a badge the server gave); the latest one of a grouped item. */
  actor: string;
  /** Milliseconds since the Unix epoch (the latest event of a grouped item). */
  time: number;
  read: boolean;
  /** `mention`: the comment naming me; `reply`: the newest reply. */
  comment_id?: string;
  /** `invite`, `role_changed`: the role given (`none`: removed). */
  role?: Role | "none";
  /** How many events the item stands for (1 but for grouped replies). */
  count: number;
}

/**
 * @internal A notification as received, or null when `v` lacks what every item has (an id, a
 * kind, a session). A kind this SDK does not know yet is kept: a newer server may send one.
 */
export function readNotification(v: unknown): Notification | null {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const n = v as Record<string, unknown>;
  if (typeof n["id"] !== "string" || typeof n["kind"] !== "string" || typeof n["session"] !== "string") return null;
  const out: Notification = {
    ...(n as object),
    id: n["id"],
    kind: n["kind"] as NotificationKind,
    session: n["session"],
    actor: typeof n["actor"] === "string" ? n["actor"] : "",
    time: typeof n["time"] === "number" ? n["time"] : 0,
    read: n["read"] === true,
    count: typeof n["count"] === "number" ? n["count"] : 1,
  };
  return out;
}

/** The connection's tier as the server announces it (`tier`). */
export interface TierEvent {
  tier: Tier;
  fps: number;
  resolution: [number, number];
}

/** A request the server refused (an `error` frame answering it), or one that could not be
 * sent or answered (`offline`, `disconnected`). */
export class ServerError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterMs: number | undefined;
  constructor(code: ErrorCode, message: string, retryAfterMs?: number) {
    super(message);
    this.name = "ServerError";
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The close code of a socket the server closed for its token (missing, invalid, expired, or
 * replaced by another user's). */
export const CLOSE_UNAUTHORIZED = 4401;

/**
 * The server does not take the connection's token, and the client stopped trying: a fixed token
 * was refused, or a fresh one from the token function was refused right after the first. `reason`
 * is the server's close reason (`token expired`, `invalid token`, `missing token`, …).
 * `connect()` tries again.
 */
export class AuthError extends Error {
  readonly code = "unauthorized" as const;
  readonly reason: string;
  readonly closeCode: number;
  constructor(reason: string, closeCode: number = CLOSE_UNAUTHORIZED) {
    super(`unauthorized: ${reason || "the server refused the token"}`);
    this.name = "AuthError";
    this.reason = reason;
    this.closeCode = closeCode;
  }
}
