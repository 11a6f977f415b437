// The JIT behind the generated class's interface: `generated::Model` as the test runners of
// tests/models and tests/training use it (static tables, predict, trainStep, gradients), backed by
// fgc::jit::Model. The runners are compiled once against generated code and once against this
// header, so the JIT meets the same fixtures with the same tolerances.
//
// FGC_MODEL_FILE names the model, FGC_OPT_LEVEL fgc's -O level. The code is compiled once per
// process; each generated::Model is a fresh model of it (initial weights, no training state).
#pragma once

#include <fgc/jit.h>

#include <memory>
#include <string>

namespace generated {

class Model {
public:
  static fgc::jit::Model &compiled() {
    static std::unique_ptr<fgc::jit::Model> model = [] {
      fgc::jit::Options options;
      options.optLevel = FGC_OPT_LEVEL;
      return fgc::jit::compile(FGC_MODEL_FILE, options);
    }();
    return *model;
  }

  // kNumInputs / kNumOutputs: read from the compiled model when used.
  struct Count {
    int (*get)();
    operator int() const { return get(); }
  };
  static inline const Count kNumInputs{[] { return compiled().numInputs(); }};
  static inline const Count kNumOutputs{[] { return compiled().numOutputs(); }};

  Model() : m_(compiled().fresh()) {}
  explicit Model(const std::string &) : Model() {} // weights come with the model file

  static const std::vector<std::string> &inputNames() { return compiled().inputNames(); }
  static const std::vector<std::string> &outputNames() { return compiled().outputNames(); }
  static std::vector<int64_t> inputShape(int i) { return compiled().inputShape(i); }
  static std::vector<int64_t> outputShape(int i) { return compiled().outputShape(i); }
  static int numWeights() { return compiled().numWeights(); }
  static std::string weightName(int i) { return compiled().weightName(i); }
  static std::vector<int64_t> weightShape(int i) { return compiled().weightShape(i); }

  void predict(const fgc::rt::Tensor *inputs, fgc::rt::Tensor *outputs) {
    m_->predict(inputs, outputs);
  }
  std::vector<fgc::rt::Tensor> predict(const std::vector<fgc::rt::Tensor> &inputs) {
    return m_->predict(inputs);
  }
  const fgc::rt::ArenaPlan &arenaPlan() const { return m_->arenaPlan(); }
  const fgc::rt::ArenaPlan &trainArenaPlan() const { return m_->trainArenaPlan(); }
  const float *weightData(int i) const { return m_->weightData(i); }
  float *mutableWeightData(int i) { return m_->mutableWeightData(i); }
  const float *gradientData(int i) const { return m_->gradientData(i); }
  const float *inputGradientData(int i) const { return m_->inputGradientData(i); }
  std::vector<std::string> logNames() const { return m_->logNames(); }
  void trainStep(const fgc::rt::Tensor *inputs, const fgc::rt::Tensor *targets, double *logs) {
    m_->trainStep(inputs, targets, logs);
  }
  void testStep(const fgc::rt::Tensor *inputs, const fgc::rt::Tensor *targets, double *logs) {
    m_->testStep(inputs, targets, logs);
  }
  void setDropoutEnabled(bool enabled) { m_->setDropoutEnabled(enabled); }
  void setLearningRate(double lr) { m_->setLearningRate(lr); }
  int64_t step() const { return m_->step(); }
  void save(const std::string &path) const { m_->save(path); }
  void load(const std::string &path) { m_->load(path); }

private:
  std::unique_ptr<fgc::jit::Model> m_;
};

} // namespace generated
