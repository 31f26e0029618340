#include "conv/conv_geometry.h"

#include <cstring>

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

}  // namespace

void im2col_rows(const ConvGeometry& g, const uint8_t* input, size_t channel_begin, size_t channels,
                 uint8_t pad_value, size_t pixel_begin, size_t pixel_end, uint8_t* rows, size_t ld) {
  const size_t per_image = g.out_h * g.out_w;
  for (size_t p = pixel_begin; p < pixel_end; ++p) {
    const size_t n = p / per_image, oh = p % per_image / g.out_w, ow = p % g.out_w;
    const uint8_t* image = input + n * g.in_h * g.in_w * g.pixel_stride + channel_begin;
    uint8_t* dst = rows + (p - pixel_begin) * ld;
    for (size_t kh = 0; kh < g.kernel_h; ++kh) {
      size_t ih;
      const bool row_inside = input_coord(oh, kh, g.stride_h, g.pad_h, g.dilation_h, g.in_h, &ih);
      for (size_t kw = 0; kw < g.kernel_w; ++kw, dst += channels) {
        size_t iw;
        if (row_inside && input_coord(ow, kw, g.stride_w, g.pad_w, g.dilation_w, g.in_w, &iw)) {
          std::memcpy(dst, image + (ih * g.in_w + iw) * g.pixel_stride, channels);
        } else {
          std::memset(dst, pad_value, channels);
        }
      }
    }
  }
}

void conv_indirection(const ConvGeometry& g, const uint8_t* input, const uint8_t* padding, size_t pixel_begin,
                      size_t pixel_end, const uint8_t** out) {
  const size_t per_image = g.out_h * g.out_w;
  for (size_t p = pixel_begin; p < pixel_end; ++p) {
    const size_t n = p / per_image, oh = p % per_image / g.out_w, ow = p % g.out_w;
    const uint8_t* image = input + n * g.in_h * g.in_w * g.pixel_stride;
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
}

}  // namespace kernels
}  // namespace qtorch
