// Affine quantization microkernels: float <-> uint8/int8/int32 and integer
// re-quantization, one table of function pointers per ISA.
//
// Semantics (identical on every path, matching torch's classic kernels bit for bit):
//   quantize (per tensor, uint8/int8), "fused":
//               q = clamp(round_half_even(fma(x, inv_scale, zero_point)), qmin, qmax)
//   quantize_channel (one channel's run; also int32 per tensor), "two-step":
//               q = clamp(round_half_even(float(x * inv_scale) + zero_point), qmin, qmax)
//   Torch's uint8/int8 per-tensor path (FBGEMM) uses a fused multiply-add, its
//   other paths two float roundings; they differ near ties, so both forms exist.
//   inv_scale = 1.0f / scale; NaN maps to zero_point, +-inf clamp.
//   dequantize: x = float(q - zero_point) * scale
//   requantize: q' = clamp(round_half_even(float(q - zp_in) * multiplier + zp_out)), two-step
//               where multiplier = in_scale / out_scale.
// "channels" kernels take one parameter per element of a row: they serve
// per-channel quantization whose channel axis is innermost in memory.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/isa.h"

namespace qtorch {
namespace kernels {

template <typename Q>
using QuantizeFn = void (*)(size_t n, const float* x, Q* y, float inv_scale, int32_t zero_point);
template <typename Q>
using QuantizeChannelsFn = void (*)(size_t channels, const float* x, Q* y, const float* inv_scales,
                                    const int32_t* zero_points);
template <typename Q>
using DequantizeFn = void (*)(size_t n, const Q* x, float* y, float scale, int32_t zero_point);
template <typename Q>
using DequantizeChannelsFn = void (*)(size_t channels, const Q* x, float* y, const float* scales,
                                      const int32_t* zero_points);
template <typename In, typename Out>
using RequantizeFn = void (*)(size_t n, const In* x, Out* y, int32_t zp_in, float multiplier,
                              int32_t zp_out);

struct QuantizeUkernels {
  QuantizeFn<uint8_t> quantize_u8;
  QuantizeFn<int8_t> quantize_s8;
  QuantizeFn<uint8_t> quantize_channel_u8;
  QuantizeFn<int8_t> quantize_channel_s8;
  QuantizeFn<int32_t> quantize_channel_s32;
  QuantizeChannelsFn<uint8_t> quantize_channels_u8;
  QuantizeChannelsFn<int8_t> quantize_channels_s8;
  QuantizeChannelsFn<int32_t> quantize_channels_s32;
  DequantizeFn<uint8_t> dequantize_u8;
  DequantizeFn<int8_t> dequantize_s8;
  DequantizeFn<int32_t> dequantize_s32;
  DequantizeChannelsFn<uint8_t> dequantize_channels_u8;
  DequantizeChannelsFn<int8_t> dequantize_channels_s8;
  DequantizeChannelsFn<int32_t> dequantize_channels_s32;
  RequantizeFn<uint8_t, uint8_t> requantize_u8_u8;
  RequantizeFn<uint8_t, int8_t> requantize_u8_s8;
  RequantizeFn<int8_t, uint8_t> requantize_s8_u8;
  RequantizeFn<int8_t, int8_t> requantize_s8_s8;
};

// The table for one ISA (which must be compiled into this build).
const QuantizeUkernels& quantize_ukernels(Isa isa);
// The table for the active ISA.
inline const QuantizeUkernels& quantize_ukernels() { return quantize_ukernels(active_isa()); }

// Per-ISA tables; int32 entries point to the scalar code on every path (int32
// quantization serves biases, never a hot loop).
extern const QuantizeUkernels kQuantizeScalar;
#if QTORCH_ARCH_X86
extern const QuantizeUkernels kQuantizeAvx2;
extern const QuantizeUkernels kQuantizeAvx512;
#elif QTORCH_ARCH_ARM64
extern const QuantizeUkernels kQuantizeNeon;
#endif

}  // namespace kernels
}  // namespace qtorch
