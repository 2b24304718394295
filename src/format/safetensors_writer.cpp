// The streaming safetensors writer: header in memory, tensor bytes one tensor at a time into path.tmp, rename.
#include "format/safetensors_writer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"

namespace fabula {
namespace {

std::string quoted(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

uint64_t SafetensorsWriter::Pending::n_bytes() const {
  uint64_t n = safetensors_dtype_size(dtype);
  for (uint64_t d : shape) n *= d;
  return n;
}

void SafetensorsWriter::add_tensor(std::string name, SafetensorsDtype dtype, std::vector<uint64_t> shape,
                                   Producer producer) {
  tensors_.push_back(Pending{std::move(name), dtype, std::move(shape), std::move(producer), {}});
}

void SafetensorsWriter::add_tensor(std::string name, SafetensorsDtype dtype, std::vector<uint64_t> shape,
                                   std::span<const uint8_t> bytes) {
  tensors_.push_back(Pending{std::move(name), dtype, std::move(shape), nullptr, bytes});
}

std::string SafetensorsWriter::header() const {
  // Compact JSON exactly as serde_json writes the reference header: metadata first, then tensors in data order.
  std::string h = "{";
  bool first = true;
  if (!metadata_.empty()) {
    h += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata_.size(); ++i)
      h += fmt::format("{}{}:{}", i ? "," : "", quoted(metadata_[i].first), quoted(metadata_[i].second));
    h += "}";
    first = false;
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    h += first ? "" : ",";
    first = false;
    h += quoted(t.name) + ":{\"dtype\":\"" + std::string(safetensors_dtype_name(t.dtype)) + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) h += fmt::format("{}{}", i ? "," : "", t.shape[i]);
    const uint64_t end = offset + t.n_bytes();
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(end) + "]}";
    offset = end;
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');  // the data region starts 8-byte aligned
  return h;
}

Status SafetensorsWriter::write(const std::string& path,
                                const std::function<void(uint64_t, uint64_t)>& progress) const {
  uint64_t total = 0;
  for (const auto& t : tensors_) {
    if (!t.producer && t.bytes.size() != t.n_bytes())
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}' has {} bytes, its shape needs {}", path, t.name,
                        t.bytes.size(), t.n_bytes());
    total += t.n_bytes();
  }
  AtomicFile out(path);
  FABULA_TRY(out.open());
  const std::string h = header();
  const uint64_t n = h.size();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));  // little-endian u64
  FABULA_TRY(out.write(len, 8));
  FABULA_TRY(out.write(reinterpret_cast<const uint8_t*>(h.data()), h.size()));
  uint64_t done = 0;
  std::vector<uint8_t> buffer;
  for (const auto& t : tensors_) {
    if (t.producer) {
      buffer.assign(t.n_bytes(), 0);
      Status st = t.producer(std::span<uint8_t>(buffer));
      if (!st.ok()) return st.take_error();
      FABULA_TRY(out.write(buffer.data(), buffer.size()));
    } else {
      FABULA_TRY(out.write(t.bytes.data(), t.bytes.size()));
    }
    done += t.n_bytes();
    if (progress) progress(done, total);
  }
  return out.commit();
}

std::vector<std::pair<std::string, std::string>> safetensors_metadata_of(const SafetensorsFile& file) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto& m = file.metadata();
  if (auto it = m.find("format"); it != m.end()) out.emplace_back(*it);  // HF puts "format" first
  for (const auto& kv : m)
    if (kv.first != "format") out.emplace_back(kv);
  return out;
}

}  // namespace fabula
