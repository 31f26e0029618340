// Reference implementation: every other path must produce the same bits.
#include "pool/pool.h"
#include "pool/pool_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

void max_pool(size_t outputs, size_t channels, size_t count, const uint8_t* const* rows, size_t row_step,
              uint8_t* y, size_t y_step) {
  for (size_t o = 0; o < outputs; ++o) {
    for (size_t c = 0; c < channels; ++c) y[o * y_step + c] = max_pool_value(count, rows, o * row_step + c);
  }
}

void avg_pool(size_t outputs, size_t channels, size_t count, const uint8_t* const* rows, size_t row_step,
              uint8_t* y, size_t y_step, const AvgPoolParams& p) {
  for (size_t o = 0; o < outputs; ++o) {
    for (size_t c = 0; c < channels; ++c) y[o * y_step + c] = avg_pool_value(count, rows, o * row_step + c, p);
  }
}

void bilinear(size_t channels, const uint8_t* const* rows, const float* weights, uint8_t* y) {
  for (size_t c = 0; c < channels; ++c) y[c] = bilinear_value(rows, weights, c);
}

void deinterleave(size_t rows, size_t width, size_t phases, const uint8_t* x, size_t x_step, uint8_t* y, size_t y_step,
                  size_t phase_step) {
  for (size_t r = 0; r < rows; ++r) deinterleave_tail(0, width, phases, x + r * x_step, y + r * y_step, phase_step);
}

void avg_pool_runs(size_t runs, size_t length, const uint8_t* x, size_t x_step, uint8_t* y, size_t y_step,
                   const AvgPoolParams& p) {
  for (size_t i = 0; i < runs; ++i) y[i * y_step] = avg_pool_run(length, x + i * x_step, p);
}

}  // namespace

const PoolUkernels kPoolScalar = {max_pool, avg_pool, bilinear, deinterleave, avg_pool_runs};

}  // namespace kernels
}  // namespace qtorch
