// An end-to-end encrypted session in the editor page, in real Chromium (docs/E2E.md). alice makes
// one from her sessions list ("New encrypted session": the key is made in her page and kept in
// the link's `#key=` fragment), opens link access to editors and shares the link; bob opens it.
// alice adds a text layer (an encrypted session takes no uploads), bob moves it and edits its
// text, alice types the title: both end with the same document, drawn from their replicas (no
// server preview, no History). alice comments on the layer and bob reads the comment. The
// server holds none of it in the clear (its answers over HTTP are sealed or refused). carol,
// opening the session's address without the key, and dave, with a wrong key, see why they
// can't read it, and no layers.
import { randomBytes } from "node:crypto";
import { BASE, T, check, converged, newUser, run, setLinkAccess, shot, signIn } from "./lib.mjs";

await run("encrypted session", async (browser) => {
  const alice = await newUser(browser, "alice");
  const bob = await newUser(browser, "bob");

  // alice makes an encrypted session from her list: its address carries the key.
  await signIn(alice, null);
  await alice.page.getByRole("button", { name: "New encrypted session" }).click();
  await alice.page.locator("#conn[data-state=online]").waitFor(T);
  await alice.page.locator("#role", { hasText: "owner" }).waitFor(T);
  await alice.page.locator("#e2e-badge").waitFor({ state: "visible", ...T });
  const address = new URL(alice.page.url());
  const session = address.searchParams.get("session");
  const key = new URLSearchParams(address.hash.slice(1)).get("key");
  check(session && key && key.length === 43, `the address carries the session and its key: ${address}`);
  check(await alice.page.evaluate(() => window.montage.encrypted()), "alice's client is encrypted");

  // Link access for editors; the share link carries the key in its fragment.
  await setLinkAccess(alice, "editor", true);
  const link = await alice.page.getByLabel("Session link").inputValue();
  check(link.endsWith(`#key=${key}`) && link.includes(`session=${encodeURIComponent(session)}`), `share link: ${link}`);
  await alice.page.getByRole("button", { name: "Done" }).click();

  // bob opens the link.
  await signIn(bob, session, link.slice(link.indexOf("?")));
  await bob.page.locator("#role", { hasText: "editor" }).waitFor(T);
  await bob.page.locator("#e2e-badge").waitFor({ state: "visible", ...T });
  for (const u of [alice, bob]) {
    check(await u.page.locator("#upload-btn").isHidden(), `${u.name}: no uploads in an encrypted session`);
    check(await u.page.getByRole("button", { name: "History" }).isHidden(), `${u.name}: no History in an encrypted session`);
    check(await u.page.getByRole("button", { name: "Add text" }).isVisible(), `${u.name}: an editor adds text`);
  }

  // alice adds a text layer; both see it, drawn from the replica.
  await alice.page.getByLabel("Text for a new layer").fill("Hello, sealed world");
  await alice.page.getByRole("button", { name: "Add text" }).click();
  await bob.page.locator("[data-layer]", { hasText: "Hello, sealed world" }).waitFor(T);
  const d0 = await converged(alice, bob);
  check(d0.canvas.layers.length === 1 && d0.canvas.layers[0].kind === "text", `one text layer: ${JSON.stringify(d0.canvas.layers)}`);
  const layer = d0.canvas.layers[0];

  // bob moves it (keyboard) and edits its text; alice types the title meanwhile.
  await bob.page.locator(`[data-layer="${layer.id}"]`).click();
  await bob.page.keyboard.press("ArrowRight");
  await bob.page.keyboard.press("ArrowRight");
  await alice.page.getByLabel("Title").fill("Secret plan");
  let d = await converged(alice, bob);
  check(d.canvas.layers[0].x === layer.x + 20, `moved by 20: ${JSON.stringify(d.canvas.layers[0])}`);
  check(d.title === "Secret plan", `title: ${JSON.stringify(d.title)}`);
  await bob.page.getByLabel("Layer text").fill("Hello, sealed world!");
  await bob.page.getByLabel("Layer text").press("Tab"); // the change is committed when the field is left
  await alice.page.locator(`[data-layer="${layer.id}"]`, { hasText: "Hello, sealed world!" }).waitFor(T);
  d = await converged(alice, bob);
  check(d.canvas.layers[0].text === "Hello, sealed world!", `text: ${JSON.stringify(d.canvas.layers[0])}`);
  check((await bob.page.getByLabel("Title").inputValue()) === "Secret plan", "bob's title field shows alice's title");
  for (const u of [alice, bob]) {
    check((await u.page.locator("#preview").getAttribute("src")) === null, `${u.name}: no server preview`);
  }

  // alice comments on the layer; bob reads the comment (sealed on the way).
  await alice.page.getByRole("button", { name: "Comment on a region" }).click();
  const box = await alice.page.locator(`[data-layer="${layer.id}"]`).boundingBox();
  await alice.page.mouse.move(box.x + box.width * 0.1, box.y + box.height * 0.1);
  await alice.page.mouse.down();
  await alice.page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.9, { steps: 5 });
  await alice.page.mouse.up();
  await alice.page.getByLabel("Comment", { exact: true }).fill("Only we can read this");
  await alice.page.getByRole("button", { name: "Post comment" }).click();
  await bob.page.locator("#comments li", { hasText: "Only we can read this" }).waitFor(T);
  await alice.page.locator("#comments li", { hasText: "Only we can read this" }).waitFor(T);
  await bob.page.locator(".comment-box").first().waitFor(T);
  await shot(alice, "20-encrypted");
  await shot(bob, "20-encrypted");

  // What the server answers over HTTP: sealed entries and comments, the state refused.
  const seen = await alice.page.evaluate(async (id) => {
    const t = await fetch("/v1/dev/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user: "alice", name: "alice" }) });
    const headers = { Authorization: `Bearer ${(await t.json()).token}` };
    const path = `/v1/sessions/${encodeURIComponent(id)}`;
    const ops = await fetch(`${path}/ops?from=0`, { headers });
    const comments = await fetch(`${path}/comments`, { headers });
    const state = await fetch(path, { headers });
    return { ops: await ops.text(), comments: await comments.text(), state: state.status };
  }, session);
  check(seen.state === 409, `the state over HTTP is refused: ${seen.state}`);
  check(seen.ops.includes('"data"'), `the server keeps sealed entries: ${seen.ops.slice(0, 200)}`);
  for (const secret of ["sealed world", "Secret plan", "Only we can read"]) {
    check(!seen.ops.includes(secret) && !seen.comments.includes(secret), `the server holds "${secret}" in the clear`);
  }

  // carol opens the session's address without the key: she is told why, and sees no layers.
  const carol = await newUser(browser, "carol");
  await carol.page.goto(`${BASE}/?session=${encodeURIComponent(session)}`);
  await carol.page.getByLabel("Your name").fill("carol");
  await carol.page.getByRole("button", { name: "Sign in" }).click();
  await carol.page.locator("#no-access:not([hidden])").waitFor(T);
  await carol.page.locator("#no-access-text", { hasText: "This session is end-to-end encrypted: open it with its link, which carries the key" }).waitFor(T);
  check(await carol.page.locator("#editor").isHidden(), "carol sees no editor");
  check((await carol.page.locator("[data-layer]").count()) === 0, "carol sees no layers");
  await shot(carol, "21-no-key");

  // dave opens it with a wrong key.
  const dave = await newUser(browser, "dave");
  await dave.page.goto(`${BASE}/?session=${encodeURIComponent(session)}#key=${randomBytes(32).toString("base64url")}`);
  await dave.page.getByLabel("Your name").fill("dave");
  await dave.page.getByRole("button", { name: "Sign in" }).click();
  await dave.page.locator("#no-access-text", { hasText: "could not be decrypted: wrong key" }).waitFor(T);
  check(await dave.page.locator("#editor").isHidden(), "dave sees no editor");
  check((await dave.page.locator("[data-layer]").count()) === 0, "dave sees no layers");
  await shot(dave, "22-wrong-key");

  // alice and bob are not disturbed: one more edit goes through.
  await alice.page.getByLabel("Title").fill("Secret plan v2");
  d = await converged(alice, bob);
  check(d.title === "Secret plan v2", `title: ${JSON.stringify(d.title)}`);
  console.log(`final document: ${JSON.stringify(d)}`);
});
