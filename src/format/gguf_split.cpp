// Split GGUF: opening the other files of a split model into one view, and writing a model as split files.
#include "format/gguf_split.h"

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "format/gguf.h"
#include "format/gguf_internal.h"

namespace fabula {

std::string gguf_split_path(const std::string& prefix, uint32_t index, uint32_t count) {
  return fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix, index + 1, count);
}

std::optional<GgufSplitName> parse_gguf_split_name(std::string_view path) {
  // ...-NNNNN-of-MMMMM.gguf: 5 digits each, as llama.cpp writes (more digits are accepted for > 99999 files).
  constexpr std::string_view kExt = ".gguf";
  if (path.size() < kExt.size() || path.substr(path.size() - kExt.size()) != kExt) return std::nullopt;
  std::string_view stem = path.substr(0, path.size() - kExt.size());
  const size_t of = stem.rfind("-of-");
  if (of == std::string_view::npos) return std::nullopt;
  const size_t dash = stem.rfind('-', of == 0 ? 0 : of - 1);
  if (dash == std::string_view::npos || dash == 0) return std::nullopt;
  auto number = [](std::string_view digits) -> std::optional<uint32_t> {
    if (digits.size() < 5) return std::nullopt;
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
    return v;
  };
  auto no = number(stem.substr(dash + 1, of - dash - 1));
  auto count = number(stem.substr(of + 4));
  // A count past split.count's range is no file llama.cpp or fabula wrote; a name claiming 55,550,008 parts once
  // had `fabula pull` list every one of them (fuzz_model_ref, out of memory).
  if (!no || !count || *no < 1 || *no > *count || *count > kGgufSplitMaxCount) return std::nullopt;
  return GgufSplitName{std::string(stem.substr(0, dash)), *no - 1, *count};
}

std::optional<uint64_t> parse_split_size(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double scale = 1;
  switch (text.back()) {
    case 'K': case 'k': scale = 1e3; break;
    case 'M': case 'm': scale = 1e6; break;
    case 'G': case 'g': scale = 1e9; break;
    default: break;
  }
  if (scale != 1) text.remove_suffix(1);
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !(v > 0) || v * scale > 1e18) return std::nullopt;
  return static_cast<uint64_t>(v * scale);
}

namespace {

Error split_error(const std::string& path, const std::string& what) {
  return make_error(ErrorCode::kCorrupt, "{}: split model: {}", path, what);
}

}  // namespace

Status GgufFile::open_other_shards(uint64_t count, const GgufOpenOptions& options) {
  const std::string first = name_;
  const GgufValue* no_value = find(std::string(kSplitNoKey));
  const uint64_t no = no_value != nullptr ? no_value->as_u64().value_or(~0ull) : 0;
  if (count == 0 || count > 99999) return split_error(first, fmt::format("{} = {} (expected 1..99999)", kSplitCountKey, count));
  auto name = parse_gguf_split_name(first);
  if (no != 0) {
    std::string hint = name ? fmt::format("; open the first file, {}", gguf_split_path(name->prefix, 0, name->count))
                            : std::string();
    return make_error(ErrorCode::kInvalidArgument, "{}: this is part {} of {} of a split model{}", first, no + 1, count,
                      hint);
  }
  if (count > 1 && (!name || name->count != count || name->index != 0)) {
    return split_error(first, fmt::format("{} = {} but the file is not named NAME-00001-of-{:05d}.gguf, so its other "
                                          "parts cannot be found (keep llama.cpp's gguf-split names)",
                                          kSplitCountKey, count, count));
  }
  std::optional<uint64_t> declared;
  if (const GgufValue* t = find(std::string(kSplitTensorsKey)); t != nullptr) declared = t->as_u64();

  for (uint64_t i = 1; i < count; ++i) {
    const std::string path = gguf_split_path(name->prefix, static_cast<uint32_t>(i), static_cast<uint32_t>(count));
    auto mapped = options.read_into_memory ? MappedFile::read(path) : MappedFile::open(path);
    if (!mapped.ok()) {
      if (mapped.error().code == ErrorCode::kNotFound) {
        return make_error(ErrorCode::kNotFound, "{}: part {} of {} of this split model is missing ({}); all parts "
                          "must sit next to the first", first, i + 1, count, path);
      }
      return mapped.take_error();
    }
    FABULA_ASSIGN(GgufFile part, from_bytes(mapped->bytes(), path));
    const GgufValue* part_no = part.find(std::string(kSplitNoKey));
    const GgufValue* part_count = part.find(std::string(kSplitCountKey));
    if (part_no == nullptr || part_no->as_u64() != i || part_count == nullptr || part_count->as_u64() != count) {
      return split_error(path, fmt::format("expected {} = {} and {} = {} (a part of another model?)", kSplitNoKey, i,
                                           kSplitCountKey, count));
    }
    for (GgufTensor& t : part.tensors_) {
      if (tensor_index_.count(t.name) != 0) {
        return split_error(path, fmt::format("tensor '{}' is also in an earlier part", t.name));
      }
      t.shard = static_cast<uint32_t>(i);
      tensor_index_.emplace(t.name, tensors_.size());
      tensors_.push_back(std::move(t));
    }
    shards_.push_back(std::move(*mapped));  // the mapping's address does not move: the tensor views stay valid
  }
  if (declared && *declared != tensors_.size()) {
    return split_error(first, fmt::format("{} = {} but the {} parts hold {} tensors", kSplitTensorsKey, *declared,
                                          count, tensors_.size()));
  }
  // The view is one model: drop the bookkeeping keys so a copy (quantize, experts) is an ordinary file.
  std::erase_if(metadata_, [](const auto& kv) { return kv.first.rfind("split.", 0) == 0; });
  metadata_index_.clear();
  for (size_t i = 0; i < metadata_.size(); ++i) metadata_index_.emplace(metadata_[i].first, i);
  return ok_status();
}

std::vector<std::string> GgufFile::shard_paths() const {
  std::vector<std::string> out{name_};
  for (const auto& s : shards_) out.push_back(s.path());
  return out;
}

uint64_t GgufFile::total_file_bytes() const {
  uint64_t total = bytes_.size();
  for (const auto& s : shards_) total += s.size();
  return total;
}

void GgufFile::advise_hugepages() const {
  file_.advise_hugepages();
  for (const auto& s : shards_) s.advise_hugepages();
}

void GgufFile::prefault() const {
  file_.prefault();
  for (const auto& s : shards_) s.prefault();
}

Status GgufFile::lock_memory() const {
  FABULA_TRY(file_.lock());
  for (const auto& s : shards_) FABULA_TRY(s.lock());
  return ok_status();
}

Status GgufWriter::write_split(const std::string& path, const std::function<void(uint64_t, uint64_t)>& progress) {
  using gguf_detail::pad_to;
  // Group tensors in order: a new file starts when the next tensor would push this one past the limit.
  std::vector<std::vector<size_t>> groups(1);
  uint64_t in_group = 0, total = 0;
  std::vector<uint64_t> padded(tensors_.size(), 0);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const auto& t = tensors_[i];
    auto traits = type_traits(static_cast<uint32_t>(t.type));
    uint64_t n = 0;
    if (traits) gguf_detail::tensor_bytes(*traits, t.shape, std::numeric_limits<int64_t>::max(), &n);
    padded[i] = pad_to(n, alignment_);
    if (!groups.back().empty() && in_group + padded[i] > split_max_bytes_) {
      groups.emplace_back();
      in_group = 0;
    }
    groups.back().push_back(i);
    in_group += padded[i];
    total += padded[i];
  }
  if (groups.size() == 1) {  // fits: an ordinary file under the asked-for name
    FABULA_TRY(write_one(path, progress));
    written_paths_.push_back(path);
    return ok_status();
  }
  if (groups.size() > 99999) {
    return make_error(ErrorCode::kInvalidArgument, "gguf writer: --split-max-size {} would make {} files",
                      split_max_bytes_, groups.size());
  }
  std::string prefix = path;
  if (prefix.size() > 5 && prefix.substr(prefix.size() - 5) == ".gguf") prefix.resize(prefix.size() - 5);
  const auto count = static_cast<uint32_t>(groups.size());
  uint64_t done_before = 0;
  for (uint32_t g = 0; g < count; ++g) {
    GgufWriter part(alignment_, version_);
    part.sparse_data_ = sparse_data_;
    if (g == 0) {
      for (const auto& [k, v] : metadata_)
        if (k.rfind("split.", 0) != 0) part.set(k, v);
    } else {
      for (const auto& [k, v] : metadata_)
        if (k == gguf_detail::kAlignmentKey) part.set(k, v);  // every part must agree on the alignment
    }
    part.set(std::string(kSplitNoKey), GgufValue::u16(static_cast<uint16_t>(g)));
    part.set(std::string(kSplitCountKey), GgufValue::u16(static_cast<uint16_t>(count)));
    part.set(std::string(kSplitTensorsKey), GgufValue::i32(static_cast<int32_t>(tensors_.size())));
    uint64_t bytes = 0;
    for (size_t i : groups[g]) {
      part.tensors_.push_back(tensors_[i]);
      bytes += padded[i];
    }
    const std::string part_path = gguf_split_path(prefix, g, count);
    FABULA_TRY(part.write_one(part_path, [&](uint64_t done, uint64_t) {
      if (progress) progress(done_before + done, total);
    }));
    written_paths_.push_back(part_path);
    done_before += bytes;
  }
  return ok_status();
}

}  // namespace fabula
