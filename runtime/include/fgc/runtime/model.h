// Support for the model classes fgc generates: tensors, input binding, the activation arena and
// weights (embedded, or in fgc weights files).
//
// Generated code describes its model with static tables (TensorSpec, WeightSpec) and calls these
// helpers, so the per-model code stays short and the heavy lifting is compiled once, here.
// Everything reports failures by throwing fgc::rt::Error with a message that names the model,
// the input or file, and the shapes involved.
#ifndef FGC_RUNTIME_MODEL_H
#define FGC_RUNTIME_MODEL_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace fgc::rt {

class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Element types, numbered as in fgc's schema.
enum class DType : int32_t { Float32 = 1, Float64 = 2, Int32 = 3, Int64 = 4, UInt8 = 5 };
std::size_t dtypeSize(DType dtype);
const char *dtypeName(DType dtype);

// A dense, C-order tensor that owns 64-byte aligned storage. Resizing to a shape that fits the
// current capacity does not allocate, so buffers reused across calls cost nothing after the first.
class Tensor {
public:
  Tensor() = default;
  Tensor(DType dtype, std::vector<int64_t> shape);
  static Tensor fromFloats(std::vector<int64_t> shape, const float *data);
  static Tensor fromInts(std::vector<int64_t> shape, const int32_t *data);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t> &shape() const { return shape_; }
  int64_t size() const; // number of elements
  std::size_t bytes() const { return static_cast<std::size_t>(size()) * dtypeSize(dtype_); }
  void resize(DType dtype, const std::vector<int64_t> &shape);

  template <typename T> T *data() { return static_cast<T *>(data_); }
  template <typename T> const T *data() const { return static_cast<const T *>(data_); }
  void *raw() { return data_; }
  const void *raw() const { return data_; }

  Tensor(const Tensor &other);
  Tensor &operator=(const Tensor &other);
  Tensor(Tensor &&other) noexcept;
  Tensor &operator=(Tensor &&other) noexcept;
  ~Tensor();

private:
  DType dtype_ = DType::Float32;
  std::vector<int64_t> shape_;
  void *data_ = nullptr;
  std::size_t capacity_ = 0;
};

// "(None, 784)" for specs, "(32, 784)" for concrete shapes.
std::string shapeString(const int64_t *shape, int rank);

// A model input or output as the generated code declares it. Negative dimensions are symbols:
// -1 the batch size, -2, -3, ... the model's other None dimensions.
struct TensorSpec {
  const char *name;
  DType dtype;
  int rank;
  const int64_t *shape;
};

// Checks `inputs` against the model's input specs and resolves every symbolic dimension into
// symbols[-1 - id] (symbols[0] is the batch size). An index input (spec dtype Int32: read only
// by Embedding layers) may be given as int32, int64 or float32. Throws Error naming the input and both shapes.
void bindInputs(const char *model, const TensorSpec *specs, int numInputs, const Tensor *inputs,
                int64_t *symbols, int numSymbols);

// The concrete shape of a spec once symbols are known.
std::vector<int64_t> resolveShape(const TensorSpec &spec, const int64_t *symbols);

// An index input's values as int32: the tensor's own data when it is int32, otherwise converted
// into `staging` (room for t.size() values).
const int32_t *asIndices(const Tensor &t, int32_t *staging);

// Checks training targets against their specs once the inputs have fixed the symbols. A
// rank-1 spec (sparse labels) also accepts (batch, 1). Throws Error naming the target.
void bindTargets(const char *model, const TensorSpec *specs, int numTargets, const Tensor *targets,
                 const int64_t *symbols);

// Throws Error with the runtime's last kernel message, prefixed with the model and layer names.
[[noreturn]] void kernelFailed(const char *model, const char *layer, int status);

// Scratch memory for activations: grows to the largest request, 64-byte aligned, never shrinks.
class Arena {
public:
  Arena() = default;
  Arena(const Arena &) = delete;
  Arena &operator=(const Arena &) = delete;
  ~Arena();
  // Returns storage for at least `bytes` bytes (contents undefined).
  void *reserve(std::size_t bytes);
  std::size_t capacity() const { return capacity_; }

private:
  void *data_ = nullptr;
  std::size_t capacity_ = 0;
};

// One parameter as the generated code declares it: its layer path ("encoder/conv2d"), name,
// shape, and its offset in the embedded blob (64-byte aligned, float32).
struct WeightSpec {
  const char *layer;
  const char *name;
  int rank;
  const int64_t *shape;
  uint64_t offset;
};

// One optimizer slot of a generated training class: a tensor shaped like weight `weight` (an
// index into the WeightSpecs), Keras's slot `name` ("rms", "m", "v", "momentum", ...), stored at
// float offset `offset` of the class's optimizer state.
struct SlotSpec {
  int weight;
  const char *name;
  uint64_t offset;
};

// What a model file holds besides the weights (schemas/fgc.proto, WeightsIndex): the model's
// architecture and training config as a binary fgc.schema.Model (generated code embeds it), and
// for a training class its optimizer (Keras class name) and slots.
struct ModelFileSpec {
  const unsigned char *schema = nullptr;
  std::size_t schemaBytes = 0;
  const char *optimizer = nullptr;
  const SlotSpec *slots = nullptr;
  int numSlots = 0;
};

// Where training stands (schema: TrainingState).
struct TrainingCounters {
  int64_t iterations = 0;       // optimizer steps taken
  int32_t epoch = 0;            // epochs completed
  bool hasLearningRate = false; // a learning rate set in code overrides the configured one
  double learningRate = 0;
};

// The model's parameters: embedded in the program (inline arrays or a linked blob), or loaded
// from an fgc weights or model file (.fgcw, memory-mapped). save() writes a .fgcw file
// atomically.
class Weights {
public:
  Weights() = default;
  // Uses `data` (the embedded blob, laid out as `specs` say) without copying.
  static Weights embedded(const char *model, const WeightSpec *specs, int count, const void *data,
                          std::size_t bytes);
  // Maps the weights file and checks that it holds every spec with the same shape.
  static Weights load(const char *model, const WeightSpec *specs, int count,
                      const std::string &path);
  void save(const std::string &path) const;

  // Writes a model file atomically: the weights, spec's architecture, and — when `counters` is
  // not null — the optimizer slots (read from `state` at the slots' offsets) and the counters.
  void saveModel(const std::string &path, const ModelFileSpec &spec, const float *state,
                 const TrainingCounters *counters) const;
  // Reads a model file written by saveModel into `weights`. The file must be a model file of
  // `model` holding every spec with its shape. When `counters` is not null and the file holds
  // training state, the optimizer must be spec's, every slot is copied into `state` and the
  // counters are set; returns whether that happened (false: no training state in the file).
  // Throws Error naming the file, the weight or slot and both shapes; nothing is changed then.
  static bool loadModel(const char *model, const WeightSpec *specs, int count,
                        const std::string &path, const ModelFileSpec &spec, Weights &weights,
                        float *state, TrainingCounters *counters);

  const float *operator[](int i) const { return pointers_[static_cast<std::size_t>(i)]; }
  // Writable parameter i (training): the first call copies every parameter into memory the
  // Weights own, so embedded or mapped weights are never written.
  float *mutableData(int i);
  int count() const { return count_; }
  // Changes whenever the weights may have changed: every Weights object (embedded, loaded) gets
  // a number of its own, and every mutableData() call a new one. Generated code recomputes what
  // it derives from the weights (BatchNormalization folded into a kernel) when it differs.
  // Writes through a pointer that mutableData() returned earlier go unnoticed: call it again.
  std::uint64_t version() const { return version_; }

  // The file format's internals (model.cpp).
  struct Mapping;
  struct File;

private:
  static Weights fromFile(const char *model, const WeightSpec *specs, int count,
                          const std::string &path, const File &f);
  std::string model_;
  const WeightSpec *specs_ = nullptr;
  int count_ = 0;
  std::vector<const float *> pointers_;
  std::shared_ptr<Mapping> mapping_;
  std::shared_ptr<std::vector<float>> owned_;
  static std::uint64_t nextVersion();
  std::uint64_t version_ = nextVersion();
};

} // namespace fgc::rt

#endif // FGC_RUNTIME_MODEL_H

extern "C" {
// Keras casts float indices to integers before an Embedding lookup; generated code does the same
// with this (truncation toward zero, as tf.cast does). Returns FGC_OK.
int fgc_cast_f32_to_i32(const float *x, int32_t *y, int64_t count);
// Widening / narrowing casts between index types: int64 -> int32 fails with
// FGC_ERR_OUT_OF_RANGE for values that do not fit.
int fgc_cast_i64_to_i32(const int64_t *x, int32_t *y, int64_t count);
}
