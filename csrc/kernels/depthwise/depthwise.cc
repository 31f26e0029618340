#include "depthwise/depthwise.h"

namespace qtorch {
namespace kernels {

const DepthwiseUkernels& depthwise_ukernels(Isa isa) {
  switch (isa) {
#if QTORCH_ARCH_X86
    case Isa::kAvx2: return kDepthwiseAvx2;
    // No AMX depthwise kernel: tiles do not fit a per-channel reduction.
    case Isa::kAvx512Vnni:
    case Isa::kAmx: return kDepthwiseAvx512Vnni;
#elif QTORCH_ARCH_ARM64
    case Isa::kNeon: return kDepthwiseNeon;
#endif
    default: return kDepthwiseScalar;
  }
}

}  // namespace kernels
}  // namespace qtorch
