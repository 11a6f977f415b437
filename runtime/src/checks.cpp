// Parameter checks shared by the forward kernels and their gradients (see common.h).
#include "common.h"

namespace fgc::runtime::detail {

int checkConvParams(const char *name, const fgc_conv2d_params *p) {
  FGC_CHECK_PTR(name, p);
  FGC_CHECK_POSITIVE(name, p->batch);
  FGC_CHECK_POSITIVE(name, p->in_h);
  FGC_CHECK_POSITIVE(name, p->in_w);
  FGC_CHECK_POSITIVE(name, p->in_c);
  FGC_CHECK_POSITIVE(name, p->kernel_h);
  FGC_CHECK_POSITIVE(name, p->kernel_w);
  FGC_CHECK_POSITIVE(name, p->out_c);
  FGC_CHECK_POSITIVE(name, p->stride_h);
  FGC_CHECK_POSITIVE(name, p->stride_w);
  FGC_CHECK_POSITIVE(name, p->dilation_h);
  FGC_CHECK_POSITIVE(name, p->dilation_w);
  if (p->padding != FGC_PADDING_VALID && p->padding != FGC_PADDING_SAME)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: unknown padding %d", name,
                static_cast<int>(p->padding));
  FGC_CHECK_ACTIVATION(name, p->activation);
  return FGC_OK;
}

int checkPoolParams(const char *name, const fgc_pool2d_params *p) {
  FGC_CHECK_PTR(name, p);
  FGC_CHECK_POSITIVE(name, p->batch);
  FGC_CHECK_POSITIVE(name, p->in_h);
  FGC_CHECK_POSITIVE(name, p->in_w);
  FGC_CHECK_POSITIVE(name, p->channels);
  FGC_CHECK_POSITIVE(name, p->pool_h);
  FGC_CHECK_POSITIVE(name, p->pool_w);
  FGC_CHECK_POSITIVE(name, p->stride_h);
  FGC_CHECK_POSITIVE(name, p->stride_w);
  if (p->padding != FGC_PADDING_VALID && p->padding != FGC_PADDING_SAME)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: unknown padding %d", name,
                static_cast<int>(p->padding));
  if (fgc_conv_output_length(p->in_h, p->pool_h, p->stride_h, 1, p->padding) < 1 ||
      fgc_conv_output_length(p->in_w, p->pool_w, p->stride_w, 1, p->padding) < 1)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: the %lldx%lld pool does not fit the %lldx%lld input",
                name, static_cast<long long>(p->pool_h), static_cast<long long>(p->pool_w),
                static_cast<long long>(p->in_h), static_cast<long long>(p->in_w));
  return FGC_OK;
}

} // namespace fgc::runtime::detail
