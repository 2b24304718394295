// A model and its sessions, whatever the family: Model (weights bound from a GGUF file, immutable, shared) and
// Session (KV cache, scratch buffers, forward pass). Families implement Model and SessionState and register in
// model/family.cpp; the rest of the code sees only this header.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "format/gguf.h"
#include "tensor/kv_types.h"
#include "tensor/thread_pool.h"

namespace fabula {

// Where the weights live. Read: a copy in anonymous memory, in 2 MiB pages from the first touch. Mapped: the page
// cache's own pages, whose size depends on how the file got there (readahead's large folios or 4 KiB pages). Decode
// streams every weight once per token, and on the synth 26B-A4B Q4_K_M (2-core Zen 3 VM, 2 threads, paired with a
// read of the same memory kind, `fabula bench --bound-probe 16`, alternating) read weights ran at 85.9 / 84.1 /
// 85.5 / 82.8% of the read bound and mapped ones at 78.6 / 75.1 / 78.2 / 70.0%. Reading costs a load of the whole
// file up front (~10-21 s for 16 GB there, against ~1-5 s to map a cached file) and memory the page cache cannot
// share with another process.
enum class WeightMemory {
  kAuto,    // read when the file fits in the available memory with room to spare, else map (the default)
  kMapped,  // map the file (--mmap; llama.cpp's default)
  kRead,    // read the file (--no-mmap)
};

// How the weights get into memory (llama.cpp's --mmap / --no-mmap and --mlock).
struct ModelLoadOptions {
  WeightMemory weights = WeightMemory::kAuto;
  bool mlock = false;  // pin the weights in RAM; a refusal (RLIMIT_MEMLOCK) is a warning, as in llama.cpp
};

// kAuto's choice for `file_bytes` of weights with `available` bytes of memory: read when the copy leaves a tenth of
// it and 1 GiB beside (the KV cache and the buffers; the page cache gives way to the copy).
bool read_weights_into_memory(uint64_t file_bytes, uint64_t available);

struct SessionOptions {
  int64_t n_ctx = 4096;    // positions the session can hold (KV cache of full layers)
  // Tokens per forward step of a prompt (scratch buffers and sliding ring size). 1536 takes a scene's first beat
  // (about 1,500 tokens) in one step: on the 26B-A4B Q4_K_M, 2 threads, its prefill ran at 67 t/s with 256,
  // 81 with 512, 94 with 1024 and 107 with 1536 (bench_first_beat, FABULA_UBATCH): every step re-packs each weight
  // tile for the GEMM and gives each routed expert more tokens. Costs scratch (about 0.5 GB there) and
  // window - 1 + 1536 ring slots per sliding layer.
  int64_t n_ubatch = 1536;
  int n_threads = 0;       // used when no pool is given; <= 0: physical cores
  // KV cache storage (llama.cpp's --cache-type-k / --cache-type-v; docs/KV_CACHE.md). f32 is exact.
  KvCacheTypes cache_type{};
};

enum class LogitsMode { kLast, kAll, kNone };

// Called with the residual stream: index 0 = scaled embeddings, index l + 1 = output of layer l,
// index n_layer + 1 = after the final norm. rows = tokens of this step, row-major [rows][n_embd].
using HiddenHook = std::function<void(int index, int64_t first_pos, const float* data, int64_t rows, int64_t n_embd)>;

// One conversation's state as a family implements it: the family's subclass runs decode (its forward pass) and
// checks truncation against its caches; the fields here are what Session reads without a virtual call.
struct SessionState {
  virtual ~SessionState() = default;
  virtual Status decode(std::span<const int32_t> tokens, LogitsMode mode) = 0;
  virtual Status truncate(int64_t n) = 0;
  // Takes over `other`'s positions (same model, same n_ctx and n_ubatch), converting each stored key and value to
  // this session's cache types. Lets a benchmark fill a long context once and measure every cache type on it.
  virtual Status copy_cache_from(const SessionState& other) = 0;

  int64_t n_ctx = 0;
  int64_t n_past = 0;
  std::vector<float> logits;  // [logits_rows][n_vocab] of the last decode
  int64_t logits_rows = 0;
  HiddenHook hook;
};

class Session;

// One sequence's share of a batched decode: its tokens go at positions session->n_past()...
struct BatchItem {
  Session* session = nullptr;
  std::span<const int32_t> tokens;
  LogitsMode mode = LogitsMode::kLast;  // as Session::decode, for this sequence's tokens
};

struct BatchOptions {
  int64_t n_batch = 512;  // tokens per forward step, all sequences together (llama.cpp's n_ubatch)
  int n_threads = 0;      // used when no pool is given; <= 0: physical cores
};

// A family's batched decode: scratch buffers for n_batch rows, shared by every step it runs.
struct BatchState {
  virtual ~BatchState() = default;
  virtual Status decode(std::span<const BatchItem> items) = 0;
};

// What callers outside the family need to know about a model.
struct ModelInfo {
  std::string architecture;  // general.architecture
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_ctx_train = 0;  // 0 when the file does not say
  int64_t n_expert = 0;     // routed experts (0: a dense model) and how many a token uses
  int64_t n_expert_used = 0;
};

// A loaded model: owns the mapped GGUF file; weights borrow it. Immutable after load, shared by sessions.
class Model {
 public:
  virtual ~Model() = default;
  // `path` may be the first file of a split model (NAME-00001-of-0000N.gguf): the other parts load with it.
  static Result<std::unique_ptr<Model>> load(const std::string& path, const ModelLoadOptions& options = {});
  // Finds the family by general.architecture (model/family.h) and lets it bind the weights.
  static Result<std::unique_ptr<Model>> from_gguf(GgufFile file);

  const ModelInfo& info() const { return info_; }
  const GgufFile& gguf() const { return file_; }  // tokenizer.* and general.* metadata for the text layer
  int64_t n_vocab() const { return info_.n_vocab; }

  virtual std::unique_ptr<SessionState> new_session(const SessionOptions& options, ThreadPool* pool) const = 0;
  virtual std::unique_ptr<BatchState> new_batch(const BatchOptions& options, ThreadPool* pool) const = 0;

 protected:
  explicit Model(GgufFile file) : file_(std::move(file)) {}
  GgufFile file_;
  ModelInfo info_;
};

// One conversation's state over a Model: KV cache and all scratch buffers, allocated once (for Gemma 4: full layers
// n_ctx slots, sliding layers a ring of window - 1 + n_ubatch slots). Not thread-safe; move-only.
class Session {
 public:
  Session(const Model& model, SessionOptions options = {}, ThreadPool* pool = nullptr);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Appends `tokens` at positions n_past()...; runs them through the model in steps of n_ubatch.
  // kLast: logits() is the last token's row; kAll: one row per token of this call; kNone: no logits.
  Status decode(std::span<const int32_t> tokens, LogitsMode mode = LogitsMode::kLast) { return s_->decode(tokens, mode); }

  // [rows][n_vocab] from the last decode (rows = 1 for kLast).
  std::span<const float> logits() const;
  int64_t logits_rows() const { return s_->logits_rows; }
  std::span<const float> last_logits() const;  // the final row

  int64_t n_past() const { return s_->n_past; }
  int64_t n_ctx() const { return s_->n_ctx; }
  void reset() { s_->n_past = 0; }
  // Forgets positions >= n (rollback). Fails if a sliding layer's ring has already overwritten positions
  // that queries at n would need.
  Status truncate(int64_t n) { return s_->truncate(n); }
  Status copy_cache_from(const Session& other) { return s_->copy_cache_from(*other.s_); }

  void set_hidden_hook(HiddenHook hook) { s_->hook = std::move(hook); }
  const Model& model() const { return *model_; }
  SessionState& state() { return *s_; }  // for the family's batched decode

 private:
  const Model* model_;
  std::unique_ptr<SessionState> s_;
};

// Continuous batching: one forward pass over the tokens of several Sessions of one Model, each with its own KV
// cache and positions. Products read each weight once per step for all rows; a routed expert runs once over every
// row that chose it. Results match each Session decoding alone (batch invariance, up to float summation order).
// Not thread-safe; the sessions must not decode elsewhere meanwhile.
class Batch {
 public:
  Batch(const Model& model, BatchOptions options = {}, ThreadPool* pool = nullptr);
  ~Batch();
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;

  // Decodes every item's tokens, n_batch rows per step: each step takes up to the session's n_ubatch tokens of
  // each item in order (a prompt longer than that spreads over several steps). Afterwards each session's logits()
  // hold its item's rows as Session::decode would leave them. One item runs through Session::decode itself (the
  // single-sequence path keeps its speed). Items with no tokens are skipped; a session may appear once; sessions
  // with a hidden hook cannot be batched. On error no session has advanced unless the error says so.
  Status decode(std::span<const BatchItem> items);
  int64_t n_batch() const { return options_.n_batch; }

 private:
  const Model* model_;
  BatchOptions options_;
  std::unique_ptr<BatchState> s_;
};

}  // namespace fabula
