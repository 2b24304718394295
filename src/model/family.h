// The model families fabula runs, keyed by GGUF general.architecture. This is the one place that compares
// architecture names: Model::load and every command that opens a model find the family here.
#pragma once

#include <memory>
#include <string_view>

#include "base/result.h"

namespace fabula {

class GgufFile;
class Model;

struct ModelFamily {
  std::string_view architecture;  // general.architecture
  std::string_view description;
  // Reads the family's metadata and binds its weights; the model keeps the file (weights borrow its mapping).
  Result<std::unique_ptr<Model>> (*load)(GgufFile file);
};

// The family of `file` by its general.architecture; the error names the file, the value and the known families.
Result<const ModelFamily*> model_family_of(const GgufFile& file);

}  // namespace fabula
