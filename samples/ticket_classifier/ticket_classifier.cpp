// The seed's multi-input, multi-output model: route support tickets.
//
// Inputs: the ticket's title and body (integer word sequences of any length) and 12 binary tags.
// Outputs: a priority score ("priority") and a department among 4 ("department"), trained with
// two losses weighted 1.0 and 0.2.
#include "../sample_main.h"

using namespace fgc::keras;

int runSample(const std::string &outDir) {
  const int64_t numTags = 12, numWords = 10000, numDepartments = 4;

  auto titleInput = Input({None}, {.name = "title"});
  auto bodyInput = Input({None}, {.name = "body"});
  auto tagsInput = Input({numTags}, {.name = "tags"});

  auto titleFeatures = layers::Embedding(numWords, 64)(titleInput);
  auto bodyFeatures = layers::Embedding(numWords, 64)(bodyInput);
  titleFeatures = layers::LSTM(128)(titleFeatures);
  bodyFeatures = layers::LSTM(32)(bodyFeatures);

  auto x = layers::concatenate({titleFeatures, bodyFeatures, tagsInput});
  auto priorityPred = layers::Dense(1, {.name = "priority"})(x);
  auto departmentPred = layers::Dense(numDepartments, {.name = "department"})(x);

  Model model({titleInput, bodyInput, tagsInput}, {priorityPred, departmentPred});
  model.summary();

  model.compile({.optimizer = optimizers::RMSprop(1e-3),
                 .loss = {{"priority", losses::BinaryCrossentropy({.from_logits = true})},
                          {"department", losses::CategoricalCrossentropy({.from_logits = true})}},
                 .loss_weights = {{"priority", 1.0}, {"department", 0.2}}});
  model.save(outDir + "/model.pbtxt");
  plot_model(model, outDir + "/model.png", {.show_shapes = true});
  return 0;
}
