// AMX path: tdpbusd on tiles. UNTESTED: written on a machine without AMX, so
// gemm_ukernels(Isa::kAmx) still returns the avx512vnni table; the C++ test
// gemm_amx_matches_scalar compares this kernel to the scalar reference
// wherever isa_supported(Isa::kAmx) holds, and dispatching it is one line in
// gemm.cc once that passes.
//
// The packed weight layout is already AMX's: 16 consecutive groups of one
// block, [16 groups][16 columns][4 k] = 16 rows of 64 bytes, are one B tile
// (K = 64 per tile). A tile is 16 rows of A x 64 bytes (row stride lda). Tiles
// 0-3 accumulate a 32 x 32 output block (2 row tiles x 2 column blocks), 4-5
// hold A, 6-7 hold B. The last partial k-tile goes through zero-padded copies,
// so no tile reads past A's rows or the packed weight. Int32 results go through
// the AVX-512 output pipeline. Float16 GEMM uses the AVX-512 kernel.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "gemm/gemm.h"
#include "gemm/gemm_scalar.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c,amx-tile,amx-int8")

#include "gemm/gemm_avx512_epilogue.h"  // ISA code: included after the target pragma

namespace qtorch {
namespace kernels {
namespace {

constexpr size_t kTileRows = 16;
constexpr size_t kTileBytes = 64;             // bytes per tile row
constexpr size_t kTileK = kTileBytes;         // reduction indices per tile
constexpr size_t kTileGroups = kTileK / kGemmGroupK;  // 16 groups = one B tile

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// Tiles for rows0 + rows1 rows of A (rows1 may be 0) and two column blocks.
void configure(size_t rows0, size_t rows1) {
  TileConfig cfg;
  std::memset(&cfg, 0, sizeof(cfg));
  cfg.palette_id = 1;
  const size_t rows[2] = {rows0, rows1 ? rows1 : 1};
  for (int t = 0; t < 4; ++t) {  // C: [row tile t / 2][block t % 2]
    cfg.rows[t] = uint8_t(rows[t / 2]);
    cfg.colsb[t] = kTileBytes;
  }
  for (int t = 0; t < 2; ++t) {  // A
    cfg.rows[4 + t] = uint8_t(rows[t]);
    cfg.colsb[4 + t] = kTileBytes;
  }
  for (int t = 0; t < 2; ++t) {  // B
    cfg.rows[6 + t] = kTileRows;
    cfg.colsb[6 + t] = kTileBytes;
  }
  _tile_loadconfig(&cfg);
}

// One 32 x 32 (or smaller) output block: acc[r][j] for rows [0, rows0 + rows1),
// columns of blocks b0 and b1 (b1 may be null).
void tile_block(size_t k, const uint8_t* a, size_t lda, const int8_t* b0, const int8_t* b1, size_t rows0,
                size_t rows1, int32_t (*acc)[32]) {
  const size_t full = k / kTileK;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (size_t t = 0; t < full; ++t) {
    _tile_loadd(4, a + t * kTileK, lda);
    if (rows1) _tile_loadd(5, a + kTileRows * lda + t * kTileK, lda);
    _tile_loadd(6, b0 + t * kTileGroups * kGroupBytes, kTileBytes);
    _tile_dpbusd(0, 4, 6);
    if (rows1) _tile_dpbusd(2, 5, 6);
    if (b1) {
      _tile_loadd(7, b1 + t * kTileGroups * kGroupBytes, kTileBytes);
      _tile_dpbusd(1, 4, 7);
      if (rows1) _tile_dpbusd(3, 5, 7);
    }
  }
  if (k % kTileK) {
    // Zero-padded copies of the partial k-tile: A's missing bytes and B's
    // missing groups are zero, so they add nothing.
    alignas(64) uint8_t a_pad[2 * kTileRows][kTileBytes];
    alignas(64) int8_t b_pad[2][kTileGroups * kGroupBytes];
    std::memset(a_pad, 0, sizeof(a_pad));
    std::memset(b_pad, 0, sizeof(b_pad));
    const size_t rest = k - full * kTileK;
    const size_t rest_groups = (rest + kGemmGroupK - 1) / kGemmGroupK;
    for (size_t r = 0; r < rows0 + rows1; ++r) std::memcpy(a_pad[r], a + r * lda + full * kTileK, rest);
    std::memcpy(b_pad[0], b0 + full * kTileGroups * kGroupBytes, rest_groups * kGroupBytes);
    if (b1) std::memcpy(b_pad[1], b1 + full * kTileGroups * kGroupBytes, rest_groups * kGroupBytes);
    _tile_loadd(4, a_pad[0], kTileBytes);
    if (rows1) _tile_loadd(5, a_pad[kTileRows], kTileBytes);
    _tile_loadd(6, b_pad[0], kTileBytes);
    _tile_dpbusd(0, 4, 6);
    if (rows1) _tile_dpbusd(2, 5, 6);
    if (b1) {
      _tile_loadd(7, b_pad[1], kTileBytes);
      _tile_dpbusd(1, 4, 7);
      if (rows1) _tile_dpbusd(3, 5, 7);
    }
  }
  constexpr size_t stride = 32 * sizeof(int32_t);
  _tile_stored(0, &acc[0][0], stride);
  if (b1) _tile_stored(1, &acc[0][16], stride);
  if (rows1) {
    _tile_stored(2, &acc[kTileRows][0], stride);
    if (b1) _tile_stored(3, &acc[kTileRows][16], stride);
  }
}

void gemm_u8s8(size_t m, size_t n_begin, size_t n_end, const uint8_t* a, size_t lda, const PackedB& b,
               const OutputPipeline& out, void* c, size_t ldc) {
  if (m == 0 || n_begin >= n_end) return;
  const size_t k = b.k;
  const size_t block_stride = b.block_stride;
  const bool need_row_sums = gemm_has_b_zero_points(out, n_begin, n_end);
  const size_t bytes = gemm_output_bytes(out.output);
  alignas(64) int32_t acc[2 * kTileRows][32];
  // Full 32-row chunks first, then the remainder: one tile configuration each.
  const size_t full_rows = m / (2 * kTileRows) * (2 * kTileRows);
  for (int pass = 0; pass < 2; ++pass) {
    const size_t i_begin = pass == 0 ? 0 : full_rows, i_end = pass == 0 ? full_rows : m;
    if (i_begin >= i_end) continue;
    const size_t chunk = std::min<size_t>(2 * kTileRows, i_end - i_begin);
    const size_t rows0 = std::min(kTileRows, chunk), rows1 = chunk - rows0;
    configure(rows0, rows1);
    for (size_t n0 = n_begin; n0 < n_end; n0 += 2 * kGemmBlockN) {
      const size_t count0 = std::min(kGemmBlockN, n_end - n0);
      const size_t count1 = n0 + kGemmBlockN < n_end ? std::min(kGemmBlockN, n_end - n0 - kGemmBlockN) : 0;
      const int8_t* b0 = b.data + (n0 / kGemmBlockN) * block_stride;
      const int8_t* b1 = count1 ? b0 + block_stride : nullptr;
      const BlockParams bp0 = block_params(out, b, n0, count0);
      BlockParams bp1 = bp0;
      if (count1) bp1 = block_params(out, b, n0 + kGemmBlockN, count1);
      for (size_t i = i_begin; i < i_end; i += chunk) {
        tile_block(k, a + i * lda, lda, b0, b1, rows0, rows1, acc);
        for (size_t r = 0; r < chunk; ++r) {
          const int32_t row_sum = need_row_sums ? gemm_row_sum(a + (i + r) * lda, k) : 0;
          void* c_row = static_cast<char*>(c) + (i + r) * ldc * bytes;
          store_block(_mm512_load_si512(acc[r]), row_sum, bp0, out, c_row, n0);
          if (count1) store_block(_mm512_load_si512(acc[r] + 16), row_sum, bp1, out, c_row, n0 + kGemmBlockN);
        }
      }
    }
  }
  if (out.stream_float_output) _mm_sfence();  // non-temporal stores are weakly ordered
  _tile_release();
}

}  // namespace

const GemmUkernels kGemmAmx = {gemm_u8s8, kGemmAvx512Vnni.gemm_f32f16, kGemmAvx512Vnni.float_range, true, nullptr};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
