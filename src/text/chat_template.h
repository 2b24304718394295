// Chat templates rendered natively (no Jinja): the Gemma 4 turn format (26B/31B, E2B/E4B, fabula demo) and Gemma 3.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace fabula {

struct ChatMessage {
  std::string role;     // "system" | "developer" | "user" | "assistant" | "model"
  std::string content;
};

enum class ChatFamily {
  kGemma4,  // <|turn>role\n ... <turn|>\n
  kGemma3,  // <start_of_turn>role\n ... <end_of_turn>\n (system folded into the first user turn)
};

struct ChatRenderOptions {
  bool add_generation_prompt = true;
  bool enable_thinking = false;  // Gemma 4 with a thinking-aware template: <|think|> in the system turn
  bool add_bos = true;           // "<bos>" text at the start (the tokenizer splits it out as a special token)
};

class ChatTemplate {
 public:
  // Recognises the family and its variant from the template text (tokenizer.chat_template or
  // chat_template.jinja); kUnsupported with a clear message for any other family.
  static Result<ChatTemplate> detect(std::string_view template_text);
  // The 26B/31B Gemma 4 template (thinking-aware; empty thought channel when thinking is off).
  static ChatTemplate gemma4();

  ChatFamily family() const { return family_; }
  bool supports_thinking() const { return thinking_; }

  // messages -> prompt text. Roles: assistant -> model, developer -> system; contents trimmed; earlier model
  // turns lose any <|channel>...<channel|> block (Gemma 4). kInvalidArgument for an unknown role or no messages.
  Result<std::string> render(std::span<const ChatMessage> messages, const ChatRenderOptions& options = {}) const;

  // Text appended for the generation prompt ("<|turn>model\n" [+ "<|channel>thought\n<channel|>"]).
  std::string generation_prompt(bool enable_thinking) const;
  // The marker that closes a turn ("<turn|>", Gemma 3: "<end_of_turn>"): what a raw-completion client sends as a
  // stop string, since a remote server may spell it out as text.
  std::string_view end_of_turn() const;
  // True when `rendered` (a prompt this template produced, perhaps with a prefilled model turn) ends inside an
  // open reasoning channel: its last "<|channel>" has no "<channel|>" after it. The model's first tokens are then
  // reasoning, so a ReasoningSplitter must start in reasoning. Always false for Gemma 3 (no channels).
  bool prompt_opens_reasoning(std::string_view rendered) const;

 private:
  ChatFamily family_ = ChatFamily::kGemma4;
  bool thinking_ = true;           // template reads enable_thinking
  bool think_newline_ = true;      // '<|think|>\n' (older/26B revision) vs '<|think|>'
  bool empty_thought_ = true;      // generation prompt gets '<|channel>thought\n<channel|>' when thinking is off
  bool strip_thinking_ = true;     // model turns in history lose their thought channel
};

}  // namespace fabula
