// Deterministic weight initialization with Keras's initializers.
//
// A model file may hold only its architecture and a seed: then every parameter is created here,
// from the layer's initializer config (glorot_uniform kernels, zero biases, orthogonal recurrent
// kernels, uniform embeddings, ...). Each parameter draws from its own random stream, seeded
// from the model seed, the layer path and the weight name, so results do not depend on the order
// layers are initialized in, and the same file always gives the same weights.
#pragma once

#include "compiler/ir/Graph.h"

namespace fgc {

// Initializes every parameter of `graph` (nested models included) that has no data yet.
// Errors name the layer and the unsupported initializer.
Status initializeWeights(Graph &graph);

// Fills `out` (row-major `shape`) with values of the initializer `init` (an object attr).
Status initializeTensor(const AttrValue &init, const std::vector<Dim> &shape, uint64_t seed,
                        std::vector<float> &out);

// The per-parameter seed: a hash of the model seed, the layer path and the weight name.
uint64_t paramSeed(uint64_t modelSeed, const std::string &layerPath, const std::string &name);

} // namespace fgc
