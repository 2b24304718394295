// Scene state transitions: each parsed line becomes stage changes and player-visible events, leniently and logged.
#include "engine/scene.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/ascii.h"
#include "protocol/unicode.h"
#include "protocol/validator.h"

namespace fabula::engine {
namespace {

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// The argument of `tool` whose values come from `set` (how renamed tools are recognised).
const protocol::ToolArg* arg_from_set(const protocol::Tool& tool, const protocol::ToolSpec& spec, std::string_view set) {
  for (const auto& a : spec.args)
    if (a.kind == protocol::ArgKind::kEnum && a.value_set == set) return tool.find(a.name);
  return nullptr;
}

std::string pick_position(const SceneState& s, const Story& story) {
  // Fill the stage the way VN scenes are usually blocked: centre first when alone, then the sides.
  std::vector<std::string> order = {"left", "center", "right"};
  if (s.stage.empty()) order = {"center", "left", "right"};
  for (const auto& p : order) {
    if (!contains(story.positions, p)) continue;
    bool taken = std::any_of(s.stage.begin(), s.stage.end(), [&](const StageSprite& x) { return x.position == p; });
    if (!taken) return p;
  }
  return story.positions.empty() ? "center" : story.positions.back();
}

}  // namespace

SceneState opening_scene(const Story& story) {
  SceneState s;
  s.place = story.opening.place;
  s.time = story.opening.time;
  s.cast = story.opening.cast;
  return s;
}

ApplyResult apply_line(SceneState& s, const Story& story, const protocol::Line& line, int line_no, ApplyLog& log) {
  ApplyResult r;
  auto note = [&](std::string msg) { log.notes.push_back(fmt::format("line {}: {}", line_no, msg)); };

  if (const auto* n = std::get_if<protocol::Narration>(&line)) {
    if (!ascii_trim(n->text).empty()) r.events.push_back(NarrationEvent{n->text, std::nullopt});
    return r;
  }
  if (const auto* d = std::get_if<protocol::Dialogue>(&line)) {
    std::string speaker = protocol::nfc(d->speaker);
    if (!contains(s.cast, speaker)) {
      ++log.cast_lock_violations;
      if (ascii_trim(d->text).empty()) {
        note(fmt::format("cast-lock: empty dialogue from {} (not in the scene's cast) dropped", speaker));
      } else {
        note(fmt::format("cast-lock: dialogue from {} (not in the scene's cast) became narration", speaker));
        r.events.push_back(NarrationEvent{fmt::format("\u201c{}\u201d", d->text), speaker});
      }
      return r;
    }
    r.events.push_back(DialogueEvent{speaker, d->text});
    return r;
  }
  const auto* tool = std::get_if<protocol::Tool>(&line);
  if (!tool) return r;  // blank
  const protocol::ToolSpec* spec = story.manifest.find_tool(tool->name);
  if (!spec) {
    note(fmt::format("unknown tool \"{}\" dropped", tool->name));
    return r;
  }
  for (const auto& a : spec->args) {
    if (a.required && !tool->find(a.name)) {
      note(fmt::format("{}: missing argument {}; line dropped", tool->name, a.name));
      return r;
    }
  }
  auto allowed = [&](const protocol::ToolArg* a) {
    const protocol::ArgSpec* as = a ? spec->find_arg(a->key) : nullptr;
    return as && story.manifest.allows(*as, a->value);
  };

  switch (spec->role) {
    case protocol::ToolRole::kShow:
    case protocol::ToolRole::kHide: {
      const protocol::ToolArg* ch = arg_from_set(*tool, *spec, "cast");
      if (!ch) ch = tool->find("character");
      std::string who = ch ? protocol::nfc(ch->value) : std::string();
      if (!contains(s.cast, who)) {
        ++log.cast_lock_violations;
        note(fmt::format("cast-lock: {} of \"{}\" (not in the scene's cast) dropped", tool->name, who));
        return r;
      }
      if (spec->role == protocol::ToolRole::kHide) {
        auto it = std::find_if(s.stage.begin(), s.stage.end(), [&](const StageSprite& x) { return x.character == who; });
        if (it == s.stage.end()) {
          note(fmt::format("hide of {} who is not on stage ignored", who));
          return r;
        }
        s.stage.erase(it);
        r.events.push_back(HideEvent{who});
        return r;
      }
      const protocol::ToolArg* ex = arg_from_set(*tool, *spec, "expressions");
      std::string expr = ex ? ex->value : "neutral";
      if (!contains(story.expressions, expr)) {
        note(fmt::format("expression \"{}\" is not one of the story's; using neutral", expr));
        expr = "neutral";
      }
      const protocol::ToolArg* pos = arg_from_set(*tool, *spec, "positions");
      StageSprite* cur = nullptr;
      for (auto& x : s.stage)
        if (x.character == who) cur = &x;
      std::string where;
      if (pos && contains(story.positions, pos->value)) where = pos->value;
      else if (pos) note(fmt::format("position \"{}\" unknown; placed automatically", pos->value));
      if (where.empty()) where = cur ? cur->position : pick_position(s, story);
      // Someone else standing there swaps with us, or steps aside to a free spot, or leaves a full stage.
      for (size_t i = 0; i < s.stage.size(); ++i) {
        StageSprite& other = s.stage[i];
        if (other.character == who || other.position != where) continue;
        std::string spot = cur ? cur->position : std::string();
        if (spot.empty()) {
          for (const auto& p : story.positions) {
            bool taken = std::any_of(s.stage.begin(), s.stage.end(), [&](const StageSprite& x) { return x.position == p; });
            if (!taken) {
              spot = p;
              break;
            }
          }
        }
        if (!spot.empty()) {
          other.position = spot;
          r.events.push_back(
              SpriteEvent{other.character, other.expression, spot, story.sprite_path(other.character, other.expression)});
        } else {
          r.events.push_back(HideEvent{other.character});
          s.stage.erase(s.stage.begin() + static_cast<std::ptrdiff_t>(i));
        }
        break;
      }
      cur = nullptr;
      for (auto& x : s.stage)
        if (x.character == who) cur = &x;
      if (cur) {
        cur->expression = expr;
        cur->position = where;
      } else {
        s.stage.push_back({who, expr, where});
      }
      r.events.push_back(SpriteEvent{who, expr, where, story.sprite_path(who, expr)});
      return r;
    }
    case protocol::ToolRole::kChoices: {
      const protocol::ArgSpec* cs = nullptr;
      for (const auto& a : spec->args)
        if (a.kind == protocol::ArgKind::kChoicesJson) cs = &a;
      const protocol::ToolArg* ca = cs ? tool->find(cs->name) : nullptr;
      if (!ca) {
        note("choices without a choices value dropped");
        return r;
      }
      protocol::ChoicesCheck check = protocol::check_choices(ca->value, *cs);
      std::vector<std::string> items = check.items;
      if (!check.error.empty()) {
        // Lenient: keep distinct non-empty items (clipped) if at least one survives; the strict error is logged.
        note(fmt::format("choices: {}", check.error));
        std::vector<std::string> kept;
        for (auto& it : items) {
          std::string t(ascii_trim(it));
          if (!t.empty() && !contains(kept, t) && kept.size() < static_cast<size_t>(cs->max_items)) kept.push_back(t);
        }
        items = kept;
      }
      if (items.empty()) {
        note("choices had no usable item; dropped");
        return r;
      }
      ChoicesEvent ev{items, std::nullopt, false};
      if (const auto* p = tool->find("prompt")) ev.prompt = p->value;
      r.events.push_back(std::move(ev));
      r.ends_beat = true;
      r.choices = items;
      return r;
    }
    case protocol::ToolRole::kEndScene:
      r.events.push_back(EndSceneEvent{});
      r.ends_beat = true;
      r.end_scene = true;
      return r;
    case protocol::ToolRole::kOther:
      break;
  }
  if (const auto* a = arg_from_set(*tool, *spec, "locations")) {
    if (!allowed(a)) {
      note(fmt::format("{}: unknown place \"{}\" dropped", tool->name, a->value));
      return r;
    }
    s.background = a->value;
    const auto* t = arg_from_set(*tool, *spec, "transitions");
    s.transition = t && contains(story.transitions, t->value) ? t->value : "fade";
    const Location* loc = story.find_location(a->value);
    r.events.push_back(
        BackgroundEvent{a->value, loc ? loc->name : a->value, loc ? loc->backdrop : "", s.transition});
    return r;
  }
  if (const auto* a = arg_from_set(*tool, *spec, "music")) {
    if (!allowed(a)) {
      note(fmt::format("{}: unknown track \"{}\" dropped", tool->name, a->value));
      return r;
    }
    s.music = a->value;
    r.events.push_back(MusicEvent{a->value});
    return r;
  }
  if (const auto* a = arg_from_set(*tool, *spec, "sounds")) {
    if (!allowed(a)) {
      note(fmt::format("{}: unknown sound \"{}\" dropped", tool->name, a->value));
      return r;
    }
    r.events.push_back(SfxEvent{a->value});
    return r;
  }
  note(fmt::format("tool \"{}\" has no stage effect; ignored", tool->name));
  return r;
}

}  // namespace fabula::engine
