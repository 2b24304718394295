// `fabula tokenize`: text -> token ids with a tokenizer.json or a GGUF (prints JSON; --jsonl for batches).
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "command.h"
#include "text/tokenizer.h"

namespace {

std::string ids_json(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(ids[i]);
  }
  return s + "]";
}

}  // namespace

FABULA_COMMAND(tokenize, "Tokenize text with a tokenizer.json or GGUF vocabulary") {
  struct Options {
    std::string vocab, text, jsonl;
    bool no_bos = false, no_special = false;
  };
  auto opt = std::make_shared<Options>();
  cli.add_option("--vocab", opt->vocab, "tokenizer.json or .gguf")->required();
  auto* text = cli.add_option("--text", opt->text, "Text to tokenize; prints the ids as a JSON array");
  auto* jsonl = cli.add_option("--jsonl", opt->jsonl, "Rows {\"text\": ...} -> rows {\"ids\": [...]} on stdout");
  text->excludes(jsonl);
  cli.add_flag("--no-bos", opt->no_bos, "Do not prepend <bos> (default: the tokenizer's add_bos_token)");
  cli.add_flag("--no-special", opt->no_special, "Treat special-token text as plain text");
  return [opt, text, jsonl] {
    using namespace fabula;
    if (text->count() == 0 && jsonl->count() == 0) {
      return app::report_error(make_error(ErrorCode::kInvalidArgument, "tokenize: give --text or --jsonl"));
    }
    auto tok = Tokenizer::load(opt->vocab);
    if (!tok) return app::report_error(tok.error());
    const bool bos = tok->add_bos() && !opt->no_bos;
    if (text->count()) {
      std::printf("%s\n", ids_json(tok->encode(opt->text, bos, !opt->no_special)).c_str());
      return 0;
    }
    std::ifstream in(opt->jsonl);
    if (!in) return app::report_error(make_error(ErrorCode::kNotFound, "{}: cannot open", opt->jsonl));
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const auto row = nlohmann::json::parse(line, nullptr, false);
      if (row.is_discarded() || !row.is_object() || !row.contains("text") || !row["text"].is_string()) {
        return app::report_error(make_error(ErrorCode::kParse, "{}:{}: expected an object with a string \"text\"",
                                            opt->jsonl, line_no));
      }
      const auto ids = tok->encode(row["text"].get<std::string>(), bos, !opt->no_special);
      std::printf("{\"ids\": %s}\n", ids_json(ids).c_str());
    }
    return 0;
  };
}
