// Parser: each line kind, value kinds, escapes, and every lenient repair with the value it recovers.
#include <gtest/gtest.h>

#include "protocol/parser.h"

namespace fabula::protocol {
namespace {

ParsedLine parse_ok(std::string_view text) {
  auto r = parse_line(text, 3);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : ParsedLine{};
}

std::vector<std::string> kinds(const ParsedLine& p) {
  std::vector<std::string> out;
  for (const auto& r : p.repairs) {
    out.emplace_back(repair_kind_name(r.kind));
    EXPECT_EQ(r.line, 3);
    EXPECT_FALSE(r.message.empty());
  }
  return out;
}

using V = std::vector<std::string>;

TEST(Parser, ToolWithStringAndJsonArgs) {
  auto p = parse_ok("[TOOL: choices choices='[\"Pretend you didn't hear\", \"Go\"]' prompt=\"Say \\\"hi\\\" \\\\ now\"]");
  const auto* tool = std::get_if<Tool>(&p.line);
  ASSERT_NE(tool, nullptr);
  EXPECT_EQ(tool->name, "choices");
  ASSERT_EQ(tool->args.size(), 2u);
  EXPECT_EQ(tool->args[0].key, "choices");
  EXPECT_EQ(tool->args[0].kind, ValueKind::kJson);
  EXPECT_EQ(tool->args[0].value, "[\"Pretend you didn't hear\", \"Go\"]");
  EXPECT_EQ(tool->args[1].kind, ValueKind::kString);
  EXPECT_EQ(tool->args[1].value, "Say \"hi\" \\ now");
  EXPECT_EQ(tool->find("prompt"), &tool->args[1]);
  EXPECT_EQ(tool->find("nope"), nullptr);
  EXPECT_TRUE(p.repairs.empty());
}

TEST(Parser, ToolWithoutArgs) {
  auto p = parse_ok("  [TOOL: end_scene]  ");
  ASSERT_TRUE(std::holds_alternative<Tool>(p.line));
  EXPECT_EQ(std::get<Tool>(p.line).name, "end_scene");
  EXPECT_TRUE(std::get<Tool>(p.line).args.empty());
}

TEST(Parser, DialogueNarrationBlank) {
  auto d = parse_ok("[Ren]: \"Noted. Filed. Ignored. In that order.\"");
  ASSERT_TRUE(std::holds_alternative<Dialogue>(d.line));
  EXPECT_EQ(std::get<Dialogue>(d.line).speaker, "Ren");
  EXPECT_EQ(std::get<Dialogue>(d.line).text, "Noted. Filed. Ignored. In that order.");
  auto n = parse_ok("Wind tugged at the fence.");
  ASSERT_TRUE(std::holds_alternative<Narration>(n.line));
  EXPECT_EQ(std::get<Narration>(n.line).text, "Wind tugged at the fence.");
  EXPECT_TRUE(std::holds_alternative<Blank>(parse_ok(" \t").line));
}

TEST(Parser, DialogueSpeakerIsNfc) {
  auto d = parse_ok("[Zoe\xCC\x88]: \"Salut\"");  // e + combining diaeresis
  EXPECT_EQ(std::get<Dialogue>(d.line).speaker, "Zo\xC3\xAB");
}

struct RepairCase {
  const char* line;
  V kinds;
  const char* key;    // tool arg to check ("" = dialogue/narration text)
  const char* value;  // recovered value or text
};

TEST(Parser, EveryRepairRecoversTheValue) {
  const std::vector<RepairCase> cases = {
      {"[TOOL: music track=calm]", {"unquoted_value"}, "track", "calm"},
      {"[TOOL: music track=\xE2\x80\x9C" "calm\xE2\x80\x9D]", {"typographic_quotes"}, "track", "calm"},
      {"[TOOL: music track=\"calm]", {"missing_closing_quote"}, "track", "calm"},
      {"[TOOL: music track=\"calm\"] and more", {"trailing_text"}, "track", "calm"},
      {"[tool: music track=\"calm\"]", {"tool_keyword_case"}, "track", "calm"},
      {"[TOOL: music track='calm']", {"single_quoted_text"}, "track", "calm"},
      {"[TOOL: choices choices='['a', 'it\\'s']']", {"python_list"}, "choices", "[\"a\",\"it's\"]"},
      {"[TOOL: choices choices='[\"a\", True, None]']", {"python_list"}, "choices", "[\"a\",true,null]"},
      {"[TOOL: choices choices='[\"a\", \"b\",]']", {"python_list"}, "choices", "[\"a\",\"b\"]"},
      {"[TOOL: choices choices='[\xE2\x80\x9C" "a\xE2\x80\x9D, \xE2\x80\x9C" "b\xE2\x80\x9D]']", {"typographic_quotes"}, "choices", "[\"a\",\"b\"]"},
      {"[TOOL: choices choices=[\"a\", \"b\"]]", {"unquoted_value"}, "choices", "[\"a\", \"b\"]"},
      {"[TOOL: choices choices=['a', 'b']]", {"unquoted_value", "python_list"}, "choices", "[\"a\",\"b\"]"},
      {"[TOOL: choices choices='[\"a\", \"b\"]]", {"missing_closing_quote"}, "choices", "[\"a\", \"b\"]"},
      {"[Hana]: Race you!", {"dialogue_unquoted"}, "", "Race you!"},
      {"[Hana] \"Race you!\"", {"dialogue_no_colon"}, "", "Race you!"},
      {"[Hana]: \"Race you!", {"dialogue_unclosed_quote"}, "", "Race you!"},
      {"[Hana]: \xE2\x80\x9CRace you!\xE2\x80\x9D", {"typographic_quotes"}, "", "Race you!"},
      {"[Hana]: \"Race you!\" she said", {"trailing_text"}, "", "Race you!"},
      {"[The wind howls]", {"bracket_line"}, "", "[The wind howls]"},
      {"Hana smiles.<turn|>", {"control_text"}, "", "Hana smiles."},
      {"Hana smiles. [TOOL: sprite character=\"Hana\"]", {"tool_fragment"}, "", "Hana smiles."},
      {"[Hana]: \"Hi\" [TOOL: end_scene]", {"tool_fragment"}, "", "Hi"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    ParsedLine p = parse_ok(c.line);
    EXPECT_EQ(kinds(p), c.kinds);
    if (std::string(c.key).empty()) {
      if (const auto* d = std::get_if<Dialogue>(&p.line)) {
        EXPECT_EQ(d->text, c.value);
      } else if (const auto* n = std::get_if<Narration>(&p.line)) {
        EXPECT_EQ(n->text, c.value);
      } else {
        ADD_FAILURE() << "expected dialogue or narration";
      }
    } else {
      const auto* tool = std::get_if<Tool>(&p.line);
      ASSERT_NE(tool, nullptr);
      const ToolArg* arg = tool->find(c.key);
      ASSERT_NE(arg, nullptr);
      EXPECT_EQ(arg->value, c.value);
    }
  }
}

TEST(Parser, RepairsInsideJsonAreMarked) {
  auto p = parse_ok("[TOOL: choices choices='['a', 'b']']");
  ASSERT_EQ(p.repairs.size(), 1u);
  EXPECT_TRUE(p.repairs[0].in_json);
  auto q = parse_ok("[TOOL: music track=calm]");
  ASSERT_EQ(q.repairs.size(), 1u);
  EXPECT_FALSE(q.repairs[0].in_json);
}

TEST(Parser, UnrecoverableToolLinesAreErrors) {
  for (const char* bad : {"[TOOL: ]", "[TOOL music x=\"y\"]", "[TOOL: music track=\"calm\"", "[TOOL: music track]",
                          "[TOOL: music track=\"a\" ,]", "[TOOL: c c='[\"a\"']", "[TOOL: 9lives]",
                          "[TOOL: music track=]", "[TOOL: c c='[\"a\"]' x"}) {
    auto r = parse_line(bad, 7);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kParse);
      EXPECT_NE(r.error().message.find("line 7"), std::string::npos) << r.error().message;
    }
  }
}

TEST(Parser, InvalidJsonIsKeptForTheValidator) {
  auto p = parse_ok("[TOOL: choices choices='[\"a\" \"b\"]']");
  const auto& tool = std::get<Tool>(p.line);
  EXPECT_EQ(tool.args[0].value, "[\"a\" \"b\"]");
  EXPECT_EQ(tool.args[0].kind, ValueKind::kJson);
}

TEST(Parser, MultiLineJsonValue) {
  auto p = parse_ok("[TOOL: choices choices='[\n  {\"text\": \"Don't go\"},\n  {\"text\": \"Go\"}\n]']");
  const auto& tool = std::get<Tool>(p.line);
  EXPECT_EQ(tool.args[0].value, "[\n  {\"text\": \"Don't go\"},\n  {\"text\": \"Go\"}\n]");
  EXPECT_TRUE(p.repairs.empty());
}

TEST(Parser, ControlTokensListed) {
  EXPECT_EQ(control_tokens().size(), 8u);
  for (auto t : control_tokens()) {
    auto p = parse_ok(std::string("Rain.") + std::string(t));
    EXPECT_EQ(kinds(p), V{"control_text"}) << t;
  }
}

}  // namespace
}  // namespace fabula::protocol
