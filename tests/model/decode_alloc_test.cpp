// The decode loop allocates nothing once the session is warm: every buffer is sized at construction or on the
// first batch, so a long game never pays for the allocator mid-token. Counts global operator new calls, on every
// thread, during single-token decodes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "model/model.h"
#include "tensor/thread_pool.h"

namespace {
std::atomic<long> g_news{0};
}  // namespace

#if !defined(__SANITIZE_ADDRESS__)
// Replaced for this test program only; forwards to malloc so every other test behaves as before.
void* operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#define FABULA_COUNTS_ALLOCATIONS 1
#endif

namespace fabula {
namespace {

TEST(DecodeLoop, SingleTokenDecodesDoNotAllocate) {
#ifndef FABULA_COUNTS_ALLOCATIONS
  GTEST_SKIP() << "operator new is not replaced under AddressSanitizer";  // skip-ok: the sanitizer build owns operator new
#else
  auto model = Model::load(std::string(FABULA_SOURCE_DIR) + "/models/fabula-demo-v1.gguf");
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  ThreadPool pool(2);  // the workers' side of every parallel region is counted too
  SessionOptions options;
  options.n_ctx = 256;
  Session session(**model, options, &pool);
  const std::vector<int32_t> prompt = {2, 106, 164, 108, 304, 563, 496, 1794};  // demo vocabulary: 2273 ids
  const Status first = session.decode(prompt);
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  int32_t next = 1000;
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(session.decode(std::span<const int32_t>(&next, 1)).ok());  // warm

  const long before = g_news.load();
  for (int i = 0; i < 16; ++i) {
    next = 1000 + 61 * i;
    ASSERT_TRUE(session.decode(std::span<const int32_t>(&next, 1)).ok());
  }
  EXPECT_EQ(g_news.load() - before, 0) << "allocations during 16 single-token decodes";
  EXPECT_EQ(session.n_past(), static_cast<int64_t>(prompt.size()) + 18);
#endif
}

}  // namespace
}  // namespace fabula
