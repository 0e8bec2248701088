/**
 * The demo editor page served by `montage serve` at `/`: several people edit one picture
 * canvas together over protocol v1, through `@montage/client` (web/client).
 *
 * Plain DOM, no framework: the document is re-drawn from the client's replica on every change
 * (it is small: a handful of layers), and the server's rendered preview sits under the layer
 * outlines. Every protocol request goes through the SDK's typed methods; the document: docs/PROTOCOL.md "The document".
 *
 * An end-to-end encrypted session (docs/E2E.md) is opened when the link's fragment carries its
 * key (`#key=…`, never sent to a server): the SDK seals edits, comments and uploaded pictures, the
 * server can render nothing, so the page draws from the replica only — pictures it fetches and
 * opens itself into a canvas under the outlines, text layers as elements — and offers no
 * previews, history or frames.
 */
import {
  type AccessError,
  type AssetInfo,
  type Comment,
  type ImageLayer,
  Keyring,
  type LinkRole,
  MontageClient,
  type MontageDocument,
  type Op,
  type Participant,
  type Recognition,
  type Role,
  ApiError,
  SealError,
  ServerError,
  SessionKey,
  type SessionInfo,
  type SessionSummary,
  SessionsApi,
  type TextLayer,
  type Tier,
  type Version,
  del,
  ins,
  layerPath,
  media,
  mov,
  pictureRefusal,
  roleAtLeast,
  set,
  textChange,
  textInsert,
  tokenClaims,
  tokenSubject,
} from "../../client/src/index.js";
import { $, h, why } from "./dom.js";
import * as inbox from "./inbox.js";
import * as timeline from "./timeline.js";

// ---- small helpers ---------------------------------------------------------------------------

type Rect = { x: number; y: number; w: number; h: number };
/** What each page publishes: its pointer in canvas pixels, the layers it has selected, and its
 * place on the timeline. */
interface Presence {
  cursor: { x: number; y: number } | null;
  selection: string[];
  /** Where my timeline playhead is, in seconds (`timeline.ts`). */
  playhead?: number;
  /** A clip I am dragging, shown where it is until the drop. */
  drag?: timeline.Drag | null;
}
type Client = MontageClient<MontageDocument, Presence>;

function num(v: unknown, d = 0): number {
  return typeof v === "number" && Number.isFinite(v) ? v : d;
}
/** A stable colour per user, when the server sends none. */
function colorOf(user: string): string {
  let x = 0;
  for (const c of user) x = (x * 31 + c.codePointAt(0)!) >>> 0;
  const hue = x % 360;
  const f = (n: number) => {
    const k = (n + hue / 30) % 12;
    const c = 0.45 - 0.45 * 0.9 * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(255 * c).toString(16).padStart(2, "0");
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}
/** Shows or hides a control (a hidden control is also disabled, so no key reaches it). */
function show(id: string, visible: boolean): void {
  const el = $(id);
  el.hidden = !visible;
  if ("disabled" in el && !(el instanceof HTMLLabelElement)) (el as HTMLButtonElement).disabled = !visible;
}
/** Places an element over the canvas at `r` (canvas pixels) shown at scale `k`. */
function place(el: HTMLElement, r: Rect, k: number): void {
  el.style.left = `${r.x * k}px`;
  el.style.top = `${r.y * k}px`;
  el.style.width = `${r.w * k}px`;
  el.style.height = `${r.h * k}px`;
}
function closeShareDialog(): void {
  const dlg = $<HTMLDialogElement>("share-dialog");
  if (dlg.open) dlg.close();
}
function closeHistoryDialog(): void {
  const dlg = $<HTMLDialogElement>("history-dialog");
  if (dlg.open) dlg.close();
}
/** A request made while not joined: the SDK sent nothing. */
const notSent = (e: unknown) => e instanceof ServerError && e.code === "offline";

// ---- state -----------------------------------------------------------------------------------

let client: Client | null = null;
let token = "";
/** How a fresh token is had: from the dev endpoint again (`--dev`), or only the pasted one. */
let tokenSource: { dev: true; name: string } | { dev: false } = { dev: false };
let me = "";
const sessionsApi = new SessionsApi({ token: () => freshToken() });
/** Set while this page deletes its session: its own `session_deleted` is expected then. */
let deleting = false;
/** A new session's title, written into its document once joined. */
let pendingTitle: string | null = null;
let sessionId = "";
/** My role in the open session; null while out of it. */
let role: string | null = null;
let selected: string | null = null;
let commentMode = false;
const comments = new Map<string, Comment>();
let previewUrl: string | null = null;
/** The open session's key (its text, as in the link's `#key=` fragment) when it is end-to-end
 * encrypted; null for a plain session. */
let sessionKey: string | null = null;
/**
 * An encrypted session's pictures by asset id, fetched, opened and decoded once each (the server
 * renders nothing of such a session): `loading` (queued or under way), `ready` with the decoded
 * picture, or `failed` — `decrypt` (it does not open with the session's keys: a wrong key, or
 * bytes changed on the server), `no_key` (sealed under a key epoch this link has no key for),
 * `decode` (it opens, but is no picture this browser reads) or `fetch` (not loaded; tried again
 * shortly unless the server refused it for good).
 */
type PictureFailure = "decrypt" | "no_key" | "decode" | "fetch";
type Picture = { state: "loading" } | { state: "ready"; bitmap: ImageBitmap } | { state: "failed"; why: PictureFailure; message: string };
const pictures = new Map<string, Picture>();

function doc(): MontageDocument | null {
  // Out of the session (no access, deleted, undecryptable): its replica is not shown any more.
  if (client === null || client.accessError !== null || client.sealError !== null) return null;
  return client.doc;
}
/** Whether the open session is end-to-end encrypted (opened with its key). */
function encrypted(): boolean {
  return client?.encrypted ?? false;
}
/** The picture layers: the only kind this page shows. */
function layers(): ImageLayer[] {
  return (doc()?.canvas.layers ?? []).filter((l): l is ImageLayer => l.kind === "image");
}
function layerOf(id: string | null): ImageLayer | undefined {
  return id === null ? undefined : layers().find((l) => l.id === id);
}
/** An encrypted session's text layers: with no server preview to show them, the page draws
 * them itself (a plain session's text shows in its preview). */
function textLayers(): TextLayer[] {
  if (!encrypted()) return [];
  return (doc()?.canvas.layers ?? []).filter((l): l is TextLayer => l.kind === "text");
}
function textOf(id: string | null): TextLayer | undefined {
  return id === null ? undefined : textLayers().find((l) => l.id === id);
}
/** Where a text layer's box is drawn, in canvas pixels (its text's width estimated). */
function textRect(l: TextLayer): Rect {
  const size = Math.max(1, num(l.size, 48));
  const chars = [...(typeof l.text === "string" ? l.text : "")].length;
  return { x: num(l.x), y: num(l.y), w: Math.max(size, chars * size * 0.6), h: size * 1.25 };
}
/** A layer the page shows (a picture, or an encrypted session's text), by id. */
function shownLayer(id: string | null): { id: string; x: number; y: number } | undefined {
  return layerOf(id) ?? textOf(id);
}
function person(user: string): Participant | undefined {
  return client?.participants.find((p) => p.user === user);
}
function notice(text: string): void {
  $("notice").textContent = text;
}

/** Submits the edit `make` builds on the current document; a refusal (a layer gone, an edit the
 * local engine rejects) is shown, not thrown. */
function edit(make: (d: MontageDocument) => Op): void {
  const d = doc();
  if (client === null || d === null) return;
  try {
    const op = make(d);
    if (op.length === 0) return;
    client.submit(op);
    notice("");
  } catch (e) {
    notice(`Edit refused: ${(e as Error).message}`);
  }
}

async function errorText(r: Response): Promise<string> {
  try {
    const j = (await r.json()) as { message?: string; code?: string };
    return `${j.code ?? r.status}: ${j.message ?? r.statusText}`;
  } catch {
    return `${r.status} ${r.statusText}`;
  }
}

// ---- sign in ----------------------------------------------------------------------------------

/** A token from `POST /v1/dev/token`: a `--dev` server's sign-in, not part of the SDK. */
async function devToken(name: string): Promise<string> {
  const r = await fetch("/v1/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: name, name }),
  });
  if (!r.ok) throw new Error(await errorText(r));
  return ((await r.json()) as { token: string }).token;
}

/**
 * A token good for a while: the current one while it has more than two minutes left, else a new
 * one from the dev endpoint (a pasted token can't be renewed: it is used until it expires).
 * The client calls this before every connection and when the server says the token expires.
 */
async function freshToken(): Promise<string> {
  const exp = Number(tokenClaims(token)?.["exp"] ?? 0);
  if (!tokenSource.dev || exp * 1000 - Date.now() > 120_000) return token;
  token = await devToken(tokenSource.name);
  return token;
}

async function signIn(ev: Event): Promise<void> {
  ev.preventDefault();
  const err = $("signin-error");
  err.textContent = "";
  const name = $<HTMLInputElement>("signin-name").value.trim();
  const session = $<HTMLInputElement>("signin-session").value.trim();
  const pasted = $<HTMLInputElement>("signin-token").value.trim();
  if (!name) return;
  if (pasted) {
    token = pasted;
    tokenSource = { dev: false };
  } else {
    try {
      token = await devToken(name);
    } catch (e) {
      err.textContent = `Could not sign in (${(e as Error).message}). Paste a token from \`montage token ${name}\` instead.`;
      return;
    }
    tokenSource = { dev: true, name };
  }
  me = tokenSubject(token) ?? name;
  let target = session;
  const invite = new URLSearchParams(location.search).get("invite");
  if (invite) {
    try {
      target = (await sessionsApi.acceptInvite(invite)).session;
    } catch (e) {
      err.textContent = `The invite could not be accepted (${why(e)}).`;
      return;
    }
  }
  sessionStorage.setItem("montage.signin", JSON.stringify({ name, session: target }));
  $("signin").hidden = true;
  $("my-sessions").hidden = false;
  inbox.signedIn();
  // An encrypted session's key comes in the link's fragment (an invite link's too).
  if (target) open(target, keyInFragment(location.hash) ?? storedKey(target));
  else void showSessions();
}

// ---- the sessions list -------------------------------------------------------------------------

function showView(view: "signin" | "sessions" | "editor" | "no-access"): void {
  $("signin").hidden = view !== "signin";
  $("sessions").hidden = view !== "sessions";
  $("editor").hidden = view !== "editor";
  $("no-access").hidden = view !== "no-access";
}

function setUrl(session: string | null): void {
  const url = session === null ? "/" : `/?session=${encodeURIComponent(session)}${keyFragment()}`;
  history.replaceState(null, "", url);
}

// ---- keys of encrypted sessions ------------------------------------------------------------------

/** The key in a link's fragment (`#key=KEY`, or a keyring `#key=0:KEY,1:KEY`), or null. */
function keyInFragment(hash: string): string | null {
  const k = new URLSearchParams(hash.replace(/^#/, "")).get("key")?.trim() ?? "";
  return k === "" ? null : k;
}
/** The open session's key as a link's fragment (empty for a plain session). */
function keyFragment(): string {
  return sessionKey === null ? "" : `#key=${sessionKey}`;
}
/** Keys of encrypted sessions this browser has opened, kept in it (never sent anywhere), so the
 * sessions list and notifications open them again. */
const KEY_STORE = "montage.key.";
function storedKey(session: string): string | null {
  try {
    return localStorage.getItem(KEY_STORE + session);
  } catch {
    return null;
  }
}
function storeKey(session: string, key: string): void {
  try {
    localStorage.setItem(KEY_STORE + session, key);
  } catch {
    // no storage (private mode): the link still carries the key
  }
}

async function showSessions(): Promise<void> {
  closeSession();
  setUrl(null);
  showView("sessions");
  // No connection here to hear new items: the inbox is read once.
  void inbox.refresh();
  $("session-label").textContent = "";
  const status = $("sessions-status");
  status.textContent = "Loading…";
  let list: SessionSummary[];
  try {
    list = await sessionsApi.list();
  } catch (e) {
    status.textContent = `Your sessions could not be listed (${why(e)}).`;
    return;
  }
  list.sort((a, b) => b.updated - a.updated);
  status.textContent = list.length === 0 ? "No sessions yet: make one." : "";
  const ul = $("session-list");
  ul.replaceChildren();
  for (const x of list) {
    const li = h("li", { "data-session": x.id });
    const name = x.title || "Untitled";
    const when = x.updated > 0 ? new Date(x.updated).toLocaleString() : "";
    const button = h("button", { type: "button", "aria-label": `Open ${name}` }, "Open");
    button.addEventListener("click", () => open(x.id));
    li.append(
      h("span", { class: "name", title: x.id }, storedKey(x.id) === null ? name : `${name} (encrypted)`),
      h("span", { class: "pill" }, x.role),
      h("span", { class: "muted" }, `v${x.version}${when ? ` · ${when}` : ""}`),
      button,
    );
    ul.append(li);
  }
}

async function newSession(ev: Event): Promise<void> {
  ev.preventDefault();
  const input = $<HTMLInputElement>("new-title");
  const title = input.value.trim();
  const status = $("sessions-status");
  status.textContent = "Creating…";
  try {
    const s = await sessionsApi.create(title ? { title } : {});
    input.value = "";
    status.textContent = "";
    pendingTitle = title || null;
    open(s.id);
  } catch (e) {
    status.textContent = `The session could not be created (${why(e)}).`;
  }
}

/**
 * A new end-to-end encrypted session: its key is made here (`SessionKey.generate()`) and kept in
 * the page's address (`#key=…`) and share links; the server gets no title (it goes into the
 * sealed document once joined).
 */
async function newEncryptedSession(): Promise<void> {
  const input = $<HTMLInputElement>("new-title");
  const title = input.value.trim();
  const status = $("sessions-status");
  status.textContent = "Creating…";
  const key = SessionKey.generate().toText();
  let s: SessionInfo;
  try {
    // `encrypted` is chosen at creation (docs/PROTOCOL.md "Encrypted sessions").
    s = await sessionsApi.create({ encrypted: true });
  } catch (e) {
    status.textContent = `The session could not be created (${why(e)}).`;
    return;
  }
  if (s["encrypted"] !== true) {
    status.textContent = "This server does not make end-to-end encrypted sessions.";
    return;
  }
  input.value = "";
  status.textContent = "";
  pendingTitle = title || null;
  open(s.id, key);
}

/** The key in a link's fragment, when the text is a link. */
function keyFromInput(text: string): string | null {
  try {
    return keyInFragment(new URL(text.trim()).hash);
  } catch {
    return null;
  }
}

/** An id, or a link holding `?session=ID`. */
function sessionFromInput(text: string): string {
  const t = text.trim();
  try {
    const u = new URL(t);
    return u.searchParams.get("session") ?? t;
  } catch {
    return t;
  }
}

// ---- a session -------------------------------------------------------------------------------

let retryTimer: number | null = null;

function closeSession(): void {
  if (retryTimer !== null) window.clearTimeout(retryTimer);
  retryTimer = null;
  if (previewTimer !== null) window.clearTimeout(previewTimer);
  previewTimer = null;
  const c = client;
  client = null;
  sessionKey = null;
  for (const p of pictures.values()) if (p.state === "ready") p.bitmap.close();
  pictures.clear();
  pictureQueue.length = 0;
  $("e2e-badge").hidden = true;
  inbox.watch(null);
  // `leave` first: the others see me go now, not when the socket's close reaches the server.
  c?.close();
  role = null;
  selected = null;
  setCommentMode(false);
  comments.clear();
  deleting = false;
  const img = $<HTMLImageElement>("preview");
  img.removeAttribute("src");
  delete img.dataset["version"];
  $("comments").replaceChildren();
  $("comments-status").textContent = "";
  $("preview-info").textContent = "";
  notice("");
  closeShareDialog();
  closeHistoryDialog();
  historyVersions = [];
  $("history-list").replaceChildren();
  clearHistoryPreview();
  showConnection("offline", 0);
  render();
}

/** Opens a session; with `key` (a key or keyring as text) an end-to-end encrypted one. */
function open(session: string, key: string | null = storedKey(session)): void {
  closeSession();
  sessionId = session;
  let keys: Keyring | null = null;
  if (key !== null) {
    try {
      keys = Keyring.parse(key);
    } catch (e) {
      setUrl(session);
      showE2eProblem(`This link's key is not a session key (${(e as Error).message}): open the session with its link, which carries the key.`, (e as Error).message);
      return;
    }
    sessionKey = key;
  }
  setUrl(session);
  sessionStorage.setItem("montage.signin", JSON.stringify({ name: $<HTMLInputElement>("signin-name").value.trim(), session }));
  showView("editor");
  $("session-label").textContent = `Session: ${session}`;
  $("session-label").title = session;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
  const c: Client = new MontageClient({ url, token: freshToken, user: me, session, backoff: { initialMs: 200, maxMs: 3000 }, ...(keys === null ? {} : { keys }) });
  client = c;
  $("e2e-badge").hidden = keys === null;
  inbox.watch(c.connection);
  // Badges earned since the last session opened show in this one.
  recognition.clear();
  timeline.local.playhead = 0;
  timeline.local.drag = null;
  c.on("change", (ev) => {
    render();
    if (ev.origin !== "local") schedulePreview();
    // The composition at my playhead follows edits of the timeline (none: no frames to fetch).
    if (!encrypted() && (doc()?.timeline?.tracks?.length ?? 0) > 0) timeline.showFrame();
  });
  c.on("status", (s) => {
    showConnection(s.state, s.pending, s.closeReason);
    if (s.state === "online" && s.pending === 0) schedulePreview();
  });
  c.on("joined", () => {
    role = c.role;
    showView("editor");
    // Subscriptions end with the socket: every (re)join subscribes again.
    subscribePreviews();
    if (c.encrypted && sessionKey !== null) {
      // Joined with this key: this browser opens the session again from the sessions list.
      storeKey(session, sessionKey);
      $("preview-info").textContent = "End-to-end encrypted: the server can't read it, so there are no previews; pictures are sealed before they are uploaded, and the canvas is drawn here from your copy.";
    }
    void loadComments();
    const title = pendingTitle;
    pendingTitle = null;
    if (title !== null && doc()?.title === "" && roleAtLeast(role, "editor")) edit(() => [textInsert(["title"], 0, title)]);
    render();
    renderShare();
  });
  c.on("participants", () => {
    renderPeople();
    renderOverlay();
    renderShare();
  });
  c.on("presence", () => {
    renderOverlay();
    timeline.render();
  });
  c.on("role", (r) => {
    role = c.role;
    render();
    if (r.user === me) renderComments(); // reply and resolve follow my role
  });
  c.on("linkRoleChanged", (l) => {
    renderShare();
    $("share-status").textContent = `Link access: ${LINK_TEXT[l.role] ?? l.role}.`;
  });
  c.on("commentAdded", showComment);
  c.on("commentUpdated", showComment);
  c.on("preview", (p) => loadPreview(p.href, p.version, p.tier));
  c.connection.on("tier", (t) => {
    connectionTier = t.tier;
    document.body.dataset["connectionTier"] = t.tier;
  });
  c.on("accessDenied", (e) => onAccessDenied(c, e));
  c.on("undecryptable", (e) => onUndecryptable(c, e));
  c.on("keyRotated", (k) => onKeyRotated(c, k.keyEpoch, k.haveKey));
  c.on("unauthorized", (e) => notice(`The server refused your token (${e.reason || "no reason given"}): sign in again.`));
  c.on("tokenExpiring", (t) => console.info(`token expires at ${new Date(t.exp * 1000).toISOString()}: refreshing`));
  c.on("rejected", (r) => notice(`The server refused an edit (${r.code}: ${r.message}); ${r.lost} local edit(s) were undone.`));
  c.on("error", (e) => {
    if (e.rid?.startsWith("link_role")) $("share-status").textContent = `Link access not changed (${e.code}: ${e.message})`;
    else if (e.code === "unauthorized" && !navigator.onLine) return; // no token while offline: retried
    else notice(`${e.code}: ${e.message}`);
  });
}

const LINK_TEXT: Record<string, string> = {
  none: "only people added (private)",
  viewer: "anyone with the link can view",
  commenter: "anyone with the link can comment",
  editor: "anyone with the link can edit",
};

/** The join was refused or I was taken out: say why, and (when access may come back) try the
 * join again every few seconds, so the page opens by itself once the owner shares it. */
function onAccessDenied(c: Client, e: AccessError): void {
  if (client !== c) return;
  if (deleting && e.reason === "deleted") return; // my own delete: the list follows
  role = null;
  render();
  const text: Record<string, string> = {
    forbidden: "You don't have access to this session — ask the owner to share it.",
    removed: "You no longer have access to this session — ask the owner to share it again.",
    not_found: "There is no session with this id (it may have been deleted).",
    deleted: "The owner deleted this session.",
  };
  $("no-access-h").textContent = e.reason === "deleted" || e.reason === "not_found" ? "Session not found" : "No access";
  $("no-access-text").textContent = text[e.reason] ?? e.message;
  $("no-access-session").textContent = sessionId;
  $("no-access-text").title = e.message;
  $("no-access").dataset["reason"] = e.reason;
  $("no-access-again").hidden = !e.retryable;
  $("no-access-retry").textContent = e.retryable ? ". This page opens it as soon as you are let in." : "";
  $("conn").dataset["state"] = "offline";
  $("conn").textContent = e.reason === "deleted" || e.reason === "not_found" ? "Not found" : "No access";
  closeShareDialog();
  closeHistoryDialog();
  showView("no-access");
  if (retryTimer !== null) window.clearTimeout(retryTimer);
  retryTimer = null;
  if (e.retryable) {
    retryTimer = window.setTimeout(() => {
      retryTimer = null;
      if (client === c && c.accessError !== null) c.connect();
    }, 3000);
  }
}

/** An encrypted session that can't be read here (no key, a wrong one, a history that does not
 * add up): the session stopped; say why instead of showing an empty canvas. */
function onUndecryptable(c: Client, e: SealError): void {
  if (client !== c) return;
  role = null;
  render();
  $("e2e-badge").hidden = true;
  let text: string;
  if (!c.encrypted) text = "This session is end-to-end encrypted: open it with its link, which carries the key.";
  else if (e.kind === "tampered") text = "This session is end-to-end encrypted and could not be decrypted: wrong key. Open it with its link, which carries the right key.";
  else if (e.kind === "no_key") text = "This session is end-to-end encrypted and could not be decrypted: this link has no key for its current key epoch. Ask the owner for a new link.";
  else if (e.kind === "chain") text = "This session could not be decrypted: its history does not add up (the server's order was changed), so this page stopped.";
  else text = `This session could not be opened: ${e.message}.`;
  showE2eProblem(text, e.message);
}

function showE2eProblem(text: string, detail: string): void {
  $("no-access-h").textContent = "End-to-end encrypted";
  $("no-access-text").textContent = text;
  $("no-access-text").title = detail;
  $("no-access-session").textContent = sessionId;
  $("no-access").dataset["reason"] = "undecryptable";
  $("no-access-again").hidden = true;
  $("no-access-retry").textContent = "";
  $("conn").dataset["state"] = "offline";
  $("conn").textContent = "Not decrypted";
  closeShareDialog();
  closeHistoryDialog();
  showView("no-access");
}

/**
 * A member was removed or link access narrowed: the session's key moved to a new epoch and the
 * server refuses the old key's edits. The owner's page makes the new key (edits wait for it) and
 * puts it in the page's address and share link; everyone else needs that new link.
 */
function onKeyRotated(c: Client, epoch: number, haveKey: boolean): void {
  if (client !== c || haveKey) return;
  if (role === "owner" && sessionKey !== null) {
    const key = SessionKey.generate().toText();
    c.addKey(epoch, key);
    sessionKey = `${sessionKey},${epoch}:${key}`;
    setUrl(sessionId);
    storeKey(sessionId, sessionKey);
    renderShare();
    notice("The session's key changed (someone was removed or link access narrowed): share the new link with the people who stay.");
  } else {
    notice("The session's key changed: your edits wait until you open the owner's new link.");
  }
}

/** The connection pill; `unauthorized` (the server refused the token for good) shows the
 * server's close reason. */
function showConnection(state: string, pending: number, reason = ""): void {
  const el = $("conn");
  el.dataset["state"] = state;
  const edits = `${pending} pending edit${pending === 1 ? "" : "s"}`;
  el.textContent =
    state === "online"
      ? pending > 0 ? `Online · ${edits}` : "Online"
      : state === "reconnecting" || state === "connecting"
        ? `Reconnecting… · ${edits}`
        : state === "unauthorized"
          ? `Unauthorized (${reason || "token refused"}) · ${edits}`
          : `Offline · ${edits}`;
}

// ---- previews --------------------------------------------------------------------------------

/** The connection's tier as the server last announced it (`tier` events): what "auto" follows. */
let connectionTier: Tier = "excellent";
/** The tier chosen in the menu, or with "auto" the connection's. */
const chosenTier = (): Tier => {
  const v = $<HTMLSelectElement>("tier").value;
  return v === "auto" ? connectionTier : (v as Tier);
};

function subscribePreviews(): void {
  // The server renders no encrypted session (it can't read it): the page draws from its replica.
  if (encrypted()) return;
  // The first preview also comes as a `preview` event; a socket that closes first is
  // subscribed again on the next join. "auto" subscribes without a tier: the server then
  // follows the connection's, which the measured downloads below help it know.
  const v = $<HTMLSelectElement>("tier").value;
  client?.subscribePreviews(v === "auto" ? undefined : (v as Tier)).catch((e: unknown) => {
    if (!(e instanceof ServerError && (e.code === "offline" || e.code === "disconnected"))) {
      $("preview-info").textContent = `Previews unavailable (${why(e)})`;
    }
  });
}

/**
 * Besides the server's `preview` events, the page asks for the head's preview itself once its
 * replica settles (a debounce after remote edits and acks), so the picture never lags behind
 * the outlines even if a message is missed.
 */
let previewTimer: number | null = null;
function schedulePreview(): void {
  if (encrypted()) return;
  if (previewTimer !== null) window.clearTimeout(previewTimer);
  previewTimer = window.setTimeout(() => {
    previewTimer = null;
    if (client !== null) loadPreview(client.previewUrl(chosenTier()), client.version, chosenTier());
  }, 250);
}

/**
 * Preview pictures: one request at a time, and the newest wanted one waits for it (older waiting
 * ones are dropped). Every request that completes is shown, so under a steady stream of edits
 * (a `preview` event every 33 ms at `good`) the picture keeps updating at the render rate.
 * Each response body is read to its end: an abandoned body holds its HTTP connection, and
 * Chromium allows six per host, after which every request (previews, comments…) stalls.
 * A request (body included) that takes longer than PREVIEW_TIMEOUT_MS is aborted, and a failed
 * one never stops the queue: a hung request can't block previews for good.
 */
const PREVIEW_TIMEOUT_MS = 10_000;
let previewBusy = false;
let previewNext: { url: string; version: number; tier: string } | null = null;

function loadPreview(url: string, version: number, tier: string): void {
  previewNext = { url, version, tier };
  if (!previewBusy) void pumpPreviews();
}

async function pumpPreviews(): Promise<void> {
  previewBusy = true;
  try {
    while (previewNext !== null) {
      const next = previewNext;
      previewNext = null;
      try {
        await fetchPreview(next.url, next.version, next.tier);
      } catch (e) {
        console.warn("preview failed", e);
      }
    }
  } finally {
    previewBusy = false;
  }
}

async function fetchPreview(url: string, version: number, tier: string): Promise<void> {
  let r: Response;
  let blob: Blob;
  try {
    const headers = { Authorization: `Bearer ${await freshToken()}` };
    r = await fetch(url, { headers, signal: AbortSignal.timeout(PREVIEW_TIMEOUT_MS) });
    if (!r.ok) {
      $("preview-info").textContent = `Preview unavailable (${await errorText(r)})`;
      return;
    }
    // Pictures are what the link carries: the body's pace (from the headers on, so not the
    // server's render time) becomes the connection's hint.
    const t0 = performance.now();
    blob = await r.blob();
    client?.connection.reportDownload(blob.size, performance.now() - t0);
  } catch (e) {
    $("preview-info").textContent = `Preview unavailable (${(e as Error).message})`;
    return;
  }
  const shown = Number(r.headers.get("x-montage-version") ?? version);
  const img = $<HTMLImageElement>("preview");
  // A slower answer for an older version never replaces a newer picture at the same tier.
  if (img.dataset["tier"] === tier && Number(img.dataset["version"] ?? -1) > shown) return;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(blob);
  img.src = previewUrl;
  img.dataset["version"] = String(shown);
  img.dataset["tier"] = tier;
  $("preview-info").textContent = `Preview: version ${shown}, tier ${tier}`;
}

// ---- rendering -------------------------------------------------------------------------------

function render(): void {
  const d = doc();
  document.body.dataset["role"] = role ?? "none";
  $("role").textContent = role ?? "—";
  const editor = roleAtLeast(role, "editor");
  const commenter = roleAtLeast(role, "commenter");
  const title = $<HTMLInputElement>("title");
  title.disabled = !editor;
  if (d && title.value !== d.title) setTitleKeepingCaret(title, d.title);
  if (!d) title.value = "";
  // Controls a role may not use are not shown: viewers see no editing tools, commenters get
  // comments, only owners see sharing (and deleting).
  // An encrypted session's pictures are sealed here before they are uploaded; it has text
  // layers too, drawn by the page (a plain session's text comes from the server's preview).
  const e2e = encrypted();
  show("upload-btn", editor);
  $<HTMLInputElement>("upload").disabled = !editor;
  $("upload-btn").title = e2e
    ? "Sealed in your browser with the session's key before it is uploaded: the server can't see it (pictures only: no videos or sounds in an encrypted session)"
    : "";
  show("add-text-form", editor && e2e);
  $<HTMLButtonElement>("add-text").disabled = !editor || !e2e;
  show("tier-label", !e2e);
  show("undo", editor);
  show("redo", editor);
  $<HTMLButtonElement>("undo").disabled = !editor || !(client?.canUndo ?? false);
  $<HTMLButtonElement>("redo").disabled = !editor || !(client?.canRedo ?? false);
  show("mode-comment", commenter);
  if (!commenter && commentMode) setCommentMode(false);
  $("invite-box").hidden = !editor;
  $<HTMLButtonElement>("invite").disabled = !editor;
  $<HTMLSelectElement>("invite-role").disabled = !editor;
  $("layer-panel").hidden = !editor;
  show("share", role === "owner");
  if (role !== "owner") closeShareDialog();
  renderHistoryControls();
  timeline.render();
  if (shownLayer(selected) === undefined) selected = null;
  renderPeople();
  renderOverlay();
  renderLayerPanel();
  drawPictures();
}

/** Replaces the title shown while keeping the caret where the text around it went. */
function setTitleKeepingCaret(input: HTMLInputElement, next: string): void {
  const old = input.value;
  const focused = document.activeElement === input;
  const caret = input.selectionStart ?? old.length;
  input.value = next;
  if (!focused) return;
  let p = 0;
  while (p < old.length && p < next.length && old[p] === next[p]) p++;
  const moved = caret <= p ? caret : Math.max(p, caret + next.length - old.length);
  input.setSelectionRange(moved, moved);
}

function scale(): number {
  const d = doc();
  const stage = $("stage");
  return stage.clientWidth / (d?.canvas.width ?? 1920);
}

/** The people in the session, me first when the server does not list me. */
function peopleList(): Participant[] {
  const list = [...(client?.participants ?? [])].sort((a, b) => a.user.localeCompare(b.user));
  if (!list.some((p) => p.user === me) && role) list.unshift({ user: me, role, online: true });
  return list;
}
function personItem(p: Participant, attr: string): HTMLLIElement {
  const li = h("li", { [attr]: p.user });
  const sw = h("span", { class: "swatch", "aria-hidden": "true" });
  sw.style.background = p.color ?? colorOf(p.user);
  li.append(sw, h("span", { class: "who" }, `${p.name ?? p.user}${p.user === me ? " (you)" : ""}${p.online ? "" : " · away"}`));
  return li;
}
function roleSelect(p: Participant, label: string): HTMLSelectElement {
  const sel = h("select", { "aria-label": label });
  for (const r of ["viewer", "commenter", "editor", "owner"]) {
    const o = h("option", { value: r }, r);
    if (r === p.role) o.selected = true;
    sel.append(o);
  }
  sel.addEventListener("change", () => setRole(p.user, sel.value));
  return sel;
}

/** Each person's recognition, fetched once per page: what the badge chip shows. */
const recognition = new Map<string, Recognition | "loading">();
const BADGE_NAMES: Record<string, string> = {
  featured_creator: "Featured Creator",
  community_spotlight: "Community Spotlight",
  social_recognition: "Social Recognition",
};
function badgeChip(user: string): HTMLElement | null {
  const r = recognition.get(user);
  if (r === undefined) {
    recognition.set(user, "loading");
    sessionsApi.recognition(user).then(
      (got) => {
        recognition.set(user, got);
        renderPeople();
      },
      // Not shown rather than retried: the list is decoration, not the work.
      () => recognition.delete(user),
    );
    return null;
  }
  if (r === "loading" || r.badges.length + r.awards.length === 0) return null;
  const names = [
    ...r.badges.map((b) => (b.badge ?? "badge").replaceAll("_", " ")),
    ...r.awards.map((a) => BADGE_NAMES[a.type] ?? a.type),
  ];
  return h("span", { class: "badges", "data-badges": user, title: names.join(", "), "aria-label": `Badges: ${names.join(", ")}` }, `★ ${names.length}`);
}

function renderPeople(): void {
  const ul = $("people");
  ul.replaceChildren();
  for (const p of peopleList()) {
    const li = personItem(p, "data-user");
    const chip = badgeChip(p.user);
    if (chip) li.append(chip);
    if (role === "owner" && p.user !== me) li.append(roleSelect(p, `Role of ${p.name ?? p.user}`));
    else li.append(h("span", { class: "muted" }, p.role));
    ul.append(li);
  }
}

/** Layer outlines, others' selections and cursors, and comment regions over the preview. */
function renderOverlay(): void {
  const ov = $("overlay");
  const drag = ov.querySelector(".drag-box");
  ov.replaceChildren();
  const k = scale();
  // Presence is whatever other pages sent: checked before use.
  const remoteSel = new Map<string, string>();
  for (const [user, data] of client?.presence ?? []) {
    if (Array.isArray(data?.selection)) for (const id of data.selection) if (typeof id === "string") remoteSel.set(id, colorFor(user));
  }
  const layerBox = (id: string, text?: string) => {
    const box = h("div", { class: "layer-box", "data-layer": id, role: "button", "aria-label": `Layer ${id}`, "aria-pressed": String(id === selected) }, text);
    if (id === selected) box.classList.add("selected");
    const rc = remoteSel.get(id);
    if (rc) {
      box.classList.add("remote-sel");
      box.style.setProperty("--sel-color", rc);
    }
    return box;
  };
  for (const l of layers()) {
    const box = layerBox(l.id);
    place(box, l, k);
    box.style.transform = `rotate(${num(l.rotation)}deg)`;
    // An encrypted session's picture that can't be shown says so where it would be.
    const p = encrypted() ? pictures.get(l.asset) : undefined;
    if (p?.state === "failed") {
      box.classList.add("unreadable");
      box.dataset["picture"] = p.why;
      box.title = p.message;
      box.append(h("span", {}, PICTURE_FAILED[p.why]));
    }
    ov.append(box);
  }
  // An encrypted session's text, drawn here (no server preview shows it).
  for (const l of textLayers()) {
    const box = layerBox(l.id, typeof l.text === "string" ? l.text : "");
    box.classList.add("text-layer");
    place(box, textRect(l), k);
    box.style.fontSize = `${Math.max(1, num(l.size, 48)) * k}px`;
    box.style.color = typeof l.color === "string" ? l.color : "#222";
    ov.append(box);
  }
  for (const c of comments.values()) {
    if (c.parent_id || c.deleted || c.resolved) continue;
    const r = commentCanvasRect(c);
    if (!r) continue;
    const box = h("div", { class: "comment-box", "data-comment": c.id });
    place(box, r, k);
    box.append(h("span", {}, c.author_id));
    ov.append(box);
  }
  for (const [user, data] of client?.presence ?? []) {
    const cur = data?.cursor;
    if (!cur || typeof cur.x !== "number" || typeof cur.y !== "number") continue;
    const el = h("div", { class: "cursor", "data-cursor": user, "aria-label": `${nameOf(user)}'s cursor` });
    el.style.left = `${cur.x * k}px`;
    el.style.top = `${cur.y * k}px`;
    el.style.setProperty("--c", colorFor(user));
    el.append(h("span", {}, nameOf(user)));
    ov.append(el);
  }
  if (drag) ov.append(drag);
}
function colorFor(user: string): string {
  return person(user)?.color ?? colorOf(user);
}
function nameOf(user: string): string {
  return person(user)?.name ?? user;
}

function renderLayerPanel(): void {
  const l = layerOf(selected) ?? null;
  const t = textOf(selected) ?? null;
  const fs = $<HTMLFieldSetElement>("layer-controls");
  fs.disabled = l === null || !roleAtLeast(role, "editor");
  // A text layer (encrypted sessions draw them) has its own few controls.
  fs.hidden = t !== null;
  const ts = $<HTMLFieldSetElement>("text-controls");
  ts.hidden = t === null;
  ts.disabled = t === null || !roleAtLeast(role, "editor");
  $("layer-name").textContent = l ? l.id : t ? t.id : "none selected";
  const set = (id: string, v: number) => {
    const el = $<HTMLInputElement>(id);
    if (document.activeElement !== el) el.value = String(Math.round(v * 100) / 100);
  };
  if (t) {
    const text = $<HTMLInputElement>("t-text");
    if (document.activeElement !== text) text.value = typeof t.text === "string" ? t.text : "";
    set("t-size", num(t.size, 48));
  }
  if (!l) return;
  const crop = sourceRect(l);
  for (const k of ["x", "y", "w", "h"] as const) {
    set(`l-${k}`, l[k]);
    set(`c-${k}`, crop[k]);
  }
  set("a-opacity", num(l.opacity, 1));
  for (const p of ["brightness", "contrast", "saturation", "exposure"]) set(`a-${p}`, num(l.adjust?.[p]));
}

// ---- an encrypted session's canvas ------------------------------------------------------------

/** What a picture that can't be shown says on its layer, and in the status line (counted). */
const PICTURE_FAILED: Record<PictureFailure, string> = {
  decrypt: "could not be decrypted",
  no_key: "could not be decrypted: no key",
  decode: "not a readable picture",
  fetch: "could not be loaded",
};
const PICTURES_FAILED: Record<PictureFailure, (n: number) => string> = {
  decrypt: (n) => `${n === 1 ? "a picture" : `${n} pictures`} could not be decrypted (a wrong key, or changed on the server)`,
  no_key: (n) => `${n === 1 ? "a picture" : `${n} pictures`} could not be decrypted: sealed under a newer key than this link has (open the owner's newest link)`,
  decode: (n) => `${n === 1 ? "a file opened but is" : `${n} files opened but are`} not a readable picture`,
  fetch: (n) => `${n === 1 ? "a picture" : `${n} pictures`} could not be loaded`,
};
/** The largest canvas side drawn here (a hostile document could name any size). */
const MAX_DRAWN_SIDE = 8192;
/** Pictures fetched at once: Chromium allows six requests per host, and the page's other
 * requests (comments, the inbox) must not wait behind a document full of pictures. */
const PICTURE_LOADS = 3;
/** Assets waiting for a load to free up, and the loads under way. */
const pictureQueue: string[] = [];
let pictureLoads = 0;

/** An encrypted session's picture of `asset`: what is known of it, its loading queued once. */
function pictureOf(asset: string): Picture {
  let p = pictures.get(asset);
  if (p === undefined) {
    p = { state: "loading" };
    pictures.set(asset, p);
    pictureQueue.push(asset);
    pumpPictures();
  }
  return p;
}

/** Starts queued loads of the open session's pictures while fewer than `PICTURE_LOADS` run (a
 * closed session's loads still count until they end). */
function pumpPictures(): void {
  const c = client;
  while (c !== null && pictureLoads < PICTURE_LOADS && pictureQueue.length > 0) {
    const asset = pictureQueue.shift()!;
    pictureLoads++;
    void loadPicture(c, asset).finally(() => {
      pictureLoads--;
      pumpPictures();
    });
  }
}

/** Fetches `asset` with my token (`GET /v1/assets/{id}`), opens it with the session's keys and
 * decodes it; a picture that does not open is `failed`, never drawn from what it holds. */
async function loadPicture(c: Client, asset: string): Promise<void> {
  let got: Picture;
  let again = false;
  try {
    const bytes = await c.download(asset);
    // The server could not check it: a small file declaring a huge picture is not decoded.
    const refused = pictureRefusal(bytes);
    try {
      got =
        refused !== null
          ? { state: "failed", why: "decode", message: `asset ${asset} opened, but is not decoded here: it ${refused}` }
          : { state: "ready", bitmap: await createImageBitmap(new Blob([bytes])) };
    } catch (e) {
      got = { state: "failed", why: "decode", message: `asset ${asset} opened, but is not a picture this browser reads (${(e as Error).message})` };
    }
  } catch (e) {
    if (e instanceof SealError) {
      got = { state: "failed", why: e.kind === "no_key" ? "no_key" : "decrypt", message: e.message };
    } else {
      got = { state: "failed", why: "fetch", message: `asset ${asset}: ${why(e)}` };
      // A refusal that will not change (gone, no access) is not asked again; anything else is.
      again = !(e instanceof ApiError) || e.status === 429 || e.status >= 500;
    }
  }
  if (client !== c || pictures.get(asset)?.state !== "loading") {
    if (got.state === "ready") got.bitmap.close(); // another session was opened meanwhile
    return;
  }
  pictures.set(asset, got);
  if (got.state === "failed") console.warn(`picture ${asset}: ${got.message}`);
  if (again) {
    window.setTimeout(() => {
      if (client !== c || pictures.get(asset) !== got) return;
      pictures.delete(asset);
      drawPictures();
    }, 5000);
  }
  drawPictures();
  renderOverlay();
}

/**
 * An encrypted session's image layers, drawn into the canvas under the outlines from the
 * pictures this page opened (the server renders nothing of it): in document order, at each
 * layer's place and size, with its crop, flip, rotation (degrees clockwise about its centre) and
 * opacity, as the server's renderer does (crates/media/README.md; adjustments are left out). A
 * picture still loading or failed is skipped; the failed ones are counted in a status line.
 */
function drawPictures(): void {
  const cv = $<HTMLCanvasElement>("e2e-canvas");
  const d = doc();
  const c = client;
  const status = $("pictures-status");
  if (c === null || d === null || !encrypted()) {
    cv.hidden = true;
    if (cv.width !== 0) cv.width = cv.height = 0; // lets the pixels go
    status.textContent = "";
    delete status.dataset["state"];
    return;
  }
  cv.hidden = false;
  const side = (v: unknown, dflt: number) => Math.max(1, Math.min(MAX_DRAWN_SIDE, Math.round(num(v, dflt))));
  const w = side(d.canvas.width, 1920);
  const hh = side(d.canvas.height, 1080);
  if (cv.width !== w || cv.height !== hh) {
    cv.width = w;
    cv.height = hh;
  }
  const g = cv.getContext("2d");
  if (g === null) return;
  g.clearRect(0, 0, w, hh);
  const failed = new Map<PictureFailure, number>();
  let loading = 0;
  for (const l of layers()) {
    if (typeof l.asset !== "string") continue;
    const p = pictureOf(l.asset);
    if (p.state === "ready") drawLayer(g, l, p.bitmap);
    else if (p.state === "loading") loading++;
    else failed.set(p.why, (failed.get(p.why) ?? 0) + 1);
  }
  const said = [...failed].map(([kind, n]) => PICTURES_FAILED[kind](n)).join("; ");
  status.textContent = said !== "" ? `Not shown: ${said}.` : loading > 0 ? "Opening pictures…" : "";
  status.dataset["state"] = failed.size > 0 ? "failed" : loading > 0 ? "loading" : "ready";
}

/** One image layer from its decoded picture (crop → flip → scale → rotate → opacity). */
function drawLayer(g: CanvasRenderingContext2D, l: ImageLayer, bitmap: ImageBitmap): void {
  const w = num(l.w);
  const hh = num(l.h);
  if (!(w > 0 && hh > 0)) return;
  // The crop is in the picture's pixels, kept inside it.
  const c = l.crop ?? { x: 0, y: 0, w: bitmap.width, h: bitmap.height };
  const x0 = Math.max(0, num(c.x));
  const y0 = Math.max(0, num(c.y));
  const x1 = Math.min(bitmap.width, num(c.x) + num(c.w));
  const y1 = Math.min(bitmap.height, num(c.y) + num(c.h));
  if (!(x1 > x0 && y1 > y0)) return;
  g.save();
  g.globalAlpha = Math.max(0, Math.min(1, num(l.opacity, 1)));
  g.translate(num(l.x) + w / 2, num(l.y) + hh / 2);
  g.rotate((num(l.rotation) * Math.PI) / 180);
  g.scale(l.flip?.h ? -1 : 1, l.flip?.v ? -1 : 1);
  g.drawImage(bitmap, x0, y0, x1 - x0, y1 - y0, -w / 2, -hh / 2, w, hh);
  g.restore();
}

// ---- sharing (owners) --------------------------------------------------------------------------

function shareLink(): string {
  // An encrypted session's link carries its key in the fragment, which browsers never send.
  return `${location.origin}/?session=${encodeURIComponent(sessionId)}${keyFragment()}`;
}

/** The share dialog's contents, from the session's link role and members. */
function renderShare(): void {
  const linkRole = client?.linkRole ?? null;
  const sel = $<HTMLSelectElement>("link-role");
  if (linkRole !== null && document.activeElement !== sel) sel.value = linkRole;
  $("share-dialog").dataset["linkRole"] = linkRole ?? "";
  $<HTMLInputElement>("share-link").value = shareLink();
  const title = doc()?.title;
  $("share-name").textContent = title ? `“${title}”` : "this session";
  const ul = $("members");
  ul.replaceChildren();
  for (const p of peopleList().filter((x) => x.role !== "none")) {
    const label = p.name ?? p.user;
    const li = personItem(p, "data-member");
    if (p.user === me) {
      li.append(h("span", { class: "muted" }, p.role));
    } else {
      const remove = h("button", { type: "button", "aria-label": `Remove ${label}` }, "Remove");
      remove.addEventListener("click", () => setRole(p.user, "none"));
      li.append(roleSelect(p, `Access of ${label}`), remove);
    }
    ul.append(li);
  }
}

/** Grants a role (`none` removes); a refusal shows in the share dialog when it is open. */
function setRole(user: string, r: string): void {
  const dialogOpen = $<HTMLDialogElement>("share-dialog").open;
  const status = dialogOpen ? $("share-status") : $("notice");
  if (dialogOpen) status.textContent = "";
  client?.setRole(user, r as Role | "none").catch((e: unknown) => {
    status.textContent = notSent(e) ? "Not connected: nothing changed." : `Role not changed (${why(e)})`;
  });
}

function openShare(): void {
  if (role !== "owner") return;
  $("share-status").textContent = "";
  $("delete-confirm").hidden = true;
  $("delete-session").hidden = false;
  renderShare();
  $<HTMLDialogElement>("share-dialog").showModal();
}

async function changeLinkRole(): Promise<void> {
  const r = $<HTMLSelectElement>("link-role").value as LinkRole;
  const status = $("share-status");
  if (client?.setLinkRole(r)) {
    status.textContent = "Saving…";
    return;
  }
  // Not connected: the same change over HTTP.
  try {
    const s = await sessionsApi.update(sessionId, { link_role: r });
    const now = s.link_role ?? r;
    status.textContent = `Link access: ${LINK_TEXT[now] ?? now}.`;
  } catch (e) {
    status.textContent = `Link access not changed (${why(e)})`;
    renderShare();
  }
}

async function copyLink(): Promise<void> {
  const input = $<HTMLInputElement>("share-link");
  input.value = shareLink();
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    $("share-status").textContent = "Link copied.";
  } catch {
    // No clipboard permission (an insecure origin, a test browser): the link is selected.
    $("share-status").textContent = "Press Ctrl+C to copy the selected link.";
  }
}

async function deleteSession(): Promise<void> {
  const status = $("share-status");
  deleting = true;
  status.textContent = "Deleting…";
  try {
    await sessionsApi.delete(sessionId);
  } catch (e) {
    deleting = false;
    status.textContent = `The session was not deleted (${why(e)})`;
    return;
  }
  $<HTMLDialogElement>("share-dialog").close();
  await showSessions();
}

async function createInvite(): Promise<void> {
  const out = $<HTMLInputElement>("invite-link");
  try {
    const inv = await sessionsApi.createInvite(sessionId, { role: $<HTMLSelectElement>("invite-role").value as Exclude<Role, "owner"> });
    // The page's own address, which accepts `?invite=` on sign-in.
    out.value = `${location.origin}/?invite=${encodeURIComponent(inv.id)}${keyFragment()}`;
    out.select();
  } catch (e) {
    out.value = "";
    notice(`Invite refused (${why(e)})`);
  }
}

/** The owner's title edits also rename the session in everyone's list (debounced). */
let titleSyncTimer: number | null = null;
function scheduleTitleSync(): void {
  // An encrypted session's title stays in its sealed document: the server's list does not get it.
  if (role !== "owner" || encrypted()) return;
  if (titleSyncTimer !== null) window.clearTimeout(titleSyncTimer);
  const session = sessionId;
  titleSyncTimer = window.setTimeout(() => {
    titleSyncTimer = null;
    const title = doc()?.title;
    if (title === undefined || session !== sessionId || role !== "owner") return;
    sessionsApi.update(session, { title }).catch((e: unknown) => console.warn("session title not saved", e));
  }, 1000);
}

// ---- version history ---------------------------------------------------------------------------

/**
 * The History dialog (docs/PROTOCOL.md "Version history"): the session's checkpoints and named
 * versions (`GET …/versions`), a small preview of any version (`GET …/preview?version=V`), and
 * for editors and owners restoring and naming one. A version can also be typed in, as
 * checkpoints come only every few minutes of editing. Restoring reads the old state
 * (`GET /v1/sessions/{id}?version=V`) and makes it a local edit of mine (`restoreTo`), so Undo
 * takes it back like any other edit.
 */
const HISTORY_PAGE = 50;
let historyVersions: Version[] = [];
/** Whether the list was drawn with editor controls (it is redrawn when my role changes). */
let historyEditor = false;
/** The latest list request and preview request: older answers are dropped. */
let historyLoadSeq = 0;
let historyPreviewSeq = 0;
let historyPreviewUrl: string | null = null;

function historyDialogOpen(): boolean {
  return $<HTMLDialogElement>("history-dialog").open;
}
/** A message in the dialog when it is open, else under the canvas. */
function historyStatus(text: string): void {
  if (historyDialogOpen()) $("history-status").textContent = text;
  else notice(text);
}

/** The controls that follow my role and the head; called from every render. */
function renderHistoryControls(): void {
  // The server can't read an encrypted session's past states: no History there.
  const viewer = roleAtLeast(role, "viewer") && !encrypted();
  const editor = roleAtLeast(role, "editor") && viewer;
  show("history", viewer);
  show("history-restore", editor);
  show("history-name", editor);
  if (!editor) $("history-pick-name").replaceChildren();
  if (!viewer) {
    closeHistoryDialog();
    return;
  }
  if (!historyDialogOpen()) return;
  const head = client?.version ?? 0;
  $("history-head").textContent = `Now at version ${head}. Type any version up to it, or pick a saved one below.`;
  if (historyEditor !== editor) renderHistoryList();
}

function openHistory(): void {
  if (!roleAtLeast(role, "viewer") || client === null || encrypted()) return;
  const title = doc()?.title;
  $("history-title").textContent = title ? `of “${title}”` : "";
  $("history-status").textContent = "";
  $("history-pick-name").replaceChildren();
  clearHistoryPreview();
  historyVersions = [];
  renderHistoryList();
  $("history-more").hidden = true;
  $<HTMLDialogElement>("history-dialog").showModal();
  renderHistoryControls();
  void loadHistory(false);
}

/** The first page of versions, or (`more`) the page older than those listed. */
async function loadHistory(more: boolean): Promise<void> {
  const seq = ++historyLoadSeq;
  const session = sessionId;
  const list = $("history-list");
  const before = more ? historyVersions[historyVersions.length - 1]?.version : undefined;
  list.dataset["state"] = "loading";
  $("history-status").textContent = "Loading versions…";
  let page: Version[];
  try {
    page = await sessionsApi.versions(session, before === undefined ? { limit: HISTORY_PAGE } : { before, limit: HISTORY_PAGE });
  } catch (e) {
    if (seq !== historyLoadSeq || session !== sessionId) return;
    list.dataset["state"] = "error";
    $("history-status").textContent = `Versions could not be listed (${why(e)})`;
    return;
  }
  if (seq !== historyLoadSeq || session !== sessionId) return;
  const all = more ? [...historyVersions, ...page] : page;
  historyVersions = all.sort((a, b) => b.version - a.version);
  $("history-more").hidden = page.length < HISTORY_PAGE;
  list.dataset["state"] = "loaded";
  $("history-status").textContent =
    historyVersions.length === 0 ? "No saved versions yet: checkpoints come every few minutes of editing. Type a version number above to go back to any edit." : "";
  renderHistoryList();
}

function renderHistoryList(): void {
  const editor = roleAtLeast(role, "editor");
  historyEditor = editor;
  const ul = $("history-list");
  ul.replaceChildren();
  for (const x of historyVersions) {
    const v = x.version;
    const li = h("li", { "data-version": String(v) });
    const when = typeof x.time === "number" ? new Date(x.time).toLocaleString() : "—";
    li.append(h("span", { class: "v" }, `v${v}`), h("span", { class: "when" }, when), h("span", { class: "who" }, nameOf(x.user)));
    if (x.name) {
      const by = x.named_by ? `named by ${nameOf(x.named_by)}` : "";
      li.append(h("span", { class: "vname", title: `${x.name}${by ? ` (${by})` : ""}` }, `“${x.name}”`));
    }
    const actions = h("span", { class: "actions" });
    const preview = h("button", { type: "button", "aria-label": `Preview version ${v}` }, "Preview");
    preview.addEventListener("click", () => void previewVersion(v));
    actions.append(preview);
    if (editor) {
      const restore = h("button", { type: "button", "aria-label": `Restore version ${v}` }, "Restore");
      restore.addEventListener("click", () => void restoreVersion(v));
      const name = h("button", { type: "button", "aria-label": `Name version ${v}` }, "Name…");
      name.addEventListener("click", () => showNameForm(li, v, x.name ?? ""));
      actions.append(restore, name);
    }
    li.append(actions);
    ul.append(li);
  }
}

/** The version typed in the dialog, or null (and a message) when it is not one. */
function typedVersion(): number | null {
  const raw = $<HTMLInputElement>("history-version").value.trim();
  const v = Number(raw);
  if (raw === "" || !Number.isSafeInteger(v) || v < 0) {
    $("history-status").textContent = "Type a version number (0 or more).";
    return null;
  }
  return v;
}

function clearHistoryPreview(): void {
  historyPreviewSeq++;
  const img = $<HTMLImageElement>("history-preview-img");
  img.removeAttribute("src");
  delete img.dataset["version"];
  if (historyPreviewUrl) URL.revokeObjectURL(historyPreviewUrl);
  historyPreviewUrl = null;
  $("history-preview-info").textContent = "";
  $("history-figure").hidden = true;
}

/** A small picture of the canvas at `v`, fetched with my token like the live preview. */
async function previewVersion(v: number): Promise<void> {
  const c = client;
  if (c === null || encrypted()) return;
  const seq = ++historyPreviewSeq;
  const info = $("history-preview-info");
  $("history-figure").hidden = false;
  info.textContent = `Loading version ${v}…`;
  let blob: Blob;
  try {
    const headers = { Authorization: `Bearer ${await freshToken()}` };
    const r = await fetch(`${c.previewUrl("poor")}&version=${v}`, { headers, signal: AbortSignal.timeout(PREVIEW_TIMEOUT_MS) });
    if (!r.ok) {
      const text = await errorText(r);
      if (seq === historyPreviewSeq) info.textContent = `No preview of version ${v} (${text})`;
      return;
    }
    blob = await r.blob();
  } catch (e) {
    if (seq === historyPreviewSeq) info.textContent = `No preview of version ${v} (${(e as Error).message})`;
    return;
  }
  if (seq !== historyPreviewSeq || client !== c) return;
  if (historyPreviewUrl) URL.revokeObjectURL(historyPreviewUrl);
  historyPreviewUrl = URL.createObjectURL(blob);
  const img = $<HTMLImageElement>("history-preview-img");
  img.src = historyPreviewUrl;
  img.alt = `Preview of version ${v}`;
  img.dataset["version"] = String(v);
  info.textContent = `Version ${v}`;
}

/**
 * Brings the document back to version `v` as one local edit of mine (only what differs
 * changes, so others' concurrent edits elsewhere stay): Undo takes it back.
 */
async function restoreVersion(v: number): Promise<void> {
  const c = client;
  if (c === null || !roleAtLeast(role, "editor") || encrypted()) return;
  const session = sessionId;
  historyStatus(`Restoring version ${v}…`);
  let past: Record<string, unknown>;
  try {
    past = (await sessionsApi.state(session, v)).state;
  } catch (e) {
    if (client === c) historyStatus(`Version ${v} could not be read (${why(e)})`);
    return;
  }
  if (client !== c || session !== sessionId) return; // another session was opened meanwhile
  if (doc() === null || !roleAtLeast(role, "editor")) {
    historyStatus(`Version ${v} was not restored: not in the session as an editor.`);
    return;
  }
  let changed: boolean;
  try {
    changed = c.restoreTo(past);
  } catch (e) {
    historyStatus(`Version ${v} could not be restored (${why(e)})`);
    return;
  }
  closeHistoryDialog();
  notice(changed ? `Restored version ${v} — Undo takes it back` : `Version ${v} is the same as now: nothing to restore`);
}

/** An inline name field for version `v` in `where` (a list row, or under the typed version). */
function showNameForm(where: HTMLElement, v: number, current: string): void {
  where.querySelector("form.name-form")?.remove();
  const form = h("form", { class: "name-form row" });
  const input = h("input", { "aria-label": `Name of version ${v}`, placeholder: "e.g. Sent to client", maxlength: "200", required: "" });
  input.value = current;
  const cancel = h("button", { type: "button" }, "Cancel");
  cancel.addEventListener("click", () => form.remove());
  form.append(input, h("button", { type: "submit" }, "Save name"), cancel);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = input.value.trim();
    if (name) void nameVersion(v, name, form);
  });
  where.append(form);
  input.focus();
}

async function nameVersion(v: number, name: string, form: HTMLElement): Promise<void> {
  const session = sessionId;
  $("history-status").textContent = `Naming version ${v}…`;
  try {
    await sessionsApi.nameVersion(session, v, name);
  } catch (e) {
    if (session === sessionId) $("history-status").textContent = `Version ${v} was not named (${why(e)})`;
    return;
  }
  if (session !== sessionId) return;
  form.remove();
  await loadHistory(false);
  if (session === sessionId && $("history-list").dataset["state"] === "loaded") $("history-status").textContent = `Named version ${v} “${name}”.`;
}

// ---- comments --------------------------------------------------------------------------------

/** A comment as written: an encrypted session's comments listed over HTTP come sealed (and one
 * that does not open says so rather than showing its ciphertext). */
function opened(c: Comment): Comment {
  const cl = client;
  if (cl === null || !cl.encrypted) return c;
  try {
    const o = cl.openComment(c);
    return { ...o, annotations: o.annotations ?? [] };
  } catch {
    return { ...c, content: "(could not be decrypted)", annotations: [] };
  }
}

function showComment(c0: Comment): void {
  const c = opened(c0);
  comments.set(c.id, c);
  renderComments();
  renderOverlay();
}

async function loadComments(): Promise<void> {
  try {
    for (const c of await sessionsApi.comments(sessionId)) comments.set(c.id, opened(c));
  } catch (e) {
    $("comments-status").textContent = `Comments: ${why(e)}`;
    return;
  }
  $("comments-status").textContent = "";
  renderComments();
  renderOverlay();
}

/** A comment request; everyone (me too) gets the result as `commentAdded`/`commentUpdated`,
 * so only a refusal is handled here. */
function commentRequest(req: Promise<Comment> | undefined): void {
  req?.catch((e: unknown) => {
    $("comments-status").textContent = notSent(e) ? "Comments need a connection: not sent." : `Comments: ${why(e)}`;
  });
}

/** A comment's region on the canvas: its annotation is in the target layer's asset pixels. */
function commentCanvasRect(c: Comment): Rect | null {
  const a = c.annotations.find((x) => x.region);
  if (!a?.region) return null;
  // On a text layer (encrypted sessions): the region is in canvas pixels from the layer's corner.
  const t = textOf(a.target ?? null);
  if (t) return { x: num(t.x) + a.region.x, y: num(t.y) + a.region.y, w: a.region.w, h: a.region.h };
  const l = layers().find((x) => x.id === a.target) ?? layers().find((x) => x.asset === c.asset_id);
  if (!l) return null;
  const src = sourceRect(l);
  const sx = l.w / src.w;
  const sy = l.h / src.h;
  return { x: l.x + (a.region.x - src.x) * sx, y: l.y + (a.region.y - src.y) * sy, w: a.region.w * sx, h: a.region.h * sy };
}
/** The part of its asset a layer shows (its crop, else the whole asset). */
function sourceRect(l: ImageLayer): Rect {
  if (l.crop) return l.crop;
  const a = doc()?.assets[l.asset];
  return { x: 0, y: 0, w: num(a?.width, l.w), h: num(a?.height, l.h) };
}

function renderComments(): void {
  const ol = $("comments");
  ol.replaceChildren();
  const all = [...comments.values()].filter((c) => !c.deleted).sort((a, b) => a.timestamp.localeCompare(b.timestamp));
  const commenter = roleAtLeast(role, "commenter");
  for (const c of all.filter((x) => !x.parent_id)) {
    const li = h("li", { "data-comment": c.id });
    if (c.resolved) li.classList.add("resolved");
    li.append(h("div", { class: "meta" }, `${nameOf(c.author_id)}${c.resolved ? " · resolved" : ""}`), h("div", { class: "content" }, c.content));
    const replies = h("ol", { class: "replies" });
    for (const r of all.filter((x) => x.parent_id === c.id)) {
      const ri = h("li", { "data-comment": r.id });
      ri.append(h("span", { class: "meta" }, `${nameOf(r.author_id)}: `), h("span", { class: "content" }, r.content));
      replies.append(ri);
    }
    li.append(replies);
    if (commenter) {
      const form = h("form", { "aria-label": `Reply to ${nameOf(c.author_id)}` });
      const input = h("input", { "aria-label": "Reply", placeholder: "Reply…", maxlength: "4000" });
      form.append(input, h("button", { type: "submit" }, "Reply"));
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        commentRequest(client?.reply(c.id, text));
        input.value = "";
      });
      const resolve = h("button", { type: "button" }, c.resolved ? "Reopen" : "Resolve");
      resolve.addEventListener("click", () => commentRequest(client?.resolveComment(c.id, !c.resolved)));
      li.append(form, resolve);
    }
    ol.append(li);
  }
}

/** After a box was dragged: which picture it is on, and the region in that picture's pixels. */
function askComment(box: Rect): void {
  const over = (l: Rect) => box.x < l.x + l.w && box.x + box.w > l.x && box.y < l.y + l.h && box.y + box.h > l.y;
  const hit = [...layers()].reverse().find(over);
  if (!hit) {
    const t = [...textLayers()].reverse().find((l) => over(textRect(l)));
    if (t) return askCommentOn(undefined, { region: regionOn(box, textRect(t)), target: t.id });
    notice(encrypted() ? "Drag the box over a layer to comment on it." : "Drag the box over a picture to comment on it.");
    return;
  }
  const src = sourceRect(hit);
  const sx = src.w / hit.w;
  const sy = src.h / hit.h;
  const x0 = Math.max(hit.x, box.x);
  const y0 = Math.max(hit.y, box.y);
  const x1 = Math.min(hit.x + hit.w, box.x + box.w);
  const y1 = Math.min(hit.y + hit.h, box.y + box.h);
  const region = {
    x: Math.round(src.x + (x0 - hit.x) * sx),
    y: Math.round(src.y + (y0 - hit.y) * sy),
    w: Math.max(1, Math.round((x1 - x0) * sx)),
    h: Math.max(1, Math.round((y1 - y0) * sy)),
  };
  // An encrypted session's comment names its layer only inside its sealed annotation.
  askCommentOn(encrypted() ? undefined : hit.asset, { region, target: hit.id });
}

/** The part of `box` over `r`, in canvas pixels from `r`'s corner. */
function regionOn(box: Rect, r: Rect): Rect {
  const x0 = Math.max(r.x, box.x);
  const y0 = Math.max(r.y, box.y);
  const x1 = Math.min(r.x + r.w, box.x + box.w);
  const y1 = Math.min(r.y + r.h, box.y + box.h);
  return { x: Math.round(x0 - r.x), y: Math.round(y0 - r.y), w: Math.max(1, Math.round(x1 - x0)), h: Math.max(1, Math.round(y1 - y0)) };
}

/** The comment dialog, for a region of a layer (of an asset, for a picture). */
function askCommentOn(asset: string | undefined, annotation: { region: Rect; target: string }): void {
  const dlg = $<HTMLDialogElement>("comment-dialog");
  const text = $<HTMLTextAreaElement>("comment-text");
  text.value = "";
  dlg.showModal();
  $("comment-form").onsubmit = (ev) => {
    ev.preventDefault();
    const content = text.value.trim();
    if (content) commentRequest(client?.addComment({ content, ...(asset === undefined ? {} : { asset_id: asset }), annotations: [annotation] }));
    dlg.close();
  };
  $("comment-cancel").onclick = () => dlg.close();
}

// ---- stage interaction -----------------------------------------------------------------------

/** In comment mode a drag on the stage draws a region to comment on. */
function setCommentMode(on: boolean): void {
  commentMode = on;
  $("mode-comment").setAttribute("aria-pressed", String(on));
  $("stage").classList.toggle("commenting", on);
}

function canvasPoint(ev: PointerEvent): { x: number; y: number } {
  const r = $("stage").getBoundingClientRect();
  const k = scale();
  return { x: Math.round((ev.clientX - r.left) / k), y: Math.round((ev.clientY - r.top) / k) };
}

let lastPresence = 0;
let presenceTimer: number | null = null;
let cursor: { x: number; y: number } | null = null;
function publishPresence(): void {
  const now = performance.now();
  const send = () => {
    lastPresence = performance.now();
    presenceTimer = null;
    client?.setPresence({ cursor, selection: selected ? [selected] : [], playhead: timeline.local.playhead, drag: timeline.local.drag });
  };
  // At most 30 a second; the last position always goes out.
  if (now - lastPresence >= 33) send();
  else if (presenceTimer === null) presenceTimer = window.setTimeout(send, 33 - (now - lastPresence));
}

function setupStage(): void {
  const stage = $("stage");
  let drag: { start: { x: number; y: number }; layer: string | null; box: HTMLElement | null; moved: boolean } | null = null;
  stage.addEventListener("pointerdown", (ev) => {
    const p = canvasPoint(ev);
    stage.focus();
    if (commentMode) {
      const box = h("div", { class: "drag-box" });
      $("overlay").append(box);
      drag = { start: p, layer: null, box, moved: false };
    } else {
      const target = (ev.target as HTMLElement).closest<HTMLElement>("[data-layer]");
      selected = target?.dataset["layer"] ?? null;
      drag = { start: p, layer: roleAtLeast(role, "editor") ? selected : null, box: target, moved: false };
      render();
      publishPresence();
    }
    stage.setPointerCapture(ev.pointerId);
  });
  stage.addEventListener("pointermove", (ev) => {
    cursor = canvasPoint(ev);
    publishPresence();
    if (!drag) return;
    const k = scale();
    const dx = cursor.x - drag.start.x;
    const dy = cursor.y - drag.start.y;
    drag.moved ||= Math.abs(dx) + Math.abs(dy) > 2;
    if (commentMode && drag.box) {
      place(drag.box, { x: Math.min(drag.start.x, cursor.x), y: Math.min(drag.start.y, cursor.y), w: Math.abs(dx), h: Math.abs(dy) }, k);
    } else if (drag.layer && drag.box) {
      const l = shownLayer(drag.layer);
      if (l) {
        drag.box.style.left = `${(l.x + dx) * k}px`;
        drag.box.style.top = `${(l.y + dy) * k}px`;
      }
    }
  });
  const end = (ev: PointerEvent) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    const p = canvasPoint(ev);
    if (commentMode) {
      d.box?.remove();
      const box = { x: Math.min(d.start.x, p.x), y: Math.min(d.start.y, p.y), w: Math.abs(p.x - d.start.x), h: Math.abs(p.y - d.start.y) };
      if (box.w >= 4 && box.h >= 4) askComment(box);
    } else if (d.layer && d.moved) {
      const layer = d.layer;
      // Relative moves: two people dragging one layer at once both move it.
      edit((doc) => media.move(doc, layer, p.x - d.start.x, p.y - d.start.y));
    }
  };
  stage.addEventListener("pointerup", end);
  stage.addEventListener("pointercancel", () => {
    drag?.box?.classList.contains("drag-box") && drag.box.remove();
    drag = null;
    render();
  });
  stage.addEventListener("pointerleave", () => {
    cursor = null;
    publishPresence();
  });
  stage.addEventListener("keydown", (ev) => {
    const id = shownLayer(selected)?.id;
    if (id === undefined || !roleAtLeast(role, "editor")) return;
    const step = ev.shiftKey ? 50 : 10;
    const moves: Record<string, [number, number]> = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const m = moves[ev.key];
    if (m) {
      ev.preventDefault();
      edit((d) => media.move(d, id, m[0], m[1]));
    } else if (ev.key === "Delete") {
      ev.preventDefault();
      edit((d) => [del(layerPath(d, id))]);
    }
  });
  new ResizeObserver(() => renderOverlay()).observe(stage);
}

// ---- controls --------------------------------------------------------------------------------

function titleEdit(): void {
  const d = doc();
  const next = $<HTMLInputElement>("title").value;
  if (!d || d.title === next) return;
  edit(() => [textChange(["title"], d.title, next)]);
  scheduleTitleSync();
}

async function upload(file: File): Promise<void> {
  const c = client;
  if (c === null) return;
  // An encrypted session's upload is sealed here (the SDK's `upload`), and the server can't read
  // it: the page reads the picture's size itself, and keeps the decoded picture to draw it.
  let local: ImageBitmap | null = null;
  // Read once: checked, decoded and sealed from the same bytes.
  let body: File | Uint8Array = file;
  if (c.encrypted) {
    if (/^(video|audio)\//.test(file.type)) {
      notice("Videos and sounds can't be added to an end-to-end encrypted session yet: only pictures (PNG, JPEG, WebP).");
      return;
    }
    // The others' pages check it the same way before they decode it (the server can't).
    body = new Uint8Array(await file.arrayBuffer());
    const refused = pictureRefusal(body);
    if (refused !== null) {
      notice(`This file can't be added: it ${refused}. Nothing was uploaded.`);
      return;
    }
    try {
      local = await createImageBitmap(file);
    } catch {
      notice("This file is not a picture this browser can read (PNG, JPEG or WebP): nothing was uploaded.");
      return;
    }
  }
  notice(c.encrypted ? "Sealing and uploading…" : "Uploading…");
  let a: AssetInfo;
  try {
    a = await c.upload(body);
  } catch (e) {
    local?.close();
    if (e instanceof SealError && e.kind === "no_key") notice("Upload not sealed: this page has no key for the session's current key epoch yet. Open the owner's new link.");
    else notice(e instanceof SealError ? `Upload not sealed (${e.message})` : `Upload refused (${why(e)})`);
    return;
  }
  if (client !== c) {
    local?.close();
    return; // another session was opened meanwhile
  }
  notice("");
  if (local !== null) pictures.set(a.id, { state: "ready", bitmap: local });
  const aw = local?.width ?? num(a.width, 1);
  const ah = local?.height ?? num(a.height, 1);
  const id = `L${Math.random().toString(36).slice(2, 8)}`;
  edit((d) => {
    // Fit into 60% of the canvas, centred, keeping the picture's aspect.
    const fit = Math.min(1, (d.canvas.width * 0.6) / aw, (d.canvas.height * 0.6) / ah);
    const w = Math.round(aw * fit);
    const hh = Math.round(ah * fit);
    const layer = { id, kind: "image", asset: a.id, x: Math.round((d.canvas.width - w) / 2), y: Math.round((d.canvas.height - hh) / 2), w, h: hh };
    return [set(["assets", a.id], { kind: "image", width: aw, height: ah }), ins(["canvas", "layers", d.canvas.layers.length], layer)];
  });
  selected = id;
  render();
  publishPresence();
}

function setupControls(): void {
  inbox.setup({ api: sessionsApi, open, current: () => (client !== null && client.accessError === null ? sessionId : "") });
  timeline.setup({
    doc,
    // No clips in an encrypted session: it takes sealed pictures only (the page draws no
    // frames, and the server can't probe a sealed video).
    canEdit: () => roleAtLeast(role, "editor") && !encrypted(),
    me: () => me,
    edit,
    others: () => [...(client?.presence ?? [])].filter(([u]) => u !== me),
    colorOf: colorFor,
    token: freshToken,
    // The server renders no frames of an encrypted session.
    sessionPath: () => (client === null || encrypted() ? null : `/v1/sessions/${encodeURIComponent(sessionId)}`),
    tier: chosenTier,
    reportDownload: (bytes, ms) => client?.connection.reportDownload(bytes, ms),
    upload: async (file) => {
      const c = client;
      if (c === null) return null;
      notice("Uploading…");
      try {
        const a = await c.upload(file);
        notice("");
        return client === c ? a : null;
      } catch (e) {
        notice(`Upload refused (${why(e)})`);
        return null;
      }
    },
    publish: publishPresence,
    notice,
  });
  $("signin-form").addEventListener("submit", (ev) => void signIn(ev));
  $("new-session-form").addEventListener("submit", (ev) => void newSession(ev));
  $("new-encrypted-session").addEventListener("click", () => void newEncryptedSession());
  $("open-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $<HTMLInputElement>("open-id").value;
    const id = sessionFromInput(text);
    if (id) open(id, keyFromInput(text) ?? storedKey(id));
  });
  $("add-text-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>("add-text-input");
    const text = input.value.trim();
    if (!text || !encrypted()) return;
    const id = `T${Math.random().toString(36).slice(2, 8)}`;
    edit((d) => {
      const layer = { id, kind: "text", text, x: Math.round(d.canvas.width * 0.3), y: Math.round(d.canvas.height * 0.4), size: 96, color: "#1f2a44" };
      return [ins(["canvas", "layers", d.canvas.layers.length], layer)];
    });
    input.value = "";
    selected = id;
    render();
    publishPresence();
  });
  const onText = (id: string, f: (d: MontageDocument, l: TextLayer) => Op) =>
    $(id).addEventListener("change", () => {
      const l = textOf(selected);
      if (l) edit((d) => f(d, l));
    });
  onText("t-text", (d, l) => {
    const next = $<HTMLInputElement>("t-text").value;
    return next === l.text ? [] : [textChange([...layerPath(d, l.id), "text"], l.text, next)];
  });
  onText("t-size", (d, l) => {
    const v = Number($<HTMLInputElement>("t-size").value);
    return Number.isFinite(v) && v > 0 ? [set([...layerPath(d, l.id), "size"], v)] : [];
  });
  $("text-delete").addEventListener("click", () => {
    const l = textOf(selected);
    if (l) edit((d) => [del(layerPath(d, l.id))]);
  });
  $("my-sessions").addEventListener("click", () => void showSessions());
  $("no-access-back").addEventListener("click", () => void showSessions());
  $("no-access-again").addEventListener("click", () => client?.connect());
  $("share").addEventListener("click", openShare);
  $("history").addEventListener("click", openHistory);
  $("history-close").addEventListener("click", () => closeHistoryDialog());
  $("history-more").addEventListener("click", () => void loadHistory(true));
  $("history-pick").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = typedVersion();
    if (v !== null) void previewVersion(v);
  });
  $("history-restore").addEventListener("click", () => {
    const v = typedVersion();
    if (v !== null) void restoreVersion(v);
  });
  $("history-name").addEventListener("click", () => {
    const v = typedVersion();
    if (v !== null) showNameForm($("history-pick-name"), v, historyVersions.find((x) => x.version === v)?.name ?? "");
  });
  $("share-done").addEventListener("click", () => $<HTMLDialogElement>("share-dialog").close());
  $("link-role").addEventListener("change", () => void changeLinkRole());
  $("copy-link").addEventListener("click", () => void copyLink());
  $("add-member-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>("add-member-user");
    const user = input.value.trim();
    if (!user) return;
    setRole(user, $<HTMLSelectElement>("add-member-role").value);
    input.value = "";
  });
  $("delete-session").addEventListener("click", () => {
    $("delete-session").hidden = true;
    $("delete-confirm").hidden = false;
  });
  $("delete-no").addEventListener("click", () => {
    $("delete-confirm").hidden = true;
    $("delete-session").hidden = false;
  });
  $("delete-yes").addEventListener("click", () => void deleteSession());
  // Going offline in the browser disconnects; edits queue and go out once back online.
  window.addEventListener("offline", () => client?.disconnect());
  window.addEventListener("online", () => client?.connect());
  $("title").addEventListener("input", titleEdit);
  $("undo").addEventListener("click", () => client?.undo());
  $("redo").addEventListener("click", () => client?.redo());
  document.addEventListener("keydown", (ev) => {
    if (!(ev.ctrlKey || ev.metaKey) || !client || !roleAtLeast(role, "editor")) return;
    const k = ev.key.toLowerCase();
    if (k === "z" || k === "y") {
      ev.preventDefault();
      if (k === "y" || ev.shiftKey) client.redo();
      else client.undo();
    }
  });
  $<HTMLInputElement>("upload").addEventListener("change", (ev) => {
    const input = ev.target as HTMLInputElement;
    const f = input.files?.[0];
    if (f) void upload(f).finally(() => (input.value = ""));
  });
  $("mode-comment").addEventListener("click", () => setCommentMode(!commentMode));
  $("tier").addEventListener("change", subscribePreviews);
  $("invite").addEventListener("click", () => void createInvite());

  /** An edit of the selected layer from its panel. */
  const on = (id: string, ev: string, f: (d: MontageDocument, l: ImageLayer) => Op) =>
    $(id).addEventListener(ev, () => {
      const l = layerOf(selected);
      if (l) edit((d) => f(d, l));
    });
  const numberOf = (id: string) => Number($<HTMLInputElement>(id).value);
  const at = (d: MontageDocument, l: ImageLayer, ...rest: string[]) => [...layerPath(d, l.id), ...rest];
  for (const k of ["x", "y", "w", "h"]) {
    on(`l-${k}`, "change", (d, l) => {
      const v = numberOf(`l-${k}`);
      return Number.isFinite(v) && (v > 0 || k === "x" || k === "y") ? [set(at(d, l, k), v)] : [];
    });
  }
  on("rot-l", "click", (d, l) => media.rotate(d, l.id, -90));
  on("rot-r", "click", (d, l) => media.rotate(d, l.id, 90));
  on("flip-h", "click", (d, l) => [set(at(d, l, "flip"), { h: !l.flip?.h, v: !!l.flip?.v })]);
  on("flip-v", "click", (d, l) => [set(at(d, l, "flip"), { h: !!l.flip?.h, v: !l.flip?.v })]);
  on("crop-apply", "click", (d, l) => {
    const rect = { x: numberOf("c-x"), y: numberOf("c-y"), w: numberOf("c-w"), h: numberOf("c-h") };
    return rect.w > 0 && rect.h > 0 && rect.x >= 0 && rect.y >= 0 ? media.crop(d, l.id, rect) : [];
  });
  on("crop-reset", "click", (d, l) => (l.crop ? [del(at(d, l, "crop"))] : []));
  on("a-opacity", "change", (d, l) => [set(at(d, l, "opacity"), numberOf("a-opacity"))]);
  for (const k of ["brightness", "contrast", "saturation", "exposure"]) {
    on(`a-${k}`, "change", (d, l) => media.adjust(d, l.id, k, numberOf(`a-${k}`)));
  }
  // Layer order is the order of `canvas.layers`, text layers included.
  const reorder = (by: number) => (d: MontageDocument, l: ImageLayer) => {
    const p = layerPath(d, l.id);
    const to = (p[2] as number) + by;
    return to >= 0 && to < d.canvas.layers.length ? [mov(p, to)] : [];
  };
  on("layer-up", "click", reorder(1));
  on("layer-down", "click", reorder(-1));
  on("layer-delete", "click", (d, l) => [del(layerPath(d, l.id))]);
}

// ---- start -----------------------------------------------------------------------------------

function start(): void {
  setupControls();
  setupStage();
  const params = new URLSearchParams(location.search);
  const saved = sessionStorage.getItem("montage.signin");
  const nameInput = $<HTMLInputElement>("signin-name");
  const sessionInput = $<HTMLInputElement>("signin-session");
  sessionInput.value = params.get("session") ?? "";
  if (saved) {
    try {
      const s = JSON.parse(saved) as { name?: string; session?: string };
      nameInput.value = s.name ?? "";
      if (!sessionInput.value) sessionInput.value = s.session ?? "";
    } catch {
      // ignore
    }
  }
  if (params.get("invite")) {
    sessionInput.value ||= "(from the invite)";
  }
  showConnection("offline", 0);
  render();
  // For tests and the curious: the replica, read-only.
  (window as unknown as { montage: unknown }).montage = {
    doc: () => client?.doc ?? null,
    version: () => client?.version ?? 0,
    pending: () => client?.pendingCount ?? 0,
    state: () => client?.connectionState ?? "offline",
    downlinkMbps: () => client?.connection.downlinkMbps ?? null,
    encrypted: () => client?.encrypted ?? false,
    /** An encrypted session's pictures by asset id: `loading`, `ready` or `failed`. */
    pictures: () => Object.fromEntries([...pictures].map(([id, p]) => [id, p.state])),
  };
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
