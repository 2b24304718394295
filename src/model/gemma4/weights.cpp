// Binds Gemma 4 tensors from a GGUF file by name, checking each one's shape (from the tensor table, tensors.h) and type.
#include "model/gemma4/weights.h"

#include <cstring>
#include <set>
#include <string>

#include "base/log.h"
#include "format/gguf.h"
#include "model/gemma4/tensors.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

namespace fabula {
namespace {

std::string shape_string(const std::vector<uint64_t>& shape) {
  std::string s = "{";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "}";
}

bool is_matmul_type(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: case GgmlType::kF16: case GgmlType::kBF16: case GgmlType::kQ4_0: case GgmlType::kQ5_0:
    case GgmlType::kQ8_0: case GgmlType::kQ4_K: case GgmlType::kQ5_K: case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

class Binder {
 public:
  Binder(const GgufFile& file, const Gemma4HParams& hp) : file_(file), hp_(hp) {}

  const GgufTensor* find(TensorKind kind, int layer) {
    const std::string name = gguf_tensor_name(kind, layer);
    const GgufTensor* t = file_.find_tensor(name);
    if (t != nullptr) used_.insert(name);
    return t;
  }

  Status check_shape(const GgufTensor& t, std::vector<uint64_t> expected) {
    if (t.shape != expected) {
      return make_error(ErrorCode::kCorrupt, "{}: tensor {} has shape {}, expected {}", file_.name(), t.name,
                        shape_string(t.shape), shape_string(expected));
    }
    const uint64_t need = row_bytes(t.type, t.shape[0]) * (t.n_elements() / t.shape[0]);
    if (t.data.size() < need) {
      return make_error(ErrorCode::kCorrupt, "{}: tensor {} has {} data bytes, expected {}", file_.name(), t.name,
                        t.data.size(), need);
    }
    return ok_status();
  }

  Result<const GgufTensor*> require(TensorKind kind, int layer) {
    const GgufTensor* t = find(kind, layer);
    if (t == nullptr) {
      return make_error(ErrorCode::kNotFound, "{}: missing tensor {}", file_.name(), gguf_tensor_name(kind, layer));
    }
    FABULA_TRY(check_shape(*t, gemma4_tensor_shape(hp_, kind, layer)));
    return t;
  }

  // A 1-D (or [1]) tensor of floats, converted to f32.
  Status vector(TensorKind kind, int layer, std::vector<float>& out) {
    FABULA_ASSIGN(const GgufTensor* t, require(kind, layer));
    return to_f32(*t, out);
  }

  Status to_f32(const GgufTensor& t, std::vector<float>& out) {
    const size_t n = t.n_elements();
    out.resize(n);
    switch (t.type) {
      case GgmlType::kF32:
        std::memcpy(out.data(), t.data.data(), n * 4);
        return ok_status();
      case GgmlType::kF16:
      case GgmlType::kBF16:
        for (size_t i = 0; i < n; ++i) {
          uint16_t h;
          std::memcpy(&h, t.data.data() + 2 * i, 2);
          out[i] = t.type == GgmlType::kF16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
        }
        return ok_status();
      default:
        return make_error(ErrorCode::kUnsupported, "{}: tensor {} has type {}, expected f32, f16 or bf16",
                          file_.name(), t.name, type_name(t.type));
    }
  }

  Result<MatrixView> matrix(TensorKind kind, int layer) {
    FABULA_ASSIGN(const GgufTensor* t, require(kind, layer));
    return view(*t);
  }

  Result<MatrixView> view(const GgufTensor& t) {
    if (!is_matmul_type(t.type)) {
      return make_error(ErrorCode::kUnsupported, "{}: tensor {} has type {}, which fabula cannot multiply",
                        file_.name(), t.name, type_name(t.type));
    }
    MatrixView m;
    m.type = t.type;
    m.data = t.data.data();
    m.cols = static_cast<int64_t>(t.shape[0]);
    m.rows = static_cast<int64_t>(t.shape[1]);
    m.row_stride = row_bytes(t.type, t.shape[0]);
    return m;
  }

  Result<ExpertsView> experts(TensorKind kind, int layer) {
    FABULA_ASSIGN(const GgufTensor* t, require(kind, layer));
    ExpertsView e;
    FABULA_ASSIGN(e.first, view(*t));
    e.expert_stride = e.first.row_stride * static_cast<size_t>(e.first.rows);
    e.n_expert = static_cast<int64_t>(t->shape[2]);
    return e;
  }

  size_t n_used() const { return used_.size(); }
  const std::set<std::string>& used() const { return used_; }

 private:
  const GgufFile& file_;
  const Gemma4HParams& hp_;
  std::set<std::string> used_;
};

Status bind_layer(Binder& b, const Gemma4HParams& hp, int l, Gemma4LayerWeights& w) {
  using K = TensorKind;
  FABULA_TRY(b.vector(K::kAttnNorm, l, w.attn_norm));
  FABULA_ASSIGN(w.attn_q, b.matrix(K::kAttnQ, l));
  FABULA_ASSIGN(w.attn_k, b.matrix(K::kAttnK, l));
  if (b.find(K::kAttnV, l) != nullptr) {
    FABULA_ASSIGN(w.attn_v, b.matrix(K::kAttnV, l));
  }
  FABULA_ASSIGN(w.attn_output, b.matrix(K::kAttnOutput, l));
  FABULA_TRY(b.vector(K::kAttnQNorm, l, w.attn_q_norm));
  FABULA_TRY(b.vector(K::kAttnKNorm, l, w.attn_k_norm));
  FABULA_TRY(b.vector(K::kPostAttentionNorm, l, w.post_attention_norm));

  FABULA_TRY(b.vector(K::kFfnNorm, l, w.ffn_norm));
  FABULA_ASSIGN(w.ffn_gate, b.matrix(K::kFfnGate, l));
  FABULA_ASSIGN(w.ffn_up, b.matrix(K::kFfnUp, l));
  FABULA_ASSIGN(w.ffn_down, b.matrix(K::kFfnDown, l));
  FABULA_TRY(b.vector(K::kPostFfwNorm, l, w.post_ffw_norm));

  // llama.cpp: a layer is MoE iff it has a router.
  w.has_moe = hp.n_expert > 0 && b.find(K::kFfnGateInp, l) != nullptr;
  if (hp.n_expert > 0 && !w.has_moe) {
    return make_error(ErrorCode::kNotFound, "missing tensor {} (expert_count = {})",
                      gguf_tensor_name(K::kFfnGateInp, l), hp.n_expert);
  }
  if (w.has_moe) {
    FABULA_TRY(b.vector(K::kPostFfwNorm1, l, w.post_ffw_norm_1));
    FABULA_ASSIGN(w.ffn_gate_inp, b.matrix(K::kFfnGateInp, l));
    FABULA_TRY(b.vector(K::kFfnGateInpScale, l, w.ffn_gate_inp_scale));
    FABULA_TRY(b.vector(K::kPreFfwNorm2, l, w.pre_ffw_norm_2));
    w.fused_gate_up = b.find(K::kFfnGateUpExps, l) != nullptr || b.find(K::kFfnGateExps, l) == nullptr;
    if (w.fused_gate_up) {
      FABULA_ASSIGN(w.gate_up_exps, b.experts(K::kFfnGateUpExps, l));
    } else {
      FABULA_ASSIGN(w.gate_exps, b.experts(K::kFfnGateExps, l));
      FABULA_ASSIGN(w.up_exps, b.experts(K::kFfnUpExps, l));
    }
    FABULA_ASSIGN(w.down_exps, b.experts(K::kFfnDownExps, l));
    FABULA_TRY(b.vector(K::kFfnDownExpsScale, l, w.down_exps_scale));
    FABULA_TRY(b.vector(K::kPostFfwNorm2, l, w.post_ffw_norm_2));
  }
  if (b.find(K::kLayerOutputScale, l) != nullptr) {
    std::vector<float> s;
    FABULA_TRY(b.vector(K::kLayerOutputScale, l, s));
    w.layer_output_scale = s[0];
  }
  return ok_status();
}

}  // namespace

Result<Gemma4Weights> gemma4_bind_weights(const GgufFile& file, Gemma4HParams& hp) {
  Binder b(file, hp);
  Gemma4Weights w;
  const GgufTensor* embd = b.find(TensorKind::kTokenEmbd, -1);
  if (embd == nullptr) return make_error(ErrorCode::kNotFound, "{}: missing tensor token_embd.weight", file.name());
  if (embd->shape.size() != 2 || embd->shape[0] != static_cast<uint64_t>(hp.n_embd) || embd->shape[1] == 0) {
    return make_error(ErrorCode::kCorrupt, "{}: tensor token_embd.weight has shape {}, expected {{{}, n_vocab}}",
                      file.name(), shape_string(embd->shape), hp.n_embd);
  }
  hp.n_vocab = static_cast<int64_t>(embd->shape[1]);
  FABULA_ASSIGN(w.token_embd, b.matrix(TensorKind::kTokenEmbd, -1));
  FABULA_TRY(b.vector(TensorKind::kOutputNorm, -1, w.output_norm));
  if (b.find(TensorKind::kRopeFreqs, -1) != nullptr) {
    FABULA_TRY(b.vector(TensorKind::kRopeFreqs, -1, w.rope_freqs));
  }
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int l = 0; l < hp.n_layer; ++l) {
    auto st = bind_layer(b, hp, l, w.layers[static_cast<size_t>(l)]);
    if (!st.ok()) {
      Error e = st.take_error();
      if (e.message.rfind(file.name(), 0) != 0) e.message = file.name() + ": " + e.message;
      return e;
    }
    // K=V has no GGUF key: a full layer without attn_v says it.
    if (!hp.is_sliding(l) && w.layers[static_cast<size_t>(l)].attn_v.data == nullptr) hp.k_eq_v = true;
  }
  if (b.n_used() != file.tensors().size()) {
    for (const auto& t : file.tensors()) {
      if (!b.used().count(t.name)) FABULA_LOG_WARN("{}: ignoring unknown tensor {}", file.name(), t.name);
    }
  }
  return w;
}

}  // namespace fabula
