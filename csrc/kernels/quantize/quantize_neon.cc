// NEON path: 16 elements per iteration, tails through the scalar definition.
#include "common/isa.h"
#if QTORCH_ARCH_ARM64  // compiled into every build; empty off its architecture

#include <arm_neon.h>

#include <type_traits>

#include "quantize/quantize.h"
#include "quantize/quantize_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

// round(fma(x, inv_scale, zp)) if Fused, else round(x * inv_scale + zp) in two
// steps (quantize.h). Clamped to Q's range, NaN -> zp; an exact integer in float.
template <typename Q, bool Fused>
inline int32x4_t quantize4(float32x4_t x, float32x4_t inv_scale, float32x4_t zp) {
  constexpr float lo = std::is_same<Q, uint8_t>::value ? 0.f : -128.f;
  constexpr float hi = std::is_same<Q, uint8_t>::value ? 255.f : 127.f;
  const float32x4_t sum = Fused ? vfmaq_f32(zp, x, inv_scale) : vaddq_f32(vmulq_f32(x, inv_scale), zp);
  float32x4_t r = vrndnq_f32(sum);
  r = vbslq_f32(vceqq_f32(r, r), r, zp);
  r = vminq_f32(vmaxq_f32(r, vdupq_n_f32(lo)), vdupq_n_f32(hi));
  return vcvtq_s32_f32(r);
}

// Four vectors of in-range int32 to 16 bytes, in order.
template <typename Q>
inline void store16(Q* p, int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  const int16x8_t ab = vcombine_s16(vmovn_s32(a), vmovn_s32(b));
  const int16x8_t cd = vcombine_s16(vmovn_s32(c), vmovn_s32(d));
  if (std::is_same<Q, uint8_t>::value) {
    vst1q_u8(reinterpret_cast<uint8_t*>(p), vcombine_u8(vqmovun_s16(ab), vqmovun_s16(cd)));
  } else {
    vst1q_s8(reinterpret_cast<int8_t*>(p), vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd)));
  }
}

// 8 bytes widened to two int32x4.
template <typename Q>
inline void load8_s32(const Q* p, int32x4_t* lo, int32x4_t* hi) {
  int16x8_t w;
  if (std::is_same<Q, uint8_t>::value) {
    w = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(reinterpret_cast<const uint8_t*>(p))));
  } else {
    w = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(p)));
  }
  *lo = vmovl_s16(vget_low_s16(w));
  *hi = vmovl_s16(vget_high_s16(w));
}

template <typename Q, bool Fused>
void quantize(size_t n, const float* x, Q* y, float inv_scale, int32_t zero_point) {
  const float32x4_t vinv = vdupq_n_f32(inv_scale), vzp = vdupq_n_f32(float(zero_point));
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    store16<Q>(y + i, quantize4<Q, Fused>(vld1q_f32(x + i), vinv, vzp),
               quantize4<Q, Fused>(vld1q_f32(x + i + 4), vinv, vzp),
               quantize4<Q, Fused>(vld1q_f32(x + i + 8), vinv, vzp),
               quantize4<Q, Fused>(vld1q_f32(x + i + 12), vinv, vzp));
  }
  for (; i < n; ++i) {
    y[i] = Fused ? quantize_value<Q>(x[i], inv_scale, zero_point) : quantize_channel_value<Q>(x[i], inv_scale, zero_point);
  }
}

template <typename Q>
void quantize_channels(size_t channels, const float* x, Q* y, const float* inv_scales,
                       const int32_t* zero_points) {
  auto q4 = [&](size_t at) {
    return quantize4<Q, false>(vld1q_f32(x + at), vld1q_f32(inv_scales + at), vcvtq_f32_s32(vld1q_s32(zero_points + at)));
  };
  size_t c = 0;
  for (; c + 16 <= channels; c += 16) store16<Q>(y + c, q4(c), q4(c + 4), q4(c + 8), q4(c + 12));
  for (; c < channels; ++c) y[c] = quantize_channel_value<Q>(x[c], inv_scales[c], zero_points[c]);
}

template <typename Q>
void dequantize(size_t n, const Q* x, float* y, float scale, int32_t zero_point) {
  const float32x4_t vscale = vdupq_n_f32(scale);
  const int32x4_t vzp = vdupq_n_s32(zero_point);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    int32x4_t lo, hi;
    load8_s32(x + i, &lo, &hi);
    vst1q_f32(y + i, vmulq_f32(vcvtq_f32_s32(vsubq_s32(lo, vzp)), vscale));
    vst1q_f32(y + i + 4, vmulq_f32(vcvtq_f32_s32(vsubq_s32(hi, vzp)), vscale));
  }
  for (; i < n; ++i) y[i] = dequantize_value(x[i], scale, zero_point);
}

template <typename Q>
void dequantize_channels(size_t channels, const Q* x, float* y, const float* scales,
                         const int32_t* zero_points) {
  size_t c = 0;
  for (; c + 8 <= channels; c += 8) {
    int32x4_t lo, hi;
    load8_s32(x + c, &lo, &hi);
    lo = vsubq_s32(lo, vld1q_s32(zero_points + c));
    hi = vsubq_s32(hi, vld1q_s32(zero_points + c + 4));
    vst1q_f32(y + c, vmulq_f32(vcvtq_f32_s32(lo), vld1q_f32(scales + c)));
    vst1q_f32(y + c + 4, vmulq_f32(vcvtq_f32_s32(hi), vld1q_f32(scales + c + 4)));
  }
  for (; c < channels; ++c) y[c] = dequantize_value(x[c], scales[c], zero_points[c]);
}

template <typename In, typename Out>
void requantize(size_t n, const In* x, Out* y, int32_t zp_in, float multiplier, int32_t zp_out) {
  const float32x4_t vm = vdupq_n_f32(multiplier), vzp_out = vdupq_n_f32(float(zp_out));
  const int32x4_t vzp_in = vdupq_n_s32(zp_in);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    int32x4_t a, b, c, d;
    load8_s32(x + i, &a, &b);
    load8_s32(x + i + 8, &c, &d);
    auto r4 = [&](int32x4_t v) { return quantize4<Out, false>(vcvtq_f32_s32(vsubq_s32(v, vzp_in)), vm, vzp_out); };
    store16<Out>(y + i, r4(a), r4(b), r4(c), r4(d));
  }
  for (; i < n; ++i) y[i] = requantize_value<Out>(int32_t(x[i]) - zp_in, multiplier, zp_out);
}

}  // namespace

const QuantizeUkernels kQuantizeNeon = {
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

#endif  // QTORCH_ARCH_ARM64
