// Quantization planning (dry run) and streaming execution over GgufWriter producers.
#include "tools/quantize.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "base/progress.h"
#include "model/gemma4/tensors.h"
#include "tensor/quant.h"
#include "tensor/thread_pool.h"

namespace fabula {
namespace {

uint64_t pad(uint64_t n, uint32_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// "<general.architecture>.<suffix>"; "" when the file names no architecture (the caller then counts blocks).
std::string arch_key(const GgufFile& in, const char* suffix) {
  const GgufValue* arch = in.find("general.architecture");
  return arch && arch->as_string() ? *arch->as_string() + "." + suffix : "";
}

std::string human_bytes(uint64_t bytes) {
  return fmt::format("{} bytes ({:.2f} GB, {:.2f} GiB)", bytes, static_cast<double>(bytes) / 1e9,
                     static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
}

}  // namespace

std::vector<QuantTensorIn> quant_inputs(const GgufFile& in) {
  std::vector<QuantTensorIn> out;
  for (const auto& t : in.tensors()) out.push_back({t.name, t.shape, t.type});
  return out;
}

QuantModelInfo quant_model_info(const GgufFile& in) {
  QuantModelInfo info;
  if (auto v = in.get_u64(arch_key(in, "block_count")); v.ok()) info.n_layer = static_cast<uint32_t>(*v);
  if (auto v = in.get_u64(arch_key(in, "expert_count")); v.ok()) info.n_expert = static_cast<uint32_t>(*v);
  if (info.n_layer == 0) {  // no metadata: count the blocks
    for (const auto& t : in.tensors()) {
      int layer = -1;
      if (std::sscanf(t.name.c_str(), "blk.%d.", &layer) == 1 && layer >= 0)
        info.n_layer = std::max(info.n_layer, static_cast<uint32_t>(layer) + 1);
    }
  }
  return info;
}

std::vector<QuantTensorIn> quant_inputs(const Gemma4HParams& hp) {
  std::vector<QuantTensorIn> out;
  for (const auto& t : gemma4_tensors(hp)) {
    out.push_back({t.name, t.shape, tensor_info(t.kind).quantizable ? GgmlType::kBF16 : GgmlType::kF32});
  }
  return out;
}

QuantModelInfo quant_model_info(const Gemma4HParams& hp) {
  return {static_cast<uint32_t>(hp.n_layer), static_cast<uint32_t>(hp.n_expert)};
}

uint64_t gguf_file_size(const std::vector<std::pair<std::string, GgufValue>>& metadata, const QuantPlan& plan,
                        uint32_t alignment) {
  uint64_t n = 4 + 4 + 8 + 8;  // magic, version, n_tensors, n_kv
  for (const auto& [key, value] : metadata) n += 8 + key.size() + 4 + value.serialized_size();
  for (const auto& t : plan.tensors) n += 8 + t.name.size() + 4 + 8 * t.shape.size() + 4 + 8;
  return pad(n, alignment) + plan.data_bytes(alignment);
}

std::string format_quant_plan(const QuantPlan& plan, const std::string& source, uint64_t output_bytes,
                              const std::string& size_note) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> per_type;  // name -> (tensors, bytes)
  uint64_t params = 0;
  for (const auto& t : plan.tensors) {
    auto& [count, bytes] = per_type[std::string(type_name(t.target))];
    ++count;
    bytes += t.bytes;
    params += t.n_elements();
  }
  std::string out = fmt::format("quantize plan: {} -> {} (general.file_type {})\n", source,
                                quant_ftype_name(plan.ftype), static_cast<uint32_t>(plan.ftype));
  out += fmt::format("  {:<6} {:>8} {:>16}\n", "type", "tensors", "bytes");
  for (const auto& [name, cb] : per_type) out += fmt::format("  {:<6} {:>8} {:>16}\n", name, cb.first, cb.second);
  out += fmt::format("{}/{} tensors required fallback quantization\n", plan.n_fallback, plan.tensors.size());
  out += fmt::format("parameters: {} ({:.3f} bits/weight)\n", params,
                     8.0 * static_cast<double>(plan.data_bytes()) / static_cast<double>(params));
  out += fmt::format("output size: {}{}\n", human_bytes(output_bytes), size_note.empty() ? "" : " " + size_note);
  return out;
}

std::vector<std::pair<std::string, GgufValue>> quantized_metadata(const GgufFile& in, QuantFtype ftype) {
  std::vector<std::pair<std::string, GgufValue>> out = in.metadata();
  auto set = [&](const std::string& key, GgufValue v) {
    for (auto& [k, value] : out)
      if (k == key) {
        value = std::move(v);
        return;
      }
    out.emplace_back(key, std::move(v));
  };
  set("general.quantization_version", GgufValue::u32(2));
  set("general.file_type", GgufValue::u32(static_cast<uint32_t>(ftype)));
  return out;
}

Status quantize_gguf(const GgufFile& in, const QuantPlan& plan, const std::string& out_path,
                     const QuantizeOptions& options) {
  if (plan.tensors.size() != in.tensors().size())
    return make_error(ErrorCode::kInternal, "quantize plan has {} tensors, {} has {}", plan.tensors.size(), in.name(),
                      in.tensors().size());
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  GgufWriter writer(in.alignment(), in.version());
  for (auto& [key, value] : quantized_metadata(in, plan.ftype)) writer.set(key, value);

  auto pool = std::make_shared<ThreadPool>(options.n_threads);
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const QuantDecision& d = plan.tensors[i];
    const GgufTensor& t = in.tensors()[i];
    if (d.fallback) log(quant_fallback_line(d));
    if (t.name != d.name)
      return make_error(ErrorCode::kInternal, "quantize plan order differs at tensor {} ('{}')", i, t.name);
    if (d.target == t.type) {
      writer.add_tensor(t.name, t.type, t.shape, t.data);  // unchanged bytes (norms, router, scales)
      continue;
    }
    if (!type_traits(t.type).quantized && t.type != GgmlType::kF32 && t.type != GgmlType::kF16 &&
        t.type != GgmlType::kBF16)
      return make_error(ErrorCode::kUnsupported, "{}: tensor '{}' of type {} cannot be converted", in.name(), t.name,
                        type_name(t.type));
    const uint64_t ne0 = t.shape[0];
    const uint64_t rows = d.n_elements() / ne0;
    const size_t src_row = row_bytes(t.type, ne0);
    const size_t dst_row = row_bytes(d.target, ne0);
    const GgmlType src_type = t.type, dst_type = d.target;
    const uint8_t* src = t.data.data();
    const std::string name = t.name;
    // Rows of an expert tensor are consecutive per expert, so this quantizes expert by expert (no imatrix).
    writer.add_tensor(t.name, d.target, t.shape, [=](std::span<uint8_t> out) -> Status {
      if (out.size() != rows * dst_row)
        return make_error(ErrorCode::kInternal, "tensor '{}': output buffer {} != {}", name, out.size(),
                          rows * dst_row);
      std::vector<std::vector<float>> scratch(pool->size(), std::vector<float>(ne0));
      pool->parallel_for(static_cast<int64_t>(rows), [&](int64_t begin, int64_t end, int thread) {
        float* tmp = scratch[thread].data();
        for (int64_t r = begin; r < end; ++r) {
          dequantize_row(src_type, src + r * src_row, tmp, static_cast<int64_t>(ne0));
          quantize_row(dst_type, tmp, out.data() + r * dst_row, static_cast<int64_t>(ne0));
        }
      });
      return ok_status();
    });
  }
  ProgressBar bar("quantize", plan.data_bytes(in.alignment()), "B");
  std::function<void(uint64_t, uint64_t)> progress;
  if (options.progress) progress = [&](uint64_t done, uint64_t) { bar.set(done); };
  writer.set_split_max_bytes(options.split_max_bytes);
  FABULA_TRY(writer.write(out_path, progress));
  if (writer.written_paths().size() > 1)
    log(fmt::format("split into {} files: {} ...", writer.written_paths().size(), writer.written_paths().front()));
  bar.finish();
  log(fmt::format("{}/{} tensors required fallback quantization", plan.n_fallback, plan.tensors.size()));
  return ok_status();
}

}  // namespace fabula
