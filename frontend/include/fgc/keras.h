// fgc's C++ functional API: Keras's Functional API, line for line.
//
//   using namespace fgc::keras;
//   auto inputs = Input({784});
//   auto x = layers::Dense(64, {.activation = "relu"})(inputs);
//   x = layers::Dense(64, {.activation = "relu"})(x);
//   auto outputs = layers::Dense(10)(x);
//   Model model(inputs, outputs, "mnist_model");
//   model.summary();
//   model.save("mnist.pbtxt");
//
// Layers are handles: copying one shares the layer, and calling a layer object again makes it a
// shared layer. Every call infers shapes immediately and throws fgc::Exception with a message
// naming the layer and the shapes, as Keras raises at call time. A Model is itself a layer that
// can be called on tensors (nested models, ensembles). Layer names follow Keras's automatic
// naming ("dense", "dense_1", ..., "input_1"); clear_session() resets the counters.
//
// Keyword arguments are option structs used with designated initializers (C++20), with Keras's
// names and defaults: `layers::Conv2D(16, 3, {.strides = 2, .padding = "same"})`.
#pragma once

#include "compiler/ir/Error.h"
#include "fgc.pb.h"

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fgc {
class Graph;
}

namespace fgc::keras {

class Tensor;
namespace detail {
struct LayerState;
struct NodeState;
struct ModelState;
std::vector<Tensor> callLayer(const std::shared_ptr<LayerState> &layer,
                              const std::vector<Tensor> &inputs);
} // namespace detail

// A value in a config: what Keras writes in `get_config()`.
using ConfigValue = schema::AttrValue;
using Config = std::map<std::string, ConfigValue>;

// Keras's None in a shape.
inline constexpr int64_t None = -1;

// An int or a tuple of ints, as Keras accepts for kernel_size, strides, pool_size, ...
struct IntTuple {
  std::vector<int64_t> values;
  IntTuple() = default;
  IntTuple(int64_t v) : values{v} {}
  IntTuple(int v) : values{v} {}
  IntTuple(std::initializer_list<int64_t> v) : values(v) {}
  IntTuple(std::vector<int64_t> v) : values(std::move(v)) {}
};

// An initializer: by Keras name ("glorot_uniform", "zeros", "random_normal") or class and config
// (`Initializer{"RandomNormal", {{"stddev", ...}}}`).
struct Initializer {
  std::string className;
  Config config;
  Initializer(const char *name);
  Initializer(const std::string &name);
  Initializer(std::string className, Config config);
};

// A symbolic tensor: the output of a layer call (Keras's KerasTensor).
class Tensor {
public:
  Tensor() = default;
  // Keras's shape with None as -1, batch dimension first: (None, 784) is {-1, 784}.
  const std::vector<int64_t> &shape() const;
  std::string dtype() const;
  // "(None, 784)"
  std::string shapeString() const;
  // The layer that produced it ("dense_1").
  std::string layerName() const;

private:
  friend std::vector<Tensor> detail::callLayer(const std::shared_ptr<detail::LayerState> &,
                                               const std::vector<Tensor> &);
  friend class Layer;
  friend class Model;
  friend struct detail::ModelState;
  std::shared_ptr<detail::NodeState> node_;
  int index_ = 0;
};

struct InputOptions {
  std::string name = {};
  std::string dtype = "float32";
  std::optional<int64_t> batch_size = {};
};

// keras.Input(shape=...): shape excludes the batch dimension; None (-1) marks unknown sizes.
Tensor Input(std::vector<int64_t> shape, const InputOptions &options = {});

// A layer handle. Calling it adds a node; calling it again shares its weights.
class Layer {
public:
  Layer() = default;
  Tensor operator()(const Tensor &input) const;
  Tensor operator()(const std::vector<Tensor> &inputs) const;
  // For layers with several outputs (LSTM with return_state=True).
  std::vector<Tensor> callMulti(const std::vector<Tensor> &inputs) const;

  const std::string &name() const;
  const std::string &className() const;
  // Keras's layer.output / layer.input: the tensors of the layer's only call (node 0 of a layer
  // called once). Throws when the layer was never called or was called several times.
  Tensor output() const;
  std::vector<Tensor> outputs_of_call(int callIndex) const;
  Tensor input() const;
  // Keras's get_config(): every argument with its value (defaults included), plus "name".
  Config get_config() const;
  // Number of weights' elements, once the layer is built (called).
  int64_t count_params() const;
  bool trainable() const;
  void set_trainable(bool trainable);

  // Rebuilds a layer from a class name and config (Keras's `layer_from_config`); the config may
  // hold "name". Throws for unknown classes and bad configs.
  static Layer from_config(const std::string &className, const Config &config);

  // Internal: wraps the state behind a layer handle.
  explicit Layer(std::shared_ptr<detail::LayerState> s) : state_(std::move(s)) {}

protected:
  std::shared_ptr<detail::LayerState> state_;
};

struct SummaryOptions {
  bool expand_nested = false;
};

struct PlotOptions {
  bool show_shapes = false;
  bool show_dtype = false;
  bool expand_nested = false;
  std::string rankdir = "TB";
  int dpi = 96;
};

// An optimizer or a loss: Keras's class name and its arguments.
struct Optimizer {
  std::string className;
  Config config;
};
struct Loss {
  std::string className;
  Config config;
};

namespace optimizers {
// keras.optimizers.schedules: a learning rate as a function of the optimizer's step.
namespace schedules {
struct LearningRateSchedule {
  std::string className;
  Config config;
};
// initial_learning_rate * decay_rate ^ (step / decay_steps), the exponent floored if staircase.
LearningRateSchedule ExponentialDecay(double initial_learning_rate, int64_t decay_steps,
                                      double decay_rate, bool staircase = false);
// Cosine decay from initial_learning_rate to alpha * initial_learning_rate over decay_steps.
LearningRateSchedule CosineDecay(double initial_learning_rate, int64_t decay_steps,
                                 double alpha = 0.0);
} // namespace schedules

// An optimizer's learning_rate: a constant or a schedule, as in Keras.
struct LearningRate {
  LearningRate(double constant);
  LearningRate(const schedules::LearningRateSchedule &schedule);
  ConfigValue value; // the optimizer config's "learning_rate"
};

struct SGDOptions {
  double momentum = 0.0;
  bool nesterov = false;
};
Optimizer SGD(LearningRate learning_rate = 0.01, const SGDOptions &o = {});
struct RMSpropOptions {
  double rho = 0.9;
  double momentum = 0.0;
  double epsilon = 1e-7;
  bool centered = false;
};
Optimizer RMSprop(LearningRate learning_rate = 0.001, const RMSpropOptions &o = {});
struct AdamOptions {
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
  bool amsgrad = false;
};
Optimizer Adam(LearningRate learning_rate = 0.001, const AdamOptions &o = {});
} // namespace optimizers

namespace losses {
struct CrossentropyOptions {
  bool from_logits = false;
};
Loss SparseCategoricalCrossentropy(const CrossentropyOptions &o = {});
Loss CategoricalCrossentropy(const CrossentropyOptions &o = {});
Loss BinaryCrossentropy(const CrossentropyOptions &o = {});
Loss MeanSquaredError();
Loss MeanAbsoluteError();
Loss Huber(double delta = 1.0);
} // namespace losses

struct CompileOptions {
  Optimizer optimizer = optimizers::RMSprop();
  // Keyed by output name; the key "" applies the loss to every output.
  std::map<std::string, Loss> loss = {};
  std::vector<std::string> metrics = {};
  std::map<std::string, double> loss_weights = {};
};

class Model;
Model load_model(const std::string &path);

// keras.Model(inputs, outputs, name): a functional model, and a layer of its own.
class Model : public Layer {
public:
  Model(const Tensor &inputs, const Tensor &outputs, const std::string &name = "");
  Model(const std::vector<Tensor> &inputs, const std::vector<Tensor> &outputs,
        const std::string &name = "");

  const std::vector<Tensor> &inputs() const;
  const std::vector<Tensor> &outputs() const;
  // Keras's model.layers, in Keras's order.
  std::vector<Layer> layers() const;
  Layer get_layer(const std::string &name) const;

  // The summary table as Keras prints it; summary() writes it to standard output.
  std::string summary_string(const SummaryOptions &options = {}) const;
  void summary(const SummaryOptions &options = {}) const;

  // The model's config in fgc's schema (architecture, seed, training config); from_config
  // rebuilds a model that can be called, nested and saved like the original.
  schema::Model get_config() const;
  static Model from_config(const schema::Model &config);

  // Writes the model file (.pbtxt text, otherwise binary) atomically. Weights are initialized
  // from the seed at load time (Keras's defaults: glorot_uniform kernels, zero biases, ...).
  void save(const std::string &path) const;

  // The seed weights are initialized from (default 0).
  uint64_t seed() const;
  void set_seed(uint64_t seed);

  // Keras's model.compile(optimizer, loss, metrics, loss_weights), recorded in the model file's
  // training config. One loss for every output, or one per output name.
  void compile(const CompileOptions &options);

  // The model's IR graph (validated, with shapes), for the compiler.
  const Graph &graph() const;

private:
  friend Model load_model(const std::string &path);
  static Model fromGraph(const Graph &graph);
  detail::ModelState &model() const;
};

// keras.models.load_model(path)
Model load_model(const std::string &path);

// keras.utils.plot_model(model, to_file, show_shapes=...)
void plot_model(const Model &model, const std::string &to_file, const PlotOptions &options = {});

// keras.backend.clear_session(): resets automatic layer names.
void clear_session();

namespace layers {

struct DenseOptions {
  std::string activation = "linear";
  bool use_bias = true;
  Initializer kernel_initializer = "glorot_uniform";
  Initializer bias_initializer = "zeros";
  std::string name = {};
  bool trainable = true;
};
Layer Dense(int64_t units, const DenseOptions &o = {});

struct CommonOptions {
  std::string name = {};
  bool trainable = true;
};

Layer Activation(const std::string &activation, const CommonOptions &o = {});

struct SoftmaxOptions {
  int64_t axis = -1;
  std::string name = {};
};
Layer Softmax(const SoftmaxOptions &o = {});

struct DropoutOptions {
  std::optional<int64_t> seed = {};
  std::string name = {};
};
Layer Dropout(double rate, const DropoutOptions &o = {});
Layer Flatten(const CommonOptions &o = {});
Layer Reshape(std::vector<int64_t> target_shape, const CommonOptions &o = {});

struct ConvOptions {
  IntTuple strides = 1;
  std::string padding = "valid";
  IntTuple dilation_rate = 1;
  int64_t groups = 1; // Conv2D only
  std::optional<IntTuple> output_padding = {}; // Conv2DTranspose only
  std::string activation = "linear";
  bool use_bias = true;
  Initializer kernel_initializer = "glorot_uniform";
  Initializer bias_initializer = "zeros";
  std::string name = {};
  bool trainable = true;
};
Layer Conv2D(int64_t filters, IntTuple kernel_size, const ConvOptions &o = {});
Layer Conv2DTranspose(int64_t filters, IntTuple kernel_size, const ConvOptions &o = {});

struct PoolOptions {
  std::optional<IntTuple> strides = {}; // default: pool_size
  std::string padding = "valid";
  std::string name = {};
};
Layer MaxPooling2D(IntTuple pool_size = 2, const PoolOptions &o = {});
Layer AveragePooling2D(IntTuple pool_size = 2, const PoolOptions &o = {});

struct GlobalPoolOptions {
  bool keepdims = false;
  std::string name = {};
};
Layer GlobalMaxPooling2D(const GlobalPoolOptions &o = {});
Layer GlobalAveragePooling2D(const GlobalPoolOptions &o = {});
Layer GlobalAveragePooling1D(const GlobalPoolOptions &o = {});

struct UpSamplingOptions {
  std::string interpolation = "nearest";
  std::string name = {};
};
Layer UpSampling2D(IntTuple size = 2, const UpSamplingOptions &o = {});

struct EmbeddingOptions {
  Initializer embeddings_initializer = "uniform";
  bool mask_zero = false;
  std::optional<int64_t> input_length = {};
  std::string name = {};
  bool trainable = true;
};
Layer Embedding(int64_t input_dim, int64_t output_dim, const EmbeddingOptions &o = {});

struct LSTMOptions {
  std::string activation = "tanh";
  std::string recurrent_activation = "sigmoid";
  bool use_bias = true;
  Initializer kernel_initializer = "glorot_uniform";
  Initializer recurrent_initializer = "orthogonal";
  Initializer bias_initializer = "zeros";
  bool unit_forget_bias = true;
  double dropout = 0.0;
  double recurrent_dropout = 0.0;
  bool return_sequences = false;
  bool return_state = false;
  bool go_backwards = false;
  std::string name = {};
  bool trainable = true;
};
Layer LSTM(int64_t units, const LSTMOptions &o = {});

struct ConcatenateOptions {
  int64_t axis = -1;
  std::string name = {};
};
Layer Concatenate(const ConcatenateOptions &o = {});
Layer Add(const CommonOptions &o = {});
Layer Average(const CommonOptions &o = {});

struct BatchNormalizationOptions {
  int64_t axis = -1;
  double momentum = 0.99;
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
  std::string name = {};
  bool trainable = true;
};
Layer BatchNormalization(const BatchNormalizationOptions &o = {});

// keras.layers.concatenate / add / average: make the layer and call it.
Tensor concatenate(const std::vector<Tensor> &inputs, const ConcatenateOptions &o = {});
Tensor add(const std::vector<Tensor> &inputs, const CommonOptions &o = {});
Tensor average(const std::vector<Tensor> &inputs, const CommonOptions &o = {});

} // namespace layers

} // namespace fgc::keras
