// AVX-512 path (serves the avx512vnni and amx ISAs): 16 lanes per float
// vector, 64 bytes per integer vector, masked tails.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include "elementwise/elementwise.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")

namespace qtorch {
namespace kernels {
namespace {

inline __mmask16 mask16(size_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u); }
inline __mmask64 mask64(size_t left) { return left >= 64 ? ~__mmask64(0) : ((__mmask64(1) << left) - 1u); }

inline __m512i load16_epi32(const uint8_t* p, __mmask16 m) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)); }

// finish_u8 on 16 lanes: round half to even, add the zero point, clamp.
struct Finish16 {
  __m512 zero_point, lo, hi;
  Finish16(int32_t zp, uint8_t lo_, uint8_t hi_)
      : zero_point(_mm512_set1_ps(float(zp))), lo(_mm512_set1_ps(lo_)), hi(_mm512_set1_ps(hi_)) {}
  __m128i operator()(__m512 scaled) const {
    __m512 q = _mm512_roundscale_ps(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm512_add_ps(q, zero_point);
    // In range 0..255 after the clamp, so truncating to bytes is exact.
    return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(q, lo), hi)));
  }
};

void add(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* y, const AddParams& p) {
  const __m512i za = _mm512_set1_epi32(p.a_zero_point), zb = _mm512_set1_epi32(p.b_zero_point);
  const __m512 ma = _mm512_set1_ps(p.a_multiplier), mb = _mm512_set1_ps(p.b_multiplier);
  const Finish16 finish(p.out_zero_point, p.out_min, p.out_max);
  auto add16 = [&](size_t at, __mmask16 m) {
    const __m512 fa = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(load16_epi32(a + at, m), za)), ma);
    const __m512 fb = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(load16_epi32(b + at, m), zb)), mb);
    return finish(_mm512_add_ps(fa, fb));
  };
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (size_t j = 0; j < 64; j += 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i + j), add16(i + j, 0xffff));
    }
  }
  for (; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    _mm_mask_storeu_epi8(y + i, m, add16(i, m));
  }
}

void mul(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* y, const MulParams& p) {
  const __m512i za = _mm512_set1_epi32(p.a_zero_point), zb = _mm512_set1_epi32(p.b_zero_point);
  const __m512 mult = _mm512_set1_ps(p.multiplier);
  const Finish16 finish(p.out_zero_point, p.out_min, p.out_max);
  auto mul16 = [&](size_t at, __mmask16 m) {
    const __m512i product = _mm512_mullo_epi32(_mm512_sub_epi32(load16_epi32(a + at, m), za),
                                               _mm512_sub_epi32(load16_epi32(b + at, m), zb));
    return finish(_mm512_mul_ps(_mm512_cvtepi32_ps(product), mult));
  };
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (size_t j = 0; j < 64; j += 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i + j), mul16(i + j, 0xffff));
    }
  }
  for (; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    _mm_mask_storeu_epi8(y + i, m, mul16(i, m));
  }
}

void clamp(size_t n, const uint8_t* x, uint8_t* y, uint8_t lo, uint8_t hi) {
  const __m512i vlo = _mm512_set1_epi8(static_cast<char>(lo)), vhi = _mm512_set1_epi8(static_cast<char>(hi));
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    for (size_t j = 0; j < 256; j += 64) {
      const __m512i v = _mm512_loadu_si512(x + i + j);
      _mm512_storeu_si512(y + i + j, _mm512_min_epu8(_mm512_max_epu8(v, vlo), vhi));
    }
  }
  for (; i < n; i += 64) {
    const __mmask64 m = mask64(n - i);
    const __m512i v = _mm512_maskz_loadu_epi8(m, x + i);
    _mm512_mask_storeu_epi8(y + i, m, _mm512_min_epu8(_mm512_max_epu8(v, vlo), vhi));
  }
}

// Table lookup with 16 byte shuffles; see the AVX2 path for why it works.
void lut(size_t n, const uint8_t* x, uint8_t* y, const uint8_t* table) {
  __m512i raw[16], t[16];
  for (int k = 0; k < 16; ++k) {
    raw[k] = _mm512_maskz_broadcast_i32x4(0xffff, _mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * k)));
  }
  t[0] = raw[0];
  for (int k = 1; k < 8; ++k) t[k] = _mm512_xor_si512(raw[k - 1], raw[k]);
  for (int k = 8; k < 16; ++k) t[k] = _mm512_xor_si512(_mm512_xor_si512(raw[k - 1], raw[k]), t[k - 8]);
  const __m512i sixteen = _mm512_set1_epi8(16);
  for (size_t i = 0; i < n; i += 64) {
    const __mmask64 m = mask64(n - i);
    __m512i v = _mm512_maskz_loadu_epi8(m, x + i);
    __m512i out = _mm512_shuffle_epi8(t[0], v);
    for (int k = 1; k < 9; ++k) {
      v = _mm512_sub_epi8(v, sixteen);
      out = _mm512_xor_si512(out, _mm512_shuffle_epi8(t[k], v));
    }
    for (int k = 9; k < 16; ++k) {
      v = _mm512_subs_epi8(v, sixteen);
      out = _mm512_xor_si512(out, _mm512_shuffle_epi8(t[k], v));
    }
    _mm512_mask_storeu_epi8(y + i, m, out);
  }
}

}  // namespace

const ElementwiseUkernels kElementwiseAvx512 = {add, mul, clamp, lut};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
