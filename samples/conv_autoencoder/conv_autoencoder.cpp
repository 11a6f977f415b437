// The seed's convolutional autoencoder, in both of its forms.
//
// 1. One stack of layers shared by two models: `encoder` (img -> 16 values) and `autoencoder`
//    (img -> 28x28x1), written as shared_encoder.pbtxt and shared_autoencoder.pbtxt.
// 2. Separate `encoder` and `decoder` models, each called like a layer inside `autoencoder`
//    (nested models), written as encoder.pbtxt, decoder.pbtxt and model.pbtxt.
#include "../sample_main.h"

using namespace fgc::keras;

int runSample(const std::string &outDir) {
  {
    auto encoderInput = Input({28, 28, 1}, {.name = "img"});
    auto x = layers::Conv2D(16, 3, {.activation = "relu"})(encoderInput);
    x = layers::Conv2D(32, 3, {.activation = "relu"})(x);
    x = layers::MaxPooling2D(3)(x);
    x = layers::Conv2D(32, 3, {.activation = "relu"})(x);
    x = layers::Conv2D(16, 3, {.activation = "relu"})(x);
    auto encoderOutput = layers::GlobalMaxPooling2D()(x);
    Model encoder(encoderInput, encoderOutput, "encoder");
    encoder.summary();

    x = layers::Reshape({4, 4, 1})(encoderOutput);
    x = layers::Conv2DTranspose(16, 3, {.activation = "relu"})(x);
    x = layers::Conv2DTranspose(32, 3, {.activation = "relu"})(x);
    x = layers::UpSampling2D(3)(x);
    x = layers::Conv2DTranspose(16, 3, {.activation = "relu"})(x);
    auto decoderOutput = layers::Conv2DTranspose(1, 3, {.activation = "relu"})(x);
    Model autoencoder(encoderInput, decoderOutput, "autoencoder");
    autoencoder.summary();
    encoder.save(outDir + "/shared_encoder.pbtxt");
    autoencoder.save(outDir + "/shared_autoencoder.pbtxt");
  }

  auto encoderInput = Input({28, 28, 1}, {.name = "original_img"});
  auto x = layers::Conv2D(16, 3, {.activation = "relu"})(encoderInput);
  x = layers::Conv2D(32, 3, {.activation = "relu"})(x);
  x = layers::MaxPooling2D(3)(x);
  x = layers::Conv2D(32, 3, {.activation = "relu"})(x);
  x = layers::Conv2D(16, 3, {.activation = "relu"})(x);
  auto encoderOutput = layers::GlobalMaxPooling2D()(x);
  Model encoder(encoderInput, encoderOutput, "encoder");

  auto decoderInput = Input({16}, {.name = "encoded_img"});
  x = layers::Reshape({4, 4, 1})(decoderInput);
  x = layers::Conv2DTranspose(16, 3, {.activation = "relu"})(x);
  x = layers::Conv2DTranspose(32, 3, {.activation = "relu"})(x);
  x = layers::UpSampling2D(3)(x);
  x = layers::Conv2DTranspose(16, 3, {.activation = "relu"})(x);
  auto decoderOutput = layers::Conv2DTranspose(1, 3, {.activation = "relu"})(x);
  Model decoder(decoderInput, decoderOutput, "decoder");

  auto autoencoderInput = Input({28, 28, 1}, {.name = "img"});
  auto encodedImg = encoder(autoencoderInput);
  auto decodedImg = decoder(encodedImg);
  Model autoencoder(autoencoderInput, decodedImg, "autoencoder");
  autoencoder.summary();

  autoencoder.compile({.optimizer = optimizers::Adam(), .loss = {{"", losses::MeanSquaredError()}}});
  encoder.save(outDir + "/encoder.pbtxt");
  decoder.save(outDir + "/decoder.pbtxt");
  autoencoder.save(outDir + "/model.pbtxt");
  plot_model(autoencoder, outDir + "/model.png", {.show_shapes = true, .expand_nested = true});
  return 0;
}
