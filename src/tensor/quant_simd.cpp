// Highway dynamic dispatch for the kernels in quant-inl.h: each target fills a KernelTable with its SIMD
// kernels on top of the scalar references; the process picks the best table once.
// AVX3_DL (AVX-512 VNNI) is opt-in in Highway 1.0.3; VNNI is what makes int8 dots cheap.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/quant_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "tensor/kernels.h"
#include "tensor/quant-inl.h"

HWY_BEFORE_NAMESPACE();
namespace fabula {
namespace HWY_NAMESPACE {

void fill_kernels(KernelTable* t) {
  fill_simd_kernels(t);
  t->target = hwy::TargetName(HWY_TARGET);
}

}  // namespace HWY_NAMESPACE
}  // namespace fabula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fabula {

HWY_EXPORT(fill_kernels);

KernelTable kernels_for_current_target() {
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  KernelTable t = scalar_kernels();
  HWY_DYNAMIC_DISPATCH(fill_kernels)(&t);
  return t;
}

std::vector<int64_t> kernel_targets() { return hwy::SupportedAndGeneratedTargets(); }

const KernelTable& best_kernels() {
  static const KernelTable table = kernels_for_current_target();
  return table;
}

}  // namespace fabula
#endif  // HWY_ONCE
