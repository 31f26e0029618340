#include "gemm/gemm.h"

#include <cstring>

namespace qtorch {
namespace kernels {

void pack_b(size_t n, size_t k, const int8_t* b, size_t ldb, int8_t* packed, int32_t* col_sums) {
  const size_t groups = (k + kGemmGroupK - 1) / kGemmGroupK;
  // An empty weight may come with a null buffer, and memset(nullptr, 0, 0) is undefined.
  if (packed_b_size(n, k)) std::memset(packed, 0, packed_b_size(n, k));
  for (size_t j = 0; j < n; ++j) {
    const int8_t* row = b + j * ldb;
    int8_t* dst = packed + (j / kGemmBlockN) * groups * kGemmBlockN * kGemmGroupK + (j % kGemmBlockN) * kGemmGroupK;
    int32_t sum = 0;
    for (size_t kk = 0; kk < k; ++kk) {
      dst[(kk / kGemmGroupK) * kGemmBlockN * kGemmGroupK + kk % kGemmGroupK] = row[kk];
      sum += row[kk];
    }
    col_sums[j] = sum;
  }
}

void unpack_b(size_t n, size_t k, const int8_t* packed, int8_t* b, size_t ldb) {
  const size_t groups = (k + kGemmGroupK - 1) / kGemmGroupK;
  for (size_t j = 0; j < n; ++j) {
    const int8_t* src = packed + (j / kGemmBlockN) * groups * kGemmBlockN * kGemmGroupK + (j % kGemmBlockN) * kGemmGroupK;
    for (size_t kk = 0; kk < k; ++kk) b[j * ldb + kk] = src[(kk / kGemmGroupK) * kGemmBlockN * kGemmGroupK + kk % kGemmGroupK];
  }
}

void pack_b_f16(size_t n, size_t k, const uint16_t* b, size_t ldb, uint16_t* packed) {
  if (packed_b_f16_size(n, k)) std::memset(packed, 0, packed_b_f16_size(n, k) * sizeof(uint16_t));  // see pack_b
  for (size_t j = 0; j < n; ++j) {
    uint16_t* dst = packed + (j / kGemmBlockN) * k * kGemmBlockN + j % kGemmBlockN;
    for (size_t kk = 0; kk < k; ++kk) dst[kk * kGemmBlockN] = b[j * ldb + kk];
  }
}

void unpack_b_f16(size_t n, size_t k, const uint16_t* packed, uint16_t* b, size_t ldb) {
  for (size_t j = 0; j < n; ++j) {
    const uint16_t* src = packed + (j / kGemmBlockN) * k * kGemmBlockN + j % kGemmBlockN;
    for (size_t kk = 0; kk < k; ++kk) b[j * ldb + kk] = src[kk * kGemmBlockN];
  }
}

const GemmUkernels& gemm_ukernels(Isa isa) {
  switch (isa) {
#if QTORCH_ARCH_X86
    case Isa::kAvx2: return kGemmAvx2;
    case Isa::kAvx512Vnni:
    case Isa::kAmx: return kGemmAvx512Vnni;
#elif QTORCH_ARCH_ARM64
    case Isa::kNeon: return kGemmNeon;
#endif
    default: return kGemmScalar;
  }
}

}  // namespace kernels
}  // namespace qtorch
