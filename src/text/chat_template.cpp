// Native rendering of the Gemma 4 / Gemma 3 chat templates, variant flags detected from the template text.
#include "text/chat_template.h"

#include <string>

#include "base/ascii.h"

namespace fabula {

namespace {

// Jinja's trim is Python's str.strip(): whitespace at both ends.
constexpr std::string_view kJinjaSpace = " \t\n\r\f\v";

// The 26B template's strip_thinking macro: drop every <|channel>...<channel|> block, then trim.
std::string strip_thinking(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t close = text.find("<channel|>", pos);
    const std::string_view part = text.substr(pos, close == std::string_view::npos ? std::string_view::npos
                                                                                   : close - pos);
    const size_t open = part.find("<|channel>");
    out.append(open == std::string_view::npos ? part : part.substr(0, open));
    if (close == std::string_view::npos) break;
    pos = close + std::string_view("<channel|>").size();
  }
  return std::string(ascii_trim(out, kJinjaSpace));
}

// Template text with the escape "\n" inside Jinja string literals turned into a newline, so a literal
// newline (chat_template.jinja) and an escaped one ('...\n...') read the same.
std::string unescape_newlines(std::string_view t) {
  std::string s;
  s.reserve(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '\\' && i + 1 < t.size() && t[i + 1] == 'n') {
      s += '\n';
      ++i;
    } else {
      s += t[i];
    }
  }
  return s;
}

}  // namespace

Result<ChatTemplate> ChatTemplate::detect(std::string_view template_text) {
  const std::string t = unescape_newlines(template_text);
  ChatTemplate ct;
  if (t.find("<|turn>") != std::string::npos) {
    ct.family_ = ChatFamily::kGemma4;
    ct.thinking_ = t.find("enable_thinking") != std::string::npos && t.find("<|think|>") != std::string::npos;
    ct.think_newline_ = t.find("<|think|>\n") != std::string::npos;
    ct.empty_thought_ = t.find("<|channel>thought\n<channel|>") != std::string::npos;
    ct.strip_thinking_ = t.find("<|channel>") != std::string::npos && t.find("split") != std::string::npos;
    return ct;
  }
  if (t.find("<start_of_turn>") != std::string::npos) {
    ct.family_ = ChatFamily::kGemma3;
    ct.thinking_ = false;
    ct.think_newline_ = false;
    ct.empty_thought_ = false;
    ct.strip_thinking_ = false;
    return ct;
  }
  if (ascii_trim(template_text, kJinjaSpace).empty()) {
    return make_error(ErrorCode::kNotFound, "the model has no chat template (tokenizer.chat_template is empty)");
  }
  return make_error(ErrorCode::kUnsupported,
                    "unknown chat template family: expected Gemma 4 ('<|turn>') or Gemma 3 ('<start_of_turn>') "
                    "markers; template begins: {}",
                    std::string(template_text.substr(0, 80)));
}

ChatTemplate ChatTemplate::gemma4() { return ChatTemplate(); }

std::string ChatTemplate::generation_prompt(bool enable_thinking) const {
  if (family_ == ChatFamily::kGemma3) return "<start_of_turn>model\n";
  std::string s = "<|turn>model\n";
  // Thinking-aware templates append the closed empty channel only when thinking is off; the demo's always does.
  if (empty_thought_ && !(thinking_ && enable_thinking)) s += "<|channel>thought\n<channel|>";
  return s;
}

std::string_view ChatTemplate::end_of_turn() const {
  return family_ == ChatFamily::kGemma3 ? "<end_of_turn>" : "<turn|>";
}

bool ChatTemplate::prompt_opens_reasoning(std::string_view rendered) const {
  if (family_ != ChatFamily::kGemma4) return false;
  const size_t open = rendered.rfind("<|channel>");
  if (open == std::string_view::npos) return false;
  return rendered.find("<channel|>", open) == std::string_view::npos;
}

Result<std::string> ChatTemplate::render(std::span<const ChatMessage> messages,
                                         const ChatRenderOptions& options) const {
  if (messages.empty()) return make_error(ErrorCode::kInvalidArgument, "chat template: no messages");
  auto role_of = [](const std::string& r) -> std::string {
    if (r == "assistant") return "model";
    if (r == "developer") return "system";
    return r;
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string r = role_of(messages[i].role);
    if (r != "system" && r != "user" && r != "model") {
      return make_error(ErrorCode::kInvalidArgument,
                        "chat template: messages[{}] has role '{}' (expected system, developer, user, assistant, "
                        "model)",
                        i, messages[i].role);
    }
  }
  std::string out;
  if (options.add_bos) out += "<bos>";

  if (family_ == ChatFamily::kGemma3) {
    // System text becomes a prefix of the first user turn.
    size_t first = 0;
    std::string prefix;
    if (role_of(messages[0].role) == "system") {
      prefix = std::string(ascii_trim(messages[0].content, kJinjaSpace)) + "\n\n";
      first = 1;
    }
    for (size_t i = first; i < messages.size(); ++i) {
      const std::string r = role_of(messages[i].role);
      out += "<start_of_turn>" + r + "\n";
      if (i == first) out += prefix;
      out += ascii_trim(messages[i].content, kJinjaSpace);
      out += "<end_of_turn>\n";
    }
    if (options.add_generation_prompt) out += generation_prompt(false);
    return out;
  }

  const bool thinking = thinking_ && options.enable_thinking;
  size_t first = 0;
  if (thinking_ && (thinking || role_of(messages[0].role) == "system")) {
    // The 26B template's system block: <|think|> first, then the system text.
    out += "<|turn>system\n";
    if (thinking) out += think_newline_ ? "<|think|>\n" : "<|think|>";
    if (role_of(messages[0].role) == "system") {
      out += ascii_trim(messages[0].content, kJinjaSpace);
      first = 1;
    }
    out += "<turn|>\n";
  }
  std::string prev_role;
  for (size_t i = first; i < messages.size(); ++i) {
    const std::string r = role_of(messages[i].role);
    // Consecutive assistant messages continue one model turn (26B template).
    const bool continues = thinking_ && r == "model" && prev_role == "model";
    if (!continues) out += "<|turn>" + r + "\n";
    if (r == "model" && strip_thinking_) {
      out += strip_thinking(messages[i].content);
    } else {
      out += ascii_trim(messages[i].content, kJinjaSpace);
    }
    out += "<turn|>\n";
    prev_role = r;
  }
  if (options.add_generation_prompt) out += generation_prompt(options.enable_thinking);
  return out;
}

}  // namespace fabula
