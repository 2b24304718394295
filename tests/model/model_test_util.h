// Helpers for the model tests: scratch directories, the tiny golden model converted once, golden tensors.
#pragma once

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "common/scratch_dir.h"
#include "format/safetensors.h"
#include "model/gemma4/model.h"
#include "model/model.h"
#include "tools/convert.h"

namespace fabula::model_test {

inline std::string data_path(const std::string& rel) { return std::string(FABULA_TEST_DATA) + "/" + rel; }

using test_support::ScratchDir;

// The Gemma 4 side of a loaded model: these tests look at the family's own hyper-parameters and weights.
inline const Gemma4Model& gemma4(const Model& m) { return dynamic_cast<const Gemma4Model&>(m); }

// Converts tests/data/gemma4-tiny to GGUF with `outtype` into `dir`; returns the path (fails the test on error).
inline std::string convert_tiny(const ScratchDir& dir, const std::string& outtype = "f32") {
  ConvertOptions opt;
  opt.hf_dir = data_path("gemma4-tiny");
  opt.output = dir / ("tiny-" + outtype + ".gguf");
  opt.outtype = outtype;
  auto report = convert_hf_to_gguf(opt);
  EXPECT_TRUE(report.ok()) << (report.ok() ? "" : report.error().to_string());
  return opt.output;
}

// Every position's logits after decoding `ids` in a fresh session.
inline std::vector<float> all_logits(const Model& m, const std::vector<int32_t>& ids, SessionOptions opt) {
  Session s(m, opt);
  auto st = s.decode(ids, LogitsMode::kAll);
  EXPECT_TRUE(st.ok()) << st.error().to_string();
  return {s.logits().begin(), s.logits().end()};
}

// n token ids drawn uniformly from 1 .. n_vocab - 1 (no id 0), reproducible by seed.
inline std::vector<int32_t> random_tokens(size_t n, int64_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(1, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> p(n);
  for (auto& id : p) id = pick(rng);
  return p;
}

inline nlohmann::json read_json(const std::string& path) {
  auto text = read_file_text(path);
  EXPECT_TRUE(text.ok());
  return nlohmann::json::parse(text.ok() ? *text : "{}", nullptr, false);
}

inline std::vector<float> golden_tensor(const SafetensorsFile& file, const std::string& name) {
  const SafetensorsTensor* t = file.find_tensor(name);
  EXPECT_NE(t, nullptr) << name;
  if (t == nullptr) return {};
  auto v = safetensors_read_f32(*t);
  EXPECT_TRUE(v.ok());
  return v.ok() ? *v : std::vector<float>{};
}

inline double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

inline double cosine(const float* a, const float* b, size_t n) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < n; ++i) {
    dot += double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

inline int32_t argmax(std::span<const float> v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

}  // namespace fabula::model_test
