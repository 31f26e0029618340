// Every elementwise microkernel of every ISA against the scalar reference, and
// the reference against its defining formula.
#include <cmath>
#include <vector>

#include "elementwise/elementwise.h"
#include "testing.h"

using namespace qtorch;
using namespace qtorch::kernels;
using qtorch::testing::rng;

namespace {

const size_t kSizes[] = {0, 1, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 255, 257, 1000, 4099};

std::vector<uint8_t> random_bytes(size_t n) {
  std::uniform_int_distribution<int> dist(0, 255);
  std::vector<uint8_t> v(n);
  for (uint8_t& x : v) x = static_cast<uint8_t>(dist(rng()));
  return v;
}

int random_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng()); }
float random_float(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng()); }

// Output bounds: the full range, a fused ReLU (zero point .. 255), or arbitrary.
void random_bounds(int32_t zero_point, uint8_t* lo, uint8_t* hi) {
  switch (random_int(0, 2)) {
    case 0: *lo = 0, *hi = 255; break;
    case 1: *lo = static_cast<uint8_t>(zero_point), *hi = 255; break;
    default: {
      const int a = random_int(0, 255), b = random_int(0, 255);
      *lo = static_cast<uint8_t>(std::min(a, b)), *hi = static_cast<uint8_t>(std::max(a, b));
    }
  }
}

uint8_t expected(float scaled, int32_t zero_point, uint8_t lo, uint8_t hi) {
  const double q = double(std::nearbyint(scaled)) + zero_point;
  return static_cast<uint8_t>(std::min<double>(std::max<double>(q, lo), hi));
}

}  // namespace

TEST(add_u8) {
  for (int trial = 0; trial < 4; ++trial) {
    for (size_t n : kSizes) {
      AddParams p;
      p.a_multiplier = random_float(0.05f, 3.f);
      p.b_multiplier = trial == 0 ? p.a_multiplier : random_float(0.05f, 3.f);
      p.a_zero_point = random_int(0, 255), p.b_zero_point = random_int(0, 255), p.out_zero_point = random_int(0, 255);
      random_bounds(p.out_zero_point, &p.out_min, &p.out_max);
      const std::vector<uint8_t> a = random_bytes(n), b = random_bytes(n);
      std::vector<uint8_t> want(n), got(n);
      kElementwiseScalar.add_u8(n, a.data(), b.data(), want.data(), p);
      for (size_t i = 0; i < n; ++i) {
        const float s = float(a[i] - p.a_zero_point) * p.a_multiplier + float(b[i] - p.b_zero_point) * p.b_multiplier;
        CHECK_EQ(want[i], expected(s, p.out_zero_point, p.out_min, p.out_max));
      }
      for (Isa isa : qtorch::testing::vector_isas()) {
        elementwise_ukernels(isa).add_u8(n, a.data(), b.data(), got.data(), p);
        CHECK(want == got);
      }
    }
  }
}

TEST(mul_u8) {
  for (int trial = 0; trial < 4; ++trial) {
    for (size_t n : kSizes) {
      MulParams p;
      p.multiplier = random_float(0.0001f, 0.1f);
      p.a_zero_point = random_int(0, 255), p.b_zero_point = random_int(0, 255), p.out_zero_point = random_int(0, 255);
      random_bounds(p.out_zero_point, &p.out_min, &p.out_max);
      const std::vector<uint8_t> a = random_bytes(n), b = random_bytes(n);
      std::vector<uint8_t> want(n), got(n);
      kElementwiseScalar.mul_u8(n, a.data(), b.data(), want.data(), p);
      for (size_t i = 0; i < n; ++i) {
        const float s = float((a[i] - p.a_zero_point) * (b[i] - p.b_zero_point)) * p.multiplier;
        CHECK_EQ(want[i], expected(s, p.out_zero_point, p.out_min, p.out_max));
      }
      for (Isa isa : qtorch::testing::vector_isas()) {
        elementwise_ukernels(isa).mul_u8(n, a.data(), b.data(), got.data(), p);
        CHECK(want == got);
      }
    }
  }
}

TEST(clamp_u8) {
  for (size_t n : kSizes) {
    uint8_t lo, hi;
    random_bounds(random_int(0, 255), &lo, &hi);
    const std::vector<uint8_t> x = random_bytes(n);
    std::vector<uint8_t> want(n), got(n);
    kElementwiseScalar.clamp_u8(n, x.data(), want.data(), lo, hi);
    for (size_t i = 0; i < n; ++i) CHECK_EQ(want[i], std::min(std::max(x[i], lo), hi));
    for (Isa isa : qtorch::testing::vector_isas()) {
      elementwise_ukernels(isa).clamp_u8(n, x.data(), got.data(), lo, hi);
      CHECK(want == got);
    }
  }
}

TEST(lut_u8) {
  for (size_t n : kSizes) {
    const std::vector<uint8_t> table = random_bytes(256);
    std::vector<uint8_t> x = random_bytes(n);
    for (size_t i = 0; i < n && i < 256; ++i) x[i] = static_cast<uint8_t>(i);  // every entry
    std::vector<uint8_t> want(n), got(n);
    kElementwiseScalar.lut_u8(n, x.data(), want.data(), table.data());
    for (size_t i = 0; i < n; ++i) CHECK_EQ(want[i], table[x[i]]);
    for (Isa isa : qtorch::testing::vector_isas()) {
      elementwise_ukernels(isa).lut_u8(n, x.data(), got.data(), table.data());
      CHECK(want == got);
    }
  }
}
