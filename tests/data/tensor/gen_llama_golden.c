// Writes llama.cpp reference outputs for fabula's tensor tests (see tests/data/tensor/README.md).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml-common.h"
#include "ggml-impl.h"
#include "ggml-quants.h"

float ggml_table_f32_f16[1 << 16]; float ggml_table_f32_e8m0_half[256]; float ggml_table_f32_ue4m3[256];
void ggml_abort(const char* f, int l, const char* fmt, ...) { fprintf(stderr, "abort %s:%d %s\n", f, l, fmt); abort(); }
size_t ggml_row_size(enum ggml_type t, int64_t n) { (void)t; (void)n; abort(); }
const char* ggml_type_name(enum ggml_type t) { (void)t; return "?"; }
size_t ggml_type_size(enum ggml_type t) { (void)t; abort(); }

void x86_quantize_row_q8_0(const float* x, void* y, int64_t k);
void ggml_vec_dot_q4_0_q8_0(int n, float* s, size_t bs, const void* vx, size_t bx, const void* vy, size_t by, int nrc);
void ggml_vec_dot_q5_0_q8_0(int n, float* s, size_t bs, const void* vx, size_t bx, const void* vy, size_t by, int nrc);
void ggml_vec_dot_q8_0_q8_0(int n, float* s, size_t bs, const void* vx, size_t bx, const void* vy, size_t by, int nrc);
void ggml_vec_dot_q4_K_q8_K(int n, float* s, size_t bs, const void* vx, size_t bx, const void* vy, size_t by, int nrc);
void ggml_vec_dot_q5_K_q8_K(int n, float* s, size_t bs, const void* vx, size_t bx, const void* vy, size_t by, int nrc);
void ggml_vec_dot_q6_K_q8_K(int n, float* s, size_t bs, const void* vx, size_t bx, const void* vy, size_t by, int nrc);

#define ROWS 4
#define N 512
static float X[ROWS][N];
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) { rng = rng * 6364136223846793005ull + 1442695040888963407ull; return ((rng >> 11) + 0.5) / 9007199254740992.0; }
static float gauss(void) { return (float)(sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand())); }

static void put(FILE* f, const char* name, const void* p, uint32_t bytes) {
  uint32_t len = (uint32_t)strlen(name);
  fwrite(&len, 4, 1, f); fwrite(name, 1, len, f); fwrite(&bytes, 4, 1, f); fwrite(p, 1, bytes, f);
}

int main(int argc, char** argv) {
  for (int i = 0; i < 65536; ++i) ggml_table_f32_f16[i] = ggml_compute_fp16_to_fp32((ggml_fp16_t)i);
  for (int j = 0; j < N; ++j) {
    X[0][j] = gauss();                                   // N(0,1)
    X[1][j] = 0.02f * gauss() + (j % 97 == 5 ? 0.7f : 0); // small weights with outliers
    X[2][j] = (j < 32 || (j >= 288 && j < 320)) ? 0.0f : 0.5f * (float)((int)(urand() * 33) - 16); // zeros + ties
    X[3][j] = j < 256 ? 0.0f : 0.01f + fabsf(gauss());   // an all-zero superblock + all-positive values
  }
  FILE* f = fopen(argv[1], "wb");
  put(f, "input", X, sizeof(X));
  static uint8_t buf[ROWS * N * 4];
  float dots[ROWS];
#define REF(NAME, BLOCK, QK)                                                     \
  memset(buf, 0, sizeof(buf));                                                   \
  for (int r = 0; r < ROWS; ++r) quantize_row_##NAME##_ref(X[r], (BLOCK*)buf + r * (N / QK), N); \
  put(f, #NAME, buf, ROWS * (N / QK) * sizeof(BLOCK));
  REF(q4_0, block_q4_0, 32) REF(q4_1, block_q4_1, 32) REF(q5_0, block_q5_0, 32) REF(q5_1, block_q5_1, 32)
  REF(q8_0, block_q8_0, 32) REF(q8_1, block_q8_1, 32) REF(q4_K, block_q4_K, 256) REF(q5_K, block_q5_K, 256)
  REF(q6_K, block_q6_K, 256) REF(q8_K, block_q8_K, 256)
  // Dots of weight row r with activation row (r+1)%ROWS, both quantized by the reference.
  static block_q8_0 a0[ROWS][N / 32];
  static block_q8_K ak[ROWS][N / 256];
  memset(ak, 0, sizeof(ak));
  for (int r = 0; r < ROWS; ++r) { quantize_row_q8_0_ref(X[r], a0[r], N); quantize_row_q8_K_ref(X[r], ak[r], N); }
#define DOT(NAME, BLOCK, QK, ABUF, ACT)                                         \
  for (int r = 0; r < ROWS; ++r) {                                               \
    static BLOCK w[N / QK]; memset(w, 0, sizeof(w)); quantize_row_##NAME##_ref(X[r], w, N); \
    ggml_vec_dot_##NAME##_##ACT(N, &dots[r], 0, w, 0, ABUF[(r + 1) % ROWS], 0, 1); \
  }                                                                              \
  put(f, "dot_" #NAME, dots, sizeof(dots));
  DOT(q4_0, block_q4_0, 32, a0, q8_0) DOT(q5_0, block_q5_0, 32, a0, q8_0) DOT(q8_0, block_q8_0, 32, a0, q8_0)
  DOT(q4_K, block_q4_K, 256, ak, q8_K) DOT(q5_K, block_q5_K, 256, ak, q8_K) DOT(q6_K, block_q6_K, 256, ak, q8_K)
  // llama.cpp's x86 (AVX2) activation quantizer: what matmuls on x86 actually use.
  memset(buf, 0, sizeof(buf));
  for (int r = 0; r < ROWS; ++r) x86_quantize_row_q8_0(X[r], (block_q8_0*)buf + r * (N / 32), N);
  put(f, "q8_0_x86_act", buf, ROWS * (N / 32) * sizeof(block_q8_0));
  fclose(f);
  return 0;
}
