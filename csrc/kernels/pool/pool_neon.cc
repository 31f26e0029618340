// NEON path: 16 channels per step, tails through the scalar definition.
#include "common/isa.h"
#if QTORCH_ARCH_ARM64  // compiled into every build; empty off its architecture

#include <arm_neon.h>

#include "pool/pool.h"
#include "pool/pool_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

// finish_u8(scaled, zero_point, 0, 255) on 16 lanes.
inline uint8x16_t finish16(const float32x4_t s[4], float32x4_t zero_point) {
  int32x4_t q[4];
  for (int k = 0; k < 4; ++k) {
    const float32x4_t r = vaddq_f32(vrndnq_f32(s[k]), zero_point);
    q[k] = vcvtq_s32_f32(vminq_f32(vmaxq_f32(r, vdupq_n_f32(0.f)), vdupq_n_f32(255.f)));
  }
  return vcombine_u8(vqmovun_s16(vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]))),
                     vqmovun_s16(vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]))));
}

// 16 bytes to four float32x4.
inline void load16_f32(const uint8_t* p, float32x4_t out[4]) {
  const uint8x16_t v = vld1q_u8(p);
  const uint16x8_t lo = vmovl_u8(vget_low_u8(v)), hi = vmovl_u8(vget_high_u8(v));
  out[0] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo)));
  out[1] = vcvtq_f32_u32(vmovl_u16(vget_high_u16(lo)));
  out[2] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi)));
  out[3] = vcvtq_f32_u32(vmovl_u16(vget_high_u16(hi)));
}

void max_pixel(size_t channels, size_t count, const uint8_t* const* rows, size_t off, uint8_t* y) {
  auto max16 = [&](size_t at) {
    uint8x16_t m = vld1q_u8(rows[0] + off + at);
    for (size_t k = 1; k < count; ++k) m = vmaxq_u8(m, vld1q_u8(rows[k] + off + at));
    vst1q_u8(y + at, m);
  };
  size_t c = 0;
  for (; c + 16 <= channels; c += 16) max16(c);
  // A tail of a wide row: one vector ending at the last channel (recomputing a few is harmless).
  if (c < channels && channels >= 16) return max16(channels - 16);
  for (; c < channels; ++c) y[c] = max_pool_value(count, rows, off + c);
}

// count <= kAvgPoolInt32Taps: the sums and the bias fit int32 lanes.
void avg_pixel(size_t channels, size_t count, const uint8_t* const* rows, size_t off, uint8_t* y,
               const AvgPoolParams& p) {
  const int32x4_t bias = vdupq_n_s32(static_cast<int32_t>(p.bias));
  const float32x4_t mult = vdupq_n_f32(p.multiplier), zp = vdupq_n_f32(float(p.zero_point));
  auto avg16 = [&](size_t c) {
    uint32x4_t a[4] = {vdupq_n_u32(0), vdupq_n_u32(0), vdupq_n_u32(0), vdupq_n_u32(0)};
    for (size_t k = 0; k < count; ++k) {
      const uint8x16_t v = vld1q_u8(rows[k] + off + c);
      const uint16x8_t lo = vmovl_u8(vget_low_u8(v)), hi = vmovl_u8(vget_high_u8(v));
      a[0] = vaddw_u16(a[0], vget_low_u16(lo));
      a[1] = vaddw_u16(a[1], vget_high_u16(lo));
      a[2] = vaddw_u16(a[2], vget_low_u16(hi));
      a[3] = vaddw_u16(a[3], vget_high_u16(hi));
    }
    float32x4_t s[4];
    for (int k = 0; k < 4; ++k) s[k] = vmulq_f32(vcvtq_f32_s32(vaddq_s32(vreinterpretq_s32_u32(a[k]), bias)), mult);
    vst1q_u8(y + c, finish16(s, zp));
  };
  size_t c = 0;
  for (; c + 16 <= channels; c += 16) avg16(c);
  // A tail of a wide row: one vector ending at the last channel (recomputing a few is harmless).
  if (c < channels && channels >= 16) return avg16(channels - 16);
  for (; c < channels; ++c) y[c] = avg_pool_value(count, rows, off + c, p);
}

// One-channel planes (NCHW) with unit or stride-2 windows: vectors run along
// the outputs instead (vld2 keeps the even bytes). A stride-2 vector reads one
// byte past its last output's element, so the last block takes the scalar tail.
void max_plane(size_t outputs, size_t count, const uint8_t* const* rows, size_t step, uint8_t* y) {
  size_t o = 0;
  if (step == 1) {
    for (; o + 16 <= outputs; o += 16) {
      uint8x16_t m = vld1q_u8(rows[0] + o);
      for (size_t k = 1; k < count; ++k) m = vmaxq_u8(m, vld1q_u8(rows[k] + o));
      vst1q_u8(y + o, m);
    }
  } else {
    for (; o + 16 < outputs; o += 16) {
      uint8x16_t m = vdupq_n_u8(0);
      for (size_t k = 0; k < count; ++k) m = vmaxq_u8(m, vld2q_u8(rows[k] + 2 * o).val[0]);
      vst1q_u8(y + o, m);
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
      uint8x16_t m = vld1q_u8(r[0] + c);
      for (size_t k = 1; k < kCount; ++k) m = vmaxq_u8(m, vld1q_u8(r[k] + c));
      vst1q_u8(out + c, m);
    };
    size_t c = 0;
    for (; c + 16 <= channels; c += 16) max_at(c);
    if (c < channels) max_at(channels - 16);
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
  const float32x4_t h0 = vdupq_n_f32(w[0]), h1 = vdupq_n_f32(w[1]);
  const float32x4_t w0 = vdupq_n_f32(w[2]), w1 = vdupq_n_f32(w[3]);
  size_t c = 0;
  for (; c + 16 <= channels; c += 16) {
    float32x4_t r0[4], r1[4], r2[4], r3[4], s[4];
    load16_f32(rows[0] + c, r0);
    load16_f32(rows[1] + c, r1);
    load16_f32(rows[2] + c, r2);
    load16_f32(rows[3] + c, r3);
    for (int k = 0; k < 4; ++k) {
      const float32x4_t top = vaddq_f32(vmulq_f32(w0, r0[k]), vmulq_f32(w1, r1[k]));
      const float32x4_t bottom = vaddq_f32(vmulq_f32(w0, r2[k]), vmulq_f32(w1, r3[k]));
      s[k] = vaddq_f32(vmulq_f32(h0, top), vmulq_f32(h1, bottom));
    }
    vst1q_u8(y + c, finish16(s, vdupq_n_f32(0.f)));
  }
  for (; c < channels; ++c) y[c] = bilinear_value(rows, w, c);
}

// Two phases by vld2 (even bytes, odd bytes).
void deinterleave(size_t rows, size_t width, size_t phases, const uint8_t* x, size_t x_step, uint8_t* y, size_t y_step,
                  size_t phase_step) {
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* src = x + r * x_step;
    uint8_t* even = y + r * y_step;
    size_t c = 0;
    auto split32 = [&](size_t at) {
      const uint8x16x2_t v = vld2q_u8(src + at);
      vst1q_u8(even + at / 2, v.val[0]);
      vst1q_u8(even + phase_step + at / 2, v.val[1]);
    };
    if (phases == 2) {
      for (; c + 32 <= width; c += 32) split32(c);
      // An even row ends with an overlapping block (same bytes again); odd ones byte by byte.
      if (c < width && width >= 32 && width % 2 == 0) {
        split32(width - 32);
        c = width;
      }
    }
    deinterleave_tail(c, width, phases, src, even, phase_step);
  }
}

// 16-byte blocks widened pairwise into 16-bit sums (at most 2 * 255 a lane per block),
// then into 64-bit ones (exact for runs of any length, as the definition); the tail
// through the scalar definition.
void avg_pool_runs(size_t runs, size_t length, const uint8_t* x, size_t x_step, uint8_t* y, size_t y_step,
                   const AvgPoolParams& p) {
  for (size_t i = 0; i < runs; ++i) {
    const uint8_t* src = x + i * x_step;
    uint64x2_t acc = vdupq_n_u64(0);
    size_t k = 0;
    while (k + 16 <= length) {
      uint16x8_t part = vdupq_n_u16(0);
      // 128 blocks add at most 128 * 510 < 65536 to a 16-bit lane.
      for (size_t b = 0; b < 128 && k + 16 <= length; ++b, k += 16) part = vpadalq_u8(part, vld1q_u8(src + k));
      acc = vpadalq_u32(acc, vpaddlq_u16(part));
    }
    int64_t sum = static_cast<int64_t>(vaddvq_u64(acc));
    for (; k < length; ++k) sum += src[k];
    y[i * y_step] = avg_pool_finish(sum, p);
  }
}

}  // namespace

const PoolUkernels kPoolNeon = {max_pool, avg_pool, bilinear, deinterleave, avg_pool_runs};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_ARM64
