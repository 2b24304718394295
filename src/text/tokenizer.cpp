// Tokenizer core: merge table, special-token trie, encode (split specials, normalise, pre-split, BPE) and decode.
#include "text/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/check.h"
#include "text/tokenizer_impl.h"
#include "base/utf8.h"

namespace fabula {

// ---- MergeTable ----

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  size_ = 0;
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t i = hash(s.key) & mask_;
    while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
    slots_[i] = s;
    ++size_;
  }
}

void MergeTable::grow() { reserve(std::max<size_t>(16, size_ * 2 + 2)); }

bool MergeTable::insert(int32_t a, int32_t b, int32_t rank, int32_t merged) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const uint64_t key = pack(a, b);
  size_t i = hash(key) & mask_;
  while (slots_[i].key != kEmpty) {
    if (slots_[i].key == key) return false;
    i = (i + 1) & mask_;
  }
  slots_[i] = Slot{key, rank, merged};
  ++size_;
  return true;
}

// ---- TokenIndex ----

void TokenIndex::build(const std::vector<std::string>& tokens) {
  tokens_ = &tokens;
  size_t cap = 16;
  while (cap < tokens.size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  for (size_t id = 0; id < tokens.size(); ++id) {
    const std::string& t = tokens[id];
    if (t.empty()) continue;
    const uint64_t h = hash(t);
    const uint32_t tag = uint32_t(h >> 32) | 1u;
    size_t i = size_t(h) & mask_;
    bool duplicate = false;
    for (; slots_[i].tag != 0; i = (i + 1) & mask_) {
      if (slots_[i].tag == tag && tokens[size_t(slots_[i].id)] == t) {
        duplicate = true;  // the lowest id keeps the text
        break;
      }
    }
    if (!duplicate) slots_[i] = Slot{tag, int32_t(id)};
  }
}

// ---- TokenTrie ----

void TokenTrie::insert(std::string_view text, int32_t id) {
  if (text.empty()) return;
  const uint8_t first = uint8_t(text[0]);
  if (root_[first] == 0) {
    root_[first] = int32_t(nodes_.size());
    nodes_.emplace_back();
  }
  int32_t node = root_[first];
  for (size_t i = 1; i < text.size(); ++i) {
    const uint8_t b = uint8_t(text[i]);
    auto& ch = nodes_[size_t(node)].children;
    auto it = std::lower_bound(ch.begin(), ch.end(), b, [](const auto& p, uint8_t v) { return p.first < v; });
    if (it != ch.end() && it->first == b) {
      node = it->second;
    } else {
      const int32_t next = int32_t(nodes_.size());
      ch.insert(it, {b, next});
      nodes_.emplace_back();  // may reallocate: `ch` is not used after this
      node = next;
    }
  }
  if (nodes_[size_t(node)].token < 0) nodes_[size_t(node)].token = id;
}

int32_t TokenTrie::match(std::string_view text, size_t pos, size_t* len) const {
  int32_t node = root_[uint8_t(text[pos])];
  if (node == 0) return -1;
  int32_t best = -1;
  size_t i = pos + 1;
  while (true) {
    const Node& n = nodes_[size_t(node)];
    if (n.token >= 0) {
      best = n.token;
      *len = i - pos;
    }
    if (i >= text.size() || n.children.empty()) break;
    const uint8_t b = uint8_t(text[i]);
    auto it = std::lower_bound(n.children.begin(), n.children.end(), b,
                               [](const auto& p, uint8_t v) { return p.first < v; });
    if (it == n.children.end() || it->first != b) break;
    node = it->second;
    ++i;
  }
  return best;
}

// ---- helpers ----

bool is_gemma4_visible_token(std::string_view t) {
  return t == "<|channel>" || t == "<channel|>" || t == "<|tool_call>" || t == "<tool_call|>" ||
         t == "<|tool_response>" || t == "<tool_response|>" || t == "<|\"|>";
}

int parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void Tokenizer::Impl::finish(const std::vector<int32_t>& split_out) {
  token_ids.build(tokens);
  byte_ids.fill(-1);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int b = parse_byte_token(tokens[i]);
    if (b >= 0 && byte_ids[size_t(b)] < 0) byte_ids[size_t(b)] = int32_t(i);
  }
  for (int32_t id : split_out) specials.insert(tokens[size_t(id)], id);
}

void Tokenizer::Impl::build_eog() {
  eog.clear();
  if (eos >= 0) eog.push_back(eos);
  for (const char* name : {"<eos>", "<turn|>", "<end_of_turn>", "<|tool_response>", "<|im_end|>", "<|eot_id|>",
                           "<|endoftext|>"}) {
    const int32_t id = lookup(name);
    if (id >= 0 && std::find(eog.begin(), eog.end(), id) == eog.end()) eog.push_back(id);
  }
  std::sort(eog.begin(), eog.end());
}

Result<Tokenizer> tokenizer_from_impl(std::shared_ptr<Tokenizer::Impl> impl) {
  if (impl->tokens.empty()) return make_error(ErrorCode::kCorrupt, "{}: empty vocabulary", impl->info.source);
  return Tokenizer(std::shared_ptr<const Tokenizer::Impl>(std::move(impl)));
}

Result<Tokenizer> Tokenizer::load(const std::string& path) {
  char head[4] = {};
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return make_error(ErrorCode::kNotFound, "{}: cannot open tokenizer file", path);
  const size_t got = std::fread(head, 1, 4, f);
  std::fclose(f);
  if (got == 4 && std::memcmp(head, "GGUF", 4) == 0) {
    FABULA_ASSIGN(auto gguf, GgufFile::open(path));
    return from_gguf(gguf);
  }
  return from_tokenizer_json(path);
}

// ---- encode ----

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 '▁'

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t len;  // bytes of the word it covers; 0 once merged away
};

struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t merged;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

void Tokenizer::Impl::bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges) {
    const int32_t id = lookup(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  bool pending_unk = false;
  auto push = [&](int32_t id, uint32_t len) {
    syms.push_back(Symbol{id, int32_t(syms.size()) - 1, -1, len});
  };
  for (size_t i = 0; i < word.size();) {
    // A malformed sequence (only possible from invalid input) counts one byte at a time.
    size_t n = std::min(word.size() - i, utf8_sequence_length(uint8_t(word[i])));
    for (size_t k = 1; k < n; ++k) {
      if ((uint8_t(word[i + k]) & 0xC0) != 0x80) {
        n = 1;
        break;
      }
    }
    const std::string_view ch = word.substr(i, n);
    int32_t id = lookup(ch);
    if (id >= 0) {
      pending_unk = false;
      push(id, uint32_t(n));
    } else {
      bool done = false;
      if (byte_fallback) {
        bool all = true;
        for (char c : ch) all = all && byte_ids[uint8_t(c)] >= 0;
        if (all) {
          for (char c : ch) push(byte_ids[uint8_t(c)], 1);
          pending_unk = false;
          done = true;
        }
      }
      if (!done && unk >= 0) {
        if (fuse_unk && pending_unk) {
          syms.back().len += uint32_t(n);
        } else {
          push(unk, uint32_t(n));
          pending_unk = true;
        }
      }
    }
    i += n;
  }
  for (size_t i = 0; i + 1 < syms.size(); ++i) syms[i].next = int32_t(i + 1);

  std::vector<Candidate> heap;
  heap.reserve(syms.size());
  auto consider = [&](int32_t left) {
    const int32_t right = syms[size_t(left)].next;
    if (right < 0) return;
    int32_t merged = 0;
    const int32_t rank = merges.find(syms[size_t(left)].id, syms[size_t(right)].id, &merged);
    if (rank < 0) return;
    heap.push_back(Candidate{rank, left, merged});
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  };
  for (size_t i = 0; i + 1 < syms.size(); ++i) consider(int32_t(i));

  // HF tokenizers' Word::merge_all: lowest rank first, leftmost on ties; stale entries are skipped.
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = syms[size_t(top.pos)];
    if (left.len == 0 || left.next < 0) continue;
    Symbol& right = syms[size_t(left.next)];
    int32_t merged = 0;
    if (merges.find(left.id, right.id, &merged) < 0 || merged != top.merged) continue;
    left.id = merged;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (left.next >= 0) syms[size_t(left.next)].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (const Symbol& s : syms)
    if (s.len > 0) out.push_back(s.id);
}

void Tokenizer::Impl::encode_segment(std::string_view raw, std::vector<int32_t>& out) const {
  if (raw.empty()) return;
  std::string norm;
  norm.reserve(raw.size() + raw.size() / 2 + prepend.size());
  norm += prepend;
  for (char c : raw) {
    if (c == ' ' && replace_space) {
      norm += kSpaceMark;
    } else {
      norm += c;
    }
  }
  const std::string_view s = norm;
  switch (pre_split) {
    case PreSplit::kNone:
      bpe_word(s, out);
      return;
    case PreSplit::kNewlineRuns: {
      size_t i = 0;
      while (i < s.size()) {
        const bool nl = s[i] == '\n';
        size_t j = i;
        while (j < s.size() && (s[j] == '\n') == nl) ++j;
        const std::string_view w = s.substr(i, j - i);
        const int32_t whole = nl && newline_run_whole ? lookup(w) : -1;
        if (whole >= 0) {
          out.push_back(whole);
        } else {
          bpe_word(w, out);
        }
        i = j;
      }
      return;
    }
    case PreSplit::kSpaceWordRuns: {
      // "▁*[^▁\n]+|▁+|\n+", alternatives tried in order.
      auto is_mark = [&](size_t i) { return s.compare(i, kSpaceMark.size(), kSpaceMark) == 0; };
      size_t i = 0;
      while (i < s.size()) {
        size_t j = i;
        if (s[i] == '\n') {
          while (j < s.size() && s[j] == '\n') ++j;
        } else {
          while (j < s.size() && is_mark(j)) j += kSpaceMark.size();
          size_t k = j;
          while (k < s.size() && s[k] != '\n' && !is_mark(k)) ++k;
          if (k > j) j = k;  // ▁*[^▁\n]+ matched; otherwise the ▁+ alternative ends at j
        }
        bpe_word(s.substr(i, j - i), out);
        i = j;
      }
      return;
    }
    case PreSplit::kLiteral: {
      const std::string_view pat = split_literal;
      if (pat.empty()) {
        bpe_word(s, out);
        return;
      }
      // Pieces: text runs and delimiter matches, combined per HF SplitDelimiterBehavior.
      std::vector<std::pair<std::string_view, bool>> pieces;
      size_t i = 0;
      while (i < s.size()) {
        const size_t m = s.find(pat, i);
        if (m == std::string_view::npos) {
          pieces.push_back({s.substr(i), false});
          break;
        }
        if (m > i) pieces.push_back({s.substr(i, m - i), false});
        pieces.push_back({s.substr(m, pat.size()), true});
        i = m + pat.size();
      }
      std::vector<std::string_view> words;
      auto join = [&](std::string_view a, std::string_view b) {
        return std::string_view(a.data(), size_t(b.data() + b.size() - a.data()));
      };
      for (size_t p = 0; p < pieces.size(); ++p) {
        const auto& [text, delim] = pieces[p];
        switch (split_behavior) {
          case SplitBehavior::kRemoved:
            if (!delim) words.push_back(text);
            break;
          case SplitBehavior::kIsolated:
            words.push_back(text);
            break;
          case SplitBehavior::kMergedWithPrevious:
            if (delim && !words.empty() && !pieces[p - 1].second) {
              words.back() = join(words.back(), text);
            } else {
              words.push_back(text);
            }
            break;
          case SplitBehavior::kMergedWithNext:
            if (delim && p + 1 < pieces.size() && !pieces[p + 1].second) {
              words.push_back(join(text, pieces[p + 1].first));
              ++p;
            } else {
              words.push_back(text);
            }
            break;
          case SplitBehavior::kContiguous:
            if (delim && !words.empty() && p > 0 && pieces[p - 1].second) {
              words.back() = join(words.back(), text);
            } else {
              words.push_back(text);
            }
            break;
        }
      }
      for (std::string_view w : words) bpe_word(w, out);
      return;
    }
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos_token, bool parse_special) const {
  std::vector<int32_t> out;
  if (!impl_) return out;
  const Impl& m = *impl_;
  out.reserve(text.size() / 3 + 4);
  if (add_bos_token && m.bos >= 0) out.push_back(m.bos);
  size_t seg = 0;
  if (parse_special && !m.specials.empty()) {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t len = 0;
      const int32_t id = m.specials.match(text, pos, &len);
      if (id < 0) {
        ++pos;
        continue;
      }
      m.encode_segment(text.substr(seg, pos - seg), out);
      out.push_back(id);
      pos += len;
      seg = pos;
    }
  }
  m.encode_segment(text.substr(seg), out);
  return out;
}

// ---- decode and accessors ----

size_t Tokenizer::n_tokens() const { return impl_ ? impl_->tokens.size() : 0; }

std::string_view Tokenizer::token_text(int32_t id) const {
  if (!impl_ || id < 0 || size_t(id) >= impl_->tokens.size()) return {};
  return impl_->tokens[size_t(id)];
}

TokenType Tokenizer::token_type(int32_t id) const {
  if (!impl_ || id < 0 || size_t(id) >= impl_->types.size()) return TokenType::kUndefined;
  return impl_->types[size_t(id)];
}

std::string Tokenizer::token_bytes(int32_t id, bool render_control) const {
  const std::string_view t = token_text(id);
  switch (token_type(id)) {
    case TokenType::kByte: {
      const int b = parse_byte_token(t);
      return b >= 0 ? std::string(1, char(b)) : std::string(t);
    }
    case TokenType::kControl:
    case TokenType::kUnknown:
    case TokenType::kUnused:
      if (!render_control) return {};
      break;
    default:
      break;
  }
  std::string s;
  s.reserve(t.size());
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      s += ' ';
      i += kSpaceMark.size();
    } else {
      s += t[i++];
    }
  }
  return s;
}

int32_t Tokenizer::find_token(std::string_view text) const { return impl_ ? impl_->lookup(text) : -1; }

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_control) const {
  std::string bytes;
  for (int32_t id : ids) bytes += token_bytes(id, render_control);
  std::string out;
  utf8_sanitize(bytes, out, /*final=*/true);
  return out;
}

bool Tokenizer::is_eog(int32_t id) const {
  return impl_ && std::binary_search(impl_->eog.begin(), impl_->eog.end(), id);
}

const std::vector<int32_t>& Tokenizer::eog_ids() const {
  static const std::vector<int32_t> kNone;
  return impl_ ? impl_->eog : kNone;
}

int32_t Tokenizer::bos_id() const { return impl_ ? impl_->bos : -1; }
int32_t Tokenizer::eos_id() const { return impl_ ? impl_->eos : -1; }
bool Tokenizer::add_bos() const { return impl_ && impl_->add_bos; }

const std::string& Tokenizer::chat_template() const {
  static const std::string kEmpty;
  return impl_ ? impl_->chat_template : kEmpty;
}

const TokenizerInfo& Tokenizer::info() const {
  static const TokenizerInfo kEmpty;
  return impl_ ? impl_->info : kEmpty;
}

// ---- StreamingDetokenizer ----

size_t StreamingDetokenizer::feed(int32_t id, std::string& out) {
  pending_ += tokenizer_->token_bytes(id, render_control_);
  const size_t before = out.size();
  const size_t used = utf8_sanitize(pending_, out, /*final=*/false);
  pending_.erase(0, used);
  return out.size() - before;
}

std::string StreamingDetokenizer::flush() {
  std::string out;
  utf8_sanitize(pending_, out, /*final=*/true);
  pending_.clear();
  return out;
}

}  // namespace fabula
