// `model.summary()`: Keras's table of layers, output shapes and parameter counts.
//
// The layout is tf.keras 2.x's print_summary, byte for byte: 65 columns for sequential-like
// models, 98 with a "Connected to" column otherwise; each field is cut at its column end.
#pragma once

#include "compiler/ir/Graph.h"

#include <string>

namespace fgc {

struct SummaryOptions {
  // Also list the layers of nested models, indented under the model's row with '|' marks.
  bool expandNested = false;
  // Overrides Keras's default widths (0: keep 65 / 98).
  int lineLength = 0;
};

std::string modelSummary(const Graph &graph, const SummaryOptions &options = {});

// Keras's rendering of a layer's output shape: "(None, 64)", "[(None, 784)]" for an InputLayer
// or several outputs, "multiple" when its calls disagree.
std::string kerasOutputShape(const Layer &layer);

// "55,050"
std::string withThousands(int64_t n);

} // namespace fgc
