// Private sessions and sharing (DESIGN §9.1, issue #14) in real Chromium.
//
// alice creates a session from her sessions list: it is private. bob, a stranger opening its
// link, sees the no-access panel and nothing of the document. alice opens link access to
// editors in the share dialog: bob's page joins by itself and bob edits. alice closes link
// access: bob is taken out at once. Then alice deletes the session: it leaves her list, and bob's
// page, trying again, finds no such session.
import { T, check, converged, doc, newUser, run, setLinkAccess, shot, signIn } from "./lib.mjs";

const title = `Launch poster ${Date.now().toString(36)}`;

await run("private sessions and sharing", async (browser) => {
  const alice = await newUser(browser, "alice");
  const bob = await newUser(browser, "bob");

  // alice signs in without naming a session: her sessions list; she makes a new one.
  await signIn(alice, null);
  await alice.page.getByLabel("Name for a new session").fill(title);
  await alice.page.getByRole("button", { name: "New session" }).click();
  await alice.page.locator("#conn[data-state=online]").waitFor(T);
  await alice.page.locator("#role", { hasText: "owner" }).waitFor(T);
  const id = new URL(alice.page.url()).searchParams.get("session");
  check(id && id.length >= 16, `the page's address names the server-made session id: ${alice.page.url()}`);
  await alice.page.waitForFunction((t) => window.montage.doc()?.title === t, title, T);

  // It is in her list (GET /v1/sessions), and opens from there.
  await alice.page.getByRole("button", { name: "My sessions" }).click();
  await alice.page.locator(`#session-list li[data-session="${id}"]`, { hasText: title }).waitFor(T);
  check((await alice.page.locator(`#session-list li[data-session="${id}"]`).innerText()).includes("owner"), "listed as hers");
  await alice.page.getByRole("button", { name: `Open ${title}` }).click();
  await alice.page.locator("#conn[data-state=online]").waitFor(T);
  await alice.page.locator("#role", { hasText: "owner" }).waitFor(T);

  // The share dialog: private by default; its link is the session's address.
  await alice.page.getByRole("button", { name: "Share", exact: true }).click();
  await alice.page.locator('#share-dialog[data-link-role="none"]').waitFor(T);
  const link = await alice.page.getByLabel("Session link").inputValue();
  check(link === `${new URL(alice.page.url()).origin}/?session=${encodeURIComponent(id)}`, `share link: ${link}`);
  await alice.page.getByRole("button", { name: "Copy link" }).click();
  await shot(alice, "07-share-dialog");
  await alice.page.getByRole("button", { name: "Done" }).click();

  // bob opens the link: no access, and no document reaches his page.
  await bob.page.goto(link);
  await bob.page.getByLabel("Your name").fill("bob");
  await bob.page.getByRole("button", { name: "Sign in" }).click();
  await bob.page.locator("#no-access:not([hidden])").waitFor(T);
  const says = await bob.page.locator("#no-access-text").innerText();
  check(/ask the owner to share it/.test(says), `the panel says what to do: ${says}`);
  check(await bob.page.locator("#editor").isHidden(), "no editor without access");
  check((await doc(bob)) === null, "no document without access");
  await shot(bob, "08-no-access");

  // alice opens link access to editors: bob's page joins by itself, and he edits.
  await setLinkAccess(alice, "editor", true);
  await bob.page.locator("#role", { hasText: "editor" }).waitFor(T);
  await bob.page.locator("#conn[data-state=online]").waitFor(T);
  check(await bob.page.locator("#no-access").isHidden(), "the panel is gone once let in");
  check(await bob.page.getByRole("button", { name: "Share", exact: true }).isHidden(), "an editor who is not the owner does not share");
  check(await bob.page.locator("#upload-btn").isVisible(), "an editor can upload");
  await bob.page.getByLabel("Title").fill(`${title} v2`);
  const d = await converged(alice, bob);
  check(d.title === `${title} v2`, `bob's edit reached alice: ${JSON.stringify(d.title)}`);
  await alice.page.locator('#members [data-member="bob"]').waitFor(T);
  await shot(bob, "09-let-in");

  // alice closes link access: bob is taken out at once.
  await setLinkAccess(alice, "none", true);
  await bob.page.locator('#no-access[data-reason="removed"]:not([hidden])').waitFor(T);
  check(/ask the owner to share it/.test(await bob.page.locator("#no-access-text").innerText()), "bob is told why");
  check(await bob.page.locator("#editor").isHidden(), "bob's editor is gone");
  // (offline, or trying to join again every few seconds: never online)
  check((await bob.page.evaluate(() => window.montage.state())) !== "online", "bob's page left the session");
  check((await alice.page.evaluate(() => window.montage.state())) === "online", "alice stays");
  await alice.page.locator('#members [data-member="bob"]').waitFor({ state: "detached", ...T });
  await shot(bob, "10-taken-out");

  // alice deletes the session: it leaves her list; bob's page, trying again, finds nothing.
  await alice.page.getByRole("button", { name: "Delete session" }).click();
  await alice.page.getByRole("button", { name: "Delete for everyone" }).click();
  await alice.page.locator("#sessions:not([hidden])").waitFor(T);
  await alice.page.waitForFunction(() => document.getElementById("sessions-status").textContent !== "Loading…", null, T);
  check((await alice.page.locator(`#session-list li[data-session="${id}"]`).count()) === 0, "the deleted session is not listed");
  await bob.page.locator('#no-access[data-reason="not_found"]').waitFor(T);
  await shot(bob, "11-deleted");
});
