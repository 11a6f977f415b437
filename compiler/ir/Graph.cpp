// Graph queries: lookup and parameter counting (see Graph.h).
#include "compiler/ir/Graph.h"

#include <fmt/format.h>

#include <set>

namespace fgc {

std::string Layer::describe() const {
  return fmt::format("layer '{}' ({})", name, className);
}

// Collects every distinct Param reachable from a layer list, descending into nested models, so
// a layer shared between an outer model and a nested one counts once.
static void collectParams(const std::vector<std::unique_ptr<Layer>> &layers,
                          std::set<const Param *> &out, bool trainableOnly, bool parentTrainable) {
  for (const auto &l : layers) {
    bool layerTrainable = parentTrainable && l->trainable;
    if (l->subgraph)
      collectParams(l->subgraph->layers, out, trainableOnly, layerTrainable);
    for (const auto &p : l->params)
      if (!trainableOnly || (p.trainable && layerTrainable))
        out.insert(&p);
  }
}

static int64_t sumParams(const std::set<const Param *> &ps) {
  int64_t n = 0;
  for (const Param *p : ps)
    n += p->numElements();
  return n;
}

int64_t Layer::countParams() const {
  std::set<const Param *> ps;
  for (const auto &p : params)
    ps.insert(&p);
  if (subgraph)
    collectParams(subgraph->layers, ps, false, true);
  return sumParams(ps);
}

int64_t Layer::countTrainableParams() const {
  std::set<const Param *> ps;
  if (trainable) {
    for (const auto &p : params)
      if (p.trainable)
        ps.insert(&p);
    if (subgraph)
      collectParams(subgraph->layers, ps, true, true);
  }
  return sumParams(ps);
}

Layer *Graph::findLayer(const std::string &n) const {
  for (const auto &l : layers)
    if (l->name == n)
      return l.get();
  return nullptr;
}

int64_t Graph::countParams() const {
  std::set<const Param *> ps;
  collectParams(layers, ps, false, true);
  return sumParams(ps);
}

int64_t Graph::countTrainableParams() const {
  std::set<const Param *> ps;
  collectParams(layers, ps, true, true);
  return sumParams(ps);
}

} // namespace fgc
