import { describe, expect, it } from "vitest";

import { binding } from "../src/native.js";
import { Tensor } from "../src/tensor.js";

describe("Tensor", () => {
  it("allocates 64-byte-aligned native memory for every dtype", () => {
    for (const dtype of ["float32", "bfloat16", "int32", "uint8"] as const) {
      for (const shape of [[1], [3, 17], [127, 1, 3], [0, 5]]) {
        const t = Tensor.empty(shape, dtype);
        expect(t.shape).toEqual(shape);
        expect(t.dtype).toBe(dtype);
        expect(t.numel).toBe(shape.reduce((a, b) => a * b, 1));
        expect(binding.address(t.data) % 64n).toBe(0n);
      }
    }
  });

  it("zeros, from and clone copy values", () => {
    expect(Array.from(Tensor.zeros([2, 2]).data)).toEqual([0, 0, 0, 0]);
    const t = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    const c = t.clone();
    c.data[0] = 9;
    expect(t.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Tensor.from([1, 2], [2], "int32").data).toBeInstanceOf(Int32Array);
  });

  it("views share memory: reshape and rows", () => {
    const t = Tensor.from([1, 2, 3, 4, 5, 6], [3, 2]);
    const r = t.reshape([2, -1]);
    expect(r.shape).toEqual([2, 3]);
    r.data[5] = 60;
    expect(t.data[5]).toBe(60);
    const rows = t.rows(1, 3);
    expect(rows.shape).toEqual([2, 2]);
    expect(rows.toArray()).toEqual([3, 4, 5, 60]);
    expect(() => t.reshape([4, 2])).toThrow(/cannot view \[3, 2\] as \[4, 2\]/);
    expect(() => t.rows(2, 4)).toThrow(RangeError);
  });

  it("wraps caller arrays without copying", () => {
    const data = new Float32Array([1, 2, 3]);
    const t = Tensor.wrap(data);
    t.data[0] = 7;
    expect(data[0]).toBe(7);
    expect(Tensor.wrap(new Uint16Array(4), [2, 2]).dtype).toBe("bfloat16");
    expect(() => new Tensor(data, [2, 2], "float32")).toThrow(/shape \[2, 2\] has 4 elements but the data has 3/);
    expect(() => Tensor.empty([2, -1])).toThrow(/invalid shape/);
    expect(() => Tensor.empty([1.5])).toThrow(/invalid shape/);
  });

  it("dispose frees at once and later use throws", () => {
    const t = Tensor.empty([1024]);
    const view = t.reshape([32, 32]);
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(() => t.data).toThrow(/used after dispose/);
    // the view's memory is gone too: the binding sees a detached buffer, never freed memory
    expect(view.data.length).toBe(0);
    expect(() => binding.add(view.data, view.data, view.data, 1024)).toThrow(/add: expected Float32Array of length 1024/);
    t.dispose(); // idempotent
  });

  it("dispose returns the memory to the system, not at some later collection", () => {
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 8; i++) {
      const t = Tensor.empty([1 << 27]); // 512 MiB, every page touched
      t.data.fill(1);
      t.dispose();
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(1 << 30);
  });

  it("puts blocks of 2 MiB and more on their own huge-page-aligned mappings, zeroed, whole to the last byte", () => {
    const MiB = 1 << 20;
    // Below, at and around the threshold, and sizes that end inside a huge page.
    for (const bytes of [2 * MiB - 64, 2 * MiB, 2 * MiB + 4, 5 * MiB + 12, 6 * MiB]) {
      for (const zero of [true, false]) {
        const buffer = binding.alloc(bytes, zero);
        const bytesView = new Uint8Array(buffer);
        expect(bytesView.length).toBe(bytes);
        const address = binding.address(bytesView);
        expect(address % (bytes >= 2 * MiB ? BigInt(2 * MiB) : 64n)).toBe(0n);
        if (zero) expect(bytesView.every((b) => b === 0)).toBe(true);
        bytesView.fill(0xa5);
        expect(bytesView[0]).toBe(0xa5);
        expect(bytesView[bytes - 1]).toBe(0xa5);
        binding.free(buffer);
        expect(bytesView.length).toBe(0);
      }
    }
  });

  it("copyRows copies strided rows in one call and leaves the gaps alone", () => {
    // 7 rows of 5 from a source of stride 13 (offset 2) into a destination of stride 9.
    const src = Float32Array.from({ length: 2 + 6 * 13 + 5 }, (_, i) => i * 0.5 - 3);
    const dst = new Float32Array(6 * 9 + 5 + 4).fill(-1);
    binding.copyRows(dst, src.subarray(2), 7, 5, 9, 13);
    for (let i = 0; i < dst.length; i++) {
      const r = Math.floor(i / 9), c = i % 9;
      expect(dst[i]).toBe(r < 7 && c < 5 ? src[2 + r * 13 + c] : -1);
    }
    const ints = Int32Array.from({ length: 12 }, (_, i) => i);
    const out = new Int32Array(6);
    binding.copyRows(out, ints, 3, 2, 2, 4);
    expect(Array.from(out)).toEqual([0, 1, 4, 5, 8, 9]);
    binding.copyRows(out, ints, 0, 2, 2, 4); // nothing
    binding.copyRows(out, ints, 1, 6, 0, 0); // one row needs no stride
    expect(Array.from(out)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("copyRows refuses mixed element types, short strides and rows past either end", () => {
    const f = new Float32Array(20);
    expect(() => binding.copyRows(f, new Int32Array(20) as unknown as Float32Array, 2, 2, 2, 2)).toThrow(/copyRows: "dst" and "src" must have the same element type/);
    expect(() => binding.copyRows(f, f.slice(), 3, 4, 3, 4)).toThrow(/copyRows: the strides \(3, 4\) must be at least cols = 4/);
    expect(() => binding.copyRows(f, new Float32Array(9), 3, 2, 4, 4)).toThrow(/copyRows: 3 rows of 2 at strides 4 and 4 span 10 and 10 elements but "dst" has 20 and "src" 9/);
    expect(() => binding.copyRows(new Float32Array(9), f, 3, 2, 4, 4)).toThrow(/span 10 and 10 elements but "dst" has 9 and "src" 20/);
    expect(() => binding.copyRows(f, f.slice(), -1, 2, 2, 2)).toThrow(/copyRows/);
  });

  it("free refuses buffers growlm did not allocate", () => {
    expect(() => binding.free(new ArrayBuffer(8))).toThrow(/free: the ArrayBuffer was not allocated by growlm/);
  });
});
