// AVX-512 path (serves the avx512vnni and amx ISAs): 64 channels per step,
// masked tails.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include "pool/pool.h"
#include "pool/pool_scalar.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")

namespace qtorch {
namespace kernels {
namespace {

inline __mmask16 mask16(size_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u); }
inline __mmask64 mask64(size_t left) { return left >= 64 ? ~__mmask64(0) : ((__mmask64(1) << left) - 1u); }
inline __m512i load16_epi32(const uint8_t* p, __mmask16 m) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)); }

// finish_u8(scaled, zero_point, 0, 255) on 16 lanes, stored as bytes.
inline void finish16(uint8_t* p, __mmask16 m, __m512 scaled, __m512 zero_point) {
  __m512 q = _mm512_roundscale_ps(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  q = _mm512_add_ps(q, zero_point);
  q = _mm512_min_ps(_mm512_max_ps(q, _mm512_setzero_ps()), _mm512_set1_ps(255.f));
  _mm_mask_storeu_epi8(p, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(q)));
}

void max_pixel(size_t channels, size_t count, const uint8_t* const* rows, size_t off, uint8_t* y) {
  size_t c = 0;
  for (; c + 128 <= channels; c += 128) {
    __m512i m0 = _mm512_loadu_si512(rows[0] + off + c), m1 = _mm512_loadu_si512(rows[0] + off + c + 64);
    for (size_t k = 1; k < count; ++k) {
      m0 = _mm512_max_epu8(m0, _mm512_loadu_si512(rows[k] + off + c));
      m1 = _mm512_max_epu8(m1, _mm512_loadu_si512(rows[k] + off + c + 64));
    }
    _mm512_storeu_si512(y + c, m0);
    _mm512_storeu_si512(y + c + 64, m1);
  }
  for (; c < channels; c += 64) {
    const __mmask64 mask = mask64(channels - c);
    __m512i m = _mm512_maskz_loadu_epi8(mask, rows[0] + off + c);
    for (size_t k = 1; k < count; ++k) m = _mm512_max_epu8(m, _mm512_maskz_loadu_epi8(mask, rows[k] + off + c));
    _mm512_mask_storeu_epi8(y + c, mask, m);
  }
}

// The passes of separable 2x2 and 3x3 pooling (two or three rows a window) with the
// taps unrolled: the generic tap loop costs more instructions than the loads it does.
template <size_t kCount>
void max_rows_fixed(size_t outputs, size_t channels, const uint8_t* const* rows, size_t row_step, uint8_t* y,
                    size_t y_step) {
  const __mmask64 tail = mask64(channels % 64);
  for (size_t o = 0; o < outputs; ++o) {
    const uint8_t* r[kCount];
    for (size_t k = 0; k < kCount; ++k) r[k] = rows[k] + o * row_step;
    uint8_t* out = y + o * y_step;
    size_t c = 0;
    for (; c + 64 <= channels; c += 64) {
      __m512i m = _mm512_loadu_si512(r[0] + c);
      for (size_t k = 1; k < kCount; ++k) m = _mm512_max_epu8(m, _mm512_loadu_si512(r[k] + c));
      _mm512_storeu_si512(out + c, m);
    }
    if (c < channels) {
      __m512i m = _mm512_maskz_loadu_epi8(tail, r[0] + c);
      for (size_t k = 1; k < kCount; ++k) m = _mm512_max_epu8(m, _mm512_maskz_loadu_epi8(tail, r[k] + c));
      _mm512_mask_storeu_epi8(out + c, tail, m);
    }
  }
}

// count <= kAvgPoolInt32Taps: the sums and the bias fit int32 lanes.
void avg_pixel(size_t channels, size_t count, const uint8_t* const* rows, size_t off, uint8_t* y,
               const AvgPoolParams& p) {
  const __m512i bias = _mm512_set1_epi32(static_cast<int32_t>(p.bias));
  const __m512 mult = _mm512_set1_ps(p.multiplier), zp = _mm512_set1_ps(float(p.zero_point));
  for (size_t c = 0; c < channels; c += 64) {
    if (channels - c <= 16) {  // one vector of channels left (or in all): one accumulator
      const __mmask16 m = mask16(channels - c);
      __m512i a = _mm512_setzero_si512();
      for (size_t k = 0; k < count; ++k) a = _mm512_add_epi32(a, load16_epi32(rows[k] + off + c, m));
      finish16(y + c, m, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a, bias)), mult), zp);
      break;
    }
    const __mmask16 m0 = mask16(channels - c), m1 = mask16(channels > c + 16 ? channels - c - 16 : 0);
    const __mmask16 m2 = mask16(channels > c + 32 ? channels - c - 32 : 0);
    const __mmask16 m3 = mask16(channels > c + 48 ? channels - c - 48 : 0);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t k = 0; k < count; ++k) {
      const uint8_t* r = rows[k] + off + c;
      a0 = _mm512_add_epi32(a0, load16_epi32(r, m0));
      a1 = _mm512_add_epi32(a1, load16_epi32(r + 16, m1));
      a2 = _mm512_add_epi32(a2, load16_epi32(r + 32, m2));
      a3 = _mm512_add_epi32(a3, load16_epi32(r + 48, m3));
    }
    auto scaled = [&](__m512i acc) { return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, bias)), mult); };
    finish16(y + c, m0, scaled(a0), zp);
    finish16(y + c + 16, m1, scaled(a1), zp);
    finish16(y + c + 32, m2, scaled(a2), zp);
    finish16(y + c + 48, m3, scaled(a3), zp);
  }
}

// One-channel planes (NCHW) with unit or stride-2 windows: vectors run along
// the outputs instead (stride 2 keeps the even bytes of 16-bit lanes).
void max_plane(size_t outputs, size_t count, const uint8_t* const* rows, size_t step, uint8_t* y) {
  for (size_t o = 0; o < outputs; o += 32) {
    const size_t n = outputs - o < 32 ? outputs - o : 32;
    // Bytes 0 .. step * (n - 1): never past the last element a window reads.
    const size_t span = step * (n - 1) + 1;
    const __mmask64 load_mask = span >= 64 ? ~__mmask64(0) : ((__mmask64(1) << span) - 1u);
    __m256i m = _mm256_setzero_si256();
    for (size_t k = 0; k < count; ++k) {
      const __m512i v = _mm512_maskz_loadu_epi8(load_mask, rows[k] + o * step);
      m = _mm256_max_epu8(m, step == 1 ? _mm512_castsi512_si256(v) : _mm512_cvtepi16_epi8(v));
    }
    _mm256_mask_storeu_epi8(y + o, static_cast<__mmask32>(n >= 32 ? 0xffffffffu : ((1u << n) - 1u)), m);
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
  if (channels >= 16 && count == 2) return max_rows_fixed<2>(outputs, channels, rows, row_step, y, y_step);
  if (channels >= 16 && count == 3) return max_rows_fixed<3>(outputs, channels, rows, row_step, y, y_step);
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
  const __m512 h0 = _mm512_set1_ps(w[0]), h1 = _mm512_set1_ps(w[1]);
  const __m512 w0 = _mm512_set1_ps(w[2]), w1 = _mm512_set1_ps(w[3]);
  const __m512 zero = _mm512_setzero_ps();
  for (size_t c = 0; c < channels; c += 16) {
    const __mmask16 m = mask16(channels - c);
    auto f = [&](int r) { return _mm512_cvtepi32_ps(load16_epi32(rows[r] + c, m)); };
    const __m512 top = _mm512_add_ps(_mm512_mul_ps(w0, f(0)), _mm512_mul_ps(w1, f(1)));
    const __m512 bottom = _mm512_add_ps(_mm512_mul_ps(w0, f(2)), _mm512_mul_ps(w1, f(3)));
    finish16(y + c, m, _mm512_add_ps(_mm512_mul_ps(h0, top), _mm512_mul_ps(h1, bottom)), zero);
  }
}

// Two phases: within each 128-bit block a byte shuffle gathers the even bytes
// into the low 8 and the odd ones into the high 8; a qword permute then puts
// all even bytes in the low half and the odd ones in the high half. An even
// row of at least 64 bytes ends with an overlapping block (same bytes again),
// other tails are masked.
void deinterleave(size_t rows, size_t width, size_t phases, const uint8_t* x, size_t x_step, uint8_t* y, size_t y_step,
                  size_t phase_step) {
  if (phases != 2) {
    for (size_t r = 0; r < rows; ++r) deinterleave_tail(0, width, phases, x + r * x_step, y + r * y_step, phase_step);
    return;
  }
  const __m512i gather = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
  const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  const __m512i evens = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), odds = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
  auto split = [&](__m512i v) { return _mm512_permutexvar_epi64(order, _mm512_shuffle_epi8(v, gather)); };
  auto store = [](uint8_t* even, uint8_t* odd, __m512i v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(even), _mm512_castsi512_si256(v));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(odd), _mm512_extracti64x4_epi64(v, 1));
  };
  const size_t full = width / 64 * 64, tail = width - full;  // the same for every row
  const bool overlap_tail = tail > 0 && width >= 64 && width % 2 == 0;
  const __mmask64 load_mask = mask64(tail);
  const __mmask32 even_mask = static_cast<__mmask32>(mask64((tail + 1) / 2));
  const __mmask32 odd_mask = static_cast<__mmask32>(mask64(tail / 2));
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* src = x + r * x_step;
    uint8_t* even = y + r * y_step;
    uint8_t* odd = even + phase_step;
    size_t c = 0;
    for (; c + 128 <= full; c += 128) {  // two blocks: whole 64-byte stores
      const __m512i a = _mm512_shuffle_epi8(_mm512_loadu_si512(src + c), gather);
      const __m512i b = _mm512_shuffle_epi8(_mm512_loadu_si512(src + c + 64), gather);
      _mm512_storeu_si512(even + c / 2, _mm512_permutex2var_epi64(a, evens, b));
      _mm512_storeu_si512(odd + c / 2, _mm512_permutex2var_epi64(a, odds, b));
    }
    if (c < full) store(even + c / 2, odd + c / 2, split(_mm512_loadu_si512(src + c)));
    if (overlap_tail) {
      const size_t c = width - 64;
      store(even + c / 2, odd + c / 2, split(_mm512_loadu_si512(src + c)));
    } else if (tail > 0) {
      const __m512i v = split(_mm512_maskz_loadu_epi8(load_mask, src + full));
      _mm256_mask_storeu_epi8(even + full / 2, even_mask, _mm512_castsi512_si256(v));
      _mm256_mask_storeu_epi8(odd + full / 2, odd_mask, _mm512_extracti64x4_epi64(v, 1));
    }
  }
}

// Byte sums by vpsadbw against zero: eight 64-bit partial sums per run, the
// last block masked. Sixteen runs at a time (runs of at most kAvgPoolInt32Taps
// bytes, whose sums and bias fit int32): their partial sums are added together
// in a transpose tree into one vector of 16 int32 sums, finished like avg_pool.
// Longer runs one at a time, on their exact 64-bit sums.
inline __m512i run_partial_sums(const uint8_t* src, size_t length) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i acc = zero;
  size_t k = 0;
  for (; k + 64 <= length; k += 64) acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_loadu_si512(src + k), zero));
  if (k < length) acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(mask64(length - k), src + k), zero));
  return acc;
}

void avg_pool_runs(size_t runs, size_t length, const uint8_t* x, size_t x_step, uint8_t* y, size_t y_step,
                   const AvgPoolParams& p) {
  const __m512i bias = _mm512_set1_epi32(static_cast<int32_t>(p.bias));  // used only when it fits
  const __m512 mult = _mm512_set1_ps(p.multiplier), zp = _mm512_set1_ps(float(p.zero_point));
  size_t i = 0;
  for (; i + 16 <= runs && length <= kAvgPoolInt32Taps; i += 16) {
    // Pairs of runs into one vector: run 2k's partial sums in the low 32 bits of each
    // 64-bit lane, run 2k + 1's in the high ones (a run's total fits in 32 bits).
    __m512i t[8];
    for (int k = 0; k < 8; ++k) {
      const __m512i a = run_partial_sums(x + (i + 2 * k) * x_step, length);
      const __m512i b = run_partial_sums(x + (i + 2 * k + 1) * x_step, length);
      t[k] = _mm512_or_si512(a, _mm512_slli_epi64(b, 32));
    }
    // Sum each t[k] across its 8 lanes, 8 vectors at once: within 128-bit blocks, then blocks.
    __m512i u[4];
    for (int k = 0; k < 4; ++k) {
      u[k] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * k], t[2 * k + 1]), _mm512_unpackhi_epi64(t[2 * k], t[2 * k + 1]));
    }
    __m512i v[2];
    for (int k = 0; k < 2; ++k) {
      v[k] = _mm512_add_epi32(_mm512_shuffle_i64x2(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_i64x2(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    }
    // Block m now holds the sums of runs 4m .. 4m + 3, in order.
    const __m512i sums = _mm512_add_epi32(_mm512_shuffle_i64x2(v[0], v[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                          _mm512_shuffle_i64x2(v[0], v[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sums, bias)), mult);
    if (y_step == 1) {
      finish16(y + i, 0xffff, scaled, zp);
    } else {
      uint8_t out[16];
      finish16(out, 0xffff, scaled, zp);
      for (int k = 0; k < 16; ++k) y[(i + k) * y_step] = out[k];
    }
  }
  for (; i < runs; ++i) {
    y[i * y_step] = avg_pool_finish(_mm512_reduce_add_epi64(run_partial_sums(x + i * x_step, length)), p);
  }
}

}  // namespace

const PoolUkernels kPoolAvx512 = {max_pool, avg_pool, bilinear, deinterleave, avg_pool_runs};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
