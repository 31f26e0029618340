// Convolution geometry on NHWC uint8 activations, and the two ways kernels
// reach an output pixel's input window: im2col rows (for the GEMM, a tile at a
// time) and indirection pointers (for depthwise kernels). No arithmetic on
// values happens here; padding cells become the input zero point (real zero).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gemm/gemm.h"

namespace qtorch {
namespace kernels {

struct ConvGeometry {
  size_t batch, in_h, in_w;
  size_t pixel_stride;  // bytes between neighbouring input pixels (all channels)
  size_t out_h, out_w;
  size_t kernel_h, kernel_w;
  size_t stride_h, stride_w;
  size_t pad_h, pad_w;
  size_t dilation_h, dilation_w;

  size_t out_pixels() const { return batch * out_h * out_w; }
  size_t taps() const { return kernel_h * kernel_w; }
};

// Bytes past the k bytes of a row that im2col_rows may overwrite: the caller
// gives rows kIm2colSlack bytes of room after the last row's k bytes.
constexpr size_t kIm2colSlack = 32;

// Rows [pixel_begin, pixel_end) of the im2col matrix of the channel slice
// [channel_begin, channel_begin + channels): row r (output pixel pixel_begin + r,
// pixels numbered (n, oh, ow) row-major) holds k = kernel_h * kernel_w * channels
// bytes ordered (kh, kw, c), at rows + r * ld, then ld - k bytes of pad_value
// (so a GEMM can read rows padded to a whole group of K).
void im2col_rows(const ConvGeometry& g, const uint8_t* input, size_t channel_begin, size_t channels,
                 uint8_t pad_value, size_t pixel_begin, size_t pixel_end, uint8_t* rows, size_t ld);

// Pixels [pixel_begin, pixel_end) of one image from NCHW (channels planes of
// `pixels` bytes) to NHWC (pixels of `channels` bytes): a convolution's input
// in the layout its gathers read. Through 32 x 32 blocks that stay in L1.
void nchw_to_nhwc(size_t channels, size_t pixels, size_t pixel_begin, size_t pixel_end, const uint8_t* nchw,
                  uint8_t* nhwc);

// Kernel rows [first, end) of output row oh that read input rows: the others lie
// entirely in the padding (first == end when all of them do).
struct KernelRows {
  size_t first, end;
};
KernelRows kernel_rows_inside(const ConvGeometry& g, size_t oh);

// Kernel columns [first, end) of output column ow that read input columns.
KernelRows kernel_columns_inside(const ConvGeometry& g, size_t ow);

// Output pixel (n, oh, ow)'s reduction read in place from the input, without
// the padding: one GemmSegment per kernel row inside the image, covering its
// kernel columns inside the image (k0, k in reduction indices (kh, kw, c)).
// Needs kernel rows of contiguous bytes: dilation_w 1 and all the input's
// channels (pixel_stride) in the reduction. Writes at most kernel_h segments
// and returns their count. Neighbouring pixels with the same kernel rows and
// columns inside are GEMM rows stride_w * pixel_stride bytes apart along a
// row, stride_h * in_w * pixel_stride along a column.
size_t in_place_segments(const ConvGeometry& g, const uint8_t* input, size_t n, size_t oh, size_t ow,
                         GemmSegment* segments);

// For output pixels [pixel_begin, pixel_end): taps() pointers each (row-major
// over the window), to the input pixel's first channel or, for padding, to
// `padding` (a buffer of input-zero-point bytes as long as a pixel).
void conv_indirection(const ConvGeometry& g, const uint8_t* input, const uint8_t* padding, size_t pixel_begin,
                      size_t pixel_end, const uint8_t** out);

}  // namespace kernels
}  // namespace qtorch
