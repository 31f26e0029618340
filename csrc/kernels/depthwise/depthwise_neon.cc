// NEON path: 16 channels at a time; their weights are widened once per call to
// int16 tap pairs (minus zero points), then each pixel widens its taps to
// int16 and multiplies-accumulates with vmlal into four vectors of 4 int32.
// Tail channels through the scalar definition.
#include "common/isa.h"
#if QTORCH_ARCH_ARM64  // compiled into every build; empty off its architecture

#include <arm_neon.h>

#include <vector>

#include "depthwise/depthwise.h"
#include "depthwise/depthwise_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

inline int32x4_t requantize4(int32x4_t acc, const DepthwiseRequant& rq, size_t c, float32x4_t zp, float32x4_t lo,
                             float32x4_t hi) {
  float32x4_t v = vaddq_f32(vcvtq_f32_s32(acc), vld1q_f32(rq.biases + c));
  v = vmulq_f32(v, vld1q_f32(rq.multipliers + c));
  v = vaddq_f32(vrndnq_f32(v), zp);
  return vcvtq_s32_f32(vminq_f32(vmaxq_f32(v, lo), hi));
}

// 8 channels of taps t (weights w.val[0]) and t+1 (w.val[1]) into two accumulators.
inline void accumulate8(int16x8_t a, int16x8_t b, int16x8x2_t w, int32x4_t* acc_lo, int32x4_t* acc_hi) {
  *acc_lo = vmlal_s16(*acc_lo, vget_low_s16(a), vget_low_s16(w.val[0]));
  *acc_hi = vmlal_high_s16(*acc_hi, a, w.val[0]);
  *acc_lo = vmlal_s16(*acc_lo, vget_low_s16(b), vget_low_s16(w.val[1]));
  *acc_hi = vmlal_high_s16(*acc_hi, b, w.val[1]);
}

inline int16x8_t widen_lo(uint8x16_t v) { return vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))); }
inline int16x8_t widen_hi(uint8x16_t v) { return vreinterpretq_s16_u16(vmovl_high_u8(v)); }

template <size_t kTaps>
void depthwise(size_t pixels, size_t channels, size_t runtime_taps, const uint8_t* const* indirection,
               const int8_t* packed, const DepthwiseRequant& rq, uint8_t* out, size_t out_stride) {
  const size_t taps = kTaps > 0 ? kTaps : runtime_taps;
  const size_t full = channels / 16 * 16;
  const float32x4_t zp = vdupq_n_f32(float(rq.out_zero_point));
  const float32x4_t lo = vdupq_n_f32(float(rq.out_min)), hi = vdupq_n_f32(float(rq.out_max));
  std::vector<int16_t> pairs((taps + 1) / 2 * 32);
  for (size_t c = 0; c < full; c += 16) {
    depthwise_widen_pairs16(packed, taps, c, rq.weight_zero_points, pairs.data());
    const int16_t* w = pairs.data();
    for (size_t p = 0; p < pixels; ++p) {
      const uint8_t* const* in = indirection + p * taps;
      int32x4_t acc0 = vld1q_s32(rq.offsets + c), acc1 = vld1q_s32(rq.offsets + c + 4);
      int32x4_t acc2 = vld1q_s32(rq.offsets + c + 8), acc3 = vld1q_s32(rq.offsets + c + 12);
      for (size_t t = 0; t < taps; t += 2) {
        const uint8x16_t a = vld1q_u8(in[t] + c);
        const uint8x16_t b = t + 1 < taps ? vld1q_u8(in[t + 1] + c) : vdupq_n_u8(0);
        const int16x8x2_t w_lo = vld2q_s16(w + t * 16), w_hi = vld2q_s16(w + t * 16 + 16);
        accumulate8(widen_lo(a), widen_lo(b), w_lo, &acc0, &acc1);
        accumulate8(widen_hi(a), widen_hi(b), w_hi, &acc2, &acc3);
      }
      const int16x8_t q_lo = vcombine_s16(vmovn_s32(requantize4(acc0, rq, c, zp, lo, hi)),
                                          vmovn_s32(requantize4(acc1, rq, c + 4, zp, lo, hi)));
      const int16x8_t q_hi = vcombine_s16(vmovn_s32(requantize4(acc2, rq, c + 8, zp, lo, hi)),
                                          vmovn_s32(requantize4(acc3, rq, c + 12, zp, lo, hi)));
      vst1q_u8(out + p * out_stride + c, vcombine_u8(vqmovun_s16(q_lo), vqmovun_s16(q_hi)));
    }
  }
  depthwise_channels(full, channels, pixels, taps, indirection, packed, rq, out, out_stride);
}

}  // namespace

const DepthwiseUkernels kDepthwiseNeon = {depthwise<9>, depthwise<25>, depthwise<0>};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_ARM64
