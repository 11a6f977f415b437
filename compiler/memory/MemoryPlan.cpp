// Liveness of arena tensors over a function's kernel calls (see MemoryPlan.h).
#include "compiler/memory/MemoryPlan.h"

#include "fgc/runtime/arena.h"
#include "fgc/runtime/grad.h"
#include "fgc/runtime/kernels.h"

#include <algorithm>

namespace fgc {

namespace {

bool inArena(const Buffer &b) {
  return b.kind == Buffer::Kind::Activation || (b.kind == Buffer::Kind::Input && b.indexInput);
}

size_t alignUp(size_t n) { return (n + 63) / 64 * 64; }

int64_t valueOf(const Arg &a, const std::vector<int64_t> &symbols) {
  return a.kind == Arg::Kind::Size ? evaluateSize(a.size, symbols) : a.intValue;
}

// Floats of scratch a call needs, from the runtime's own size function, for the calls whose
// arguments the compiler can rebuild exactly; -1 otherwise.
int64_t scratchFloats(const KernelCall &k, const std::vector<int64_t> &symbols) {
  auto convParams = [&](const Arg &a, fgc_conv2d_params &p) {
    if (a.kind != Arg::Kind::Struct || a.structType != "fgc_conv2d_params" || a.fields.size() != 13)
      return false;
    int64_t *ints[] = {&p.batch,    &p.in_h,     &p.in_w,       &p.in_c,
                       &p.kernel_h, &p.kernel_w, &p.out_c,      &p.stride_h,
                       &p.stride_w, &p.dilation_h, &p.dilation_w};
    for (size_t i = 0; i < 11; ++i)
      *ints[i] = valueOf(a.fields[i], symbols);
    p.padding = fgc_padding(a.fields[11].intValue);
    p.activation = fgc_activation_kind(a.fields[12].intValue);
    return true;
  };
  using ConvSize = size_t (*)(const fgc_conv2d_params *);
  static const std::map<std::string, ConvSize> conv = {
      {"fgc_conv2d_scratch_size", &fgc_conv2d_scratch_size},
      {"fgc_conv2d_transpose_scratch_size", &fgc_conv2d_transpose_scratch_size},
      {"fgc_conv2d_backward_scratch_size", &fgc_conv2d_backward_scratch_size},
      {"fgc_conv2d_transpose_backward_scratch_size", &fgc_conv2d_transpose_backward_scratch_size}};
  if (auto it = conv.find(k.scratchFunction); it != conv.end() && k.scratchArgs.empty()) {
    fgc_conv2d_params p{};
    return convParams(k.args[0], p) ? int64_t(it->second(&p)) : -1;
  }
  if (k.scratchFunction == "fgc_dense_backward_scratch_size" && k.scratchArgs.size() == 4)
    return int64_t(fgc_dense_backward_scratch_size(
        valueOf(k.scratchArgs[0], symbols), valueOf(k.scratchArgs[1], symbols),
        valueOf(k.scratchArgs[2], symbols), fgc_activation_kind(k.scratchArgs[3].intValue)));
  return -1;
}

} // namespace

int MemoryPlan::slotOf(int buffer) const {
  for (auto it = inPlace.find(buffer); it != inPlace.end(); it = inPlace.find(buffer))
    buffer = it->second;
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
  // In place: at a call that allows it, the output joins the slot of an input of the same size
  // and type dying there (the group's range grows to cover the output's). Only arena tensors
  // that are not views, and not with reuse off (-O0).
  std::map<int, int> group; // buffer -> the group's first buffer
  auto groupOf = [&](int id) {
    while (group.count(id))
      id = group.at(id);
    return id;
  };
  if (reuse) {
    at = 0;
    for (const Step &st : steps)
      for (const KernelCall &k : st.calls) {
        int here = at++;
        if (k.inPlaceOutput < 0 || k.args[size_t(k.inPlaceOutput)].kind != Arg::Kind::Buffer)
          continue;
        int out = k.args[size_t(k.inPlaceOutput)].buffer;
        const Buffer &ob = p.buffers[size_t(out)];
        if (ob.kind != Buffer::Kind::Activation || !ob.sizeFunction.empty() || !range.count(out) ||
            range[out].first != here || group.count(out))
          continue;
        ids.clear();
        for (size_t a = 0; a < k.args.size(); ++a)
          if (int(a) != k.inPlaceOutput)
            buffersOf(k.args[a], ids);
        for (int in : ids) {
          int r = rootOf(p, in);
          const Buffer &ib = p.buffers[size_t(r)];
          int g = groupOf(r);
          if (r == out || ib.kind != Buffer::Kind::Activation || !ib.sizeFunction.empty() ||
              ib.dtype != ob.dtype || !(ib.elements() == ob.elements()) ||
              range.at(g).second != here)
            continue;
          group[out] = g;
          range.at(g).second = range[out].second;
          plan.inPlace[out] = g;
          break;
        }
      }
  }
  // Buffers in declaration order, then scratch in call order.
  for (size_t id = 0; id < p.buffers.size(); ++id) {
    const Buffer &b = p.buffers[id];
    if (b.training != training || !inArena(b) || plan.inPlace.count(int(id)))
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
    } else if (s.kind == ArenaSlot::Kind::Scratch) {
      const auto &steps = plan.training ? p.trainSteps : p.steps;
      int64_t floats = scratchFloats(steps[size_t(s.step)].calls[size_t(s.call)], symbols);
      ++f.unknownSlots; // the arena figures leave scratch out
      f.scratchUnknown += floats < 0;
      ++f.scratchCalls;
      size_t scratch = floats > 0 ? alignUp(sizeof(float) * size_t(floats)) : 0;
      f.scratchPeak = std::max(f.scratchPeak, scratch);
      f.scratchSum += scratch;
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
