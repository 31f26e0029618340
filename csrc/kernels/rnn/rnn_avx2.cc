// AVX2 path: 8 units per vector, tails through the scalar definition; every
// operation mirrors rnn_scalar.h.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include <limits>

#include "rnn/rnn.h"
#include "rnn/rnn_scalar.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx2")

namespace qtorch {
namespace kernels {
namespace {

using namespace rnn_scalar;

inline __m256 exp8(__m256 x) {
  // max/min_ps return the second operand on NaN, like max_of/min_of.
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpLo)), _mm256_set1_ps(kExpHi));
  const __m256 n = _mm256_round_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _mm256_set1_ps(0.5f)),
                                   _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(kLn2Hi)));
  r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(kLn2Lo)));
  const __m256 z = _mm256_mul_ps(r, r);
  __m256 p = _mm256_set1_ps(kExpP0);
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kExpP1));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kExpP2));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kExpP3));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kExpP4));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kExpP5));
  p = _mm256_add_ps(_mm256_mul_ps(p, z), r);
  p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

inline __m256 negate8(__m256 x) { return _mm256_xor_ps(x, _mm256_set1_ps(-0.0f)); }

inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(negate8(x))));
}

inline __m256 tanh8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(exp8(_mm256_add_ps(x, x)), one)));
}

inline __m256 gate_input(const float* gx, const float* gh, size_t offset) {
  return _mm256_add_ps(_mm256_loadu_ps(gx + offset), _mm256_loadu_ps(gh + offset));
}

void lstm_gates(size_t batch, size_t hidden, const float* gates_x, size_t ldx, const float* gates_h, float* c,
                float* h, size_t ldh) {
  for (size_t b = 0; b < batch; ++b) {
    const float* gx = gates_x + b * ldx;
    const float* gh = gates_h + b * 4 * hidden;
    float* cb = c + b * hidden;
    float* hb = h + b * ldh;
    size_t j = 0;
    for (; j + 8 <= hidden; j += 8) {
      const __m256 i = sigmoid8(gate_input(gx, gh, j));
      const __m256 f = sigmoid8(gate_input(gx, gh, hidden + j));
      const __m256 g = tanh8(gate_input(gx, gh, 2 * hidden + j));
      const __m256 o = sigmoid8(gate_input(gx, gh, 3 * hidden + j));
      const __m256 c_new = _mm256_add_ps(_mm256_mul_ps(f, _mm256_loadu_ps(cb + j)), _mm256_mul_ps(i, g));
      _mm256_storeu_ps(cb + j, c_new);
      _mm256_storeu_ps(hb + j, _mm256_mul_ps(o, tanh8(c_new)));
    }
    for (; j < hidden; ++j) lstm_unit(gx, gh, hidden, j, cb, hb);
  }
}

void gru_gates(size_t batch, size_t hidden, const float* gates_x, size_t ldx, const float* gates_h,
               const float* h_prev, float* h, size_t ldh) {
  for (size_t b = 0; b < batch; ++b) {
    const float* gx = gates_x + b * ldx;
    const float* gh = gates_h + b * 3 * hidden;
    const float* hp = h_prev + b * ldh;
    float* hb = h + b * ldh;
    size_t j = 0;
    for (; j + 8 <= hidden; j += 8) {
      const __m256 r = sigmoid8(gate_input(gx, gh, j));
      const __m256 z = sigmoid8(gate_input(gx, gh, hidden + j));
      const __m256 n = tanh8(_mm256_add_ps(_mm256_loadu_ps(gx + 2 * hidden + j),
                                           _mm256_mul_ps(r, _mm256_loadu_ps(gh + 2 * hidden + j))));
      _mm256_storeu_ps(hb + j, _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(hp + j), n), z), n));
    }
    for (; j < hidden; ++j) gru_unit(gx, gh, hidden, j, hp, hb);
  }
}

void minmax(size_t n, const float* x, float* min, float* max) {
  __m256 lo = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  __m256 hi = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    lo = _mm256_min_ps(v, lo);  // v < lo ? v : lo: NaN ignored
    hi = _mm256_max_ps(v, hi);
  }
  float lanes_lo[8], lanes_hi[8];
  _mm256_storeu_ps(lanes_lo, lo);
  _mm256_storeu_ps(lanes_hi, hi);
  float l = lanes_lo[0], h = lanes_hi[0];
  for (int k = 1; k < 8; ++k) {
    l = min_of(lanes_lo[k], l);
    h = max_of(lanes_hi[k], h);
  }
  for (; i < n; ++i) {
    l = min_of(x[i], l);
    h = max_of(x[i], h);
  }
  *min = l;
  *max = h;
}

}  // namespace

const RnnUkernels kRnnAvx2 = {lstm_gates, gru_gates, minmax};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
