// SafetensorsWriter: streams a safetensors file (8-byte header length, compact JSON header padded with spaces to
// 8 bytes as the reference implementation does, then tensor bytes in the order added).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "format/safetensors.h"

namespace fabula {

class SafetensorsWriter {
 public:
  using Producer = std::function<Status(std::span<uint8_t> out)>;  // fills exactly n_bytes

  // "__metadata__" entries, written first and in this order (HF writes {"format":"pt"}). None: key omitted.
  void set_metadata(std::vector<std::pair<std::string, std::string>> metadata) { metadata_ = std::move(metadata); }
  void add_tensor(std::string name, SafetensorsDtype dtype, std::vector<uint64_t> shape, Producer producer);
  void add_tensor(std::string name, SafetensorsDtype dtype, std::vector<uint64_t> shape,
                  std::span<const uint8_t> bytes);  // borrowed until write() returns
  size_t n_tensors() const { return tensors_.size(); }

  // The header exactly as write() emits it (JSON + space padding, without the 8-byte length).
  std::string header() const;

  // Writes path + ".tmp", then renames. Producers run one at a time, in order; progress counts data bytes.
  Status write(const std::string& path, const std::function<void(uint64_t done, uint64_t total)>& progress = {}) const;

 private:
  struct Pending {
    std::string name;
    SafetensorsDtype dtype;
    std::vector<uint64_t> shape;
    Producer producer;
    std::span<const uint8_t> bytes;
    uint64_t n_bytes() const;
  };
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::vector<Pending> tensors_;
};

// Copies the __metadata__ of a file into the writer's order (the reader keeps it sorted; HF has one key).
std::vector<std::pair<std::string, std::string>> safetensors_metadata_of(const SafetensorsFile& file);

}  // namespace fabula
