// Terminal player over Game's event log: the same events the web player gets, printed as a visual novel script.
#include "engine/tui.h"

#include <string>

#include <fmt/format.h>

namespace fabula::engine {
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

std::string stage_line(const json& state) {
  std::string who;
  if (state.contains("stage"))
    for (const auto& s : state["stage"])
      who += fmt::format("{}{} ({}, {})", who.empty() ? "" : ", ", s.value("character", ""), s.value("expression", ""),
                         s.value("position", ""));
  return who.empty() ? "nobody" : who;
}

struct Tui {
  Game& game;
  std::FILE* in;
  std::FILE* out;
  TuiOptions opt;
  json state = json::object();  // our copy of the stage, updated from events

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
  void show_stage() {
    print(fmt::format("\n== {} ==  on stage: {}\n", state.value("background", "?"), stage_line(state)));
  }
  // Applies one event; returns false when the player quit.
  bool on_event(const json& ev) {
    std::string t = ev.value("type", "");
    if (t == "beat_start" || (t == "attempt" && ev.value("restart", false))) {
      if (ev.contains("state")) state = ev["state"];
      if (t == "attempt") print(fmt::format("\n(the narrator tries again: attempt {})\n", ev.value("attempt", 0)));
      else print("\n(writing\u2026)\n");
    } else if (t == "background") {
      state["background"] = ev.value("label", ev.value("name", ""));
      show_stage();
    } else if (t == "sprite" || t == "hide") {
      json st = json::array();
      bool found = false;
      for (auto s : state.value("stage", json::array())) {
        if (s.value("character", "") == ev.value("character", "")) {
          found = true;
          if (t == "hide") continue;
          s["expression"] = ev.value("expression", "");
          s["position"] = ev.value("position", "");
        }
        st.push_back(s);
      }
      if (!found && t == "sprite")
        st.push_back({{"character", ev["character"]}, {"expression", ev["expression"]}, {"position", ev["position"]}});
      state["stage"] = st;
      print(fmt::format("   [stage] {}\n", stage_line(state)));
    } else if (t == "music") {
      print(fmt::format("   [music] {}\n", ev.value("track", "")));
    } else if (t == "sfx") {
      print(fmt::format("   [sound] {}\n", ev.value("name", "")));
    } else if (t == "dialogue") {
      print(fmt::format("\n{}: \u201c{}\u201d\n", ev.value("speaker", ""), ev.value("text", "")));
      return wait_enter();
    } else if (t == "narration") {
      print(fmt::format("\n{}\n", ev.value("text", "")));
      return wait_enter();
    } else if (t == "error") {
      print(fmt::format("\nerror: {}\n", ev.value("message", "")));
    }
    return true;
  }
  // Follows the live log until the beat ends; false when the player quit.
  bool follow(uint64_t& seq) {
    for (;;) {
      for (const auto& [s, ev] : game.events_after(seq, 200)) {
        seq = s;
        if (!on_event(ev)) return false;
        std::string t = ev.value("type", "");
        if (t == "beat_end" || t == "error") return true;
      }
    }
  }
  int run() {
    uint64_t seq = game.last_seq();
    json snap = game.snapshot();
    print(fmt::format("{} \u2014 narrator: {}\n", snap.value("title", ""), snap.value("narrator", "")));
    if (snap["beat"].is_null()) {
      if (auto st = game.choose(-1); !st) return print("error: " + st.error().to_string() + "\n"), 1;
      if (!follow(seq)) return 0;
    } else {
      state = snap["beat"]["state"];
      show_stage();
      print(fmt::format("(resumed at beat {})\n", snap["beat"].value("id", 0)));
    }
    bool show_menu = true;
    for (;;) {
      snap = game.snapshot();
      if (snap["beat"].is_null()) return 1;
      const json& beat = snap["beat"];
      state = beat["state"];
      auto choices = beat["choices"];
      if (show_menu) {
        print("\n");
        if (beat.value("ended", false) && choices.empty()) print("  -- the scene ends --\n  1. Continue\n");
        for (size_t i = 0; i < choices.size(); ++i) print(fmt::format("  {}. {}\n", i + 1, choices[i].get<std::string>()));
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
      Status st = ok_status();
      if (cmd == "r") st = game.regenerate();
      else if (cmd == "b") st = beat.value("parent_id", 0) ? game.go_to(beat.value("parent_id", int64_t{0}))
                                                          : Status(make_error(ErrorCode::kInvalidArgument, "first beat"));
      else if (cmd == "n" || cmd == "p") st = game.switch_branch(cmd == "n" ? 1 : -1);
      else if (cmd == "s") st = game.save_slot("tui");
      else if (!cmd.empty() && cmd.find_first_not_of("0123456789") == std::string::npos) st = game.choose(std::stoi(cmd) - 1);
      else continue;
      if (!st) {
        print("  (" + st.error().message + ")\n");
        continue;
      }
      if (cmd == "r" || (!cmd.empty() && std::isdigit(static_cast<unsigned char>(cmd[0])))) {
        if (!follow(seq)) return 0;
      } else if (cmd != "s") {
        seq = game.last_seq();
        json s2 = game.snapshot();
        if (!s2["beat"].is_null()) {
          state = s2["beat"]["state"];
          show_stage();
          print(fmt::format("(now at beat {})\n", s2["beat"].value("id", 0)));
        }
      } else {
        print("  (saved)\n");
      }
    }
  }
};

}  // namespace

int run_tui(Game& game, std::FILE* in, std::FILE* out, TuiOptions options) {
  Tui t{game, in, out, options};
  return t.run();
}

}  // namespace fabula::engine
