// The per-format Keras readers behind importKerasFile (KerasImport.h); internal to the importer.
#pragma once

#include "frontend/importers/KerasImport.h"
#include "frontend/importers/KerasWeights.h"

namespace fgc::importers {

// `model.to_json()` text.
Expected<KerasImportResult> importJson(const std::string &bytes, ImportLog &log,
                                       const KerasImportOptions &options);
// Legacy HDF5: a full model (model_config + model_weights) or a save_weights file.
Expected<KerasImportResult> importHdf5(const std::string &path, ImportLog &log,
                                       const KerasImportOptions &options);
// A Keras 3 `.keras` zip: config.json, metadata.json, model.weights.h5.
Expected<KerasImportResult> importArchive(const std::string &bytes, ImportLog &log,
                                          const KerasImportOptions &options);

// Weights for a mapped model from a separate HDF5 file (save_weights or full model).
Expected<LayerWeights> readWeightsFile(const std::string &path, const schema::Model &model);
// readWeightsFile, then attachWeights with messages naming that file.
Status attachWeightsFile(schema::Model &model, const std::string &path);

} // namespace fgc::importers
