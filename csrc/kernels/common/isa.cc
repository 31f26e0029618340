#include "common/isa.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#if QTORCH_ARCH_X86
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#elif QTORCH_ARCH_ARM64
#include <sys/auxv.h>
#endif

namespace qtorch {
namespace {

#if QTORCH_ARCH_X86
struct X86Features {
  bool avx2 = false;
  bool avx512vnni = false;  // with F, BW, VL, DQ: what the avx512vnni path uses
  bool amx_int8 = false;    // tiles usable: CPU bits, OS state, and permission
};

uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

// Linux keeps AMX tile data off until a process asks for it.
bool request_amx_permission() {
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

X86Features detect_x86() {
  X86Features f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  const bool fma = (c >> 12) & 1;
  const bool f16c = (c >> 29) & 1;
  if (!osxsave || __get_cpuid_max(0, nullptr) < 7) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = (b >> 5) & 1;
  const bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
  const bool avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
  const bool vnni = (c >> 11) & 1;
  const bool amx_tile = (d >> 24) & 1, amx_int8 = (d >> 25) & 1;
  f.avx2 = os_avx && avx2 && fma && f16c;
  f.avx512vnni = f.avx2 && os_avx512 && avx512f && avx512dq && avx512bw && avx512vl && vnni;
  f.amx_int8 = f.avx512vnni && os_amx && amx_tile && amx_int8 && request_amx_permission();
  return f;
}

const X86Features& x86_features() {
  static const X86Features features = detect_x86();
  return features;
}
#endif

std::mutex g_isa_mutex;
std::atomic<int> g_active{-1};

Isa resolve_default() {
  const char* env = std::getenv("QTORCH_ISA");
  if (env != nullptr && *env != '\0') {
    const Isa isa = parse_isa(env);
    if (!isa_supported(isa)) {
      throw std::invalid_argument(std::string("QTORCH_ISA=") + env +
                                  " names a path this CPU cannot run; supported here: " +
                                  [] {
                                    std::string s;
                                    for (Isa i : supported_isas()) s += std::string(s.empty() ? "" : ", ") + isa_name(i);
                                    return s;
                                  }());
    }
    return isa;
  }
  return supported_isas().back();
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512Vnni: return "avx512vnni";
    case Isa::kAmx: return "amx";
    case Isa::kNeon: return "neon";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Vnni, Isa::kAmx, Isa::kNeon}) {
    if (name == isa_name(isa)) return isa;
  }
  throw std::invalid_argument("unknown ISA '" + name +
                              "': expected one of scalar, avx2, avx512vnni, amx, neon");
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return true;
#if QTORCH_ARCH_X86
    case Isa::kAvx2: return x86_features().avx2;
    case Isa::kAvx512Vnni: return x86_features().avx512vnni;
    case Isa::kAmx: return x86_features().amx_int8;
#elif QTORCH_ARCH_ARM64
    case Isa::kNeon: return true;
#endif
    default: return false;
  }
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kNeon, Isa::kAvx2, Isa::kAvx512Vnni, Isa::kAmx}) {
    if (isa_supported(isa)) out.push_back(isa);
  }
  return out;
}

Isa active_isa() {
  int current = g_active.load(std::memory_order_acquire);
  if (current >= 0) return static_cast<Isa>(current);
  std::lock_guard<std::mutex> lock(g_isa_mutex);
  current = g_active.load(std::memory_order_relaxed);
  if (current < 0) {
    current = static_cast<int>(resolve_default());
    g_active.store(current, std::memory_order_release);
  }
  return static_cast<Isa>(current);
}

void set_active_isa(Isa isa) {
  if (!isa_supported(isa)) {
    throw std::invalid_argument(std::string("ISA '") + isa_name(isa) + "' cannot run on this CPU");
  }
  std::lock_guard<std::mutex> lock(g_isa_mutex);
  g_active.store(static_cast<int>(isa), std::memory_order_release);
}

bool neon_has_dotprod() {
#if QTORCH_ARCH_ARM64
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
  static const bool has = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  return has;
#else
  return false;
#endif
}

}  // namespace qtorch
