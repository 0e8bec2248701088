// Version history in the editor page (docs/PROTOCOL.md "Version history"), in real Chromium.
//
// alice (owner) opens link access to editors and bob joins. alice sets the title to "one" (at
// version N, read from her page's replica once both pages agree and nothing is pending, and
// checked against GET /v1/sessions/{id}?version=N), then to "two"; bob sees "two". alice opens
// History, types N, names it (the named version appears in the list), previews it from its row
// (a picture of that version), and restores it: both pages show "one". The restore is alice's
// own edit, so her Undo takes it back: both show "two" again.
import { BASE, T, check, converged, newUser, run, setLinkAccess, shot, signIn } from "./lib.mjs";

const session = `pwh-${Date.now().toString(36)}`;

/** The document at `version` as the server keeps it, read outside the page with a dev token. */
async function stateAt(user, version) {
  const t = await fetch(`${BASE}/v1/dev/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user }),
  });
  check(t.ok, `dev token for ${user}: ${t.status} ${await t.clone().text()}`);
  const { token } = await t.json();
  const r = await fetch(`${BASE}/v1/sessions/${encodeURIComponent(session)}?version=${version}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const text = await r.text();
  check(r.ok, `GET the state at version ${version}: ${r.status} ${text}`);
  const body = JSON.parse(text);
  check(body.version === version, `the state read is version ${body.version}, not ${version}`);
  return body.state;
}

const version = (u) => u.page.evaluate(() => window.montage.version());
const titleField = (u) => u.page.locator("#title").inputValue();

await run("version history", async (browser) => {
  const alice = await newUser(browser, "alice");
  const bob = await newUser(browser, "bob");

  // alice creates the session and lets anyone with the link edit it; bob joins as an editor.
  await signIn(alice, session);
  await alice.page.locator("#role", { hasText: "owner" }).waitFor(T);
  await setLinkAccess(alice, "editor");
  await signIn(bob, session);
  await bob.page.locator("#role", { hasText: "editor" }).waitFor(T);
  check(await alice.page.locator("#history").isVisible(), "the owner has a History button");
  check(await bob.page.locator("#history").isVisible(), "an editor has a History button");

  // "one" at version N: both replicas agree and nothing is pending, so alice's replica is at the
  // version her edit got; the server's state at N says so too.
  await alice.page.getByLabel("Title").fill("one");
  let d = await converged(alice, bob);
  check(d.title === "one", `title is ${JSON.stringify(d.title)}`);
  const vOne = await version(alice);
  check(Number.isInteger(vOne) && vOne >= 1, `alice's page is at version ${vOne}`);
  const past = await stateAt("alice", vOne);
  check(past.title === "one", `the state at version ${vOne} has title ${JSON.stringify(past.title)}`);

  // Then "two"; bob sees it.
  await alice.page.getByLabel("Title").fill("two");
  d = await converged(alice, bob);
  check(d.title === "two", `title is ${JSON.stringify(d.title)}`);
  await bob.page.waitForFunction(() => document.getElementById("title").value === "two", null, T);
  const vTwo = await version(alice);
  check(vTwo > vOne, `"two" is a later version (${vTwo} > ${vOne})`);

  // The History dialog lists the saved versions (maybe none yet: checkpoints come every few
  // minutes); alice types N and names it: it is listed with its name.
  await alice.page.locator("#history").click();
  await alice.page.locator("#history-dialog[open]").waitFor(T);
  await alice.page.locator('#history-list[data-state="loaded"]').waitFor({ ...T, state: "attached" });
  await alice.page.locator("#history-version").fill(String(vOne));
  await alice.page.locator("#history-name").click();
  await alice.page.getByLabel(`Name of version ${vOne}`, { exact: true }).fill("First draft");
  await alice.page.getByRole("button", { name: "Save name" }).click();
  const row = alice.page.locator(`#history-list li[data-version="${vOne}"]`);
  await row.filter({ hasText: "First draft" }).waitFor(T);
  check((await row.innerText()).includes("alice"), `the row names the author: ${await row.innerText()}`);

  // A preview of version N from its row.
  await row.getByRole("button", { name: `Preview version ${vOne}`, exact: true }).click();
  await alice.page.waitForFunction(
    (v) => {
      const img = document.getElementById("history-preview-img");
      return img.dataset.version === String(v) && img.complete && img.naturalWidth > 0;
    },
    vOne,
    T,
  );
  await shot(alice, "12-history");

  // Restore the typed version: one edit of alice's; both pages show "one".
  await alice.page.locator("#history-version").fill(String(vOne));
  await alice.page.locator("#history-restore").click();
  await alice.page.locator("#history-dialog").waitFor({ state: "hidden", ...T });
  await alice.page.locator("#notice", { hasText: `Restored version ${vOne}` }).waitFor(T);
  d = await converged(alice, bob);
  check(d.title === "one", `after the restore the title is ${JSON.stringify(d.title)}`);
  await bob.page.waitForFunction(() => document.getElementById("title").value === "one", null, T);
  check((await titleField(alice)) === "one", "alice's title field shows the restored title");
  const vRestored = await version(alice);
  check(vRestored > vTwo, `the restore is a new version (${vRestored} > ${vTwo})`);
  await shot(alice, "13-history-restored");
  await shot(bob, "13-history-restored");

  // alice's Undo takes the restore back, for both.
  await alice.page.locator("#undo:not([disabled])").click();
  d = await converged(alice, bob);
  check(d.title === "two", `after undo the title is ${JSON.stringify(d.title)}`);
  await bob.page.waitForFunction(() => document.getElementById("title").value === "two", null, T);
  check((await titleField(alice)) === "two", "alice's title field shows the title again");
  check((await version(alice)) > vRestored, "the undo is a new version");
  await shot(alice, "14-history-undone");
  await shot(bob, "14-history-undone");
});
