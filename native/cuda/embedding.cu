// Token embedding on device buffers (growlm/embedding.h): out[n, :] = table[ids[n], :] with
// table [V, C], out [N, C]; the backward adds dout [N, C] into dtable [V, C] (+=).
//
// The backward is deterministic and uses no float atomics. It sorts the keys
// (id << 32 | n) with a bitonic sort (shared-memory chunks of SORT_CHUNK keys, global steps
// only for the strides that cross chunks), which groups each id's tokens in token order;
// then the block that finds the first token of a group adds that group's dout rows to its
// dtable row, in token order, starting from the row's old value: the very additions the CPU
// backend makes, in the same order, so both give the same bits. Work is spread over the
// distinct ids and column tiles, so a batch whose tokens repeat one id costs one long walk
// over that id's rows, not a serial pass over every token. Tokens of padding_idx sort last
// with the invalid ones and add nothing.
//
// Ids live on the device, so the binding cannot range-check them: the kernels clamp-and-flag
// instead: the forward fills the row of an id outside [0, V) with NaN (a visible failure,
// never an out-of-bounds read) and the backward skips such tokens.
// Checked against the CPU backend in test/cuda/embedding.test.ts.
#include "common.cuh"

namespace growlm::GROWLM_CUDA_NS {

namespace {

constexpr int THREADS = 128;
constexpr int64_t MAX_BLOCKS = 65535;
constexpr int SORT_CHUNK = 2048;             // keys sorted in shared memory by one block
constexpr uint64_t NO_TOKEN = ~uint64_t{0};  // sort padding (of the sort, of padding_idx) and invalid ids last
constexpr int GROUP = 8;                     // sorted positions scanned per block
constexpr int COLS = THREADS;                // dtable columns per block
constexpr int BATCH = 8;                     // tokens loaded together in a group's walk

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// One row per block iteration; quads when C % 4 == 0 and both pointers are 16-byte aligned.
__global__ void embedding_forward_kernel(float* out, const int32_t* ids, const float* table, int64_t N,
                                         int64_t V, int64_t C, bool quads) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const int32_t id = ids[n];
    float* dst = out + n * C;
    if (id < 0 || id >= V) {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dst[c] = __int_as_float(0x7fc00000);
      continue;
    }
    const float* src = table + static_cast<int64_t>(id) * C;
    if (quads) {
      for (int64_t q = threadIdx.x; q < C / 4; q += blockDim.x) {
        reinterpret_cast<float4*>(dst)[q] = reinterpret_cast<const float4*>(src)[q];
      }
    } else {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dst[c] = src[c];
    }
  }
}

__device__ __forceinline__ void compare_swap(uint64_t& a, uint64_t& b, bool ascending) {
  if ((a > b) == ascending) {
    const uint64_t t = a;
    a = b;
    b = t;
  }
}

// Index of the lower element of pair t at stride j (a power of two).
__device__ __forceinline__ int64_t pair_low(int64_t t, int64_t j) { return ((t & ~(j - 1)) << 1) | (t & (j - 1)); }

// Builds the keys of one chunk and sorts it: every bitonic stage k <= SORT_CHUNK.
// blockDim.x = chunk / 2, each thread one compare-exchange pair per step.
__global__ void sort_chunks_kernel(uint64_t* keys, const int32_t* ids, int64_t N, int64_t V, int64_t padding_idx,
                                   int chunk) {
  __shared__ uint64_t s[SORT_CHUNK];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * chunk;
  for (int i = threadIdx.x; i < chunk; i += blockDim.x) {
    const int64_t n = base + i;
    uint64_t key = NO_TOKEN;
    if (n < N) {
      const int32_t id = ids[n];
      if (id >= 0 && id < V && id != padding_idx) key = (static_cast<uint64_t>(id) << 32) | static_cast<uint64_t>(n);
    }
    s[i] = key;
  }
  __syncthreads();
  const int t = threadIdx.x;
  for (int k = 2; k <= chunk; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      const int i = static_cast<int>(pair_low(t, j));
      compare_swap(s[i], s[i + j], ((base + i) & k) == 0);
      __syncthreads();
    }
  }
  for (int i = threadIdx.x; i < chunk; i += blockDim.x) keys[base + i] = s[i];
}

// One global step (stage k, stride j >= chunk) of the bitonic sort of P keys.
__global__ void sort_step_kernel(uint64_t* keys, int64_t P, int64_t k, int64_t j) {
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < P / 2;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = pair_low(t, j);
    uint64_t a = keys[i], b = keys[i + j];
    const bool ascending = (i & k) == 0;
    if ((a > b) == ascending) {
      keys[i] = b;
      keys[i + j] = a;
    }
  }
}

// The strides j < chunk of stage k (> chunk) within each chunk.
__global__ void merge_chunks_kernel(uint64_t* keys, int64_t k, int chunk) {
  __shared__ uint64_t s[SORT_CHUNK];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * chunk;
  for (int i = threadIdx.x; i < chunk; i += blockDim.x) s[i] = keys[base + i];
  __syncthreads();
  const int t = threadIdx.x;
  for (int j = chunk >> 1; j > 0; j >>= 1) {
    const int i = static_cast<int>(pair_low(t, j));
    compare_swap(s[i], s[i + j], ((base + i) & k) == 0);
    __syncthreads();
  }
  for (int i = threadIdx.x; i < chunk; i += blockDim.x) keys[base + i] = s[i];
}

// Block (g, y) scans sorted positions [g·GROUP, (g+1)·GROUP) for the first token of an id's
// group and adds that group's dout rows, in token order, to columns [y·COLS, (y+1)·COLS) of
// the id's dtable row. The walk loads BATCH keys, then their dout values, then adds them in
// order, so loads overlap while the sum order stays the CPU's.
__global__ void accumulate_groups_kernel(float* dtable, const float* dout, const uint64_t* keys, int64_t N,
                                         int64_t C) {
  const int64_t c = static_cast<int64_t>(blockIdx.y) * COLS + threadIdx.x;
  if (c >= C) return;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * GROUP;
  const int64_t last = first + GROUP < N ? first + GROUP : N;
  for (int64_t p = first; p < last; ++p) {
    const uint64_t key = keys[p];
    if (key == NO_TOKEN) return;  // sorted: only padding and invalid ids follow
    const uint64_t id = key >> 32;
    if (p > 0 && (keys[p - 1] >> 32) == id) continue;  // not the group's first token
    float* row = dtable + static_cast<int64_t>(id) * C + c;
    float acc = *row;
    for (int64_t q = p;; q += BATCH) {
      float d[BATCH];
      int count = 0;
      for (int b = 0; b < BATCH; ++b) {
        const uint64_t kb = q + b < N ? keys[q + b] : NO_TOKEN;
        const bool mine = kb != NO_TOKEN && (kb >> 32) == id;
        d[b] = mine ? dout[static_cast<int64_t>(kb & 0xffffffffu) * C + c] : 0.0f;
        count += mine ? 1 : 0;
      }
      // The group is contiguous, so the first `count` of the batch are its tokens.
      for (int b = 0; b < BATCH; ++b) {
        if (b < count) acc += d[b];
      }
      if (count < BATCH) break;
    }
    *row = acc;
  }
}

// The keys hold n in 32 bits and the id in 31; grid.y (column tiles) is at most 65535.
void check_sizes(const char* op, int64_t N, int64_t V, int64_t C) {
  if (N < 0 || V < 1 || C < 1) throw std::invalid_argument(std::string(op) + ": expected N >= 0, V >= 1 and C >= 1");
  if (N > 0x7fffffff) throw std::invalid_argument(std::string(op) + ": N above 2^31 - 1 tokens");
  if ((C + COLS - 1) / COLS > 65535) throw std::invalid_argument(std::string(op) + ": C above 65535 * 128");
}

int64_t next_pow2(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

}  // namespace

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t V, int64_t C,
                       const CudaContext& ctx) {
  check_sizes("embedding_forward", N, V, C);
  if (N == 0) return;
  const bool quads = C % 4 == 0 && aligned16(out) && aligned16(table);
  const unsigned blocks = static_cast<unsigned>(N < MAX_BLOCKS ? N : MAX_BLOCKS);
  launch("embeddingForward", embedding_forward_kernel, blocks, THREADS, 0, ctx, out, ids, table, N, V, C, quads);
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int64_t V, int64_t C,
                        int64_t padding_idx, const CudaContext& ctx) {
  check_sizes("embedding_backward", N, V, C);
  if (N == 0) return;
  const int64_t P = next_pow2(N < 64 ? 64 : N);  // a chunk of at least 64 keys: a warp of pairs
  const int chunk = static_cast<int>(P < SORT_CHUNK ? P : SORT_CHUNK);
  const unsigned chunks = static_cast<unsigned>(P / chunk);
  const char* op = "embeddingBackward";
  const DeviceScratch scratch(ctx, static_cast<size_t>(P) * sizeof(uint64_t));
  uint64_t* keys = scratch.as<uint64_t>();
  launch(op, sort_chunks_kernel, chunks, chunk / 2, 0, ctx, keys, ids, N, V, padding_idx, chunk);
  for (int64_t k = 2 * static_cast<int64_t>(chunk); k <= P; k <<= 1) {
    for (int64_t j = k >> 1; j >= chunk; j >>= 1) {
      const unsigned blocks = blocks_for(P / 2, 256);
      launch(op, sort_step_kernel, blocks < MAX_BLOCKS ? blocks : static_cast<unsigned>(MAX_BLOCKS), 256, 0, ctx,
             keys, P, k, j);
    }
    launch(op, merge_chunks_kernel, chunks, chunk / 2, 0, ctx, keys, k, chunk);
  }
  const dim3 grid(blocks_for(N, GROUP), blocks_for(C, COLS));
  launch(op, accumulate_groups_kernel, grid, THREADS, 0, ctx, dtable, dout, keys, N, C);
}

}  // namespace growlm::GROWLM_CUDA_NS
