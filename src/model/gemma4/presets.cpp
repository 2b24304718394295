// Named Gemma 4 shapes as complete hyper-parameters (docs/GEMMA4.md §1): the real 26B-A4B, a small model of the
// same structure, the demo narrator (models/fabula-demo-v1), a wider demo for the pull tests and the tiny test
// model (tests/data/gemma4-tiny).
#include <string>

#include "model/gemma4/hparams.h"

namespace fabula {
namespace {

struct Preset {
  const char* name;
  int64_t n_layer, full_every, n_embd, n_vocab, n_ctx_train, n_head, kv_swa, kv_full, hd_swa, hd_full, n_ff, n_expert,
      n_expert_used, n_ff_exp, sliding_window;
};

// The 2B shape is quick to synthesise (~2.0 B parameters, ~0.6 B active); its 384-wide experts are not a multiple
// of 256, which keeps the k-quant fallback path exercised like the real 704. gemma4-small is the demo's layout at
// 512 wide with a 32k vocabulary: about 80 MB at Q8_0, big enough for the download tests (resume, progress).
constexpr Preset kPresets[] = {
    {"gemma4-26b-a4b", 30, 6, 2816, 262144, 262144, 16, 8, 2, 256, 512, 2112, 128, 8, 704, 1024},
    {"gemma4-2b-a0.5b", 12, 6, 1536, 262144, 262144, 8, 4, 1, 256, 512, 1152, 64, 4, 384, 1024},
    {"gemma4-demo", 6, 6, 256, 2273, 2048, 4, 2, 1, 64, 128, 384, 8, 2, 128, 128},
    {"gemma4-small", 6, 6, 512, 32768, 2048, 4, 2, 1, 64, 128, 1536, 8, 2, 512, 128},
    {"gemma4-tiny-moe", 6, 3, 64, 512, 4096, 4, 2, 1, 16, 32, 96, 8, 2, 24, 8},
};

Gemma4HParams expand(const Preset& p) {
  Gemma4HParams hp;
  hp.n_layer = p.n_layer;
  hp.n_embd = p.n_embd;
  hp.n_vocab = p.n_vocab;
  hp.n_ctx_train = p.n_ctx_train;
  hp.n_head = p.n_head;
  for (int64_t l = 0; l < p.n_layer; ++l) {
    // Full attention every full_every layers, and the last layer always (as the HF config enforces).
    const bool full = (l + 1) % p.full_every == 0 || l == p.n_layer - 1;
    hp.sliding.push_back(!full);
    hp.n_head_kv.push_back(full ? p.kv_full : p.kv_swa);
    hp.n_ff.push_back(p.n_ff);
  }
  hp.head_dim_full = hp.n_rot_full = p.hd_full;
  hp.head_dim_swa = hp.n_rot_swa = p.hd_swa;
  hp.sliding_window = p.sliding_window;
  hp.n_expert = p.n_expert;
  hp.n_expert_used = p.n_expert_used;
  hp.n_ff_exp = p.n_ff_exp;
  hp.rope_base_full = 1e6;
  hp.rope_base_swa = 1e4;
  hp.rms_eps = 1e-6;
  hp.final_softcap = 30.0;
  hp.k_eq_v = true;
  hp.partial_rotary_full = 0.25;
  hp.proportional_rope_full = true;
  return hp;
}

}  // namespace

Result<Gemma4HParams> gemma4_preset(std::string_view name) {
  if (name == "gemma4-tiny") name = "gemma4-tiny-moe";
  for (const Preset& p : kPresets) {
    if (name == p.name) return expand(p);
  }
  std::string known;
  for (const Preset& p : kPresets) known += (known.empty() ? "" : ", ") + std::string(p.name);
  return make_error(ErrorCode::kNotFound, "unknown shape '{}' (known: {})", name, known);
}

}  // namespace fabula
