// IR graph -> KernelProgram (see Lowering.h).
#include "compiler/codegen/Lowering.h"

#include <algorithm>
#include <set>

namespace fgc {

// --- SymSize ----------------------------------------------------------------------------------

SymSize SymSize::product(const std::vector<Dim> &shape, size_t from, size_t to) {
  SymSize s;
  for (size_t i = from; i < to && i < shape.size(); ++i) {
    if (isDynamic(shape[i]))
      s.symbols.push_back(shape[i]);
    else
      s.coeff *= shape[i];
  }
  std::sort(s.symbols.begin(), s.symbols.end(), std::greater<Dim>());
  return s;
}

SymSize SymSize::operator*(const SymSize &o) const {
  SymSize s{coeff * o.coeff, symbols};
  s.symbols.insert(s.symbols.end(), o.symbols.begin(), o.symbols.end());
  std::sort(s.symbols.begin(), s.symbols.end(), std::greater<Dim>());
  return s;
}

// --- LowerContext -----------------------------------------------------------------------------

LowerContext::LowerContext(KernelProgram &program, const Op &op, std::vector<int> inputs,
                           std::vector<int> outputs, std::vector<int> params,
                           std::string layerPath, const std::map<Dim, Dim> &)
    : program_(program), op_(op), inputs_(std::move(inputs)), outputs_(std::move(outputs)),
      params_(std::move(params)), layerPath_(std::move(layerPath)) {}

int LowerContext::param(const std::string &name) const {
  const auto &ps = op_.layer->params;
  for (size_t i = 0; i < ps.size(); ++i)
    if (ps[i].name == name)
      return params_[i];
  return -1;
}

SymSize LowerContext::dim(const std::vector<Dim> &shape, int axis) const {
  size_t a = axis < 0 ? shape.size() + size_t(axis) : size_t(axis);
  return SymSize::product(shape, a, a + 1);
}

Arg LowerContext::buf(int id) const {
  Arg a;
  a.kind = Arg::Kind::Buffer;
  a.buffer = id;
  return a;
}
Arg LowerContext::null() const { return Arg{}; }
Arg LowerContext::size(const SymSize &s) const {
  Arg a;
  a.kind = Arg::Kind::Size;
  a.size = s;
  return a;
}
Arg LowerContext::i64(int64_t v) const { return size(SymSize::constant(v)); }
Arg LowerContext::f32(double v) const {
  Arg a;
  a.kind = Arg::Kind::Float;
  a.floatValue = v;
  return a;
}
Arg LowerContext::enumValue(const std::string &name, int64_t value) const {
  Arg a;
  a.kind = Arg::Kind::Enum;
  a.enumName = name;
  a.intValue = value;
  return a;
}

Expected<Arg> LowerContext::activation(const std::string &name) const {
  static const std::map<std::string, std::pair<const char *, int>> table = {
      {"linear", {"FGC_ACT_LINEAR", 0}},   {"relu", {"FGC_ACT_RELU", 1}},
      {"sigmoid", {"FGC_ACT_SIGMOID", 2}}, {"tanh", {"FGC_ACT_TANH", 3}},
      {"softmax", {"FGC_ACT_SOFTMAX", 4}}, {"elu", {"FGC_ACT_ELU", 5}},
      {"selu", {"FGC_ACT_SELU", 6}},       {"gelu", {"FGC_ACT_GELU", 7}},
      {"softplus", {"FGC_ACT_SOFTPLUS", 8}}, {"swish", {"FGC_ACT_SWISH", 9}},
      {"silu", {"FGC_ACT_SWISH", 9}},      {"hard_sigmoid", {"FGC_ACT_HARD_SIGMOID", 10}}};
  auto it = table.find(name);
  if (it == table.end())
    return error("activation '{}' is not supported by the runtime yet", name);
  return enumValue(it->second.first, it->second.second);
}

Arg LowerContext::padding(const std::string &keras) const {
  return keras == "same" ? enumValue("FGC_PADDING_SAME", 1) : enumValue("FGC_PADDING_VALID", 0);
}

void LowerContext::alias(size_t out, size_t in) {
  Buffer &b = program_.buffers[size_t(outputs_[out])];
  b.kind = Buffer::Kind::Alias;
  int root = inputs_[in];
  while (program_.buffers[size_t(root)].kind == Buffer::Kind::Alias)
    root = program_.buffers[size_t(root)].aliasOf;
  b.aliasOf = root;
}

int LowerContext::newBuffer(const std::string &suffix, DType dtype, const std::vector<Dim> &shape) {
  Buffer b;
  b.kind = Buffer::Kind::Activation;
  b.dtype = dtype;
  b.shape = shape;
  b.training = training();
  b.name = program_.buffers[size_t(outputs_.empty() ? inputs_[0] : outputs_[0])].name + "_" + suffix;
  b.description = layerPath_ + " " + suffix + " " + shapeToString(shape);
  program_.buffers.push_back(b);
  return static_cast<int>(program_.buffers.size()) - 1;
}

int LowerContext::workspace(const std::string &suffix, const std::string &sizeFunction,
                            const Arg &structArg) {
  int id = newBuffer(suffix, schema::FLOAT32, {});
  Buffer &b = program_.buffers[size_t(id)];
  b.sizeFunction = sizeFunction;
  b.sizeStruct = {structArg};
  b.description = layerPath_ + " " + suffix;
  return id;
}

int LowerContext::saved(const std::string &key) const {
  auto it = saved_->find(key);
  return it == saved_->end() ? -1 : it->second;
}

Arg LowerContext::value(const std::string &name) const {
  Arg a;
  a.kind = Arg::Kind::Value;
  a.enumName = name;
  return a;
}

Arg LowerContext::intList(const std::vector<int64_t> &values) const {
  Arg a;
  a.kind = Arg::Kind::IntList;
  for (int64_t v : values)
    a.sizes.push_back(SymSize::constant(v));
  return a;
}

int aliasRoot(const KernelProgram &p, int id) {
  while (p.buffers[size_t(id)].kind == Buffer::Kind::Alias)
    id = p.buffers[size_t(id)].aliasOf;
  return id;
}

int gradientBuffer(KernelProgram &program, GradState &grad, int forwardBuffer) {
  int root = aliasRoot(program, forwardBuffer);
  auto it = grad.gradOf.find(root);
  if (it != grad.gradOf.end())
    return it->second;
  const Buffer &f = program.buffers[size_t(root)];
  Buffer b;
  b.kind = Buffer::Kind::Activation;
  b.dtype = schema::FLOAT32;
  b.shape = f.shape;
  b.training = true;
  b.name = "d_" + f.name;
  b.description = "gradient of " + f.description;
  program.buffers.push_back(b);
  int id = static_cast<int>(program.buffers.size()) - 1;
  grad.gradOf[root] = id;
  return id;
}

int LowerContext::gradFor(int forwardBuffer) {
  return gradientBuffer(program_, *grad_, forwardBuffer);
}

int LowerContext::dOut(size_t i) const {
  auto it = grad_->gradOf.find(aliasRoot(program_, outputs_[i]));
  if (it == grad_->gradOf.end() || !grad_->written.count(it->second))
    return -1;
  return it->second;
}

bool LowerContext::inputNeedsGrad(size_t i) const {
  return grad_ && grad_->needsGrad.count(aliasRoot(program_, inputs_[i])) > 0;
}

int LowerContext::dIn(size_t i) {
  int root = aliasRoot(program_, inputs_[i]);
  if (!grad_->needsGrad.count(root))
    return -1;
  int g = gradFor(root);
  if (!inputFlags_.count(i))
    inputFlags_[i] = grad_->written.count(g) ? 1 : 0; // FGC_GRAD_ACCUMULATE_INPUT
  grad_->written.insert(g);
  return g;
}

int64_t LowerContext::inFlag(size_t i) const {
  auto it = inputFlags_.find(i);
  return it == inputFlags_.end() ? 0 : it->second;
}

int LowerContext::dParam(const std::string &name) {
  const auto &ps = op_.layer->params;
  for (size_t k = 0; k < ps.size(); ++k) {
    if (ps[k].name != name)
      continue;
    if (!op_.layer->trainable || !ps[k].trainable)
      return -1;
    auto it = grad_->paramGrad.find(&ps[k]);
    if (it == grad_->paramGrad.end()) {
      Buffer b;
      b.kind = Buffer::Kind::Activation;
      b.dtype = schema::FLOAT32;
      b.shape = ps[k].type.shape;
      b.training = true;
      b.name = "g_" + program_.buffers[size_t(params_[k])].name.substr(2);
      b.description = "gradient of " + program_.buffers[size_t(params_[k])].description;
      program_.buffers.push_back(b);
      it = grad_->paramGrad.emplace(&ps[k], int(program_.buffers.size()) - 1).first;
    }
    if (!paramFlagsKnown_) {
      paramFlags_ = grad_->written.count(it->second) ? 2 : 0; // FGC_GRAD_ACCUMULATE_PARAMS
      paramFlagsKnown_ = true;
    }
    grad_->written.insert(it->second);
    return it->second;
  }
  return -1;
}

Arg LowerContext::paramFlags() const { return i64(paramFlags_); }

uint64_t LowerContext::layerHash() const {
  uint64_t h = 1469598103934665603ULL;
  for (char c : layerPath_)
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  return h;
}

int LowerContext::indexBuffer(const SymSize &, const std::vector<Dim> &shape) {
  Buffer b;
  b.kind = Buffer::Kind::Activation;
  b.dtype = schema::INT32;
  b.shape = shape;
  b.name = program_.buffers[size_t(outputs_[0])].name + "_indices";
  b.description = b.name + " " + shapeToString(shape);
  program_.buffers.push_back(b);
  return static_cast<int>(program_.buffers.size()) - 1;
}

// --- the driver -------------------------------------------------------------------------------

namespace {

std::string identifier(const std::string &s) {
  std::string out;
  for (char c : s)
    out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0])))
    out = "t_" + out;
  return out;
}

class Lowerer : public BodyLowering {
public:
  Lowerer(KernelProgram &p, bool training) : p_(p), training_(training) {}

  Expected<Forward> forward(const Graph &body, const std::string &path,
                            const std::vector<int> &inputs,
                            const std::vector<bool> &needsGrad) override;
  Expected<Backward> backward(int id, const std::vector<int> &outputGrads,
                              const std::vector<int> &inputGrads,
                              const std::vector<bool> &accumulate) override;

  Status run(const Graph &g) {
    p_.modelName = g.name;
    p_.parameterCount = g.countParams();
    std::map<const Value *, int> values;
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      const Value *v = g.inputs[i];
      const Layer &layer = *v->producer->layer;
      Buffer b;
      b.kind = Buffer::Kind::Input;
      b.index = static_cast<int>(i);
      b.dtype = v->type.dtype;
      b.shape = v->type.shape;
      b.name = unique("in_" + identifier(layer.name));
      b.description = layer.name + " " + shapeToString(b.shape);
      b.indexInput = onlyEmbeddingReads(g, v);
      if (b.indexInput)
        b.dtype = schema::INT32;
      values[v] = add(b);
      p_.inputs.push_back(values[v]);
      p_.inputNames.push_back(layer.name);
      for (size_t k = 0; k < b.shape.size(); ++k) {
        Dim d = b.shape[k];
        if (!isDynamic(d))
          continue;
        size_t id = size_t(-1 - d);
        if (p_.symbolSources.size() <= id) {
          p_.symbolSources.resize(id + 1, {-1, -1});
          p_.symbolNames.resize(id + 1);
        }
        if (p_.symbolSources[id].first < 0) {
          p_.symbolSources[id] = {int(i), int(k)};
          p_.symbolNames[id] = d == kBatchDim ? "batch" : identifier(layer.name) + "_dim" + std::to_string(k);
        }
      }
    }
    std::map<Dim, Dim> identity;
    FGC_TRY(lowerGraph(g, "", identity, values));
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      int id = values.at(g.outputs[i]);
      p_.outputNames.push_back(g.outputName(i));
      FGC_TRY(bindOutput(static_cast<int>(i), id, g.outputName(i)));
    }
    return Status::ok();
  }

  Status runTraining(const Graph &g);
  Status lowerSchedule(const std::string &optimizer, const schema::Config &schedule);
  const schema::Config *optimizerConfig_ = nullptr;
  TrainingOptions trainingOptions_;

private:
  KernelProgram &p_;
  bool training_;
  GradState grad_;
  // Training: every lowered op with its buffers, for the backward pass.
  struct Record {
    const Op *op;
    std::vector<int> ins, outs, params;
    std::string path;
    std::map<std::string, int> saved;
  };
  std::vector<std::unique_ptr<Record>> records_;
  std::set<std::string> names_;
  // Loop bodies lowered for training: their records and their input / output buffers.
  struct Body {
    std::vector<std::unique_ptr<Record>> records;
    std::vector<int> inputs, outputs;
    std::vector<int> copiedFrom; // per output: the buffer it is a copy of, or -1
    std::vector<KernelCall> calls;
  };
  std::vector<Body> bodies_;
  std::vector<Step> *stepsOverride_ = nullptr; // where a body's steps go while it is lowered

  std::vector<Step> &steps() {
    return stepsOverride_ ? *stepsOverride_ : training_ ? p_.trainSteps : p_.steps;
  }
  Status bindTrainingInputs(const Graph &g, std::map<const Value *, int> &values);
  Status lowerLosses(const Graph &g, const std::map<const Value *, int> &values);
  Status lowerBackward(std::vector<std::unique_ptr<Record>> &records);
  Status lowerUpdates();
  KernelCall call(const std::string &fn, std::vector<Arg> args) {
    KernelCall c;
    c.function = fn;
    c.args = std::move(args);
    return c;
  }
  std::map<const Layer *, std::vector<int>> paramBuffers_;
  std::set<int> outputBuffers_;

  std::string unique(const std::string &base) {
    std::string n = base;
    for (int k = 1; !names_.insert(n).second; ++k)
      n = base + "_" + std::to_string(k);
    return n;
  }

  int add(Buffer b) {
    b.training = training_;
    p_.buffers.push_back(b);
    return static_cast<int>(p_.buffers.size()) - 1;
  }

  int root(int id) const {
    while (p_.buffers[size_t(id)].kind == Buffer::Kind::Alias)
      id = p_.buffers[size_t(id)].aliasOf;
    return id;
  }

  static bool onlyEmbeddingReads(const Graph &g, const Value *v) {
    bool any = false;
    for (const auto &op : g.ops)
      for (const Value *in : op->inputs)
        if (in == v) {
          if (op->layer->className != "Embedding")
            return false;
          any = true;
        }
    return any;
  }

  static std::vector<Dim> mapShape(const std::vector<Dim> &shape, const std::map<Dim, Dim> &symbols) {
    std::vector<Dim> out = shape;
    for (Dim &d : out)
      if (isDynamic(d)) {
        auto it = symbols.find(d);
        if (it != symbols.end())
          d = it->second;
      }
    return out;
  }

  const std::vector<int> &params(const Layer &layer, const std::string &path) {
    auto it = paramBuffers_.find(&layer);
    if (it != paramBuffers_.end())
      return it->second;
    std::vector<int> ids;
    for (const Param &prm : layer.params) {
      Buffer b;
      b.kind = Buffer::Kind::Param;
      // The training program reuses the inference program's parameter slots.
      b.index = -1;
      for (size_t k = 0; k < p_.params.size(); ++k)
        if (p_.params[k].param == &prm)
          b.index = static_cast<int>(k);
      b.dtype = prm.type.dtype;
      b.shape = prm.type.shape;
      b.name = unique("w_" + identifier(path) + "_" + identifier(prm.name));
      b.description = path + "/" + prm.name + " " + shapeToString(b.shape);
      if (b.index < 0) {
        b.index = static_cast<int>(p_.params.size());
        p_.params.push_back({path, &prm});
      }
      ids.push_back(add(b));
    }
    return paramBuffers_[&layer] = ids;
  }

  Status lowerGraph(const Graph &g, const std::string &prefix, const std::map<Dim, Dim> &symbols,
                    std::map<const Value *, int> &values) {
    for (const auto &opPtr : g.ops) {
      const Op &op = *opPtr;
      const Layer &layer = *op.layer;
      if (layer.className == "InputLayer")
        continue; // bound by the caller
      std::string path = prefix + op.path();
      std::vector<int> ins;
      for (const Value *v : op.inputs)
        ins.push_back(values.at(v));
      if (layer.subgraph) {
        FGC_TRY(lowerNested(op, path, ins, values));
        continue;
      }
      std::vector<int> outs;
      for (size_t k = 0; k < op.outputs.size(); ++k) {
        Buffer b;
        b.kind = Buffer::Kind::Activation;
        b.dtype = op.outputs[k]->type.dtype;
        b.shape = mapShape(op.outputs[k]->type.shape, symbols);
        for (Dim d : b.shape)
          if (d == kUnknownDim)
            return Error::format("{}: output shape {} has a run-time size fgc cannot compute yet "
                                 "(derived from None dimensions)",
                                 layer.describe(), shapeToString(b.shape));
        std::string base = identifier(path);
        if (layer.calls.size() > 1)
          base += "_call" + std::to_string(op.nodeIndex);
        if (op.outputs.size() > 1)
          base += "_out" + std::to_string(k);
        b.name = unique(base);
        b.description = path + " " + shapeToString(b.shape);
        outs.push_back(add(b));
        values[op.outputs[k].get()] = outs.back();
      }
      if (!layer.def->lower)
        return Error::format("{}: fgc cannot compile this layer class yet", layer.describe());
      const std::vector<int> &ps = params(layer, path);
      LowerContext ctx(p_, op, ins, outs, ps, path, symbols);
      ctx.setBodies(this);
      if (training_) {
        records_.push_back(std::make_unique<Record>(Record{&op, ins, outs, ps, path, {}}));
        ctx.setTraining(&grad_, &records_.back()->saved);
        FGC_TRY(layer.def->lowerTrain ? layer.def->lowerTrain(ctx) : layer.def->lower(ctx));
        // An output needs a gradient when it depends on trainable weights.
        bool depends = false;
        for (int id : ins)
          depends |= grad_.needsGrad.count(root(id)) > 0;
        if (layer.trainable)
          for (const Param &prm : layer.params)
            depends |= prm.trainable;
        if (depends)
          for (int id : outs)
            grad_.needsGrad.insert(root(id));
      } else {
        FGC_TRY(layer.def->lower(ctx));
      }
      Step step;
      step.layerName = path;
      step.className = layer.className;
      std::string from, to;
      for (int id : ins)
        from += (from.empty() ? "" : ", ") + shapeToString(p_.buffers[size_t(id)].shape);
      for (int id : outs)
        to += (to.empty() ? "" : ", ") + shapeToString(p_.buffers[size_t(id)].shape);
      step.comment = fmt::format("{} ({}{}): {} -> {}", path, layer.className,
                                 layer.calls.size() > 1 ? fmt::format(", call {}", op.nodeIndex) : "",
                                 from, to);
      step.calls = ctx.takeCalls();
      steps().push_back(std::move(step));
    }
    return Status::ok();
  }

  // A nested model: its inputs are the caller's buffers, its symbols the caller's dimensions.
  Status lowerNested(const Op &op, const std::string &path, const std::vector<int> &ins,
                     std::map<const Value *, int> &values) {
    const Graph &sub = *op.layer->subgraph;
    std::map<const Value *, int> inner;
    std::map<Dim, Dim> symbols;
    for (size_t i = 0; i < sub.inputs.size(); ++i) {
      inner[sub.inputs[i]] = ins[i];
      const auto &declared = sub.inputs[i]->type.shape;
      const auto &given = p_.buffers[size_t(ins[i])].shape;
      for (size_t k = 0; k < declared.size() && k < given.size(); ++k)
        if (isDynamic(declared[k]))
          symbols[declared[k]] = given[k];
    }
    FGC_TRY(lowerGraph(sub, path + "/", symbols, inner));
    for (size_t k = 0; k < op.outputs.size(); ++k)
      values[op.outputs[k].get()] = inner.at(sub.outputs[k]);
    return Status::ok();
  }

  // Output i is written in place by its producer when it can be; otherwise (an input, a view, a
  // value that is already another output) it is copied.
  Status bindOutput(int i, int id, const std::string &name) {
    int root = id;
    while (p_.buffers[size_t(root)].kind == Buffer::Kind::Alias)
      root = p_.buffers[size_t(root)].aliasOf;
    Buffer &r = p_.buffers[size_t(root)];
    if (root == id && r.kind == Buffer::Kind::Activation && !outputBuffers_.count(root) &&
        r.dtype == schema::FLOAT32) {
      r.kind = Buffer::Kind::Output;
      r.index = i;
      outputBuffers_.insert(root);
      p_.outputs.push_back(root);
      return Status::ok();
    }
    Buffer out = p_.buffers[size_t(id)];
    out.kind = Buffer::Kind::Output;
    out.index = i;
    out.aliasOf = -1;
    out.indexInput = false;
    out.name = unique("out_" + identifier(name));
    out.description = name + " " + shapeToString(out.shape);
    if (r.dtype != schema::FLOAT32)
      return Error::format("output '{}' is an {} tensor; only float32 outputs are supported", name,
                           dtypeName(r.dtype));
    int outId = add(out);
    p_.outputs.push_back(outId);
    Step step;
    step.layerName = name;
    step.className = "Output";
    step.comment = fmt::format("output {} '{}' {}: a copy", i, name, shapeToString(out.shape));
    KernelCall c;
    c.function = "fgc_copy";
    Arg src, dst, n;
    src.kind = dst.kind = Arg::Kind::Buffer;
    src.buffer = root;
    dst.buffer = outId;
    n.kind = Arg::Kind::Size;
    n.size = out.elements();
    c.args = {src, dst, n};
    step.calls.push_back(c);
    p_.steps.push_back(step);
    return Status::ok();
  }
};


Status Lowerer::runTraining(const Graph &g) {
  p_.training = true;
  optimizerConfig_ = &g.training.optimizer();
  if (g.training.losses_size() == 0)
    return Error::format("model '{}' has no loss: compile() it (Model::compile, or the model "
                         "file's `training` config) before generating training code",
                         g.name);
  std::map<const Value *, int> values;
  FGC_TRY(bindTrainingInputs(g, values));
  std::map<Dim, Dim> identity;
  FGC_TRY(lowerGraph(g, "", identity, values));
  FGC_TRY(lowerLosses(g, values));
  FGC_TRY(lowerBackward(records_));
  FGC_TRY(lowerUpdates());
  // Where the gradients are after a step (the generated gradient accessors).
  auto written = [&](int forward) {
    auto it = grad_.gradOf.find(root(forward));
    return it != grad_.gradOf.end() && grad_.written.count(it->second) ? it->second : -1;
  };
  p_.paramGradients.assign(p_.params.size(), -1);
  for (const auto &[param, buffer] : grad_.paramGrad)
    for (size_t k = 0; k < p_.params.size(); ++k)
      if (p_.params[k].param == param && grad_.written.count(buffer))
        p_.paramGradients[k] = buffer;
  for (size_t i = 0; i < g.inputs.size(); ++i)
    p_.inputGradients.push_back(written(values.at(g.inputs[i])));
  return Status::ok();
}

Status Lowerer::bindTrainingInputs(const Graph &g, std::map<const Value *, int> &values) {
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const Buffer &inference = p_.buffers[size_t(p_.inputs[i])];
    Buffer b = inference;
    b.name = unique("in_" + identifier(g.inputs[i]->producer->layer->name));
    values[g.inputs[i]] = add(b);
    if (trainingOptions_.inputGradients && !b.indexInput && b.dtype == schema::FLOAT32)
      grad_.needsGrad.insert(values[g.inputs[i]]);
  }
  return Status::ok();
}

namespace {
double configNumber(const schema::Config &c, const std::string &key, double def) {
  auto it = c.attrs().find(key);
  if (it == c.attrs().end())
    return def;
  if (it->second.value_case() == AttrValue::kF)
    return it->second.f();
  if (it->second.value_case() == AttrValue::kI)
    return double(it->second.i());
  if (it->second.value_case() == AttrValue::kB)
    return it->second.b() ? 1.0 : 0.0;
  return def;
}

// Keras's loss names: classes and their function aliases.
std::string canonicalLoss(const std::string &name) {
  static const std::map<std::string, std::string> aliases = {
      {"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"},
      {"categorical_crossentropy", "CategoricalCrossentropy"},
      {"binary_crossentropy", "BinaryCrossentropy"},
      {"mse", "MeanSquaredError"}, {"mean_squared_error", "MeanSquaredError"},
      {"mae", "MeanAbsoluteError"}, {"mean_absolute_error", "MeanAbsoluteError"},
      {"huber", "Huber"}, {"huber_loss", "Huber"}};
  auto it = aliases.find(name);
  return it == aliases.end() ? name : it->second;
}
} // namespace

Status Lowerer::lowerLosses(const Graph &g, const std::map<const Value *, int> &values) {
  // Which loss applies to which output.
  std::vector<const schema::LossSpec *> lossOf(g.outputs.size(), nullptr);
  for (const auto &spec : g.training.losses()) {
    bool matched = false;
    for (size_t i = 0; i < g.outputs.size(); ++i)
      if (spec.output().empty() || spec.output() == g.outputName(i)) {
        lossOf[i] = &spec;
        matched = true;
      }
    if (!matched)
      return Error::format("model '{}': the loss for '{}' names no output (outputs: {})", g.name,
                           spec.output(), fmt::join(p_.outputNames, ", "));
  }
  // Targets: one per output with a loss (sparse labels are (batch,)).
  Step step;
  step.layerName = "losses";
  step.className = "Loss";
  step.comment = "losses and their gradients";
  if (std::count(lossOf.begin(), lossOf.end(), nullptr) == std::ptrdiff_t(lossOf.size()))
    return Error::format("model '{}': no output has a loss (outputs: {})", g.name,
                         fmt::join(p_.outputNames, ", "));
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    if (!lossOf[i]) {
      // Keras 2: the output is left out of training, with a warning; it takes no target.
      p_.warnings.push_back(fmt::format(
          "Output {0} missing from loss dictionary. We assume this was done on purpose. The fit "
          "and evaluate APIs will not be expecting any data to be passed to {0}.",
          g.outputLayer(i).name));
      continue;
    }
    std::string cls = canonicalLoss(lossOf[i]->class_name());
    int pred = values.at(g.outputs[i]);
    const Buffer &predBuf = p_.buffers[size_t(pred)];
    Buffer t;
    t.kind = Buffer::Kind::Target;
    t.index = static_cast<int>(p_.targets.size());
    t.dtype = schema::FLOAT32;
    t.shape = cls == "SparseCategoricalCrossentropy" ? std::vector<Dim>{predBuf.shape[0]}
                                                     : predBuf.shape;
    t.name = unique("target_" + identifier(g.outputName(i)));
    t.description = "target of " + g.outputName(i) + " " + shapeToString(t.shape);
    int target = add(t);
    p_.targets.push_back(target);
    p_.targetOutputs.push_back(static_cast<int>(i));
    int dy = gradientBuffer(p_, grad_, pred);
    if (grad_.written.count(dy))
      return Error::format("model '{}': output '{}' has two losses", g.name, g.outputName(i));
    grad_.written.insert(dy);
    const auto &shape = p_.buffers[size_t(root(pred))].shape;
    SymSize rows = SymSize::product(shape, 0, shape.size() - 1);
    SymSize cols = SymSize::product(shape, shape.size() - 1, shape.size());
    double weight = lossOf[i]->weight() == 0 ? 1.0 : lossOf[i]->weight();
    KernelProgram::Loss loss{g.outputName(i), cls, weight, p_.numAccumulators++};
    p_.losses.push_back(loss);
    auto buf = [](int id) { Arg a; a.kind = Arg::Kind::Buffer; a.buffer = id; return a; };
    auto sz = [](const SymSize &v) { Arg a; a.kind = Arg::Kind::Size; a.size = v; return a; };
    auto flt = [](double v) { Arg a; a.kind = Arg::Kind::Float; a.floatValue = v; return a; };
    auto integer = [](int64_t v) { Arg a; a.kind = Arg::Kind::Int; a.intValue = v; return a; };
    Arg out;
    out.kind = Arg::Kind::LossOut;
    out.intValue = loss.accumulator;
    Arg null;
    bool logits = configNumber(lossOf[i]->config(), "from_logits", 0) != 0;
    std::string fn;
    std::vector<Arg> args = {buf(target), buf(pred), null, sz(rows), sz(cols)};
    if (cls == "SparseCategoricalCrossentropy") {
      fn = "fgc_loss_sparse_categorical_crossentropy_f32";
      args.push_back(integer(logits));
    } else if (cls == "CategoricalCrossentropy") {
      fn = "fgc_loss_categorical_crossentropy";
      args.push_back(integer(logits));
    } else if (cls == "BinaryCrossentropy") {
      fn = "fgc_loss_binary_crossentropy";
      args.push_back(integer(logits));
    } else if (cls == "MeanSquaredError") {
      fn = "fgc_loss_mean_squared_error";
    } else if (cls == "MeanAbsoluteError") {
      fn = "fgc_loss_mean_absolute_error";
    } else if (cls == "Huber") {
      fn = "fgc_loss_huber";
      args.push_back(flt(configNumber(lossOf[i]->config(), "delta", 1.0)));
    } else {
      return Error::format("model '{}': loss '{}' for output '{}' is not supported (supported: "
                           "SparseCategoricalCrossentropy, CategoricalCrossentropy, "
                           "BinaryCrossentropy, MeanSquaredError, MeanAbsoluteError, Huber)",
                           g.name, lossOf[i]->class_name(), g.outputName(i));
    }
    args.push_back(flt(weight));
    args.push_back(out);
    args.push_back(buf(dy));
    step.calls.push_back(call(fn, args));
  }
  // Log names as Keras prints them: loss, per-output losses (several outputs), metrics.
  p_.logNames = {"loss"};
  // Keras names per-output losses and metrics by output whenever the model has several outputs.
  bool multi = g.outputs.size() > 1;
  if (multi)
    for (const auto &l : p_.losses)
      p_.logNames.push_back(l.output + "_loss");
  for (const auto &m : g.training.metrics()) {
    for (size_t li = 0; li < p_.losses.size(); ++li) {
      const auto &l = p_.losses[li];
      if (!m.output().empty() && m.output() != l.output)
        continue;
      size_t i = size_t(std::find(p_.outputNames.begin(), p_.outputNames.end(), l.output) -
                        p_.outputNames.begin());
      int pred = values.at(g.outputs[i]);
      const auto &shape = p_.buffers[size_t(root(pred))].shape;
      SymSize rows = SymSize::product(shape, 0, shape.size() - 1);
      SymSize cols = SymSize::product(shape, shape.size() - 1, shape.size());
      KernelProgram::Metric metric;
      metric.name = (multi ? l.output + "_" : "") + m.name();
      metric.output = int(i);
      metric.rows = rows;
      metric.elements = rows * cols;
      std::string fn;
      std::vector<Arg> args;
      Arg target;
      target.kind = Arg::Kind::Buffer;
      target.buffer = p_.targets[li];
      Arg predArg;
      predArg.kind = Arg::Kind::Buffer;
      predArg.buffer = pred;
      Arg r, c;
      r.kind = c.kind = Arg::Kind::Size;
      r.size = rows;
      c.size = cols;
      Arg acc;
      if (m.name() == "accuracy" || m.name() == "acc") {
        metric.kind = "count";
        metric.accumulator = p_.numCounters++;
        acc.kind = Arg::Kind::CountOut;
        acc.intValue = metric.accumulator;
        if (l.className == "SparseCategoricalCrossentropy")
          fn = "fgc_metric_sparse_categorical_accuracy_f32", args = {target, predArg, r, c, acc};
        else if (l.className == "BinaryCrossentropy") {
          Arg th;
          th.kind = Arg::Kind::Float;
          th.floatValue = 0.5;
          fn = "fgc_metric_binary_accuracy", args = {target, predArg, r, c, th, acc};
        } else
          fn = "fgc_metric_categorical_accuracy", args = {target, predArg, r, c, acc};
      } else if (m.name() == "mae" || m.name() == "mean_absolute_error") {
        metric.kind = "sum";
        metric.accumulator = p_.numAccumulators++;
        acc.kind = Arg::Kind::LossOut;
        acc.intValue = metric.accumulator;
        fn = "fgc_metric_mean_absolute_error", args = {target, predArg, r, c, acc};
      } else {
        return Error::format("model '{}': metric '{}' is not supported (accuracy, acc, mae)",
                             g.name, m.name());
      }
      p_.metrics.push_back(metric);
      p_.logNames.push_back(metric.name);
      step.calls.push_back(call(fn, args));
    }
  }
  steps().push_back(std::move(step));
  return Status::ok();
}

Status Lowerer::lowerBackward(std::vector<std::unique_ptr<Record>> &records) {
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    Record &r = **it;
    const Layer &layer = *r.op->layer;
    if (layer.def->view)
      continue; // the view shares its input's gradient buffer
    bool reached = false;
    for (int id : r.outs) {
      auto g = grad_.gradOf.find(root(id));
      reached |= g != grad_.gradOf.end() && grad_.written.count(g->second);
    }
    if (!reached)
      continue;
    if (!layer.def->gradient)
      return Error::format("{}: fgc cannot train this layer class yet (no gradient rule)",
                           layer.describe());
    LowerContext ctx(p_, *r.op, r.ins, r.outs, r.params, r.path, {});
    ctx.setTraining(&grad_, &r.saved);
    ctx.setBodies(this);
    FGC_TRY(layer.def->gradient(ctx));
    Step step;
    step.layerName = r.path;
    step.className = layer.className;
    step.comment = fmt::format("backward of {} ({}{})", r.path, layer.className,
                               layer.calls.size() > 1 ? fmt::format(", call {}", r.op->nodeIndex)
                                                      : "");
    step.calls = ctx.takeCalls();
    steps().push_back(std::move(step));
  }
  return Status::ok();
}

// --- loop bodies ------------------------------------------------------------------------------

Expected<BodyLowering::Forward> Lowerer::forward(const Graph &body, const std::string &path,
                                                 const std::vector<int> &inputs,
                                                 const std::vector<bool> &needsGrad) {
  if (body.inputs.size() != inputs.size())
    return Error::format("{}: its body takes {} inputs, the lowering binds {}", path,
                         body.inputs.size(), inputs.size());
  std::map<const Value *, int> values;
  std::map<Dim, Dim> symbols;
  for (size_t i = 0; i < inputs.size(); ++i) {
    values[body.inputs[i]] = inputs[i];
    const auto &declared = body.inputs[i]->type.shape;
    const auto &given = p_.buffers[size_t(inputs[i])].shape;
    for (size_t k = 0; k < declared.size() && k < given.size(); ++k)
      if (isDynamic(declared[k]))
        symbols[declared[k]] = given[k];
    if (training_ && i < needsGrad.size() && needsGrad[i])
      grad_.needsGrad.insert(root(inputs[i]));
  }
  // The body's steps and records go aside, to be flattened into the op's calls.
  std::vector<Step> bodySteps;
  std::vector<Step> *savedOverride = stepsOverride_;
  stepsOverride_ = &bodySteps;
  std::vector<std::unique_ptr<Record>> outer;
  std::swap(outer, records_);
  Status st = lowerGraph(body, path + "/", symbols, values);
  std::swap(outer, records_); // `outer` now holds the body's records
  stepsOverride_ = savedOverride;
  FGC_TRY(st);
  Forward f;
  for (Step &step : bodySteps)
    for (KernelCall &c : step.calls)
      f.calls.push_back(std::move(c));
  std::vector<int> copiedFrom;
  // Outputs that are an input or another output (a state returned unchanged) get a copy.
  std::set<int> taken;
  for (int id : inputs)
    taken.insert(root(id));
  for (size_t k = 0; k < body.outputs.size(); ++k) {
    int id = values.at(body.outputs[k]);
    const Buffer &r = p_.buffers[size_t(root(id))];
    if (taken.insert(root(id)).second && r.kind == Buffer::Kind::Activation) {
      f.outputs.push_back(root(id));
      copiedFrom.push_back(-1);
      continue;
    }
    Buffer b = p_.buffers[size_t(root(id))];
    b.kind = Buffer::Kind::Activation;
    b.aliasOf = -1;
    b.index = 0;
    b.name = unique(identifier(path) + "_body_out" + std::to_string(k));
    b.description = path + " body output " + std::to_string(k) + " " + shapeToString(b.shape);
    int copy = add(b);
    Arg from, to, n;
    from.kind = to.kind = Arg::Kind::Buffer;
    from.buffer = root(id);
    to.buffer = copy;
    n.kind = Arg::Kind::Size;
    n.size = b.elements();
    f.calls.push_back(call("fgc_copy", {from, to, n}));
    if (training_ && grad_.needsGrad.count(root(id)))
      grad_.needsGrad.insert(copy);
    taken.insert(copy);
    f.outputs.push_back(copy);
    copiedFrom.push_back(root(id));
  }
  if (training_) {
    Body saved;
    saved.records = std::move(outer);
    saved.inputs = inputs;
    saved.outputs = f.outputs;
    saved.copiedFrom = copiedFrom;
    saved.calls = f.calls;
    bodies_.push_back(std::move(saved));
    f.id = int(bodies_.size()) - 1;
  }
  return f;
}

Expected<BodyLowering::Backward> Lowerer::backward(int id, const std::vector<int> &outputGrads,
                                                   const std::vector<int> &inputGrads,
                                                   const std::vector<bool> &accumulate) {
  if (!training_ || id < 0 || size_t(id) >= bodies_.size())
    return Error("internal: backward of a loop body that was not lowered for training");
  Body &body = bodies_[size_t(id)];
  // The body's own gradient bookkeeping: its gradients start afresh in every iteration, bound
  // to the op's buffers at its outputs and inputs.
  GradState g;
  g.needsGrad = grad_.needsGrad;
  g.paramGrad = grad_.paramGrad;
  for (const auto &[param, buffer] : grad_.paramGrad)
    if (grad_.written.count(buffer))
      g.written.insert(buffer);
  for (size_t k = 0; k < body.outputs.size() && k < outputGrads.size(); ++k)
    if (outputGrads[k] >= 0) {
      g.gradOf[root(body.outputs[k])] = outputGrads[k];
      g.written.insert(outputGrads[k]);
    }
  for (size_t i = 0; i < body.inputs.size() && i < inputGrads.size(); ++i)
    if (inputGrads[i] >= 0) {
      g.gradOf[root(body.inputs[i])] = inputGrads[i];
      if (accumulate[i])
        g.written.insert(inputGrads[i]);
    }
  std::swap(g, grad_);
  // The copies forward() made of outputs first: their gradients go to what they copied.
  std::vector<KernelCall> copies;
  for (size_t k = 0; k < body.outputs.size() && k < outputGrads.size(); ++k) {
    int from = body.copiedFrom[k], dk = outputGrads[k];
    if (from < 0 || dk < 0 || !grad_.needsGrad.count(from))
      continue;
    int gf = gradientBuffer(p_, grad_, from);
    Arg a, b, n, one;
    a.kind = b.kind = Arg::Kind::Buffer;
    a.buffer = dk;
    b.buffer = gf;
    n.kind = Arg::Kind::Size;
    n.size = p_.buffers[size_t(from)].elements();
    one.kind = Arg::Kind::Float;
    one.floatValue = 1.0;
    copies.push_back(grad_.written.count(gf) ? call("fgc_scale_add", {a, one, b, n})
                                             : call("fgc_copy", {a, b, n}));
    grad_.written.insert(gf);
  }
  std::vector<Step> bodySteps;
  std::vector<Step> *savedOverride = stepsOverride_;
  stepsOverride_ = &bodySteps;
  Status st = lowerBackward(body.records);
  stepsOverride_ = savedOverride;
  std::swap(g, grad_);
  FGC_TRY(st);
  for (const auto &[param, buffer] : g.paramGrad)
    if (g.written.count(buffer)) {
      grad_.paramGrad[param] = buffer;
      grad_.written.insert(buffer);
    }
  Backward b;
  b.forward = body.calls;
  b.calls = std::move(copies);
  for (Step &step : bodySteps)
    for (KernelCall &c : step.calls)
      b.calls.push_back(std::move(c));
  for (size_t i = 0; i < inputGrads.size(); ++i)
    b.written.push_back(inputGrads[i] >= 0 && g.written.count(inputGrads[i]) > 0);
  return b;
}

// A learning-rate schedule as Keras serializes it in the optimizer's config:
// {"class_name": "ExponentialDecay", "config": {"initial_learning_rate": ..., ...}}.
Status Lowerer::lowerSchedule(const std::string &optimizer, const schema::Config &c) {
  static const std::map<std::string, std::map<std::string, double>> defaults = {
      // NaN: required.
      {"ExponentialDecay",
       {{"initial_learning_rate", NAN}, {"decay_steps", NAN}, {"decay_rate", NAN},
        {"staircase", 0.0}}},
      {"CosineDecay",
       {{"initial_learning_rate", NAN}, {"decay_steps", NAN}, {"alpha", 0.0},
        {"warmup_steps", 0.0}}}};
  auto d = defaults.find(c.class_name());
  if (d == defaults.end())
    return Error::format("optimizer {}: learning-rate schedule '{}' is not supported "
                         "(ExponentialDecay, CosineDecay)",
                         optimizer, c.class_name());
  for (const auto &[k, v] : c.attrs()) {
    bool number = v.value_case() == AttrValue::kF || v.value_case() == AttrValue::kI ||
                  v.value_case() == AttrValue::kB;
    if (k == "name" || (k == "warmup_target" && v.value_case() == AttrValue::kNone))
      continue;
    if (!d->second.count(k))
      return Error::format("optimizer {}: {} has no argument '{}'", optimizer, c.class_name(), k);
    if (!number)
      return Error::format("optimizer {}: {} argument '{}' must be a number", optimizer,
                           c.class_name(), k);
  }
  p_.schedule.className = c.class_name();
  for (const auto &[k, def] : d->second) {
    double v = configNumber(c, k, def);
    if (std::isnan(v))
      return Error::format("optimizer {}: {} needs '{}'", optimizer, c.class_name(), k);
    p_.schedule.config[k] = v;
  }
  if (p_.schedule.config["decay_steps"] <= 0)
    return Error::format("optimizer {}: {} needs decay_steps > 0, got {}", optimizer,
                         c.class_name(), p_.schedule.config["decay_steps"]);
  if (p_.schedule.config.count("warmup_steps") && p_.schedule.config["warmup_steps"] != 0)
    return Error::format("optimizer {}: CosineDecay with warmup is not supported", optimizer);
  p_.schedule.config.erase("warmup_steps");
  return Status::ok();
}

Status Lowerer::lowerUpdates() {
  // The optimizer and its hyper-parameters, with Keras's defaults.
  const schema::Config &opt = *optimizerConfig_;
  std::string cls = opt.class_name().empty() ? "RMSprop" : opt.class_name();
  static const std::map<std::string, std::map<std::string, double>> defaults = {
      {"SGD", {{"learning_rate", 0.01}, {"momentum", 0.0}, {"nesterov", 0.0}}},
      {"RMSprop",
       {{"learning_rate", 0.001}, {"rho", 0.9}, {"momentum", 0.0}, {"epsilon", 1e-7},
        {"centered", 0.0}}},
      {"Adam",
       {{"learning_rate", 0.001}, {"beta_1", 0.9}, {"beta_2", 0.999}, {"epsilon", 1e-7},
        {"amsgrad", 0.0}}},
      {"AdamW",
       {{"learning_rate", 0.001}, {"weight_decay", 0.004}, {"beta_1", 0.9}, {"beta_2", 0.999},
        {"epsilon", 1e-7}, {"amsgrad", 0.0}}},
      {"Adagrad",
       {{"learning_rate", 0.001}, {"initial_accumulator_value", 0.1}, {"epsilon", 1e-7}}}};
  auto d = defaults.find(cls);
  if (d == defaults.end())
    return Error::format("optimizer '{}' is not supported (SGD, RMSprop, Adam, AdamW, Adagrad)",
                         cls);
  p_.optimizerClass = cls;
  for (const auto &[k, def] : d->second)
    p_.optimizerConfig[k] = configNumber(opt, k, def);
  if (auto lr = opt.attrs().find("learning_rate");
      lr != opt.attrs().end() && lr->second.value_case() == AttrValue::kObj) {
    FGC_TRY(lowerSchedule(cls, lr->second.obj()));
    p_.optimizerConfig["learning_rate"] = p_.schedule.config.at("initial_learning_rate");
  }
  for (const char *k : {"clipnorm", "clipvalue", "global_clipnorm"})
    if (opt.attrs().count(k))
      p_.optimizerConfig[k] = configNumber(opt, k, 0);
  auto cfg = [&](const char *k) {
    Arg a;
    a.kind = Arg::Kind::Float;
    a.floatValue = p_.optimizerConfig.at(k);
    return a;
  };
  auto integer = [](int64_t v) {
    Arg a;
    a.kind = Arg::Kind::Int;
    a.intValue = v;
    return a;
  };
  auto buf = [](int id) {
    Arg a;
    a.kind = Arg::Kind::Buffer;
    a.buffer = id;
    return a;
  };
  auto value = [](const char *name) {
    Arg a;
    a.kind = Arg::Kind::Value;
    a.enumName = name;
    return a;
  };
  auto slot = [&](const std::string &kind, const std::string &paramName, const Buffer &like) {
    std::string base = kind + "_" + paramName;
    p_.slots.push_back({int(p_.buffers.size()), like.index, kind});
    Buffer b;
    b.kind = Buffer::Kind::State;
    b.dtype = schema::FLOAT32;
    b.shape = like.shape;
    b.index = static_cast<int>(p_.stateFloats);
    p_.stateFloats += like.elements().coeff;
    b.name = unique(base);
    b.description = "optimizer slot " + base;
    return add(b);
  };

  Step step;
  step.layerName = "optimizer";
  step.className = cls;
  step.comment = fmt::format("{} updates", cls);
  // Every trainable parameter with a gradient, in parameter order.
  std::vector<std::pair<int, int>> updates; // (param buffer, gradient buffer)
  for (size_t b = 0; b < p_.buffers.size(); ++b) {
    const Buffer &pb = p_.buffers[b];
    if (!pb.training || pb.kind != Buffer::Kind::Param)
      continue;
    const Param *prm = p_.params[size_t(pb.index)].param;
    auto it = grad_.paramGrad.find(prm);
    if (it == grad_.paramGrad.end() || !grad_.written.count(it->second))
      continue;
    updates.push_back({int(b), it->second});
  }
  if (p_.optimizerConfig.count("global_clipnorm")) {
    Arg list, sizes;
    list.kind = Arg::Kind::BufferList;
    list.mutableList = true;
    sizes.kind = Arg::Kind::SizeList;
    for (auto [w, g] : updates) {
      list.buffers.push_back(g);
      sizes.sizes.push_back(p_.buffers[size_t(g)].elements());
    }
    Arg null;
    step.calls.push_back(call("fgc_clip_by_global_norm",
                              {list, sizes, integer(int64_t(updates.size())),
                               cfg("global_clipnorm"), null}));
  }
  for (auto [w, g] : updates) {
    // A copy: slot() adds buffers, which may move p_.buffers.
    const Buffer wb = p_.buffers[size_t(w)];
    Arg n;
    n.kind = Arg::Kind::Size;
    n.size = wb.elements();
    if (p_.optimizerConfig.count("clipnorm"))
      step.calls.push_back(call("fgc_clip_by_norm", {buf(g), n, cfg("clipnorm")}));
    if (p_.optimizerConfig.count("clipvalue"))
      step.calls.push_back(call("fgc_clip_by_value", {buf(g), n, cfg("clipvalue")}));
    std::string base = wb.name.substr(2);
    Arg null;
    if (cls == "SGD") {
      bool momentum = p_.optimizerConfig["momentum"] != 0;
      int v = momentum ? slot("momentum", base, wb) : -1;
      step.calls.push_back(call("fgc_sgd_update",
                                {buf(w), buf(g), momentum ? buf(v) : null, n,
                                 value("learningRate"), cfg("momentum"),
                                 integer(p_.optimizerConfig["nesterov"] != 0)}));
    } else if (cls == "RMSprop") {
      int ms = slot("rms", base, wb);
      int mom = p_.optimizerConfig["momentum"] != 0 ? slot("momentum", base, wb) : -1;
      int mg = p_.optimizerConfig["centered"] != 0 ? slot("mg", base, wb) : -1;
      Arg variant;
      variant.kind = Arg::Kind::Enum;
      variant.enumName = "FGC_RMSPROP_TF2";
      step.calls.push_back(call("fgc_rmsprop_update",
                                {buf(w), buf(g), buf(ms), mom >= 0 ? buf(mom) : null,
                                 mg >= 0 ? buf(mg) : null, n, value("learningRate"), cfg("rho"),
                                 cfg("momentum"), cfg("epsilon"),
                                 integer(p_.optimizerConfig["centered"] != 0), variant}));
    } else if (cls == "Adam" || cls == "AdamW") {
      int m = slot("m", base, wb), v = slot("v", base, wb);
      bool ams = p_.optimizerConfig["amsgrad"] != 0;
      int vhat = ams ? slot("vhat", base, wb) : -1;
      std::vector<Arg> args = {buf(w), buf(g), buf(m), buf(v), ams ? buf(vhat) : null, n,
                               value("step"), value("learningRate")};
      if (cls == "AdamW")
        args.push_back(cfg("weight_decay"));
      args.insert(args.end(), {cfg("beta_1"), cfg("beta_2"), cfg("epsilon"), integer(ams)});
      step.calls.push_back(call(cls == "Adam" ? "fgc_adam_update" : "fgc_adamw_update", args));
    } else {
      int acc = slot("accumulator", base, wb);
      p_.stateInits.push_back({acc, p_.optimizerConfig["initial_accumulator_value"]});
      step.calls.push_back(call("fgc_adagrad_update",
                                {buf(w), buf(g), buf(acc), n, value("learningRate"),
                                 cfg("epsilon")}));
    }
  }
  steps().push_back(std::move(step));
  return Status::ok();
}

} // namespace

Expected<KernelProgram> lowerForInference(const Graph &graph) {
  KernelProgram p;
  Lowerer l(p, false);
  FGC_TRY(l.run(graph));
  return p;
}

} // namespace fgc

namespace fgc {
Status lowerForTraining(const Graph &graph, KernelProgram &program,
                        const TrainingOptions &options) {
  Lowerer l(program, true);
  l.trainingOptions_ = options;
  return l.runTraining(graph);
}
bool isSupportedMetric(const std::string &name) {
  return name == "accuracy" || name == "acc" || name == "mae" || name == "mean_absolute_error";
}

} // namespace fgc
