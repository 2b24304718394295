// Where the loader puts the weights: read into anonymous memory when the file fits in the available memory with
// room to spare, mapped otherwise or when asked (--mmap), read when asked (--no-mmap); the logits do not depend on it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "model_test_util.h"

namespace fabula {
namespace {

using namespace model_test;

TEST(WeightMemory, AutoReadsOnlyWithATenthAndOneGibLeft) {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  EXPECT_TRUE(read_weights_into_memory(10 * kGiB, 12 * kGiB));
  EXPECT_FALSE(read_weights_into_memory(10 * kGiB, 12 * kGiB - 1));
  // The synth 26B-A4B Q4_K_M (16.79 GB) on a 24 GiB machine with 24.8 GB available, and with 19 GB.
  EXPECT_TRUE(read_weights_into_memory(16'793'896'192, 24'800'000'000));
  EXPECT_FALSE(read_weights_into_memory(16'793'896'192, 19'000'000'000));
  EXPECT_FALSE(read_weights_into_memory(1, 0));
}

TEST(WeightMemory, EachPlacementLoadsTheSameModel) {
  ScratchDir dir("weight_memory");
  const std::string path = convert_tiny(dir, "f32");
  struct Case {
    WeightMemory weights;
    const char* available;  // FABULA_MEM_AVAILABLE
    bool copy;
  };
  const Case cases[] = {{WeightMemory::kAuto, "64G", true},  {WeightMemory::kAuto, "1M", false},
                        {WeightMemory::kMapped, "64G", false}, {WeightMemory::kRead, "1M", true}};
  std::vector<float> first;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string("FABULA_MEM_AVAILABLE=") + c.available + " weights " +
                 std::to_string(static_cast<int>(c.weights)));
    ::setenv("FABULA_MEM_AVAILABLE", c.available, 1);
    auto model = Model::load(path, ModelLoadOptions{.weights = c.weights});
    ::unsetenv("FABULA_MEM_AVAILABLE");
    ASSERT_TRUE(model.ok()) << model.error().to_string();
    EXPECT_EQ((*model)->gguf().file().is_copy(), c.copy);
    SessionOptions so;
    so.n_ctx = 64;
    so.n_threads = 2;
    const std::vector<float> logits = all_logits(**model, {2, 17, 300, 41, 9}, so);
    ASSERT_FALSE(logits.empty());
    if (first.empty()) first = logits;
    ASSERT_EQ(logits.size(), first.size());
    EXPECT_EQ(std::memcmp(logits.data(), first.data(), logits.size() * sizeof(float)), 0);
  }
}

}  // namespace
}  // namespace fabula
