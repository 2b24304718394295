// HfConfig: typed getters over the gemma4-tiny config.json and over hand-written edge cases.
#include <gtest/gtest.h>

#include "format/hf_config.h"

namespace fabula {
namespace {

TEST(HfConfig, ReadsGemma4TinyConfig) {
  auto c = HfConfig::load(std::string(FABULA_TEST_DATA) + "/gemma4-tiny/config.json");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(*c->get_int("hidden_size"), 64);
  EXPECT_EQ(*c->get_int("num_experts"), 8);
  EXPECT_DOUBLE_EQ(*c->get_double("rms_norm_eps"), 1e-6);
  EXPECT_DOUBLE_EQ(*c->get_double("final_logit_softcapping"), 30.0);
  EXPECT_TRUE(*c->get_bool("attention_k_eq_v"));
  EXPECT_EQ(*c->get_string("hidden_activation"), "gelu_pytorch_tanh");
  auto layers = c->get_string_array("layer_types");
  ASSERT_TRUE(layers.ok());
  ASSERT_EQ(layers->size(), 6u);
  EXPECT_EQ((*layers)[2], "full_attention");
  EXPECT_DOUBLE_EQ(*c->get_double("rope_parameters.full_attention.partial_rotary_factor"), 0.25);
  EXPECT_EQ(*c->get_int("per_layer_config.5.head_dim"), 32);
  EXPECT_FALSE(c->has("per_layer_config.4"));
  EXPECT_FALSE(c->has("use_bidirectional_attention"));  // null counts as absent
  EXPECT_FALSE(*c->get_bool_or("use_bidirectional_attention", false));
  EXPECT_EQ(*c->get_int_or("global_head_dim", 16), 16);
  auto rope = c->get_object("rope_parameters");
  ASSERT_TRUE(rope.ok());
  EXPECT_EQ(*rope->get_string("sliding_attention.rope_type"), "default");
  EXPECT_EQ(c->keys().front(), "architectures");  // sorted
}

TEST(HfConfig, ErrorsNameTheKey) {
  auto c = HfConfig::parse(R"({"a": "x", "n": 2.5, "i": 3.0, "list": [1, "two"], "nested": {"k": 1}, "z": null})",
                           "cfg.json");
  ASSERT_TRUE(c.ok());
  auto missing = c->get_int("vocab_size");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message, "cfg.json: missing key 'vocab_size'");
  auto wrong = c->get_int("a");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("cfg.json: key 'a' is string"), std::string::npos) << wrong.error().message;
  EXPECT_FALSE(c->get_int("n").ok());      // 2.5 is not an integer
  EXPECT_EQ(*c->get_int("i"), 3);          // 3.0 is
  auto list = c->get_int_array("list");
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.error().message.find("'list[1]'"), std::string::npos) << list.error().message;
  EXPECT_FALSE(c->get_int_or("a", 1).ok());  // present with the wrong type is still an error
  EXPECT_EQ(*c->get_int("nested.k"), 1);
  auto z = c->get_int("z");
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.error().message.find("is null"), std::string::npos);
}

TEST(HfConfig, RejectsBadJson) {
  auto bad = HfConfig::parse("{\"a\": ", "cfg.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kParse);
  EXPECT_NE(bad.error().message.find("cfg.json: not valid JSON: parse error at line 1"), std::string::npos)
      << bad.error().message;
  EXPECT_FALSE(HfConfig::parse("[1]").ok());
  EXPECT_EQ(HfConfig::load("/nonexistent/config.json").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace fabula
