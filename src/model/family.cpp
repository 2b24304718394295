// The registry of model families: one row per supported general.architecture (docs/ARCHITECTURE.md, "Adding a
// model family").
#include "model/family.h"

#include <string>

#include "format/gguf.h"
#include "model/gemma4/model.h"

namespace fabula {
namespace {

constexpr ModelFamily kFamilies[] = {
    {kGemma4Architecture, "Gemma 4 text decoder (MoE, sliding + full attention)", &gemma4_load_model},
};

}  // namespace

Result<const ModelFamily*> model_family_of(const GgufFile& file) {
  const GgufValue* arch = file.find("general.architecture");
  if (arch == nullptr || arch->as_string() == nullptr) {
    return make_error(ErrorCode::kCorrupt, "{}: missing string metadata general.architecture", file.name());
  }
  std::string known;
  for (const ModelFamily& family : kFamilies) {
    if (family.architecture == *arch->as_string()) return &family;
    known += (known.empty() ? "" : ", ") + std::string(family.architecture);
  }
  return make_error(ErrorCode::kUnsupported, "{}: architecture '{}' is not supported (fabula runs: {})", file.name(),
                    *arch->as_string(), known);
}

}  // namespace fabula
