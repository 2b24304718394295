// GameServer on cpp-httplib: JSON endpoints over engine::Game and a Server-Sent Events stream of scene events.
#include "server/game_api.h"

#include <httplib.h>

#include <cctype>

#include <fmt/format.h>

#include "base/log.h"
#include "server/hardened_http.h"

namespace fabula::server {

using nlohmann::json;

namespace {

void reply(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void reply_status(httplib::Response& res, const Status& st) {
  if (st.ok()) return reply(res, {{"ok", true}});
  int code = st.error().code == ErrorCode::kNotFound ? 404 : 409;
  reply(res, {{"ok", false}, {"error", st.error().to_string()}}, code);
}

json body_json(const httplib::Request& req) {
  json j = json::parse(req.body, nullptr, false);
  return j.is_discarded() || !j.is_object() ? json::object() : j;
}

// Audio files a story package ships ("audio": {"music": {mood: file}, "sounds": {name: file}}), as URLs; the
// player generates everything not listed.
json story_audio_json(const engine::Story& s) {
  json out = {{"music", json::object()}, {"sounds", json::object()}};
  if (!s.raw.contains("audio") || !s.raw["audio"].is_object()) return out;
  for (const char* kind : {"music", "sounds"}) {
    const json& m = s.raw["audio"].value(kind, json::object());
    if (!m.is_object()) continue;
    for (const auto& [name, file] : m.items())
      if (file.is_string()) out[kind][name] = "/story/" + file.get<std::string>();
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
    : game_(game),
      web_root_(std::move(web_root)),
      options_(std::move(options)),
      token_(options_.access_key.empty() ? random_token() : options_.access_key),
      http_(std::make_unique<HardenedHttpServer>(options_.limits)) {
  guard();
  routes();
}

void GameServer::guard() {
  auto& h = *http_;
  // The player is never framed by another page, nor its replies sniffed as another type.
  h.set_default_headers({{"X-Frame-Options", "DENY"}, {"X-Content-Type-Options", "nosniff"}});
  h.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    reply(res, {{"ok", false}, {"error", fmt::format("HTTP {}", res.status)}}, res.status);
    return httplib::Server::HandlerResponse::Handled;
  });
  h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    using R = httplib::Server::HandlerResponse;
    auto refuse = [&](int status, const std::string& message) {
      reply(res, {{"ok", false}, {"error", message}}, status);
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
      reply(res, {{"ok", true}});
      return R::Handled;
    }
    return R::Unhandled;
  });
}

GameServer::~GameServer() { stop(); }

void GameServer::routes() {
  auto& h = *http_;
  h.set_mount_point("/web", web_root_);
  h.set_mount_point("/story", game_.story().root);
  h.Get("/", [this](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/web/index.html");
  });
  h.Get("/api/story", [this](const httplib::Request&, httplib::Response& res) { reply(res, story_json(game_.story(), speech_)); });
  h.Get("/api/state", [this](const httplib::Request&, httplib::Response& res) { reply(res, game_.snapshot()); });
  h.Get("/api/tree", [this](const httplib::Request&, httplib::Response& res) { reply(res, game_.tree()); });
  h.Get("/api/events", [this](const httplib::Request& req, httplib::Response& res) {
    uint64_t after = game_.last_seq();
    std::string from = req.has_param("after") ? req.get_param_value("after") : req.get_header_value("Last-Event-ID");
    if (!from.empty()) after = std::strtoull(from.c_str(), nullptr, 10);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, after](size_t, httplib::DataSink& sink) mutable {
      if (stopping_) return false;
      auto events = game_.events_after(after, 1000);
      std::string out;
      for (const auto& [seq, ev] : events) {
        out += fmt::format("id: {}\ndata: {}\n\n", seq, engine::to_json(ev).dump());
        after = seq;
      }
      if (out.empty()) out = ": keep-alive\n\n";
      return sink.write(out.data(), out.size()) && !stopping_;
    });
  });
  h.Get("/api/voice", [this](const httplib::Request& req, httplib::Response& res) {
    if (!speech_)
      return reply(res, {{"ok", false}, {"error", "voices are off: this server has no speech engine (espeak-ng or --tts-cmd)"}}, 404);
    if (!req.has_param("text")) return reply(res, {{"ok", false}, {"error", "voice: missing ?text="}}, 400);
    auto speech = speech_->speak(req.get_param_value("speaker"), req.get_param_value("text"));
    if (!speech) {
      ErrorCode c = speech.error().code;
      int status = c == ErrorCode::kNotFound ? 404 : c == ErrorCode::kInvalidArgument ? 400 : 500;
      return reply(res, {{"ok", false}, {"error", speech.error().to_string()}}, status);
    }
    res.set_header("X-Fabula-Voice-Cache", speech->cache_hit ? "hit" : "miss");
    res.set_header("Cache-Control", "private, max-age=86400");
    // The cached bytes are shared: stream them out without a copy.
    auto wav = speech->wav;
    res.set_content_provider(wav->size(), "audio/wav", [wav](size_t offset, size_t length, httplib::DataSink& sink) {
      return sink.write(wav->data() + offset, std::min(length, wav->size() - offset));
    });
  });
  h.Post("/api/start", [this](const httplib::Request&, httplib::Response& res) {
    json snap = game_.snapshot();
    if (!snap["beat"].is_null() || game_.writing()) return reply(res, {{"ok", true}, {"started", false}});
    reply_status(res, game_.choose(-1));
  });
  h.Post("/api/choose", [this](const httplib::Request& req, httplib::Response& res) {
    json b = body_json(req);
    reply_status(res, game_.choose(b.value("index", -1)));
  });
  h.Post("/api/regenerate", [this](const httplib::Request&, httplib::Response& res) {
    reply_status(res, game_.regenerate());
  });
  h.Post("/api/rollback", [this](const httplib::Request& req, httplib::Response& res) {
    reply_status(res, game_.go_to(body_json(req).value("beat_id", int64_t{0})));
  });
  h.Post("/api/branch", [this](const httplib::Request& req, httplib::Response& res) {
    reply_status(res, game_.switch_branch(body_json(req).value("offset", 1)));
  });
  h.Post("/api/save", [this](const httplib::Request& req, httplib::Response& res) {
    reply_status(res, game_.save_slot(body_json(req).value("name", "Quick save")));
  });
  h.Post("/api/load", [this](const httplib::Request& req, httplib::Response& res) {
    auto r = game_.load_slot(body_json(req).value("name", "Quick save"));
    if (!r) return reply_status(res, r.take_error());
    reply(res, {{"ok", true}, {"beat_id", *r}});
  });
  h.Post("/api/new", [this](const httplib::Request&, httplib::Response& res) { reply_status(res, game_.new_session()); });
  h.Get("/api/export", [this](const httplib::Request&, httplib::Response& res) {
    auto doc = game_.store().export_session(game_.session_id());
    if (!doc) return reply_status(res, doc.take_error());
    res.set_header("Content-Disposition", "attachment; filename=\"fabula-save.json\"");
    reply(res, *doc);
  });
  h.Post("/api/import", [this](const httplib::Request& req, httplib::Response& res) {
    json doc = json::parse(req.body, nullptr, false);
    if (doc.is_discarded()) return reply(res, {{"ok", false}, {"error", "import: body is not JSON"}}, 400);
    if (game_.writing()) return reply(res, {{"ok", false}, {"error", "a beat is being written"}}, 409);
    auto id = game_.store().import_session(doc);
    if (!id) return reply_status(res, id.take_error());
    auto st = game_.use_session(*id);
    if (!st) return reply_status(res, st);
    reply(res, {{"ok", true}, {"session", *id}});
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
  std::string token;  // percent-encoded: an access key may hold any character
  for (unsigned char c : token_) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') token += static_cast<char>(c);
    else token += fmt::format("%{:02X}", c);
  }
  return fmt::format("http://{}:{}/#token={}", host, port_, token);
}

void GameServer::run() { http_->listen_after_bind(); }

void GameServer::stop() {
  stopping_ = true;
  if (http_) http_->shutdown();
}

}  // namespace fabula::server
