// Pooling and resize ops on uint8 quantized tensors (N, C, H, W) or (C, H, W):
// max_pool2d, avg_pool2d, adaptive_avg_pool2d, nearest and bilinear upsampling.
// The output keeps the input's memory format. Pooling works on channels_last
// (vectors over channels) and NCHW planes (split into stride phases, vectors over
// output columns; adaptive windows of whole rows as contiguous byte runs) directly;
// resizing works on NHWC, so NCHW input goes through a channels_last copy.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "checks.h"
#include "pool/pool.h"

namespace qtorch {
namespace ops {
namespace {

using kernels::pool_ukernels;

constexpr int64_t kGrain = 1 << 14;  // bytes of output per parallel task (roughly)

// A 4-d NHWC view of the input and how to give the output the input's layout.
struct Nhwc {
  at::Tensor x;  // (N, C, H, W) in channels_last memory
  bool batched;  // the input was 4-d
  bool channels_last;  // the input was channels_last (else NCHW and friends)
  int64_t n, c, h, w;
};

Nhwc as_nhwc(const at::Tensor& input, const char* op) {
  check_dtype(input, at::kByte, "input");
  TORCH_CHECK_VALUE(input.dim() == 3 || input.dim() == 4, op, ": input must be 3-d (C, H, W) or 4-d (N, C, H, W), got ",
                    input.dim(), "-d");
  Nhwc v;
  v.batched = input.dim() == 4;
  const at::Tensor x4 = v.batched ? input : input.unsqueeze(0);
  v.channels_last = v.batched && x4.is_contiguous(at::MemoryFormat::ChannelsLast) && !x4.is_contiguous();
  v.x = x4.contiguous(at::MemoryFormat::ChannelsLast);
  v.n = x4.size(0), v.c = x4.size(1), v.h = x4.size(2), v.w = x4.size(3);
  return v;
}

at::Tensor empty_nhwc(const Nhwc& v, int64_t oh, int64_t ow) {
  return at::empty({v.n, v.c, oh, ow}, v.x.options().memory_format(at::MemoryFormat::ChannelsLast));
}

// Back to the input's layout: NCHW (contiguous) unless the input was channels_last.
at::Tensor finish(const Nhwc& v, const at::Tensor& y) {
  at::Tensor out = v.channels_last ? y : y.contiguous();
  return v.batched ? out : out.squeeze(0);
}

// Runs fn(n, oh) for every output row, in parallel.
template <typename Fn>
void for_each_output_row(const Nhwc& v, int64_t oh, int64_t ow, const Fn& fn) {
  const int64_t row_bytes = std::max<int64_t>(1, ow * v.c);
  at::parallel_for(0, v.n * oh, std::max<int64_t>(1, kGrain / row_bytes), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) fn(r / oh, r % oh);
  });
}

// In 128 bits: with int32 parameters no term overflows even for a (meta) input size near 2^63,
// whose output size may not fit int64 (check_window rejects it).
using Wide = __int128;

Wide pooling_output_size(int64_t in, int64_t kernel, int64_t pad, int64_t stride, int64_t dilation, bool ceil_mode) {
  const Wide span = Wide(in) + 2 * Wide(pad) - Wide(dilation) * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  Wide out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
  // The last window must start inside the input or the left padding.
  if (ceil_mode && (out - 1) * stride >= Wide(in) + pad) --out;
  return out;
}

std::pair<int64_t, int64_t> pair_arg(at::IntArrayRef v, const char* name, const char* op) {
  TORCH_CHECK_VALUE(v.size() == 1 || v.size() == 2, op, ": ", name, " must have 1 or 2 values, got ", v.size());
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}

// torch's pooling parameters are C int: it rejects larger values, and so do we. Within int32 no
// product of two parameters (kernel * dilation, kh * kw) overflows int64.
void check_fits_int32(at::IntArrayRef v, const char* name, const char* op) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  TORCH_CHECK_VALUE(std::all_of(v.begin(), v.end(), [](int64_t x) { return x <= kMax; }), op, ": ", name,
                    " must be at most ", kMax, " (torch's pooling parameters are C int), got ", v);
}

// Taps [first, last) of `taps` taps `dilation` apart, the first at `start` (negative: in the
// padding), that land in [0, size): the loops visit only those, however much padding the window has.
std::pair<int64_t, int64_t> taps_inside(int64_t start, int64_t taps, int64_t dilation, int64_t size) {
  const int64_t first = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
  const int64_t last = start >= size ? 0 : std::min(taps, (size - 1 - start) / dilation + 1);
  return {first, std::max(first, last)};
}

// The kernel taps the loops visit: tap i of every window lies at i * dilation from its start,
// which is at least -padding, so taps with i * dilation >= size + 2 * padding lie past the
// padded input for every window and are never read. Dropping them keeps the work bounded by
// the input (a kernel of 2^31 - 1 is legal); it also keeps avg_pool2d's divisors, as the
// windows are clipped to the padded input (every window still reaches its end).
int64_t taps_in_padded_input(int64_t kernel, int64_t size, int64_t pad, int64_t dilation) {
  const Wide reach = (Wide(size) + 2 * Wide(pad) + dilation - 1) / dilation;
  return std::max<int64_t>(1, static_cast<int64_t>(std::min<Wide>(kernel, reach)));
}

// kh, kw: the taps the loops visit (taps_in_padded_input), not the caller's kernel_size,
// which only sets the output size oh x ow.
struct Window2d {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
};

Window2d check_window(int64_t height, int64_t width, int64_t channels, at::IntArrayRef kernel_size,
                      at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                      const char* op) {
  Window2d g;
  check_fits_int32(kernel_size, "kernel_size", op);
  check_fits_int32(stride, "stride", op);
  check_fits_int32(padding, "padding", op);
  check_fits_int32(dilation, "dilation", op);
  std::tie(g.kh, g.kw) = pair_arg(kernel_size, "kernel_size", op);
  std::tie(g.sh, g.sw) = stride.empty() ? std::make_pair(g.kh, g.kw) : pair_arg(stride, "stride", op);
  std::tie(g.ph, g.pw) = pair_arg(padding, "padding", op);
  std::tie(g.dh, g.dw) = pair_arg(dilation, "dilation", op);
  TORCH_CHECK_VALUE(g.kh > 0 && g.kw > 0, op, ": kernel_size must be positive, got ", kernel_size);
  TORCH_CHECK_VALUE(g.sh > 0 && g.sw > 0, op, ": stride must be positive, got ", stride);
  TORCH_CHECK_VALUE(g.dh > 0 && g.dw > 0, op, ": dilation must be positive, got ", dilation);
  TORCH_CHECK_VALUE(g.ph >= 0 && g.pw >= 0, op, ": padding must be non-negative, got ", padding);
  // torch's limit for max and avg pooling alike: half the kernel size, whatever the dilation
  // (torch checks the dilated extent too, but that limit is never the smaller one).
  TORCH_CHECK_VALUE(g.ph <= g.kh / 2 && g.pw <= g.kw / 2, op,
                    ": padding must be at most half the kernel size (kernel_size / 2, rounded down, dilation not "
                    "counted: at most ", g.kh / 2, "x", g.kw / 2, " here), got padding ", padding, " for kernel_size ",
                    kernel_size);
  const Wide oh = pooling_output_size(height, g.kh, g.ph, g.sh, g.dh, ceil_mode);
  const Wide ow = pooling_output_size(width, g.kw, g.pw, g.sw, g.dw, ceil_mode);
  TORCH_CHECK_VALUE(oh <= std::numeric_limits<int64_t>::max() && ow <= std::numeric_limits<int64_t>::max(), op,
                    ": the output size for an input of size ", height, "x", width, " would be past int64");
  g.oh = static_cast<int64_t>(std::max<Wide>(oh, std::numeric_limits<int64_t>::min()));
  g.ow = static_cast<int64_t>(std::max<Wide>(ow, std::numeric_limits<int64_t>::min()));
  TORCH_CHECK_VALUE(g.oh >= 1 && g.ow >= 1, op, ": the pooling window (kernel_size ", kernel_size, ", dilation ",
                    dilation, ", padding ", padding, ") does not fit the input of size ", height, "x", width,
                    ": output size would be ", g.oh, "x", g.ow);
  TORCH_CHECK_VALUE(channels > 0, op, ": input must have at least one channel");
  g.kh = taps_in_padded_input(g.kh, height, g.ph, g.dh);
  g.kw = taps_in_padded_input(g.kw, width, g.pw, g.dw);
  return g;
}

// Pooling runs on either layout without copies: an NHWC image is H x W pixels of
// C contiguous channels; an NCHW tensor is N * C planes of H x W pixels of one
// channel. `Images` describes both (the kernels take channels and strides).
struct Images {
  at::Tensor x;        // the input in the layout used
  bool nhwc;           // else NCHW planes
  bool batched;        // the input was 4-d
  int64_t n, c, h, w;  // logical sizes
  int64_t count;       // images: N (NHWC) or N * C (NCHW)
  int64_t ch;          // values per pixel: C (NHWC) or 1 (NCHW)
};

Images as_images(const at::Tensor& input, const char* op) {
  check_dtype(input, at::kByte, "input");
  TORCH_CHECK_VALUE(input.dim() == 3 || input.dim() == 4, op, ": input must be 3-d (C, H, W) or 4-d (N, C, H, W), got ",
                    input.dim(), "-d");
  Images v;
  v.batched = input.dim() == 4;
  const at::Tensor x4 = v.batched ? input : input.unsqueeze(0);
  v.nhwc = x4.is_contiguous(at::MemoryFormat::ChannelsLast) && !x4.is_contiguous();
  v.x = v.nhwc ? x4 : x4.contiguous();
  v.n = x4.size(0), v.c = x4.size(1), v.h = x4.size(2), v.w = x4.size(3);
  v.count = v.nhwc ? v.n : v.n * v.c;
  v.ch = v.nhwc ? v.c : 1;
  return v;
}

at::Tensor empty_images(const Images& v, int64_t oh, int64_t ow) {
  at::Tensor y = at::empty({v.n, v.c, oh, ow}, v.x.options().memory_format(
                                                   v.nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
  return y;
}

at::Tensor unbatch(const Images& v, const at::Tensor& y) { return v.batched ? y : y.squeeze(0); }

// Runs fn(image, output_row) for every output row of every image, in parallel.
template <typename Fn>
void for_each_image_row(const Images& v, int64_t oh, int64_t ow, const Fn& fn) {
  const int64_t row_bytes = std::max<int64_t>(1, ow * v.ch);
  at::parallel_for(0, v.count * oh, std::max<int64_t>(1, kGrain / row_bytes), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) fn(r / oh, r % oh);
  });
}

// Output columns [lo, hi) whose windows lie entirely inside the input (no padding, no
// ceil_mode overhang): they form one kernel call with a constant row step.
std::pair<int64_t, int64_t> interior_columns(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad,
                                             int64_t dilation) {
  const int64_t lo = std::min(out, (pad + stride - 1) / stride);
  const int64_t last_start = in - 1 + pad - (kernel - 1) * dilation;  // ow * stride must not exceed it
  const int64_t hi = last_start < 0 ? lo : std::max(lo, std::min(out, last_start / stride + 1));
  return {lo, hi};
}

// ---- NCHW planes through phase buffers -----------------------------------------
//
// A window of stride s reads every s-th byte of an NCHW row, so consecutive outputs do
// not read consecutive bytes. Split into sh * sw phases (phase (a, b) holds the plane's
// rows a, a + sh, ... and of those the columns b, b + sw, ...), window tap (i, j) of
// output (r, o) is row r + floor((i*dh - ph) / sh) and column o + floor((j*dw - pw) / sw)
// of phase ((i*dh - ph) mod sh, (j*dw - pw) mod sw): for each tap the outputs of a row
// read consecutive bytes, and the vectorized kernels run with channels = output columns.
// Each phase has margins of a pad value around the plane's bytes so that padding and
// ceil_mode overhang need no special case: 0 for max (no uint8 is smaller) and the input
// zero point for avg (it adds nothing to the sum of x - zero_point once the bias counts
// every tap).

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

struct PhaseLayout {
  int64_t top, left;          // margin rows and columns before a phase's first plane byte
  int64_t rows, pitch;        // each phase is rows x pitch bytes, the phases one after another
  int64_t size;               // bytes of all phases
  std::vector<int64_t> taps;  // per window tap (row-major): where output (0, 0) reads it
};

PhaseLayout phase_layout(int64_t h, int64_t w, const Window2d& g) {
  PhaseLayout l;
  l.top = (g.ph + g.sh - 1) / g.sh;
  l.left = (g.pw + g.sw - 1) / g.sw;
  const int64_t last_row = floor_div((g.kh - 1) * g.dh - g.ph, g.sh);
  const int64_t last_col = floor_div((g.kw - 1) * g.dw - g.pw, g.sw);
  l.rows = l.top + std::max((h + g.sh - 1) / g.sh, g.oh + last_row);
  l.pitch = l.left + std::max((w + g.sw - 1) / g.sw, g.ow + last_col);
  l.size = g.sh * g.sw * l.rows * l.pitch;
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t ti = i * g.dh - g.ph, a = ti - floor_div(ti, g.sh) * g.sh;
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t tj = j * g.dw - g.pw, b = tj - floor_div(tj, g.sw) * g.sw;
      l.taps.push_back(((a * g.sw + b) * l.rows + l.top + floor_div(ti, g.sh)) * l.pitch + l.left + floor_div(tj, g.sw));
    }
  }
  return l;
}

// Huge strides (or kernel extents) would make mostly empty phases, and sizes past int64:
// those geometries keep the per-row path. Checked before phase_layout computes anything,
// on a bound of its size in double (the fuzzer passes strides up to 2^63 - 1).
bool phases_fit(int64_t h, int64_t w, const Window2d& g) {
  const double rows = (double(g.ph) + double(h) + double(g.kh) * double(g.dh)) / double(g.sh) + double(g.oh) + 3;
  const double pitch = (double(g.pw) + double(w) + double(g.kw) * double(g.dw)) / double(g.sw) + double(g.ow) + 3;
  return double(g.sh) * double(g.sw) * rows * pitch <= 4.0 * double(h) * double(w) + double(1 << 16);
}

// Runs fn(plane, phases, tap pointers of output (0, 0)) for every NCHW plane, in
// parallel; a task's buffer is filled with the pad value once, and each plane
// overwrites the same (non-margin) bytes.
template <typename Fn>
void for_each_plane_in_phases(const Images& v, const Window2d& g, const PhaseLayout& l, uint8_t pad, const Fn& fn) {
  const auto deinterleave = pool_ukernels().deinterleave_u8;
  const uint8_t* px = v.x.const_data_ptr<uint8_t>();
  at::parallel_for(0, v.count, std::max<int64_t>(1, kGrain / (g.oh * g.ow)), [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> buffer(l.size, pad);
    std::vector<const uint8_t*> taps(l.taps.size());
    for (size_t k = 0; k < taps.size(); ++k) taps[k] = buffer.data() + l.taps[k];
    for (int64_t plane = begin; plane < end; ++plane) {
      const uint8_t* src = px + plane * v.h * v.w;
      for (int64_t a = 0; a < std::min(g.sh, v.h); ++a) {  // plane rows a, a + sh, ... into row phase a
        deinterleave((v.h - a + g.sh - 1) / g.sh, v.w, g.sw, src + a * v.w, g.sh * v.w,
                     buffer.data() + (a * g.sw * l.rows + l.top) * l.pitch + l.left, l.pitch, l.rows * l.pitch);
      }
      fn(plane, buffer.data(), taps.data());
    }
  });
}

// Every output of a plane from the tap pointers of output (0, 0): rows `pitch` apart
// in the phases, `ow` apart in the output; one run when those agree.
template <typename Call>
void pool_all_outputs(const Window2d& g, const PhaseLayout& l, const Call& call) {
  if (l.pitch == g.ow) call(1, g.oh * g.ow, 0, 0);
  else call(g.oh, g.ow, l.pitch, g.ow);
}

// ---- max_pool2d: separable, a vertical max over whole input rows, then a horizontal max

// NCHW planes: the vertical max of each output row's window rows (whole input rows,
// contiguous) into oh rows of W bytes, then the horizontal max of those through column
// phases with margins of 0 (a one-row window in the phase layout). False when the
// stride would make the phases mostly empty (the caller takes the per-row path).
bool max_pool2d_planes(const Images& v, const Window2d& g, uint8_t* py) {
  Window2d across = g;  // the horizontal pass: one row of window, over the oh vertical maxima
  across.kh = across.sh = across.dh = 1, across.ph = 0;
  if (!phases_fit(v.h, v.w, g) || !phases_fit(g.oh, v.w, across)) return false;
  const PhaseLayout l = phase_layout(g.oh, v.w, across);
  const auto& k = pool_ukernels();
  const uint8_t* px = v.x.const_data_ptr<uint8_t>();
  const auto [lo, hi] = interior_columns(v.h, g.oh, g.kh, g.sh, g.ph, g.dh);  // output rows without padding
  // The vertical maxima go to rows laid out like the phases interleaved back (pitch
  // sw * pitch, margins of 0), so one deinterleave of the whole buffer splits them.
  const int64_t padded_row = g.sw * l.pitch, first = g.sw * l.left;
  at::parallel_for(0, v.count, std::max<int64_t>(1, kGrain / (g.oh * g.ow)), [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> vertical(g.kh > 1 ? g.oh * padded_row : 0, 0), phases(l.size, 0);
    std::vector<const uint8_t*> rows(std::max(g.kh, g.kw));
    for (int64_t plane = begin; plane < end; ++plane) {
      const uint8_t* src = px + plane * v.h * v.w;
      if (g.kh > 1) {
        uint8_t* maxima = vertical.data() + first;
        if (hi > lo) {
          for (int64_t i = 0; i < g.kh; ++i) rows[i] = src + (lo * g.sh - g.ph + i * g.dh) * v.w;
          k.max_pool_u8(hi - lo, v.w, g.kh, rows.data(), g.sh * v.w, maxima + lo * padded_row, padded_row);
        }
        for (int64_t r = 0; r < g.oh; ++r) {  // rows whose window reaches into the padding
          if (r == lo && hi > lo) r = hi;
          if (r >= g.oh) break;
          size_t count = 0;
          const int64_t h0 = r * g.sh - g.ph;
          const auto [i0, i1] = taps_inside(h0, g.kh, g.dh, v.h);
          for (int64_t i = i0; i < i1; ++i) rows[count++] = src + (h0 + i * g.dh) * v.w;
          if (count == 0) std::memset(maxima + r * padded_row, 0, v.w);
          else k.max_pool_u8(1, v.w, count, rows.data(), 0, maxima + r * padded_row, 0);
        }
        k.deinterleave_u8(1, g.oh * padded_row, g.sw, vertical.data(), 0, phases.data(), 0, l.rows * l.pitch);
      } else {  // kh == 1 (then ph == 0): the input rows themselves, sh rows apart
        k.deinterleave_u8(g.oh, v.w, g.sw, src, g.sh * v.w, phases.data() + l.left, l.pitch, l.rows * l.pitch);
      }
      for (int64_t j = 0; j < g.kw; ++j) rows[j] = phases.data() + l.taps[j];
      uint8_t* out = py + plane * g.oh * g.ow;
      pool_all_outputs(g, l, [&](int64_t outputs, int64_t channels, int64_t row_step, int64_t y_step) {
        k.max_pool_u8(outputs, channels, g.kw, rows.data(), row_step, out, y_step);
      });
    }
  });
  return true;
}

at::Tensor max_pool2d(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  const Images v = as_images(input, "max_pool2d");
  const Window2d g = check_window(v.h, v.w, v.c, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d");
  at::Tensor y = empty_images(v, g.oh, g.ow);
  const uint8_t* px = v.x.const_data_ptr<uint8_t>();
  uint8_t* py = y.data_ptr<uint8_t>();
  const auto fn = pool_ukernels().max_pool_u8;
  if (!v.nhwc && max_pool2d_planes(v, g, py)) return unbatch(v, y);
  const int64_t ch = v.ch, row_bytes = v.w * ch;
  const auto [lo, hi] = interior_columns(v.w, g.ow, g.kw, g.sw, g.pw, g.dw);
  for_each_image_row(v, g.oh, g.ow, [&](int64_t image, int64_t oh) {
    thread_local std::vector<uint8_t> vertical;
    thread_local std::vector<const uint8_t*> rows;
    rows.clear();
    const uint8_t* src = px + image * v.h * row_bytes;
    uint8_t* out = py + (image * g.oh + oh) * g.ow * ch;
    const int64_t h0 = oh * g.sh - g.ph;
    const auto [i0, i1] = taps_inside(h0, g.kh, g.dh, v.h);
    for (int64_t i = i0; i < i1; ++i) rows.push_back(src + (h0 + i * g.dh) * row_bytes);
    if (rows.empty()) {  // a window row entirely in padding
      std::memset(out, 0, g.ow * ch);
      return;
    }
    const uint8_t* row = rows[0];
    if (rows.size() > 1) {
      vertical.resize(row_bytes);
      fn(1, row_bytes, rows.size(), rows.data(), 0, vertical.data(), 0);
      row = vertical.data();
    }
    auto columns = [&](int64_t ow) {
      rows.clear();
      const int64_t w0 = ow * g.sw - g.pw;
      const auto [j0, j1] = taps_inside(w0, g.kw, g.dw, v.w);
      for (int64_t j = j0; j < j1; ++j) rows.push_back(row + (w0 + j * g.dw) * ch);
    };
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      if (ow == lo && hi > lo) {
        columns(lo);
        fn(hi - lo, ch, rows.size(), rows.data(), g.sw * ch, out + lo * ch, ch);
        ow = hi - 1;
        continue;
      }
      columns(ow);
      if (rows.empty()) std::memset(out + ow * ch, 0, ch);
      else fn(1, ch, rows.size(), rows.data(), 0, out + ow * ch, 0);
    }
  });
  return unbatch(v, y);
}

// ---- avg_pool2d / adaptive_avg_pool2d ---------------------------------------

struct AvgRequant {
  float ratio;  // input_scale / scale
  int32_t in_zp, out_zp;
};

AvgRequant check_avg_params(double input_scale, int64_t input_zp, double scale, int64_t zero_point) {
  check_scale(input_scale, "input_scale");
  check_zero_point(input_zp, at::kByte, "input_zero_point");
  check_scale(scale, "scale");
  check_zero_point(zero_point, at::kByte, "zero_point");
  return {static_cast<float>(input_scale / scale), static_cast<int32_t>(input_zp), static_cast<int32_t>(zero_point)};
}

void check_divisor_override(std::optional<int64_t> divisor_override) {
  TORCH_CHECK_VALUE(!divisor_override.has_value() || *divisor_override != 0, "avg_pool2d: divisor_override must be non-zero");
}

// The bias in int64: a window of a large plane (global pooling) can have more than 2^31 / 255 taps.
kernels::AvgPoolParams avg_params(const AvgRequant& r, size_t count, int64_t divisor) {
  return {-int64_t(r.in_zp) * static_cast<int64_t>(count), r.ratio / static_cast<float>(divisor), r.out_zp};
}

// Window extents along one axis as avg_pool2d divides by them: clipped to the padded
// input (count_include_pad) or to the input.
std::vector<int64_t> avg_extents(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad,
                                 bool count_include_pad) {
  std::vector<int64_t> extents(out);
  for (int64_t o = 0; o < out; ++o) {
    const int64_t lo = o * stride - pad, hi = std::min(lo + kernel, in + pad);
    extents[o] = count_include_pad ? hi - lo : std::max<int64_t>(0, std::min(hi, in) - std::max<int64_t>(lo, 0));
  }
  return extents;
}

// [begin, end) ranges of equal values.
std::vector<std::pair<int64_t, int64_t>> equal_runs(const std::vector<int64_t>& values) {
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (int64_t i = 0; i < int64_t(values.size()); ++i) {
    if (runs.empty() || values[i] != values[runs.back().first]) runs.push_back({i, i + 1});
    else runs.back().second = i + 1;
  }
  return runs;
}

// NCHW avg_pool2d through phase buffers padded with the input zero point: every window sums
// all kh * kw taps (bias -zero_point * kh * kw), the same integer as the sum of its input
// bytes minus zero_point each. One call for a plane with the full-window divisor, then the
// blocks of outputs whose divisor differs (border windows without count_include_pad,
// ceil_mode overhang) again with theirs; the divisor is a row factor times a column factor.
void avg_pool2d_planes(const Images& v, const Window2d& g, const PhaseLayout& l, bool count_include_pad,
                       std::optional<int64_t> divisor_override, const AvgRequant& r, uint8_t* py) {
  const auto fn = pool_ukernels().avg_pool_u8;
  const size_t count = l.taps.size();
  const int64_t full = divisor_override.has_value() ? std::max<int64_t>(*divisor_override, 1) : g.kh * g.kw;
  const kernels::AvgPoolParams p = avg_params(r, count, full);
  const std::vector<int64_t> heights = avg_extents(v.h, g.oh, g.kh, g.sh, g.ph, count_include_pad);
  const std::vector<int64_t> widths = avg_extents(v.w, g.ow, g.kw, g.sw, g.pw, count_include_pad);
  const auto row_runs = equal_runs(heights), column_runs = equal_runs(widths);
  for_each_plane_in_phases(v, g, l, static_cast<uint8_t>(r.in_zp),
                           [&](int64_t plane, const uint8_t*, const uint8_t* const* taps) {
    uint8_t* out = py + plane * g.oh * g.ow;
    pool_all_outputs(g, l, [&](int64_t outputs, int64_t channels, int64_t row_step, int64_t y_step) {
      fn(outputs, channels, count, taps, row_step, out, y_step, p);
    });
    if (divisor_override.has_value()) return;
    std::vector<const uint8_t*> shifted(count);
    for (const auto& [r0, r1] : row_runs) {
      for (const auto& [o0, o1] : column_runs) {
        const int64_t divisor = std::max<int64_t>(heights[r0] * widths[o0], 1);
        if (divisor == full) continue;
        for (size_t k = 0; k < count; ++k) shifted[k] = taps[k] + r0 * l.pitch + o0;
        fn(r1 - r0, o1 - o0, count, shifted.data(), l.pitch, out + r0 * g.ow + o0, g.ow, avg_params(r, count, divisor));
      }
    }
  });
}

at::Tensor avg_pool2d(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                      at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                      std::optional<int64_t> divisor_override, double input_scale, int64_t input_zero_point,
                      double scale, int64_t zero_point) {
  const Images v = as_images(input, "avg_pool2d");
  const Window2d g = check_window(v.h, v.w, v.c, kernel_size, stride, padding, {1}, ceil_mode, "avg_pool2d");
  check_divisor_override(divisor_override);
  const AvgRequant r = check_avg_params(input_scale, input_zero_point, scale, zero_point);
  at::Tensor y = empty_images(v, g.oh, g.ow);
  const uint8_t* px = v.x.const_data_ptr<uint8_t>();
  uint8_t* py = y.data_ptr<uint8_t>();
  const auto fn = pool_ukernels().avg_pool_u8;
  if (!v.nhwc && phases_fit(v.h, v.w, g)) {
    avg_pool2d_planes(v, g, phase_layout(v.h, v.w, g), count_include_pad, divisor_override, r, py);
    return unbatch(v, y);
  }
  const int64_t ch = v.ch;
  const auto [lo, hi] = interior_columns(v.w, g.ow, g.kw, g.sw, g.pw, 1);
  for_each_image_row(v, g.oh, g.ow, [&](int64_t image, int64_t oh) {
    thread_local std::vector<const uint8_t*> rows;
    const uint8_t* src = px + image * v.h * v.w * ch;
    uint8_t* out = py + (image * g.oh + oh) * g.ow * ch;
    int64_t h0 = oh * g.sh - g.ph, h1 = std::min(h0 + g.kh, v.h + g.ph);
    const int64_t pool_h = h1 - h0;
    h0 = std::max<int64_t>(h0, 0), h1 = std::min(h1, v.h);
    auto window = [&](int64_t ow, int64_t* pool_w) {
      int64_t w0 = ow * g.sw - g.pw, w1 = std::min(w0 + g.kw, v.w + g.pw);
      *pool_w = w1 - w0;
      w0 = std::max<int64_t>(w0, 0), w1 = std::min(w1, v.w);
      rows.clear();
      for (int64_t ih = h0; ih < h1; ++ih) {
        for (int64_t iw = w0; iw < w1; ++iw) rows.push_back(src + (ih * v.w + iw) * ch);
      }
      const int64_t divisor = divisor_override.has_value() ? *divisor_override
                              : count_include_pad         ? pool_h * *pool_w
                                                          : int64_t(rows.size());
      return avg_params(r, rows.size(), std::max<int64_t>(divisor, 1));
    };
    int64_t pool_w;
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      if (ow == lo && hi > lo) {  // full windows: same count and divisor, one call
        const kernels::AvgPoolParams p = window(lo, &pool_w);
        fn(hi - lo, ch, rows.size(), rows.data(), g.sw * ch, out + lo * ch, ch, p);
        ow = hi - 1;
        continue;
      }
      const kernels::AvgPoolParams p = window(ow, &pool_w);
      fn(1, ch, rows.size(), rows.data(), 0, out + ow * ch, 0, p);
    }
  });
  return unbatch(v, y);
}

// The output size, checked against the input's channels and plane (CPU and Meta kernels alike).
std::pair<int64_t, int64_t> check_adaptive(const at::Tensor& input, int64_t c, int64_t h, int64_t w,
                                           at::IntArrayRef output_size) {
  const auto [oh, ow] = pair_arg(output_size, "output_size", "adaptive_avg_pool2d");
  TORCH_CHECK_VALUE(oh >= 1 && ow >= 1, "adaptive_avg_pool2d: output_size must be positive, got ", output_size);
  TORCH_CHECK_VALUE(h >= 1 && w >= 1 && c >= 1, "adaptive_avg_pool2d: input must be non-empty, got shape ",
                    input.sizes());
  return {oh, ow};
}

// Every image has the same windows: one kernel call per output pixel covers a
// range of images (the image stride is the row step).
at::Tensor adaptive_avg_pool2d(const at::Tensor& input, at::IntArrayRef output_size, double input_scale,
                               int64_t input_zero_point, double scale, int64_t zero_point) {
  const Images v = as_images(input, "adaptive_avg_pool2d");
  const auto [oh, ow] = check_adaptive(input, v.c, v.h, v.w, output_size);
  const AvgRequant r = check_avg_params(input_scale, input_zero_point, scale, zero_point);
  at::Tensor y = empty_images(v, oh, ow);
  const uint8_t* px = v.x.const_data_ptr<uint8_t>();
  uint8_t* py = y.data_ptr<uint8_t>();
  const auto fn = pool_ukernels().avg_pool_u8;
  const int64_t ch = v.ch, in_image = v.h * v.w * ch, out_image = oh * ow * ch;
  auto start = [](int64_t o, int64_t in, int64_t out) { return (o * in) / out; };
  auto end = [](int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; };
  const int64_t work_per_image = std::max<int64_t>(1, in_image);
  if (!v.nhwc && ow == 1) {  // NCHW, windows of whole rows: each output sums one contiguous run
    const auto runs_fn = pool_ukernels().avg_pool_runs_u8;
    at::parallel_for(0, v.count, std::max<int64_t>(1, kGrain / work_per_image), [&](int64_t first, int64_t last) {
      for (int64_t i = 0; i < oh; ++i) {
        const int64_t h0 = start(i, v.h, oh), length = (end(i, v.h, oh) - h0) * v.w;
        runs_fn(last - first, length, px + first * in_image + h0 * v.w, in_image, py + first * oh + i, oh,
                avg_params(r, length, length));
      }
    });
    return unbatch(v, y);
  }
  at::parallel_for(0, v.count, std::max<int64_t>(1, kGrain / work_per_image), [&](int64_t first, int64_t last) {
    std::vector<const uint8_t*> rows;
    for (int64_t i = 0; i < oh; ++i) {
      const int64_t h0 = start(i, v.h, oh), h1 = end(i, v.h, oh);
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t w0 = start(j, v.w, ow), w1 = end(j, v.w, ow);
        rows.clear();
        for (int64_t ih = h0; ih < h1; ++ih) {
          for (int64_t iw = w0; iw < w1; ++iw) rows.push_back(px + first * in_image + (ih * v.w + iw) * ch);
        }
        fn(last - first, ch, rows.size(), rows.data(), in_image, py + first * out_image + (i * ow + j) * ch,
           out_image, avg_params(r, rows.size(), int64_t(rows.size())));
      }
    }
  });
  return unbatch(v, y);
}

// ---- upsampling --------------------------------------------------------------

std::pair<int64_t, int64_t> check_resize(const Nhwc& v, at::IntArrayRef output_size, const char* op) {
  int64_t oh, ow;
  std::tie(oh, ow) = pair_arg(output_size, "output_size", op);
  TORCH_CHECK_VALUE(oh >= 1 && ow >= 1, op, ": output_size must be positive, got ", output_size);
  TORCH_CHECK_VALUE(v.h >= 1 && v.w >= 1, op, ": input must have a non-empty spatial size, got ", v.h, "x", v.w);
  return {oh, ow};
}

// Input size over output size, or 1/scale when the caller gave a scale factor (torch's rule).
float resize_scale(int64_t in, int64_t out, std::optional<double> scale) {
  return scale.has_value() && *scale > 0 ? static_cast<float>(1.0 / *scale) : static_cast<float>(in) / out;
}

int64_t nearest_index(int64_t o, int64_t in, int64_t out, float scale) {
  if (out == in) return o;
  if (out == 2 * in) return o >> 1;
  return std::min(static_cast<int64_t>(std::floor(o * scale)), in - 1);
}

// A table of `count` T for one call, from torch's allocator rather than a std::vector: `count` comes
// from the caller's output_size, and a failed torch allocation is a Python error in every build,
// where a failed operator new aborts under AddressSanitizer (make test-sanitize fuzzes these ops).
template <typename T>
T* column_table(at::Tensor& storage, int64_t count) {
  storage = at::empty({count * static_cast<int64_t>(sizeof(T))}, at::TensorOptions().dtype(at::kByte));
  return reinterpret_cast<T*>(storage.data_ptr<uint8_t>());
}

at::Tensor upsample_nearest2d(const at::Tensor& input, at::IntArrayRef output_size, std::optional<double> scales_h,
                              std::optional<double> scales_w) {
  const Nhwc v = as_nhwc(input, "upsample_nearest2d");
  const auto [oh, ow] = check_resize(v, output_size, "upsample_nearest2d");
  // The output first: an impossible size fails there, and an empty one needs no tables.
  at::Tensor y = empty_nhwc(v, oh, ow);
  if (y.numel() == 0) return finish(v, y);
  const float sh = resize_scale(v.h, oh, scales_h), sw = resize_scale(v.w, ow, scales_w);
  at::Tensor src_w_storage;
  int64_t* src_w = column_table<int64_t>(src_w_storage, ow);
  for (int64_t j = 0; j < ow; ++j) src_w[j] = nearest_index(j, v.w, ow, sw);
  const uint8_t* px = v.x.const_data_ptr<uint8_t>();
  uint8_t* py = y.data_ptr<uint8_t>();
  const int64_t C = v.c;
  for_each_output_row(v, oh, ow, [&](int64_t n, int64_t i) {
    const uint8_t* src_row = px + (n * v.h + nearest_index(i, v.h, oh, sh)) * v.w * C;
    uint8_t* out = py + (n * oh + i) * ow * C;
    for (int64_t j = 0; j < ow; ++j) std::memcpy(out + j * C, src_row + src_w[j] * C, C);
  });
  return finish(v, y);
}

// Source coordinate and weights along one axis, as torch computes them in float.
struct Linear1d {
  int64_t i0, i1;
  float l0, l1;
};

void linear_coords(int64_t in, int64_t out, bool align_corners, std::optional<double> scale, Linear1d* coords) {
  const float s = align_corners ? (out > 1 ? static_cast<float>(in - 1) / (out - 1) : 0.f) : resize_scale(in, out, scale);
  for (int64_t o = 0; o < out; ++o) {
    float src = align_corners ? s * o : s * (o + 0.5f) - 0.5f;
    if (src < 0.f) src = 0.f;
    const int64_t i0 = static_cast<int64_t>(src);
    const int64_t step = i0 < in - 1 ? 1 : 0;
    const float l1 = src - i0;
    coords[o] = {i0, i0 + step, 1.f - l1, l1};
  }
}

at::Tensor upsample_bilinear2d(const at::Tensor& input, at::IntArrayRef output_size, bool align_corners,
                               std::optional<double> scales_h, std::optional<double> scales_w) {
  const Nhwc v = as_nhwc(input, "upsample_bilinear2d");
  const auto [oh, ow] = check_resize(v, output_size, "upsample_bilinear2d");
  // The output first: an impossible size fails there, and an empty one needs no tables.
  at::Tensor y = empty_nhwc(v, oh, ow);
  if (y.numel() == 0) return finish(v, y);
  at::Tensor hc_storage, wc_storage;
  Linear1d* hc = column_table<Linear1d>(hc_storage, oh);
  Linear1d* wc = column_table<Linear1d>(wc_storage, ow);
  linear_coords(v.h, oh, align_corners, scales_h, hc);
  linear_coords(v.w, ow, align_corners, scales_w, wc);
  const uint8_t* px = v.x.const_data_ptr<uint8_t>();
  uint8_t* py = y.data_ptr<uint8_t>();
  const auto fn = pool_ukernels().bilinear_u8;
  const int64_t C = v.c;
  for_each_output_row(v, oh, ow, [&](int64_t n, int64_t i) {
    const uint8_t* top = px + (n * v.h + hc[i].i0) * v.w * C;
    const uint8_t* bottom = px + (n * v.h + hc[i].i1) * v.w * C;
    uint8_t* out = py + (n * oh + i) * ow * C;
    for (int64_t j = 0; j < ow; ++j) {
      const uint8_t* rows[4] = {top + wc[j].i0 * C, top + wc[j].i1 * C, bottom + wc[j].i0 * C, bottom + wc[j].i1 * C};
      const float weights[4] = {hc[i].l0, hc[i].l1, wc[j].l0, wc[j].l1};
      fn(C, rows, weights, out + j * C);
    }
  });
  return finish(v, y);
}

// ---- fake (meta) kernels -----------------------------------------------------

at::Tensor meta_output(const at::Tensor& input, const char* op, int64_t oh, int64_t ow) {
  check_dtype(input, at::kByte, "input");
  TORCH_CHECK_VALUE(input.dim() == 3 || input.dim() == 4, op, ": input must be 3-d or 4-d, got ", input.dim(), "-d");
  if (input.dim() == 3) return at::empty({input.size(0), oh, ow}, input.options());
  const bool cl = input.is_contiguous(at::MemoryFormat::ChannelsLast) && !input.is_contiguous();
  return at::empty({input.size(0), input.size(1), oh, ow},
                   input.options().memory_format(cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
}

Nhwc meta_view(const at::Tensor& input, const char* op) {
  Nhwc v;
  check_dtype(input, at::kByte, "input");
  TORCH_CHECK_VALUE(input.dim() == 3 || input.dim() == 4, op, ": input must be 3-d or 4-d, got ", input.dim(), "-d");
  const int64_t off = input.dim() == 4 ? 1 : 0;
  v.n = off ? input.size(0) : 1, v.c = input.size(off), v.h = input.size(off + 1), v.w = input.size(off + 2);
  return v;
}

at::Tensor max_pool2d_meta(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  const Nhwc m = meta_view(input, "max_pool2d");
  const Window2d g = check_window(m.h, m.w, m.c, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d");
  return meta_output(input, "max_pool2d", g.oh, g.ow);
}
// The Meta kernels run the CPU kernels' checks, in the same order, so a fake (meta) call fails
// where a real one would, with the same error.
at::Tensor avg_pool2d_meta(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, bool ceil_mode, bool, std::optional<int64_t> divisor_override,
                           double input_scale, int64_t input_zero_point, double scale, int64_t zero_point) {
  const Nhwc m = meta_view(input, "avg_pool2d");
  const Window2d g = check_window(m.h, m.w, m.c, kernel_size, stride, padding, {1}, ceil_mode, "avg_pool2d");
  check_divisor_override(divisor_override);
  check_avg_params(input_scale, input_zero_point, scale, zero_point);
  return meta_output(input, "avg_pool2d", g.oh, g.ow);
}
at::Tensor adaptive_avg_pool2d_meta(const at::Tensor& input, at::IntArrayRef output_size, double input_scale,
                                    int64_t input_zero_point, double scale, int64_t zero_point) {
  const Nhwc m = meta_view(input, "adaptive_avg_pool2d");
  const auto [oh, ow] = check_adaptive(input, m.c, m.h, m.w, output_size);
  check_avg_params(input_scale, input_zero_point, scale, zero_point);
  return meta_output(input, "adaptive_avg_pool2d", oh, ow);
}
at::Tensor upsample_nearest2d_meta(const at::Tensor& input, at::IntArrayRef output_size, std::optional<double>,
                                   std::optional<double>) {
  const auto [oh, ow] = check_resize(meta_view(input, "upsample_nearest2d"), output_size, "upsample_nearest2d");
  return meta_output(input, "upsample_nearest2d", oh, ow);
}
at::Tensor upsample_bilinear2d_meta(const at::Tensor& input, at::IntArrayRef output_size, bool, std::optional<double>,
                                    std::optional<double>) {
  const auto [oh, ow] = check_resize(meta_view(input, "upsample_bilinear2d"), output_size, "upsample_bilinear2d");
  return meta_output(input, "upsample_bilinear2d", oh, ow);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(qtorch, m) {
  m.def("max_pool2d(Tensor input, int[] kernel_size, int[] stride, int[] padding, int[] dilation, "
        "bool ceil_mode) -> Tensor");
  m.def("avg_pool2d(Tensor input, int[] kernel_size, int[] stride, int[] padding, bool ceil_mode, "
        "bool count_include_pad, int? divisor_override, float input_scale, int input_zero_point, float scale, "
        "int zero_point) -> Tensor");
  m.def("adaptive_avg_pool2d(Tensor input, int[] output_size, float input_scale, int input_zero_point, "
        "float scale, int zero_point) -> Tensor");
  m.def("upsample_nearest2d(Tensor input, int[] output_size, float? scales_h=None, float? scales_w=None) -> Tensor");
  m.def("upsample_bilinear2d(Tensor input, int[] output_size, bool align_corners, float? scales_h=None, "
        "float? scales_w=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(qtorch, CPU, m) {
  m.impl("max_pool2d", &max_pool2d);
  m.impl("avg_pool2d", &avg_pool2d);
  m.impl("adaptive_avg_pool2d", &adaptive_avg_pool2d);
  m.impl("upsample_nearest2d", &upsample_nearest2d);
  m.impl("upsample_bilinear2d", &upsample_bilinear2d);
}

TORCH_LIBRARY_IMPL(qtorch, Meta, m) {
  m.impl("max_pool2d", &max_pool2d_meta);
  m.impl("avg_pool2d", &avg_pool2d_meta);
  m.impl("adaptive_avg_pool2d", &adaptive_avg_pool2d_meta);
  m.impl("upsample_nearest2d", &upsample_nearest2d_meta);
  m.impl("upsample_bilinear2d", &upsample_bilinear2d_meta);
}

}  // namespace ops
}  // namespace qtorch
