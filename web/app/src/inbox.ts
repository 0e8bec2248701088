/**
 * The inbox (docs/PROTOCOL.md "Notifications"): a bell in the header with the number of unread
 * items, and a dialog listing them newest first. It fills from `GET /v1/notifications` whenever
 * the page's connection comes online (items made while it was away are not sent again) and on
 * the sessions list, and follows the connection's `notification` events in between; a grouped
 * reply comes again with the same id and replaces its item. A click on an item marks it read
 * and opens its session.
 */
import type { ConnectionStatus, MontageConnection, Notification, SessionsApi } from "../../client/src/index.js";
import { $, h, why } from "./dom.js";

/** One page of the server's inbox; older items are not paged in (the bell counts what is here). */
const PAGE = 50;
/** Items kept in the page: a page plus what arrives live before the next fill. */
const KEEP = 100;

let api: SessionsApi | null = null;
let openSession: (session: string) => void = () => {};
let currentSession: () => string = () => "";
const items = new Map<string, Notification>();
/** The latest fill: older answers are dropped. */
let loadSeq = 0;
let unwatch: (() => void) | null = null;

/** Wires the bell and the dialog; `open` switches the page to a session, `current` names the
 * one shown. */
export function setup(opts: { api: SessionsApi; open: (session: string) => void; current: () => string }): void {
  api = opts.api;
  openSession = opts.open;
  currentSession = opts.current;
  $("bell").addEventListener("click", () => {
    $("inbox-status").textContent = "";
    render();
    $<HTMLDialogElement>("inbox").showModal();
  });
  $("inbox-close").addEventListener("click", close);
  $("inbox-read-all").addEventListener("click", () => void markAllRead());
}

/** Signed in: the bell shows (the inbox fills with the first view: the list or a session). */
export function signedIn(): void {
  $("bell").hidden = false;
}

/** Follows `conn`'s notifications (and refills when it comes online); null stops following. */
export function watch(conn: MontageConnection | null): void {
  unwatch?.();
  unwatch = null;
  if (conn === null) return;
  const offs = [
    conn.on("notification", (n) => {
      items.set(n.id, n);
      render();
    }),
    conn.on("status", (s: ConnectionStatus) => {
      if (s.state === "online") void refresh();
    }),
  ];
  unwatch = () => offs.forEach((off) => off());
}

/** Reads the newest page of the inbox and merges it in. */
export async function refresh(): Promise<void> {
  if (api === null) return;
  const seq = ++loadSeq;
  let page: Notification[];
  try {
    page = await api.notifications({ unread: false, limit: PAGE });
  } catch (e) {
    if (seq === loadSeq) $("inbox-status").textContent = `Notifications could not be read (${why(e)})`;
    return;
  }
  if (seq !== loadSeq) return;
  $("inbox-status").textContent = "";
  for (const n of page) {
    // A live update that came while the request was out is newer than the answer.
    const mine = items.get(n.id);
    if (mine === undefined || mine.time <= n.time) items.set(n.id, n);
  }
  render();
}

function close(): void {
  const dlg = $<HTMLDialogElement>("inbox");
  if (dlg.open) dlg.close();
}

function sorted(): Notification[] {
  const all = [...items.values()].sort((a, b) => b.time - a.time);
  for (const old of all.splice(KEEP)) items.delete(old.id);
  return all;
}

/** What happened, in words, after the actor's name. */
function words(n: Notification): string {
  switch (n.kind) {
    case "mention":
      return "mentioned you in a comment";
    case "reply":
      return n.count > 1 ? `replied to your comment (${n.count} replies)` : "replied to your comment";
    case "invite":
      return `invited you${n.role ? ` as ${n.role}` : ""}`;
    case "role_changed":
      return n.role === "none" ? "removed your access" : `made you ${n.role ?? "a member"}`;
    case "award":
      return n.actor === "montage" ? "gave you a badge" : "awarded your work";
    case "suggestion_accepted":
      return "accepted your suggestion";
    case "suggestion_rejected":
      return "declined your suggestion";
    default:
      return String(n.kind).replace(/_/g, " ");
  }
}

function render(): void {
  const list = sorted();
  const unread = list.filter((n) => !n.read).length;
  const count = $("bell-count");
  count.textContent = String(unread);
  count.hidden = unread === 0;
  $("bell").setAttribute("aria-label", unread === 0 ? "Notifications" : `Notifications, ${unread} unread`);
  $<HTMLButtonElement>("inbox-read-all").disabled = unread === 0;
  const ul = $("inbox-list");
  ul.replaceChildren();
  if (list.length === 0) ul.append(h("li", { class: "muted" }, "Nothing yet: mentions, replies, invites and role changes show here."));
  for (const n of list) {
    const li = h("li", { "data-notification": n.id, "data-kind": n.kind, "data-session": n.session });
    if (!n.read) li.classList.add("unread");
    const here = n.session === currentSession();
    const text = `${n.actor} ${words(n)}`;
    const item = h("button", { type: "button", class: "item", title: here ? "In this session" : `Open ${n.session}` });
    item.append(
      h("span", { class: "what" }, text),
      h("span", { class: "where muted" }, `${here ? "this session" : n.session} · ${new Date(n.time).toLocaleString()}`),
    );
    item.addEventListener("click", () => choose(n));
    li.append(item);
    ul.append(li);
  }
}

/** An item clicked: read, and its session opened unless it is the one shown. */
function choose(n: Notification): void {
  close();
  if (!n.read) {
    items.set(n.id, { ...n, read: true });
    render();
    // Shown read at once; a failure only means it is unread on the next fill.
    api?.markRead([n.id]).catch((e: unknown) => console.warn("notification not marked read", e));
  }
  if (n.session !== currentSession()) openSession(n.session);
}

async function markAllRead(): Promise<void> {
  if (api === null) return;
  const status = $("inbox-status");
  status.textContent = "Marking all read…";
  // What the server marks: items that come while the request is out may stay unread there.
  const shown = [...items.values()].filter((n) => !n.read).map((n) => n.id);
  try {
    await api.markRead("all");
  } catch (e) {
    status.textContent = `Not marked read (${why(e)})`;
    return;
  }
  status.textContent = "";
  for (const id of shown) {
    const n = items.get(id);
    if (n !== undefined) items.set(id, { ...n, read: true });
  }
  render();
}
