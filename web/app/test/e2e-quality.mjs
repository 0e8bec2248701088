// Previews that fit the link, in real Chromium (docs/PROTOCOL.md "Connection quality"): alice
// picks "auto" previews and puts a noisy picture (JPEG can't shrink it) on the canvas; Chromium
// then throttles her downloads to 2 Mbit/s, 8 Mbit/s and no limit in turn while she types. The
// page times each preview's body and reports it (`connection.reportDownload` → `quality` hints),
// the server moves her connection to `poor`, `fair` and back to `excellent` (`tier` messages),
// and the pictures she receives come at that tier.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { T, check, newUser, run, signIn } from "./lib.mjs";

const session = `q-${Date.now().toString(36)}`;

function noise() {
  const file = join(mkdtempSync(join(tmpdir(), "montage-e2e-")), "noise.png");
  execFileSync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "nullsrc=s=1000x700,geq=random(1)*255:random(2)*255:random(3)*255", "-frames:v", "1", file]);
  return readFileSync(file);
}

await run("quality", async (browser) => {
  const alice = await newUser(browser, "alice");
  await signIn(alice, session);
  await alice.page.locator("#role", { hasText: "owner" }).waitFor(T);
  await alice.page.getByLabel("Preview tier").selectOption("auto");
  await alice.page.getByLabel("Upload a picture").setInputFiles({ name: "noise.png", mimeType: "image/png", buffer: noise() });
  await alice.page.locator("[data-layer]").first().waitFor(T);

  const cdp = await alice.context.newCDPSession(alice.page);
  await cdp.send("Network.enable");
  const throttle = (mbps) =>
    cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: mbps === null ? -1 : (mbps * 1e6) / 8, uploadThroughput: -1 });
  const state = () =>
    alice.page.evaluate(() => ({ connection: document.body.dataset.connectionTier, picture: document.getElementById("preview").dataset.tier }));
  /** Types (each keystroke an edit, each edit a preview) until the connection and the picture
   * are at `tier`. */
  async function typeUntil(tier) {
    const deadline = Date.now() + 40_000;
    let seen;
    while (Date.now() < deadline) {
      seen = await state();
      if (seen.connection === tier && seen.picture === tier) return;
      await alice.page.locator("#title").press("End");
      await alice.page.locator("#title").pressSequentially("x");
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error(`never at ${tier}: ${JSON.stringify(seen)}`);
  }

  await throttle(2);
  await typeUntil("poor");
  await throttle(8);
  await typeUntil("fair");
  await throttle(null);
  await typeUntil("excellent");
  const mbps = await alice.page.evaluate(() => window.montage.downlinkMbps());
  check(mbps > 50, `the estimate after the limit went: ${mbps} Mbit/s`);
});
