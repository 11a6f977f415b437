// Atomic file writes: nothing the user saved is lost to a crash or a full disk halfway through.
#pragma once

#include "compiler/ir/Error.h"

#include <string>
#include <string_view>

namespace fgc {

// Writes `bytes` to a temporary file beside `path`, flushes it, and renames it over `path`.
// On failure `path` is untouched and the error names it.
Status writeFileAtomic(const std::string &path, std::string_view bytes);

// Reads a whole file; the error names the path and the reason.
Expected<std::string> readFile(const std::string &path);

// An error naming `path` unless it is a regular file: a missing path, a directory, and devices
// and pipes (which could block or never end, /dev/zero) are refused before anything is read.
Status checkRegularFile(const std::string &path);

} // namespace fgc
