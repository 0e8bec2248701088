/**
 * End-to-end encrypted sessions (docs/E2E.md; the wire: docs/PROTOCOL.md "Encrypted sessions"):
 * the keys, the AEAD that seals edits, snapshots and comments, and the hash chain that lets a
 * client audit the server's order. Byte for byte what the Rust SDK (`montage_client::sealed`,
 * `montage_protocol::sealed`) makes, so either SDK opens what the other sealed.
 *
 * A payload is XChaCha20-Poly1305 (a random 24-byte nonce, then the ciphertext and tag) as
 * standard padded base64, over the JSON of an edit's components (an edit), the document (a
 * snapshot) or a comment's content and annotations; an uploaded file is sealed into raw bytes
 * with a short header ({@link sealAsset}). Its associated data
 * ({@link associatedData}) binds the session, the version it becomes, the key epoch and the
 * chain value before it, so a payload moved to another session, version, epoch or history does
 * not open. Everything here is synchronous.
 */
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, concatBytes, hexToBytes, randomBytes } from "@noble/hashes/utils.js";

/** What went wrong: see {@link SealError}. */
export type SealErrorKind = "tampered" | "no_key" | "malformed" | "chain";

/**
 * Why a payload of an encrypted session could not be opened, or a key read (the Rust
 * `SealError`):
 * - `tampered`: authentication failed: the key is not the one it was sealed with, or the payload
 *   (or what it is bound to: session, version, key epoch, chain) was changed;
 * - `no_key`: no key for the key epoch it was sealed under (the session's key was rotated: add
 *   it with `addKey`);
 * - `malformed`: not base64, too short, not a sealed asset (no `MTGSEAL1` header), or a key that
 *   is not 32 bytes of base64url;
 * - `chain`: the hash chain over the session's payloads broke: a version is missing, reordered or
 *   not the one other clients were shown.
 */
export class SealError extends Error {
  readonly kind: SealErrorKind;
  /** The key epoch concerned (`tampered`, `no_key`). */
  readonly keyEpoch: number | undefined;
  constructor(kind: SealErrorKind, message: string, keyEpoch?: number) {
    super(message);
    this.name = "SealError";
    this.kind = kind;
    this.keyEpoch = keyEpoch;
  }
  /** @internal */
  static tampered(what: string, keyEpoch: number): SealError {
    return new SealError("tampered", `could not decrypt ${what}: wrong key for key epoch ${keyEpoch}, or the payload was tampered with`, keyEpoch);
  }
  /** @internal */
  static noKey(keyEpoch: number): SealError {
    return new SealError("no_key", `no key for key epoch ${keyEpoch}: add it with addKey`, keyEpoch);
  }
  /** @internal */
  static malformed(message: string): SealError {
    return new SealError("malformed", message);
  }
  /** @internal */
  static chain(message: string): SealError {
    return new SealError("chain", `the session's history does not add up: ${message}`);
  }
}

// ---- base64 ----------------------------------------------------------------------------------

const STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function lookup(alphabet: string): Int16Array {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
}
const STD_LOOKUP = lookup(STD);
const URL_LOOKUP = lookup(URL_SAFE);

function encode(bytes: Uint8Array, alphabet: string, pad: boolean): string {
  let out = "";
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + alphabet[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + (pad ? "==" : "");
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + (pad ? "=" : "");
  }
  return out;
}

/** Unpadded base64 in one alphabet, canonical (unused trailing bits zero); null if it is not. */
function decodeNoPad(text: string, table: Int16Array): Uint8Array | null {
  const len = text.length;
  if (len % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((len * 3) / 4));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? table[c]! : -1;
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

/** Standard padded base64 (what payloads are sent as). */
export function toBase64(bytes: Uint8Array): string {
  return encode(bytes, STD, true);
}

/** Bytes from standard padded base64; null when `text` is not that. */
export function fromBase64(text: string): Uint8Array | null {
  if (text.length % 4 !== 0) return null;
  let pad = 0;
  while (pad < text.length && pad < 3 && text.charCodeAt(text.length - 1 - pad) === 61) pad++;
  if (pad > 2) return null;
  return decodeNoPad(text.slice(0, text.length - pad), STD_LOOKUP);
}

/**
 * Whether `data` is standard padded base64 within the size the server takes (what the server
 * checks of a payload: its form, never its content).
 */
export function isBase64(data: string): boolean {
  const n = data.length;
  if (n === 0 || n > MAX_SEALED_LEN || n % 4 !== 0) return false;
  let pad = 0;
  while (pad < n && data.charCodeAt(n - 1 - pad) === 61) pad++;
  if (pad > 2) return false;
  for (let i = 0; i < n - pad; i++) {
    const c = data.charCodeAt(i);
    if (c >= 128 || STD_LOOKUP[c]! < 0) return false;
  }
  return true;
}

/** The largest encrypted payload, in characters of base64 (the frame size bounds it first). */
export const MAX_SEALED_LEN = 16 * 1024 * 1024;

// ---- keys --------------------------------------------------------------------------------------

/**
 * One session key: 32 random bytes, written as 43 characters of unpadded base64url — what an
 * invite link's `#key=` fragment holds (the fragment is never sent to a server). Printing or
 * serializing the object shows no key bytes; {@link SessionKey.toText} does.
 */
export class SessionKey {
  readonly #bytes: Uint8Array;
  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** A fresh random key (from `crypto.getRandomValues`). */
  static generate(): SessionKey {
    return new SessionKey(randomBytes(32));
  }

  /** A key from its 32 bytes (copied); throws a `malformed` {@link SealError} for another length. */
  static fromBytes(bytes: Uint8Array): SessionKey {
    if (bytes.length !== 32) throw SealError.malformed(`a session key is 32 bytes, this one ${bytes.length}`);
    return new SessionKey(Uint8Array.from(bytes));
  }

  /**
   * The key from its base64url text (padding and the standard base64 alphabet are accepted too;
   * surrounding whitespace is ignored). Throws a `malformed` {@link SealError}.
   */
  static parse(text: string): SessionKey {
    const t = text.trim().replace(/=+$/, "");
    const bytes = decodeNoPad(t, URL_LOOKUP) ?? decodeNoPad(t, STD_LOOKUP);
    if (bytes === null) throw SealError.malformed("a session key is base64url text");
    return SessionKey.fromBytes(bytes);
  }

  /** The key as 43 characters of unpadded base64url. */
  toText(): string {
    return encode(this.#bytes, URL_SAFE, false);
  }

  /** Whether `other` is the same key. */
  equals(other: SessionKey): boolean {
    const a = this.#bytes;
    const b = other.#bytes;
    let d = 0;
    for (let i = 0; i < 32; i++) d |= a[i]! ^ b[i]!;
    return d === 0;
  }

  /** `SessionKey(…)`: never the key. */
  toString(): string {
    return "SessionKey(…)";
  }

  /** `"SessionKey(…)"` in JSON: never the key. */
  toJSON(): string {
    return "SessionKey(…)";
  }

  /** @internal */
  get bytes(): Uint8Array {
    return this.#bytes;
  }
}

/**
 * A session's keys by key epoch (the Rust `Keyring`). The session's current epoch seals; older
 * ones still open history. As text: `EPOCH:KEY` pairs separated by commas (`0:KEY,1:KEY`), or a
 * bare key for epoch 0.
 */
export class Keyring {
  private readonly keys = new Map<number, SessionKey>();

  /** A keyring of `key` for epoch 0, or an empty one. */
  constructor(key?: SessionKey) {
    if (key !== undefined) this.keys.set(0, key);
  }

  /** `KEY` or `EPOCH:KEY,EPOCH:KEY…`; throws a `malformed` {@link SealError}. */
  static parse(text: string): Keyring {
    const ring = new Keyring();
    for (const raw of text.split(",")) {
      const part = raw.trim();
      if (part === "") continue;
      const colon = part.indexOf(":");
      let epoch = 0;
      let key = part;
      if (colon >= 0) {
        const e = part.slice(0, colon);
        epoch = /^[0-9]+$/.test(e) ? Number(e) : NaN;
        if (!Number.isSafeInteger(epoch)) throw SealError.malformed(`bad key epoch ${JSON.stringify(e)}`);
        key = part.slice(colon + 1);
      }
      ring.keys.set(epoch, SessionKey.parse(key));
    }
    if (ring.keys.size === 0) throw SealError.malformed("no session key given");
    return ring;
  }

  /** Adds (or replaces) the key of `epoch`. */
  add(epoch: number, key: SessionKey): void {
    this.keys.set(epoch, key);
  }

  /** The key of `epoch`, if held. */
  get(epoch: number): SessionKey | undefined {
    return this.keys.get(epoch);
  }

  /** Takes every key of `other` (its keys win for epochs both have). */
  merge(other: Keyring): void {
    for (const [e, k] of other.keys) this.keys.set(e, k);
  }

  /** The newest key epoch held, or null for an empty keyring. */
  newest(): number | null {
    const e = this.epochs();
    return e.length === 0 ? null : e[e.length - 1]!;
  }

  /** The epochs held, oldest first. */
  epochs(): number[] {
    return [...this.keys.keys()].sort((a, b) => a - b);
  }

  /** The keys as text, oldest epoch first (`EPOCH:KEY,…`). */
  toText(): string {
    return this.epochs()
      .map((e) => `${e}:${this.keys.get(e)!.toText()}`)
      .join(",");
  }

  /** A copy. */
  clone(): Keyring {
    const r = new Keyring();
    r.merge(this);
    return r;
  }
}

/** A keyring from what the session options accept: a keyring, one key (epoch 0), or text. */
export function toKeyring(keys: Keyring | SessionKey | string): Keyring {
  if (keys instanceof Keyring) return keys.clone();
  if (keys instanceof SessionKey) return new Keyring(keys);
  return Keyring.parse(keys);
}

// ---- binding and chain -------------------------------------------------------------------------

/** The chain value before version 1: 32 zero bytes. */
export const GENESIS_CHAIN: Uint8Array = new Uint8Array(32);

const utf8 = new TextEncoder();

function u64be(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a u64: ${n}`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

function check32(chain: Uint8Array): Uint8Array {
  if (chain.length !== 32) throw new RangeError(`a chain value is 32 bytes, this one ${chain.length}`);
  return chain;
}

/**
 * What a payload's AEAD binds besides its plaintext, exactly as `montage_protocol::sealed::
 * associated_data` builds it: `"montage.e2e.v1\0" ‖ kind ‖ 0x00 ‖ u64be(len(session)) ‖ session ‖
 * u64be(version) ‖ u64be(keyEpoch) ‖ chain` (lengths in UTF-8 bytes). `kind` is `op`,
 * `snapshot`, `comment` or `asset`; `version` the one an edit becomes (`base + 1`), a snapshot's
 * own, 0 for a comment or an asset; `chain` the value before an edit, at a snapshot, zeros for a
 * comment or an asset.
 */
export function associatedData(kind: string, session: string, version: number, keyEpoch: number, chain: Uint8Array): Uint8Array {
  const s = utf8.encode(session);
  return concatBytes(utf8.encode("montage.e2e.v1\0"), utf8.encode(kind), new Uint8Array([0]), u64be(s.length), s, u64be(version), u64be(keyEpoch), check32(chain));
}

/**
 * The chain value of `version`: SHA-256 over `"montage.chain.v1"`, the previous value, the
 * version and key epoch (u64 big-endian) and the payload's base64 text (`montage_protocol::
 * sealed::chain_next`). Every client computes it and compares it with the server's.
 */
export function chainNext(prev: Uint8Array, version: number, keyEpoch: number, data: string): Uint8Array {
  return sha256(concatBytes(utf8.encode("montage.chain.v1"), check32(prev), u64be(version), u64be(keyEpoch), utf8.encode(data)));
}

/** Lowercase hex of a chain value. */
export function chainHex(chain: Uint8Array): string {
  return bytesToHex(chain);
}

/** A chain value from its hex (64 digits), or null when it is not one. */
export function parseChain(hex: string): Uint8Array | null {
  return /^[0-9a-fA-F]{64}$/.test(hex) ? hexToBytes(hex) : null;
}

// ---- sealing -----------------------------------------------------------------------------------

/** What a sealed payload is bound to besides its bytes (see {@link associatedData}). */
export interface Binding {
  /** `op`, `snapshot`, `comment` or `asset`. */
  kind: string;
  session: string;
  /** The version it becomes (an edit's `base + 1`; a snapshot's own; 0 for comments). */
  version: number;
  keyEpoch: number;
  /** The chain value before an edit, at a snapshot (zeros for comments). */
  chain: Uint8Array;
}

/** The associated data a payload bound to `to` is sealed with. */
function adOf(to: Binding): Uint8Array {
  return associatedData(to.kind, to.session, to.version, to.keyEpoch, to.chain);
}

function what(to: Binding): string {
  if (to.kind === "comment" || to.kind === "asset") return `${to.kind === "asset" ? "an asset" : "a comment"} of session ${to.session}`;
  return `${to.kind} ${to.version} of session ${to.session}`;
}

const NONCE = 24;
const TAG = 16;

function plainBytes(plaintext: Uint8Array | string): Uint8Array {
  return typeof plaintext === "string" ? utf8.encode(plaintext) : plaintext;
}

/**
 * Seals `plaintext` (bytes, or a string taken as UTF-8) under `key`, bound to `to`: standard
 * padded base64 of a fresh random 24-byte nonce followed by the XChaCha20-Poly1305 ciphertext
 * and tag.
 */
export function seal(key: SessionKey, to: Binding, plaintext: Uint8Array | string): string {
  return sealWithNonce(key, to, plaintext, randomBytes(NONCE));
}

/**
 * {@link seal} with a given nonce. For test vectors only: a nonce must never repeat under one
 * key, so real payloads use `seal`'s random one.
 * @internal
 */
export function sealWithNonce(key: SessionKey, to: Binding, plaintext: Uint8Array | string, nonce: Uint8Array): string {
  if (nonce.length !== NONCE) throw new RangeError(`a nonce is ${NONCE} bytes`);
  const ad = adOf(to);
  const ct = xchacha20poly1305(key.bytes, nonce, ad).encrypt(plainBytes(plaintext));
  return toBase64(concatBytes(nonce, ct));
}

/**
 * Opens what {@link seal} made, if `key` and `to` are what it was sealed with; throws a
 * {@link SealError} (`malformed`: not base64 or too short; `tampered`: the wrong key, or the
 * payload or its binding changed).
 */
export function open(key: SessionKey, to: Binding, data: string): Uint8Array {
  const bytes = fromBase64(data);
  if (bytes === null) throw SealError.malformed(`${what(to)} is not base64`);
  if (bytes.length < NONCE + TAG) throw SealError.malformed(`${what(to)} is too short`);
  const ad = adOf(to);
  try {
    return xchacha20poly1305(key.bytes, bytes.subarray(0, NONCE), ad).decrypt(bytes.subarray(NONCE));
  } catch {
    throw SealError.tampered(what(to), to.keyEpoch);
  }
}

// ---- comments ----------------------------------------------------------------------------------

/** How a sealed comment's `content` starts; the key epoch and the payload follow. */
export const COMMENT_PREFIX = "e2e1:";

/** What an encrypted session's comment holds inside its sealed `content`. */
export interface SealedCommentBody {
  content: string;
  /** Its anchors (left out of the JSON when empty, as the Rust SDK does). */
  annotations?: unknown[];
}

function commentBinding(session: string, epoch: number): Binding {
  return { kind: "comment", session, version: 0, keyEpoch: epoch, chain: GENESIS_CHAIN };
}

/**
 * A comment's content and annotations sealed into the one opaque `content` string an encrypted
 * session's server keeps: `e2e1:EPOCH:BASE64` over the JSON `{"content","annotations"}`.
 * Throws a `no_key` {@link SealError} without the key of `epoch`.
 */
export function sealComment(keys: Keyring, epoch: number, session: string, body: SealedCommentBody): string {
  const key = keys.get(epoch);
  if (key === undefined) throw SealError.noKey(epoch);
  const plain: SealedCommentBody = { content: body.content };
  if (body.annotations !== undefined && body.annotations.length > 0) plain.annotations = body.annotations;
  return `${COMMENT_PREFIX}${epoch}:${seal(key, commentBinding(session, epoch), JSON.stringify(plain))}`;
}

/**
 * Opens a sealed comment `content`: null when it is not one (a tombstone's empty content, a
 * plain text); throws a {@link SealError} when it is one that does not open.
 */
export function openComment(keys: Keyring, session: string, content: string): SealedCommentBody | null {
  if (!content.startsWith(COMMENT_PREFIX)) return null;
  const rest = content.slice(COMMENT_PREFIX.length);
  const colon = rest.indexOf(":");
  if (colon < 0 || !/^[0-9]+$/.test(rest.slice(0, colon))) return null;
  const epoch = Number(rest.slice(0, colon));
  const key = keys.get(epoch);
  if (key === undefined) throw SealError.noKey(epoch);
  const plain = open(key, commentBinding(session, epoch), rest.slice(colon + 1));
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
  } catch (e) {
    throw SealError.malformed(`a comment opened to nothing readable: ${(e as Error).message}`);
  }
  const b = body as { content?: unknown; annotations?: unknown };
  if (typeof body !== "object" || body === null || typeof b.content !== "string") {
    throw SealError.malformed("a comment opened to nothing readable: no content");
  }
  return { content: b.content, annotations: Array.isArray(b.annotations) ? b.annotations : [] };
}

// ---- assets ------------------------------------------------------------------------------------

/** How a sealed asset starts (8 ASCII bytes); the key epoch, the nonce and the ciphertext follow. */
export const ASSET_MAGIC = "MTGSEAL1";
const ASSET_MAGIC_BYTES = utf8.encode(ASSET_MAGIC);
/** A sealed asset's header: {@link ASSET_MAGIC} and the key epoch (u64 big-endian). */
export const ASSET_HEADER_LEN = 16;
/** The shortest sealed asset: the header, the nonce and the tag around an empty file. */
export const ASSET_MIN_LEN = ASSET_HEADER_LEN + NONCE + TAG;

function assetBinding(session: string, epoch: number): Binding {
  return { kind: "asset", session, version: 0, keyEpoch: epoch, chain: GENESIS_CHAIN };
}

/**
 * A file for an encrypted session, sealed as the server takes it (`POST /v1/assets?session=S`):
 * `"MTGSEAL1"` ‖ the key epoch (u64 big-endian) ‖ a fresh random 24-byte nonce ‖ the
 * XChaCha20-Poly1305 ciphertext and tag of the whole file, raw bytes (no base64). Its associated
 * data is `associatedData("asset", session, 0, epoch, GENESIS_CHAIN)`, so it opens only in
 * `session` under `epoch`'s key. The server reads the header, never the file: the app keeps
 * what it needs (dimensions, duration) in the sealed document. Throws a `no_key`
 * {@link SealError} without the key of `epoch`.
 */
export function sealAsset(keys: Keyring, epoch: number, session: string, file: Uint8Array): Uint8Array<ArrayBuffer> {
  return sealAssetWithNonce(keys, epoch, session, file, randomBytes(NONCE));
}

/**
 * {@link sealAsset} with a given nonce. For test vectors only: a nonce must never repeat under
 * one key, so real uploads use `sealAsset`'s random one.
 * @internal
 */
export function sealAssetWithNonce(keys: Keyring, epoch: number, session: string, file: Uint8Array, nonce: Uint8Array): Uint8Array<ArrayBuffer> {
  if (nonce.length !== NONCE) throw new RangeError(`a nonce is ${NONCE} bytes`);
  const key = keys.get(epoch);
  if (key === undefined) throw SealError.noKey(epoch);
  const to = assetBinding(session, epoch);
  const ad = adOf(to);
  // One buffer for all of it: a file may be tens of megabytes.
  const out = new Uint8Array(ASSET_HEADER_LEN + NONCE + file.length + TAG);
  out.set(ASSET_MAGIC_BYTES, 0);
  out.set(u64be(epoch), ASSET_MAGIC_BYTES.length);
  out.set(nonce, ASSET_HEADER_LEN);
  xchacha20poly1305(key.bytes, nonce, ad).encrypt(file, out.subarray(ASSET_HEADER_LEN + NONCE));
  return out;
}

/**
 * The key epoch a sealed asset names in its header, or null when `bytes` is not one (too short,
 * or not starting with {@link ASSET_MAGIC}) — what the server checks of an encrypted session's
 * upload, never its content.
 */
export function assetEpoch(bytes: Uint8Array): number | null {
  if (bytes.length < ASSET_MIN_LEN) return null;
  for (let i = 0; i < ASSET_MAGIC_BYTES.length; i++) if (bytes[i] !== ASSET_MAGIC_BYTES[i]) return null;
  const epoch = new DataView(bytes.buffer, bytes.byteOffset + ASSET_MAGIC_BYTES.length, 8).getBigUint64(0);
  return epoch <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(epoch) : null;
}

/**
 * Opens what {@link sealAsset} made: the file's bytes, if it was sealed for `session` under a
 * key `keys` holds for the epoch its header names. Throws a {@link SealError}: `malformed` when
 * `sealed` is not a sealed asset (too short, no `MTGSEAL1` header), `no_key` without the key of
 * its epoch, `tampered` when it does not open (a wrong key, another session, a changed byte or
 * epoch).
 */
export function openAsset(keys: Keyring, session: string, sealed: Uint8Array): Uint8Array<ArrayBuffer> {
  if (sealed.length < ASSET_MIN_LEN) {
    throw SealError.malformed(`an asset of session ${session} is too short to be sealed (${sealed.length} bytes, at least ${ASSET_MIN_LEN})`);
  }
  const epoch = assetEpoch(sealed);
  if (epoch === null) throw SealError.malformed(`an asset of session ${session} is not sealed: it does not start with ${ASSET_MAGIC} and a key epoch`);
  const key = keys.get(epoch);
  if (key === undefined) throw SealError.noKey(epoch);
  const to = assetBinding(session, epoch);
  const ad = adOf(to);
  // The file in a buffer of its own (a `Blob` takes it as it is).
  const file = new Uint8Array(sealed.length - ASSET_MIN_LEN);
  try {
    xchacha20poly1305(key.bytes, sealed.subarray(ASSET_HEADER_LEN, ASSET_HEADER_LEN + NONCE), ad).decrypt(sealed.subarray(ASSET_HEADER_LEN + NONCE), file);
    return file;
  } catch {
    throw SealError.tampered(what(to), epoch);
  }
}

// ---- a session's chain bookkeeping ----------------------------------------------------------

/** Chain values kept for recent versions (a resend or a `since` join needs the one of its base). */
const CHAINS_KEPT = 4096;

/**
 * An encrypted session's side of the client (the Rust `E2e`): its keys, the key epoch the server
 * takes, and the chain values of the versions received, each checked against the server's.
 * @internal
 */
export class E2eState {
  readonly keys: Keyring;
  /** The key epoch the server takes now (from `joined` and `key_rotated`). */
  keyEpoch = 0;
  /** The newest snapshot stored for the session, as far as this client knows. */
  snapshotVersion = 0;
  /** `[version, chain value]`, oldest first, versions rising. */
  private chains: [number, Uint8Array][] = [[0, GENESIS_CHAIN]];

  constructor(keys: Keyring) {
    this.keys = keys;
  }

  chainAt(version: number): Uint8Array | null {
    for (let i = this.chains.length - 1; i >= 0; i--) {
      const [v, c] = this.chains[i]!;
      if (v === version) return c;
      if (v < version) return null;
    }
    return null;
  }

  /** Records the chain value of `version`; a lower version than the newest starts over (a reset
   * from a snapshot). */
  record(version: number, chain: Uint8Array): void {
    while (this.chains.length > 0 && this.chains[this.chains.length - 1]![0] >= version) this.chains.pop();
    this.chains.push([version, chain]);
    if (this.chains.length > CHAINS_KEPT) this.chains.splice(0, this.chains.length - CHAINS_KEPT);
  }

  private key(epoch: number): SessionKey {
    const k = this.keys.get(epoch);
    if (k === undefined) throw SealError.noKey(epoch);
    return k;
  }

  /** Checks and opens the sealed edit of `version`: its chain value follows the previous
   * version's and is the one the server claims; records it. */
  openEdit(session: string, version: number, keyEpoch: number, data: string, claimed: string | undefined): Uint8Array {
    const { prev, next } = this.nextChain(version, keyEpoch, data, claimed, false);
    const plain = open(this.key(keyEpoch), { kind: "op", session, version, keyEpoch, chain: prev }, data);
    this.record(version, next);
    return plain;
  }

  /** My own edit, acked as `version`: its chain value, checked against the server's. */
  acked(version: number, keyEpoch: number, data: string, claimed: string | undefined): void {
    if (this.chainAt(version) !== null) return; // seen already, in a catch-up after a rejoin
    this.record(version, this.nextChain(version, keyEpoch, data, claimed, true).next);
  }

  /** The chain values before and at `version` (the Rust `E2e::next_chain`): the one before must
   * be known, and the one the payload makes must be the server's claim. */
  private nextChain(version: number, keyEpoch: number, data: string, claimed: string | undefined, mine: boolean): { prev: Uint8Array; next: Uint8Array } {
    const prev = this.chainAt(version - 1);
    if (prev === null) throw SealError.chain(`version ${version} ${mine ? "acked" : "arrived"} without version ${version - 1} before it`);
    const next = chainNext(prev, version, keyEpoch, data);
    if (claimed !== undefined && claimed !== chainHex(next)) {
      throw SealError.chain(
        mine
          ? `the server acked version ${version} with a chain value my edit does not make: the stream was changed`
          : `the server's chain value for version ${version} is not the one its payloads make: the stream was changed`,
      );
    }
    return { prev, next };
  }

  /** Seals `plain` as `kind` bound to `version` and the chain value of `chainOf`, under the
   * current key epoch (the Rust `E2e::seal_now`). */
  private sealNow(kind: "op" | "snapshot", session: string, version: number, chainOf: number, plain: string): { data: string; keyEpoch: number } {
    const chain = this.chainAt(chainOf);
    if (chain === null) throw SealError.chain(`the chain value of version ${chainOf} is not known here`);
    const keyEpoch = this.keyEpoch;
    return { data: seal(this.key(keyEpoch), { kind, session, version, keyEpoch, chain }, plain), keyEpoch };
  }

  /** Seals an edit made on `base` (it becomes `base + 1`) under the current key epoch. */
  sealEdit(session: string, base: number, plain: string): { data: string; keyEpoch: number } {
    return this.sealNow("op", session, base + 1, base, plain);
  }

  /** Opens a stored snapshot and starts the chain over from it (its chain value is bound into
   * its associated data, so only a key holder can have made the pair). */
  openSnapshot(session: string, snap: { version: number; data: string; keyEpoch: number; chain: string }): Uint8Array {
    const chain = parseChain(snap.chain);
    if (chain === null) throw SealError.malformed("a snapshot's chain value is not hex");
    const plain = open(this.key(snap.keyEpoch), { kind: "snapshot", session, version: snap.version, keyEpoch: snap.keyEpoch, chain }, snap.data);
    this.record(snap.version, chain);
    this.snapshotVersion = Math.max(this.snapshotVersion, snap.version);
    return plain;
  }

  /** Seals the document at `version` as a snapshot, if that version's chain value is known. */
  sealSnapshot(session: string, version: number, plain: string): { data: string; keyEpoch: number } {
    return this.sealNow("snapshot", session, version, version, plain);
  }

}
