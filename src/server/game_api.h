// GameServer: the web player's HTTP side — static files, story assets, JSON game API and the SSE scene-event stream.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "engine/game.h"
#include "server/http_limits.h"
#include "server/http_policy.h"
#include "voice/speech_service.h"

namespace fabula::server {

class HardenedHttpServer;

struct GameServerOptions {
  // The secret every request needs (cookie, X-Fabula-Token or Authorization: Bearer). "" : a random one made at
  // launch, which only a loopback address accepts; beyond loopback (several players) an access key is mandatory.
  std::string access_key;
  std::vector<std::string> allowed_hosts;  // Host names accepted besides localhost and the bound address
  // An exported session (POST /api/import) grows with every beat: room for thousands of them.
  HttpLimits limits = [] {
    HttpLimits l;
    l.max_body = size_t{32} << 20;
    return l;
  }();
};

// Who may call it: the Host must name this server (421: DNS rebinding); a request from another web page (its Origin)
// gets 403; a POST must carry JSON (415); every route but / and /web/* needs the launch token (401). The player
// is opened at player_url() (.../#token=T); it trades the token for a SameSite=Strict, HttpOnly cookie at
// POST /api/session (token in X-Fabula-Token), which then goes with every request, EventSource included.
//
// Routes (all JSON unless said):
//   GET  /                 web/index.html;  GET /web/*  the player;  GET /story/*  the story package's files
//   POST /api/session      sets the token cookie
//   GET  /api/story        title, cast (sprite URLs per expression), locations (backdrop URLs), positions
//   GET  /api/state        Game::snapshot()            GET /api/tree   Game::tree()
//   GET  /api/events       text/event-stream; `?after=SEQ` or Last-Event-ID; one `data:` JSON per scene event
//   POST /api/start        writes the opening beat if the session has none
//   POST /api/choose       {"index": i}                POST /api/regenerate
//   POST /api/rollback     {"beat_id": id}             POST /api/branch  {"offset": ±1}
//   POST /api/save         {"name": s}                 POST /api/load    {"name": s}
//   POST /api/new          a new session               GET  /api/export  the session as JSON
//   POST /api/import       body: an exported session; becomes the current session
//   GET  /api/voice        ?speaker=NAME&text=LINE (speaker empty: narration): audio/wav of the line, cached
//                          per line (X-Fabula-Voice-Cache: hit|miss); 404 when voices are off or unvoiced
class GameServer {
 public:
  GameServer(engine::Game& game, std::string web_root, GameServerOptions options = {});
  ~GameServer();

  // Binds host:port (port 0 = any free port) and returns the bound port; then call run(). Fails off loopback
  // without an access key.
  Result<int> bind(const std::string& host, int port);
  // http://HOST:PORT/#token=T, the link that opens the player (HOST as bound; 127.0.0.1 for a wildcard address).
  std::string player_url() const;
  const std::string& token() const { return token_; }
  // Serves until stop() (blocking).
  void run();
  void stop();
  // Voices for /api/voice (nullptr: off). Set before run(); the service must outlive the server.
  void set_speech(voice::SpeechService* speech) { speech_ = speech; }

 private:
  void routes();
  void guard();  // the pre-routing checks above
  engine::Game& game_;
  std::string web_root_;
  GameServerOptions options_;
  std::string token_;
  std::string host_;
  int port_ = 0;
  HostPolicy host_policy_;
  std::unique_ptr<HardenedHttpServer> http_;
  std::atomic<bool> stopping_{false};
  voice::SpeechService* speech_ = nullptr;
};

}  // namespace fabula::server
