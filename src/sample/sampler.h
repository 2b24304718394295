// Sampler chain with llama.cpp semantics: logit bias -> penalties -> top-k -> top-p -> min-p -> temperature -> draw.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace fabula {

struct SamplerParams {
  float temperature = 1.0f;        // <= 0: greedy argmax (ties -> lowest id)
  int32_t top_k = 0;               // <= 0: off
  float top_p = 1.0f;              // >= 1: off
  float min_p = 0.0f;              // <= 0: off
  float repeat_penalty = 1.0f;     // 1: off. logit > 0 ? logit / r : logit * r, for ids in the window
  float presence_penalty = 0.0f;   // logit -= presence if the id occurs in the window
  float frequency_penalty = 0.0f;  // logit -= frequency * count
  int32_t penalty_last_n = 64;     // window of accepted ids for penalties; 0: off; -1: everything accepted
  uint64_t seed = 0;
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logit; -INFINITY bans a token
};

struct TokenLogit {
  int32_t id;
  float logit;
};

// Candidates [0, size) of a buffer sized to the vocabulary (reused between calls: no allocation per token).
struct CandidateSet {
  std::vector<TokenLogit> items;
  size_t size = 0;
  bool sorted = false;  // items[0, size) by logit descending (ties: lower id first)

  void fill(std::span<const float> logits);
  std::span<TokenLogit> view() { return {items.data(), size}; }
};

// The chain's steps, usable one by one (tests, constrained decoding). All keep at least `min_keep` candidates.
void sample_top_k(CandidateSet& c, int32_t k);
void sample_top_p(CandidateSet& c, float p, size_t min_keep = 1);
void sample_min_p(CandidateSet& c, float p, size_t min_keep = 1);
void sample_temperature(CandidateSet& c, float temperature);
// counts: (id, occurrences in the window) pairs.
void sample_penalties(CandidateSet& c, std::span<const std::pair<int32_t, int32_t>> counts, float repeat,
                      float frequency, float presence);
// Index into c of the largest logit (ties -> lower id).
size_t sample_argmax(const CandidateSet& c);
// Softmax over the candidates, then one draw with u in [0,1). Returns the drawn id.
int32_t sample_draw(CandidateSet& c, double u);

class Sampler {
 public:
  Sampler(SamplerParams params, size_t n_vocab);

  // Picks the next id from raw logits (size n_vocab). Does not record it: call accept().
  int32_t sample(std::span<const float> logits);
  // Records an id for the penalties (prompt ids too, if penalties should see them).
  void accept(int32_t id);
  // Forgets the history and reseeds (same seed -> same sequence again).
  void reset();
  // Forgets the accepted ids but keeps the random stream (a rewinding loop re-accepts what it kept).
  void clear_history();

  const SamplerParams& params() const { return params_; }

 private:
  SamplerParams params_;
  size_t n_vocab_;
  std::mt19937_64 rng_;
  CandidateSet cand_;
  std::vector<int32_t> history_;          // ring buffer of accepted ids (or all, for penalty_last_n = -1)
  size_t history_pos_ = 0;
  std::vector<int32_t> counts_;           // scratch, n_vocab, zero between calls
  std::vector<std::pair<int32_t, int32_t>> window_counts_;  // scratch
};

}  // namespace fabula
