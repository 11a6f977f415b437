// IR Graph -> schema::Model: what `fgc convert`, `model.save()` and checkpoints write.
#pragma once

#include "compiler/ir/Graph.h"
#include "fgc.pb.h"

namespace fgc {

enum class WeightsMode {
  None,   // architecture and seed only: weights are initialized again at load
  Inline, // every parameter's data inside the model file
};

// Layers are written in Keras's `model.layers` order, configs without their default values.
// With WeightsMode::Inline every parameter must have data.
Expected<schema::Model> graphToModel(const Graph &graph, WeightsMode weights);

// True when every parameter (nested models included) has data.
bool hasAllWeights(const Graph &graph);

} // namespace fgc
