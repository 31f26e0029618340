// Every quantize-family microkernel of every ISA against the scalar reference,
// and the reference against its defining formula.
#include <cmath>
#include <cstring>
#include <limits>

#include "quantize/quantize.h"
#include "testing.h"

using namespace qtorch;
using namespace qtorch::kernels;
using qtorch::testing::rng;

namespace {

const size_t kSizes[] = {0, 1, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000, 4099};

std::vector<float> random_floats(size_t n, float range) {
  std::uniform_real_distribution<float> dist(-range, range);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng());
  // Sprinkle specials and exact half-way points, where rounding modes differ.
  if (n > 8) {
    v[0] = std::numeric_limits<float>::quiet_NaN();
    v[1] = std::numeric_limits<float>::infinity();
    v[2] = -std::numeric_limits<float>::infinity();
    v[3] = 2.5f;
    v[4] = -3.5f;
    v[5] = 1e30f;
  }
  return v;
}

template <typename Q>
std::vector<Q> random_ints(size_t n) {
  std::uniform_int_distribution<int> dist(std::numeric_limits<Q>::min(), std::numeric_limits<Q>::max());
  std::vector<Q> v(n);
  for (Q& x : v) x = static_cast<Q>(dist(rng()));
  return v;
}

template <typename Q>
int32_t random_zero_point() {
  return std::uniform_int_distribution<int32_t>(std::numeric_limits<Q>::min(), std::numeric_limits<Q>::max())(rng());
}

// Member pointers let one tester cover every table entry of every ISA.
// The two forms of quantize.h.
enum class Form { kFused, kTwoStep };

template <typename Q>
void check_quantize(QuantizeFn<Q> QuantizeUkernels::*fn, Form form) {
  for (size_t n : kSizes) {
    const float scale = std::uniform_real_distribution<float>(0.001f, 0.5f)(rng());
    const int32_t zp = random_zero_point<Q>();
    const std::vector<float> x = random_floats(n, 200 * scale);
    std::vector<Q> want(n), got(n);
    (kQuantizeScalar.*fn)(n, x.data(), want.data(), 1.0f / scale, zp);
    for (size_t i = 0; i < n; ++i) {
      if (std::isnan(x[i])) {
        CHECK_EQ(int(want[i]), zp);
        continue;
      }
      const float inv = 1.0f / scale;
      const float product = x[i] * inv;
      const double q = form == Form::kFused ? double(std::nearbyint(std::fma(x[i], inv, float(zp))))
                                            : double(std::nearbyint(product + float(zp)));
      const double clamped = std::min<double>(std::max<double>(q, std::numeric_limits<Q>::min()),
                                              std::numeric_limits<Q>::max());
      CHECK_EQ(double(want[i]), clamped);
    }
    for (Isa isa : qtorch::testing::vector_isas()) {
      (quantize_ukernels(isa).*fn)(n, x.data(), got.data(), 1.0f / scale, zp);
      CHECK(want == got);
    }
  }
}

template <typename Q>
void check_quantize_channels(QuantizeChannelsFn<Q> QuantizeUkernels::*fn) {
  for (size_t n : kSizes) {
    std::vector<float> inv(n);
    std::vector<int32_t> zp(n);
    for (size_t c = 0; c < n; ++c) {
      inv[c] = 1.0f / std::uniform_real_distribution<float>(0.001f, 0.5f)(rng());
      zp[c] = random_zero_point<Q>();
    }
    const std::vector<float> x = random_floats(n, 50.f);
    std::vector<Q> want(n), got(n);
    (kQuantizeScalar.*fn)(n, x.data(), want.data(), inv.data(), zp.data());
    for (Isa isa : qtorch::testing::vector_isas()) {
      (quantize_ukernels(isa).*fn)(n, x.data(), got.data(), inv.data(), zp.data());
      CHECK(want == got);
    }
  }
}

template <typename Q>
void check_dequantize(DequantizeFn<Q> QuantizeUkernels::*fn) {
  for (size_t n : kSizes) {
    const float scale = std::uniform_real_distribution<float>(0.001f, 0.5f)(rng());
    const int32_t zp = random_zero_point<Q>();
    const std::vector<Q> x = random_ints<Q>(n);
    std::vector<float> want(n), got(n);
    (kQuantizeScalar.*fn)(n, x.data(), want.data(), scale, zp);
    for (size_t i = 0; i < n; ++i) CHECK_EQ(want[i], float(int64_t(x[i]) - zp) * scale);
    for (Isa isa : qtorch::testing::vector_isas()) {
      (quantize_ukernels(isa).*fn)(n, x.data(), got.data(), scale, zp);
      CHECK(n == 0 || std::memcmp(want.data(), got.data(), n * sizeof(float)) == 0);  // memcmp(nullptr...) is UB
    }
  }
}

template <typename Q>
void check_dequantize_channels(DequantizeChannelsFn<Q> QuantizeUkernels::*fn) {
  for (size_t n : kSizes) {
    std::vector<float> scales(n);
    std::vector<int32_t> zp(n);
    for (size_t c = 0; c < n; ++c) {
      scales[c] = std::uniform_real_distribution<float>(0.001f, 0.5f)(rng());
      zp[c] = random_zero_point<Q>();
    }
    const std::vector<Q> x = random_ints<Q>(n);
    std::vector<float> want(n), got(n);
    (kQuantizeScalar.*fn)(n, x.data(), want.data(), scales.data(), zp.data());
    for (Isa isa : qtorch::testing::vector_isas()) {
      (quantize_ukernels(isa).*fn)(n, x.data(), got.data(), scales.data(), zp.data());
      CHECK(n == 0 || std::memcmp(want.data(), got.data(), n * sizeof(float)) == 0);  // memcmp(nullptr...) is UB
    }
  }
}

template <typename In, typename Out>
void check_requantize(RequantizeFn<In, Out> QuantizeUkernels::*fn) {
  for (size_t n : kSizes) {
    const float multiplier = std::uniform_real_distribution<float>(0.05f, 4.0f)(rng());
    const int32_t zp_in = random_zero_point<In>(), zp_out = random_zero_point<Out>();
    const std::vector<In> x = random_ints<In>(n);
    std::vector<Out> want(n), got(n);
    (kQuantizeScalar.*fn)(n, x.data(), want.data(), zp_in, multiplier, zp_out);
    for (Isa isa : qtorch::testing::vector_isas()) {
      (quantize_ukernels(isa).*fn)(n, x.data(), got.data(), zp_in, multiplier, zp_out);
      CHECK(want == got);
    }
  }
}

}  // namespace

TEST(quantize_u8) { check_quantize<uint8_t>(&QuantizeUkernels::quantize_u8, Form::kFused); }
TEST(quantize_s8) { check_quantize<int8_t>(&QuantizeUkernels::quantize_s8, Form::kFused); }
TEST(quantize_channel_u8) { check_quantize<uint8_t>(&QuantizeUkernels::quantize_channel_u8, Form::kTwoStep); }
TEST(quantize_channel_s8) { check_quantize<int8_t>(&QuantizeUkernels::quantize_channel_s8, Form::kTwoStep); }
TEST(quantize_channel_s32) { check_quantize<int32_t>(&QuantizeUkernels::quantize_channel_s32, Form::kTwoStep); }
TEST(quantize_channels_u8) { check_quantize_channels<uint8_t>(&QuantizeUkernels::quantize_channels_u8); }
TEST(quantize_channels_s8) { check_quantize_channels<int8_t>(&QuantizeUkernels::quantize_channels_s8); }
TEST(quantize_channels_s32) { check_quantize_channels<int32_t>(&QuantizeUkernels::quantize_channels_s32); }
TEST(dequantize_u8) { check_dequantize<uint8_t>(&QuantizeUkernels::dequantize_u8); }
TEST(dequantize_s8) { check_dequantize<int8_t>(&QuantizeUkernels::dequantize_s8); }
TEST(dequantize_s32) { check_dequantize<int32_t>(&QuantizeUkernels::dequantize_s32); }
TEST(dequantize_channels_u8) { check_dequantize_channels<uint8_t>(&QuantizeUkernels::dequantize_channels_u8); }
TEST(dequantize_channels_s8) { check_dequantize_channels<int8_t>(&QuantizeUkernels::dequantize_channels_s8); }
TEST(requantize_u8_u8) { check_requantize<uint8_t, uint8_t>(&QuantizeUkernels::requantize_u8_u8); }
TEST(requantize_u8_s8) { check_requantize<uint8_t, int8_t>(&QuantizeUkernels::requantize_u8_s8); }
TEST(requantize_s8_u8) { check_requantize<int8_t, uint8_t>(&QuantizeUkernels::requantize_s8_u8); }
TEST(requantize_s8_s8) { check_requantize<int8_t, int8_t>(&QuantizeUkernels::requantize_s8_s8); }

TEST(isa_names_round_trip) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Vnni, Isa::kAmx, Isa::kNeon}) {
    CHECK(parse_isa(isa_name(isa)) == isa);
  }
  bool threw = false;
  try {
    parse_isa("sse9");
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw);
}
