// Softmax weights below FLT_MIN (a score more than ~87 below its row's maximum) as exact zeros, shared by the
// softmax (activations.cpp) and the prefill attention (kv_attention.cpp). As subnormals they weigh nothing a float
// sum keeps, but every multiply-add that takes one costs a microcode assist on Intel cores: on the synth 26B's
// random scores the value sum (pv_tile) took 81% of the prefill attention's samples against the scores' 10%, for
// the same count of FMAs (perf, pp1500 on an AVX-512 Xeon). The scalar references keep the subnormals.
// Re-included once per Highway target (foreach_target), like quant-inl.h.
#if defined(FABULA_TENSOR_FLUSH_SUBNORMAL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FABULA_TENSOR_FLUSH_SUBNORMAL_INL_H_
#undef FABULA_TENSOR_FLUSH_SUBNORMAL_INL_H_
#else
#define FABULA_TENSOR_FLUSH_SUBNORMAL_INL_H_
#endif

#include <hwy/highway.h>

#include <limits>

HWY_BEFORE_NAMESPACE();
namespace fabula {
namespace HWY_NAMESPACE {

// The lanes of v below FLT_MIN (subnormals, zeros and anything negative) as zeros.
template <class D>
HWY_INLINE hwy::HWY_NAMESPACE::Vec<D> flush_subnormal(D d, hwy::HWY_NAMESPACE::Vec<D> v) {
  namespace hn = hwy::HWY_NAMESPACE;
  return hn::IfThenZeroElse(hn::Lt(v, hn::Set(d, std::numeric_limits<float>::min())), v);
}

}  // namespace HWY_NAMESPACE
}  // namespace fabula
HWY_AFTER_NAMESPACE();

#endif  // FABULA_TENSOR_FLUSH_SUBNORMAL_INL_H_ toggle
