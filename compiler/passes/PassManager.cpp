// The pipeline (see PassManager.h). Order matters:
//   graph passes, before lowering:
//     inline-nested          first, so every later pass sees one flat graph      (-O1)
//     dead-node-elimination  after inlining, so dead ops inside nested models go  (-O1)
//     cse                    on the flat, live graph                              (-O2)
//   program passes, on the lowered inference and training programs:
//     drop-dropout           inference Dropout steps (views already) go            (-O1)
//     fold-batch-norm        BatchNormalization into the Dense/Conv2D before it, before
//                            fuse-activation claims that kernel's epilogue        (-O2)
//     fuse-activation        kernel epilogues (in training also the activation's gradient
//                            into the kernel's backward); needs the kernel calls  (-O2)
//     fuse-elementwise       chains of merges and activations, after the epilogues
//                            took what they can (inference only)                  (-O2)
//     transform-weights      Conv2D as Winograd with its kernel pre-transformed, after
//                            the epilogues and folds settled its kernel and activation (-O2)
//     constant-fold          calls reading only weights (the folds above) leave
//                            predict: they run when the weights change            (-O2)
// Reshape and Flatten need no pass: lowering makes them views (no copy, no kernel call), and
// memory planning (compiler/memory) runs after the program passes.
#include "compiler/passes/PassManager.h"

#include "compiler/ir/IRPrinter.h"

#include <set>

namespace fgc {

namespace {

struct Entry {
  std::string name;
  int minLevel;
};

const std::vector<Entry> &graphPipeline() {
  static const std::vector<Entry> entries = {
      {"inline-nested", 1}, {"dead-node-elimination", 1}, {"cse", 2}};
  return entries;
}

const std::vector<Entry> &programPipeline() {
  static const std::vector<Entry> entries = {
      {"drop-dropout", 1},     {"fold-batch-norm", 2}, {"fuse-activation", 2},
      {"fuse-elementwise", 2}, {"transform-weights", 2}, {"constant-fold", 2}};
  return entries;
}

std::unique_ptr<GraphPass> makeGraphPass(const std::string &name) {
  if (name == "inline-nested")
    return createInlineNestedPass();
  if (name == "dead-node-elimination")
    return createDeadNodeEliminationPass();
  return createCommonSubexpressionPass();
}

std::unique_ptr<ProgramPass> makeProgramPass(const std::string &name) {
  if (name == "drop-dropout")
    return createDropDropoutPass();
  if (name == "fold-batch-norm")
    return createFoldBatchNormPass();
  if (name == "fuse-activation")
    return createFuseActivationPass();
  if (name == "fuse-elementwise")
    return createFuseElementwisePass();
  if (name == "transform-weights")
    return createTransformWeightsPass();
  return createConstantFoldPass();
}

bool shouldRun(const Entry &e, const PipelineOptions &o, PassRecord &r) {
  if (o.optLevel < e.minLevel) {
    r.reason = fmt::format("runs at -O{} and above", e.minLevel);
    return false;
  }
  if (o.disabled.count(e.name)) {
    r.reason = "disabled";
    return false;
  }
  return true;
}

// The invariants every pass must keep: each op reads only values produced earlier in the
// schedule, and the model's outputs are produced by scheduled ops. Checked after every pass (it
// is linear in the graph's size).
Status verify(const Graph &g, const std::string &pass) {
  std::set<const Value *> defined;
  for (const auto &op : g.ops) {
    for (const Value *v : op->inputs)
      if (!defined.count(v))
        return Error::format("internal error after pass {}: {} reads a value not computed "
                             "before it",
                             pass, op->path());
    for (const auto &v : op->outputs)
      defined.insert(v.get());
  }
  for (const Value *v : g.outputs)
    if (!defined.count(v))
      return Error::format("internal error after pass {}: output {} is not computed", pass,
                           v->producer->path());
  return Status::ok();
}

bool wantsPrint(const PipelineOptions &o, const std::string &name) {
  return o.print && (o.printAfter.count("all") || o.printAfter.count(name));
}

} // namespace

std::vector<std::string> passNames() {
  std::vector<std::string> names;
  for (const auto &e : graphPipeline())
    names.push_back(e.name);
  for (const auto &e : programPipeline())
    names.push_back(e.name);
  return names;
}

Status checkPassNames(const std::set<std::string> &names, bool allowAll) {
  std::vector<std::string> known = passNames();
  for (const std::string &n : names)
    if (!(allowAll && n == "all") && std::find(known.begin(), known.end(), n) == known.end())
      return Error::format("unknown pass '{}' (passes: {}{})", n, fmt::join(known, ", "),
                           allowAll ? ", or all" : "");
  return Status::ok();
}

Expected<std::vector<PassRecord>> runGraphPasses(Graph &graph, const PipelineOptions &o) {
  std::vector<PassRecord> records;
  // "-O0" and friends may still want to see the input IR.
  if (o.print && (o.printAfter.count("all") || o.printAfter.count("input")))
    o.print("input", printGraph(graph));
  for (const Entry &e : graphPipeline()) {
    PassRecord r{e.name, "graph", false, "", {}};
    if (shouldRun(e, o, r)) {
      auto changes = makeGraphPass(e.name)->run(graph, o.pass);
      if (!changes)
        return changes.error();
      r.ran = true;
      r.changes = *changes;
      FGC_TRY(verify(graph, e.name));
      if (wantsPrint(o, e.name))
        o.print(e.name, printGraph(graph));
    }
    records.push_back(r);
  }
  return records;
}

Expected<std::vector<PassRecord>> runProgramPasses(KernelProgram &program,
                                                   const PipelineOptions &o) {
  std::vector<PassRecord> records;
  for (const Entry &e : programPipeline()) {
    PassRecord r{e.name, "program", false, "", {}};
    if (shouldRun(e, o, r)) {
      auto changes = makeProgramPass(e.name)->run(program, o.pass);
      if (!changes)
        return changes.error();
      r.ran = true;
      r.changes = *changes;
      if (wantsPrint(o, e.name)) {
        o.print(e.name + " (inference)", printProgram(program, false));
        if (program.training)
          o.print(e.name + " (training)", printProgram(program, true));
      }
    }
    records.push_back(r);
  }
  return records;
}

std::string printProgram(const KernelProgram &p, bool training) {
  std::string out = fmt::format("program {} ({})\n", p.modelName, training ? "trainStep" : "predict");
  auto argText = [&](const Arg &a, auto &self) -> std::string {
    switch (a.kind) {
    case Arg::Kind::Buffer: return "%" + p.buffers[size_t(a.buffer)].name;
    case Arg::Kind::Null: return "null";
    case Arg::Kind::Enum: return a.enumName;
    case Arg::Kind::Int: return std::to_string(a.intValue);
    case Arg::Kind::Float: return fmt::format("{}", a.floatValue);
    case Arg::Kind::Scratch: return "scratch";
    case Arg::Kind::Value: return "$" + a.enumName;
    case Arg::Kind::Size: {
      std::string s = std::to_string(a.size.coeff);
      for (Dim d : a.size.symbols)
        s += "*" + p.symbolNames[size_t(-1 - d)];
      return s;
    }
    case Arg::Kind::Struct: {
      std::string s = "{";
      for (size_t i = 0; i < a.fields.size(); ++i)
        s += (i ? ", " : "") + self(a.fields[i], self);
      return s + "}";
    }
    case Arg::Kind::IntList:
    case Arg::Kind::SizeList: {
      std::string s = "[";
      for (size_t i = 0; i < a.sizes.size(); ++i) {
        s += (i ? ", " : "") + std::to_string(a.sizes[i].coeff);
        for (Dim d : a.sizes[i].symbols)
          s += "*" + p.symbolNames[size_t(-1 - d)];
      }
      return s + "]";
    }
    case Arg::Kind::Function: return "@" + a.enumName;
    case Arg::Kind::FloatList: {
      std::string s = "[";
      for (size_t i = 0; i < a.floats.size(); ++i)
        s += (i ? ", " : "") + fmt::format("{}", a.floats[i]);
      return s + "]";
    }
    case Arg::Kind::BufferList: {
      std::string s = "[";
      for (size_t i = 0; i < a.buffers.size(); ++i)
        s += (i ? ", " : "") +
             (a.buffers[i] >= 0 ? "%" + p.buffers[size_t(a.buffers[i])].name : std::string("null"));
      return s + "]";
    }
    default: return "...";
    }
  };
  if (!training && !p.weightSteps.empty()) {
    out += "  // when the weights change:\n";
    for (const Step &st : p.weightSteps) {
      out += "  //   " + st.comment + "\n";
      for (const KernelCall &k : st.calls) {
        std::string args;
        for (const Arg &a : k.args)
          args += (args.empty() ? "" : ", ") + argText(a, argText);
        out += "  //   " + k.function + "(" + args + ")\n";
      }
    }
  }
  for (const Step &st : training ? p.trainSteps : p.steps) {
    out += "  // " + st.comment + "\n";
    for (const KernelCall &k : st.calls) {
      std::string args;
      for (const Arg &a : k.args)
        args += (args.empty() ? "" : ", ") + argText(a, argText);
      out += "  " + k.function + "(" + args + ")\n";
    }
  }
  return out;
}

} // namespace fgc
