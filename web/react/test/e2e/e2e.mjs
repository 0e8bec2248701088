// @montage/react in real Chromium against a real `montage serve --dev` at $MONTAGE_URL: the test
// page (page.tsx, bundled into $PAGE_DIR by web/scripts/react-e2e.sh) is served from another
// origin by a small node:http server, and two browser contexts open it as alice and bob. Each
// sees the other through useOthers, with the note the other types (useMyPresence); a title set
// through the hooks shows on the other page through useDoc; bob's undo and redo (useUndo) reach
// alice; presence traffic does not re-render the component that selects the title.
// Tokens come from the server's dev endpoint here in Node (that HTTP API sends no CORS headers,
// so the page on its own origin could not ask); the page gets them in its URL's fragment.
import { mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.MONTAGE_URL;
const PAGE_DIR = process.env.PAGE_DIR;
const EXE = process.env.CHROMIUM ?? "/usr/bin/chromium";
const OUT = process.env.MONTAGE_TEST_RESULTS ?? new URL("../../test-results", import.meta.url).pathname;
/** Generous: two shared cores. Awaited conditions, not sleeps. */
const T = { timeout: 20_000 };
const NAME = "react hooks, two users";

if (!BASE || !PAGE_DIR) throw new Error("set MONTAGE_URL and PAGE_DIR (web/scripts/react-e2e.sh does)");

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function post(path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${BASE}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** Serves index.html and page.js from PAGE_DIR on 127.0.0.1, a port of its own. */
async function serveStatic() {
  const types = { "/": "text/html", "/index.html": "text/html", "/page.js": "text/javascript" };
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const type = types[path];
    if (type === undefined) {
      res.writeHead(404).end();
      return;
    }
    const body = await readFile(join(PAGE_DIR, path === "/" ? "index.html" : path.slice(1)));
    res.writeHead(200, { "content-type": type }).end(body);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

async function openAs(browser, pageUrl, user, name, session, errors) {
  const { token } = await post("/v1/dev/token", { user, name });
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`[${user}] page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`[${user}] console: ${m.text()} (${m.location().url})`);
  });
  const ws = `${BASE.replace(/^http/, "ws")}/v1/ws`;
  const hash = new URLSearchParams({ ws, token, session });
  await page.goto(`${pageUrl}#${hash}`);
  return { user, name, page, token };
}

/** Waits until the page is online with nothing pending and shows `title`. */
async function showsTitle(u, title) {
  await u.page.locator('main[data-state="online"][data-pending="0"]').waitFor(T);
  await u.page.locator("#title", { hasText: new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) }).waitFor(T);
}

async function note(u, text) {
  await u.page.getByLabel("My note").fill(text);
}

async function setTitle(u, title) {
  await u.page.getByLabel("New title").fill(title);
  await u.page.getByRole("button", { name: "Set title" }).click();
}

const { server, url: pageUrl } = await serveStatic();
const browser = await chromium.launch({
  executablePath: EXE,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const errors = [];
try {
  // alice owns a new session and lets anyone signed in with the link edit it (sessions are
  // private by default); then both open the page on it.
  const { token: aliceToken } = await post("/v1/dev/token", { user: "alice", name: "Alice" });
  const { id: session } = await post("/v1/sessions", { title: "react", link_role: "editor" }, aliceToken);
  const alice = await openAs(browser, pageUrl, "alice", "Alice", session, errors);
  await alice.page.locator('main[data-state="online"]').waitFor(T);
  await alice.page.locator("#who", { hasText: "alice (owner)" }).waitFor(T);
  const bob = await openAs(browser, pageUrl, "bob", "Bob", session, errors);
  await bob.page.locator('main[data-state="online"]').waitFor(T);
  await bob.page.locator("#who", { hasText: "bob (editor)" }).waitFor(T);

  // useOthers: each lists the other (by display name), never themselves.
  await alice.page.locator('[data-other="bob"]', { hasText: "Bob:" }).waitFor(T);
  await bob.page.locator('[data-other="alice"]', { hasText: "Alice:" }).waitFor(T);
  check((await alice.page.locator("[data-other]").count()) === 1, "alice's page lists one other");
  check((await bob.page.locator('[data-other="bob"]').count()) === 0, "bob is not among bob's others");

  // useMyPresence → the other's useOthers; presence does not re-render <Title>.
  const titleRenders = await alice.page.evaluate(() => window.titleRenders);
  await note(alice, "sketching");
  await bob.page.locator('[data-other="alice"]', { hasText: "Alice: sketching" }).waitFor(T);
  await note(bob, "watching");
  await alice.page.locator('[data-other="bob"]', { hasText: "Bob: watching" }).waitFor(T);
  check(
    (await alice.page.evaluate(() => window.titleRenders)) === titleRenders,
    "presence updates re-rendered the component that selects only the title",
  );

  // An edit through the hooks on one page shows on the other through useDoc.
  await setTitle(alice, "Hello from Alice");
  await showsTitle(alice, "Hello from Alice");
  await showsTitle(bob, "Hello from Alice");
  await setTitle(bob, "Bob's title");
  await showsTitle(bob, "Bob's title");
  await showsTitle(alice, "Bob's title");

  // useUndo: bob takes back his own edit (alice's stays), then redoes it.
  const undo = bob.page.getByRole("button", { name: "Undo" });
  const redo = bob.page.getByRole("button", { name: "Redo" });
  check(await redo.isDisabled(), "nothing to redo yet");
  await undo.click();
  await showsTitle(bob, "Hello from Alice");
  await showsTitle(alice, "Hello from Alice");
  await redo.click();
  await showsTitle(alice, "Bob's title");
  await showsTitle(bob, "Bob's title");

  mkdirSync(OUT, { recursive: true });
  await alice.page.screenshot({ path: join(OUT, "react-alice.png") });
  await bob.page.screenshot({ path: join(OUT, "react-bob.png") });
  check(errors.length === 0, `the pages reported errors:\n${errors.join("\n")}`);
  console.log(`${NAME}: 1 passed, 0 failed`);
} catch (e) {
  console.error(`${NAME}: FAILED: ${e?.stack ?? e}`);
  if (errors.length > 0) console.error(errors.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
  server.close();
}
