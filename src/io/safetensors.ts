/**
 * safetensors files, the format of huggingface/safetensors: an 8-byte little-endian header
 * length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {key: string}}` padded with spaces to a multiple of 8, then the tensors'
 * bytes (little-endian, row-major), offsets counted from the end of the header.
 *
 * Reading validates the header as the Rust reader does (known dtypes, byte lengths that match
 * the shapes, tensors tiling the data region with no gap or overlap, a file exactly as long
 * as the header says) and streams one tensor at a time through a bounded scratch buffer,
 * converting F32, F16 and BF16 to float32, so reading a shard never needs more memory than its
 * float32 destination plus one chunk. Writing streams F32 or BF16 (round to nearest even) to
 * a temporary file beside the target, fsyncs it and renames it into place.
 *
 * All I/O is synchronous (fs.readSync / fs.writeSync) on one file descriptor per file.
 */
import fs from "node:fs";
import os from "node:os";

import { GrowlmError } from "../errors.js";
import { stageWith } from "./atomic.js";
import { toBf16 } from "../kernels/elementwise.js";
import { Tensor, formatShape } from "../tensor.js";

/** Every element type the safetensors format defines (sub-byte float types excluded). */
export type SafetensorsDtype =
  | "BOOL"
  | "U8"
  | "I8"
  | "F8_E5M2"
  | "F8_E4M3"
  | "I16"
  | "U16"
  | "F16"
  | "BF16"
  | "I32"
  | "U32"
  | "F32"
  | "F64"
  | "I64"
  | "U64";

/** Bytes per element of each dtype. */
export const SAFETENSORS_ITEM_BYTES: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
});

/** The dtypes readInto converts to float32. */
export const FLOAT_DTYPES: readonly SafetensorsDtype[] = ["F32", "F16", "BF16"];

/** The dtypes the writer produces. */
export type SafetensorsWriteDtype = "F32" | "BF16";

/** Bytes moved per read or write call, and the size of the conversion scratch buffer: 4 MiB. */
export const CHUNK_BYTES = 4 << 20;

/** The Rust reader's limit on the JSON header (100 MB); a larger length means a corrupt file. */
const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = "__metadata__";

/** One tensor of a safetensors file. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  /** Row-major shape; [] for a scalar. */
  shape: readonly number[];
  numel: number;
  /** [begin, end) in bytes, counted from the start of the data region. */
  dataOffsets: readonly [number, number];
}


function isDtype(v: unknown): v is SafetensorsDtype {
  return typeof v === "string" && Object.prototype.hasOwnProperty.call(SAFETENSORS_ITEM_BYTES, v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Reads exactly view.length bytes at `position`; a short file is a truncation error. */
function readExactly(fd: number, view: Uint8Array, position: number, fail: () => GrowlmError): void {
  let done = 0;
  while (done < view.length) {
    const n = fs.readSync(fd, view, done, view.length - done, position + done);
    if (n === 0) throw fail();
    done += n;
  }
}

/** Writes all of view at the file's current position. */
function writeAll(fd: number, view: Uint8Array): void {
  let done = 0;
  while (done < view.length) done += fs.writeSync(fd, view, done, view.length - done);
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

let f16Bits: Uint32Array | null = null;

/**
 * The float32 bit pattern of every float16 bit pattern (256 KiB, built once): normals rebias
 * the exponent, subnormals are normalised, ±0 and ±inf map to themselves and NaNs keep their
 * sign and payload (the quiet bit lands on float32's quiet bit). Every float16 is exactly a
 * float32, so the table is exact.
 */
function f16Table(): Uint32Array {
  if (f16Bits) return f16Bits;
  const table = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    let mant = h & 0x3ff;
    let bits: number;
    if (exp === 0x1f) bits = sign | 0x7f800000 | (mant << 13);
    else if (exp !== 0) bits = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant === 0) bits = sign;
    else {
      // mant × 2^-24: shift the leading one up to bit 10, lowering the float32 exponent of 2^-14 (113) each step.
      let e = 113;
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      bits = sign | (e << 23) | ((mant & 0x3ff) << 13);
    }
    table[h] = bits >>> 0;
  }
  f16Bits = table;
  return table;
}

/**
 * An open safetensors file: a validated header and the means to read one tensor at a time.
 * Holds one file descriptor and, once a F16 or BF16 tensor has been read, one CHUNK_BYTES
 * scratch buffer. Call close() when done.
 */
export class SafetensorsReader {
  /** Tensors in the order of their data. */
  readonly entries: readonly SafetensorsEntry[];
  /** The header's "__metadata__" (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Byte offset of the data region in the file (8 + header length). */
  readonly dataStart: number;
  readonly #byName: Map<string, SafetensorsEntry>;
  #fd: number | null;
  #scratch: Uint8Array | null = null;

  /** Use openSafetensors(path). */
  constructor(
    readonly path: string,
    fd: number,
  ) {
    this.#fd = fd;
    try {
      const parsed = SafetensorsReader.#parse(path, fd);
      this.entries = parsed.entries;
      this.metadata = parsed.metadata;
      this.dataStart = parsed.dataStart;
      this.#byName = new Map(parsed.entries.map((e) => [e.name, e]));
    } catch (err) {
      fs.closeSync(fd);
      this.#fd = null;
      throw err;
    }
  }

  static #parse(path: string, fd: number): { entries: SafetensorsEntry[]; metadata: Record<string, string>; dataStart: number } {
    const op = "openSafetensors";
    const fileSize = fs.fstatSync(fd).size;
    if (fileSize < 8) {
      throw new GrowlmError(op, `${path}: the file is ${fileSize} bytes, too short for the 8-byte header length (truncated?)`);
    }
    const lengthBytes = new Uint8Array(8);
    readExactly(fd, lengthBytes, 0, () => new GrowlmError(op, `${path}: the file ended while reading the header length`));
    const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new GrowlmError(op, `${path}: header length ${headerLength} exceeds the format's limit of ${MAX_HEADER_BYTES} bytes (not a safetensors file, or corrupt)`);
    }
    const n = Number(headerLength);
    if (8 + n > fileSize) {
      throw new GrowlmError(op, `${path}: header length ${n} runs past the end of the file (${fileSize} bytes; truncated?)`);
    }
    const headerBytes = new Uint8Array(n);
    readExactly(fd, headerBytes, 8, () => new GrowlmError(op, `${path}: the file ended inside the header`));
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
    } catch {
      throw new GrowlmError(op, `${path}: the header is not valid UTF-8`);
    }
    if (!text.startsWith("{")) {
      throw new GrowlmError(op, `${path}: the header does not start with "{" (not a safetensors file, or corrupt)`);
    }
    let header: unknown;
    try {
      header = JSON.parse(text);
    } catch (err) {
      throw new GrowlmError(op, `${path}: the header is not valid JSON (${(err as Error).message})`);
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) {
      throw new GrowlmError(op, `${path}: the header must be a JSON object`);
    }

    const metadata: Record<string, string> = {};
    const entries: SafetensorsEntry[] = [];
    for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
      if (name === METADATA_KEY) {
        if (typeof info !== "object" || info === null || Array.isArray(info)) {
          throw new GrowlmError(op, `${path}: "${METADATA_KEY}" must be an object of strings`);
        }
        for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
          if (typeof v !== "string") throw new GrowlmError(op, `${path}: "${METADATA_KEY}"."${k}" must be a string but is ${JSON.stringify(v)}`);
          metadata[k] = v;
        }
        continue;
      }
      const at = `${path}: tensor "${name}"`;
      if (typeof info !== "object" || info === null || Array.isArray(info)) {
        throw new GrowlmError(op, `${at}: expected {dtype, shape, data_offsets} but found ${JSON.stringify(info)}`);
      }
      const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
      if (!isDtype(dtype)) {
        throw new GrowlmError(op, `${at}: unknown dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(SAFETENSORS_ITEM_BYTES).join(", ")})`);
      }
      if (!Array.isArray(shape) || !shape.every(isCount)) {
        throw new GrowlmError(op, `${at}: shape must be a list of non-negative integers but is ${JSON.stringify(shape)}`);
      }
      const [begin, end] = Array.isArray(offsets) && offsets.length === 2 && offsets.every(isCount) ? (offsets as [number, number]) : [-1, -1];
      if (begin < 0 || end < begin) {
        throw new GrowlmError(op, `${at}: data_offsets must be [begin, end] with 0 <= begin <= end but is ${JSON.stringify(offsets)}`);
      }
      const numel = shape.reduce((a: number, b: number) => a * b, 1);
      const expected = numel * SAFETENSORS_ITEM_BYTES[dtype];
      if (!Number.isSafeInteger(expected) || end - begin !== expected) {
        throw new GrowlmError(op, `${at}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape ${formatShape(shape)} of ${dtype} needs ${expected}`);
      }
      entries.push({ name, dtype, shape: Object.freeze([...shape]), numel, dataOffsets: Object.freeze([begin, end] as [number, number]) });
    }

    entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
    const dataStart = 8 + n;
    const dataSize = fileSize - dataStart;
    let covered = 0;
    let previous: SafetensorsEntry | null = null;
    for (const e of entries) {
      const [begin, end] = e.dataOffsets;
      if (begin < covered) {
        throw new GrowlmError(op, `${path}: tensor "${e.name}" (bytes [${begin}, ${end})) overlaps tensor "${previous!.name}" (bytes [${previous!.dataOffsets[0]}, ${previous!.dataOffsets[1]}))`);
      }
      if (begin > covered) {
        throw new GrowlmError(op, `${path}: data bytes [${covered}, ${begin}) before tensor "${e.name}" belong to no tensor (corrupt header)`);
      }
      if (end > dataSize) {
        throw new GrowlmError(op, `${path}: the file is truncated: tensor "${e.name}" needs data bytes [${begin}, ${end}) but the file holds only ${dataSize} data bytes (${fileSize} bytes in all)`);
      }
      covered = end;
      previous = e;
    }
    if (covered !== dataSize) {
      throw new GrowlmError(op, `${path}: ${dataSize - covered} bytes after the last tensor's data belong to no tensor (corrupt file)`);
    }
    return { entries, metadata, dataStart };
  }

  /** Whether the file holds a tensor called `name`. */
  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** The entry of tensor `name`; throws naming the file when there is none. */
  entry(name: string): SafetensorsEntry {
    const e = this.#byName.get(name);
    if (!e) throw new GrowlmError("SafetensorsReader", `${this.path}: no tensor named "${name}"`);
    return e;
  }

  /**
   * Reads tensor `name` (F32, F16 or BF16) into `out` as float32, exactly (every F16 and BF16
   * value is a float32). F32 bytes go straight into `out`; F16 and BF16 pass through the
   * CHUNK_BYTES scratch buffer.
   * @param out a Float32Array of exactly the tensor's numel elements (its shape flattened)
   * @returns out
   */
  readInto(name: string, out: Float32Array): Float32Array {
    const op = "SafetensorsReader.readInto";
    if (this.#fd === null) throw new GrowlmError(op, `${this.path}: the file has been closed`);
    const fd = this.#fd;
    const e = this.entry(name);
    const at = `${this.path}: tensor "${name}"`;
    if (!FLOAT_DTYPES.includes(e.dtype)) {
      throw new GrowlmError(op, `${at} is ${e.dtype}; only ${FLOAT_DTYPES.join(", ")} tensors are read as float32`);
    }
    if (out.length !== e.numel) {
      throw new GrowlmError(op, `${at} has shape ${formatShape(e.shape)} (${e.numel} elements) but the output holds ${out.length}`);
    }
    const start = this.dataStart + e.dataOffsets[0];
    const truncated = (): GrowlmError => new GrowlmError(op, `${at}: the file ended inside the tensor's data (was it truncated after opening?)`);
    if (e.dtype === "F32") {
      const dst = bytesOf(out);
      for (let b = 0; b < dst.length; b += CHUNK_BYTES) {
        readExactly(fd, dst.subarray(b, Math.min(b + CHUNK_BYTES, dst.length)), start + b, truncated);
      }
      return out;
    }
    this.#scratch ??= new Uint8Array(CHUNK_BYTES);
    const halves = new Uint16Array(this.#scratch.buffer, 0, CHUNK_BYTES / 2);
    const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    const table = e.dtype === "F16" ? f16Table() : null;
    for (let i = 0; i < e.numel; i += halves.length) {
      const count = Math.min(halves.length, e.numel - i);
      readExactly(fd, this.#scratch.subarray(0, 2 * count), start + 2 * i, truncated);
      if (table) {
        for (let k = 0; k < count; k++) outBits[i + k] = table[halves[k]!]!;
      } else {
        // bf16 is the top half of a float32.
        for (let k = 0; k < count; k++) outBits[i + k] = halves[k]! << 16;
      }
    }
    return out;
  }

  /**
   * Reads tensor `name` in its own element type, bytes unchanged: F64 as Float64Array, F32 as
   * Float32Array, I32/I64/U8/... as the matching integer array, F16 and BF16 as their raw bit
   * patterns (Uint16Array). For token ids, reference values and other non-parameter tensors.
   */
  readRaw(name: string): RawTensorData {
    const op = "SafetensorsReader.readRaw";
    if (this.#fd === null) throw new GrowlmError(op, `${this.path}: the file has been closed`);
    const fd = this.#fd;
    const e = this.entry(name);
    const bytes = new Uint8Array(e.dataOffsets[1] - e.dataOffsets[0]);
    const start = this.dataStart + e.dataOffsets[0];
    const truncated = (): GrowlmError => new GrowlmError(op, `${this.path}: tensor "${name}": the file ended inside the tensor's data`);
    for (let b = 0; b < bytes.length; b += CHUNK_BYTES) {
      readExactly(fd, bytes.subarray(b, Math.min(b + CHUNK_BYTES, bytes.length)), start + b, truncated);
    }
    const buffer = bytes.buffer;
    switch (e.dtype) {
      case "F64": return new Float64Array(buffer);
      case "F32": return new Float32Array(buffer);
      case "F16": case "BF16": case "U16": return new Uint16Array(buffer);
      case "I16": return new Int16Array(buffer);
      case "I32": return new Int32Array(buffer);
      case "U32": return new Uint32Array(buffer);
      case "I64": return new BigInt64Array(buffer);
      case "U64": return new BigUint64Array(buffer);
      case "I8": return new Int8Array(buffer);
      default: return bytes; // BOOL, U8, F8_*
    }
  }

  /** Closes the file (idempotent); readInto throws afterwards. */
  close(): void {
    if (this.#fd === null) return;
    fs.closeSync(this.#fd);
    this.#fd = null;
    this.#scratch = null;
  }
}

/**
 * Opens and validates a safetensors file: its header is read and checked, no tensor data is.
 * Truncated or corrupt files throw a GrowlmError naming the file and the tensor at fault.
 */
export function openSafetensors(path: string): SafetensorsReader {
  if (os.endianness() !== "LE") {
    throw new GrowlmError("openSafetensors", "safetensors data are little-endian and growlm reads them in place: big-endian hosts are not supported");
  }
  let fd: number;
  try {
    fd = fs.openSync(path, "r");
  } catch (err) {
    throw new GrowlmError("openSafetensors", `cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  return new SafetensorsReader(path, fd);
}

/** A tensor's elements in the file's own type (see SafetensorsReader.readRaw). */
export type RawTensorData =
  | Float64Array
  | Float32Array
  | Uint16Array
  | Int16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Int8Array
  | Uint8Array;

/** One tensor to write. */
export interface TensorToWrite {
  name: string;
  /** Row-major shape; [] for a scalar. */
  shape: readonly number[];
  /**
   * The values (numel float32 elements), or a function returning them, called once when the
   * writer reaches this tensor: a caller can then produce tensors one at a time (a grown
   * checkpoint tensor by tensor) without holding them all.
   */
  data: Float32Array | (() => Float32Array);
}

export interface WriteSafetensorsOptions {
  /** Element type in the file: F32 as is, or BF16 rounded to nearest even (NaN stays NaN). */
  dtype: SafetensorsWriteDtype;
  /** The header's "__metadata__"; transformers writes {"format": "pt"}, the default. */
  metadata?: Record<string, string>;
}

/** The header bytes (padded with spaces to a multiple of 8, as the Rust writer does) and each tensor's numel. */
function encodeHeader(path: string, tensors: readonly TensorToWrite[], dtype: SafetensorsWriteDtype, metadata: Record<string, string>): { header: Uint8Array; numels: number[] } {
  const op = "writeSafetensors";
  const header: Record<string, unknown> = { [METADATA_KEY]: metadata };
  const numels: number[] = [];
  const item = SAFETENSORS_ITEM_BYTES[dtype];
  let offset = 0;
  for (const t of tensors) {
    if (t.name === "" || t.name === METADATA_KEY || Object.prototype.hasOwnProperty.call(header, t.name)) {
      throw new GrowlmError(op, `${path}: tensor name ${JSON.stringify(t.name)} is empty, reserved or repeated`);
    }
    if (!t.shape.every(isCount)) throw new GrowlmError(op, `${path}: tensor "${t.name}" has invalid shape ${formatShape(t.shape)}`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    header[t.name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + numel * item] };
    numels.push(numel);
    offset += numel * item;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  return { header: bytes, numels };
}

/**
 * Writes a safetensors file to a temporary path beside `path`, fsynced and closed, and returns
 * that path: the caller renames it into place (several files can then be committed together).
 * On any failure the temporary file is removed and the error rethrown; `path` is never touched.
 * Extra memory: none for F32; one CHUNK_BYTES bf16 scratch buffer for BF16.
 */
export function stageSafetensors(path: string, tensors: readonly TensorToWrite[], options: WriteSafetensorsOptions): string {
  const op = "writeSafetensors";
  const { dtype, metadata = { format: "pt" } } = options;
  if (dtype !== "F32" && dtype !== "BF16") throw new GrowlmError(op, `${path}: dtype must be "F32" or "BF16" but is ${JSON.stringify(dtype)}`);
  const { header, numels } = encodeHeader(path, tensors, dtype, metadata);
  return stageWith(op, path, (fd) => {
    writeAll(fd, header);
    const scratch = dtype === "BF16" ? new Uint16Array(CHUNK_BYTES / 2) : null;
    tensors.forEach((t, i) => {
      const values = typeof t.data === "function" ? t.data() : t.data;
      if (!(values instanceof Float32Array) || values.length !== numels[i]) {
        const got = values instanceof Float32Array ? `${values.length} elements` : "no Float32Array";
        throw new GrowlmError(op, `${path}: tensor "${t.name}" has shape ${formatShape(t.shape)} (${numels[i]} elements) but its data has ${got}`);
      }
      if (!scratch) {
        const bytes = bytesOf(values);
        for (let b = 0; b < bytes.length; b += CHUNK_BYTES) writeAll(fd, bytes.subarray(b, Math.min(b + CHUNK_BYTES, bytes.length)));
        return;
      }
      for (let k = 0; k < values.length; k += scratch.length) {
        const count = Math.min(scratch.length, values.length - k);
        const bf16 = scratch.subarray(0, count);
        toBf16(Tensor.wrap(values.subarray(k, k + count)), Tensor.wrap(bf16));
        writeAll(fd, bytesOf(bf16));
      }
    });
  });
}

/**
 * Writes tensors to the safetensors file `path` atomically: a temporary file beside it is
 * written in CHUNK_BYTES pieces, fsynced and renamed over `path`, so `path` holds either its
 * previous content or the complete new file. Header keys follow the given order.
 */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], options: WriteSafetensorsOptions): void {
  const tmp = stageSafetensors(path, tensors, options);
  try {
    fs.renameSync(tmp, path);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new GrowlmError("writeSafetensors", `${path}: cannot rename the finished file into place: ${(err as Error).message}`, { cause: err });
  }
}
