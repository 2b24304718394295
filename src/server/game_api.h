// GameServer: the web player's HTTP side — static files, story assets, JSON game API and the SSE scene-event stream.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "engine/game.h"
#include "server/http_limits.h"
#include "server/http_policy.h"
#include "voice/speech_service.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace fabula::server {

class HardenedHttpServer;

// One player's game and what it needs alive (its own save store, its narrator), in the several-players mode.
class PlayerGame {
 public:
  virtual ~PlayerGame() = default;
  virtual engine::Game& game() = 0;
};
// Makes the game of player `id`: a new player, or one coming back (its cookie) after a relaunch.
using PlayerGameFactory = std::function<Result<std::unique_ptr<PlayerGame>>(const std::string& id)>;

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
//
// Several players: POST /api/session also gives the browser a player id (cookie fabula_PORT_player, one year; or
// the X-Fabula-Player header; {"player": id} in the reply), and every /api route works on that player's own game:
// its session, saves, branches and history. At most max_players games at once (503 beyond). When the last event
// stream of a player closes while its beat is being written (the player left), the beat is cancelled.
class GameServer {
 public:
  GameServer(engine::Game& game, std::string web_root, GameServerOptions options = {});
  GameServer(const engine::Story& story, PlayerGameFactory factory, int max_players, std::string web_root,
             GameServerOptions options = {});
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
  struct Player {
    std::unique_ptr<PlayerGame> owned;  // several players; null for the single game
    engine::Game* game = nullptr;
    int streams = 0;  // open /api/events streams (guarded by players_mu_)
  };
  void routes();
  void guard();  // the pre-routing checks above
  // The player of a request: the single game, or the one its player id names (sends 401 and returns null if none).
  std::shared_ptr<Player> player_of(const httplib::Request& req, httplib::Response& res);
  // Several players: the player `id` (made on first use); sends the refusal and returns null on failure.
  std::shared_ptr<Player> open_player(const std::string& id, httplib::Response& res);
  void stream_closed(const std::shared_ptr<Player>& player);

  const engine::Story& story_;
  std::shared_ptr<Player> single_;
  PlayerGameFactory factory_;
  int max_players_ = 1;
  std::mutex players_mu_;
  std::map<std::string, std::shared_ptr<Player>> players_;
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
