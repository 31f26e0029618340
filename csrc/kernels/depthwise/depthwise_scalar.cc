// Reference implementation: every other path must produce the same bits.
#include "depthwise/depthwise.h"
#include "depthwise/depthwise_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

void depthwise(size_t pixels, size_t channels, size_t taps, const uint8_t* const* indirection, const int8_t* packed,
               const DepthwiseRequant& rq, uint8_t* out, size_t out_stride) {
  depthwise_channels(0, channels, pixels, taps, indirection, packed, rq, out, out_stride);
}

}  // namespace

void depthwise_pack(size_t channels, size_t taps, const int8_t* weight, const int32_t* weight_zero_points,
                    int8_t* packed, int32_t* sums) {
  const size_t size = depthwise_packed_size(channels, taps);
  for (size_t i = 0; i < size; ++i) packed[i] = 0;
  for (size_t c = 0; c < channels; ++c) {
    int32_t sum = 0;
    for (size_t t = 0; t < taps; ++t) {
      const int8_t w = weight[c * taps + t];
      packed[(c / kDepthwiseChannelBlock * taps + t) * kDepthwiseChannelBlock + c % kDepthwiseChannelBlock] = w;
      sum += int32_t(w) - weight_zero_points[c];
    }
    sums[c] = sum;
  }
}

void depthwise_unpack(size_t channels, size_t taps, const int8_t* packed, int8_t* weight) {
  for (size_t c = 0; c < channels; ++c) {
    for (size_t t = 0; t < taps; ++t) weight[c * taps + t] = depthwise_weight(packed, taps, c, t);
  }
}

const DepthwiseUkernels kDepthwiseScalar = {depthwise, depthwise, depthwise};

}  // namespace kernels
}  // namespace qtorch
