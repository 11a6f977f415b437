// Scan's body table (see Scan.cpp): the frontend traces a body once and registers it here; the
// Scan layer's config names it by the key this returns.
#pragma once

#include "compiler/ir/Graph.h"

#include <memory>
#include <string>

namespace fgc::ops {

// Keeps `body` for the life of the process and returns its key. Keys carry a per-process nonce,
// so a key written into a model file never finds another process's body.
std::string registerScanBody(std::shared_ptr<const Graph> body);

} // namespace fgc::ops
