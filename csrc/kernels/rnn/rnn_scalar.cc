// The reference path of the rnn family (rnn.h, rnn_scalar.h).
#include <limits>

#include "rnn/rnn.h"
#include "rnn/rnn_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

void lstm_gates(size_t batch, size_t hidden, const float* gates_x, size_t ldx, const float* gates_h, float* c,
                float* h, size_t ldh) {
  for (size_t b = 0; b < batch; ++b) {
    for (size_t j = 0; j < hidden; ++j) {
      rnn_scalar::lstm_unit(gates_x + b * ldx, gates_h + b * 4 * hidden, hidden, j, c + b * hidden, h + b * ldh);
    }
  }
}

void gru_gates(size_t batch, size_t hidden, const float* gates_x, size_t ldx, const float* gates_h,
               const float* h_prev, float* h, size_t ldh) {
  for (size_t b = 0; b < batch; ++b) {
    for (size_t j = 0; j < hidden; ++j) {
      rnn_scalar::gru_unit(gates_x + b * ldx, gates_h + b * 3 * hidden, hidden, j, h_prev + b * ldh, h + b * ldh);
    }
  }
}

void minmax(size_t n, const float* x, float* min, float* max) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (size_t i = 0; i < n; ++i) {
    lo = rnn_scalar::min_of(x[i], lo);
    hi = rnn_scalar::max_of(x[i], hi);
  }
  *min = lo;
  *max = hi;
}

}  // namespace

const RnnUkernels kRnnScalar = {lstm_gates, gru_gates, minmax};

}  // namespace kernels
}  // namespace qtorch
