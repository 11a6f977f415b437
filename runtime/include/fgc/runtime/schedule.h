// Learning-rate schedules (keras.optimizers.schedules) as generated training code and the JIT
// evaluate them: one definition of the rule "a rate set in code wins, else the schedule's value
// at the step, else the configured constant".
#ifndef FGC_RUNTIME_SCHEDULE_H
#define FGC_RUNTIME_SCHEDULE_H

#include <cstdint>

namespace fgc::rt {

// A learning-rate schedule of the optimizer step (keras.optimizers.schedules) as a training
// config defines it; generated code and the JIT both evaluate it with learningRate() below.
struct LearningRateSchedule {
  enum Kind { Constant, ExponentialDecay, CosineDecay };
  Kind kind = Constant;
  double initial = 0, decaySteps = 0, decayRate = 0, alpha = 0;
  bool staircase = false;
  static LearningRateSchedule exponentialDecay(double initial, double decaySteps,
                                               double decayRate, bool staircase) {
    LearningRateSchedule s;
    s.kind = ExponentialDecay;
    s.initial = initial;
    s.decaySteps = decaySteps;
    s.decayRate = decayRate;
    s.staircase = staircase;
    return s;
  }
  static LearningRateSchedule cosineDecay(double initial, double decaySteps, double alpha) {
    LearningRateSchedule s;
    s.kind = CosineDecay;
    s.initial = initial;
    s.decaySteps = decaySteps;
    s.alpha = alpha;
    return s;
  }
};

// The learning rate of the update after `step` optimizer steps: `current` when it was set in
// code (`set`) or there is no schedule, otherwise the schedule's value at `step`. Throws Error
// naming the model for schedule arguments the runtime rejects.
double learningRate(const char *model, const LearningRateSchedule &schedule, double current,
                    bool set, int64_t step);

} // namespace fgc::rt

#endif // FGC_RUNTIME_SCHEDULE_H
