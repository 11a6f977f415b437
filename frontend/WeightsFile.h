// The fgc weights file (`.fgcw`): every parameter of a model, memory-mappable.
//
// Layout (see schemas/fgc.proto, WeightsIndex): magic "FGCWGT01", a u64 index length, the
// binary WeightsIndex, then the data section with every tensor at a 64-byte aligned offset.
// Entries are keyed by layer path ("encoder/conv2d" for layers of nested models) and weight name.
#pragma once

#include "compiler/ir/Graph.h"

#include <string>

namespace fgc {

inline constexpr char kWeightsMagic[8] = {'F', 'G', 'C', 'W', 'G', 'T', '0', '1'};
inline constexpr size_t kWeightsAlignment = 64;

// Fills every parameter of `graph` (nested models included) from the file. Errors name the file,
// the layer and both shapes; a parameter absent from the file is an error.
Status loadWeightsFile(Graph &graph, const std::string &path);

// Writes every parameter (all must have data) atomically.
Status saveWeightsFile(const Graph &graph, const std::string &path);

} // namespace fgc
