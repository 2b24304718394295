// safetensors: a validating, zero-copy reader (8-byte LE header length, JSON header, raw data), plus f32 helpers.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_file.h"
#include "base/result.h"

namespace fabula {

// The dtypes fabula reads. Others that safetensors defines (U16, U32, U64, F8_*, F4, F6_*, C64) are
// rejected with kUnsupported naming the dtype; anything else is kCorrupt.
enum class SafetensorsDtype { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

std::string_view safetensors_dtype_name(SafetensorsDtype dtype);  // "F32", "BF16", ... as in the header
size_t safetensors_dtype_size(SafetensorsDtype dtype);            // bytes per element

struct SafetensorsTensor {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<uint64_t> shape;  // row-major as in the header: shape.back() is the contiguous dimension; may be empty
  uint64_t begin = 0;           // data_offsets, relative to the data region (after the header)
  uint64_t end = 0;
  std::span<const uint8_t> data;  // borrows the mapping

  uint64_t n_elements() const { return std::accumulate(shape.begin(), shape.end(), uint64_t{1}, std::multiplies<>()); }
  uint64_t n_bytes() const { return data.size(); }
};

class SafetensorsFile {
 public:
  // Maps and validates the file. As in the reference implementation, tensors must tile the data region
  // exactly (no gaps, no overlaps, nothing after the last one); the header is at most 100 MB.
  static Result<SafetensorsFile> open(const std::string& path);
  // The same parse over caller-owned bytes (tensor views borrow them); `name` prefixes errors.
  static Result<SafetensorsFile> from_bytes(std::span<const uint8_t> bytes, std::string name = "<memory>");

  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // in header order
  const SafetensorsTensor* find_tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"
  uint64_t header_size() const { return header_size_; }                         // JSON bytes
  uint64_t data_offset() const { return 8 + header_size_; }                     // start of the data region
  const std::string& name() const { return name_; }
  std::span<const uint8_t> bytes() const { return bytes_; }

 private:
  MappedFile file_;
  std::string name_;
  std::span<const uint8_t> bytes_;
  uint64_t header_size_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;

  friend Status parse_safetensors(SafetensorsFile& out);
};

// Converts out.size() values of an F32, F16 or BF16 tensor, from element `first` on, to f32 (what converters want);
// other dtypes are kUnsupported.
Status safetensors_to_f32(const SafetensorsTensor& tensor, std::span<float> out, uint64_t first = 0);
Result<std::vector<float>> safetensors_read_f32(const SafetensorsTensor& tensor);

// The safetensors files of a Hugging Face checkpoint directory, as plain file names in the order the index first
// names them: the shards of model.safetensors.index.json's weight_map, else model.safetensors; kNotFound for neither.
Result<std::vector<std::string>> safetensors_shards(const std::string& dir);

}  // namespace fabula
