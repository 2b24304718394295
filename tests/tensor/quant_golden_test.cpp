// The scalar references must reproduce llama.cpp's own quantizers and generic dot products bit for bit
// (tests/data/tensor/llama_quant_golden.bin, generated from llama.cpp's C sources; see its README).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tensor/quant.h"
#include "tensor/quant_ref.h"

namespace fabula {
namespace {

constexpr int kRows = 4;
constexpr int kCols = 512;

std::map<std::string, std::vector<uint8_t>> load_golden() {
  std::map<std::string, std::vector<uint8_t>> out;
  std::ifstream in(std::string(FABULA_TEST_DATA) + "/tensor/llama_quant_golden.bin", std::ios::binary);
  uint32_t len = 0;
  while (in.read(reinterpret_cast<char*>(&len), 4)) {
    std::string name(len, '\0');
    in.read(name.data(), len);
    uint32_t size = 0;
    in.read(reinterpret_cast<char*>(&size), 4);
    std::vector<uint8_t> bytes(size);
    in.read(reinterpret_cast<char*>(bytes.data()), size);
    out[name] = std::move(bytes);
  }
  return out;
}

class QuantGolden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { golden_ = new std::map<std::string, std::vector<uint8_t>>(load_golden()); }
  static void TearDownTestSuite() { delete golden_; }
  const float* input(int row) const {
    return reinterpret_cast<const float*>(golden_->at("input").data()) + row * kCols;
  }
  static std::map<std::string, std::vector<uint8_t>>* golden_;
};
std::map<std::string, std::vector<uint8_t>>* QuantGolden::golden_ = nullptr;

TEST_F(QuantGolden, FileIsComplete) {
  ASSERT_EQ(golden_->at("input").size(), size_t{kRows * kCols * 4});
  for (const char* name : {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q4_K", "q5_K", "q6_K", "q8_K",
                           "dot_q4_0", "dot_q5_0", "dot_q8_0", "dot_q4_K", "dot_q5_K", "dot_q6_K", "q8_0_x86_act"}) {
    EXPECT_TRUE(golden_->count(name)) << name;
  }
}

TEST_F(QuantGolden, ReferenceQuantizersAreBitExact) {
  for (const char* name : {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q4_K", "q5_K", "q6_K", "q8_K"}) {
    const GgmlType type = *type_from_name(name);
    const size_t rb = row_bytes(type, kCols);
    const auto& want = golden_->at(name);
    ASSERT_EQ(want.size(), rb * kRows) << name;
    for (int r = 0; r < kRows; ++r) {
      std::vector<uint8_t> got(rb, 0);
      EXPECT_EQ(quantize_row(type, input(r), got.data(), kCols), rb);
      EXPECT_EQ(0, std::memcmp(got.data(), want.data() + r * rb, rb)) << name << " row " << r;
    }
  }
}

TEST_F(QuantGolden, ActivationQuantizerMatchesLlamaX86) {
  const size_t rb = row_bytes(GgmlType::kQ8_0, kCols);
  const auto& want = golden_->at("q8_0_x86_act");
  for (int r = 0; r < kRows; ++r) {
    std::vector<uint8_t> got(rb);
    quantize_row_q8_0_act_ref(input(r), reinterpret_cast<BlockQ8_0*>(got.data()), kCols);
    EXPECT_EQ(0, std::memcmp(got.data(), want.data() + r * rb, rb)) << "row " << r;
  }
}

TEST_F(QuantGolden, ReferenceDotsAreBitExact) {
  for (const char* name : {"q4_0", "q5_0", "q8_0", "q4_K", "q5_K", "q6_K"}) {
    const GgmlType type = *type_from_name(name);
    const GgmlType act = vec_dot_type(type);
    const float* want = reinterpret_cast<const float*>(golden_->at(std::string("dot_") + name).data());
    for (int r = 0; r < kRows; ++r) {
      std::vector<uint8_t> w(row_bytes(type, kCols)), a(row_bytes(act, kCols));
      quantize_row(type, input(r), w.data(), kCols);
      quantize_row(act, input((r + 1) % kRows), a.data(), kCols);
      EXPECT_EQ(vec_dot_ref(type, kCols, w.data(), a.data()), want[r]) << name << " row " << r;
    }
  }
}

}  // namespace
}  // namespace fabula
