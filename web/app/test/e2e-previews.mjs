// Live previews in the page (issue #7): ONE user joins, the page subscribes to previews, and
// the same connection edits at a human's pace. Every edit must bring a `preview` message on the
// page's own WebSocket, and the picture on screen must follow. Counted from the frames Chromium
// received, so it checks the server and the page together. Then a steady stream of edits (a key
// held down): the picture must keep updating while it lasts. It did not: each `preview` message
// cancelled the request before it without reading its body, so no picture was ever shown, and
// the abandoned bodies held Chromium's six connections until every later request stalled.
import { T, check, newUser, picture, run, signIn } from "./lib.mjs";

const session = `pv-${Date.now().toString(36)}`;

await run("live previews, one user editing", async (browser) => {
  const alice = await newUser(browser, "alice");
  const previews = [];
  alice.page.on("websocket", (ws) => {
    ws.on("framereceived", (f) => {
      try {
        const m = JSON.parse(String(f.payload));
        if (m.type === "preview") previews.push(m);
      } catch {
        // not JSON: not ours to judge here
      }
    });
  });
  await signIn(alice, session);
  await alice.page.locator("#role", { hasText: "owner" }).waitFor(T);
  await alice.page.getByLabel("Upload a picture").setInputFiles({ name: "gradient.png", mimeType: "image/png", buffer: picture() });
  const layer = alice.page.locator("[data-layer]").first();
  await layer.waitFor(T);
  await layer.click();
  const version = () => alice.page.evaluate(() => window.montage.version());
  for (let i = 0; i < 6; i++) {
    await alice.page.waitForTimeout(400); // a human's pace: the point of the test, not a wait for state
    await alice.page.keyboard.press("ArrowRight");
    await alice.page.waitForFunction(() => window.montage.pending() === 0, null, T);
    const v = await version();
    const deadline = Date.now() + T.timeout;
    while (!previews.some((p) => p.version >= v)) {
      if (Date.now() > deadline) {
        throw new Error(`no preview message for version ${v} after nudge ${i + 1}; got ${JSON.stringify(previews.map((p) => p.version))}`);
      }
      await alice.page.waitForTimeout(50);
    }
  }
  const v = await version();
  check(previews.every((p) => p.tier === "good"), `previews at the chosen tier: ${JSON.stringify(previews.map((p) => p.tier))}`);
  // The picture on screen shows the newest version.
  await alice.page.waitForFunction((want) => Number(document.getElementById("preview").dataset.version) >= want, v, T);

  // Another tier from the menu: previews come at that tier, still after every edit.
  await alice.page.getByLabel("Preview tier").selectOption("fair");
  previews.length = 0;
  for (let i = 0; i < 3; i++) {
    await alice.page.waitForTimeout(400);
    await layer.click();
    await alice.page.keyboard.press("ArrowDown");
    await alice.page.waitForFunction(() => window.montage.pending() === 0, null, T);
    const w = await version();
    const deadline = Date.now() + T.timeout;
    while (!previews.some((p) => p.version >= w && p.tier === "fair")) {
      if (Date.now() > deadline) {
        throw new Error(`no fair preview for version ${w}; got ${JSON.stringify(previews.map((p) => [p.version, p.tier]))}`);
      }
      await alice.page.waitForTimeout(50);
    }
  }
  console.log(`preview versions seen: ${previews.map((p) => p.version).join(",")}`);

  // A key held down: edits keep coming faster than pictures render. The picture must update
  // while they do, not only once they stop.
  await alice.page.evaluate(() => {
    window.shownWhileEditing = 0;
    new MutationObserver(() => window.shownWhileEditing++).observe(document.getElementById("preview"), {
      attributes: true,
      attributeFilter: ["src"],
    });
  });
  previews.length = 0;
  let presses = 0;
  while ((await alice.page.evaluate(() => window.shownWhileEditing)) < 3) {
    if (presses >= 300) {
      throw new Error(`the picture updated ${await alice.page.evaluate(() => window.shownWhileEditing)} times during ${presses} edits (${previews.length} preview messages)`);
    }
    await alice.page.keyboard.press("ArrowRight");
    presses++;
    await alice.page.waitForTimeout(30); // the key's repeat rate
  }
  await alice.page.waitForFunction(() => window.montage.pending() === 0, null, T);
  const last = await version();
  await alice.page.waitForFunction((want) => Number(document.getElementById("preview").dataset.version) >= want, last, T);
  console.log(`streaming: ${presses} edits, ${previews.length} preview messages, picture at version ${last}`);
});
