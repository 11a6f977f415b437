// Custom layers (see fgc/keras.h): the class registry, tracing build() + call() into a layer's
// body, and the tensor operations call() is written with.
//
// A registered class becomes an op registry entry of its own (OpDef::custom): its config is
// free-form, its shape function is a nested model's (the body's outputs), and its `trace` hook
// rebuilds the object from the layer's config and traces it. Tracing runs the user's build()
// and call() on symbolic Inputs; every operation they perform is an ordinary layer call (the
// primitives of compiler/ops/TensorOps.cpp, or built-in layers and models), so the traced
// tensors form a functional model whose graph becomes the layer's `subgraph`. Automatic names
// restart inside a trace, so a body's layer names (and so its weights' paths and seeds) do not
// depend on what the program created before.
#include "frontend/api/KerasInternal.h"

#include "compiler/ops/OpHelpers.h"
#include "compiler/ops/OpaqueOp.h"
#include "compiler/ops/Scan.h"

#include <algorithm>
#include <set>
#include <typeindex>

namespace fgc::keras {

namespace detail {

struct TraceState {
  std::vector<std::string> weights; // add_weight's layers, in creation order

  static void attach(CustomLayer &object, TraceState *state) { object.trace_ = state; }
  static bool active(const CustomLayer &object) { return object.trace_ != nullptr; }
};

namespace {

std::map<std::string, CustomLayerFactory> &factories() {
  static std::map<std::string, CustomLayerFactory> f;
  return f;
}

std::map<std::type_index, std::string> &classNames() {
  static std::map<std::type_index, std::string> n;
  return n;
}

// Automatic names start afresh for the duration of a trace, then continue where they were.
class NameScope {
public:
  NameScope() : saved_(nameCounters()) { nameCounters().clear(); }
  ~NameScope() { nameCounters() = saved_; }
  NameScope(const NameScope &) = delete;
  NameScope &operator=(const NameScope &) = delete;

private:
  std::map<std::string, int> saved_;
};

// The config a custom object is made from: the user's keys, without those fgc adds.
Config userConfig(const AttrMap &config) {
  Config c;
  for (const auto &[k, v] : config)
    if (k != "name" && k != "trainable" && k != "dtype")
      c[k] = v;
  return c;
}

// How many custom layers are being traced on this thread (ops::scan is valid only inside one).
int &customTraceDepth() {
  thread_local int depth = 0;
  return depth;
}

Tensor callOp(const std::string &className, Config config, const std::vector<Tensor> &inputs) {
  return callLayer(makeLayer(className, std::move(config), ""), inputs)[0];
}

} // namespace

std::shared_ptr<CustomLayer> makeCustomObject(const std::string &className,
                                              const AttrMap &config) {
  auto it = factories().find(className);
  if (it == factories().end())
    raise(Error::format("custom layer class '{}' is not registered (register_custom_layer<T>(\"{}\"))",
                        className, className));
  auto object = it->second(userConfig(config));
  if (!object)
    raise(Error::format("the factory of custom layer class '{}' returned no object", className));
  return object;
}

Expected<std::unique_ptr<Graph>> traceCustomLayer(CustomLayer &object, const fgc::Layer &layer,
                                                  const std::vector<TensorType> &inputs) {
  if (TraceState::active(object))
    return Error::format("{}: calls itself inside its own call()", layer.describe());
  NameScope scope;
  TraceState state;
  TraceState::attach(object, &state);
  // A custom layer called inside a scan body traces its own body: nothing of it is captured.
  ScanCapture *enclosingScan = activeScanCapture();
  activeScanCapture() = nullptr;
  ++customTraceDepth();
  struct Restore {
    ScanCapture *scan;
    ~Restore() {
      activeScanCapture() = scan;
      --customTraceDepth();
    }
  } restore{enclosingScan};
  try {
    std::vector<Tensor> ins;
    std::vector<Shape> shapes;
    for (const TensorType &t : inputs) {
      if (t.shape.empty())
        raise(Error::format("{}: an input has no batch axis", layer.describe()));
      Shape s;
      for (Dim d : t.shape)
        s.push_back(isDynamic(d) ? None : d);
      InputOptions o;
      o.dtype = dtypeName(t.dtype);
      if (s[0] != None)
        o.batch_size = s[0];
      ins.push_back(Input(Shape(s.begin() + 1, s.end()), o));
      shapes.push_back(s);
    }
    object.build_multi(shapes);
    std::vector<Tensor> outs = object.call_multi(ins);
    if (outs.empty())
      raise(Error::format("{}: call() returned no tensors", layer.describe()));
    Model body(ins, outs, layer.name);
    TraceState::attach(object, nullptr);
    std::unique_ptr<Graph> graph = std::move(stateOf(body)->ir.subgraph);
    // Weights in build() order first (the order Keras lists a layer's weights, and the order a
    // model file stores them in), then the body's other layers.
    auto rank = [&](const std::unique_ptr<fgc::Layer> &l) {
      auto it = std::find(state.weights.begin(), state.weights.end(), l->name);
      return it == state.weights.end() ? state.weights.size() : size_t(it - state.weights.begin());
    };
    std::stable_sort(graph->layers.begin(), graph->layers.end(),
                     [&](const auto &a, const auto &b) { return rank(a) < rank(b); });
    return graph;
  } catch (const std::exception &e) {
    TraceState::attach(object, nullptr);
    std::string msg = e.what();
    std::string prefix = layer.describe();
    return Error(msg.rfind(prefix, 0) == 0 ? msg : prefix + ": " + msg);
  }
}

std::shared_ptr<LayerState> stateOf(const Layer &layer) { return layer.state_; }

const NodeState *nodeOf(const Tensor &t) { return t.node_.get(); }

Layer makeCustomLayer(std::shared_ptr<CustomLayer> object, const std::type_info &type,
                      const std::string &name) {
  auto it = classNames().find(std::type_index(type));
  if (it == classNames().end())
    raise(Error::format("custom layer class {} is not registered: call "
                        "register_custom_layer<T>(\"ClassName\") before making layers of it",
                        type.name()));
  auto state = makeLayer(it->second, object->get_config(), name);
  state->custom = std::move(object);
  return Layer(state);
}

} // namespace detail

using namespace detail;

// --- CustomLayer ------------------------------------------------------------------------------

void CustomLayer::build(const Shape &) {}

Tensor CustomLayer::call(const Tensor &) {
  raise(Error("a custom layer must override call() (or call_multi())"));
}

Config CustomLayer::get_config() const { return {}; }

void CustomLayer::build_multi(const std::vector<Shape> &shapes) {
  if (shapes.size() != 1)
    raise(Error::format("called on {} inputs: a custom layer with several inputs overrides "
                        "build_multi() and call_multi()",
                        shapes.size()));
  build(shapes[0]);
}

std::vector<Tensor> CustomLayer::call_multi(const std::vector<Tensor> &inputs) {
  if (inputs.size() != 1)
    raise(Error::format("called on {} inputs: a custom layer with several inputs overrides "
                        "call_multi()",
                        inputs.size()));
  return {call(inputs[0])};
}

Tensor CustomLayer::add_weight(const std::string &name, const Shape &shape,
                               const Initializer &initializer, bool trainable) {
  if (!trace_)
    raise(Error("add_weight() is only valid inside build() or call()"));
  Config c = {{"shape", makeInts(shape)},
              {"initializer", makeObject(initializer.className,
                                         AttrMap(initializer.config.begin(),
                                                 initializer.config.end()))},
              {"trainable", makeBool(trainable)}};
  auto weight = makeLayer("Variable", c, name.empty() ? uniqueName("weight", true) : name);
  trace_->weights.push_back(weight->ir.name);
  return callLayer(weight, {})[0];
}

Tensor CustomLayer::add_weight(const Shape &shape, const Initializer &initializer,
                               bool trainable) {
  return add_weight("", shape, initializer, trainable);
}

// --- registration -----------------------------------------------------------------------------

void register_custom_layer(const std::string &className, CustomLayerFactory factory,
                           const std::type_info *type) {
  if (className.empty() || !factory)
    raise(Error("register_custom_layer needs a class name and a factory"));
  if (const OpDef *existing = OpRegistry::global().find(className); existing && !existing->custom)
    raise(Error::format("cannot register custom layer class '{}': fgc has a built-in layer of "
                        "that name",
                        className));
  factories()[className] = std::move(factory);
  if (type)
    classNames()[std::type_index(*type)] = className;
  OpDef d;
  d.className = className;
  d.summary = "A custom layer (registered at run time).";
  d.custom = true;
  d.minInputs = 1;
  d.maxInputs = -1;
  d.inferTypes = fgc::ops::inferNestedCall;
  d.trace = [className](const fgc::Layer &layer,
                        const std::vector<TensorType> &inputs) -> Expected<std::unique_ptr<Graph>> {
    std::shared_ptr<CustomLayer> object;
    try {
      NameScope scope; // the constructor may create layers (CustomRNN's projections)
      object = makeCustomObject(className, layer.config);
    } catch (const std::exception &e) {
      return Error::format("{}: cannot be made from its config: {}", layer.describe(), e.what());
    }
    return traceCustomLayer(*object, layer, inputs);
  };
  OpRegistry::global().add(std::move(d));
}

namespace {
std::set<std::string> &opaqueNames() {
  static std::set<std::string> n;
  return n;
}
} // namespace

void register_opaque_op(const OpaqueOp &op) {
  if (const OpDef *existing = OpRegistry::global().find(op.name);
      existing && !opaqueNames().count(op.name))
    raise(Error::format("cannot register opaque op '{}': fgc has a {} of that name", op.name,
                        existing->custom ? "custom layer class" : "built-in layer"));
  fgc::ops::OpaqueOpSpec spec;
  spec.className = op.name;
  spec.forward = op.forward;
  spec.backward = op.backward;
  spec.numInputs = op.num_inputs;
  spec.numOutputs = op.num_outputs;
  spec.attrs = op.attributes;
  spec.stateful = op.stateful;
  if (op.shape)
    spec.shape = [fn = op.shape](const std::vector<std::vector<Dim>> &inputs,
                                 const std::vector<double> &attrs)
        -> Expected<std::vector<std::vector<Dim>>> {
      try {
        return fn(inputs, attrs);
      } catch (const std::exception &e) {
        return Error(e.what());
      }
    };
  auto def = fgc::ops::opaqueOpDef(std::move(spec));
  if (!def)
    raise(def.error());
  if (op.backward.empty() && op.backward_address)
    raise(Error::format("opaque op '{}': a backward address without a backward kernel name",
                        op.name));
  OpRegistry::global().add(def.take());
  opaqueNames().insert(op.name);
  if (op.forward_address)
    OpRegistry::global().addKernelAddress(op.forward,
                                          reinterpret_cast<void *>(op.forward_address));
  if (op.backward_address)
    OpRegistry::global().addKernelAddress(op.backward,
                                          reinterpret_cast<void *>(op.backward_address));
}

void register_custom_objects(const CustomObjects &objects) {
  for (const auto &[name, factory] : objects)
    register_custom_layer(name, factory);
}

bool is_custom_layer(const std::string &className) { return factories().count(className) > 0; }

// --- tensor operations ------------------------------------------------------------------------

namespace ops {

Tensor matmul(const Tensor &x, const Tensor &w) { return callOp("MatMul", {}, {x, w}); }
Tensor add(const Tensor &a, const Tensor &b) { return callOp("BinaryAdd", {}, {a, b}); }
Tensor subtract(const Tensor &a, const Tensor &b) { return callOp("BinarySubtract", {}, {a, b}); }
Tensor multiply(const Tensor &a, const Tensor &b) { return callOp("BinaryMultiply", {}, {a, b}); }
Tensor divide(const Tensor &a, const Tensor &b) { return callOp("BinaryDivide", {}, {a, b}); }

Tensor activation(const Tensor &x, const std::string &name) {
  return callOp("Activation", {{"activation", makeString(name)}}, {x});
}
Tensor relu(const Tensor &x) { return activation(x, "relu"); }
Tensor tanh(const Tensor &x) { return activation(x, "tanh"); }
Tensor sigmoid(const Tensor &x) { return activation(x, "sigmoid"); }
Tensor softmax(const Tensor &x) { return activation(x, "softmax"); }

static Tensor reduce(const char *cls, const Tensor &x, int64_t axis, bool keepdims) {
  return callOp(cls, {{"axis", makeInt(axis)}, {"keepdims", makeBool(keepdims)}}, {x});
}
Tensor reduce_sum(const Tensor &x, int64_t axis, bool keepdims) {
  return reduce("ReduceSum", x, axis, keepdims);
}
Tensor reduce_mean(const Tensor &x, int64_t axis, bool keepdims) {
  return reduce("ReduceMean", x, axis, keepdims);
}
Tensor reduce_max(const Tensor &x, int64_t axis, bool keepdims) {
  return reduce("ReduceMax", x, axis, keepdims);
}

Tensor slice(const Tensor &x, int64_t axis, int64_t start, int64_t size) {
  return callOp("Slice", {{"axis", makeInt(axis)}, {"start", makeInt(start)},
                          {"size", makeInt(size)}},
                {x});
}
Tensor take(const Tensor &x, int64_t axis, int64_t index) {
  return callOp("Slice", {{"axis", makeInt(axis)}, {"start", makeInt(index)},
                          {"keepdims", makeBool(false)}},
                {x});
}
Tensor stack(const std::vector<Tensor> &xs, int64_t axis) {
  return callOp("Stack", {{"axis", makeInt(axis)}}, xs);
}
Tensor concat(const std::vector<Tensor> &xs, int64_t axis) {
  return callOp("Concatenate", {{"axis", makeInt(axis)}}, xs);
}
Tensor reshape(const Tensor &x, const Shape &shape) {
  return callOp("Reshape", {{"target_shape", makeInts(shape)}}, {x});
}
Tensor zeros(const Tensor &like, const Shape &shape) {
  return callOp("Zeros", {{"shape", makeInts(shape)}}, {like});
}
Tensor transpose(const Tensor &x, const std::vector<int64_t> &perm) {
  return callOp("Transpose", {{"perm", makeInts(perm)}}, {x});
}
Tensor gather(const Tensor &params, const Tensor &indices, int64_t axis, int64_t batch_dims) {
  return callOp("Gather", {{"axis", makeInt(axis)}, {"batch_dims", makeInt(batch_dims)}},
                {params, indices});
}

std::pair<Tensor, Tensor> scan(const ScanBody &body, const Tensor &initial_state,
                               const Tensor &sequence) {
  auto scanLayer = makeLayer("Scan", {}, "");
  const std::string who = scanLayer->ir.describe();
  if (customTraceDepth() == 0)
    raise(Error::format("{}: ops::scan is only valid inside a custom layer's call()", who));
  if (activeScanCapture())
    raise(Error::format("{}: ops::scan inside the body of another scan is not supported yet", who));
  if (!body)
    raise(Error::format("{}: ops::scan needs a body", who));
  const Shape &stateShape = initial_state.shape(), &seqShape = sequence.shape();
  if (stateShape.empty())
    raise(Error::format("{}: the initial state {} from '{}' has no batch axis", who,
                        initial_state.shapeString(), initial_state.layerName()));
  if (seqShape.size() < 3)
    raise(Error::format("{}: the sequence must have rank 3 or more (batch, steps, ...), got {} "
                        "from '{}'",
                        who, sequence.shapeString(), sequence.layerName()));
  // Trace the body once, on placeholders for the state and one step of the sequence; names
  // restart inside it, as in a custom layer's body.
  ScanCapture capture;
  std::vector<Tensor> ins;
  Tensor newState, y;
  {
    NameScope scope;
    struct Activate {
      ScanCapture *saved = activeScanCapture();
      explicit Activate(ScanCapture *c) { activeScanCapture() = c; }
      ~Activate() { activeScanCapture() = saved; }
    } active(&capture);
    ins.push_back(Input(Shape(stateShape.begin() + 1, stateShape.end())));
    Shape step(seqShape.begin() + 2, seqShape.end());
    ins.push_back(Input(step));
    std::tie(newState, y) = body(ins[0], ins[1]);
    if (!nodeOf(newState) || !nodeOf(y))
      raise(Error::format("{}: the body returned an empty Tensor", who));
    for (Tensor *t : {&newState, &y})
      if (!capture.own.count(nodeOf(*t)))
        raise(Error::format("{}: the body returns '{}', a tensor from outside the body, as is; "
                            "return a value computed from the state or the step",
                            who, t->layerName()));
    if (newState.shape().size() != stateShape.size() ||
        !std::equal(stateShape.begin() + 1, stateShape.end(), newState.shape().begin() + 1))
      raise(Error::format("{}: the body returns a state of shape {} from '{}', but the initial "
                          "state is {} from '{}': the state must keep its shape from step to "
                          "step",
                          who, newState.shapeString(), newState.layerName(),
                          initial_state.shapeString(), initial_state.layerName()));
    ins.insert(ins.end(), capture.placeholders.begin(), capture.placeholders.end());
  }
  Model bodyModel(ins, {newState, y}, scanLayer->ir.name + "_body");
  std::shared_ptr<Graph> graph = std::move(stateOf(bodyModel)->ir.subgraph);
  for (const auto &l : graph->layers)
    if (!l->params.empty())
      raise(Error::format("{}: {} in its body has weights of its own; a scan body takes its "
                          "weights from the enclosing layer (add_weight() in build(), used "
                          "with ops::matmul and the arithmetic ops)",
                          who, l->describe()));
  scanLayer->ir.config["body"] = makeString(fgc::ops::registerScanBody(graph));
  std::vector<Tensor> args = {initial_state, sequence};
  args.insert(args.end(), capture.outer.begin(), capture.outer.end());
  auto outs = callLayer(scanLayer, args);
  return {outs[0], outs[1]};
}

std::vector<Tensor> opaque(const std::string &name, const std::vector<Tensor> &inputs,
                           const std::map<std::string, double> &attributes) {
  Config config;
  for (const auto &[k, v] : attributes)
    config[k] = makeFloat(v);
  return callLayer(makeLayer(name, std::move(config), ""), inputs);
}
Tensor opaque(const std::string &name, const Tensor &x,
              const std::map<std::string, double> &attributes) {
  auto outs = opaque(name, std::vector<Tensor>{x}, attributes);
  if (outs.size() != 1)
    raise(Error::format("opaque op '{}' has {} outputs: call ops::opaque with a list of inputs "
                        "to get them all",
                        name, outs.size()));
  return outs[0];
}

} // namespace ops

Tensor operator+(const Tensor &a, const Tensor &b) { return ops::add(a, b); }
Tensor operator-(const Tensor &a, const Tensor &b) { return ops::subtract(a, b); }
Tensor operator*(const Tensor &a, const Tensor &b) { return ops::multiply(a, b); }
Tensor operator/(const Tensor &a, const Tensor &b) { return ops::divide(a, b); }

} // namespace fgc::keras
