// quantize / dequantize / requantize: float32 <-> plain integer tensors with
// explicit parameters, per tensor or per channel along any axis; and per-row
// dynamic quantization, which chooses each row's parameters from its range.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <tuple>
#include <vector>

#include "checks.h"
#include "gemm/gemm.h"
#include "gemm_common.h"
#include "quantize/quantize.h"

namespace qtorch {
namespace ops {
namespace {

using kernels::QuantizeUkernels;
using kernels::quantize_ukernels;

constexpr int64_t kGrain = 1 << 15;  // elements per parallel task

// Splits n elements into parallel chunks of fn(begin, end).
template <typename Fn>
void parallel_chunks(int64_t n, const Fn& fn) {
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) { fn(begin, end); });
}

// A dense tensor seen in memory order as [outer][channels][inner] around one axis.
struct ChannelGeometry {
  int64_t outer, channels, inner;
};

ChannelGeometry channel_geometry(const at::Tensor& t, int64_t axis) {
  const int64_t channels = t.size(axis);
  // A size-1 axis may carry any stride; it is one channel spanning everything.
  const int64_t inner = channels == 1 ? t.numel() : t.stride(axis);
  const int64_t outer = t.numel() == 0 ? 0 : t.numel() / (inner * channels);
  return {outer, channels, inner};
}

// Per-channel over [outer][channels][inner]. With inner == 1 the channel
// parameters are tiled so each kernel call covers many rows, not one.
template <typename PerRow, typename PerTiledRows>
void for_each_channel_run(const ChannelGeometry& g, const PerRow& per_row, const PerTiledRows& per_tiled_rows) {
  if (g.outer == 0 || g.channels == 0) return;
  if (g.inner > 1) {
    const int64_t grain = std::max<int64_t>(1, kGrain / g.inner);
    at::parallel_for(0, g.outer * g.channels, grain, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) per_row(row * g.inner, row % g.channels, g.inner);
    });
    return;
  }
  const int64_t rows_per_call = std::max<int64_t>(1, 256 / g.channels);
  const int64_t calls = (g.outer + rows_per_call - 1) / rows_per_call;
  const int64_t grain = std::max<int64_t>(1, kGrain / (rows_per_call * g.channels));
  at::parallel_for(0, calls, grain, [&](int64_t begin, int64_t end) {
    for (int64_t call = begin; call < end; ++call) {
      const int64_t first_row = call * rows_per_call;
      const int64_t rows = std::min(rows_per_call, g.outer - first_row);
      per_tiled_rows(first_row * g.channels, rows * g.channels);
    }
  });
}

// Tiles per-channel parameters to cover `rows_per_call` rows of `channels`.
template <typename T>
std::vector<T> tile(const T* values, int64_t channels, int64_t copies) {
  std::vector<T> out(channels * copies);
  for (int64_t r = 0; r < copies; ++r) std::copy(values, values + channels, out.begin() + r * channels);
  return out;
}

template <typename Q>
void quantize_tensor_impl(const at::Tensor& x, at::Tensor& y, float inv_scale, int32_t zp,
                          kernels::QuantizeFn<Q> fn) {
  const float* src = x.const_data_ptr<float>();
  Q* dst = static_cast<Q*>(y.data_ptr());
  parallel_chunks(x.numel(), [&](int64_t b, int64_t e) { fn(e - b, src + b, dst + b, inv_scale, zp); });
}

at::Tensor quantize_per_tensor(const at::Tensor& input, double scale, int64_t zero_point, at::ScalarType dtype) {
  check_float_input(input, "input");
  check_quantized_dtype(dtype, "dtype");
  check_scale(scale, "scale");
  check_zero_point(zero_point, dtype, "zero_point");
  const at::Tensor x = dense(input);
  at::Tensor y = empty_dense_like(x, dtype);
  const float inv_scale = 1.0f / static_cast<float>(scale);
  const QuantizeUkernels& k = quantize_ukernels();
  const int32_t zp = static_cast<int32_t>(zero_point);
  switch (dtype) {
    case at::kByte: quantize_tensor_impl<uint8_t>(x, y, inv_scale, zp, k.quantize_u8); break;
    case at::kChar: quantize_tensor_impl<int8_t>(x, y, inv_scale, zp, k.quantize_s8); break;
    // Torch quantizes int32 per tensor in the two-step form too.
    default: quantize_tensor_impl<int32_t>(x, y, inv_scale, zp, k.quantize_channel_s32); break;
  }
  return y;
}

template <typename Q>
void quantize_channels_impl(const at::Tensor& x, at::Tensor& y, const ChannelGeometry& g, const float* scales,
                            const int32_t* zps, kernels::QuantizeFn<Q> per_tensor,
                            kernels::QuantizeChannelsFn<Q> per_channel) {
  const float* src = x.const_data_ptr<float>();
  Q* dst = static_cast<Q*>(y.data_ptr());
  std::vector<float> inv(g.channels);
  for (int64_t c = 0; c < g.channels; ++c) inv[c] = 1.0f / scales[c];
  const int64_t copies = std::max<int64_t>(1, 256 / std::max<int64_t>(1, g.channels));
  const std::vector<float> inv_tiled = g.inner == 1 ? tile(inv.data(), g.channels, copies) : std::vector<float>();
  const std::vector<int32_t> zp_tiled = g.inner == 1 ? tile(zps, g.channels, copies) : std::vector<int32_t>();
  for_each_channel_run(
      g, [&](int64_t at, int64_t c, int64_t n) { per_tensor(n, src + at, dst + at, inv[c], zps[c]); },
      [&](int64_t at, int64_t n) { per_channel(n, src + at, dst + at, inv_tiled.data(), zp_tiled.data()); });
}

at::Tensor quantize_per_channel(const at::Tensor& input, const at::Tensor& scales, const at::Tensor& zero_points,
                                int64_t axis, at::ScalarType dtype) {
  check_float_input(input, "input");
  check_quantized_dtype(dtype, "dtype");
  axis = check_axis(axis, input.dim(), "axis");
  const ChannelParams p = check_channel_params(scales, zero_points, input.size(axis), dtype);
  const at::Tensor x = dense(input);
  at::Tensor y = empty_dense_like(x, dtype);
  const ChannelGeometry g = channel_geometry(x, axis);
  const float* s = p.scales.const_data_ptr<float>();
  const int32_t* z = p.zero_points.const_data_ptr<int32_t>();
  const QuantizeUkernels& k = quantize_ukernels();
  switch (dtype) {
    case at::kByte:
      quantize_channels_impl<uint8_t>(x, y, g, s, z, k.quantize_channel_u8, k.quantize_channels_u8);
      break;
    case at::kChar:
      quantize_channels_impl<int8_t>(x, y, g, s, z, k.quantize_channel_s8, k.quantize_channels_s8);
      break;
    default:
      quantize_channels_impl<int32_t>(x, y, g, s, z, k.quantize_channel_s32, k.quantize_channels_s32);
      break;
  }
  return y;
}

template <typename Q>
void dequantize_tensor_impl(const at::Tensor& x, at::Tensor& y, float scale, int32_t zp,
                            kernels::DequantizeFn<Q> fn) {
  const Q* src = static_cast<const Q*>(x.const_data_ptr());
  float* dst = y.data_ptr<float>();
  parallel_chunks(x.numel(), [&](int64_t b, int64_t e) { fn(e - b, src + b, dst + b, scale, zp); });
}

at::Tensor dequantize_per_tensor(const at::Tensor& input, double scale, int64_t zero_point) {
  check_quantized_input(input, "input");
  check_scale(scale, "scale");
  check_zero_point(zero_point, input.scalar_type(), "zero_point");
  const at::Tensor x = dense(input);
  at::Tensor y = empty_dense_like(x, at::kFloat);
  const QuantizeUkernels& k = quantize_ukernels();
  const float s = static_cast<float>(scale);
  const int32_t zp = static_cast<int32_t>(zero_point);
  switch (x.scalar_type()) {
    case at::kByte: dequantize_tensor_impl<uint8_t>(x, y, s, zp, k.dequantize_u8); break;
    case at::kChar: dequantize_tensor_impl<int8_t>(x, y, s, zp, k.dequantize_s8); break;
    default: dequantize_tensor_impl<int32_t>(x, y, s, zp, k.dequantize_s32); break;
  }
  return y;
}

template <typename Q>
void dequantize_channels_impl(const at::Tensor& x, at::Tensor& y, const ChannelGeometry& g, const float* scales,
                              const int32_t* zps, kernels::DequantizeFn<Q> per_tensor,
                              kernels::DequantizeChannelsFn<Q> per_channel) {
  const Q* src = static_cast<const Q*>(x.const_data_ptr());
  float* dst = y.data_ptr<float>();
  const int64_t copies = std::max<int64_t>(1, 256 / std::max<int64_t>(1, g.channels));
  const std::vector<float> s_tiled = g.inner == 1 ? tile(scales, g.channels, copies) : std::vector<float>();
  const std::vector<int32_t> zp_tiled = g.inner == 1 ? tile(zps, g.channels, copies) : std::vector<int32_t>();
  for_each_channel_run(
      g, [&](int64_t at, int64_t c, int64_t n) { per_tensor(n, src + at, dst + at, scales[c], zps[c]); },
      [&](int64_t at, int64_t n) { per_channel(n, src + at, dst + at, s_tiled.data(), zp_tiled.data()); });
}

at::Tensor dequantize_per_channel(const at::Tensor& input, const at::Tensor& scales, const at::Tensor& zero_points,
                                  int64_t axis) {
  check_quantized_input(input, "input");
  axis = check_axis(axis, input.dim(), "axis");
  const ChannelParams p = check_channel_params(scales, zero_points, input.size(axis), input.scalar_type());
  const at::Tensor x = dense(input);
  at::Tensor y = empty_dense_like(x, at::kFloat);
  const ChannelGeometry g = channel_geometry(x, axis);
  const float* s = p.scales.const_data_ptr<float>();
  const int32_t* z = p.zero_points.const_data_ptr<int32_t>();
  const QuantizeUkernels& k = quantize_ukernels();
  switch (x.scalar_type()) {
    case at::kByte: dequantize_channels_impl<uint8_t>(x, y, g, s, z, k.dequantize_u8, k.dequantize_channels_u8); break;
    case at::kChar: dequantize_channels_impl<int8_t>(x, y, g, s, z, k.dequantize_s8, k.dequantize_channels_s8); break;
    default: dequantize_channels_impl<int32_t>(x, y, g, s, z, k.dequantize_s32, k.dequantize_channels_s32); break;
  }
  return y;
}

template <typename In, typename Out>
void requantize_impl(const at::Tensor& x, at::Tensor& y, int32_t zp_in, float multiplier, int32_t zp_out,
                     kernels::RequantizeFn<In, Out> fn) {
  const In* src = static_cast<const In*>(x.const_data_ptr());
  Out* dst = static_cast<Out*>(y.data_ptr());
  parallel_chunks(x.numel(), [&](int64_t b, int64_t e) { fn(e - b, src + b, dst + b, zp_in, multiplier, zp_out); });
}

at::Tensor requantize_per_tensor(const at::Tensor& input, double in_scale, int64_t in_zero_point, double out_scale,
                                 int64_t out_zero_point, at::ScalarType dtype) {
  TORCH_CHECK_TYPE(input.scalar_type() == at::kByte || input.scalar_type() == at::kChar,
                   "input must be a torch.uint8 or torch.int8 tensor, got ", dtype_name(input.scalar_type()));
  TORCH_CHECK_TYPE(dtype == at::kByte || dtype == at::kChar, "dtype must be torch.uint8 or torch.int8, got ",
                   dtype_name(dtype));
  check_scale(in_scale, "in_scale");
  check_zero_point(in_zero_point, input.scalar_type(), "in_zero_point");
  check_scale(out_scale, "out_scale");
  check_zero_point(out_zero_point, dtype, "out_zero_point");
  const at::Tensor x = dense(input);
  at::Tensor y = empty_dense_like(x, dtype);
  const float m = static_cast<float>(in_scale) / static_cast<float>(out_scale);
  const int32_t zi = static_cast<int32_t>(in_zero_point), zo = static_cast<int32_t>(out_zero_point);
  const QuantizeUkernels& k = quantize_ukernels();
  const bool in_u8 = x.scalar_type() == at::kByte, out_u8 = dtype == at::kByte;
  if (in_u8 && out_u8) requantize_impl<uint8_t, uint8_t>(x, y, zi, m, zo, k.requantize_u8_u8);
  else if (in_u8) requantize_impl<uint8_t, int8_t>(x, y, zi, m, zo, k.requantize_u8_s8);
  else if (out_u8) requantize_impl<int8_t, uint8_t>(x, y, zi, m, zo, k.requantize_s8_u8);
  else requantize_impl<int8_t, int8_t>(x, y, zi, m, zo, k.requantize_s8_s8);
  return y;
}

// Per-row dynamic quantization: row r is input[r] (dim 0; the other dims
// flattened in row-major order). Each row's parameters are the classic dynamic
// ones of its own range (choose_quantization_params over [qmin, qmax] of dtype,
// halved under reduce_range: what torch.quantize_per_tensor_dynamic gives that
// row alone; an empty row has range [0, 0]); the row is then quantized in the
// per-channel (two-step) form, so q equals quantize_per_channel(input, scales,
// zero_points, 0, dtype), and dequantize_per_channel(q, scales, zero_points, 0)
// inverts it. A row holding NaN or +-inf has no range: ValueError.
// Returns (q [input's shape, contiguous], scales float32 [rows], zero_points int32 [rows]).
template <typename Q>
int64_t quantize_rows_impl(const float* src, Q* dst, float* scales, int32_t* zero_points, int64_t rows,
                           int64_t cols, int32_t qmin, int32_t qmax, kernels::FloatRangeFn range,
                           kernels::QuantizeFn<Q> quantize) {
  std::atomic<int64_t> first_bad_row{rows};
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, cols));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* x = src + r * cols;
      float lo = 0.f, hi = 0.f;
      if (cols > 0) range(cols, x, &lo, &hi);
      if (!std::isfinite(lo) || !std::isfinite(hi)) {
        int64_t seen = first_bad_row.load();
        while (r < seen && !first_bad_row.compare_exchange_weak(seen, r)) {
        }
        continue;
      }
      const DynamicParams p = choose_quantization_params(lo, hi, qmin, qmax);
      scales[r] = p.scale;
      zero_points[r] = p.zero_point;
      quantize(cols, x, dst + r * cols, 1.0f / p.scale, p.zero_point);
    }
  });
  return first_bad_row.load();
}

void check_row_dtype(at::ScalarType dtype) {
  TORCH_CHECK_TYPE(dtype == at::kByte || dtype == at::kChar, "dtype must be torch.uint8 or torch.int8, got ",
                   dtype_name(dtype));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> quantize_per_row_dynamic(const at::Tensor& input,
                                                                         at::ScalarType dtype, bool reduce_range) {
  check_float_input(input, "input");
  check_row_dtype(dtype);
  TORCH_CHECK_VALUE(input.dim() >= 1, "input must have at least 1 dimension (rows along dim 0), got a 0-d tensor");
  const at::Tensor x = input.contiguous();
  const int64_t rows = x.size(0), cols = rows == 0 ? 0 : x.numel() / rows;
  at::Tensor y = at::empty(x.sizes(), x.options().dtype(dtype));
  at::Tensor scales = at::empty({rows}, x.options());
  at::Tensor zero_points = at::empty({rows}, x.options().dtype(at::kInt));
  auto qrange = dtype_range(dtype);
  // torch's reduce_range halves both ends (C++ division: -128 -> -64).
  const int32_t qmin = int32_t(reduce_range ? qrange.first / 2 : qrange.first);
  const int32_t qmax = int32_t(reduce_range ? qrange.second / 2 : qrange.second);
  const kernels::FloatRangeFn range = kernels::gemm_ukernels().float_range;
  const QuantizeUkernels& k = quantize_ukernels();
  const float* src = x.const_data_ptr<float>();
  float* s = scales.data_ptr<float>();
  int32_t* z = zero_points.data_ptr<int32_t>();
  const int64_t bad_row =
      dtype == at::kByte
          ? quantize_rows_impl<uint8_t>(src, y.data_ptr<uint8_t>(), s, z, rows, cols, qmin, qmax, range,
                                        k.quantize_channel_u8)
          : quantize_rows_impl<int8_t>(src, static_cast<int8_t*>(y.data_ptr()), s, z, rows, cols, qmin, qmax, range,
                                       k.quantize_channel_s8);
  TORCH_CHECK_VALUE(bad_row == rows, "input must be finite: per-row dynamic quantization takes each row's range "
                    "from its values, but row ", bad_row, " holds NaN or infinity");
  return {y, scales, zero_points};
}

// Fake (meta) kernels: shapes, dtypes and memory format only.
at::Tensor quantize_per_tensor_meta(const at::Tensor& input, double, int64_t, at::ScalarType dtype) {
  check_quantized_dtype(dtype, "dtype");
  return at::empty_like(input, meta_options(input).dtype(dtype));
}
at::Tensor quantize_per_channel_meta(const at::Tensor& input, const at::Tensor&, const at::Tensor&, int64_t,
                                     at::ScalarType dtype) {
  check_quantized_dtype(dtype, "dtype");
  return at::empty_like(input, meta_options(input).dtype(dtype));
}
at::Tensor dequantize_per_tensor_meta(const at::Tensor& input, double, int64_t) {
  return at::empty_like(input, meta_options(input).dtype(at::kFloat));
}
at::Tensor dequantize_per_channel_meta(const at::Tensor& input, const at::Tensor&, const at::Tensor&, int64_t) {
  return at::empty_like(input, meta_options(input).dtype(at::kFloat));
}
std::tuple<at::Tensor, at::Tensor, at::Tensor> quantize_per_row_dynamic_meta(const at::Tensor& input,
                                                                              at::ScalarType dtype, bool) {
  check_row_dtype(dtype);
  TORCH_CHECK_VALUE(input.dim() >= 1, "input must have at least 1 dimension (rows along dim 0), got a 0-d tensor");
  const at::TensorOptions o = meta_options(input);
  return {at::empty(input.sizes(), o.dtype(dtype)), at::empty({input.size(0)}, o.dtype(at::kFloat)),
          at::empty({input.size(0)}, o.dtype(at::kInt))};
}
at::Tensor requantize_per_tensor_meta(const at::Tensor& input, double, int64_t, double, int64_t,
                                      at::ScalarType dtype) {
  return at::empty_like(input, meta_options(input).dtype(dtype));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(qtorch, m) {
  m.def("quantize_per_tensor(Tensor input, float scale, int zero_point, ScalarType dtype) -> Tensor");
  m.def("quantize_per_channel(Tensor input, Tensor scales, Tensor zero_points, int axis, ScalarType dtype) -> Tensor");
  m.def("dequantize_per_tensor(Tensor input, float scale, int zero_point) -> Tensor");
  m.def("dequantize_per_channel(Tensor input, Tensor scales, Tensor zero_points, int axis) -> Tensor");
  m.def("requantize_per_tensor(Tensor input, float in_scale, int in_zero_point, float out_scale, "
        "int out_zero_point, ScalarType dtype) -> Tensor");
  m.def("quantize_per_row_dynamic(Tensor input, ScalarType dtype, bool reduce_range=False) "
        "-> (Tensor q, Tensor scales, Tensor zero_points)");
}

TORCH_LIBRARY_IMPL(qtorch, CPU, m) {
  m.impl("quantize_per_tensor", &quantize_per_tensor);
  m.impl("quantize_per_channel", &quantize_per_channel);
  m.impl("dequantize_per_tensor", &dequantize_per_tensor);
  m.impl("dequantize_per_channel", &dequantize_per_channel);
  m.impl("requantize_per_tensor", &requantize_per_tensor);
  m.impl("quantize_per_row_dynamic", &quantize_per_row_dynamic);
}

TORCH_LIBRARY_IMPL(qtorch, Meta, m) {
  m.impl("quantize_per_tensor", &quantize_per_tensor_meta);
  m.impl("quantize_per_channel", &quantize_per_channel_meta);
  m.impl("dequantize_per_tensor", &dequantize_per_tensor_meta);
  m.impl("dequantize_per_channel", &dequantize_per_channel_meta);
  m.impl("requantize_per_tensor", &requantize_per_tensor_meta);
  m.impl("quantize_per_row_dynamic", &quantize_per_row_dynamic_meta);
}

}  // namespace ops
}  // namespace qtorch
