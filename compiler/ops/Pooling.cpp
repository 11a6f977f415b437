// Pooling and resampling layers: Max/AveragePooling2D, global pooling 1D/2D, UpSampling2D.
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

static void registerPool2D(OpRegistry &r, const std::string &cls, const std::string &what) {
  OpDef d;
  std::string fn = cls == "MaxPooling2D" ? "fgc_max_pool2d" : "fgc_avg_pool2d";
  auto params = [](LowerContext &ctx) {
    auto a = ctx.attrs();
    const auto &in = ctx.inShape(0);
    auto p = a.ints("pool_size");
    auto s = a.isNone("strides") ? p : a.ints("strides");
    if (s.size() == 1)
      s.push_back(s[0]);
    Arg params;
    params.kind = Arg::Kind::Struct;
    params.structType = "fgc_pool2d_params";
    params.fields = {ctx.size(ctx.dim(in, 0)), ctx.size(ctx.dim(in, 1)), ctx.size(ctx.dim(in, 2)),
                     ctx.size(ctx.dim(in, 3)), ctx.i64(p[0]), ctx.i64(p[1]), ctx.i64(s[0]),
                     ctx.i64(s[1]), ctx.padding(a.s("padding"))};
    return params;
  };
  bool isMax = cls == "MaxPooling2D";
  d.gradient = [params, isMax](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    if (isMax)
      ctx.call(kernel("fgc_max_pool2d_backward", {params(ctx), ctx.buf(ctx.input(0)),
                                                  ctx.buf(ctx.dOut(0)), ctx.buf(dx), ctx.flags()}));
    else
      ctx.call(kernel("fgc_avg_pool2d_backward",
                      {params(ctx), ctx.buf(ctx.dOut(0)), ctx.buf(dx), ctx.flags()}));
    return Status::ok();
  };
  d.lower = [fn, params](LowerContext &ctx) -> Status {
    ctx.call(kernel(fn, {params(ctx), ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0))}));
    return Status::ok();
  };
  d.className = cls;
  d.summary = what + " over windows of pool_size; strides default to pool_size.";
  d.attrs = {intsAttr("pool_size", {2, 2}, 2), nullableInts("strides"),
             stringAttr("padding", "valid", {"valid", "same"}),
             stringAttr("data_format", "channels_last", {"channels_last"})};
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    FGC_TRY(expectRank(ctx, 0, 4, "(batch, height, width, channels)"));
    auto a = ctx.attrs();
    auto p = a.ints("pool_size");
    auto s = a.isNone("strides") ? p : a.ints("strides");
    if (s.size() == 1)
      s.push_back(s[0]);
    if (s.size() != 2)
      return ctx.error("strides must have 2 values, got {}", attrToString(a.get("strides")));
    for (int i = 0; i < 2; ++i)
      if (p[i] <= 0 || s[i] <= 0 || p[i] > kMaxWindow || s[i] > kMaxWindow)
        return ctx.error("pool_size {} and strides {} must be between 1 and {}",
                         attrToString(a.get("pool_size")), attrToString(a.get("strides")),
                         kMaxWindow);
    TensorType out = ctx.input();
    for (int i = 0; i < 2; ++i) {
      out.shape[1 + i] = convOutputLength(out.shape[1 + i], p[i], a.s("padding"), s[i]);
      if (!isDynamic(out.shape[1 + i]) && out.shape[1 + i] <= 0)
        return ctx.error("input {} is smaller than pool_size {} with padding 'valid'",
                         ctx.describeInput(0), attrToString(a.get("pool_size")));
    }
    return std::vector<TensorType>{out};
  };
  r.add(std::move(d));
}

static void registerGlobalPool(OpRegistry &r, const std::string &cls, size_t rank,
                               const std::string &what) {
  OpDef d;
  std::string fn = cls == "GlobalMaxPooling2D"       ? "fgc_global_max_pool2d"
                   : cls == "GlobalAveragePooling2D" ? "fgc_global_avg_pool2d"
                                                     : "fgc_global_avg_pool1d";
  d.gradient = [cls, rank](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    const auto &in = ctx.inShape(0);
    std::vector<Arg> args;
    std::string g;
    if (cls == "GlobalMaxPooling2D") {
      g = "fgc_global_max_pool2d_backward";
      args = {ctx.buf(ctx.input(0)), ctx.buf(ctx.dOut(0)), ctx.buf(dx)};
    } else {
      g = rank == 4 ? "fgc_global_avg_pool2d_backward" : "fgc_global_avg_pool1d_backward";
      args = {ctx.buf(ctx.dOut(0)), ctx.buf(dx)};
    }
    for (size_t k = 0; k < rank; ++k)
      args.push_back(ctx.size(ctx.dim(in, int(k))));
    args.push_back(ctx.flags());
    ctx.call(kernel(g, args));
    return Status::ok();
  };
  d.lower = [fn, rank](LowerContext &ctx) -> Status {
    const auto &in = ctx.inShape(0);
    std::vector<Arg> args = {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0))};
    for (size_t k = 0; k < rank; ++k)
      args.push_back(ctx.size(ctx.dim(in, int(k))));
    ctx.call(kernel(fn, args)); // keepdims only changes the shape, not the data
    return Status::ok();
  };
  d.className = cls;
  d.summary = what;
  d.attrs = {stringAttr("data_format", "channels_last", {"channels_last"}),
             boolAttr("keepdims", false)};
  d.inferTypes = [rank](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    FGC_TRY(expectRank(ctx, 0, rank,
                       rank == 4 ? "(batch, height, width, channels)" : "(batch, steps, features)"));
    TensorType out = ctx.input();
    if (ctx.attrs().b("keepdims")) {
      for (size_t i = 1; i + 1 < rank; ++i)
        out.shape[i] = 1;
    } else {
      out.shape = {out.shape.front(), out.shape.back()};
    }
    return std::vector<TensorType>{out};
  };
  r.add(std::move(d));
}

static void registerUpSampling2D(OpRegistry &r) {
  OpDef d;
  d.className = "UpSampling2D";
  d.summary = "Repeats rows and columns by `size` (nearest) or interpolates (bilinear).";
  d.attrs = {intsAttr("size", {2, 2}, 2),
             stringAttr("data_format", "channels_last", {"channels_last"}),
             stringAttr("interpolation", "nearest", {"nearest", "bilinear"})};
  d.lower = [](LowerContext &ctx) -> Status {
    const auto &in = ctx.inShape(0);
    auto size = ctx.attrs().ints("size");
    bool bilinear = ctx.attrs().s("interpolation") == "bilinear";
    ctx.call(kernel("fgc_upsampling2d",
                    {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)), ctx.size(ctx.dim(in, 0)),
                     ctx.size(ctx.dim(in, 1)), ctx.size(ctx.dim(in, 2)), ctx.size(ctx.dim(in, 3)),
                     ctx.i64(size[0]), ctx.i64(size[1]),
                     bilinear ? ctx.enumValue("FGC_INTERP_BILINEAR", 1)
                              : ctx.enumValue("FGC_INTERP_NEAREST", 0)}));
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    const auto &in = ctx.inShape(0);
    auto size = ctx.attrs().ints("size");
    bool bilinear = ctx.attrs().s("interpolation") == "bilinear";
    ctx.call(kernel("fgc_upsampling2d_backward",
                    {ctx.buf(ctx.dOut(0)), ctx.buf(dx), ctx.size(ctx.dim(in, 0)),
                     ctx.size(ctx.dim(in, 1)), ctx.size(ctx.dim(in, 2)), ctx.size(ctx.dim(in, 3)),
                     ctx.i64(size[0]), ctx.i64(size[1]),
                     bilinear ? ctx.enumValue("FGC_INTERP_BILINEAR", 1)
                              : ctx.enumValue("FGC_INTERP_NEAREST", 0),
                     ctx.flags()}));
    return Status::ok();
  };
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    FGC_TRY(expectRank(ctx, 0, 4, "(batch, height, width, channels)"));
    auto size = ctx.attrs().ints("size");
    if (size[0] <= 0 || size[1] <= 0 || size[0] > kMaxWindow || size[1] > kMaxWindow)
      return ctx.error("size must be between 1 and {}, got {}", kMaxWindow,
                       attrToString(ctx.attrs().get("size")));
    TensorType out = ctx.input();
    for (int i = 0; i < 2; ++i)
      out.shape[1 + i] = isDynamic(out.shape[1 + i]) ? kUnknownDim : out.shape[1 + i] * size[i];
    return std::vector<TensorType>{out};
  };
  r.add(std::move(d));
}

void registerPoolingOps(OpRegistry &r) {
  registerPool2D(r, "MaxPooling2D", "Maximum");
  registerPool2D(r, "AveragePooling2D", "Average");
  registerGlobalPool(r, "GlobalMaxPooling2D", 4, "Maximum over height and width.");
  registerGlobalPool(r, "GlobalAveragePooling2D", 4, "Mean over height and width.");
  registerGlobalPool(r, "GlobalAveragePooling1D", 3, "Mean over the steps axis.");
  registerUpSampling2D(r);
}

} // namespace fgc::ops
