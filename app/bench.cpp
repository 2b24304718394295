// `fabula bench --model F [-p 512] [-n 128] [-r 5] [-t T] [-d DEPTH] [--cache-type-k T,...] [--cache-type-v T,...] [--json]`:
// llama-bench's method: random tokens (BOS first), fresh KV per run, pp = p tokens in one batch with logits for
// the last token only, tg = n single-token decodes with full logits, one warm-up run, mean ± sd over r
// repetitions. -d: the tests run after DEPTH random tokens already in the cache (decoded once per cache type,
// rolled back to after each run), as llama-bench's -d. Every listed KV cache type runs in turn, side by side.
// --parallel N: tg decodes N sequences together, one token of each per forward step (model/model.h Batch, as
// `serve --parallel N`), and t/s counts all their tokens. --kv-memory and --kv-quality measure the cache types
// instead (bench_kv.h). --bound-probe K: during tg, a read probe (tensor/read_probe.h, the best of bench_membw's
// Read and ReadPrefetch/1024) on the decode pool before the first step and after every K steps, each chunk's weight
// GB/s against its own two probes (model/decode_bound.h); the probes' time is not in tg's t/s.
#include <sys/resource.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_kv.h"
#include "command.h"
#include "model_args.h"
#include "model/decode_ab.h"
#include "model/decode_bound.h"
#include "model/gemma4/tensors.h"
#include "model/model.h"
#include "model/step_profile.h"
#include "tensor/amx.h"
#include "tensor/decode_stream.h"
#include "tensor/read_probe.h"
#include "tensor/thread_pool.h"

namespace {

struct BenchArgs {
  std::string model;
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 5;
  int threads = 0;
  bool json = false;
  bool no_warmup = false;
  bool profile = false;
  uint32_t seed = 1234;
  double bandwidth_gbs = 0;  // > 0: also print tg as a fraction of the read bound
  int n_depth = 0;           // tokens already in the cache when each test runs (llama-bench -d)
  int parallel = 1;          // tg: sequences decoding one token each per forward step (Batch)
  int bound_probe = 0;       // > 0: tg runs a read probe after every this many steps (and before the first)
  std::string ab_streams;    // non-empty: tg alternates the row streams in use (A) with these (B), ABBA
  std::vector<std::string> cache_type_k, cache_type_v;  // lists, as llama-bench's -ctk / -ctv
  bool kv_memory = false, kv_quality = false;
  std::string shape = "gemma4-26b-a4b";
  std::vector<int64_t> contexts = {8192, 32768};
  fabula::app::KvQualityArgs quality;
  fabula::ModelLoadOptions load;  // --no-mmap / --mlock
};

// --cache-type-k / --cache-type-v lists as type pairs: V follows K where -ctv is not given, else every K with every V.
fabula::Result<std::vector<fabula::KvCacheTypes>> cache_type_pairs(const BenchArgs& a) {
  using namespace fabula;
  auto parse = [](const std::vector<std::string>& names) -> Result<std::vector<KvType>> {
    std::vector<KvType> out;
    for (const auto& n : names) {
      auto t = kv_type_from_name(n);
      if (!t) return make_error(ErrorCode::kInvalidArgument, "unknown KV cache type '{}' (known: {})", n, kv_type_list());
      out.push_back(*t);
    }
    return out;
  };
  FABULA_ASSIGN(auto ks, parse(a.cache_type_k));
  FABULA_ASSIGN(auto vs, parse(a.cache_type_v));
  if (ks.empty()) ks.push_back(KvType::kF32);
  std::vector<KvCacheTypes> out;
  for (KvType k : ks) {
    if (vs.empty()) out.push_back({k, k});
    for (KvType v : vs) out.push_back({k, v});
  }
  return out;
}

struct TestResult {
  std::string name;  // "pp512" / "tg128"
  int n_prompt = 0, n_gen = 0;
  std::vector<double> ns;  // per repetition
  double mean_ts = 0, sd_ts = 0;
  std::vector<double> samples_ts;
  fabula::KvCacheTypes types;
  int n_depth = 0;
  std::array<int64_t, static_cast<size_t>(fabula::StepPhase::kCount)> phase_ns{};  // --profile: all repetitions
  double experts_per_layer = 0;  // --profile: distinct routed experts read per MoE layer and step
  std::array<fabula::RegionTotals, static_cast<size_t>(fabula::StepPhase::kCount)> regions{};  // --profile
  std::vector<fabula::BoundChunk> bound_chunks{};  // --bound-probe: every repetition's chunks, in order
  std::vector<double> ab_step_ns{};  // --ab-streams: every repetition's whole ABBA quads of steps, in order
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double ns_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

// llama.cpp's ftype names as llama-bench prints them.
std::string ftype_name(uint64_t ft) {
  switch (ft) {
    case 0: return "all F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 7: return "Q8_0";
    case 12: return "Q3_K - Large";
    case 14: return "Q4_K - Small";
    case 15: return "Q4_K - Medium";
    case 16: return "Q5_K - Small";
    case 17: return "Q5_K - Medium";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return fmt::format("ftype {}", ft);
  }
}

double load_average() {
  double l = -1;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

void finish(TestResult& r, int n_tokens) {
  double sum = 0;
  for (double ns : r.ns) {
    r.samples_ts.push_back(n_tokens / (ns * 1e-9));
    sum += r.samples_ts.back();
  }
  r.mean_ts = sum / static_cast<double>(r.samples_ts.size());
  double var = 0;
  for (double ts : r.samples_ts) var += (ts - r.mean_ts) * (ts - r.mean_ts);
  r.sd_ts = r.samples_ts.size() > 1 ? std::sqrt(var / static_cast<double>(r.samples_ts.size() - 1)) : 0.0;
}

// Weight bytes one generated token reads: every tensor, except that routed-expert tensors (*_exps) count
// n_expert_used / n_expert of their bytes, and the embedding counts one row unless it is also the (tied) output head.
// The KV cache (a few MB at short contexts) is left out.
double decode_bytes_per_token(const fabula::Model& m) {
  const fabula::ModelInfo& hp = m.info();
  const bool tied = m.gguf().find_tensor("output.weight") == nullptr;
  double bytes = 0;
  for (const auto& t : m.gguf().tensors()) {
    double b = static_cast<double>(t.n_bytes());
    if (t.name.find("_exps.") != std::string::npos && hp.n_expert > 0) {
      b *= static_cast<double>(hp.n_expert_used) / static_cast<double>(hp.n_expert);
    } else if (t.name == "token_embd.weight" && !tied) {
      b /= static_cast<double>(hp.n_vocab);
    }
    bytes += b;
  }
  return bytes;
}

using PhaseBytes = std::array<double, static_cast<size_t>(fabula::StepPhase::kCount)>;

// The phase of the forward pass that reads a Gemma 4 weight tensor (model/step_profile.h), or kCount for tensors
// of another family.
fabula::StepPhase phase_reading(std::string_view gguf_name) {
  using fabula::StepPhase;
  using K = fabula::TensorKind;
  const auto match = fabula::match_gguf_tensor_name(gguf_name);
  if (!match) return StepPhase::kCount;
  switch (match->kind) {
    case K::kTokenEmbd: return StepPhase::kEmbed;
    case K::kOutputNorm: return StepPhase::kHead;
    case K::kRopeFreqs: case K::kAttnQNorm: case K::kAttnKNorm: return StepPhase::kAttention;
    case K::kAttnNorm: case K::kAttnQ: case K::kAttnK: case K::kAttnV: return StepPhase::kAttnQkv;
    case K::kAttnOutput: case K::kPostAttentionNorm: return StepPhase::kAttnOut;
    case K::kFfnNorm: case K::kFfnGate: case K::kFfnUp: case K::kFfnGateInp: case K::kFfnGateInpScale:
      return StepPhase::kFfnGateUp;
    case K::kFfnDown: case K::kPreFfwNorm2: case K::kFfnGateUpExps: case K::kFfnGateExps: case K::kFfnUpExps:
      return StepPhase::kFfnDown;
    case K::kFfnDownExps: case K::kFfnDownExpsScale: case K::kPostFfwNorm1: case K::kPostFfwNorm2:
    case K::kPostFfwNorm: case K::kLayerOutputScale:
      return StepPhase::kExpertDown;
  }
  return StepPhase::kCount;
}

// Weight bytes each phase reads in one decode step of `tokens` tokens, counted as decode_bytes_per_token counts
// them, except that an expert stack (*_exps) counts `experts_per_layer` (the distinct experts the run chose per MoE
// layer, measured) of its n_expert experts, and the embedding one row per token (plus the whole matrix in the head
// when the output head is tied to it).
PhaseBytes phase_bytes_per_step(const fabula::Model& m, double experts_per_layer, int tokens) {
  const fabula::ModelInfo& hp = m.info();
  const bool tied = m.gguf().find_tensor("output.weight") == nullptr;
  PhaseBytes bytes{};
  for (const auto& t : m.gguf().tensors()) {
    const double b = static_cast<double>(t.n_bytes());
    if (t.name == "output.weight") {
      bytes[static_cast<size_t>(fabula::StepPhase::kHead)] += b;
      continue;
    }
    const fabula::StepPhase phase = phase_reading(t.name);
    if (phase == fabula::StepPhase::kCount) continue;
    double read = b;
    if (t.name.find("_exps.") != std::string::npos && hp.n_expert > 0) {
      read = b * experts_per_layer / static_cast<double>(hp.n_expert);
    } else if (phase == fabula::StepPhase::kEmbed) {
      read = b / static_cast<double>(hp.n_vocab) * tokens;
      if (tied) bytes[static_cast<size_t>(fabula::StepPhase::kHead)] += b;
    }
    bytes[static_cast<size_t>(phase)] += read;
  }
  return bytes;
}

// --profile: each phase's wall time per generated token (tg) or per prompt run (pp), and its share of the run. For
// tg also the weight bytes each phase reads per step and the rate it read them at, so the phase furthest from the
// memory's read bandwidth (--bandwidth: printed as a share of it) shows at once.
// Where each phase's threads are not all working: serial work on the calling thread between its parallel regions,
// and in the regions the wake-up (until the last thread starts) and the end (the first thread done waits for the
// others, then the caller sees them done). "all busy" is the time every thread was inside a region's job.
void print_regions(const TestResult& r, double per, int threads) {
  using fabula::StepPhase;
  bool any = false;
  for (const auto& g : r.regions) any |= g.regions > 0;
  if (!any) return;  // one thread: no regions
  std::printf("\n%s: parallel regions by phase, ms per %s (all busy: every thread inside a region's job)\n",
              r.name.c_str(), r.n_gen > 0 ? "step" : "run");
  std::printf("  %-28s %9s %8s %9s %9s %9s %9s %9s %9s %12s\n", "", "phase", "regions", "serial", "start", "end",
              "(signal)", "all busy", "not all", "busy/thread");
  fabula::RegionTotals sum;
  int64_t sum_ns = 0;
  const double ms = per * 1e6;
  auto row = [&](const std::string& name, int64_t phase_ns, const fabula::RegionTotals& g, int threads) {
    std::printf("  %-28s %9.3f %8.1f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %12.3f\n", name.c_str(), phase_ns / ms,
                g.regions / per, (phase_ns - g.wall_ns) / ms, g.start_ns / ms, g.end_ns / ms, g.signal_ns / ms,
                g.all_busy_ns / ms, (phase_ns - g.all_busy_ns) / ms, g.busy_ns / ms / threads);
  };
  for (size_t i = 0; i < r.regions.size(); ++i) {
    row(std::string(fabula::step_phase_name(static_cast<StepPhase>(i))), r.phase_ns[i], r.regions[i], threads);
    sum += r.regions[i];
    sum_ns += r.phase_ns[i];
  }
  row("(the phases)", sum_ns, sum, threads);
}

void print_profile(const fabula::Model& m, const std::vector<TestResult>& results, int reps, int parallel,
                   double bandwidth_gbs, int threads) {
  using fabula::StepPhase;
  for (const auto& r : results) {
    double run_ns = 0;
    for (double ns : r.ns) run_ns += ns;
    const bool tg = r.n_gen > 0;
    const double per = tg ? static_cast<double>(r.n_gen) * reps : reps;
    const PhaseBytes bytes =
        phase_bytes_per_step(m, r.experts_per_layer > 0 ? r.experts_per_layer : 0.0, parallel);
    std::printf("\n%s: ms per %s by phase%s\n", r.name.c_str(), tg ? "step" : "run",
                tg ? ", weight MB read per step and the rate (GB/s)" : "");
    double timed = 0, total_bytes = 0;
    for (double b : bytes) total_bytes += b;
    auto row = [&](const std::string& name, double ns, double b) {
      std::printf("  %-28s %9.3f ms  %5.1f%%", name.c_str(), ns / per / 1e6, run_ns > 0 ? 100 * ns / run_ns : 0.0);
      if (tg && b > 0) std::printf("  %9.1f MB", b / 1e6);
      if (tg && b >= 0.01 * total_bytes && ns > 0) {  // a rate for the phases that stream weights (not the norms')
        const double gbs = b / (ns / per);  // bytes per ns = GB/s
        std::printf("  %6.1f GB/s", gbs);
        if (bandwidth_gbs > 0) std::printf("  %5.1f%% of %.1f", 100 * gbs / bandwidth_gbs, bandwidth_gbs);
      }
      std::printf("\n");
    };
    for (size_t i = 0; i < r.phase_ns.size(); ++i) {
      const double ns = static_cast<double>(r.phase_ns[i]);
      timed += ns;
      row(std::string(fabula::step_phase_name(static_cast<StepPhase>(i))), ns, bytes[i]);
    }
    row("(outside the phases)", run_ns - timed, 0);
    if (tg) row("(the whole step)", run_ns, total_bytes);
    if (r.experts_per_layer > 0) std::printf("  distinct experts read per MoE layer and step: %.2f\n", r.experts_per_layer);
    print_regions(r, per, threads);
  }
}

constexpr int kProbePasses = 2;  // rounds of the probe's two 1 GiB reads (with and without prefetch), best of all

// --bound-probe: each chunk's decode rate against the reads just before and after it, then the efficiencies'
// median / min / max over all chunks and over the stable fast ones.
void print_bound_chunks(const TestResult& r, int k, double bytes_per_step) {
  using namespace fabula;
  std::printf("\n%s: decode against a read probe (best of %d reads of %zu MiB, all threads, with and without "
              "prefetch) before and after every %d steps\n",
              r.name.c_str(), 2 * kProbePasses, kReadProbeBytes >> 20, k);
  std::printf("  %5s %5s %8s %11s %13s %12s %10s %6s\n", "chunk", "steps", "t/s", "weight GB/s", "read before",
              "read after", "efficiency", "stable");
  const BoundSummary s = summarize_bound(r.bound_chunks, bytes_per_step);
  for (size_t i = 0; i < r.bound_chunks.size(); ++i) {
    const BoundChunk& c = r.bound_chunks[i];
    const BoundChunkRate rate = bound_chunk_rate(c, bytes_per_step, s.stable_fast_min_gbs);
    std::printf("  %5zu %5d %8.2f %11.2f %13.2f %12.2f %9.1f%% %6s\n", i + 1, c.steps, rate.steps_per_s,
                rate.weight_gbs, c.probe_before_gbs, c.probe_after_gbs, 100 * rate.efficiency,
                rate.stable_fast ? "yes" : "");
  }
  auto line = [](const char* what, const EfficiencyStats& e) {
    if (e.count == 0) {
      std::printf("  %s: no chunks\n", what);
      return;
    }
    std::printf("  %s (%d chunks): median %.1f%%, min %.1f%%, max %.1f%%\n", what, e.count, 100 * e.median,
                100 * e.min, 100 * e.max);
  };
  line("efficiency, all chunks", s.all);
  const std::string stable =
      fmt::format("efficiency, stable fast chunks (both reads >= {:.2f} GB/s, within {:.0f}% of the run's best, and "
                  "< {:.0f}% apart)", s.stable_fast_min_gbs, 100 * kStableSpread, 100 * kStableSpread);
  line(stable.c_str(), s.stable_fast);
}

nlohmann::json bound_chunks_json(const TestResult& r, int k, double bytes_per_step) {
  using namespace fabula;
  nlohmann::json chunks = nlohmann::json::array();
  const BoundSummary s = summarize_bound(r.bound_chunks, bytes_per_step);
  for (const BoundChunk& c : r.bound_chunks) {
    const BoundChunkRate rate = bound_chunk_rate(c, bytes_per_step, s.stable_fast_min_gbs);
    chunks.push_back({{"steps", c.steps},
                      {"decode_s", c.decode_s},
                      {"ts", rate.steps_per_s},
                      {"weight_gbs", rate.weight_gbs},
                      {"read_before_gbs", c.probe_before_gbs},
                      {"read_after_gbs", c.probe_after_gbs},
                      {"efficiency", rate.efficiency},
                      {"stable_fast", rate.stable_fast}});
  }
  auto stats = [](const EfficiencyStats& e) {
    return nlohmann::json{{"count", e.count}, {"median", e.median}, {"min", e.min}, {"max", e.max}};
  };
  return {{"steps_per_probe", k},
          {"read_bytes", kReadProbeBytes},
          {"passes_per_read", kProbePasses},
          {"stable_fast_min_gbs", s.stable_fast_min_gbs},
          {"stable_fast_max_spread", kStableSpread},
          {"chunks", chunks},
          {"all", stats(s.all)},
          {"stable_fast", stats(s.stable_fast)}};
}

std::string streams_text(const fabula::DecodeRowStreams& s) { return fmt::format("{},{},{}", s.q4_K, s.q6_K, s.q8_0); }

// --ab-streams: the summary of a test's steps, A = the row streams in use, B = the flag's.
void print_ab(const TestResult& r, const fabula::DecodeRowStreams& a, const fabula::DecodeRowStreams& b) {
  const fabula::AbbaSummary s = fabula::summarize_abba(r.ab_step_ns);
  if (s.quads == 0) {
    std::printf("%s: row streams A/B: no whole quad of steps (-n 4 or more)\n", r.name.c_str());
    return;
  }
  std::printf("%s: row streams (Q4_K,Q6_K,Q8_0) A %s (in use) against B %s, steps in ABBA order: t(A) / t(B) "
              "median %.4f (quartiles %.4f-%.4f), the whole run %.4f, over %d quads (above 1: B is faster)\n",
              r.name.c_str(), streams_text(a).c_str(), streams_text(b).c_str(), s.median, s.q1, s.q3, s.whole,
              s.quads);
}

nlohmann::json ab_json(const TestResult& r, const fabula::DecodeRowStreams& a, const fabula::DecodeRowStreams& b) {
  const fabula::AbbaSummary s = fabula::summarize_abba(r.ab_step_ns);
  return {{"a", streams_text(a)}, {"b", streams_text(b)}, {"quads", s.quads}, {"median", s.median},
          {"q1", s.q1},           {"q3", s.q3},           {"whole", s.whole}};
}

}  // namespace

FABULA_COMMAND(bench, "Measure prompt processing and generation speed (llama-bench method)") {
  auto args = std::make_shared<BenchArgs>();
  cli.add_option("-m,--model", args->model, "GGUF model");
  cli.add_option("-p,--n-prompt", args->n_prompt, "Prompt tokens, one batch (0: skip pp)")->capture_default_str();
  cli.add_option("-n,--n-gen", args->n_gen, "Generated tokens, one at a time (0: skip tg)")->capture_default_str();
  cli.add_option("-r,--repetitions", args->reps, "Repetitions per test")->capture_default_str();
  cli.add_option("-t,--threads", args->threads, "Threads (0: physical cores)");
  fabula::app::add_load_flags(cli, args->load);
  cli.add_option("--seed", args->seed, "Seed of the random tokens")->capture_default_str();
  cli.add_flag("--json", args->json, "Print JSON instead of the table");
  cli.add_flag("--no-warmup", args->no_warmup, "Skip the warm-up run");
  cli.add_flag("--profile", args->profile,
               "Also print the wall time of each phase of the forward pass (per token for tg, per run for pp); for "
               "tg also the weight bytes each phase reads per step and the rate it reads them at (GB/s; with "
               "--bandwidth, as a share of it); with 2+ threads also where the threads are not all working: serial "
               "work between the parallel regions, the regions' wake-up, and their end (imbalance, done signal)");
  cli.add_option("--bandwidth", args->bandwidth_gbs,
                 "Memory read bandwidth in GB/s (bench_membw's best read): prints tg against the bound "
                 "bandwidth / weight bytes per token");
  cli.add_option("--bound-probe", args->bound_probe,
                 "K > 0: decode against a read bound measured beside it, for a machine whose memory bandwidth "
                 "changes within seconds: during tg, read a 1 GiB buffer with all threads (the best of bench_membw's "
                 "Read and ReadPrefetch/1024, twice each) before the first step and after every K steps, and print "
                 "each chunk's weight GB/s as a share of the mean of its two reads, with the median / min / max share "
                 "(probe time is not in tg's t/s; 0: off)")
      ->capture_default_str();
  cli.add_option("--ab-streams", args->ab_streams,
                 "Compare decode row streams in one process, for tuning a CPU: tg's steps alternate the counts in "
                 "use (A: this CPU's, or FABULA_DECODE_STREAMS) with these (B) in the order A, B, B, A, and each "
                 "quad gives t(A) / t(B) (the host's drift cancels; separate runs differ by more than most settings "
                 "do). One count for every family or three for Q4_K, Q6_K and the Q8_0 family, as "
                 "FABULA_DECODE_STREAMS (e.g. 2 or 3,4,3); tg's t/s then mixes both");
  cli.add_option("--parallel", args->parallel,
                 "tg with N sequences, one token of each per forward step (continuous batching, as `serve "
                 "--parallel N`); t/s counts the tokens of all of them")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cli.add_option("-d,--n-depth", args->n_depth,
                 "Tokens already in the KV cache when each test runs (llama-bench -d; filled once, then converted "
                 "to each cache type)")
      ->capture_default_str();
  cli.add_option("--cache-type-k", args->cache_type_k,
                 "KV cache K types to run side by side, comma-separated: " + fabula::kv_type_list() + " (default f32)")
      ->delimiter(',');
  cli.add_option("--cache-type-v", args->cache_type_v, "KV cache V types (default: the K type of each run)")
      ->delimiter(',');
  cli.add_flag("--kv-memory", args->kv_memory,
               "Print KV cache bytes per token per layer kind and totals for every type (--shape, --contexts)");
  cli.add_option("--shape", args->shape, "--kv-memory: a preset shape or a GGUF file")->capture_default_str();
  cli.add_option("--contexts", args->contexts, "--kv-memory: contexts to total")->delimiter(',')->capture_default_str();
  cli.add_flag("--kv-quality", args->kv_quality,
               "Compare the KV cache types with f32 on --model: max |dlogit|, KL, greedy agreement, beat NLL");
  cli.add_option("--prompt-file", args->quality.prompt_file, "--kv-quality: the prompt the held-out beats follow");
  cli.add_option("--beats", args->quality.beats_file, "--kv-quality: held-out beats, {\"beat\": ...} per line");
  cli.add_option("--positions", args->quality.positions, "--kv-quality: decoded positions compared")->capture_default_str();
  cli.add_option("--greedy", args->quality.greedy, "--kv-quality: greedy tokens compared")->capture_default_str();
  return [args]() -> int {
    using namespace fabula;
    auto pairs = cache_type_pairs(*args);
    if (!pairs.ok()) return app::report_error(pairs.error());
    if (args->kv_memory) return app::print_kv_memory(args->model.empty() ? args->shape : args->model, args->contexts, args->json);
    if (args->model.empty()) return app::report_error(make_error(ErrorCode::kInvalidArgument, "bench needs --model (or --kv-memory)"));
    if (args->bound_probe < 0) {
      return app::report_error(make_error(ErrorCode::kInvalidArgument,
                                          "--bound-probe must be 0 (off) or the number of decode steps between read "
                                          "probes, got {}",
                                          args->bound_probe));
    }
    if (args->bound_probe > 0 && args->parallel > 1) {
      return app::report_error(make_error(ErrorCode::kInvalidArgument,
                                          "--bound-probe counts one token's weight bytes per step: use it without "
                                          "--parallel"));
    }
    const DecodeRowStreams streams_a = decode_row_streams();
    DecodeRowStreams streams_b = streams_a;
    if (!args->ab_streams.empty()) {
      const auto b = parse_decode_row_streams(args->ab_streams.c_str());
      if (!b) {
        return app::report_error(make_error(ErrorCode::kInvalidArgument,
                                            "--ab-streams wants one count from 1 to {} for every family, or three for "
                                            "Q4_K, Q6_K and the Q8_0 family (as in 3,4,3); got '{}'",
                                            kMaxDecodeRowStreams, args->ab_streams));
      }
      if (args->n_gen <= 0 || args->parallel > 1 || args->bound_probe > 0) {
        return app::report_error(make_error(ErrorCode::kInvalidArgument,
                                            "--ab-streams compares one sequence's tg steps: give -n (4 or more), "
                                            "without --parallel or --bound-probe"));
      }
      streams_b = *b;
    }
    if (args->kv_quality) {
      app::KvQualityArgs q = args->quality;
      q.model = args->model;
      q.threads = args->threads;
      q.seed = args->seed;
      q.json = args->json;
      if (!args->cache_type_k.empty()) q.types = *pairs;
      return app::print_kv_quality(q);
    }
    ThreadPool pool(args->threads);
    // --bound-probe: the read buffer, first touched by the decode pool's threads before any test, and allocated
    // before the weights: once they fill the memory a new buffer gets no 2 MiB pages (seen on a 24 GiB machine
    // with the 26B read in: the weights on 2 MiB pages, the probe on 4 KiB ones, reading ~30% slower than it does
    // in a fresh process) and the probe would understate the bound.
    std::optional<ReadProbeBuffer> probe_buffer;
    if (args->bound_probe > 0 && args->n_gen > 0) probe_buffer.emplace(pool);
    const double t_load0 = now_s();
    auto model = Model::load(args->model, args->load);
    if (!model.ok()) return app::report_error(model.error());
    const double load_s = now_s() - t_load0;
    const Model& m = **model;
    const std::string weights_in = m.gguf().file().is_copy() ? "read into memory" : "mapped";

    uint64_t size = 0, params = 0;
    for (const auto& t : m.gguf().tensors()) {
      size += t.n_bytes();
      params += t.n_elements();
    }
    auto u64_or = [&](const char* key, uint64_t fallback) {
      auto v = m.gguf().get_u64(key);
      return v.ok() ? *v : fallback;
    };
    const uint64_t ftype = u64_or("general.file_type", 0);
    const std::string desc =
        fmt::format("{} {:.2f}B {}", m.info().architecture, static_cast<double>(params) / 1e9, ftype_name(ftype));

    std::mt19937 rng(args->seed);
    std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(m.n_vocab() - 1));
    const int32_t bos = static_cast<int32_t>(u64_or("tokenizer.ggml.bos_token_id", 2));
    const int depth = std::max(0, args->n_depth);

    bool probing = false;                  // on during the timed repetitions
    std::vector<BoundChunk> bound_chunks;  // of the test being measured
    const bool ab = !args->ab_streams.empty();
    std::vector<double> ab_step_ns;  // --ab-streams: the test's whole quads of steps
    std::vector<TestResult> results;
    const double load_avg_start = load_average();
    SessionOptions base;
    base.n_ctx = std::max(1, depth + args->n_prompt + args->n_gen + 1);
    // Each run is rolled back to the depth afterwards: the sliding ring must hold a whole run beyond its window.
    // The depth itself goes in chunks of at least 512 (the prefill GEMM), not in tg-sized ones.
    base.n_ubatch = std::max({1, args->n_prompt, depth > 0 ? std::max(args->n_gen + 1, 512) : 1});
    base.n_threads = pool.size();
    // The depth: random tokens (BOS first) decoded once, in n_ubatch chunks, without logits, into an f32 cache that
    // every cache type then converts into its own (a prefill of 8192 tokens takes minutes; what a test then
    // measures depends on the cache's length and type, not on how its values were made).
    std::optional<Session> depth_source;
    if (depth > 0) {
      SessionOptions so = base;
      so.cache_type = {KvType::kF32, KvType::kF32};
      depth_source.emplace(m, so, &pool);
      std::vector<int32_t> ctx(static_cast<size_t>(depth));
      for (auto& t : ctx) t = dist(rng);
      ctx[0] = bos;
      std::fprintf(stderr, "bench: %d tokens of depth (filled once in f32, converted to each cache type)...\n", depth);
      if (auto st = depth_source->decode(ctx, LogitsMode::kNone); !st.ok()) return app::report_error(st.error());
    }
    for (const KvCacheTypes& types : *pairs) {
      SessionOptions so = base;
      so.cache_type = types;
      Session session(m, so, &pool);
      // --parallel: the other sequences of tg, at the same depth.
      std::vector<Session> others;
      for (int i = 1; i < args->parallel; ++i) others.emplace_back(m, so, &pool);
      Batch batch(m, BatchOptions{args->parallel, pool.size()}, &pool);
      if (depth_source) {
        if (auto st = session.copy_cache_from(*depth_source); !st.ok()) return app::report_error(st.error());
        for (Session& o : others)
          if (auto st = o.copy_cache_from(*depth_source); !st.ok()) return app::report_error(st.error());
      }
      auto rewind = [&]() -> Status {
        for (Session& o : others) {
          if (depth == 0) o.reset();
          else FABULA_TRY(o.truncate(depth));
        }
        if (depth == 0) {
          session.reset();
          return ok_status();
        }
        return session.truncate(depth);
      };

      auto run_pp = [&](int n) -> Result<double> {
        std::vector<int32_t> tokens(static_cast<size_t>(n));
        for (auto& t : tokens) t = dist(rng);
        if (depth == 0) tokens[0] = bos;
        FABULA_TRY(rewind());
        const auto t0 = std::chrono::steady_clock::now();
        FABULA_TRY(session.decode(tokens, LogitsMode::kLast));
        return ns_since(t0);
      };
      // --bound-probe: a read probe before the first step and after every K steps; the time returned is the
      // steps' only.
      auto run_tg = [&](int n) -> Result<double> {
        FABULA_TRY(rewind());
        int32_t tok = depth == 0 ? bos : dist(rng);
        std::vector<int32_t> toks(others.size());
        for (auto& t : toks) t = depth == 0 ? bos : dist(rng);
        std::vector<BatchItem> items;
        const int k = probing ? args->bound_probe : 0;
        auto probe = [&] { return read_probe_gbs(pool, *probe_buffer, kProbePasses); };
        double read_before = k > 0 ? probe() : 0;
        double steps_ns = 0;
        int chunk_begin = 0;
        std::vector<double> step_ns;  // --ab-streams
        if (ab) step_ns.reserve(static_cast<size_t>(n));
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i) {
          const auto step_begin = std::chrono::steady_clock::now();
          if (ab) set_decode_row_streams(abba_takes_b(static_cast<size_t>(i)) ? streams_b : streams_a);
          if (others.empty()) {
            FABULA_TRY(session.decode(std::span<const int32_t>(&tok, 1), LogitsMode::kLast));
          } else {
            items.assign(1, BatchItem{&session, std::span<const int32_t>(&tok, 1)});
            for (size_t k = 0; k < others.size(); ++k) items.push_back({&others[k], std::span<const int32_t>(&toks[k], 1)});
            FABULA_TRY(batch.decode(items));
            for (auto& t : toks) t = dist(rng);
          }
          if (ab) step_ns.push_back(ns_since(step_begin));
          tok = dist(rng);
          if (k > 0 && ((i + 1) % k == 0 || i + 1 == n)) {
            const double chunk_ns = ns_since(t0);
            steps_ns += chunk_ns;
            const double read_after = probe();
            bound_chunks.push_back({i + 1 - chunk_begin, chunk_ns * 1e-9, read_before, read_after});
            read_before = read_after;
            chunk_begin = i + 1;
            t0 = std::chrono::steady_clock::now();
          }
        }
        if (k == 0) steps_ns = ns_since(t0);
        if (ab) {
          set_decode_row_streams(streams_a);
          ab_step_ns.insert(ab_step_ns.end(), step_ns.begin(), step_ns.begin() + static_cast<std::ptrdiff_t>(step_ns.size() / 4 * 4));
        }
        return steps_ns;
      };

      // Warm-up (run(warm_n)), then the timed repetitions of run(n) with the step profile on; each repetition
      // counts `tokens` tokens.
      auto measure = [&](TestResult r, auto& run, int warm_n, int n, int tokens) -> Status {
        if (!args->no_warmup) FABULA_TRY(run(warm_n));
        bound_chunks.clear();
        ab_step_ns.clear();
        probing = probe_buffer.has_value();
        StepProfile::reset();
        StepProfile::set_enabled(args->profile);
        for (int i = 0; i < args->reps; ++i) {
          FABULA_ASSIGN(const double ns, run(n));
          r.ns.push_back(ns);
        }
        StepProfile::set_enabled(false);
        probing = false;
        r.bound_chunks = std::move(bound_chunks);
        r.ab_step_ns = std::move(ab_step_ns);
        r.phase_ns = StepProfile::totals();
        r.regions = StepProfile::region_totals();
        if (StepProfile::expert_layers_total() > 0)
          r.experts_per_layer = static_cast<double>(StepProfile::experts_total()) / StepProfile::expert_layers_total();
        finish(r, tokens);
        results.push_back(std::move(r));
        return ok_status();
      };
      const std::string at = depth > 0 ? fmt::format(" @ d{}", depth) : "";
      if (args->n_prompt > 0) {
        TestResult r{fmt::format("pp{}{}", args->n_prompt, at), args->n_prompt, 0, {}, 0, 0, {}, types, depth};
        if (auto st = measure(std::move(r), run_pp, args->n_prompt, args->n_prompt, args->n_prompt); !st.ok())
          return app::report_error(st.error());
      }
      if (args->n_gen > 0) {
        const std::string par = args->parallel > 1 ? fmt::format(" x{}", args->parallel) : "";
        TestResult r{fmt::format("tg{}{}{}", args->n_gen, par, at), 0, args->n_gen, {}, 0, 0, {}, types, depth};
        if (auto st = measure(std::move(r), run_tg, 1, args->n_gen, args->n_gen * args->parallel); !st.ok())
          return app::report_error(st.error());
      }
    }
    const double load_avg_end = load_average();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const double peak_rss = static_cast<double>(ru.ru_maxrss) * 1024.0;

    const double bytes_per_token = decode_bytes_per_token(m);
    if (args->json) {
      nlohmann::json out = nlohmann::json::array();
      char date[64];
      const std::time_t tt = std::time(nullptr);
      std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
      for (const auto& r : results) {
        out.push_back({{"engine", "fabula"},
                       {"model_filename", args->model},
                       {"model_type", desc},
                       {"model_size", size},
                       {"model_n_params", params},
                       {"n_threads", pool.size()},
                       {"test", r.name},
                       {"n_prompt", r.n_prompt},
                       {"n_gen", r.n_gen},
                       {"n_depth", r.n_depth},
                       {"type_k", fabula::kv_type_name(r.types.k)},
                       {"type_v", fabula::kv_type_name(r.types.v)},
                       {"reps", args->reps},
                       {"avg_ts", r.mean_ts},
                       {"stddev_ts", r.sd_ts},
                       {"samples_ts", r.samples_ts},
                       {"samples_ns", r.ns},
                       {"load_s", load_s},
                       {"weights", weights_in},
                       {"decode_prefetch_bytes", fabula::kDecodePrefetchBytes},
                       {"decode_row_streams_q4_K", fabula::decode_row_streams(fabula::GemvFamily::kQ4_K)},
                       {"decode_row_streams_q6_K", fabula::decode_row_streams(fabula::GemvFamily::kQ6_K)},
                       {"decode_row_streams_q8_0", fabula::decode_row_streams(fabula::GemvFamily::kQ8_0)},
                       {"prefill_gemm_amx", fabula::amx_enabled()},
                       {"peak_rss_bytes", peak_rss},
                       {"load_avg_start", load_avg_start},
                       {"load_avg_end", load_avg_end},
                       {"decode_bytes_per_token", bytes_per_token},
                       {"date", date}});
        if (!r.bound_chunks.empty()) {
          out.back()["bound_probe"] = bound_chunks_json(r, args->bound_probe, bytes_per_token);
        }
        if (ab && r.n_gen > 0) out.back()["ab_streams"] = ab_json(r, streams_a, streams_b);
      }
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    std::printf("| %-30s | %10s | %8s | %7s | %7s | %5s | %5s | %16s | %20s |\n", "model", "size", "params", "backend",
                "threads", "type_k", "type_v", "test", "t/s");
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", std::string(30, '-').c_str(),
                std::string(10, '-').c_str(), std::string(8, '-').c_str(), std::string(7, '-').c_str(),
                std::string(7, '-').c_str(), std::string(6, '-').c_str(), std::string(6, '-').c_str(),
                std::string(16, '-').c_str(), std::string(20, '-').c_str());
    for (const auto& r : results) {
      std::printf("| %-30s | %6.2f GiB | %6.2f B | %7s | %7d | %6s | %6s | %16s | %20s |\n", desc.c_str(),
                  static_cast<double>(size) / (1024.0 * 1024.0 * 1024.0), static_cast<double>(params) / 1e9, "CPU",
                  pool.size(), std::string(kv_type_name(r.types.k)).c_str(), std::string(kv_type_name(r.types.v)).c_str(),
                  r.name.c_str(), fmt::format("{:.2f} ± {:.2f}", r.mean_ts, r.sd_ts).c_str());
    }
    const fabula::DecodeRowStreams streams = fabula::decode_row_streams();
    std::printf("\nload %.2f s (%s, decode prefetch %zu B ahead in row streams of %d (Q4_K), %d (Q6_K) and %d (the Q8_0 "
                "family), prefill GEMM on %s), peak RSS %.2f GiB, load average %.2f -> %.2f\n",
                load_s, weights_in.c_str(), fabula::kDecodePrefetchBytes, streams.q4_K, streams.q6_K, streams.q8_0,
                fabula::amx_enabled() ? "AMX tiles" : "vector units", peak_rss / (1024.0 * 1024.0 * 1024.0),
                load_avg_start, load_avg_end);
    std::printf("decode reads %.4f GB of weights per token", bytes_per_token / 1e9);
    if (args->bandwidth_gbs > 0) {
      const double bound = args->bandwidth_gbs * 1e9 / bytes_per_token;
      std::printf("; bound at %.2f GB/s: %.2f t/s", args->bandwidth_gbs, bound);
      for (const auto& r : results) {
        if (r.n_gen > 0) std::printf("; %s %.2f t/s = %.1f%% of the bound", r.name.c_str(), r.mean_ts, 100 * r.mean_ts / bound);
      }
    }
    std::printf("\n");
    for (const auto& r : results) {
      if (!r.bound_chunks.empty()) print_bound_chunks(r, args->bound_probe, bytes_per_token);
      if (ab && r.n_gen > 0) print_ab(r, streams_a, streams_b);
    }
    if (args->profile) print_profile(m, results, args->reps, args->parallel, args->bandwidth_gbs, pool.size());
    return 0;
  };
}
