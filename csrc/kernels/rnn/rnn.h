// Recurrent-cell microkernels for dynamic quantized LSTM and GRU layers: the
// gate nonlinearities that follow each step's GEMMs, and the min/max scan that
// dynamic quantization of the hidden state needs.
//
// Gate layouts are torch's: LSTM gates i, f, g, o and GRU gates r, z, n, each
// `hidden` wide, in that order along a row. Per row b and unit j:
//   LSTM: x_* = gates_x[b][*] + gates_h[b][*]
//         i = sigmoid(x_i), f = sigmoid(x_f), g = tanh(x_g), o = sigmoid(x_o)
//         c[b][j] = f * c[b][j] + i * g;  h[b][j] = o * tanh(c[b][j])
//   GRU:  r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z),
//         n = tanh(x_n + r * h_n)      (h_n includes the recurrent bias, as in torch)
//         h[b][j] = (h_prev[b][j] - n) * z + n
// (torch's own operation order, each product and sum rounded separately).
//
// sigmoid and tanh are float approximations defined in rnn_scalar.h (a Cephes
// style exp, about 2 ulp; tanh is within ~1e-7 absolute): built from IEEE
// add, multiply, divide, floor and exponent-field arithmetic only, so every
// ISA path reproduces the scalar definition bit for bit.
//
// minmax: the smallest and largest of n floats (NaN ignored; n == 0 gives
// +inf and -inf).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/isa.h"

namespace qtorch {
namespace kernels {

// gates_x rows have stride ldx floats; gates_h rows are 4*hidden contiguous
// floats; c is [batch][hidden] contiguous (updated in place); h rows have
// stride ldh.
using LstmGatesFn = void (*)(size_t batch, size_t hidden, const float* gates_x, size_t ldx, const float* gates_h,
                             float* c, float* h, size_t ldh);
// gates_h rows are 3*hidden contiguous floats; h_prev and h rows have stride
// ldh and may be the same array (updated in place).
using GruGatesFn = void (*)(size_t batch, size_t hidden, const float* gates_x, size_t ldx, const float* gates_h,
                            const float* h_prev, float* h, size_t ldh);
using MinMaxFn = void (*)(size_t n, const float* x, float* min, float* max);

struct RnnUkernels {
  LstmGatesFn lstm_gates;
  GruGatesFn gru_gates;
  MinMaxFn minmax;
};

// The table for one ISA (which must be compiled into this build).
const RnnUkernels& rnn_ukernels(Isa isa);
// The table for the active ISA.
inline const RnnUkernels& rnn_ukernels() { return rnn_ukernels(active_isa()); }

extern const RnnUkernels kRnnScalar;
#if QTORCH_ARCH_X86
extern const RnnUkernels kRnnAvx2;
extern const RnnUkernels kRnnAvx512;
#elif QTORCH_ARCH_ARM64
extern const RnnUkernels kRnnNeon;
#endif

}  // namespace kernels
}  // namespace qtorch
