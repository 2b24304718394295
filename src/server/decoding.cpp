// Fabula's decoding extensions on the completion routes: protocol-constrained beats and phrase bans, fail-closed.
#include <fmt/format.h>

#include "sample/phrase_ban.h"
#include "server/server_impl.h"

namespace fabula::server {

bool apply_decoding_fields(httplib::Response& res, Loaded& loaded, CompletionRequest& request) {
  if (!request.banned_phrases.empty()) {
    auto matcher = std::make_shared<const PhraseMatcher>(request.banned_phrases);
    if (matcher->size() == 0) {
      send_error(res, 400, "field 'banned_phrases': no phrase has a word in it");
      return false;
    }
    request.gen.banned_phrases = std::move(matcher);
  }
  if (!request.vn_protocol) return true;
  std::shared_ptr<const ConstraintVocab> vocab;
  {
    std::lock_guard lk(loaded.vocab_mu);
    if (!loaded.vocab) {
      auto built = ConstraintVocab::build(loaded.tokenizer);
      if (!built.ok()) {
        send_error(res, 500, "vn_protocol: cannot build the constraint: " + built.error().message, "server_error");
        return false;
      }
      loaded.vocab = std::move(*built);
    }
    vocab = loaded.vocab;
  }
  // Cast names are checked against the story first, so a bad one is the client's error (400), anything else ours.
  for (const std::string& name : request.vn_cast) {
    if (!loaded.manifest.find_cast(name)) {
      send_error(res, 400, fmt::format("field 'vn_cast': \"{}\" is not in the story's cast", name));
      return false;
    }
  }
  auto rec = ProtocolRecognizer::create(loaded.manifest, request.vn_cast);
  if (!rec.ok()) {
    send_error(res, 500, "vn_protocol: cannot build the constraint: " + rec.error().message, "server_error");
    return false;
  }
  request.gen.constraint = std::make_shared<ProtocolConstraint>(std::move(*rec), std::move(vocab));
  return true;
}

}  // namespace fabula::server
