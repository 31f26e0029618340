// AVX2 path: 16 channels at a time; their weights are widened once per call to
// int16 tap pairs (minus zero points), then each pixel takes two taps per
// pmaddwd into two vectors of 8 int32. Tail channels through the scalar
// definition.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include <vector>

#include "depthwise/depthwise.h"
#include "depthwise/depthwise_scalar.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx2,fma,f16c")

namespace qtorch {
namespace kernels {
namespace {

inline __m256 requantize8(__m256i acc, const DepthwiseRequant& rq, size_t c, __m256 zp, __m256 lo, __m256 hi) {
  __m256 v = _mm256_add_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(rq.biases + c));
  v = _mm256_mul_ps(v, _mm256_loadu_ps(rq.multipliers + c));
  v = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zp);
  return _mm256_min_ps(_mm256_max_ps(v, lo), hi);
}

// Two vectors of 8 in-range values to 16 bytes, in channel order.
inline __m128i pack16(__m256 a, __m256 b) {
  const __m256i words = _mm256_packs_epi32(_mm256_cvtps_epi32(a), _mm256_cvtps_epi32(b));  // a0-3 b0-3 a4-7 b4-7
  const __m256i ordered = _mm256_permute4x64_epi64(words, 0xd8);
  const __m256i bytes = _mm256_packus_epi16(ordered, ordered);
  return _mm_unpacklo_epi64(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256(bytes, 1));
}

template <size_t kTaps>
void depthwise(size_t pixels, size_t channels, size_t runtime_taps, const uint8_t* const* indirection,
               const int8_t* packed, const DepthwiseRequant& rq, uint8_t* out, size_t out_stride) {
  const size_t taps = kTaps > 0 ? kTaps : runtime_taps;
  const size_t full = channels / 16 * 16;
  const __m256 zp = _mm256_set1_ps(float(rq.out_zero_point));
  const __m256 lo = _mm256_set1_ps(float(rq.out_min)), hi = _mm256_set1_ps(float(rq.out_max));
  std::vector<int16_t> pairs((taps + 1) / 2 * 32);
  for (size_t c = 0; c < full; c += 16) {
    depthwise_widen_pairs16(packed, taps, c, rq.weight_zero_points, pairs.data());
    const __m256i* w = reinterpret_cast<const __m256i*>(pairs.data());
    const __m256i off0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rq.offsets + c));
    const __m256i off1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rq.offsets + c + 8));
    for (size_t p = 0; p < pixels; ++p) {
      const uint8_t* const* in = indirection + p * taps;
      __m256i acc0 = off0, acc1 = off1;
      for (size_t t = 0; t < taps; t += 2) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in[t] + c));
        const __m128i b = t + 1 < taps ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(in[t + 1] + c))
                                       : _mm_setzero_si128();
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b)),
                                                        _mm256_loadu_si256(w + t)));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b)),
                                                        _mm256_loadu_si256(w + t + 1)));
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + p * out_stride + c),
                       pack16(requantize8(acc0, rq, c, zp, lo, hi), requantize8(acc1, rq, c + 8, zp, lo, hi)));
    }
  }
  depthwise_channels(full, channels, pixels, taps, indirection, packed, rq, out, out_stride);
}

}  // namespace

const DepthwiseUkernels kDepthwiseAvx2 = {depthwise<9>, depthwise<25>, depthwise<0>};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
