// Gemma 4 model (weights bound from a GGUF file) and Session (KV cache, scratch buffers, forward pass).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "format/gguf.h"
#include "model/gemma4/hparams.h"
#include "model/gemma4/weights.h"
#include "tensor/matmul.h"
#include "tensor/thread_pool.h"

namespace fabula {

// A loaded model: owns the mapped GGUF file; weights borrow it. Immutable after load, shared by sessions.
class Model {
 public:
  static Result<std::unique_ptr<Model>> load(const std::string& path);
  static Result<std::unique_ptr<Model>> from_gguf(GgufFile file);

  const Gemma4HParams& hparams() const { return hp_; }
  const Gemma4Weights& weights() const { return w_; }
  const GgufFile& gguf() const { return file_; }  // tokenizer.* and general.* metadata for the text layer
  int64_t n_vocab() const { return hp_.n_vocab; }

 private:
  Model(GgufFile file) : file_(std::move(file)) {}
  GgufFile file_;
  Gemma4HParams hp_;
  Gemma4Weights w_;
};

struct SessionOptions {
  int64_t n_ctx = 4096;    // positions the session can hold (KV cache of full layers)
  int64_t n_ubatch = 256;  // tokens per forward step of a prompt (scratch buffers and sliding ring size)
  int n_threads = 0;       // used when no pool is given; <= 0: physical cores
};

enum class LogitsMode { kLast, kAll, kNone };

// Called with the residual stream: index 0 = scaled embeddings, index l + 1 = output of layer l,
// index n_layer + 1 = after the final norm. rows = tokens of this step, row-major [rows][n_embd].
using HiddenHook = std::function<void(int index, int64_t first_pos, const float* data, int64_t rows, int64_t n_embd)>;

// One conversation's state over a Model: KV cache (full layers: n_ctx slots; sliding layers: a ring of
// window - 1 + n_ubatch slots) and all scratch buffers, allocated once. Not thread-safe; move-only.
class Session {
 public:
  Session(const Model& model, SessionOptions options = {}, ThreadPool* pool = nullptr);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Appends `tokens` at positions n_past()...; runs them through the model in steps of n_ubatch.
  // kLast: logits() is the last token's row; kAll: one row per token of this call; kNone: no logits.
  Status decode(std::span<const int32_t> tokens, LogitsMode mode = LogitsMode::kLast);

  // [rows][n_vocab] from the last decode (rows = 1 for kLast).
  std::span<const float> logits() const;
  int64_t logits_rows() const;
  std::span<const float> last_logits() const;  // the final row

  int64_t n_past() const;
  int64_t n_ctx() const;
  void reset();
  // Forgets positions >= n (rollback). Fails if a sliding layer's ring has already overwritten positions
  // that queries at n would need.
  Status truncate(int64_t n);

  void set_hidden_hook(HiddenHook hook);
  const Model& model() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace fabula
