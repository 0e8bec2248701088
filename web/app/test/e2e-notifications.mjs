// The inbox in the editor page (docs/PROTOCOL.md "Notifications"), in real Chromium.
//
// alice makes a session and lets anyone with the link edit it; bob (a fresh user id each run)
// joins it once, then opens another session of his own. alice comments on a picture naming
// @bob: bob's bell, though his page is in the other session, counts it (sent live to every
// connection of his), and his inbox lists a mention by alice in her session. "Mark all read" clears the count, here and on the
// server (GET /v1/notifications?unread=true is empty); a click on the item takes bob to alice's
// session, whose people list shows alice's first-edit badge.
import { BASE, T, check, newUser, picture, run, setLinkAccess, shot, signIn } from "./lib.mjs";

const stamp = Date.now().toString(36);
const session = `pwn-${stamp}`;
const other = `pwn-other-${stamp}`;
// bob's inbox starts empty even on a server earlier runs used.
const bobName = `bob-${stamp}`;

/** A user's unread items as the server keeps them, read outside the page with a dev token. */
async function unreadOf(user) {
  const t = await fetch(`${BASE}/v1/dev/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user }),
  });
  check(t.ok, `dev token for ${user}: ${t.status} ${await t.clone().text()}`);
  const { token } = await t.json();
  const r = await fetch(`${BASE}/v1/notifications?unread=true`, { headers: { Authorization: `Bearer ${token}` } });
  const text = await r.text();
  check(r.ok, `GET /v1/notifications: ${r.status} ${text}`);
  return JSON.parse(text).notifications;
}

await run("notifications", async (browser) => {
  const alice = await newUser(browser, "alice");
  const bob = await newUser(browser, bobName);

  await signIn(alice, session);
  await alice.page.locator("#role", { hasText: "owner" }).waitFor(T);
  await setLinkAccess(alice, "editor");
  await signIn(bob, session);
  await bob.page.locator("#role", { hasText: "editor" }).waitFor(T);

  // bob moves on to a session of his own (made by joining it).
  await bob.page.getByRole("button", { name: "My sessions" }).click();
  await bob.page.locator("#sessions:not([hidden])").waitFor(T);
  await bob.page.getByLabel("Session id or link").fill(other);
  await bob.page.getByRole("button", { name: "Open", exact: true }).click();
  await bob.page.locator("#session-label", { hasText: other }).waitFor(T);
  await bob.page.locator("#conn[data-state=online]").waitFor(T);
  await bob.page.locator("#role", { hasText: "owner" }).waitFor(T);
  check(await bob.page.locator("#bell").isVisible(), "a signed-in page has a bell");
  check(await bob.page.locator("#bell-count").isHidden(), "no unread items yet: no count");

  // alice comments on a region of a picture, naming @bob.
  await alice.page.getByLabel("Upload a picture").setInputFiles({ name: "p.png", mimeType: "image/png", buffer: picture() });
  await alice.page.locator("[data-layer]").first().waitFor(T);
  await alice.page.getByRole("button", { name: "Comment on a region" }).click();
  const box = await alice.page.locator("[data-layer]").first().boundingBox();
  await alice.page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.2);
  await alice.page.mouse.down();
  await alice.page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.4, { steps: 5 });
  await alice.page.mouse.up();
  await alice.page.getByLabel("Comment", { exact: true }).fill(`@${bobName} can you brighten this?`);
  await alice.page.getByRole("button", { name: "Post comment" }).click();
  await alice.page.locator("#comments li", { hasText: `@${bobName} can you brighten this?` }).waitFor(T);

  // bob's bell counts it live, in his other session.
  await bob.page.locator("#bell-count:not([hidden])").waitFor(T);
  const count = Number(await bob.page.locator("#bell-count").innerText());
  check(count >= 1, `bob's bell shows ${count}`);
  check((await bob.page.locator("#session-label").innerText()).includes(other), "bob is still in his own session");

  // The inbox lists a mention by alice, in alice's session, unread.
  await bob.page.locator("#bell").click();
  await bob.page.locator("#inbox[open]").waitFor(T);
  const item = bob.page.locator(`#inbox-list li[data-kind="mention"][data-session="${session}"]`);
  await item.first().waitFor(T);
  const text = await item.first().innerText();
  check(text.includes("alice") && text.includes("mentioned you"), `the item reads: ${text}`);
  check(text.includes(session), `the item names alice's session: ${text}`);
  check(await item.first().evaluate((li) => li.classList.contains("unread")), "the mention is shown unread");
  await shot({ ...bob, name: "bob" }, "15-inbox");

  // Mark all read: the count goes, here and on the server.
  await bob.page.getByRole("button", { name: "Mark all read" }).click();
  await bob.page.locator("#bell-count").waitFor({ state: "hidden", ...T });
  await bob.page.locator("#inbox-list li.unread").first().waitFor({ state: "detached", ...T });
  const left = await unreadOf(bobName);
  check(left.length === 0, `bob has ${left.length} unread item(s) on the server after "Mark all read": ${JSON.stringify(left)}`);

  // A click on the item opens alice's session.
  await item.first().getByRole("button").click();
  await bob.page.locator("#inbox").waitFor({ state: "hidden", ...T });
  await bob.page.locator("#session-label", { hasText: session }).waitFor(T);
  await bob.page.locator("#conn[data-state=online]").waitFor(T);
  await bob.page.locator("#comments li", { hasText: `@${bobName} can you brighten this?` }).waitFor(T);
  // The people list shows alice's badge: her upload was her first edit there.
  const chip = bob.page.locator('#people [data-badges="alice"]');
  await chip.waitFor(T);
  const badges = await chip.getAttribute("title");
  check(badges.includes("first edit"), `alice's badges read: ${badges}`);
  await shot({ ...bob, name: "bob" }, "16-inbox-opened");
});
