// The list of built-in op families, registered into the global registry in one place.
#include "compiler/ir/OpRegistry.h"

namespace fgc {
namespace ops {
void registerCoreOps(OpRegistry &r);
void registerConvolutionOps(OpRegistry &r);
void registerPoolingOps(OpRegistry &r);
void registerRecurrentOps(OpRegistry &r);
void registerMergeOps(OpRegistry &r);
void registerNormalizationOps(OpRegistry &r);
void registerModelOps(OpRegistry &r);
void registerConvolution1DOps(OpRegistry &r);
void registerReshapingOps(OpRegistry &r);
void registerAdvancedOps(OpRegistry &r);
void registerBidirectional(OpRegistry &r);
void registerAttentionOps(OpRegistry &r);
void registerTensorOps(OpRegistry &r);
void registerScan(OpRegistry &r);
void registerTensorIndexingOps(OpRegistry &r);
} // namespace ops

void registerBuiltinOps(OpRegistry &r) {
  ops::registerCoreOps(r);          // InputLayer, Dense, Activation, Softmax, Dropout, Flatten, Reshape
  ops::registerConvolutionOps(r);   // Conv2D, Conv2DTranspose
  ops::registerPoolingOps(r);       // Max/AveragePooling2D, Global*Pooling, UpSampling2D
  ops::registerRecurrentOps(r);     // Embedding, LSTM, GRU
  ops::registerMergeOps(r);         // Concatenate, Add, Average
  ops::registerNormalizationOps(r); // BatchNormalization
  ops::registerModelOps(r);         // Functional, Sequential (nested models)
  ops::registerConvolution1DOps(r); // Conv1D, Max/AveragePooling1D, GlobalMaxPooling1D
  ops::registerReshapingOps(r);     // ZeroPadding2D, Cropping2D, Permute
  ops::registerAdvancedOps(r);      // LeakyReLU, SpatialDropout2D
  ops::registerBidirectional(r);    // Bidirectional (LSTM, GRU)
  ops::registerAttentionOps(r);     // Attention
  ops::registerTensorOps(r);        // custom layers' primitives: Variable, MatMul, Binary*, ...
  ops::registerTensorIndexingOps(r); // ... and Transpose, Gather
  ops::registerScan(r);             // Scan: a loop over a sequence (ops::scan in custom layers)
}

} // namespace fgc
