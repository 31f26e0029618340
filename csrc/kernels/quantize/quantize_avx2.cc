// AVX2 path: 32 elements per iteration, tails through the scalar definition.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include <type_traits>

#include "quantize/quantize.h"
#include "quantize/quantize_scalar.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx2,fma,f16c")

namespace qtorch {
namespace kernels {
namespace {

template <typename Q>
struct Limits;
template <>
struct Limits<uint8_t> {
  static constexpr float lo = 0.f, hi = 255.f;
};
template <>
struct Limits<int8_t> {
  static constexpr float lo = -128.f, hi = 127.f;
};

// round(fma(x, inv_scale, zp)) if Fused, else round(x * inv_scale + zp) in two
// steps (quantize.h). Clamped to Q's range, NaN -> zp; an exact integer in float.
template <typename Q, bool Fused>
inline __m256i quantize8(__m256 x, __m256 inv_scale, __m256 zp) {
  const __m256 sum = Fused ? _mm256_fmadd_ps(x, inv_scale, zp) : _mm256_add_ps(_mm256_mul_ps(x, inv_scale), zp);
  __m256 r = _mm256_round_ps(sum, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  r = _mm256_blendv_ps(zp, r, _mm256_cmp_ps(r, r, _CMP_ORD_Q));
  r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(Limits<Q>::lo)), _mm256_set1_ps(Limits<Q>::hi));
  return _mm256_cvtps_epi32(r);
}

// Packs four vectors of in-range int32 into 32 bytes, in order.
template <typename Q>
inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i bytes = std::is_same<Q, uint8_t>::value ? _mm256_packus_epi16(ab, cd) : _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

template <typename Q>
inline __m256i load8_epi32(const Q* p) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return std::is_same<Q, uint8_t>::value ? _mm256_cvtepu8_epi32(v) : _mm256_cvtepi8_epi32(v);
}

template <typename Q, bool Fused>
void quantize(size_t n, const float* x, Q* y, float inv_scale, int32_t zero_point) {
  const __m256 vinv = _mm256_set1_ps(inv_scale), vzp = _mm256_set1_ps(float(zero_point));
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i a = quantize8<Q, Fused>(_mm256_loadu_ps(x + i), vinv, vzp);
    const __m256i b = quantize8<Q, Fused>(_mm256_loadu_ps(x + i + 8), vinv, vzp);
    const __m256i c = quantize8<Q, Fused>(_mm256_loadu_ps(x + i + 16), vinv, vzp);
    const __m256i d = quantize8<Q, Fused>(_mm256_loadu_ps(x + i + 24), vinv, vzp);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), pack32<Q>(a, b, c, d));
  }
  for (; i < n; ++i) {
    y[i] = Fused ? quantize_value<Q>(x[i], inv_scale, zero_point) : quantize_channel_value<Q>(x[i], inv_scale, zero_point);
  }
}

template <typename Q>
void quantize_channels(size_t channels, const float* x, Q* y, const float* inv_scales,
                       const int32_t* zero_points) {
  size_t c = 0;
  auto q8 = [&](size_t at) {
    const __m256 zp = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(zero_points + at)));
    return quantize8<Q, false>(_mm256_loadu_ps(x + at), _mm256_loadu_ps(inv_scales + at), zp);
  };
  for (; c + 32 <= channels; c += 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + c), pack32<Q>(q8(c), q8(c + 8), q8(c + 16), q8(c + 24)));
  }
  for (; c < channels; ++c) y[c] = quantize_channel_value<Q>(x[c], inv_scales[c], zero_points[c]);
}

template <typename Q>
void dequantize(size_t n, const Q* x, float* y, float scale, int32_t zero_point) {
  const __m256 vscale = _mm256_set1_ps(scale);
  const __m256i vzp = _mm256_set1_epi32(zero_point);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i q = _mm256_sub_epi32(load8_epi32(x + i), vzp);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(q), vscale));
  }
  for (; i < n; ++i) y[i] = dequantize_value(x[i], scale, zero_point);
}

template <typename Q>
void dequantize_channels(size_t channels, const Q* x, float* y, const float* scales,
                         const int32_t* zero_points) {
  size_t c = 0;
  for (; c + 8 <= channels; c += 8) {
    const __m256i zp = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zero_points + c));
    const __m256i q = _mm256_sub_epi32(load8_epi32(x + c), zp);
    _mm256_storeu_ps(y + c, _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_loadu_ps(scales + c)));
  }
  for (; c < channels; ++c) y[c] = dequantize_value(x[c], scales[c], zero_points[c]);
}

template <typename In, typename Out>
void requantize(size_t n, const In* x, Out* y, int32_t zp_in, float multiplier, int32_t zp_out) {
  const __m256 vm = _mm256_set1_ps(multiplier), vzp_out = _mm256_set1_ps(float(zp_out));
  const __m256i vzp_in = _mm256_set1_epi32(zp_in);
  auto r8 = [&](size_t at) {
    const __m256 centred = _mm256_cvtepi32_ps(_mm256_sub_epi32(load8_epi32(x + at), vzp_in));
    return quantize8<Out, false>(centred, vm, vzp_out);
  };
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), pack32<Out>(r8(i), r8(i + 8), r8(i + 16), r8(i + 24)));
  }
  for (; i < n; ++i) y[i] = requantize_value<Out>(int32_t(x[i]) - zp_in, multiplier, zp_out);
}

}  // namespace

const QuantizeUkernels kQuantizeAvx2 = {
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
