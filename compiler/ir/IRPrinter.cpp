// Graph -> text (see IRPrinter.h).
#include "compiler/ir/IRPrinter.h"

#include "compiler/ir/OpRegistry.h"

#include <fmt/format.h>

#include <set>

namespace fgc {

std::string valueName(const Value &v) {
  const Op &op = *v.producer;
  std::string name = "%";
  name += op.path();
  if (op.nodeIndex > 0) {
    name += '#';
    name += std::to_string(op.nodeIndex);
  }
  if (op.outputs.size() > 1) {
    name += ':';
    name += std::to_string(v.index);
  }
  return name;
}

namespace {

void printModel(const Graph &g, std::string &out, std::set<const Graph *> &printed) {
  printed.insert(&g);
  out += "model " + g.name + "\n";
  std::vector<const Graph *> nested;
  for (const auto &opPtr : g.ops) {
    const Op &op = *opPtr;
    std::string results, inputs, types;
    for (const auto &v : op.outputs) {
      results += (results.empty() ? "" : ", ") + valueName(*v);
      types += (types.empty() ? "" : ", ") + shapeToString(v->type.shape);
    }
    for (const Value *v : op.inputs)
      inputs += (inputs.empty() ? "" : ", ") + valueName(*v);
    std::string attrs;
    if (op.layer->def)
      for (const auto &[k, v] : nonDefaultConfig(op.layer->def->attrs, op.layer->config))
        if (k != "batch_input_shape" && k != "name")
          attrs += (attrs.empty() ? "" : ", ") + k + "=" + attrToString(v);
    for (const auto &[k, v] : op.kwargs)
      attrs += (attrs.empty() ? "" : ", ") + k + "=" + attrToString(v);
    out += fmt::format("  {} = {} {}{}{} : {}\n", results, op.layer->className, op.path(),
                       inputs.empty() ? "" : "(" + inputs + ")",
                       attrs.empty() ? "" : " {" + attrs + "}", types);
    if (op.layer->subgraph && !printed.count(op.layer->subgraph.get()))
      nested.push_back(op.layer->subgraph.get());
  }
  std::string results;
  for (const Value *v : g.outputs)
    results += (results.empty() ? "" : ", ") + valueName(*v);
  out += "  return " + results + "\n";
  for (const Graph *sub : nested)
    if (!printed.count(sub)) {
      out += "\n";
      printModel(*sub, out, printed);
    }
}

} // namespace

std::string printGraph(const Graph &graph) {
  std::string out;
  std::set<const Graph *> printed;
  printModel(graph, out, printed);
  return out;
}

} // namespace fgc
