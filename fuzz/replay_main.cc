// Replays files through a fuzz target without libFuzzer: the regular (gcc)
// build links each fuzz/<name>_fuzz.cc with this main into
// fuzz_replay_<name>, and ctest runs it over tests/fuzz/corpus/ (every
// target's corpus, so every saved input and every finding is replayed through
// every target on every build). A failed check traps, which fails the test.
//
//   fuzz_replay_<name> [-max_len=N] FILE_OR_DIR...   (directories recursively)
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

size_t g_max_len = 0;  // 0 = no limit; like libFuzzer's -max_len, longer inputs are cut

bool replay(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", p.c_str());
    return false;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (g_max_len && bytes.size() > g_max_len) bytes.resize(g_max_len);
  // A private heap copy of exactly the input's size, as libFuzzer passes it.
  auto* copy = static_cast<uint8_t*>(std::malloc(bytes.size() ? bytes.size() : 1));
  if (!bytes.empty()) std::copy(bytes.begin(), bytes.end(), copy);
  LLVMFuzzerTestOneInput(copy, bytes.size());
  std::free(copy);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t files = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("-max_len=", 0) == 0) {
      g_max_len = std::strtoul(arg.c_str() + 9, nullptr, 10);
      continue;
    }
    std::filesystem::path p(arg);
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      std::vector<std::filesystem::path> all;
      for (const auto& e : std::filesystem::recursive_directory_iterator(p, ec))
        if (e.is_regular_file()) all.push_back(e.path());
      if (ec) {
        std::fprintf(stderr, "cannot list %s: %s\n", arg.c_str(), ec.message().c_str());
        ok = false;
      }
      std::sort(all.begin(), all.end());
      for (const auto& f : all) {
        ok = replay(f) && ok;
        ++files;
      }
    } else if (std::filesystem::is_regular_file(p, ec)) {
      ok = replay(p) && ok;
      ++files;
    } else {
      std::fprintf(stderr, "no such file or directory: %s\n", arg.c_str());
      ok = false;
    }
  }
  std::printf("replayed %zu inputs\n", files);
  return ok && files > 0 ? 0 : 1;
}
