// Depthwise convolution microkernels on NHWC uint8 activations: each output
// channel reads one input channel through kh*kw taps, then is requantized to
// uint8 (bias and ReLU fused). One table of function pointers per ISA.
//
// Semantics (identical on every path):
//   acc[c] = offsets[c] + sum_t x_t[c] * (w_t[c] - weight_zero_points[c])   (exact int32)
//   y[c]   = clamp(round_half_even((float(acc[c]) + biases[c]) * multipliers[c])
//                  + out_zero_point, out_min, out_max)
// where x_t are uint8 input values (padding cells read the input zero point,
// i.e. real zero) and w_t the int8 weights. The op layer sets offsets[c] =
// -input_zero_point * sum_t (w_t[c] - weight_zero_points[c]), and with
// ab = input_scale * weight_scale[c]: multipliers[c] = ab / output_scale and
// biases[c] = bias[c] / ab, so acc is the convolution of zero-point-centred
// values and the float steps are those of the GEMM output pipeline (gemm.h):
// a depthwise layer gives the same bits as the same layer run as grouped GEMM.
// A NaN before the clamp (only non-finite multipliers or biases make one: scale
// products that overflow or underflow float) gives out_zero_point, as in the
// GEMM; the vector paths take finite constants only, so the op layer sends
// calls with any non-finite constant to the scalar path.
//
// Taps are reached through an indirection buffer: for each output pixel, kh*kw
// pointers (row-major over the kernel window) to the first channel of an input
// pixel, or to a buffer of `channels` input-zero-point bytes for padding. Stride,
// dilation and padding live entirely in those pointers. Kernels walk channel
// blocks outside and pixels inside, so per-block set-up (weights widened or
// masked, parameters reordered) is paid once per call: call with many pixels.
//
// Packed weights (ISA-independent): raw int8, channels in blocks of 64,
// [ceil(C/64)][taps][64], zero-filled past C. 64 bytes of one tap are one
// AVX-512 register: vpdpbusd multiplies them lane-wise against the input's 64
// channels with byte masks, no shuffles; AVX2 and NEON widen 16 channels at a
// time to int16 tap pairs once per call.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/isa.h"

namespace qtorch {
namespace kernels {

constexpr size_t kDepthwiseChannelBlock = 64;

struct DepthwiseRequant {
  const int32_t* offsets;             // [channels]
  const float* multipliers;           // [channels]
  const float* biases;                // [channels], in accumulator units
  const int32_t* weight_zero_points;  // [channels]
  int32_t out_zero_point;
  int32_t out_min, out_max;    // 0..255, or out_zero_point..255 with ReLU fused
};

// `pixels` output pixels: pixel p reads taps from indirection[p * taps + t] (at
// channel offset 0) and writes channels [0, channels) to out + p * out_stride.
using DepthwiseFn = void (*)(size_t pixels, size_t channels, size_t taps, const uint8_t* const* indirection,
                             const int8_t* packed_weights, const DepthwiseRequant& requant, uint8_t* out,
                             size_t out_stride);

struct DepthwiseUkernels {
  DepthwiseFn taps9;    // 3x3 windows (taps must be 9)
  DepthwiseFn taps25;   // 5x5 windows (taps must be 25)
  DepthwiseFn generic;  // any window
};

inline size_t depthwise_packed_size(size_t channels, size_t taps) {
  return (channels + kDepthwiseChannelBlock - 1) / kDepthwiseChannelBlock * taps * kDepthwiseChannelBlock;
}

// Packs weight[c][t] (int8, row-major [channels][taps]) into the layout above
// and writes sum_t (w_t[c] - weight_zero_points[c]) to sums[c].
void depthwise_pack(size_t channels, size_t taps, const int8_t* weight, const int32_t* weight_zero_points,
                    int8_t* packed, int32_t* sums);
// The inverse of depthwise_pack's layout: writes weight[c][t] from packed.
void depthwise_unpack(size_t channels, size_t taps, const int8_t* packed, int8_t* weight);

// The function for a window of `taps` taps from a table.
inline DepthwiseFn depthwise_select(const DepthwiseUkernels& k, size_t taps) {
  return taps == 9 ? k.taps9 : taps == 25 ? k.taps25 : k.generic;
}

const DepthwiseUkernels& depthwise_ukernels(Isa isa);
inline const DepthwiseUkernels& depthwise_ukernels() { return depthwise_ukernels(active_isa()); }

extern const DepthwiseUkernels kDepthwiseScalar;
#if QTORCH_ARCH_X86
extern const DepthwiseUkernels kDepthwiseAvx2;
extern const DepthwiseUkernels kDepthwiseAvx512Vnni;
#elif QTORCH_ARCH_ARM64
extern const DepthwiseUkernels kDepthwiseNeon;
#endif

}  // namespace kernels
}  // namespace qtorch
