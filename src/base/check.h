// FABULA_CHECK: programmer-error assertions (always on; input errors use Result instead).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FABULA_CHECK(cond)                                                             \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "fabula: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)
