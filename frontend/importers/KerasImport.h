// Importing Keras models: `fgc import`, and Keras files given to any fgc command.
//
// The format is told by content, not by extension: JSON text (`model.to_json()`, Keras 2 and
// 3), HDF5 (`\x89HDF\r\n\x1a\n`: a legacy full model `model.save("m.h5")`, or a `save_weights`
// file, which needs the architecture from JSON), or a zip (`PK\x03\x04`: a Keras 3 `.keras`
// archive). Each format has its reader in this folder; they share the config mapper
// (KerasConfig.h) and the weight matching (KerasWeights.h). The result is an fgc schema::Model
// with the weights inline, already validated by the frontend (GraphBuilder). Failures are one
// Error naming the file and the layer; nothing is written.
#pragma once

#include "compiler/ir/Error.h"
#include "fgc.pb.h"
#include "frontend/WeightsFile.h"

#include <optional>
#include <string>
#include <vector>

namespace fgc {

enum class KerasFormat { None, Json, Hdf5, Archive };

// The Keras format of a file's first bytes, or None (e.g. an fgc .pb / .pbtxt).
KerasFormat detectKerasFormat(const std::string &bytes);
const char *kerasFormatName(KerasFormat f);

struct KerasImportOptions {
  // A weights file for a JSON config (legacy `save_weights` HDF5 or a full-model HDF5), or
  // one replacing the weights a full model carries.
  std::string weightsPath;
  // Keras's compile() arguments as JSON ({"optimizer": ..., "loss": ..., "loss_weights": ...,
  // "metrics": ...}, the form of Keras 3's compile_config), or the path of a file holding them:
  // the model's training config, replacing the one the file carries (if any).
  std::string compileConfig;
};

// The optimizer state a Keras file saved with the model (legacy HDF5 `optimizer_weights`,
// Keras 3 archives' `optimizer/vars`): the slot variables converted to fgc's parameter layouts,
// so that training continues where Keras stopped (`fgc import -o model.fgcm`).
using KerasOptimizerState = OptimizerState;

struct KerasImportResult {
  schema::Model model;
  KerasFormat format = KerasFormat::None;
  bool hasWeights = false;
  std::optional<KerasOptimizerState> optimizerState; // when the file holds one fgc can use
  std::vector<std::string> warnings; // "FILE: warning: ..." lines
};

Expected<KerasImportResult> importKerasFile(const std::string &path,
                                            const KerasImportOptions &options = {});

} // namespace fgc
