// What the recurrent layers (LSTM, GRU) and the Bidirectional wrapper share: each class's
// config specs, weights and shape rules as functions of a config, and the emission of its
// runtime kernels (forward, training forward, backprop through time) for given buffers. The
// layers' registry entries and Bidirectional's are thin users of these, so a wrapped layer is
// compiled exactly like the layer on its own.
#pragma once

#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

// One recurrent layer class and its runtime kernels (fgc_<kernelPrefix>, _forward_train, ...).
struct RecurrentKind {
  std::string className;    // "LSTM", "GRU"
  int numStates;            // 2 (h, c) or 1 (h)
  std::string kernelPrefix; // "fgc_lstm", "fgc_gru"
  int gates;                // 4 or 3 blocks of units in the kernels
};
// The kind of `className`, or nullptr when it is not a recurrent layer fgc can run.
const RecurrentKind *recurrentKind(const std::string &className);

// The config specs of LSTM / GRU (Keras names and defaults).
std::vector<AttrSpec> recurrentAttrs(const RecurrentKind &k);

// Checks a config and the (batch, steps, features) input of one direction; `inputs` are the
// call's inputs (the sequence, then initial states when given). Errors name ctx's layer.
Status checkRecurrent(const OpContext &ctx, const RecurrentKind &k, const Attrs &a,
                      const std::vector<TensorType> &inputs, const std::string &what = "");
// The main output (sequence or last state) and, with return_state, the final states.
std::vector<TensorType> recurrentOutputs(const RecurrentKind &k, const Attrs &a,
                                         const TensorType &input);
// The weights Keras's build() creates, named `prefix` + kernel / recurrent_kernel / bias.
std::vector<ParamSpec> recurrentParams(const RecurrentKind &k, const Attrs &a, int64_t inputDim,
                                       const std::string &prefix = "");

// The buffers of one direction's kernel call.
struct RecurrentBuffers {
  int input = -1; // (batch, steps, features) in the order the cell reads it
  int kernel = -1, recurrentKernel = -1, bias = -1;
  std::vector<int> initialStates; // empty: zeros
  int output = -1;
  std::vector<int> finalStates; // empty: not wanted
};
// The forward: inference when ctx is not training, else the training forward whose workspace
// is saved under `workspaceKey`.
Status emitRecurrentForward(LowerContext &ctx, const RecurrentKind &k, const Attrs &a,
                            const RecurrentBuffers &b, const std::string &workspaceKey);

// Gradient buffers of one direction's backward (-1: none). dFinalStates and dInitialStates
// have numStates entries or none.
struct RecurrentGrads {
  int dOutput = -1;
  std::vector<int> dFinalStates;
  int dInput = -1;
  std::vector<int> dInitialStates;
  int dKernel = -1, dRecurrentKernel = -1, dBias = -1;
  bool accumulateInput = false; // dInput and dInitialStates are added into
};
Status emitRecurrentBackward(LowerContext &ctx, const RecurrentKind &k, const Attrs &a,
                             const RecurrentBuffers &b, const std::string &workspaceKey,
                             const RecurrentGrads &g);

// Training a recurrent layer with dropout or recurrent_dropout is not implemented: an error
// naming the layer rather than training without it.
Status checkTrainable(const LowerContext &ctx, const Attrs &a);

// fgc_reverse_sequence from buffer `from` into a new buffer named `suffix`, returned.
int emitReverse(LowerContext &ctx, int from, const std::string &suffix);
// An int field of a kernel parameter struct.
Arg intField(int64_t v);

} // namespace fgc::ops
