// libFuzzer target: player-event JSON. Any bytes parse or fail with an error (never a throw or crash), and an
// event that parses writes back to JSON that parses to the same event.
// fuzz-link: fabula_engine
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/check.h"
#include "engine/events.h"

using namespace fabula;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;
  auto event = engine::event_from_json(j);
  if (event.ok()) {
    auto again = engine::event_from_json(engine::to_json(*event));
    FABULA_CHECK(again.ok());
    FABULA_CHECK(*again == *event);
  } else {
    FABULA_CHECK(!event.error().message.empty());
  }
  (void)engine::scene_events_from_json(j);
  (void)engine::beat_summary_from_json(j);
  (void)engine::SceneState::from_json(j);
  return 0;
}
