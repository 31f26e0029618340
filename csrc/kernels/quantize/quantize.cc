#include "quantize/quantize.h"

namespace qtorch {
namespace kernels {

const QuantizeUkernels& quantize_ukernels(Isa isa) {
  switch (isa) {
#if QTORCH_ARCH_X86
    case Isa::kAvx2: return kQuantizeAvx2;
    case Isa::kAvx512Vnni:
    case Isa::kAmx: return kQuantizeAvx512;
#elif QTORCH_ARCH_ARM64
    case Isa::kNeon: return kQuantizeNeon;
#endif
    default: return kQuantizeScalar;
  }
}

}  // namespace kernels
}  // namespace qtorch
