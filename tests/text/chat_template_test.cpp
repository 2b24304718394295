// Chat template rendering: the demo's golden prompt, the 26B Gemma 4 forms (thinking on/off), Gemma 3, errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace fabula {
namespace {

const std::string kData = FABULA_TEST_DATA;

// The system text the demo narrator was trained with (stories/sakuragaoka/story.json profiles.demo.system).
const char* kDemoSystem =
    "You narrate a slice-of-life visual novel. Use only the listed cast. Drive the stage with [TOOL: ...] lines.";

TEST(ChatTemplate, DemoTemplateReproducesGoldenPrompt) {
  auto text = read_file_text(kData + "/demo/chat_template.jinja");
  ASSERT_TRUE(text.ok());
  auto ct = ChatTemplate::detect(*text);
  ASSERT_TRUE(ct.ok()) << ct.error().to_string();
  EXPECT_EQ(ct->family(), ChatFamily::kGemma4);
  EXPECT_FALSE(ct->supports_thinking());

  const auto golden = nlohmann::json::parse(*read_file_text(kData + "/demo/golden_demo.json"));
  const std::string prompt = golden["prompt_text"];
  // Recover the user text from the golden prompt, then render it back (with stray whitespace: trimmed).
  const std::string head = std::string("<bos><|turn>system\n") + kDemoSystem + "<turn|>\n<|turn>user\n";
  ASSERT_EQ(prompt.rfind(head, 0), 0u);
  const size_t end = prompt.find("<turn|>", head.size());
  const std::string user = prompt.substr(head.size(), end - head.size());
  const ChatMessage msgs[] = {{"system", kDemoSystem}, {"user", "  " + user + "\n"}};
  auto rendered = ct->render(msgs);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(*rendered, prompt);

  auto tok = Tokenizer::from_tokenizer_json(kData + "/demo/tokenizer.json");
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->encode(*rendered, /*add_bos=*/false), golden["ids"].get<std::vector<int32_t>>());
  // The tokenizer's own template (tokenizer_config.json) is the same family and variant.
  auto ct2 = ChatTemplate::detect(tok->chat_template());
  ASSERT_TRUE(ct2.ok());
  EXPECT_EQ(*ct2->render(msgs), prompt);
}

TEST(ChatTemplate, Gemma4ThinkingOffAndOn) {
  const ChatTemplate ct = ChatTemplate::gemma4();
  const ChatMessage user[] = {{"user", "Hi"}};
  EXPECT_EQ(*ct.render(user), "<bos><|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
  const ChatMessage with_system[] = {{"system", " You are helpful. "}, {"user", "Hi"}};
  ChatRenderOptions on;
  on.enable_thinking = true;
  EXPECT_EQ(*ct.render(with_system, on),
            "<bos><|turn>system\n<|think|>\nYou are helpful.<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n");
  // Thinking with no system message still opens a system turn for <|think|>.
  EXPECT_EQ(*ct.render(user, on), "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n");
}

TEST(ChatTemplate, Gemma4HistoryStripsThinkingAndRenamesRoles) {
  const ChatTemplate ct = ChatTemplate::gemma4();
  const ChatMessage msgs[] = {{"developer", "Be brief."},
                              {"user", "Q1"},
                              {"assistant", "<|channel>thought\nhmm<channel|>A1 "},
                              {"user", "Q2"}};
  ChatRenderOptions opt;
  opt.add_bos = false;
  opt.add_generation_prompt = false;
  EXPECT_EQ(*ct.render(msgs, opt),
            "<|turn>system\nBe brief.<turn|>\n<|turn>user\nQ1<turn|>\n<|turn>model\nA1<turn|>\n"
            "<|turn>user\nQ2<turn|>\n");
}

TEST(ChatTemplate, DetectsVariantsFromEscapedTemplateText) {
  // A 26B-style template fragment with Jinja string escapes and no newline after <|think|>.
  const std::string t =
      "{%- if enable_thinking -%}{{- '<|think|>' -}}{%- endif -%}{{ '<|turn>model\\n' }}"
      "{%- if not enable_thinking -%}{{- '<|channel>thought\\n<channel|>' -}}{%- endif -%}";
  auto ct = ChatTemplate::detect(t);
  ASSERT_TRUE(ct.ok());
  EXPECT_TRUE(ct->supports_thinking());
  const ChatMessage msgs[] = {{"system", "S"}, {"user", "U"}};
  ChatRenderOptions on;
  on.enable_thinking = true;
  EXPECT_EQ(*ct->render(msgs, on), "<bos><|turn>system\n<|think|>S<turn|>\n<|turn>user\nU<turn|>\n<|turn>model\n");
  // E2B/E4B style: no empty thought channel on the generation prompt.
  auto small = ChatTemplate::detect("{{ '<|turn>model\\n' }}{% if enable_thinking %}<|think|>{% endif %}");
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->generation_prompt(false), "<|turn>model\n");
}

TEST(ChatTemplate, Gemma3FoldsSystemIntoFirstUserTurn) {
  auto ct = ChatTemplate::detect("{{ bos_token }}{{ '<start_of_turn>' + role + '\\n' }}");
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(ct->family(), ChatFamily::kGemma3);
  const ChatMessage msgs[] = {{"system", "S"}, {"user", "U"}, {"assistant", "A"}, {"user", "V"}};
  EXPECT_EQ(*ct->render(msgs),
            "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n"
            "<start_of_turn>user\nV<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, PromptOpensReasoningOnlyWhenTheLastChannelIsUnclosed) {
  const ChatTemplate ct = ChatTemplate::gemma4();
  const ChatMessage user[] = {{"user", "Hi"}};
  ChatRenderOptions on;
  on.enable_thinking = true;
  const std::string off_prompt = *ct.render(user);   // ends with the closed empty channel
  const std::string on_prompt = *ct.render(user, on);  // ends with "<|turn>model\n": no channel yet
  EXPECT_FALSE(ct.prompt_opens_reasoning(off_prompt));
  EXPECT_FALSE(ct.prompt_opens_reasoning(on_prompt));
  // A client prefilling the start of a thought leaves the channel open.
  EXPECT_TRUE(ct.prompt_opens_reasoning(on_prompt + "<|channel>thought\n"));
  EXPECT_TRUE(ct.prompt_opens_reasoning(off_prompt + "Sure.<|channel>thought\nLet me see"));
  EXPECT_FALSE(ct.prompt_opens_reasoning(on_prompt + "<|channel>thought\nok<channel|>Answer"));
  EXPECT_FALSE(ct.prompt_opens_reasoning(""));
  auto g3 = ChatTemplate::detect("{{ '<start_of_turn>' + role }}");
  ASSERT_TRUE(g3.ok());
  EXPECT_FALSE(g3->prompt_opens_reasoning("<start_of_turn>model\n<|channel>thought\n"));  // no channels in Gemma 3
  EXPECT_EQ(g3->end_of_turn(), "<end_of_turn>");
  EXPECT_EQ(ct.end_of_turn(), "<turn|>");
}

TEST(ChatTemplate, ErrorsOnUnknownFamilyAndRole) {
  auto r = ChatTemplate::detect("{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(r.error().message.find("unknown chat template family"), std::string::npos);
  EXPECT_FALSE(ChatTemplate::detect("  ").ok());
  const ChatMessage bad[] = {{"narrator", "x"}};
  auto b = ChatTemplate::gemma4().render(bad);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("narrator"), std::string::npos);
  EXPECT_FALSE(ChatTemplate::gemma4().render({}).ok());
}

}  // namespace
}  // namespace fabula
