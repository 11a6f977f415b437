// schema::Model -> validated IR Graph (see GraphBuilder.h).
#include "frontend/GraphBuilder.h"

#include "compiler/ir/OpRegistry.h"
#include "frontend/ModelFile.h"
#include "frontend/WeightsFile.h"

#include <map>
#include <set>

namespace fgc {

namespace {

constexpr int kMaxNesting = 32;

AttrMap toAttrMap(const google::protobuf::Map<std::string, AttrValue> &m) {
  return AttrMap(m.begin(), m.end());
}

std::string refToString(const schema::TensorRef &r) {
  return fmt::format("'{}'[{}][{}]", r.layer(), r.node_index(), r.tensor_index());
}

// Multiplies dimensions, failing on overflow or on a size beyond `cap`.
bool checkedElements(const std::vector<Dim> &shape, int64_t cap, int64_t &out) {
  out = 1;
  for (Dim d : shape) {
    if (isDynamic(d))
      continue;
    if (d < 0 || d > kMaxDim || __builtin_mul_overflow(out, d, &out) || out > cap)
      return false;
  }
  return true;
}

class Builder {
public:
  Builder(const BuildOptions &options, int depth) : options_(options), depth_(depth) {}

  Expected<std::unique_ptr<Graph>> build(const schema::Model &m) {
    graph_ = std::make_unique<Graph>();
    graph_->name = m.name().empty() ? "model" : m.name();
    graph_->sourceFile = options_.fileName;
    graph_->seed = m.seed();
    graph_->training = m.training();
    FGC_TRY(createLayers(m));
    FGC_TRY(createOps(m));
    FGC_TRY(orderAndInfer(m));
    FGC_TRY(resolveInputsOutputs(m));
    FGC_TRY(attachWeights(m));
    return std::move(graph_);
  }

private:
  const BuildOptions &options_;
  int depth_;
  std::unique_ptr<Graph> graph_;
  std::map<std::string, Layer *> byName_;
  // For each layer (by source position): the schema layer it came from.
  std::vector<const schema::Layer *> sources_;

  Status createLayers(const schema::Model &m) {
    std::map<std::string, int> position;
    for (int i = 0; i < m.layers_size(); ++i) {
      const schema::Layer &sl = m.layers(i);
      if (sl.name().empty())
        return Error::format("layer #{} ({}) has no name", i, sl.class_name());
      if (auto it = position.find(sl.name()); it != position.end())
        return Error::format("duplicate layer name '{}': layers #{} ({}) and #{} ({}) both have it; "
                             "layer names must be unique within a model",
                             sl.name(), it->second, m.layers(it->second).class_name(), i,
                             sl.class_name());
      position[sl.name()] = i;
      const OpDef *def = OpRegistry::global().find(sl.class_name());
      if (!def)
        return Error::format("layer '{}': unknown layer class '{}'. fgc knows: {}. If '{}' is a "
                             "custom layer, register it before loading: "
                             "register_custom_layer<T>(\"{}\") in C++, or `fgc --plugin LIB.so` "
                             "(see README, \"Custom layers\")",
                             sl.name(), sl.class_name().empty() ? "<empty>" : sl.class_name(),
                             knownClasses(), sl.class_name(), sl.class_name());
      auto layer = std::make_unique<Layer>();
      layer->name = sl.name();
      layer->className = sl.class_name();
      layer->def = def;
      auto config =
          normalizeConfig(def->attrs, toAttrMap(sl.config()), layer->describe(), def->custom);
      if (!config)
        return config.error();
      layer->config = config.take();
      layer->trainable = layer->attrs().b("trainable");
      bool isModel = def->className == "Functional" || def->className == "Sequential";
      if (isModel != sl.has_model())
        return Error::format("{}: {}", layer->describe(),
                             isModel ? "has no nested model (field `model`)"
                                     : "only Functional and Sequential layers carry a `model`");
      if (isModel) {
        if (depth_ + 1 > kMaxNesting)
          return Error::format("{}: models are nested more than {} levels deep", layer->describe(),
                               kMaxNesting);
        Builder nested(options_, depth_ + 1);
        auto sub = nested.build(sl.model());
        if (!sub)
          return sub.error().withContext(fmt::format("in nested model '{}'", sl.name()));
        layer->subgraph = sub.take();
      }
      byName_[layer->name] = layer.get();
      sources_.push_back(&sl);
      graph_->layers.push_back(std::move(layer));
    }
    if (graph_->layers.empty())
      return Error::format("model '{}' has no layers", graph_->name);
    return Status::ok();
  }

  static std::string knownClasses() {
    std::string s;
    for (const auto &n : OpRegistry::global().classNames())
      s += (s.empty() ? "" : ", ") + n;
    return s;
  }

  // One Op per call. An InputLayer always has exactly one call with no inputs.
  Status createOps(const schema::Model &) {
    for (size_t li = 0; li < graph_->layers.size(); ++li) {
      Layer &layer = *graph_->layers[li];
      const schema::Layer &sl = *sources_[li];
      int calls = sl.nodes_size();
      if (layer.className == "InputLayer") {
        if (calls > 1 || (calls == 1 && sl.nodes(0).inputs_size() > 0))
          return Error::format("{}: an InputLayer has no inbound connections", layer.describe());
        calls = 1;
      }
      for (int n = 0; n < calls; ++n) {
        auto op = std::make_unique<Op>();
        op->layer = &layer;
        op->nodeIndex = n;
        if (n < sl.nodes_size())
          op->kwargs = toAttrMap(sl.nodes(n).kwargs());
        layer.calls.push_back(op.get());
        pending_.push_back(std::move(op));
      }
    }
    return Status::ok();
  }

  std::vector<std::unique_ptr<Op>> pending_;
  Dim nextSymbol_ = kBatchDim - 1;

  const schema::Node *sourceNode(const Op &op) const {
    for (size_t li = 0; li < graph_->layers.size(); ++li)
      if (graph_->layers[li].get() == op.layer)
        return op.nodeIndex < sources_[li]->nodes_size() ? &sources_[li]->nodes(op.nodeIndex)
                                                         : nullptr;
    return nullptr;
  }

  Expected<Op *> resolveRef(const schema::TensorRef &r, const std::string &user) {
    auto it = byName_.find(r.layer());
    if (it == byName_.end())
      return Error::format("{} refers to unknown layer {}", user, refToString(r));
    Layer *producer = it->second;
    if (r.node_index() < 0 || r.node_index() >= static_cast<int>(producer->calls.size()))
      return Error::format("{} refers to {}, but layer '{}' has {} call(s) (node indices start at "
                           "0)",
                           user, refToString(r), r.layer(), producer->calls.size());
    return producer->calls[r.node_index()];
  }

  // Orders ops so every producer precedes its users (iterative DFS, so deep chains cannot
  // overflow the stack), then infers each op's output types.
  Status orderAndInfer(const schema::Model &) {
    std::map<Op *, int> state; // 0 new, 1 on stack, 2 done
    std::vector<Op *> order;
    for (auto &root : pending_) {
      if (state[root.get()] == 2)
        continue;
      std::vector<std::pair<Op *, int>> stack = {{root.get(), 0}};
      state[root.get()] = 1;
      while (!stack.empty()) {
        auto &[op, next] = stack.back();
        const schema::Node *node = sourceNode(*op);
        int nInputs = node ? node->inputs_size() : 0;
        if (next < nInputs) {
          const auto &ref = node->inputs(next++);
          auto producer = resolveRef(ref, describeCall(*op));
          if (!producer)
            return producer.error();
          int &s = state[*producer];
          if (s == 1)
            return Error::format("cycle in the layer graph: {} consumes {}, which depends on it",
                                 describeCall(*op), refToString(ref));
          if (s == 0) {
            s = 1;
            stack.push_back({*producer, 0});
          }
          continue;
        }
        state[op] = 2;
        order.push_back(op);
        stack.pop_back();
      }
    }
    std::map<Op *, std::unique_ptr<Op>> owned;
    for (auto &op : pending_)
      owned[op.get()] = std::move(op);
    for (Op *op : order) {
      graph_->ops.push_back(std::move(owned[op]));
      FGC_TRY(infer(*op));
    }
    return Status::ok();
  }

  std::string describeCall(const Op &op) const {
    if (op.layer->calls.size() == 1)
      return op.layer->describe();
    return fmt::format("{} call {}", op.layer->describe(), op.nodeIndex);
  }

  Status infer(Op &op) {
    Layer &layer = *op.layer;
    OpContext ctx{layer, {}, {}};
    if (const schema::Node *node = sourceNode(op)) {
      for (const auto &ref : node->inputs()) {
        Op *producer = *resolveRef(ref, describeCall(op));
        if (ref.tensor_index() < 0 ||
            ref.tensor_index() >= static_cast<int>(producer->outputs.size()))
          return Error::format("{} refers to {}, but layer '{}' has {} output(s)",
                               describeCall(op), refToString(ref), ref.layer(),
                               producer->outputs.size());
        Value *v = producer->outputs[ref.tensor_index()].get();
        op.inputs.push_back(v);
        ctx.inputs.push_back(v->type);
        ctx.inputSources.push_back(producer->layer->name);
      }
    }
    auto types = inferLayerCall(layer, ctx, describeCall(op));
    if (!types)
      return types.error();
    if (layer.className == "InputLayer")
      for (Dim &d : (*types)[0].shape)
        if (&d != &(*types)[0].shape[0] && isDynamic(d))
          d = nextSymbol_--; // each None of an input is its own run-time size
    for (auto &t : *types) {
      int64_t elems;
      if (!checkedElements(t.shape, kMaxParamElements, elems))
        return Error::format("{}: output shape {} is too large", describeCall(op),
                             shapeToString(t.shape));
      auto v = std::make_unique<Value>();
      v->type = t;
      v->producer = &op;
      v->index = static_cast<int>(op.outputs.size());
      op.outputs.push_back(std::move(v));
    }
    for (const auto &p : layer.params) {
      int64_t elems;
      if (!checkedElements(p.type.shape, kMaxParamElements, elems))
        return Error::format("{}: weight '{}' of shape {} is too large", layer.describe(), p.name,
                             shapeToString(p.type.shape));
    }
    return Status::ok();
  }

  Status resolveInputsOutputs(const schema::Model &m) {
    if (m.inputs_size() == 0)
      return Error::format("model '{}' declares no inputs", graph_->name);
    if (m.outputs_size() == 0)
      return Error::format("model '{}' declares no outputs", graph_->name);
    std::set<Op *> declaredInputs;
    for (const auto &r : m.inputs()) {
      auto op = resolveRef(r, fmt::format("model '{}' input", graph_->name));
      if (!op)
        return op.error();
      if ((*op)->layer->className != "InputLayer")
        return Error::format("model '{}' input {} is a {} layer; model inputs must be InputLayers",
                             graph_->name, refToString(r), (*op)->layer->className);
      if (r.tensor_index() != 0)
        return Error::format("model '{}' input {}: an InputLayer has one output (index 0)",
                             graph_->name, refToString(r));
      if (!declaredInputs.insert(*op).second)
        return Error::format("model '{}' lists input '{}' twice", graph_->name, r.layer());
      graph_->inputs.push_back((*op)->outputs[0].get());
    }
    for (const auto &r : m.outputs()) {
      auto op = resolveRef(r, fmt::format("model '{}' output", graph_->name));
      if (!op)
        return op.error();
      if (r.tensor_index() < 0 || r.tensor_index() >= static_cast<int>((*op)->outputs.size()))
        return Error::format("model '{}' output {}: layer '{}' has {} output(s)", graph_->name,
                             refToString(r), r.layer(), (*op)->outputs.size());
      graph_->outputs.push_back((*op)->outputs[r.tensor_index()].get());
    }
    // Keras's "graph disconnected": everything the outputs need must come from declared inputs.
    std::set<const Op *> seen;
    std::vector<const Op *> work;
    for (Value *v : graph_->outputs)
      work.push_back(v->producer);
    while (!work.empty()) {
      const Op *op = work.back();
      work.pop_back();
      if (!seen.insert(op).second)
        continue;
      if (op->layer->className == "InputLayer" && !declaredInputs.count(const_cast<Op *>(op)))
        return Error::format("graph disconnected: the outputs of model '{}' need InputLayer '{}', "
                             "which is not among the model's inputs",
                             graph_->name, op->layer->name);
      for (Value *in : op->inputs)
        work.push_back(in->producer);
    }
    return Status::ok();
  }

  Status attachWeights(const schema::Model &m) {
    bool anyInline = false;
    for (const auto *sl : sources_)
      anyInline |= sl->weights_size() > 0;
    if (anyInline && !m.weights_file().empty())
      return Error::format("model '{}' has both inline weights and weights_file '{}': keep one",
                           graph_->name, m.weights_file());
    if (options_.skipWeights)
      return Status::ok();
    if (!m.weights_file().empty()) {
      std::string path = m.weights_file();
      if (path.front() != '/' && !options_.baseDir.empty())
        path = options_.baseDir + "/" + path;
      return loadWeightsFile(*graph_, path);
    }
    if (!anyInline)
      return Status::ok();
    for (size_t li = 0; li < graph_->layers.size(); ++li) {
      Layer &layer = *graph_->layers[li];
      const schema::Layer &sl = *sources_[li];
      if (layer.def->custom) {
        FGC_TRY(attachCustomWeights(layer, sl));
        continue;
      }
      if (layer.params.empty() && sl.weights_size() == 0)
        continue;
      if (sl.weights_size() != static_cast<int>(layer.params.size())) {
        std::string expected;
        for (const auto &p : layer.params)
          expected += (expected.empty() ? "" : ", ") + p.name + " " + shapeToString(p.type.shape);
        return Error::format("{}: missing weights: the file has {} weight(s), the layer needs {} "
                             "({})",
                             layer.describe(), sl.weights_size(), layer.params.size(),
                             expected.empty() ? "none" : expected);
      }
      for (size_t i = 0; i < layer.params.size(); ++i)
        FGC_TRY(fillParam(layer, layer.params[i], sl.weights(static_cast<int>(i))));
    }
    return Status::ok();
  }

  // A custom layer's weights are those of its traced body, which the file lists in order (as
  // Keras lists a layer's weights), named by their path in the body.
  Status attachCustomWeights(Layer &layer, const schema::Layer &sl) {
    if (sl.weights_size() == 0)
      return Status::ok();
    std::vector<std::pair<std::string, Param *>> params;
    if (layer.subgraph)
      collectCustomParams(*layer.subgraph, "", params);
    if (sl.weights_size() != static_cast<int>(params.size())) {
      std::string expected;
      for (const auto &[name, p] : params)
        expected += (expected.empty() ? "" : ", ") + name + " " + shapeToString(p->type.shape);
      return Error::format("{}: the file has {} weight(s), the layer's build() creates {} ({})",
                           layer.describe(), sl.weights_size(), params.size(),
                           expected.empty() ? "none" : expected);
    }
    for (size_t i = 0; i < params.size(); ++i)
      FGC_TRY(fillParam(layer, *params[i].second, sl.weights(static_cast<int>(i))));
    return Status::ok();
  }

  Status fillParam(const Layer &layer, Param &p, const schema::Tensor &t) {
    std::vector<Dim> shape(t.shape().begin(), t.shape().end());
    std::string inputNote;
    if (!layer.calls.empty() && !layer.calls[0]->inputs.empty()) {
      const Op &call = *layer.calls[0];
      inputNote = fmt::format(" for its input {} from '{}'",
                              shapeToString(call.inputs[0]->type.shape),
                              call.inputs[0]->producer->layer->name);
    }
    if (shape != p.type.shape)
      return Error::format("{}: weight '{}' has shape {} in the file, but the layer needs {}{}",
                           layer.describe(), p.name, shapeToString(shape),
                           shapeToString(p.type.shape), inputNote);
    if (t.dtype() != schema::FLOAT32)
      return Error::format("{}: weight '{}' has dtype {}, expected float32", layer.describe(),
                           p.name, dtypeName(t.dtype()));
    size_t expected = static_cast<size_t>(p.numElements()) * dtypeSize(p.type.dtype);
    if (t.data().size() != expected)
      return Error::format("{}: weight '{}' {} needs {} bytes of data, the file has {}",
                           layer.describe(), p.name, shapeToString(shape), expected,
                           t.data().size());
    p.data.assign(t.data().begin(), t.data().end());
    return Status::ok();
  }
};

} // namespace

void collectCustomParams(Graph &body, const std::string &prefix,
                         std::vector<std::pair<std::string, Param *>> &out) {
  for (auto &l : body.layers) {
    std::string path = prefix.empty() ? l->name : prefix + "/" + l->name;
    if (l->subgraph)
      collectCustomParams(*l->subgraph, path, out);
    for (auto &p : l->params)
      out.push_back({p.name == path ? path : path + "/" + p.name, &p});
  }
}

namespace {

std::string directoryOf(const std::string &path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

} // namespace

Expected<std::unique_ptr<Graph>> buildGraph(const schema::Model &model,
                                            const BuildOptions &options) {
  Builder b(options, 0);
  auto g = b.build(model);
  if (!g)
    return g.error().withContext(options.fileName);
  return g;
}

Expected<std::unique_ptr<Graph>> loadGraph(const std::string &path) {
  auto model = readModelFile(path);
  if (!model)
    return model.error();
  BuildOptions options;
  options.fileName = path;
  options.baseDir = directoryOf(path);
  return buildGraph(*model, options);
}

} // namespace fgc
