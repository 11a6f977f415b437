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

#include "compiler/ir/Attrs.h"
#include "compiler/ir/Error.h"
#include "fgc.pb.h"

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

namespace fgc {
class Graph;
}

namespace fgc::keras {

class Tensor;
class Layer;
namespace detail {
struct LayerState;
struct NodeState;
struct ModelState;
struct TraceState;
std::shared_ptr<LayerState> stateOf(const Layer &layer);
std::vector<Tensor> callLayer(const std::shared_ptr<LayerState> &layer,
                              const std::vector<Tensor> &inputs);
const NodeState *nodeOf(const Tensor &t);
} // namespace detail

// A value in a config: what Keras writes in `get_config()`.
using ConfigValue = schema::AttrValue;
using Config = std::map<std::string, ConfigValue>;

// Config values: makeInt(3), makeFloat(0.5), makeString("relu"), makeBool(true), makeInts({3, 3}).
using fgc::makeBool;
using fgc::makeFloat;
using fgc::makeInt;
using fgc::makeInts;
using fgc::makeString;

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
  friend const detail::NodeState *detail::nodeOf(const Tensor &t);
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
  friend std::shared_ptr<detail::LayerState> detail::stateOf(const Layer &layer);
  std::shared_ptr<detail::LayerState> state_;
};

// --- Custom layers ----------------------------------------------------------------------------
//
// Keras's `class CustomDense(layers.Layer)`: derive from CustomLayer, create weights in build()
// with add_weight(), compute in call() with fgc::keras::ops and any layer or model, and return
// the constructor's arguments from get_config(). Register the class by name, then make layers
// of it with layers::Custom<T>(args...):
//
//   class CustomDense : public CustomLayer {
//   public:
//     explicit CustomDense(int64_t units = 32) : units_(units) {}
//     explicit CustomDense(const Config &c) : units_(c.at("units").i()) {}
//     void build(const Shape &input_shape) override {
//       w_ = add_weight("kernel", {input_shape.back(), units_}, "random_normal");
//       b_ = add_weight("bias", {units_}, "random_normal");
//     }
//     Tensor call(const Tensor &inputs) override { return ops::matmul(inputs, w_) + b_; }
//     Config get_config() const override { return {{"units", makeInt(units_)}}; }
//   private:
//     int64_t units_;
//     Tensor w_, b_;
//   };
//   register_custom_layer<CustomDense>("CustomDense");
//   auto outputs = layers::Custom<CustomDense>(10)(inputs);
//
// call() is traced, as Keras traces a symbolic call: build() and call() run once per layer on
// symbolic tensors, and what they compute becomes the layer's body, a graph of primitive ops
// (C++ loops over a static number of steps unroll). fgc then infers its shapes, optimizes,
// differentiates and compiles it like any model. A model file stores the layer as Keras does,
// by class name, config and weights; loading it rebuilds the layer from its config through the
// registry (T's constructor from a Config), so get_config() must hold everything the
// constructor needs. Errors in build() or call() throw fgc::Exception naming the layer.
using Shape = std::vector<int64_t>; // with None (-1) for unknown sizes, batch first

class CustomLayer {
public:
  virtual ~CustomLayer() = default;
  // Creates the weights for the input shape (batch first); by default none.
  virtual void build(const Shape &input_shape);
  // The computation on one input. Layers with several inputs or outputs override call_multi.
  virtual Tensor call(const Tensor &inputs);
  // The arguments a copy of the layer is made from (Keras's get_config()); the layer's name,
  // trainable and dtype are added by fgc.
  virtual Config get_config() const;

  // Several inputs / outputs: by default build(shapes[0]) and {call(inputs[0])} for one input.
  virtual void build_multi(const std::vector<Shape> &input_shapes);
  virtual std::vector<Tensor> call_multi(const std::vector<Tensor> &inputs);

protected:
  // Keras's add_weight: a weight of `shape` created with `initializer` (see Initializer), as a
  // tensor call() can use. Only valid inside build() (or call()). Names must be unique within
  // the layer; without one, weights are "weight", "weight_1", ...
  Tensor add_weight(const std::string &name, const Shape &shape,
                    const Initializer &initializer = "glorot_uniform", bool trainable = true);
  Tensor add_weight(const Shape &shape, const Initializer &initializer = "glorot_uniform",
                    bool trainable = true);

private:
  friend struct detail::TraceState;
  detail::TraceState *trace_ = nullptr;
};

// Makes a layer of a registered class from its config (Keras's cls.from_config(config)).
using CustomLayerFactory = std::function<std::shared_ptr<CustomLayer>(const Config &config)>;
// Keras's custom_objects: class name -> factory (custom_object<T>()).
using CustomObjects = std::map<std::string, CustomLayerFactory>;

template <typename T> CustomLayerFactory custom_object() {
  return [](const Config &config) -> std::shared_ptr<CustomLayer> {
    return std::make_shared<T>(config);
  };
}

// Registers a custom layer class under `class_name`, the name model files store (re-registering
// replaces it). `type` ties the C++ class to the name for layers::Custom<T>.
void register_custom_layer(const std::string &class_name, CustomLayerFactory factory,
                           const std::type_info *type = nullptr);
template <typename T> void register_custom_layer(const std::string &class_name) {
  register_custom_layer(class_name, custom_object<T>(), &typeid(T));
}
// Registers every entry of `objects` (what from_config / load_model do with custom_objects).
void register_custom_objects(const CustomObjects &objects);
// Whether `class_name` is a registered custom layer class.
bool is_custom_layer(const std::string &class_name);

// Opaque custom kernels (the escape hatch): an op computed by a C function of the user's,
// for what tensor operations cannot express. The kernels have the signature
// `int32_t fn(const void *args)`, args pointing to an fgc_custom_args (fgc/runtime/custom.h:
// input and output pointers, shapes, attributes; the backward also gets the output gradients
// and writes the input gradients). Call the op inside a custom layer's call() with
// ops::opaque(name, inputs, attributes). Generated C++ declares the kernels extern "C" and the
// application links them; the JIT calls them at the addresses given here, or finds them among
// the process's symbols (a loaded plugin).
struct OpaqueOp {
  std::string name = {};     // the op's class name, as traced bodies and messages name it
  std::string forward = {};  // the forward kernel's C symbol
  std::string backward = {}; // the backward kernel's C symbol; empty: inference only (training a
                             // model that needs its gradient fails naming the layer and op)
  int num_inputs = 1, num_outputs = 1;
  // Numeric attributes and their defaults, passed to the kernels in this order.
  std::vector<std::pair<std::string, double>> attributes = {};
  // The outputs' shapes from the inputs' (batch first; None dimensions are negative and must be
  // copied from an input) and the attribute values; throw to reject the inputs. Empty: every
  // output has the first input's shape.
  std::function<std::vector<Shape>(const std::vector<Shape> &inputs,
                                   const std::vector<double> &attributes)>
      shape = {};
  // The kernels' addresses, for the JIT (optional; without them it looks the symbols up).
  int32_t (*forward_address)(const void *) = nullptr;
  int32_t (*backward_address)(const void *) = nullptr;
  // The kernel's result is not a function of its inputs and attributes alone (random numbers,
  // a counter, I/O): two calls on the same inputs are never merged into one (TensorFlow's
  // SetIsStateful). By default an op is pure and `cse` may merge such calls.
  bool stateful = false;
};
// Registers (or re-registers) an opaque op. Throws fgc::Exception if the name is a built-in
// layer or custom layer class, or the spec is invalid.
void register_opaque_op(const OpaqueOp &op);

namespace detail {
Layer makeCustomLayer(std::shared_ptr<CustomLayer> object, const std::type_info &type,
                      const std::string &name);
}

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
  // ... after registering the custom layer classes `custom_objects` names.
  static Model from_config(const schema::Model &config, const CustomObjects &custom_objects);

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

// keras.models.load_model(path, custom_objects=...)
Model load_model(const std::string &path);
Model load_model(const std::string &path, const CustomObjects &custom_objects);

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

// A layer of the registered custom class T, made with T's constructor from `args`:
// layers::Custom<CustomDense>(10). Named after the class ("custom_dense", ...).
template <typename T, typename... A> Layer Custom(A &&...args) {
  return detail::makeCustomLayer(std::make_shared<T>(std::forward<A>(args)...), typeid(T), "");
}
// A layer of an object the caller keeps (to read what its call() recorded, for instance).
template <typename T> Layer CustomFrom(std::shared_ptr<T> object, const std::string &name = "") {
  return detail::makeCustomLayer(std::move(object), typeid(T), name);
}
// The same with an explicit name.
template <typename T, typename... A> Layer NamedCustom(const std::string &name, A &&...args) {
  return detail::makeCustomLayer(std::make_shared<T>(std::forward<A>(args)...), typeid(T), name);
}

} // namespace layers

// Tensor operations for custom layers' call(), on symbolic tensors (each becomes one op of the
// layer's body). Tensors have the batch axis first, except weights.
namespace ops {
// x (..., k) @ w (k, n): w is a matrix of static shape, such as a weight.
Tensor matmul(const Tensor &x, const Tensor &w);
// Elementwise arithmetic; an operand may broadcast over leading axes (a bias, a scalar weight).
Tensor add(const Tensor &a, const Tensor &b);
Tensor subtract(const Tensor &a, const Tensor &b);
Tensor multiply(const Tensor &a, const Tensor &b);
Tensor divide(const Tensor &a, const Tensor &b);
// Activations by Keras name ("relu", "tanh", "sigmoid", "softmax", ...), and shorthands.
Tensor activation(const Tensor &x, const std::string &name);
Tensor relu(const Tensor &x);
Tensor tanh(const Tensor &x);
Tensor sigmoid(const Tensor &x);
Tensor softmax(const Tensor &x);
// Sum / mean / max over `axis` (not the batch axis).
Tensor reduce_sum(const Tensor &x, int64_t axis = -1, bool keepdims = false);
Tensor reduce_mean(const Tensor &x, int64_t axis = -1, bool keepdims = false);
Tensor reduce_max(const Tensor &x, int64_t axis = -1, bool keepdims = false);
// x[..., start:start + size, ...] along `axis` (kept), and x[..., index, ...] (axis dropped;
// Python's inputs[:, t, :] is take(inputs, 1, t)). Negative start / index count from the end.
Tensor slice(const Tensor &x, int64_t axis, int64_t start, int64_t size);
Tensor take(const Tensor &x, int64_t axis, int64_t index);
// tf.stack: same-shaped tensors joined along a new axis (>= 1).
Tensor stack(const std::vector<Tensor> &xs, int64_t axis = 1);
// tf.concat along an existing axis.
Tensor concat(const std::vector<Tensor> &xs, int64_t axis = -1);
// Every sample reshaped to `shape` (one entry may be -1).
Tensor reshape(const Tensor &x, const Shape &shape);
// Zeros of shape (batch,) + shape, with the batch size of `like`:
// tf.zeros((inputs.shape[0], units)) is zeros(inputs, {units}).
Tensor zeros(const Tensor &like, const Shape &shape);
// tf.transpose: output axis k is x's axis perm[k], perm a permutation of all axes (empty:
// reversed). A tensor with a batch axis keeps it first (perm[0] == 0); a weight has none:
// transpose(w) is w's transpose.
Tensor transpose(const Tensor &x, const std::vector<int64_t> &perm = {});
// tf.gather with int32 indices (an Input with dtype "int32"). batch_dims 0: rows of params
// along axis 0 (a weight, e.g. an embedding table) for indices that carry the batch:
// indices.shape + params.shape[1:]. batch_dims 1: per sample along a non-batch axis >= 1 of
// params, indices (batch, ...): params.shape[:axis] + indices.shape[1:] + params.shape[axis+1:].
// An index out of range fails at run time with an error naming it.
Tensor gather(const Tensor &params, const Tensor &indices, int64_t axis = 0,
              int64_t batch_dims = 0);
// keras.ops.scan in an RNN cell's form: a loop over axis 1 of `sequence` (batch, T, ...), T
// may be None. `body(state, x_t)` returns (new_state, y_t) and is traced once; the result is the
// final state and the y_t stacked into (batch, T, ...). The state keeps its shape; the body
// reads weights of the enclosing layer (add_weight) and is written with these ops. Only inside
// a custom layer's call(); not nested.
using ScanBody = std::function<std::pair<Tensor, Tensor>(const Tensor &state, const Tensor &x_t)>;
std::pair<Tensor, Tensor> scan(const ScanBody &body, const Tensor &initial_state,
                               const Tensor &sequence);
// The registered opaque op `name` (register_opaque_op) on `inputs`, with attribute values
// (unset ones take their defaults): its outputs, or its single output.
std::vector<Tensor> opaque(const std::string &name, const std::vector<Tensor> &inputs,
                           const std::map<std::string, double> &attributes = {});
Tensor opaque(const std::string &name, const Tensor &x,
              const std::map<std::string, double> &attributes = {});
} // namespace ops

Tensor operator+(const Tensor &a, const Tensor &b);
Tensor operator-(const Tensor &a, const Tensor &b);
Tensor operator*(const Tensor &a, const Tensor &b);
Tensor operator/(const Tensor &a, const Tensor &b);

} // namespace fgc::keras
