/** growlm diff: the JSON and heat maps it writes, its summary, and its refusals. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";

import { diff } from "../../src/cli/diff.js";
import { growCheckpoint } from "../../src/growth/checkpoint.js";
import { writeTinyModel } from "../helpers/tiny-finetune.js";

describe("growlm diff", () => {
  let dir: string;
  const at = (...p: string[]): string => path.join(dir, ...p);
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-cli-diff-"));
    await writeTinyModel(at("a"), 1);
    await writeTinyModel(at("b"), 2);
    growCheckpoint(at("a"), at("grown"), { depth: { operator: "stack", factor: 2 } });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("--out writes the JSON and the heat maps; a grown model gets its copies' map too", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((s: string) => void lines.push(s));
    vi.spyOn(console, "error").mockImplementation(() => {});
    await diff.run(["--a", at("a"), "--b", at("b"), "--out", at("out", "ab.json")]);
    const report = JSON.parse(fs.readFileSync(at("out", "ab.json"), "utf8"));
    expect(report.tensors).toHaveLength(2 * 9 + 3);
    expect(report.grid).toHaveLength(2);
    expect(report.overall.relL2).toBeGreaterThan(0);
    expect(fs.readFileSync(at("out", "ab.svg"), "utf8")).toContain("<svg");
    expect(fs.existsSync(at("out", "ab-copies.svg"))).toBe(false);
    expect(lines.join("\n")).toMatch(/per module type:\n {2}embed_tokens +\d.*\n {2}q_proj/);
    await diff.run(["--a", at("a"), "--b", at("grown"), "--out", at("out", "grown.json")]);
    expect(JSON.parse(fs.readFileSync(at("out", "grown.json"), "utf8")).copies).toHaveLength(2);
    expect(fs.readFileSync(at("out", "grown-copies.svg"), "utf8")).toContain("0 vs 2 (← 0)");
    expect(lines.join("\n")).toContain("layer 3 ← 1");
    vi.restoreAllMocks();
  });

  test("--json prints the report (self-diff: zero change, cosine 1)", async () => {
    let out = "";
    vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => {
      out += String(s);
      return true;
    });
    await diff.run(["--a", at("a"), "--b", at("a"), "--json"]);
    vi.restoreAllMocks();
    const report = JSON.parse(out);
    expect(report.overall).toMatchObject({ relL2: 0, cosine: 1, maxAbs: 0 });
  });

  test("refuses missing or non-folder arguments by flag", async () => {
    await expect(diff.run(["--a", at("a")])).rejects.toThrow(/growlm diff: --b is required/);
    await expect(diff.run(["--a", at("nope"), "--b", at("a")])).rejects.toThrow(/growlm diff: --a .*nope is not a folder/);
    await expect(diff.run(["--a", at("a"), "--b", at("a"), "--bogus"])).rejects.toThrow(/bogus/);
  });
});
