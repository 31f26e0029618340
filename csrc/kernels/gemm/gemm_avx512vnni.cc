// AVX512-VNNI path (also what the amx ISA runs for now, see gemm.h):
// vpdpbusd multiplies 4 uint8 activations by 4 int8 weights and adds the four
// products to an int32 lane without saturation, so it reads one packed
// [16][4] weight group per instruction and is exact.
//
// Register tile: up to 6 rows x 4 blocks of 16 columns (24 accumulators). The
// driver walks N in panels of 4 blocks (a panel of B stays in L2 while every
// row tile of A passes over it) and M in tiles of 6 rows.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "gemm/gemm.h"
#include "gemm/gemm_scalar.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")

#include "gemm/gemm_avx512_epilogue.h"  // ISA code: included after the target pragma

namespace qtorch {
namespace kernels {
namespace {

constexpr int kMaxRows = 6;
constexpr int kMaxBlocks = 4;

inline int32_t load_u32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The last group of a row whose K is not a multiple of 4: only k % 4 bytes exist.
inline int32_t load_tail(const uint8_t* p, size_t bytes) {
  int32_t v = 0;
  std::memcpy(&v, p, bytes);
  return v;
}

// out[r][j] = init[j] + sum over the segments of A row r x block j of the
// panel (a plain GEMM is one segment of K's whole groups). The accumulators are
// a flat local array with fully unrolled loops (GCC keeps them in registers only
// then) and are copied out once. init holds the negated zero-point offset of
// each block, so the epilogue need not subtract it.
template <int MR, int NB>
__attribute__((noinline)) void accumulate(const GemmSegment* segments, size_t count, size_t row0, size_t lda,
                                          const int8_t* b, size_t block_stride, const __m512i (&init)[kMaxBlocks],
                                          __m512i (&out)[kMaxRows][kMaxBlocks]) {
  __m512i acc[MR * NB];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) acc[r * NB + j] = init[j];
  for (size_t s = 0; s < count; ++s) {
    const uint8_t* a = segments[s].a + row0;
    const size_t groups = segments[s].k / kGemmGroupK;
    const int8_t* bp = b + segments[s].k0 * kGemmBlockN;
    for (size_t g = 0; g < groups; ++g, bp += kGroupBytes) {
      __m512i bv[NB];
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) bv[j] = _mm512_loadu_si512(bp + j * block_stride);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m512i av = _mm512_set1_epi32(load_u32(a + r * lda + g * kGemmGroupK));
#pragma GCC unroll 8
        for (int j = 0; j < NB; ++j) acc[r * NB + j] = _mm512_dpbusd_epi32(acc[r * NB + j], av, bv[j]);
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) out[r][j] = acc[r * NB + j];
}

// Adds the last, partial group of K (whose A bytes would overrun the rows);
// kept out of accumulate() so that loop is free of stack traffic.
template <int MR, int NB>
__attribute__((noinline)) void accumulate_tail(size_t k, const uint8_t* a, size_t lda, const int8_t* b,
                                               size_t block_stride, __m512i (&out)[kMaxRows][kMaxBlocks]) {
  const size_t full = k / kGemmGroupK;
  __m512i bv[NB];
#pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) bv[j] = _mm512_loadu_si512(b + full * kGroupBytes + j * block_stride);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const __m512i av = _mm512_set1_epi32(load_tail(a + r * lda + full * kGemmGroupK, k % kGemmGroupK));
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) out[r][j] = _mm512_dpbusd_epi32(out[r][j], av, bv[j]);
  }
}

// The uint8 pipeline of a panel whose constants are all finite, a row of up to
// 64 columns at a time. Then x * multiplier is never NaN, and
//   clamp(round(v) + zp, lo, 255) == clamp(round(min(v, 255 - zp)) + zp, lo, 255)
// because rounding (cvtps: half to even, like nearbyint) is monotone and
// 255 - zp is an integer; below the range, cvtps's out-of-range value
// (INT32_MIN), the int16 saturation of the packs and the uint8 saturation of
// the last pack all end at the lower bound. When |v| < 2^30 for every possible
// accumulator (|raw| <= k * 255 * 255), cvtps is exact without the min and the
// saturating packs alone clamp. So per 16 columns: convert, add bias, multiply,
// (min), convert; per row: two packs, the zero point added in int16
// (saturating), ReLU as an int16 max, a pack to bytes, one dword permutation
// into column order and one store (one column block: add, max, one unsigned
// saturating narrowing). Panels that could produce NaN (non-finite bias / ab,
// or a multiplier that overflowed) take store_block.
struct PanelU8 {
  __m512 hi;          // 255 - c_zp
  __m512i zp16;       // c_zp in 32 int16 lanes
  __m512i order;      // dword d of the packed row <- dword order[d]
  __mmask64 columns;  // columns of the panel that exist
  bool row_sums;      // non-zero weight zero points: subtract b_zp * row_sum
  bool clamp_high;    // v may reach 2^30: clamp it before converting
};

// Whether x * multiplier is finite-or-infinite but never NaN (all constants
// finite), and whether it stays below 2^30 in magnitude for |raw| <= k * 255^2.
inline void panel_range(const BlockParams* bp, int nb, size_t k, bool* finite, bool* bounded) {
  *finite = true;
  float max_mult = 0.f, max_bias = 0.f;
  for (int j = 0; j < nb; ++j) {
    const __m512 m = bp[j].multiplier, b = bp[j].bias_over_ab;
    // v - v is 0 for finite v, NaN for infinities and NaN.
    const __mmask16 ok = _mm512_cmp_ps_mask(_mm512_sub_ps(m, m), _mm512_setzero_ps(), _CMP_EQ_OQ) &
                         _mm512_cmp_ps_mask(_mm512_sub_ps(b, b), _mm512_setzero_ps(), _CMP_EQ_OQ);
    if (ok != 0xffff) {
      *finite = false;
      *bounded = false;
      return;
    }
    max_mult = std::max(max_mult, _mm512_reduce_max_ps(_mm512_abs_ps(m)));
    max_bias = std::max(max_bias, _mm512_reduce_max_ps(_mm512_abs_ps(b)));
  }
  // Float rounding of x and v adds a relative 2^-23 or so; 2^30 leaves a factor 2.
  *bounded = (double(k) * 65025.0 + double(max_bias)) * double(max_mult) < double(1 << 30);
}

inline PanelU8 panel_u8(const OutputPipeline& p, size_t columns, bool row_sums, bool clamp_high) {
  PanelU8 e;
  e.row_sums = row_sums;
  e.clamp_high = clamp_high;
  e.hi = _mm512_set1_ps(float(255 - p.c_zero_point));
  e.zp16 = _mm512_set1_epi16(int16_t(p.c_zero_point));
  // After packs (within each 128-bit lane L), dword 4L + j holds columns
  // 16j + 4L .. 16j + 4L + 3 of block j: a 4 x 4 transpose of dwords.
  e.order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  e.columns = columns >= 64 ? ~__mmask64(0) : (__mmask64(1) << columns) - 1;
  return e;
}

template <int NB>
inline void store_row_u8(const __m512i* acc, int32_t row_sum, const BlockParams* bp, const OutputPipeline& p,
                         const PanelU8& e, uint8_t* c) {
  __m512i q[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 4
  for (int j = 0; j < NB; ++j) {
    __m512i raw = acc[j];
    if (e.row_sums) raw = _mm512_sub_epi32(raw, _mm512_mullo_epi32(bp[j].b_zp, _mm512_set1_epi32(row_sum)));
    __m512 x = _mm512_cvtepi32_ps(raw);
    if (p.bias) x = _mm512_add_ps(x, bp[j].bias_over_ab);
    __m512 v = _mm512_mul_ps(x, bp[j].multiplier);
    if (e.clamp_high) v = _mm512_min_ps(v, e.hi);
    q[j] = _mm512_cvtps_epi32(v);
  }
  if (NB == 1) {  // one vector: add the zero point, clamp below, narrow with unsigned saturation
    const __m512i zp = _mm512_set1_epi32(p.c_zero_point);
    const __m512i v = _mm512_max_epi32(_mm512_add_epi32(q[0], zp), p.relu ? zp : _mm512_setzero_si512());
    _mm_mask_storeu_epi8(c, __mmask16(e.columns), _mm512_cvtusepi32_epi8(v));
    return;
  }
  __m512i lo = _mm512_adds_epi16(_mm512_packs_epi32(q[0], q[1]), e.zp16);
  __m512i hi = NB > 2 ? _mm512_adds_epi16(_mm512_packs_epi32(q[2], q[3]), e.zp16) : _mm512_setzero_si512();
  if (p.relu) {
    lo = _mm512_max_epi16(lo, e.zp16);
    hi = _mm512_max_epi16(hi, e.zp16);
  }
  const __m512i bytes = _mm512_permutexvar_epi32(e.order, _mm512_packus_epi16(lo, hi));
  // As wide as the panel: a 64-byte masked store for 16 columns costs more on
  // narrow layers, where it spans the next rows.
  if (NB == 2) {
    _mm256_mask_storeu_epi8(c, __mmask32(e.columns), _mm512_castsi512_si256(bytes));
  } else {
    _mm512_mask_storeu_epi8(c, e.columns, bytes);
  }
}

// Rows [row, row + MR) of the segments (a plain GEMM passes one segment, K's
// whole groups, and its k for the tail).
template <int MR, int NB>
void tile(const GemmSegment* segments, size_t count, size_t row, size_t k, size_t lda, const int8_t* b,
          size_t block_stride, const __m512i (&init)[kMaxBlocks], const int32_t* row_sums, const BlockParams* bp,
          const PanelU8* fast, const OutputPipeline& p, void* c, size_t ldc, size_t n0) {
  __m512i acc[kMaxRows][kMaxBlocks];
  accumulate<MR, NB>(segments, count, row * lda, lda, b, block_stride, init, acc);
  if (k % kGemmGroupK) accumulate_tail<MR, NB>(k, segments[0].a + row * lda, lda, b, block_stride, acc);
  if (fast) {
    for (int r = 0; r < MR; ++r)
      store_row_u8<NB>(acc[r], row_sums[r], bp, p, *fast, static_cast<uint8_t*>(c) + r * ldc + n0);
    return;
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NB; ++j) store_block(acc[r][j], row_sums[r], bp[j], p, c, r * ldc + n0 + j * kGemmBlockN);
}

using TileFn = void (*)(const GemmSegment*, size_t, size_t, size_t, size_t, const int8_t*, size_t,
                        const __m512i (&)[kMaxBlocks], const int32_t*, const BlockParams*, const PanelU8*,
                        const OutputPipeline&, void*, size_t, size_t);

template <int NB>
constexpr TileFn tile_for_rows(int rows) {
  return rows == 1 ? tile<1, NB>
       : rows == 2 ? tile<2, NB>
       : rows == 3 ? tile<3, NB>
       : rows == 4 ? tile<4, NB>
       : rows == 5 ? tile<5, NB>
                   : tile<6, NB>;
}

TileFn tile_fn(int rows, int blocks) {
  switch (blocks) {
    case 1: return tile_for_rows<1>(rows);
    case 2: return tile_for_rows<2>(rows);
    case 3: return tile_for_rows<3>(rows);
    default: return tile_for_rows<4>(rows);
  }
}

// The panel loop of both entry points: N in panels of up to 4 blocks, M in
// tiles of up to 6 rows; `k` is the reduction of the pipeline's offsets and,
// when not a multiple of 4, of the tail group after the (single) segment.
void gemm_panels(size_t m, size_t n_begin, size_t n_end, const GemmSegment* segments, size_t count, size_t k,
                 size_t lda, const PackedB& b, const OutputPipeline& out, void* c, size_t ldc) {
  if (m == 0 || n_begin >= n_end) return;
  const size_t block_stride = b.block_stride;
  const bool need_row_sums = gemm_has_b_zero_points(out, n_begin, n_end);
  const size_t blocks = (n_end - n_begin + kGemmBlockN - 1) / kGemmBlockN;
  for (size_t jb = 0; jb < blocks; jb += kMaxBlocks) {
    const int nb = int(std::min<size_t>(kMaxBlocks, blocks - jb));
    const size_t n0 = n_begin + jb * kGemmBlockN;
    BlockParams bp[kMaxBlocks];
    __m512i init[kMaxBlocks];
    for (int j = 0; j < nb; ++j) {
      const size_t first = n0 + j * kGemmBlockN;
      bp[j] = block_params(out, b, first, std::min(kGemmBlockN, n_end - first));
      // The accumulators start at -offset (see accumulate), so the stores see no offset.
      init[j] = _mm512_sub_epi32(_mm512_setzero_si512(), bp[j].offset);
      bp[j].offset = _mm512_setzero_si512();
    }
    const size_t panel_columns = std::min<size_t>(kMaxBlocks * kGemmBlockN, n_end - n0);
    bool finite, bounded;
    panel_range(bp, nb, k, &finite, &bounded);
    const PanelU8 panel = panel_u8(out, panel_columns, need_row_sums, !bounded);
    const PanelU8* fast = out.output == GemmOutput::kUint8 && finite ? &panel : nullptr;
    const int8_t* panel_b = b.data + (n0 / kGemmBlockN) * block_stride;
    for (size_t i = 0; i < m; i += kMaxRows) {
      const int mr = int(std::min<size_t>(kMaxRows, m - i));
      int32_t row_sums[kMaxRows] = {0, 0, 0, 0, 0, 0};
      if (need_row_sums)
        for (int r = 0; r < mr; ++r) row_sums[r] = gemm_segments_row_sum(segments, count, lda, i + r);
      if (need_row_sums && k % kGemmGroupK)
        for (int r = 0; r < mr; ++r)
          row_sums[r] += gemm_row_sum(segments[0].a + (i + r) * lda + segments[0].k, k % kGemmGroupK);
      tile_fn(mr, nb)(segments, count, i, k, lda, panel_b, block_stride, init, row_sums, bp, fast, out,
                      static_cast<char*>(c) + i * ldc * gemm_output_bytes(out.output), ldc, n0);
    }
  }
  if (out.stream_float_output) _mm_sfence();  // non-temporal stores are weakly ordered
}

void gemm_u8s8(size_t m, size_t n_begin, size_t n_end, const uint8_t* a, size_t lda, const PackedB& b,
               const OutputPipeline& out, void* c, size_t ldc) {
  const GemmSegment whole{a, 0, b.k / kGemmGroupK * kGemmGroupK};
  gemm_panels(m, n_begin, n_end, &whole, 1, b.k, lda, b, out, c, ldc);
}

void gemm_u8s8_segments(size_t m, size_t n_begin, size_t n_end, const GemmSegment* segments, size_t count,
                        size_t lda, const PackedB& b, const OutputPipeline& out, void* c, size_t ldc) {
  gemm_panels(m, n_begin, n_end, segments, count, b.k / kGemmGroupK * kGemmGroupK, lda, b, out, c, ldc);
}

// Float16 weights: rows x blocks of 16 columns, one fma chain per output.
template <int MR, int NB>
void f16_tile(size_t k, const float* a, size_t lda, const uint16_t* b, size_t block_stride, const float* bias,
              bool relu, float* c, size_t ldc, size_t n0, size_t n_end) {
  __m512 acc[MR * NB];
#pragma GCC unroll 32
  for (int i = 0; i < MR * NB; ++i) acc[i] = _mm512_setzero_ps();
  for (size_t kk = 0; kk < k; ++kk) {
    __m512 bv[NB];
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j)
      bv[j] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j * block_stride + kk * 16)));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + kk]);
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) acc[r * NB + j] = _mm512_fmadd_ps(av, bv[j], acc[r * NB + j]);
    }
  }
  for (int j = 0; j < NB; ++j) {
    const size_t first = n0 + j * kGemmBlockN;
    const __mmask16 mask = lane_mask(n_end - first);
    const __m512 bias_v = bias ? _mm512_maskz_loadu_ps(mask, bias + first) : _mm512_setzero_ps();
    for (int r = 0; r < MR; ++r) {
      __m512 y = acc[r * NB + j];
      if (bias) y = _mm512_add_ps(y, bias_v);
      if (relu) y = _mm512_max_ps(y, _mm512_setzero_ps());
      _mm512_mask_storeu_ps(c + r * ldc + first, mask, y);
    }
  }
}

using F16TileFn = void (*)(size_t, const float*, size_t, const uint16_t*, size_t, const float*, bool, float*, size_t,
                           size_t, size_t);

template <int NB>
constexpr F16TileFn f16_tile_for_rows(int rows) {
  return rows == 1 ? f16_tile<1, NB> : rows == 2 ? f16_tile<2, NB> : rows == 3 ? f16_tile<3, NB> : f16_tile<4, NB>;
}

void gemm_f32f16(size_t m, size_t n_begin, size_t n_end, const float* a, size_t lda, const uint16_t* packed_b,
                 size_t k, const float* bias, bool relu, float* c, size_t ldc) {
  constexpr size_t kRows = 4, kBlocks = 4;
  const size_t block_stride = k * kGemmBlockN;
  for (size_t n0 = n_begin; n0 < n_end; n0 += kBlocks * kGemmBlockN) {
    const size_t nb = std::min(kBlocks, (n_end - n0 + kGemmBlockN - 1) / kGemmBlockN);
    const uint16_t* panel = packed_b + (n0 / kGemmBlockN) * block_stride;
    const size_t panel_end = std::min(n_end, n0 + kBlocks * kGemmBlockN);
    for (size_t i = 0; i < m; i += kRows) {
      const int mr = int(std::min(kRows, m - i));
      const F16TileFn fn = nb == 1 ? f16_tile_for_rows<1>(mr)
                         : nb == 2 ? f16_tile_for_rows<2>(mr)
                         : nb == 3 ? f16_tile_for_rows<3>(mr)
                                   : f16_tile_for_rows<4>(mr);
      fn(k, a + i * lda, lda, panel, block_stride, bias, relu, c + i * ldc, ldc, n0, panel_end);
    }
  }
}

// Two accumulator pairs hide the min/max latency, the tail is a masked step and
// the lanes are reduced in registers (short rows, e.g. per-row quantization,
// are dominated by the reduction). min/max of a NaN keep the other operand, so
// NaN is tracked apart; without NaN the extremes are the same values in any order.
void float_range(size_t n, const float* x, float* min, float* max) {
  __m512 vmin0 = _mm512_set1_ps(x[0]), vmax0 = vmin0, vmin1 = vmin0, vmax1 = vmin0;
  __mmask16 unordered = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    vmin0 = _mm512_min_ps(v0, vmin0);
    vmax0 = _mm512_max_ps(v0, vmax0);
    vmin1 = _mm512_min_ps(v1, vmin1);
    vmax1 = _mm512_max_ps(v1, vmax1);
    unordered |= _mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    vmin0 = _mm512_mask_min_ps(vmin0, m, v, vmin0);
    vmax0 = _mm512_mask_max_ps(vmax0, m, v, vmax0);
    unordered |= _mm512_mask_cmp_ps_mask(m, v, v, _CMP_UNORD_Q);
  }
  *min = _mm512_reduce_min_ps(_mm512_min_ps(vmin0, vmin1));
  *max = _mm512_reduce_max_ps(_mm512_max_ps(vmax0, vmax1));
  float_range_finish(unordered != 0, min, max);
}

}  // namespace

const GemmUkernels kGemmAvx512Vnni = {gemm_u8s8, gemm_f32f16, float_range, true, gemm_u8s8_segments};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
