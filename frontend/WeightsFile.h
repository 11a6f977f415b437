// The fgc weights file (`.fgcw`): every parameter of a model, memory-mappable.
//
// Layout (see schemas/fgc.proto, WeightsIndex): magic "FGCWGT01", a u64 index length, the
// binary WeightsIndex, then the data section with every tensor at a 64-byte aligned offset.
// Entries are keyed by layer path ("encoder/conv2d" for layers of nested models) and weight name.
#pragma once

#include "compiler/ir/Graph.h"

#include <cstdint>
#include <string>
#include <vector>

namespace fgc {

inline constexpr char kWeightsMagic[8] = {'F', 'G', 'C', 'W', 'G', 'T', '0', '1'};
inline constexpr size_t kWeightsAlignment = 64;

// Fills every parameter of `graph` (nested models included) from the file. Errors name the file,
// the layer and both shapes; a parameter absent from the file is an error.
Status loadWeightsFile(Graph &graph, const std::string &path);

// One parameter to read from a weights file: its key in the file (layer path and the parameter's
// name), its type, the layer for messages, and where its values go.
struct WeightDestination {
  std::string layerPath; // "encoder/conv2d" for a layer of a nested model
  const Param *param = nullptr;
  std::string owner; // in messages: "layer 'fc1' (Dense)"
  void *data = nullptr; // param->numElements() values of its dtype
};

// Reads each destination's values from a weights file or a model file (`.fgcw` / `.fgcm`, found
// by its magic bytes) straight into its memory: the index is parsed, then every weight is read
// from its offset; nothing else of the file is read, copied or mapped. The checks and messages
// of loadWeightsFile: a weight the file lacks, another shape or dtype, an entry outside the file.
Status readWeightsInto(const std::string &path, const std::vector<WeightDestination> &weights);

// Writes every parameter (all must have data) atomically.
Status saveWeightsFile(const Graph &graph, const std::string &path);

// An optimizer's state for a model file: slot values by parameter (e.g. imported from Keras).
struct OptimizerState {
  std::string optimizer;  // the Keras class of the optimizer that wrote them ("Adam")
  int64_t iterations = 0; // optimizer steps taken
  struct Slot {
    std::string layer;  // layer path: "encoder/conv2d"
    std::string weight; // parameter name: "kernel"
    std::string slot;   // fgc's slot name: "m", "v", "vhat", "momentum", "rms", "mg"
    std::vector<int64_t> shape;
    std::vector<float> data; // the parameter's layout
  };
  std::vector<Slot> slots; // absent slots are zeros (Keras keeps none for frozen weights)
};

// The slots fgc's training code keeps per trainable parameter for a training config's
// optimizer (as Lowering creates them): Adam "m", "v" (+ "vhat" with amsgrad), SGD "momentum"
// when momentum != 0, RMSprop "rms" (+ "momentum", "mg" when centered), Adagrad "accumulator".
std::vector<std::string> optimizerSlotNames(const schema::Config &optimizer);

// Writes a model file (`.fgcm`: the architecture, every parameter and, with `state`, the
// optimizer slots of every trainable parameter and the step count), the file a generated
// class's save() writes and load() restores, atomically. The state's optimizer must be the
// graph's training optimizer; slots the state lacks are written as zeros (counted in
// `zeroFilled`).
Status saveModelFile(const Graph &graph, const OptimizerState *state, const std::string &path,
                     int64_t *zeroFilled = nullptr);

} // namespace fgc
