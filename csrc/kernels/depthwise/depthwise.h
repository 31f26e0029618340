// Depthwise convolution microkernels on NHWC uint8 activations: each output
// channel reads one input channel through kh*kw taps, then is requantized to
// uint8 (bias and ReLU fused). One table of function pointers per ISA.
//
// Semantics (identical on every path):
//   acc[c] = offsets[c] + sum_t x_t[c] * w_t[c]            (exact int32)
//   y[c]   = clamp(round_half_even((float(acc[c]) + biases[c]) * multipliers[c])
//                  + out_zero_point, out_min, out_max)
// where x_t are uint8 input values (padding cells read the input zero point,
// i.e. real zero) and w_t = weight - weight_zero_point as int16. The op layer
// sets offsets[c] = -input_zero_point * sum_t w_t[c], and with
// ab = input_scale * weight_scale[c]: multipliers[c] = ab / output_scale and
// biases[c] = bias[c] / ab, so acc is the convolution of zero-point-centred
// values and the float steps are those of the GEMM output pipeline (gemm.h):
// a depthwise layer gives the same bits as the same layer run as grouped GEMM.
//
// Taps are reached through an indirection buffer: for each output pixel, kh*kw
// pointers (row-major over the kernel window) to the first channel of an input
// pixel, or to a buffer of `channels` input-zero-point bytes for padding. Stride,
// dilation and padding live entirely in those pointers.
//
// Packed weights (ISA-independent): channels in blocks of 16, taps in pairs,
// [ceil(C/16)][ceil(taps/2)][16][2] int16, zero-filled past C and past the last
// tap. A pair of taps of one channel is what x86 pmaddwd / vpdpwssd and NEON
// vld2 + vmlal consume directly from one load.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/isa.h"

namespace qtorch {
namespace kernels {

constexpr size_t kDepthwiseChannelBlock = 16;

struct DepthwiseRequant {
  const int32_t* offsets;      // [channels]
  const float* multipliers;    // [channels]
  const float* biases;         // [channels], in accumulator units
  int32_t out_zero_point;
  int32_t out_min, out_max;    // 0..255, or out_zero_point..255 with ReLU fused
};

// `pixels` output pixels: pixel p reads taps from indirection[p * taps + t] (at
// channel offset 0) and writes channels [0, channels) to out + p * out_stride.
using DepthwiseFn = void (*)(size_t pixels, size_t channels, size_t taps, const uint8_t* const* indirection,
                             const int16_t* packed_weights, const DepthwiseRequant& requant, uint8_t* out,
                             size_t out_stride);

struct DepthwiseUkernels {
  DepthwiseFn taps9;    // 3x3 windows (taps must be 9)
  DepthwiseFn taps25;   // 5x5 windows (taps must be 25)
  DepthwiseFn generic;  // any window
};

inline size_t depthwise_tap_pairs(size_t taps) { return (taps + 1) / 2; }
inline size_t depthwise_packed_size(size_t channels, size_t taps) {
  return (channels + kDepthwiseChannelBlock - 1) / kDepthwiseChannelBlock * depthwise_tap_pairs(taps) *
         kDepthwiseChannelBlock * 2;
}

// Packs weight[c][t] (int8, row-major [channels][taps]) minus the channel's
// weight zero point into the layout above, and writes sum_t w_t[c] to sums[c].
void depthwise_pack(size_t channels, size_t taps, const int8_t* weight, const int32_t* weight_zero_points,
                    int16_t* packed, int32_t* sums);

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
