// The seed's training recipe on real data, in generated C++ with no framework at run time:
// samples/mnist_mlp/model.pbtxt compiled by fgc (fgc_add_model), trained with RMSprop, batch 64,
// 2 epochs, validation_split 0.2, then evaluated on the test set, as the seed does:
//
//   model.fit(x_train, y_train, batch_size=64, epochs=2, validation_split=0.2)
//   test_scores = model.evaluate(x_test, y_test, verbose=2)
//
// Data: Fashion-MNIST from Debian's dataset-fashion-mnist (60,000 training and 10,000 test
// images, the layout of keras.datasets), scaled to [0, 1] and flattened to 784 values.
//
//   mnist_train [--data DIR] [--epochs N] [--out DIR]
#include "mnist_model.h"

#include <fgc/runtime/data.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

int main(int argc, char **argv) {
  std::string dataDir = fgc::rt::FashionMnistDir, outDir = "out";
  int epochs = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--data")
      dataDir = argv[i + 1];
    else if (flag == "--epochs")
      epochs = std::atoi(argv[i + 1]);
    else if (flag == "--out")
      outDir = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: %s [--data DIR] [--epochs N] [--out DIR]\n", argv[0]);
      return 1;
    }
  }
  try {
    fgc::rt::LoadOptions pixels;
    pixels.toFloat = true;
    pixels.scale = 1.0 / 255.0;
    pixels.reshape = {-1, 784};
    auto train = fgc::rt::loadFashionMnist(dataDir, true, pixels);
    auto test = fgc::rt::loadFashionMnist(dataDir, false, pixels);
    std::cout << "Fashion-MNIST: " << train.images.shape()[0] << " training and "
              << test.images.shape()[0] << " test images from " << dataDir << "\n";

    fgc::rt::Dataset trainData, testData;
    trainData.inputs.push_back(std::move(train.images));
    trainData.targets.push_back(fgc::rt::convertTensor(train.labels, fgc::rt::DType::Float32));
    testData.inputs.push_back(std::move(test.images));
    testData.targets.push_back(fgc::rt::convertTensor(test.labels, fgc::rt::DType::Float32));

    mnist_model::MnistModel model;
    fgc::rt::FitOptions options;
    options.batchSize = 64;
    options.epochs = epochs;
    options.validationSplit = 0.2;
    options.shuffleSeed = 1;
    fgc::rt::History history = model.fit(trainData, options);

    fgc::rt::Logs scores = model.evaluate(testData, 32, 2);
    std::printf("Test Loss: %.17g\nTest Acc: %.17g\n", scores.at("loss"), scores.at("accuracy"));

    std::filesystem::create_directories(outDir);
    std::string saved = outDir + "/mnist_mlp_trained.fgcm";
    model.save(saved);
    history.writeCsv(outDir + "/mnist_mlp_history.csv");
    std::cout << "Saved the trained model to " << saved << " (`fgc summary " << saved
              << "`; continue training with model.load(\"" << saved
              << "\")) and the history to " << outDir << "/mnist_mlp_history.csv\n";
  } catch (const std::exception &e) {
    std::fprintf(stderr, "mnist_train: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
