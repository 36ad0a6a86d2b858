import { expect, it } from "vitest";

import type { DeviceBuffer } from "../../src/device.js";
import { binding } from "../../src/native.js";
import { BASE_SEED, expectBitwiseEqual, randomF32, randomInts } from "../helpers/reference.js";
import { describeCuda, downloadF32, downloadU16, poisoned, upload } from "../helpers/cuda.js";

// Every op here is one IEEE operation or a bit manipulation per element, so the CUDA backend
// must give the CPU backend's bits exactly (no tolerance).
const SIZES = [1, 3, 17, 128, 1001];

/**
 * A device copy of `data` starting 4 bytes into its allocation: no longer 16-byte aligned,
 * so the kernels take their one-element-at-a-time path.
 */
function uploadMisaligned(data: Float32Array): DeviceBuffer {
  const padded = new Float32Array(data.length + 1);
  padded.set(data, 1);
  return upload(padded).view(4, data.byteLength);
}

function poisonedMisaligned(bytes: number): DeviceBuffer {
  return poisoned(bytes + 4).view(4, bytes);
}

/** fp32 values whose bf16 rounding is delicate: ties both ways, specials, subnormals, overflow. */
function edgeValues(): Float32Array {
  const bits = [
    0x00000000, 0x80000000, 0x7f800000, 0xff800000, // ±0, ±inf
    0x7fc00000, 0xffc00001, 0x7f800001, 0x7fbfffff, // quiet and signalling NaNs with payloads
    0x3f808000, 0x3f818000, 0x3f808001, 0x3f80ffff, // ties to even (down, up), above tie, just below carry
    0x00000001, 0x00008000, 0x00018000, 0x807fffff, // subnormals, including ties
    0x7f7fffff, 0x7f7f8000, 0xff7fffff, 0x7f7f7fff, // rounding up to inf, the tie below FLT_MAX
  ];
  const u = new Uint32Array(bits);
  return new Float32Array(u.buffer);
}

describeCuda("elementwise (cuda)", () => {
  it.each(SIZES)("add, scale and copy give the CPU's bits for n=%i, aligned and not", (n) => {
    const a = randomF32(n, BASE_SEED + n, -100, 100);
    const b = randomF32(n, BASE_SEED + n + 1, -100, 100);
    const s = -1.75;
    const sum = new Float32Array(n);
    binding.add(sum, a, b, n);
    const scaled = a.slice();
    binding.scale(scaled, s, n);

    for (const [label, put, fresh] of [
      ["aligned", upload, poisoned],
      ["misaligned", uploadMisaligned, poisonedMisaligned],
    ] as const) {
      const ga = put(a), gb = put(b), gout = fresh(n * 4);
      binding.cuda.add(gout, ga, gb, n);
      expectBitwiseEqual(downloadF32(gout), sum, `add ${label}`);
      const gx = put(a);
      binding.cuda.scale(gx, s, n);
      expectBitwiseEqual(downloadF32(gx), scaled, `scale ${label}`);
      const gcopy = fresh(n * 4);
      binding.cuda.copy(gcopy, ga, n);
      expectBitwiseEqual(downloadF32(gcopy), a, `copy ${label}`);
    }
  });

  it("add in place (out aliasing a or b), as the residual stream does", () => {
    const n = 517;
    const a = randomF32(n, BASE_SEED + 3), b = randomF32(n, BASE_SEED + 4);
    const expected = new Float32Array(n);
    binding.add(expected, a, b, n);
    const ga = upload(a), gb = upload(b);
    binding.cuda.add(ga, ga, gb, n);
    expectBitwiseEqual(downloadF32(ga), expected, "out = a");
    const ga2 = upload(a), gb2 = upload(b);
    binding.cuda.add(gb2, ga2, gb2, n);
    expectBitwiseEqual(downloadF32(gb2), expected, "out = b");
  });

  it.each(SIZES)("f32ToBf16 rounds as the CPU does (nearest even, NaN kept) for n=%i", (n) => {
    const edges = edgeValues();
    const src = randomF32(n + edges.length, BASE_SEED + 5 * n, -1e4, 1e4);
    src.set(edges, n);
    const m = src.length;
    const expected = new Uint16Array(m);
    binding.f32ToBf16(expected, src, m);
    const gdst = poisoned(m * 2);
    binding.cuda.f32ToBf16(gdst, upload(src), m);
    expectBitwiseEqual(downloadU16(gdst), expected, "aligned");
    // A bf16 destination 2 bytes into its allocation: the scalar path.
    const gmis = poisoned(m * 2 + 2).view(2, m * 2);
    binding.cuda.f32ToBf16(gmis, uploadMisaligned(src), m);
    expectBitwiseEqual(downloadU16(gmis), expected, "misaligned");
  });

  it("bf16ToF32 widens every one of the 65536 bf16 values exactly", () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const expected = new Float32Array(all.length);
    binding.bf16ToF32(expected, all, all.length);
    const gdst = poisoned(all.length * 4);
    binding.cuda.bf16ToF32(gdst, upload(all), all.length);
    expectBitwiseEqual(downloadF32(gdst), expected, "all bf16 values");
    // An odd count from a misaligned source: the scalar path and the tail.
    const n = 999;
    const src = Uint16Array.from(randomInts(n, BASE_SEED + 6, 65536));
    const padded = new Uint16Array(n + 1);
    padded.set(src, 1);
    const gsrc = upload(padded).view(2, n * 2);
    const gout = poisoned(n * 4);
    binding.cuda.bf16ToF32(gout, gsrc, n);
    const want = new Float32Array(n);
    binding.bf16ToF32(want, src, n);
    expectBitwiseEqual(downloadF32(gout), want, "misaligned source");
  });

  it("names the op and the buffer when a length is wrong", () => {
    const x = upload(new Float32Array(8).fill(1));
    expect(() => binding.cuda.add(poisoned(28), x, x, 8)).toThrow(
      /add: expected float32 DeviceBuffer of length 8 \(\[n\] = \[8\]\) for "out" but received length 7/,
    );
    expect(() => binding.cuda.f32ToBf16(poisoned(14), x, 8)).toThrow(/f32ToBf16: .* for "dst" but received length 7/);
  });
});
