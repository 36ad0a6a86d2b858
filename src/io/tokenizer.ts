/**
 * Tokenizers as Hugging Face writes them. A tokenizer.json (LLaMA's SentencePiece-BPE with
 * byte fallback, GPT-2's byte-level BPE) is run by @huggingface/tokenizers, the pure-JS
 * implementation that transformers.js uses; BOS, EOS and PAD come from tokenizer_config.json
 * and special_tokens_map.json the way transformers resolves them. `byteLevelTokenizer` builds
 * the tokenizer of growlm's tiny models, itself a genuine tokenizer.json.
 *
 * Special tokens are added here and never by the tokenizer.json post-processor: the library
 * always encodes with add_special_tokens=false and `encode` prepends BOS / appends EOS from its
 * options, so a TemplateProcessing that already adds <s> (LLaMA's does) cannot add it twice.
 *
 * Where the library would silently differ from the Rust tokenizers that transformers runs,
 * loading refuses (see preTokenizerDivergence). Two known differences remain, both narrow:
 * the ByteLevel pre-tokenizer (GPT-2) uses JavaScript's \s, which leaves out U+0085 and takes
 * in U+FEFF, so text holding those two characters can split differently; and a run of byte
 * tokens that is not valid UTF-8 decodes to one U+FFFD per maximal invalid subsequence where
 * Rust writes one per byte. Valid text decodes identically.
 */
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";

import { GrowlmError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";

type JsonObject = Record<string, unknown>;

/** The parsed files of a Hugging Face tokenizer directory. */
export interface TokenizerFiles {
  /** tokenizer.json. */
  tokenizerJson: JsonObject;
  /** tokenizer_config.json, or null where there is none. */
  tokenizerConfig: JsonObject | null;
  /** special_tokens_map.json, or null where there is none. */
  specialTokensMap: JsonObject | null;
}

/** The names error messages give the three files (paths when they were read from disk). */
export interface TokenizerFileNames {
  tokenizerJson: string;
  tokenizerConfig: string;
  specialTokensMap: string;
}

export interface TokenizerEncodeOptions {
  /** Prepend BOS; default: the tokenizer's `addBosToken` (LLaMA: true). */
  addBos?: boolean;
  /** Append EOS; default: the tokenizer's `addEosToken` (LLaMA: false). */
  addEos?: boolean;
}

export interface TokenizerDecodeOptions {
  /** Drop the added tokens marked special (<s>, </s>, <pad>, ...); default false. */
  skipSpecialTokens?: boolean;
  /**
   * transformers' clean_up_tokenization (" ." -> ".", " n't" -> "n't", ...); default
   * tokenizer_config.json's clean_up_tokenization_spaces (false when absent).
   */
  cleanUpTokenizationSpaces?: boolean;
}

const FILE_NAMES: TokenizerFileNames = {
  tokenizerJson: "tokenizer.json",
  tokenizerConfig: "tokenizer_config.json",
  specialTokensMap: "special_tokens_map.json",
};

/**
 * Pre-tokenizer settings that @huggingface/tokenizers 0.2.0 accepts but runs differently from
 * the Rust tokenizers that wrote them, so the ids would silently differ from transformers'.
 */
function preTokenizerDivergence(node: JsonObject): string | null {
  const behavior = node.behavior;
  if (node.type === "Split" && (behavior === "MergedWithPrevious" || behavior === "MergedWithNext" || behavior === "Contiguous")) {
    return `Split with behavior ${JSON.stringify(behavior)} (the library implements only Isolated and Removed)`;
  }
  // The library always keeps a run of punctuation together, which is Rust's Contiguous.
  if (node.type === "Punctuation" && behavior !== "Contiguous") {
    return `Punctuation with behavior ${JSON.stringify(behavior ?? "Isolated")} (the library implements only Contiguous)`;
  }
  // Rust's Metaspace splits on the replacement character unless split is false (its default is
  // true); the library never splits, which changes the ids wherever a piece holds more than
  // one ▁ (LLaMA's "▁▁"): Rust cannot form it across its split points.
  if (node.type === "Metaspace" && node.split !== false) {
    return `Metaspace with split ${JSON.stringify(node.split ?? true)} (the library implements only split: false, which LLaMA conversions write)`;
  }
  return null;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  return v === undefined ? "missing" : JSON.stringify(v);
}

function checkPreTokenizer(op: string, file: string, node: unknown, where: string): void {
  if (!isObject(node)) return;
  const divergence = preTokenizerDivergence(node);
  if (divergence !== null) throw new GrowlmError(op, `${file}: ${where} is ${divergence}`);
  if (node.type === "Sequence" && Array.isArray(node.pretokenizers)) {
    node.pretokenizers.forEach((child, i) => checkPreTokenizer(op, file, child, `${where}.pretokenizers[${i}]`));
  }
}

/** The special tokens at the two ends of the single-sequence template (the library's post-processors). */
function templateEnds(postProcessor: unknown): { first: string | null; last: string | null } {
  if (!isObject(postProcessor)) return { first: null, last: null };
  if (postProcessor.type === "Sequence" && Array.isArray(postProcessor.processors)) {
    for (const processor of postProcessor.processors) {
      const ends = templateEnds(processor);
      if (ends.first !== null || ends.last !== null) return ends;
    }
    return { first: null, last: null };
  }
  if (postProcessor.type !== "TemplateProcessing" || !Array.isArray(postProcessor.single)) return { first: null, last: null };
  const special = (item: unknown): string | null =>
    isObject(item) && isObject(item.SpecialToken) && typeof item.SpecialToken.id === "string" ? item.SpecialToken.id : null;
  const single: unknown[] = postProcessor.single;
  return { first: special(single[0]), last: single.length > 1 ? special(single[single.length - 1]) : null };
}

/** A special-token entry: a string, null, or an AddedToken object `{"content": ...}` (LLaMA-2's files). */
function tokenContent(op: string, file: string, key: string, value: unknown): string | null {
  if (value === null || typeof value === "string") return value;
  if (isObject(value) && typeof value.content === "string") return value.content;
  throw new GrowlmError(op, `${file}: "${key}" must be a string, null or {"content": string} but is ${describeValue(value)}`);
}

function optionalBoolean(op: string, file: string, config: JsonObject | null, key: string): boolean | undefined {
  const v = config?.[key];
  if (v === undefined || typeof v === "boolean") return v;
  throw new GrowlmError(op, `${file}: "${key}" must be a boolean but is ${describeValue(v)}`);
}

function asObject(op: string, value: unknown, file: string): JsonObject {
  if (isObject(value)) return value;
  throw new GrowlmError(op, `${file}: expected a JSON object but received ${Array.isArray(value) ? "an array" : describeValue(value)}`);
}

/** The private constructor, for this module's loaders (set by the class's static block). */
let construct: (files: TokenizerFiles, names: TokenizerFileNames, op: string) => Tokenizer;

/**
 * A Hugging Face tokenizer: encodes text to token ids and decodes them back.
 *
 * PAD: `padId` is null where the tokenizer has no pad token (LLaMA has none). Callers that
 * pad a batch then use `eosId` (or 0) as the filler and mask the padded positions out of
 * attention and out of the loss (label -100); the filler's value never reaches the result.
 */
export class Tokenizer {
  /** BOS token text and id; null where the tokenizer has none. */
  readonly bosToken: string | null;
  readonly bosId: number | null;
  /** EOS token text and id; null where the tokenizer has none. */
  readonly eosToken: string | null;
  readonly eosId: number | null;
  /** PAD token text and id; null where the tokenizer has none (LLaMA): see the class comment. */
  readonly padToken: string | null;
  readonly padId: number | null;
  /** Whether `encode` prepends BOS / appends EOS by default (tokenizer_config.json's add_bos_token / add_eos_token). */
  readonly addBosToken: boolean;
  readonly addEosToken: boolean;
  /** Highest token id + 1: the smallest vocab_size a model using this tokenizer can have. */
  readonly vocabSize: number;
  /** Where the tokenizer came from (the tokenizer.json path), for messages. */
  readonly source: string;

  private readonly hf: HfTokenizer;
  private readonly vocab: readonly (string | undefined)[];
  private readonly files: TokenizerFiles;
  private readonly cleanUpTokenizationSpaces: boolean;

  private constructor(files: TokenizerFiles, names: TokenizerFileNames, op: string) {
    const file = names.tokenizerJson;
    const json = files.tokenizerJson;
    const model = json.model;
    if (!isObject(model)) throw new GrowlmError(op, `${file}: "model" must be an object but is ${describeValue(model)}`);
    if (model.type !== "BPE") {
      throw new GrowlmError(
        op,
        `${file}: model.type ${describeValue(model.type)} is not supported (growlm reads BPE tokenizers: LLaMA's SentencePiece-BPE and GPT-2's byte-level BPE)`,
      );
    }
    if (!isObject(model.vocab)) throw new GrowlmError(op, `${file}: model.vocab must be an object but is ${describeValue(model.vocab)}`);
    if (!Array.isArray(model.merges)) throw new GrowlmError(op, `${file}: model.merges must be an array but is ${describeValue(model.merges)}`);
    if (model.unk_token != null && !(typeof model.unk_token === "string" && Object.hasOwn(model.vocab, model.unk_token))) {
      throw new GrowlmError(op, `${file}: model.unk_token ${describeValue(model.unk_token)} is not in model.vocab`);
    }
    const added = json.added_tokens ?? [];
    if (!Array.isArray(added)) throw new GrowlmError(op, `${file}: "added_tokens" must be an array but is ${describeValue(added)}`);
    added.forEach((token: unknown, i) => {
      if (!isObject(token) || typeof token.content !== "string" || !Number.isInteger(token.id) || (token.id as number) < 0) {
        throw new GrowlmError(op, `${file}: added_tokens[${i}] must be {"id": non-negative integer, "content": string} but is ${describeValue(token)}`);
      }
    });
    checkPreTokenizer(op, file, json.pre_tokenizer, "pre_tokenizer");

    // Rust's reader treats a missing component as null; the library insists on the key.
    const complete = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json, added_tokens: added };
    try {
      this.hf = new HfTokenizer(complete, {});
    } catch (err) {
      throw new GrowlmError(op, `${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const hfModel = this.hf.model;
    if (hfModel === null) throw new GrowlmError(op, `${file}: the library built no model`);
    this.vocab = hfModel.vocab;
    this.vocabSize = hfModel.vocab.length;
    this.files = files;
    this.source = file;

    // special_tokens_map.json overrides tokenizer_config.json, as in transformers' from_pretrained;
    // a key absent from both falls back to the ends of the post-processor template.
    const config = files.tokenizerConfig;
    const map = files.specialTokensMap;
    const ends = templateEnds(json.post_processor);
    const special = (key: string, fallback: string | null): { token: string | null; id: number | null } => {
      let token = fallback;
      let from = file;
      if (map !== null && key in map) {
        token = tokenContent(op, names.specialTokensMap, key, map[key]);
        from = names.specialTokensMap;
      } else if (config !== null && key in config) {
        token = tokenContent(op, names.tokenizerConfig, key, config[key]);
        from = names.tokenizerConfig;
      }
      if (token === null) return { token: null, id: null };
      const id = this.hf.token_to_id(token);
      if (id === undefined) throw new GrowlmError(op, `${from}: "${key}" ${JSON.stringify(token)} is not a token of ${file}`);
      return { token, id };
    };
    const bos = special("bos_token", ends.first);
    const eos = special("eos_token", ends.last);
    const pad = special("pad_token", null);
    this.bosToken = bos.token;
    this.bosId = bos.id;
    this.eosToken = eos.token;
    this.eosId = eos.id;
    this.padToken = pad.token;
    this.padId = pad.id;

    const addBos = optionalBoolean(op, names.tokenizerConfig, config, "add_bos_token");
    const addEos = optionalBoolean(op, names.tokenizerConfig, config, "add_eos_token");
    this.addBosToken = addBos ?? (ends.first !== null && ends.first === bos.token);
    this.addEosToken = addEos ?? (ends.last !== null && ends.last === eos.token);
    if (this.addBosToken && bos.id === null) throw new GrowlmError(op, `${names.tokenizerConfig}: "add_bos_token" is true but there is no bos_token`);
    if (this.addEosToken && eos.id === null) throw new GrowlmError(op, `${names.tokenizerConfig}: "add_eos_token" is true but there is no eos_token`);
    // Rust's decode never cleans up; transformers does only where the config asks for it.
    this.cleanUpTokenizationSpaces = optionalBoolean(op, names.tokenizerConfig, config, "clean_up_tokenization_spaces") ?? false;
  }

  static {
    construct = (files, names, op) => new Tokenizer(files, names, op);
  }

  /**
   * Builds a tokenizer from parsed files (tokenizer.json required, the other two optional);
   * `names` label the files in error messages.
   */
  static fromFiles(
    files: { tokenizerJson: unknown; tokenizerConfig?: unknown; specialTokensMap?: unknown },
    names: Partial<TokenizerFileNames> = {},
  ): Tokenizer {
    const op = "Tokenizer.fromFiles";
    const all: TokenizerFileNames = { ...FILE_NAMES, ...names };
    return new Tokenizer(
      {
        tokenizerJson: asObject(op, files.tokenizerJson, all.tokenizerJson),
        tokenizerConfig: files.tokenizerConfig == null ? null : asObject(op, files.tokenizerConfig, all.tokenizerConfig),
        specialTokensMap: files.specialTokensMap == null ? null : asObject(op, files.specialTokensMap, all.specialTokensMap),
      },
      all,
      op,
    );
  }

  /**
   * Token ids of `text`: the tokenizer.json pipeline without its post-processor, then BOS and
   * EOS as the options (or the defaults) say. Empty text gives only the requested specials.
   */
  encode(text: string, options: TokenizerEncodeOptions = {}): number[] {
    const op = "Tokenizer.encode";
    if (typeof text !== "string") throw new GrowlmError(op, `expected a string but received ${describeValue(text)}`);
    const addBos = options.addBos ?? this.addBosToken;
    const addEos = options.addEos ?? this.addEosToken;
    if (addBos && this.bosId === null) throw new GrowlmError(op, `addBos is set but ${this.source} has no BOS token`);
    if (addEos && this.eosId === null) throw new GrowlmError(op, `addEos is set but ${this.source} has no EOS token`);
    const ids = this.hf.encode(text, { add_special_tokens: false }).ids;
    if (addBos) ids.unshift(this.bosId as number);
    if (addEos) ids.push(this.eosId as number);
    return ids;
  }

  /** `encode` of each text, with the same options. */
  encodeBatch(texts: readonly string[], options: TokenizerEncodeOptions = {}): number[][] {
    return texts.map((text) => this.encode(text, options));
  }

  /**
   * The text of `ids` through the tokenizer.json decoder. Every id must be a token of this
   * tokenizer; bytes that do not form valid UTF-8 decode to U+FFFD.
   */
  decode(ids: ArrayLike<number>, options: TokenizerDecodeOptions = {}): string {
    const list = Array.from(ids);
    list.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.vocab[id] === undefined) {
        throw new GrowlmError("Tokenizer.decode", `ids[${i}] = ${id} is not a token id of ${this.source} (vocabulary size ${this.vocabSize})`);
      }
    });
    // The library refuses an empty list; the empty sequence is the empty text.
    if (list.length === 0) return "";
    return this.hf.decode(list, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? this.cleanUpTokenizationSpaces,
    });
  }

  /** The id of a token (vocabulary entry or added token), or null. */
  tokenToId(token: string): number | null {
    return this.hf.token_to_id(token) ?? null;
  }

  /** The token of an id, or null where the id is not one. */
  idToToken(id: number): string | null {
    return Number.isInteger(id) && id >= 0 ? (this.vocab[id] ?? null) : null;
  }

  /**
   * The files `saveTokenizer` writes: tokenizer.json as read, and the two config files as read
   * with every value this tokenizer resolved made explicit, so that loading them back resolves
   * the same tokens even where they came from the template.
   */
  toFiles(): TokenizerFiles {
    const rawConfig = this.files.tokenizerConfig ?? {};
    const rawMap = this.files.specialTokensMap ?? {};
    const config: JsonObject = { ...rawConfig };
    const map: JsonObject = { ...rawMap };
    const entries: [string, string | null][] = [
      ["bos_token", this.bosToken],
      ["eos_token", this.eosToken],
      ["pad_token", this.padToken],
    ];
    for (const [key, token] of entries) {
      if (!(key in rawConfig)) config[key] = token;
      // transformers leaves unset tokens out of special_tokens_map.json.
      if (!(key in rawMap) && token !== null) map[key] = token;
    }
    config.add_bos_token = this.addBosToken;
    config.add_eos_token = this.addEosToken;
    config.clean_up_tokenization_spaces = this.cleanUpTokenizationSpaces;
    return { tokenizerJson: this.files.tokenizerJson, tokenizerConfig: config, specialTokensMap: map };
  }
}

/** The parsed JSON file at `path`; null where `optional` and the file does not exist. */
async function readJson(op: string, path: string, optional: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new GrowlmError(op, `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new GrowlmError(op, `${path} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/**
 * Loads a tokenizer from a Hugging Face directory (tokenizer.json required;
 * tokenizer_config.json and special_tokens_map.json read when present) or from the path of a
 * tokenizer.json alone, whose BOS/EOS are then the special tokens at the ends of its
 * TemplateProcessing (LLaMA: BOS <s>, no EOS) and which has no PAD.
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  const op = "loadTokenizer";
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (err) {
    throw new GrowlmError(op, `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const names: TokenizerFileNames = isDirectory
    ? {
        tokenizerJson: join(path, FILE_NAMES.tokenizerJson),
        tokenizerConfig: join(path, FILE_NAMES.tokenizerConfig),
        specialTokensMap: join(path, FILE_NAMES.specialTokensMap),
      }
    : { ...FILE_NAMES, tokenizerJson: path };
  const tokenizerJson = await readJson(op, names.tokenizerJson, false);
  const tokenizerConfig = isDirectory ? await readJson(op, names.tokenizerConfig, true) : null;
  const specialTokensMap = isDirectory ? await readJson(op, names.specialTokensMap, true) : null;
  return construct(
    {
      tokenizerJson: asObject(op, tokenizerJson, names.tokenizerJson),
      tokenizerConfig: tokenizerConfig === null ? null : asObject(op, tokenizerConfig, names.tokenizerConfig),
      specialTokensMap: specialTokensMap === null ? null : asObject(op, specialTokensMap, names.specialTokensMap),
    },
    names,
    op,
  );
}


/**
 * Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `dir`
 * (created if needed), each atomically; `loadTokenizer(dir)` then encodes identically.
 */
export async function saveTokenizer(dir: string, tokenizer: Tokenizer): Promise<void> {
  const op = "saveTokenizer";
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new GrowlmError(op, `cannot create ${dir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const files = tokenizer.toFiles();
  // Hugging Face writes these files pretty-printed with two spaces.
  writeFileAtomic(op, join(dir, FILE_NAMES.tokenizerJson), `${JSON.stringify(files.tokenizerJson, null, 2)}\n`);
  writeFileAtomic(op, join(dir, FILE_NAMES.tokenizerConfig), `${JSON.stringify(files.tokenizerConfig, null, 2)}\n`);
  writeFileAtomic(op, join(dir, FILE_NAMES.specialTokensMap), `${JSON.stringify(files.specialTokensMap, null, 2)}\n`);
}

export interface ByteLevelSpecialTokens {
  /** Default "<s>" (id 256). */
  bos?: string;
  /** Default "</s>" (id 257). */
  eos?: string;
  /** Default "<pad>" (id 258). */
  pad?: string;
  /** More special tokens (prompt separators, ...), ids 259, 260, ... in this order. */
  additional?: readonly string[];
}

export interface ByteLevelTokenizerOptions {
  specialTokens?: ByteLevelSpecialTokens;
}

function byteToken(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`;
}

/**
 * The tokenizer of growlm's tiny models: ids 0..255 are the 256 bytes of UTF-8 (so every text
 * is representable and decode(encode(s)) === s for any string of Unicode scalar values), then
 * the special tokens BOS, EOS, PAD and `additional` from id 256. `vocabSize` (259 by default)
 * is the smallest vocab_size a model using it can have. BOS is added by default, EOS not.
 *
 * It is a genuine tokenizer.json, the form LLaMA uses for its byte tokens: a BPE model with
 * byte_fallback, vocabulary "<0x00>".."<0xFF>", no merges, no normalizer or pre-tokenizer, and
 * the decoder ByteFallback + Fuse. A character outside the vocabulary (all of them) falls back
 * to its UTF-8 bytes, so id = byte value and no regex or byte-to-unicode alphabet is involved;
 * both @huggingface/tokenizers and Rust's tokenizers (which transformers uses) implement
 * byte_fallback. Its TemplateProcessing prepends BOS, so transformers' PreTrainedTokenizerFast
 * adds BOS exactly as `encode` does. As in every Hugging Face tokenizer, the text of a special
 * token inside the input ("<s>") encodes as that special token.
 */
export function byteLevelTokenizer(options: ByteLevelTokenizerOptions = {}): Tokenizer {
  const op = "byteLevelTokenizer";
  const given = options.specialTokens ?? {};
  const bos = given.bos ?? "<s>";
  const eos = given.eos ?? "</s>";
  const pad = given.pad ?? "<pad>";
  const specials = [bos, eos, pad, ...(given.additional ?? [])];
  const vocab: Record<string, number> = {};
  for (let byte = 0; byte < 256; byte++) vocab[byteToken(byte)] = byte;
  const seen = new Set<string>();
  for (const token of specials) {
    if (typeof token !== "string" || token.length === 0) throw new GrowlmError(op, `special tokens must be non-empty strings but one is ${describeValue(token)}`);
    if (seen.has(token) || Object.hasOwn(vocab, token)) throw new GrowlmError(op, `special token ${JSON.stringify(token)} is given twice or is a byte token`);
    seen.add(token);
  }
  const tokenizerJson: JsonObject = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, i) => ({
      id: 256 + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [256], tokens: [bos] } },
    },
    decoder: { type: "Sequence", decoders: [{ type: "ByteFallback" }, { type: "Fuse" }] },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const additional = given.additional ?? [];
  const tokenizerConfig: JsonObject = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: bos,
    eos_token: eos,
    pad_token: pad,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    ...(additional.length > 0 ? { additional_special_tokens: [...additional] } : {}),
  };
  const specialTokensMap: JsonObject = {
    bos_token: bos,
    eos_token: eos,
    pad_token: pad,
    ...(additional.length > 0 ? { additional_special_tokens: [...additional] } : {}),
  };
  return construct({ tokenizerJson, tokenizerConfig, specialTokensMap }, { ...FILE_NAMES, tokenizerJson: "the byte-level tokenizer" }, op);
}
