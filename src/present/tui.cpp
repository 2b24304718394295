// Terminal player over Game's event log: the same events the web player gets, printed as a visual novel script.
#include "present/tui.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <string>
#include <system_error>

#include <fmt/format.h>

namespace fabula::present {
namespace {

using nlohmann::json;

std::string read_line(std::FILE* in, bool& eof) {
  std::string s;
  int c;
  while ((c = std::fgetc(in)) != EOF && c != '\n') s += static_cast<char>(c);
  eof = c == EOF && s.empty();
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string stage_line(const engine::SceneState& state) {
  std::string who;
  for (const auto& s : state.stage)
    who += fmt::format("{}{} ({}, {})", who.empty() ? "" : ", ", s.character, s.expression, s.position);
  return who.empty() ? "nobody" : who;
}

struct Tui {
  engine::Game& game;
  std::FILE* in;
  std::FILE* out;
  TuiOptions opt;
  engine::SceneState state;  // our copy of the stage, updated from events
  std::string backdrop = "?";  // what the stage line calls the backdrop

  void print(const std::string& s) {
    std::fputs(s.c_str(), out);
    std::fflush(out);
  }
  bool wait_enter() {
    if (!opt.wait_each_line) return true;
    print("  \u25bc ");
    bool eof = false;
    std::string s = read_line(in, eof);
    return !eof && s != "q";
  }
  void set_state(const engine::SceneState& s) {
    state = s;
    backdrop = s.background;
  }
  void show_stage() { print(fmt::format("\n== {} ==  on stage: {}\n", backdrop, stage_line(state))); }
  void move_sprite(const std::string& character, const engine::SpriteEvent* sprite) {
    auto& stage = state.stage;
    auto it = std::find_if(stage.begin(), stage.end(), [&](const auto& s) { return s.character == character; });
    if (it != stage.end() && !sprite) stage.erase(it);
    else if (it != stage.end()) it->expression = sprite->expression, it->position = sprite->position;
    else if (sprite) stage.push_back({sprite->character, sprite->expression, sprite->position});
    print(fmt::format("   [stage] {}\n", stage_line(state)));
  }
  // Applies one event; returns false when the player quit.
  bool on_event(const engine::Event& event) {
    using namespace engine;
    if (const auto* e = std::get_if<BeatStartEvent>(&event)) {
      set_state(e->state);
      print("\n(writing\u2026)\n");
    } else if (const auto* e = std::get_if<AttemptEvent>(&event); e && e->restart) {
      set_state(e->state);
      print(fmt::format("\n(the narrator tries again: attempt {})\n", e->attempt));
    } else if (const auto* e = std::get_if<BackgroundEvent>(&event)) {
      state.background = e->name;
      backdrop = e->label;
      show_stage();
    } else if (const auto* e = std::get_if<SpriteEvent>(&event)) {
      move_sprite(e->character, e);
    } else if (const auto* e = std::get_if<HideEvent>(&event)) {
      move_sprite(e->character, nullptr);
    } else if (const auto* e = std::get_if<MusicEvent>(&event)) {
      print(fmt::format("   [music] {}\n", e->track));
    } else if (const auto* e = std::get_if<SfxEvent>(&event)) {
      if (opt.on_sound) opt.on_sound(e->name);
      print(fmt::format("   [sound] {}\n", e->name));
    } else if (const auto* e = std::get_if<DialogueEvent>(&event)) {
      if (opt.on_line) opt.on_line(e->speaker, e->text);
      print(fmt::format("\n{}: \u201c{}\u201d\n", e->speaker, e->text));
      return wait_enter();
    } else if (const auto* e = std::get_if<NarrationEvent>(&event)) {
      if (opt.on_line) opt.on_line("", e->text);
      print(fmt::format("\n{}\n", e->text));
      return wait_enter();
    } else if (const auto* e = std::get_if<ErrorEvent>(&event)) {
      print(fmt::format("\nerror: {}\n", e->message));
    }
    return true;
  }
  // Follows the live log until the beat ends; false when the player quit.
  bool follow(uint64_t& seq) {
    for (;;) {
      for (const auto& [s, ev] : game.events_after(seq, 200)) {
        seq = s;
        if (!on_event(ev)) return false;
        if (std::holds_alternative<engine::BeatEndEvent>(ev) || std::holds_alternative<engine::ErrorEvent>(ev))
          return true;
      }
    }
  }
  // The current beat of a snapshot (nullopt before the first); a save that does not parse is reported.
  std::optional<engine::BeatSummary> current_beat(const json& snap) {
    if (!snap.contains("beat") || snap["beat"].is_null()) return std::nullopt;
    auto beat = engine::beat_summary_from_json(snap["beat"]);
    if (!beat) {
      print("error: " + beat.error().to_string() + "\n");
      return std::nullopt;
    }
    return std::move(*beat);
  }
  int run() {
    uint64_t seq = game.last_seq();
    json snap = game.snapshot();
    print(fmt::format("{} \u2014 narrator: {}\n", snap.value("title", ""), snap.value("narrator", "")));
    if (snap["beat"].is_null()) {
      if (auto st = game.start(); !st) return print("error: " + st.error().to_string() + "\n"), 1;
      if (!follow(seq)) return 0;
    } else if (auto beat = current_beat(snap)) {
      set_state(beat->state);
      show_stage();
      print(fmt::format("(resumed at beat {})\n", beat->id));
    }
    bool show_menu = true;
    for (;;) {
      snap = game.snapshot();
      auto beat = current_beat(snap);
      if (!beat) return 1;
      set_state(beat->state);
      const auto& choices = beat->choices;
      if (show_menu) {
        print("\n");
        if (beat->ended && choices.empty()) print("  -- the scene ends --\n  1. Continue\n");
        for (size_t i = 0; i < choices.size(); ++i) print(fmt::format("  {}. {}\n", i + 1, choices[i]));
        const auto& br = snap["branches"];
        print(fmt::format("Choose [1-{}], r regenerate, b back, n/p branch ({}/{}), s save, q quit: ",
                          std::max<size_t>(1, choices.size()), br.value("index", 0) + 1, br.value("count", 1)));
      } else {
        print("> ");
      }
      show_menu = true;
      bool eof = false;
      std::string cmd = read_line(in, eof);
      if (eof || cmd == "q") return 0;
      if (cmd.empty()) {
        show_menu = false;  // a stray Enter: ask again without repeating the menu
        continue;
      }
      int number = 0;
      auto [end, ec] = std::from_chars(cmd.data(), cmd.data() + cmd.size(), number);
      bool is_number = ec == std::errc() && end == cmd.data() + cmd.size() && std::isdigit(static_cast<unsigned char>(cmd[0]));
      Status st = ok_status();
      if (cmd == "r") st = game.regenerate();
      else if (cmd == "b") st = beat->parent_id ? game.go_to(beat->parent_id)
                                                : Status(make_error(ErrorCode::kInvalidArgument, "first beat"));
      else if (cmd == "n" || cmd == "p") st = game.switch_branch(cmd == "n" ? 1 : -1);
      else if (cmd == "s") st = game.save_slot("tui");
      else if (is_number) st = game.choose(number - 1);
      else if (cmd.find_first_not_of("0123456789") == std::string::npos) st = make_error(ErrorCode::kOutOfRange, "no such choice");
      else continue;
      if (!st) {
        print("  (" + st.error().message + ")\n");
        continue;
      }
      if (cmd == "r" || is_number) {
        if (!follow(seq)) return 0;
      } else if (cmd != "s") {
        seq = game.last_seq();
        if (auto now = current_beat(game.snapshot())) {
          set_state(now->state);
          show_stage();
          print(fmt::format("(now at beat {})\n", now->id));
        }
      } else {
        print("  (saved)\n");
      }
    }
  }
};

}  // namespace

int run_tui(engine::Game& game, std::FILE* in, std::FILE* out, TuiOptions options) {
  Tui t{game, in, out, options, {}, "?"};
  return t.run();
}

}  // namespace fabula::present
