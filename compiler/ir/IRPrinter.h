// The IR as readable text, for `fgc compile --print-ir-after` and the passes' golden tests.
//
//   model mnist_model
//     %input_1 = InputLayer input_1 : (None, 784)
//     %dense = Dense dense(%input_1) {activation='relu', units=64} : (None, 64)
//     ...
//     return %dense_2
//
// One line per op in schedule order: its value names (the layer path, "#call" for the calls of
// a shared layer after the first, ":k" for the k-th output of a layer with several), class,
// layer path, inputs, the config attributes that differ from Keras's defaults, and the output
// types. Nested models that are still calls are printed after the model that calls them.
#pragma once

#include "compiler/ir/Graph.h"

#include <string>

namespace fgc {

std::string printGraph(const Graph &graph);

// The name the printer gives a value ("%dense", "%shared#1", "%lstm:2").
std::string valueName(const Value &value);

} // namespace fgc
