#include "conv/conv_geometry.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace qtorch {
namespace kernels {
namespace {

// Input coordinate of output coordinate `o` at kernel offset `k`; false if it
// lands in the padding.
inline bool input_coord(size_t o, size_t k, size_t stride, size_t pad, size_t dilation, size_t size, size_t* i) {
  const size_t padded = o * stride + k * dilation;  // coordinate in the padded input
  if (padded < pad || padded - pad >= size) return false;
  *i = padded - pad;
  return true;
}

// A run of interior windows of one output row: window i starts at src + i *
// step in the input and goes to row i of dst (rows ld bytes apart).
struct WindowRun {
  size_t kernel_h, row_bytes, kernel_row_step;  // kernel rows: bytes each, input bytes apart
  size_t step, ld;
  size_t k, tail;  // a row's window bytes, then its pad bytes
  uint8_t pad_value;
};

// The pad bytes after a row's k: one 4-byte store when there are at most 4
// (its overrun goes to the next row, written later, or to the caller's slack).
inline void pad_row_tail(uint8_t* row, size_t k, size_t tail, uint8_t pad_value) {
  if (tail == 0) return;
  if (tail <= 4) {
    uint32_t pad4;
    std::memset(&pad4, pad_value, 4);
    std::memcpy(row + k, &pad4, 4);
  } else {
    std::memset(row + k, pad_value, tail);
  }
}

// Copies `count` windows of a run, each kernel row as one Piece-byte copy
// (16 or 32: up to Piece - 1 bytes past the row are read and overwritten, the
// caller guarantees both are harmless), or with Piece == 0 exactly (the C
// library's copy, which uses the widest vectors the CPU has). Out of line with
// the run's constants in registers: this loop is most of the gather.
template <size_t Piece>
__attribute__((noinline)) void copy_windows(const WindowRun& run, const uint8_t* src, uint8_t* dst, size_t count) {
  const WindowRun r = run;
  for (size_t i = 0; i < count; ++i, src += r.step, dst += r.ld) {
    for (size_t kh = 0; kh < r.kernel_h; ++kh) {
      std::memcpy(dst + kh * r.row_bytes, src + kh * r.kernel_row_step, Piece ? Piece : r.row_bytes);
    }
    pad_row_tail(dst, r.k, r.tail, r.pad_value);
  }
}

// First output coordinate at or after which the window no longer starts in
// the leading padding, and first at which it runs past the input's end: the
// windows of [lo, hi) lie inside the input along this axis.
inline void interior_range(size_t out, size_t stride, size_t pad, size_t window, size_t size, size_t* lo,
                           size_t* hi) {
  *lo = std::min(out, (pad + stride - 1) / stride);
  // o * stride - pad + window < size  <=>  o * stride < size + pad - window
  const size_t limit = size + pad > window ? (size + pad - window + stride - 1) / stride : 0;
  *hi = std::max(*lo, std::min(out, limit));
}

}  // namespace

void nchw_to_nhwc(size_t channels, size_t pixels, size_t pixel_begin, size_t pixel_end, const uint8_t* nchw,
                  uint8_t* nhwc) {
  constexpr size_t kBlock = 32;
  for (size_t p0 = pixel_begin; p0 < pixel_end; p0 += kBlock) {
    const size_t p1 = std::min(pixel_end, p0 + kBlock);
    for (size_t c0 = 0; c0 < channels; c0 += kBlock) {
      const size_t c1 = std::min(channels, c0 + kBlock);
      for (size_t p = p0; p < p1; ++p)
        for (size_t c = c0; c < c1; ++c) nhwc[p * channels + c] = nchw[c * pixels + p];
    }
  }
}

KernelRows kernel_rows_inside(const ConvGeometry& g, size_t oh) {
  KernelRows rows{0, 0};
  size_t ih;
  while (rows.first < g.kernel_h && !input_coord(oh, rows.first, g.stride_h, g.pad_h, g.dilation_h, g.in_h, &ih))
    ++rows.first;
  rows.end = rows.first;
  while (rows.end < g.kernel_h && input_coord(oh, rows.end, g.stride_h, g.pad_h, g.dilation_h, g.in_h, &ih)) ++rows.end;
  return rows;
}

KernelRows kernel_columns_inside(const ConvGeometry& g, size_t ow) {
  KernelRows columns{0, 0};
  size_t iw;
  while (columns.first < g.kernel_w &&
         !input_coord(ow, columns.first, g.stride_w, g.pad_w, g.dilation_w, g.in_w, &iw))
    ++columns.first;
  columns.end = columns.first;
  while (columns.end < g.kernel_w && input_coord(ow, columns.end, g.stride_w, g.pad_w, g.dilation_w, g.in_w, &iw))
    ++columns.end;
  return columns;
}

size_t in_place_segments(const ConvGeometry& g, const uint8_t* input, size_t n, size_t oh, size_t ow,
                         GemmSegment* segments) {
  const KernelRows rows = kernel_rows_inside(g, oh), columns = kernel_columns_inside(g, ow);
  if (columns.first == columns.end) return 0;
  const size_t c = g.pixel_stride;
  const size_t iw = ow * g.stride_w + columns.first - g.pad_w;  // dilation_w == 1
  size_t count = 0;
  for (size_t kh = rows.first; kh < rows.end; ++kh) {
    const size_t ih = oh * g.stride_h + kh * g.dilation_h - g.pad_h;
    segments[count++] = {input + ((n * g.in_h + ih) * g.in_w + iw) * c, (kh * g.kernel_w + columns.first) * c,
                         (columns.end - columns.first) * c};
  }
  return count;
}

void im2col_rows(const ConvGeometry& geometry, const uint8_t* input, size_t channel_begin, size_t channels,
                 uint8_t pad_value, size_t pixel_begin, size_t pixel_end, uint8_t* rows, size_t ld) {
  // A local copy: stores through `rows` (uint8_t may alias anything) would
  // otherwise make the compiler reload every field after each copy.
  const ConvGeometry g = geometry;
  const size_t per_image = g.out_h * g.out_w;
  // With undilated windows over whole pixels, the taps of one kernel row that
  // land inside the image are one contiguous run of input bytes.
  const bool runs = g.dilation_w == 1 && channels == g.pixel_stride;
  const size_t row_bytes = g.kernel_w * channels, k = g.kernel_h * row_bytes;
  // Interior windows copy each narrow kernel row (up to 32 bytes) as one 16-
  // or 32-byte piece, reading and writing up to 31 bytes past it; the overrun
  // lands in the next kernel row (copied next), past k (the pad is written
  // afterwards, the next pixel's row later) or in the caller's slack. Reads
  // stay inside the input (the last windows copy exactly). Wider rows are copied exactly.
  const size_t piece = row_bytes <= 16 ? 16 : row_bytes <= 32 ? 32 : 0;
  static_assert(kIm2colSlack >= 31, "32-byte pieces overrun a row by up to 31 bytes");
  const size_t window_h = (g.kernel_h - 1) * g.dilation_h, window_w = (g.kernel_w - 1) * g.dilation_w;
  const size_t line = g.in_w * g.pixel_stride;
  const size_t kernel_row_step = g.dilation_h * line;  // input bytes between kernel rows
  const uint8_t* input_end = input + g.batch * g.in_h * line;
  // Output columns whose windows lie inside the input horizontally.
  size_t inner_w_begin, inner_w_end;
  interior_range(g.out_w, g.stride_w, g.pad_w, window_w, g.in_w, &inner_w_begin, &inner_w_end);
  // The pad bytes of a row (usually fewer than 4: K rounded up to a group).
  const size_t tail = ld - k;
  auto pad_tail = [&](uint8_t* dst) { pad_row_tail(dst, k, tail, pad_value); };
  const WindowRun run{g.kernel_h, row_bytes, kernel_row_step, g.stride_w * g.pixel_stride, ld, k, tail, pad_value};

  // Any window, border or not: kernel row by kernel row.
  auto gather_general = [&](uint8_t* out, const uint8_t* image, size_t oh, size_t ow) {
    const size_t left = ow * g.stride_w;  // in padded coordinates
    for (size_t kh = 0; kh < g.kernel_h; ++kh, out += row_bytes) {
      size_t ih;
      if (!input_coord(oh, kh, g.stride_h, g.pad_h, g.dilation_h, g.in_h, &ih)) {
        std::memset(out, pad_value, row_bytes);
        continue;
      }
      const uint8_t* src_row = image + ih * line;
      if (runs) {
        // Window columns [first, last) fall inside the image.
        const size_t first = left >= g.pad_w ? 0 : g.pad_w - left;
        const size_t end_padded = g.pad_w + g.in_w;
        const size_t last = left >= end_padded ? 0 : std::min(g.kernel_w, end_padded - left);
        if (first >= last) {
          std::memset(out, pad_value, row_bytes);
          continue;
        }
        std::memset(out, pad_value, first * channels);
        std::memcpy(out + first * channels, src_row + (left + first - g.pad_w) * channels, (last - first) * channels);
        std::memset(out + last * channels, pad_value, (g.kernel_w - last) * channels);
        continue;
      }
      for (size_t kw = 0; kw < g.kernel_w; ++kw) {
        size_t iw;
        if (input_coord(ow, kw, g.stride_w, g.pad_w, g.dilation_w, g.in_w, &iw)) {
          std::memcpy(out + kw * channels, src_row + iw * g.pixel_stride, channels);
        } else {
          std::memset(out + kw * channels, pad_value, channels);
        }
      }
    }
  };

  // One output row (or the part of it in range) at a time: coordinates
  // advance incrementally, no divisions per pixel.
  size_t n = pixel_begin / per_image, oh = pixel_begin % per_image / g.out_w, ow = pixel_begin % g.out_w;
  uint8_t* dst = rows;
  for (size_t p = pixel_begin; p < pixel_end;) {
    const size_t ow_start = ow, ow_end = std::min(g.out_w, ow + (pixel_end - p));
    const uint8_t* image = input + n * g.in_h * line + channel_begin;
    const size_t top = oh * g.stride_h;  // in padded coordinates
    const bool rows_inside = top >= g.pad_h && top - g.pad_h + window_h < g.in_h;
    // Columns [fast_begin, fast_end) take the interior copies.
    size_t fast_begin = ow_end, fast_end = ow_end;
    if (rows_inside && runs) {
      fast_begin = std::min(std::max(ow, inner_w_begin), ow_end);
      fast_end = std::max(fast_begin, std::min(inner_w_end, ow_end));
    }
    for (; ow < fast_begin; ++ow, dst += ld) {
      gather_general(dst, image, oh, ow);
      pad_tail(dst);
    }
    if (ow < fast_end) {
      const size_t count = fast_end - ow;
      const uint8_t* src = image + (top - g.pad_h) * line + (ow * g.stride_w - g.pad_w) * g.pixel_stride;
      // Bytes a window's pieces read from its first byte on; windows that
      // would read past the input (the very last ones) copy exactly.
      const size_t reach = window_h * line + piece;
      const size_t offset = size_t(src - input), input_bytes = size_t(input_end - input);
      const size_t safe =
          offset + reach > input_bytes ? 0 : std::min(count, (input_bytes - reach - offset) / run.step + 1);
      if (piece == 16) copy_windows<16>(run, src, dst, safe);
      else if (piece == 32) copy_windows<32>(run, src, dst, safe);
      else copy_windows<0>(run, src, dst, safe);
      copy_windows<0>(run, src + safe * run.step, dst + safe * ld, count - safe);
      ow = fast_end;
      dst += count * ld;
    }
    for (; ow < ow_end; ++ow, dst += ld) {
      gather_general(dst, image, oh, ow);
      pad_tail(dst);
    }
    p += ow_end - ow_start;
    if (ow == g.out_w) {
      ow = 0;
      if (++oh == g.out_h) {
        oh = 0;
        ++n;
      }
    }
  }
}

namespace {

// Pointers of `run` consecutive interior windows of one output row: window i
// starts `step` bytes after window i - 1. A fixed tap count keeps the offsets
// in registers and the inner loop unrolled.
template <size_t kTaps>
void interior_run(size_t run, size_t runtime_taps, const uint8_t* corner, size_t step, const size_t* tap_offsets,
                  const uint8_t** out) {
  const size_t taps = kTaps ? kTaps : runtime_taps;
  size_t offsets[kTaps ? kTaps : 1];
  if (kTaps) std::copy(tap_offsets, tap_offsets + kTaps, offsets);
  const size_t* off = kTaps ? offsets : tap_offsets;
  for (size_t i = 0; i < run; ++i, corner += step, out += taps) {
    for (size_t t = 0; t < taps; ++t) out[t] = corner + off[t];
  }
}

}  // namespace

void conv_indirection(const ConvGeometry& g, const uint8_t* input, const uint8_t* padding, size_t pixel_begin,
                      size_t pixel_end, const uint8_t** out) {
  // Offsets of the taps from the window's top-left input pixel; a window fully
  // inside the image (most of them) needs nothing else.
  const size_t taps = g.taps();
  std::vector<size_t> tap_offsets(taps);
  for (size_t kh = 0; kh < g.kernel_h; ++kh) {
    for (size_t kw = 0; kw < g.kernel_w; ++kw) {
      tap_offsets[kh * g.kernel_w + kw] = (kh * g.dilation_h * g.in_w + kw * g.dilation_w) * g.pixel_stride;
    }
  }
  const auto run_fn = taps == 9 ? interior_run<9> : taps == 25 ? interior_run<25> : interior_run<0>;
  const size_t window_h = (g.kernel_h - 1) * g.dilation_h, window_w = (g.kernel_w - 1) * g.dilation_w;
  const size_t per_image = g.out_h * g.out_w;
  const size_t step = g.stride_w * g.pixel_stride;
  // Output coordinates advance incrementally: no divisions per pixel.
  size_t n = pixel_begin / per_image, oh = pixel_begin % per_image / g.out_w, ow = pixel_begin % g.out_w;
  for (size_t p = pixel_begin; p < pixel_end;) {
    const uint8_t* image = input + n * g.in_h * g.in_w * g.pixel_stride;
    const size_t top = oh * g.stride_h, left = ow * g.stride_w;  // in padded coordinates
    size_t done = 1;
    if (top >= g.pad_h && top - g.pad_h + window_h < g.in_h && left >= g.pad_w && left - g.pad_w + window_w < g.in_w) {
      // This window and the following ones of the row that stay inside.
      size_t run = 1;
      const size_t limit = std::min(pixel_end - p, g.out_w - ow);
      while (run < limit && (ow + run) * g.stride_w - g.pad_w + window_w < g.in_w) ++run;
      const uint8_t* corner = image + ((top - g.pad_h) * g.in_w + (left - g.pad_w)) * g.pixel_stride;
      run_fn(run, taps, corner, step, tap_offsets.data(), out);
      out += run * taps;
      done = run;
    } else {
      for (size_t kh = 0; kh < g.kernel_h; ++kh) {
        size_t ih;
        const bool row_inside = input_coord(oh, kh, g.stride_h, g.pad_h, g.dilation_h, g.in_h, &ih);
        for (size_t kw = 0; kw < g.kernel_w; ++kw) {
          size_t iw;
          const bool inside = row_inside && input_coord(ow, kw, g.stride_w, g.pad_w, g.dilation_w, g.in_w, &iw);
          *out++ = inside ? image + (ih * g.in_w + iw) * g.pixel_stride : padding;
        }
      }
    }
    p += done;
    ow += done;
    if (ow == g.out_w) {
      ow = 0;
      if (++oh == g.out_h) {
        oh = 0;
        ++n;
      }
    }
  }
}

}  // namespace kernels
}  // namespace qtorch
