// Serializing the IR back to the schema (see GraphWriter.h).
#include "frontend/GraphWriter.h"

#include "compiler/ir/KerasTopology.h"
#include "compiler/ir/OpRegistry.h"
#include "frontend/GraphBuilder.h"
#include "frontend/ModelFile.h"

#include <set>

namespace fgc {

namespace {

schema::TensorRef refTo(const Value *v) {
  schema::TensorRef r;
  r.set_layer(v->producer->layer->name);
  r.set_node_index(v->producer->nodeIndex);
  r.set_tensor_index(v->index);
  return r;
}

Status writeLayer(const Layer &l, WeightsMode weights, schema::Layer &out) {
  out.set_class_name(l.className);
  out.set_name(l.name);
  for (const auto &[k, v] : nonDefaultConfig(l.def->attrs, l.config))
    (*out.mutable_config())[k] = v;
  if (l.className != "InputLayer")
    for (const Op *op : l.calls) {
      auto *node = out.add_nodes();
      for (const Value *in : op->inputs)
        *node->add_inputs() = refTo(in);
      for (const auto &[k, v] : op->kwargs)
        (*node->mutable_kwargs())[k] = v;
    }
  if (l.def->custom) {
    // Stored as Keras stores a custom layer: class name, config and its weights, never its body
    // (loading traces it again from the config).
    if (weights == WeightsMode::Inline && l.subgraph) {
      std::vector<std::pair<std::string, Param *>> params;
      collectCustomParams(*l.subgraph, "", params);
      for (const auto &[name, p] : params) {
        if (p->data.empty())
          return Error::format("{}: weight '{}' has no data to save", l.describe(), name);
        auto *t = out.add_weights();
        t->set_name(name);
        t->set_dtype(p->type.dtype);
        for (Dim d : p->type.shape)
          t->add_shape(d);
        t->set_data(p->data.data(), p->data.size());
      }
    }
    return Status::ok();
  }
  if (l.subgraph) {
    auto sub = graphToModel(*l.subgraph, weights);
    if (!sub)
      return sub.error();
    *out.mutable_model() = sub.take();
  }
  if (weights == WeightsMode::Inline)
    for (const auto &p : l.params) {
      if (p.data.empty())
        return Error::format("{}: weight '{}' has no data to save", l.describe(), p.name);
      auto *t = out.add_weights();
      t->set_name(p.name);
      t->set_dtype(p.type.dtype);
      for (Dim d : p.type.shape)
        t->add_shape(d);
      t->set_data(p.data.data(), p.data.size());
    }
  return Status::ok();
}

} // namespace

bool hasAllWeights(const Graph &graph) {
  for (const auto &l : graph.layers) {
    if (l->subgraph && !hasAllWeights(*l->subgraph))
      return false;
    for (const auto &p : l->params)
      if (p.data.empty())
        return false;
  }
  return true;
}

Expected<schema::Model> graphToModel(const Graph &graph, WeightsMode weights) {
  schema::Model m;
  m.set_schema_version(kSchemaVersion);
  m.set_name(graph.name);
  m.set_seed(graph.seed);
  if (graph.training.ByteSizeLong() > 0)
    *m.mutable_training() = graph.training;
  KerasTopology topo = kerasTopology(graph);
  std::vector<const Layer *> order(topo.layers.begin(), topo.layers.end());
  std::set<const Layer *> placed(order.begin(), order.end());
  for (const auto &l : graph.layers)
    if (!placed.count(l.get()))
      order.push_back(l.get());
  for (const Layer *l : order)
    FGC_TRY(writeLayer(*l, weights, *m.add_layers()));
  for (const Value *v : graph.inputs)
    *m.add_inputs() = refTo(v);
  for (const Value *v : graph.outputs)
    *m.add_outputs() = refTo(v);
  return m;
}

} // namespace fgc
