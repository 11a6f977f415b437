// Keras 3 `.keras` archives: a zip of `config.json` (the architecture, with `compile_config`),
// `metadata.json` (`keras_version`, `date_saved`) and `model.weights.h5` (weights by Keras's
// tracking paths, see readArchiveWeights).
#include "frontend/importers/KerasFormats.h"

#include <zip.h>

#include <memory>

namespace fgc::importers {

namespace {

constexpr zip_uint64_t kMaxMemberBytes = zip_uint64_t(1) << 32;

struct ZipCloser {
  void operator()(zip_t *z) const { zip_discard(z); }
};

// Reads one member; nullopt when absent.
Expected<std::optional<std::string>> readMember(zip_t *zip, const char *member,
                                                const std::string &fileName) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat(zip, member, 0, &st) != 0)
    return std::optional<std::string>();
  if (!(st.valid & ZIP_STAT_SIZE) || st.size > kMaxMemberBytes)
    return Error::format("{}: archive member '{}' has an invalid size", fileName, member);
  zip_file_t *f = zip_fopen(zip, member, 0);
  if (!f)
    return Error::format("{}: cannot read archive member '{}': {}", fileName, member,
                         zip_strerror(zip));
  std::string data(size_t(st.size), '\0');
  zip_uint64_t done = 0;
  while (done < st.size) {
    zip_int64_t n = zip_fread(f, data.data() + done, st.size - done);
    if (n <= 0) {
      std::string why = n < 0 ? zip_file_strerror(f) : "unexpected end of data";
      zip_fclose(f);
      return Error::format("{}: cannot read archive member '{}': {} (truncated or corrupted?)",
                           fileName, member, why);
    }
    done += zip_uint64_t(n);
  }
  // A final read checks the CRC.
  char extra;
  zip_int64_t tail = zip_fread(f, &extra, 1);
  std::string why = tail < 0 ? zip_file_strerror(f) : "";
  zip_fclose(f);
  if (tail != 0)
    return Error::format("{}: archive member '{}' is corrupted: {}", fileName, member,
                         why.empty() ? "longer than its recorded size" : why);
  return std::optional<std::string>(std::move(data));
}

} // namespace

Expected<KerasImportResult> importArchive(const std::string &bytes, ImportLog &log,
                                          const KerasImportOptions &options) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t *src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (!src) {
    std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    return Error::format("{}: cannot read the zip archive: {}", log.fileName, why);
  }
  std::unique_ptr<zip_t, ZipCloser> zip(zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS,
                                                             &error));
  if (!zip) {
    std::string why = zip_error_strerror(&error);
    zip_source_free(src);
    zip_error_fini(&error);
    return Error::format("{}: not a readable zip archive: {} (truncated or corrupted?)",
                         log.fileName, why);
  }
  zip_error_fini(&error);
  auto config = readMember(zip.get(), "config.json", log.fileName);
  if (!config)
    return config.error();
  if (!*config)
    return Error::format("{}: a zip archive without config.json: not a Keras 3 .keras model",
                         log.fileName);
  auto metadata = readMember(zip.get(), "metadata.json", log.fileName);
  if (!metadata)
    return metadata.error();
  auto weightsBytes = readMember(zip.get(), "model.weights.h5", log.fileName);
  if (!weightsBytes)
    return weightsBytes.error();
  if (*metadata) {
    auto meta = parseJson(**metadata, log.fileName + ": metadata.json");
    if (!meta)
      return meta.error();
  }
  auto json = parseJson(**config, log.fileName + ": config.json");
  if (!json)
    return json.error();
  if (!looksLikeKerasModel(*json))
    return Error::format("{}: config.json is not a Keras model config", log.fileName);
  auto model = mapKerasModel(*json, log);
  if (!model)
    return model.error();
  if (const auto it = json->find("compile_config"); it != json->end())
    mapTrainingConfig(*it, *model, log);
  KerasImportResult r;
  r.format = KerasFormat::Archive;
  if (!options.weightsPath.empty()) {
    FGC_TRY(attachWeightsFile(*model, options.weightsPath));
    r.hasWeights = true;
  } else if (*weightsBytes) {
    auto file = Hdf5File::openImage(std::move(**weightsBytes), log.fileName + ":model.weights.h5");
    if (!file)
      return file.error();
    auto weights = readArchiveWeights(*file, *model);
    if (!weights)
      return weights.error();
    auto state = readArchiveOptimizerState(*file, *weights, *model, log);
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
