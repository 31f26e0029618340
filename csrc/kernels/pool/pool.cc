#include "pool/pool.h"

namespace qtorch {
namespace kernels {

const PoolUkernels& pool_ukernels(Isa isa) {
  switch (isa) {
#if QTORCH_ARCH_X86
    case Isa::kAvx2: return kPoolAvx2;
    case Isa::kAvx512Vnni:
    case Isa::kAmx: return kPoolAvx512;
#elif QTORCH_ARCH_ARM64
    case Isa::kNeon: return kPoolNeon;
#endif
    default: return kPoolScalar;
  }
}

}  // namespace kernels
}  // namespace qtorch
