/**
 * Tokenizers: the two tokenizer.json formats Hugging Face writes for LLaMA-family models, and
 * growlm's byte-level tokenizer.
 *
 * Fixtures (test/fixtures/tokenizers/, built by hand, structurally as Hugging Face writes them):
 * - llama-legacy/: LLaMA-1/2's SentencePiece-BPE conversion. Vocabulary as in LLaMA: <unk> 0,
 *   <s> 1, </s> 2, byte tokens <0x00>..<0xFF> at 3..258 (byte b has id b + 3), merged pieces
 *   from 259 in rank order, then the single characters:
 *     259 ▁▁  260 el  261 lo  262 ▁w  263 or  264 ld  265 ll  266 ▁H  267 ello  268 ▁wor
 *     269 ▁Hello  270 ▁world  271 ▁▁▁▁  272 he  273 ▁h
 *     274 ▁  275 e  276 l  277 o  278 H  279 w  280 r  281 d  282 h
 *   Merges as transformers' SentencePieceExtractor derives them: for each piece in rank order,
 *   every split into two vocabulary pieces, so merge rank = rank of the piece it makes
 *   ("▁ ▁" first, then "e l", "l o", ..., "▁ h"), in the "a b" string format of LLaMA-2's file.
 *   normalizer Prepend("▁") + Replace(" " -> "▁"), no pre-tokenizer, TemplateProcessing that
 *   prepends <s>, decoder Replace(▁ -> " ") + ByteFallback + Fuse + Strip(1 leading space),
 *   byte_fallback and fuse_unk true; tokenizer_config.json as LLaMA-2's (AddedToken objects,
 *   add_bos_token true, add_eos_token false, pad_token null) and special_tokens_map.json.
 * - llama-metaspace/tokenizer.json: the same model with the newer conversion (no normalizer;
 *   Metaspace pre-tokenizer, prepend_scheme "first", split false; merges in the [a, b] array
 *   format with ignore_merges false) and no config files.
 * - gpt2/: GPT-2's byte-level BPE. Ids 0..255 are the byte-to-unicode alphabet in GPT-2's order
 *   (printable bytes "!".."~", "¡".."¬", "®".."ÿ" at 0..187, then the others from 188: space
 *   "Ġ" 220, newline "Ċ" 198, as in GPT-2), then one merge per new token:
 *     256 Ġw  257 or  258 ll  259 He  260 Ġwor  261 ld  262 Hell  263 Hello  264 Ġworld
 *     265 ĠĠ  266 ĊĊ  267 ca  268 caf  269 Ã© (é = C3 A9)  270 cafÃ©;  271 <|endoftext|>
 *   ByteLevel pre-tokenizer (GPT-2's regex), post-processor and decoder.
 *
 * BPE repeatedly merges the adjacent pair of lowest merge rank, leftmost first among equal
 * ranks; each expected sequence below says how it follows. Every one was also checked against
 * Rust's tokenizers 0.23.2 (the implementation transformers runs) while writing this file.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BASE_SEED, rng } from "../helpers/reference.js";
import { Tokenizer, byteLevelTokenizer, loadTokenizer, saveTokenizer } from "../../src/io/tokenizer.js";

const FIXTURES = path.join("test", "fixtures", "tokenizers");
const LLAMA_LEGACY = path.join(FIXTURES, "llama-legacy");
const LLAMA_METASPACE_JSON = path.join(FIXTURES, "llama-metaspace", "tokenizer.json");
const GPT2 = path.join(FIXTURES, "gpt2");

/** Random strings per round-trip property: enough to hit every code-point class many times, fast on 2 cores. */
const RANDOM_STRINGS = 300;

const utf8 = new TextEncoder();

/**
 * Random text of Unicode scalar values: ASCII, control characters, Latin-1, combining marks,
 * CJK, emoji, zero-width joiners and any astral code point; never a lone surrogate (UTF-8 has
 * no encoding for one). `exclude` characters are replaced by "x".
 */
function randomText(next: () => number, exclude = ""): string {
  const classes: [number, number][] = [
    [0x20, 0x7e],
    [0x00, 0x1f],
    [0x7f, 0xff],
    [0x300, 0x36f],
    [0x4e00, 0x9fff],
    [0x1f300, 0x1faff],
    [0x200d, 0x200d],
    [0x10000, 0x10ffff],
  ];
  const length = Math.floor(next() * 24);
  let text = "";
  for (let i = 0; i < length; i++) {
    const [lo, hi] = classes[Math.floor(next() * classes.length)]!;
    const ch = String.fromCodePoint(lo + Math.floor(next() * (hi - lo + 1)));
    text += exclude.includes(ch) ? "x" : ch;
  }
  return text;
}

const EDGE_STRINGS = ["", " ", "\u0000", "\r\n\t", "e\u0301", "👩‍👩‍👧", "世界", "  two leading", "trailing  ", "a\n\nb"];

function* roundTripInputs(seed: number, exclude = ""): Generator<string> {
  yield* EDGE_STRINGS;
  const next = rng(seed);
  for (let i = 0; i < RANDOM_STRINGS; i++) yield randomText(next, exclude);
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "growlm-tokenizer-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function readJsonFile(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
}

describe("LLaMA SentencePiece-BPE, legacy normalizer (Prepend + Replace)", () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(LLAMA_LEGACY);
  });

  it("reads BOS/EOS/PAD and add_bos/add_eos from the config files", () => {
    expect(tok.bosToken).toBe("<s>");
    expect(tok.bosId).toBe(1);
    expect(tok.eosToken).toBe("</s>");
    expect(tok.eosId).toBe(2);
    expect(tok.padToken).toBeNull();
    expect(tok.padId).toBeNull();
    expect(tok.addBosToken).toBe(true);
    expect(tok.addEosToken).toBe(false);
    expect(tok.vocabSize).toBe(283);
    expect(tok.tokenToId("▁Hello")).toBe(269);
    expect(tok.tokenToId("<0xE2>")).toBe(3 + 0xe2);
    expect(tok.tokenToId("nope")).toBeNull();
    expect(tok.idToToken(270)).toBe("▁world");
    expect(tok.idToToken(283)).toBeNull();
    expect(tok.idToToken(-1)).toBeNull();
  });

  it("adds BOS once although the tokenizer.json template also adds <s>", async () => {
    const json = await readJsonFile(path.join(LLAMA_LEGACY, "tokenizer.json"));
    expect(json.post_processor).toMatchObject({ type: "TemplateProcessing", single: [{ SpecialToken: { id: "<s>" } }, { Sequence: { id: "A" } }] });
    expect(tok.encode("Hello world")).toEqual([1, 269, 270]);
    expect(tok.encode("Hello world", { addBos: false })).toEqual([269, 270]);
    expect(tok.encode("Hello world", { addEos: true })).toEqual([1, 269, 270, 2]);
    expect(tok.encode("", { addBos: false })).toEqual([]);
    expect(tok.encode("")).toEqual([1]);
    expect(tok.encodeBatch(["Hello world", "Hello "], { addBos: false })).toEqual([[269, 270], [269, 274]]);
  });

  it.each([
    // "▁Hello▁world": el(260), lo(261), ▁w(262), or(263), ld(264) merge first; then ▁H(266),
    // el+lo -> ello(267), ▁w+or -> ▁wor(268), ▁H+ello -> ▁Hello(269), ▁wor+ld -> ▁world(270).
    ["Hello world", [269, 270]],
    // "▁Hello▁▁world": ▁▁(259) outranks ▁w(262), so the second ▁ joins the first and "world"
    // has no ▁ left: w(279) or(263) ld(264) -- LLaMA's double-space behaviour.
    ["Hello  world", [269, 259, 279, 263, 264]],
    // Leading space: "▁▁Hello" -> ▁▁(259) first; "▁▁H" is no piece, so H(278) + ello(267).
    [" Hello", [259, 278, 267]],
    // Trailing space: "▁Hello▁" -> ▁Hello(269) and a lone ▁(274).
    ["Hello ", [269, 274]],
    // Four leading spaces: "▁▁▁▁▁Hello" -> ▁▁ ▁▁ (leftmost first), ▁Hello, then ▁▁+▁▁ -> ▁▁▁▁(271).
    ["    Hello", [271, 269]],
    // "\n" is no piece: byte fallback <0x0A> = 10 + 3.
    ["Hello\nworld", [269, 13, 279, 263, 264]],
    // "▁héllo▁→": lo(261) outranks ll(265) and takes the second l; ▁h(273); é and → fall back to
    // UTF-8 bytes C3 A9 and E2 86 92 (+3 each).
    ["héllo →", [273, 0xc3 + 3, 0xa9 + 3, 276, 261, 274, 0xe2 + 3, 0x86 + 3, 0x92 + 3]],
    // "▁😀": ▁ alone, the emoji as bytes F0 9F 98 80.
    ["😀", [274, 0xf0 + 3, 0x9f + 3, 0x98 + 3, 0x80 + 3]],
    // Added tokens split the text first; the legacy normalizer prepends ▁ to every section.
    ["Hello</s>world", [269, 2, 270]],
  ])("encodes %j by the merges", (text, expected) => {
    expect(tok.encode(text, { addBos: false })).toEqual(expected);
  });

  it("decodes back: ▁ to space, bytes fused to UTF-8, one leading space stripped", () => {
    expect(tok.decode([1, 269, 270])).toBe("<s> Hello world");
    expect(tok.decode([1, 269, 270], { skipSpecialTokens: true })).toBe("Hello world");
    expect(tok.decode(Int32Array.from([273, 198, 172, 276, 261, 274, 229, 137, 149]))).toBe("héllo →");
    // The legacy normalizer's ▁ after a special token comes back as a space.
    expect(tok.decode(tok.encode("Hello</s>world", { addBos: false }))).toBe("Hello</s> world");
    expect(tok.decode([])).toBe("");
  });

  it("round-trips random unicode text through byte fallback", () => {
    // "▁" in the input decodes as a space and "<" could spell an added token; both are left out.
    for (const text of roundTripInputs(101, "▁<")) {
      expect(tok.decode(tok.encode(text), { skipSpecialTokens: true }), `seed ${BASE_SEED}: ${JSON.stringify(text)}`).toBe(text);
    }
  });

  it("lets tokenizer_config.json's add_bos_token override the template, as LlamaTokenizerFast does", async () => {
    const tokenizerJson = await readJsonFile(path.join(LLAMA_LEGACY, "tokenizer.json"));
    const tokenizerConfig = await readJsonFile(path.join(LLAMA_LEGACY, "tokenizer_config.json"));
    const noBos = Tokenizer.fromFiles({ tokenizerJson, tokenizerConfig: { ...tokenizerConfig, add_bos_token: false, add_eos_token: true } });
    expect(noBos.encode("Hello world")).toEqual([269, 270, 2]);
  });

  it("lets special_tokens_map.json override tokenizer_config.json, as transformers' from_pretrained does", async () => {
    const tokenizerJson = await readJsonFile(path.join(LLAMA_LEGACY, "tokenizer.json"));
    const tokenizerConfig = await readJsonFile(path.join(LLAMA_LEGACY, "tokenizer_config.json"));
    const tok2 = Tokenizer.fromFiles({ tokenizerJson, tokenizerConfig, specialTokensMap: { pad_token: { content: "<unk>" }, eos_token: "<s>" } });
    expect(tok2.padId).toBe(0);
    expect(tok2.eosId).toBe(1);
    expect(tok2.bosId).toBe(1);
  });
});

describe("LLaMA SentencePiece-BPE, Metaspace pre-tokenizer, tokenizer.json alone", () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(LLAMA_METASPACE_JSON);
  });

  it("takes BOS from the template's first special token and has no EOS or PAD", () => {
    expect(tok.bosId).toBe(1);
    expect(tok.addBosToken).toBe(true);
    expect(tok.eosId).toBeNull();
    expect(tok.addEosToken).toBe(false);
    expect(tok.padId).toBeNull();
    expect(tok.source).toBe(LLAMA_METASPACE_JSON);
  });

  it.each([
    // Metaspace writes "▁Hello▁world" as the legacy normalizer does; same merges, same ids.
    ["Hello world", [1, 269, 270]],
    ["Hello  world", [1, 269, 259, 279, 263, 264]],
    // prepend_scheme "first" adds no ▁ where the text already starts with one: "▁Hello".
    [" Hello", [1, 269]],
    // ...nor to a section after an added token: "world" stays w or ld.
    ["Hello</s>world", [1, 269, 2, 279, 263, 264]],
  ])("encodes %j", (text, expected) => {
    expect(tok.encode(text)).toEqual(expected);
  });

  it("decodes the Metaspace encodings", () => {
    expect(tok.decode([1, 269, 2, 279, 263, 264], { skipSpecialTokens: true })).toBe("Helloworld");
    // The leading space that Metaspace folded into ▁Hello is stripped by the decoder, as in Rust.
    expect(tok.decode(tok.encode(" Hello", { addBos: false }))).toBe("Hello");
  });

  it("refuses addEos where there is no EOS token", () => {
    expect(() => tok.encode("Hello", { addEos: true })).toThrow(`Tokenizer.encode: addEos is set but ${LLAMA_METASPACE_JSON} has no EOS token`);
  });
});

describe("GPT-2 byte-level BPE", () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(GPT2);
  });

  it("reads <|endoftext|> as both BOS and EOS, adds neither by default, has no PAD", () => {
    expect(tok.bosId).toBe(271);
    expect(tok.eosId).toBe(271);
    expect(tok.padId).toBeNull();
    expect(tok.addBosToken).toBe(false);
    expect(tok.vocabSize).toBe(272);
    expect(tok.tokenToId("Ġ")).toBe(220);
    expect(tok.tokenToId("Ċ")).toBe(198);
  });

  it.each([
    // Pre-tokens "Hello", " world". H e l l o: ll(258), He(259), He+ll(262), Hell+o(263).
    // Ġ w o r l d: Ġw(256), or(257), Ġw+or(260), ld(261), Ġwor+ld(264).
    ["Hello world", [263, 264]],
    // "\s+(?!\S)" leaves the last space to the word: "Hello", " ", " world".
    ["Hello  world", [263, 220, 264]],
    // Leading spaces: " ", " Hello"; "ĠHello" is no merge, so Ġ + Hello.
    ["  Hello", [220, 220, 263]],
    // Trailing spaces are one pre-token "   ": ĠĠ(265) on the leftmost pair, then Ġ.
    ["Hello   ", [263, 265, 220]],
    // Newlines before a word are single pre-tokens (no ĊĊ); w(86) + or + ld.
    ["Hello\n\nworld", [263, 198, 198, 86, 257, 261]],
    // ...but at the end of the text they are one pre-token, and ĊĊ(266) applies.
    ["Hello\n\n", [263, 266]],
    // c a f Ã ©: ca(267), caf(268), Ã©(269), cafÃ©(270).
    ["café", [270]],
    // No merges: bytes F0 9F 98 80 -> ð(172) and the remapped control bytes 253, 246, 222.
    ["😀", [172, 253, 246, 222]],
    ["Hello<|endoftext|>", [263, 271]],
  ])("encodes %j by the merges", (text, expected) => {
    expect(tok.encode(text)).toEqual(expected);
  });

  it("round-trips random unicode text exactly", () => {
    for (const text of roundTripInputs(202, "<")) {
      expect(tok.decode(tok.encode(text)), `seed ${BASE_SEED}: ${JSON.stringify(text)}`).toBe(text);
    }
  });

  it("decodes with and without the special token", () => {
    expect(tok.decode([263, 271, 264])).toBe("Hello<|endoftext|> world");
    expect(tok.decode([263, 271, 264], { skipSpecialTokens: true })).toBe("Hello world");
  });

  it("honours clean_up_tokenization_spaces where the config sets it", async () => {
    const tokenizerJson = await readJsonFile(path.join(GPT2, "tokenizer.json"));
    const ids = tok.encode("Hello , world .");
    expect(tok.decode(ids)).toBe("Hello , world .");
    const cleaning = Tokenizer.fromFiles({ tokenizerJson, tokenizerConfig: { clean_up_tokenization_spaces: true } });
    expect(cleaning.decode(ids)).toBe("Hello, world.");
  });
});

describe("byteLevelTokenizer", () => {
  const tok = byteLevelTokenizer();

  it("has the 256 bytes at ids 0..255 and <s>, </s>, <pad> at 256, 257, 258", () => {
    expect(tok.vocabSize).toBe(259);
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([256, 257, 258]);
    expect([tok.bosToken, tok.eosToken, tok.padToken]).toEqual(["<s>", "</s>", "<pad>"]);
    expect(tok.addBosToken).toBe(true);
    expect(tok.addEosToken).toBe(false);
    expect(tok.idToToken(0x41)).toBe("<0x41>");
    expect(tok.tokenToId("<0xFF>")).toBe(255);
  });

  it("encodes text as its UTF-8 bytes, BOS first by default", () => {
    expect(tok.encode("Aé😀")).toEqual([256, 0x41, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80]);
    expect(tok.encode("")).toEqual([256]);
    expect(tok.encode("", { addBos: false })).toEqual([]);
    expect(tok.encode("a", { addEos: true })).toEqual([256, 0x61, 257]);
    // The text of a special token is that token, as in every Hugging Face tokenizer.
    expect(tok.encode("a<s>b", { addBos: false })).toEqual([0x61, 256, 0x62]);
  });

  it("round-trips random unicode text, ids = UTF-8 bytes", () => {
    for (const text of roundTripInputs(303, "<")) {
      const ids = tok.encode(text, { addBos: false });
      const label = `seed ${BASE_SEED}: ${JSON.stringify(text)}`;
      expect(ids, label).toEqual(Array.from(utf8.encode(text)));
      expect(tok.decode(ids), label).toBe(text);
      expect(tok.decode(tok.encode(text, { addEos: true }), { skipSpecialTokens: true }), label).toBe(text);
    }
  });

  it("decodes bytes that are not valid UTF-8 to U+FFFD and keeps the specials' text", () => {
    expect(tok.decode([0xe2])).toBe("\ufffd");
    expect(tok.decode([0x41, 0xff, 0x42])).toBe("A\ufffdB");
    expect(tok.decode([256, 0x68, 0x69, 257, 258])).toBe("<s>hi</s><pad>");
    expect(tok.decode([256, 0x68, 0x69, 257, 258], { skipSpecialTokens: true })).toBe("hi");
  });

  it("takes custom and additional special tokens in order from id 256", () => {
    const custom = byteLevelTokenizer({ specialTokens: { bos: "<|bos|>", eos: "<|eos|>", pad: "<|pad|>", additional: ["<|user|>", "<|assistant|>"] } });
    expect(custom.vocabSize).toBe(261);
    expect([custom.bosId, custom.eosId, custom.padId]).toEqual([256, 257, 258]);
    expect(custom.encode("<|user|>hi<|assistant|>")).toEqual([256, 259, 0x68, 0x69, 260]);
  });

  it("saves a tokenizer.json the library loads back, with identical encodings", async () => {
    const dir = path.join(tmp, "byte-level");
    const custom = byteLevelTokenizer({ specialTokens: { additional: ["<|sep|>"] } });
    await saveTokenizer(dir, custom);
    expect((await readdir(dir)).sort()).toEqual(["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]);
    const json = await readJsonFile(path.join(dir, "tokenizer.json"));
    expect(json.model).toMatchObject({ type: "BPE", byte_fallback: true, merges: [] });
    expect(Object.keys((json.model as { vocab: object }).vocab)).toHaveLength(256);
    expect(await readJsonFile(path.join(dir, "tokenizer_config.json"))).toMatchObject({
      tokenizer_class: "PreTrainedTokenizerFast",
      bos_token: "<s>",
      eos_token: "</s>",
      pad_token: "<pad>",
      add_bos_token: true,
      add_eos_token: false,
      additional_special_tokens: ["<|sep|>"],
    });
    expect(await readJsonFile(path.join(dir, "special_tokens_map.json"))).toEqual({
      bos_token: "<s>",
      eos_token: "</s>",
      pad_token: "<pad>",
      additional_special_tokens: ["<|sep|>"],
    });
    const back = await loadTokenizer(dir);
    expect([back.bosId, back.eosId, back.padId, back.vocabSize]).toEqual([256, 257, 258, 260]);
    expect(back.addBosToken).toBe(true);
    for (const text of roundTripInputs(404)) {
      expect(back.encode(text), `seed ${BASE_SEED}: ${JSON.stringify(text)}`).toEqual(custom.encode(text));
    }
    expect(back.encode("a<|sep|>b")).toEqual([256, 0x61, 259, 0x62]);
    // Saving again over the same files leaves no temporary file behind.
    await saveTokenizer(dir, back);
    expect(await readdir(dir)).toHaveLength(3);
  });
});

describe("saveTokenizer of a loaded tokenizer", () => {
  it.each([
    ["the legacy LLaMA directory", LLAMA_LEGACY],
    ["the Metaspace tokenizer.json alone", LLAMA_METASPACE_JSON],
    ["the GPT-2 directory", GPT2],
  ])("writes %s so that loading it back encodes identically", async (_name, source) => {
    const original = await loadTokenizer(source);
    const dir = path.join(tmp, `resaved-${path.basename(path.dirname(source))}-${path.basename(source)}`);
    await saveTokenizer(dir, original);
    const back = await loadTokenizer(dir);
    expect([back.bosId, back.eosId, back.padId, back.addBosToken, back.addEosToken, back.vocabSize]).toEqual([
      original.bosId,
      original.eosId,
      original.padId,
      original.addBosToken,
      original.addEosToken,
      original.vocabSize,
    ]);
    for (const text of roundTripInputs(505)) {
      expect(back.encode(text, { addEos: original.eosId !== null }), `seed ${BASE_SEED}: ${JSON.stringify(text)}`).toEqual(
        original.encode(text, { addEos: original.eosId !== null }),
      );
    }
  });
});

describe("errors", () => {
  const llamaJson = (): Promise<Record<string, unknown>> => readJsonFile(path.join(LLAMA_LEGACY, "tokenizer.json"));

  async function writeDir(name: string, files: Record<string, string>): Promise<string> {
    const dir = path.join(tmp, name);
    await mkdir(dir, { recursive: true });
    for (const [file, text] of Object.entries(files)) await writeFile(path.join(dir, file), text);
    return dir;
  }

  it("names a path that does not exist", async () => {
    const missing = path.join(tmp, "no-such-dir");
    await expect(loadTokenizer(missing)).rejects.toThrow(`loadTokenizer: cannot read ${missing}: ENOENT`);
  });

  it("names the missing tokenizer.json of a directory", async () => {
    const dir = await writeDir("config-only", { "tokenizer_config.json": "{}" });
    await expect(loadTokenizer(dir)).rejects.toThrow(`loadTokenizer: cannot read ${path.join(dir, "tokenizer.json")}: ENOENT`);
  });

  it("names the file that is not valid JSON", async () => {
    const bad = await writeDir("bad-json", { "tokenizer.json": "{\"model\": " });
    await expect(loadTokenizer(bad)).rejects.toThrow(`loadTokenizer: ${path.join(bad, "tokenizer.json")} is not valid JSON`);
    const badConfig = await writeDir("bad-config", {
      "tokenizer.json": JSON.stringify(await llamaJson()),
      "tokenizer_config.json": "{bos_token: <s>}",
    });
    await expect(loadTokenizer(badConfig)).rejects.toThrow(`loadTokenizer: ${path.join(badConfig, "tokenizer_config.json")} is not valid JSON`);
    const array = await writeDir("array-json", { "tokenizer.json": "[1, 2]" });
    await expect(loadTokenizer(array)).rejects.toThrow(`loadTokenizer: ${path.join(array, "tokenizer.json")}: expected a JSON object but received an array`);
  });

  it("refuses a model type other than BPE, naming the file", async () => {
    const dir = await writeDir("word-level", {
      "tokenizer.json": JSON.stringify({ ...(await llamaJson()), model: { type: "WordLevel", vocab: { a: 0 }, unk_token: "a" } }),
    });
    await expect(loadTokenizer(dir)).rejects.toThrow(`loadTokenizer: ${path.join(dir, "tokenizer.json")}: model.type "WordLevel" is not supported`);
  });

  it("passes on the library's refusal of an unknown component with the file name", async () => {
    const file = path.join(tmp, "unknown-decoder.json");
    await writeFile(file, JSON.stringify({ ...(await llamaJson()), decoder: { type: "Telepathy" } }));
    await expect(loadTokenizer(file)).rejects.toThrow(`loadTokenizer: ${file}: Unknown Decoder type: Telepathy`);
  });

  it.each([
    [{ type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: true }, 'pre_tokenizer is Metaspace with split true'],
    [{ type: "Metaspace", replacement: "▁", add_prefix_space: true }, 'pre_tokenizer is Metaspace with split true'],
    [
      { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, { type: "Split", pattern: { String: "x" }, behavior: "MergedWithPrevious" }] },
      'pre_tokenizer.pretokenizers[1] is Split with behavior "MergedWithPrevious"',
    ],
    [{ type: "Punctuation", behavior: "Isolated" }, 'pre_tokenizer is Punctuation with behavior "Isolated"'],
  ])("refuses a pre-tokenizer the library would run differently from Rust: %j", async (preTokenizer, message) => {
    const tokenizerJson = { ...(await llamaJson()), normalizer: null, pre_tokenizer: preTokenizer };
    expect(() => Tokenizer.fromFiles({ tokenizerJson })).toThrow(`Tokenizer.fromFiles: tokenizer.json: ${message}`);
  });

  it("names the config field whose token is not in the vocabulary, or whose value is malformed", async () => {
    const tokenizerJson = await llamaJson();
    expect(() => Tokenizer.fromFiles({ tokenizerJson, tokenizerConfig: { bos_token: "<|begin_of_text|>" } })).toThrow(
      'Tokenizer.fromFiles: tokenizer_config.json: "bos_token" "<|begin_of_text|>" is not a token of tokenizer.json',
    );
    expect(() => Tokenizer.fromFiles({ tokenizerJson, specialTokensMap: { pad_token: 7 } })).toThrow(
      'Tokenizer.fromFiles: special_tokens_map.json: "pad_token" must be a string, null or {"content": string} but is 7',
    );
    expect(() => Tokenizer.fromFiles({ tokenizerJson, tokenizerConfig: { add_bos_token: "yes" } })).toThrow(
      'Tokenizer.fromFiles: tokenizer_config.json: "add_bos_token" must be a boolean but is "yes"',
    );
    expect(() => Tokenizer.fromFiles({ tokenizerJson, tokenizerConfig: { add_eos_token: true } })).toThrow(
      'Tokenizer.fromFiles: tokenizer_config.json: "add_eos_token" is true but there is no eos_token',
    );
    const unk = { ...(tokenizerJson.model as object), unk_token: "<missing>" };
    expect(() => Tokenizer.fromFiles({ tokenizerJson: { ...tokenizerJson, model: unk } })).toThrow(
      'Tokenizer.fromFiles: tokenizer.json: model.unk_token "<missing>" is not in model.vocab',
    );
  });

  it("refuses ids that are not tokens and input that is not text", async () => {
    const tok = await loadTokenizer(LLAMA_LEGACY);
    expect(() => tok.decode([1, 283])).toThrow(`Tokenizer.decode: ids[1] = 283 is not a token id of ${path.join(LLAMA_LEGACY, "tokenizer.json")} (vocabulary size 283)`);
    expect(() => tok.decode([-1])).toThrow("Tokenizer.decode: ids[0] = -1 is not a token id");
    expect(() => tok.decode([2.5])).toThrow("Tokenizer.decode: ids[0] = 2.5 is not a token id");
    expect(() => tok.encode(42 as unknown as string)).toThrow("Tokenizer.encode: expected a string but received 42");
  });

  it("names the directory saveTokenizer cannot create", async () => {
    const file = path.join(tmp, "a-file");
    await writeFile(file, "x");
    const target = path.join(file, "sub");
    await expect(saveTokenizer(target, byteLevelTokenizer())).rejects.toThrow(`saveTokenizer: cannot create ${target}`);
  });

  it("refuses special tokens that collide", () => {
    expect(() => byteLevelTokenizer({ specialTokens: { eos: "<s>" } })).toThrow('byteLevelTokenizer: special token "<s>" is given twice or is a byte token');
    expect(() => byteLevelTokenizer({ specialTokens: { pad: "<0x00>" } })).toThrow('byteLevelTokenizer: special token "<0x00>" is given twice or is a byte token');
    expect(() => byteLevelTokenizer({ specialTokens: { additional: [""] } })).toThrow('byteLevelTokenizer: special tokens must be non-empty strings but one is ""');
  });
});
