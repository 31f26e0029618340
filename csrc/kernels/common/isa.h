// Instruction-set paths and their run-time selection.
//
// Every kernel family has one implementation per ISA; which one runs is decided
// once per process from CPUID/XGETBV (x86) or getauxval (Arm), unless the
// QTORCH_ISA environment variable or set_active_isa() names another.
#pragma once

#include <string>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#define QTORCH_ARCH_X86 1
#elif defined(__aarch64__)
#define QTORCH_ARCH_ARM64 1
#endif

namespace qtorch {

enum class Isa { kScalar, kAvx2, kAvx512Vnni, kAmx, kNeon };

const char* isa_name(Isa isa);

// Parses "scalar", "avx2", "avx512vnni", "amx" or "neon"; throws
// std::invalid_argument naming the accepted values otherwise.
Isa parse_isa(const std::string& name);

// True if this build has the path and this CPU (and OS) can run it.
bool isa_supported(Isa isa);

// Supported paths, slowest first; the last one is the default.
std::vector<Isa> supported_isas();

// The path kernels use. The first call resolves QTORCH_ISA (or the best
// supported path) and throws std::invalid_argument if it names a path this CPU
// cannot run.
Isa active_isa();

// Forces a path for the rest of the process (tests compare paths this way).
// Throws std::invalid_argument if this CPU cannot run it.
void set_active_isa(Isa isa);

// Arm only: whether the NEON path may use the dot-product instructions.
bool neon_has_dotprod();

}  // namespace qtorch
