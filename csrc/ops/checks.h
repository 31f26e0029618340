// Argument checks shared by every op: each failure is a Python exception
// (TypeError, ValueError, IndexError) that names the argument and what was
// expected. Kernels behind these checks assume valid input.
#pragma once

#include <ATen/ATen.h>
#include <ATen/EmptyTensor.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace qtorch {
namespace ops {

inline const char* dtype_name(at::ScalarType t) { return c10::toString(t); }

// The integer dtypes that carry quantized values, and their ranges.
inline bool is_quantized_storage(at::ScalarType t) {
  return t == at::kByte || t == at::kChar || t == at::kInt;
}

inline void check_quantized_dtype(at::ScalarType dtype, const char* arg) {
  TORCH_CHECK_TYPE(is_quantized_storage(dtype), arg, " must be torch.uint8, torch.int8 or torch.int32, got ",
                   dtype_name(dtype));
}

inline std::pair<int64_t, int64_t> dtype_range(at::ScalarType dtype) {
  switch (dtype) {
    case at::kByte: return {0, 255};
    case at::kChar: return {-128, 127};
    default: return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
  }
}

inline void check_float_input(const at::Tensor& t, const char* arg) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat, arg, " must be a torch.float32 tensor, got ",
                   dtype_name(t.scalar_type()));
}

inline void check_quantized_input(const at::Tensor& t, const char* arg) {
  TORCH_CHECK_TYPE(is_quantized_storage(t.scalar_type()), arg,
                   " must hold quantized values as torch.uint8, torch.int8 or torch.int32, got ",
                   dtype_name(t.scalar_type()));
}

inline void check_dtype(const at::Tensor& t, at::ScalarType want, const char* arg) {
  TORCH_CHECK_TYPE(t.scalar_type() == want, arg, " must be a ", dtype_name(want), " tensor, got ",
                   dtype_name(t.scalar_type()));
}

// A scale must be positive and finite, and so must its reciprocal in float
// (the kernels multiply by 1/scale).
inline void check_scale(double scale, const char* arg) {
  const float s = static_cast<float>(scale);
  TORCH_CHECK_VALUE(std::isfinite(s) && s > 0.f && std::isfinite(1.0f / s), arg,
                    " must be a positive finite float32 value, got ", scale);
}

inline void check_zero_point(int64_t zero_point, at::ScalarType dtype, const char* arg) {
  const auto range = dtype_range(dtype);
  TORCH_CHECK_VALUE(zero_point >= range.first && zero_point <= range.second, arg, " must lie in [",
                    range.first, ", ", range.second, "] for ", dtype_name(dtype), ", got ", zero_point);
}

// Wraps a negative axis; IndexError if out of range.
inline int64_t check_axis(int64_t axis, int64_t dim, const char* arg) {
  TORCH_CHECK_INDEX(axis >= -dim && axis < dim && dim > 0, arg, " must lie in [", -dim, ", ", dim - 1,
                    "] for a ", dim, "-d tensor, got ", axis);
  return axis < 0 ? axis + dim : axis;
}

// Options for a fake (Meta) kernel's outputs. The dispatcher runs the Meta kernel when any
// argument is a meta tensor, also when others are CPU tensors: the outputs must still be meta
// tensors, never uninitialised CPU memory.
inline at::TensorOptions meta_options(const at::Tensor& like) { return like.options().device(at::kMeta); }

// Dense tensors (contiguous, channels_last, any permutation) are processed in
// their own memory order; anything else is copied once.
inline at::Tensor dense(const at::Tensor& t) { return t.is_non_overlapping_and_dense() ? t : t.contiguous(); }

// The output of an elementwise op on a dense tensor: same sizes and strides. Allocated
// directly, since at::empty_like's two trips through the dispatcher cost as much as the
// whole op on a 1x1024 tensor.
inline at::Tensor empty_dense_like(const at::Tensor& dense_input, at::ScalarType dtype) {
  return at::detail::empty_strided_cpu(dense_input.sizes(), dense_input.strides(), dtype);
}

// Per-channel parameters as contiguous float32 scales and int32 zero points,
// validated against the channel count and the dtype's range.
struct ChannelParams {
  at::Tensor scales;       // float32 [C]
  at::Tensor zero_points;  // int32 [C]
};

inline ChannelParams check_channel_params(const at::Tensor& scales, const at::Tensor& zero_points,
                                          int64_t channels, at::ScalarType dtype) {
  TORCH_CHECK_TYPE(scales.is_floating_point(), "scales must be a floating-point tensor, got ",
                   dtype_name(scales.scalar_type()));
  TORCH_CHECK_TYPE(!zero_points.is_floating_point() && !zero_points.is_complex() &&
                       zero_points.scalar_type() != at::kBool,
                   "zero_points must be an integer tensor, got ", dtype_name(zero_points.scalar_type()));
  TORCH_CHECK_VALUE(scales.dim() == 1 && scales.numel() == channels, "scales must be 1-d with ", channels,
                    " elements (the size of the channel axis), got shape ", scales.sizes());
  TORCH_CHECK_VALUE(zero_points.dim() == 1 && zero_points.numel() == channels, "zero_points must be 1-d with ",
                    channels, " elements (the size of the channel axis), got shape ", zero_points.sizes());
  ChannelParams p{scales.to(at::kFloat).contiguous(), zero_points.to(at::kInt).contiguous()};
  // Checked in plain loops, not tensor ops: a dozen small torch calls cost more than
  // dequantizing a few thousand channels.
  const float* s = p.scales.const_data_ptr<float>();
  TORCH_CHECK_VALUE(std::all_of(s, s + channels,
                                [](float v) { return v > 0.f && std::isfinite(v) && std::isfinite(1.0f / v); }),
                    "scales must be positive and finite, got ", p.scales);
  const auto range = dtype_range(dtype);
  // Zero points are range-checked before any narrowing to int32 could wrap them.
  const at::Tensor z = zero_points.scalar_type() == at::kInt ? p.zero_points : zero_points.to(at::kLong).contiguous();
  const auto in_range = [&](int64_t v) { return v >= range.first && v <= range.second; };
  const bool zero_points_ok =
      z.scalar_type() == at::kInt
          ? std::all_of(z.const_data_ptr<int32_t>(), z.const_data_ptr<int32_t>() + channels, in_range)
          : std::all_of(z.const_data_ptr<int64_t>(), z.const_data_ptr<int64_t>() + channels, in_range);
  TORCH_CHECK_VALUE(zero_points_ok, "zero_points must lie in [", range.first, ", ", range.second, "] for ",
                    dtype_name(dtype), ", got ", zero_points);
  return p;
}

}  // namespace ops
}  // namespace qtorch
