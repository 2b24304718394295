// Highway SIMD bodies of the quant kernels (re-included once per target by quant_simd.cpp). Each kernel has a
// scalar oracle in quant_ref.h; tests/tensor/quant_simd_test.cpp compares every attainable target with it.
#if defined(FABULA_TENSOR_QUANT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FABULA_TENSOR_QUANT_INL_H_
#undef FABULA_TENSOR_QUANT_INL_H_
#else
#define FABULA_TENSOR_QUANT_INL_H_
#endif

#include <hwy/highway.h>

#include "tensor/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace fabula {
namespace HWY_NAMESPACE {

// Overrides the scalar entries of `t` with this target's SIMD kernels.
inline void fill_simd_kernels(KernelTable* t) { (void)t; }

}  // namespace HWY_NAMESPACE
}  // namespace fabula
HWY_AFTER_NAMESPACE();

#endif  // include guard
