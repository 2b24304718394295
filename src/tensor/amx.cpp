#include "tensor/amx.h"

#include <atomic>
#include <cstdlib>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace fabula {
namespace {

#if defined(__x86_64__) && defined(__linux__)
constexpr unsigned kAmxTileBit = 1u << 24;  // cpuid leaf 7, edx
constexpr unsigned kAmxInt8Bit = 1u << 25;
constexpr unsigned long long kXcr0TileBits = (1ull << 17) | (1ull << 18);  // XTILECFG, XTILEDATA
constexpr long kArchReqXcompPerm = 0x1023;
constexpr long kXfeatureXtiledata = 18;

bool detect_amx() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  if ((edx & (kAmxTileBit | kAmxInt8Bit)) != (kAmxTileBit | kAmxInt8Bit)) return false;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || (ecx & bit_OSXSAVE) == 0) return false;
  unsigned lo = 0, hi = 0;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  const unsigned long long xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  if ((xcr0 & kXcr0TileBits) != kXcr0TileBits) return false;
  // Without this grant the first tile instruction raises SIGILL (Linux 5.16+); it covers every thread.
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}
#else
bool detect_amx() { return false; }
#endif

std::atomic<bool>& allowed_flag() {
  static std::atomic<bool> flag{[] {
    const char* env = std::getenv("FABULA_NO_AMX");
    return env == nullptr || env[0] == '\0' || env[0] == '0';
  }()};
  return flag;
}

}  // namespace

bool amx_usable() {
  static const bool usable = detect_amx();
  return usable;
}

bool amx_enabled() { return amx_allowed() && amx_usable(); }

bool amx_allowed() { return allowed_flag().load(); }

void set_amx_allowed(bool allowed) { allowed_flag().store(allowed); }

}  // namespace fabula
