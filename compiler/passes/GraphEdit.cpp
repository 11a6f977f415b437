// Graph editing helpers shared by the passes (see Pass.h).
#include "compiler/passes/Pass.h"

namespace fgc {

void replaceAllUses(Graph &g, const Value *from, Value *to) {
  for (auto &op : g.ops)
    for (Value *&v : op->inputs)
      if (v == from)
        v = to;
  for (Value *&v : g.outputs)
    if (v == from)
      v = to;
}

std::map<int, std::vector<size_t>> stepsUsing(const KernelProgram &p,
                                              const std::vector<Step> &steps) {
  std::map<int, std::vector<size_t>> uses;
  std::vector<int> ids;
  for (size_t i = 0; i < steps.size(); ++i)
    for (const KernelCall &k : steps[i].calls) {
      ids.clear();
      for (const Arg &a : k.args)
        buffersOf(a, ids);
      for (const Arg &a : k.scratchArgs)
        buffersOf(a, ids);
      for (int id : ids) {
        auto &u = uses[rootOf(p, id)];
        if (u.empty() || u.back() != i)
          u.push_back(i);
      }
    }
  return uses;
}

void replaceBuffer(Arg &a, int from, int to) {
  if (a.kind == Arg::Kind::Buffer && a.buffer == from)
    a.buffer = to;
  for (int &id : a.buffers)
    if (id == from)
      id = to;
  for (Arg &f : a.fields)
    replaceBuffer(f, from, to);
}

} // namespace fgc
