// libFuzzer target: an exported session (fabula-save/1 JSON, what players import) into an in-memory save store.
// Any bytes import or fail with an error naming the problem (never a throw or crash, never a half-imported
// session), and a document that imports exports back to one that imports to the same export.
// fuzz-link: fabula_engine
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/check.h"
#include "engine/save_store.h"

using namespace fabula;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return 0;
  auto store = engine::SaveStore::open(":memory:");
  FABULA_CHECK(store.ok());
  auto sid = (*store)->import_session(doc);
  if (!sid.ok()) {
    FABULA_CHECK(!sid.error().message.empty());
    auto all = (*store)->sessions();
    FABULA_CHECK(all.ok() && all->empty());  // all or nothing
    return 0;
  }
  auto exported = (*store)->export_session(*sid);
  FABULA_CHECK(exported.ok());
  auto again = (*store)->import_session(*exported);
  FABULA_CHECK(again.ok());
  auto exported_again = (*store)->export_session(*again);
  FABULA_CHECK(exported_again.ok());
  FABULA_CHECK(exported_again->dump() == exported->dump());
  return 0;
}
