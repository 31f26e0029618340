// NEON path, two kernels chosen at run time:
// - with the dot-product extension (sdot): activations xor 0x80 become int8
//   (a - 128), sdot multiplies 4 of them by a column's 4 packed weights into an
//   int32 lane, and 128 * colsum[n] restores sum a * b exactly;
// - without it (e.g. Cortex-A72): vld4 de-interleaves a packed [16][4] group
//   into 4 k-vectors of 16 columns, widened to int16 and multiplied by each
//   activation with widening multiply-accumulates (vmlal_lane), also exact.
// Register tile: 4 rows x 16 columns for both.
#include "common/isa.h"
#if QTORCH_ARCH_ARM64  // compiled into every build; empty off its architecture

#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "gemm/gemm.h"
#include "gemm/gemm_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

constexpr int kMaxRows = 4;
constexpr size_t kGroupBytes = kGemmBlockN * kGemmGroupK;  // 64

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline uint32_t load_tail(const uint8_t* p, size_t bytes) {
  uint32_t v = 0;
  std::memcpy(&v, p, bytes);
  return v;
}

// The 4 activation bytes of group g of row r (zero padded past K).
inline uint32_t group_bytes(const uint8_t* row, size_t g, size_t k) {
  const size_t first = g * kGemmGroupK;
  return first + kGemmGroupK <= k ? load_u32(row + first) : load_tail(row + first, k - first);
}

// acc[r * 4 + q]: row r, columns 4q..4q+3.
template <int MR>
__attribute__((target("arch=armv8.2-a+dotprod"), noinline)) void accumulate_dot(size_t k, const uint8_t* a, size_t lda,
                                                                  const int8_t* b, int32x4_t* out) {
  int32x4_t acc[MR * 4];
#pragma GCC unroll 16
  for (int i = 0; i < MR * 4; ++i) acc[i] = vdupq_n_s32(0);
  const size_t groups = (k + kGemmGroupK - 1) / kGemmGroupK;
  const size_t full = k / kGemmGroupK;
  for (size_t g = 0; g < groups; ++g) {
    const int8_t* group = b + g * kGroupBytes;
    int8x16_t bq[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) bq[q] = vld1q_s8(group + 16 * q);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const uint32_t bytes = g < full ? load_u32(a + r * lda + g * kGemmGroupK) : group_bytes(a + r * lda, g, k);
      const int8x16_t av = vreinterpretq_s8_u32(vdupq_n_u32(bytes ^ 0x80808080u));
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) acc[r * 4 + q] = vdotq_s32(acc[r * 4 + q], bq[q], av);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR * 4; ++i) out[i] = acc[i];
}

template <int MR>
__attribute__((noinline)) void accumulate_widening(size_t k, const uint8_t* a, size_t lda, const int8_t* b,
                                                   int32x4_t* out) {
  int32x4_t acc[MR * 4];
#pragma GCC unroll 16
  for (int i = 0; i < MR * 4; ++i) acc[i] = vdupq_n_s32(0);
  const size_t groups = (k + kGemmGroupK - 1) / kGemmGroupK;
  for (size_t g = 0; g < groups; ++g) {
    const int8x16x4_t bk = vld4q_s8(b + g * kGroupBytes);  // bk.val[kk][j] = B[j][4g + kk]
    int16x8_t lo[4], hi[4];
#pragma GCC unroll 4
    for (int kk = 0; kk < 4; ++kk) {
      lo[kk] = vmovl_s8(vget_low_s8(bk.val[kk]));
      hi[kk] = vmovl_high_s8(bk.val[kk]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const uint32_t bytes = group_bytes(a + r * lda, g, k);
      const int16x4_t av = vget_low_s16(vreinterpretq_s16_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(bytes)))));
      int32x4_t* c = acc + r * 4;
      c[0] = vmlal_lane_s16(c[0], vget_low_s16(lo[0]), av, 0);
      c[1] = vmlal_high_lane_s16(c[1], lo[0], av, 0);
      c[2] = vmlal_lane_s16(c[2], vget_low_s16(hi[0]), av, 0);
      c[3] = vmlal_high_lane_s16(c[3], hi[0], av, 0);
      c[0] = vmlal_lane_s16(c[0], vget_low_s16(lo[1]), av, 1);
      c[1] = vmlal_high_lane_s16(c[1], lo[1], av, 1);
      c[2] = vmlal_lane_s16(c[2], vget_low_s16(hi[1]), av, 1);
      c[3] = vmlal_high_lane_s16(c[3], hi[1], av, 1);
      c[0] = vmlal_lane_s16(c[0], vget_low_s16(lo[2]), av, 2);
      c[1] = vmlal_high_lane_s16(c[1], lo[2], av, 2);
      c[2] = vmlal_lane_s16(c[2], vget_low_s16(hi[2]), av, 2);
      c[3] = vmlal_high_lane_s16(c[3], hi[2], av, 2);
      c[0] = vmlal_lane_s16(c[0], vget_low_s16(lo[3]), av, 3);
      c[1] = vmlal_high_lane_s16(c[1], lo[3], av, 3);
      c[2] = vmlal_lane_s16(c[2], vget_low_s16(hi[3]), av, 3);
      c[3] = vmlal_high_lane_s16(c[3], hi[3], av, 3);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR * 4; ++i) out[i] = acc[i];
}

// Per-block pipeline constants (see gemm_channel in gemm_scalar.h), 4 x 4 lanes.
struct BlockParams {
  int32x4_t offset[4];  // a_zp * colsum - k * a_zp * b_zp   (wrapping int32)
  int32x4_t col_sum_128[4];  // 128 * colsum: undoes the signed-activation trick of sdot
  int32x4_t b_zp[4];
  float32x4_t ab[4], multiplier[4], bias[4], bias_over_ab[4];
  size_t count;
};

BlockParams block_params(const OutputPipeline& p, const PackedB& b, size_t n0, size_t count) {
  int32_t colsum[16] = {}, bzp[16] = {};
  float bscale[16], bias[16] = {};
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
  const int32x4_t a_zp = vdupq_n_s32(p.a_zero_point);
  const int32x4_t k_azp = vdupq_n_s32(int32_t(uint32_t(b.k) * uint32_t(p.a_zero_point)));
  for (int q = 0; q < 4; ++q) {
    const int32x4_t cs = vld1q_s32(colsum + 4 * q);
    bp.b_zp[q] = vld1q_s32(bzp + 4 * q);
    bp.offset[q] = vsubq_s32(vmulq_s32(a_zp, cs), vmulq_s32(k_azp, bp.b_zp[q]));
    bp.col_sum_128[q] = vshlq_n_s32(cs, 7);
    bp.ab[q] = vmulq_f32(vdupq_n_f32(p.a_scale), vld1q_f32(bscale + 4 * q));
    bp.multiplier[q] = vdivq_f32(bp.ab[q], vdupq_n_f32(p.c_scale));
    bp.bias[q] = vld1q_f32(bias + 4 * q);
    bp.bias_over_ab[q] = vdivq_f32(bp.bias[q], bp.ab[q]);
  }
  return bp;
}

inline int32x4_t requantize4(int32x4_t raw, const BlockParams& bp, int q, const OutputPipeline& p) {
  float32x4_t x = vcvtq_f32_s32(raw);
  if (p.bias) x = vaddq_f32(x, bp.bias_over_ab[q]);
  const float32x4_t zp = vdupq_n_f32(float(p.c_zero_point));
  float32x4_t y = vaddq_f32(vrndnq_f32(vmulq_f32(x, bp.multiplier[q])), zp);
  y = vbslq_f32(vceqq_f32(y, y), y, zp);  // NaN -> zero point
  const float32x4_t lo = p.relu ? zp : vdupq_n_f32(0.f);
  y = vminq_f32(vmaxq_f32(y, lo), vdupq_n_f32(255.f));
  return vcvtq_s32_f32(y);
}

void store_block(const int32x4_t* acc, bool signed_activations, int32_t row_sum, const BlockParams& bp,
                 const OutputPipeline& p, void* c, size_t index) {
  int32x4_t raw[4];
  for (int q = 0; q < 4; ++q) {
    int32x4_t v = acc[q];
    if (signed_activations) v = vaddq_s32(v, bp.col_sum_128[q]);
    v = vsubq_s32(v, bp.offset[q]);
    raw[q] = vsubq_s32(v, vmulq_s32(bp.b_zp[q], vdupq_n_s32(row_sum)));
  }
  switch (p.output) {
    case GemmOutput::kUint8: {
      int16x8_t h0 = vcombine_s16(vmovn_s32(requantize4(raw[0], bp, 0, p)), vmovn_s32(requantize4(raw[1], bp, 1, p)));
      int16x8_t h1 = vcombine_s16(vmovn_s32(requantize4(raw[2], bp, 2, p)), vmovn_s32(requantize4(raw[3], bp, 3, p)));
      const uint8x16_t q8 = vcombine_u8(vqmovun_s16(h0), vqmovun_s16(h1));
      uint8_t tmp[16];
      vst1q_u8(tmp, q8);
      std::memcpy(static_cast<uint8_t*>(c) + index, tmp, bp.count);
      break;
    }
    case GemmOutput::kDequantized:
    case GemmOutput::kFloat: {
      float tmp[16];
      for (int q = 0; q < 4; ++q) {
        float32x4_t y;
        if (p.output == GemmOutput::kDequantized) {
          const int32x4_t v = vsubq_s32(requantize4(raw[q], bp, q, p), vdupq_n_s32(p.c_zero_point));
          y = vmulq_f32(vcvtq_f32_s32(v), vdupq_n_f32(p.c_scale));
        } else {
          y = vmulq_f32(vcvtq_f32_s32(raw[q]), bp.ab[q]);
          if (p.bias) y = vaddq_f32(y, bp.bias[q]);
          if (p.relu) y = vbslq_f32(vcgtq_f32(y, vdupq_n_f32(0.f)), y, vdupq_n_f32(0.f));
        }
        vst1q_f32(tmp + 4 * q, y);
      }
      std::memcpy(static_cast<float*>(c) + index, tmp, bp.count * sizeof(float));
      break;
    }
    case GemmOutput::kInt32: {
      int32_t tmp[16];
      for (int q = 0; q < 4; ++q) vst1q_s32(tmp + 4 * q, raw[q]);
      std::memcpy(static_cast<int32_t*>(c) + index, tmp, bp.count * sizeof(int32_t));
      break;
    }
  }
}

template <int MR>
void tile(bool dot, size_t k, const uint8_t* a, size_t lda, const int8_t* b, const int32_t* row_sums,
          const BlockParams& bp, const OutputPipeline& p, void* c, size_t ldc, size_t n0) {
  int32x4_t acc[MR * 4];
  if (dot) accumulate_dot<MR>(k, a, lda, b, acc);
  else accumulate_widening<MR>(k, a, lda, b, acc);
  for (int r = 0; r < MR; ++r) store_block(acc + r * 4, dot, row_sums[r], bp, p, c, r * ldc + n0);
}

void gemm_u8s8(size_t m, size_t n_begin, size_t n_end, const uint8_t* a, size_t lda, const PackedB& b,
               const OutputPipeline& out, void* c, size_t ldc) {
  if (m == 0 || n_begin >= n_end) return;
  const bool dot = neon_has_dotprod();
  const size_t k = b.k;
  const size_t block_stride = b.block_stride;
  const bool need_row_sums = gemm_has_b_zero_points(out, n_begin, n_end);
  const size_t bytes = gemm_output_bytes(out.output);
  for (size_t n0 = n_begin; n0 < n_end; n0 += kGemmBlockN) {
    const BlockParams bp = block_params(out, b, n0, std::min(kGemmBlockN, n_end - n0));
    const int8_t* block = b.data + (n0 / kGemmBlockN) * block_stride;
    for (size_t i = 0; i < m; i += kMaxRows) {
      const int mr = int(std::min<size_t>(kMaxRows, m - i));
      int32_t row_sums[kMaxRows] = {0, 0, 0, 0};
      if (need_row_sums)
        for (int r = 0; r < mr; ++r) row_sums[r] = gemm_row_sum(a + (i + r) * lda, k);
      void* c_rows = static_cast<char*>(c) + i * ldc * bytes;
      const uint8_t* a_rows = a + i * lda;
      switch (mr) {
        case 4: tile<4>(dot, k, a_rows, lda, block, row_sums, bp, out, c_rows, ldc, n0); break;
        case 3: tile<3>(dot, k, a_rows, lda, block, row_sums, bp, out, c_rows, ldc, n0); break;
        case 2: tile<2>(dot, k, a_rows, lda, block, row_sums, bp, out, c_rows, ldc, n0); break;
        default: tile<1>(dot, k, a_rows, lda, block, row_sums, bp, out, c_rows, ldc, n0); break;
      }
    }
  }
}

// Float16 weights: 4 rows x 16 columns (four vectors of 4), one fma chain per output.
template <int MR>
void f16_tile(size_t k, const float* a, size_t lda, const uint16_t* b, const float* bias, bool relu, float* c,
              size_t ldc, size_t n0, size_t count) {
  float32x4_t acc[MR * 4];
#pragma GCC unroll 16
  for (int i = 0; i < MR * 4; ++i) acc[i] = vdupq_n_f32(0.f);
  for (size_t kk = 0; kk < k; ++kk) {
    const float16x8_t h0 = vreinterpretq_f16_u16(vld1q_u16(b + kk * 16));
    const float16x8_t h1 = vreinterpretq_f16_u16(vld1q_u16(b + kk * 16 + 8));
    const float32x4_t bv[4] = {vcvt_f32_f16(vget_low_f16(h0)), vcvt_high_f32_f16(h0), vcvt_f32_f16(vget_low_f16(h1)),
                               vcvt_high_f32_f16(h1)};
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const float32x4_t av = vdupq_n_f32(a[r * lda + kk]);
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) acc[r * 4 + q] = vfmaq_f32(acc[r * 4 + q], av, bv[q]);
    }
  }
  float bias_v[16] = {};
  if (bias)
    for (size_t j = 0; j < count; ++j) bias_v[j] = bias[n0 + j];
  for (int r = 0; r < MR; ++r) {
    float tmp[16];
    for (int q = 0; q < 4; ++q) {
      float32x4_t y = acc[r * 4 + q];
      if (bias) y = vaddq_f32(y, vld1q_f32(bias_v + 4 * q));
      if (relu) y = vbslq_f32(vcgtq_f32(y, vdupq_n_f32(0.f)), y, vdupq_n_f32(0.f));
      vst1q_f32(tmp + 4 * q, y);
    }
    std::memcpy(c + r * ldc + n0, tmp, count * sizeof(float));
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
// reduction). NaN lanes are caught by `ordered`; without NaN the extremes are
// the same values in any order.
void float_range(size_t n, const float* x, float* min, float* max) {
  float32x4_t vmin0 = vdupq_n_f32(x[0]), vmax0 = vmin0, vmin1 = vmin0, vmax1 = vmin0;
  uint32x4_t ordered = vdupq_n_u32(~0u);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float32x4_t v0 = vld1q_f32(x + i), v1 = vld1q_f32(x + i + 4);
    vmin0 = vminq_f32(v0, vmin0);
    vmax0 = vmaxq_f32(v0, vmax0);
    vmin1 = vminq_f32(v1, vmin1);
    vmax1 = vmaxq_f32(v1, vmax1);
    ordered = vandq_u32(ordered, vandq_u32(vceqq_f32(v0, v0), vceqq_f32(v1, v1)));
  }
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    vmin0 = vminq_f32(v, vmin0);
    vmax0 = vmaxq_f32(v, vmax0);
    ordered = vandq_u32(ordered, vceqq_f32(v, v));
  }
  float lo = vminvq_f32(vminq_f32(vmin0, vmin1)), hi = vmaxvq_f32(vmaxq_f32(vmax0, vmax1));
  bool nan = vminvq_u32(ordered) == 0;
  for (; i < n; ++i) float_range_step(x[i], &lo, &hi, &nan);
  *min = lo;
  *max = hi;
  float_range_finish(nan, min, max);
}

}  // namespace

const GemmUkernels kGemmNeon = {gemm_u8s8, gemm_f32f16, float_range, false, nullptr};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_ARM64
