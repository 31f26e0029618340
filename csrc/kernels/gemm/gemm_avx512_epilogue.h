// The AVX-512 output pipeline (see gemm.h), shared by the AVX512-VNNI and AMX
// paths: 16 output columns per vector, masked at the end of N. ISA code:
// include it only after a file's AVX-512 target pragma (and <immintrin.h>).
#pragma once

#include "gemm/gemm.h"
#include "gemm/gemm_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

constexpr size_t kGroupBytes = kGemmBlockN * kGemmGroupK;  // 64: one packed [16][4] group

inline __mmask16 lane_mask(size_t count) {
  return count >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << count) - 1u);
}

// Per-block pipeline constants (see gemm_channel in gemm_scalar.h), 16 lanes.
struct BlockParams {
  __m512i offset;  // a_zp * colsum - k * a_zp * b_zp   (wrapping int32)
  __m512i b_zp;
  __m512 ab, multiplier, bias, bias_over_ab;
  __mmask16 mask;
};

inline BlockParams block_params(const OutputPipeline& p, const PackedB& b, size_t n0, size_t count) {
  BlockParams bp;
  bp.mask = lane_mask(count);
  const __m512i colsum = _mm512_maskz_loadu_epi32(bp.mask, b.col_sums + n0);
  __m512 b_scale;
  if (p.b_per_channel) {
    b_scale = _mm512_maskz_loadu_ps(bp.mask, p.b_scales + n0);
    // Unused lanes get scale 1 so no division below sees a zero.
    b_scale = _mm512_mask_blend_ps(bp.mask, _mm512_set1_ps(1.f), b_scale);
    bp.b_zp = p.b_zero_points ? _mm512_maskz_loadu_epi32(bp.mask, p.b_zero_points + n0) : _mm512_setzero_si512();
  } else {
    b_scale = _mm512_set1_ps(p.b_scales[0]);
    bp.b_zp = _mm512_set1_epi32(p.b_zero_points ? p.b_zero_points[0] : 0);
  }
  const __m512i a_zp = _mm512_set1_epi32(p.a_zero_point);
  bp.offset = _mm512_sub_epi32(_mm512_mullo_epi32(a_zp, colsum),
                               _mm512_mullo_epi32(_mm512_set1_epi32(int32_t(uint32_t(b.k) * uint32_t(p.a_zero_point))),
                                                  bp.b_zp));
  bp.ab = _mm512_mul_ps(_mm512_set1_ps(p.a_scale), b_scale);
  bp.multiplier = _mm512_div_ps(bp.ab, _mm512_set1_ps(p.c_scale));
  bp.bias = p.bias ? _mm512_maskz_loadu_ps(bp.mask, p.bias + n0) : _mm512_setzero_ps();
  bp.bias_over_ab = _mm512_div_ps(bp.bias, bp.ab);
  return bp;
}

inline __m512i requantize16(__m512i raw, const BlockParams& bp, const OutputPipeline& p) {
  __m512 x = _mm512_cvtepi32_ps(raw);
  if (p.bias) x = _mm512_add_ps(x, bp.bias_over_ab);
  __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(x, bp.multiplier), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 zp = _mm512_set1_ps(float(p.c_zero_point));
  q = _mm512_add_ps(q, zp);
  q = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(q, q, _CMP_ORD_Q), zp, q);  // NaN -> zero point
  const __m512 lo = p.relu ? zp : _mm512_setzero_ps();
  q = _mm512_min_ps(_mm512_max_ps(q, lo), _mm512_set1_ps(255.f));
  return _mm512_cvtps_epi32(q);
}

// 16 floats to out; a whole, line-aligned vector with a non-temporal store if
// the pipeline asks for it (then the caller ends with an sfence).
inline void store_floats(const OutputPipeline& p, __mmask16 mask, float* out, __m512 y) {
  if (p.stream_float_output && mask == 0xffff && (reinterpret_cast<uintptr_t>(out) & 63) == 0) {
    _mm512_stream_ps(out, y);
  } else {
    _mm512_mask_storeu_ps(out, mask, y);
  }
}

inline void store_block(__m512i acc, int32_t row_sum, const BlockParams& bp, const OutputPipeline& p, void* c,
                        size_t index) {
  __m512i raw = _mm512_sub_epi32(acc, bp.offset);
  raw = _mm512_sub_epi32(raw, _mm512_mullo_epi32(bp.b_zp, _mm512_set1_epi32(row_sum)));
  switch (p.output) {
    case GemmOutput::kUint8:
      _mm_mask_storeu_epi8(static_cast<uint8_t*>(c) + index, bp.mask, _mm512_cvtepi32_epi8(requantize16(raw, bp, p)));
      break;
    case GemmOutput::kDequantized: {
      const __m512i q = _mm512_sub_epi32(requantize16(raw, bp, p), _mm512_set1_epi32(p.c_zero_point));
      store_floats(p, bp.mask, static_cast<float*>(c) + index,
                   _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(p.c_scale)));
      break;
    }
    case GemmOutput::kFloat: {
      __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(raw), bp.ab);
      if (p.bias) y = _mm512_add_ps(y, bp.bias);
      if (p.relu) y = _mm512_max_ps(y, _mm512_setzero_ps());
      store_floats(p, bp.mask, static_cast<float*>(c) + index, y);
      break;
    }
    case GemmOutput::kInt32:
      _mm512_mask_storeu_epi32(static_cast<int32_t*>(c) + index, bp.mask, raw);
      break;
  }
}

}  // namespace
}  // namespace kernels
}  // namespace qtorch
