// Reference implementation: every other path must produce the same bits.
#include "elementwise/elementwise.h"
#include "elementwise/elementwise_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

void add(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* y, const AddParams& p) {
  for (size_t i = 0; i < n; ++i) y[i] = add_value(a[i], b[i], p);
}

void mul(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* y, const MulParams& p) {
  for (size_t i = 0; i < n; ++i) y[i] = mul_value(a[i], b[i], p);
}

void clamp(size_t n, const uint8_t* x, uint8_t* y, uint8_t lo, uint8_t hi) {
  for (size_t i = 0; i < n; ++i) y[i] = clamp_value(x[i], lo, hi);
}

void lut(size_t n, const uint8_t* x, uint8_t* y, const uint8_t* table) {
  for (size_t i = 0; i < n; ++i) y[i] = table[x[i]];
}

}  // namespace

const ElementwiseUkernels kElementwiseScalar = {add, mul, clamp, lut};

}  // namespace kernels
}  // namespace qtorch
