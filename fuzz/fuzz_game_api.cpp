// libFuzzer target: game API bodies. The input is a path line and a body ("/api/choose\n{\"index\": 1}");
// any body is read into an action or refused with an error naming the field (never a throw or crash), and
// the action applied to a game (a scripted narrator, an in-memory save) keeps it consistent.
// fuzz-link: fabula_server
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/check.h"
#include "engine/game.h"
#include "engine/scripted_narrator.h"
#include "server/game_request.h"

using namespace fabula;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t nl = text.find('\n');
  std::string_view path = text.substr(0, nl);
  std::string_view body = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  std::string field;
  auto request = server::parse_game_request(path, body, &field);
  if (!request) {
    FABULA_CHECK(!request.error().message.empty());
    return 0;
  }
  static const engine::Story story = [] {
    auto s = engine::load_story(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka");
    FABULA_CHECK(s.ok());
    return std::move(*s);
  }();
  auto store = engine::SaveStore::open(":memory:");
  FABULA_CHECK(store.ok());
  engine::ScriptedOptions options;
  options.loop = true;
  engine::ScriptedNarrator narrator(
      {"[Hana]: \"Hi.\"\n[TOOL: choices choices='[\"Wave\", \"Leave\"]']\n", "Rain falls.\n[TOOL: end_scene]\n"},
      options);
  engine::Game game(story, narrator, **store);
  FABULA_CHECK(game.open().ok());
  FABULA_CHECK(game.start().ok());
  game.wait_idle();
  for (int round = 0; round < 2; ++round) {  // twice: the second sees the state the first left
    auto reply = server::apply_game_request(game, *request);
    if (reply) FABULA_CHECK(reply->value("ok", false));  // json-ok: our own reply
    else FABULA_CHECK(!reply.error().message.empty());
    game.wait_idle();
  }
  auto exported = (*store)->export_session(game.session_id());
  FABULA_CHECK(exported.ok());
  return 0;
}
