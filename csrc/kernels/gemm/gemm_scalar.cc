// Reference implementation: every other path must produce the same bits.
#include <cmath>

#include "gemm/gemm.h"
#include "gemm/gemm_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

void gemm_u8s8(size_t m, size_t n_begin, size_t n_end, const uint8_t* a, size_t lda, const PackedB& b,
               const OutputPipeline& out, void* c, size_t ldc) {
  const size_t k = b.k;
  const bool need_row_sums = gemm_has_b_zero_points(out, n_begin, n_end);
  for (size_t i = 0; i < m; ++i) {
    const uint8_t* row = a + i * lda;
    const int32_t row_sum = need_row_sums ? gemm_row_sum(row, k) : 0;
    for (size_t n = n_begin; n < n_end; ++n) {
      const int8_t* block = b.data + (n / kGemmBlockN) * b.block_stride;
      const size_t lane = n % kGemmBlockN;
      int32_t acc = 0;
      for (size_t kk = 0; kk < k; ++kk) {
        acc += int32_t(row[kk]) *
               int32_t(block[(kk / kGemmGroupK) * kGemmBlockN * kGemmGroupK + lane * kGemmGroupK + kk % kGemmGroupK]);
      }
      const GemmChannel ch = gemm_channel(out, n);
      gemm_store(gemm_centred(acc, out.a_zero_point, b.col_sums[n], ch.b_zp, row_sum, int32_t(k)), ch, out, c,
                 i * ldc + n);
    }
  }
}

void gemm_u8s8_segments(size_t m, size_t n_begin, size_t n_end, const GemmSegment* segments, size_t count,
                        size_t lda, const PackedB& b, const OutputPipeline& out, void* c, size_t ldc) {
  const bool need_row_sums = gemm_has_b_zero_points(out, n_begin, n_end);
  for (size_t i = 0; i < m; ++i) {
    const int32_t row_sum = need_row_sums ? gemm_segments_row_sum(segments, count, lda, i) : 0;
    for (size_t n = n_begin; n < n_end; ++n) {
      const int8_t* block = b.data + (n / kGemmBlockN) * b.block_stride;
      const size_t lane = n % kGemmBlockN;
      int32_t acc = 0;
      for (size_t s = 0; s < count; ++s) {
        const uint8_t* row = segments[s].a + i * lda;
        for (size_t kk = 0; kk < segments[s].k; ++kk) {
          const size_t k = segments[s].k0 + kk;
          acc += int32_t(row[kk]) *
                 int32_t(block[(k / kGemmGroupK) * kGemmBlockN * kGemmGroupK + lane * kGemmGroupK + k % kGemmGroupK]);
        }
      }
      const GemmChannel ch = gemm_channel(out, n);
      gemm_store(gemm_centred(acc, 0, b.col_sums[n], ch.b_zp, row_sum, int32_t(b.k)), ch, out, c, i * ldc + n);
    }
  }
}

void gemm_f32f16(size_t m, size_t n_begin, size_t n_end, const float* a, size_t lda, const uint16_t* packed_b,
                 size_t k, const float* bias, bool relu, float* c, size_t ldc) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t n = n_begin; n < n_end; ++n) {
      const uint16_t* column = packed_b + (n / kGemmBlockN) * k * kGemmBlockN + n % kGemmBlockN;
      float acc = 0.f;
      for (size_t kk = 0; kk < k; ++kk) acc = std::fma(a[i * lda + kk], half_to_float(column[kk * kGemmBlockN]), acc);
      c[i * ldc + n] = gemm_f16_finish(acc, bias, n, relu);
    }
  }
}

void float_range(size_t n, const float* x, float* min, float* max) {
  bool nan = false;
  *min = *max = x[0];
  for (size_t i = 0; i < n; ++i) float_range_step(x[i], min, max, &nan);
  float_range_finish(nan, min, max);
}

}  // namespace

const GemmUkernels kGemmScalar = {gemm_u8s8, gemm_f32f16, float_range, true, gemm_u8s8_segments};

}  // namespace kernels
}  // namespace qtorch
