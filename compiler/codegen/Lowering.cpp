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

class Lowerer {
public:
  explicit Lowerer(KernelProgram &p) : p_(p) {}

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
      p_.outputNames.push_back(g.outputs[i]->producer->layer->name);
      FGC_TRY(bindOutput(static_cast<int>(i), id, g.outputs[i]->producer->layer->name));
    }
    return Status::ok();
  }

private:
  KernelProgram &p_;
  std::set<std::string> names_;
  std::map<const Layer *, std::vector<int>> paramBuffers_;
  std::set<int> outputBuffers_;

  std::string unique(const std::string &base) {
    std::string n = base;
    for (int k = 1; !names_.insert(n).second; ++k)
      n = base + "_" + std::to_string(k);
    return n;
  }

  int add(const Buffer &b) {
    p_.buffers.push_back(b);
    return static_cast<int>(p_.buffers.size()) - 1;
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
      b.index = static_cast<int>(p_.params.size());
      b.dtype = prm.type.dtype;
      b.shape = prm.type.shape;
      b.name = unique("w_" + identifier(path) + "_" + identifier(prm.name));
      b.description = path + "/" + prm.name + " " + shapeToString(b.shape);
      p_.params.push_back({path, &prm});
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
      std::string path = prefix + layer.name;
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
      LowerContext ctx(p_, op, ins, outs, params(layer, path), path, symbols);
      FGC_TRY(layer.def->lower(ctx));
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
      p_.steps.push_back(std::move(step));
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

} // namespace

Expected<KernelProgram> lowerForInference(const Graph &graph) {
  KernelProgram p;
  Lowerer l(p);
  FGC_TRY(l.run(graph));
  return p;
}

} // namespace fgc
