// Loader for tests/data/protocol/beats.txt: hand-written beats with their expected codes and repairs.
#pragma once

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fabula::test {

struct BeatCase {
  std::string id;
  std::vector<std::string> cast;
  std::string story;  // "" = built-in manifest, "unicode" = unicode_story.json
  std::set<std::string> expect;
  bool has_warn = false, has_repairs = false;
  std::set<std::string> warn, repairs;
  std::string beat;
  int header_line = 0;
};

inline std::set<std::string> split_words(const std::string& s) {
  std::set<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.insert(w);
  return out;
}

inline std::vector<BeatCase> load_beat_cases(const std::string& path) {
  std::ifstream in(path);
  std::vector<BeatCase> cases;
  std::string line;
  int line_no = 0;
  bool in_body = false;
  auto finish = [&] {
    if (cases.empty()) return;
    auto& b = cases.back().beat;
    while (!b.empty() && b.back() == '\n') b.pop_back();
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.rfind("=== ", 0) == 0) {
      finish();
      cases.push_back({});
      cases.back().id = line.substr(4);
      cases.back().header_line = line_no;
      in_body = false;
      continue;
    }
    if (cases.empty()) continue;  // file header comments
    BeatCase& c = cases.back();
    if (in_body) {
      c.beat += line + "\n";
      continue;
    }
    if (line == "---") {
      in_body = true;
    } else if (line.rfind("cast:", 0) == 0) {
      std::string rest = line.substr(5);
      std::istringstream names(rest);
      std::string name;
      while (std::getline(names, name, ',')) {
        size_t b = name.find_first_not_of(' '), e = name.find_last_not_of(' ');
        if (b != std::string::npos) c.cast.push_back(name.substr(b, e - b + 1));
      }
    } else if (line.rfind("story:", 0) == 0) {
      c.story = *split_words(line.substr(6)).begin();
    } else if (line.rfind("expect:", 0) == 0) {
      c.expect = split_words(line.substr(7));
    } else if (line.rfind("warn:", 0) == 0) {
      c.has_warn = true;
      c.warn = split_words(line.substr(5));
    } else if (line.rfind("repairs:", 0) == 0) {
      c.has_repairs = true;
      c.repairs = split_words(line.substr(8));
    }
  }
  finish();
  return cases;
}

}  // namespace fabula::test
