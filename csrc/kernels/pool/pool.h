// Pooling and resize microkernels on uint8 data, one table of function
// pointers per ISA. A pooling call produces `outputs` output pixels of
// `channels` contiguous values each, output o from the rows
// rows[k] + o * row_step (k < count) that the op layer selected (an
// indirection list: padding is simply left out), written to y + o * y_step
// (never overlapping the rows: a vector tail may compute a few values twice).
// So one kernel serves NHWC windows (channels = C), separable passes over
// whole image rows, and NCHW planes (split into phases by deinterleave_u8, so
// channels = output columns; or channels = 1, row_step = stride), for every
// kernel size, stride, dilation, padding, ceil_mode and adaptive window.
//
// Semantics (identical on every path, the scalar header is the definition):
//   max_pool: y[o * y_step + c] = max_k rows[k][o * row_step + c]         (count >= 1; exact)
//   avg_pool: y[o * y_step + c] = clamp(round_half_even(float(bias + sum_k rows[k][o * row_step + c])
//                                        * multiplier) + zero_point, 0, 255)
//             bias = -input_zero_point * count, multiplier = in_scale / out_scale / divisor;
//             bias + sum is exact in int64 for every count (a global average over a plane of
//             more than 2^31 / 255 bytes passes int32), then rounded once to float.
//   bilinear: y[c] = clamp(round_half_even(h0 * (w0 * r0[c] + w1 * r1[c]) + h1 * (w0 * r2[c] + w1 * r3[c])),
//                          0, 255)   on the raw integers (weights sum to 1, so the
//             quantization parameters carry over), rows = {top-left, top-right,
//             bottom-left, bottom-right}, weights = {h0, h1, w0, w1}.
//   deinterleave: y[r * y_step + (c % phases) * phase_step + c / phases] = x[r * x_step + c]
//             for r < rows, c < width: splits rows into `phases` column phases (for a
//             stride-s window, phase q holds columns q, q + s, ...), so the windows of
//             consecutive NCHW outputs become contiguous and the kernels above vectorize
//             over outputs (channels = output columns).
//   avg_pool_runs: y[i * y_step] = avg_pool of the `length` contiguous bytes at x + i * x_step,
//             i < runs (same rounding as avg_pool with count = length): global average
//             pooling of NCHW planes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/isa.h"

namespace qtorch {
namespace kernels {

struct AvgPoolParams {
  int64_t bias;  // -input_zero_point * count: past int32 for windows of more than 2^31 / 255 taps
  float multiplier;
  int32_t zero_point;
};

using MaxPoolFn = void (*)(size_t outputs, size_t channels, size_t count, const uint8_t* const* rows,
                           size_t row_step, uint8_t* y, size_t y_step);
using AvgPoolFn = void (*)(size_t outputs, size_t channels, size_t count, const uint8_t* const* rows,
                           size_t row_step, uint8_t* y, size_t y_step, const AvgPoolParams& p);
using BilinearFn = void (*)(size_t channels, const uint8_t* const* rows, const float* weights, uint8_t* y);
using DeinterleaveFn = void (*)(size_t rows, size_t width, size_t phases, const uint8_t* x, size_t x_step, uint8_t* y,
                                size_t y_step, size_t phase_step);
using AvgPoolRunsFn = void (*)(size_t runs, size_t length, const uint8_t* x, size_t x_step, uint8_t* y, size_t y_step,
                               const AvgPoolParams& p);

struct PoolUkernels {
  MaxPoolFn max_pool_u8;
  AvgPoolFn avg_pool_u8;
  BilinearFn bilinear_u8;
  DeinterleaveFn deinterleave_u8;
  AvgPoolRunsFn avg_pool_runs_u8;
};

const PoolUkernels& pool_ukernels(Isa isa);
inline const PoolUkernels& pool_ukernels() { return pool_ukernels(active_isa()); }

extern const PoolUkernels kPoolScalar;
#if QTORCH_ARCH_X86
extern const PoolUkernels kPoolAvx2;
extern const PoolUkernels kPoolAvx512;
#elif QTORCH_ARCH_ARM64
extern const PoolUkernels kPoolNeon;
#endif

}  // namespace kernels
}  // namespace qtorch
