/**
 * The download of a large state that a `joined` names instead of carrying it (`state_ref`,
 * docs/PROTOCOL.md "Large states"): `GET /v1/sessions/{id}/state?version=V`, read as a stream so
 * that a cut (an error, a fetch that fails, a body that stops for 20 s) resumes with `Range:
 * bytes=HAVE-` and `If-Range` (which never splices two states) instead of starting over; never
 * more bytes than announced. As the Rust SDK's (crates/client/src/http.rs `download`).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { type FetchLike, errorOf } from "./access.js";
import type { ErrorCode, ServerErrorCode } from "./protocol.js";

/** `joined.state_ref`: the size and SHA-256 (lowercase hex) of the state's JSON. */
export interface StateRef {
  bytes: number;
  sha256: string;
}

/** The bytes of a state received so far (`buf` is the whole state's size; `have` of it came). */
export interface PartialState {
  sha256: string;
  buf: Uint8Array<ArrayBuffer>;
  have: number;
}

/** Tries in a row that bring no byte further before a download gives up. */
export const DOWNLOAD_TRIES = 6;
/** A request or body that brings nothing for this long is cut and resumed. */
export const DOWNLOAD_STALL_MS = 20_000;
/** Least progress between two `loading` events. */
export const LOADING_STEP = 64 * 1024;
/** The longest wait before a retry. */
const MAX_BACKOFF_MS = 30_000;

/** `value` as a `joined.state_ref`, or null when it is not one. */
export function stateRefOf(value: unknown): StateRef | null {
  const r = value as { bytes?: unknown; sha256?: unknown } | null | undefined;
  if (typeof r !== "object" || r === null) return null;
  const { bytes, sha256 } = r;
  if (typeof bytes !== "number" || !Number.isSafeInteger(bytes) || bytes < 0) return null;
  if (typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256)) return null;
  return { bytes, sha256 };
}

/** SHA-256 as lowercase hex: the platform's (`crypto.subtle`, native and off the main thread)
 * where there is one, else @noble/hashes' (already in the bundle for encrypted sessions):
 * insecure `http:` pages have no `crypto.subtle`. */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (subtle !== undefined) return bytesToHex(new Uint8Array(await subtle.digest("SHA-256", bytes)));
  return bytesToHex(sha256(bytes));
}

/** Why a download ended without the state: `code` for the session's `error` event. */
export class DownloadError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "DownloadError";
    this.code = code;
  }
}

/** What a download needs from its session. */
export interface DownloadOptions {
  /** The whole URL, `…/v1/sessions/{id}/state?version=V`. */
  url: string;
  fetch: FetchLike;
  /** The bearer token (the connection's, current at each request). */
  token: () => Promise<string>;
  ref: StateRef;
  /** Where the bytes go: may hold the first ones already (a cut download of the same state). */
  part: PartialState;
  /** Runs `fn` after `ms` (the connection's timers); returns a function cancelling it. */
  later(fn: () => void, ms: number): () => void;
  /** The bytes held after each piece. */
  progress(received: number): void;
}

/** How one request ended, short of an answer worth going on with: a cut worth resuming (after
 * `retryMs` if it says), or a refusal. */
type Ended = { cut: string; retryMs?: number } | { fail: DownloadError } | null;

const CANCELLED = "cancelled";

/**
 * One download of a large state into `part`. {@link StateDownload.run} resolves with the bytes
 * (exactly `ref.bytes`; the hash is the caller's to check) or rejects with a
 * {@link DownloadError}: a refusal (403, 404, 409 … or more bytes than announced), or
 * {@link DOWNLOAD_TRIES} tries in a row that end with no more bytes than it ever held (bytes won
 * back after starting over are not new). `part` keeps what came either way, for a later download
 * of the same state.
 */
export class StateDownload {
  private stopped = false;
  /** Ends what the download awaits now (a request, a read, a backoff). */
  private interrupt: (() => void) | null = null;

  constructor(private readonly o: DownloadOptions) {}

  /** Stops the download (superseded, or its socket closed): nothing more is written to `part`,
   * and `run` rejects. */
  cancel(): void {
    this.stopped = true;
    this.interrupt?.();
  }

  /** Downloads the rest of the state, resuming after cuts. */
  async run(): Promise<Uint8Array<ArrayBuffer>> {
    const { ref, part } = this.o;
    let stuck = 0;
    // The most bytes held in this download. A piece is progress only when it ends past them: one
    // that started over from byte 0 (a 200 to a Range, a 416, a 206 that does not continue) and
    // only won back bytes held before is not, or a proxy that ignores Range on a link that keeps
    // cutting would download the first bytes again and again, forever.
    let most = part.have;
    for (;;) {
      if (this.stopped) throw new DownloadError("internal", CANCELLED);
      if (part.have === ref.bytes) return part.buf;
      const ended = await this.piece();
      if (this.stopped) throw new DownloadError("internal", CANCELLED);
      if (ended !== null && "fail" in ended) throw ended.fail;
      const why = ended?.cut ?? "the body ended early";
      // A piece that brought bytes further resumes at once; one that did not waits longer each time.
      if (part.have > most) {
        most = part.have;
        stuck = 0;
        continue;
      }
      if (++stuck >= DOWNLOAD_TRIES) throw new DownloadError("internal", `GET ${this.o.url}: ${why} (${stuck} tries with no progress)`);
      await this.sleep(Math.min(MAX_BACKOFF_MS, Math.max(ended?.retryMs ?? 0, 200 * 2 ** stuck)));
    }
  }

  /** One request: from `part.have` to the end, or until it is cut. */
  private async piece(): Promise<Ended> {
    const { ref, part } = this.o;
    let token: string;
    try {
      token = await this.o.token();
    } catch (e) {
      return { cut: `no token: ${errorMessage(e)}` };
    }
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
    if (part.have > 0) {
      headers["Range"] = `bytes=${part.have}-`;
      headers["If-Range"] = `"${ref.sha256}"`;
    }
    const ctl = typeof AbortController === "function" ? new AbortController() : null;
    const init = ctl === null ? { method: "GET", headers } : { method: "GET", headers, signal: ctl.signal };
    const answer = await this.wait(Promise.resolve().then(() => this.o.fetch(this.o.url, init)));
    if ("cut" in answer) {
      ctl?.abort();
      return answer;
    }
    const r = answer.ok;
    // A body not to be read: let its connection go.
    const drop = () => {
      ctl?.abort();
      try {
        r.body?.getReader().cancel().catch(() => {});
      } catch {
        // already read or locked
      }
    };
    switch (r.status) {
      case 206: {
        // `Content-Range: bytes FROM-END/TOTAL` must continue the bytes held. (A cross-origin
        // page can't read it unless the server exposes it: a 206 to the one range asked is that.)
        const range = r.headers.get("content-range");
        const from = range === null ? String(part.have) : /^bytes (\d+)-/.exec(range)?.[1];
        if (from === undefined || Number(from) !== part.have) {
          drop();
          const why = `a range from ${from ?? "nowhere"} does not continue the ${part.have} bytes held`;
          part.have = 0;
          return { cut: why };
        }
        break;
      }
      case 200:
        part.have = 0; // the whole body (the server took no range): from the start
        break;
      case 416:
        drop();
        part.have = 0;
        return { cut: "range not satisfiable" };
      default: {
        const text = await this.wait(r.text());
        if ("cut" in text) ctl?.abort();
        const err = errorOf(r.status, "ok" in text ? text.ok : "", r.headers.get("retry-after"));
        if (r.status === 429 || r.status >= 500) {
          return err.retryAfterMs === undefined ? { cut: `status ${r.status}` } : { cut: `status ${r.status}`, retryMs: err.retryAfterMs };
        }
        const code: ErrorCode = SERVER_CODES.has(err.code) ? (err.code as ServerErrorCode) : "internal";
        return { fail: new DownloadError(code, `GET ${this.o.url}: ${err.message} (status ${r.status})`) };
      }
    }
    if (r.body) {
      const reader = r.body.getReader();
      for (;;) {
        const read = await this.wait(reader.read());
        if ("cut" in read) {
          ctl?.abort();
          reader.cancel().catch(() => {});
          return read;
        }
        if (read.ok.done) return null;
        const chunk = read.ok.value;
        if (chunk === undefined) continue;
        if (!this.take(chunk)) {
          ctl?.abort();
          reader.cancel().catch(() => {});
          return this.tooMany();
        }
      }
    }
    if (r.arrayBuffer === undefined) {
      return { fail: new DownloadError("internal", "the `fetch` given answers no body stream and no arrayBuffer(): a state can't be read with it") };
    }
    const all = await this.wait(r.arrayBuffer());
    if ("cut" in all) {
      ctl?.abort();
      return all;
    }
    return this.take(new Uint8Array(all.ok)) ? null : this.tooMany();
  }

  /** Appends a chunk: false (and nothing kept) past the announced size. */
  private take(chunk: Uint8Array): boolean {
    const { ref, part } = this.o;
    if (this.stopped) return true; // its read ended after the cancel: nothing more is written
    if (part.have + chunk.length > ref.bytes) {
      part.have = 0;
      return false;
    }
    part.buf.set(chunk, part.have);
    part.have += chunk.length;
    this.o.progress(part.have);
    return true;
  }

  private tooMany(): Ended {
    return { fail: new DownloadError("internal", `GET ${this.o.url}: more than the ${this.o.ref.bytes} bytes announced`) };
  }

  /** `p`, or a cut when nothing comes for {@link DOWNLOAD_STALL_MS} or the download is
   * cancelled (`p` is left to settle unheard). */
  private wait<T>(p: Promise<T>): Promise<{ ok: T } | { cut: string }> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (v: { ok: T } | { cut: string }) => {
        if (done) return;
        done = true;
        stop();
        this.interrupt = null;
        resolve(v);
      };
      const stop = this.o.later(() => finish({ cut: `nothing came for ${DOWNLOAD_STALL_MS / 1000} s` }), DOWNLOAD_STALL_MS);
      this.interrupt = () => finish({ cut: CANCELLED });
      p.then(
        (ok) => finish({ ok }),
        (e: unknown) => finish({ cut: errorMessage(e) }),
      );
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const stop = this.o.later(() => {
        this.interrupt = null;
        resolve();
      }, ms);
      this.interrupt = () => {
        stop();
        this.interrupt = null;
        resolve();
      };
    });
  }
}

const SERVER_CODES = new Set<string>(["unauthorized", "forbidden", "bad_request", "not_found", "rate_limited", "too_large", "conflict", "not_supported", "internal"]);

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
