// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014): a 64-bit state
// advanced by the golden-ratio increment and a finalizer that mixes it. Small, fast and reproducible on every
// platform, for seeded synthetic data (not for anything that must be unpredictable).
#pragma once

#include <cstdint>

namespace fabula {

// The finalizer: every input bit affects every output bit.
constexpr uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Advances the state and returns the next value.
constexpr uint64_t splitmix64(uint64_t& state) { return splitmix64_mix(state += 0x9E3779B97F4A7C15ull); }

}  // namespace fabula
