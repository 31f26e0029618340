// AVX512-VNNI path (serves the avx512vnni and amx ISAs): 16 channels per
// vector, two taps per vpdpwssd, masked loads for the channel tail.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include "depthwise/depthwise.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")

namespace qtorch {
namespace kernels {
namespace {

inline __mmask16 channel_mask(size_t remaining) {
  return remaining >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << remaining) - 1u);
}

// Bytes a (tap t) and b (tap t+1) of 16 channels as 32 int16 [a0 b0 a1 b1 ...].
inline __m512i interleave_taps(__m128i a, __m128i b) {
  const __m256i pairs = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi8(a, b)),
                                                _mm_unpackhi_epi8(a, b), 1);
  return _mm512_cvtepu8_epi16(pairs);
}

inline __m128i requantize16(__m512i acc, const DepthwiseRequant& rq, size_t c, __mmask16 m, __m512 zp, __m512 lo,
                            __m512 hi) {
  __m512 v = _mm512_add_ps(_mm512_cvtepi32_ps(acc), _mm512_maskz_loadu_ps(m, rq.biases + c));
  v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, rq.multipliers + c));
  v = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zp);
  v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
  return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v));
}

// kTaps > 0 fixes the window size at compile time so the tap loop unrolls.
template <size_t kTaps>
void depthwise(size_t pixels, size_t channels, size_t runtime_taps, const uint8_t* const* indirection,
               const int16_t* packed, const DepthwiseRequant& rq, uint8_t* out, size_t out_stride) {
  const size_t taps = kTaps > 0 ? kTaps : runtime_taps;
  const size_t pairs = depthwise_tap_pairs(taps);
  const __m512 zp = _mm512_set1_ps(float(rq.out_zero_point));
  const __m512 lo = _mm512_set1_ps(float(rq.out_min)), hi = _mm512_set1_ps(float(rq.out_max));
  for (size_t p = 0; p < pixels; ++p) {
    const uint8_t* const* in = indirection + p * taps;
    uint8_t* y = out + p * out_stride;
    const int16_t* w = packed;
    for (size_t c = 0; c < channels; c += 16, w += pairs * 32) {
      const __mmask16 m = channel_mask(channels - c);
      __m512i acc = _mm512_maskz_loadu_epi32(m, rq.offsets + c);
      size_t t = 0;
      for (; t + 2 <= taps; t += 2) {
        const __m128i a = _mm_maskz_loadu_epi8(m, in[t] + c);
        const __m128i b = _mm_maskz_loadu_epi8(m, in[t + 1] + c);
        acc = _mm512_dpwssd_epi32(acc, interleave_taps(a, b), _mm512_loadu_si512(w + t * 16));
      }
      if (t < taps) {
        const __m128i a = _mm_maskz_loadu_epi8(m, in[t] + c);
        acc = _mm512_dpwssd_epi32(acc, interleave_taps(a, _mm_setzero_si128()), _mm512_loadu_si512(w + t * 16));
      }
      _mm_mask_storeu_epi8(y + c, m, requantize16(acc, rq, c, m, zp, lo, hi));
    }
  }
}

}  // namespace

const DepthwiseUkernels kDepthwiseAvx512Vnni = {depthwise<9>, depthwise<25>, depthwise<0>};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
