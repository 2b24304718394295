// GameServer: the web player's HTTP side — static files, story assets, JSON game API and the SSE scene-event stream.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "engine/game.h"
#include "voice/speech_service.h"

namespace httplib {
class Server;
}

namespace fabula::server {

// Routes (all JSON unless said):
//   GET  /                 web/index.html;  GET /web/*  the player;  GET /story/*  the story package's files
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
  GameServer(engine::Game& game, std::string web_root);
  ~GameServer();

  // Binds host:port (port 0 = any free port) and returns the bound port; then call run().
  Result<int> bind(const std::string& host, int port);
  // Serves until stop() (blocking).
  void run();
  void stop();
  // Voices for /api/voice (nullptr: off). Set before run(); the service must outlive the server.
  void set_speech(voice::SpeechService* speech) { speech_ = speech; }

 private:
  void routes();
  engine::Game& game_;
  std::string web_root_;
  std::unique_ptr<httplib::Server> http_;
  std::atomic<bool> stopping_{false};
  voice::SpeechService* speech_ = nullptr;
};

}  // namespace fabula::server
