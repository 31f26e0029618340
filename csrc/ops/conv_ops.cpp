// conv2d / conv2d_relu on uint8 activations (NCHW-contiguous or channels_last,
// computed NHWC) with int8 weights packed once by conv2d_prepack:
//   - depthwise (groups > 1, one input channel per group, any channel
//     multiplier): the depthwise kernels over an indirection buffer;
//   - everything else: the GEMM per group, with A = the NHWC input itself for
//     1x1/stride 1/no padding, else im2col rows gathered a tile of output pixels
//     at a time into a per-thread buffer (implicit GEMM, never the whole matrix).
// The output is uint8 in channels_last, requantized with the GEMM's output
// pipeline (gemm.h), which the depthwise kernels reproduce.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <tuple>
#include <vector>

#include "checks.h"
#include "conv/conv_geometry.h"
#include "depthwise/depthwise.h"
#include "gemm/gemm.h"

namespace qtorch {
namespace ops {
namespace {

using kernels::ConvGeometry;

// Depthwise layers get their own kernels and weight layout: every group sees
// one input channel. groups == 1 with a single input channel is a GEMM.
bool is_depthwise(int64_t in_channels_per_group, int64_t groups) { return groups > 1 && in_channels_per_group == 1; }

void check_pair(at::IntArrayRef values, const char* arg, int64_t min_value, const char* what) {
  TORCH_CHECK_VALUE(values.size() == 2, arg, " must have 2 values (height, width), got ", values.size());
  TORCH_CHECK_VALUE(values[0] >= min_value && values[1] >= min_value, arg, " must be ", what, ", got ", values);
}

// Everything about one call that does not need the data.
struct ConvPlan {
  int64_t batch, in_channels, in_h, in_w;
  int64_t out_channels, out_h, out_w;
  int64_t groups;
  ConvGeometry geometry;
};

ConvPlan plan_conv(const at::Tensor& input, int64_t out_channels, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                   at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  check_dtype(input, at::kByte, "input");
  TORCH_CHECK_VALUE(input.dim() == 4, "input must be a 4-d tensor (N, C, H, W), got a ", input.dim(),
                    "-d tensor of shape ", input.sizes());
  check_pair(kernel_size, "kernel_size", 1, "positive");
  check_pair(stride, "stride", 1, "positive");
  check_pair(padding, "padding", 0, "non-negative");
  check_pair(dilation, "dilation", 1, "positive");
  TORCH_CHECK_VALUE(groups >= 1, "groups must be positive, got ", groups);
  ConvPlan p;
  p.batch = input.size(0);
  p.in_channels = input.size(1);
  p.in_h = input.size(2);
  p.in_w = input.size(3);
  p.out_channels = out_channels;
  p.groups = groups;
  // No packed weight has zero input channels; the check keeps the layout code from dividing by them.
  TORCH_CHECK_VALUE(p.in_channels >= 1, "input must have at least one channel, got shape ", input.sizes());
  TORCH_CHECK_VALUE(p.in_channels % groups == 0, "input channels (", p.in_channels,
                    ") must be divisible by groups (", groups, ")");
  TORCH_CHECK_VALUE(out_channels % groups == 0, "output channels (", out_channels, ") must be divisible by groups (",
                    groups, ")");
  const int64_t sizes[2] = {p.in_h, p.in_w};
  int64_t out[2];
  for (int d = 0; d < 2; ++d) {
    const int64_t padded = sizes[d] + 2 * padding[d];
    const int64_t window = dilation[d] * (kernel_size[d] - 1) + 1;
    TORCH_CHECK_VALUE(window <= padded, "kernel_size ", kernel_size, " with dilation ", dilation,
                      " spans more than the padded input (", sizes[0] + 2 * padding[0], ", ",
                      sizes[1] + 2 * padding[1], ")");
    out[d] = (padded - window) / stride[d] + 1;
  }
  p.out_h = out[0];
  p.out_w = out[1];
  auto u = [](int64_t v) { return static_cast<size_t>(v); };
  p.geometry = ConvGeometry{u(p.batch),         u(p.in_h),          u(p.in_w),        u(p.in_channels),
                            u(p.out_h),         u(p.out_w),         u(kernel_size[0]), u(kernel_size[1]),
                            u(stride[0]),       u(stride[1]),       u(padding[0]),    u(padding[1]),
                            u(dilation[0]),     u(dilation[1])};
  return p;
}

at::Tensor empty_output(const ConvPlan& p, const at::TensorOptions& options) {
  return at::empty({p.batch, p.out_channels, p.out_h, p.out_w},
                   options.dtype(at::kByte).memory_format(at::MemoryFormat::ChannelsLast));
}

// Weight quantization parameters: one (per tensor) or out_channels values.
struct WeightParams {
  at::Tensor scales;       // float32
  at::Tensor zero_points;  // int32
  bool per_channel;
};

WeightParams check_weight_params(const at::Tensor& scales, const at::Tensor& zero_points, int64_t out_channels) {
  const int64_t n = scales.numel();
  TORCH_CHECK_VALUE(n == 1 || n == out_channels, "weight_scales must hold 1 value (per tensor) or ", out_channels,
                    " (one per output channel), got ", n);
  // The usual case (what modules hold): float32 and int32, contiguous, checked
  // in place; a handful of torch ops per call would cost more than a small conv.
  if (scales.scalar_type() == at::kFloat && zero_points.scalar_type() == at::kInt && scales.is_contiguous() &&
      zero_points.is_contiguous() && zero_points.numel() == n) {
    const float* s = scales.const_data_ptr<float>();
    const int32_t* z = zero_points.const_data_ptr<int32_t>();
    bool valid = true;
    for (int64_t i = 0; i < n; ++i) {
      valid &= s[i] > 0.f && std::isfinite(s[i]) && std::isfinite(1.0f / s[i]) && z[i] >= -128 && z[i] <= 127;
    }
    if (valid) return {scales.reshape({-1}), zero_points.reshape({-1}), n > 1};
  }
  // Anything else, and every error message, through the shared checks.
  const ChannelParams c = check_channel_params(scales.reshape({-1}), zero_points.reshape({-1}), n, at::kChar);
  return {c.scales, c.zero_points, n > 1};
}

std::tuple<at::Tensor, at::Tensor> conv2d_prepack(const at::Tensor& weight, const at::Tensor& weight_zero_points,
                                                  int64_t groups) {
  check_dtype(weight, at::kChar, "weight");
  TORCH_CHECK_VALUE(weight.dim() == 4, "weight must be a 4-d tensor (out_channels, in_channels / groups, kernel_h, ",
                    "kernel_w), got shape ", weight.sizes());
  TORCH_CHECK_VALUE(groups >= 1, "groups must be positive, got ", groups);
  const int64_t out_channels = weight.size(0), per_group = weight.size(1);
  TORCH_CHECK_VALUE(out_channels % groups == 0, "weight's out_channels (", out_channels,
                    ") must be divisible by groups (", groups, ")");
  TORCH_CHECK_VALUE(weight.numel() > 0, "weight must not be empty, got shape ", weight.sizes());
  const int64_t zp_count = weight_zero_points.numel();
  TORCH_CHECK_VALUE(zp_count == 1 || zp_count == out_channels, "weight_zero_points must hold 1 value or ",
                    out_channels, ", got ", zp_count);
  const at::Tensor zp_flat = weight_zero_points.reshape({-1});
  const at::Tensor zps = check_channel_params(at::ones({zp_count}, at::kFloat), zp_flat, zp_count, at::kChar)
                             .zero_points.expand({out_channels})
                             .contiguous();
  const int64_t taps = weight.size(2) * weight.size(3);
  at::Tensor sums = at::empty({out_channels}, at::kInt);
  int32_t* sums_out = sums.data_ptr<int32_t>();
  if (is_depthwise(per_group, groups)) {
    // One packed set per channel multiplier index j, covering output channels
    // g * multiplier + j for every input channel g.
    const int64_t channels = groups, multiplier = out_channels / groups;
    const int64_t set_size = int64_t(kernels::depthwise_packed_size(channels, taps));
    at::Tensor packed = at::empty({multiplier, set_size}, at::kChar);
    const at::Tensor w = weight.reshape({channels, multiplier, taps}).transpose(0, 1).contiguous();
    const at::Tensor z = zps.reshape({channels, multiplier}).t().contiguous();
    std::vector<int32_t> set_sums(channels);
    for (int64_t j = 0; j < multiplier; ++j) {
      kernels::depthwise_pack(channels, taps, w[j].const_data_ptr<int8_t>(), z[j].const_data_ptr<int32_t>(),
                              packed[j].data_ptr<int8_t>(), set_sums.data());
      for (int64_t g = 0; g < channels; ++g) sums_out[g * multiplier + j] = set_sums[g];
    }
    return {packed, sums};
  }
  // GEMM weight: B[n][k] with k ordered (kh, kw, c) like an NHWC im2col row.
  const int64_t k = taps * per_group, n = out_channels / groups;
  TORCH_CHECK_VALUE(k <= int64_t(kernels::kMaxGemmK), "kernel_h * kernel_w * in_channels / groups must be at most ",
                    kernels::kMaxGemmK, ", got ", k);
  const at::Tensor b = weight.permute({0, 2, 3, 1}).contiguous();
  const int64_t group_size = int64_t(kernels::packed_b_size(n, k));
  at::Tensor packed = at::empty({groups, group_size}, at::kChar);
  for (int64_t g = 0; g < groups; ++g) {
    kernels::pack_b(n, k, b.const_data_ptr<int8_t>() + g * n * k, k, packed[g].data_ptr<int8_t>(), sums_out + g * n);
  }
  return {packed, sums};
}

std::tuple<at::Tensor, at::Tensor> conv2d_prepack_meta(const at::Tensor& weight, const at::Tensor&, int64_t groups) {
  check_dtype(weight, at::kChar, "weight");
  TORCH_CHECK_VALUE(weight.dim() == 4 && groups >= 1 && weight.size(0) % groups == 0,
                    "weight must be (out_channels, in_channels / groups, kernel_h, kernel_w) with out_channels ",
                    "divisible by groups, got shape ", weight.sizes(), " and groups ", groups);
  const int64_t out_channels = weight.size(0), taps = weight.size(2) * weight.size(3);
  const at::TensorOptions meta = meta_options(weight);
  at::Tensor sums = at::empty({out_channels}, meta.dtype(at::kInt));
  if (is_depthwise(weight.size(1), groups)) {
    return {at::empty({out_channels / groups, int64_t(kernels::depthwise_packed_size(groups, taps))},
                      meta.dtype(at::kChar)),
            sums};
  }
  const int64_t n = out_channels / groups, k = taps * weight.size(1);
  return {at::empty({groups, int64_t(kernels::packed_b_size(n, k))}, meta.dtype(at::kChar)), sums};
}

// The int8 weight (out_channels, in_channels / groups, kernel_h, kernel_w) back
// from conv2d_prepack's packed tensor: modules keep only the packed copy.
void check_unpack_args(const at::Tensor& packed_weight, at::IntArrayRef weight_shape, int64_t groups) {
  check_dtype(packed_weight, at::kChar, "packed_weight");
  TORCH_CHECK_VALUE(weight_shape.size() == 4 && weight_shape[0] >= 1 && weight_shape[1] >= 1 &&
                        weight_shape[2] >= 1 && weight_shape[3] >= 1,
                    "weight_shape must be 4 positive sizes (out_channels, in_channels / groups, kernel_h, ",
                    "kernel_w), got ", weight_shape);
  TORCH_CHECK_VALUE(groups >= 1 && weight_shape[0] % groups == 0, "groups must be positive and divide out_channels (",
                    weight_shape[0], "), got ", groups);
}

at::Tensor conv2d_unpack(const at::Tensor& packed_weight, at::IntArrayRef weight_shape, int64_t groups) {
  check_unpack_args(packed_weight, weight_shape, groups);
  const int64_t out_channels = weight_shape[0], per_group = weight_shape[1];
  const int64_t taps = weight_shape[2] * weight_shape[3];
  const at::Tensor packed = packed_weight.contiguous();
  if (is_depthwise(per_group, groups)) {
    const int64_t channels = groups, multiplier = out_channels / groups;
    const int64_t set_size = int64_t(kernels::depthwise_packed_size(channels, taps));
    TORCH_CHECK_VALUE(packed.dim() == 2 && packed.size(0) == multiplier && packed.size(1) == set_size,
                      "packed_weight of shape ", packed.sizes(), " does not hold a depthwise weight of shape ",
                      weight_shape, " (expected [", multiplier, ", ", set_size, "])");
    at::Tensor w = at::empty({multiplier, channels, taps}, packed.options());
    for (int64_t j = 0; j < multiplier; ++j) {
      kernels::depthwise_unpack(channels, taps, packed[j].const_data_ptr<int8_t>(), w[j].data_ptr<int8_t>());
    }
    return w.transpose(0, 1).reshape(weight_shape).contiguous();
  }
  const int64_t n = out_channels / groups, k = taps * per_group;
  const int64_t group_size = int64_t(kernels::packed_b_size(n, k));
  TORCH_CHECK_VALUE(packed.dim() == 2 && packed.size(0) == groups && packed.size(1) == group_size,
                    "packed_weight of shape ", packed.sizes(), " does not hold a weight of shape ", weight_shape,
                    " in ", groups, " groups (expected [", groups, ", ", group_size, "])");
  // B[n][k] with k ordered (kh, kw, c), as conv2d_prepack packed it.
  at::Tensor b = at::empty({out_channels, weight_shape[2], weight_shape[3], per_group}, packed.options());
  for (int64_t g = 0; g < groups; ++g) {
    kernels::unpack_b(n, k, packed[g].const_data_ptr<int8_t>(), b.data_ptr<int8_t>() + g * n * k, k);
  }
  return b.permute({0, 3, 1, 2}).contiguous();
}

at::Tensor conv2d_unpack_meta(const at::Tensor& packed_weight, at::IntArrayRef weight_shape, int64_t groups) {
  check_unpack_args(packed_weight, weight_shape, groups);
  return at::empty(weight_shape, meta_options(packed_weight).dtype(at::kChar));
}

struct ConvArgs {
  float input_scale;
  int32_t input_zero_point;
  float output_scale;
  int32_t output_zero_point;
  bool relu;
};

void conv_depthwise(const ConvPlan& p, const uint8_t* x, const at::Tensor& packed, const int32_t* sums,
                    const WeightParams& wp, const float* bias, const ConvArgs& a, uint8_t* y) {
  const int64_t channels = p.in_channels, multiplier = p.out_channels / p.groups;
  const size_t taps = p.geometry.taps();
  TORCH_CHECK_VALUE(packed.scalar_type() == at::kChar && packed.dim() == 2 && packed.size(0) == multiplier &&
                        packed.size(1) == int64_t(kernels::depthwise_packed_size(channels, taps)),
                    "packed_weight does not match a depthwise conv2d with ", channels, " channels, multiplier ",
                    multiplier, " and kernel of ", taps, " taps: pack it with conv2d_prepack");
  // Requantization constants per packed set, in its channel order (set j,
  // channel g is output channel g * multiplier + j); float steps as gemm_channel.
  std::vector<int32_t> offsets(p.out_channels), zero_points(p.out_channels);
  std::vector<float> multipliers(p.out_channels), biases(p.out_channels);
  const float* scales = wp.scales.const_data_ptr<float>();
  const int32_t* zps = wp.zero_points.const_data_ptr<int32_t>();
  for (int64_t j = 0; j < multiplier; ++j) {
    for (int64_t g = 0; g < channels; ++g) {
      const int64_t oc = g * multiplier + j, at = j * channels + g;
      const int64_t param = wp.per_channel ? oc : 0;
      const float ab = a.input_scale * scales[param];
      multipliers[at] = ab / a.output_scale;
      biases[at] = bias ? bias[oc] / ab : 0.f;
      offsets[at] = -a.input_zero_point * sums[oc];
      zero_points[at] = zps[param];
    }
  }
  const std::vector<uint8_t> padding(channels, uint8_t(a.input_zero_point));
  const auto finite = [](const std::vector<float>& v) {
    return std::all_of(v.begin(), v.end(), [](float f) { return std::isfinite(f); });
  };
  const kernels::DepthwiseUkernels& ukernels = finite(multipliers) && finite(biases)
                                                   ? kernels::depthwise_ukernels()
                                                   : kernels::depthwise_ukernels(Isa::kScalar);
  const kernels::DepthwiseFn fn = kernels::depthwise_select(ukernels, taps);
  const int8_t* weights = packed.const_data_ptr<int8_t>();
  const size_t set_size = size_t(packed.size(1));
  const int32_t out_min = a.relu ? a.output_zero_point : 0;
  // Kernels set up each channel block once per call: call them on runs of many
  // output pixels (across row boundaries: NHWC pixels are consecutive).
  const int64_t pixels = int64_t(p.geometry.out_pixels());
  const int64_t run = 512;
  const int64_t grain = std::max<int64_t>(16, std::min<int64_t>(run, (1 << 16) / std::max<int64_t>(1, channels * int64_t(taps))));
  at::parallel_for(0, pixels, grain, [&](int64_t begin, int64_t end) {
    std::vector<const uint8_t*> indirection(std::min(run, end - begin) * taps);
    std::vector<uint8_t> scratch(multiplier > 1 ? std::min(run, end - begin) * channels : 0);
    for (int64_t first = begin; first < end; first += run) {
      const int64_t count = std::min(run, end - first);
      kernels::conv_indirection(p.geometry, x, padding.data(), first, first + count, indirection.data());
      uint8_t* out = y + first * p.out_channels;
      for (int64_t j = 0; j < multiplier; ++j) {
        const kernels::DepthwiseRequant rq{offsets.data() + j * channels, multipliers.data() + j * channels,
                                           biases.data() + j * channels, zero_points.data() + j * channels,
                                           a.output_zero_point, out_min, 255};
        if (multiplier == 1) {
          fn(count, channels, taps, indirection.data(), weights, rq, out, p.out_channels);
          continue;
        }
        fn(count, channels, taps, indirection.data(), weights + j * set_size, rq, scratch.data(), channels);
        for (int64_t px = 0; px < count; ++px) {
          for (int64_t g = 0; g < channels; ++g) {
            out[px * p.out_channels + g * multiplier + j] = scratch[px * channels + g];
          }
        }
      }
    }
  });
}

// With input zero point 0 the GEMM can read a convolution's input in place:
// each output pixel's reduction is one GemmSegment per kernel row inside the
// image (kernels::in_place_segments), so there are no gathered rows and taps
// in the padding are left out instead of multiplied by zero (18% of a 3x3
// layer's work on a 7x7 image). Pixels sharing their kernel rows and columns
// inside the image are the rows of one call: the interior of each output row,
// then each border column down a band of output rows. Needs whole pixels per
// kernel row: groups 1, dilation_w 1, channels a multiple of 4 (k0 on a group).
// 1x1, stride 1, no padding: the NHWC input itself is the GEMM's A.
bool is_direct(const ConvGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
}

bool in_place_gemm_applies(const ConvPlan& p, const ConvArgs& a) {
  const ConvGeometry& g = p.geometry;
  return !is_direct(g) && a.input_zero_point == 0 && p.groups == 1 && g.dilation_w == 1 &&
         p.in_channels % int64_t(kernels::kGemmGroupK) == 0 && kernels::gemm_ukernels().gemm_u8s8_segments;
}

void conv_gemm_in_place(const ConvPlan& p, const uint8_t* x, const kernels::PackedB& b,
                        const kernels::OutputPipeline& out, uint8_t* y) {
  const ConvGeometry& g = p.geometry;
  const kernels::GemmSegmentsFn gemm = kernels::gemm_ukernels().gemm_u8s8_segments;
  const int64_t rows = p.batch * p.out_h, threads = at::get_num_threads();
  auto ceil_div = [](int64_t u, int64_t v) { return (u + v - 1) / v; };
  // Output columns whose whole kernel width is inside the image.
  auto whole_width = [&](int64_t ow) {
    const kernels::KernelRows c = kernels::kernel_columns_inside(g, size_t(ow));
    return c.end - c.first == g.kernel_w;
  };
  int64_t lo = 0;
  while (lo < p.out_w && !whole_width(lo)) ++lo;
  int64_t hi = lo;
  while (hi < p.out_w && whole_width(hi)) ++hi;
  // Bands of output rows, a multiple of the threads; where bands cannot share
  // the work evenly (7 rows on 2 threads), each thread takes a share of the
  // output channels of every band instead.
  int64_t bands = std::min(rows, threads * std::max<int64_t>(1, rows / (threads * 4)));
  const int64_t band_rows = ceil_div(rows, bands);
  bands = ceil_div(rows, band_rows);
  const int64_t blocks = ceil_div(p.out_channels, 16);
  int64_t n_chunks = 1;
  if (threads > 1 && bands < 8 * threads && (bands % threads != 0 || rows % band_rows != 0))
    n_chunks = std::min(blocks, threads);
  const int64_t blocks_per_chunk = ceil_div(blocks, n_chunks);
  n_chunks = ceil_div(blocks, blocks_per_chunk);
  const size_t c = size_t(p.in_channels), ldc = size_t(p.out_channels);
  at::parallel_for(0, bands * n_chunks, 1, [&](int64_t begin, int64_t end) {
    kernels::GemmSegment segments[16];
    std::vector<kernels::GemmSegment> many;
    auto segments_of = [&](int64_t row, int64_t ow, size_t* count) -> const kernels::GemmSegment* {
      kernels::GemmSegment* dst = segments;
      if (g.kernel_h > 16) {
        many.resize(g.kernel_h);
        dst = many.data();
      }
      *count = kernels::in_place_segments(g, x, size_t(row / p.out_h), size_t(row % p.out_h), size_t(ow), dst);
      return dst;
    };
    for (int64_t task = begin; task < end; ++task) {
      const int64_t chunk = task / bands, band = task % bands;
      const size_t n_begin = size_t(chunk * blocks_per_chunk * 16);
      const size_t n_end = std::min<size_t>(size_t(p.out_channels), n_begin + size_t(blocks_per_chunk) * 16);
      const int64_t r0 = band * band_rows, r1 = std::min(rows, r0 + band_rows);
      size_t count;
      for (int64_t row = r0; row < r1 && hi > lo; ++row) {
        const kernels::GemmSegment* s = segments_of(row, lo, &count);
        gemm(size_t(hi - lo), n_begin, n_end, s, count, g.stride_w * c, b, out, y + (row * p.out_w + lo) * ldc, ldc);
      }
      // Border columns: runs of rows in one image with the same kernel rows inside.
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        if (ow == lo && hi > lo) ow = hi;
        if (ow >= p.out_w) break;
        for (int64_t row = r0; row < r1;) {
          const kernels::KernelRows inside = kernels::kernel_rows_inside(g, size_t(row % p.out_h));
          int64_t run = row + 1;
          while (run < r1 && run / p.out_h == row / p.out_h) {
            const kernels::KernelRows next = kernels::kernel_rows_inside(g, size_t(run % p.out_h));
            if (next.first != inside.first || next.end != inside.end) break;
            ++run;
          }
          const kernels::GemmSegment* s = segments_of(row, ow, &count);
          gemm(size_t(run - row), n_begin, n_end, s, count, g.stride_h * g.in_w * c, b, out,
               y + (row * p.out_w + ow) * ldc, size_t(p.out_w) * ldc);
          row = run;
        }
      }
    }
  });
}

void conv_gemm(const ConvPlan& p, const uint8_t* x, const at::Tensor& packed, const int32_t* sums,
               const WeightParams& wp, const float* bias, const ConvArgs& a, uint8_t* y) {
  const ConvGeometry& g = p.geometry;
  const int64_t group_in = p.in_channels / p.groups, group_out = p.out_channels / p.groups;
  const size_t k = g.taps() * size_t(group_in);
  const int64_t group_size = int64_t(kernels::packed_b_size(group_out, k));
  TORCH_CHECK_VALUE(packed.scalar_type() == at::kChar && packed.dim() == 2 && packed.size(0) == p.groups &&
                        packed.size(1) == group_size,
                    "packed_weight does not match a conv2d with ", p.groups, " groups of ", group_in, " -> ",
                    group_out, " channels and a kernel of ", g.taps(), " taps: pack it with conv2d_prepack");
  const bool any_weight_zp = std::any_of(wp.zero_points.const_data_ptr<int32_t>(),
                                         wp.zero_points.const_data_ptr<int32_t>() + wp.zero_points.numel(),
                                         [](int32_t z) { return z != 0; });
  // The output pipeline of output channels [channel0, channel0 + group_out).
  auto pipeline = [&](int64_t channel0) {
    kernels::OutputPipeline out;
    out.a_zero_point = a.input_zero_point;
    out.a_scale = a.input_scale;
    out.b_scales = wp.scales.const_data_ptr<float>() + (wp.per_channel ? channel0 : 0);
    out.b_zero_points = any_weight_zp ? wp.zero_points.const_data_ptr<int32_t>() + (wp.per_channel ? channel0 : 0)
                                      : nullptr;
    out.b_per_channel = wp.per_channel;
    out.bias = bias ? bias + channel0 : nullptr;
    out.c_scale = a.output_scale;
    out.c_zero_point = a.output_zero_point;
    out.relu = a.relu;
    out.output = kernels::GemmOutput::kUint8;
    return out;
  };
  if (in_place_gemm_applies(p, a)) {
    const size_t k_packed = (k + kernels::kGemmGroupK - 1) / kernels::kGemmGroupK * kernels::kGemmGroupK;
    conv_gemm_in_place(p, x, kernels::packed_b(packed.const_data_ptr<int8_t>(), sums, size_t(group_out), k_packed),
                       pipeline(0), y);
    return;
  }
  // 1x1, stride 1, no padding: the NHWC input is the GEMM's A, rows of
  // in_channels bytes. Otherwise im2col rows, a tile at a time.
  const bool direct = is_direct(g);
  const int64_t pixels = int64_t(g.out_pixels());
  // Gathered tiles stay within ~128 KiB (L2) so the GEMM re-reads them from cache.
  const int64_t max_tile =
      direct ? 192 : std::max<int64_t>(12, std::min<int64_t>(192, (128 << 10) / int64_t(k)) / 6 * 6);
  const int64_t threads = at::get_num_threads();
  auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  // Tiles of equal size (multiples of the GEMM's 6-row micro-tile), a count
  // divisible by the threads so they get equal work (17 tiles on 2 threads
  // would leave one idle for a whole tile); splitting rows keeps each gathered
  // row in one task.
  int64_t tiles = ceil_div(ceil_div(pixels, max_tile), threads) * threads;
  tiles = std::max<int64_t>(1, std::min(tiles, pixels / 12));
  int64_t tile = ceil_div(ceil_div(pixels, tiles), 6) * 6;
  tiles = ceil_div(pixels, tile);
  const int64_t blocks = (group_out + 15) / 16;
  // A direct 1x1 layer on a small image (at most one row tile per thread):
  // split the output channels instead. Each thread reads every row (nothing to
  // gather) but only its share of the weights, and the shares are equal where
  // 6-row tiles are not (49 pixels: 30 + 19 rows). Largest task alone, 1
  // thread: 0.83 of the row split's time at 7x7, 0.95 at 14x14.
  const bool split_columns = direct && p.groups == 1 && threads > 1 && pixels <= max_tile * threads &&
                             blocks >= 2 * threads;
  if (split_columns) {
    tiles = 1;
    tile = pixels;
  }
  // Split output channels too when tiles alone would leave threads idle, or
  // when few tiles do not divide among the threads (rounding the tile to 6
  // rows: 49 pixels on 2 threads make 3 tiles of 18, 18 and 13, i.e. one thread
  // does twice the other's work). Tasks run chunk by chunk (see below), so with
  // a chunk per thread each thread computes its own output channels of every
  // tile: equal work, at the price of gathering each tile once per chunk.
  const int64_t units = tiles * p.groups;
  int64_t n_chunks = 1;
  if (units < threads) n_chunks = std::min(blocks, ceil_div(threads, units));
  else if (units % threads != 0 && units < 8 * threads) n_chunks = std::min(blocks, threads);
  const int64_t blocks_per_chunk = ceil_div(blocks, n_chunks);
  n_chunks = ceil_div(blocks, blocks_per_chunk);

  // Gathered rows are padded to a whole group of 4 with the input zero point so
  // the GEMM never takes its K-tail path. The packed weight is the same for k
  // and the padded k (zero-filled), and the zero-point terms balance: the pad
  // adds (k_rows - k) * a_zp to each row sum and to the k * a_zp * b_zp term.
  const size_t k_rows = direct ? k : (k + kernels::kGemmGroupK - 1) / kernels::kGemmGroupK * kernels::kGemmGroupK;
  // With a zero input zero point, padding is 0 in A: kernel rows that lie
  // entirely in the padding add nothing, and each output row multiplies only
  // its kernel rows inside the image (kernels::k_slice, same bits). A 3x3
  // layer saves a third of the reduction on its top and bottom output rows:
  // 9.5% of the work on a 7x7 image, 4.8% on 14x14. Slices start on a whole
  // group of K, so a kernel row must hold a multiple of 4 bytes.
  const size_t kernel_row_k = g.kernel_w * size_t(group_in);
  const bool skip_padding_rows = !direct && a.input_zero_point == 0 && g.pad_h > 0 &&
                                 kernel_row_k % kernels::kGemmGroupK == 0 &&
                                 kernels::gemm_ukernels().k_slices_keep_col_sums;

  const kernels::GemmFn gemm = kernels::gemm_ukernels().gemm_u8s8;
  const int8_t* weights = packed.const_data_ptr<int8_t>();
  const int64_t tasks = tiles * p.groups * n_chunks;
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    // Uninitialised: im2col_rows writes every byte the GEMM reads.
    const std::unique_ptr<uint8_t[]> rows(direct ? nullptr : new uint8_t[size_t(tile) * k_rows + kernels::kIm2colSlack]);
    for (int64_t task = begin; task < end; ++task) {
      // Chunk-major: parallel_for hands each thread a contiguous range of tasks.
      const int64_t chunk = task / units, group = task % units % p.groups, t = task % units / p.groups;
      const int64_t m0 = t * tile, m = std::min(tile, pixels - m0);
      const size_t n_begin = size_t(chunk * blocks_per_chunk * 16);
      const size_t n_end = std::min<size_t>(size_t(group_out), n_begin + size_t(blocks_per_chunk) * 16);
      const int64_t channel0 = group * group_out;
      const kernels::OutputPipeline out = pipeline(channel0);
      const kernels::PackedB b = kernels::packed_b(weights + group * group_size, sums + channel0, size_t(group_out), k_rows);
      const uint8_t* a_rows;
      size_t lda;
      if (direct) {
        a_rows = x + m0 * p.in_channels + group * group_in;
        lda = size_t(p.in_channels);
      } else {
        kernels::im2col_rows(g, x, size_t(group * group_in), size_t(group_in), uint8_t(a.input_zero_point),
                             size_t(m0), size_t(m0 + m), rows.get(), k_rows);
        a_rows = rows.get();
        lda = k_rows;
      }
      uint8_t* y_tile = y + m0 * p.out_channels + channel0;
      if (!skip_padding_rows) {
        gemm(size_t(m), n_begin, n_end, a_rows, lda, b, out, y_tile, size_t(p.out_channels));
        continue;
      }
      // Runs of pixels whose output rows have the same kernel rows inside the image.
      for (int64_t r = 0; r < m;) {
        const size_t pixel = size_t(m0 + r);
        const kernels::KernelRows inside = kernels::kernel_rows_inside(g, pixel / g.out_w % g.out_h);
        int64_t end = r + int64_t(g.out_w - pixel % g.out_w);
        while (end < m) {
          const kernels::KernelRows next = kernels::kernel_rows_inside(g, size_t(m0 + end) / g.out_w % g.out_h);
          if (next.first != inside.first || next.end != inside.end) break;
          end += int64_t(g.out_w);
        }
        end = std::min(end, m);
        const size_t k0 = inside.first * kernel_row_k;
        const size_t k1 = inside.end == g.kernel_h ? k_rows : inside.end * kernel_row_k;
        gemm(size_t(end - r), n_begin, n_end, a_rows + r * lda + k0, lda, kernels::k_slice(b, k0, k1 - k0), out,
             y_tile + r * p.out_channels, size_t(p.out_channels));
        r = end;
      }
    }
  });
}

// The input in channels_last memory. An NCHW input (the image a model
// quantizes, for its first layer) goes through kernels::nchw_to_nhwc: 4x
// faster than at::contiguous on uint8 (28 us against 113 us for 3x224x224).
at::Tensor channels_last_input(const at::Tensor& input) {
  if (!input.is_contiguous() || input.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return input.contiguous(at::MemoryFormat::ChannelsLast);
  }
  at::Tensor x = at::empty_like(input, input.options().memory_format(at::MemoryFormat::ChannelsLast));
  const int64_t channels = input.size(1), pixels = input.size(2) * input.size(3), image = channels * pixels;
  const uint8_t* src = input.const_data_ptr<uint8_t>();
  uint8_t* dst = x.data_ptr<uint8_t>();
  constexpr int64_t kGrainBytes = 1 << 16;
  at::parallel_for(0, input.size(0) * pixels, std::max<int64_t>(1, kGrainBytes / channels), [&](int64_t b, int64_t e) {
    while (b < e) {  // a range may span images
      const int64_t n = b / pixels, p0 = b % pixels, p1 = std::min(pixels, p0 + (e - b));
      kernels::nchw_to_nhwc(size_t(channels), size_t(pixels), size_t(p0), size_t(p1), src + n * image,
                            dst + n * image);
      b += p1 - p0;
    }
  });
  return x;
}

at::Tensor conv2d_impl(const at::Tensor& input, double input_scale, int64_t input_zero_point,
                       const at::Tensor& packed_weight, const at::Tensor& weight_sums, const at::Tensor& weight_scales,
                       const at::Tensor& weight_zero_points, const c10::optional<at::Tensor>& bias,
                       at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                       at::IntArrayRef dilation, int64_t groups, double output_scale, int64_t output_zero_point,
                       bool relu) {
  check_dtype(weight_sums, at::kInt, "weight_sums");
  TORCH_CHECK_VALUE(weight_sums.dim() == 1, "weight_sums must be 1-d (one per output channel), got shape ",
                    weight_sums.sizes());
  const int64_t out_channels = weight_sums.numel();
  const ConvPlan p = plan_conv(input, out_channels, kernel_size, stride, padding, dilation, groups);
  check_scale(input_scale, "input_scale");
  check_zero_point(input_zero_point, at::kByte, "input_zero_point");
  check_scale(output_scale, "output_scale");
  check_zero_point(output_zero_point, at::kByte, "output_zero_point");
  const WeightParams wp = check_weight_params(weight_scales, weight_zero_points, out_channels);
  at::Tensor bias_f;
  if (bias.has_value() && bias->defined()) {
    check_float_input(*bias, "bias");
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->numel() == out_channels, "bias must be 1-d with ", out_channels,
                      " values (one per output channel), got shape ", bias->sizes());
    bias_f = bias->contiguous();
  }
  const at::Tensor packed = packed_weight.contiguous();
  const at::Tensor sums = weight_sums.contiguous();
  at::Tensor y = empty_output(p, input.options());
  if (y.numel() == 0) return y;
  const at::Tensor x = channels_last_input(input);
  const ConvArgs a{static_cast<float>(input_scale), int32_t(input_zero_point), static_cast<float>(output_scale),
                   int32_t(output_zero_point), relu};
  const float* bias_data = bias_f.defined() ? bias_f.const_data_ptr<float>() : nullptr;
  if (is_depthwise(p.in_channels / groups, groups)) {
    conv_depthwise(p, x.const_data_ptr<uint8_t>(), packed, sums.const_data_ptr<int32_t>(), wp, bias_data, a,
                   y.data_ptr<uint8_t>());
  } else {
    conv_gemm(p, x.const_data_ptr<uint8_t>(), packed, sums.const_data_ptr<int32_t>(), wp, bias_data, a,
              y.data_ptr<uint8_t>());
  }
  return y;
}

at::Tensor conv2d(const at::Tensor& input, double input_scale, int64_t input_zero_point,
                  const at::Tensor& packed_weight, const at::Tensor& weight_sums, const at::Tensor& weight_scales,
                  const at::Tensor& weight_zero_points, const c10::optional<at::Tensor>& bias,
                  at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                  at::IntArrayRef dilation, int64_t groups, double output_scale, int64_t output_zero_point) {
  return conv2d_impl(input, input_scale, input_zero_point, packed_weight, weight_sums, weight_scales,
                     weight_zero_points, bias, kernel_size, stride, padding, dilation, groups, output_scale,
                     output_zero_point, false);
}

at::Tensor conv2d_relu(const at::Tensor& input, double input_scale, int64_t input_zero_point,
                       const at::Tensor& packed_weight, const at::Tensor& weight_sums, const at::Tensor& weight_scales,
                       const at::Tensor& weight_zero_points, const c10::optional<at::Tensor>& bias,
                       at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                       at::IntArrayRef dilation, int64_t groups, double output_scale, int64_t output_zero_point) {
  return conv2d_impl(input, input_scale, input_zero_point, packed_weight, weight_sums, weight_scales,
                     weight_zero_points, bias, kernel_size, stride, padding, dilation, groups, output_scale,
                     output_zero_point, true);
}

// Fake (meta) kernel: the output's shape, dtype and memory format.
at::Tensor conv2d_meta(const at::Tensor& input, double, int64_t, const at::Tensor&, const at::Tensor& weight_sums,
                       const at::Tensor&, const at::Tensor&, const c10::optional<at::Tensor>&,
                       at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                       at::IntArrayRef dilation, int64_t groups, double, int64_t) {
  const ConvPlan p = plan_conv(input, weight_sums.numel(), kernel_size, stride, padding, dilation, groups);
  return empty_output(p, meta_options(input));
}

// The shared argument list of conv2d and conv2d_relu.
#define QTORCH_CONV_SCHEMA_ARGS                                                                      \
  "(Tensor input, float input_scale, int input_zero_point, Tensor packed_weight, Tensor weight_sums, "  \
  "Tensor weight_scales, Tensor weight_zero_points, Tensor? bias, int[2] kernel_size, int[2] stride, " \
  "int[2] padding, int[2] dilation, int groups, float output_scale, int output_zero_point) -> Tensor"

}  // namespace

TORCH_LIBRARY_FRAGMENT(qtorch, m) {
  m.def("conv2d_prepack(Tensor weight, Tensor weight_zero_points, int groups) -> (Tensor, Tensor)");
  m.def("conv2d_unpack(Tensor packed_weight, int[] weight_shape, int groups) -> Tensor");
  m.def("conv2d" QTORCH_CONV_SCHEMA_ARGS);
  m.def("conv2d_relu" QTORCH_CONV_SCHEMA_ARGS);
}

TORCH_LIBRARY_IMPL(qtorch, CPU, m) {
  m.impl("conv2d_prepack", &conv2d_prepack);
  m.impl("conv2d_unpack", &conv2d_unpack);
  m.impl("conv2d", &conv2d);
  m.impl("conv2d_relu", &conv2d_relu);
}

TORCH_LIBRARY_IMPL(qtorch, Meta, m) {
  m.impl("conv2d_prepack", &conv2d_prepack_meta);
  m.impl("conv2d_unpack", &conv2d_unpack_meta);
  m.impl("conv2d", &conv2d_meta);
  m.impl("conv2d_relu", &conv2d_meta);
}

}  // namespace ops
}  // namespace qtorch
