import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  CHUNK_BYTES,
  type TensorToWrite,
  openSafetensors,
  writeSafetensors,
} from "../../src/io/safetensors.js";
import { BASE_SEED, expectBitwiseEqual, randomF32 } from "../helpers/reference.js";

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "io", "dtypes.safetensors");

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-safetensors-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A safetensors file from a header (object or raw text) and data bytes, laid out by hand. */
function rawFile(name: string, header: Record<string, unknown> | string, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): string {
  const text = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const bytes = new Uint8Array(8 + text.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, headerLength ?? BigInt(text.length), true);
  bytes.set(text, 8);
  bytes.set(data, 8 + text.length);
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

function u8(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The raw bytes of tensor `name` as stored in the file. */
function storedBytes(file: string, name: string): Uint8Array {
  const reader = openSafetensors(file);
  try {
    const e = reader.entry(name);
    const out = new Uint8Array(e.dataOffsets[1] - e.dataOffsets[0]);
    const fd = fs.openSync(file, "r");
    fs.readSync(fd, out, 0, out.length, reader.dataStart + e.dataOffsets[0]);
    fs.closeSync(fd);
    return out;
  } finally {
    reader.close();
  }
}

function tmpLeftovers(): string[] {
  return fs.readdirSync(dir).filter((n) => n.includes(".tmp-"));
}

/** float16 bits -> value by the IEEE 754 formula (independent of the reader's bit manipulation). */
function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 31;
  const m = h & 1023;
  if (e === 31) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** bfloat16 bits -> value by the same formula with 8 exponent and 7 mantissa bits. */
function bf16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 7) & 255;
  const m = h & 127;
  if (e === 255) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -133;
  return sign * (1 + m / 128) * 2 ** (e - 127);
}

/** Asserts equal float32 bits everywhere except NaNs, which must be NaN on both sides. */
function expectSameFloats(actual: Float32Array, expected: Float32Array, label: string): void {
  expect(actual.length).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < actual.length; i++) {
    if (Number.isNaN(expected[i]!)) {
      expect(Number.isNaN(actual[i]!), `${label}[${i}] should be NaN`).toBe(true);
    } else if (a[i] !== e[i]) {
      expect.fail(`${label}[${i}]: ${actual[i]} (0x${a[i]!.toString(16)}) != ${expected[i]} (0x${e[i]!.toString(16)}) (seed ${BASE_SEED})`);
    }
  }
}

describe("safetensors round trips", () => {
  it("writes F32 tensors of odd shapes (scalar, empty, 3-D) and reads them back bitwise", () => {
    const tensors: TensorToWrite[] = [
      { name: "cube", shape: [3, 5, 7], data: randomF32(105, 1) },
      { name: "scalar", shape: [], data: randomF32(1, 2) },
      { name: "empty", shape: [0, 4], data: new Float32Array(0) },
      { name: "one", shape: [1], data: randomF32(1, 3) },
      { name: "thin", shape: [13, 1, 2], data: () => randomF32(26, 4) },
    ];
    const file = path.join(dir, "odd.safetensors");
    writeSafetensors(file, tensors, { dtype: "F32" });
    const reader = openSafetensors(file);
    try {
      expect(reader.metadata).toEqual({ format: "pt" });
      expect(reader.entries.map((e) => [e.name, e.dtype, e.shape])).toEqual(tensors.map((t) => [t.name, "F32", t.shape]));
      for (const [i, t] of tensors.entries()) {
        const expected = typeof t.data === "function" ? randomF32(26, 4) : t.data;
        const out = new Float32Array(expected.length);
        reader.readInto(t.name, out);
        expectBitwiseEqual(out, expected, `${t.name} (${i})`);
      }
    } finally {
      reader.close();
    }
    expect(tmpLeftovers()).toEqual([]);
  });

  it("lays the header out as the Rust writer does: 8-aligned, space-padded, __metadata__ first, contiguous offsets", () => {
    const file = path.join(dir, "layout.safetensors");
    writeSafetensors(file, [
      { name: "b", shape: [3], data: randomF32(3, 5) },
      { name: "a", shape: [2, 1], data: randomF32(2, 6) },
    ], { dtype: "BF16", metadata: { format: "pt", note: "x" } });
    const bytes = fs.readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const text = bytes.subarray(8, 8 + n).toString("utf8");
    expect(text).toMatch(/^\{.*\} *$/);
    expect(JSON.parse(text)).toEqual({
      __metadata__: { format: "pt", note: "x" },
      b: { dtype: "BF16", shape: [3], data_offsets: [0, 6] },
      a: { dtype: "BF16", shape: [2, 1], data_offsets: [6, 10] },
    });
    expect(Object.keys(JSON.parse(text))).toEqual(["__metadata__", "b", "a"]);
    expect(bytes.length).toBe(8 + n + 10);
  });

  it("streams tensors larger than one chunk in F32 and BF16", () => {
    const n = Math.ceil((2.5 * CHUNK_BYTES) / 4);
    const values = randomF32(n, 7, -3, 3);
    values[0] = NaN;
    values[n - 1] = -Infinity;
    for (const dtype of ["F32", "BF16"] as const) {
      const file = path.join(dir, `big-${dtype}.safetensors`);
      writeSafetensors(file, [{ name: "w", shape: [n], data: values }], { dtype });
      const out = new Float32Array(n);
      const reader = openSafetensors(file);
      reader.readInto("w", out);
      reader.close();
      if (dtype === "F32") {
        expectBitwiseEqual(out, values, "F32 big");
      } else {
        // Round to nearest even on the top 16 bits: the definition of the bf16 value, not the writer's code path.
        const bits = new Uint32Array(values.buffer);
        const expected = new Float32Array(n);
        const expectedBits = new Uint32Array(expected.buffer);
        for (let i = 0; i < n; i++) {
          const u = bits[i]!;
          expectedBits[i] = Number.isNaN(values[i]!) ? u : (((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16) >>> 0;
        }
        expectSameFloats(out, expected, "BF16 big");
      }
    }
  });
});

describe("safetensors F16 and BF16 decoding", () => {
  it("decodes every float16 bit pattern exactly (subnormals, ±0, ±inf, NaN payloads)", () => {
    const halves = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const file = rawFile("f16.safetensors", { all: { dtype: "F16", shape: [256, 256], data_offsets: [0, 131072] } }, u8(halves));
    const out = new Float32Array(65536);
    const reader = openSafetensors(file);
    reader.readInto("all", out);
    reader.close();
    const expected = Float32Array.from(halves, f16Value);
    expectSameFloats(out, expected, "f16");
    const bits = new Uint32Array(out.buffer);
    expect(bits[0x7e00]).toBe(0x7fc00000);
    expect(bits[0xfd01]).toBe(0xffa02000); // sign and payload kept
    expect(Object.is(out[0x8000], -0)).toBe(true);
    expect(out[0x0001]).toBe(2 ** -24);
  });

  it("decodes every bfloat16 bit pattern exactly", () => {
    const halves = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const file = rawFile("bf16.safetensors", { all: { dtype: "BF16", shape: [65536], data_offsets: [0, 131072] } }, u8(halves));
    const out = new Float32Array(65536);
    const reader = openSafetensors(file);
    reader.readInto("all", out);
    reader.close();
    expectSameFloats(out, Float32Array.from(halves, bf16Value), "bf16");
  });

  it("matches PyTorch's float16 and bfloat16 conversions (fixture by tools/make_safetensors_fixture.py)", () => {
    const reader = openSafetensors(FIXTURE);
    const read = (name: string): Float32Array => reader.readInto(name, new Float32Array(reader.entry(name).numel));
    try {
      expect(reader.entry("as_f16").dtype).toBe("F16");
      expect(reader.entry("as_bf16").dtype).toBe("BF16");
      expectSameFloats(read("as_f16"), read("f16_as_f32"), "fixture f16");
      expectSameFloats(read("as_bf16"), read("bf16_as_f32"), "fixture bf16");

      // BF16 encoding: growlm's writer against torch's source.to(bfloat16), bit for bit except
      // NaN (torch writes one canonical NaN; growlm keeps the sign and payload).
      const source = read("source");
      const file = path.join(dir, "mine.safetensors");
      writeSafetensors(file, [{ name: "as_bf16", shape: reader.entry("source").shape, data: source }], { dtype: "BF16" });
      const mine = new Uint16Array(storedBytes(file, "as_bf16").buffer.slice(0));
      const torch = new Uint16Array(storedBytes(FIXTURE, "as_bf16").buffer.slice(0));
      let nans = 0;
      for (let i = 0; i < source.length; i++) {
        if (Number.isNaN(source[i]!)) {
          nans++;
          expect(bf16Value(mine[i]!), `NaN at ${i}`).toBeNaN();
        } else {
          expect(mine[i], `bf16 of ${source[i]} at ${i}`).toBe(torch[i]);
        }
      }
      expect(nans).toBeGreaterThan(0);
    } finally {
      reader.close();
    }
  });
});

describe("safetensors raw reads", () => {
  it("reads F64, I32, I64 and BF16 tensors in their own types, bytes unchanged", () => {
    const f64 = Float64Array.from([Math.PI, -0, 1e-300, Number.NaN]);
    const i32 = Int32Array.from([-100, 0, 2 ** 31 - 1]);
    const i64 = BigInt64Array.from([-(2n ** 62n), 5n]);
    const bf16 = Uint16Array.from([0x3f80, 0xffff, 0x0001]);
    const parts = [u8(f64), u8(i32), new Uint8Array(4), u8(i64), u8(bf16)];
    const header: Record<string, unknown> = {};
    let at = 0;
    for (const [name, dtype, shape, bytes] of [
      ["f64", "F64", [2, 2], 32],
      ["i32", "I32", [3], 12],
      ["pad", "U8", [4], 4],
      ["i64", "I64", [2], 16],
      ["bf16", "BF16", [3], 6],
    ] as const) {
      header[name] = { dtype, shape, data_offsets: [at, at + bytes] };
      at += bytes;
    }
    const data = new Uint8Array(at);
    let o = 0;
    for (const p of parts) {
      data.set(p, o);
      o += p.length;
    }
    const reader = openSafetensors(rawFile("raw.safetensors", header, data));
    try {
      expect(Array.from(reader.readRaw("f64") as Float64Array)).toEqual(Array.from(f64));
      expect(Object.is((reader.readRaw("f64") as Float64Array)[1], -0)).toBe(true);
      expect(reader.readRaw("i32")).toEqual(i32);
      expect(reader.readRaw("i64")).toEqual(i64);
      expect(reader.readRaw("bf16")).toEqual(bf16);
    } finally {
      reader.close();
    }
  });
});

describe("safetensors errors", () => {
  const valid = (): string => {
    const file = path.join(dir, "valid.safetensors");
    writeSafetensors(file, [
      { name: "a", shape: [4], data: randomF32(4, 8) },
      { name: "b", shape: [2, 3], data: randomF32(6, 9) },
    ], { dtype: "F32" });
    return file;
  };

  it("refuses a missing file, a file too short for the length, and a header length past the end", () => {
    expect(() => openSafetensors(path.join(dir, "none.safetensors"))).toThrow(/cannot open .*none\.safetensors/);
    const short = path.join(dir, "short.safetensors");
    fs.writeFileSync(short, new Uint8Array(5));
    expect(() => openSafetensors(short)).toThrow(/short\.safetensors: the file is 5 bytes, too short/);
    expect(() => openSafetensors(rawFile("long.safetensors", "{}", new Uint8Array(0), 1000n))).toThrow(
      /long\.safetensors: header length 1000 runs past the end of the file \(10 bytes/,
    );
    expect(() => openSafetensors(rawFile("huge.safetensors", "{}", new Uint8Array(0), 1n << 40n))).toThrow(/exceeds the format's limit/);
  });

  it("refuses headers that are not UTF-8, not JSON, or not an object of tensors", () => {
    expect(() => openSafetensors(rawFile("bad.safetensors", '{"a": {"dtype": "F32",'))).toThrow(/bad\.safetensors: the header is not valid JSON/);
    expect(() => openSafetensors(rawFile("arr.safetensors", "[1, 2]"))).toThrow(/does not start with "\{"/);
    expect(() => openSafetensors(rawFile("num.safetensors", '{"a": 1}'))).toThrow(/num\.safetensors: tensor "a": expected \{dtype, shape, data_offsets\}/);
    const latin1 = rawFile("latin.safetensors", "{}");
    const bytes = fs.readFileSync(latin1);
    bytes[9] = 0xff;
    fs.writeFileSync(latin1, bytes);
    expect(() => openSafetensors(latin1)).toThrow(/not valid UTF-8/);
    expect(() => openSafetensors(rawFile("meta.safetensors", { __metadata__: { format: 1 } }))).toThrow(/"__metadata__"."format" must be a string/);
  });

  it("refuses unknown dtypes, bad shapes and offsets, and byte lengths that disagree with the shape", () => {
    const data = new Uint8Array(16);
    expect(() => openSafetensors(rawFile("dt.safetensors", { w: { dtype: "F9", shape: [4], data_offsets: [0, 16] } }, data))).toThrow(
      /dt\.safetensors: tensor "w": unknown dtype "F9"/,
    );
    expect(() => openSafetensors(rawFile("sh.safetensors", { w: { dtype: "F32", shape: [-4], data_offsets: [0, 16] } }, data))).toThrow(
      /tensor "w": shape must be a list of non-negative integers/,
    );
    expect(() => openSafetensors(rawFile("of.safetensors", { w: { dtype: "F32", shape: [4], data_offsets: [16, 0] } }, data))).toThrow(
      /tensor "w": data_offsets must be \[begin, end\]/,
    );
    expect(() => openSafetensors(rawFile("len.safetensors", { w: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }, data))).toThrow(
      /len\.safetensors: tensor "w": data_offsets \[0, 16\] span 16 bytes but shape \[3\] of F32 needs 12/,
    );
  });

  it("refuses overlapping tensors, gaps and trailing bytes", () => {
    const data = new Uint8Array(16);
    expect(() =>
      openSafetensors(rawFile("over.safetensors", {
        a: { dtype: "F32", shape: [3], data_offsets: [0, 12] },
        b: { dtype: "F32", shape: [2], data_offsets: [8, 16] },
      }, data)),
    ).toThrow(/over\.safetensors: tensor "b" \(bytes \[8, 16\)\) overlaps tensor "a" \(bytes \[0, 12\)\)/);
    expect(() =>
      openSafetensors(rawFile("gap.safetensors", {
        a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
        b: { dtype: "F32", shape: [2], data_offsets: [8, 16] },
      }, data)),
    ).toThrow(/gap\.safetensors: data bytes \[4, 8\) before tensor "b" belong to no tensor/);
    expect(() => openSafetensors(rawFile("tail.safetensors", { a: { dtype: "F32", shape: [3], data_offsets: [0, 12] } }, data))).toThrow(
      /tail\.safetensors: 4 bytes after the last tensor's data belong to no tensor/,
    );
  });

  it("names the tensor a truncated file cuts off, at open and when truncated after opening", () => {
    const file = valid();
    const size = fs.statSync(file).size;
    fs.truncateSync(file, size - 4);
    expect(() => openSafetensors(file)).toThrow(/valid\.safetensors: the file is truncated: tensor "b" needs data bytes \[16, 40\) but the file holds only 36/);

    const again = valid();
    const reader = openSafetensors(again);
    fs.truncateSync(again, size - 4);
    expect(() => reader.readInto("b", new Float32Array(6))).toThrow(/valid\.safetensors: tensor "b": the file ended inside the tensor's data/);
    reader.close();
  });

  it("refuses reads of non-float dtypes, wrong output lengths, unknown names and closed files", () => {
    const file = rawFile("ints.safetensors", {
      i: { dtype: "I64", shape: [2], data_offsets: [0, 16] },
      f: { dtype: "F32", shape: [2, 2], data_offsets: [16, 32] },
    }, new Uint8Array(32));
    const reader = openSafetensors(file);
    expect(() => reader.readInto("i", new Float32Array(2))).toThrow(/ints\.safetensors: tensor "i" is I64; only F32, F16, BF16 tensors are read as float32/);
    expect(() => reader.readInto("f", new Float32Array(3))).toThrow(/tensor "f" has shape \[2, 2\] \(4 elements\) but the output holds 3/);
    expect(() => reader.readInto("g", new Float32Array(4))).toThrow(/ints\.safetensors: no tensor named "g"/);
    reader.close();
    expect(() => reader.readInto("f", new Float32Array(4))).toThrow(/has been closed/);
  });

  it("refuses repeated names and data that disagree with the shape, leaving no temporary file", () => {
    const file = path.join(dir, "w.safetensors");
    expect(() =>
      writeSafetensors(file, [
        { name: "a", shape: [1], data: randomF32(1, 10) },
        { name: "a", shape: [1], data: randomF32(1, 11) },
      ], { dtype: "F32" }),
    ).toThrow(/tensor name "a" is empty, reserved or repeated/);
    expect(() => writeSafetensors(file, [{ name: "a", shape: [2, 3], data: randomF32(5, 12) }], { dtype: "BF16" })).toThrow(
      /w\.safetensors: tensor "a" has shape \[2, 3\] \(6 elements\) but its data has 5 elements/,
    );
    expect(fs.existsSync(file)).toBe(false);
    expect(tmpLeftovers()).toEqual([]);
  });

  it("keeps the previous file intact when a write fails midway", () => {
    const file = valid();
    const before = fs.readFileSync(file);
    expect(() =>
      writeSafetensors(file, [
        { name: "a", shape: [4], data: randomF32(4, 13) },
        { name: "b", shape: [1000], data: () => { throw new Error("source failed"); } },
      ], { dtype: "F32" }),
    ).toThrow(/writeSafetensors: .*valid\.safetensors: source failed/);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(tmpLeftovers()).toEqual([]);
  });
});
