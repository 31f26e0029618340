// Elementwise ops on uint8 quantized tensors with explicit parameters: add,
// mul (optionally with a fused ReLU), cat, and the unary functions: the
// activations and add/mul by a scalar (clamp for the exact ones, a 256-entry
// table built per call for the rest).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "checks.h"
#include "elementwise/elementwise.h"
#include "quantize/quantize.h"
#include "quantize/quantize_scalar.h"

namespace qtorch {
namespace ops {
namespace {

using kernels::elementwise_ukernels;

constexpr int64_t kGrain = 1 << 15;  // elements per parallel task

template <typename Fn>
void parallel_chunks(int64_t n, const Fn& fn) {
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) { fn(begin, end); });
}

void check_u8_input(const at::Tensor& t, const char* arg) { check_dtype(t, at::kByte, arg); }

void check_params(double scale, int64_t zero_point, const char* scale_arg, const char* zp_arg) {
  check_scale(scale, scale_arg);
  check_zero_point(zero_point, at::kByte, zp_arg);
}

uint8_t quantize_u8(float value, double scale, int64_t zero_point) {
  return kernels::quantize_value<uint8_t>(value, 1.0f / static_cast<float>(scale), static_cast<int32_t>(zero_point));
}

// `other` laid out exactly like `like` (same strides), so both can be walked flat.
at::Tensor same_layout(const at::Tensor& other, const at::Tensor& like) {
  if (other.strides() == like.strides()) return other;
  at::Tensor out = at::empty_like(like);
  out.copy_(other);
  return out;
}

void check_same_shape(const at::Tensor& a, const at::Tensor& b, const char* op) {
  TORCH_CHECK_VALUE(a.sizes() == b.sizes(), op, ": a and b must have the same shape (broadcasting is not supported), got ",
                    a.sizes(), " and ", b.sizes());
}

// ---- add / mul ---------------------------------------------------------------

at::Tensor add_impl(const at::Tensor& a_in, double a_scale, int64_t a_zp, const at::Tensor& b_in, double b_scale,
                    int64_t b_zp, double scale, int64_t zero_point, bool relu, const char* op) {
  check_u8_input(a_in, "a");
  check_u8_input(b_in, "b");
  check_same_shape(a_in, b_in, op);
  check_params(a_scale, a_zp, "a_scale", "a_zero_point");
  check_params(b_scale, b_zp, "b_scale", "b_zero_point");
  check_params(scale, zero_point, "scale", "zero_point");
  const at::Tensor a = dense(a_in);
  const at::Tensor b = same_layout(b_in, a);
  at::Tensor y = empty_dense_like(a, at::kByte);
  kernels::AddParams p;
  p.a_multiplier = static_cast<float>(a_scale / scale);
  p.b_multiplier = static_cast<float>(b_scale / scale);
  p.a_zero_point = static_cast<int32_t>(a_zp);
  p.b_zero_point = static_cast<int32_t>(b_zp);
  p.out_zero_point = static_cast<int32_t>(zero_point);
  p.out_min = relu ? static_cast<uint8_t>(zero_point) : 0;
  p.out_max = 255;
  const auto fn = elementwise_ukernels().add_u8;
  const uint8_t* pa = a.const_data_ptr<uint8_t>();
  const uint8_t* pb = b.const_data_ptr<uint8_t>();
  uint8_t* py = y.data_ptr<uint8_t>();
  parallel_chunks(a.numel(), [&](int64_t s, int64_t e) { fn(e - s, pa + s, pb + s, py + s, p); });
  return y;
}

at::Tensor mul_impl(const at::Tensor& a_in, double a_scale, int64_t a_zp, const at::Tensor& b_in, double b_scale,
                    int64_t b_zp, double scale, int64_t zero_point, bool relu, const char* op) {
  check_u8_input(a_in, "a");
  check_u8_input(b_in, "b");
  check_same_shape(a_in, b_in, op);
  check_params(a_scale, a_zp, "a_scale", "a_zero_point");
  check_params(b_scale, b_zp, "b_scale", "b_zero_point");
  check_params(scale, zero_point, "scale", "zero_point");
  const at::Tensor a = dense(a_in);
  const at::Tensor b = same_layout(b_in, a);
  at::Tensor y = empty_dense_like(a, at::kByte);
  kernels::MulParams p;
  p.multiplier = static_cast<float>(a_scale * b_scale / scale);
  p.a_zero_point = static_cast<int32_t>(a_zp);
  p.b_zero_point = static_cast<int32_t>(b_zp);
  p.out_zero_point = static_cast<int32_t>(zero_point);
  p.out_min = relu ? static_cast<uint8_t>(zero_point) : 0;
  p.out_max = 255;
  const auto fn = elementwise_ukernels().mul_u8;
  const uint8_t* pa = a.const_data_ptr<uint8_t>();
  const uint8_t* pb = b.const_data_ptr<uint8_t>();
  uint8_t* py = y.data_ptr<uint8_t>();
  parallel_chunks(a.numel(), [&](int64_t s, int64_t e) { fn(e - s, pa + s, pb + s, py + s, p); });
  return y;
}

at::Tensor add(const at::Tensor& a, double a_scale, int64_t a_zp, const at::Tensor& b, double b_scale, int64_t b_zp,
               double scale, int64_t zero_point) {
  return add_impl(a, a_scale, a_zp, b, b_scale, b_zp, scale, zero_point, false, "add");
}
at::Tensor add_relu(const at::Tensor& a, double a_scale, int64_t a_zp, const at::Tensor& b, double b_scale,
                    int64_t b_zp, double scale, int64_t zero_point) {
  return add_impl(a, a_scale, a_zp, b, b_scale, b_zp, scale, zero_point, true, "add_relu");
}
at::Tensor mul(const at::Tensor& a, double a_scale, int64_t a_zp, const at::Tensor& b, double b_scale, int64_t b_zp,
               double scale, int64_t zero_point) {
  return mul_impl(a, a_scale, a_zp, b, b_scale, b_zp, scale, zero_point, false, "mul");
}
at::Tensor mul_relu(const at::Tensor& a, double a_scale, int64_t a_zp, const at::Tensor& b, double b_scale,
                    int64_t b_zp, double scale, int64_t zero_point) {
  return mul_impl(a, a_scale, a_zp, b, b_scale, b_zp, scale, zero_point, true, "mul_relu");
}

// ---- cat ---------------------------------------------------------------------

// Sizes of dims before `dim` (outer) and from `dim` on (run) in the memory order of `format`.
std::pair<int64_t, int64_t> outer_and_run(at::IntArrayRef sizes, int64_t dim, at::MemoryFormat format) {
  std::vector<int64_t> order(sizes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(i);
  if (format == at::MemoryFormat::ChannelsLast) order = {0, 2, 3, 1};
  int64_t outer = 1, run = 1;
  bool inner = false;
  for (int64_t d : order) {
    if (d == dim) inner = true;
    (inner ? run : outer) *= sizes[d];
  }
  return {outer, run};
}

// The output is channels_last when the first input whose layout is unambiguous
// (not both contiguous and channels_last, as with one channel) is channels_last.
at::MemoryFormat cat_memory_format(at::TensorList tensors) {
  for (const at::Tensor& t : tensors) {
    if (t.dim() != 4) break;
    const bool cl = t.is_contiguous(at::MemoryFormat::ChannelsLast), contiguous = t.is_contiguous();
    if (cl != contiguous) return cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  }
  return at::MemoryFormat::Contiguous;
}

at::Tensor cat(at::TensorList tensors, at::ArrayRef<double> scales, at::IntArrayRef zero_points, int64_t dim,
               double scale, int64_t zero_point) {
  TORCH_CHECK_VALUE(!tensors.empty(), "cat: tensors must not be empty");
  TORCH_CHECK_VALUE(scales.size() == tensors.size() && zero_points.size() == tensors.size(),
                    "cat: scales and zero_points must have one entry per tensor (", tensors.size(), "), got ",
                    scales.size(), " and ", zero_points.size());
  check_params(scale, zero_point, "scale", "zero_point");
  const at::Tensor& first = tensors[0];
  const int64_t ndim = first.dim();
  dim = check_axis(dim, ndim, "dim");
  std::vector<int64_t> out_sizes(first.sizes().begin(), first.sizes().end());
  out_sizes[dim] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    TORCH_CHECK_TYPE(t.scalar_type() == at::kByte, "cat: tensors[", i, "] must be a torch.uint8 tensor, got ",
                     dtype_name(t.scalar_type()));
    TORCH_CHECK_VALUE(t.dim() == ndim, "cat: tensors[", i, "] has ", t.dim(), " dims, tensors[0] has ", ndim);
    for (int64_t d = 0; d < ndim; ++d) {
      TORCH_CHECK_VALUE(d == dim || t.size(d) == first.size(d), "cat: tensors[", i, "] has shape ", t.sizes(),
                        ", which differs from tensors[0]'s ", first.sizes(), " outside dim ", dim);
    }
    check_scale(scales[i], "scales[i]");
    check_zero_point(zero_points[i], at::kByte, "zero_points[i]");
    out_sizes[dim] += t.size(dim);
  }
  const at::MemoryFormat format = cat_memory_format(tensors);
  at::Tensor y = at::empty(out_sizes, first.options().memory_format(format));
  const int64_t out_run = outer_and_run(out_sizes, dim, format).second;
  uint8_t* py = y.data_ptr<uint8_t>();
  const auto requantize = kernels::quantize_ukernels().requantize_u8_u8;
  int64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor x = tensors[i].contiguous(format);
    const auto [outer, run] = outer_and_run(x.sizes(), dim, format);
    const uint8_t* px = x.const_data_ptr<uint8_t>();
    const bool copy = scales[i] == scale && zero_points[i] == zero_point;
    const float multiplier = static_cast<float>(scales[i] / scale);
    const int32_t zp_in = static_cast<int32_t>(zero_points[i]), zp_out = static_cast<int32_t>(zero_point);
    if (run > 0) {
      at::parallel_for(0, outer, std::max<int64_t>(1, kGrain / run), [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) {
          uint8_t* dst = py + o * out_run + offset;
          const uint8_t* src = px + o * run;
          if (copy) std::memcpy(dst, src, run);
          else requantize(run, src, dst, zp_in, multiplier, zp_out);
        }
      });
    }
    offset += run;
  }
  return y;
}

// ---- unary activations -------------------------------------------------------

at::Tensor apply_clamp(const at::Tensor& input, uint8_t lo, uint8_t hi) {
  const at::Tensor x = dense(input);
  at::Tensor y = empty_dense_like(x, at::kByte);
  const auto fn = elementwise_ukernels().clamp_u8;
  const uint8_t* px = x.const_data_ptr<uint8_t>();
  uint8_t* py = y.data_ptr<uint8_t>();
  parallel_chunks(x.numel(), [&](int64_t s, int64_t e) { fn(e - s, px + s, py + s, lo, hi); });
  return y;
}

// y = quantize(f(dequantize(x))) through a table of all 256 inputs.
template <typename F>
at::Tensor apply_function(const at::Tensor& input, double x_scale, int64_t x_zp, double scale, int64_t zero_point,
                          const F& f) {
  std::array<uint8_t, 256> table;
  for (int q = 0; q < 256; ++q) {
    const float v = kernels::dequantize_value<uint8_t>(static_cast<uint8_t>(q), static_cast<float>(x_scale),
                                                       static_cast<int32_t>(x_zp));
    table[q] = quantize_u8(f(v), scale, zero_point);
  }
  const at::Tensor x = dense(input);
  at::Tensor y = empty_dense_like(x, at::kByte);
  const auto fn = elementwise_ukernels().lut_u8;
  const uint8_t* px = x.const_data_ptr<uint8_t>();
  uint8_t* py = y.data_ptr<uint8_t>();
  parallel_chunks(x.numel(), [&](int64_t s, int64_t e) { fn(e - s, px + s, py + s, table.data()); });
  return y;
}

void check_unary(const at::Tensor& input, double x_scale, int64_t x_zp, double scale, int64_t zero_point) {
  check_u8_input(input, "input");
  check_params(x_scale, x_zp, "input_scale", "input_zero_point");
  check_params(scale, zero_point, "scale", "zero_point");
}

// Scalar add / mul are unary functions of the input too: y = quantize(dequantize(x) op other).
at::Tensor add_scalar(const at::Tensor& input, double x_scale, int64_t x_zp, double other, double scale,
                      int64_t zero_point) {
  check_unary(input, x_scale, x_zp, scale, zero_point);
  TORCH_CHECK_VALUE(std::isfinite(other), "add_scalar: other must be finite, got ", other);
  const float c = static_cast<float>(other);
  return apply_function(input, x_scale, x_zp, scale, zero_point, [=](float v) { return v + c; });
}

at::Tensor mul_scalar(const at::Tensor& input, double x_scale, int64_t x_zp, double other, double scale,
                      int64_t zero_point) {
  check_unary(input, x_scale, x_zp, scale, zero_point);
  TORCH_CHECK_VALUE(std::isfinite(other), "mul_scalar: other must be finite, got ", other);
  const float c = static_cast<float>(other);
  return apply_function(input, x_scale, x_zp, scale, zero_point, [=](float v) { return v * c; });
}

// hardtanh family: exact clamp of the integers when the parameters carry over.
at::Tensor hardtanh(const at::Tensor& input, double x_scale, int64_t x_zp, double min_val, double max_val,
                    double scale, int64_t zero_point) {
  check_unary(input, x_scale, x_zp, scale, zero_point);
  TORCH_CHECK_VALUE(!std::isnan(min_val) && !std::isnan(max_val), "hardtanh: min_val and max_val must not be NaN, got ",
                    min_val, " and ", max_val);
  TORCH_CHECK_VALUE(min_val <= max_val, "hardtanh: min_val (", min_val, ") must not exceed max_val (", max_val, ")");
  if (x_scale == scale && x_zp == zero_point) {
    return apply_clamp(input, quantize_u8(static_cast<float>(min_val), scale, zero_point),
                       quantize_u8(static_cast<float>(max_val), scale, zero_point));
  }
  const float lo = static_cast<float>(min_val), hi = static_cast<float>(max_val);
  return apply_function(input, x_scale, x_zp, scale, zero_point,
                        [=](float v) { return v < lo ? lo : (v > hi ? hi : v); });
}

at::Tensor relu(const at::Tensor& input, double x_scale, int64_t x_zp, double scale, int64_t zero_point) {
  check_unary(input, x_scale, x_zp, scale, zero_point);
  if (x_scale == scale && x_zp == zero_point) return apply_clamp(input, static_cast<uint8_t>(zero_point), 255);
  return apply_function(input, x_scale, x_zp, scale, zero_point, [](float v) { return v > 0.f ? v : 0.f; });
}

at::Tensor relu6(const at::Tensor& input, double x_scale, int64_t x_zp, double scale, int64_t zero_point) {
  return hardtanh(input, x_scale, x_zp, 0.0, 6.0, scale, zero_point);
}

at::Tensor hardswish(const at::Tensor& input, double x_scale, int64_t x_zp, double scale, int64_t zero_point) {
  check_unary(input, x_scale, x_zp, scale, zero_point);
  return apply_function(input, x_scale, x_zp, scale, zero_point,
                        [](float v) { return v * std::min(std::max(v + 3.f, 0.f), 6.f) / 6.f; });
}

at::Tensor hardsigmoid(const at::Tensor& input, double x_scale, int64_t x_zp, double scale, int64_t zero_point) {
  check_unary(input, x_scale, x_zp, scale, zero_point);
  return apply_function(input, x_scale, x_zp, scale, zero_point,
                        [](float v) { return std::min(std::max(v + 3.f, 0.f), 6.f) / 6.f; });
}

at::Tensor sigmoid(const at::Tensor& input, double x_scale, int64_t x_zp, double scale, int64_t zero_point) {
  check_unary(input, x_scale, x_zp, scale, zero_point);
  return apply_function(input, x_scale, x_zp, scale, zero_point, [](float v) { return 1.f / (1.f + std::exp(-v)); });
}

at::Tensor leaky_relu(const at::Tensor& input, double x_scale, int64_t x_zp, double negative_slope, double scale,
                      int64_t zero_point) {
  check_unary(input, x_scale, x_zp, scale, zero_point);
  const float slope = static_cast<float>(negative_slope);
  return apply_function(input, x_scale, x_zp, scale, zero_point, [=](float v) { return v > 0.f ? v : v * slope; });
}

// ---- fake (meta) kernels -----------------------------------------------------

at::Tensor binary_meta(const at::Tensor& a, double, int64_t, const at::Tensor& b, double, int64_t, double, int64_t) {
  check_u8_input(a, "a");
  check_u8_input(b, "b");
  check_same_shape(a, b, "binary op");
  return at::empty_like(a, meta_options(a));  // a may be a CPU tensor when only b is meta
}
at::Tensor scalar_meta(const at::Tensor& x, double, int64_t, double, double, int64_t) {
  check_u8_input(x, "input");
  return at::empty_like(x);
}
at::Tensor unary_meta(const at::Tensor& x, double, int64_t, double, int64_t) {
  check_u8_input(x, "input");
  return at::empty_like(x);
}
at::Tensor unary1_meta(const at::Tensor& x, double, int64_t, double, double, int64_t) {
  check_u8_input(x, "input");
  return at::empty_like(x);
}
at::Tensor unary2_meta(const at::Tensor& x, double, int64_t, double, double, double, int64_t) {
  check_u8_input(x, "input");
  return at::empty_like(x);
}
at::Tensor cat_meta(at::TensorList tensors, at::ArrayRef<double>, at::IntArrayRef, int64_t dim, double, int64_t) {
  TORCH_CHECK_VALUE(!tensors.empty(), "cat: tensors must not be empty");
  const at::Tensor& first = tensors[0];
  dim = check_axis(dim, first.dim(), "dim");
  std::vector<int64_t> sizes(first.sizes().begin(), first.sizes().end());
  sizes[dim] = 0;
  for (const at::Tensor& t : tensors) sizes[dim] += t.size(dim);
  return at::empty(sizes, meta_options(first).memory_format(cat_memory_format(tensors)));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(qtorch, m) {
  const char* binary = "(Tensor a, float a_scale, int a_zero_point, Tensor b, float b_scale, int b_zero_point, "
                       "float scale, int zero_point) -> Tensor";
  for (const char* name : {"add", "add_relu", "mul", "mul_relu"}) m.def((std::string(name) + binary).c_str());
  m.def("add_scalar(Tensor input, float input_scale, int input_zero_point, float other, float scale, "
        "int zero_point) -> Tensor");
  m.def("mul_scalar(Tensor input, float input_scale, int input_zero_point, float other, float scale, "
        "int zero_point) -> Tensor");
  m.def("cat(Tensor[] tensors, float[] scales, int[] zero_points, int dim, float scale, int zero_point) -> Tensor");
  const char* unary = "(Tensor input, float input_scale, int input_zero_point, float scale, int zero_point) -> Tensor";
  for (const char* name : {"relu", "relu6", "hardswish", "hardsigmoid", "sigmoid"}) {
    m.def((std::string(name) + unary).c_str());
  }
  m.def("leaky_relu(Tensor input, float input_scale, int input_zero_point, float negative_slope, float scale, "
        "int zero_point) -> Tensor");
  m.def("hardtanh(Tensor input, float input_scale, int input_zero_point, float min_val, float max_val, "
        "float scale, int zero_point) -> Tensor");
}

TORCH_LIBRARY_IMPL(qtorch, CPU, m) {
  m.impl("add", &add);
  m.impl("add_relu", &add_relu);
  m.impl("mul", &mul);
  m.impl("mul_relu", &mul_relu);
  m.impl("add_scalar", &add_scalar);
  m.impl("mul_scalar", &mul_scalar);
  m.impl("cat", &cat);
  m.impl("relu", &relu);
  m.impl("relu6", &relu6);
  m.impl("hardswish", &hardswish);
  m.impl("hardsigmoid", &hardsigmoid);
  m.impl("sigmoid", &sigmoid);
  m.impl("leaky_relu", &leaky_relu);
  m.impl("hardtanh", &hardtanh);
}

TORCH_LIBRARY_IMPL(qtorch, Meta, m) {
  for (const char* name : {"add", "add_relu", "mul", "mul_relu"}) m.impl(name, &binary_meta);
  m.impl("add_scalar", &scalar_meta);
  m.impl("mul_scalar", &scalar_meta);
  m.impl("cat", &cat_meta);
  for (const char* name : {"relu", "relu6", "hardswish", "hardsigmoid", "sigmoid"}) m.impl(name, &unary_meta);
  m.impl("leaky_relu", &unary1_meta);
  m.impl("hardtanh", &unary2_meta);
}

}  // namespace ops
}  // namespace qtorch
