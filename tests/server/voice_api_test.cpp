// GameServer's /api/voice over HTTP with espeak-ng: WAV bodies, the per-line cache on replay, errors that say why.
#include <httplib.h>

#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/game.h"
#include "engine/scripted_narrator.h"
#include "server/game_api.h"
#include "voice/speech_service.h"
#include "voice/wav.h"

namespace fabula::server {
namespace {

using nlohmann::json;

struct VoiceServer {
  engine::Story story = *engine::load_story(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka");
  engine::ScriptedNarrator narrator{{}, engine::ScriptedOptions{}};
  std::unique_ptr<engine::SaveStore> store = std::move(engine::SaveStore::open(":memory:").value());
  engine::Game game{story, narrator, *store};
  std::unique_ptr<voice::SpeechService> speech;
  GameServer http{game, std::string(FABULA_SOURCE_DIR) + "/web"};
  std::thread thread;
  int port = 0;

  explicit VoiceServer(bool with_speech) {
    if (with_speech) {
      speech = std::make_unique<voice::SpeechService>(std::move(voice::make_espeak_tts().value()),
                                                      *voice::story_voices_from_json(story.raw, "story"));
      http.set_speech(speech.get());
    }
    port = *http.bind("127.0.0.1", 0);
    thread = std::thread([this] { http.run(); });
  }
  ~VoiceServer() {
    http.stop();
    thread.join();
  }
  httplib::Result get(const std::string& speaker, const std::string& text) {
    httplib::Client c("127.0.0.1", port);
    return c.Get("/api/voice?" + httplib::detail::params_to_query_str({{"speaker", speaker}, {"text", text}}),
                 httplib::Headers{{"X-Fabula-Token", http.token()}});
  }
};

TEST(VoiceApi, SpeaksEachLineOnceAndReplaysFromTheCache) {
  if (!voice::espeak_compiled_in()) FAIL() << "built without libespeak-ng: install libespeak-ng-dev and espeak-ng-data (scripts/setup does) and rebuild";
  VoiceServer s(true);
  auto first = s.get("Hana", "Race you to the gate!");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  EXPECT_EQ(first->get_header_value("Content-Type"), "audio/wav");
  EXPECT_EQ(first->get_header_value("X-Fabula-Voice-Cache"), "miss");
  auto info = voice::parse_wav(first->body);
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_GT(info->data_bytes, 0u);
  EXPECT_GT(info->seconds(), 0.3);

  auto replay = s.get("Hana", "Race you to the gate!");
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->get_header_value("X-Fabula-Voice-Cache"), "hit");
  EXPECT_EQ(replay->body, first->body);
  EXPECT_EQ(s.speech->stats().misses, 1u);
  EXPECT_EQ(s.speech->stats().hits, 1u);

  auto narration = s.get("", "Petals drift across the path.");  // the story voices narration
  EXPECT_EQ(narration->status, 200);
  auto stranger = s.get("Yuki", "hello");
  EXPECT_EQ(stranger->status, 404);
  EXPECT_NE(stranger->body.find("not in the story's cast"), std::string::npos);
  EXPECT_EQ(s.get("Hana", "")->status, 400);

  httplib::Client c("127.0.0.1", s.port);
  json story = json::parse(c.Get("/api/story", httplib::Headers{{"X-Fabula-Token", s.http.token()}})->body);
  EXPECT_TRUE(story["voices"]["available"].get<bool>());
  EXPECT_EQ(story["voices"]["cast"].size(), 4u);
  EXPECT_TRUE(story["voices"]["narration"].get<bool>());
}

TEST(VoiceApi, WithoutASpeechEngineVoicesAreOffAndSaySo) {
  VoiceServer s(false);
  auto r = s.get("Hana", "hi");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("voices are off"), std::string::npos);
  httplib::Client c("127.0.0.1", s.port);
  EXPECT_FALSE(json::parse(c.Get("/api/story", httplib::Headers{{"X-Fabula-Token", s.http.token()}})->body)["voices"]["available"].get<bool>());
}

}  // namespace
}  // namespace fabula::server
