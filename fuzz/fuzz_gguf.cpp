// libFuzzer target: GGUF parse from memory; a file that parses must copy back to the same bytes.
// fuzz-link: fabula_format
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "format/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fabula;
  auto file = GgufFile::from_bytes(std::span<const uint8_t>(data, size), "fuzz.gguf");
  if (!file.ok()) return 0;
  // Touch everything the parse handed out, so a view past the buffer trips ASan.
  uint64_t sum = 0;
  for (const auto& t : file->tensors()) {
    for (uint8_t b : t.data) sum += b;
    sum += t.n_elements();
  }
  for (const auto& [key, value] : file->metadata()) sum += key.size() + value.array_size();
  (void)file->get_u64("general.alignment");
  (void)file->get_string("general.architecture");

  GgufWriter writer;
  gguf_copy_into(*file, writer);
  static const std::string path = "/tmp/fuzz_gguf_" + std::to_string(::getpid()) + ".gguf";
  if (!writer.write(path).ok()) __builtin_trap();
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> copy{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (copy.size() != size || !std::equal(copy.begin(), copy.end(), data)) __builtin_trap();
  return sum == 0xdeadbeef ? 1 : 0;
}
