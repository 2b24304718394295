// GameServer on cpp-httplib: JSON endpoints over engine::Game and a Server-Sent Events stream of scene events.
#include "server/game_api.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "base/ascii.h"
#include "base/json_view.h"
#include "base/log.h"
#include "server/game_request.h"
#include "server/hardened_http.h"

namespace fabula::server {

using nlohmann::json;

namespace {

void reply(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

// The game API's refusal: {"ok": false, "error": message}.
void reply_failure(httplib::Response& res, std::string_view message, int status) {
  reply(res, {{"ok", false}, {"error", message}}, status);
}

// 400: the request is wrong (a field's type or range, an action the story does not allow now); 404: no such
// session or slot; 409: refused because a beat is being written; 500: the save store failed.
int http_status(const Error& e) {
  if (engine::Game::refused_while_writing(e)) return 409;
  switch (e.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kParse:
    case ErrorCode::kOutOfRange: return 400;
    case ErrorCode::kNotFound: return 404;
    default: return 500;
  }
}

// `field`: the body field the request was about, named in the reply of a 400 so the caller knows what to fix.
void reply_error(httplib::Response& res, const Error& e, std::string_view field = "") {
  int status = http_status(e);
  json body = {{"ok", false}, {"error", e.to_string()}};
  if (status == 400 && !field.empty()) {
    body["field"] = field;
    if (e.message.find(field) == std::string::npos) body["error"] = fmt::format("{}: {}", field, e.to_string());
  }
  reply(res, body, status);
}

// Audio files a story package ships ("audio": {"music": {mood: file}, "sounds": {name: file}}), as URLs; the
// player generates everything not listed.
json story_audio_json(const engine::Story& s) {
  json out = {{"music", json::object()}, {"sounds", json::object()}};
  auto audio = JsonView(s.raw, "story.json").find("audio");
  if (!audio) return out;
  for (const char* kind : {"music", "sounds"}) {
    auto files = audio->find(kind);
    if (!files) continue;
    auto members = files->members();
    if (!members) continue;  // check_story_audio reported it when the story loaded
    for (const auto& [name, file] : *members)
      if (auto path = file.string()) out[kind][name] = "/story/" + *path;
  }
  return out;
}

json voices_json(const engine::Story& s, const voice::SpeechService* speech) {
  json cast = json::array();
  if (speech)
    for (const auto& c : s.cast)
      if (speech->speaks(c.name)) cast.push_back(c.name);
  return {{"available", speech != nullptr},
          {"engine", speech ? speech->describe() : ""},
          {"cast", cast},
          {"narration", speech && speech->narration_voiced()}};
}

json story_json(const engine::Story& s, const voice::SpeechService* speech) {
  json cast = json::array();
  for (const auto& c : s.cast) {
    json sprites = json::object();
    for (const auto& e : s.expressions) sprites[e] = "/story/" + s.sprite_path(c.name, e);
    cast.push_back({{"name", c.name}, {"personality", c.personality}, {"sprites", sprites}});
  }
  json locs = json::array();
  for (const auto& l : s.locations)
    locs.push_back({{"id", l.id}, {"name", l.name}, {"backdrop", l.backdrop.empty() ? "" : "/story/" + l.backdrop}});
  return {{"id", s.id},           {"title", s.title},         {"premise", s.premise}, {"cast", cast},
          {"locations", locs},    {"positions", s.positions}, {"music", s.music},     {"sounds", s.sounds},
          {"expressions", s.expressions}, {"audio", story_audio_json(s)}, {"voices", voices_json(s, speech)}};
}

}  // namespace

GameServer::GameServer(engine::Game& game, std::string web_root, GameServerOptions options)
    : story_(game.story()),
      single_(std::make_shared<Player>()),
      web_root_(std::move(web_root)),
      options_(std::move(options)),
      token_(options_.access_key.empty() ? random_token() : options_.access_key),
      http_(std::make_unique<HardenedHttpServer>(options_.limits)) {
  single_->game = &game;
  guard();
  routes();
}

GameServer::GameServer(const engine::Story& story, PlayerGameFactory factory, int max_players, std::string web_root,
                       GameServerOptions options)
    : story_(story),
      factory_(std::move(factory)),
      max_players_(std::max(1, max_players)),
      web_root_(std::move(web_root)),
      options_(std::move(options)),
      token_(options_.access_key.empty() ? random_token() : options_.access_key),
      http_(std::make_unique<HardenedHttpServer>(options_.limits)) {
  guard();
  routes();
}

namespace {

constexpr const char* kPlayerHeader = "X-Fabula-Player";

// Player ids are made here (hex); anything else in a cookie or header is no id (it also names a save file).
bool valid_player_id(const std::string& id) {
  if (id.size() < 16 || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::shared_ptr<GameServer::Player> GameServer::open_player(const std::string& id, httplib::Response& res) {
  std::lock_guard<std::mutex> lock(players_mu_);
  if (auto it = players_.find(id); it != players_.end()) return it->second;
  if (static_cast<int>(players_.size()) >= max_players_) {
    reply_failure(res, fmt::format("all {} player seats are taken (fabula play --players)", max_players_), 503);
    return nullptr;
  }
  auto made = factory_(id);
  if (!made) {
    FABULA_LOG_ERROR("player {}: {}", id.substr(0, 8), made.error().to_string());
    reply_error(res, made.error());
    return nullptr;
  }
  auto player = std::make_shared<Player>();
  player->owned = std::move(*made);
  player->game = &player->owned->game();
  players_.emplace(id, player);
  FABULA_LOG_INFO("player {} joined ({} of {})", id.substr(0, 8), players_.size(), max_players_);
  return player;
}

std::shared_ptr<GameServer::Player> GameServer::player_of(const httplib::Request& req, httplib::Response& res) {
  if (single_) return single_;
  std::string id = req.get_header_value(kPlayerHeader);
  if (id.empty()) id = cookie_value(req.get_header_value("Cookie"), fmt::format("fabula_{}_player", port_));
  if (valid_player_id(id)) {
    std::lock_guard<std::mutex> lock(players_mu_);
    if (auto it = players_.find(id); it != players_.end()) return it->second;
  }
  reply_failure(res, "no player session: open the player's link again (POST /api/session makes one)", 401);
  return nullptr;
}

void GameServer::stream_closed(const std::shared_ptr<Player>& player) {
  bool last = false;
  {
    std::lock_guard<std::mutex> lock(players_mu_);
    last = --player->streams == 0;
  }
  // A player who left mid-beat gives the narrator's slot back to the others (several players only).
  if (last && !single_ && !stopping_ && player->game->writing()) player->game->cancel_beat();
}

void GameServer::guard() {
  auto& h = *http_;
  // The player is never framed by another page, nor its replies sniffed as another type.
  h.set_default_headers({{"X-Frame-Options", "DENY"}, {"X-Content-Type-Options", "nosniff"}});
  h.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    reply_failure(res, fmt::format("HTTP {}", res.status), res.status);
    return httplib::Server::HandlerResponse::Handled;
  });
  h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    using R = httplib::Server::HandlerResponse;
    auto refuse = [&](int status, const std::string& message) {
      reply_failure(res, message, status);
      return R::Handled;
    };
    const std::string host = req.get_header_value("Host");
    if (!host_policy_.allows(host))
      return refuse(421, fmt::format("Host '{}' is not an address of this server (a DNS-rebinding page?); if players "
                                     "reach it by this name, start fabula play with --allow-host {}",
                                     host, host_of(host).empty() ? host : host_of(host)));
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty() && !is_same_origin(origin, host))
      return refuse(403, fmt::format("requests from another web page ({}) are refused", origin));
    if (req.get_header_value("Sec-Fetch-Site") == "cross-site")
      return refuse(403, "requests from another web site are refused");
    if (req.method == "GET" && (req.path == "/" || req.path == "/favicon.ico" || req.path.rfind("/web/", 0) == 0))
      return R::Unhandled;
    if (req.method != "GET" && req.method != "HEAD" && !is_json_content_type(req.get_header_value("Content-Type")))
      return refuse(415, fmt::format("{} {} needs Content-Type: application/json", req.method, req.path));
    const std::string cookie_name = fmt::format("fabula_{}", port_);
    const std::string auth = req.get_header_value("Authorization");
    std::string given = req.get_header_value("X-Fabula-Token");
    if (given.empty() && auth.rfind("Bearer ", 0) == 0) given = auth.substr(7);
    if (given.empty()) given = cookie_value(req.get_header_value("Cookie"), cookie_name);
    if (!secret_equals(given, token_))
      return refuse(401, "this player needs its access link: open the address fabula play printed (it ends in "
                         "#token=...)");
    if (req.path == "/api/session" && req.method == "POST") {
      // The page stores nothing itself: the browser keeps the token where scripts cannot read it.
      res.set_header("Set-Cookie", fmt::format("{}={}; Path=/; HttpOnly; SameSite=Strict", cookie_name, token_));
      res.set_header("Cache-Control", "no-store");
      if (single_) {
        reply(res, {{"ok", true}});
        return R::Handled;
      }
      // Several players: this browser's own game, kept (with its saves) for the player id it comes back with.
      std::string id = req.get_header_value(kPlayerHeader);
      if (id.empty()) id = cookie_value(req.get_header_value("Cookie"), cookie_name + "_player");
      if (!valid_player_id(id)) id = random_token().substr(0, 32);
      if (!open_player(id, res)) return R::Handled;
      res.set_header("Set-Cookie", fmt::format("{}_player={}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Strict",
                                               cookie_name, id));
      reply(res, {{"ok", true}, {"player", id}});
      return R::Handled;
    }
    return R::Unhandled;
  });
}

GameServer::~GameServer() { stop(); }

void GameServer::routes() {
  auto& h = *http_;
  h.set_mount_point("/web", web_root_);
  h.set_mount_point("/story", story_.root);
  h.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/web/index.html"); });
  h.Get("/api/story", [this](const httplib::Request&, httplib::Response& res) { reply(res, story_json(story_, speech_)); });
  // A GET handler on the request's player's game.
  auto get = [this, &h](const char* path, auto handle) {
    h.Get(path, [this, handle](const httplib::Request& req, httplib::Response& res) {
      if (auto player = player_of(req, res)) handle(*player->game, req, res);
    });
  };
  get("/api/state", [](engine::Game& game, const httplib::Request&, httplib::Response& res) { reply(res, game.snapshot()); });
  get("/api/tree", [](engine::Game& game, const httplib::Request&, httplib::Response& res) { reply(res, game.tree()); });
  h.Get("/api/events", [this](const httplib::Request& req, httplib::Response& res) {
    auto player = player_of(req, res);
    if (!player) return;
    engine::Game* game = player->game;
    uint64_t after = game->last_seq();
    std::string from = req.has_param("after") ? req.get_param_value("after") : req.get_header_value("Last-Event-ID");
    if (!from.empty()) after = std::strtoull(from.c_str(), nullptr, 10);
    res.set_header("Cache-Control", "no-cache");
    {
      std::lock_guard<std::mutex> lock(players_mu_);
      ++player->streams;
    }
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, game, after](size_t, httplib::DataSink& sink) mutable {
          if (stopping_) return false;
          auto events = game->events_after(after, 1000);
          std::string out;
          for (const auto& [seq, ev] : events) {
            out += fmt::format("id: {}\ndata: {}\n\n", seq, dump_json(engine::to_json(ev)));
            after = seq;
          }
          if (out.empty()) out = ": keep-alive\n\n";
          return sink.write(out.data(), out.size()) && !stopping_;
        },
        [this, player](bool) { stream_closed(player); });
  });
  h.Get("/api/voice", [this](const httplib::Request& req, httplib::Response& res) {
    if (!speech_)
      return reply_failure(res, "voices are off: this server has no speech engine (espeak-ng or --tts-cmd)", 404);
    if (!req.has_param("text")) return reply_failure(res, "voice: missing ?text=", 400);
    auto speech = speech_->speak(req.get_param_value("speaker"), req.get_param_value("text"));
    if (!speech) {
      ErrorCode c = speech.error().code;
      int status = c == ErrorCode::kNotFound ? 404 : c == ErrorCode::kInvalidArgument ? 400 : 500;
      return reply_failure(res, speech.error().to_string(), status);
    }
    res.set_header("X-Fabula-Voice-Cache", speech->cache_hit ? "hit" : "miss");
    res.set_header("Cache-Control", "private, max-age=86400");
    // The cached bytes are shared: stream them out without a copy.
    auto wav = speech->wav;
    res.set_content_provider(wav->size(), "audio/wav", [wav](size_t offset, size_t length, httplib::DataSink& sink) {
      return sink.write(wav->data() + offset, std::min(length, wav->size() - offset));
    });
  });
  // Every POST of the game API: the body read into a typed request (a bad body or field is a 400 that names it),
  // applied to the request's player's game.
  for (std::string_view path : game_request_paths()) {
    h.Post(std::string(path), [this, path](const httplib::Request& req, httplib::Response& res) {
      auto player = player_of(req, res);
      if (!player) return;
      std::string field;
      auto request = parse_game_request(path, req.body, &field);
      if (!request) return reply_error(res, request.error(), field);
      auto reply_body = apply_game_request(*player->game, *request);
      if (!reply_body) return reply_error(res, reply_body.error(), game_request_field(request->action));
      reply(res, *reply_body);
    });
  }
  get("/api/export", [](engine::Game& game, const httplib::Request&, httplib::Response& res) {
    auto doc = game.store().export_session(game.session_id());
    if (!doc) return reply_error(res, doc.error());
    res.set_header("Content-Disposition", "attachment; filename=\"fabula-save.json\"");
    reply(res, *doc);
  });
}

Result<int> GameServer::bind(const std::string& host, int port) {
  if (!is_loopback_host(host) && options_.access_key.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "listening on {} lets other machines in: give the players an access key with --access-key KEY "
                      "(or FABULA_ACCESS_KEY); each opens http://THIS-MACHINE:PORT/#token=KEY",
                      host);
  host_policy_ = HostPolicy(host, options_.allowed_hosts);
  auto bound = http_->bind(host, port);
  if (!bound.ok()) return bound.error();
  host_ = host;
  port_ = *bound;
  return bound;
}

std::string GameServer::player_url() const {
  std::string host = is_wildcard_host(host_) ? "127.0.0.1" : host_;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  // Percent-encoded: an access key may hold any character.
  return fmt::format("http://{}:{}/#token={}", host, port_, percent_encode(token_));
}

void GameServer::run() { http_->listen_after_bind(); }

void GameServer::stop() {
  stopping_ = true;
  if (http_) http_->shutdown();
}

}  // namespace fabula::server
