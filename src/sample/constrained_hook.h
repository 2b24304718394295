// TokenConstraint: the hook the generation loop calls to mask logits before sampling and to rewind (phrase bans).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"

namespace fabula {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Start of a generation.
  virtual void reset() = 0;
  // Sets the logits of forbidden ids to -INFINITY (one entry per vocabulary id).
  virtual void apply(std::span<float> logits) = 0;
  // Records a sampled id; an error if the id was forbidden (the caller sampled around the mask).
  virtual Status accept(int32_t id) = 0;
  // Forgets all but the first n tokens accepted since reset().
  virtual void rewind(size_t n_accepted) = 0;
};

}  // namespace fabula
