// The registry's storage (see OpRegistry.h). Built-in ops register from compiler/ops/AllOps.cpp.
#include "compiler/ir/OpRegistry.h"

namespace fgc {

void registerBuiltinOps(OpRegistry &registry); // compiler/ops/AllOps.cpp

OpRegistry &OpRegistry::global() {
  static OpRegistry *registry = [] {
    auto *r = new OpRegistry();
    registerBuiltinOps(*r);
    return r;
  }();
  return *registry;
}

std::string OpContext::describeInput(size_t i) const {
  std::string s = shapeToString(inputs[i].shape);
  if (i < inputSources.size() && !inputSources[i].empty())
    s += " from '" + inputSources[i] + "'";
  return s;
}

Expected<std::vector<TensorType>> inferLayerCall(Layer &layer, const OpContext &ctx,
                                                 const std::string &callName) {
  const OpDef &def = *layer.def;
  int n = static_cast<int>(ctx.inputs.size());
  if (n < def.minInputs || (def.maxInputs >= 0 && n > def.maxInputs)) {
    std::string expected = def.maxInputs < 0 ? fmt::format("at least {}", def.minInputs)
                           : def.minInputs == def.maxInputs
                               ? std::to_string(def.minInputs)
                               : fmt::format("{} to {}", def.minInputs, def.maxInputs);
    return Error::format("{} takes {} input(s), got {}", callName, expected, n);
  }
  if (def.trace && !layer.subgraph) {
    auto body = def.trace(layer, ctx.inputs);
    if (!body)
      return body.error();
    layer.subgraph = body.take();
  }
  if (def.loopBody && !layer.body) {
    auto body = def.loopBody(layer);
    if (!body)
      return body.error();
    layer.body = body.take();
  }
  auto types = def.inferTypes(ctx);
  if (!types || !def.params)
    return types;
  std::vector<ParamSpec> specs = def.params(ctx);
  if (layer.params.empty()) {
    for (auto &s : specs) {
      Param p;
      p.name = s.name;
      p.type = TensorType{schema::FLOAT32, s.shape};
      p.trainable = s.trainable;
      p.initializer = s.initializer;
      layer.params.push_back(std::move(p));
    }
    layer.builtFor = ctx.inputs.empty() ? std::vector<Dim>{} : ctx.inputs[0].shape;
    return types;
  }
  for (size_t i = 0; i < specs.size() && i < layer.params.size(); ++i)
    if (specs[i].shape != layer.params[i].type.shape)
      return Error::format("{} is shared, and its weights were built for input {}, but it is "
                           "called on {}: weight '{}' would be {} instead of {}",
                           callName, shapeToString(layer.builtFor), ctx.describeInput(0),
                           specs[i].name, shapeToString(specs[i].shape),
                           shapeToString(layer.params[i].type.shape));
  return types;
}

void OpRegistry::add(OpDef def) {
  def.attrs.push_back(boolAttr("trainable", true));
  def.attrs.push_back(stringAttr("dtype", "float32"));
  std::string name = def.className;
  defs_[name] = std::move(def);
}

const OpDef *OpRegistry::find(const std::string &className) const {
  auto it = defs_.find(className);
  return it == defs_.end() ? nullptr : &it->second;
}

std::vector<std::string> OpRegistry::classNames() const {
  std::vector<std::string> names;
  for (const auto &[k, v] : defs_)
    names.push_back(k);
  return names;
}

void OpRegistry::addKernelAddress(const std::string &symbol, void *address) {
  if (address)
    kernels_[symbol] = address;
}

} // namespace fgc
