// JsonView and parse_json: typed reads that never throw and name the JSON path of a bad field.
#include <gtest/gtest.h>

#include "base/json_view.h"

namespace fabula {
namespace {

using nlohmann::json;

TEST(ParseJson, ReportsWhereTheTextBreaks) {
  auto ok = parse_json(R"({"a": [1, 2]})", "t.json");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)["a"][1], 2);
  auto bad = parse_json("{\"a\": [1, 2}", "t.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kParse);
  EXPECT_NE(bad.error().message.find("t.json: not valid JSON: parse error at line 1, column 12"), std::string::npos)
      << bad.error().message;
  EXPECT_FALSE(parse_json("", "t").ok());
  EXPECT_FALSE(parse_json("\"\xff\"", "t").ok());  // invalid UTF-8
}

TEST(ParseJson, RefusesDeepNesting) {
  std::string deep(100000, '[');
  auto r = parse_json(deep + std::string(100000, ']'), "deep.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("deeper than 128"), std::string::npos) << r.error().message;
  EXPECT_TRUE(parse_json(std::string(100, '[') + std::string(100, ']'), "t").ok());
}

TEST(JsonView, FieldsAreTypedAndNameTheirPath) {
  json doc = json::parse(R"({"name": "Hana", "age": 17, "big": 18446744073709551615, "f": 2.0, "half": 2.5,
      "on": true, "list": ["a", 3], "nested": {"deep": [{"x": "y"}]}, "null": null, "odd key": 1})");
  JsonView v(doc, "story.json");
  EXPECT_EQ(*v.string("name"), "Hana");
  EXPECT_EQ(*v.integer("age", 0, 100), 17);
  EXPECT_EQ(*v.integer("f"), 2);  // an integral float is an integer
  EXPECT_EQ(*v.string_or("missing", "d"), "d");
  EXPECT_EQ(*v.string_or("null", "d"), "d");  // null is absent
  EXPECT_EQ(*v.boolean_or("on", false), true);
  EXPECT_EQ(*v.unsigned_or("big", 0), 18446744073709551615ull);

  auto expect_error = [](const auto& r, const std::string& message) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, message);
  };
  expect_error(v.integer("name"), "story.json: name: expected an integer, got the string \"Hana\"");
  expect_error(v.integer("age", 0, 10), "story.json: age: 17 is outside [0, 10]");
  expect_error(v.integer("half"), "story.json: half: expected an integer, got the number 2.5");
  expect_error(v.integer("big"), "story.json: big: 18446744073709551615 is too large");
  expect_error(v.string("on"), "story.json: on: expected a string, got the boolean true");
  expect_error(v.boolean_or("age", false), "story.json: age: expected a boolean (true or false), got the number 17");
  expect_error(v.string("missing"), "story.json: missing field \"missing\"");
  expect_error(v.strings("list"), "story.json: list[1]: expected a string, got the number 3");
  expect_error(v.string("odd key"), "story.json: [\"odd key\"]: expected a string, got the number 1");
  auto deep = v.field("nested");
  ASSERT_TRUE(deep.ok());
  auto items = deep->field("deep");
  ASSERT_TRUE(items.ok());
  auto elements = items->elements();
  ASSERT_TRUE(elements.ok());
  expect_error((*elements)[0].integer("x"), "story.json: nested.deep[0].x: expected an integer, got the string \"y\"");
  expect_error(items->string("x"), "story.json: nested.deep: expected an object, got an array");
  expect_error(v.field("name")->elements(), "story.json: name: expected an array, got the string \"Hana\"");
  EXPECT_FALSE(v.find("name")->find("x").has_value());  // find on a non-object is absent, not an error
}

TEST(JsonView, OnlyFieldsNamesTheUnknownOne) {
  json doc = {{"index", 1}, {"choice", 5}};
  auto st = JsonView(doc, "POST /api/choose").only_fields({"index"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "POST /api/choose: unknown field \"choice\" (known: \"index\")");
  EXPECT_TRUE(JsonView(doc, "t").only_fields({"index", "choice"}).ok());
  EXPECT_FALSE(JsonView(json::array(), "t").only_fields({}).ok());
}

TEST(JsonView, LongStringsAreShortenedInMessages) {
  json doc = {{"n", std::string(500, 'x')}};
  auto r = JsonView(doc, "t").integer("n");
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error().message.size(), 100u);
}

}  // namespace
}  // namespace fabula
