// Two people edit a video timeline in real Chromium (docs/PROTOCOL.md "Video frames" and
// "Timeline previews"): alice adds a video (red for a second, then blue, made by ffmpeg) and bob
// sees its clip; alice puts her playhead at 1.5 s — bob sees her playhead there and her page
// shows the composition at 1.5 s (blue) — and splits the clip there; bob drags the right half
// 2 s later (alice sees it move while he drags, then where he dropped it); alice trims the left
// half's end and bob the right half's start; then adds a sound, whose clip on an audio track draws its waveform (quiet, then
// loud) on bob's page. Both pages and the server agree at the end.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { T, check, converged, doc, newUser, run, setLinkAccess, shot, signIn } from "./lib.mjs";

const session = `tl-${Date.now().toString(36)}`;
/** Pixels per second of the page's timeline (`timeline.ts`). */
const PPS = 60;

/** A file ffmpeg makes from lavfi sources (`args` between its options and the output). */
function made(name, args) {
  const file = join(mkdtempSync(join(tmpdir(), "montage-e2e-")), name);
  execFileSync("ffmpeg", ["-nostdin", "-v", "error", "-y", ...args, file]);
  return readFileSync(file);
}

/** Red for a second, then blue. */
const video = () =>
  made("clip.mp4", [
    "-f", "lavfi", "-i", "color=c=red:s=320x240:d=1:r=10",
    "-f", "lavfi", "-i", "color=c=blue:s=320x240:d=1:r=10",
    "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-pix_fmt", "yuv420p",
  ]);

/** A second of silence, then a second of a tone. */
const sound = () =>
  made("tone.wav", [
    "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono:d=1",
    "-f", "lavfi", "-i", "sine=f=440:r=22050:d=1",
    "-filter_complex", "[0:a][1:a]concat=n=2:v=0:a=1[a]", "-map", "[a]",
  ]);

/** The centre pixel of the page's frame image, as [r, g, b]. */
const frameCentre = (u) =>
  u.page.evaluate(() => {
    const img = document.getElementById("frame");
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    return [...g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.slice(0, 3)];
  });

const clips = async (u) => (await doc(u)).timeline.tracks.flatMap((t) => t.clips);

await run("timeline", async (browser) => {
  const alice = await newUser(browser, "alice");
  const bob = await newUser(browser, "bob");
  await signIn(alice, session);
  await alice.page.locator("#role", { hasText: "owner" }).waitFor(T);
  await setLinkAccess(alice, "editor");
  await signIn(bob, session);
  await bob.page.locator("#role", { hasText: "editor" }).waitFor(T);

  // alice adds a video: a clip appears on both pages.
  await alice.page.getByLabel("Add a video").setInputFiles({ name: "clip.mp4", mimeType: "video/mp4", buffer: video() });
  await alice.page.locator("#tracks [data-clip]").first().waitFor(T);
  await bob.page.locator("#tracks [data-clip]").first().waitFor(T);
  const [first] = await clips(alice);
  check(first.start === 0 && first.in === 0 && Math.abs(first.out - 2) < 0.2, `the clip: ${JSON.stringify(first)}`);

  // alice's playhead to 1.5 s (a click on the strip under the tracks).
  for (const u of [alice, bob]) await u.page.locator("#tracks").scrollIntoViewIfNeeded();
  const box = await alice.page.locator("#tracks").boundingBox();
  await alice.page.mouse.click(box.x + 1.5 * PPS, box.y + box.height - 6);
  await alice.page.locator("#frame[data-t='1.5']").waitFor(T).catch(async (e) => {
    throw new Error(`${e.message}; the frame panel says: ${await alice.page.locator("#frame-info").innerText()}`);
  });
  const [r, , b] = await frameCentre(alice);
  check(b > 180 && r < 80, `the frame at 1.5 s is blue: ${r},${b}`);
  const theirs = bob.page.locator("#tracks [data-playhead='alice']");
  await theirs.waitFor(T);
  await bob.page.waitForFunction(() => document.querySelector("#tracks [data-playhead='alice']")?.style.left === "90px", null, T);
  await shot(alice, "17-timeline-playhead");

  // alice splits at her playhead: two clips on both pages.
  await alice.page.getByRole("button", { name: "Split at the playhead" }).click();
  await bob.page.locator("#tracks [data-clip]").nth(1).waitFor(T);
  await converged(alice, bob);
  const [left, right] = await clips(bob);
  check(left.out === 1.5 && right.start === 1.5 && right.in === 1.5, `split: ${JSON.stringify([left, right])}`);

  // bob drags the right half 2 s later; alice sees it moving before he lets go.
  const rb = await bob.page.locator(`[data-clip='${right.id}'] .name`).boundingBox();
  await bob.page.mouse.move(rb.x + rb.width / 2, rb.y + rb.height / 2);
  await bob.page.mouse.down();
  await bob.page.mouse.move(rb.x + rb.width / 2 + 2 * PPS, rb.y + rb.height / 2, { steps: 8 });
  await alice.page.locator(`[data-clip='${right.id}'][data-dragged-by='bob']`).waitFor(T);
  await shot(alice, "18-timeline-drag-seen");
  await bob.page.mouse.up();
  await alice.page.locator(`[data-clip='${right.id}']:not([data-dragged-by])`).waitFor(T);
  await converged(alice, bob);
  const moved = (await clips(alice)).find((c) => c.id === right.id);
  check(moved.start === 3.5 && moved.in === 1.5, `moved: ${JSON.stringify(moved)}`);

  // alice trims the end of the left half by half a second.
  const edge = await alice.page.locator(`[data-clip='${left.id}'] .edge.out`).boundingBox();
  await alice.page.mouse.move(edge.x + edge.width / 2, edge.y + edge.height / 2);
  await alice.page.mouse.down();
  await alice.page.mouse.move(edge.x + edge.width / 2 - 0.5 * PPS, edge.y + edge.height / 2, { steps: 5 });
  await alice.page.mouse.up();
  await bob.page.locator(`[data-clip='${left.id}'][aria-label$='to 1.00 s']`).waitFor(T);
  await converged(alice, bob);
  const trimmed = (await clips(bob)).find((c) => c.id === left.id);
  check(trimmed.start === 0 && trimmed.out === 1, `trimmed: ${JSON.stringify(trimmed)}`);
  // bob trims the start of the (half-second) right half by a quarter second: its media start
  // moves with it.
  const head = await bob.page.locator(`[data-clip='${right.id}'] .edge.in`).boundingBox();
  await bob.page.mouse.move(head.x + head.width / 2, head.y + head.height / 2);
  await bob.page.mouse.down();
  await bob.page.mouse.move(head.x + head.width / 2 + 0.25 * PPS, head.y + head.height / 2, { steps: 5 });
  await bob.page.mouse.up();
  await alice.page.locator(`[data-clip='${right.id}'][aria-label^='Clip ${right.id}: 3.75 s']`).waitFor(T);
  await converged(alice, bob);
  const headTrimmed = (await clips(alice)).find((c) => c.id === right.id);
  check(headTrimmed.start === 3.75 && headTrimmed.in === 1.75 && headTrimmed.out === right.out, `head-trimmed: ${JSON.stringify(headTrimmed)}`);
  await shot(bob, "19-timeline-after");

  // A sound: an audio track whose clip draws the waveform, quiet first and loud after.
  await alice.page.getByLabel("Add a video or sound").setInputFiles({ name: "tone.wav", mimeType: "audio/wav", buffer: sound() });
  const waveOnBob = bob.page.locator("#tracks .clip.audio svg.wave path");
  await waveOnBob.waitFor(T);
  const heights = await waveOnBob.evaluate((p) =>
    [...p.getAttribute("d").matchAll(/M[\d.]+ ([\d.]+)V([\d.]+)/g)].map((m) => Number(m[2]) - Number(m[1])),
  );
  const half = heights.length >> 1;
  const quiet = Math.max(...heights.slice(0, half - 2));
  const loud = Math.min(...heights.slice(half + 2));
  check(heights.length > 10 && quiet < 3 && loud > 5, `the waveform: quiet ${quiet}, loud ${loud}, ${heights.length} bars`);
  await converged(alice, bob);
  await shot(bob, "20-timeline-sound");
});
