// A model built with the functional API, JIT-compiled in-process and trained at once: no fgc
// run at build time, no C++ compiler, no files written. The seed's MNIST model and recipe
// (RMSprop, batch 64, validation_split 0.2) on Fashion-MNIST (Debian's dataset-fashion-mnist).
//
//   sample_jit_train [--data DIR] [--epochs N] [--samples N] [--min-accuracy A]
//
// --samples trains on the first N training images only (the ctest uses a slice); the exit code
// is 1 when the test accuracy stays below --min-accuracy.
#include <fgc/jit.h>
#include <fgc/keras.h>
#include <fgc/runtime/data.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char **argv) {
  std::string dataDir = fgc::rt::FashionMnistDir;
  int epochs = 2;
  int64_t samples = 0;
  double minAccuracy = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--data")
      dataDir = argv[i + 1];
    else if (flag == "--epochs")
      epochs = std::atoi(argv[i + 1]);
    else if (flag == "--samples")
      samples = std::atoll(argv[i + 1]);
    else if (flag == "--min-accuracy")
      minAccuracy = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--data DIR] [--epochs N] [--samples N] [--min-accuracy A]\n",
                   argv[0]);
      return 1;
    }
  }
  try {
    using namespace fgc::keras;
    // The model, as in Keras.
    auto inputs = Input({784});
    auto x = layers::Dense(64, {.activation = "relu"})(inputs);
    x = layers::Dense(64, {.activation = "relu"})(x);
    auto outputs = layers::Dense(10)(x);
    Model model(inputs, outputs, "mnist_model");
    model.compile({.optimizer = optimizers::RMSprop(),
                   .loss = {{"", losses::SparseCategoricalCrossentropy({.from_logits = true})}},
                   .metrics = {"accuracy"}});

    // JIT-compiled: the same object surface as the class `fgc compile` generates.
    auto jit = fgc::jit::compile(model);
    std::printf("JIT-compiled '%s' (%lld parameters) in %.0f ms\n", jit->name().c_str(),
                static_cast<long long>(jit->parameterCount()), 1e3 * jit->compileSeconds());

    // The data: pixels scaled to [0, 1] and flattened, labels as float32.
    fgc::rt::LoadOptions pixels;
    pixels.toFloat = true;
    pixels.scale = 1.0 / 255.0;
    pixels.reshape = {-1, 784};
    auto train = fgc::rt::loadFashionMnist(dataDir, true, pixels);
    auto test = fgc::rt::loadFashionMnist(dataDir, false, pixels);
    if (samples > 0) {
      train.images = fgc::rt::sliceRows(train.images, 0, samples);
      train.labels = fgc::rt::sliceRows(train.labels, 0, samples);
    }
    fgc::rt::Dataset trainData, testData;
    trainData.inputs = {train.images};
    trainData.targets = {fgc::rt::convertTensor(train.labels, fgc::rt::DType::Float32)};
    testData.inputs = {test.images};
    testData.targets = {fgc::rt::convertTensor(test.labels, fgc::rt::DType::Float32)};

    fgc::rt::FitOptions options;
    options.batchSize = 64;
    options.epochs = epochs;
    options.validationSplit = 0.2;
    options.shuffleSeed = 1;
    jit->fit(trainData, options);
    fgc::rt::Logs scores = jit->evaluate(testData, 32, 2);
    std::printf("Test Loss: %.6f\nTest Acc: %.6f\n", scores.at("loss"), scores.at("accuracy"));
    if (scores.at("accuracy") < minAccuracy) {
      std::fprintf(stderr, "jit_train: test accuracy %.4f is below %.4f\n",
                   scores.at("accuracy"), minAccuracy);
      return 1;
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "jit_train: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
