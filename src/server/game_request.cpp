// Game API requests: typed reads of the POST bodies (JsonView) and their effect on the Game.
#include "server/game_request.h"

#include <algorithm>

#include "base/json_view.h"

namespace fabula::server {

using nlohmann::json;
using Action = GameRequest::Action;

namespace {

struct Route {
  std::string_view path;
  Action action;
  std::string_view field;  // the one body field it takes ("" for none)
};

const Route kRoutes[] = {
    {"/api/start", Action::kStart, ""},          {"/api/choose", Action::kChoose, "index"},
    {"/api/regenerate", Action::kRegenerate, ""}, {"/api/rollback", Action::kRollback, "beat_id"},
    {"/api/branch", Action::kBranch, "offset"},  {"/api/save", Action::kSave, "name"},
    {"/api/load", Action::kLoad, "name"},        {"/api/new", Action::kNew, ""},
    {"/api/import", Action::kImport, ""},
};

}  // namespace

const std::vector<std::string_view>& game_request_paths() {
  static const std::vector<std::string_view> paths = [] {
    std::vector<std::string_view> out;
    for (const auto& r : kRoutes) out.push_back(r.path);
    return out;
  }();
  return paths;
}

std::string_view game_request_field(Action action) {
  for (const auto& r : kRoutes)
    if (r.action == action) return r.field;
  return "";
}

Result<GameRequest> parse_game_request(std::string_view path, std::string_view body, std::string* bad_field) {
  const Route* route = nullptr;
  for (const auto& r : kRoutes)
    if (r.path == path) route = &r;
  if (!route) return make_error(ErrorCode::kNotFound, "POST {}: no such request", path);
  const std::string where = fmt::format("POST {}", path);
  GameRequest req;
  req.action = route->action;
  FABULA_ASSIGN(json doc, parse_json(body.empty() ? std::string_view("{}") : body, where));
  if (route->action == Action::kImport) {
    req.document = std::move(doc);
    return req;
  }
  JsonView v(doc, where);
  FABULA_ASSIGN(auto members, v.members());
  for (const auto& [key, value] : members) {
    if (key == route->field) continue;
    if (bad_field) *bad_field = key;
    return value.error(ErrorCode::kInvalidArgument, "unknown field (this request takes {})",
                       route->field.empty() ? std::string("no fields") : fmt::format("\"{}\"", route->field));
  }
  if (bad_field) *bad_field = route->field;
  if (route->action == Action::kChoose) {
    FABULA_ASSIGN(req.index, v.integer("index"));
  } else if (route->action == Action::kRollback) {
    FABULA_ASSIGN(req.beat_id, v.integer("beat_id", 1));
  } else if (route->action == Action::kBranch) {
    FABULA_ASSIGN(req.offset, v.integer_or("offset", 1));
  } else if (route->action == Action::kSave || route->action == Action::kLoad) {
    FABULA_ASSIGN(req.name, v.string_or("name", "Quick save"));
  }
  if (bad_field) bad_field->clear();
  return req;
}

Result<json> apply_game_request(engine::Game& game, const GameRequest& r) {
  const json ok = {{"ok", true}};
  switch (r.action) {
    case Action::kStart: {
      // The title screen's Begin: once the story has begun (or while its first beat is written) it changes nothing.
      auto session = game.store().session(game.session_id());
      if (game.writing() || (session && session->head_beat)) return json{{"ok", true}, {"started", false}};
      FABULA_TRY(game.start());
      return ok;
    }
    case Action::kChoose: FABULA_TRY(game.choose(r.index)); return ok;
    case Action::kRegenerate: FABULA_TRY(game.regenerate()); return ok;
    case Action::kRollback: FABULA_TRY(game.go_to(r.beat_id)); return ok;
    case Action::kBranch: FABULA_TRY(game.switch_branch(r.offset)); return ok;
    case Action::kSave: FABULA_TRY(game.save_slot(r.name)); return ok;
    case Action::kLoad: {
      FABULA_ASSIGN(int64_t beat, game.load_slot(r.name));
      return json{{"ok", true}, {"beat_id", beat}};
    }
    case Action::kNew: FABULA_TRY(game.new_session()); return ok;
    case Action::kImport: {
      FABULA_ASSIGN(int64_t session, game.import_session(r.document));
      return json{{"ok", true}, {"session", session}};
    }
  }
  return make_error(ErrorCode::kInternal, "unknown game request");
}

}  // namespace fabula::server
