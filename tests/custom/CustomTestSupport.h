// Helpers the custom-layer suites share: reading their PyTorch fixtures (.npy files and
// meta.json) and running the fgc command line.
#pragma once

#include "fgc/runtime/model.h"
#include "fgc/runtime/npy.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace fgc::test {

inline std::vector<float> readFloats(const std::filesystem::path &p) {
  return runtime::readNpy(p.string()).toFloat();
}

// A float32 or int32 .npy file as a tensor of that type.
inline rt::Tensor readTensor(const std::filesystem::path &p) {
  auto a = runtime::readNpy(p.string());
  if (a.dtype == runtime::DType::Int32)
    return rt::Tensor::fromInts(a.shape, a.data<int32_t>());
  return rt::Tensor::fromFloats(a.shape, a.toFloat().data());
}

inline std::string slurp(const std::string &path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The loss the reference script recorded in `dir`/meta.json.
inline double fixtureLoss(const std::filesystem::path &dir) {
  const std::string json = slurp((dir / "meta.json").string());
  auto at = json.find("\"loss\": ");
  REQUIRE(at != std::string::npos);
  return std::stod(json.substr(at + 8));
}

// Where runCommand sends stderr: one file per process (ctest runs the cases in parallel).
inline const std::string &stderrFile() {
  static const std::string file = "custom_stderr_" + std::to_string(::getpid()) + ".txt";
  return file;
}

// Runs a shell command, stdout discarded and stderr kept for lastStderr(); its exit code, or -1
// when it did not exit normally.
inline int runCommand(const std::string &command) {
  int status = std::system((command + " > /dev/null 2> " + stderrFile()).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string lastStderr() { return slurp(stderrFile()); }

} // namespace fgc::test
