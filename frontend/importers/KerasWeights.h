// Matching the weights a Keras file stores to fgc's parameters, shared by every importer.
#pragma once

#include "compiler/ir/OpRegistry.h"
#include "frontend/importers/Hdf5File.h"
#include "frontend/importers/KerasConfig.h"
#include "frontend/importers/KerasImport.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fgc::importers {

// A layer's weights as the file stores them, in the file's order, by layer path (the names of
// the enclosing nested models and the layer, joined by '/': "model_1/conv2d_1").
using LayerWeights = std::map<std::string, std::vector<ImportedWeight>>;

// Legacy HDF5 (`model.save` under `model_weights`, or `save_weights` at the root `group`):
// layer groups listed by `layer_names`, weights in `weight_names` order; a nested model's group
// holds all its layers' weights, told apart by the layer names in the weight names.
Expected<LayerWeights> readLegacyWeights(const Hdf5File &file, const std::string &group,
                                         const schema::Model &model);

// Keras 3 archives' model.weights.h5: `layers/<snake_case class>[_k]/vars/<i>`, where k counts
// the objects of one class in a model's layer list (Keras's tracking order, not the names).
Expected<LayerWeights> readArchiveWeights(const Hdf5File &file, const schema::Model &model);

// Puts the weights into `model` as fgc parameters (the ops' `importWeights` hooks, or by name,
// or by position), then validates the model with them. Every layer that has parameters must
// have weights, and every weight must find its layer.
Status attachWeights(schema::Model &model, const LayerWeights &weights, ImportLog &log);

// The optimizer state of a legacy HDF5 full model (`optimizer_weights`), matched by name to the
// weights `weights` (readLegacyWeights, before attachWeights) of `model` (without weights yet)
// and converted to fgc's layouts by the same hooks as the weights. Nothing (with a warning
// saying why) when the file has no usable state: no training config, anonymous variables
// (Keras 2.0-2.2's `training/RMSprop/Variable:0`), an optimizer fgc has no slots for.
Expected<std::optional<KerasOptimizerState>>
readLegacyOptimizerState(const Hdf5File &file, const LayerWeights &weights,
                         const schema::Model &model, ImportLog &log);

// Keras 3 archives' `optimizer/vars/<i>`: the iteration count, the learning rate, then the
// slots of every trainable variable in Keras's order (layers in tracking order, each layer's
// trainable weights), one after the other per variable (Adam: momentum, velocity).
Expected<std::optional<KerasOptimizerState>>
readArchiveOptimizerState(const Hdf5File &file, const LayerWeights &weights,
                          const schema::Model &model, ImportLog &log);

// Builds the model's graph to validate it; errors are prefixed with the log's file name.
Status validateModel(const schema::Model &model, const ImportLog &log);

// A stored weight's shape as Keras prints it: "(3, 3, 1, 32)", "(10,)".
std::string weightShapeText(const std::vector<int64_t> &shape);

} // namespace fgc::importers
