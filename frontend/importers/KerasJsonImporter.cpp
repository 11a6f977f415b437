// `model.to_json()` files (Keras 2 / tf.keras and Keras 3), weights from `--weights`.
#include "frontend/importers/KerasFormats.h"

namespace fgc::importers {

Expected<KerasImportResult> importJson(const std::string &bytes, ImportLog &log,
                                       const KerasImportOptions &options) {
  auto json = parseJson(bytes, log.fileName);
  if (!json)
    return json.error();
  if (!looksLikeKerasModel(*json))
    return Error::format("{}: JSON without \"class_name\" and \"config\": not a Keras model "
                         "config (model.to_json())",
                         log.fileName);
  auto model = mapKerasModel(*json, log);
  if (!model)
    return model.error();
  // Keras 3 to_json() carries the compile config.
  if (const auto it = json->find("compile_config"); it != json->end())
    mapTrainingConfig(*it, *model, log);
  KerasImportResult r;
  r.format = KerasFormat::Json;
  if (!options.weightsPath.empty()) {
    FGC_TRY(attachWeightsFile(*model, options.weightsPath));
    r.hasWeights = true;
  } else {
    FGC_TRY(validateModel(*model, log));
  }
  r.model = model.take();
  return r;
}

} // namespace fgc::importers
