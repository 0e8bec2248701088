// An end-to-end encrypted session in the editor page, in real Chromium (docs/E2E.md): two users
// edit a picture and comment; a third without the key sees an error, not garbage.
//
// alice makes one from her sessions list ("New encrypted session": the key is made in her page
// and kept in the link's `#key=` fragment), opens link access to editors and shares the link; bob
// opens it. alice uploads a picture (a PNG, half red and half blue): her page seals it with the
// session's key before it leaves and reads its size itself; both pages fetch nothing but sealed
// bytes and draw it into their canvas from what they opened (no server preview). bob moves and
// resizes it, alice adds a text layer and bob edits it, alice types the title: both end with the
// same document and the same pixels. alice comments on the picture and bob reads the comment. The
// server holds none of it in the clear: the asset it serves starts with MTGSEAL1 and holds neither
// the PNG nor its pixel data, a picture sent unsealed is refused, and its other answers over HTTP
// are sealed or refused. carol, opening the session's address without the key, and dave, with a
// wrong key, see why they can't read it, and no layers and no picture. erin has the key, but the
// picture's bytes are changed on their way to her page: she sees the session, and in the
// picture's place "could not be decrypted", not garbage.
import { randomBytes } from "node:crypto";
import { BASE, T, check, converged, halves, idat, newUser, run, setLinkAccess, shot, signIn } from "./lib.mjs";

const PNG = halves(64, 48);

/** The pixel at x, y (canvas pixels) of the canvas the page draws an encrypted session into. */
const pixel = (u, x, y) =>
  u.page.evaluate(([x, y]) => [...document.getElementById("e2e-canvas").getContext("2d").getImageData(x, y, 1, 1).data], [x, y]);

/** Waits until the page's canvas shows the picture in `l`: red in its left half, blue in its right
 * (and nothing just left of it). */
async function showsPicture(u, l) {
  const at = { red: [l.x + l.w * 0.25, l.y + l.h / 2], blue: [l.x + l.w * 0.75, l.y + l.h / 2], outside: [l.x - 5, l.y + l.h / 2] };
  await u.page.waitForFunction(
    (at) => {
      const cv = document.getElementById("e2e-canvas");
      if (cv.hidden || cv.width === 0) return false;
      const g = cv.getContext("2d");
      const px = ([x, y]) => g.getImageData(Math.round(x), Math.round(y), 1, 1).data;
      const [r, gr, b, a] = px(at.red);
      const [r2, g2, b2, a2] = px(at.blue);
      return r > 200 && gr < 50 && b < 50 && a > 200 && r2 < 50 && g2 < 50 && b2 > 200 && a2 > 200 && px(at.outside)[3] === 0;
    },
    at,
    T,
  ).catch(async (e) => {
    throw new Error(`${u.name}'s canvas does not show the picture at ${JSON.stringify(l)}: red ${await pixel(u, ...at.red.map(Math.round))}, blue ${await pixel(u, ...at.blue.map(Math.round))} (${e.message})`);
  });
}

/** alice's token, fetched in her page, and a request with it: what the server answers over HTTP. */
async function asAlice(u, what) {
  return u.page.evaluate(async (what) => {
    const t = await fetch("/v1/dev/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user: "alice", name: "alice" }) });
    const headers = { Authorization: `Bearer ${(await t.json()).token}` };
    const r = await fetch(what.path, { method: what.method ?? "GET", headers, ...(what.body ? { body: new Uint8Array(what.body) } : {}) });
    const bytes = new Uint8Array(await r.arrayBuffer());
    return { status: r.status, type: r.headers.get("content-type"), text: new TextDecoder().decode(bytes), bytes: [...bytes] };
  }, what);
}

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
    check(await u.page.locator("#upload-btn").isVisible(), `${u.name}: an editor uploads pictures in an encrypted session`);
    check(await u.page.getByRole("button", { name: "History" }).isHidden(), `${u.name}: no History in an encrypted session`);
    check(await u.page.getByRole("button", { name: "Add text" }).isVisible(), `${u.name}: an editor adds text`);
  }

  // A video is not taken here: the page says so and uploads nothing.
  await alice.page.getByLabel("Upload a picture").setInputFiles({ name: "clip.mp4", mimeType: "video/mp4", buffer: randomBytes(64) });
  await alice.page.locator("#notice", { hasText: "Videos and sounds can't be added to an end-to-end encrypted session" }).waitFor(T);
  // Nor a small file declaring a huge picture (the server can't check a sealed one, so pages
  // check before they decode): a PNG header of 20,000 × 20,000 pixels in 45 bytes.
  const bomb = Buffer.alloc(45);
  bomb.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  bomb.writeUInt32BE(20_000, 16);
  bomb.writeUInt32BE(20_000, 20);
  await alice.page.getByLabel("Upload a picture").setInputFiles({ name: "bomb.png", mimeType: "image/png", buffer: bomb });
  await alice.page.locator("#notice", { hasText: "declares 20000×20000 pixels" }).waitFor(T);

  // alice uploads the picture; both canvases show it, drawn from what each page opened.
  await alice.page.getByLabel("Upload a picture").setInputFiles({ name: "halves.png", mimeType: "image/png", buffer: PNG });
  await bob.page.locator("[data-layer]").first().waitFor(T);
  const d0 = await converged(alice, bob);
  check(d0.canvas.layers.length === 1 && d0.canvas.layers[0].kind === "image", `one image layer: ${JSON.stringify(d0.canvas.layers)}`);
  const pic = d0.canvas.layers[0];
  check(pic.w === 64 && pic.h === 48, `the layer has the picture's size, read in alice's page: ${JSON.stringify(pic)}`);
  check(
    JSON.stringify(d0.assets[pic.asset]) === JSON.stringify({ kind: "image", width: 64, height: 48 }),
    `the asset entry carries the size: ${JSON.stringify(d0.assets)}`,
  );
  await showsPicture(alice, pic);
  await showsPicture(bob, pic);
  check((await bob.page.evaluate(() => window.montage.pictures()))[pic.asset] === "ready", "bob fetched and opened the picture");

  // bob moves it (keyboard) and makes it ten times larger (the layer panel); alice types the title.
  await bob.page.locator(`[data-layer="${pic.id}"]`).click();
  await bob.page.keyboard.press("ArrowRight");
  await bob.page.keyboard.press("ArrowRight");
  await alice.page.getByLabel("Title", { exact: true }).fill("Secret plan");
  for (const [field, v] of [["W", "640"], ["H", "480"]]) {
    await bob.page.getByLabel(field, { exact: true }).fill(v);
    await bob.page.getByLabel(field, { exact: true }).press("Tab"); // committed when the field is left
  }
  let d = await converged(alice, bob);
  let moved = d.canvas.layers[0];
  check(moved.x === pic.x + 20 && moved.w === 640 && moved.h === 480, `moved by 20 and resized: ${JSON.stringify(moved)}`);
  check(d.title === "Secret plan", `title: ${JSON.stringify(d.title)}`);
  await showsPicture(alice, moved);
  await showsPicture(bob, moved);

  // alice adds a text layer; bob edits its text.
  await alice.page.getByLabel("Text for a new layer").fill("Hello, sealed world");
  await alice.page.getByRole("button", { name: "Add text" }).click();
  await bob.page.locator("[data-layer]", { hasText: "Hello, sealed world" }).waitFor(T);
  d = await converged(alice, bob);
  const text = d.canvas.layers.find((l) => l.kind === "text");
  check(d.canvas.layers.length === 2 && text, `a picture and a text layer: ${JSON.stringify(d.canvas.layers)}`);
  await bob.page.locator(`[data-layer="${text.id}"]`).click();
  await bob.page.getByLabel("Layer text").fill("Hello, sealed world!");
  await bob.page.getByLabel("Layer text").press("Tab");
  await alice.page.locator(`[data-layer="${text.id}"]`, { hasText: "Hello, sealed world!" }).waitFor(T);
  d = await converged(alice, bob);
  check(d.canvas.layers.find((l) => l.id === text.id).text === "Hello, sealed world!", `text: ${JSON.stringify(d.canvas.layers)}`);
  check((await bob.page.getByLabel("Title", { exact: true }).inputValue()) === "Secret plan", "bob's title field shows alice's title");
  for (const u of [alice, bob]) {
    check((await u.page.locator("#preview").getAttribute("src")) === null, `${u.name}: no server preview`);
    check((await u.page.locator("#pictures-status").innerText()) === "", `${u.name}: no picture problem`);
  }

  // alice comments on a region of the picture; bob reads the comment (sealed on the way).
  await alice.page.getByRole("button", { name: "Comment on a region" }).click();
  const box = await alice.page.locator(`[data-layer="${pic.id}"]`).boundingBox();
  await alice.page.mouse.move(box.x + box.width * 0.1, box.y + box.height * 0.1);
  await alice.page.mouse.down();
  await alice.page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.5, { steps: 5 });
  await alice.page.mouse.up();
  await alice.page.getByLabel("Comment", { exact: true }).fill("Only we can read this");
  await alice.page.getByRole("button", { name: "Post comment" }).click();
  await bob.page.locator("#comments li", { hasText: "Only we can read this" }).waitFor(T);
  await alice.page.locator("#comments li", { hasText: "Only we can read this" }).waitFor(T);
  await bob.page.locator(".comment-box").first().waitFor(T);
  await shot(alice, "20-encrypted");
  await shot(bob, "20-encrypted");

  // What the server answers over HTTP: the picture sealed, entries and comments sealed, the state
  // refused, a picture in the clear refused.
  const asset = await asAlice(alice, { path: `/v1/assets/${pic.asset}` });
  const sealed = Buffer.from(asset.bytes);
  check(asset.status === 200 && asset.type === "application/octet-stream", `the asset is served as bytes: ${asset.status} ${asset.type}`);
  check(sealed.subarray(0, 8).toString("latin1") === "MTGSEAL1", `the stored asset is sealed: ${sealed.subarray(0, 16).toString("hex")}`);
  check(sealed.length === PNG.length + 16 + 24 + 16, `sealed: header, nonce, the file's length and a tag (${sealed.length} bytes)`);
  check(!sealed.includes(PNG.subarray(0, 8)) && !sealed.includes(Buffer.from("IDAT")) && !sealed.includes(idat(PNG)), "the server holds the PNG's bytes in the clear");
  const meta = JSON.parse((await asAlice(alice, { path: `/v1/assets/${pic.asset}/meta` })).text);
  check(meta.kind === "sealed" && meta.width === undefined, `the server knows nothing of the picture: ${JSON.stringify(meta)}`);
  const plain = await asAlice(alice, { path: `/v1/assets?session=${encodeURIComponent(session)}`, method: "POST", body: [...PNG] });
  check(plain.status === 400 && plain.text.includes("must be sealed"), `a picture in the clear is refused: ${plain.status} ${plain.text}`);
  const ops = await asAlice(alice, { path: `/v1/sessions/${encodeURIComponent(session)}/ops?from=0` });
  const comments = await asAlice(alice, { path: `/v1/sessions/${encodeURIComponent(session)}/comments` });
  const state = await asAlice(alice, { path: `/v1/sessions/${encodeURIComponent(session)}` });
  check(state.status === 409, `the state over HTTP is refused: ${state.status}`);
  check(ops.text.includes('"data"'), `the server keeps sealed entries: ${ops.text.slice(0, 200)}`);
  for (const secret of ["sealed world", "Secret plan", "Only we can read", '"width":64', pic.id]) {
    check(!ops.text.includes(secret) && !comments.text.includes(secret), `the server holds "${secret}" in the clear`);
  }
  check(!comments.text.includes(pic.asset), "a comment names its picture only inside its sealed content");

  // carol opens the session's address without the key, dave with a wrong one: each is told why,
  // and sees no layers and no picture (their pages never even fetch it).
  for (const [name, fragment, says] of [
    ["carol", "", "This session is end-to-end encrypted: open it with its link, which carries the key"],
    ["dave", `#key=${randomBytes(32).toString("base64url")}`, "could not be decrypted: wrong key"],
  ]) {
    const u = await newUser(browser, name);
    const fetched = [];
    u.page.on("request", (r) => r.url().includes("/v1/assets/") && fetched.push(r.url()));
    await u.page.goto(`${BASE}/?session=${encodeURIComponent(session)}${fragment}`);
    await u.page.getByLabel("Your name").fill(name);
    await u.page.getByRole("button", { name: "Sign in" }).click();
    await u.page.locator("#no-access:not([hidden])").waitFor(T);
    await u.page.locator("#no-access-text", { hasText: says }).waitFor(T);
    check(await u.page.locator("#editor").isHidden(), `${name} sees no editor`);
    check((await u.page.locator("[data-layer]").count()) === 0, `${name} sees no layers`);
    check(await u.page.locator("#e2e-canvas").isHidden(), `${name} sees no canvas`);
    check(fetched.length === 0, `${name}'s page fetched no picture: ${fetched}`);
    await shot(u, name === "carol" ? "21-no-key" : "22-wrong-key");
  }

  // erin has the key, but the picture is changed on its way to her page (one bit of its
  // ciphertext flipped, as a server could): the picture is not drawn, and she is told why.
  const erin = await newUser(browser, "erin");
  await erin.page.route(`**/v1/assets/${pic.asset}`, async (route) => {
    const r = await route.fetch();
    const body = Buffer.from(await r.body());
    body[body.length - 20] ^= 1;
    await route.fulfill({ response: r, body });
  });
  await signIn(erin, session, link.slice(link.indexOf("?")));
  await erin.page.locator(`[data-layer="${text.id}"]`, { hasText: "Hello, sealed world!" }).waitFor(T);
  await erin.page.locator("#pictures-status[data-state=failed]", { hasText: "a picture could not be decrypted" }).waitFor(T);
  await erin.page.locator(`[data-layer="${pic.id}"][data-picture=decrypt]`, { hasText: "could not be decrypted" }).waitFor(T);
  const [, , , alpha] = await pixel(erin, Math.round(moved.x + moved.w / 2), Math.round(moved.y + moved.h / 2));
  check(alpha === 0, `erin's canvas shows nothing where the picture would be (alpha ${alpha})`);
  check((await erin.page.evaluate(() => window.montage.pictures()))[pic.asset] === "failed", "erin's picture failed");
  await shot(erin, "23-changed-picture");

  // alice and bob are not disturbed: one more edit goes through.
  await alice.page.getByLabel("Title", { exact: true }).fill("Secret plan v2");
  d = await converged(alice, bob);
  check(d.title === "Secret plan v2", `title: ${JSON.stringify(d.title)}`);
  await showsPicture(bob, d.canvas.layers.find((l) => l.id === pic.id));
  console.log(`final document: ${JSON.stringify(d)}`);
});
