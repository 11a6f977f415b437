// Legacy Keras HDF5 files: `model.save("m.h5")` and `model.save_weights("w.h5")`.
//
// A full model has the root attributes `model_config` (the architecture as JSON) and
// `training_config` (when compiled), and its weights under the group `model_weights`; a
// save_weights file has the layer groups at the root and needs the architecture from JSON.
#include "frontend/importers/KerasFormats.h"

namespace fgc::importers {

Expected<LayerWeights> readWeightsFile(const std::string &path, const schema::Model &model) {
  auto file = Hdf5File::open(path);
  if (!file)
    return file.error();
  std::string group = file->hasGroup("model_weights") ? "model_weights" : "/";
  if (!file->hasAttribute(group, "layer_names") && !file->hasAttribute(group, "layer_names0"))
    return Error::format("{}: an HDF5 file without Keras weights (no 'layer_names' attribute)",
                         path);
  return readLegacyWeights(*file, group, model);
}

Status attachWeightsFile(schema::Model &model, const std::string &path) {
  auto weights = readWeightsFile(path, model);
  if (!weights)
    return weights.error();
  ImportLog log{path, {}};
  return attachWeights(model, *weights, log);
}

Expected<KerasImportResult> importHdf5(const std::string &path, ImportLog &log,
                                       const KerasImportOptions &options) {
  auto file = Hdf5File::open(path);
  if (!file)
    return file.error();
  if (!file->hasAttribute("/", "model_config")) {
    if (file->hasAttribute("/", "layer_names") || file->hasAttribute("/", "layer_names0"))
      return Error::format("{}: this HDF5 file holds only weights (model.save_weights); import "
                           "the model's architecture (model.to_json()) with --weights {}",
                           path, path);
    if (file->hasGroup("layers") || file->hasGroup("vars"))
      return Error::format("{}: this is the weights file of a Keras 3 archive "
                           "(model.weights.h5); import the .keras file itself",
                           path);
    return Error::format("{}: an HDF5 file without a Keras model (no 'model_config' attribute)",
                         path);
  }
  auto configText = file->stringAttribute("/", "model_config");
  if (!configText)
    return configText.error();
  auto json = parseJson(*configText, path + ": model_config");
  if (!json)
    return json.error();
  auto model = mapKerasModel(*json, log);
  if (!model)
    return model.error();
  if (file->hasAttribute("/", "training_config")) {
    auto training = file->stringAttribute("/", "training_config");
    if (!training)
      return training.error();
    auto tj = parseJson(*training, path + ": training_config");
    if (!tj)
      return tj.error();
    mapTrainingConfig(*tj, *model, log);
  }
  KerasImportResult r;
  r.format = KerasFormat::Hdf5;
  if (!options.weightsPath.empty()) {
    FGC_TRY(attachWeightsFile(*model, options.weightsPath));
    r.hasWeights = true;
  } else if (file->hasGroup("model_weights")) {
    auto weights = readLegacyWeights(*file, "model_weights", *model);
    if (!weights)
      return weights.error();
    auto state = readLegacyOptimizerState(*file, *weights, *model, log);
    if (!state)
      return state.error();
    r.optimizerState = std::move(*state);
    FGC_TRY(attachWeights(*model, *weights, log));
    r.hasWeights = true;
  } else {
    FGC_TRY(validateModel(*model, log));
  }
  r.model = model.take();
  return r;
}

} // namespace fgc::importers
