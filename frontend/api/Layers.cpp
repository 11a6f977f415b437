// Layer constructors of the functional API: Keras's arguments -> the op registry's configs.
//
// Each constructor only translates its option struct into a config; validation, defaults and
// shapes come from the op's registry entry, so a layer made here and one read from a file are
// the same thing.
#include "frontend/api/KerasInternal.h"

namespace fgc::keras::layers {

using detail::makeLayer;

namespace {

ConfigValue ints(const IntTuple &t) { return makeInts(t.values); }

ConfigValue init(const Initializer &i) {
  return makeObject(i.className, AttrMap(i.config.begin(), i.config.end()));
}

Layer make(const std::string &cls, Config c, const std::string &name, bool trainable = true) {
  c["trainable"] = makeBool(trainable);
  return Layer(makeLayer(cls, std::move(c), name));
}

// Conv2D(filters, 3) means a 3x3 kernel: Keras broadcasts a single int to both dimensions.
ConfigValue pair(const IntTuple &t) {
  if (t.values.size() == 1)
    return makeInts({t.values[0], t.values[0]});
  return ints(t);
}

} // namespace

Layer Dense(int64_t units, const DenseOptions &o) {
  return make("Dense",
              {{"units", makeInt(units)},
               {"activation", makeString(o.activation)},
               {"use_bias", makeBool(o.use_bias)},
               {"kernel_initializer", init(o.kernel_initializer)},
               {"bias_initializer", init(o.bias_initializer)}},
              o.name, o.trainable);
}

Layer Activation(const std::string &activation, const CommonOptions &o) {
  return make("Activation", {{"activation", makeString(activation)}}, o.name, o.trainable);
}

Layer Softmax(const SoftmaxOptions &o) { return make("Softmax", {{"axis", makeInt(o.axis)}}, o.name); }

Layer Dropout(double rate, const DropoutOptions &o) {
  Config c = {{"rate", makeFloat(rate)}};
  if (o.seed)
    c["seed"] = makeInt(*o.seed);
  return make("Dropout", c, o.name);
}

Layer Flatten(const CommonOptions &o) { return make("Flatten", {}, o.name, o.trainable); }

Layer Reshape(std::vector<int64_t> targetShape, const CommonOptions &o) {
  return make("Reshape", {{"target_shape", makeInts(targetShape)}}, o.name, o.trainable);
}

static Config convConfig(int64_t filters, const IntTuple &kernel, const ConvOptions &o) {
  return {{"filters", makeInt(filters)},
          {"kernel_size", pair(kernel)},
          {"strides", pair(o.strides)},
          {"padding", makeString(o.padding)},
          {"dilation_rate", pair(o.dilation_rate)},
          {"activation", makeString(o.activation)},
          {"use_bias", makeBool(o.use_bias)},
          {"kernel_initializer", init(o.kernel_initializer)},
          {"bias_initializer", init(o.bias_initializer)}};
}

Layer Conv2D(int64_t filters, IntTuple kernelSize, const ConvOptions &o) {
  Config c = convConfig(filters, kernelSize, o);
  c["groups"] = makeInt(o.groups);
  return make("Conv2D", c, o.name, o.trainable);
}

Layer Conv2DTranspose(int64_t filters, IntTuple kernelSize, const ConvOptions &o) {
  Config c = convConfig(filters, kernelSize, o);
  if (o.output_padding)
    c["output_padding"] = pair(*o.output_padding);
  return make("Conv2DTranspose", c, o.name, o.trainable);
}

static Layer pool(const std::string &cls, const IntTuple &size, const PoolOptions &o) {
  Config c = {{"pool_size", pair(size)}, {"padding", makeString(o.padding)}};
  if (o.strides)
    c["strides"] = pair(*o.strides);
  return make(cls, c, o.name);
}

Layer MaxPooling2D(IntTuple poolSize, const PoolOptions &o) { return pool("MaxPooling2D", poolSize, o); }
Layer AveragePooling2D(IntTuple poolSize, const PoolOptions &o) {
  return pool("AveragePooling2D", poolSize, o);
}

Layer GlobalMaxPooling2D(const GlobalPoolOptions &o) {
  return make("GlobalMaxPooling2D", {{"keepdims", makeBool(o.keepdims)}}, o.name);
}
Layer GlobalAveragePooling2D(const GlobalPoolOptions &o) {
  return make("GlobalAveragePooling2D", {{"keepdims", makeBool(o.keepdims)}}, o.name);
}
Layer GlobalAveragePooling1D(const GlobalPoolOptions &o) {
  return make("GlobalAveragePooling1D", {{"keepdims", makeBool(o.keepdims)}}, o.name);
}

Layer UpSampling2D(IntTuple size, const UpSamplingOptions &o) {
  return make("UpSampling2D",
              {{"size", pair(size)}, {"interpolation", makeString(o.interpolation)}}, o.name);
}

Layer Embedding(int64_t inputDim, int64_t outputDim, const EmbeddingOptions &o) {
  Config c = {{"input_dim", makeInt(inputDim)},
              {"output_dim", makeInt(outputDim)},
              {"embeddings_initializer", init(o.embeddings_initializer)},
              {"mask_zero", makeBool(o.mask_zero)}};
  if (o.input_length)
    c["input_length"] = makeInt(*o.input_length);
  return make("Embedding", c, o.name, o.trainable);
}

Layer LSTM(int64_t units, const LSTMOptions &o) {
  return make("LSTM",
              {{"units", makeInt(units)},
               {"activation", makeString(o.activation)},
               {"recurrent_activation", makeString(o.recurrent_activation)},
               {"use_bias", makeBool(o.use_bias)},
               {"kernel_initializer", init(o.kernel_initializer)},
               {"recurrent_initializer", init(o.recurrent_initializer)},
               {"bias_initializer", init(o.bias_initializer)},
               {"unit_forget_bias", makeBool(o.unit_forget_bias)},
               {"dropout", makeFloat(o.dropout)},
               {"recurrent_dropout", makeFloat(o.recurrent_dropout)},
               {"return_sequences", makeBool(o.return_sequences)},
               {"return_state", makeBool(o.return_state)},
               {"go_backwards", makeBool(o.go_backwards)}},
              o.name, o.trainable);
}

Layer Concatenate(const ConcatenateOptions &o) {
  return make("Concatenate", {{"axis", makeInt(o.axis)}}, o.name);
}
Layer Add(const CommonOptions &o) { return make("Add", {}, o.name, o.trainable); }
Layer Average(const CommonOptions &o) { return make("Average", {}, o.name, o.trainable); }

Layer BatchNormalization(const BatchNormalizationOptions &o) {
  return make("BatchNormalization",
              {{"axis", makeInt(o.axis)},
               {"momentum", makeFloat(o.momentum)},
               {"epsilon", makeFloat(o.epsilon)},
               {"center", makeBool(o.center)},
               {"scale", makeBool(o.scale)}},
              o.name, o.trainable);
}

Tensor concatenate(const std::vector<Tensor> &inputs, const ConcatenateOptions &o) {
  return Concatenate(o)(inputs);
}
Tensor add(const std::vector<Tensor> &inputs, const CommonOptions &o) { return Add(o)(inputs); }
Tensor average(const std::vector<Tensor> &inputs, const CommonOptions &o) {
  return Average(o)(inputs);
}

} // namespace fgc::keras::layers
