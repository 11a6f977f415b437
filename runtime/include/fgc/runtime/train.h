// Keras-style training loops for generated models: fit, evaluate, predict in batches, History,
// callbacks and the progress bar.
//
// A generated model class implements `Trainable` (one training step and one test step on a batch,
// reporting per-batch values of its losses and metrics); everything around the steps — batching,
// shuffling, validation split, epoch averages, printing, callbacks — is here, compiled once.
// Semantics follow tf.keras 2.x: `validation_split` takes the last fraction of the arrays before
// shuffling; epoch values are means over samples (each batch weighted by its size); the progress
// bar is Keras's (`750/750 [==============================] - 5s 5ms/step - loss: 0.3438 -
// accuracy: 0.9035`), live on a terminal and one line per epoch otherwise.
#ifndef FGC_RUNTIME_TRAIN_H
#define FGC_RUNTIME_TRAIN_H

#include "fgc/runtime/model.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace fgc::rt {

// Arrays of samples: every tensor's first dimension is the sample axis.
struct Dataset {
  std::vector<Tensor> inputs;  // in the model's input order
  std::vector<Tensor> targets; // in the model's output order (one per output with a loss)

  // Number of samples; throws Error if the tensors disagree.
  int64_t size() const;
  // Samples [begin, end) in the given order (`order` empty: identity), copied into `out`
  // (reusing its tensors' storage).
  void gather(const std::vector<int64_t> &order, int64_t begin, int64_t end, Dataset &out) const;
  // The last `fraction` of the samples and the rest, as Keras's validation_split.
  std::pair<Dataset, Dataset> splitTail(double fraction) const;
};

// What fit/evaluate need from a model.
class Trainable {
public:
  virtual ~Trainable() = default;
  // Names of the values a step reports, in order: "loss" first, then per-output losses of
  // multi-output models ("priority_loss"), then metrics ("accuracy", "department_accuracy").
  virtual std::vector<std::string> logNames() const = 0;
  // One optimizer step on a batch; writes the batch's value of each log into `logs`.
  virtual void trainStep(const Tensor *inputs, const Tensor *targets, double *logs) = 0;
  // Losses and metrics on a batch, no update (inference behaviour: no dropout, moving BN stats).
  virtual void testStep(const Tensor *inputs, const Tensor *targets, double *logs) = 0;
  // Predictions for a batch.
  virtual void predictBatch(const Tensor *inputs, Tensor *outputs) = 0;
  virtual int numOutputs() const = 0;
  // Writes the model (architecture, weights, optimizer state, epoch) atomically, for
  // checkpoints. May throw Error.
  virtual void save(const std::string &path) const = 0;
  // fit reports each completed epoch (epochsCompleted = epoch index + 1) before the callbacks'
  // onEpochEnd, so that a checkpoint records it.
  virtual void setEpoch(int /*epochsCompleted*/) {}
};

using Logs = std::map<std::string, double>;

class Callback {
public:
  virtual ~Callback() = default;
  virtual void onTrainBegin() {}
  virtual void onEpochBegin(int /*epoch*/) {}
  virtual void onTrainBatchEnd(int64_t /*batch*/, const Logs & /*logs*/) {}
  virtual void onEpochEnd(int /*epoch*/, const Logs & /*logs*/) {}
  virtual void onTrainEnd() {}
  // Set by a callback to end training after the current epoch (or batch).
  bool stopTraining = false;
  // Filled in by fit before training.
  Trainable *model = nullptr;
};

// Keras's EarlyStopping: stop when `monitor` has not improved by min_delta for `patience`
// epochs ("val_loss" by default; mode from the name: *acc* maximizes, otherwise minimizes).
class EarlyStopping : public Callback {
public:
  explicit EarlyStopping(std::string monitor = "val_loss", int patience = 0, double minDelta = 0);
  void onTrainBegin() override;
  void onEpochEnd(int epoch, const Logs &logs) override;
  int stoppedEpoch() const { return stoppedEpoch_; }

private:
  std::string monitor_;
  int patience_;
  double minDelta_;
  bool maximize_;
  double best_ = 0;
  int wait_ = 0;
  int stoppedEpoch_ = -1;
  bool seen_ = false;
};

// Keras's ModelCheckpoint: saves after each epoch, or only when `monitor` improved. `path` may
// contain "{epoch}" (1-based, zero-padded to 2 digits as Keras's {epoch:02d}).
class ModelCheckpoint : public Callback {
public:
  explicit ModelCheckpoint(std::string path, std::string monitor = "val_loss",
                           bool saveBestOnly = false);
  void onEpochEnd(int epoch, const Logs &logs) override;

private:
  std::string path_, monitor_;
  bool saveBestOnly_, maximize_;
  bool seen_ = false;
  double best_ = 0;
};

// Keras's CSVLogger: one row per epoch ("epoch,loss,...").
class CSVLogger : public Callback {
public:
  explicit CSVLogger(std::string path);
  void onEpochEnd(int epoch, const Logs &logs) override;

private:
  std::string path_;
  std::vector<std::string> columns_;
  std::string text_;
};

// Keras's TerminateOnNaN: stops as soon as a batch loss is NaN or infinite.
class TerminateOnNaN : public Callback {
public:
  void onTrainBatchEnd(int64_t batch, const Logs &logs) override;
};

// A user-supplied callback from lambdas (Keras's LambdaCallback).
class LambdaCallback : public Callback {
public:
  std::function<void(int)> epochBegin;
  std::function<void(int, const Logs &)> epochEnd;
  std::function<void(int64_t, const Logs &)> batchEnd;
  void onEpochBegin(int epoch) override {
    if (epochBegin)
      epochBegin(epoch);
  }
  void onEpochEnd(int epoch, const Logs &logs) override {
    if (epochEnd)
      epochEnd(epoch, logs);
  }
  void onTrainBatchEnd(int64_t batch, const Logs &logs) override {
    if (batchEnd)
      batchEnd(batch, logs);
  }
};

// Per-epoch values of every log, as Keras's History.
struct History {
  std::vector<std::string> names; // in the order Keras prints them
  std::map<std::string, std::vector<double>> values;
  std::vector<int> epochs;

  void writeCsv(const std::string &path) const;  // atomically
  void writeJson(const std::string &path) const; // {"loss": [...], ...}, atomically
};

struct FitOptions {
  int64_t batchSize = 32;
  int epochs = 1;
  double validationSplit = 0.0;
  const Dataset *validationData = nullptr; // overrides validationSplit
  bool shuffle = true;
  uint64_t shuffleSeed = 0;
  int initialEpoch = 0;
  // 0 silent, 1 progress bar (live on a terminal, one line per epoch otherwise), 2 one line per
  // epoch.
  int verbose = 1;
  std::vector<Callback *> callbacks;
  std::ostream *out = nullptr; // default std::cout
  // Force the progress bar's terminal mode (-1: detect from the stream being stdout on a tty).
  int liveProgress = -1;
};

// Trains `model`; throws Error for inconsistent data (naming the tensors and their sizes) and
// when a loss becomes NaN or infinite (naming the epoch, the batch and the last finite loss).
History fit(Trainable &model, const Dataset &data, const FitOptions &options);

// Mean losses and metrics over `data` (Keras's evaluate): {name: value}.
Logs evaluate(Trainable &model, const Dataset &data, int64_t batchSize = 32, int verbose = 1,
              std::ostream *out = nullptr);

// Predictions over all samples, in batches.
std::vector<Tensor> predict(Trainable &model, const std::vector<Tensor> &inputs,
                            int64_t batchSize = 32);

// A deterministic permutation of [0, n) from a seed (Fisher-Yates driven by splitmix64).
std::vector<int64_t> shuffledOrder(int64_t n, uint64_t seed);

// Keras's number formatting in progress lines: 4 decimals, or scientific for tiny values.
std::string formatLogValue(double v);

} // namespace fgc::rt

#endif // FGC_RUNTIME_TRAIN_H
