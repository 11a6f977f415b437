// Keras-exact model summaries (see Summary.h).
#include "compiler/report/Summary.h"

#include "compiler/ir/KerasTopology.h"
#include "compiler/ir/OpRegistry.h"

#include <fmt/format.h>

#include <set>

namespace fgc {

namespace {

class Printer {
public:
  Printer(std::vector<int> positions, int lineLength)
      : positions_(std::move(positions)), lineLength_(lineLength) {}

  // Keras's print_row: each field replaces the last character of the line so far with a space,
  // is appended, then the line is cut (or padded) to the field's column end. `indent` adds '|'
  // nesting marks for --expand-nested.
  void row(const std::vector<std::string> &fields, int nested = 0) {
    std::string line;
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i > 0)
        line = line.substr(0, line.size() - 1) + " ";
      line += (i == 0 ? std::string(size_t(nested), '|') : "") + fields[i];
      size_t end = size_t(positions_[i]);
      line = line.substr(0, end);
      line += std::string(end - line.size(), ' ');
    }
    out_ += line + "\n";
  }
  void rule(char c) { out_ += std::string(size_t(lineLength_), c) + "\n"; }
  void text(const std::string &s) { out_ += s + "\n"; }
  const std::string &str() const { return out_; }

private:
  std::vector<int> positions_;
  int lineLength_;
  std::string out_;
};

std::string shapesOf(const Op &op) {
  if (op.outputs.size() == 1 && op.layer->className != "InputLayer")
    return shapeToString(op.outputs[0]->type.shape);
  std::string s = "[";
  for (size_t i = 0; i < op.outputs.size(); ++i)
    s += (i ? ", " : "") + shapeToString(op.outputs[i]->type.shape);
  return s + "]";
}

void printLayers(const Graph &graph, const SummaryOptions &options, bool sequentialLike,
                 Printer &p, int nested, int lineLength) {
  KerasTopology topo = kerasTopology(graph);
  std::set<const Op *> relevant(topo.networkOps.begin(), topo.networkOps.end());
  for (size_t i = 0; i < topo.layers.size(); ++i) {
    const Layer &l = *topo.layers[i];
    std::string cls = l.className;
    std::vector<std::string> fields = {l.name + " (" + cls + ")", kerasOutputShape(l),
                                       std::to_string(l.countParams())};
    if (sequentialLike) {
      p.row(fields, nested);
    } else {
      std::vector<std::string> connections;
      for (const Op *op : l.calls) {
        if (!relevant.count(op))
          continue;
        for (const Value *in : op->inputs)
          connections.push_back(fmt::format("{}[{}][{}]", in->producer->layer->name,
                                            kerasNodeIndex(*in->producer->layer,
                                                           in->producer->nodeIndex),
                                            in->index));
      }
      fields.push_back(connections.empty() ? "" : connections[0]);
      p.row(fields, nested);
      for (size_t c = 1; c < connections.size(); ++c)
        p.row({"", "", "", connections[c]}, nested);
    }
    // A custom layer's traced body is fgc's business: Keras shows a subclassed layer as one
    // row even with expand_nested.
    if (options.expandNested && l.subgraph && !(l.def && l.def->custom)) {
      p.text(std::string(size_t(nested + 1), '|') +
             std::string(size_t(lineLength - 2 * (nested + 1)), '-') +
             std::string(size_t(nested + 1), '|'));
      printLayers(*l.subgraph, options, sequentialLike, p, nested + 1, lineLength);
      p.text(std::string(size_t(nested + 1), '|') +
             std::string(size_t(lineLength - 2 * (nested + 1)), '-') +
             std::string(size_t(nested + 1), '|'));
    }
    if (nested > 0)
      continue;
    p.rule(i + 1 == topo.layers.size() ? '=' : '_');
  }
}

} // namespace

std::string withThousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

std::string kerasOutputShape(const Layer &layer) {
  if (layer.calls.empty())
    return "multiple";
  std::string first = shapesOf(*layer.calls[0]);
  for (const Op *op : layer.calls)
    if (shapesOf(*op) != first)
      return "multiple";
  return first;
}

std::string modelSummary(const Graph &graph, const SummaryOptions &options) {
  KerasTopology topo = kerasTopology(graph);
  bool sequentialLike = topo.isSequentialLike();
  int lineLength = options.lineLength ? options.lineLength : sequentialLike ? 65 : 98;
  std::vector<double> fractions =
      sequentialLike ? std::vector<double>{.45, .85, 1.} : std::vector<double>{.33, .55, .67, 1.};
  std::vector<int> positions;
  for (double f : fractions)
    positions.push_back(static_cast<int>(lineLength * f));
  Printer p(positions, lineLength);
  p.text(fmt::format("Model: \"{}\"", graph.name));
  p.rule('_');
  if (sequentialLike)
    p.row({"Layer (type)", "Output Shape", "Param #"});
  else
    p.row({"Layer (type)", "Output Shape", "Param #", "Connected to"});
  p.rule('=');
  printLayers(graph, options, sequentialLike, p, 0, lineLength);
  int64_t total = graph.countParams(), trainable = graph.countTrainableParams();
  p.text("Total params: " + withThousands(total));
  p.text("Trainable params: " + withThousands(trainable));
  p.text("Non-trainable params: " + withThousands(total - trainable));
  p.rule('_');
  return p.str();
}

} // namespace fgc
