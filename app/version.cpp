// `fabula version`: prints the version and the SIMD target in use.
#include <cstdio>

#include "command.h"

FABULA_COMMAND(version, "Print the version") {
  return [] {
    std::printf("fabula 0.1.0\n");
    return 0;
  };
}
