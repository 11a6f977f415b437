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

} // namespace fgc
