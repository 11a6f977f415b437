// Liveness of arena tensors over a function's kernel calls (see MemoryPlan.h).
#include "compiler/memory/MemoryPlan.h"

#include "fgc/runtime/arena.h"

#include <algorithm>

namespace fgc {

namespace {

bool inArena(const Buffer &b) {
  return b.kind == Buffer::Kind::Activation || (b.kind == Buffer::Kind::Input && b.indexInput);
}

size_t alignUp(size_t n) { return (n + 63) / 64 * 64; }

} // namespace

int MemoryPlan::slotOf(int buffer) const {
  for (size_t i = 0; i < slots.size(); ++i)
    if (slots[i].kind == ArenaSlot::Kind::Buffer && slots[i].buffer == buffer)
      return int(i);
  return -1;
}

MemoryPlan planMemory(const KernelProgram &p, bool training, bool reuse) {
  MemoryPlan plan;
  plan.training = training;
  plan.reuse = reuse;
  const std::vector<Step> &steps = training ? p.trainSteps : p.steps;
  // First and last call touching each root buffer.
  std::map<int, std::pair<int, int>> range;
  std::vector<ArenaSlot> scratch;
  int at = 0;
  std::vector<int> ids;
  for (size_t i = 0; i < steps.size(); ++i) {
    plan.callIndex.push_back(at);
    for (size_t c = 0; c < steps[i].calls.size(); ++c, ++at) {
      const KernelCall &k = steps[i].calls[c];
      ids.clear();
      for (const Arg &a : k.args)
        buffersOf(a, ids);
      for (const Arg &a : k.scratchArgs)
        buffersOf(a, ids);
      for (int id : ids) {
        int r = rootOf(p, id);
        auto [it, fresh] = range.emplace(r, std::make_pair(at, at));
        if (!fresh)
          it->second.second = at;
      }
      if (!k.scratchFunction.empty()) {
        ArenaSlot s;
        s.kind = ArenaSlot::Kind::Scratch;
        s.step = int(i);
        s.call = int(c);
        s.first = s.last = at;
        scratch.push_back(s);
      }
    }
  }
  plan.numCalls = at;
  // What trainStep leaves for its caller (the step's gradients, gradientData()) stays alive to
  // the end of the function.
  if (training)
    for (const std::vector<int> *v : {&p.paramGradients, &p.inputGradients})
      for (int id : *v)
        if (id >= 0)
          if (auto it = range.find(rootOf(p, id)); it != range.end())
            it->second.second = std::max(it->second.second, at - 1);
  // Buffers in declaration order, then scratch in call order.
  for (size_t id = 0; id < p.buffers.size(); ++id) {
    const Buffer &b = p.buffers[id];
    if (b.training != training || !inArena(b))
      continue;
    ArenaSlot s;
    s.buffer = int(id);
    auto it = range.find(int(id));
    if (it != range.end())
      s.first = it->second.first, s.last = it->second.second;
    else
      s.used = b.kind == Buffer::Kind::Input;
    // Index staging is filled while binding the inputs, before the first call.
    if (b.kind == Buffer::Kind::Input)
      s.first = 0;
    plan.slots.push_back(s);
  }
  plan.slots.insert(plan.slots.end(), scratch.begin(), scratch.end());
  if (!reuse)
    for (ArenaSlot &s : plan.slots)
      s.first = 0, s.last = std::max(0, plan.numCalls - 1);
  return plan;
}

int64_t evaluateSize(const SymSize &size, const std::vector<int64_t> &symbols) {
  int64_t v = size.coeff;
  for (Dim d : size.symbols)
    v *= symbols.at(size_t(-1 - d));
  return v;
}

ArenaFigures evaluateArena(const KernelProgram &p, const MemoryPlan &plan,
                           const std::vector<int64_t> &symbols) {
  ArenaFigures f;
  std::vector<int32_t> live;
  for (const ArenaSlot &s : plan.slots) {
    size_t bytes = 0;
    if (!s.used) {
    } else if (s.kind == ArenaSlot::Kind::Buffer && p.buffers[size_t(s.buffer)].sizeFunction.empty()) {
      const Buffer &b = p.buffers[size_t(s.buffer)];
      bytes = alignUp(dtypeSize(b.dtype) * size_t(evaluateSize(b.elements(), symbols)));
    } else {
      ++f.unknownSlots;
    }
    f.sizes.push_back(bytes);
    live.push_back(s.first);
    live.push_back(s.last);
  }
  rt::ArenaPlan placer;
  placer.place(f.sizes.data(), reinterpret_cast<const int32_t(*)[2]>(live.data()),
               int(f.sizes.size()));
  f.offsets = placer.offsets();
  f.arenaBytes = placer.bytes();
  f.lowerBound = placer.lowerBound();
  f.naiveBytes = placer.naiveBytes();
  f.validation = placer.validate();
  return f;
}

} // namespace fgc
