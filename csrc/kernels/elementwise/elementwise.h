// Elementwise microkernels on uint8 quantized values: add, mul, clamp and
// 256-entry table lookup, one table of function pointers per ISA.
//
// Semantics (identical on every path, the scalar header is the definition):
//   add: y = clamp(round_half_even(float(a - za) * ma + float(b - zb) * mb) + zy, lo, hi)
//        with ma = sa / sy, mb = sb / sy (the op layer computes them)
//   mul: y = clamp(round_half_even(float((a - za) * (b - zb)) * m) + zy, lo, hi)
//        with m = sa * sb / sy; the integer product is exact in float (|.| <= 65025)
//   clamp: y = min(max(x, lo), hi)   (relu, relu6, hardtanh with unchanged parameters)
//   lut:   y = table[x]              (every other unary function, table built per call)
// lo/hi bound the output in the integer domain: 0..255, or zy..255 for a fused ReLU.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/isa.h"

namespace qtorch {
namespace kernels {

struct AddParams {
  float a_multiplier, b_multiplier;
  int32_t a_zero_point, b_zero_point, out_zero_point;
  uint8_t out_min, out_max;
};

struct MulParams {
  float multiplier;
  int32_t a_zero_point, b_zero_point, out_zero_point;
  uint8_t out_min, out_max;
};

using AddFn = void (*)(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* y, const AddParams& p);
using MulFn = void (*)(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* y, const MulParams& p);
using ClampFn = void (*)(size_t n, const uint8_t* x, uint8_t* y, uint8_t lo, uint8_t hi);
using LutFn = void (*)(size_t n, const uint8_t* x, uint8_t* y, const uint8_t* table);

struct ElementwiseUkernels {
  AddFn add_u8;
  MulFn mul_u8;
  ClampFn clamp_u8;
  LutFn lut_u8;
};

const ElementwiseUkernels& elementwise_ukernels(Isa isa);
inline const ElementwiseUkernels& elementwise_ukernels() { return elementwise_ukernels(active_isa()); }

extern const ElementwiseUkernels kElementwiseScalar;
#if QTORCH_ARCH_X86
extern const ElementwiseUkernels kElementwiseAvx2;
extern const ElementwiseUkernels kElementwiseAvx512;
#elif QTORCH_ARCH_ARM64
extern const ElementwiseUkernels kElementwiseNeon;
#endif

}  // namespace kernels
}  // namespace qtorch
