/**
 * Who may see a session (docs/PROTOCOL.md "Access"), from the client's side: the roles, the error a refused
 * join turns into (`AccessError`), and typed helpers for the HTTP API (`SessionsApi`: sessions,
 * comments and suggestions, invites, uploads, the inbox).
 */
import { type Comment, type Notification, type Suggestion, readNotification } from "./protocol.js";
import { type Keyring, openAsset, sealAsset } from "./sealed.js";

/** A member's role, highest first: `owner` > `editor` > `commenter` > `viewer`. */
export type Role = "owner" | "editor" | "commenter" | "viewer";
/** What a signed-in user without a grant receives; `none` keeps the session private. */
export type LinkRole = "none" | "viewer" | "commenter" | "editor";

/** Every {@link LinkRole}, least access first (for a picker). */
export const LINK_ROLES: readonly LinkRole[] = ["none", "viewer", "commenter", "editor"];

const RANK: Record<string, number> = { none: -1, viewer: 0, commenter: 1, editor: 2, owner: 3 };

/** Does `role` include what `need` allows? (`null` and unknown roles include nothing.) */
export function roleAtLeast(role: string | null | undefined, need: Role): boolean {
  return (RANK[role ?? ""] ?? -1) >= RANK[need]!;
}

/**
 * Why the client is not in its session:
 * - `forbidden`: the join was refused: the user has no access (ask the owner to share it);
 * - `not_found`: the session does not exist (deleted, or never made where joins don't create);
 * - `removed`: the user was in the session and was taken out (the owner removed them or closed
 *   link access);
 * - `deleted`: the owner deleted the session while the user was in it.
 */
export type AccessReason = "forbidden" | "not_found" | "removed" | "deleted";

/** The session can't be joined (or no longer can): see `reason`. The server's wording is in
 * `message`. */
export class AccessError extends Error {
  readonly session: string;
  readonly reason: AccessReason;
  /** The server's error code: `forbidden` or `not_found`. */
  readonly code: "forbidden" | "not_found";
  constructor(session: string, reason: AccessReason, message: string) {
    super(message);
    this.name = "AccessError";
    this.session = session;
    this.reason = reason;
    this.code = reason === "not_found" || reason === "deleted" ? "not_found" : "forbidden";
  }
  /** Can access come back without a new session (the owner shares it again)? */
  get retryable(): boolean {
    return this.reason === "forbidden" || this.reason === "removed";
  }
}

/**
 * The user id (`sub`) a JWT names, read without checking its signature (only the server can),
 * or null when `token` is not a JWT. The client uses it to recognise messages about itself.
 */
export function tokenSubject(token: string): string | null {
  const claims = tokenClaims(token);
  return claims !== null && typeof claims["sub"] === "string" ? claims["sub"] : null;
}

/** A JWT's claims, unverified; null when `token` is not a JWT. */
export function tokenClaims(token: string): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1]!.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    return typeof claims === "object" && claims !== null && !Array.isArray(claims) ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

// ---- HTTP ------------------------------------------------------------------------------------

/** A session as `GET /v1/sessions` lists it. */
export interface SessionSummary {
  id: string;
  title: string;
  /** The caller's role in it. */
  role: Role;
  version: number;
  /** Last change, ms since the Unix epoch. */
  updated: number;
}

/** A session as `POST /v1/sessions` and `PATCH /v1/sessions/{id}` answer: the summary and the
 * session's link role (more fields may come; they are kept). */
export interface SessionInfo {
  id: string;
  title: string;
  role: Role;
  link_role?: LinkRole;
  version?: number;
  updated?: number;
  [field: string]: unknown;
}

/** An uploaded asset (`POST /v1/assets`): reference it by `id` from a layer or clip. An encrypted
 * session's upload is `kind` and `format` `"sealed"`, with no dimensions: the server can't read
 * it, so the app reads them from the file and keeps them in the (sealed) document. */
export interface AssetInfo {
  id: string;
  kind: "image" | "video" | "audio" | "sealed";
  format: string;
  /** Size in bytes as stored (an encrypted session's: the sealed bytes). */
  bytes?: number;
  /** Pixels (images, videos). */
  width?: number;
  height?: number;
  /** Seconds (videos, audio), when the file states it. */
  duration?: number;
  [field: string]: unknown;
}

/** A collaboration invite: a link carrying a role, with an expiry (`POST …/invites`). */
export interface Invite {
  id: string;
  url: string;
  session: string;
  role: Role;
  /** The only user who may accept it, or null for anyone with the link. */
  for: string | null;
  /** Seconds since the epoch. */
  expires_at: number;
  max_uses: number | null;
  uses: number;
  revoked: boolean;
  created_by: string;
  [field: string]: unknown;
}

/** A version people can return to (`GET /v1/sessions/{id}/versions`): an automatic checkpoint
 * or a named version. */
export interface Version {
  version: number;
  /** Commit time, ms since the Unix epoch; null for versions stored before servers kept times. */
  time: number | null;
  /** Who made the edit that became this version. */
  user: string;
  name?: string;
  named_by?: string;
}

/** An award (`GET /v1/users/{id}/recognition`): a badge given by the rules on contributions, or
 * recognition given by someone. */
export interface Award {
  id: string;
  session: string;
  user: string;
  /** `featured_creator`, `community_spotlight`, `achievement_badge` or `social_recognition`. */
  type: string;
  /** The badge's name (`first_edit`, `hundred_edits`, …) for achievement badges. */
  badge: string | null;
  /** null for badges. */
  awarded_by: string | null;
  /** ms since the Unix epoch. */
  at: number;
}

/** A user's recognition as the caller may see it: only of sessions the caller can view. */
export interface Recognition {
  user: string;
  badges: Award[];
  awards: Award[];
}

/** A version published to the showcase by a Featured Creator or Community Spotlight award. */
export interface ShowcaseEntry {
  award: string;
  type: "featured_creator" | "community_spotlight";
  session: string;
  title: string | null;
  /** The creator recognised. */
  user: string;
  awarded_by: string;
  /** The version shown: the head when awarded, never anything newer. */
  version: number;
  /** ms since the Unix epoch. */
  at: number;
  /** The version's picture, readable by any signed-in user (add `?tier=`). */
  preview_url: string;
}

/** An HTTP call the server refused (`{"type":"error","code","message"}`), or whose answer was
 * not what the protocol says (`code` `bad_response`). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** From `Retry-After` or `retry_after_ms` on 429. */
  readonly retryAfterMs: number | undefined;
  constructor(status: number, code: string, message: string, retryAfterMs?: number) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
  /** 403 or 404: the caller can't see (or manage) that session. */
  get accessDenied(): boolean {
    return this.status === 403 || this.status === 404;
  }
}

/** What a request body may be: JSON text, or a file's bytes (uploads). */
export type RequestBody = string | Blob | ArrayBuffer | Uint8Array;

/** The part of `fetch` that {@link SessionsApi} uses: the global `fetch` fits (a fake in tests). */
export type FetchLike = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    body?: RequestBody;
    /** Set by the download of a large state, to end a request it gave up on (a stall). */
    signal?: AbortSignal;
  },
) => Promise<{
  status: number;
  ok: boolean;
  /** The response's headers (`Retry-After` is read on a refusal). */
  headers: {
    /** The header's value, or null. */
    get(name: string): string | null;
  };
  /** The response's body as text. */
  text(): Promise<string>;
  /** The response's body as bytes (needed only by the calls that read a file: {@link
   * SessionsApi.asset}). */
  arrayBuffer?(): Promise<ArrayBuffer>;
  /** The response's body as a stream of bytes: read by the download of a large session state
   * (`joined.state_ref`), which reports progress and, after a cut, resumes with the bytes that
   * came (without it: `arrayBuffer()`, all or nothing). */
  body?: {
    /** A reader of the body's chunks. */
    getReader(): {
      /** The next chunk, or `done` at the end of the body. */
      read(): Promise<{ done: boolean; value?: Uint8Array }>;
      /** Stops reading: the rest of the body is not wanted. */
      cancel(reason?: unknown): Promise<void>;
    };
  } | null;
}>;

/** Options of a {@link SessionsApi}: the server, the token and the `fetch` to call it with. */
export interface SessionsApiOptions {
  /** The server's origin, e.g. `http://localhost:7070`; `""` (the default) for the page's own. */
  baseUrl?: string;
  /** The bearer token, or a function giving the current one (called for every request). */
  token: string | (() => string | Promise<string>);
  /** `fetch` by default. */
  fetch?: FetchLike;
}

/**
 * Typed calls of the session-management HTTP API (docs/PROTOCOL.md "Access"). Every method throws `ApiError`
 * when the server refuses (401, 403, 404, 400, 429…).
 *
 * ```ts
 * const api = new SessionsApi({ token: () => getToken() });
 * const s = await api.create({ title: "Poster" });   // private: link_role "none"
 * await api.update(s.id, { link_role: "viewer" });    // anyone with the link can view
 * for (const x of await api.list()) console.log(x.id, x.title, x.role);
 * await api.delete(s.id);
 * ```
 */
export class SessionsApi {
  private readonly base: string;
  private readonly token: () => string | Promise<string>;
  private readonly doFetch: FetchLike;

  constructor(opts: SessionsApiOptions) {
    this.base = (opts.baseUrl ?? "").replace(/\/+$/, "");
    const t = opts.token;
    this.token = typeof t === "function" ? t : () => t;
    const g = globalThis as { fetch?: FetchLike };
    if (opts.fetch === undefined && g.fetch === undefined) throw new Error("no global fetch here: pass the `fetch` option");
    // The browser's fetch must not be called as a method of another object ("Illegal invocation").
    this.doFetch = opts.fetch ?? ((url, init) => g.fetch!(url, init));
  }

  /** `GET /v1/sessions`: the caller's sessions (owned or granted). */
  async list(): Promise<SessionSummary[]> {
    const body = await this.call("GET", "/v1/sessions", 200);
    const list = (body as { sessions?: unknown })?.sessions;
    if (!Array.isArray(list)) throw badResponse("GET /v1/sessions", "no `sessions` list");
    return list.map((s) => summary(s, "GET /v1/sessions"));
  }

  /** `POST /v1/sessions`: a new session the caller owns (private unless `link_role` says; end-to-end encrypted with `encrypted`, docs/E2E.md). */
  async create(opts: { title?: string; link_role?: LinkRole; encrypted?: boolean } = {}): Promise<SessionInfo> {
    return info(await this.call("POST", "/v1/sessions", 201, opts), "POST /v1/sessions");
  }

  /** `PATCH /v1/sessions/{id}` (owner): opens or closes link access, renames. */
  async update(id: string, patch: { link_role?: LinkRole; title?: string }): Promise<SessionInfo> {
    const what = `PATCH /v1/sessions/${id}`;
    return info(await this.call("PATCH", `/v1/sessions/${encodeURIComponent(id)}`, 200, patch), what);
  }

  /** `DELETE /v1/sessions/{id}` (owner): the session and everything in it are gone. */
  async delete(id: string): Promise<void> {
    await this.call("DELETE", `/v1/sessions/${encodeURIComponent(id)}`, 204);
  }

  /** `GET /v1/sessions/{id}/comments`: every comment in creation order (tombstones too). */
  async comments(id: string): Promise<Comment[]> {
    return listOf<Comment>(await this.call("GET", `${sessionPath(id)}/comments`, 200), "comments", `GET ${sessionPath(id)}/comments`);
  }

  /** `GET /v1/sessions/{id}/suggestions`: every suggestion in creation order. */
  async suggestions(id: string): Promise<Suggestion[]> {
    return listOf<Suggestion>(await this.call("GET", `${sessionPath(id)}/suggestions`, 200), "suggestions", `GET ${sessionPath(id)}/suggestions`);
  }

  /** `GET /v1/sessions/{id}[?version=V]`: the committed head, or the document at a past version
   * still in history (viewer or above). */
  async state(id: string, version?: number): Promise<{ version: number; state: Record<string, unknown> }> {
    const q = version === undefined ? "" : `?version=${version}`;
    const what = `GET ${sessionPath(id)}${q}`;
    const b = (await this.call("GET", `${sessionPath(id)}${q}`, 200)) as { version?: unknown; state?: unknown } | null;
    if (typeof b?.version !== "number" || typeof b.state !== "object" || b.state === null) throw badResponse(what, "no version and state");
    return { version: b.version, state: b.state as Record<string, unknown> };
  }

  /** `GET /v1/sessions/{id}/versions`: checkpoints and named versions below `before` (all by
   * default), newest first, at most `limit` (≤ 200). */
  async versions(id: string, opts: { before?: number; limit?: number } = {}): Promise<Version[]> {
    const q = new URLSearchParams();
    if (opts.before !== undefined) q.set("before", String(opts.before));
    if (opts.limit !== undefined) q.set("limit", String(opts.limit));
    const path = `${sessionPath(id)}/versions${q.size > 0 ? `?${q}` : ""}`;
    return listOf<Version>(await this.call("GET", path, 200), "versions", `GET ${path}`);
  }

  /** `POST /v1/sessions/{id}/versions` (editor or above): names a version ("sent to client"). */
  async nameVersion(id: string, version: number, name: string): Promise<void> {
    await this.call("POST", `${sessionPath(id)}/versions`, 201, { version, name });
  }

  /**
   * `POST /v1/sessions/{id}/restore` (editor or above): one edit of the caller's that turns the
   * head into `version`'s state — or, with `id`, brings back only that layer, track or clip.
   * Resolves to the new version once it is durable; every open session sees it as an `op`.
   */
  async restore(id: string, version: number, opts: { id?: string } = {}): Promise<number> {
    const body = opts.id === undefined ? { version } : { version, id: opts.id };
    const b = (await this.call("POST", `${sessionPath(id)}/restore`, 200, body)) as { version?: unknown } | null;
    if (typeof b?.version !== "number") throw badResponse(`POST ${sessionPath(id)}/restore`, "no version");
    return b.version;
  }

  /**
   * `GET /v1/notifications`: the caller's inbox, newest first, at most `limit` (≤ 100, the
   * default); `unread` keeps unread items only; `before` (ms) pages on with the last item's
   * `time`. A token scoped to some sessions sees only their items.
   */
  async notifications(opts: { unread?: boolean; before?: number; limit?: number } = {}): Promise<Notification[]> {
    const q = new URLSearchParams();
    if (opts.unread === true) q.set("unread", "true");
    if (opts.before !== undefined) q.set("before", String(opts.before));
    if (opts.limit !== undefined) q.set("limit", String(opts.limit));
    const path = `/v1/notifications${q.size > 0 ? `?${q}` : ""}`;
    return listOf<unknown>(await this.call("GET", path, 200), "notifications", `GET ${path}`).map((v) => {
      const n = readNotification(v);
      if (n === null) throw badResponse(`GET ${path}`, "a notification without an id, kind or session");
      return n;
    });
  }

  /** `POST /v1/notifications/read`: marks the caller's items `ids` (≤ 1,000), or `"all"` of
   * them, read; resolves to how many were unread before. */
  async markRead(ids: readonly string[] | "all"): Promise<number> {
    const body = ids === "all" ? { all: true } : { ids: [...ids] };
    const b = (await this.call("POST", "/v1/notifications/read", 200, body)) as { marked?: unknown } | null;
    if (typeof b?.marked !== "number") throw badResponse("POST /v1/notifications/read", "no `marked` count");
    return b.marked;
  }

  /** `GET /v1/users/{id}/recognition`: `user`'s badges and awards in the sessions the caller
   * may view. */
  async recognition(user: string): Promise<Recognition> {
    const path = `/v1/users/${encodeURIComponent(user)}/recognition`;
    const b = (await this.call("GET", path, 200)) as Partial<Recognition> | null;
    if (!Array.isArray(b?.badges) || !Array.isArray(b.awards)) throw badResponse(`GET ${path}`, "no badges and awards");
    return { user: typeof b.user === "string" ? b.user : user, badges: b.badges, awards: b.awards };
  }

  /** `GET /v1/showcase`: featured creators and spotlighted projects, newest first, at most
   * `limit` (≤ 200, 50 by default); `before` (ms) pages on with the last entry's `at`. */
  async showcase(opts: { before?: number; limit?: number } = {}): Promise<ShowcaseEntry[]> {
    const q = new URLSearchParams();
    if (opts.before !== undefined) q.set("before", String(opts.before));
    if (opts.limit !== undefined) q.set("limit", String(opts.limit));
    const path = `/v1/showcase${q.size > 0 ? `?${q}` : ""}`;
    return listOf<ShowcaseEntry>(await this.call("GET", path, 200), "showcase", `GET ${path}`);
  }

  /** `POST /v1/sessions/{id}/invites` (editor or above): a link giving `role` (at most
   * `commenter` unless bound to a user with `for`). */
  async createInvite(id: string, opts: { role: Exclude<Role, "owner">; expires_in_s?: number; max_uses?: number; for?: string }): Promise<Invite> {
    return (await this.call("POST", `${sessionPath(id)}/invites`, 201, opts)) as Invite;
  }

  /** `GET /v1/sessions/{id}/invites` (editor or above). */
  async invites(id: string): Promise<Invite[]> {
    return listOf<Invite>(await this.call("GET", `${sessionPath(id)}/invites`, 200), "invites", `GET ${sessionPath(id)}/invites`);
  }

  /** `GET /v1/invites/{id}`: what an invite gives (the id is the secret). */
  async invite(inviteId: string): Promise<Invite> {
    return (await this.call("GET", `/v1/invites/${encodeURIComponent(inviteId)}`, 200)) as Invite;
  }

  /** `POST /v1/invites/{id}/accept`: the session and the role the caller holds now. */
  async acceptInvite(inviteId: string): Promise<{ session: string; role: Role }> {
    return (await this.call("POST", `/v1/invites/${encodeURIComponent(inviteId)}/accept`, 200)) as { session: string; role: Role };
  }

  /** `DELETE /v1/invites/{id}` (its creator or an owner). */
  async revokeInvite(inviteId: string): Promise<void> {
    await this.call("DELETE", `/v1/invites/${encodeURIComponent(inviteId)}`, 200);
  }

  /**
   * `POST /v1/assets[?session=S]`: stores an image (PNG, JPEG, WebP), video or audio file; its
   * kind is read from the bytes. With `session` the caller must be an editor there.
   */
  async uploadAsset(body: Blob | ArrayBuffer | Uint8Array, opts: { session?: string } = {}): Promise<AssetInfo> {
    const q = opts.session === undefined ? "" : `?session=${encodeURIComponent(opts.session)}`;
    const a = (await this.call("POST", `/v1/assets${q}`, 201, body)) as Record<string, unknown> | null;
    if (typeof a !== "object" || a === null || typeof a["id"] !== "string") throw badResponse("POST /v1/assets", "no asset id in the answer");
    return a as AssetInfo;
  }

  /**
   * Seals `file` for the encrypted session `session` under `keys`' key of `epoch` (the session's
   * current key epoch: {@link sealAsset}) and uploads the sealed bytes (`POST
   * /v1/assets?session=S`). The answer is `kind` `"sealed"` without dimensions. Throws a
   * `no_key` `SealError` without that key; the server refuses (`ApiError`) an epoch that is not
   * the session's: `conflict` for a retired one.
   */
  async uploadSealedAsset(session: string, keys: Keyring, epoch: number, file: Blob | ArrayBuffer | Uint8Array): Promise<AssetInfo> {
    return this.uploadAsset(sealAsset(keys, epoch, session, await bytesOf(file)), { session });
  }

  /** `GET /v1/assets/{id}`: the asset's bytes as stored (an encrypted session's come sealed:
   * {@link SessionsApi.openSealedAsset}). */
  async asset(id: string): Promise<Uint8Array<ArrayBuffer>> {
    const path = `/v1/assets/${encodeURIComponent(id)}`;
    const r = await this.doFetch(this.base + path, { method: "GET", headers: { Authorization: `Bearer ${await this.token()}` } });
    if (!r.ok) throw errorOf(r.status, await r.text(), r.headers.get("retry-after"));
    if (r.status !== 200) throw new ApiError(r.status, "bad_response", `GET ${path}: status ${r.status}, expected 200`);
    if (r.arrayBuffer === undefined) throw new Error("the `fetch` given answers no arrayBuffer(): asset bytes can't be read with it");
    return new Uint8Array(await r.arrayBuffer());
  }

  /**
   * An encrypted session's asset, fetched ({@link SessionsApi.asset}) and opened with `keys`
   * ({@link openAsset}): the file as it was uploaded. Throws an `ApiError` if the server refuses,
   * a `SealError` if the bytes don't open (`no_key`, `tampered`, or `malformed`: not sealed).
   */
  async openSealedAsset(id: string, session: string, keys: Keyring): Promise<Uint8Array<ArrayBuffer>> {
    return openAsset(keys, session, await this.asset(id));
  }

  private async call(method: string, path: string, want: number, body?: object): Promise<unknown> {
    const headers: Record<string, string> = { Authorization: `Bearer ${await this.token()}` };
    const init: { method: string; headers: Record<string, string>; body?: RequestBody } = { method, headers };
    if (body instanceof ArrayBuffer || body instanceof Uint8Array || (typeof Blob !== "undefined" && body instanceof Blob)) {
      headers["Content-Type"] = "application/octet-stream";
      init.body = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await this.doFetch(this.base + path, init);
    const text = await r.text();
    if (!r.ok) throw errorOf(r.status, text, r.headers.get("retry-after"));
    if (r.status !== want && !(want === 204 && r.status === 200)) {
      throw new ApiError(r.status, "bad_response", `${method} ${path}: status ${r.status}, expected ${want}`);
    }
    if (want === 204 || text === "") return null;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw badResponse(`${method} ${path}`, "the answer is not JSON");
    }
  }
}

/** A file's bytes (a Blob is read; an ArrayBuffer is viewed, not copied). */
async function bytesOf(file: Blob | ArrayBuffer | Uint8Array): Promise<Uint8Array> {
  if (file instanceof Uint8Array) return file;
  if (file instanceof ArrayBuffer) return new Uint8Array(file);
  return new Uint8Array(await file.arrayBuffer());
}

function sessionPath(id: string): string {
  return `/v1/sessions/${encodeURIComponent(id)}`;
}

function listOf<T>(body: unknown, key: string, what: string): T[] {
  const list = (body as Record<string, unknown> | null)?.[key];
  if (!Array.isArray(list)) throw badResponse(what, `no \`${key}\` list`);
  return list as T[];
}

/** @internal The `ApiError` of a refusal: the server's `{"code","message"}` body, or the status. */
export function errorOf(status: number, text: string, retryAfter: string | null): ApiError {
  let code = status === 401 ? "unauthorized" : status === 403 ? "forbidden" : status === 404 ? "not_found" : status === 429 ? "rate_limited" : "http_error";
  let message = `HTTP ${status}`;
  let retryMs: number | undefined;
  try {
    const j = JSON.parse(text) as { code?: unknown; message?: unknown; retry_after_ms?: unknown };
    if (typeof j.code === "string") code = j.code;
    if (typeof j.message === "string") message = j.message;
    if (typeof j.retry_after_ms === "number") retryMs = j.retry_after_ms;
  } catch {
    if (text.trim()) message = `HTTP ${status}: ${text.trim().slice(0, 200)}`;
  }
  if (retryMs === undefined && retryAfter !== null && Number.isFinite(Number(retryAfter))) retryMs = Number(retryAfter) * 1000;
  return new ApiError(status, code, message, retryMs);
}

function badResponse(what: string, why: string): ApiError {
  return new ApiError(200, "bad_response", `${what}: ${why}`);
}

function summary(v: unknown, what: string): SessionSummary {
  const s = v as Record<string, unknown> | null;
  if (typeof s !== "object" || s === null || typeof s["id"] !== "string") throw badResponse(what, "a session without an id");
  return {
    id: s["id"],
    title: typeof s["title"] === "string" ? s["title"] : "",
    role: String(s["role"] ?? "viewer") as Role,
    version: Number(s["version"] ?? 0),
    updated: Number(s["updated"] ?? 0),
  };
}

function info(v: unknown, what: string): SessionInfo {
  const s = v as Record<string, unknown> | null;
  if (typeof s !== "object" || s === null || typeof s["id"] !== "string") throw badResponse(what, "no session id in the answer");
  return { ...s, id: s["id"], title: typeof s["title"] === "string" ? s["title"] : "", role: String(s["role"] ?? "owner") as Role };
}
