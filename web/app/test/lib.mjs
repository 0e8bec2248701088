// Shared by the Playwright scripts: launching Debian's Chromium, signing in through the page,
// waiting for two replicas to agree, and generated test pictures.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { chromium } from "playwright-core";

export const BASE = process.env.MONTAGE_URL ?? "http://127.0.0.1:7070";
export const OUT = process.env.MONTAGE_TEST_RESULTS ?? new URL("../test-results", import.meta.url).pathname;
const EXE = process.env.CHROMIUM ?? "/usr/bin/chromium";
/** Generous: two cores shared by several builds. Awaited conditions, not sleeps. */
export const T = { timeout: 20_000 };

mkdirSync(OUT, { recursive: true });

export async function launch() {
  return chromium.launch({
    executablePath: EXE,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

export async function newUser(browser, name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${name}] page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") console.error(`[${name}] console: ${m.text()}`);
  });
  return { name, context, page };
}

/**
 * Signs in through the form (dev tokens). With a session: waits until it is joined and online.
 * With `session` null: waits for the list of one's sessions.
 */
export async function signIn(u, session, query = "") {
  await u.page.goto(`${BASE}/${query}`);
  await u.page.getByLabel("Your name").fill(u.name);
  if (session !== null) await u.page.getByLabel("Session", { exact: true }).fill(session);
  await u.page.getByRole("button", { name: "Sign in" }).click();
  if (session === null) await u.page.locator("#sessions:not([hidden])").waitFor(T);
  else await u.page.locator("#conn[data-state=online]").waitFor(T);
}

/**
 * The owner sets link access in the share dialog (sessions are private by default) and waits
 * until the server confirms it (`link_role_changed`); the dialog stays open when `keepOpen`.
 */
export async function setLinkAccess(owner, role, keepOpen = false) {
  const dialog = owner.page.locator("#share-dialog");
  if (!(await dialog.isVisible())) await owner.page.getByRole("button", { name: "Share", exact: true }).click();
  await owner.page.getByLabel("Link access").selectOption(role);
  await owner.page.locator(`#share-dialog[data-link-role="${role}"]`).waitFor(T);
  if (!keepOpen) {
    await owner.page.getByRole("button", { name: "Done" }).click();
    await dialog.waitFor({ state: "hidden", ...T });
  }
}

export const doc = (u) => u.page.evaluate(() => window.montage.doc());

/** JSON with object keys sorted: replicas agree on values, not on key order. */
export function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** Waits until both pages are online with nothing pending and hold the same document. */
export async function converged(a, b) {
  const deadline = Date.now() + T.timeout;
  for (;;) {
    const [da, db, pa, pb, sa, sb] = await Promise.all([
      doc(a),
      doc(b),
      a.page.evaluate(() => window.montage.pending()),
      b.page.evaluate(() => window.montage.pending()),
      a.page.evaluate(() => window.montage.state()),
      b.page.evaluate(() => window.montage.state()),
    ]);
    if (pa === 0 && pb === 0 && sa === "online" && sb === "online" && canonical(da) === canonical(db)) return da;
    if (Date.now() > deadline) {
      throw new Error(`replicas did not converge:\n${a.name} (${sa}, ${pa} pending): ${JSON.stringify(da)}\n${b.name} (${sb}, ${pb} pending): ${JSON.stringify(db)}`);
    }
    // Poll the page state (a DOM change has no single event to await here).
    await a.page.waitForTimeout(50);
  }
}

export async function shot(u, label) {
  await u.page.screenshot({ path: join(OUT, `${label}-${u.name}.png`) });
}

/** The page fits 1280×720 without horizontal scrolling. */
export async function fitsViewport(u) {
  const w = await u.page.evaluate(() => document.documentElement.scrollWidth);
  if (w > 1280) throw new Error(`${u.name}: the page is ${w}px wide at a 1280px viewport`);
}

export function check(cond, message) {
  if (!cond) throw new Error(message);
}

const CRC = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** A w×h RGB PNG (8 bits, no filter) whose pixel at x, y is `rgbAt(x, y)` = [r, g, b]. */
export function png(w, h, rgbAt) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      const [r, g, b] = rgbAt(x, y);
      raw[o] = r;
      raw[o + 1] = g;
      raw[o + 2] = b;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** A w×h RGB PNG: a red→blue gradient with a green square in its top-left quarter. */
export function picture(w = 400, h = 300) {
  return png(w, h, (x, y) => {
    const green = x < w / 2 && y < h / 2 && x > w / 8 && y > h / 8;
    return green ? [20, 200, 20] : [Math.round((255 * (w - x)) / w), 40, Math.round((255 * x) / w)];
  });
}

/** A w×h PNG whose left half is pure red and right half pure blue: easy to find on a canvas. */
export function halves(w = 64, h = 48) {
  return png(w, h, (x) => (x < w / 2 ? [255, 0, 0] : [0, 0, 255]));
}

/** The data of a PNG's first IDAT chunk (its compressed pixels). */
export function idat(file) {
  for (let o = 8; o + 8 <= file.length; ) {
    const len = file.readUInt32BE(o);
    if (file.toString("ascii", o + 4, o + 8) === "IDAT") return file.subarray(o + 8, o + 8 + len);
    o += 12 + len;
  }
  throw new Error("no IDAT chunk");
}

/** Runs `steps`, closing the browser whatever happens; exits non-zero on failure. */
export async function run(name, steps) {
  const browser = await launch();
  try {
    await steps(browser);
    console.log(`${name}: 1 passed, 0 failed`);
  } catch (e) {
    console.error(`${name}: FAILED: ${e?.stack ?? e}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
