// GGUF v2/v3: a validating, zero-copy reader over a MappedFile and a streaming writer.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "base/mapped_file.h"
#include "base/result.h"
#include "tensor/types.h"

namespace fabula {

enum class GgufValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

std::string_view gguf_value_type_name(GgufValueType type);

// One metadata value. Arrays hold elements of one scalar or string type (no nested arrays).
struct GgufValue {
  GgufValueType type = GgufValueType::kU32;
  GgufValueType array_type = GgufValueType::kU32;  // element type when type == kArray
  std::variant<uint64_t, int64_t, double, bool, std::string,
               std::vector<uint64_t>, std::vector<int64_t>, std::vector<double>, std::vector<bool>,
               std::vector<std::string>>
      data;

  // Typed constructors (the type tag is what the writer emits).
  static GgufValue u8(uint8_t v);
  static GgufValue i8(int8_t v);
  static GgufValue u16(uint16_t v);
  static GgufValue i16(int16_t v);
  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue i64(int64_t v);
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue array(GgufValueType element_type, std::vector<uint64_t> v);  // unsigned ints
  static GgufValue array(GgufValueType element_type, std::vector<int64_t> v);   // signed ints
  static GgufValue array(GgufValueType element_type, std::vector<double> v);    // f32 / f64
  static GgufValue array(std::vector<bool> v);
  static GgufValue array(std::vector<std::string> v);

  // Lenient accessors: any integer type converts to the asked-for integer if it fits.
  std::optional<uint64_t> as_u64() const;
  std::optional<int64_t> as_i64() const;
  std::optional<double> as_f64() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  size_t array_size() const;  // 0 unless an array
  // Bytes of the value as written (GGUF: strings are a u64 length + bytes; arrays a u32 type + u64 count + items).
  uint64_t serialized_size() const;
};

// A tensor in a GGUF file. `data` borrows the mapping (zero-copy).
struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::kF32;
  std::vector<uint64_t> shape;  // ggml order: shape[0] is the contiguous (innermost) dimension; 1..4 dims
  uint64_t offset = 0;          // relative to the data section (of its shard's file)
  uint32_t shard = 0;           // split models: the file that holds the data (0: the first)
  std::span<const uint8_t> data;

  uint64_t n_elements() const { return std::accumulate(shape.begin(), shape.end(), uint64_t{1}, std::multiplies<>()); }
  uint64_t n_bytes() const { return data.size(); }
};

struct GgufOpenOptions {
  bool read_into_memory = false;  // --no-mmap: read the bytes instead of mapping them
};

class GgufFile {
 public:
  // Maps and validates the whole file; every error names the byte offset and the field.
  // Validity is strict (what llama.cpp and gguf-py write): tensor data dense and in info order, padding zero,
  // and the file ends exactly after the last tensor's padding, so read -> gguf_copy_into -> write is byte-identical.
  // A split model (llama.cpp's gguf-split: NAME-00001-of-0000N.gguf with split.* keys) opens from its first
  // file as one view: tensors() holds every shard's tensors, metadata() the first file's keys without the split.*
  // ones (a copy is then an ordinary single file); shard_paths() names the files.
  static Result<GgufFile> open(const std::string& path, const GgufOpenOptions& options = {});
  // The same parse over bytes the caller keeps alive (tensor views borrow them); `name` prefixes errors.
  static Result<GgufFile> from_bytes(std::span<const uint8_t> bytes, std::string name = "<memory>");

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }

  const GgufValue* find(const std::string& key) const;
  const GgufTensor* find_tensor(const std::string& name) const;

  // Typed metadata lookups with errors that name the key.
  Result<uint64_t> get_u64(const std::string& key) const;
  Result<double> get_f64(const std::string& key) const;
  Result<std::string> get_string(const std::string& key) const;

  Result<int64_t> get_i64(const std::string& key) const;
  Result<bool> get_bool(const std::string& key) const;
  // Array lookups: the element type must match (any integer type for the integer forms).
  Result<std::vector<std::string>> get_strings(const std::string& key) const;
  Result<std::vector<int64_t>> get_i64_array(const std::string& key) const;

  const std::string& name() const { return name_; }   // the path, or the name given to from_bytes
  std::span<const uint8_t> bytes() const { return bytes_; }  // the whole file
  const MappedFile& file() const { return file_; }    // empty for from_bytes; the first shard of a split

  size_t n_shards() const { return 1 + shards_.size(); }
  std::vector<std::string> shard_paths() const;
  uint64_t total_file_bytes() const;  // every shard together
  void advise_hugepages() const;
  void prefault() const;  // MappedFile::prefault on every shard
  Status lock_memory() const;  // --mlock: pins every shard

 private:
  Status open_other_shards(uint64_t count, const GgufOpenOptions& options);

  MappedFile file_;
  std::vector<MappedFile> shards_;  // the other files of a split model, in order
  std::string name_;
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 3;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t> metadata_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;

  friend class GgufParser;
};

// Streams a GGUF file: add metadata and tensor infos first, then write tensor data in order.
// Tensor bytes come from a callback, so no whole model is held in memory.
class GgufWriter {
 public:
  using Producer = std::function<Status(std::span<uint8_t> out)>;  // fills exactly n_bytes

  // The alignment used is the u32 "general.alignment" value when that key is set, else `alignment`
  // (a non-default one is then recorded as general.alignment, appended last, so readers agree).
  explicit GgufWriter(uint32_t alignment = 32, uint32_t version = 3);

  void set_version(uint32_t version) { version_ = version; }        // 2 or 3
  void set_alignment(uint32_t alignment) { alignment_ = alignment; }  // a power of two
  // --split-max-size: write() then cuts the model into llama.cpp gguf-split files of at most this many tensor
  // data bytes each (a tensor larger than the limit gets a file of its own); 0 = one file.
  void set_split_max_bytes(uint64_t bytes) { split_max_bytes_ = bytes; }
  // Writes every tensor as zeros without producing it, as a sparse file: a full-size model that takes no disk
  // (memory-planning tests: the header is exact, the weights are holes).
  void set_sparse_data(bool sparse) { sparse_data_ = sparse; }
  void set(std::string key, GgufValue value);  // keeps insertion order; replaces an existing key in place
  size_t n_tensors() const { return tensors_.size(); }
  void add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape, Producer producer);
  void add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape, std::span<const uint8_t> bytes);

  // Writes to path + ".tmp" then renames, so a crash never leaves a half-written model under `path`.
  // Validates first (names, shapes, types, value ranges); tensors are produced one at a time, in order.
  // progress(done, total) counts tensor data bytes. With a split limit that the model exceeds, the files are
  // PATH-without-.gguf + "-00001-of-0000N.gguf" ...; written_paths() lists what the last write produced.
  Status write(const std::string& path, const std::function<void(uint64_t done, uint64_t total)>& progress = {});

 private:
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> shape;
    Producer producer;
    std::span<const uint8_t> source;  // written directly when there is no producer
  };
  Status write_one(const std::string& path, const std::function<void(uint64_t done, uint64_t total)>& progress);
  Status write_split(const std::string& path, const std::function<void(uint64_t done, uint64_t total)>& progress);

  uint32_t alignment_;
  uint32_t version_;
  uint64_t split_max_bytes_ = 0;
  bool sparse_data_ = false;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<PendingTensor> tensors_;
  std::vector<std::string> written_paths_;

 public:
  const std::vector<std::string>& written_paths() const { return written_paths_; }
};

// Copies the version, every key (in order, same value types) and every tensor of `in` into `writer`
// (read -> write gives the same bytes). The tensors borrow `in`, which must outlive writer.write().
void gguf_copy_into(const GgufFile& in, GgufWriter& writer);

}  // namespace fabula
