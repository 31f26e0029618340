// NEON path: 4 units per vector, tails through the scalar definition; every
// operation mirrors rnn_scalar.h (x86 min/max semantics via compare + select).
#include "common/isa.h"
#if QTORCH_ARCH_ARM64  // compiled into every build; empty off its architecture

#include <arm_neon.h>

#include <limits>

#include "rnn/rnn.h"
#include "rnn/rnn_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

using namespace rnn_scalar;

inline float32x4_t max4(float32x4_t a, float32x4_t b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
inline float32x4_t min4(float32x4_t a, float32x4_t b) { return vbslq_f32(vcltq_f32(a, b), a, b); }

inline float32x4_t exp4(float32x4_t x) {
  x = min4(max4(x, vdupq_n_f32(kExpLo)), vdupq_n_f32(kExpHi));
  const float32x4_t n = vrndmq_f32(vaddq_f32(vmulq_f32(x, vdupq_n_f32(kLog2e)), vdupq_n_f32(0.5f)));
  float32x4_t r = vsubq_f32(x, vmulq_f32(n, vdupq_n_f32(kLn2Hi)));
  r = vsubq_f32(r, vmulq_f32(n, vdupq_n_f32(kLn2Lo)));
  const float32x4_t z = vmulq_f32(r, r);
  float32x4_t p = vdupq_n_f32(kExpP0);
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kExpP1));
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kExpP2));
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kExpP3));
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kExpP4));
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kExpP5));
  p = vaddq_f32(vmulq_f32(p, z), r);
  p = vaddq_f32(p, vdupq_n_f32(1.0f));
  const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vmulq_f32(p, vreinterpretq_f32_s32(bits));
}

inline float32x4_t sigmoid4(float32x4_t x) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  return vdivq_f32(one, vaddq_f32(one, exp4(vnegq_f32(x))));
}

inline float32x4_t tanh4(float32x4_t x) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  return vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(exp4(vaddq_f32(x, x)), one)));
}

inline float32x4_t gate_input(const float* gx, const float* gh, size_t offset) {
  return vaddq_f32(vld1q_f32(gx + offset), vld1q_f32(gh + offset));
}

void lstm_gates(size_t batch, size_t hidden, const float* gates_x, size_t ldx, const float* gates_h, float* c,
                float* h, size_t ldh) {
  for (size_t b = 0; b < batch; ++b) {
    const float* gx = gates_x + b * ldx;
    const float* gh = gates_h + b * 4 * hidden;
    float* cb = c + b * hidden;
    float* hb = h + b * ldh;
    size_t j = 0;
    for (; j + 4 <= hidden; j += 4) {
      const float32x4_t i = sigmoid4(gate_input(gx, gh, j));
      const float32x4_t f = sigmoid4(gate_input(gx, gh, hidden + j));
      const float32x4_t g = tanh4(gate_input(gx, gh, 2 * hidden + j));
      const float32x4_t o = sigmoid4(gate_input(gx, gh, 3 * hidden + j));
      const float32x4_t c_new = vaddq_f32(vmulq_f32(f, vld1q_f32(cb + j)), vmulq_f32(i, g));
      vst1q_f32(cb + j, c_new);
      vst1q_f32(hb + j, vmulq_f32(o, tanh4(c_new)));
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
    for (; j + 4 <= hidden; j += 4) {
      const float32x4_t r = sigmoid4(gate_input(gx, gh, j));
      const float32x4_t z = sigmoid4(gate_input(gx, gh, hidden + j));
      const float32x4_t n = tanh4(vaddq_f32(vld1q_f32(gx + 2 * hidden + j), vmulq_f32(r, vld1q_f32(gh + 2 * hidden + j))));
      vst1q_f32(hb + j, vaddq_f32(vmulq_f32(vsubq_f32(vld1q_f32(hp + j), n), z), n));
    }
    for (; j < hidden; ++j) gru_unit(gx, gh, hidden, j, hp, hb);
  }
}

void minmax(size_t n, const float* x, float* min, float* max) {
  float32x4_t lo = vdupq_n_f32(std::numeric_limits<float>::infinity());
  float32x4_t hi = vdupq_n_f32(-std::numeric_limits<float>::infinity());
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    lo = min4(v, lo);  // NaN ignored
    hi = max4(v, hi);
  }
  float l = vminvq_f32(lo), h = vmaxvq_f32(hi);
  for (; i < n; ++i) {
    l = min_of(x[i], l);
    h = max_of(x[i], h);
  }
  *min = l;
  *max = h;
}

}  // namespace

const RnnUkernels kRnnNeon = {lstm_gates, gru_gates, minmax};

}  // namespace kernels
}  // namespace qtorch

#endif  // QTORCH_ARCH_ARM64
