// Two decode settings compared step by step in one process (`fabula bench --ab-streams`). Between processes the
// same decode moves by a few percent (the host's memory state, where buffers land: BENCHMARKS.md, session 30), more
// than most changes worth measuring; inside one process, steps that alternate A, B, B, A cancel the drift of the
// seconds they share. Each quad of steps gives t(A) / t(B), A's two steps over B's two: above 1, B is faster.
#pragma once

#include <cstddef>
#include <vector>

namespace fabula {

// Whether step i (from 0) of an A/B run takes B: steps 4k + 1 and 4k + 2.
inline bool abba_takes_b(size_t step) { return step % 4 == 1 || step % 4 == 2; }

struct AbbaSummary {
  int quads = 0;  // whole quads; a trailing part of one is left out, and the rest is 0 when there are none
  double median = 0, q1 = 0, q3 = 0;  // of the quads' t(A) / t(B) (q1, q3: the quartiles, nearest rank)
  double whole = 0;                   // all of A's time over all of B's, over the whole quads
};

// step_ns: every step's time in run order, the first step A.
AbbaSummary summarize_abba(const std::vector<double>& step_ns);

}  // namespace fabula
