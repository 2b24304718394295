// `fabula play`: the visual novel in the browser (web player on 127.0.0.1) or in the terminal (--tui).
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "backend/local_narrator.h"
#include "backend/narrators.h"
#include "base/log.h"
#include "command.h"
#include "decoding_args.h"
#include "engine/game.h"
#include "engine/scripted_narrator.h"
#include "model_args.h"
#include "present/tui.h"
#include "protocol/manifest.h"
#include "eval/tells.h"
#include "server/game_api.h"
#include "server/shared_narrator.h"
#include "voice/speech_service.h"
#include "voice/story_audio.h"
#include "voice/system_player.h"

namespace {

// The handler only raises a flag (stopping the server takes locks); a watcher thread acts on it.
volatile std::sig_atomic_t g_signalled = 0;
void on_signal(int) { g_signalled = 1; }

std::string default_save_path() {
  const char* xdg = std::getenv("XDG_DATA_HOME");
  const char* home = std::getenv("HOME");
  std::filesystem::path dir = xdg && *xdg ? std::filesystem::path(xdg) / "fabula"
                              : home      ? std::filesystem::path(home) / ".local/share/fabula"
                                          : std::filesystem::path(".");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  return (dir / "saves.sqlite").string();
}

// The speech engine for voices: --tts-cmd, else espeak-ng; nullptr (voices unavailable) with --no-tts or when
// espeak-ng cannot start. A story whose tts fields are wrong is an error.
fabula::Result<std::unique_ptr<fabula::voice::SpeechService>> make_speech(const fabula::engine::Story& story,
                                                                          const std::string& tts_cmd, bool off) {
  using namespace fabula;
  FABULA_ASSIGN(auto voices, voice::story_voices_from_json(story.raw, story.root + "/story.json"));
  if (off) return std::unique_ptr<voice::SpeechService>();
  std::unique_ptr<voice::TtsEngine> engine;
  if (!tts_cmd.empty()) {
    engine = voice::make_command_tts(tts_cmd);
  } else {
    auto e = voice::make_espeak_tts();
    if (!e) {
      FABULA_LOG_WARN("voices unavailable: {}", e.error().message);
      return std::unique_ptr<voice::SpeechService>();
    }
    engine = std::move(*e);
  }
  return std::make_unique<voice::SpeechService>(std::move(engine), std::move(voices));
}

}  // namespace

FABULA_COMMAND(play, "Play a story in the web player (or the terminal with --tui)") {
  struct Opts {
    std::string model, server, story = "sakuragaoka", save, scripted, profile, host = "127.0.0.1", tts_cmd,
        access_key;
    std::vector<std::string> allowed_hosts, servers;
    int port = 8765, delay_ms = 30, max_regen = 3, players = 1;
    uint64_t seed = 1;
    bool open = false, tui = false, fresh = false, no_wait = false, no_tts = false, voices = false, sound = false;
    fabula::app::DecodingArgs decoding;
    fabula::ModelLoadOptions load;
    fabula::KvCacheTypes cache_type;
  };
  auto o = std::make_shared<Opts>();
  cli.add_option("--model", o->model,
                 "GGUF narrator: a path or a pulled model (vn26b, owner/repo:QUANT); default: the demo narrator");
  cli.add_option("--server", o->servers,
                 "Narrate through a llama-server-compatible URL instead of a local model (repeatable with --players: "
                 "each player stays on one of them, player k on URL k mod n, so its prompt cache stays warm)");
  cli.add_option("--scripted", o->scripted, "Replay beats from a JSONL fixture ({\"beat\": ...} per line)");
  cli.add_option("--story", o->story, "Story id (looked up in $FABULA_STORIES, then stories/) or path to a story.json")->capture_default_str();
  cli.add_option("--profile", o->profile, "Narrator profile (demo, vn26b; default: the model's own)");
  cli.add_option("--port", o->port, "Port of the web player (0: any free port)")->capture_default_str();
  cli.add_option("--host", o->host, "Address to listen on; beyond loopback (other players) needs --access-key")
      ->capture_default_str();
  cli.add_option("--access-key", o->access_key,
                 "Key every player's link carries (default: a new random one each launch; required off loopback)")
      ->envname("FABULA_ACCESS_KEY");
  cli.add_option("--players", o->players,
                 "Players at once, each in their own browser with their own game and saves, sharing one narrator "
                 "(its beats batched together); with --host beyond loopback, they need the --access-key")
      ->capture_default_str()->check(CLI::Range(1, 64));
  cli.add_option("--allow-host", o->allowed_hosts, "A host name players reach this machine by (repeatable)");
  cli.add_option("--save", o->save, "Save file (SQLite; default: ~/.local/share/fabula/saves.sqlite)");
  cli.add_option("--seed", o->seed, "Base sampling seed")->capture_default_str();
  cli.add_option("--max-regen", o->max_regen, "Regenerations of a beat without choices before the fallback")
      ->capture_default_str();
  cli.add_option("--scripted-delay-ms", o->delay_ms, "Pause between scripted chunks")->capture_default_str();
  fabula::app::add_decoding_flags(cli, o->decoding);
  fabula::app::add_load_flags(cli, o->load);
  fabula::app::add_cache_type_flags(cli, o->cache_type);
  cli.add_flag("--open", o->open, "Open the player in a browser");
  cli.add_flag("--tui", o->tui, "Play in the terminal");
  cli.add_flag("--new", o->fresh, "Start a new session instead of resuming the latest");
  cli.add_flag("--no-wait", o->no_wait, "--tui: don't wait for Enter after each line");
  cli.add_option("--tts-cmd", o->tts_cmd,
                 "Speak lines with this command instead of espeak-ng: text on stdin, WAV on stdout or to {out}; "
                 "the voice comes in FABULA_VOICE, FABULA_PITCH, FABULA_RATE, FABULA_SPEAKER");
  cli.add_flag("--no-tts", o->no_tts, "No speech engine (the player's Voices setting is then unavailable)");
  cli.add_flag("--voices", o->voices, "--tui: speak the lines through the system player (paplay, pw-play or aplay)");
  cli.add_flag("--sound", o->sound, "--tui: play the sound effects through the system player");
  return [o] {
    using namespace fabula;
    o->server = o->servers.empty() ? "" : o->servers.front();
    auto story = engine::load_story(o->story);
    if (!story) return app::report_error(story.error(), "try --story sakuragaoka or a path to a story.json");

    // Several players: a narrator per player (for the in-process model, all over one batched SharedNarrator).
    const bool several = o->players > 1;
    if (several && o->tui) return app::report_error(make_error(ErrorCode::kInvalidArgument, "--players needs the web player, not --tui"));
    std::unique_ptr<engine::Narrator> narrator;
    std::unique_ptr<server::SharedNarrator> shared;
    std::function<Result<std::unique_ptr<engine::Narrator>>(int player)> player_narrator;
    std::string default_profile = "demo";
    if (!o->scripted.empty()) {
      engine::ScriptedOptions so;
      so.chunk_delay_ms = o->delay_ms;
      so.loop = true;
      auto load = [o, so]() -> Result<std::unique_ptr<engine::Narrator>> {
        FABULA_ASSIGN(auto n, engine::ScriptedNarrator::load(o->scripted, so));
        return std::unique_ptr<engine::Narrator>(std::move(n));
      };
      auto n = load();
      if (!n) return app::report_error(n.error());
      narrator = std::move(*n);
      if (several) player_narrator = [load](int) { return load(); };
    } else {
      backend::NarratorSpec spec{o->model, o->server, o->load, o->cache_type};
      if (o->server.empty()) {
        // The model picks its profile (prompt, memory): the demo narrator its own, vn26b and the rest vn26b's.
        auto choice = app::resolve_model_arg(o->model);
        if (!choice) return app::report_error(choice.error());
        if (!o->model.empty()) spec.model = choice->path;
        default_profile = app::narrator_profile_for(*choice);
        app::warn_if_model_would_page(*choice, backend::LocalNarratorOptions{}.n_ctx * o->players, o->cache_type);
      }
      if (several && o->server.empty()) {
        auto path = backend::narrator_model_path(spec);
        if (!path) return app::report_error(path.error(), "use --scripted FIXTURE.jsonl to play without a model");
        server::SharedNarratorOptions sno;
        sno.players = o->players;
        sno.n_ctx = backend::LocalNarratorOptions{}.n_ctx;
        sno.load = o->load;
        sno.cache_type = o->cache_type;
        auto s = server::SharedNarrator::load(*path, sno);
        if (!s) return app::report_error(s.error(), "use --scripted FIXTURE.jsonl to play without a model");
        shared = std::move(*s);
        player_narrator = [&shared](int player) -> Result<std::unique_ptr<engine::Narrator>> {
          return shared->narrator_for(player);
        };
        narrator = shared->narrator_for(0);  // for the log line and the checks below
      } else {
        auto n = backend::make_narrator(spec);
        if (!n) return app::report_error(n.error(), "use --scripted FIXTURE.jsonl to play without a model");
        narrator = std::move(*n);
        if (several)
          player_narrator = [spec, servers = o->servers](int player) {
            return backend::make_player_narrator(spec, servers, player);
          };
      }
      if (!o->server.empty()) default_profile = "vn26b";
    }
    if (o->decoding.any() && (!o->server.empty() || !o->scripted.empty()))
      return app::report_error(make_error(ErrorCode::kInvalidArgument,
                                          "--constrained / --ban-tells / --ban-list need the in-process model (--model)"));
    auto bans = eval::load_phrase_bans(o->decoding.ban_list, o->decoding.ban_tells);
    if (!bans) return app::report_error(bans.error());
    engine::GameOptions go;
    go.engine.sampling.constrained = o->decoding.constrained;
    go.engine.sampling.banned_phrases = *bans;
    go.engine.profile = o->profile.empty() ? default_profile : o->profile;
    go.engine.max_regenerations = o->max_regen;
    go.seed = o->seed;
    go.resume = !o->fresh;
    if (auto p = story->profile(go.engine.profile); !p) return app::report_error(p.error());

    std::string save = o->save.empty() ? default_save_path() : o->save;
    std::unique_ptr<engine::SaveStore> single_store;
    std::unique_ptr<engine::Game> single_game;
    if (!several) {
      auto store = engine::SaveStore::open(save);
      if (!store) return app::report_error(store.error());
      single_store = std::move(*store);
      single_game = std::make_unique<engine::Game>(*story, *narrator, *single_store, go);
      if (auto st = single_game->open(); !st) return app::report_error(st.error());
    }
    // Several players: each player's saves in a file of their own, named by their player id.
    const std::filesystem::path players_dir =
        std::filesystem::path(save).parent_path() / (std::filesystem::path(save).stem().string() + "-players");
    FABULA_LOG_INFO("story {} · narrator {} · profile {} · saves {}", story->id, narrator->describe(),
                    go.engine.profile, several ? players_dir.string() + "/PLAYER.sqlite" : save);
    if (auto st = voice::check_story_audio(story->raw, story->root, story->music, story->sounds); !st)
      return app::report_error(st.error(), "fix the story's \"audio\" entries (the player generates what is not listed)");
    auto speech = make_speech(*story, o->tts_cmd, o->no_tts);
    if (!speech) return app::report_error(speech.error(), "fix the story's tts fields, or play with --no-tts");

    if (o->tui) {
      present::TuiOptions to;
      to.wait_each_line = !o->no_wait;
      std::unique_ptr<voice::LineSpeaker> speaker;
      std::unique_ptr<voice::EffectPlayer> effects;
      std::string player = o->voices || o->sound ? voice::find_system_player() : "";
      if ((o->voices || o->sound) && player.empty())
        FABULA_LOG_WARN("--voices / --sound: no paplay, pw-play or aplay on PATH; playing without sound");
      if (o->voices && *speech && !player.empty()) speaker = std::make_unique<voice::LineSpeaker>(**speech, player);
      if (o->sound && !player.empty()) effects = std::make_unique<voice::EffectPlayer>(player);
      if (effects) to.on_sound = [&effects](const std::string& name) { effects->play(name); };
      if (speaker)
        to.on_line = [&speaker, &speech](const std::string& who, const std::string& text) {
          if (who.empty() ? (*speech)->narration_voiced() : (*speech)->speaks(who)) speaker->say(who, text);
        };
      return present::run_tui(*single_game, stdin, stdout, to);
    }
    auto web = protocol::find_in_repo("web/index.html");
    if (!web) return app::report_error(make_error(ErrorCode::kNotFound, "web/index.html not found near the binary"));
    server::GameServerOptions so;
    so.access_key = o->access_key;
    so.allowed_hosts = o->allowed_hosts;
    const std::string web_root = std::filesystem::path(*web).parent_path().string();
    std::atomic<int> joined{0};
    struct OnePlayer final : server::PlayerGame {
      std::unique_ptr<engine::SaveStore> store;
      std::unique_ptr<engine::Narrator> narrator;
      std::unique_ptr<engine::Game> play;
      engine::Game& game() override { return *play; }
    };
    auto make_player = [&](const std::string& id) -> Result<std::unique_ptr<server::PlayerGame>> {
      std::error_code ec;
      std::filesystem::create_directories(players_dir, ec);  // on the first player, not before the server starts
      if (ec) return make_error(ErrorCode::kIo, "cannot create {}: {}", players_dir.string(), ec.message());
      auto p = std::make_unique<OnePlayer>();
      FABULA_ASSIGN(p->narrator, player_narrator(joined++));
      FABULA_ASSIGN(p->store, engine::SaveStore::open((players_dir / (id + ".sqlite")).string()));
      p->play = std::make_unique<engine::Game>(*story, *p->narrator, *p->store, go);
      FABULA_TRY(p->play->open());
      return std::unique_ptr<server::PlayerGame>(std::move(p));
    };
    auto http = several ? std::make_unique<server::GameServer>(*story, make_player, o->players, web_root, so)
                        : std::make_unique<server::GameServer>(*single_game, web_root, so);
    http->set_speech(speech->get());
    auto port = http->bind(o->host, o->port);
    if (!port)
      return port.error().code == ErrorCode::kInvalidArgument ? app::report_error(port.error())
                                                               : app::report_error(port.error(), "pick another --port");
    // The link carries the access token: a page without it (another site, another user) gets 401.
    std::string url = http->player_url();
    std::printf("fabula play: %s\n", url.c_str());
    if (!server::is_loopback_host(o->host))
      std::printf("fabula play: other players open http://THIS-MACHINE:%d/#token=<the access key>\n", *port);
    if (several)
      std::printf("fabula play: up to %d players, each browser its own game (saves in %s)\n", o->players,
                  players_dir.string().c_str());
    std::fflush(stdout);
    if (o->open) {
      std::string cmd = "xdg-open '" + url + "' >/dev/null 2>&1 &";
      if (std::system(cmd.c_str()) != 0) FABULA_LOG_WARN("could not open a browser; visit {}", url);
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::atomic<bool> done{false};
    std::thread watcher([&] {
      while (!done && !g_signalled) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (g_signalled) http->stop();
    });
    http->run();
    done = true;
    watcher.join();
    return 0;
  };
}
