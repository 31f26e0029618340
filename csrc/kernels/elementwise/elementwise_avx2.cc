// AVX2 path: 32 elements per iteration, tails through the scalar definition.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include "elementwise/elementwise.h"
#include "elementwise/elementwise_scalar.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx2,fma,f16c")

namespace qtorch {
namespace kernels {
namespace {

inline __m256i load8_epi32(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// finish_u8 on 8 lanes: round half to even, add the zero point, clamp.
struct Finish8 {
  __m256 zero_point, lo, hi;
  Finish8(int32_t zp, uint8_t lo_, uint8_t hi_)
      : zero_point(_mm256_set1_ps(float(zp))), lo(_mm256_set1_ps(lo_)), hi(_mm256_set1_ps(hi_)) {}
  __m256i operator()(__m256 scaled) const {
    __m256 q = _mm256_round_ps(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm256_add_ps(q, zero_point);
    return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(q, lo), hi));
  }
};

// Four vectors of int32 in 0..255 to 32 bytes, in order.
inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

void add(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* y, const AddParams& p) {
  const __m256i za = _mm256_set1_epi32(p.a_zero_point), zb = _mm256_set1_epi32(p.b_zero_point);
  const __m256 ma = _mm256_set1_ps(p.a_multiplier), mb = _mm256_set1_ps(p.b_multiplier);
  const Finish8 finish(p.out_zero_point, p.out_min, p.out_max);
  auto add8 = [&](size_t at) {
    const __m256 fa = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8_epi32(a + at), za)), ma);
    const __m256 fb = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8_epi32(b + at), zb)), mb);
    return finish(_mm256_add_ps(fa, fb));
  };
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), pack32(add8(i), add8(i + 8), add8(i + 16), add8(i + 24)));
  }
  for (; i < n; ++i) y[i] = add_value(a[i], b[i], p);
}

void mul(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* y, const MulParams& p) {
  const __m256i za = _mm256_set1_epi32(p.a_zero_point), zb = _mm256_set1_epi32(p.b_zero_point);
  const __m256 m = _mm256_set1_ps(p.multiplier);
  const Finish8 finish(p.out_zero_point, p.out_min, p.out_max);
  auto mul8 = [&](size_t at) {
    const __m256i product = _mm256_mullo_epi32(_mm256_sub_epi32(load8_epi32(a + at), za),
                                               _mm256_sub_epi32(load8_epi32(b + at), zb));
    return finish(_mm256_mul_ps(_mm256_cvtepi32_ps(product), m));
  };
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), pack32(mul8(i), mul8(i + 8), mul8(i + 16), mul8(i + 24)));
  }
  for (; i < n; ++i) y[i] = mul_value(a[i], b[i], p);
}

void clamp(size_t n, const uint8_t* x, uint8_t* y, uint8_t lo, uint8_t hi) {
  const __m256i vlo = _mm256_set1_epi8(static_cast<char>(lo)), vhi = _mm256_set1_epi8(static_cast<char>(hi));
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    for (size_t j = 0; j < 128; j += 32) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + j));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i + j), _mm256_min_epu8(_mm256_max_epu8(v, vlo), vhi));
    }
  }
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm256_min_epu8(_mm256_max_epu8(v, vlo), vhi));
  }
  for (; i < n; ++i) y[i] = clamp_value(x[i], lo, hi);
}

// Table lookup with 16 byte shuffles (XNNPACK's x8-lut scheme). pshufb yields
// table[idx & 15], or 0 when idx's top bit is set; subtracting 16 per step makes
// exactly the 16-entry slices at or below x's slice contribute, and the slices
// are pre-XORed so that those contributions telescope to the wanted entry.
// The first 8 steps wrap (bringing 128..255 into range), the rest saturate.
void lut(size_t n, const uint8_t* x, uint8_t* y, const uint8_t* table) {
  __m256i raw[16], t[16];
  for (int k = 0; k < 16; ++k) {
    raw[k] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * k)));
  }
  t[0] = raw[0];
  for (int k = 1; k < 8; ++k) t[k] = _mm256_xor_si256(raw[k - 1], raw[k]);
  for (int k = 8; k < 16; ++k) t[k] = _mm256_xor_si256(_mm256_xor_si256(raw[k - 1], raw[k]), t[k - 8]);
  const __m256i sixteen = _mm256_set1_epi8(16);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    __m256i out = _mm256_shuffle_epi8(t[0], v);
    for (int k = 1; k < 9; ++k) {
      v = _mm256_sub_epi8(v, sixteen);
      out = _mm256_xor_si256(out, _mm256_shuffle_epi8(t[k], v));
    }
    for (int k = 9; k < 16; ++k) {
      v = _mm256_subs_epi8(v, sixteen);
      out = _mm256_xor_si256(out, _mm256_shuffle_epi8(t[k], v));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), out);
  }
  for (; i < n; ++i) y[i] = table[x[i]];
}

}  // namespace

const ElementwiseUkernels kElementwiseAvx2 = {add, mul, clamp, lut};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
