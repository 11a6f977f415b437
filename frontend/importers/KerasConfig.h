// The shared Keras-config-to-fgc mapper, used by every Keras importer (JSON, HDF5, archive).
//
// Reads what Keras writes for a model's architecture — `model.to_json()` of Keras 2 / tf.keras
// ("Model" / "Functional", nested-list inbound_nodes) and Keras 3 (module / registered_name,
// dict inbound_nodes with keras_history, DTypePolicy objects), Sequential configs in list and
// dict form, nested and shared models — and produces the equivalent fgc schema::Model.
// Layer classes are looked up in the op registry; each layer's config is mapped onto the op's
// declared attributes (Keras's names), so nothing here knows individual layer classes.
//
// Node numbering: fgc counts every layer's calls from 0. Keras 2 numbers a nested model's calls
// from 1 everywhere; Keras 3 does so only in `input_layers` / `output_layers` of a nested
// Functional, and counts from 0 in `inbound_nodes`. The mapper converts.
#pragma once

#include "compiler/ir/Error.h"
#include "fgc.pb.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace fgc::importers {

using Json = nlohmann::json;

// Diagnostics of one import: the file name for messages and the warnings collected so far.
struct ImportLog {
  std::string fileName;
  std::vector<std::string> warnings;
  void warn(std::string message) { warnings.push_back(fileName + ": warning: " + message); }
};

// Parses JSON text; the error names `what` and the position.
Expected<Json> parseJson(const std::string &text, const std::string &what);

// True when the JSON text is a Keras model config (has "class_name" and "config").
bool looksLikeKerasModel(const Json &j);

// `top` is {"class_name", "config", ...} as to_json(), `model_config` or config.json hold it.
// The result has no weights and no training config.
Expected<schema::Model> mapKerasModel(const Json &top, ImportLog &log);

// Keras 2 `training_config` or Keras 3 `compile_config` into model.training, where it maps
// (optimizer, losses, loss weights, metrics); what does not map is dropped with a warning.
void mapTrainingConfig(const Json &config, schema::Model &model, ImportLog &log);

// Keras 3 weights paths: snake_case of a class name ("Conv2DTranspose" -> "conv2d_transpose").
std::string kerasSnakeCase(const std::string &className);

} // namespace fgc::importers
