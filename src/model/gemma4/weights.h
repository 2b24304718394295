// Gemma 4 weights bound by name from a GGUF file: matrices are zero-copy views of the mapping, vectors are
// dequantized to owned f32. Every tensor's presence, shape and type is checked against the hyper-parameters.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "model/gemma4/hparams.h"
#include "tensor/matmul.h"

namespace fabula {

class GgufFile;

// A stack of n_expert equally shaped matrices (one 3-D GGUF tensor); expert e starts e * expert_stride bytes in.
struct ExpertsView {
  MatrixView first;
  size_t expert_stride = 0;
  int64_t n_expert = 0;

  MatrixView expert(int64_t e) const {
    MatrixView m = first;
    m.data += static_cast<size_t>(e) * expert_stride;
    return m;
  }
};

struct Gemma4LayerWeights {
  // Attention. hd = head_dim(layer), kv = n_kv(layer).
  std::vector<float> attn_norm;           // [n_embd]
  MatrixView attn_q;                      // [n_embd] -> [n_head * hd]
  MatrixView attn_k;                      // [n_embd] -> [kv * hd]
  MatrixView attn_v;                      // [n_embd] -> [kv * hd]; data == nullptr on K=V layers (V = raw K)
  MatrixView attn_output;                 // [n_head * hd] -> [n_embd]
  std::vector<float> attn_q_norm;         // [hd]
  std::vector<float> attn_k_norm;         // [hd]
  std::vector<float> post_attention_norm; // [n_embd]
  // Dense MLP (always present).
  std::vector<float> ffn_norm;            // [n_embd]
  MatrixView ffn_gate, ffn_up;            // [n_embd] -> [n_ff]
  MatrixView ffn_down;                    // [n_ff] -> [n_embd]
  std::vector<float> post_ffw_norm_1;     // [n_embd]; empty on a layer without experts
  // Routed experts (has_moe).
  bool has_moe = false;
  MatrixView ffn_gate_inp;                // [n_embd] -> [n_expert]  router
  std::vector<float> ffn_gate_inp_scale;  // [n_embd]
  std::vector<float> pre_ffw_norm_2;      // [n_embd]
  bool fused_gate_up = true;
  ExpertsView gate_up_exps;               // per expert [n_embd] -> [2 * n_ff_exp] (gate rows, then up rows)
  ExpertsView gate_exps, up_exps;         // split form: per expert [n_embd] -> [n_ff_exp]
  ExpertsView down_exps;                  // per expert [n_ff_exp] -> [n_embd]
  std::vector<float> down_exps_scale;     // [n_expert]
  std::vector<float> post_ffw_norm_2;     // [n_embd]
  std::vector<float> post_ffw_norm;       // [n_embd]
  float layer_output_scale = 1.0f;
};

struct Gemma4Weights {
  MatrixView token_embd;                  // n_vocab rows of n_embd; also the tied output projection
  std::vector<float> output_norm;         // [n_embd]
  std::vector<float> rope_freqs;          // [head_dim_full / 2] or empty (no frequency factors)
  std::vector<Gemma4LayerWeights> layers;
};

// Binds every tensor; fills hp.n_vocab from token_embd. Errors name the file and the tensor
// ("model.gguf: tensor blk.3.attn_q.weight has shape {64, 96}, expected {64, 128}").
Result<Gemma4Weights> gemma4_bind_weights(const GgufFile& file, Gemma4HParams& hp);

}  // namespace fabula
