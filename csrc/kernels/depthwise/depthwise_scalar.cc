// Reference implementation: every other path must produce the same bits.
#include "depthwise/depthwise.h"
#include "depthwise/depthwise_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

void depthwise(size_t pixels, size_t channels, size_t taps, const uint8_t* const* indirection,
               const int16_t* packed, const DepthwiseRequant& rq, uint8_t* out, size_t out_stride) {
  for (size_t p = 0; p < pixels; ++p) {
    const uint8_t* const* taps_in = indirection + p * taps;
    uint8_t* y = out + p * out_stride;
    for (size_t c = 0; c < channels; ++c) y[c] = depthwise_channel(c, taps, taps_in, packed, rq);
  }
}

}  // namespace

void depthwise_pack(size_t channels, size_t taps, const int8_t* weight, const int32_t* weight_zero_points,
                    int16_t* packed, int32_t* sums) {
  const size_t pairs = depthwise_tap_pairs(taps);
  const size_t size = depthwise_packed_size(channels, taps);
  for (size_t i = 0; i < size; ++i) packed[i] = 0;
  for (size_t c = 0; c < channels; ++c) {
    int32_t sum = 0;
    for (size_t t = 0; t < taps; ++t) {
      const int32_t w = int32_t(weight[c * taps + t]) - weight_zero_points[c];
      const size_t block = c / kDepthwiseChannelBlock, lane = c % kDepthwiseChannelBlock;
      packed[((block * pairs + t / 2) * kDepthwiseChannelBlock + lane) * 2 + t % 2] = static_cast<int16_t>(w);
      sum += w;
    }
    sums[c] = sum;
  }
}

const DepthwiseUkernels kDepthwiseScalar = {depthwise, depthwise, depthwise};

}  // namespace kernels
}  // namespace qtorch
