// The host side of the JIT (fgc/jit.h): from a model to a Code (the same pipeline as `fgc
// compile`), and jit::Model, which binds inputs, plans the arena and calls the compiled entry
// points the way the generated class's methods do, using the same runtime helpers.
#include "fgc/jit.h"

#include "compiler/codegen/Lowering.h"
#include "compiler/ir/Attrs.h"
#include "compiler/jit/Code.h"
#include "compiler/passes/PassManager.h"
#include "compiler/support/LargeBuffer.h"
#include "frontend/GraphBuilder.h"
#include "frontend/GraphWriter.h"
#include "frontend/Initializers.h"
#include "frontend/ModelFile.h"
#include "frontend/WeightsFile.h"
#include "fgc/keras.h"

#include "fgc/runtime/kernels.h"
#include "fgc/runtime/schedule.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>

namespace fgc::jit {

Status compileCode(Code &code, const Options &options); // JitCompiler.cpp

namespace {

rt::DType runtimeDType(DType d) {
  switch (d) {
  case schema::INT32: return rt::DType::Int32;
  case schema::INT64: return rt::DType::Int64;
  case schema::FLOAT64: return rt::DType::Float64;
  case schema::UINT8: return rt::DType::UInt8;
  default: return rt::DType::Float32;
  }
}

[[noreturn]] void raise(const Error &e) { throw rt::Error(e.message()); }

// The layer that owns each parameter (nested models included), for messages.
void ownersOf(const Graph &g, std::map<const Param *, const Layer *> &owners) {
  for (const auto &l : g.layers) {
    if (l->subgraph)
      ownersOf(*l->subgraph, owners);
    for (const auto &p : l->params)
      owners[&p] = l.get();
  }
}

} // namespace

// --- building ---------------------------------------------------------------------------------

Expected<std::shared_ptr<Code>> Code::build(std::unique_ptr<Graph> graph, KernelProgram program,
                                            std::string modelSchema, const Options &options,
                                            const std::string &weightsFile,
                                            std::vector<std::pair<std::string, double>> phases) {
  std::shared_ptr<Code> code(new Code());
  code->phases = std::move(phases);
  PhaseClock clock(code->phases);
  code->graph = std::move(graph);
  code->program = std::move(program);
  const KernelProgram &p = code->program;
  bool reuse = options.optLevel >= 1;
  code->predictPlan = planMemory(p, false, reuse);
  code->trainPlan = planMemory(p, true, reuse);
  code->modelSchema = std::move(modelSchema);

  auto str = [&](const std::string &s) { return code->strings_.emplace_back(s).c_str(); };
  auto shape = [&](const std::vector<int64_t> &s) {
    return code->shapes_.emplace_back(s).data();
  };
  auto specs = [&](const std::vector<int> &ids, const std::vector<std::string> &names,
                   std::vector<rt::TensorSpec> &out) {
    for (size_t i = 0; i < ids.size(); ++i) {
      const Buffer &b = p.buffers[size_t(ids[i])];
      out.push_back({str(names[i]), runtimeDType(b.dtype), int(b.shape.size()),
                     shape(std::vector<int64_t>(b.shape.begin(), b.shape.end()))});
    }
  };
  code->shapes_.reserve(p.inputs.size() + 2 * p.outputs.size() + p.params.size() + 1);
  specs(p.inputs, p.inputNames, code->inputSpecs);
  specs(p.outputs, p.outputNames, code->outputSpecs);
  if (p.training) {
    std::vector<std::string> targetNames;
    for (int output : p.targetOutputs)
      targetNames.push_back(p.outputNames[size_t(output)]);
    specs(p.targets, targetNames, code->targetSpecs);
  }

  clock.lap("memory plan");

  // The weights, 64-byte aligned each, as the generated code's blob: copied from the graph, or
  // read from the weights file straight into it (the graph's parameters then have no data).
  size_t at = 0;
  std::vector<size_t> offsets;
  for (const auto &pp : p.params) {
    at = (at + 63) / 64 * 64;
    offsets.push_back(at);
    at += size_t(pp.param->numElements()) * sizeof(float);
  }
  code->blob = allocateLarge(at);
  char *base = code->blob.get();
  std::vector<WeightDestination> fromFile;
  for (size_t i = 0; i < p.params.size(); ++i) {
    const auto &pp = p.params[i];
    size_t bytes = size_t(pp.param->numElements()) * sizeof(float);
    size_t end = i + 1 < offsets.size() ? offsets[i + 1] : at;
    std::memset(base + offsets[i] + bytes, 0, end - offsets[i] - bytes); // the alignment padding
    if (!weightsFile.empty()) {
      fromFile.push_back({pp.layerPath, pp.param, "", base + offsets[i]});
    } else {
      if (pp.param->data.size() != bytes)
        return Error::format("weight '{}/{}' has {} bytes of data for {} floats", pp.layerPath,
                             pp.param->name, pp.param->data.size(), pp.param->numElements());
      std::memcpy(base + offsets[i], pp.param->data.data(), bytes);
    }
    code->weightSpecs.push_back({str(pp.layerPath), str(pp.param->name),
                                 int(pp.param->type.shape.size()),
                                 shape(std::vector<int64_t>(pp.param->type.shape.begin(),
                                                            pp.param->type.shape.end())),
                                 offsets[i]});
  }
  if (!weightsFile.empty()) {
    std::map<const Param *, const Layer *> owners;
    ownersOf(*code->graph, owners);
    for (auto &w : fromFile) {
      auto it = owners.find(w.param);
      w.owner = it != owners.end() ? it->second->describe() : "layer '" + w.layerPath + "'";
    }
    FGC_TRY(readWeightsInto(weightsFile, fromFile));
  }
  clock.lap(weightsFile.empty() ? "weight buffer" : "weights file");
  code->blobData = reinterpret_cast<const float *>(base);
  code->blobBytes = at;

  if (p.training)
    for (const auto &sl : p.slots)
      code->slotSpecs.push_back(
          {sl.param, str(sl.name), uint64_t(p.buffers[size_t(sl.buffer)].index)});
  if (p.schedule.className == "ExponentialDecay" || p.schedule.className == "CosineDecay") {
    const auto &c = p.schedule.config;
    code->schedule =
        p.schedule.className == "ExponentialDecay"
            ? rt::LearningRateSchedule::exponentialDecay(
                  c.at("initial_learning_rate"), c.at("decay_steps"), c.at("decay_rate"),
                  c.at("staircase") != 0)
            : rt::LearningRateSchedule::cosineDecay(c.at("initial_learning_rate"),
                                                    c.at("decay_steps"), c.at("alpha"));
  }
  code->modelFile.schema = reinterpret_cast<const unsigned char *>(code->modelSchema.data());
  code->modelFile.schemaBytes = code->modelSchema.size();
  code->modelFile.optimizer = p.training ? str(p.optimizerClass) : nullptr;
  code->modelFile.slots = code->slotSpecs.empty() ? nullptr : code->slotSpecs.data();
  code->modelFile.numSlots = int(code->slotSpecs.size());

  // Index inputs are staged as int32 in their own arena slot (each function's Input buffers).
  code->inputSlot.assign(p.inputs.size(), -1);
  code->trainInputSlot.assign(p.inputs.size(), -1);
  for (size_t id = 0; id < p.buffers.size(); ++id) {
    const Buffer &b = p.buffers[id];
    if (b.kind != Buffer::Kind::Input || !b.indexInput)
      continue;
    if (b.training)
      code->trainInputSlot[size_t(b.index)] = code->trainPlan.slotOf(int(id));
    else
      code->inputSlot[size_t(b.index)] = code->predictPlan.slotOf(int(id));
  }
  if (p.training) {
    auto gradientSlot = [&](int buffer) {
      return buffer < 0 ? -1 : code->trainPlan.slotOf(rootOf(p, buffer));
    };
    for (int g : p.paramGradients)
      code->gradientSlot.push_back(gradientSlot(g));
    code->gradientSlot.resize(p.params.size(), -1);
    for (int g : p.inputGradients)
      code->gradientSlot.push_back(gradientSlot(g));
    code->gradientSlot.resize(p.params.size() + p.inputs.size(), -1);
  }
  clock.lap("tables");
  FGC_TRY(compileCode(*code, options));
  return code;
}

namespace {

// The pipeline of `fgc compile`: weights, passes, lowering, program passes; then LLVM.
Expected<std::shared_ptr<Code>> buildCode(std::unique_ptr<Graph> graph, const Options &options,
                                          const std::string &name, const std::string &weightsFile,
                                          std::chrono::steady_clock::time_point start,
                                          std::vector<std::pair<std::string, double>> phases) {
  PhaseClock clock(phases);
  Graph &g = *graph;
  if (!options.optimizer.empty()) {
    g.training.mutable_optimizer()->Clear();
    g.training.mutable_optimizer()->set_class_name(options.optimizer);
  }
  if (options.learningRate > 0)
    (*g.training.mutable_optimizer()->mutable_attrs())["learning_rate"] =
        makeFloat(options.learningRate);
  if (weightsFile.empty()) { // from the model or the seed; else read in Code::build
    if (auto s = initializeWeights(g); !s)
      return s.error().withContext(name);
    clock.lap("weights");
  }
  auto schema = graphToModel(g, WeightsMode::None);
  if (!schema)
    return schema.error().withContext(name);
  schema->clear_weights_file();
  std::string modelSchema = serializeModel(*schema, ModelFormat::Binary);
  clock.lap("schema");

  PipelineOptions po;
  po.optLevel = options.optLevel;
  po.disabled = {options.disabledPasses.begin(), options.disabledPasses.end()};
  po.pass.outputs = options.outputs;
  FGC_TRY(checkPassNames(po.disabled, false));
  if (!options.outputs.empty() && options.optLevel == 0)
    return Error("--outputs needs dead-node elimination: use -O1 or -O2");
  if (auto r = runGraphPasses(g, po); !r)
    return r.error().withContext(name);
  clock.lap("graph passes");
  auto program = lowerForInference(g);
  if (!program)
    return program.error().withContext(name);
  clock.lap("lowering");
  if (!options.inferenceOnly && g.training.losses_size() > 0) {
    TrainingOptions to;
    to.inputGradients = options.inputGradients;
    if (auto s = lowerForTraining(g, *program, to); !s)
      return s.error().withContext(name);
    clock.lap("training lowering");
  }
  if (auto r = runProgramPasses(*program, po); !r)
    return r.error().withContext(name);
  clock.lap("program passes");
  auto code = Code::build(std::move(graph), program.take(), std::move(modelSchema), options,
                          weightsFile, std::move(phases));
  if (!code)
    return code.error().withContext(name);
  (*code)->compileSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return code;
}

std::unique_ptr<Model> modelOf(Expected<std::shared_ptr<Code>> code) {
  if (!code)
    raise(code.error());
  return Code::makeModel(*code);
}

} // namespace

std::unique_ptr<Model> Code::makeModel(std::shared_ptr<const Code> code) {
  return std::unique_ptr<Model>(new Model(std::move(code)));
}

std::unique_ptr<Model> compile(const std::string &path, const Options &options) {
  auto start = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, double>> phases;
  PhaseClock clock(phases);
  auto model = readModelFile(path);
  if (!model)
    raise(model.error());
  BuildOptions bo;
  bo.fileName = path;
  bo.baseDir = std::filesystem::path(path).parent_path().string();
  // Weights read straight into the weight buffer: the option's file instead of the model's
  // own, or the model's weights_file (a saved model file names itself).
  std::string weightsFile = options.weightsFile;
  if (!weightsFile.empty())
    model->clear_weights_file();
  else if (!model->weights_file().empty())
    weightsFile = model->weights_file().front() == '/' || bo.baseDir.empty()
                      ? model->weights_file()
                      : bo.baseDir + "/" + model->weights_file();
  bo.skipWeights = !weightsFile.empty();
  auto graph = buildGraph(*model, bo);
  if (!graph)
    raise(graph.error());
  clock.lap("load");
  return modelOf(buildCode(graph.take(), options, path, weightsFile, start, std::move(phases)));
}

std::unique_ptr<Model> compile(const schema::Model &model, const Options &options,
                               const std::string &name) {
  auto start = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, double>> phases;
  PhaseClock clock(phases);
  // As above; the option's file replaces the model's weights_file in a copy.
  schema::Model copy;
  const schema::Model *m = &model;
  std::string weightsFile = options.weightsFile;
  if (weightsFile.empty()) {
    weightsFile = model.weights_file();
  } else if (!model.weights_file().empty()) {
    copy = model;
    copy.clear_weights_file();
    m = &copy;
  }
  BuildOptions bo;
  bo.fileName = name;
  bo.skipWeights = !weightsFile.empty();
  auto graph = buildGraph(*m, bo);
  if (!graph)
    raise(graph.error());
  clock.lap("load");
  return modelOf(buildCode(graph.take(), options, name, weightsFile, start, std::move(phases)));
}

std::unique_ptr<Model> compile(const keras::Model &model, const Options &options) {
  return compile(model.get_config(), options, "model '" + model.name() + "'");
}

// --- the model --------------------------------------------------------------------------------

Model::Model(std::shared_ptr<const Code> code) : code_(std::move(code)) {
  const KernelProgram &p = code_->program;
  weights_ = rt::Weights::embedded(p.modelName.c_str(), code_->weightSpecs.data(),
                                   int(code_->weightSpecs.size()), code_->blobData,
                                   code_->blobBytes);
  if (p.training)
    learningRate_ = p.optimizerConfig.at("learning_rate");
  gradients_.assign(p.params.size() + p.inputs.size(), nullptr);
  symbols_.assign(std::max<size_t>(p.symbolNames.size(), 1), 0);
}

Model::~Model() = default;

std::unique_ptr<Model> Model::fresh() const { return Code::makeModel(code_); }

const std::string &Model::name() const { return code_->program.modelName; }
int Model::numInputs() const { return int(code_->program.inputs.size()); }
int Model::numOutputs() const { return int(code_->program.outputs.size()); }
const std::vector<std::string> &Model::inputNames() const { return code_->program.inputNames; }
const std::vector<std::string> &Model::outputNames() const { return code_->program.outputNames; }

static std::vector<int64_t> specShape(const rt::TensorSpec &spec) {
  std::vector<int64_t> shape(spec.shape, spec.shape + spec.rank);
  for (auto &d : shape)
    d = d < 0 ? -1 : d;
  return shape;
}

std::vector<int64_t> Model::inputShape(int i) const {
  if (i < 0 || i >= numInputs())
    throw rt::Error("inputShape: no input " + std::to_string(i));
  return specShape(code_->inputSpecs[size_t(i)]);
}
std::vector<int64_t> Model::outputShape(int i) const {
  if (i < 0 || i >= numOutputs())
    throw rt::Error("outputShape: no output " + std::to_string(i));
  return specShape(code_->outputSpecs[size_t(i)]);
}
rt::DType Model::inputDType(int i) const {
  inputShape(i); // range check
  return code_->inputSpecs[size_t(i)].dtype;
}
bool Model::hasLoss(int i) const {
  const auto &t = code_->program.targetOutputs;
  return std::find(t.begin(), t.end(), i) != t.end();
}
int64_t Model::parameterCount() const { return code_->program.parameterCount; }
bool Model::hasTraining() const { return code_->program.training; }
void Model::setNumThreads(int n) { fgc_set_num_threads(n); }
double Model::compileSeconds() const { return code_->compileSeconds; }
double Model::llvmSeconds() const { return code_->llvmSeconds; }
const std::vector<std::pair<std::string, double>> &Model::compilePhases() const {
  return code_->phases;
}

int Model::numWeights() const { return int(code_->weightSpecs.size()); }
std::string Model::weightName(int i) const {
  if (i < 0 || i >= numWeights())
    throw rt::Error("weightName: no weight " + std::to_string(i));
  const rt::WeightSpec &w = code_->weightSpecs[size_t(i)];
  return std::string(w.layer) + "/" + w.name;
}
std::vector<int64_t> Model::weightShape(int i) const {
  if (i < 0 || i >= numWeights())
    throw rt::Error("weightShape: no weight " + std::to_string(i));
  const rt::WeightSpec &w = code_->weightSpecs[size_t(i)];
  return std::vector<int64_t>(w.shape, w.shape + w.rank);
}
const float *Model::weightData(int i) const { return weights_[i]; }
float *Model::mutableWeightData(int i) { return weights_.mutableData(i); }

void Model::load_weights(const std::string &path) {
  weights_ = rt::Weights::load(name().c_str(), code_->weightSpecs.data(), numWeights(), path);
}
void Model::save_weights(const std::string &path) const { weights_.save(path); }

// Fails with the generated code's message: the model, the layer, the kernel's error.
[[noreturn]] static void callFailed(const Code &code, const Entry &entry, int32_t call,
                                    int32_t status) {
  rt::kernelFailed(code.program.modelName.c_str(), entry.callLayers[size_t(call - 1)].c_str(),
                   status);
}

// Sizes the arena for these symbols, places its slots and points the frame at it.
static void planArena(const Entry &entry, JitFrame &frame, std::vector<size_t> &sizes,
                      rt::ArenaPlan &plan, rt::Arena &arena) {
  sizes.assign(std::max<size_t>(entry.live.size(), 1), 0);
  frame.sizes = sizes.data();
  entry.sizes(&frame);
  const auto *live = reinterpret_cast<const int32_t(*)[2]>(entry.live.data());
  frame.offsets = entry.live.empty() ? sizes.data() : plan.place(sizes.data(), live,
                                                                 int(entry.live.size()));
  frame.arena = static_cast<char *>(arena.reserve(entry.live.empty() ? 0 : plan.bytes()));
}

void Model::predict(const rt::Tensor *inputs, rt::Tensor *outputs) {
  const Code &c = *code_;
  const KernelProgram &p = c.program;
  const char *model = p.modelName.c_str();
  rt::bindInputs(model, c.inputSpecs.data(), numInputs(), inputs, symbols_.data(),
                 int(p.symbolNames.size()));
  for (size_t i = 0; i < p.outputs.size(); ++i)
    outputs[i].resize(c.outputSpecs[i].dtype, rt::resolveShape(c.outputSpecs[i], symbols_.data()));
  JitFrame frame{};
  frame.symbols = symbols_.data();
  planArena(c.predict, frame, sizes_, arenaPlan_, arena_);
  inputPointers_.resize(p.inputs.size());
  for (size_t i = 0; i < p.inputs.size(); ++i)
    inputPointers_[i] =
        c.inputSlot[i] >= 0
            ? rt::asIndices(inputs[i], reinterpret_cast<int32_t *>(
                                           frame.arena + frame.offsets[c.inputSlot[i]]))
            : inputs[i].raw();
  outputPointers_.resize(p.outputs.size());
  for (size_t i = 0; i < p.outputs.size(); ++i)
    outputPointers_[i] = outputs[i].raw();
  paramPointers_.resize(p.params.size());
  for (size_t i = 0; i < p.params.size(); ++i)
    paramPointers_[i] = const_cast<float *>(weights_[int(i)]); // predict only reads them
  frame.inputs = inputPointers_.data();
  frame.outputs = outputPointers_.data();
  frame.params = paramPointers_.data();
  // What is computed from the weights alone (folded BatchNormalization), again when they
  // changed (load_weights, load, a training step, mutableWeightData), as generated code does.
  if (c.derived.run && (derived_.empty() || derivedVersion_ != weights_.version())) {
    derived_.resize(size_t(p.derivedFloats));
    frame.derived = derived_.data();
    if (int32_t call = c.derived.run(&frame))
      callFailed(c, c.derived, call, frame.status);
    derivedVersion_ = weights_.version();
  }
  frame.derived = derived_.data();
  if (int32_t call = c.predict.run(&frame))
    callFailed(c, c.predict, call, frame.status);
}

std::vector<rt::Tensor> Model::predict(const std::vector<rt::Tensor> &inputs) {
  if (int(inputs.size()) != numInputs())
    throw rt::Error("model '" + name() + "' takes " + std::to_string(numInputs()) +
                    " input(s), got " + std::to_string(inputs.size()));
  std::vector<rt::Tensor> outputs(static_cast<size_t>(numOutputs()));
  predict(inputs.data(), outputs.data());
  return outputs;
}

std::map<std::string, rt::Tensor>
Model::predict(const std::map<std::string, rt::Tensor> &inputs) {
  std::vector<rt::Tensor> ordered;
  for (const auto &n : inputNames()) {
    auto it = inputs.find(n);
    if (it == inputs.end())
      throw rt::Error("model '" + name() + "': missing input '" + n + "'");
    ordered.push_back(it->second);
  }
  if (int(inputs.size()) != numInputs())
    for (const auto &[n, t] : inputs)
      if (std::find(inputNames().begin(), inputNames().end(), n) == inputNames().end())
        throw rt::Error("model '" + name() + "': unknown input '" + n + "'");
  std::vector<rt::Tensor> outs = predict(ordered);
  std::map<std::string, rt::Tensor> named;
  for (size_t i = 0; i < outs.size(); ++i)
    named[outputNames()[i]] = std::move(outs[i]);
  return named;
}

// --- training ---------------------------------------------------------------------------------

static void requireTraining(const Model &m, const char *what) {
  if (!m.hasTraining())
    throw rt::Error("model '" + m.name() + "' was compiled without training code (no loss in " +
                    "its training config, or inference only): no " + what);
}

std::vector<std::string> Model::logNames() const { return code_->program.logNames; }

void Model::initialState(std::vector<float> &state) const {
  const KernelProgram &p = code_->program;
  state.assign(size_t(std::max<int64_t>(p.stateFloats, 1)), 0.0f);
  for (const auto &[id, value] : p.stateInits) {
    const Buffer &b = p.buffers[size_t(id)];
    std::fill(state.begin() + b.index, state.begin() + b.index + b.elements().coeff,
              float(value));
  }
}

double Model::learningRate() const {
  return rt::learningRate(code_->program.modelName.c_str(), code_->schedule, learningRate_,
                          learningRateSet_, step_);
}

// logs[0] the weighted total loss, then per-output losses (several outputs), then metrics,
// each metric divided by `denominator(metric)`.
template <typename F>
static void writeLogs(const KernelProgram &p, const double *acc, const int64_t *cnt,
                      double *logs, F denominator) {
  double total = 0;
  for (const auto &l : p.losses)
    total += l.weight * acc[l.accumulator];
  logs[0] = total;
  size_t k = 1;
  if (p.outputs.size() > 1)
    for (const auto &l : p.losses)
      logs[k++] = acc[l.accumulator];
  for (const auto &m : p.metrics)
    logs[k++] = (m.kind == "count" ? double(cnt[m.accumulator]) : acc[m.accumulator]) /
                denominator(m);
}

void Model::trainStep(const rt::Tensor *inputs, const rt::Tensor *targets, double *logs) {
  requireTraining(*this, "trainStep");
  const Code &c = *code_;
  const KernelProgram &p = c.program;
  const char *model = p.modelName.c_str();
  rt::bindInputs(model, c.inputSpecs.data(), numInputs(), inputs, symbols_.data(),
                 int(p.symbolNames.size()));
  rt::bindTargets(model, c.targetSpecs.data(), int(c.targetSpecs.size()), targets,
                  symbols_.data());
  if (state_.empty())
    initialState(state_);
  JitFrame frame{};
  frame.learningRate = learningRate(); // the schedule's value at the steps before this one
  frame.step = ++step_;
  frame.dropoutScale = dropoutEnabled_ ? 1.0f : 0.0f;
  frame.symbols = symbols_.data();
  frame.state = state_.data();
  std::vector<double> acc(size_t(std::max(p.numAccumulators, 1)), 0.0);
  std::vector<int64_t> cnt(size_t(std::max(p.numCounters, 1)), 0);
  frame.acc = acc.data();
  frame.cnt = cnt.data();
  planArena(c.train, frame, sizes_, trainArenaPlan_, trainArena_);
  inputPointers_.resize(p.inputs.size());
  for (size_t i = 0; i < p.inputs.size(); ++i)
    inputPointers_[i] =
        c.trainInputSlot[i] >= 0
            ? rt::asIndices(inputs[i], reinterpret_cast<int32_t *>(
                                           frame.arena + frame.offsets[c.trainInputSlot[i]]))
            : inputs[i].raw();
  paramPointers_.resize(p.params.size());
  for (size_t i = 0; i < p.params.size(); ++i)
    paramPointers_[i] = weights_.mutableData(int(i));
  targetPointers_.resize(c.targetSpecs.size());
  for (size_t i = 0; i < c.targetSpecs.size(); ++i)
    targetPointers_[i] = targets[i].data<float>();
  frame.inputs = inputPointers_.data();
  frame.params = paramPointers_.data();
  frame.targets = targetPointers_.data();
  if (int32_t call = c.train.run(&frame))
    callFailed(c, c.train, call, frame.status);
  for (size_t i = 0; i < c.gradientSlot.size(); ++i)
    gradients_[i] = c.gradientSlot[i] < 0 ? nullptr
                                          : reinterpret_cast<const float *>(
                                                frame.arena + frame.offsets[c.gradientSlot[i]]);
  const std::vector<int64_t> &sym = symbols_;
  writeLogs(p, acc.data(), cnt.data(), logs, [&](const KernelProgram::Metric &m) {
    return double(evaluateSize(m.kind == "count" ? m.rows : m.elements, sym));
  });
}

void Model::testStep(const rt::Tensor *inputs, const rt::Tensor *targets, double *logs) {
  requireTraining(*this, "testStep");
  const Code &c = *code_;
  const KernelProgram &p = c.program;
  testOutputs_.resize(p.outputs.size());
  predict(inputs, testOutputs_.data());
  rt::bindTargets(p.modelName.c_str(), c.targetSpecs.data(), int(c.targetSpecs.size()), targets,
                  symbols_.data());
  std::vector<int64_t> rows;
  outputPointers_.resize(p.outputs.size());
  for (size_t i = 0; i < p.outputs.size(); ++i) {
    const rt::Tensor &t = testOutputs_[i];
    rows.push_back(t.size() / t.shape().back());
    rows.push_back(t.shape().back());
    outputPointers_[i] = testOutputs_[i].raw();
  }
  targetPointers_.resize(c.targetSpecs.size());
  for (size_t i = 0; i < c.targetSpecs.size(); ++i)
    targetPointers_[i] = targets[i].data<float>();
  std::vector<double> acc(size_t(std::max(p.numAccumulators, 1)), 0.0);
  std::vector<int64_t> cnt(size_t(std::max(p.numCounters, 1)), 0);
  JitFrame frame{};
  frame.symbols = symbols_.data();
  frame.outputs = outputPointers_.data();
  frame.targets = targetPointers_.data();
  frame.rows = rows.data();
  frame.acc = acc.data();
  frame.cnt = cnt.data();
  if (int32_t call = c.test.run(&frame))
    callFailed(c, c.test, call, frame.status);
  writeLogs(p, acc.data(), cnt.data(), logs, [&](const KernelProgram::Metric &m) {
    const rt::Tensor &t = testOutputs_[size_t(m.output)];
    return m.kind == "count" ? double(t.size() / t.shape().back()) : double(t.size());
  });
}

const float *Model::gradientData(int i) const { return gradients_.at(size_t(i)); }
const float *Model::inputGradientData(int i) const {
  return gradients_.at(code_->program.params.size() + size_t(i));
}

// --- model files ------------------------------------------------------------------------------

void Model::save(const std::string &path) const {
  const Code &c = *code_;
  if (!c.program.training) {
    weights_.saveModel(path, c.modelFile, nullptr, nullptr);
    return;
  }
  std::vector<float> fresh; // the slots before the first step
  if (state_.empty())
    initialState(fresh);
  const rt::TrainingCounters counters = {step_, epoch_, learningRateSet_, learningRate_};
  weights_.saveModel(path, c.modelFile, state_.empty() ? fresh.data() : state_.data(),
                     &counters);
}

void Model::load(const std::string &path) {
  const Code &c = *code_;
  const char *model = c.program.modelName.c_str();
  if (!c.program.training) {
    rt::Weights::loadModel(model, c.weightSpecs.data(), numWeights(), path, c.modelFile,
                           weights_, nullptr, nullptr);
    return;
  }
  std::vector<float> state;
  initialState(state);
  rt::TrainingCounters counters;
  if (rt::Weights::loadModel(model, c.weightSpecs.data(), numWeights(), path, c.modelFile,
                             weights_, state.data(), &counters)) {
    state_ = std::move(state);
    step_ = counters.iterations;
    epoch_ = counters.epoch;
    if (counters.hasLearningRate)
      setLearningRate(counters.learningRate);
  } else { // weights only: training starts afresh
    state_.clear();
    step_ = 0;
    epoch_ = 0;
  }
}

} // namespace fgc::jit
