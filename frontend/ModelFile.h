// Reading and writing model files: binary `.pb` or text `.pbtxt` of schema::Model, told apart by
// content (not by extension). Errors name the file and, for text, the line and column.
#pragma once

#include "compiler/ir/Error.h"
#include "fgc.pb.h"

#include <string>

namespace fgc {

enum class ModelFormat { Binary, Text };

// The schema version this build writes and the oldest it reads.
inline constexpr int kSchemaVersion = 1;
inline constexpr int kOldestSchemaVersion = 1;

// Parses model bytes; `name` is used in messages (usually the path).
Expected<schema::Model> parseModel(const std::string &bytes, const std::string &name);
Expected<schema::Model> readModelFile(const std::string &path);

// Serializes deterministically (map entries sorted) in the given format.
std::string serializeModel(const schema::Model &model, ModelFormat format);
// Chooses the format from the extension: `.pbtxt` / `.txt` text, anything else binary.
ModelFormat formatForPath(const std::string &path);
Status writeModelFile(const std::string &path, const schema::Model &model);

} // namespace fgc
