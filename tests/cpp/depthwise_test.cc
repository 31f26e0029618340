// Depthwise microkernels of every ISA against the scalar reference, and the
// reference against the convolution written out from unpacked weights.
#include <cmath>
#include <limits>
#include <vector>

#include "depthwise/depthwise.h"
#include "testing.h"

using namespace qtorch;
using namespace qtorch::kernels;
using qtorch::testing::rng;

namespace {

int random_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng()); }

struct Problem {
  size_t pixels, channels, taps;
  std::vector<uint8_t> input;        // `rows` input pixels of `channels` bytes
  std::vector<uint8_t> padding;      // `channels` copies of the input zero point
  std::vector<const uint8_t*> indirection;
  std::vector<int8_t> weight;        // [channels][taps]
  std::vector<int32_t> weight_zp;
  std::vector<int8_t> packed;
  std::vector<int32_t> sums, offsets;
  std::vector<float> multipliers, biases;
  DepthwiseRequant rq;
};

void make_problem(Problem& pr, size_t pixels, size_t channels, size_t taps, bool relu, bool zero_points) {
  pr.pixels = pixels;
  pr.channels = channels;
  pr.taps = taps;
  const size_t rows = 7;
  const int32_t input_zp = random_int(0, 255);
  pr.input.resize(rows * channels);
  for (uint8_t& v : pr.input) v = uint8_t(random_int(0, 255));
  pr.padding.assign(channels, uint8_t(input_zp));
  pr.indirection.resize(pixels * taps);
  for (auto& ptr : pr.indirection) {
    const int row = random_int(-2, int(rows) - 1);  // about one in four taps is padding
    ptr = row < 0 ? pr.padding.data() : pr.input.data() + row * channels;
  }
  pr.weight.resize(channels * taps);
  for (int8_t& v : pr.weight) v = int8_t(random_int(-128, 127));
  pr.weight_zp.resize(channels);
  // Symmetric weights (all zero points 0), or about half the channels with one.
  for (int32_t& z : pr.weight_zp) z = zero_points && random_int(0, 1) ? random_int(-128, 127) : 0;
  pr.packed.resize(depthwise_packed_size(channels, taps));
  pr.sums.resize(channels);
  depthwise_pack(channels, taps, pr.weight.data(), pr.weight_zp.data(), pr.packed.data(), pr.sums.data());
  pr.offsets.resize(channels);
  pr.multipliers.resize(channels);
  pr.biases.resize(channels);
  for (size_t c = 0; c < channels; ++c) {
    pr.offsets[c] = -input_zp * pr.sums[c];
    pr.multipliers[c] = std::uniform_real_distribution<float>(1e-4f, 2e-2f)(rng());
    pr.biases[c] = std::uniform_real_distribution<float>(-5000.f, 5000.f)(rng());
  }
  const int32_t out_zp = random_int(0, 255);
  pr.rq = {pr.offsets.data(), pr.multipliers.data(), pr.biases.data(), pr.weight_zp.data(), out_zp,
           relu ? out_zp : 0, 255};
}

// The definition, from unpacked weights and centred values.
std::vector<uint8_t> reference(const Problem& pr, size_t out_stride) {
  std::vector<uint8_t> out(pr.pixels * out_stride, 0xab);
  const int32_t input_zp = pr.padding[0];
  for (size_t p = 0; p < pr.pixels; ++p) {
    for (size_t c = 0; c < pr.channels; ++c) {
      int32_t acc = 0;
      for (size_t t = 0; t < pr.taps; ++t) {
        acc += (int32_t(pr.indirection[p * pr.taps + t][c]) - input_zp) *
               (int32_t(pr.weight[c * pr.taps + t]) - pr.weight_zp[c]);
      }
      const float x = float(acc) + pr.biases[c];
      const float q = std::nearbyint(x * pr.multipliers[c]) + float(pr.rq.out_zero_point);
      out[p * out_stride + c] = uint8_t(std::min(std::max(q, float(pr.rq.out_min)), 255.f));
    }
  }
  return out;
}

void check_family(DepthwiseFn DepthwiseUkernels::*fn, size_t fixed_taps) {
  const size_t channel_counts[] = {1, 3, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 144, 161};
  const size_t tap_counts[] = {1, 2, 4, 7, 9, 25, 49};
  for (size_t channels : channel_counts) {
    for (size_t taps : tap_counts) {
      if (fixed_taps != 0 && taps != fixed_taps) continue;
      for (int variant = 0; variant < 4; ++variant) {
        const bool relu = variant & 1, zero_points = variant & 2;
        const size_t pixels = size_t(random_int(1, 6));
        const size_t out_stride = channels + size_t(random_int(0, 3));
        Problem pr;
        make_problem(pr, pixels, channels, taps, relu, zero_points);
        const std::vector<uint8_t> want = reference(pr, out_stride);
        for (Isa isa : supported_isas()) {
          std::vector<uint8_t> got(pixels * out_stride, 0xab);
          (depthwise_ukernels(isa).*fn)(pixels, channels, taps, pr.indirection.data(), pr.packed.data(), pr.rq,
                                         got.data(), out_stride);
          if (got != want) {
            std::fprintf(stderr, "  isa %s channels %zu taps %zu relu %d zero points %d\n", isa_name(isa), channels, taps,
                         relu, zero_points);
          }
          CHECK(got == want);
        }
      }
    }
  }
}

}  // namespace

TEST(depthwise_taps9) { check_family(&DepthwiseUkernels::taps9, 9); }
TEST(depthwise_taps25) { check_family(&DepthwiseUkernels::taps25, 25); }
TEST(depthwise_generic) { check_family(&DepthwiseUkernels::generic, 0); }

TEST(depthwise_pack_round_trip) {
  for (size_t channels : {1, 17, 64, 65, 161})
    for (size_t taps : {1, 9, 25}) {
      Problem pr;
      make_problem(pr, 1, channels, taps, false, true);
      std::vector<int8_t> back(channels * taps);
      depthwise_unpack(channels, taps, pr.packed.data(), back.data());
      CHECK(back == pr.weight);
    }
}

TEST(depthwise_select_by_window) {
  const DepthwiseUkernels& k = kDepthwiseScalar;
  CHECK(depthwise_select(k, 9) == k.taps9);
  CHECK(depthwise_select(k, 25) == k.taps25);
  CHECK(depthwise_select(k, 4) == k.generic);
}
