/**
 * The timeline under the canvas: video tracks and their clips, a playhead per person (presence
 * `playhead`), and the composition at my playhead (`GET …/frame?t=`). Editors drag a clip to
 * move it, drag its edges to trim it and split it at the playhead; while a drag lasts it travels
 * as presence (`drag`), so others see the clip move, and the drop is one edit.
 */
import { type AssetInfo, type Clip, type MontageDocument, type Op, type Track, ins, media, set } from "../../client/src/index.js";
import { $, h } from "./dom.js";

/** What the page gives the timeline. */
export interface Host {
  doc(): MontageDocument | null;
  canEdit(): boolean;
  me(): string;
  edit(make: (d: MontageDocument) => Op): void;
  /** Everyone else's presence data, by user. */
  others(): Iterable<[string, unknown]>;
  colorOf(user: string): string;
  token(): Promise<string>;
  /** `/v1/sessions/{id}`, or null without a session. */
  sessionPath(): string | null;
  tier(): string;
  /** A download's size and time, for the connection's downlink estimate. */
  reportDownload(bytes: number, ms: number): void;
  upload(file: File): Promise<AssetInfo | null>;
  /** Sends my presence again (it carries {@link local}). */
  publish(): void;
  notice(text: string): void;
}

/** A clip being dragged: where it is shown until the drop. */
export interface Drag {
  clip: string;
  start: number;
  in: number;
  out: number;
}

/** My side of the timeline, sent with my presence. */
export const local: { playhead: number; drag: Drag | null } = { playhead: 0, drag: null };

/** Pixels per second. */
const PPS = 60;
/** Times snap to 1/16 s: exact in binary, so concurrent edits meet on equal numbers. */
const snap = (t: number) => Math.max(0, Math.round(t * 16) / 16);
/** The shortest clip a trim leaves (the engine's `MIN_CLIP_LENGTH`). */
const MIN_LENGTH = 0.0625;

let host: Host;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The document's tracks, read defensively: anything malformed is skipped, not drawn. */
function tracks(d: MontageDocument | null): Track[] {
  const list: unknown = d?.timeline?.tracks;
  if (!Array.isArray(list)) return [];
  return list.filter(isObj).map((t) => ({
    id: String(t["id"] ?? ""),
    kind: t["kind"] === "audio" ? "audio" : "video",
    clips: (Array.isArray(t["clips"]) ? t["clips"] : []).filter(isObj).map((c) => ({
      id: String(c["id"] ?? ""),
      asset: String(c["asset"] ?? ""),
      start: Number(c["start"] ?? 0),
      in: Number(c["in"] ?? 0),
      out: Number(c["out"] ?? 0),
    })),
  }));
}

function drag(data: unknown): Drag | null {
  const d = (data as { drag?: unknown } | null)?.drag as Partial<Drag> | null | undefined;
  if (!d || typeof d.clip !== "string" || ![d.start, d.in, d.out].every((n) => typeof n === "number" && Number.isFinite(n))) return null;
  return d as Drag;
}

export function playheadOf(data: unknown): number | null {
  const t = (data as { playhead?: unknown } | null)?.playhead;
  return typeof t === "number" && Number.isFinite(t) && t >= 0 ? t : null;
}

const label = (t: number) => `${t.toFixed(2)} s`;

/** Draws the tracks, the clips (where a drag shows them), and everyone's playhead. */
export function render(): void {
  const d = host.doc();
  const editor = host.canEdit();
  $("video-btn").hidden = !editor;
  $<HTMLInputElement>("video-upload").disabled = !editor;
  $("split").hidden = !editor;
  const box = $("tracks");
  const dragged = new Map<string, { drag: Drag; user: string }>();
  for (const [user, data] of host.others()) {
    const g = drag(data);
    if (g) dragged.set(g.clip, { drag: g, user });
  }
  if (local.drag) dragged.set(local.drag.clip, { drag: local.drag, user: host.me() });
  const all = tracks(d);
  let end = 10;
  box.replaceChildren();
  for (const t of all) {
    const row = h("div", { class: "track", "data-track": t.id, "aria-label": `${t.kind} track ${t.id}` });
    for (const c of t.clips) {
      const g = dragged.get(c.id);
      const shown = g ? g.drag : c;
      const len = shown.out - shown.in;
      if (!(len > 0)) continue;
      end = Math.max(end, shown.start + len);
      const el = h("div", {
        class: "clip",
        "data-clip": c.id,
        role: "button",
        "aria-label": `Clip ${c.id}: ${label(shown.start)} to ${label(shown.start + len)}`,
      });
      el.style.left = `${shown.start * PPS}px`;
      el.style.width = `${Math.max(2, len * PPS)}px`;
      if (g && g.user !== host.me()) {
        el.classList.add("dragged");
        el.style.setProperty("--drag-color", host.colorOf(g.user));
        el.dataset["draggedBy"] = g.user;
      }
      el.append(h("span", { class: "edge in", "data-edge": "in", "aria-label": `Trim the start of ${c.id}` }), h("span", { class: "name" }, c.id), h("span", { class: "edge out", "data-edge": "out", "aria-label": `Trim the end of ${c.id}` }));
      if (t.kind === "audio") {
        el.classList.add("audio");
        const svg = waveform({ ...c, in: shown.in, out: shown.out }, len * PPS);
        if (svg) el.append(svg);
      }
      row.append(el);
    }
    box.append(row);
  }
  if (all.length === 0) box.append(h("p", { class: "muted" }, "No tracks yet: add a video."));
  const heads: [string, number][] = [[host.me(), local.playhead]];
  for (const [user, data] of host.others()) {
    const t = playheadOf(data);
    if (t !== null) heads.push([user, t]);
  }
  for (const [user, t] of heads) {
    end = Math.max(end, t + 1);
    const mine = user === host.me();
    const line = h("div", { class: mine ? "playhead mine" : "playhead", "data-playhead": user, title: `${user}: ${label(t)}` });
    line.style.left = `${t * PPS}px`;
    line.style.setProperty("--head-color", host.colorOf(user));
    box.append(line);
  }
  box.style.width = `${(end + 2) * PPS}px`;
  $("playhead-info").textContent = `Playhead ${label(local.playhead)}`;
}

// ---- waveforms -----------------------------------------------------------------------------------

/** Peaks per asset (`GET /v1/assets/{id}/waveform?buckets=…`), fetched once each. */
const waves = new Map<string, { duration: number; peaks: number[] } | "loading">();
const WAVE_BUCKETS = 2000;

function wave(asset: string): { duration: number; peaks: number[] } | null {
  const w = waves.get(asset);
  if (w === undefined) {
    waves.set(asset, "loading");
    void (async () => {
      try {
        const r = await fetch(`/v1/assets/${encodeURIComponent(asset)}/waveform?buckets=${WAVE_BUCKETS}`, { headers: { Authorization: `Bearer ${await host.token()}` } });
        const j = (await r.json()) as { duration?: unknown; peaks?: unknown };
        if (!r.ok || typeof j.duration !== "number" || !Array.isArray(j.peaks)) throw new Error(`HTTP ${r.status}`);
        waves.set(asset, { duration: j.duration, peaks: j.peaks.map(Number) });
        render();
      } catch {
        // Drawn without one; asked again on the next page load.
      }
    })();
    return null;
  }
  return w === "loading" ? null : w;
}

/** The clip's part of its asset's waveform as bars, one per 2 px. */
function waveform(c: Clip, widthPx: number): SVGSVGElement | null {
  const w = wave(c.asset);
  if (w === null || w.peaks.length === 0 || !(w.duration > 0)) return null;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "wave");
  svg.setAttribute("viewBox", `0 0 ${Math.max(1, Math.round(widthPx))} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  const bars = Math.max(1, Math.floor(widthPx / 2));
  let d = "";
  for (let i = 0; i < bars; i++) {
    const t = c.in + ((c.out - c.in) * (i + 0.5)) / bars;
    const k = Math.min(w.peaks.length - 1, Math.max(0, Math.floor((t / w.duration) * w.peaks.length)));
    const hgt = Math.max(1, ((w.peaks[k] ?? 0) / 255) * 100);
    d += `M${i * 2 + 1} ${50 - hgt / 2}V${50 + hgt / 2}`;
  }
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  svg.append(path);
  svg.dataset["bars"] = String(bars);
  return svg;
}

// ---- frames at my playhead ---------------------------------------------------------------------

let frameWanted: number | null = null;
let frameBusy = false;
let frameUrl: string | null = null;

/** Shows the composition at my playhead; while one is fetched, only the newest position waits. */
export function showFrame(): void {
  frameWanted = local.playhead;
  if (!frameBusy) void pumpFrames();
}

async function pumpFrames(): Promise<void> {
  frameBusy = true;
  try {
    while (frameWanted !== null) {
      const t = frameWanted;
      frameWanted = null;
      const path = host.sessionPath();
      if (path === null) return;
      try {
        const headers = { Authorization: `Bearer ${await host.token()}` };
        const r = await fetch(`${path}/frame?t=${t}&tier=${host.tier()}`, { headers });
        if (!r.ok) {
          $("frame-info").textContent = `No frame at ${label(t)} (${r.status})`;
          continue;
        }
        const t0 = performance.now();
        const blob = await r.blob();
        host.reportDownload(blob.size, performance.now() - t0);
        const img = $<HTMLImageElement>("frame");
        if (frameUrl) URL.revokeObjectURL(frameUrl);
        frameUrl = URL.createObjectURL(blob);
        img.src = frameUrl;
        img.dataset["t"] = String(t);
        img.dataset["clips"] = r.headers.get("x-montage-clips") ?? "";
        $("frame-info").textContent = `Frame at ${label(t)}`;
      } catch (e) {
        $("frame-info").textContent = `No frame (${(e as Error).message})`;
      }
    }
  } finally {
    frameBusy = false;
  }
}

/** Moves my playhead: others see it (presence), and the frame follows. */
export function setPlayhead(t: number): void {
  local.playhead = snap(t);
  host.publish();
  render();
  showFrame();
}

// ---- editing -----------------------------------------------------------------------------------

function clipOf(id: string): Clip | undefined {
  for (const t of tracks(host.doc())) {
    const c = t.clips.find((x) => x.id === id);
    if (c) return c;
  }
  return undefined;
}

function timeAt(ev: PointerEvent): number {
  const r = $("tracks").getBoundingClientRect();
  return (ev.clientX - r.left) / PPS;
}

/** A pointer drag on a clip (move) or one of its edges (trim): shown as presence while it lasts,
 * one edit on release. */
function beginDrag(ev: PointerEvent, c: Clip, edge: string | undefined): void {
  const x0 = ev.clientX;
  const len = c.out - c.in;
  const move = (e: PointerEvent) => {
    const dt = (e.clientX - x0) / PPS;
    let g: Drag;
    if (edge === "in") {
      // The start moves and the media start with it; the end stays. Neither the media nor the
      // timeline start goes below 0, and the clip keeps its minimum length.
      const shift = Math.max(-c.start, Math.min(snap(Math.max(-c.in, dt) + c.in) - c.in, len - MIN_LENGTH));
      g = { clip: c.id, start: c.start + shift, in: c.in + shift, out: c.out };
    } else if (edge === "out") {
      g = { clip: c.id, start: c.start, in: c.in, out: Math.max(c.in + MIN_LENGTH, snap(c.out + dt)) };
    } else {
      g = { clip: c.id, start: snap(c.start + dt), in: c.in, out: c.out };
    }
    local.drag = g;
    host.publish();
    render();
  };
  // On the window: every render replaces the clip's element under the pointer.
  const up = () => {
    window.removeEventListener("pointermove", move);
    window.removeEventListener("pointerup", up);
    window.removeEventListener("pointercancel", up);
    const g = local.drag;
    local.drag = null;
    host.publish();
    if (g && (g.start !== c.start || g.in !== c.in || g.out !== c.out)) {
      host.edit((d) => {
        if (edge === "in") return media.trim(d, c.id, { from: g.start });
        if (edge === "out") return media.trim(d, c.id, { to: g.start + (g.out - g.in) });
        return [set([...media.clipPath(d, c.id), "start"], g.start)];
      });
    }
    render();
  };
  window.addEventListener("pointermove", move);
  window.addEventListener("pointerup", up);
  window.addEventListener("pointercancel", up);
}

/** Cuts the top clip under my playhead. */
function splitAtPlayhead(): void {
  const t = local.playhead;
  const all = tracks(host.doc());
  for (const track of [...all].reverse()) {
    const c = track.clips.find((x) => t > x.start && t < x.start + (x.out - x.in));
    if (c) {
      host.edit((d) => media.split(d, c.id, t));
      return;
    }
  }
  host.notice(`No clip plays at ${label(t)} to split.`);
}

/** Adds an uploaded video or sound at the end of the first track of its kind (made if there is
 * none). */
async function addMedia(file: File): Promise<void> {
  const a = await host.upload(file);
  if (a === null) return;
  const kind = a.kind;
  if (kind !== "video" && kind !== "audio") {
    host.notice("That is a picture: upload it above the canvas. The timeline takes videos and sounds.");
    return;
  }
  const duration = Number(a.duration ?? 0) > 0 ? Number(a.duration) : 5;
  const id = `C${Math.random().toString(36).slice(2, 8)}`;
  const entry: Record<string, number | string> = { kind, duration };
  if (a.width !== undefined) entry["width"] = a.width;
  if (a.height !== undefined) entry["height"] = a.height;
  host.edit((d) => {
    const all = tracks(d);
    const ti = all.findIndex((t) => t.kind === kind);
    const clip = (start: number) => ({ id, asset: a.id, start, in: 0, out: Math.max(MIN_LENGTH, snap(duration)) }) satisfies Clip;
    const asset = set(["assets", a.id], entry);
    if (ti < 0) {
      const track = { id: `T${Math.random().toString(36).slice(2, 6)}`, kind, clips: [clip(0)] };
      return [asset, ins(["timeline", "tracks", all.length], track)];
    }
    const clips = all[ti]!.clips;
    const end = clips.reduce((m, c) => Math.max(m, c.start + (c.out - c.in)), 0);
    return [asset, ins(["timeline", "tracks", ti, "clips", clips.length], clip(snap(end)))];
  });
}

export function setup(h0: Host): void {
  host = h0;
  const box = $("tracks");
  box.addEventListener("pointerdown", (ev) => {
    const el = (ev.target as HTMLElement).closest<HTMLElement>("[data-clip]");
    const c = el ? clipOf(el.dataset["clip"] ?? "") : undefined;
    if (c && host.canEdit()) {
      ev.preventDefault();
      beginDrag(ev, c, (ev.target as HTMLElement).dataset["edge"]);
      return;
    }
    // Anywhere else: the playhead goes there, and follows the pointer while it is down.
    setPlayhead(timeAt(ev));
    box.setPointerCapture(ev.pointerId);
    const scrub = (e: PointerEvent) => setPlayhead(timeAt(e));
    const stop = () => {
      box.removeEventListener("pointermove", scrub);
      box.removeEventListener("pointerup", stop);
      box.removeEventListener("pointercancel", stop);
    };
    box.addEventListener("pointermove", scrub);
    box.addEventListener("pointerup", stop);
    box.addEventListener("pointercancel", stop);
  });
  $("split").addEventListener("click", splitAtPlayhead);
  $<HTMLInputElement>("video-upload").addEventListener("change", (ev) => {
    const input = ev.target as HTMLInputElement;
    const f = input.files?.[0];
    input.value = "";
    if (f) void addMedia(f);
  });
}
