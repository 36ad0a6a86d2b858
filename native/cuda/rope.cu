// Rotary position embedding on device buffers (growlm/rope.h), Hugging Face's LLaMA
// convention (rotate_half): the pair (x[i], x[i + D/2]) of every head is rotated by the
// fp32 angle positions[b,t] · inv_freq[i], inv_freq[i] = 1 / fp32(theta ** fp32(2i / D)).
// Like the CPU backend, cos and sin of each fp32 angle are evaluated in double and rounded
// to fp32 (correctly rounded but for rare near-ties), so both backends agree to the bit
// almost everywhere; double sin/cos cost little next to the memory traffic because each is
// computed once per (row, i) in shared memory and applied to all H heads.
// Layout: x [B, T, H, D] (one block per (b, t) row, grid-stride), positions int32 [B, T].
// The half-dimension is walked in tiles of TILE pairs so any D fits static shared memory.
// Positions index nothing, so they are not range-checked on the device: a negative one
// rotates by a negative angle. out may alias inp: each thread loads both halves of its pair
// before storing them. Checked against the CPU backend in test/cuda/rope.test.ts.
#include "common.cuh"

namespace growlm::GROWLM_CUDA_NS {

namespace {

constexpr int THREADS = 128;
constexpr int TILE = 256;          // pairs per tile of the cos/sin table
constexpr int64_t MAX_BLOCKS = 65535;  // grid-stride over rows beyond this

// sign = +1 rotates by +angle (forward), -1 by -angle (backward). Tiles of the half-dimension
// outside, rows inside: the inverse frequencies of a tile are computed once per block.
// H·len < 2^31 (checked by the host), so the pair index is 32-bit: 64-bit division is slow.
__global__ void rope_kernel(float* out, const float* inp, const int32_t* positions, int64_t rows, int H, int D,
                            float theta, float sign) {
  __shared__ float inv_tile[TILE];
  __shared__ float cos_tile[TILE];
  __shared__ float sin_tile[TILE];
  const int half = D / 2;
  for (int i0 = 0; i0 < half; i0 += TILE) {
    const int len = half - i0 < TILE ? half - i0 : TILE;
    for (int k = threadIdx.x; k < len; k += blockDim.x) {
      // HF: inv_freq = 1.0 / (base ** (arange(0, D, 2).float() / D)), every step in fp32.
      const float exponent = static_cast<float>(2 * (i0 + k)) / static_cast<float>(D);
      const float power = static_cast<float>(pow(static_cast<double>(theta), static_cast<double>(exponent)));
      inv_tile[k] = 1.0f / power;
    }
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
      const float pos = static_cast<float>(positions[row]);
      for (int k = threadIdx.x; k < len; k += blockDim.x) {
        const double angle = static_cast<double>(pos * inv_tile[k]);  // the fp32 product, as HF
        cos_tile[k] = static_cast<float>(cos(angle));
        sin_tile[k] = sign * static_cast<float>(sin(angle));
      }
      __syncthreads();
      // Consecutive threads take consecutive i of one head: coalesced loads and stores.
      const int64_t base = row * H * D + i0;
      for (int j = threadIdx.x; j < H * len; j += blockDim.x) {
        const int h = j / len;
        const int k = j - h * len;
        const float* x = inp + base + static_cast<int64_t>(h) * D + k;
        float* o = out + base + static_cast<int64_t>(h) * D + k;
        const float a = x[0], b = x[half];
        const float c = cos_tile[k], s = sin_tile[k];
        o[0] = a * c - b * s;
        o[half] = b * c + a * s;
      }
      __syncthreads();
    }
  }
}

void rope(const char* op, float* out, const float* inp, const int32_t* positions, int64_t B, int64_t T,
          int64_t H, int64_t D, float theta, float sign, const CudaContext& ctx) {
  if (B < 0 || T < 0 || H < 0 || D < 2 || D % 2 != 0) {
    throw std::invalid_argument(std::string(op) + ": expected B, T, H >= 0 and an even D >= 2");
  }
  if (!(theta > 0.0f) || !std::isfinite(theta)) throw std::invalid_argument(std::string(op) + ": expected theta > 0");
  if (D > 0x7fffffff || H * (D / 2 < TILE ? D / 2 : TILE) > 0x7fffffff) {
    throw std::invalid_argument(std::string(op) + ": H·min(D/2, 256) and D must stay below 2^31");
  }
  const int64_t rows = B * T;
  if (rows == 0 || H == 0) return;
  const unsigned blocks = static_cast<unsigned>(rows < MAX_BLOCKS ? rows : MAX_BLOCKS);
  launch(op, rope_kernel, blocks, THREADS, 0, ctx, out, inp, positions, rows, static_cast<int>(H),
         static_cast<int>(D), theta, sign);
}

}  // namespace

void rope_forward(float* out, const float* inp, const int32_t* positions, int64_t B, int64_t T, int64_t H,
                  int64_t D, float theta, const CudaContext& ctx) {
  rope("ropeForward", out, inp, positions, B, T, H, D, theta, 1.0f, ctx);
}

void rope_backward(float* dinp, const float* dout, const int32_t* positions, int64_t B, int64_t T, int64_t H,
                   int64_t D, float theta, const CudaContext& ctx) {
  rope("ropeBackward", dinp, dout, positions, B, T, H, D, theta, -1.0f, ctx);
}

}  // namespace growlm::GROWLM_CUDA_NS
