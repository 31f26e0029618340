// Quantized GEMM: uint8 activations x int8 weights -> int32, with a fused
// output pipeline (bias, requantization to uint8, ReLU, or float output).
//
//   C[m][n] = pipeline( sum_k (A[m][k] - a_zp) * (B[n][k] - b_zp[n]) )
//
// A is M rows of K uint8 values (row stride lda, in bytes). B is the weight of
// a Linear layer, N rows ("output channels") of K int8 values, packed once by
// pack_b() into the ISA-independent blocked layout
//
//   packed[ceil(N/16)][ceil(K/4)][16][4]   (zero padded in N and K)
//
// i.e. for each block of 16 output channels, for each group of 4 reduction
// indices, 16 x 4 consecutive bytes: packed[nb][kg][j][r] = B[16*nb + j][4*kg + r].
// That is what AVX512-VNNI (16 int32 lanes x 4 bytes), AVX2 (two halves), NEON
// dot products (four registers) and AMX tiles read directly. pack_b() also
// returns the int32 column sums sum_k B[n][k], which the kernels use to remove
// the activation zero point (and NEON to undo its signed-activation trick).
//
// Zero points are handled with offsets, exactly in int32 (modular arithmetic;
// the true value always fits since |A - a_zp|, |B - b_zp| <= 255 and
// K <= kMaxGemmK):
//   raw = acc - a_zp * colsum[n] - b_zp[n] * rowsum[m] + K * a_zp * b_zp[n].
//
// Output pipeline, per element (every ISA path reproduces these float
// operations bit for bit; this is FBGEMM's ReQuantizeOutput with a float bias,
// i.e. what torch's classic quantized Linear computes):
//   ab    = a_scale * b_scale[n]                         (float)
//   kUint8:       x = float(raw)
//                 if bias: x = x + bias[n] / ab
//                 q = nearbyint(x * (ab / c_scale)) + c_zp   (round half to even)
//                 q = clamp(q, relu ? c_zp : 0, 255); NaN -> c_zp
//   kDequantized: the kUint8 value q, written as float(q - c_zp) * c_scale
//                 (a quantized producer feeding a float edge: exactly what
//                 dequantizing its uint8 output would give)
//   kFloat:       y = float(raw) * ab; if bias: y = y + bias[n];
//                 if relu: y = y > 0 ? y : 0       (dynamic quantization)
//   kInt32:       raw (bias, scales and relu ignored)
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/isa.h"

namespace qtorch {
namespace kernels {

constexpr size_t kGemmBlockN = 16;  // output channels per packed block
constexpr size_t kGemmGroupK = 4;   // reduction indices per packed group
// Largest reduction length with exact int32 accumulation for any zero points
// (255 * 255 * K < 2^31).
constexpr size_t kMaxGemmK = 33025;

// Bytes of the packed weight for N output channels and reduction length K.
inline size_t packed_b_size(size_t n, size_t k) {
  return (n + kGemmBlockN - 1) / kGemmBlockN * kGemmBlockN * ((k + kGemmGroupK - 1) / kGemmGroupK * kGemmGroupK);
}

// Packs B ([N][K] int8, row stride ldb) into packed (packed_b_size(n, k)
// bytes) and writes col_sums[n] = sum_k B[n][k] (N values).
void pack_b(size_t n, size_t k, const int8_t* b, size_t ldb, int8_t* packed, int32_t* col_sums);
// The inverse: writes B ([N][K], row stride ldb) from packed.
void unpack_b(size_t n, size_t k, const int8_t* packed, int8_t* b, size_t ldb);

// Bytes from one block of 16 output channels to the next in a packed weight of reduction length k.
inline size_t packed_b_block_stride(size_t k) {
  return (k + kGemmGroupK - 1) / kGemmGroupK * kGemmGroupK * kGemmBlockN;
}

// A packed weight, as pack_b() left it, or a slice of its reduction (k_slice).
struct PackedB {
  const int8_t* data;       // group 0 of block 0
  const int32_t* col_sums;  // n values
  size_t n;                 // output channels
  size_t k;                 // reduction length
  size_t block_stride;      // bytes between blocks: packed_b_block_stride() of the whole weight's K
};

inline PackedB packed_b(const int8_t* data, const int32_t* col_sums, size_t n, size_t k) {
  return {data, col_sums, n, k, packed_b_block_stride(k)};
}

// Reduction indices [k0, k0 + k) of b (k0 a multiple of kGemmGroupK) as a weight of
// their own, for a GEMM whose A values outside them are all zero with a zero
// activation zero point: then every zero-point term vanishes (col_sums stay
// those of the whole weight and are multiplied by 0) and the skipped products
// are 0, so the result is the whole GEMM's, bit for bit, on the paths whose
// table says k_slices_keep_col_sums. Convolutions use it to skip kernel rows
// that lie entirely in the padding.
inline PackedB k_slice(const PackedB& b, size_t k0, size_t k) {
  return {b.data + k0 * kGemmBlockN, b.col_sums, b.n, k, b.block_stride};
}

enum class GemmOutput { kUint8, kDequantized, kFloat, kInt32 };

// Bytes of one output element.
inline size_t gemm_output_bytes(GemmOutput output) { return output == GemmOutput::kUint8 ? 1 : 4; }

struct OutputPipeline {
  int32_t a_zero_point = 0;  // activation zero point (0..255)
  float a_scale = 1.f;       // activation scale
  // Weight parameters: arrays indexed by absolute output channel n (N values)
  // if b_per_channel, else element 0 serves every channel. b_zero_points may be
  // null (all zero, the usual symmetric weights; skips the row sums).
  const float* b_scales = nullptr;
  const int32_t* b_zero_points = nullptr;
  bool b_per_channel = false;
  const float* bias = nullptr;  // float, N values, indexed by absolute n; null for none
  float c_scale = 1.f;          // output scale (kUint8, kDequantized)
  int32_t c_zero_point = 0;     // output zero point (kUint8, kDequantized)
  bool relu = false;
  GemmOutput output = GemmOutput::kUint8;
  // Float outputs (kDequantized, kFloat) larger than the caches: whole 64-byte
  // lines are written with non-temporal stores, which skip reading each line
  // before it is overwritten. A hint: the AVX-512 paths take it, and make the
  // stores visible before they return; the others ignore it.
  bool stream_float_output = false;
};

// Single-threaded GEMM over rows [0, m) and output columns [n_begin, n_end):
//   a:  row 0 of A (m rows, each K = b.k uint8 values, row stride lda bytes);
//       to compute rows [i0, i1), pass a + i0 * lda, c + i0 * ldc and m = i1 - i0.
//   b:  the packed weight; n_begin must be a multiple of kGemmBlockN and
//       n_begin <= n_end <= b.n (callers split N in blocks of 16 for threads).
//   c:  element (row 0, column 0) of the output, whose element type is uint8
//       (kUint8), float (kDequantized, kFloat) or int32 (kInt32); row stride ldc
//       in elements. Only columns [n_begin, n_end) of each row are written.
// Every path gives identical results, independent of how M and N are split.
// Requires b.k <= kMaxGemmK; m, n_end - n_begin or k may be 0 (with k == 0
// the accumulator is 0 and the pipeline still runs).
using GemmFn = void (*)(size_t m, size_t n_begin, size_t n_end, const uint8_t* a, size_t lda, const PackedB& b,
                        const OutputPipeline& out, void* c, size_t ldc);

// Float16-weight GEMM for dynamic Linear with float16 weights: float32
// activations x float16 weights, float32 accumulation.
//   C[m][n] = relu?(fma-chain_k(A[m][k] * float(B[n][k])) + bias[n])
// where the chain is acc = fma(A[m][k], B[n][k], acc) for k = 0, 1, ... from
// acc = 0 (one rounding per step, the same order on every path), then
// + bias[n] if bias is not null, then max(., 0) if relu (y > 0 ? y : 0).
// B is packed by pack_b_f16() as [ceil(N/16)][K][16] float16 bits (zero
// padded): 16 output channels of one k are contiguous, what one AVX-512 (or
// two AVX2, four NEON) registers hold after conversion. Rows and columns as
// for GemmFn (n_begin a multiple of 16, c points to element (0, 0)).
using GemmF16Fn = void (*)(size_t m, size_t n_begin, size_t n_end, const float* a, size_t lda,
                           const uint16_t* packed_b, size_t k, const float* bias, bool relu, float* c, size_t ldc);

// Elements (uint16 float16 bits) of the packed float16 weight.
inline size_t packed_b_f16_size(size_t n, size_t k) { return (n + kGemmBlockN - 1) / kGemmBlockN * kGemmBlockN * k; }
// Packs B ([N][K] float16 bits, row stride ldb) and back.
void pack_b_f16(size_t n, size_t k, const uint16_t* b, size_t ldb, uint16_t* packed);
void unpack_b_f16(size_t n, size_t k, const uint16_t* packed, uint16_t* b, size_t ldb);

// The range of dynamic Linear's float input, from which its quantization
// parameters come: *min, *max over x[0..n) (n >= 1); both NaN if any x is NaN.
using FloatRangeFn = void (*)(size_t n, const float* x, float* min, float* max);

// One piece of every row's reduction, read in place: row r's A values for
// weight reduction indices [k0, k0 + k) are the k bytes at a + r * lda (rows may
// overlap: a convolution reads kernel rows straight from its input).
struct GemmSegment {
  const uint8_t* a;
  size_t k0, k;  // multiples of kGemmGroupK
};

// C = pipeline(sum over the segments of A_s x B[:, k0 : k0 + k]) for m rows
// (row stride lda for every segment), columns [n_begin, n_end): what gemm_u8s8
// gives on rows that hold the segments' bytes and zeros elsewhere, bit for bit.
// The activation zero point must be 0 (the reduction indices outside the
// segments then add nothing to any term).
using GemmSegmentsFn = void (*)(size_t m, size_t n_begin, size_t n_end, const GemmSegment* segments,
                                size_t count, size_t lda, const PackedB& b, const OutputPipeline& out, void* c,
                                size_t ldc);

struct GemmUkernels {
  GemmFn gemm_u8s8;
  GemmF16Fn gemm_f32f16;
  FloatRangeFn float_range;
  // Whether gemm_u8s8 is exact on a k_slice() that keeps the whole weight's
  // col_sums: where they only enter multiplied by the activation zero point.
  // Not on NEON, whose dot products also undo a signed-activation trick with them.
  bool k_slices_keep_col_sums;
  // Null where not written (callers gather rows for gemm_u8s8 instead).
  GemmSegmentsFn gemm_u8s8_segments;
};

// The table for one ISA (which must be compiled into this build). amx maps to
// the avx512vnni kernels until the AMX kernel (kGemmAmx) has been verified on
// AMX hardware: its test (tests/cpp/gemm_test.cc) runs wherever the CPU has AMX.
const GemmUkernels& gemm_ukernels(Isa isa);
// The table for the active ISA.
inline const GemmUkernels& gemm_ukernels() { return gemm_ukernels(active_isa()); }

extern const GemmUkernels kGemmScalar;
#if QTORCH_ARCH_X86
extern const GemmUkernels kGemmAvx2;
extern const GemmUkernels kGemmAvx512Vnni;
// Untested (written without an AMX machine); not dispatched yet, see above.
extern const GemmUkernels kGemmAmx;
#elif QTORCH_ARCH_ARM64
extern const GemmUkernels kGemmNeon;
#endif

}  // namespace kernels
}  // namespace qtorch
