// Two people edit one picture in real Chromium: alice (owner) and bob, each in their own
// browser context. alice opens link access to viewers (sessions are private by default); both
// edit, bob goes offline and edits on, comes back, and both end with the same document; each
// sees the other's cursor and selection; controls follow the role (hidden when not allowed).
// Screenshots go to web/app/test-results (or $MONTAGE_TEST_RESULTS).
import { T, check, converged, doc, fitsViewport, newUser, picture, run, setLinkAccess, shot, signIn } from "./lib.mjs";

const session = `pw-${Date.now().toString(36)}`;

await run("editor page, two users", async (browser) => {
  const alice = await newUser(browser, "alice");
  const bob = await newUser(browser, "bob");

  // alice creates the session and owns it; it is private until she lets anyone with the link
  // view it; bob then joins as a viewer.
  await signIn(alice, session);
  await alice.page.locator("#role", { hasText: "owner" }).waitFor(T);
  await setLinkAccess(alice, "viewer");
  await signIn(bob, session);
  await bob.page.locator("#role", { hasText: "viewer" }).waitFor(T);
  check(await bob.page.getByLabel("Title").isDisabled(), "a viewer's title field is disabled");
  check(await bob.page.locator("#upload-btn").isHidden(), "a viewer has no upload button");
  check(await bob.page.getByRole("button", { name: "Undo" }).isHidden(), "a viewer has no undo");
  check(await bob.page.getByRole("button", { name: "Comment on a region" }).isHidden(), "a viewer can't comment");
  check(await bob.page.getByRole("button", { name: "Share", exact: true }).isHidden(), "only the owner shares");
  check(await alice.page.getByRole("button", { name: "Share", exact: true }).isVisible(), "the owner shares");
  await shot(bob, "01-viewer");

  // The owner makes bob an editor from the people list; bob's controls come alive.
  await alice.page.getByLabel("Role of bob").selectOption("editor");
  await bob.page.locator("#role", { hasText: "editor" }).waitFor(T);
  await bob.page.getByLabel("Title").waitFor({ state: "visible", ...T });
  check(await bob.page.getByLabel("Title").isEnabled(), "an editor's title field is enabled");
  await bob.page.locator("#upload-btn").waitFor({ state: "visible", ...T });

  // alice uploads a picture: an image layer appears for both, and a rendered preview.
  await alice.page.getByLabel("Upload a picture").setInputFiles({ name: "gradient.png", mimeType: "image/png", buffer: picture() });
  await alice.page.locator("[data-layer]").first().waitFor(T);
  await bob.page.locator("[data-layer]").first().waitFor(T);
  const d0 = await converged(alice, bob);
  check(d0.canvas.layers.length === 1 && d0.canvas.layers[0].kind === "image", "one image layer");
  const layer = d0.canvas.layers[0];
  check(d0.assets[layer.asset]?.width === 400, "the asset entry carries its size");
  // The version is set when the picture's source is, the size once it has decoded: wait for both.
  // Read the width in the same check: a newer preview may start loading right after.
  const decoded = await bob.page.waitForFunction(() => {
    const img = document.getElementById("preview");
    const ok = Number(img.dataset.version) >= 1 && img.complete && img.naturalWidth > 0;
    return ok && img.naturalWidth;
  }, null, T);
  const previewWidth = await decoded.jsonValue();
  check(previewWidth > 0 && previewWidth <= 1280, `the preview fits the good tier (${previewWidth}px wide)`);

  // Both edit at once: alice nudges the layer right (keyboard), bob types the title.
  await alice.page.locator(`[data-layer="${layer.id}"]`).click();
  await alice.page.keyboard.press("ArrowRight");
  await alice.page.keyboard.press("ArrowRight");
  await bob.page.getByLabel("Title").fill("Sunset");
  let d = await converged(alice, bob);
  check(d.title === "Sunset", `title is ${JSON.stringify(d.title)}`);
  check(d.canvas.layers[0].x === layer.x + 20, `x moved by 20: ${d.canvas.layers[0].x}`);
  check((await alice.page.getByLabel("Title").inputValue()) === "Sunset", "alice's title field shows bob's title");

  // Rotate and adjust through the layer panel (bob selects the layer; alice sees his selection).
  await bob.page.locator(`[data-layer="${layer.id}"]`).click();
  await alice.page.locator(`[data-layer="${layer.id}"].remote-sel`).waitFor(T);
  await bob.page.getByRole("button", { name: "Rotate 90° right" }).click();
  await bob.page.getByLabel("Brightness").fill("0.3");
  d = await converged(alice, bob);
  check(d.canvas.layers[0].rotation === 90, "rotated");
  check(Math.abs(d.canvas.layers[0].adjust.brightness - 0.3) < 1e-9, "brighter");

  // Cursors: alice's pointer over the canvas shows on bob's screen, in her colour, with her name.
  const stage = await alice.page.locator("#stage").boundingBox();
  await alice.page.mouse.move(stage.x + stage.width * 0.25, stage.y + stage.height * 0.25);
  await alice.page.mouse.move(stage.x + stage.width * 0.3, stage.y + stage.height * 0.3);
  await bob.page.locator('[data-cursor="alice"]').waitFor(T);
  check((await bob.page.locator('[data-cursor="alice"]').innerText()).includes("alice"), "the cursor is labelled");
  await shot(alice, "02-both-editing");
  await shot(bob, "02-both-editing");

  // bob goes offline and keeps editing: the page says so and counts his pending edits.
  await bob.context.setOffline(true);
  await bob.page.locator("#conn[data-state=offline]").waitFor(T);
  await bob.page.getByLabel("Title").press("End");
  await bob.page.getByLabel("Title").pressSequentially(" sky");
  await bob.page.locator(`[data-layer="${layer.id}"]`).click();
  await bob.page.keyboard.press("ArrowDown");
  await bob.page.locator("#conn", { hasText: /Offline · [1-9]\d* pending edit/ }).waitFor(T);
  // Meanwhile alice edits the same title and moves the layer.
  await alice.page.getByLabel("Title").press("Home");
  await alice.page.getByLabel("Title").pressSequentially("Red ");
  await alice.page.locator("#stage").focus();
  await alice.page.keyboard.press("ArrowRight");
  await shot(bob, "03-offline");
  await bob.context.setOffline(false);
  d = await converged(alice, bob);
  check(d.title === "Red Sunset sky", `both edits kept: ${JSON.stringify(d.title)}`);
  check(d.canvas.layers[0].x === layer.x + 30 && d.canvas.layers[0].y === layer.y + 10, `both moves kept: ${JSON.stringify(d.canvas.layers[0])}`);
  check((await bob.page.getByLabel("Title").inputValue()) === "Red Sunset sky", "bob's field shows the merged title");

  // Undo is per user: alice's Ctrl+Z takes back her last move only.
  await alice.page.locator("#stage").focus();
  await alice.page.keyboard.press("Control+z");
  d = await converged(alice, bob);
  check(d.canvas.layers[0].x === layer.x + 20 && d.canvas.layers[0].y === layer.y + 10, `alice's move undone: ${JSON.stringify(d.canvas.layers[0])}`);
  check(d.title === "Red Sunset sky", "bob's title stays");
  await alice.page.keyboard.press("Control+Shift+z");
  d = await converged(alice, bob);
  check(d.canvas.layers[0].x === layer.x + 30, "redone");

  // Demoted to viewer, bob's controls are disabled again.
  await alice.page.getByLabel("Role of bob").selectOption("viewer");
  await bob.page.locator("#role", { hasText: "viewer" }).waitFor(T);
  check(await bob.page.getByLabel("Title").isDisabled(), "viewer again: title disabled");
  await bob.page.locator("#layer-panel").waitFor({ state: "hidden", ...T });

  // The rendered preview catches up with the document on both screens.
  const head = await alice.page.evaluate(() => window.montage.version());
  for (const u of [alice, bob]) {
    await u.page.waitForFunction((v) => Number(document.getElementById("preview").dataset.version) >= v, head, T);
  }
  for (const u of [alice, bob]) await fitsViewport(u);
  await shot(alice, "04-final");
  await shot(bob, "04-final");
  const final = await doc(alice);
  console.log(`final document: ${JSON.stringify(final)}`);
});
