// Every pooling/resize microkernel of every ISA against the scalar reference,
// and the reference against its defining formula.
#include <algorithm>
#include <cmath>
#include <vector>

#include "pool/pool.h"
#include "testing.h"

using namespace qtorch;
using namespace qtorch::kernels;
using qtorch::testing::rng;

namespace {

const size_t kChannels[] = {1, 3, 7, 8, 9, 15, 16, 17, 28, 31, 32, 33, 56, 63, 64, 65, 100, 128, 129, 200, 257};
const size_t kCounts[] = {1, 2, 3, 4, 9, 17, 49};

int random_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng()); }

// `count` rows of `channels` random bytes, each in its own allocation.
struct Rows {
  std::vector<std::vector<uint8_t>> data;
  std::vector<const uint8_t*> ptrs;
  Rows(size_t count, size_t channels) : data(count, std::vector<uint8_t>(channels)) {
    for (auto& row : data) {
      for (uint8_t& v : row) v = static_cast<uint8_t>(random_int(0, 255));
      ptrs.push_back(row.data());
    }
  }
};

}  // namespace

TEST(max_pool_u8) {
  for (size_t channels : kChannels) {
    for (size_t count : kCounts) {
      Rows rows(count, channels);
      std::vector<uint8_t> want(channels), got(channels);
      kPoolScalar.max_pool_u8(1, channels, count, rows.ptrs.data(), 0, want.data(), 0);
      for (size_t c = 0; c < channels; ++c) {
        uint8_t m = 0;
        for (size_t k = 0; k < count; ++k) m = std::max(m, rows.data[k][c]);
        CHECK_EQ(want[c], m);
      }
      for (Isa isa : qtorch::testing::vector_isas()) {
        pool_ukernels(isa).max_pool_u8(1, channels, count, rows.ptrs.data(), 0, got.data(), 0);
        CHECK(want == got);
      }
    }
  }
}

TEST(avg_pool_u8) {
  for (size_t channels : kChannels) {
    for (size_t count : kCounts) {
      Rows rows(count, channels);
      const int32_t zp_in = random_int(0, 255);
      const float ratio = std::uniform_real_distribution<float>(0.5f, 2.f)(rng());
      const size_t divisor = count + random_int(0, 3);  // count_include_pad or divisor_override
      AvgPoolParams p{-zp_in * int32_t(count), ratio / float(divisor), random_int(0, 255)};
      std::vector<uint8_t> want(channels), got(channels);
      kPoolScalar.avg_pool_u8(1, channels, count, rows.ptrs.data(), 0, want.data(), 0, p);
      for (size_t c = 0; c < channels; ++c) {
        int32_t sum = p.bias;
        for (size_t k = 0; k < count; ++k) sum += rows.data[k][c];
        const double q = double(std::nearbyint(float(sum) * p.multiplier)) + p.zero_point;
        CHECK_EQ(int(want[c]), int(std::min(255.0, std::max(0.0, q))));
      }
      for (Isa isa : qtorch::testing::vector_isas()) {
        pool_ukernels(isa).avg_pool_u8(1, channels, count, rows.ptrs.data(), 0, got.data(), 0, p);
        CHECK(want == got);
      }
    }
  }
}

// Several outputs per call: windows sliding by row_step (NHWC rows with
// channels > 1, NCHW planes with channels == 1), outputs y_step apart.
TEST(pool_u8_many_outputs) {
  for (size_t channels : {size_t(1), size_t(3), size_t(16), size_t(33), size_t(64), size_t(67)}) {
    for (size_t row_step : {size_t(1), size_t(2), size_t(3)}) {
     for (size_t outputs : {size_t(13), size_t(16), size_t(17), size_t(32), size_t(33), size_t(100)}) {
      const size_t count = 2 + outputs % 3, step = row_step * channels;  // 2, 3 and 4 rows (unrolled 2 and 3)
      // Rows end exactly at the last element read, so an over-read shows under sanitizers.
      Rows rows(count, (outputs - 1) * step + channels);
      const size_t y_step = outputs % 2 ? channels : channels + 2;
      const AvgPoolParams p{-int32_t(count) * random_int(0, 255), 1.f / 3.f, random_int(0, 255)};
      std::vector<uint8_t> want_max(outputs * y_step), got(outputs * y_step), want_avg(outputs * y_step);
      kPoolScalar.max_pool_u8(outputs, channels, count, rows.ptrs.data(), step, want_max.data(), y_step);
      kPoolScalar.avg_pool_u8(outputs, channels, count, rows.ptrs.data(), step, want_avg.data(), y_step, p);
      for (size_t o = 0; o < outputs; ++o) {
        for (size_t c = 0; c < channels; ++c) {
          uint8_t m = 0;
          for (size_t k = 0; k < count; ++k) m = std::max(m, rows.data[k][o * step + c]);
          CHECK_EQ(want_max[o * y_step + c], m);
        }
      }
      for (Isa isa : qtorch::testing::vector_isas()) {
        std::fill(got.begin(), got.end(), 0);
        pool_ukernels(isa).max_pool_u8(outputs, channels, count, rows.ptrs.data(), step, got.data(), y_step);
        for (size_t o = 0; o < outputs; ++o) {
          for (size_t c = 0; c < channels; ++c) CHECK_EQ(got[o * y_step + c], want_max[o * y_step + c]);
        }
        pool_ukernels(isa).avg_pool_u8(outputs, channels, count, rows.ptrs.data(), step, got.data(), y_step, p);
        for (size_t o = 0; o < outputs; ++o) {
          for (size_t c = 0; c < channels; ++c) CHECK_EQ(got[o * y_step + c], want_avg[o * y_step + c]);
        }
      }
     }
    }
  }
}

TEST(bilinear_u8) {
  for (size_t channels : kChannels) {
    for (int trial = 0; trial < 4; ++trial) {
      Rows rows(4, channels);
      std::uniform_real_distribution<float> unit(0.f, 1.f);
      const float h1 = trial == 0 ? 0.5f : unit(rng()), w1 = trial == 0 ? 0.5f : unit(rng());
      const float weights[4] = {1.f - h1, h1, 1.f - w1, w1};
      std::vector<uint8_t> want(channels), got(channels);
      kPoolScalar.bilinear_u8(channels, rows.ptrs.data(), weights, want.data());
      for (size_t c = 0; c < channels; ++c) {
        const auto& d = rows.data;
        const float v = weights[0] * (weights[2] * float(d[0][c]) + weights[3] * float(d[1][c])) +
                        weights[1] * (weights[2] * float(d[2][c]) + weights[3] * float(d[3][c]));
        CHECK_EQ(int(want[c]), int(std::min(255.f, std::max(0.f, std::nearbyint(v)))));
      }
      for (Isa isa : qtorch::testing::vector_isas()) {
        pool_ukernels(isa).bilinear_u8(channels, rows.ptrs.data(), weights, got.data());
        CHECK(want == got);
      }
    }
  }
}

// Rows split into phases: the definition (byte c of row r to phase c % phases at
// c / phases), on rows with gaps between them and phases with slack, for every ISA.
TEST(deinterleave_u8) {
  for (size_t phases : {size_t(1), size_t(2), size_t(3), size_t(4)}) {
    for (size_t width : {size_t(1), size_t(2), size_t(3), size_t(17), size_t(31), size_t(32), size_t(33), size_t(56),
                         size_t(63), size_t(64), size_t(65), size_t(112), size_t(127), size_t(128), size_t(129),
                         size_t(200), size_t(257)}) {
      const size_t rows = 3, x_step = width + 5, per_phase = (width + phases - 1) / phases;
      const size_t y_step = per_phase + 3, phase_step = rows * y_step + 7;
      Rows x(1, (rows - 1) * x_step + width);  // ends at the last byte read
      const size_t y_size = (phases - 1) * phase_step + (rows - 1) * y_step + per_phase;
      std::vector<uint8_t> want(y_size, 0xab), got(y_size);
      kPoolScalar.deinterleave_u8(rows, width, phases, x.ptrs[0], x_step, want.data(), y_step, phase_step);
      for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < width; ++c) {
          CHECK_EQ(want[r * y_step + (c % phases) * phase_step + c / phases], x.data[0][r * x_step + c]);
        }
      }
      for (Isa isa : qtorch::testing::vector_isas()) {
        std::fill(got.begin(), got.end(), 0xab);  // bytes outside the phases stay untouched
        pool_ukernels(isa).deinterleave_u8(rows, width, phases, x.ptrs[0], x_step, got.data(), y_step, phase_step);
        CHECK(want == got);
      }
    }
  }
}

// Averages of contiguous runs (global pooling of NCHW planes): the definition is
// avg_pool with count = length over the run's bytes.
TEST(avg_pool_runs_u8) {
  for (size_t length : {size_t(1), size_t(3), size_t(15), size_t(16), size_t(17), size_t(31), size_t(32), size_t(33),
                        size_t(49), size_t(63), size_t(64), size_t(65), size_t(100), size_t(196), size_t(3000)}) {
    for (size_t runs : {size_t(1), size_t(5), size_t(16), size_t(17), size_t(35)}) {  // vectors of 16 runs and tails
      const size_t x_step = length + (runs % 2 ? 0 : 2);
      Rows x(1, (runs - 1) * x_step + length);  // ends at the last byte read
      const int32_t zp_in = random_int(0, 255);
      const float ratio = std::uniform_real_distribution<float>(0.5f, 2.f)(rng());
      const AvgPoolParams p{-zp_in * int32_t(length), ratio / float(length), random_int(0, 255)};
      const size_t y_step = runs % 2 ? 1 : 2;
      std::vector<uint8_t> want(runs * y_step + 1, 0xab), got(runs * y_step + 1);  // + 1: must stay untouched
      kPoolScalar.avg_pool_runs_u8(runs, length, x.ptrs[0], x_step, want.data(), y_step, p);
      for (size_t i = 0; i < runs; ++i) {
        std::vector<const uint8_t*> taps;
        for (size_t k = 0; k < length; ++k) taps.push_back(x.ptrs[0] + i * x_step + k);
        uint8_t one;
        kPoolScalar.avg_pool_u8(1, 1, length, taps.data(), 0, &one, 0, p);
        CHECK_EQ(want[i * y_step], one);
        if (y_step > 1) CHECK_EQ(want[i * y_step + 1], 0xab);
      }
      CHECK_EQ(want.back(), 0xab);
      for (Isa isa : qtorch::testing::vector_isas()) {
        std::fill(got.begin(), got.end(), 0xab);
        pool_ukernels(isa).avg_pool_runs_u8(runs, length, x.ptrs[0], x_step, got.data(), y_step, p);
        CHECK(want == got);
      }
    }
  }
}

// Windows of more than 2^31 / 255 taps (global pooling of planes past ~8.4M bytes): bytes near 255
// with input zero point 0 make a byte sum past int32, bytes near 0 with zero point 255 a bias + sum
// below it. Every path against the int64 formula. The taps all read one row (a real window's rows
// differ, the arithmetic is the same), so the test needs a pointer table, not gigabytes.
namespace {

// 5% past 2^31 / 255: the random bytes (mean 247.5, or 255 - 7.5 below the zero point) overflow too.
size_t past_int32_taps() { return size_t(0x7fffffff) / 255 / 20 * 21; }

// Row bytes in 240..255 (high) or 0..15, byte 0 at the extreme.
std::vector<uint8_t> extreme_bytes(size_t n, bool high) {
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(i == 0 ? 0 : random_int(0, 15));
  if (high) {
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(255 - b);
  }
  return bytes;
}

uint8_t avg_formula(int64_t sum, const AvgPoolParams& p) {
  const double q = double(std::nearbyint(float(p.bias + sum) * p.multiplier)) + p.zero_point;
  return static_cast<uint8_t>(std::min(255.0, std::max(0.0, q)));
}

}  // namespace

TEST(avg_pool_u8_past_int32) {
  const size_t count = past_int32_taps();
  for (bool high : {true, false}) {
    const int32_t zp_in = high ? 0 : 255;
    // channels 1: NCHW planes (three outputs a byte apart); 17: vectors and a tail on every ISA.
    for (size_t channels : {size_t(1), size_t(17)}) {
      const size_t outputs = channels == 1 ? 3 : 1, row_step = channels == 1 ? 1 : 0;
      const std::vector<uint8_t> row = extreme_bytes((outputs - 1) * row_step + channels, high);
      const std::vector<const uint8_t*> taps(count, row.data());
      const AvgPoolParams p{-int64_t(zp_in) * int64_t(count), 0.05f / 0.1f / float(count), zp_in};
      std::vector<uint8_t> want(outputs * channels), got(outputs * channels);
      kPoolScalar.avg_pool_u8(outputs, channels, count, taps.data(), row_step, want.data(), channels, p);
      for (size_t o = 0; o < outputs; ++o) {
        for (size_t c = 0; c < channels; ++c) {
          CHECK_EQ(int(want[o * channels + c]), int(avg_formula(int64_t(count) * row[o * row_step + c], p)));
        }
      }
      for (Isa isa : qtorch::testing::vector_isas()) {
        std::fill(got.begin(), got.end(), 0);
        pool_ukernels(isa).avg_pool_u8(outputs, channels, count, taps.data(), row_step, got.data(), channels, p);
        CHECK(want == got);
      }
    }
  }
}

// The same for contiguous runs: 17 runs (AVX-512's blocks of 16 and a tail) all reading one buffer.
TEST(avg_pool_runs_u8_past_int32) {
  const size_t length = past_int32_taps(), runs = 17;
  for (bool high : {true, false}) {
    const int32_t zp_in = high ? 0 : 255;
    const std::vector<uint8_t> x = extreme_bytes(length, high);
    int64_t sum = 0;
    for (uint8_t b : x) sum += b;
    const AvgPoolParams p{-int64_t(zp_in) * int64_t(length), 0.05f / 0.1f / float(length), zp_in};
    std::vector<uint8_t> want(runs), got(runs);
    kPoolScalar.avg_pool_runs_u8(runs, length, x.data(), 0, want.data(), 1, p);
    for (size_t i = 0; i < runs; ++i) CHECK_EQ(int(want[i]), int(avg_formula(sum, p)));
    for (Isa isa : qtorch::testing::vector_isas()) {
      std::fill(got.begin(), got.end(), 0);
      pool_ukernels(isa).avg_pool_runs_u8(runs, length, x.data(), 0, got.data(), 1, p);
      CHECK(want == got);
    }
  }
}
