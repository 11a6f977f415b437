// `plot_model`: the layer graph as Graphviz, drawn like keras.utils.plot_model.
//
// One record node per layer ("name: Class"), with `show_shapes` an input/output table, an edge
// per inbound connection; `expand_nested` draws nested models as clusters of their layers.
#pragma once

#include "compiler/ir/Graph.h"

#include <string>

namespace fgc {

struct PlotOptions {
  bool showShapes = false;
  bool showDtype = false;
  bool expandNested = false;
  std::string rankdir = "TB";
  int dpi = 96;
};

// The DOT text (deterministic).
std::string modelToDot(const Graph &graph, const PlotOptions &options = {});

// Writes the plot to `path`: `.dot` as text, `.png` / `.svg` / `.pdf` rendered by Graphviz's
// `dot` program. Written atomically; errors name the file.
Status plotModel(const Graph &graph, const std::string &path, const PlotOptions &options = {});

} // namespace fgc
