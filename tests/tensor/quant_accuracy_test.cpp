// Quantization accuracy: llama.cpp's test-quantize-fns checks replicated exactly (same data generator, same
// error measures and thresholds), plus relative RMSE on gaussian data with bounds from the rounding-error model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <random>
#include <vector>

#include "tensor/quant.h"
#include "tensor/quant_ref.h"

namespace fabula {
namespace {

// tests/test-quantize-fns.cpp constants.
constexpr float kMaxQuantizationTotalError = 0.002f;
constexpr float kMaxQuantizationReferenceError = 0.0001f;
constexpr float kMaxDotProductError = 0.02f;

void generate_data(float offset, size_t n, float* dst) {
  for (size_t i = 0; i < n; i++) dst[i] = 0.1f + 2 * cosf(static_cast<float>(i) + offset);
}

// Note: llama.cpp's "rmse" is sqrt(sum of squares) / n, not / sqrt(n); kept as is so the thresholds apply.
float array_rmse(const float* a1, const float* a2, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    const double diff = a1[i] - a2[i];
    sum += diff * diff;
  }
  return static_cast<float>(std::sqrt(sum)) / static_cast<float>(n);
}

const GgmlType kWeightTypes[] = {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1,
                                 GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K,
                                 GgmlType::kF16,  GgmlType::kBF16, GgmlType::kF32};

class LlamaQuantizeFns : public ::testing::TestWithParam<GgmlType> {};

TEST_P(LlamaQuantizeFns, TotalErrorReferenceErrorAndDotError) {
  const GgmlType type = GetParam();
  const size_t test_size = 32 * 128;
  std::vector<float> data(test_size), data2(test_size);
  generate_data(0.0f, test_size, data.data());
  generate_data(1.0f, test_size, data2.data());

  // total_quantization_error: from_float then to_float.
  std::vector<uint8_t> q(row_bytes(type, test_size));
  std::vector<float> out(test_size), out_ref(test_size);
  quantize_row(type, data.data(), q.data(), static_cast<int64_t>(test_size));
  dequantize_row(type, q.data(), out.data(), static_cast<int64_t>(test_size));
  EXPECT_LT(array_rmse(data.data(), out.data(), test_size), kMaxQuantizationTotalError) << type_name(type);

  // reference_quantization_error: the dispatched path against the scalar reference.
  std::vector<uint8_t> q_ref(q.size());
  quantize_row_ref(type, data.data(), q_ref.data(), static_cast<int64_t>(test_size));
  dequantize_row_ref(type, q_ref.data(), out_ref.data(), static_cast<int64_t>(test_size));
  EXPECT_LT(array_rmse(out.data(), out_ref.data(), test_size), kMaxQuantizationReferenceError) << type_name(type);

  // dot_product_error: weight quantized by from_float, activation by vec_dot_type's from_float.
  const GgmlType act = vec_dot_type(type);
  std::vector<uint8_t> qa(row_bytes(act, test_size));
  quantize_row_act_ref(act, data2.data(), qa.data(), static_cast<int64_t>(test_size));
  const float result = vec_dot(type, static_cast<int64_t>(test_size), q.data(), qa.data());
  double dot_ref = 0;
  for (size_t i = 0; i < test_size; i++) dot_ref += data[i] * data2[i];
  EXPECT_LT(std::fabs(result - static_cast<float>(dot_ref)) / test_size, kMaxDotProductError) << type_name(type);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, LlamaQuantizeFns, ::testing::ValuesIn(kWeightTypes),
                         [](const auto& info) { return std::string(type_name(info.param)); });

TEST(LlamaQuantizeFns, VecDotF32OddLengths) {
  for (int n : {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 67, 127, 129, 193, 255, 1023}) {
    std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
    generate_data(0.0f, a.size(), a.data());
    generate_data(1.0f, b.size(), b.data());
    double ref = 0;
    for (int i = 0; i < n; ++i) ref += a[i] * b[i];
    EXPECT_LT(std::fabs(vec_dot(GgmlType::kF32, n, a.data(), b.data()) - static_cast<float>(ref)) / n,
              kMaxQuantizationReferenceError) << n;
  }
}

// Relative RMSE (rmse / sigma) on N(0,1) data. For a uniform rounding error of step s the RMSE is s/sqrt(12).
// Symmetric 32-blocks: s = amax/(levels/2) with E[max |x| of 32 gaussians] ~ 2.4σ, so
//   Q8_0 ~ 2.4/127/3.46 = 0.0055, Q5_0 ~ 2.4/16/3.46 = 0.043, Q4_0 ~ 2.4/8/3.46 = 0.087.
// Affine (min/max) blocks spread range ~4.2σ over 2^b - 1 steps: Q4_1 ~ 0.081, Q5_1 ~ 0.039.
// K-quants search the scale per 16/32-block (better than min/max), measured: Q4_K ~0.072, Q5_K ~0.036,
// Q6_K ~0.018; f16/bf16: 2^-11 and 2^-8 relative steps. The bounds add ~20% to the model/measurement; a broken layout gives errors of order 1.
struct RmseCase {
  GgmlType type;
  double bound;
};

TEST(QuantAccuracy, GaussianRelativeRmse) {
  const RmseCase cases[] = {{GgmlType::kQ8_0, 0.0066}, {GgmlType::kQ5_0, 0.052}, {GgmlType::kQ4_0, 0.104},
                            {GgmlType::kQ5_1, 0.047}, {GgmlType::kQ4_1, 0.097}, {GgmlType::kQ4_K, 0.087},
                            {GgmlType::kQ5_K, 0.044}, {GgmlType::kQ6_K, 0.022}, {GgmlType::kF16, 3e-4},
                            {GgmlType::kBF16, 2.3e-3}};
  const int64_t n = 256 * 64;
  std::mt19937 rng(42);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (auto& v : x) v = g(rng);
  for (const auto& c : cases) {
    std::vector<uint8_t> q(row_bytes(c.type, static_cast<uint64_t>(n)));
    quantize_row(c.type, x.data(), q.data(), n);
    dequantize_row(c.type, q.data(), y.data(), n);
    double se = 0, ss = 0;
    for (int64_t i = 0; i < n; ++i) {
      se += (x[i] - y[i]) * (x[i] - y[i]);
      ss += x[i] * x[i];
    }
    const double rel = std::sqrt(se / ss);
    EXPECT_LT(rel, c.bound) << type_name(c.type);
    EXPECT_GT(rel, c.bound / 20) << type_name(c.type) << ": suspiciously exact";
    std::printf("%-5s relative rmse %.5f (bound %.4f)\n", std::string(type_name(c.type)).c_str(), rel, c.bound);
  }
}

}  // namespace
}  // namespace fabula
