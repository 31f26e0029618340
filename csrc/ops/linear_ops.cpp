// Quantized linear: weight packing, static linear (uint8 -> uint8, or
// dequantized float for float edges), dynamic linear (float -> float with
// activations quantized per call) over the GEMM kernels of csrc/kernels/gemm.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "checks.h"
#include "gemm/gemm.h"
#include "gemm_common.h"
#include "quantize/quantize.h"

namespace qtorch {
namespace ops {
namespace {

void check_weight(const at::Tensor& weight) {
  check_dtype(weight, at::kChar, "weight");
  TORCH_CHECK_VALUE(weight.dim() == 2, "weight must be 2-d [out_features, in_features], got shape ", weight.sizes());
  TORCH_CHECK_VALUE(weight.numel() > 0, "weight must not be empty, got shape ", weight.sizes());
  TORCH_CHECK_VALUE(weight.size(1) <= int64_t(kernels::kMaxGemmK), "in_features must be at most ",
                    kernels::kMaxGemmK, " (exact int32 accumulation), got ", weight.size(1));
}

std::tuple<at::Tensor, at::Tensor> linear_prepack(const at::Tensor& weight) {
  check_weight(weight);
  const at::Tensor w = weight.contiguous();
  const int64_t n = w.size(0), k = w.size(1);
  at::Tensor packed = at::empty(packed_shape(n, k), w.options());
  at::Tensor col_sums = at::empty({n}, w.options().dtype(at::kInt));
  kernels::pack_b(n, k, w.const_data_ptr<int8_t>(), k, packed.data_ptr<int8_t>(), col_sums.data_ptr<int32_t>());
  return {packed, col_sums};
}

at::Tensor linear_unpack(const at::Tensor& packed, int64_t out_features, int64_t in_features) {
  check_packed(packed, out_features, in_features);
  at::Tensor w = at::empty({out_features, in_features}, packed.options());
  kernels::unpack_b(out_features, in_features, packed.const_data_ptr<int8_t>(), w.data_ptr<int8_t>(), in_features);
  return w;
}

// Rows of K uint8 with unit element stride: a view when possible, else a copy.
at::Tensor as_rows(const at::Tensor& input, int64_t k) {
  at::Tensor x = input.reshape({-1, k});
  if (x.stride(1) != 1 && k > 1) x = x.contiguous();
  return x;
}

// The input is [..., in_features]. The Meta kernels reach output_shape without the CPU
// kernels' checks, so it checks too.
void check_features_dim(const at::Tensor& input) {
  TORCH_CHECK_VALUE(input.dim() >= 1, "input must have at least 1 dimension, got a 0-d tensor");
}

std::vector<int64_t> output_shape(const at::Tensor& input, int64_t n) {
  check_features_dim(input);
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  shape.back() = n;
  return shape;
}

at::Tensor linear_static(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& col_sums,
                         int64_t in_features, const c10::optional<at::Tensor>& bias, double input_scale,
                         int64_t input_zero_point, const at::Tensor& weight_scales,
                         const at::Tensor& weight_zero_points, double output_scale, int64_t output_zero_point,
                         bool float_output, bool relu) {
  check_dtype(input, at::kByte, "input");
  check_features_dim(input);
  check_scale(input_scale, "input_scale");
  check_zero_point(input_zero_point, at::kByte, "input_zero_point");
  check_scale(output_scale, "output_scale");
  check_zero_point(output_zero_point, at::kByte, "output_zero_point");
  LinearArgs args = check_linear_args(input.size(-1), packed, col_sums, in_features, bias, weight_scales,
                                      weight_zero_points);
  OutputPipeline p = args.pipeline;
  p.a_scale = float(input_scale);
  p.a_zero_point = int32_t(input_zero_point);
  p.c_scale = float(output_scale);
  p.c_zero_point = int32_t(output_zero_point);
  p.relu = relu;
  p.output = float_output ? GemmOutput::kDequantized : GemmOutput::kUint8;
  const at::Tensor rows = as_rows(input, args.k);
  at::Tensor out = at::empty(output_shape(input, args.n), input.options().dtype(float_output ? at::kFloat : at::kByte));
  run_gemm(rows, args, p, out.data_ptr(), args.n);
  return out;
}

at::Tensor linear(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& col_sums,
                  int64_t in_features, const c10::optional<at::Tensor>& bias, double input_scale,
                  int64_t input_zero_point, const at::Tensor& weight_scales, const at::Tensor& weight_zero_points,
                  double output_scale, int64_t output_zero_point, bool float_output) {
  return linear_static(input, packed, col_sums, in_features, bias, input_scale, input_zero_point, weight_scales,
                       weight_zero_points, output_scale, output_zero_point, float_output, false);
}

at::Tensor linear_relu(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& col_sums,
                       int64_t in_features, const c10::optional<at::Tensor>& bias, double input_scale,
                       int64_t input_zero_point, const at::Tensor& weight_scales,
                       const at::Tensor& weight_zero_points, double output_scale, int64_t output_zero_point,
                       bool float_output) {
  return linear_static(input, packed, col_sums, in_features, bias, input_scale, input_zero_point, weight_scales,
                       weight_zero_points, output_scale, output_zero_point, float_output, true);
}

at::Tensor linear_dynamic(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& col_sums,
                          int64_t in_features, const c10::optional<at::Tensor>& bias,
                          const at::Tensor& weight_scales, const at::Tensor& weight_zero_points, bool reduce_range,
                          bool relu) {
  check_float_input(input, "input");
  check_features_dim(input);
  LinearArgs args = check_linear_args(input.size(-1), packed, col_sums, in_features, bias, weight_scales,
                                      weight_zero_points);
  at::Tensor out = at::empty(output_shape(input, args.n), input.options());
  if (input.numel() == 0) return out;  // in_features > 0, so M == 0: nothing to compute
  const at::Tensor x = input.contiguous();
  // Activations are small next to the GEMM: below kSerialElements their range
  // and quantization run on the calling thread, so a call costs one fork/join,
  // the GEMM's.
  constexpr int64_t kSerialElements = 1 << 18;
  float min, max;
  parallel_float_range(x.const_data_ptr<float>(), x.numel(), kSerialElements, &min, &max);
  TORCH_CHECK_VALUE(std::isfinite(min) && std::isfinite(max),
                    "input must be finite: dynamic quantization takes its range from the input, got min ", min,
                    " and max ", max);
  const DynamicParams q = choose_dynamic_params(min, max, reduce_range);
  at::Tensor xq = at::empty(x.sizes(), x.options().dtype(at::kByte));
  const auto quantize_u8 = kernels::quantize_ukernels().quantize_u8;
  const float inv_scale = 1.0f / q.scale;
  const float* src = x.const_data_ptr<float>();
  uint8_t* dst = xq.data_ptr<uint8_t>();
  at::parallel_for(0, x.numel(), kSerialElements, [&](int64_t b, int64_t e) {
    quantize_u8(e - b, src + b, dst + b, inv_scale, q.zero_point);
  });
  OutputPipeline p = args.pipeline;
  p.a_scale = q.scale;
  p.a_zero_point = q.zero_point;
  p.relu = relu;
  p.output = GemmOutput::kFloat;
  run_gemm(xq.reshape({-1, args.k}), args, p, out.data_ptr(), args.n);
  return out;
}

// Float16 weights: packed [ceil(N/16), K, 16] float16 (see pack_b_f16).
at::Tensor linear_prepack_fp16(const at::Tensor& weight) {
  TORCH_CHECK_TYPE(weight.is_floating_point(), "weight must be a floating-point tensor, got ",
                   dtype_name(weight.scalar_type()));
  TORCH_CHECK_VALUE(weight.dim() == 2, "weight must be 2-d [out_features, in_features], got shape ", weight.sizes());
  TORCH_CHECK_VALUE(weight.numel() > 0, "weight must not be empty, got shape ", weight.sizes());
  const at::Tensor w = weight.to(at::kHalf).contiguous();
  const int64_t n = w.size(0), k = w.size(1);
  at::Tensor packed = at::empty({ceil_div(n, kGemmBlockN), k, int64_t(kGemmBlockN)}, w.options());
  kernels::pack_b_f16(n, k, reinterpret_cast<const uint16_t*>(w.const_data_ptr()), k,
                      reinterpret_cast<uint16_t*>(packed.data_ptr()));
  return packed;
}

at::Tensor linear_unpack_fp16(const at::Tensor& packed, int64_t out_features) {
  check_packed_fp16(packed, out_features);
  const int64_t k = packed.size(1);
  at::Tensor w = at::empty({out_features, k}, packed.options());
  kernels::unpack_b_f16(out_features, k, reinterpret_cast<const uint16_t*>(packed.const_data_ptr()),
                        reinterpret_cast<uint16_t*>(w.data_ptr()), k);
  return w;
}

at::Tensor linear_dynamic_fp16(const at::Tensor& input, const at::Tensor& packed, int64_t out_features,
                               const c10::optional<at::Tensor>& bias, bool relu) {
  check_float_input(input, "input");
  check_features_dim(input);
  check_packed_fp16(packed, out_features);
  const int64_t n = out_features, k = packed.size(1);
  TORCH_CHECK_VALUE(input.size(-1) == k, "input's last dimension must equal in_features (", k, "), got ",
                    input.size(-1));
  at::Tensor b;
  if (bias.has_value() && bias->defined()) {
    check_float_input(*bias, "bias");
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == n, "bias must be 1-d with out_features = ", n,
                      " elements, got shape ", bias->sizes());
    b = bias->contiguous();
  }
  at::Tensor out = at::empty(output_shape(input, n), input.options());
  const at::Tensor rows = as_rows(input, k);
  const int64_t m = rows.size(0);
  if (m == 0) return out;
  const float* a = rows.const_data_ptr<float>();
  const int64_t lda = m > 1 ? rows.stride(0) : k;
  const uint16_t* w = reinterpret_cast<const uint16_t*>(packed.const_data_ptr());
  const float* bias_ptr = b.defined() ? b.const_data_ptr<float>() : nullptr;
  float* c = out.data_ptr<float>();
  const kernels::GemmF16Fn gemm = kernels::gemm_ukernels().gemm_f32f16;
  parallel_tiles(m, n, k, [&](int64_t i0, int64_t rows_here, int64_t j0, int64_t j1) {
    gemm(rows_here, j0, j1, a + i0 * lda, lda, w, k, bias_ptr, relu, c + i0 * n, n);
  });
  return out;
}

// Fake (meta) kernels: shapes and dtypes only.
std::tuple<at::Tensor, at::Tensor> linear_prepack_meta(const at::Tensor& weight) {
  TORCH_CHECK_VALUE(weight.dim() == 2, "weight must be 2-d [out_features, in_features], got shape ", weight.sizes());
  return {at::empty(packed_shape(weight.size(0), weight.size(1)), meta_options(weight)),
          at::empty({weight.size(0)}, meta_options(weight).dtype(at::kInt))};
}
at::Tensor linear_unpack_meta(const at::Tensor& packed, int64_t out_features, int64_t in_features) {
  return at::empty({out_features, in_features}, meta_options(packed));
}
at::Tensor linear_meta(const at::Tensor& input, const at::Tensor&, const at::Tensor& col_sums, int64_t,
                       const c10::optional<at::Tensor>&, double, int64_t, const at::Tensor&, const at::Tensor&, double,
                       int64_t, bool float_output) {
  return at::empty(output_shape(input, col_sums.size(0)), meta_options(input).dtype(float_output ? at::kFloat : at::kByte));
}
at::Tensor linear_dynamic_meta(const at::Tensor& input, const at::Tensor&, const at::Tensor& col_sums, int64_t,
                               const c10::optional<at::Tensor>&, const at::Tensor&, const at::Tensor&, bool, bool) {
  return at::empty(output_shape(input, col_sums.size(0)), meta_options(input));
}

at::Tensor linear_prepack_fp16_meta(const at::Tensor& weight) {
  TORCH_CHECK_VALUE(weight.dim() == 2, "weight must be 2-d [out_features, in_features], got shape ", weight.sizes());
  return at::empty({ceil_div(weight.size(0), kGemmBlockN), weight.size(1), int64_t(kGemmBlockN)},
                   meta_options(weight).dtype(at::kHalf));
}
at::Tensor linear_unpack_fp16_meta(const at::Tensor& packed, int64_t out_features) {
  return at::empty({out_features, packed.size(1)}, meta_options(packed));
}
at::Tensor linear_dynamic_fp16_meta(const at::Tensor& input, const at::Tensor&, int64_t out_features,
                                    const c10::optional<at::Tensor>&, bool) {
  return at::empty(output_shape(input, out_features), meta_options(input));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(qtorch, m) {
  m.def("linear_prepack(Tensor weight) -> (Tensor packed_weight, Tensor col_sums)");
  m.def("linear_unpack(Tensor packed_weight, int out_features, int in_features) -> Tensor");
  m.def("linear(Tensor input, Tensor packed_weight, Tensor col_sums, int in_features, Tensor? bias, "
        "float input_scale, int input_zero_point, Tensor weight_scales, Tensor weight_zero_points, "
        "float output_scale, int output_zero_point, bool float_output=False) -> Tensor");
  m.def("linear_relu(Tensor input, Tensor packed_weight, Tensor col_sums, int in_features, Tensor? bias, "
        "float input_scale, int input_zero_point, Tensor weight_scales, Tensor weight_zero_points, "
        "float output_scale, int output_zero_point, bool float_output=False) -> Tensor");
  m.def("linear_dynamic(Tensor input, Tensor packed_weight, Tensor col_sums, int in_features, Tensor? bias, "
        "Tensor weight_scales, Tensor weight_zero_points, bool reduce_range=False, bool relu=False) -> Tensor");
  m.def("linear_prepack_fp16(Tensor weight) -> Tensor");
  m.def("linear_unpack_fp16(Tensor packed_weight, int out_features) -> Tensor");
  m.def("linear_dynamic_fp16(Tensor input, Tensor packed_weight, int out_features, Tensor? bias, "
        "bool relu=False) -> Tensor");
}

TORCH_LIBRARY_IMPL(qtorch, CPU, m) {
  m.impl("linear_prepack", &linear_prepack);
  m.impl("linear_unpack", &linear_unpack);
  m.impl("linear", &linear);
  m.impl("linear_relu", &linear_relu);
  m.impl("linear_dynamic", &linear_dynamic);
  m.impl("linear_prepack_fp16", &linear_prepack_fp16);
  m.impl("linear_unpack_fp16", &linear_unpack_fp16);
  m.impl("linear_dynamic_fp16", &linear_dynamic_fp16);
}

TORCH_LIBRARY_IMPL(qtorch, Meta, m) {
  m.impl("linear_prepack", &linear_prepack_meta);
  m.impl("linear_unpack", &linear_unpack_meta);
  m.impl("linear", &linear_meta);
  m.impl("linear_relu", &linear_meta);
  m.impl("linear_dynamic", &linear_dynamic_meta);
  m.impl("linear_prepack_fp16", &linear_prepack_fp16_meta);
  m.impl("linear_unpack_fp16", &linear_unpack_fp16_meta);
  m.impl("linear_dynamic_fp16", &linear_dynamic_fp16_meta);
}

}  // namespace ops
}  // namespace qtorch
