// The seed's shared layer: one Embedding (1000 words -> 128 values) used by two text inputs,
// so both inputs are encoded with the same weights. The model returns both encodings.
#include "../sample_main.h"

using namespace fgc::keras;

int runSample(const std::string &outDir) {
  auto sharedEmbedding = layers::Embedding(1000, 128);

  auto textInputA = Input({None}, {.dtype = "int32"});
  auto textInputB = Input({None}, {.dtype = "int32"});

  auto encodedInputA = sharedEmbedding(textInputA);
  auto encodedInputB = sharedEmbedding(textInputB);

  Model model({textInputA, textInputB}, {encodedInputA, encodedInputB}, "shared_embedding");
  model.summary();
  model.save(outDir + "/model.pbtxt");
  plot_model(model, outDir + "/model.png", {.show_shapes = true});
  return 0;
}
