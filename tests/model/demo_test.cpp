// The committed demo narrator (models/fabula-demo-v1.gguf) against transformers' logits and HF tokenizer ids.
#include <gtest/gtest.h>

#include "model_test_util.h"
#include "text/tokenizer.h"

namespace fabula {
namespace {

using namespace model_test;

const std::string kDemoModel = std::string(FABULA_SOURCE_DIR) + "/models/fabula-demo-v1.gguf";

TEST(DemoNarrator, LogitsMatchTransformers) {
  auto m = Model::load(kDemoModel);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const Model& model = **m;
  EXPECT_EQ(model.n_vocab(), 2273);
  EXPECT_TRUE(gemma4(model).hparams().rope_inv_freq_bf16);  // converted from a bf16 checkpoint

  const auto golden_json = read_json(data_path("demo/golden_demo.json"));
  const auto ids = golden_json["ids"].get<std::vector<int32_t>>();
  auto golden_file = SafetensorsFile::open(data_path("demo/golden_demo.safetensors"));
  ASSERT_TRUE(golden_file.ok());
  const auto golden = golden_tensor(*golden_file, "logits.0");

  Session session(model);
  ASSERT_TRUE(session.decode(ids, LogitsMode::kAll).ok());
  ASSERT_EQ(session.logits().size(), golden.size());
  EXPECT_LE(max_abs_diff(session.logits(), golden), 2e-2);

  // The next-token choice agrees wherever transformers' top two are not a near tie.
  const size_t V = static_cast<size_t>(model.n_vocab());
  for (size_t t = 0; t < ids.size(); ++t) {
    std::span<const float> g(golden.data() + t * V, V);
    std::vector<float> rest(g.begin(), g.end());
    const int32_t top = argmax(g);
    rest[static_cast<size_t>(top)] = -1e30f;
    if (g[static_cast<size_t>(top)] - rest[static_cast<size_t>(argmax(rest))] < 0.05f) continue;
    EXPECT_EQ(argmax(session.logits().subspan(t * V, V)), top) << "position " << t;
  }
}

TEST(DemoNarrator, EmbeddedTokenizerReproducesTheGoldenIds) {
  auto m = Model::load(kDemoModel);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  auto tok = Tokenizer::from_gguf((*m)->gguf());
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  const auto golden_json = read_json(data_path("demo/golden_demo.json"));
  const auto expected = golden_json["ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(tok->encode(golden_json["prompt_text"].get<std::string>(), /*add_bos=*/false), expected);
  EXPECT_TRUE(tok->is_eog(6));  // <turn|>
  EXPECT_FALSE(tok->chat_template().empty());
}

}  // namespace
}  // namespace fabula
