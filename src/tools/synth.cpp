// `fabula synth`: plan (shape -> tensors -> llama.cpp recipe types), metadata, random blocks, streamed GGUF.
//
// Why random *blocks* rather than quantized random floats: the reference k-quant search (Q4_K, Q6_K) costs
// ~100x more than writing the bytes, and 25 B weights would take hours on a small machine. Matmul speed depends
// only on the types and shapes, so each block gets random quants with an fp16 scale chosen so the dequantized
// weights have a sane spread (~1/sqrt(fan_in)): activations stay finite and the router's choices vary from token to
// token like a real model's (a degenerate router that always picked the same experts would flatter the benchmark).
// --quantize-floats runs the real quantizers on random floats instead (small shapes).
#include "tools/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "base/progress.h"
#include "base/splitmix64.h"
#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"
#include "tensor/thread_pool.h"
#include "tools/quantize.h"

namespace fabula {
namespace {

// A SplitMix64 stream seeded per row (the state starts at the seed's first SplitMix64 value).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(splitmix64(seed)) {}
  uint64_t next() { return splitmix64(s); }
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
  void bytes(void* p, size_t n) {
    auto* out = static_cast<uint8_t*>(p);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const uint64_t r = next();
      std::memcpy(out + i, &r, 8);
    }
    if (i < n) {
      const uint64_t r = next();
      std::memcpy(out + i, &r, n - i);
    }
  }
};

// A scale factor around 1 (0.5..1.5) so blocks differ.
float jitter(Rng& r) { return 0.5f + r.uniform(); }

template <typename Block>
Block* blocks(uint8_t* p) {
  return reinterpret_cast<Block*>(p);
}

// One row of random blocks. The std of the quant part: uniform int8 ≈ 73.6, uniform 5-bit centred ≈ 9.2,
// 4-bit ≈ 4.6 (times the mean 6-bit sub-scale 31.5 for K-quants), Q6_K: 6-bit centred ≈ 18.5 times |sc| ≈ 64.
void fill_row(GgmlType type, int64_t cols, float sd, Rng& r, uint8_t* out) {
  const int64_t n = cols;
  switch (type) {
    case GgmlType::kF32: {
      auto* f = reinterpret_cast<float*>(out);
      for (int64_t i = 0; i < n; ++i) f[i] = (r.uniform() * 2.0f - 1.0f) * 1.7320508f * sd;
      return;
    }
    case GgmlType::kF16:
    case GgmlType::kBF16: {
      auto* h = reinterpret_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) {
        const float x = (r.uniform() * 2.0f - 1.0f) * 1.7320508f * sd;
        h[i] = type == GgmlType::kF16 ? fp32_to_fp16(x) : fp32_to_bf16(x);
      }
      return;
    }
    default: break;
  }
  const TypeTraits& tr = type_traits(type);
  const int64_t nb = n / tr.block_size;
  r.bytes(out, static_cast<size_t>(nb) * tr.block_bytes);
  for (int64_t b = 0; b < nb; ++b) {
    switch (type) {
      case GgmlType::kQ8_0: blocks<BlockQ8_0>(out)[b].d = fp32_to_fp16(sd / 73.6f * jitter(r)); break;
      case GgmlType::kQ4_0: blocks<BlockQ4_0>(out)[b].d = fp32_to_fp16(sd / 4.6f * jitter(r)); break;
      case GgmlType::kQ5_0: blocks<BlockQ5_0>(out)[b].d = fp32_to_fp16(sd / 9.2f * jitter(r)); break;
      case GgmlType::kQ4_1: {  // x = d*q + m, q in [0, 15]: m = -7.5 d centres it
        const float d = sd / 4.6f * jitter(r);
        blocks<BlockQ4_1>(out)[b].d = fp32_to_fp16(d);
        blocks<BlockQ4_1>(out)[b].m = fp32_to_fp16(-7.5f * d);
        break;
      }
      case GgmlType::kQ5_1: {
        const float d = sd / 9.2f * jitter(r);
        blocks<BlockQ5_1>(out)[b].d = fp32_to_fp16(d);
        blocks<BlockQ5_1>(out)[b].m = fp32_to_fp16(-15.5f * d);
        break;
      }
      case GgmlType::kQ4_K:
      case GgmlType::kQ5_K: {
        const float q_sd = type == GgmlType::kQ4_K ? 4.6f : 9.2f, q_mean = type == GgmlType::kQ4_K ? 7.5f : 15.5f;
        const float d = sd / (31.5f * q_sd) * jitter(r);
        // x = d*sc*q - dmin*m: dmin*m ≈ d*sc*q_mean on average (m and sc share a distribution) centres x.
        uint16_t* dd = type == GgmlType::kQ4_K ? &blocks<BlockQ4_K>(out)[b].d : &blocks<BlockQ5_K>(out)[b].d;
        uint16_t* dm = type == GgmlType::kQ4_K ? &blocks<BlockQ4_K>(out)[b].dmin : &blocks<BlockQ5_K>(out)[b].dmin;
        *dd = fp32_to_fp16(d);
        *dm = fp32_to_fp16(d * q_mean);
        break;
      }
      case GgmlType::kQ6_K: blocks<BlockQ6_K>(out)[b].d = fp32_to_fp16(sd / (18.5f * 64.0f) * jitter(r)); break;
      default: break;
    }
  }
}

// Standard deviation of a tensor's values, or a constant (norms, scales: 1).
struct ValueSpec {
  bool constant = false;
  float value = 1.0f;  // the constant, or the std
};

ValueSpec value_spec(const TensorSpec& t) {
  if (t.kind == TensorKind::kFfnGateInp) return {false, 2.0f};  // router logits with a spread of ~2: varied top-k
  if (tensor_info(t.kind).rank == 1) return {true, 1.0f};      // norms, router scale, per-expert scale, layer scalar
  return {false, 1.0f / std::sqrt(static_cast<float>(t.shape[0]))};
}

}  // namespace

using GgufMetaEntry = std::pair<std::string, GgufValue>;
Result<std::vector<GgufMetaEntry>> hparams_metadata(const Gemma4HParams& hp);

namespace {

// A gemma4_preset() name, or "gemma4-mini" (26B-A4B's dimensions and vocab, 6 layers — 5 sliding + 1 full —
// and 32 experts, top-8: a ~1.5 GB Q4_K_M file for quick runs).
Result<Gemma4HParams> synth_hparams(std::string_view name) {
  if (name != "gemma4-mini") return gemma4_preset(name);
  // The first 6 layers of 26B-A4B (5 sliding, 1 full) with 32 of its experts.
  FABULA_ASSIGN(Gemma4HParams hp, gemma4_preset("gemma4-26b-a4b"));
  hp.n_layer = 6;
  hp.n_head_kv.resize(6);
  hp.n_ff.resize(6);
  hp.sliding.resize(6);
  hp.n_expert = 32;
  return hp;
}

}  // namespace

Status synth_fill_rows(GgmlType type, int64_t cols, int64_t first_row, int64_t n_rows, float stddev, uint64_t seed,
                       std::span<uint8_t> out) {
  switch (type) {
    case GgmlType::kF32: case GgmlType::kF16: case GgmlType::kBF16: case GgmlType::kQ4_0: case GgmlType::kQ5_0:
    case GgmlType::kQ4_1: case GgmlType::kQ5_1:
    case GgmlType::kQ8_0: case GgmlType::kQ4_K: case GgmlType::kQ5_K: case GgmlType::kQ6_K: break;
    default: return make_error(ErrorCode::kInvalidArgument, "synth: no random-block generator for type {}", type_name(type));
  }
  const size_t rb = row_bytes(type, static_cast<uint64_t>(cols));
  if (out.size() != rb * static_cast<size_t>(n_rows)) {
    return make_error(ErrorCode::kInternal, "synth: {} bytes for {} rows of {} bytes", out.size(), n_rows, rb);
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    Rng rng(splitmix64_mix(seed) ^ static_cast<uint64_t>(first_row + r) * 0xD6E8FEB86659FD93ull);
    fill_row(type, cols, stddev, rng, out.data() + static_cast<size_t>(r) * rb);
  }
  return ok_status();
}

Result<SynthPlan> synth_plan(const SynthOptions& opt) {
  SynthPlan p;
  p.shape = opt.shape;
  FABULA_ASSIGN(p.hparams, synth_hparams(opt.shape));
  FABULA_ASSIGN(QuantFtype ftype, quant_ftype_from_name(opt.type));
  FABULA_TRY(p.hparams.validate());
  p.specs = gemma4_tensors(p.hparams);
  FABULA_ASSIGN(p.quant, plan_quantization(quant_inputs(p.hparams), ftype, quant_model_info(p.hparams)));
  if (p.quant.tensors.size() != p.specs.size()) {
    return make_error(ErrorCode::kInternal, "synth: plan has {} tensors, shape {}", p.quant.tensors.size(), p.specs.size());
  }
  for (size_t i = 0; i < p.specs.size(); ++i) {
    if (p.quant.tensors[i].name != p.specs[i].name)
      return make_error(ErrorCode::kInternal, "synth: plan order differs at {}", p.specs[i].name);
  }

  // Metadata in the converter's order: general.*, gemma4.*, tokenizer.*. The gemma4.* keys come from the model
  // layer's writer; a metadata-only GGUF round trip turns them into a list (exact file size, one source of truth).
  FABULA_ASSIGN(std::vector<GgufMetaEntry> arch, hparams_metadata(p.hparams));
  p.metadata = {
      {"general.architecture", GgufValue::string(kGemma4Architecture)},
      {"general.type", GgufValue::string("model")},
      {"general.name", GgufValue::string(fmt::format("synth {} {} seed {}", p.shape, quant_ftype_name(ftype),
                                                     opt.seed))},
      {"general.description", GgufValue::string("random weights from `fabula synth` (benchmarks only)")},
      {"general.file_type", GgufValue::u32(static_cast<uint32_t>(ftype))},
      {"general.quantization_version", GgufValue::u32(2)},
  };
  for (auto& kv : arch)
    if (kv.first != "general.architecture") p.metadata.push_back(std::move(kv));
  for (auto& kv : synth_vocab_metadata(static_cast<uint32_t>(p.hparams.n_vocab), opt.seed)) p.metadata.push_back(std::move(kv));
  p.file_bytes = gguf_file_size(p.metadata, p.quant);
  return p;
}

Result<SynthReport> synth_gguf(const SynthOptions& opt) {
  if (opt.output.empty()) return make_error(ErrorCode::kInvalidArgument, "synth: no output path (-o)");
  FABULA_ASSIGN(SynthPlan p, synth_plan(opt));
  namespace fs = std::filesystem;
  if (opt.check_disk && !opt.sparse) {
    std::error_code ec;
    fs::path dir = fs::absolute(fs::path(opt.output), ec).parent_path();
    const fs::space_info space = fs::space(dir, ec);
    constexpr uint64_t kMargin = 1ull << 30;  // keep 1 GiB free for everyone else
    if (!ec && space.available < p.file_bytes + kMargin) {
      return make_error(ErrorCode::kIo, "synth: {} needs {:.2f} GB but {} has {:.2f} GB free (1 GiB kept spare)",
                        opt.output, static_cast<double>(p.file_bytes) / 1e9, dir.string(),
                        static_cast<double>(space.available) / 1e9);
    }
  }

  GgufWriter writer;
  for (const auto& [key, value] : p.metadata) writer.set(key, value);
  auto pool = std::make_shared<ThreadPool>(opt.n_threads);
  const std::vector<float> rope = gemma4_rope_freqs(p.hparams);
  SynthReport report;
  std::map<GgmlType, uint64_t> by_type;
  for (size_t i = 0; i < p.specs.size(); ++i) {
    const TensorSpec& spec = p.specs[i];
    const QuantDecision& d = p.quant.tensors[i];
    by_type[d.target] += 1;
    report.n_params += d.n_elements();
    const ValueSpec vs = value_spec(spec);
    const uint64_t seed = splitmix64_mix(opt.seed * 0x100000001B3ull + i);
    if (spec.kind == TensorKind::kRopeFreqs) {
      writer.add_tensor(spec.name, d.target, spec.shape,
                        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(rope.data()), rope.size() * 4));
      continue;
    }
    const GgmlType type = d.target;
    const int64_t cols = static_cast<int64_t>(spec.shape[0]);
    const int64_t rows = static_cast<int64_t>(d.n_elements() / spec.shape[0]);
    const bool real_quant = opt.quantize_floats && type_traits(type).quantized;
    writer.add_tensor(spec.name, type, spec.shape, [=](std::span<uint8_t> out) -> Status {
      if (vs.constant) {  // F32 vectors of ones (norms, scales)
        if (type != GgmlType::kF32) return make_error(ErrorCode::kInternal, "synth: {} is not f32", spec.name);
        auto* f = reinterpret_cast<float*>(out.data());
        std::fill(f, f + out.size() / 4, vs.value);
        return ok_status();
      }
      const size_t rb = row_bytes(type, static_cast<uint64_t>(cols));
      std::vector<Status> errors(static_cast<size_t>(pool->size()), ok_status());
      pool->parallel_for(rows, [&](int64_t r0, int64_t r1, int thread) {
        // Blocks of rows so the per-row RNG setup is amortised; deterministic whatever the thread count.
        if (!real_quant) {
          Status st = synth_fill_rows(type, cols, r0, r1 - r0, vs.value, seed,
                                      out.subspan(static_cast<size_t>(r0) * rb, static_cast<size_t>(r1 - r0) * rb));
          if (!st.ok()) errors[static_cast<size_t>(thread)] = st;
          return;
        }
        std::vector<uint8_t> f32_row(static_cast<size_t>(cols) * 4);
        for (int64_t r = r0; r < r1; ++r) {
          (void)synth_fill_rows(GgmlType::kF32, cols, r, 1, vs.value, seed, f32_row);
          quantize_row(type, reinterpret_cast<const float*>(f32_row.data()), out.data() + static_cast<size_t>(r) * rb,
                       cols);
        }
      });
      for (auto& st : errors) FABULA_TRY(st);
      return ok_status();
    });
  }

  std::unique_ptr<ProgressBar> bar;
  if (opt.progress) bar = std::make_unique<ProgressBar>("synth " + fs::path(opt.output).filename().string(),
                                                        p.quant.data_bytes(), "B");
  writer.set_sparse_data(opt.sparse);
  writer.set_split_max_bytes(opt.split_max_bytes);
  FABULA_TRY(writer.write(opt.output, [&](uint64_t done, uint64_t) {
    if (bar) bar->set(done);
  }));
  if (bar) bar->finish();
  std::error_code ec;
  report.file_bytes = 0;
  for (const auto& written : writer.written_paths()) report.file_bytes += fs::file_size(written, ec);
  report.n_tensors = p.specs.size();
  report.n_fallback = p.quant.n_fallback;
  for (const auto& [t, n] : by_type) report.tensors_by_type.emplace_back(t, n);
  return report;
}

Result<std::vector<GgufMetaEntry>> hparams_metadata(const Gemma4HParams& hp) {
  // GgufWriter has no key accessor, so write a metadata-only file and read it back.
  namespace fs = std::filesystem;
  const fs::path tmp = fs::temp_directory_path() /
                       fmt::format("fabula-synth-meta-{}-{}.gguf", static_cast<const void*>(&hp), std::rand());
  GgufWriter w;
  gemma4_hparams_to_gguf(hp, w);
  FABULA_TRY(w.write(tmp.string()));
  auto file = GgufFile::open(tmp.string());
  std::error_code ec;
  if (!file.ok()) {
    fs::remove(tmp, ec);
    return file.error();
  }
  std::vector<GgufMetaEntry> out = file->metadata();
  fs::remove(tmp, ec);
  return out;
}

}  // namespace fabula
