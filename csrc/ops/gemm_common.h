// Helpers shared by the ops built on the GEMM kernels (linear_ops.cpp,
// rnn_ops.cpp): packed-weight shapes and checks, validated linear arguments,
// the threaded GEMM driver and the classic dynamic quantization parameters
// (also quantize_ops.cpp's per-row dynamic quantization).
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "checks.h"
#include "gemm/gemm.h"

namespace qtorch {
namespace ops {

using kernels::GemmOutput;
using kernels::kGemmBlockN;
using kernels::kGemmGroupK;
using kernels::OutputPipeline;
using kernels::PackedB;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline std::vector<int64_t> packed_shape(int64_t n, int64_t k) {
  return {ceil_div(n, kGemmBlockN), ceil_div(k, kGemmGroupK), int64_t(kGemmBlockN), int64_t(kGemmGroupK)};
}

inline void check_packed(const at::Tensor& packed, int64_t out_features, int64_t in_features) {
  check_dtype(packed, at::kChar, "packed_weight");
  TORCH_CHECK_VALUE(out_features > 0 && in_features > 0, "out_features and in_features must be positive, got ",
                    out_features, " and ", in_features);
  TORCH_CHECK_VALUE(packed.sizes() == at::IntArrayRef(packed_shape(out_features, in_features)) &&
                        packed.is_contiguous(),
                    "packed_weight must be a contiguous [", ceil_div(out_features, kGemmBlockN), ", ",
                    ceil_div(in_features, kGemmGroupK), ", 16, 4] tensor for ", out_features, "x", in_features,
                    " weights, got shape ", packed.sizes());
}

// Everything a linear call needs, validated: weights, parameters, bias.
struct LinearArgs {
  int64_t n, k;
  PackedB b;
  at::Tensor scales, zero_points, bias;  // float32 [1 or N], int32 [1 or N], float32 [N] or undefined
  OutputPipeline pipeline;
};

inline LinearArgs check_linear_args(int64_t input_features, const at::Tensor& packed, const at::Tensor& col_sums,
                             int64_t in_features, const c10::optional<at::Tensor>& bias,
                             const at::Tensor& weight_scales, const at::Tensor& weight_zero_points) {
  check_dtype(col_sums, at::kInt, "col_sums");
  TORCH_CHECK_VALUE(col_sums.dim() == 1 && col_sums.is_contiguous(), "col_sums must be a contiguous 1-d tensor, got shape ",
                    col_sums.sizes());
  const int64_t n = col_sums.size(0);
  check_packed(packed, n, in_features);
  TORCH_CHECK_VALUE(input_features == in_features, "input's last dimension must equal in_features (", in_features,
                    "), got ", input_features);
  LinearArgs args;
  args.n = n;
  args.k = in_features;
  args.b = kernels::packed_b(packed.const_data_ptr<int8_t>(), col_sums.const_data_ptr<int32_t>(), size_t(n), size_t(in_features));
  TORCH_CHECK_TYPE(weight_scales.is_floating_point(), "weight_scales must be a floating-point tensor, got ",
                   dtype_name(weight_scales.scalar_type()));
  TORCH_CHECK_TYPE(!weight_zero_points.is_floating_point() && weight_zero_points.scalar_type() != at::kBool,
                   "weight_zero_points must be an integer tensor, got ", dtype_name(weight_zero_points.scalar_type()));
  const int64_t channels = weight_scales.numel();
  TORCH_CHECK_VALUE(weight_scales.dim() <= 1 && (channels == 1 || channels == n),
                    "weight_scales must hold 1 (per tensor) or out_features = ", n,
                    " (per channel) values, got shape ", weight_scales.sizes());
  TORCH_CHECK_VALUE(weight_zero_points.dim() <= 1 && weight_zero_points.numel() == channels,
                    "weight_zero_points must hold as many values as weight_scales (", channels, "), got shape ",
                    weight_zero_points.sizes());
  args.scales = weight_scales.to(at::kFloat).contiguous();
  args.zero_points = weight_zero_points.to(at::kInt).contiguous();
  // Loops over at most N values: cheaper than tensor reductions per call.
  const float* s = args.scales.const_data_ptr<float>();
  const int32_t* z = args.zero_points.const_data_ptr<int32_t>();
  bool any_zero_point = false;
  for (int64_t c = 0; c < channels; ++c) {
    TORCH_CHECK_VALUE(std::isfinite(s[c]) && s[c] > 0.f && std::isfinite(1.0f / s[c]),
                      "weight_scales must be positive and finite, got ", s[c], " at index ", c);
    TORCH_CHECK_VALUE(z[c] >= -128 && z[c] <= 127, "weight_zero_points must lie in [-128, 127], got ", z[c],
                      " at index ", c);
    any_zero_point |= z[c] != 0;
  }
  if (bias.has_value() && bias->defined()) {
    check_float_input(*bias, "bias");
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == n, "bias must be 1-d with out_features = ", n,
                      " elements, got shape ", bias->sizes());
    args.bias = bias->contiguous();
  }
  OutputPipeline& p = args.pipeline;
  p.b_scales = s;
  p.b_zero_points = any_zero_point ? z : nullptr;
  p.b_per_channel = channels > 1;
  p.bias = args.bias.defined() ? args.bias.const_data_ptr<float>() : nullptr;
  return args;
}

// Splits rows x columns into tasks of up to kTaskRows x kTaskColumns, column
// panels outermost so one thread keeps reusing one panel of weights, and runs
// task(i0, rows, j0, j1) in parallel. Each output element is computed by one
// task, the same way for any split, so results do not depend on the thread count.
template <typename Task>
inline void parallel_tiles(int64_t m, int64_t n, int64_t k, const Task& task) {
  constexpr int64_t kTaskRows = 60, kTaskColumns = 64;
  constexpr int64_t kMinTaskMacs = 1 << 17;
  if (m == 0 || n == 0) return;
  const int64_t row_tasks = ceil_div(m, kTaskRows), column_tasks = ceil_div(n, kTaskColumns);
  const int64_t macs_per_task = std::min(m, kTaskRows) * std::min(n, kTaskColumns) * std::max<int64_t>(k, 1);
  const int64_t grain = std::max<int64_t>(1, kMinTaskMacs / macs_per_task);
  at::parallel_for(0, row_tasks * column_tasks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t i0 = (t % row_tasks) * kTaskRows, j0 = (t / row_tasks) * kTaskColumns;
      task(i0, std::min(kTaskRows, m - i0), j0, std::min(n, j0 + kTaskColumns));
    }
  });
}

// Float outputs from this size on bypass the caches (OutputPipeline::
// stream_float_output): larger than a core's L2 on current x86 parts, so the
// next op reads them from L3 or memory either way. Dynamic Linear 256x768x3072
// (3 MB of output): 1.09x faster on one thread.
constexpr int64_t kStreamedOutputBytes = int64_t(2) << 20;

// Threaded GEMM of m rows of A (row stride lda bytes) into c (row stride ldc
// elements of the pipeline's output type).
inline void run_gemm(const uint8_t* a, int64_t m, int64_t lda, const LinearArgs& args, const OutputPipeline& p,
                     void* c, int64_t ldc) {
  if (m == 0) return;
  const kernels::GemmFn gemm = kernels::gemm_ukernels().gemm_u8s8;
  const size_t bytes = kernels::gemm_output_bytes(p.output);
  OutputPipeline pipeline = p;
  const bool float_output = p.output == kernels::GemmOutput::kFloat || p.output == kernels::GemmOutput::kDequantized;
  pipeline.stream_float_output = float_output && m * args.n * int64_t(bytes) >= kStreamedOutputBytes;
  parallel_tiles(m, args.n, args.k, [&](int64_t i0, int64_t rows_here, int64_t j0, int64_t j1) {
    gemm(rows_here, j0, j1, a + i0 * lda, lda, args.b, pipeline, static_cast<char*>(c) + i0 * ldc * bytes, ldc);
  });
}

inline void run_gemm(const at::Tensor& rows, const LinearArgs& args, const OutputPipeline& p, void* c, int64_t ldc) {
  const int64_t m = rows.size(0);
  if (m == 0) return;
  run_gemm(rows.const_data_ptr<uint8_t>(), m, m > 1 ? rows.stride(0) : args.k, args, p, c, ldc);
}

// *min, *max over x[0..n) (n >= 1), both NaN if any value is NaN: the
// float_range kernel on the calling thread up to `serial` values, else over
// chunks of that size in parallel (at::aminmax took 53 us on a 128x3072 input
// on one thread; the kernel a third of that).
inline void parallel_float_range(const float* x, int64_t n, int64_t serial, float* min, float* max) {
  const kernels::FloatRangeFn range = kernels::gemm_ukernels().float_range;
  if (n <= serial) {
    range(size_t(n), x, min, max);
    return;
  }
  const int64_t chunks = ceil_div(n, serial);
  std::vector<float> lo(static_cast<size_t>(chunks)), hi(static_cast<size_t>(chunks));
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t first = c * serial;
      range(size_t(std::min(serial, n - first)), x + first, &lo[size_t(c)], &hi[size_t(c)]);
    }
  });
  *min = lo[0];
  *max = hi[0];
  for (int64_t c = 1; c < chunks; ++c) {
    if (std::isnan(lo[size_t(c)]) || std::isnan(*min)) {
      *min = *max = std::numeric_limits<float>::quiet_NaN();
      return;
    }
    *min = std::min(*min, lo[size_t(c)]);
    *max = std::max(*max, hi[size_t(c)]);
  }
}

// The classic dynamic quantization parameters: torch's ChooseQuantizationParams
// (preserve_sparsity and power-of-two scales off) for the integer range
// [qmin, qmax], as torch.quantize_per_tensor_dynamic computes them. The range
// always holds 0; min and max must be finite.
//   scale = (max(max, 0) - min(min, 0)) / (qmax - qmin) in double, 0.1 when that
//           is 0 in float, raised to 6.1e-5 when smaller (min/max rescaled);
//   zero point = qmin - min/scale or qmax - max/scale (the one with the smaller
//           error term), clamped to [qmin, qmax], rounded half to even.
struct DynamicParams {
  float scale;
  int32_t zero_point;
};

inline DynamicParams choose_quantization_params(float min, float max, int32_t qmin, int32_t qmax) {
  min = std::min(min, 0.f);
  max = std::max(max, 0.f);
  double scale = (double(max) - min) / (qmax - qmin);
  if (float(scale) == 0.0f || std::isinf(1.0f / float(scale))) scale = 0.1;
  constexpr float kSmallScale = 6.1e-5f;
  if (scale < kSmallScale) {
    const float original = float(scale);
    scale = kSmallScale;
    if (min == 0.0f) {
      max = kSmallScale * (qmax - qmin);
    } else if (max == 0.0f) {
      min = -kSmallScale * (qmax - qmin);
    } else {
      const float amplifier = kSmallScale / original;
      min *= amplifier;
      max *= amplifier;
    }
  }
  const double zp_from_min = qmin - min / scale, zp_from_max = qmax - max / scale;
  const double zp_from_min_error = std::abs(qmin) - std::abs(min / scale);
  const double zp_from_max_error = std::abs(qmax) - std::abs(max / scale);
  const double initial = zp_from_min_error < zp_from_max_error ? zp_from_min : zp_from_max;
  int32_t zp;
  if (initial < qmin) zp = qmin;
  else if (initial > qmax) zp = qmax;
  else zp = int32_t(std::nearbyint(initial));
  return {float(scale), zp};
}

// Dynamic Linear's uint8 activations: qmin 0, qmax 255, or 127 under reduce_range.
inline DynamicParams choose_dynamic_params(float min, float max, bool reduce_range) {
  return choose_quantization_params(min, max, 0, reduce_range ? 127 : 255);
}

inline void check_packed_fp16(const at::Tensor& packed, int64_t out_features) {
  check_dtype(packed, at::kHalf, "packed_weight");
  TORCH_CHECK_VALUE(out_features > 0, "out_features must be positive, got ", out_features);
  TORCH_CHECK_VALUE(packed.dim() == 3 && packed.size(0) == ceil_div(out_features, kGemmBlockN) &&
                        packed.size(1) > 0 && packed.size(2) == int64_t(kGemmBlockN) && packed.is_contiguous(),
                    "packed_weight must be a contiguous [", ceil_div(out_features, kGemmBlockN),
                    ", in_features, 16] float16 tensor for ", out_features, " outputs, got shape ", packed.sizes());
}

}  // namespace ops
}  // namespace qtorch
