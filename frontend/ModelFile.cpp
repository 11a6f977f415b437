// Model file parsing and serialization (see ModelFile.h).
#include "frontend/ModelFile.h"

#include "compiler/support/AtomicFile.h"
#include "frontend/WeightsFile.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>

namespace fgc {

namespace {

// Collects the first text-format parse error instead of letting protobuf log to stderr.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
public:
  void AddError(int line, int column, const std::string &message) override {
    if (message_.empty())
      message_ = fmt::format("line {}, column {}: {}", line + 1, column + 1, message);
  }
  void AddWarning(int, int, const std::string &) override {}
  std::string message_;
};

// Text format files are printable: no NUL and no control bytes other than whitespace.
// Binary protobuf of a Model almost always has field tags and lengths below 0x20.
bool looksLikeText(const std::string &bytes) {
  for (unsigned char c : bytes)
    if (c == 0 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t'))
      return false;
  return true;
}

Status checkVersion(const schema::Model &m, const std::string &name) {
  if (m.schema_version() == 0)
    return Error::format("{}: not an fgc model: schema_version is missing (expected a binary .pb "
                         "or text .pbtxt file written for fgc schema version {})",
                         name, kSchemaVersion);
  if (m.schema_version() < kOldestSchemaVersion || m.schema_version() > kSchemaVersion)
    return Error::format("{}: unsupported schema_version {}: this fgc reads versions {} to {}",
                         name, m.schema_version(), kOldestSchemaVersion, kSchemaVersion);
  return Status::ok();
}

bool isContainer(const std::string &bytes) {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), kWeightsMagic, 8) == 0;
}

// The architecture embedded in an fgc model file (the .fgcw container, schemas/fgc.proto).
Expected<std::string> containerModelBytes(const std::string &bytes, const std::string &name) {
  if (bytes.size() < 16)
    return Error::format("{}: truncated fgc model file ({} bytes)", name, bytes.size());
  uint64_t indexLen = 0;
  for (int i = 7; i >= 0; --i)
    indexLen = (indexLen << 8) | static_cast<unsigned char>(bytes[8 + size_t(i)]);
  if (indexLen > bytes.size() - 16)
    return Error::format("{}: truncated fgc model file (index of {} bytes, file of {})", name,
                         indexLen, bytes.size());
  schema::WeightsIndex index;
  google::protobuf::LogSilencer quiet;
  if (!index.ParseFromArray(bytes.data() + 16, static_cast<int>(indexLen)))
    return Error::format("{}: corrupt fgc model file index", name);
  if (index.model().empty())
    return Error::format("{}: an fgc weights file, not a model: it holds weights only (give the "
                         "model file that names it in `weights_file`, or a file written by a "
                         "generated model's save())",
                         name);
  return index.model();
}

} // namespace

Expected<schema::Model> parseModel(const std::string &bytes, const std::string &name) {
  if (bytes.empty())
    return Error::format("{}: file is empty", name);
  schema::Model model;
  if (isContainer(bytes)) {
    auto embedded = containerModelBytes(bytes, name);
    if (!embedded)
      return embedded.error();
    if (!model.ParseFromString(*embedded))
      return Error::format("{}: the model embedded in the fgc model file is corrupt", name);
    if (!model.weights_file().empty())
      return Error::format("{}: the model embedded in the fgc model file names a weights_file",
                           name);
  } else if (looksLikeText(bytes)) {
    google::protobuf::TextFormat::Parser parser;
    FirstErrorCollector errors;
    parser.RecordErrorsTo(&errors);
    if (!parser.ParseFromString(bytes, &model))
      return Error::format("{}: invalid text model: {}", name,
                           errors.message_.empty() ? "parse error" : errors.message_);
  } else {
    google::protobuf::io::ArrayInputStream raw(bytes.data(), static_cast<int>(bytes.size()));
    google::protobuf::io::CodedInputStream in(&raw);
    in.SetRecursionLimit(64);
    // protobuf logs invalid UTF-8 in string fields to stderr; the Error below reports it once.
    google::protobuf::LogSilencer quiet;
    if (!model.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage())
      return Error::format("{}: invalid binary model: the file is truncated or is not an fgc "
                           "model ({} bytes)",
                           name, bytes.size());
  }
  FGC_TRY(checkVersion(model, name));
  return model;
}

namespace {

// What parseModel needs of the file: all of it, or of a model file (the .fgcw container) its
// header and index only, not its weights (read where they go: loadWeightsFile, the JIT).
Expected<std::string> readModelBytes(const std::string &path) {
  std::error_code ec;
  uint64_t size = std::filesystem::is_regular_file(path, ec) ? std::filesystem::file_size(path, ec)
                                                              : 0;
  std::ifstream in(path, std::ios::binary);
  std::string head(16, '\0');
  if (ec || size < 16 || !in || !in.read(head.data(), 16) || !isContainer(head))
    return readFile(path); // and its messages
  uint64_t indexLen = 0;
  for (int i = 7; i >= 0; --i)
    indexLen = (indexLen << 8) | static_cast<unsigned char>(head[8 + size_t(i)]);
  if (indexLen > size - 16)
    return readFile(path); // parseModel reports the truncation
  std::string bytes = head + std::string(static_cast<size_t>(indexLen), '\0');
  if (!in.read(bytes.data() + 16, static_cast<std::streamsize>(indexLen)))
    return Error::format("{}: read failed", path);
  return bytes;
}

} // namespace

Expected<schema::Model> readModelFile(const std::string &path) {
  auto bytes = readModelBytes(path);
  if (!bytes)
    return bytes.error();
  auto model = parseModel(*bytes, path);
  // A model file: its weights are in the file itself.
  if (model && isContainer(*bytes)) {
    auto slash = path.find_last_of('/');
    model->set_weights_file(slash == std::string::npos ? path : path.substr(slash + 1));
  }
  return model;
}

std::string serializeModel(const schema::Model &model, ModelFormat format) {
  std::string out;
  if (format == ModelFormat::Text) {
    google::protobuf::TextFormat::Printer printer;
    printer.SetUseUtf8StringEscaping(true);
    printer.PrintToString(model, &out);
    return "# proto-file: schemas/fgc.proto\n# proto-message: fgc.schema.Model\n" + out;
  }
  {
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);
    model.SerializeToCodedStream(&coded);
  }
  return out;
}

ModelFormat formatForPath(const std::string &path) {
  auto endsWith = [&](const std::string &suffix) {
    return path.size() >= suffix.size() &&
           path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return endsWith(".pbtxt") || endsWith(".txt") ? ModelFormat::Text : ModelFormat::Binary;
}

Status writeModelFile(const std::string &path, const schema::Model &model) {
  return writeFileAtomic(path, serializeModel(model, formatForPath(path)));
}

} // namespace fgc
