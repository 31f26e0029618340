// The rnn family: every ISA against the scalar reference bit for bit, and the
// scalar sigmoid/tanh/exp approximations against libm.
#include <cmath>
#include <cstring>
#include <limits>

#include "rnn/rnn.h"
#include "rnn/rnn_scalar.h"
#include "testing.h"

using namespace qtorch;
using namespace qtorch::kernels;
using qtorch::testing::rng;

namespace {

const size_t kHidden[] = {1, 3, 4, 7, 8, 15, 16, 17, 33, 64, 100};
const size_t kBatch[] = {1, 2, 5};

std::vector<float> random_floats(size_t n, float range) {
  std::uniform_real_distribution<float> dist(-range, range);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng());
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST(rnn_scalar_approximations_match_libm) {
  // exp: relative error a few ulp over the unclamped range; sigmoid and tanh
  // within 2e-7 absolute everywhere, saturating exactly.
  double worst_exp = 0, worst_sigmoid = 0, worst_tanh = 0;
  for (float x = -87.f; x <= 88.f; x += 0.0137f) {
    const double want = std::exp(double(x));
    worst_exp = std::max(worst_exp, std::abs(double(rnn_scalar::exp(x)) - want) / want);
  }
  for (float x = -30.f; x <= 30.f; x += 0.00137f) {
    worst_sigmoid = std::max(worst_sigmoid, std::abs(double(rnn_scalar::sigmoid(x)) - 1 / (1 + std::exp(-double(x)))));
    worst_tanh = std::max(worst_tanh, std::abs(double(rnn_scalar::tanh(x)) - std::tanh(double(x))));
  }
  CHECK(worst_exp < 3e-7);
  CHECK(worst_sigmoid < 2e-7);
  CHECK(worst_tanh < 2e-7);
  CHECK_EQ(rnn_scalar::tanh(100.f), 1.0f);
  CHECK_EQ(rnn_scalar::tanh(-100.f), -1.0f);
  CHECK_EQ(rnn_scalar::sigmoid(100.f), 1.0f);
  CHECK(rnn_scalar::sigmoid(-100.f) >= 0.f && rnn_scalar::sigmoid(-100.f) < 1e-37f);
  CHECK_EQ(rnn_scalar::tanh(0.f), 0.0f);
  CHECK_EQ(rnn_scalar::sigmoid(0.f), 0.5f);
}

TEST(rnn_lstm_gates) {
  for (size_t batch : kBatch) {
    for (size_t hidden : kHidden) {
      const size_t ldx = 4 * hidden + 3, ldh = hidden + 2;
      const std::vector<float> gx = random_floats(batch * ldx, 6.f), gh = random_floats(batch * 4 * hidden, 6.f);
      const std::vector<float> c0 = random_floats(batch * hidden, 3.f);
      std::vector<float> c_want = c0, h_want(batch * ldh, 0.f);
      kRnnScalar.lstm_gates(batch, hidden, gx.data(), ldx, gh.data(), c_want.data(), h_want.data(), ldh);
      // The reference against its definition in double (approximations aside).
      for (size_t b = 0; b < batch; ++b) {
        for (size_t j = 0; j < hidden; ++j) {
          auto gate = [&](size_t g) { return double(gx[b * ldx + g * hidden + j]) + gh[b * 4 * hidden + g * hidden + j]; };
          auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
          const double c = sig(gate(1)) * c0[b * hidden + j] + sig(gate(0)) * std::tanh(gate(2));
          CHECK(std::abs(c_want[b * hidden + j] - c) < 1e-5);
          CHECK(std::abs(h_want[b * ldh + j] - sig(gate(3)) * std::tanh(c)) < 1e-5);
        }
      }
      for (Isa isa : qtorch::testing::vector_isas()) {
        std::vector<float> c = c0, h(batch * ldh, 0.f);
        rnn_ukernels(isa).lstm_gates(batch, hidden, gx.data(), ldx, gh.data(), c.data(), h.data(), ldh);
        CHECK(same_bits(c, c_want));
        CHECK(same_bits(h, h_want));
      }
    }
  }
}

TEST(rnn_gru_gates) {
  for (size_t batch : kBatch) {
    for (size_t hidden : kHidden) {
      const size_t ldx = 3 * hidden + 1, ldh = hidden + 5;
      const std::vector<float> gx = random_floats(batch * ldx, 6.f), gh = random_floats(batch * 3 * hidden, 6.f);
      const std::vector<float> h0 = random_floats(batch * ldh, 1.f);
      std::vector<float> h_want(batch * ldh, 0.f);
      kRnnScalar.gru_gates(batch, hidden, gx.data(), ldx, gh.data(), h0.data(), h_want.data(), ldh);
      for (size_t b = 0; b < batch; ++b) {
        for (size_t j = 0; j < hidden; ++j) {
          auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
          const double r = sig(double(gx[b * ldx + j]) + gh[b * 3 * hidden + j]);
          const double z = sig(double(gx[b * ldx + hidden + j]) + gh[b * 3 * hidden + hidden + j]);
          const double n = std::tanh(gx[b * ldx + 2 * hidden + j] + r * gh[b * 3 * hidden + 2 * hidden + j]);
          CHECK(std::abs(h_want[b * ldh + j] - ((h0[b * ldh + j] - n) * z + n)) < 1e-5);
        }
      }
      for (Isa isa : qtorch::testing::vector_isas()) {
        std::vector<float> h(batch * ldh, 0.f);
        rnn_ukernels(isa).gru_gates(batch, hidden, gx.data(), ldx, gh.data(), h0.data(), h.data(), ldh);
        CHECK(same_bits(h, h_want));
        // In place: h_prev and h the same array.
        std::vector<float> h_in_place = h0;
        rnn_ukernels(isa).gru_gates(batch, hidden, gx.data(), ldx, gh.data(), h_in_place.data(),
                                    h_in_place.data(), ldh);
        for (size_t b = 0; b < batch; ++b) {
          CHECK(std::memcmp(h_in_place.data() + b * ldh, h_want.data() + b * ldh, hidden * sizeof(float)) == 0);
        }
      }
    }
  }
}

TEST(rnn_minmax) {
  for (size_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 100, 1000}) {
    std::vector<float> x = random_floats(n, 10.f);
    if (n > 4) x[n / 2] = std::numeric_limits<float>::quiet_NaN();
    float lo, hi;
    kRnnScalar.minmax(n, x.data(), &lo, &hi);
    float want_lo = std::numeric_limits<float>::infinity(), want_hi = -want_lo;
    for (float v : x) {
      if (std::isnan(v)) continue;
      want_lo = std::min(want_lo, v);
      want_hi = std::max(want_hi, v);
    }
    CHECK_EQ(lo, want_lo);
    CHECK_EQ(hi, want_hi);
    for (Isa isa : qtorch::testing::vector_isas()) {
      rnn_ukernels(isa).minmax(n, x.data(), &lo, &hi);
      CHECK_EQ(lo, want_lo);
      CHECK_EQ(hi, want_hi);
    }
  }
}
