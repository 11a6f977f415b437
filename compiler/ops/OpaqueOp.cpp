// Opaque custom ops (see OpaqueOp.h). Lowering passes the kernel and its tensors to the
// runtime's fgc_custom_call, which hands the kernel one fgc_custom_args struct.
#include "compiler/ops/OpaqueOp.h"

#include "compiler/ops/OpHelpers.h"

#include <cctype>
#include <cmath>
#include <set>

namespace fgc::ops {

namespace {

bool isCIdentifier(const std::string &s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])))
    return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
      return false;
  return true;
}

std::vector<double> attrValues(const OpaqueOpSpec &spec, const Attrs &a) {
  std::vector<double> v;
  for (const auto &[name, def] : spec.attrs)
    v.push_back(a.f(name));
  return v;
}

// The call of kernel `symbol` through fgc_custom_call. `grads`: the backward call, with the output
// gradients and the input gradient buffers to write (-1: none).
KernelCall customCall(LowerContext &ctx, const OpaqueOpSpec &spec, const std::string &symbol,
                      const std::vector<int> *outputGrads, const std::vector<int> *inputGrads) {
  Arg fn;
  fn.kind = Arg::Kind::Function;
  fn.enumName = symbol;
  Arg ins, outs, ranks, dims;
  ins.kind = outs.kind = Arg::Kind::BufferList;
  outs.mutableList = true;
  ranks.kind = dims.kind = Arg::Kind::SizeList;
  auto addShape = [&](const std::vector<Dim> &shape) {
    ranks.sizes.push_back(SymSize::constant(int64_t(shape.size())));
    for (size_t k = 0; k < shape.size(); ++k)
      dims.sizes.push_back(SymSize::product(shape, k, k + 1));
  };
  for (size_t i = 0; i < ctx.numInputs(); ++i) {
    ins.buffers.push_back(ctx.input(i));
    addShape(ctx.inShape(i));
  }
  for (size_t i = 0; i < ctx.numOutputs(); ++i) {
    outs.buffers.push_back(ctx.output(i));
    addShape(ctx.outShape(i));
  }
  std::vector<double> attrs = attrValues(spec, ctx.attrs());
  Arg attrArg = ctx.null();
  if (!attrs.empty()) {
    attrArg.kind = Arg::Kind::FloatList;
    attrArg.floats = attrs;
  }
  if (dims.sizes.empty()) // rank-0 tensors only: the runtime accepts a null list
    dims = ctx.null();
  Arg dOuts = ctx.null(), dIns = ctx.null();
  if (outputGrads) {
    dOuts.kind = Arg::Kind::BufferList;
    dOuts.buffers = *outputGrads;
    dIns.kind = Arg::Kind::BufferList;
    dIns.mutableList = true;
    dIns.buffers = *inputGrads;
  }
  return kernel("fgc_custom_call",
                     {fn, ctx.i64(int64_t(ctx.numInputs())), ins, ctx.i64(int64_t(ctx.numOutputs())),
                      outs, ranks, dims, ctx.i64(int64_t(attrs.size())), attrArg, dOuts, dIns});
}

} // namespace

Expected<OpDef> opaqueOpDef(OpaqueOpSpec spec) {
  if (spec.className.empty())
    return Error("an opaque op needs a name");
  if (!isCIdentifier(spec.forward))
    return Error::format("opaque op '{}': the forward kernel must be a C function name, got '{}'",
                         spec.className, spec.forward);
  if (!spec.backward.empty() && !isCIdentifier(spec.backward))
    return Error::format("opaque op '{}': the backward kernel must be a C function name, got '{}'",
                         spec.className, spec.backward);
  if (spec.numInputs < 1 || spec.numOutputs < 1 ||
      spec.numInputs + spec.numOutputs > FGC_CUSTOM_MAX_TENSORS)
    return Error::format("opaque op '{}': needs 1 or more inputs and outputs, {} in all at most "
                         "(got {} and {})",
                         spec.className, FGC_CUSTOM_MAX_TENSORS, spec.numInputs, spec.numOutputs);
  std::set<std::string> seen;
  for (const auto &[name, def] : spec.attrs)
    if (name.empty() || !seen.insert(name).second || !std::isfinite(def))
      return Error::format("opaque op '{}': attribute '{}' is empty, repeated or has a default "
                           "that is not finite",
                           spec.className, name);

  OpDef d;
  d.className = spec.className;
  d.summary = fmt::format("An opaque custom op: kernel {}{}.", spec.forward,
                          spec.backward.empty() ? " (no gradient)" : ", backward " + spec.backward);
  for (const auto &[name, def] : spec.attrs)
    d.attrs.push_back(floatAttr(name, def));
  d.minInputs = d.maxInputs = spec.numInputs;
  d.pure = !spec.stateful;
  d.inferTypes = [spec](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    std::vector<std::vector<Dim>> shapes;
    std::set<Dim> symbols;
    for (size_t i = 0; i < ctx.inputs.size(); ++i) {
      if (ctx.input(i).dtype != schema::FLOAT32)
        return ctx.error("input {} must be float32, got {}", i, dtypeName(ctx.input(i).dtype));
      shapes.push_back(ctx.input(i).shape);
      for (Dim x : ctx.input(i).shape)
        if (isDynamic(x))
          symbols.insert(x);
    }
    std::vector<double> attrs = attrValues(spec, ctx.attrs());
    for (size_t k = 0; k < attrs.size(); ++k)
      if (!std::isfinite(attrs[k]))
        return ctx.error("attribute '{}' must be finite, got {}", spec.attrs[k].first, attrs[k]);
    std::vector<std::vector<Dim>> outShapes;
    if (spec.shape) {
      auto r = spec.shape(shapes, attrs);
      if (!r) {
        std::string inputs;
        for (size_t i = 0; i < ctx.inputs.size(); ++i)
          inputs += (i ? ", " : "") + ctx.describeInput(i);
        return ctx.error("shape function: {} (inputs {})", r.error().message(), inputs);
      }
      outShapes = r.take();
    } else {
      outShapes.assign(size_t(spec.numOutputs), shapes[0]);
    }
    if (outShapes.size() != size_t(spec.numOutputs))
      return ctx.error("the shape function returned {} shapes for {} outputs", outShapes.size(),
                       spec.numOutputs);
    std::vector<TensorType> out;
    for (const auto &s : outShapes) {
      for (Dim x : s)
        if (x == 0 || (isDynamic(x) && !symbols.count(x)))
          return ctx.error("the shape function returned {}: a dimension is 0 or an unknown "
                           "size not taken from an input",
                           shapeToString(s));
      out.push_back(TensorType{schema::FLOAT32, s});
    }
    return out;
  };
  d.lower = [spec](LowerContext &ctx) -> Status {
    ctx.call(customCall(ctx, spec, spec.forward, nullptr, nullptr));
    return Status::ok();
  };
  d.gradient = [spec](LowerContext &ctx) -> Status {
    std::vector<int> dIns, dOuts;
    bool any = false;
    for (size_t i = 0; i < ctx.numInputs(); ++i) {
      dIns.push_back(ctx.dIn(i));
      any |= dIns.back() >= 0;
    }
    if (!any)
      return Status::ok();
    if (spec.backward.empty())
      return Error::format("layer '{}' ({}): opaque op '{}' has no backward kernel, so a model "
                           "that needs its gradient cannot be trained; register one "
                           "(OpaqueOp::backward) or compile for inference only",
                           ctx.layerPath(), spec.className, spec.className);
    for (size_t i = 0; i < ctx.numOutputs(); ++i)
      dOuts.push_back(ctx.dOut(i));
    // The kernel overwrites its input gradients; where another consumer already wrote one, it
    // writes a buffer of its own that is then added.
    std::vector<std::pair<int, int>> adds; // (kernel's buffer, gradient buffer)
    std::vector<int> targets = dIns;
    for (size_t i = 0; i < dIns.size(); ++i)
      if (dIns[i] >= 0 && ctx.inFlag(i)) {
        int tmp = ctx.newBuffer(fmt::format("dpart{}", i), schema::FLOAT32, ctx.inShape(i));
        adds.push_back({tmp, dIns[i]});
        targets[i] = tmp;
      }
    ctx.call(customCall(ctx, spec, spec.backward, &dOuts, &targets));
    for (const auto &[tmp, g] : adds)
      ctx.call(kernel("fgc_scale_add", {ctx.buf(tmp), ctx.f32(1.0), ctx.buf(g),
                                             ctx.size(ctx.buffer(g).elements())}));
    return Status::ok();
  };
  return d;
}

} // namespace fgc::ops
