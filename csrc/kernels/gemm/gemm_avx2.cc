// AVX2 path. Exact by construction: activations and weights are widened to
// int16 and multiplied with vpmaddwd (int16 x int16 pairs summed into int32,
// which cannot overflow), never vpmaddubsw, whose int16 saturation would make
// results differ from the scalar reference.
//
// One packed [16][4] weight group is read as four quarters of 4 columns x 4 k;
// a quarter widened to int16 times the row's 4 activations (broadcast) gives
// per column two int32 pair sums, added across K and folded with vphaddd at
// the end. Register tile: 2 rows x 16 columns (8 accumulators; AVX2 has 16
// registers).
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "gemm/gemm.h"
#include "gemm/gemm_scalar.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx2,fma,f16c")

namespace qtorch {
namespace kernels {
namespace {

constexpr int kMaxRows = 2;
constexpr size_t kGroupBytes = kGemmBlockN * kGemmGroupK;  // 64

// 4 activation bytes -> int16 [a0 a1 a2 a3] repeated over 256 bits.
inline __m256i broadcast_group(int32_t four_bytes) {
  return _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(four_bytes)));
}

inline int32_t load_u32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline int32_t load_tail(const uint8_t* p, size_t bytes) {
  int32_t v = 0;
  std::memcpy(&v, p, bytes);
  return v;
}

template <int MR>
inline void madd_group(const int8_t* group, const __m256i (&av)[MR], __m256i* acc) {
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    const __m256i bq = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(group + q * 16)));
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) acc[r * 4 + q] = _mm256_add_epi32(acc[r * 4 + q], _mm256_madd_epi16(av[r], bq));
  }
}

// pairs[r * 4 + q] = pair sums of row r, quarter q, over the segments (a plain
// GEMM is one segment: the full groups of K).
template <int MR>
__attribute__((noinline)) void accumulate(const GemmSegment* segments, size_t count, size_t row0, size_t lda,
                                          const int8_t* b, __m256i* pairs) {
  __m256i acc[MR * 4];
#pragma GCC unroll 16
  for (int i = 0; i < MR * 4; ++i) acc[i] = _mm256_setzero_si256();
  for (size_t s = 0; s < count; ++s) {
    const uint8_t* a = segments[s].a + row0;
    const int8_t* bs = b + segments[s].k0 * kGemmBlockN;
    const size_t full = segments[s].k / kGemmGroupK;
    for (size_t g = 0; g < full; ++g) {
      __m256i av[MR];
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) av[r] = broadcast_group(load_u32(a + r * lda + g * kGemmGroupK));
      madd_group<MR>(bs + g * kGroupBytes, av, acc);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR * 4; ++i) pairs[i] = acc[i];
}

// Adds the last, partial group of K (kept out of the hot loop, see the AVX-512 path).
template <int MR>
__attribute__((noinline)) void accumulate_tail(size_t k, const uint8_t* a, size_t lda, const int8_t* b,
                                               __m256i* pairs) {
  const size_t full = k / kGemmGroupK;
  __m256i av[MR];
  for (int r = 0; r < MR; ++r) av[r] = broadcast_group(load_tail(a + r * lda + full * kGemmGroupK, k % kGemmGroupK));
  madd_group<MR>(b + full * kGroupBytes, av, pairs);
}

// Per-block pipeline constants (see gemm_channel in gemm_scalar.h), 2 x 8 lanes.
struct BlockParams {
  __m256i offset[2];  // a_zp * colsum - k * a_zp * b_zp   (wrapping int32)
  __m256i b_zp[2];
  __m256 ab[2], multiplier[2], bias[2], bias_over_ab[2];
  size_t count;  // valid columns (16 but at the end of N)
  // The uint8 shortcut (see store_block): all constants finite, and whether
  // x * multiplier may reach 2^30 for |raw| <= k * 255^2.
  bool finite, clamp_high;
};

BlockParams block_params(const OutputPipeline& p, const PackedB& b, size_t n0, size_t count) {
  alignas(32) int32_t colsum[16] = {}, bzp[16] = {};
  alignas(32) float bscale[16], bias[16] = {};
  for (size_t j = 0; j < 16; ++j) {
    const bool valid = j < count;
    const size_t i = p.b_per_channel ? n0 + j : 0;
    colsum[j] = valid ? b.col_sums[n0 + j] : 0;
    bzp[j] = valid && p.b_zero_points ? p.b_zero_points[i] : 0;
    bscale[j] = valid ? p.b_scales[i] : 1.f;
    bias[j] = valid && p.bias ? p.bias[n0 + j] : 0.f;
  }
  BlockParams bp;
  bp.count = count;
  const __m256i a_zp = _mm256_set1_epi32(p.a_zero_point);
  const __m256i k_azp = _mm256_set1_epi32(int32_t(uint32_t(b.k) * uint32_t(p.a_zero_point)));
  for (int h = 0; h < 2; ++h) {
    bp.b_zp[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(bzp + 8 * h));
    const __m256i cs = _mm256_load_si256(reinterpret_cast<const __m256i*>(colsum + 8 * h));
    bp.offset[h] = _mm256_sub_epi32(_mm256_mullo_epi32(a_zp, cs), _mm256_mullo_epi32(k_azp, bp.b_zp[h]));
    bp.ab[h] = _mm256_mul_ps(_mm256_set1_ps(p.a_scale), _mm256_load_ps(bscale + 8 * h));
    bp.multiplier[h] = _mm256_div_ps(bp.ab[h], _mm256_set1_ps(p.c_scale));
    bp.bias[h] = _mm256_load_ps(bias + 8 * h);
    bp.bias_over_ab[h] = _mm256_div_ps(bp.bias[h], bp.ab[h]);
  }
  // Per lane, vectorised (this runs once per block, which matters for one-row
  // GEMMs): v - v is 0 only for finite v, and the bound below 2^29 in float
  // leaves a factor 2 over 2^30 for the rounding of x, v and the bound itself.
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 raw_bound = _mm256_set1_ps(float(b.k) * 65025.f);
  int finite = 0xff, bounded = 0xff;
  for (int h = 0; h < 2; ++h) {
    const __m256 m = bp.multiplier[h], boa = bp.bias_over_ab[h];
    finite &= _mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(_mm256_sub_ps(m, m), _mm256_setzero_ps(), _CMP_EQ_OQ),
                                               _mm256_cmp_ps(_mm256_sub_ps(boa, boa), _mm256_setzero_ps(), _CMP_EQ_OQ)));
    const __m256 reach = _mm256_mul_ps(_mm256_add_ps(raw_bound, _mm256_and_ps(boa, abs_mask)), _mm256_and_ps(m, abs_mask));
    bounded &= _mm256_movemask_ps(_mm256_cmp_ps(reach, _mm256_set1_ps(float(1 << 29)), _CMP_LT_OQ));
  }
  bp.finite = finite == 0xff;
  bp.clamp_high = bounded != 0xff;
  return bp;
}

// The uint8 pipeline when every constant is finite (x * multiplier is never
// NaN): clamp(round(v) + zp, lo, 255) == clamp(round(min(v, 255 - zp)) + zp,
// lo, 255) since rounding (cvtps: half to even, like nearbyint) is monotone
// and 255 - zp is an integer, and below 2^30 cvtps is exact without the min;
// cvtps's out-of-range value (INT32_MIN), the int16 saturation of the packs
// and the uint8 saturation of the last pack all end at the lower bound. The
// zero point is added in saturating int16, ReLU is an int16 max.
inline __m128i requantize16_finite(const __m256i (&raw)[2], const BlockParams& bp, const OutputPipeline& p) {
  __m256i q[2];
  for (int h = 0; h < 2; ++h) {
    __m256 x = _mm256_cvtepi32_ps(raw[h]);
    if (p.bias) x = _mm256_add_ps(x, bp.bias_over_ab[h]);
    __m256 v = _mm256_mul_ps(x, bp.multiplier[h]);
    if (bp.clamp_high) v = _mm256_min_ps(v, _mm256_set1_ps(float(255 - p.c_zero_point)));
    q[h] = _mm256_cvtps_epi32(v);
  }
  const __m256i zp = _mm256_set1_epi16(int16_t(p.c_zero_point));
  __m256i w = _mm256_adds_epi16(_mm256_packs_epi32(q[0], q[1]), zp);
  if (p.relu) w = _mm256_max_epi16(w, zp);
  w = _mm256_permute4x64_epi64(w, 0xD8);
  return _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

inline __m256i requantize8(__m256i raw, const BlockParams& bp, int h, const OutputPipeline& p) {
  __m256 x = _mm256_cvtepi32_ps(raw);
  if (p.bias) x = _mm256_add_ps(x, bp.bias_over_ab[h]);
  __m256 q = _mm256_round_ps(_mm256_mul_ps(x, bp.multiplier[h]), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 zp = _mm256_set1_ps(float(p.c_zero_point));
  q = _mm256_add_ps(q, zp);
  q = _mm256_blendv_ps(zp, q, _mm256_cmp_ps(q, q, _CMP_ORD_Q));  // NaN -> zero point
  const __m256 lo = p.relu ? zp : _mm256_setzero_ps();
  q = _mm256_min_ps(_mm256_max_ps(q, lo), _mm256_set1_ps(255.f));
  return _mm256_cvtps_epi32(q);
}

template <typename T>
inline void store_elements(T* dst, const T* src, size_t count) {
  std::memcpy(dst, src, count * sizeof(T));
}

void store_block(const __m256i (&acc)[2], int32_t row_sum, const BlockParams& bp, const OutputPipeline& p, void* c,
                 size_t index) {
  __m256i raw[2];
  for (int h = 0; h < 2; ++h) {
    raw[h] = _mm256_sub_epi32(acc[h], bp.offset[h]);
    if (row_sum != 0) raw[h] = _mm256_sub_epi32(raw[h], _mm256_mullo_epi32(bp.b_zp[h], _mm256_set1_epi32(row_sum)));
  }
  const bool full = bp.count == 16;
  switch (p.output) {
    case GemmOutput::kUint8: {
      __m128i q8;
      if (bp.finite) {
        q8 = requantize16_finite(raw, bp, p);
      } else {
        const __m256i q16 = _mm256_permute4x64_epi64(
            _mm256_packs_epi32(requantize8(raw[0], bp, 0, p), requantize8(raw[1], bp, 1, p)), 0xD8);
        q8 = _mm_packus_epi16(_mm256_castsi256_si128(q16), _mm256_extracti128_si256(q16, 1));
      }
      uint8_t* dst = static_cast<uint8_t*>(c) + index;
      if (full) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), q8);
      } else {
        alignas(16) uint8_t tmp[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tmp), q8);
        store_elements(dst, tmp, bp.count);
      }
      break;
    }
    case GemmOutput::kDequantized:
    case GemmOutput::kFloat: {
      alignas(32) float tmp[16];
      for (int h = 0; h < 2; ++h) {
        __m256 y;
        if (p.output == GemmOutput::kDequantized) {
          const __m256i q = _mm256_sub_epi32(requantize8(raw[h], bp, h, p), _mm256_set1_epi32(p.c_zero_point));
          y = _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(p.c_scale));
        } else {
          y = _mm256_mul_ps(_mm256_cvtepi32_ps(raw[h]), bp.ab[h]);
          if (p.bias) y = _mm256_add_ps(y, bp.bias[h]);
          if (p.relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
        }
        _mm256_store_ps(tmp + 8 * h, y);
      }
      store_elements(static_cast<float*>(c) + index, tmp, bp.count);
      break;
    }
    case GemmOutput::kInt32: {
      alignas(32) int32_t tmp[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), raw[0]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 8), raw[1]);
      store_elements(static_cast<int32_t*>(c) + index, tmp, bp.count);
      break;
    }
  }
}

// Rows [row, row + MR) of the segments (a plain GEMM passes one segment, K's
// whole groups, and its k for the tail).
template <int MR>
void tile(const GemmSegment* segments, size_t count, size_t row, size_t k, size_t lda, const int8_t* b,
          const int32_t* row_sums, const BlockParams& bp, const OutputPipeline& p, void* c, size_t ldc, size_t n0) {
  __m256i pairs[MR * 4];
  accumulate<MR>(segments, count, row * lda, lda, b, pairs);
  if (k % kGemmGroupK) accumulate_tail<MR>(k, segments[0].a + row * lda, lda, b, pairs);
  for (int r = 0; r < MR; ++r) {
    // Pair sums [c0 c0' c1 c1' | c2 c2' c3 c3'] of quarters q, q+1 -> 8 columns in order.
    const __m256i sums[2] = {
        _mm256_permute4x64_epi64(_mm256_hadd_epi32(pairs[r * 4 + 0], pairs[r * 4 + 1]), 0xD8),
        _mm256_permute4x64_epi64(_mm256_hadd_epi32(pairs[r * 4 + 2], pairs[r * 4 + 3]), 0xD8)};
    store_block(sums, row_sums[r], bp, p, c, r * ldc + n0);
  }
}

// Both entry points: blocks of 16 columns, tiles of up to kMaxRows rows; `k` is
// the reduction of the pipeline's offsets and, when not a multiple of 4, of the
// tail group after the (single) segment.
void gemm_blocks(size_t m, size_t n_begin, size_t n_end, const GemmSegment* segments, size_t count, size_t k,
                 size_t lda, const PackedB& b, const OutputPipeline& out, void* c, size_t ldc) {
  if (m == 0 || n_begin >= n_end) return;
  const bool need_row_sums = gemm_has_b_zero_points(out, n_begin, n_end);
  const size_t bytes = gemm_output_bytes(out.output);
  for (size_t n0 = n_begin; n0 < n_end; n0 += kGemmBlockN) {
    const BlockParams bp = block_params(out, b, n0, std::min(kGemmBlockN, n_end - n0));
    const int8_t* block = b.data + (n0 / kGemmBlockN) * b.block_stride;
    for (size_t i = 0; i < m; i += kMaxRows) {
      const int mr = int(std::min<size_t>(kMaxRows, m - i));
      int32_t row_sums[kMaxRows] = {0, 0};
      if (need_row_sums)
        for (int r = 0; r < mr; ++r) {
          row_sums[r] = gemm_segments_row_sum(segments, count, lda, i + r);
          if (k % kGemmGroupK) row_sums[r] += gemm_row_sum(segments[0].a + (i + r) * lda + segments[0].k, k % kGemmGroupK);
        }
      void* c_rows = static_cast<char*>(c) + i * ldc * bytes;
      if (mr == 2) tile<2>(segments, count, i, k, lda, block, row_sums, bp, out, c_rows, ldc, n0);
      else tile<1>(segments, count, i, k, lda, block, row_sums, bp, out, c_rows, ldc, n0);
    }
  }
}

void gemm_u8s8(size_t m, size_t n_begin, size_t n_end, const uint8_t* a, size_t lda, const PackedB& b,
               const OutputPipeline& out, void* c, size_t ldc) {
  const GemmSegment whole{a, 0, b.k / kGemmGroupK * kGemmGroupK};
  gemm_blocks(m, n_begin, n_end, &whole, 1, b.k, lda, b, out, c, ldc);
}

void gemm_u8s8_segments(size_t m, size_t n_begin, size_t n_end, const GemmSegment* segments, size_t count,
                        size_t lda, const PackedB& b, const OutputPipeline& out, void* c, size_t ldc) {
  gemm_blocks(m, n_begin, n_end, segments, count, b.k / kGemmGroupK * kGemmGroupK, lda, b, out, c, ldc);
}

// Float16 weights: 4 rows x 16 columns (two vectors of 8), one fma chain per output.
template <int MR>
void f16_tile(size_t k, const float* a, size_t lda, const uint16_t* b, const float* bias, bool relu, float* c,
              size_t ldc, size_t n0, size_t count) {
  __m256 acc[MR * 2];
#pragma GCC unroll 8
  for (int i = 0; i < MR * 2; ++i) acc[i] = _mm256_setzero_ps();
  for (size_t kk = 0; kk < k; ++kk) {
    const __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kk * 16)));
    const __m256 b1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kk * 16 + 8)));
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_set1_ps(a[r * lda + kk]);
      acc[r * 2] = _mm256_fmadd_ps(av, b0, acc[r * 2]);
      acc[r * 2 + 1] = _mm256_fmadd_ps(av, b1, acc[r * 2 + 1]);
    }
  }
  alignas(32) float bias_v[16] = {};
  if (bias)
    for (size_t j = 0; j < count; ++j) bias_v[j] = bias[n0 + j];
  for (int r = 0; r < MR; ++r) {
    alignas(32) float tmp[16];
    for (int h = 0; h < 2; ++h) {
      __m256 y = acc[r * 2 + h];
      if (bias) y = _mm256_add_ps(y, _mm256_load_ps(bias_v + 8 * h));
      if (relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
      _mm256_store_ps(tmp + 8 * h, y);
    }
    store_elements(c + r * ldc + n0, tmp, count);
  }
}

void gemm_f32f16(size_t m, size_t n_begin, size_t n_end, const float* a, size_t lda, const uint16_t* packed_b,
                 size_t k, const float* bias, bool relu, float* c, size_t ldc) {
  constexpr size_t kRows = 4;
  for (size_t n0 = n_begin; n0 < n_end; n0 += kGemmBlockN) {
    const uint16_t* block = packed_b + (n0 / kGemmBlockN) * k * kGemmBlockN;
    const size_t count = std::min(kGemmBlockN, n_end - n0);
    for (size_t i = 0; i < m; i += kRows) {
      const size_t mr = std::min(kRows, m - i);
      const float* a_rows = a + i * lda;
      float* c_rows = c + i * ldc;
      if (mr == 4) f16_tile<4>(k, a_rows, lda, block, bias, relu, c_rows, ldc, n0, count);
      else if (mr == 3) f16_tile<3>(k, a_rows, lda, block, bias, relu, c_rows, ldc, n0, count);
      else if (mr == 2) f16_tile<2>(k, a_rows, lda, block, bias, relu, c_rows, ldc, n0, count);
      else f16_tile<1>(k, a_rows, lda, block, bias, relu, c_rows, ldc, n0, count);
    }
  }
}

// Two accumulator pairs hide the min/max latency and the lanes are reduced in
// registers (short rows, e.g. per-row quantization, are dominated by the
// reduction). min/max of a NaN keep the other operand, so NaN is tracked
// apart; without NaN the extremes are the same values in any order.
void float_range(size_t n, const float* x, float* min, float* max) {
  __m256 vmin0 = _mm256_set1_ps(x[0]), vmax0 = vmin0, vmin1 = vmin0, vmax1 = vmin0;
  __m256 unordered = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    vmin0 = _mm256_min_ps(v0, vmin0);
    vmax0 = _mm256_max_ps(v0, vmax0);
    vmin1 = _mm256_min_ps(v1, vmin1);
    vmax1 = _mm256_max_ps(v1, vmax1);
    unordered = _mm256_or_ps(unordered, _mm256_or_ps(_mm256_cmp_ps(v0, v0, _CMP_UNORD_Q),
                                                     _mm256_cmp_ps(v1, v1, _CMP_UNORD_Q)));
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    vmin0 = _mm256_min_ps(v, vmin0);
    vmax0 = _mm256_max_ps(v, vmax0);
    unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  __m256 vmin = _mm256_min_ps(vmin0, vmin1), vmax = _mm256_max_ps(vmax0, vmax1);
  __m128 lo = _mm_min_ps(_mm256_castps256_ps128(vmin), _mm256_extractf128_ps(vmin, 1));
  __m128 hi = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  lo = _mm_min_ps(lo, _mm_movehl_ps(lo, lo));
  hi = _mm_max_ps(hi, _mm_movehl_ps(hi, hi));
  lo = _mm_min_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  hi = _mm_max_ss(hi, _mm_shuffle_ps(hi, hi, 1));
  float lo_value = _mm_cvtss_f32(lo), hi_value = _mm_cvtss_f32(hi);
  bool nan = _mm256_movemask_ps(unordered) != 0;
  for (; i < n; ++i) float_range_step(x[i], &lo_value, &hi_value, &nan);
  *min = lo_value;
  *max = hi_value;
  float_range_finish(nan, min, max);
}

}  // namespace

const GemmUkernels kGemmAvx2 = {gemm_u8s8, gemm_f32f16, float_range, true, gemm_u8s8_segments};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
