// NEON path: 16 elements per iteration, tails through the scalar definition.
#include "common/isa.h"
#if QTORCH_ARCH_ARM64  // compiled into every build; empty off its architecture

#include <arm_neon.h>

#include "elementwise/elementwise.h"
#include "elementwise/elementwise_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

// 16 bytes widened to four int32x4, each minus the zero point.
inline void load16_centred(const uint8_t* p, int32x4_t zp, int32x4_t out[4]) {
  const uint8x16_t v = vld1q_u8(p);
  const int16x8_t lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v)));
  const int16x8_t hi = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(v)));
  out[0] = vsubq_s32(vmovl_s16(vget_low_s16(lo)), zp);
  out[1] = vsubq_s32(vmovl_s16(vget_high_s16(lo)), zp);
  out[2] = vsubq_s32(vmovl_s16(vget_low_s16(hi)), zp);
  out[3] = vsubq_s32(vmovl_s16(vget_high_s16(hi)), zp);
}

// finish_u8 on 16 lanes: round half to even, add the zero point, clamp.
struct Finish16 {
  float32x4_t zero_point, lo, hi;
  Finish16(int32_t zp, uint8_t lo_, uint8_t hi_)
      : zero_point(vdupq_n_f32(float(zp))), lo(vdupq_n_f32(lo_)), hi(vdupq_n_f32(hi_)) {}
  int32x4_t one(float32x4_t scaled) const {
    const float32x4_t q = vaddq_f32(vrndnq_f32(scaled), zero_point);
    return vcvtq_s32_f32(vminq_f32(vmaxq_f32(q, lo), hi));
  }
  uint8x16_t operator()(const float32x4_t s[4]) const {
    const int16x8_t lo16 = vcombine_s16(vmovn_s32(one(s[0])), vmovn_s32(one(s[1])));
    const int16x8_t hi16 = vcombine_s16(vmovn_s32(one(s[2])), vmovn_s32(one(s[3])));
    return vcombine_u8(vqmovun_s16(lo16), vqmovun_s16(hi16));
  }
};

void add(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* y, const AddParams& p) {
  const int32x4_t za = vdupq_n_s32(p.a_zero_point), zb = vdupq_n_s32(p.b_zero_point);
  const float32x4_t ma = vdupq_n_f32(p.a_multiplier), mb = vdupq_n_f32(p.b_multiplier);
  const Finish16 finish(p.out_zero_point, p.out_min, p.out_max);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    int32x4_t ca[4], cb[4];
    load16_centred(a + i, za, ca);
    load16_centred(b + i, zb, cb);
    float32x4_t s[4];
    for (int k = 0; k < 4; ++k) {
      s[k] = vaddq_f32(vmulq_f32(vcvtq_f32_s32(ca[k]), ma), vmulq_f32(vcvtq_f32_s32(cb[k]), mb));
    }
    vst1q_u8(y + i, finish(s));
  }
  for (; i < n; ++i) y[i] = add_value(a[i], b[i], p);
}

void mul(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* y, const MulParams& p) {
  const int32x4_t za = vdupq_n_s32(p.a_zero_point), zb = vdupq_n_s32(p.b_zero_point);
  const float32x4_t m = vdupq_n_f32(p.multiplier);
  const Finish16 finish(p.out_zero_point, p.out_min, p.out_max);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    int32x4_t ca[4], cb[4];
    load16_centred(a + i, za, ca);
    load16_centred(b + i, zb, cb);
    float32x4_t s[4];
    for (int k = 0; k < 4; ++k) s[k] = vmulq_f32(vcvtq_f32_s32(vmulq_s32(ca[k], cb[k])), m);
    vst1q_u8(y + i, finish(s));
  }
  for (; i < n; ++i) y[i] = mul_value(a[i], b[i], p);
}

void clamp(size_t n, const uint8_t* x, uint8_t* y, uint8_t lo, uint8_t hi) {
  const uint8x16_t vlo = vdupq_n_u8(lo), vhi = vdupq_n_u8(hi);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) vst1q_u8(y + i, vminq_u8(vmaxq_u8(vld1q_u8(x + i), vlo), vhi));
  for (; i < n; ++i) y[i] = clamp_value(x[i], lo, hi);
}

// Four 64-byte table lookups; out-of-range indices of tbl give 0, tbx keeps.
void lut(size_t n, const uint8_t* x, uint8_t* y, const uint8_t* table) {
  uint8x16x4_t t[4];
  for (int k = 0; k < 4; ++k) t[k] = vld1q_u8_x4(table + 64 * k);
  const uint8x16_t sixty_four = vdupq_n_u8(64);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint8x16_t v = vld1q_u8(x + i);
    uint8x16_t out = vqtbl4q_u8(t[0], v);
    v = vsubq_u8(v, sixty_four);
    out = vqtbx4q_u8(out, t[1], v);
    v = vsubq_u8(v, sixty_four);
    out = vqtbx4q_u8(out, t[2], v);
    v = vsubq_u8(v, sixty_four);
    out = vqtbx4q_u8(out, t[3], v);
    vst1q_u8(y + i, out);
  }
  for (; i < n; ++i) y[i] = table[x[i]];
}

}  // namespace

const ElementwiseUkernels kElementwiseNeon = {add, mul, clamp, lut};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_ARM64
