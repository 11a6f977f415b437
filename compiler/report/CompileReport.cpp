// The compile report (see CompileReport.h): gathered once, printed as text or JSON.
#include "compiler/report/CompileReport.h"

#include "compiler/ir/OpRegistry.h"
#include "compiler/report/Summary.h"

#include <fmt/format.h>

namespace fgc {

namespace {

struct Fused {
  std::string layers, what;
};

struct ArenaLine {
  std::string function;
  ArenaFigures figures;
  int slots = 0;
};

struct Gathered {
  std::vector<Fused> fused;
  std::vector<std::string> schedule, trainSchedule;
  std::vector<ArenaLine> arenas;
  int64_t params = 0, paramBytes = 0; // of the layers the compiled program uses
  double flops = 0;
};

double opFlops(const Op &op, int64_t otherDims) {
  const Layer &l = *op.layer;
  if (l.className == "InputLayer" || (l.def && l.def->view))
    return 0;
  auto perSample = [&](const TensorType &t) {
    std::vector<int64_t> s;
    for (size_t k = 1; k < t.shape.size(); ++k)
      s.push_back(isDynamic(t.shape[k]) ? otherDims : t.shape[k]);
    return s;
  };
  OpDef::Shapes ins, outs;
  for (const Value *v : op.inputs)
    ins.push_back(perSample(v->type));
  for (const auto &v : op.outputs)
    outs.push_back(perSample(v->type));
  if (l.subgraph) {
    double n = 0;
    for (const auto &inner : l.subgraph->ops)
      n += opFlops(*inner, otherDims);
    return n;
  }
  if (l.def && l.def->flops)
    return l.def->flops(l, ins, outs);
  double n = 0;
  for (const auto &s : outs) {
    double e = 1;
    for (int64_t x : s)
      e *= double(x);
    n += e;
  }
  return n;
}

// The activation epilogue of a kernel call, when it applies one.
std::string epilogueOf(const KernelCall &k) {
  std::string found;
  auto visit = [&](const Arg &a, auto &self) -> void {
    if (a.kind == Arg::Kind::Enum && a.enumName.rfind("FGC_ACT_", 0) == 0 &&
        a.enumName != "FGC_ACT_LINEAR")
      found = a.enumName;
    for (const Arg &f : a.fields)
      self(f, self);
  };
  for (const Arg &a : k.args)
    visit(a, visit);
  return found;
}

Gathered gather(const ReportInput &in) {
  Gathered g;
  const KernelProgram &p = *in.program;
  for (const Step &st : p.steps) {
    g.schedule.push_back(st.comment);
    for (const KernelCall &k : st.calls) {
      std::string act = epilogueOf(k);
      if (!act.empty() && k.function != "fgc_activation" &&
          k.function.find("backward") == std::string::npos)
        g.fused.push_back({st.layerName, fmt::format("{} + bias + {} in one kernel ({})",
                                                     st.className, act, k.function)});
    }
  }
  for (const PassRecord &r : in.passes)
    if (r.name == "fuse-activation" || r.name == "fuse-elementwise" ||
        r.name == "fold-batch-norm")
      for (const auto &c : r.changes)
        g.fused.push_back({c.substr(0, c.find(':')), c.substr(c.find(':') + 2)});
  for (const Step &st : p.trainSteps)
    g.trainSchedule.push_back(st.comment);
  std::vector<int64_t> symbols(std::max<size_t>(p.symbolNames.size(), 1), in.otherDims);
  symbols[0] = in.batch;
  g.arenas.push_back({"predict", evaluateArena(p, *in.predictPlan, symbols),
                      int(in.predictPlan->slots.size())});
  if (in.trainPlan)
    g.arenas.push_back({"trainStep", evaluateArena(p, *in.trainPlan, symbols),
                        int(in.trainPlan->slots.size())});
  for (const auto &pp : p.params) {
    g.params += pp.param->numElements();
    g.paramBytes += pp.param->numElements() * int64_t(dtypeSize(pp.param->type.dtype));
  }
  for (const auto &op : in.graph->ops)
    g.flops += opFlops(*op, in.otherDims);
  return g;
}

std::string jsonString(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20)
      out += fmt::format("\\u{:04x}", int(c));
    else
      out += c;
  }
  return out + "\"";
}

std::string mb(size_t bytes) {
  if (bytes < 1000000)
    return fmt::format("{:.1f} KB", double(bytes) / 1e3);
  return fmt::format("{:.2f} MB", double(bytes) / 1e6);
}

} // namespace

std::string reportText(const ReportInput &in) {
  Gathered g = gather(in);
  std::string s = fmt::format("fgc compile report: model '{}' at -O{}\n\n", in.program->modelName,
                              in.optLevel);
  s += "Passes:\n";
  for (const PassRecord &r : in.passes) {
    if (!r.ran) {
      s += fmt::format("  {:<24} not run ({})\n", r.name, r.reason);
      continue;
    }
    s += fmt::format("  {:<24} {}\n", r.name,
                     r.changes.empty() ? "no change" : fmt::format("{} change(s)", r.changes.size()));
    for (const auto &c : r.changes)
      s += "    " + c + "\n";
  }
  s += "\nFused groups:\n";
  if (g.fused.empty())
    s += "  none\n";
  for (const Fused &f : g.fused)
    s += fmt::format("  {}: {}\n", f.layers, f.what);
  s += fmt::format("\nSchedule (predict, {} steps):\n", g.schedule.size());
  for (size_t i = 0; i < g.schedule.size(); ++i)
    s += fmt::format("  {:>3}  {}\n", i, g.schedule[i]);
  if (!g.trainSchedule.empty()) {
    s += fmt::format("\nSchedule (trainStep, {} steps):\n", g.trainSchedule.size());
    for (size_t i = 0; i < g.trainSchedule.size(); ++i)
      s += fmt::format("  {:>3}  {}\n", i, g.trainSchedule[i]);
  }
  s += fmt::format("\nArena at batch size {}{} (kernel scratch, sized by the runtime, not "
                   "included):\n",
                   in.batch,
                   in.program->symbolNames.size() > 1
                       ? fmt::format(", other None dimensions {}", in.otherDims)
                       : "");
  for (const ArenaLine &a : g.arenas)
    s += fmt::format("  {:<10} arena {} ({:.3f}x the lower bound {}), naive sum {}, {} "
                     "tensors{}\n",
                     a.function, mb(a.figures.arenaBytes),
                     a.figures.lowerBound ? double(a.figures.arenaBytes) / double(a.figures.lowerBound)
                                          : 1.0,
                     mb(a.figures.lowerBound), mb(a.figures.naiveBytes),
                     a.slots - a.figures.unknownSlots,
                     a.figures.validation.empty() ? "" : "; INVALID: " + a.figures.validation);
  for (const ArenaLine &a : g.arenas)
    if (a.figures.scratchCalls)
      s += fmt::format("  {:<10} kernel scratch: {} calls, at most {} at once, {} in all{}\n",
                       a.function, a.figures.scratchCalls, mb(a.figures.scratchPeak),
                       mb(a.figures.scratchSum),
                       a.figures.scratchUnknown
                           ? fmt::format(" (and {} sized only at run time: recurrent, "
                                         "attention)",
                                         a.figures.scratchUnknown)
                           : "");
  if (!in.program->weightSteps.empty())
    s += fmt::format("  derived weights (folded, kept by the model object): {}\n",
                     mb(size_t(in.program->derivedFloats) * sizeof(float)));
  s += fmt::format("\nParameters: {} ({} bytes){}\n", withThousands(g.params),
                   withThousands(g.paramBytes),
                   g.params == in.program->parameterCount
                       ? ""
                       : fmt::format(", of the model's {}: the others feed no kept output",
                                     withThousands(in.program->parameterCount)));
  s += fmt::format("FLOPs per sample: {} (a multiply-add counts 2)\n",
                   withThousands(int64_t(g.flops)));
  return s;
}

std::string reportJson(const ReportInput &in) {
  Gathered g = gather(in);
  std::string s = "{\n";
  s += fmt::format("  \"model\": {},\n  \"opt_level\": {},\n", jsonString(in.program->modelName),
                   in.optLevel);
  s += "  \"passes\": [";
  for (size_t i = 0; i < in.passes.size(); ++i) {
    const PassRecord &r = in.passes[i];
    std::string changes;
    for (const auto &c : r.changes)
      changes += (changes.empty() ? "" : ", ") + jsonString(c);
    s += fmt::format("{}\n    {{\"name\": {}, \"stage\": {}, \"ran\": {}, \"reason\": {}, "
                     "\"changes\": [{}]}}",
                     i ? "," : "", jsonString(r.name), jsonString(r.stage), r.ran ? "true" : "false",
                     jsonString(r.reason), changes);
  }
  s += "\n  ],\n  \"fused_groups\": [";
  for (size_t i = 0; i < g.fused.size(); ++i)
    s += fmt::format("{}\n    {{\"layers\": {}, \"what\": {}}}", i ? "," : "",
                     jsonString(g.fused[i].layers), jsonString(g.fused[i].what));
  auto list = [&](const std::vector<std::string> &v) {
    std::string r;
    for (size_t i = 0; i < v.size(); ++i) {
      r += i ? ",\n    " : "\n    ";
      r += jsonString(v[i]);
    }
    return r;
  };
  s += "\n  ],\n  \"schedule\": [" + list(g.schedule) + "\n  ],\n";
  s += "  \"train_schedule\": [" + list(g.trainSchedule) + "\n  ],\n";
  s += fmt::format("  \"derived_weight_bytes\": {},\n", in.program->derivedFloats * 4);
  s += fmt::format("  \"arena\": {{\"batch\": {}, \"other_dims\": {}, \"scratch_included\": false",
                   in.batch, in.otherDims);
  for (const ArenaLine &a : g.arenas)
    s += fmt::format(", {}: {{\"arena_bytes\": {}, \"lower_bound_bytes\": {}, \"naive_bytes\": {}, "
                     "\"tensors\": {}, \"valid\": {}, \"scratch_calls\": {}, "
                     "\"scratch_peak_bytes\": {}, \"scratch_sum_bytes\": {}, "
                     "\"scratch_unknown\": {}}}",
                     jsonString(a.function), a.figures.arenaBytes, a.figures.lowerBound,
                     a.figures.naiveBytes, a.slots - a.figures.unknownSlots,
                     a.figures.validation.empty() ? "true" : "false", a.figures.scratchCalls,
                     a.figures.scratchPeak, a.figures.scratchSum, a.figures.scratchUnknown);
  s += "},\n";
  s += fmt::format("  \"parameters\": {},\n  \"model_parameters\": {},\n  \"parameter_bytes\": "
                   "{},\n  \"flops_per_sample\": {}\n}}\n",
                   g.params, in.program->parameterCount, g.paramBytes, int64_t(g.flops));
  return s;
}

} // namespace fgc
