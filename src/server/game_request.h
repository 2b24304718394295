// Game API requests: the path and JSON body of a POST to /api/* read into a typed action (errors name the field),
// and the action applied to a Game. GameServer routes through these; so does the fuzz target of the bodies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "engine/game.h"

namespace fabula::server {

struct GameRequest {
  enum class Action { kStart, kChoose, kRegenerate, kRollback, kBranch, kSave, kLoad, kNew, kImport };
  Action action = Action::kStart;
  int64_t index = 0;            // choose
  int64_t beat_id = 0;          // rollback
  int64_t offset = 1;           // branch (default: the next branch)
  std::string name = "Quick save";  // save, load
  nlohmann::json document;      // import
};

// The POST paths parse_game_request knows.
const std::vector<std::string_view>& game_request_paths();

// Reads a request. An empty body is {}; a field a path does not take is an error. On an error about a field,
// *bad_field (when given) is set to its name.
Result<GameRequest> parse_game_request(std::string_view path, std::string_view body, std::string* bad_field = nullptr);

// The field of the request an action's errors are about ("index" for choose, ...; "" for none).
std::string_view game_request_field(GameRequest::Action action);

// Applies the request; the reply body on success ({"ok": true, ...}).
Result<nlohmann::json> apply_game_request(engine::Game& game, const GameRequest& request);

}  // namespace fabula::server
