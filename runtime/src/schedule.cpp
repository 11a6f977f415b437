#include "fgc/runtime/schedule.h"

#include "fgc/runtime/kernels.h"
#include "fgc/runtime/model.h"
#include "fgc/runtime/optim.h"

namespace fgc::rt {

double learningRate(const char *model, const LearningRateSchedule &schedule, double current,
                    bool set, int64_t step) {
  if (set || schedule.kind == LearningRateSchedule::Constant)
    return current;
  double lr = 0;
  int status = schedule.kind == LearningRateSchedule::ExponentialDecay
                   ? fgc_lr_exponential_decay(schedule.initial, schedule.decaySteps,
                                              schedule.decayRate, schedule.staircase ? 1 : 0,
                                              step, &lr)
                   : fgc_lr_cosine_decay(schedule.initial, schedule.decaySteps, schedule.alpha,
                                         step, &lr);
  if (status != FGC_OK)
    kernelFailed(model, "optimizer", status);
  return lr;
}

} // namespace fgc::rt
