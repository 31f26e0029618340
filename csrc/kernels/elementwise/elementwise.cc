#include "elementwise/elementwise.h"

namespace qtorch {
namespace kernels {

const ElementwiseUkernels& elementwise_ukernels(Isa isa) {
  switch (isa) {
#if QTORCH_ARCH_X86
    case Isa::kAvx2: return kElementwiseAvx2;
    case Isa::kAvx512Vnni:
    case Isa::kAmx: return kElementwiseAvx512;
#elif QTORCH_ARCH_ARM64
    case Isa::kNeon: return kElementwiseNeon;
#endif
    default: return kElementwiseScalar;
  }
}

}  // namespace kernels
}  // namespace qtorch
