// The quantized GEMM: packing, the scalar reference against its defining
// formula (exact int64 sums, double-precision requantization), and every ISA
// against the scalar reference for every output pipeline.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "gemm/gemm.h"
#include "gemm/gemm_scalar.h"
#include "testing.h"

using namespace qtorch;
using namespace qtorch::kernels;
using qtorch::testing::rng;

namespace {

int uniform_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng()); }
float uniform_float(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng()); }

// One GEMM problem with its unpacked operands and packed weight.
struct Problem {
  size_t m, n, k, lda;
  std::vector<uint8_t> a;
  std::vector<int8_t> b;  // [n][k]
  std::vector<int8_t> packed;
  std::vector<int32_t> col_sums;
  std::vector<float> b_scales, bias;
  std::vector<int32_t> b_zero_points;
  OutputPipeline pipeline;

  Problem(size_t m_, size_t n_, size_t k_, bool per_channel, bool b_zp, bool with_bias)
      : m(m_), n(n_), k(k_), lda(k_ + size_t(uniform_int(0, 5))), a(m_ * lda), b(n_ * k_),
        packed(packed_b_size(n_, k_)), col_sums(n_) {
    for (uint8_t& v : a) v = uint8_t(uniform_int(0, 255));
    for (int8_t& v : b) v = int8_t(uniform_int(-128, 127));
    pack_b(n, k, b.data(), k, packed.data(), col_sums.data());
    const size_t channels = per_channel ? n : 1;
    b_scales.resize(std::max<size_t>(channels, 1));
    b_zero_points.resize(std::max<size_t>(channels, 1));
    for (float& s : b_scales) s = uniform_float(0.001f, 0.05f);
    for (int32_t& z : b_zero_points) z = b_zp ? uniform_int(-128, 127) : 0;
    bias.resize(n);
    for (float& v : bias) v = uniform_float(-3.f, 3.f);
    pipeline.a_zero_point = uniform_int(0, 255);
    pipeline.a_scale = uniform_float(0.005f, 0.05f);
    pipeline.b_scales = b_scales.data();
    pipeline.b_zero_points = b_zp ? b_zero_points.data() : nullptr;
    pipeline.b_per_channel = per_channel;
    pipeline.bias = with_bias ? bias.data() : nullptr;
    // An output scale that spreads results over the uint8 range.
    pipeline.c_scale = pipeline.a_scale * b_scales[0] * std::sqrt(float(std::max<size_t>(k, 1))) * 40.f;
    pipeline.c_zero_point = uniform_int(0, 255);
  }

  PackedB packed_b() const { return kernels::packed_b(packed.data(), col_sums.data(), n, k); }

  int64_t exact(size_t i, size_t j) const {
    const int64_t bzp = b_zero_points[pipeline.b_per_channel ? j : 0] * (pipeline.b_zero_points ? 1 : 0);
    int64_t s = 0;
    for (size_t kk = 0; kk < k; ++kk) s += (int64_t(a[i * lda + kk]) - pipeline.a_zero_point) * (int64_t(b[j * k + kk]) - bzp);
    return s;
  }

  // Runs fn over all rows and columns, into an output of the pipeline's type.
  template <typename T>
  std::vector<T> run(GemmFn fn, GemmOutput output, size_t ldc) const {
    OutputPipeline p = pipeline;
    p.output = output;
    std::vector<T> c(m * ldc + 1, T(77));
    fn(m, 0, n, a.data(), lda, packed_b(), p, c.data(), ldc);
    return c;
  }
};

const size_t kMs[] = {0, 1, 2, 3, 5, 7, 13};
const size_t kNs[] = {1, 3, 16, 17, 33, 64};
const size_t kKs[] = {0, 1, 3, 4, 5, 17, 64, 131};

template <typename Body>
void for_each_problem(const Body& body) {
  for (size_t m : kMs)
    for (size_t n : kNs)
      for (size_t k : kKs) {
        const int variant = uniform_int(0, 7);
        Problem pr(m, n, k, variant & 1, variant & 2, variant & 4);
        body(pr);
      }
}

template <typename T>
bool same_bits(const std::vector<T>& x, const std::vector<T>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(T)) == 0;
}

}  // namespace

TEST(gemm_pack_round_trip) {
  for (size_t n : kNs)
    for (size_t k : kKs) {
      Problem pr(1, n, k, false, false, false);
      std::vector<int8_t> back(n * k);
      unpack_b(n, k, pr.packed.data(), back.data(), k);
      CHECK(back == pr.b);
      for (size_t j = 0; j < n; ++j) {
        int32_t s = 0;
        for (size_t kk = 0; kk < k; ++kk) s += pr.b[j * k + kk];
        CHECK_EQ(pr.col_sums[j], s);
      }
      // Layout: packed[nb][kg][j][r] = B[16 nb + j][4 kg + r], zero padded.
      const size_t groups = (k + 3) / 4;
      for (size_t j = 0; j < (n + 15) / 16 * 16; ++j)
        for (size_t kk = 0; kk < groups * 4; ++kk) {
          const int8_t want = (j < n && kk < k) ? pr.b[j * k + kk] : 0;
          CHECK_EQ(pr.packed[(j / 16) * groups * 64 + (kk / 4) * 64 + (j % 16) * 4 + kk % 4], want);
        }
    }
}

TEST(gemm_scalar_int32_exact) {
  for_each_problem([](const Problem& pr) {
    const size_t ldc = pr.n + 2;
    const auto c = pr.run<int32_t>(kGemmScalar.gemm_u8s8, GemmOutput::kInt32, ldc);
    for (size_t i = 0; i < pr.m; ++i)
      for (size_t j = 0; j < pr.n; ++j) CHECK_EQ(int64_t(c[i * ldc + j]), pr.exact(i, j));
    if (pr.m > 0) CHECK_EQ(c[pr.n], 77);  // untouched padding between rows
  });
}

TEST(gemm_scalar_requantize_within_one) {
  for_each_problem([](const Problem& pr) {
    for (bool relu : {false, true}) {
      Problem q = pr;
      q.pipeline.relu = relu;
      const size_t ldc = pr.n;
      const auto c = q.run<uint8_t>(kGemmScalar.gemm_u8s8, GemmOutput::kUint8, ldc);
      const auto d = q.run<float>(kGemmScalar.gemm_u8s8, GemmOutput::kDequantized, ldc);
      const auto f = q.run<float>(kGemmScalar.gemm_u8s8, GemmOutput::kFloat, ldc);
      const OutputPipeline& p = q.pipeline;
      for (size_t i = 0; i < pr.m; ++i)
        for (size_t j = 0; j < pr.n; ++j) {
          const double bscale = pr.b_scales[p.b_per_channel ? j : 0];
          double real = double(pr.exact(i, j)) * p.a_scale * bscale + (p.bias ? pr.bias[j] : 0.0);
          if (relu) real = std::max(real, 0.0);
          const double want = std::min(255.0, std::max(0.0, std::nearbyint(real / p.c_scale) + p.c_zero_point));
          CHECK(std::fabs(double(c[i * ldc + j]) - want) <= 1.0);
          CHECK_EQ(d[i * ldc + j], float(int(c[i * ldc + j]) - p.c_zero_point) * p.c_scale);
          CHECK(std::fabs(f[i * ldc + j] - real) <= 1e-4 * std::max(1.0, std::fabs(real)));
        }
    }
  });
}

TEST(gemm_extremes_no_overflow) {
  // All-255 activations against all-127 or all--128 weights, up to K = 16384.
  for (size_t k : {1, 4, 255, 1023, 4097, 16384}) {
    for (int w : {127, -128}) {
      const size_t m = 3, n = 17;
      std::vector<uint8_t> a(m * k, 255);
      std::vector<int8_t> b(n * k, int8_t(w)), packed(packed_b_size(n, k));
      std::vector<int32_t> sums(n);
      pack_b(n, k, b.data(), k, packed.data(), sums.data());
      for (int32_t a_zp : {0, 255, 3}) {
        float one = 1.f;
        OutputPipeline p;
        p.a_zero_point = a_zp;
        p.b_scales = &one;
        p.output = GemmOutput::kInt32;
        const int64_t want = int64_t(k) * (255 - a_zp) * w;
        std::vector<int32_t> c(m * n);
        kGemmScalar.gemm_u8s8(m, 0, n, a.data(), k, kernels::packed_b(packed.data(), sums.data(), n, k), p, c.data(), n);
        for (int32_t v : c) CHECK_EQ(int64_t(v), want);
        for (Isa isa : qtorch::testing::vector_isas()) {
          std::vector<int32_t> got(m * n);
          gemm_ukernels(isa).gemm_u8s8(m, 0, n, a.data(), k, kernels::packed_b(packed.data(), sums.data(), n, k), p, got.data(), n);
          CHECK(got == c);
        }
      }
    }
  }
}

// Every ISA equals the scalar reference, for every pipeline, and splitting the
// work over rows and 16-column blocks changes nothing.
TEST(gemm_isas_match_scalar) {
  for_each_problem([](const Problem& pr) {
    for (bool relu : {false, true}) {
      Problem q = pr;
      q.pipeline.relu = relu;
      const size_t ldc = pr.n + 1;
      const auto u8 = q.run<uint8_t>(kGemmScalar.gemm_u8s8, GemmOutput::kUint8, ldc);
      const auto deq = q.run<float>(kGemmScalar.gemm_u8s8, GemmOutput::kDequantized, ldc);
      const auto f32 = q.run<float>(kGemmScalar.gemm_u8s8, GemmOutput::kFloat, ldc);
      const auto i32 = q.run<int32_t>(kGemmScalar.gemm_u8s8, GemmOutput::kInt32, ldc);
      for (Isa isa : qtorch::testing::vector_isas()) {
        const GemmFn fn = gemm_ukernels(isa).gemm_u8s8;
        CHECK(same_bits(q.run<uint8_t>(fn, GemmOutput::kUint8, ldc), u8));
        CHECK(same_bits(q.run<float>(fn, GemmOutput::kDequantized, ldc), deq));
        CHECK(same_bits(q.run<float>(fn, GemmOutput::kFloat, ldc), f32));
        CHECK(same_bits(q.run<int32_t>(fn, GemmOutput::kInt32, ldc), i32));
        Problem streamed = q;  // a hint: the same floats, whichever stores write them
        streamed.pipeline.stream_float_output = true;
        CHECK(same_bits(streamed.run<float>(fn, GemmOutput::kDequantized, ldc), deq));
        CHECK(same_bits(streamed.run<float>(fn, GemmOutput::kFloat, ldc), f32));
      }
      // Split: one row at a time, one 16-column block at a time.
      for (Isa isa : supported_isas()) {
        const GemmFn fn = gemm_ukernels(isa).gemm_u8s8;
        std::vector<uint8_t> c(q.m * ldc + 1, 77);
        for (size_t i = 0; i < q.m; ++i)
          for (size_t n0 = 0; n0 < q.n; n0 += 16)
            fn(1, n0, std::min(q.n, n0 + 16), q.a.data() + i * q.lda, q.lda, q.packed_b(), q.pipeline,
               c.data() + i * ldc, ldc);
        CHECK(same_bits(c, u8));
      }
    }
  });
}

// k_slice: with a zero activation zero point and A zero outside the slice, a
// GEMM over the slice gives the whole GEMM's bits on every ISA whose table
// says so (any slice length, so also the K tail of a slice that ends inside a
// group). The scalar reference must say so: conv tests compare against it.
TEST(gemm_k_slice_matches_whole_where_a_is_zero_outside) {
  for_each_problem([](const Problem& pr) {
    if (pr.k < 8) return;
    Problem q = pr;
    q.pipeline.a_zero_point = 0;
    const size_t k0 = size_t(uniform_int(0, int(q.k / 4) - 1)) * 4;
    const size_t len = size_t(uniform_int(1, int(q.k - k0)));
    for (size_t i = 0; i < q.m; ++i)
      for (size_t kk = 0; kk < q.k; ++kk)
        if (kk < k0 || kk >= k0 + len) q.a[i * q.lda + kk] = 0;
    const size_t ldc = q.n;
    const auto whole = q.run<uint8_t>(kGemmScalar.gemm_u8s8, GemmOutput::kUint8, ldc);
    const auto whole_i32 = q.run<int32_t>(kGemmScalar.gemm_u8s8, GemmOutput::kInt32, ldc);
    for (Isa isa : supported_isas()) {
      if (!gemm_ukernels(isa).k_slices_keep_col_sums) continue;
      const GemmFn fn = gemm_ukernels(isa).gemm_u8s8;
      const PackedB slice = k_slice(q.packed_b(), k0, len);
      OutputPipeline p = q.pipeline;
      std::vector<uint8_t> c(q.m * ldc + 1, 77);
      fn(q.m, 0, q.n, q.a.data() + k0, q.lda, slice, p, c.data(), ldc);
      CHECK(same_bits(c, whole));
      p.output = GemmOutput::kInt32;
      std::vector<int32_t> c32(q.m * ldc + 1, 77);
      fn(q.m, 0, q.n, q.a.data() + k0, q.lda, slice, p, c32.data(), ldc);
      CHECK(same_bits(c32, whole_i32));
    }
  });
  CHECK(kGemmScalar.k_slices_keep_col_sums);
}

// gemm_u8s8_segments equals gemm_u8s8 on rows holding the segments' bytes at
// their reduction indices and zeros elsewhere (activation zero point 0): every
// ISA that has it, every output, weight zero points too, rows that overlap.
TEST(gemm_segments_match_gathered_rows) {
  for (size_t m : {1, 5, 6, 13})
    for (size_t n : {3, 16, 70})
      for (size_t k : {8, 64, 200}) {
        const int variant = uniform_int(0, 7);
        Problem pr(m, n, k, variant & 1, variant & 2, variant & 4);
        pr.pipeline.a_zero_point = 0;
        // Up to 3 disjoint runs of whole groups, each read from a buffer of its own with its
        // own placement but the common row stride.
        const size_t groups = k / 4, lda = size_t(uniform_int(4, 80));
        std::vector<GemmSegment> segments;
        std::vector<std::vector<uint8_t>> buffers;
        std::vector<uint8_t> gathered(m * k, 0);
        for (size_t g = 0; g < groups;) {
          const size_t len = std::min(groups - g, size_t(uniform_int(1, int(groups))));
          if (uniform_int(0, 2) > 0 && segments.size() < 3) {
            buffers.emplace_back((m - 1) * lda + len * 4);
            for (uint8_t& v : buffers.back()) v = uint8_t(uniform_int(0, 255));
            segments.push_back({buffers.back().data(), g * 4, len * 4});
            for (size_t r = 0; r < m; ++r)
              std::memcpy(&gathered[r * k + g * 4], buffers.back().data() + r * lda, len * 4);
          }
          g += len;
        }
        for (GemmOutput output : {GemmOutput::kUint8, GemmOutput::kInt32, GemmOutput::kFloat}) {
          OutputPipeline p = pr.pipeline;
          p.output = output;
          const size_t bytes = gemm_output_bytes(output), ldc = n + 1;
          std::vector<char> want((m * ldc + 1) * bytes, 7);
          kGemmScalar.gemm_u8s8(m, 0, n, gathered.data(), k, pr.packed_b(), p, want.data(), ldc);
          for (Isa isa : supported_isas()) {
            const GemmSegmentsFn fn = gemm_ukernels(isa).gemm_u8s8_segments;
            if (fn == nullptr) continue;
            std::vector<char> got((m * ldc + 1) * bytes, 7);
            fn(m, 0, n, segments.data(), segments.size(), lda, pr.packed_b(), p, got.data(), ldc);
            CHECK(got == want);
          }
        }
      }
  CHECK(kGemmScalar.gemm_u8s8_segments != nullptr);
}

// The uint8 output of conv-like shapes (small K, N not a multiple of the
// 64-column panel) and of output scales that push most results far outside
// 0..255 on both sides (beyond the int16 range too): every ISA equals scalar,
// whole and split over rows and 16-column blocks.
TEST(gemm_uint8_panels_and_saturation_match_scalar) {
  for (size_t n : {48, 80, 96, 144})
    for (size_t k : {8, 16, 24, 29})
      for (float spread : {1.f, 1e-3f, 1e-6f}) {
        const int variant = uniform_int(0, 7);
        Problem pr(uniform_int(7, 20), n, k, variant & 1, variant & 2, variant & 4);
        pr.pipeline.c_scale *= spread;
        for (bool relu : {false, true}) {
          Problem q = pr;
          q.pipeline.relu = relu;
          const size_t ldc = n + 5;
          const auto want = q.run<uint8_t>(kGemmScalar.gemm_u8s8, GemmOutput::kUint8, ldc);
          for (Isa isa : qtorch::testing::vector_isas()) {
            const GemmFn fn = gemm_ukernels(isa).gemm_u8s8;
            CHECK(same_bits(q.run<uint8_t>(fn, GemmOutput::kUint8, ldc), want));
            std::vector<uint8_t> c(q.m * ldc + 1, 77);
            for (size_t i0 = 0; i0 < q.m; i0 += 5)
              for (size_t n0 = 0; n0 < n; n0 += 32)
                fn(std::min<size_t>(5, q.m - i0), n0, std::min(n, n0 + 32), q.a.data() + i0 * q.lda, q.lda,
                   q.packed_b(), q.pipeline, c.data() + i0 * ldc, ldc);
            CHECK(same_bits(c, want));
          }
        }
      }
}

namespace {

uint16_t float_to_half_bits(float f) {
  // Round-to-nearest-even conversion for test data in the normal half range.
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  int32_t e = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (e <= 0) return uint16_t(sign);  // flush tiny values (not produced below)
  uint32_t h = (uint32_t(e) << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return uint16_t(sign | h);
}

}  // namespace

TEST(gemm_half_to_float) {
  // Every half bit pattern against a direct evaluation of its value.
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = half_to_float(uint16_t(h));
    const uint32_t e = (h >> 10) & 0x1f, mant = h & 0x3ff;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 0x1f) {
      CHECK(mant ? std::isnan(f) : std::isinf(f));
      continue;
    }
    const double want = e == 0 ? sign * std::ldexp(double(mant), -24) : sign * std::ldexp(1024.0 + mant, int(e) - 25);
    CHECK_EQ(double(f), want);
  }
}

TEST(gemm_f16_isas_match_scalar) {
  for (size_t m : kMs)
    for (size_t n : kNs)
      for (size_t k : kKs) {
        const size_t lda = k + 1, ldc = n + 3;
        std::vector<float> a(m * lda), bias(n);
        for (float& v : a) v = uniform_float(-2.f, 2.f);
        for (float& v : bias) v = uniform_float(-1.f, 1.f);
        std::vector<uint16_t> b(n * k), packed(packed_b_f16_size(n, k)), back(n * k);
        for (uint16_t& v : b) v = float_to_half_bits(uniform_float(-1.f, 1.f));
        pack_b_f16(n, k, b.data(), k, packed.data());
        unpack_b_f16(n, k, packed.data(), back.data(), k);
        CHECK(back == b);
        for (bool relu : {false, true})
          for (const float* bias_ptr : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
            std::vector<float> want(m * ldc + 1, 5.f);
            kGemmScalar.gemm_f32f16(m, 0, n, a.data(), lda, packed.data(), k, bias_ptr, relu, want.data(), ldc);
            for (size_t i = 0; i < m; ++i)
              for (size_t j = 0; j < n; ++j) {
                double real = bias_ptr ? bias[j] : 0.0;
                for (size_t kk = 0; kk < k; ++kk) real += double(a[i * lda + kk]) * half_to_float(b[j * k + kk]);
                if (relu) real = std::max(real, 0.0);
                CHECK(std::fabs(want[i * ldc + j] - real) <= 1e-5 * (1.0 + k));
              }
            for (Isa isa : qtorch::testing::vector_isas()) {
              std::vector<float> got(m * ldc + 1, 5.f);
              gemm_ukernels(isa).gemm_f32f16(m, 0, n, a.data(), lda, packed.data(), k, bias_ptr, relu, got.data(), ldc);
              CHECK(same_bits(got, want));
            }
          }
      }
}

// Non-finite biases (a float model can hold them) go through the same steps on
// every path: NaN requantizes to the zero point, infinities clamp.
TEST(gemm_nonfinite_bias_matches_scalar) {
  Problem pr(5, 37, 19, true, false, true);
  pr.bias[0] = std::numeric_limits<float>::quiet_NaN();
  pr.bias[1] = std::numeric_limits<float>::infinity();
  pr.bias[2] = -std::numeric_limits<float>::infinity();
  pr.bias[20] = std::numeric_limits<float>::quiet_NaN();
  for (bool relu : {false, true}) {
    Problem q = pr;
    q.pipeline.relu = relu;
    const size_t ldc = q.n;
    const auto u8 = q.run<uint8_t>(kGemmScalar.gemm_u8s8, GemmOutput::kUint8, ldc);
    const auto f32 = q.run<float>(kGemmScalar.gemm_u8s8, GemmOutput::kFloat, ldc);
    for (size_t i = 0; i < q.m; ++i) {
      CHECK_EQ(int(u8[i * ldc + 0]), q.pipeline.c_zero_point);
      CHECK_EQ(int(u8[i * ldc + 1]), 255);
      CHECK_EQ(int(u8[i * ldc + 2]), relu ? q.pipeline.c_zero_point : 0);
    }
    for (Isa isa : qtorch::testing::vector_isas()) {
      const GemmFn fn = gemm_ukernels(isa).gemm_u8s8;
      CHECK(same_bits(q.run<uint8_t>(fn, GemmOutput::kUint8, ldc), u8));
      const auto got = q.run<float>(fn, GemmOutput::kFloat, ldc);
      for (size_t i = 0; i < got.size(); ++i) CHECK((std::isnan(got[i]) && std::isnan(f32[i])) || got[i] == f32[i]);
    }
  }
}

// The AMX kernel is not dispatched yet (see gemm.h); this checks it against
// the scalar reference on CPUs that have AMX, and does nothing elsewhere.
TEST(gemm_amx_matches_scalar) {
#if QTORCH_ARCH_X86
  if (!isa_supported(Isa::kAmx)) return;
  for (size_t m : {1, 5, 16, 17, 32, 33, 70})
    for (size_t n : {1, 16, 17, 33, 64})
      for (size_t k : {1, 4, 63, 64, 65, 200}) {
        const int variant = uniform_int(0, 7);
        Problem q(m, n, k, variant & 1, variant & 2, variant & 4);
        for (GemmOutput output : {GemmOutput::kUint8, GemmOutput::kInt32}) {
          if (output == GemmOutput::kUint8) {
            CHECK(same_bits(q.run<uint8_t>(kGemmAmx.gemm_u8s8, output, n), q.run<uint8_t>(kGemmScalar.gemm_u8s8, output, n)));
          } else {
            CHECK(same_bits(q.run<int32_t>(kGemmAmx.gemm_u8s8, output, n), q.run<int32_t>(kGemmScalar.gemm_u8s8, output, n)));
          }
        }
      }
#endif
}

TEST(gemm_float_range) {
  for (size_t n : {1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 100, 256, 1001}) {
    for (int nan_at : {-1, 0, int(n) / 2, int(n) - 1}) {
      std::vector<float> x(n);
      for (float& v : x) v = uniform_float(-50.f, 50.f);
      if (nan_at >= 0) x[nan_at] = std::numeric_limits<float>::quiet_NaN();
      const float want_min = *std::min_element(x.begin(), x.end()), want_max = *std::max_element(x.begin(), x.end());
      for (Isa isa : supported_isas()) {
        float lo = 0, hi = 0;
        gemm_ukernels(isa).float_range(n, x.data(), &lo, &hi);
        if (nan_at >= 0) {
          CHECK(std::isnan(lo) && std::isnan(hi));
        } else {
          CHECK_EQ(lo, want_min);
          CHECK_EQ(hi, want_max);
        }
      }
    }
  }
}
