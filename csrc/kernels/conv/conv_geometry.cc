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

// Copies `bytes` (> 0) bytes in 16-byte pieces: up to 15 bytes past the end
// are read and overwritten (the caller guarantees both are harmless).
inline void copy_chunks(uint8_t* dst, const uint8_t* src, size_t bytes) {
  size_t i = 0;
  do {
    std::memcpy(dst + i, src + i, 16);
    i += 16;
  } while (i < bytes);
}

}  // namespace

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
  // Interior windows copy each kernel row in 16-byte pieces, so they read and
  // write up to this many bytes per kernel row; the overrun lands in the next
  // kernel row (copied next), past k (the tail is filled afterwards, the next
  // pixel's row is written later) or in the caller's slack.
  const size_t chunked = (row_bytes + 15) / 16 * 16;
  static_assert(kIm2colSlack >= 15, "the 16-byte pieces overrun a row by up to 15 bytes");
  const size_t window_h = (g.kernel_h - 1) * g.dilation_h, window_w = (g.kernel_w - 1) * g.dilation_w;
  const size_t line = g.in_w * g.pixel_stride;
  const size_t kernel_row_step = g.dilation_h * line;  // input bytes between kernel rows
  const uint8_t* input_end = input + g.batch * g.in_h * line;
  // The pad bytes of a row (usually fewer than 4: K rounded up to a group).
  const size_t tail = ld - k;
  uint32_t pad4;
  std::memset(&pad4, pad_value, 4);
  // Output coordinates advance incrementally: no divisions per pixel.
  size_t n = pixel_begin / per_image, oh = pixel_begin % per_image / g.out_w, ow = pixel_begin % g.out_w;
  for (size_t p = pixel_begin; p < pixel_end; ++p) {
    const uint8_t* image = input + n * g.in_h * line + channel_begin;
    uint8_t* dst = rows + (p - pixel_begin) * ld;
    const size_t top = oh * g.stride_h, left = ow * g.stride_w;  // in padded coordinates
    const bool inside =
        top >= g.pad_h && top - g.pad_h + window_h < g.in_h && left >= g.pad_w && left - g.pad_w + window_w < g.in_w;
    if (inside && runs) {  // the common case: kernel_h copies
      const uint8_t* src = image + (top - g.pad_h) * line + (left - g.pad_w) * g.pixel_stride;
      if (src + window_h * line + chunked <= input_end) {
        for (size_t kh = 0; kh < g.kernel_h; ++kh) copy_chunks(dst + kh * row_bytes, src + kh * kernel_row_step, row_bytes);
      } else {  // the image's last bytes: exact copies
        for (size_t kh = 0; kh < g.kernel_h; ++kh) {
          std::memcpy(dst + kh * row_bytes, src + kh * kernel_row_step, row_bytes);
        }
      }
    } else {
      uint8_t* out = dst;
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
    }
    // Pad bytes after k: one 4-byte store when there are at most 4 (its
    // overrun goes to the next row, written later, or to the slack).
    if (tail != 0) {
      if (tail <= 4) std::memcpy(dst + k, &pad4, 4);
      else std::memset(dst + k, pad_value, tail);
    }
    if (++ow == g.out_w) {
      ow = 0;
      if (++oh == g.out_h) {
        oh = 0;
        ++n;
      }
    }
  }
}

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
  const size_t window_h = (g.kernel_h - 1) * g.dilation_h, window_w = (g.kernel_w - 1) * g.dilation_w;
  const size_t per_image = g.out_h * g.out_w;
  // Output coordinates advance incrementally: no divisions per pixel.
  size_t n = pixel_begin / per_image, oh = pixel_begin % per_image / g.out_w, ow = pixel_begin % g.out_w;
  for (size_t p = pixel_begin; p < pixel_end; ++p) {
    const uint8_t* image = input + n * g.in_h * g.in_w * g.pixel_stride;
    const size_t top = oh * g.stride_h, left = ow * g.stride_w;  // in padded coordinates
    if (top >= g.pad_h && top - g.pad_h + window_h < g.in_h && left >= g.pad_w && left - g.pad_w + window_w < g.in_w) {
      const uint8_t* corner = image + ((top - g.pad_h) * g.in_w + (left - g.pad_w)) * g.pixel_stride;
      for (size_t t = 0; t < taps; ++t) *out++ = corner + tap_offsets[t];
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
    if (++ow == g.out_w) {
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
