// AVX-512 path (serves the avx512vnni and amx ISAs): 16 lanes, masked tails.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include <type_traits>

#include "quantize/quantize.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")

namespace qtorch {
namespace kernels {
namespace {

inline __mmask16 tail_mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// round(fma(x, inv_scale, zp)) if Fused, else round(x * inv_scale + zp) in two
// steps (quantize.h), clamped to Q's range, as int32. NaN inputs become +0 first
// (one fixupimm), so they land on zp; the clamp precedes the conversion because
// out-of-range floats convert to INT_MIN.
template <typename Q, bool Fused>
inline __m512i quantize16(__m512 x, __m512 inv_scale, __m512 zp) {
  constexpr float lo = std::is_same<Q, uint8_t>::value ? 0.f : -128.f;
  constexpr float hi = std::is_same<Q, uint8_t>::value ? 255.f : 127.f;
  constexpr int kNanToPlusZero = 0x88;  // fixupimm responses for QNaN and SNaN: +0
  x = _mm512_fixupimm_ps(x, x, _mm512_set1_epi32(kNanToPlusZero), 0);
  __m512 sum = Fused ? _mm512_fmadd_ps(x, inv_scale, zp) : _mm512_add_ps(_mm512_mul_ps(x, inv_scale), zp);
  sum = _mm512_min_ps(_mm512_max_ps(sum, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
  return _mm512_cvt_roundps_epi32(sum, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

// Four vectors of in-range int32 to 64 bytes, in order: the pack instructions
// interleave 128-bit lanes, the permute restores element order.
template <typename Q>
inline __m512i pack64(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i ab = _mm512_packs_epi32(a, b), cd = _mm512_packs_epi32(c, d);
  const __m512i bytes = std::is_same<Q, uint8_t>::value ? _mm512_packus_epi16(ab, cd) : _mm512_packs_epi16(ab, cd);
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), bytes);
}

template <typename Q>
inline __m512i load16_epi32(const Q* p, __mmask16 m) {
  const __m128i v = _mm_maskz_loadu_epi8(m, p);
  return std::is_same<Q, uint8_t>::value ? _mm512_cvtepu8_epi32(v) : _mm512_cvtepi8_epi32(v);
}

// Values are already clamped to Q's range, so truncation is exact.
template <typename Q>
inline void store16(Q* p, __m512i v, __mmask16 m) {
  _mm_mask_storeu_epi8(p, m, _mm512_cvtepi32_epi8(v));
}

template <typename Q, bool Fused>
void quantize(size_t n, const float* x, Q* y, float inv_scale, int32_t zero_point) {
  const __m512 vinv = _mm512_set1_ps(inv_scale), vzp = _mm512_set1_ps(float(zero_point));
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i a = quantize16<Q, Fused>(_mm512_loadu_ps(x + i), vinv, vzp);
    const __m512i b = quantize16<Q, Fused>(_mm512_loadu_ps(x + i + 16), vinv, vzp);
    const __m512i c = quantize16<Q, Fused>(_mm512_loadu_ps(x + i + 32), vinv, vzp);
    const __m512i d = quantize16<Q, Fused>(_mm512_loadu_ps(x + i + 48), vinv, vzp);
    _mm512_storeu_si512(y + i, pack64<Q>(a, b, c, d));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : tail_mask(n - i);
    store16<Q>(y + i, quantize16<Q, Fused>(_mm512_maskz_loadu_ps(m, x + i), vinv, vzp), m);
  }
}

template <typename Q>
void quantize_channels(size_t channels, const float* x, Q* y, const float* inv_scales,
                       const int32_t* zero_points) {
  for (size_t c = 0; c < channels; c += 16) {
    const __mmask16 m = channels - c >= 16 ? __mmask16(0xffff) : tail_mask(channels - c);
    const __m512 zp = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, zero_points + c));
    const __m512 inv = _mm512_maskz_loadu_ps(m, inv_scales + c);
    store16<Q>(y + c, quantize16<Q, false>(_mm512_maskz_loadu_ps(m, x + c), inv, zp), m);
  }
}

// Memory-bound: the main loop uses plain (unmasked) loads and stores, 64 values
// a step; masked stores cost more on some cores (AMD Zen 4) and serve only the tail.
template <typename Q>
void dequantize(size_t n, const Q* x, float* y, float scale, int32_t zero_point) {
  const __m512 vscale = _mm512_set1_ps(scale);
  const __m512i vzp = _mm512_set1_epi32(zero_point);
  const auto widen = [](__m128i v) {
    return std::is_same<Q, uint8_t>::value ? _mm512_cvtepu8_epi32(v) : _mm512_cvtepi8_epi32(v);
  };
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (size_t j = 0; j < 64; j += 16) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + j));
      const __m512i q = _mm512_sub_epi32(widen(bytes), vzp);
      _mm512_storeu_ps(y + i + j, _mm512_mul_ps(_mm512_cvtepi32_ps(q), vscale));
    }
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : tail_mask(n - i);
    const __m512i q = _mm512_sub_epi32(load16_epi32(x + i, m), vzp);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(q), vscale));
  }
}

template <typename Q>
void dequantize_channels(size_t channels, const Q* x, float* y, const float* scales,
                         const int32_t* zero_points) {
  for (size_t c = 0; c < channels; c += 16) {
    const __mmask16 m = channels - c >= 16 ? __mmask16(0xffff) : tail_mask(channels - c);
    const __m512i q = _mm512_sub_epi32(load16_epi32(x + c, m), _mm512_maskz_loadu_epi32(m, zero_points + c));
    _mm512_mask_storeu_ps(y + c, m, _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_maskz_loadu_ps(m, scales + c)));
  }
}

template <typename In, typename Out>
void requantize(size_t n, const In* x, Out* y, int32_t zp_in, float multiplier, int32_t zp_out) {
  const __m512 vm = _mm512_set1_ps(multiplier), vzp_out = _mm512_set1_ps(float(zp_out));
  const __m512i vzp_in = _mm512_set1_epi32(zp_in);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : tail_mask(n - i);
    const __m512 centred = _mm512_cvtepi32_ps(_mm512_sub_epi32(load16_epi32(x + i, m), vzp_in));
    store16<Out>(y + i, quantize16<Out, false>(centred, vm, vzp_out), m);
  }
}

}  // namespace

const QuantizeUkernels kQuantizeAvx512 = {
    quantize<uint8_t, true>,
    quantize<int8_t, true>,
    quantize<uint8_t, false>,
    quantize<int8_t, false>,
    kQuantizeScalar.quantize_channel_s32,
    quantize_channels<uint8_t>,
    quantize_channels<int8_t>,
    kQuantizeScalar.quantize_channels_s32,
    dequantize<uint8_t>,
    dequantize<int8_t>,
    kQuantizeScalar.dequantize_s32,
    dequantize_channels<uint8_t>,
    dequantize_channels<int8_t>,
    kQuantizeScalar.dequantize_channels_s32,
    requantize<uint8_t, uint8_t>,
    requantize<uint8_t, int8_t>,
    requantize<int8_t, uint8_t>,
    requantize<int8_t, int8_t>,
};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
