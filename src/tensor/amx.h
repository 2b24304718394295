// Intel AMX (Advanced Matrix Extensions: eight 1 KiB tile registers and an int8 tile multiply) for the prefill
// GEMM. Linux hands the tile state to a process only on request (arch_prctl), so "the CPU has it" and "we may use
// it" are separate questions; both are answered once here.
#pragma once

namespace fabula {

// The CPU reports AMX-TILE and AMX-INT8, the OS enables the tile state, and this process was granted it.
bool amx_usable();

// amx_usable() and not turned off: FABULA_NO_AMX=1 in the environment, or set_amx_allowed(false) (tests and
// benchmarks compare the AVX-512 VNNI GEMM with the AMX one on the same machine). Read when a kernel table is
// built (kernels_for_current_target), so a change applies to tables built after it.
bool amx_enabled();
bool amx_allowed();
void set_amx_allowed(bool allowed);

}  // namespace fabula
