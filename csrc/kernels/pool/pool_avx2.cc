// AVX2 path: 32 channels per max step, 8 per float step; tails through the
// scalar definition.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include "pool/pool.h"
#include "pool/pool_scalar.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx2,fma,f16c")

namespace qtorch {
namespace kernels {
namespace {

inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m256i load8_epi32(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// finish_u8(scaled, zero_point, 0, 255) on 8 lanes.
inline __m256i finish8(__m256 scaled, __m256 zero_point) {
  __m256 q = _mm256_round_ps(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  q = _mm256_add_ps(q, zero_point);
  return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(q, _mm256_setzero_ps()), _mm256_set1_ps(255.f)));
}

// Four vectors of int32 in 0..255 to 32 bytes, in order.
inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// 8 int32 in 0..255 to 8 bytes.
inline void store8(uint8_t* p, __m256i v) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(w, w));
}

void max_pixel(size_t channels, size_t count, const uint8_t* const* rows, size_t off, uint8_t* y) {
  size_t c = 0;
  for (; c + 64 <= channels; c += 64) {
    __m256i m0 = load32(rows[0] + off + c), m1 = load32(rows[0] + off + c + 32);
    for (size_t k = 1; k < count; ++k) {
      m0 = _mm256_max_epu8(m0, load32(rows[k] + off + c));
      m1 = _mm256_max_epu8(m1, load32(rows[k] + off + c + 32));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + c), m0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + c + 32), m1);
  }
  auto max32 = [&](size_t at) {
    __m256i m = load32(rows[0] + off + at);
    for (size_t k = 1; k < count; ++k) m = _mm256_max_epu8(m, load32(rows[k] + off + at));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + at), m);
  };
  for (; c + 32 <= channels; c += 32) max32(c);
  // A tail of a wide row: one vector ending at the last channel (recomputing a few is harmless).
  if (c < channels && channels >= 32) return max32(channels - 32);
  if (channels - c >= 16) {  // 16 to 31 channels: one or two overlapping 16-byte vectors
    auto max16 = [&](size_t at) {
      const auto load16 = [&](size_t k) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[k] + off + at)); };
      __m128i m = load16(0);
      for (size_t k = 1; k < count; ++k) m = _mm_max_epu8(m, load16(k));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + at), m);
    };
    max16(c);
    return max16(channels - 16);
  }
  for (; c < channels; ++c) y[c] = max_pool_value(count, rows, off + c);
}

// count <= kAvgPoolInt32Taps: the sums and the bias fit int32 lanes.
void avg_pixel(size_t channels, size_t count, const uint8_t* const* rows, size_t off, uint8_t* y,
               const AvgPoolParams& p) {
  const __m256i bias = _mm256_set1_epi32(static_cast<int32_t>(p.bias));
  const __m256 mult = _mm256_set1_ps(p.multiplier), zp = _mm256_set1_ps(float(p.zero_point));
  auto finish = [&](__m256i acc) { return finish8(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc, bias)), mult), zp); };
  size_t c = 0;
  for (; c + 32 <= channels; c += 32) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t k = 0; k < count; ++k) {
      const uint8_t* r = rows[k] + off + c;
      a0 = _mm256_add_epi32(a0, load8_epi32(r));
      a1 = _mm256_add_epi32(a1, load8_epi32(r + 8));
      a2 = _mm256_add_epi32(a2, load8_epi32(r + 16));
      a3 = _mm256_add_epi32(a3, load8_epi32(r + 24));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + c), pack32(finish(a0), finish(a1), finish(a2), finish(a3)));
  }
  auto avg8 = [&](size_t at) {
    __m256i a = _mm256_setzero_si256();
    for (size_t k = 0; k < count; ++k) a = _mm256_add_epi32(a, load8_epi32(rows[k] + off + at));
    store8(y + at, finish(a));
  };
  for (; c + 8 <= channels; c += 8) avg8(c);
  // A tail of a wide row: one vector ending at the last channel (recomputing a few is harmless).
  if (c < channels && channels >= 8) return avg8(channels - 8);
  for (; c < channels; ++c) y[c] = avg_pool_value(count, rows, off + c, p);
}

// One-channel planes (NCHW) with unit or stride-2 windows: vectors run along
// the outputs instead (stride 2 keeps the even bytes). A full vector reads one
// byte past its last output's element, so the last block takes the scalar tail.
void max_plane(size_t outputs, size_t count, const uint8_t* const* rows, size_t step, uint8_t* y) {
  size_t o = 0;
  if (step == 1) {
    for (; o + 32 <= outputs; o += 32) {
      __m256i m = load32(rows[0] + o);
      for (size_t k = 1; k < count; ++k) m = _mm256_max_epu8(m, load32(rows[k] + o));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + o), m);
    }
  } else {
    const __m256i low_bytes = _mm256_set1_epi16(0x00ff);
    for (; o + 16 < outputs; o += 16) {
      __m128i m = _mm_setzero_si128();
      for (size_t k = 0; k < count; ++k) {
        const __m256i even = _mm256_and_si256(load32(rows[k] + 2 * o), low_bytes);
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi16(even, even), _MM_SHUFFLE(3, 1, 2, 0));
        m = _mm_max_epu8(m, _mm256_castsi256_si128(packed));
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + o), m);
    }
  }
  for (; o < outputs; ++o) y[o] = max_pool_value(count, rows, o * step);
}

// The passes of separable 2x2 and 3x3 pooling (two or three rows a window) with the
// taps unrolled: the generic tap loop costs more instructions than the loads it does.
// A row's tail is one vector ending at its last channel (y never overlaps the rows).
template <size_t kCount>
void max_rows_fixed(size_t outputs, size_t channels, const uint8_t* const* rows, size_t row_step, uint8_t* y,
                    size_t y_step) {
  for (size_t o = 0; o < outputs; ++o) {
    const uint8_t* r[kCount];
    for (size_t k = 0; k < kCount; ++k) r[k] = rows[k] + o * row_step;
    uint8_t* out = y + o * y_step;
    auto max_at = [&](size_t c) {
      __m256i m = load32(r[0] + c);
      for (size_t k = 1; k < kCount; ++k) m = _mm256_max_epu8(m, load32(r[k] + c));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), m);
    };
    size_t c = 0;
    for (; c + 32 <= channels; c += 32) max_at(c);
    if (c < channels) max_at(channels - 32);
  }
}

// Output pixels one after another; NCHW planes (one channel) go through the
// scalar definition, which is as fast as a one-lane vector there.
void max_pool(size_t outputs, size_t channels, size_t count, const uint8_t* const* rows, size_t row_step,
              uint8_t* y, size_t y_step) {
  if (channels == 1 && y_step == 1 && (row_step == 1 || row_step == 2) && count > 0) {
    max_plane(outputs, count, rows, row_step, y);
    return;
  }
  if (channels >= 32 && count == 2) return max_rows_fixed<2>(outputs, channels, rows, row_step, y, y_step);
  if (channels >= 32 && count == 3) return max_rows_fixed<3>(outputs, channels, rows, row_step, y, y_step);
  for (size_t o = 0; o < outputs; ++o) {
    if (channels == 1) y[o * y_step] = max_pool_value(count, rows, o * row_step);
    else max_pixel(channels, count, rows, o * row_step, y + o * y_step);
  }
}

void avg_pool(size_t outputs, size_t channels, size_t count, const uint8_t* const* rows, size_t row_step,
              uint8_t* y, size_t y_step, const AvgPoolParams& p) {
  if (count > kAvgPoolInt32Taps) return avg_pool_wide(outputs, channels, count, rows, row_step, y, y_step, p);
  for (size_t o = 0; o < outputs; ++o) {
    if (channels == 1) y[o * y_step] = avg_pool_value(count, rows, o * row_step, p);
    else avg_pixel(channels, count, rows, o * row_step, y + o * y_step, p);
  }
}

void bilinear(size_t channels, const uint8_t* const* rows, const float* w, uint8_t* y) {
  const __m256 h0 = _mm256_set1_ps(w[0]), h1 = _mm256_set1_ps(w[1]);
  const __m256 w0 = _mm256_set1_ps(w[2]), w1 = _mm256_set1_ps(w[3]);
  const __m256 zero = _mm256_setzero_ps();
  auto interp8 = [&](size_t at) {
    auto f = [&](int r) { return _mm256_cvtepi32_ps(load8_epi32(rows[r] + at)); };
    const __m256 top = _mm256_add_ps(_mm256_mul_ps(w0, f(0)), _mm256_mul_ps(w1, f(1)));
    const __m256 bottom = _mm256_add_ps(_mm256_mul_ps(w0, f(2)), _mm256_mul_ps(w1, f(3)));
    return finish8(_mm256_add_ps(_mm256_mul_ps(h0, top), _mm256_mul_ps(h1, bottom)), zero);
  };
  size_t c = 0;
  for (; c + 32 <= channels; c += 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + c), pack32(interp8(c), interp8(c + 8), interp8(c + 16), interp8(c + 24)));
  }
  for (; c + 8 <= channels; c += 8) store8(y + c, interp8(c));
  for (; c < channels; ++c) y[c] = bilinear_value(rows, w, c);
}

// Two phases: 16-bit lanes keep the even bytes low and the odd bytes high;
// packing two vectors interleaves their 128-bit lanes, the permute restores order.
void deinterleave(size_t rows, size_t width, size_t phases, const uint8_t* x, size_t x_step, uint8_t* y, size_t y_step,
                  size_t phase_step) {
  if (phases != 2) {
    for (size_t r = 0; r < rows; ++r) deinterleave_tail(0, width, phases, x + r * x_step, y + r * y_step, phase_step);
    return;
  }
  const __m256i low_bytes = _mm256_set1_epi16(0x00ff);
  const __m128i low_bytes128 = _mm_set1_epi16(0x00ff);
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* src = x + r * x_step;
    uint8_t* even = y + r * y_step;
    uint8_t* odd = even + phase_step;
    size_t c = 0;
    for (; c + 64 <= width; c += 64) {
      const __m256i a = load32(src + c), b = load32(src + c + 32);
      const __m256i e = _mm256_packus_epi16(_mm256_and_si256(a, low_bytes), _mm256_and_si256(b, low_bytes));
      const __m256i o = _mm256_packus_epi16(_mm256_srli_epi16(a, 8), _mm256_srli_epi16(b, 8));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(even + c / 2), _mm256_permute4x64_epi64(e, _MM_SHUFFLE(3, 1, 2, 0)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(odd + c / 2), _mm256_permute4x64_epi64(o, _MM_SHUFFLE(3, 1, 2, 0)));
    }
    auto split32 = [&](size_t at) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + at));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + at + 16));
      const __m128i e = _mm_packus_epi16(_mm_and_si128(a, low_bytes128), _mm_and_si128(b, low_bytes128));
      const __m128i o = _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(even + at / 2), e);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(odd + at / 2), o);
    };
    for (; c + 32 <= width; c += 32) split32(c);
    // An even row ends with an overlapping block (same bytes again); odd ones byte by byte.
    if (c < width && width >= 32 && width % 2 == 0) split32(width - 32);
    else deinterleave_tail(c, width, 2, src, even, phase_step);
  }
}

// Byte sums by vpsadbw against zero (four 64-bit partial sums). The last partial
// block is the 32 bytes ending at the run's end with its already-summed bytes
// masked off, so nothing past the run is read; runs shorter than a vector go
// through the scalar definition.
void avg_pool_runs(size_t runs, size_t length, const uint8_t* x, size_t x_step, uint8_t* y, size_t y_step,
                   const AvgPoolParams& p) {
  alignas(64) static const uint8_t kKeepLast[64] = {0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
                                                    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
                                                    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0xff,
                                                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const __m256i zero = _mm256_setzero_si256();
  for (size_t i = 0; i < runs; ++i) {
    const uint8_t* src = x + i * x_step;
    if (length < 32) {
      y[i * y_step] = avg_pool_run(length, src, p);
      continue;
    }
    __m256i acc = zero;
    size_t k = 0;
    for (; k + 32 <= length; k += 32) acc = _mm256_add_epi64(acc, _mm256_sad_epu8(load32(src + k), zero));
    if (k < length) {  // keep the last length - k bytes of the final 32
      const __m256i last = _mm256_and_si256(load32(src + length - 32), load32(kKeepLast + (length - k)));
      acc = _mm256_add_epi64(acc, _mm256_sad_epu8(last, zero));
    }
    const __m128i half = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    const int64_t sum = _mm_cvtsi128_si64(half) + _mm_extract_epi64(half, 1);
    y[i * y_step] = avg_pool_finish(sum, p);
  }
}

}  // namespace

const PoolUkernels kPoolAvx2 = {max_pool, avg_pool, bilinear, deinterleave, avg_pool_runs};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
