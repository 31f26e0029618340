#include "rnn/rnn.h"

namespace qtorch {
namespace kernels {

const RnnUkernels& rnn_ukernels(Isa isa) {
  switch (isa) {
#if QTORCH_ARCH_X86
    case Isa::kAvx2: return kRnnAvx2;
    case Isa::kAvx512Vnni:
    case Isa::kAmx: return kRnnAvx512;
#elif QTORCH_ARCH_ARM64
    case Isa::kNeon: return kRnnNeon;
#endif
    default: return kRnnScalar;
  }
}

}  // namespace kernels
}  // namespace qtorch
