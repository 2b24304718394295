// `fabula bench --kv-memory` / `--kv-quality` (bench_kv.h).
#include "bench_kv.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/loaded_model.h"
#include "base/file.h"
#include "command.h"
#include "engine/scripted_narrator.h"
#include "format/gguf.h"
#include "model/gemma4/kv_layout.h"
#include "model/model.h"

namespace fabula::app {
namespace {

constexpr int64_t kDefaultUbatch = 256;  // serve's n_ubatch (run's is SessionOptions'): the sliding ring's headroom

std::string mib(double bytes) { return fmt::format("{:.1f} MiB", bytes / (1024.0 * 1024.0)); }

std::vector<KvCacheTypes> every_type() {
  std::vector<KvCacheTypes> out;
  for (KvType t : kAllKvTypes) out.push_back({t, t});
  return out;
}

std::string types_name(const KvCacheTypes& t) {
  return t.k == t.v ? std::string(kv_type_name(t.k)) : fmt::format("{}/{}", kv_type_name(t.k), kv_type_name(t.v));
}

// log-softmax of one row, in double.
std::vector<double> log_softmax(std::span<const float> x) {
  const float m = *std::max_element(x.begin(), x.end());
  double sum = 0;
  for (float v : x) sum += std::exp(static_cast<double>(v) - m);
  const double lse = m + std::log(sum);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] - lse;
  return out;
}

int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

struct TypeQuality {
  KvCacheTypes types;
  double max_dlogit = 0, mean_kl = 0;
  int greedy_same = 0, greedy_first_diff = -1;  // tokens equal to f32's, first differing index (-1: none)
  double nll = 0;                                // mean per beat token
  int teacher_same = 0, teacher_total = 0;       // argmax equal to f32's over the beat tokens
};

}  // namespace

int print_kv_memory(const std::string& shape_or_model, const std::vector<int64_t>& contexts, bool json) {
  Result<Gemma4HParams> hp = make_error(ErrorCode::kNotFound, "");
  if (std::filesystem::exists(shape_or_model)) {
    auto file = GgufFile::open(shape_or_model);
    if (!file.ok()) return report_error(file.error());
    hp = gemma4_hparams_from_gguf(*file);
  } else {
    hp = gemma4_preset(shape_or_model);
  }
  if (!hp.ok()) return report_error(hp.error());
  int64_t sliding_layer = -1, global_layer = -1, n_sliding = 0;
  for (int64_t l = 0; l < hp->n_layer; ++l) {
    if (hp->is_sliding(l)) {
      ++n_sliding;
      if (sliding_layer < 0) sliding_layer = l;
    } else if (global_layer < 0) {
      global_layer = l;
    }
  }
  const int64_t n_global = hp->n_layer - n_sliding;
  nlohmann::json out = nlohmann::json::array();
  if (!json) {
    std::printf("KV cache of %s: %lld sliding layers (%lld kv heads x %lld, window %lld), %lld global layers (%lld x %lld);"
                " ring = window - 1 + %lld (n_ubatch)\n\n",
                shape_or_model.c_str(), static_cast<long long>(n_sliding), static_cast<long long>(hp->n_kv(std::max<int64_t>(sliding_layer, 0))),
                static_cast<long long>(hp->head_dim_swa), static_cast<long long>(hp->sliding_window),
                static_cast<long long>(n_global), static_cast<long long>(hp->n_kv(std::max<int64_t>(global_layer, 0))),
                static_cast<long long>(hp->head_dim_full), static_cast<long long>(kDefaultUbatch));
    std::printf("| type | bits/value | sliding layer B/token | global layer B/token |");
    for (int64_t c : contexts) std::printf(" KV at %lld | read per token at %lld |", static_cast<long long>(c), static_cast<long long>(c));
    std::printf("\n|---|---|---|---|");
    for (size_t i = 0; i < contexts.size(); ++i) std::printf("---|---|");
    std::printf("\n");
  }
  for (KvType t : kAllKvTypes) {
    const double swa = sliding_layer >= 0 ? static_cast<double>(gemma4_kv_bytes_per_position(*hp, sliding_layer, t, t)) : 0;
    const double full = global_layer >= 0 ? static_cast<double>(gemma4_kv_bytes_per_position(*hp, global_layer, t, t)) : 0;
    nlohmann::json row = {{"type", kv_type_name(t)}, {"bits_per_value", kv_bits_per_value(t)},
                          {"sliding_bytes_per_token", swa}, {"global_bytes_per_token", full}};
    if (!json) std::printf("| %s | %.1f | %.0f | %.0f |", std::string(kv_type_name(t)).c_str(), kv_bits_per_value(t), swa, full);
    for (int64_t c : contexts) {
      const double total = static_cast<double>(gemma4_kv_cache_bytes(*hp, c, kDefaultUbatch, t, t));
      // A decoded token at position c reads the window of each sliding layer and all c positions of each global one.
      const double read = static_cast<double>(n_sliding) * swa * static_cast<double>(std::min(c, hp->sliding_window)) +
                          static_cast<double>(n_global) * full * static_cast<double>(c);
      row["total_bytes_at_" + std::to_string(c)] = total;
      row["read_bytes_per_token_at_" + std::to_string(c)] = read;
      if (!json) std::printf(" %s | %s |", mib(total).c_str(), mib(read).c_str());
    }
    if (!json) std::printf("\n");
    out.push_back(row);
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

int print_kv_quality(const KvQualityArgs& args) {
  auto loaded = backend::load_model(args.model, {.require_tokenizer = false, .model = {}});
  if (!loaded.ok()) return report_error(loaded.error());
  const Model& model = *loaded->model;
  const Tokenizer& tok = loaded->tokenizer;
  const int64_t V = model.n_vocab();
  const std::vector<KvCacheTypes> types = args.types.empty() ? every_type() : args.types;

  // The held-out text: the prompt and the beats after it (each closed by the chat template's end-of-turn marker).
  std::vector<int32_t> prompt;
  std::vector<std::vector<int32_t>> beats;
  if (!args.prompt_file.empty() || !args.beats_file.empty()) {
    if (!loaded->has_tokenizer()) return report_error(make_error(ErrorCode::kUnsupported, "{}: no tokenizer for --prompt-file / --beats", args.model));
    if (!args.prompt_file.empty()) {
      auto text = read_file_text(args.prompt_file);
      if (!text.ok()) return report_error(text.error());
      prompt = tok.encode(*text, false, true);
    }
    if (!args.beats_file.empty()) {
      // The scripted narrator's fixture format: {"beat": ...} per line, // comments.
      auto script = engine::ScriptedNarrator::load(args.beats_file);
      if (!script.ok()) return report_error(script.error());
      const std::string end_of_turn(loaded->chat_template.end_of_turn());
      for (const auto& beat : (*script)->beats()) beats.push_back(tok.encode(beat + end_of_turn, false, true));
    }
  }
  std::mt19937 rng(args.seed);
  std::uniform_int_distribution<int32_t> pick(1, static_cast<int32_t>(V - 1));
  // The sequence for Δlogit and KL: the prompt, then the beats in turn (again from the first while there is room),
  // or random tokens without text.
  std::vector<int32_t> seq = prompt;
  for (size_t i = 0; !beats.empty() && static_cast<int>(seq.size()) < args.positions; ++i)
    seq.insert(seq.end(), beats[i % beats.size()].begin(), beats[i % beats.size()].end());
  seq.resize(std::min<size_t>(seq.size(), static_cast<size_t>(args.positions)));
  while (static_cast<int>(seq.size()) < args.positions) seq.push_back(pick(rng));
  std::vector<int32_t> greedy_prompt = prompt;
  if (greedy_prompt.empty()) greedy_prompt.assign(seq.begin(), seq.begin() + std::min<size_t>(16, seq.size()));

  const int64_t n_ctx = std::max<int64_t>(static_cast<int64_t>(seq.size()),
                                          static_cast<int64_t>(greedy_prompt.size()) + args.greedy + 1);
  int64_t longest_beat = 0;
  for (const auto& b : beats) longest_beat = std::max<int64_t>(longest_beat, static_cast<int64_t>(b.size()));
  ThreadPool pool(args.threads);
  auto options = [&](const KvCacheTypes& t) {
    SessionOptions so;
    so.n_ctx = std::max(n_ctx, static_cast<int64_t>(prompt.size()) + longest_beat);
    so.n_ubatch = 64;
    so.cache_type = t;
    return so;
  };

  struct Outputs {
    std::vector<float> logits;               // [seq][V]
    std::vector<int32_t> greedy;             // greedy continuation of greedy_prompt
    std::vector<std::vector<float>> beat_logits;  // per beat: [beat tokens][V], the rows predicting them
  };
  auto run = [&](const KvCacheTypes& t) -> Result<Outputs> {
    Outputs o;
    Session s(model, options(t), &pool);
    FABULA_TRY(s.decode(seq, LogitsMode::kAll));
    o.logits.assign(s.logits().begin(), s.logits().end());
    s.reset();
    FABULA_TRY(s.decode(greedy_prompt, LogitsMode::kLast));
    for (int i = 0; i < args.greedy; ++i) {
      const int32_t id = argmax(s.last_logits());
      o.greedy.push_back(id);
      FABULA_TRY(s.decode(std::span<const int32_t>(&id, 1), LogitsMode::kLast));
    }
    for (const auto& b : beats) {
      s.reset();
      std::vector<int32_t> ids = prompt;
      ids.insert(ids.end(), b.begin(), b.end());
      FABULA_TRY(s.decode(ids, LogitsMode::kAll));
      // Row prompt.size() - 1 + i predicts beat token i.
      const size_t first = prompt.empty() ? 0 : prompt.size() - 1;
      const size_t rows = prompt.empty() ? b.size() - 1 : b.size();
      o.beat_logits.emplace_back(s.logits().begin() + static_cast<ptrdiff_t>(first * V),
                                 s.logits().begin() + static_cast<ptrdiff_t>((first + rows) * V));
    }
    return o;
  };

  std::fprintf(stderr, "kv-quality: %zu positions, %d greedy tokens, %zu beats; f32 reference...\n", seq.size(),
               args.greedy, beats.size());
  auto ref = run({KvType::kF32, KvType::kF32});
  if (!ref.ok()) return report_error(ref.error());
  std::vector<TypeQuality> rows;
  for (const KvCacheTypes& t : types) {
    std::fprintf(stderr, "kv-quality: %s...\n", types_name(t).c_str());
    auto got = run(t);
    if (!got.ok()) return report_error(got.error());
    TypeQuality q;
    q.types = t;
    const size_t n = seq.size();
    for (size_t p = 0; p < n; ++p) {
      std::span<const float> a(ref->logits.data() + p * V, static_cast<size_t>(V)), b(got->logits.data() + p * V, static_cast<size_t>(V));
      for (int64_t i = 0; i < V; ++i) q.max_dlogit = std::max(q.max_dlogit, std::fabs(static_cast<double>(a[i]) - b[i]));
      const auto la = log_softmax(a), lb = log_softmax(b);
      double kl = 0;
      for (int64_t i = 0; i < V; ++i) kl += std::exp(la[i]) * (la[i] - lb[i]);
      q.mean_kl += kl / static_cast<double>(n);
    }
    for (int i = 0; i < args.greedy; ++i) {
      const bool same = got->greedy[static_cast<size_t>(i)] == ref->greedy[static_cast<size_t>(i)];
      q.greedy_same += same;
      if (!same && q.greedy_first_diff < 0) q.greedy_first_diff = i;
    }
    double nll = 0;
    int64_t count = 0;
    for (size_t bi = 0; bi < beats.size(); ++bi) {
      const auto& b = beats[bi];
      const size_t skip = prompt.empty() ? 1 : 0;  // without a prompt the first token has no prediction
      const size_t rows_n = got->beat_logits[bi].size() / static_cast<size_t>(V);
      for (size_t r = 0; r < rows_n; ++r) {
        std::span<const float> row(got->beat_logits[bi].data() + r * V, static_cast<size_t>(V));
        std::span<const float> rrow(ref->beat_logits[bi].data() + r * V, static_cast<size_t>(V));
        nll -= log_softmax(row)[static_cast<size_t>(b[r + skip])];
        ++count;
        q.teacher_same += argmax(row) == argmax(rrow);
        ++q.teacher_total;
      }
    }
    q.nll = count > 0 ? nll / static_cast<double>(count) : 0;
    rows.push_back(q);
  }

  const TypeQuality* f16 = nullptr;
  for (const auto& q : rows)
    if (q.types == KvCacheTypes{KvType::kF16, KvType::kF16}) f16 = &q;
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& q : rows) {
      out.push_back({{"type_k", kv_type_name(q.types.k)}, {"type_v", kv_type_name(q.types.v)},
                     {"positions", seq.size()}, {"max_abs_dlogit", q.max_dlogit}, {"mean_kl", q.mean_kl},
                     {"greedy_tokens", args.greedy}, {"greedy_same", q.greedy_same},
                     {"greedy_first_diff", q.greedy_first_diff}, {"beat_tokens", q.teacher_total},
                     {"beat_top1_same", q.teacher_same}, {"nll", q.nll}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("KV cache quality of %s against the f32 cache: %zu decoded positions, greedy over %d tokens",
              std::filesystem::path(args.model).filename().string().c_str(), seq.size(), args.greedy);
  if (!beats.empty()) std::printf(", %d held-out beat tokens in %zu beats", rows.empty() ? 0 : rows[0].teacher_total, beats.size());
  std::printf("\n\n| type | bits/value (K, V) | max abs dlogit | mean KL | greedy same as f32 | first difference |");
  if (!beats.empty()) std::printf(" beat top-1 same | NLL/token | NLL vs f16 |");
  std::printf("\n|---|---|---|---|---|---|");
  if (!beats.empty()) std::printf("---|---|---|");
  std::printf("\n");
  for (const auto& q : rows) {
    std::printf("| %s | %.1f, %.1f | %.4f | %.3g | %d/%d | %s |", types_name(q.types).c_str(), kv_bits_per_value(q.types.k),
                kv_bits_per_value(q.types.v), q.max_dlogit, q.mean_kl, q.greedy_same, args.greedy,
                q.greedy_first_diff < 0 ? "none" : std::to_string(q.greedy_first_diff).c_str());
    if (!beats.empty()) {
      std::printf(" %d/%d | %.4f | %s |", q.teacher_same, q.teacher_total, q.nll,
                  f16 != nullptr && f16->nll > 0 ? fmt::format("{:+.2f}%", 100.0 * (q.nll / f16->nll - 1)).c_str() : "-");
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace fabula::app
