// Format detection and dispatch for Keras imports (see KerasImport.h).
#include "frontend/importers/KerasImport.h"

#include "compiler/support/AtomicFile.h"
#include "frontend/importers/KerasConfig.h"
#include "frontend/importers/KerasFormats.h"

#include <fmt/format.h>

namespace fgc {

KerasFormat detectKerasFormat(const std::string &bytes) {
  static const std::string hdf5("\x89HDF\r\n\x1a\n", 8);
  if (bytes.compare(0, hdf5.size(), hdf5) == 0)
    return KerasFormat::Hdf5;
  if (bytes.compare(0, 4, "PK\x03\x04") == 0)
    return KerasFormat::Archive;
  for (char c : bytes) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
      continue;
    return c == '{' ? KerasFormat::Json : KerasFormat::None;
  }
  return KerasFormat::None;
}

const char *kerasFormatName(KerasFormat f) {
  switch (f) {
  case KerasFormat::Json: return "Keras JSON config";
  case KerasFormat::Hdf5: return "Keras HDF5";
  case KerasFormat::Archive: return "Keras 3 archive";
  case KerasFormat::None: break;
  }
  return "not a Keras file";
}

namespace {

// `--compile`: Keras's compile() arguments (JSON text, or a file holding it) as the model's
// training config.
Status applyCompileConfig(const std::string &arg, schema::Model &model, importers::ImportLog &log) {
  std::string text = arg;
  std::string what = "--compile";
  size_t first = arg.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || (arg[first] != '{' && arg[first] != '[')) {
    auto bytes = readFile(arg);
    if (!bytes)
      return Error::format("--compile: {}", bytes.error().message());
    text = *bytes;
    what = arg;
  }
  auto json = importers::parseJson(text, what);
  if (!json)
    return json.error();
  if (!json->is_object() || (!json->contains("loss") && !json->contains("optimizer")))
    return Error::format("{}: expected Keras's compile() arguments as a JSON object, e.g. "
                         "{{\"optimizer\": \"rmsprop\", \"loss\": "
                         "\"sparse_categorical_crossentropy\"}}",
                         what);
  model.clear_training();
  importers::mapTrainingConfig(*json, model, log);
  return {};
}

} // namespace

Expected<KerasImportResult> importKerasFile(const std::string &path,
                                            const KerasImportOptions &options) {
  auto bytes = readFile(path);
  if (!bytes)
    return bytes.error();
  importers::ImportLog log{path, {}};
  Expected<KerasImportResult> r = Error("");
  switch (detectKerasFormat(*bytes)) {
  case KerasFormat::Json: r = importers::importJson(*bytes, log, options); break;
  case KerasFormat::Hdf5: r = importers::importHdf5(path, log, options); break;
  case KerasFormat::Archive: r = importers::importArchive(*bytes, log, options); break;
  case KerasFormat::None:
    return Error::format("{}: not a Keras file: expected JSON (model.to_json()), HDF5 (.h5) or a "
                         "Keras 3 zip archive (.keras), judging by its first bytes",
                         path);
  }
  if (r && !options.compileConfig.empty()) {
    if (auto s = applyCompileConfig(options.compileConfig, r->model, log); !s)
      return s.error();
    const std::string &now = r->model.training().optimizer().class_name();
    if (r->optimizerState && r->optimizerState->optimizer != now) {
      log.warn(fmt::format("the file's {} state is not imported: --compile trains with {}",
                           r->optimizerState->optimizer, now.empty() ? "no optimizer" : now));
      r->optimizerState.reset();
    }
  }
  if (r)
    r->warnings = std::move(log.warnings);
  return r;
}

} // namespace fgc
