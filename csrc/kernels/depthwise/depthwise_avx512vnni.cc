// AVX512-VNNI path (serves the avx512vnni and amx ISAs).
//
// One 64-byte load of a tap covers 64 channels, 4 per int32 lane. vpdpbusd
// against the tap's weights masked to byte b of each lane accumulates exactly
// x * w of the channel at byte 4j + b into lane j of accumulator b, with no
// shuffles on the input. After requantization, saturating packs and one
// in-lane byte shuffle put the four accumulators back into channel order.
// Blocks of at most 32 channels put two pixels in one vector (one per half),
// so narrow layers waste no lanes. Blocks whose weights have non-zero zero
// points (rare: weight observers are symmetric by default) also sum the inputs
// of each channel (vpdpbusd against a byte of ones in the same masked
// positions) and subtract zero point x input sum at the end: the same exact
// int32 as the definition's sum of x * (w - zp).
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "depthwise/depthwise.h"
#include "depthwise/depthwise_scalar.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")
// GCC 12 reports the intrinsics' own self-initialised _mm512_undefined_*()
// placeholders as uninitialised once the 25-tap zero-point kernel is inlined.
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace qtorch {
namespace kernels {
namespace {

// Per-block constants in accumulator order: index 16 * b + j is byte 4j + b of
// the vector, i.e. channel (4j + b) % width of a pixel.
struct BlockParams {
  alignas(64) int32_t offsets[64];
  alignas(64) float biases[64];
  alignas(64) float multipliers[64];
  alignas(64) int32_t weight_zero_points[64];
};

void block_params(const DepthwiseRequant& rq, size_t c0, size_t count, size_t width, BlockParams* bp) {
  for (size_t i = 0; i < 64; ++i) {
    const size_t c = (4 * (i % 16) + i / 16) % width;
    const bool live = c < count;
    bp->offsets[i] = live ? rq.offsets[c0 + c] : 0;
    bp->biases[i] = live ? rq.biases[c0 + c] : 0.f;
    bp->multipliers[i] = live ? rq.multipliers[c0 + c] : 0.f;
    bp->weight_zero_points[i] = live ? rq.weight_zero_points[c0 + c] : 0;
  }
}

// The block's weights for each tap t and byte b: 64 bytes holding, at byte
// 4j + b, the weight of channel (4j + b) % width, and zero elsewhere.
void masked_weights(const int8_t* block, size_t taps, size_t width, int8_t* out) {
  const __m512i byte0 = _mm512_set1_epi32(0xff);
  for (size_t t = 0; t < taps; ++t) {
    __m512i w = _mm512_loadu_si512(block + t * 64);
    if (width == 32) w = _mm512_broadcast_i64x4(_mm512_castsi512_si256(w));
    for (int b = 0; b < 4; ++b) {
      _mm512_store_si512(out + (t * 4 + b) * 64, _mm512_and_si512(w, _mm512_slli_epi32(byte0, 8 * b)));
    }
  }
}

struct Constants {
  __m512 lo, hi;  // clamp bounds minus the output zero point
  __m512i zp;
  __m512i order;  // byte shuffle from pack order back to channel order
};

Constants constants(const DepthwiseRequant& rq) {
  Constants k;
  k.lo = _mm512_set1_ps(float(rq.out_min - rq.out_zero_point));
  k.hi = _mm512_set1_ps(float(rq.out_max - rq.out_zero_point));
  k.zp = _mm512_set1_epi32(rq.out_zero_point);
  // After the packs, 128-bit lane byte 4b + i holds channel byte 4i + b.
  alignas(64) int8_t order[64];
  for (int r = 0; r < 64; ++r) order[r] = int8_t(4 * (r % 4) + (r % 16) / 4);
  k.order = _mm512_load_si512(order);
  return k;
}

// round_half_even(clamp(v)) + zp equals clamp(round_half_even(v) + zp) for
// integer bounds, and cvtps rounds half to even: the scalar definition.
inline __m512i requantize16(__m512i acc, const BlockParams& bp, int b, const Constants& k) {
  __m512 v = _mm512_add_ps(_mm512_cvtepi32_ps(acc), _mm512_load_ps(bp.biases + 16 * b));
  v = _mm512_mul_ps(v, _mm512_load_ps(bp.multipliers + 16 * b));
  v = _mm512_min_ps(_mm512_max_ps(v, k.lo), k.hi);
  return _mm512_add_epi32(_mm512_cvtps_epi32(v), k.zp);
}

// Values in 0..255; the packs never saturate.
inline __m512i requantize64(const __m512i (&acc)[4], const BlockParams& bp, const Constants& k) {
  const __m512i ab = _mm512_packus_epi32(requantize16(acc[0], bp, 0, k), requantize16(acc[1], bp, 1, k));
  const __m512i cd = _mm512_packus_epi32(requantize16(acc[2], bp, 2, k), requantize16(acc[3], bp, 3, k));
  return _mm512_shuffle_epi8(_mm512_packus_epi16(ab, cd), k.order);
}

// One vector of work: one pixel of up to 64 channels (kWidth 64), or two
// pixels of up to 32 channels each (kWidth 32; `second` may repeat `first`
// when there is no second pixel, whose store is then skipped).
struct Slot {
  const uint8_t* const* first;
  const uint8_t* const* second;
  uint8_t* out_first;
  uint8_t* out_second;  // null: no second pixel
};

template <int kWidth>
inline __m512i load_tap(const Slot& s, size_t t, size_t c0, __mmask64 m) {
  if (kWidth == 64) return _mm512_maskz_loadu_epi8(m, s.first[t] + c0);
  const __m256i a = _mm256_maskz_loadu_epi8(__mmask32(m), s.first[t] + c0);
  const __m256i b = _mm256_maskz_loadu_epi8(__mmask32(m), s.second[t] + c0);
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

template <int kWidth>
inline void store(const Slot& s, size_t c0, __mmask64 m, __m512i bytes) {
  if (kWidth == 64) {
    _mm512_mask_storeu_epi8(s.out_first + c0, m, bytes);
    return;
  }
  _mm256_mask_storeu_epi8(s.out_first + c0, __mmask32(m), _mm512_castsi512_si256(bytes));
  if (s.out_second) _mm256_mask_storeu_epi8(s.out_second + c0, __mmask32(m), _mm512_extracti64x4_epi64(bytes, 1));
}

template <int kWidth, int kSlots, size_t kTaps, bool kZeroPoints>
inline void compute(size_t runtime_taps, const Slot* slots, size_t c0, __mmask64 m, const int8_t* weights,
                    const BlockParams& bp, const Constants& k) {
  const size_t taps = kTaps > 0 ? kTaps : runtime_taps;
  __m512i acc[kSlots][4], sums[kSlots][4], ones[4];
  for (int q = 0; q < kSlots; ++q)
    for (int b = 0; b < 4; ++b) {
      acc[q][b] = _mm512_load_si512(bp.offsets + 16 * b);
      sums[q][b] = _mm512_setzero_si512();  // dead without zero points, like ones
    }
  for (int b = 0; b < 4; ++b) ones[b] = _mm512_set1_epi32(1 << (8 * b));
  for (size_t t = 0; t < taps; ++t) {
    __m512i w[4];
    for (int b = 0; b < 4; ++b) w[b] = _mm512_load_si512(weights + (t * 4 + b) * 64);
    for (int q = 0; q < kSlots; ++q) {
      const __m512i x = load_tap<kWidth>(slots[q], t, c0, m);
      for (int b = 0; b < 4; ++b) {
        acc[q][b] = _mm512_dpbusd_epi32(acc[q][b], x, w[b]);
        if (kZeroPoints) sums[q][b] = _mm512_dpbusd_epi32(sums[q][b], x, ones[b]);
      }
    }
  }
  if (kZeroPoints)
    for (int q = 0; q < kSlots; ++q)
      for (int b = 0; b < 4; ++b)
        acc[q][b] = _mm512_sub_epi32(
            acc[q][b], _mm512_mullo_epi32(sums[q][b], _mm512_load_si512(bp.weight_zero_points + 16 * b)));
  for (int q = 0; q < kSlots; ++q) store<kWidth>(slots[q], c0, m, requantize64(acc[q], bp, k));
}

template <int kWidth, size_t kTaps, bool kZeroPoints>
void block(size_t pixels, size_t taps, const uint8_t* const* indirection, size_t c0, __mmask64 m,
           const int8_t* weights, const BlockParams& bp, const Constants& k, uint8_t* out, size_t out_stride) {
  constexpr size_t kPerSlot = kWidth == 64 ? 1 : 2;
  auto slot = [&](size_t p) {
    const bool pair = kPerSlot == 2 && p + 1 < pixels;
    const uint8_t* const* first = indirection + p * taps;
    return Slot{first, pair ? first + taps : first, out + p * out_stride, pair ? out + (p + 1) * out_stride : nullptr};
  };
  size_t p = 0;
  for (; p + 2 * kPerSlot <= pixels; p += 2 * kPerSlot) {
    const Slot slots[2] = {slot(p), slot(p + kPerSlot)};
    compute<kWidth, 2, kTaps, kZeroPoints>(taps, slots, c0, m, weights, bp, k);
  }
  for (; p < pixels; p += kPerSlot) {
    const Slot slots[1] = {slot(p)};
    compute<kWidth, 1, kTaps, kZeroPoints>(taps, slots, c0, m, weights, bp, k);
  }
}

template <size_t kTaps>
void depthwise(size_t pixels, size_t channels, size_t runtime_taps, const uint8_t* const* indirection,
               const int8_t* packed, const DepthwiseRequant& rq, uint8_t* out, size_t out_stride) {
  const size_t taps = kTaps > 0 ? kTaps : runtime_taps;
  const Constants k = constants(rq);
  alignas(64) BlockParams bp;
  // Scratch for the masked weights of one block, 64-byte aligned by hand
  // (a vector of __m512i would drop the type's alignment attribute).
  std::vector<int8_t> scratch(taps * 256 + 63);
  int8_t* w = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
  for (size_t c0 = 0; c0 < channels; c0 += 64) {
    const size_t count = channels - c0 < 64 ? channels - c0 : 64;
    bool zero_points = false;
    for (size_t c = c0; c < c0 + count; ++c) zero_points |= rq.weight_zero_points[c] != 0;
    const size_t width = count > 32 ? 64 : 32;
    const __mmask64 m = count == 64 ? ~__mmask64(0) : (__mmask64(1) << count) - 1;
    masked_weights(packed + c0 * taps, taps, width, w);  // block c0 / 64 of [blocks][taps][64]
    block_params(rq, c0, count, width, &bp);
    if (width == 64 && !zero_points) {
      block<64, kTaps, false>(pixels, taps, indirection, c0, m, w, bp, k, out, out_stride);
    } else if (!zero_points) {
      block<32, kTaps, false>(pixels, taps, indirection, c0, m, w, bp, k, out, out_stride);
    } else if (width == 64) {
      block<64, kTaps, true>(pixels, taps, indirection, c0, m, w, bp, k, out, out_stride);
    } else {
      block<32, kTaps, true>(pixels, taps, indirection, c0, m, w, bp, k, out, out_stride);
    }
  }
}

}  // namespace

const DepthwiseUkernels kDepthwiseAvx512Vnni = {depthwise<9>, depthwise<25>, depthwise<0>};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
