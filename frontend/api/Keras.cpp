// The functional API's core: symbolic tensors, layer calls, models (see fgc/keras.h).
//
// API objects mirror Keras's: a LayerState per layer (its IR Layer: class, config, parameters),
// a NodeState per call. A Model walks its outputs back to its inputs to find its network, writes
// it as a schema::Model and builds the IR Graph from that with the frontend's own loader, so a
// model built in C++ and the same model read from a file are checked and summarized by one code
// path.
#include "frontend/api/KerasInternal.h"

#include "compiler/ir/KerasTopology.h"
#include "compiler/report/Plot.h"
#include "compiler/report/Summary.h"
#include "frontend/GraphBuilder.h"
#include "frontend/GraphWriter.h"
#include "frontend/ModelFile.h"

#include <iostream>
#include <regex>
#include <set>

namespace fgc::keras {

namespace detail {

std::map<std::string, int> &nameCounters() {
  static std::map<std::string, int> counters;
  return counters;
}

std::string uniqueName(const std::string &base, bool zeroBased) {
  int &n = nameCounters()[base];
  if (zeroBased)
    return n++ ? fmt::format("{}_{}", base, n - 1) : base;
  return fmt::format("{}_{}", base, ++n);
}

std::string toSnakeCase(const std::string &className) {
  static const std::regex first("(.)([A-Z][a-z0-9]+)");
  static const std::regex second("([a-z])([A-Z])");
  std::string s = std::regex_replace(className, first, "$1_$2");
  s = std::regex_replace(s, second, "$1_$2");
  for (auto &c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s.empty() || s[0] != '_' ? s : "private" + s;
}

[[noreturn]] void raise(const Error &e) { throw Exception(e); }

std::shared_ptr<LayerState> makeLayer(const std::string &className, Config config,
                                      const std::string &name) {
  const OpDef *def = OpRegistry::global().find(className);
  if (!def)
    raise(Error::format("unknown layer class '{}'", className));
  auto s = std::make_shared<LayerState>();
  s->ir.className = className;
  s->ir.def = def;
  s->ir.name = name.empty() ? uniqueName(toSnakeCase(className), true) : name;
  auto normalized = normalizeConfig(def->attrs, AttrMap(config.begin(), config.end()),
                                    s->ir.describe(), def->custom);
  if (!normalized)
    raise(normalized.error());
  s->ir.config = normalized.take();
  s->ir.trainable = s->ir.attrs().b("trainable");
  return s;
}

// Strips a leading "layer 'x' (Class): " that the shape functions put on their messages.
static std::string withoutLayerPrefix(const std::string &msg, const fgc::Layer &l) {
  std::string prefix = l.describe() + ": ";
  return msg.rfind(prefix, 0) == 0 ? msg.substr(prefix.size()) : msg;
}

ScanCapture *&activeScanCapture() {
  thread_local ScanCapture *active = nullptr;
  return active;
}

std::vector<Tensor> callLayer(const std::shared_ptr<LayerState> &layer,
                              const std::vector<Tensor> &given) {
  // Inside a scan body's trace, a tensor made outside the body becomes a placeholder input of
  // the body (the same one for every use); the Scan layer passes the tensor itself.
  auto captured = [](ScanCapture &sc, const Tensor &t) {
    for (size_t i = 0; i < sc.outer.size(); ++i)
      if (sc.outer[i].node_ == t.node_ && sc.outer[i].index_ == t.index_)
        return sc.placeholders[i];
    const TensorType &type = t.node_->outputs[size_t(t.index_)];
    if (type.shape.empty())
      raise(Error::format("a scan body reads the scalar '{}' from outside the body; only "
                          "tensors with at least one axis can be captured",
                          t.node_->layer->ir.name));
    InputOptions o;
    o.dtype = dtypeName(type.dtype);
    if (!isDynamic(type.shape[0]))
      o.batch_size = type.shape[0]; // a weight: its first axis stands where a batch would
    Shape rest;
    for (size_t k = 1; k < type.shape.size(); ++k)
      rest.push_back(isDynamic(type.shape[k]) ? None : type.shape[k]);
    Tensor p = Input(rest, o);
    sc.outer.push_back(t);
    sc.placeholders.push_back(p);
    return p;
  };
  std::vector<Tensor> inputs = given;
  if (ScanCapture *sc = activeScanCapture())
    for (Tensor &t : inputs)
      if (t.node_ && !sc->own.count(t.node_.get()))
        t = captured(*sc, t);
  OpContext ctx{layer->ir, {}, {}};
  std::string on;
  for (const Tensor &t : inputs) {
    if (!t.node_)
      raise(Error::format("{} called on an empty Tensor", layer->ir.describe()));
    const auto &type = t.node_->outputs[size_t(t.index_)];
    ctx.inputs.push_back(type);
    ctx.inputSources.push_back(t.node_->layer->ir.name);
    on += (on.empty() ? "" : ", ") + shapeToString(type.shape) + " from '" +
          t.node_->layer->ir.name + "'";
  }
  if (layer->custom && !layer->ir.subgraph) {
    // A custom layer's first call traces the user's object (later calls share its body).
    auto body = traceCustomLayer(*layer->custom, layer->ir, ctx.inputs);
    if (!body)
      raise(body.error());
    layer->ir.subgraph = body.take();
  }
  auto types = inferLayerCall(layer->ir, ctx, layer->ir.describe());
  if (!types)
    raise(Error::format("shape mismatch when calling {} on {}: {}", layer->ir.describe(), on,
                        withoutLayerPrefix(types.error().message(), layer->ir)));
  auto node = std::make_shared<NodeState>();
  node->layer = layer;
  node->callIndex = layer->calls++;
  layer->nodes.push_back(node);
  node->inputs = inputs;
  node->outputs = types.take();
  if (ScanCapture *sc = activeScanCapture())
    sc->own.insert(node.get());
  std::vector<Tensor> outs;
  for (size_t i = 0; i < node->outputs.size(); ++i) {
    Tensor t;
    t.node_ = node;
    t.index_ = static_cast<int>(i);
    outs.push_back(t);
  }
  return outs;
}

schema::TensorRef ModelState::refTo(const Tensor &t) const {
  schema::TensorRef r;
  r.set_layer(t.node_->layer->ir.name);
  r.set_node_index(localIndex.at(t.node_.get()));
  r.set_tensor_index(t.index_);
  return r;
}

void ModelState::discover() {
  // Depth-first from the outputs back to the inputs, as Keras maps a graph network.
  std::set<const NodeState *> seen;
  std::vector<std::shared_ptr<NodeState>> work;
  for (const Tensor &t : outputs)
    work.push_back(t.node_);
  for (const Tensor &t : inputs)
    work.push_back(t.node_);
  std::vector<std::shared_ptr<NodeState>> nodes;
  while (!work.empty()) {
    auto n = work.back();
    work.pop_back();
    if (!seen.insert(n.get()).second)
      continue;
    nodes.push_back(n);
    for (const Tensor &in : n->inputs)
      work.push_back(in.node_);
  }
  // Layers in order of first appearance; each layer's calls renumbered from 0 in call order.
  std::map<const LayerState *, std::vector<NodeState *>> calls;
  for (auto &n : nodes) {
    if (!calls.count(n->layer.get())) {
      layers.push_back(n->layer);
      byName[n->layer->ir.name] = n->layer;
    }
    calls[n->layer.get()].push_back(n.get());
  }
  for (auto &[layer, ns] : calls) {
    std::sort(ns.begin(), ns.end(),
              [](const NodeState *a, const NodeState *b) { return a->callIndex < b->callIndex; });
    for (size_t i = 0; i < ns.size(); ++i)
      localIndex[ns[i]] = static_cast<int>(i);
    nodesOf[layer] = ns;
  }
  std::set<std::string> names;
  for (auto &l : layers)
    if (!names.insert(l->ir.name).second)
      raise(Error::format("model '{}': all layer names should be unique, but '{}' is used twice",
                          name, l->ir.name));
}

schema::Model ModelState::toSchema() const {
  schema::Model m;
  m.set_schema_version(kSchemaVersion);
  m.set_name(name);
  m.set_seed(seed);
  if (training.ByteSizeLong() > 0)
    *m.mutable_training() = training;
  for (const auto &l : layers) {
    auto *sl = m.add_layers();
    sl->set_class_name(l->ir.className);
    sl->set_name(l->ir.name);
    for (const auto &[k, v] : nonDefaultConfig(l->ir.def->attrs, l->ir.config))
      (*sl->mutable_config())[k] = v;
    if (l->ir.className != "InputLayer")
      for (const NodeState *n : nodesOf.at(l.get())) {
        auto *node = sl->add_nodes();
        for (const Tensor &in : n->inputs)
          *node->add_inputs() = refTo(in);
      }
    if (l->model)
      *sl->mutable_model() = l->model->toSchema();
  }
  for (const Tensor &t : inputs)
    *m.add_inputs() = refTo(t);
  for (const Tensor &t : outputs)
    *m.add_outputs() = refTo(t);
  return m;
}

void ModelState::rebuildGraph(fgc::Layer &ir) const {
  BuildOptions o;
  o.fileName = "model '" + name + "'";
  auto g = buildGraph(toSchema(), o);
  if (!g)
    raise(g.error());
  ir.subgraph = g.take();
}

} // namespace detail

using namespace detail;

// --- Initializer, Tensor ---------------------------------------------------------------------

Initializer::Initializer(const char *name) : className(initializerClassFromName(name)) {}
Initializer::Initializer(const std::string &name) : className(initializerClassFromName(name)) {}
Initializer::Initializer(std::string cls, Config cfg)
    : className(std::move(cls)), config(std::move(cfg)) {}

const std::vector<int64_t> &Tensor::shape() const {
  if (!node_)
    raise(Error("shape() of an empty Tensor"));
  return node_->outputs[size_t(index_)].shape;
}
std::string Tensor::dtype() const {
  if (!node_)
    raise(Error("dtype() of an empty Tensor"));
  return dtypeName(node_->outputs[size_t(index_)].dtype);
}
std::string Tensor::shapeString() const { return shapeToString(shape()); }
std::string Tensor::layerName() const { return node_ ? node_->layer->ir.name : ""; }

Tensor Input(std::vector<int64_t> shape, const InputOptions &o) {
  std::vector<int64_t> batchShape = {o.batch_size ? *o.batch_size : None};
  batchShape.insert(batchShape.end(), shape.begin(), shape.end());
  Config c = {{"batch_input_shape", makeInts(batchShape)}, {"dtype", makeString(o.dtype)}};
  auto layer = makeLayer("InputLayer", c, o.name.empty() ? uniqueName("input", false) : o.name);
  return callLayer(layer, {})[0];
}

// --- Layer ------------------------------------------------------------------------------------

Tensor Layer::operator()(const Tensor &input) const { return (*this)(std::vector<Tensor>{input}); }

Tensor Layer::operator()(const std::vector<Tensor> &inputs) const {
  auto outs = callMulti(inputs);
  if (outs.size() != 1)
    raise(Error::format("{} returns {} tensors; use callMulti() to get them all",
                        state_->ir.describe(), outs.size()));
  return outs[0];
}

std::vector<Tensor> Layer::callMulti(const std::vector<Tensor> &inputs) const {
  if (!state_)
    raise(Error("calling an empty Layer handle"));
  return callLayer(state_, inputs);
}

const std::string &Layer::name() const { return state_->ir.name; }

std::vector<Tensor> Layer::outputs_of_call(int callIndex) const {
  if (callIndex < 0 || callIndex >= static_cast<int>(state_->nodes.size()))
    raise(Error::format("{} has {} call(s); there is no call {}", state_->ir.describe(),
                        state_->nodes.size(), callIndex));
  auto node = state_->nodes[size_t(callIndex)].lock();
  if (!node)
    raise(Error::format("{}: the tensors of call {} no longer exist", state_->ir.describe(),
                        callIndex));
  std::vector<Tensor> outs;
  for (size_t i = 0; i < node->outputs.size(); ++i) {
    Tensor t;
    t.node_ = node;
    t.index_ = static_cast<int>(i);
    outs.push_back(t);
  }
  return outs;
}

Tensor Layer::output() const {
  if (state_->nodes.size() != 1)
    raise(Error::format("{} has {} calls, so its output is ill-defined; use outputs_of_call(i)",
                        state_->ir.describe(), state_->nodes.size()));
  auto outs = outputs_of_call(0);
  if (outs.size() != 1)
    raise(Error::format("{} has {} outputs; use outputs_of_call(0)", state_->ir.describe(),
                        outs.size()));
  return outs[0];
}

Tensor Layer::input() const {
  if (state_->nodes.size() != 1)
    raise(Error::format("{} has {} calls, so its input is ill-defined", state_->ir.describe(),
                        state_->nodes.size()));
  auto node = state_->nodes[0].lock();
  if (!node || node->inputs.empty())
    return output(); // an InputLayer's input is its output, as in Keras
  if (node->inputs.size() != 1)
    raise(Error::format("{} has {} inputs", state_->ir.describe(), node->inputs.size()));
  return node->inputs[0];
}
const std::string &Layer::className() const { return state_->ir.className; }

Config Layer::get_config() const {
  Config c(state_->ir.config.begin(), state_->ir.config.end());
  c["name"] = makeString(state_->ir.name);
  return c;
}

int64_t Layer::count_params() const { return state_->ir.countParams(); }
bool Layer::trainable() const { return state_->ir.trainable; }
void Layer::set_trainable(bool t) {
  state_->ir.trainable = t;
  state_->ir.config["trainable"] = makeBool(t);
}

Layer Layer::from_config(const std::string &className, const Config &config) {
  Config c = config;
  std::string name;
  if (auto it = c.find("name"); it != c.end()) {
    name = it->second.s();
    c.erase(it);
  }
  auto state = makeLayer(className, c, name);
  if (state->ir.def->custom)
    state->custom = makeCustomObject(className, state->ir.config);
  return Layer(state);
}

// --- Model ------------------------------------------------------------------------------------

Model::Model(const Tensor &inputs, const Tensor &outputs, const std::string &name)
    : Model(std::vector<Tensor>{inputs}, std::vector<Tensor>{outputs}, name) {}

Model::Model(const std::vector<Tensor> &inputs, const std::vector<Tensor> &outputs,
             const std::string &name)
    : Layer(makeLayer("Functional", {}, name.empty() ? uniqueName("model", true) : name)) {
  auto ms = std::make_shared<ModelState>();
  ms->name = state_->ir.name;
  ms->inputs = inputs;
  ms->outputs = outputs;
  for (const Tensor &t : inputs) {
    if (!t.node_ || t.node_->layer->ir.className != "InputLayer")
      raise(Error::format("model '{}': inputs must come from keras.Input(), got a tensor from "
                          "'{}'",
                          ms->name, t.layerName()));
  }
  if (outputs.empty())
    raise(Error::format("model '{}' has no outputs", ms->name));
  for (const Tensor &t : outputs)
    if (!t.node_)
      raise(Error::format("model '{}': an output is an empty Tensor", ms->name));
  ms->discover();
  state_->model = ms;
  ms->rebuildGraph(state_->ir);
}

ModelState &Model::model() const { return *state_->model; }
const std::vector<Tensor> &Model::inputs() const { return model().inputs; }
const std::vector<Tensor> &Model::outputs() const { return model().outputs; }
const Graph &Model::graph() const { return *state_->ir.subgraph; }

std::vector<Layer> Model::layers() const {
  std::vector<Layer> out;
  for (const fgc::Layer *l : kerasTopology(graph()).layers)
    out.push_back(Layer(model().byName.at(l->name)));
  return out;
}

Layer Model::get_layer(const std::string &n) const {
  auto it = model().byName.find(n);
  if (it == model().byName.end())
    raise(Error::format("model '{}' has no layer named '{}'", model().name, n));
  return Layer(it->second);
}

std::string Model::summary_string(const SummaryOptions &o) const {
  fgc::SummaryOptions so;
  so.expandNested = o.expand_nested;
  return modelSummary(graph(), so);
}

void Model::summary(const SummaryOptions &o) const { std::cout << summary_string(o); }

schema::Model Model::get_config() const {
  auto m = graphToModel(graph(), WeightsMode::None);
  if (!m)
    raise(m.error());
  return m.take();
}

void Model::save(const std::string &path) const {
  if (auto s = writeModelFile(path, get_config()); !s)
    raise(s.error());
}

uint64_t Model::seed() const { return model().seed; }
void Model::set_seed(uint64_t seed) {
  model().seed = seed;
  state_->ir.subgraph->seed = seed;
}

void Model::compile(const CompileOptions &o) {
  schema::TrainingConfig t;
  t.mutable_optimizer()->set_class_name(o.optimizer.className);
  for (const auto &[k, v] : o.optimizer.config)
    (*t.mutable_optimizer()->mutable_attrs())[k] = v;
  std::set<std::string> outputNames;
  for (const Value *v : graph().outputs)
    outputNames.insert(v->producer->layer->name);
  for (const auto &[output, loss] : o.loss) {
    if (!output.empty() && !outputNames.count(output))
      raise(Error::format("model '{}': compile() names a loss for '{}', which is not an output",
                          model().name, output));
    auto *l = t.add_losses();
    l->set_output(output);
    l->set_class_name(loss.className);
    for (const auto &[k, v] : loss.config)
      (*l->mutable_config()->mutable_attrs())[k] = v;
  }
  // Keras 2 warns about outputs the loss dictionary leaves out (they are not trained).
  if (!o.loss.empty() && !o.loss.count(""))
    for (const Value *v : graph().outputs) {
      const std::string &name = v->producer->layer->name;
      if (!o.loss.count(name))
        fmt::print(stderr,
                   "WARNING: Output {0} missing from loss dictionary. We assume this was done on "
                   "purpose. The fit and evaluate APIs will not be expecting any data to be "
                   "passed to {0}.\n",
                   name);
    }
  for (const auto &[output, w] : o.loss_weights) {
    bool found = false;
    for (auto &l : *t.mutable_losses())
      if (l.output() == output) {
        l.set_weight(static_cast<float>(w));
        found = true;
      }
    if (!found)
      raise(Error::format("model '{}': loss_weights names '{}', which has no loss",
                          model().name, output));
  }
  for (const auto &m : o.metrics)
    t.add_metrics()->set_name(m);
  model().training = t;
  state_->ir.subgraph->training = t;
}

namespace optimizers {
namespace schedules {
LearningRateSchedule ExponentialDecay(double initial, int64_t decaySteps, double decayRate,
                                      bool staircase) {
  return {"ExponentialDecay",
          {{"initial_learning_rate", makeFloat(initial)}, {"decay_steps", makeInt(decaySteps)},
           {"decay_rate", makeFloat(decayRate)}, {"staircase", makeBool(staircase)}}};
}
LearningRateSchedule CosineDecay(double initial, int64_t decaySteps, double alpha) {
  return {"CosineDecay", {{"initial_learning_rate", makeFloat(initial)},
                          {"decay_steps", makeInt(decaySteps)}, {"alpha", makeFloat(alpha)}}};
}
} // namespace schedules

LearningRate::LearningRate(double constant) : value(makeFloat(constant)) {}

LearningRate::LearningRate(const schedules::LearningRateSchedule &schedule) {
  // Keras serializes a schedule as {"class_name": ..., "config": {...}}: a nested object.
  AttrMap attrs(schedule.config.begin(), schedule.config.end());
  value = makeObject(schedule.className, attrs);
}

Optimizer SGD(LearningRate lr, const SGDOptions &o) {
  return {"SGD", {{"learning_rate", lr.value}, {"momentum", makeFloat(o.momentum)},
                  {"nesterov", makeBool(o.nesterov)}}};
}
Optimizer RMSprop(LearningRate lr, const RMSpropOptions &o) {
  return {"RMSprop", {{"learning_rate", lr.value}, {"rho", makeFloat(o.rho)},
                      {"momentum", makeFloat(o.momentum)}, {"epsilon", makeFloat(o.epsilon)},
                      {"centered", makeBool(o.centered)}}};
}
Optimizer Adam(LearningRate lr, const AdamOptions &o) {
  return {"Adam", {{"learning_rate", lr.value}, {"beta_1", makeFloat(o.beta_1)},
                   {"beta_2", makeFloat(o.beta_2)}, {"epsilon", makeFloat(o.epsilon)},
                   {"amsgrad", makeBool(o.amsgrad)}}};
}
} // namespace optimizers

namespace losses {
static Loss crossentropy(const char *cls, const CrossentropyOptions &o) {
  return {cls, {{"from_logits", makeBool(o.from_logits)}}};
}
Loss SparseCategoricalCrossentropy(const CrossentropyOptions &o) {
  return crossentropy("SparseCategoricalCrossentropy", o);
}
Loss CategoricalCrossentropy(const CrossentropyOptions &o) {
  return crossentropy("CategoricalCrossentropy", o);
}
Loss BinaryCrossentropy(const CrossentropyOptions &o) {
  return crossentropy("BinaryCrossentropy", o);
}
Loss MeanSquaredError() { return {"MeanSquaredError", {}}; }
Loss MeanAbsoluteError() { return {"MeanAbsoluteError", {}}; }
Loss Huber(double delta) { return {"Huber", {{"delta", makeFloat(delta)}}}; }
} // namespace losses

// Rebuilds API objects from a validated graph: layers from their configs, calls in topological
// order, nested models recursively.
Model Model::fromGraph(const Graph &g) {
  std::map<const fgc::Layer *, std::shared_ptr<LayerState>> layers;
  std::map<const Value *, Tensor> tensors;
  for (const auto &op : g.ops) {
    const fgc::Layer *l = op->layer;
    if (!layers.count(l)) {
      if (l->def->custom) {
        Config c(l->config.begin(), l->config.end());
        layers[l] = makeLayer(l->className, c, l->name);
        layers[l]->custom = makeCustomObject(l->className, l->config);
      } else if (l->subgraph) {
        Model inner = fromGraph(*l->subgraph);
        layers[l] = inner.state_;
      } else {
        Config c(l->config.begin(), l->config.end());
        layers[l] = makeLayer(l->className, c, l->name);
      }
    }
    std::vector<Tensor> ins;
    for (const Value *v : op->inputs)
      ins.push_back(tensors.at(v));
    auto outs = callLayer(layers[l], ins);
    for (size_t i = 0; i < outs.size(); ++i)
      tensors[op->outputs[i].get()] = outs[i];
  }
  std::vector<Tensor> inputs, outputs;
  for (const Value *v : g.inputs)
    inputs.push_back(tensors.at(v));
  for (const Value *v : g.outputs)
    outputs.push_back(tensors.at(v));
  Model m(inputs, outputs, g.name);
  m.set_seed(g.seed);
  m.model().training = g.training;
  m.state_->ir.subgraph->training = g.training;
  return m;
}

Model Model::from_config(const schema::Model &config) {
  auto g = buildGraph(config, BuildOptions{"model '" + config.name() + "'", ""});
  if (!g)
    raise(g.error());
  return fromGraph(**g);
}

Model Model::from_config(const schema::Model &config, const CustomObjects &customObjects) {
  register_custom_objects(customObjects);
  return from_config(config);
}

Model load_model(const std::string &path) {
  auto g = loadGraph(path);
  if (!g)
    raise(g.error());
  return Model::fromGraph(**g);
}

Model load_model(const std::string &path, const CustomObjects &customObjects) {
  register_custom_objects(customObjects);
  return load_model(path);
}

void plot_model(const Model &model, const std::string &toFile, const PlotOptions &o) {
  fgc::PlotOptions po;
  po.showShapes = o.show_shapes;
  po.showDtype = o.show_dtype;
  po.expandNested = o.expand_nested;
  po.rankdir = o.rankdir;
  po.dpi = o.dpi;
  if (auto s = plotModel(model.graph(), toFile, po); !s)
    raise(s.error());
}

void clear_session() { nameCounters().clear(); }

} // namespace fgc::keras
