// fgc's JIT: a model compiled in-process through LLVM and run at once, with the same surface as
// the class `fgc compile` generates (predict, trainStep, fit, evaluate, save / load).
//
//   auto model = fgc::jit::compile("model.pbtxt");          // or a schema::Model, a keras::Model
//   std::vector<fgc::rt::Tensor> y = model->predict({x});
//   model->fit(data, options);                               // fgc::rt::fit, progress bar and all
//   model->save("trained.fgcm");                             // the file generated code writes
//
// The model goes through the same passes, lowering and memory plan as `fgc compile`; the glue
// between kernels (sizes, arena offsets, parameter structs, status checks) is LLVM IR optimized
// for the host CPU, the kernels are the runtime library's. No compiler runs, no file is written.
// Failures throw fgc::rt::Error with one message naming the file, layer and shapes.
#pragma once

#include <fgc/runtime/arena.h>
#include <fgc/runtime/model.h>
#include <fgc/runtime/train.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fgc::schema {
class Model;
}
namespace fgc::keras {
class Model;
}

namespace fgc::jit {

struct Options {
  int optLevel = 2;                         // fgc's -O level (passes, memory reuse)
  std::vector<std::string> disabledPasses;  // --disable-pass
  std::vector<std::string> outputs;         // --outputs: keep only these outputs
  bool inferenceOnly = false;               // no training code even if the model has a loss
  bool inputGradients = false;              // trainStep also computes dLoss/dInput
  std::string optimizer;                    // override the training config's optimizer
  double learningRate = 0;                  // > 0: override the learning rate
  std::string dumpLlvmIr;                   // write the optimized LLVM module to this file
  // The weights: a .fgcw weights file or a saved model file, read straight into the model's
  // weight buffer (huge pages where the system allows). The seed's initializers do not run and
  // the model's own weights (inline or its weights_file) are not read. A model file that names
  // a weights_file, or is itself a saved model file, has its weights read the same way without
  // this option.
  std::string weightsFile;
  // LLVM: 0 no IR passes; 1 the glue pipeline (SROA, EarlyCSE, InstCombine, SimplifyCFG), both
  // with fast instruction selection; 2 / 3 LLVM's O2 / O3 pipelines and code generators. The
  // glue only calls kernels: 1 runs as fast as 2 and compiles ~4x faster.
  int llvmOptLevel = 1;
};

class Code; // the compiled functions and the model's tables, shared by models built from them

class Model : public rt::Trainable {
public:
  ~Model() override;
  // Another model of the same compiled code, with the initial weights and no training state.
  std::unique_ptr<Model> fresh() const;

  const std::string &name() const;
  int numInputs() const;
  int numOutputs() const override;
  const std::vector<std::string> &inputNames() const;
  const std::vector<std::string> &outputNames() const;
  // Shapes with -1 for None.
  std::vector<int64_t> inputShape(int i) const;
  std::vector<int64_t> outputShape(int i) const;
  // Float32, or Int32 for an input read only by Embedding (int64 and float32 accepted too).
  rt::DType inputDType(int i) const;
  // Whether output i has a loss (and so takes a target in trainStep / fit).
  bool hasLoss(int i) const;
  int64_t parameterCount() const;
  bool hasTraining() const;
  static void setNumThreads(int n);
  // Seconds spent compiling (lowering, LLVM IR, optimization and machine code).
  double compileSeconds() const;
  // Of which LLVM (building, optimizing and compiling the IR).
  double llvmSeconds() const;
  // Where compileSeconds went, phase by phase in order: load, weights (the initializers; absent
  // when the weights come from a file), schema, graph passes, lowering, training lowering,
  // program passes, memory plan, weight buffer (copied from the model) or weights file (read
  // into it), tables, LLVM IR, LLVM target, LLVM optimization, machine code.
  const std::vector<std::pair<std::string, double>> &compilePhases() const;

  // Inputs in the model's input order; outputs resized and overwritten (no allocation once
  // large enough). Throws rt::Error for inputs of the wrong shape or type, naming them.
  void predict(const rt::Tensor *inputs, rt::Tensor *outputs);
  std::vector<rt::Tensor> predict(const std::vector<rt::Tensor> &inputs);
  std::map<std::string, rt::Tensor> predict(const std::map<std::string, rt::Tensor> &inputs);

  // Weights: "layer/name", shape, values; .fgcw files.
  int numWeights() const;
  std::string weightName(int i) const;
  std::vector<int64_t> weightShape(int i) const;
  const float *weightData(int i) const;
  float *mutableWeightData(int i);
  void load_weights(const std::string &path);
  void save_weights(const std::string &path) const;
  // The model file (architecture, weights and, with training, optimizer state and counters),
  // the same file generated code writes and reads.
  void save(const std::string &path) const override;
  void load(const std::string &path);

  // --- training (hasTraining()) ---
  std::vector<std::string> logNames() const override;
  void trainStep(const rt::Tensor *inputs, const rt::Tensor *targets, double *logs) override;
  void testStep(const rt::Tensor *inputs, const rt::Tensor *targets, double *logs) override;
  void predictBatch(const rt::Tensor *inputs, rt::Tensor *outputs) override {
    predict(inputs, outputs);
  }
  void setEpoch(int epochsCompleted) override { epoch_ = epochsCompleted; }
  int epoch() const { return epoch_; }
  rt::History fit(const rt::Dataset &data, const rt::FitOptions &options) {
    return rt::fit(*this, data, options);
  }
  rt::Logs evaluate(const rt::Dataset &data, int64_t batchSize = 32, int verbose = 1) {
    return rt::evaluate(*this, data, batchSize, verbose);
  }
  double learningRate() const;
  void setLearningRate(double lr) {
    learningRate_ = lr;
    learningRateSet_ = true;
  }
  void setDropoutEnabled(bool enabled) { dropoutEnabled_ = enabled; }
  int64_t step() const { return step_; }
  // The last trainStep's gradients (nullptr: frozen weight, or no input gradients compiled).
  const float *gradientData(int i) const;
  const float *inputGradientData(int i) const;

  const rt::ArenaPlan &arenaPlan() const { return arenaPlan_; }
  const rt::ArenaPlan &trainArenaPlan() const { return trainArenaPlan_; }

private:
  friend class Code;
  explicit Model(std::shared_ptr<const Code> code);
  void initialState(std::vector<float> &state) const;
  std::shared_ptr<const Code> code_;
  rt::Weights weights_;
  rt::Arena arena_, trainArena_;
  rt::ArenaPlan arenaPlan_, trainArenaPlan_;
  std::vector<float> state_;
  std::vector<float> derived_; // computed from the weights (weight steps) ...
  uint64_t derivedVersion_ = 0; // ... for this weights_.version()
  int64_t step_ = 0;
  int epoch_ = 0;
  double learningRate_ = 0;
  bool learningRateSet_ = false;
  bool dropoutEnabled_ = true;
  std::vector<rt::Tensor> testOutputs_;
  std::vector<const float *> gradients_;
  std::vector<int64_t> symbols_;
  std::vector<size_t> sizes_;
  std::vector<const void *> inputPointers_;
  std::vector<void *> outputPointers_;
  std::vector<float *> paramPointers_;
  std::vector<const float *> targetPointers_;
};

// Compiles a model file (.pb, .pbtxt, a saved model file; weights from the file or its seed).
std::unique_ptr<Model> compile(const std::string &path, const Options &options = {});
// Compiles an in-memory model (weights from the model or its seed); `name` is used in messages.
std::unique_ptr<Model> compile(const schema::Model &model, const Options &options = {},
                               const std::string &name = "<model>");
// Compiles a model built with the functional API (weights from its seed, as it would save).
std::unique_ptr<Model> compile(const keras::Model &model, const Options &options = {});

} // namespace fgc::jit
