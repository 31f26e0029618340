// im2col rows and depthwise indirection against the convolution window written out.
#include <vector>

#include "conv/conv_geometry.h"
#include "testing.h"

using namespace qtorch;
using namespace qtorch::kernels;
using qtorch::testing::rng;

namespace {

size_t pick(size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng()); }

ConvGeometry random_geometry(size_t pixel_stride, size_t max_side = 9) {
  ConvGeometry g{};
  g.batch = pick(1, 2);
  g.in_h = pick(1, max_side);
  g.in_w = pick(1, max_side);
  g.pixel_stride = pixel_stride;
  g.kernel_h = pick(1, 5);
  g.kernel_w = pick(1, 5);
  g.stride_h = pick(1, 3);
  g.stride_w = pick(1, 3);
  g.dilation_h = pick(1, 2);
  g.dilation_w = pick(1, 2);
  g.pad_h = pick(0, 3);
  g.pad_w = pick(0, 3);
  const long window_h = long(g.dilation_h * (g.kernel_h - 1) + 1), window_w = long(g.dilation_w * (g.kernel_w - 1) + 1);
  const long padded_h = long(g.in_h + 2 * g.pad_h), padded_w = long(g.in_w + 2 * g.pad_w);
  if (window_h > padded_h || window_w > padded_w) return random_geometry(pixel_stride, max_side);
  g.out_h = size_t((padded_h - window_h) / long(g.stride_h) + 1);
  g.out_w = size_t((padded_w - window_w) / long(g.stride_w) + 1);
  return g;
}

// Input pixel (n, ih, iw) of output pixel p at tap (kh, kw), or null for padding.
const uint8_t* window_pixel(const ConvGeometry& g, const uint8_t* input, size_t p, size_t kh, size_t kw) {
  const size_t n = p / (g.out_h * g.out_w), oh = p / g.out_w % g.out_h, ow = p % g.out_w;
  const long ih = long(oh * g.stride_h + kh * g.dilation_h) - long(g.pad_h);
  const long iw = long(ow * g.stride_w + kw * g.dilation_w) - long(g.pad_w);
  if (ih < 0 || iw < 0 || ih >= long(g.in_h) || iw >= long(g.in_w)) return nullptr;
  return input + ((n * g.in_h + size_t(ih)) * g.in_w + size_t(iw)) * g.pixel_stride;
}

}  // namespace

TEST(im2col_rows_match_the_window) {
  for (int iter = 0; iter < 600; ++iter) {
    // Narrow rows (one 16-byte piece) and wider ones (several pieces, and the
    // exact copies at the end of the input).
    const size_t pixel_stride = pick(0, 1) ? pick(1, 4) : pick(1, 40);
    const ConvGeometry g = random_geometry(pixel_stride);
    // Either the whole pixel (the contiguous-run path) or a group's slice.
    const bool whole = pick(0, 1) == 1;
    const size_t channel_begin = whole ? 0 : pick(0, pixel_stride - 1);
    const size_t channels = whole ? pixel_stride : pick(1, pixel_stride - channel_begin);
    std::vector<uint8_t> input(g.batch * g.in_h * g.in_w * pixel_stride);
    for (uint8_t& v : input) v = uint8_t(pick(0, 255));
    const uint8_t pad = uint8_t(pick(0, 255));
    const size_t k = g.taps() * channels, ld = k + pick(0, 5);
    const size_t begin = pick(0, g.out_pixels() - 1), end = pick(begin + 1, g.out_pixels());
    std::vector<uint8_t> rows((end - begin) * ld + kIm2colSlack, 0xcd);
    im2col_rows(g, input.data(), channel_begin, channels, pad, begin, end, rows.data(), ld);
    for (size_t p = begin; p < end; ++p) {
      for (size_t kh = 0; kh < g.kernel_h; ++kh) {
        for (size_t kw = 0; kw < g.kernel_w; ++kw) {
          const uint8_t* src = window_pixel(g, input.data(), p, kh, kw);
          for (size_t c = 0; c < channels; ++c) {
            const uint8_t want = src ? src[channel_begin + c] : pad;
            CHECK_EQ(rows[(p - begin) * ld + (kh * g.kernel_w + kw) * channels + c], want);
          }
        }
      }
      for (size_t i = k; i < ld; ++i) CHECK_EQ(rows[(p - begin) * ld + i], pad);  // the K padding
    }
  }
}

TEST(indirection_matches_the_window) {
  for (int iter = 0; iter < 200; ++iter) {
    // Every other geometry is wide enough for long runs of interior windows.
    const ConvGeometry g = random_geometry(pick(1, 20), iter % 2 ? 9 : 40);
    std::vector<uint8_t> input(g.batch * g.in_h * g.in_w * g.pixel_stride);
    std::vector<uint8_t> padding(g.pixel_stride);
    const size_t begin = pick(0, g.out_pixels() - 1), end = pick(begin + 1, g.out_pixels());
    std::vector<const uint8_t*> pointers((end - begin) * g.taps());
    conv_indirection(g, input.data(), padding.data(), begin, end, pointers.data());
    for (size_t p = begin; p < end; ++p) {
      for (size_t t = 0; t < g.taps(); ++t) {
        const uint8_t* want = window_pixel(g, input.data(), p, t / g.kernel_w, t % g.kernel_w);
        CHECK(pointers[(p - begin) * g.taps() + t] == (want ? want : padding.data()));
      }
    }
  }
}

TEST(kernel_rows_inside_are_the_rows_of_the_window_in_the_image) {
  for (int trial = 0; trial < 500; ++trial) {
    const ConvGeometry g = random_geometry(1);
    for (size_t oh = 0; oh < g.out_h; ++oh) {
      const KernelRows rows = kernel_rows_inside(g, oh);
      CHECK(rows.first <= rows.end && rows.end <= g.kernel_h);
      for (size_t kh = 0; kh < g.kernel_h; ++kh) {
        const long ih = long(oh * g.stride_h + kh * g.dilation_h) - long(g.pad_h);
        CHECK_EQ(ih >= 0 && ih < long(g.in_h), kh >= rows.first && kh < rows.end);
      }
    }
  }
}

TEST(nchw_to_nhwc_transposes_any_pixel_range) {
  for (size_t channels : {1, 3, 31, 32, 33, 70}) {
    const size_t pixels = pick(1, 200);
    std::vector<uint8_t> nchw(channels * pixels), nhwc(channels * pixels, 0), want(channels * pixels, 0);
    for (uint8_t& v : nchw) v = uint8_t(pick(0, 255));
    const size_t begin = pick(0, pixels - 1), end = pick(begin, pixels);
    for (size_t p = begin; p < end; ++p)
      for (size_t c = 0; c < channels; ++c) want[p * channels + c] = nchw[c * pixels + p];
    nchw_to_nhwc(channels, pixels, begin, end, nchw.data(), nhwc.data());
    CHECK(nhwc == want);
  }
}
