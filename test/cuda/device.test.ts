import { expect, it } from "vitest";

import { cudaInfo, deviceForRank, parseDevice, toHost } from "../../src/device.js";
import { binding } from "../../src/native.js";
import { randomF32 } from "../helpers/reference.js";
import { DEVICE, describeCuda, downloadF32, upload } from "../helpers/cuda.js";

it("cuda.info says what was compiled and why no device is usable", () => {
  const info = cudaInfo();
  expect(typeof info.compiled).toBe("boolean");
  if (info.devices.length === 0) expect(info.unavailableReason).not.toBe("");
  expect(() => parseDevice("gpu")).toThrow(/expected "cpu", "cuda" or "cuda:N" but received "gpu"/);
  expect(parseDevice("cpu")).toBe("cpu");
  expect(() => parseDevice(`cuda:${info.devices.length}`)).toThrow(/cannot use "cuda:\d+"/);
});

describeCuda("device memory", () => {
  it("copies to the device, within it, and back; views address sub-ranges", () => {
    const data = randomF32(1001, 5);
    const a = upload(data);
    expect(a.byteLength).toBe(4004);
    const b = binding.cuda.alloc(DEVICE, 4004);
    binding.cuda.copyOnDevice(b, a);
    expect(downloadF32(b)).toEqual(data);
    const tail = b.view(400, 40);
    expect(toHost(tail, (n) => new Float32Array(n), 4)).toEqual(data.subarray(100, 110));
    binding.cuda.fillBytes(tail, 0);
    const back = downloadF32(b);
    expect(back.subarray(100, 110)).toEqual(new Float32Array(10));
    expect(back[99]).toBe(data[99]);
    expect(back[110]).toBe(data[110]);
  });

  it("copies strided rows within the device in one call (cudaMemcpy2DAsync)", () => {
    const data = randomF32(2 + 6 * 13 + 5, 6);
    const src = upload(data);
    const dst = upload(new Float32Array(6 * 9 + 5 + 4).fill(-1));
    binding.cuda.copyRowsOnDevice(dst, src.view(8, src.byteLength - 8), 7, 20, 36, 52);
    const back = downloadF32(dst);
    for (let i = 0; i < back.length; i++) {
      const r = Math.floor(i / 9), c = i % 9;
      expect(back[i]).toBe(r < 7 && c < 5 ? data[2 + r * 13 + c] : -1);
    }
    expect(() => binding.cuda.copyRowsOnDevice(dst, src, 2, 20, 16, 52)).toThrow(/cuda.copyRowsOnDevice: the pitches \(16, 52\) must be at least rowBytes = 20/);
    expect(() => binding.cuda.copyRowsOnDevice(dst, src, 8, 20, 36, 52)).toThrow(/8 rows of 20 bytes span 272 and 384 bytes but dst has 252 and src 340/);
  });

  it("refuses copies of different sizes and views outside the buffer", () => {
    const a = binding.cuda.alloc(DEVICE, 16);
    expect(() => binding.cuda.copyToDevice(a, new Float32Array(5))).toThrow(/the destination has 16 bytes but the source 20/);
    expect(() => a.view(8, 16)).toThrow(/bytes \[8, 24\) are outside the buffer's 16/);
  });

  it("reuses freed memory through the pool", () => {
    const before = binding.cuda.poolStats(DEVICE);
    const a = binding.cuda.alloc(DEVICE, 3000);
    const mid = binding.cuda.poolStats(DEVICE);
    expect(mid.inUse - before.inUse).toBe(3072);
    a.free();
    const b = binding.cuda.alloc(DEVICE, 3000);
    expect(binding.cuda.poolStats(DEVICE).reserved).toBe(mid.reserved);
    b.free();
  });
});

it("a data-parallel rank given \"cuda\" trains on cuda:LOCAL_RANK, as torchrun jobs do", () => {
  expect(deviceForRank("cuda", 3)).toBe("cuda:3");
  expect(deviceForRank("cuda", null)).toBe("cuda");
  expect(deviceForRank("cuda:1", 3)).toBe("cuda:1");
  expect(deviceForRank("cpu", 3)).toBe("cpu");
});
