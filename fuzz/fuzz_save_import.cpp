// libFuzzer target: save imports. Any bytes import whole or change nothing with an error (never a throw or crash);
// an import that succeeds exports to a document that imports again, and export -> import -> export is
// byte-identical.
// fuzz-link: fabula_engine
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/check.h"
#include "base/json_view.h"
#include "engine/save_store.h"

using namespace fabula;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = parse_json(text, "import");
  if (!doc) return 0;
  auto store = engine::SaveStore::open(":memory:");
  FABULA_CHECK(store.ok());
  auto id = (*store)->import_session(*doc);
  if (!id) {
    FABULA_CHECK(!id.error().message.empty());
    FABULA_CHECK((*store)->sessions()->empty());  // all or nothing
    return 0;
  }
  auto first = (*store)->export_session(*id);
  FABULA_CHECK(first.ok());
  auto id2 = (*store)->import_session(*first);
  FABULA_CHECK(id2.ok());
  auto second = (*store)->export_session(*id2);
  FABULA_CHECK(second.ok());
  FABULA_CHECK(dump_json(*first) == dump_json(*second));
  return 0;
}
