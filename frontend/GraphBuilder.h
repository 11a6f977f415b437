// Building the IR from a schema::Model: the frontend's validation stage.
//
// Every check on user input happens here, once, with messages that name the file, the layer and
// the shapes: unknown classes, bad configs, duplicate names, dangling or cyclic connections,
// arity and shape mismatches, missing or misshapen weights, disconnected graphs.
#pragma once

#include "compiler/ir/Graph.h"
#include "fgc.pb.h"

#include <memory>
#include <string>

namespace fgc {

struct BuildOptions {
  // Where the model came from, prefixed to every message ("model.pbtxt: ...").
  std::string fileName;
  // Directory that a relative `weights_file` is resolved against.
  std::string baseDir;
  // Leave every parameter's data empty (the inline weights and the weights file unread, though
  // a model with both is still an error): the caller reads the weights itself (the JIT, straight
  // into its weight buffer, frontend/WeightsFile.h readWeightsInto).
  bool skipWeights = false;
};

// Builds and validates the graph. Parameters get their types; their data is filled from the
// model's inline weights or weights file when present, and left empty otherwise (see
// initializeWeights in Initializers.h).
Expected<std::unique_ptr<Graph>> buildGraph(const schema::Model &model,
                                            const BuildOptions &options = {});

// Reads a model file and builds its graph.
Expected<std::unique_ptr<Graph>> loadGraph(const std::string &path);

// The weights of a custom layer's traced body in file order, each with its name in the file:
// its path in the body ("kernel" for a weight made by add_weight, "dense/bias" for a layer's).
void collectCustomParams(Graph &body, const std::string &prefix,
                         std::vector<std::pair<std::string, Param *>> &out);

// The caps that keep hostile files from exhausting memory.
inline constexpr int64_t kMaxDim = int64_t(1) << 31;
inline constexpr int64_t kMaxParamElements = int64_t(1) << 34;

} // namespace fgc
