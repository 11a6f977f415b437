// Shared entry point of the sample programs: runs the example, writing its model files into the
// folder named on the command line (default: the sample's own folder), and turns fgc's
// exceptions into one error line and exit code 1.
#pragma once

#include <fgc/keras.h>

#include <cstdio>
#include <exception>
#include <string>

int runSample(const std::string &outDir);

int main(int argc, char **argv) {
  std::string outDir = argc > 1 ? argv[1] : FGC_SAMPLE_DIR;
  try {
    return runSample(outDir);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
