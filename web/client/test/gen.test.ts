// src/gen/ is generated from crates/protocol/proto/montage.proto (buf.gen.yaml, `npm run
// generate`) and committed: this regenerates it into a scratch directory and fails when the
// committed code differs, so the TypeScript types can't drift from the .proto the server uses.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const client = fileURLToPath(new URL("..", import.meta.url));

function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true, withFileTypes: false }) as string[]) {
    if (name.endsWith(".ts")) out[name] = readFileSync(join(dir, name), "utf8");
  }
  return out;
}

describe("generated protobuf code", () => {
  it("src/gen is what `npm run generate` makes from montage.proto", () => {
    const scratch = mkdtempSync(join(tmpdir(), "montage-gen-"));
    try {
      const bin = join(client, "node_modules", ".bin");
      execFileSync(join(bin, "buf"), ["generate", "--output", scratch], {
        cwd: client,
        env: { ...process.env, PATH: `${bin}${delimiter}${process.env["PATH"] ?? ""}` },
        stdio: "pipe",
      });
      const fresh = files(join(scratch, "src", "gen"));
      expect(Object.keys(fresh).length).toBeGreaterThan(0);
      const committed = files(join(client, "src", "gen"));
      expect(Object.keys(committed).sort(), "run `npm run generate` in web/client").toEqual(Object.keys(fresh).sort());
      for (const [name, text] of Object.entries(fresh)) {
        expect(committed[name] === text, `src/gen/${name} is stale: run \`npm run generate\` in web/client`).toBe(true);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
