// AVX-512 path (serves the avx512vnni and amx ISAs): 16 units per vector,
// masked tails; every operation mirrors rnn_scalar.h.
#include "common/isa.h"
#if QTORCH_ARCH_X86  // compiled into every build; empty off its architecture

#include <immintrin.h>

#include <limits>

#include "rnn/rnn.h"
#include "rnn/rnn_scalar.h"

// After the includes, so library code is compiled for the baseline ISA.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")

namespace qtorch {
namespace kernels {
namespace {

using namespace rnn_scalar;

inline __mmask16 tail_mask(size_t n) { return n >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << n) - 1u); }

inline __m512 exp16(__m512 x) {
  // max/min_ps return the second operand on NaN, like max_of/min_of.
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kExpLo)), _mm512_set1_ps(kExpHi));
  const __m512 n = _mm512_roundscale_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _mm512_set1_ps(0.5f)),
                                        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(kLn2Hi)));
  r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(kLn2Lo)));
  const __m512 z = _mm512_mul_ps(r, r);
  __m512 p = _mm512_set1_ps(kExpP0);
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(kExpP1));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(kExpP2));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(kExpP3));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(kExpP4));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(kExpP5));
  p = _mm512_add_ps(_mm512_mul_ps(p, z), r);
  p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

inline __m512 negate16(__m512 x) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))); }

inline __m512 sigmoid16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp16(negate16(x))));
}

inline __m512 tanh16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(exp16(_mm512_add_ps(x, x)), one)));
}

inline __m512 gate_input(const float* gx, const float* gh, size_t offset, __mmask16 m) {
  return _mm512_add_ps(_mm512_maskz_loadu_ps(m, gx + offset), _mm512_maskz_loadu_ps(m, gh + offset));
}

void lstm_gates(size_t batch, size_t hidden, const float* gates_x, size_t ldx, const float* gates_h, float* c,
                float* h, size_t ldh) {
  for (size_t b = 0; b < batch; ++b) {
    const float* gx = gates_x + b * ldx;
    const float* gh = gates_h + b * 4 * hidden;
    float* cb = c + b * hidden;
    float* hb = h + b * ldh;
    for (size_t j = 0; j < hidden; j += 16) {
      const __mmask16 m = tail_mask(hidden - j);
      const __m512 i = sigmoid16(gate_input(gx, gh, j, m));
      const __m512 f = sigmoid16(gate_input(gx, gh, hidden + j, m));
      const __m512 g = tanh16(gate_input(gx, gh, 2 * hidden + j, m));
      const __m512 o = sigmoid16(gate_input(gx, gh, 3 * hidden + j, m));
      const __m512 c_new = _mm512_add_ps(_mm512_mul_ps(f, _mm512_maskz_loadu_ps(m, cb + j)), _mm512_mul_ps(i, g));
      _mm512_mask_storeu_ps(cb + j, m, c_new);
      _mm512_mask_storeu_ps(hb + j, m, _mm512_mul_ps(o, tanh16(c_new)));
    }
  }
}

void gru_gates(size_t batch, size_t hidden, const float* gates_x, size_t ldx, const float* gates_h,
               const float* h_prev, float* h, size_t ldh) {
  for (size_t b = 0; b < batch; ++b) {
    const float* gx = gates_x + b * ldx;
    const float* gh = gates_h + b * 3 * hidden;
    for (size_t j = 0; j < hidden; j += 16) {
      const __mmask16 m = tail_mask(hidden - j);
      const __m512 r = sigmoid16(gate_input(gx, gh, j, m));
      const __m512 z = sigmoid16(gate_input(gx, gh, hidden + j, m));
      const __m512 n = tanh16(_mm512_add_ps(_mm512_maskz_loadu_ps(m, gx + 2 * hidden + j),
                                            _mm512_mul_ps(r, _mm512_maskz_loadu_ps(m, gh + 2 * hidden + j))));
      const __m512 hp = _mm512_maskz_loadu_ps(m, h_prev + b * ldh + j);
      _mm512_mask_storeu_ps(h + b * ldh + j, m, _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(hp, n), z), n));
    }
  }
}

void minmax(size_t n, const float* x, float* min, float* max) {
  __m512 lo = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  __m512 hi = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    lo = _mm512_mask_min_ps(lo, m, v, lo);  // v < lo ? v : lo: NaN ignored
    hi = _mm512_mask_max_ps(hi, m, v, hi);
  }
  // Lanes reduced in memory: GCC 12's _mm512_reduce_* warn about their own code.
  float lanes_lo[16], lanes_hi[16];
  _mm512_storeu_ps(lanes_lo, lo);
  _mm512_storeu_ps(lanes_hi, hi);
  float l = lanes_lo[0], h = lanes_hi[0];
  for (int k = 1; k < 16; ++k) {
    l = min_of(lanes_lo[k], l);
    h = max_of(lanes_hi[k], h);
  }
  *min = l;
  *max = h;
}

}  // namespace

const RnnUkernels kRnnAvx512 = {lstm_gates, gru_gates, minmax};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_X86
