// `fabula tokenize`: text -> token ids with a tokenizer.json or a GGUF (prints JSON; --jsonl for batches).
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/json_view.h"
#include "base/jsonl.h"
#include "command.h"
#include "text/tokenizer.h"

namespace {

std::string ids_json(const std::vector<int32_t>& ids) { return fmt::format("[{}]", fmt::join(ids, ", ")); }

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
    auto rows = read_file_text(opt->jsonl);
    if (!rows) return app::report_error(rows.error());
    auto done = for_each_jsonl_object(*rows, opt->jsonl, [&](const JsonView& row) -> Status {
      FABULA_ASSIGN(std::string row_text, row.string("text"));
      std::printf("{\"ids\": %s}\n", ids_json(tok->encode(row_text, bos, !opt->no_special)).c_str());
      return ok_status();
    });
    return done.ok() ? 0 : app::report_error(done.error());
  };
}
