// Keras model configs to fgc's schema (see KerasConfig.h).
#include "frontend/importers/KerasConfig.h"

#include "compiler/codegen/Lowering.h"
#include "compiler/ir/Attrs.h"
#include "compiler/ir/OpRegistry.h"

#include <fmt/format.h>

#include <map>
#include <regex>
#include <set>

namespace fgc::importers {

namespace {

constexpr int kMaxDepth = 32;

const Json *field(const Json &j, const char *key) {
  if (!j.is_object())
    return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string stringField(const Json &j, const char *key) {
  const Json *v = field(j, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

std::string shortJson(const Json &j) {
  std::string s = j.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

bool isModelClass(const std::string &cls) {
  return cls == "Model" || cls == "Functional" || cls == "Sequential";
}

// A layer entry that is itself a model (a nested Functional or Sequential).
bool isNestedModel(const Json &entry) {
  if (!isModelClass(stringField(entry, "class_name")))
    return false;
  const Json *cfg = field(entry, "config");
  return cfg && (cfg->is_array() || field(*cfg, "layers"));
}

// Keras's layer classes (keras.layers), to tell a built-in fgc lacks from a custom layer when
// the file does not say (Keras 2 files have no `module`).
bool isKerasBuiltinLayer(const std::string &cls) {
  static const std::set<std::string> names = {
      "Activation", "ActivityRegularization", "Add", "AdditiveAttention", "AlphaDropout",
      "Attention", "Average", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
      "BatchNormalization", "Bidirectional", "CategoryEncoding", "CenterCrop", "Concatenate",
      "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose",
      "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "Cropping1D", "Cropping2D", "Cropping3D",
      "Dense", "DepthwiseConv1D", "DepthwiseConv2D", "Discretization", "Dot", "Dropout", "ELU",
      "Embedding", "Flatten", "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D",
      "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D",
      "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GroupNormalization", "GRU", "GRUCell",
      "Identity", "InputLayer", "LayerNormalization", "LeakyReLU", "LocallyConnected1D",
      "LocallyConnected2D", "LSTM", "LSTMCell", "Masking", "Maximum", "MaxPooling1D",
      "MaxPooling2D", "MaxPooling3D", "Minimum", "MultiHeadAttention", "Multiply",
      "Normalization", "Permute", "PReLU", "ReLU", "RepeatVector", "Rescaling", "Reshape",
      "SeparableConv1D", "SeparableConv2D", "SimpleRNN", "Softmax", "SpatialDropout1D",
      "SpatialDropout2D", "SpatialDropout3D", "Subtract", "ThresholdedReLU", "TimeDistributed",
      "UnitNormalization", "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D",
      "ZeroPadding2D", "ZeroPadding3D"};
  return names.count(cls) > 0;
}

// Config keys that only matter to Keras's own training or execution machinery and change no
// number fgc computes; dropped whatever their value.
bool isIgnoredKey(const std::string &key) {
  static const std::set<std::string> keys = {"fused", "renorm_momentum", "use_cudnn", "seed",
                                             "autocast", "input_dim_dtype"};
  return keys.count(key) > 0;
}

// Keras's "nothing set" values: None, False, empty lists and dicts.
bool isNeutral(const Json &v) {
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) ||
         ((v.is_array() || v.is_object()) && v.empty());
}

// A regularizer whose factors are all 0 (Keras 2's default L1L2(l1=0, l2=0)) does nothing.
bool allZero(const Json &v, int depth = 0) {
  if (depth > 8)
    return false;
  if (v.is_number())
    return v.get<double>() == 0.0;
  if (v.is_string() || v.is_null())
    return true;
  if (v.is_object() || v.is_array()) {
    for (const auto &e : v)
      if (!allZero(e, depth + 1))
        return false;
    return true;
  }
  return false;
}

// Flattens nested lists of integers (and None, as -1): ((1, 1), (2, 2)) -> (1, 1, 2, 2).
bool flattenInts(const Json &v, std::vector<int64_t> &out, int depth = 0) {
  if (depth > 4)
    return false;
  for (const auto &e : v) {
    if (e.is_null())
      out.push_back(-1);
    else if (e.is_number_integer())
      out.push_back(e.get<int64_t>());
    else if (e.is_number_float() && e.get<double>() == double(int64_t(e.get<double>())))
      out.push_back(int64_t(e.get<double>()));
    else if (e.is_array()) {
      if (!flattenInts(e, out, depth + 1))
        return false;
    } else
      return false;
  }
  return true;
}

// A JSON value as an fgc config value; nullopt when it has no equivalent.
std::optional<AttrValue> toAttr(const Json &v, int depth = 0) {
  if (depth > kMaxDepth)
    return std::nullopt;
  if (v.is_null())
    return makeNone();
  if (v.is_boolean())
    return makeBool(v.get<bool>());
  if (v.is_number_integer())
    return makeInt(v.get<int64_t>());
  if (v.is_number())
    return makeFloat(v.get<double>());
  if (v.is_string())
    return makeString(v.get<std::string>());
  if (v.is_array()) {
    std::vector<int64_t> ints;
    if (flattenInts(v, ints))
      return makeInts(ints);
    bool numbers = true, strings = true;
    for (const auto &e : v) {
      numbers &= e.is_number();
      strings &= e.is_string();
    }
    if (numbers) {
      std::vector<double> fs;
      for (const auto &e : v)
        fs.push_back(e.get<double>());
      return makeFloats(fs);
    }
    if (strings) {
      std::vector<std::string> ss;
      for (const auto &e : v)
        ss.push_back(e.get<std::string>());
      return makeStrings(ss);
    }
    return std::nullopt;
  }
  // An object: Keras's {"class_name", "config"} (initializers, regularizers, constraints).
  std::string cls = stringField(v, "class_name");
  if (cls.empty())
    return std::nullopt;
  AttrMap attrs;
  if (const Json *cfg = field(v, "config"); cfg && cfg->is_object())
    for (const auto &[k, x] : cfg->items()) {
      auto a = toAttr(x, depth + 1);
      if (!a)
        return std::nullopt;
      attrs[k] = *a;
    }
  return makeObject(cls, attrs);
}

// The dtype of a layer: a string, or Keras 3's DTypePolicy object {"config": {"name": ...}}.
Expected<std::string> layerDtype(const Json &v, const std::string &what) {
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_object()) {
    std::string name;
    if (const Json *cfg = field(v, "config"))
      name = stringField(*cfg, "name");
    if (name.rfind("mixed_", 0) == 0)
      return Error::format("{}: dtype policy '{}' (mixed precision) is not supported; fgc "
                           "computes in float32",
                           what, name);
    if (!name.empty())
      return name;
  }
  return Error::format("{}: cannot read its dtype {}", what, shortJson(v));
}

// A layer config nested in another layer's config (Bidirectional's `layer`): the same clean-up
// as a top-level layer's — dtype policies become their names, keys that change nothing are
// dropped — so the wrapping op sees Keras's plain keys.
Expected<Json> cleanNestedLayer(const Json &v, const std::string &what) {
  const Json *cls = field(v, "class_name");
  const Json *cfg = field(v, "config");
  if (!cls || !cls->is_string() || !cfg || !cfg->is_object())
    return v;
  const OpDef *def = OpRegistry::global().find(cls->get<std::string>());
  Json out = Json::object();
  out["class_name"] = *cls;
  Json c = Json::object();
  for (const auto &[key, value] : cfg->items()) {
    if (key == "dtype") {
      auto d = layerDtype(value, what);
      if (!d)
        return d.error();
      c[key] = *d;
      continue;
    }
    bool known = key == "name";
    if (def)
      for (const auto &spec : def->attrs)
        known |= spec.name == key;
    if (!known && (isIgnoredKey(key) || isNeutral(value)))
      continue;
    c[key] = value;
  }
  out["config"] = std::move(c);
  return out;
}

// One tensor reference as the file writes it, before renumbering.
struct RawRef {
  std::string layer;
  int64_t node = 0;
  int64_t tensor = 0;
  bool fromNodes = true; // inbound_nodes (true) or input_layers / output_layers (false)
};

// Reads [layer, node, tensor(, kwargs)] (Keras 1/2) references.
std::optional<RawRef> readListRef(const Json &r) {
  if (!r.is_array() || r.size() < 3 || !r[0].is_string() || !r[1].is_number_integer() ||
      !r[2].is_number_integer())
    return std::nullopt;
  return RawRef{r[0].get<std::string>(), r[1].get<int64_t>(), r[2].get<int64_t>(), true};
}

class Mapper {
public:
  explicit Mapper(ImportLog &log) : log_(log) {}

  Expected<schema::Model> mapTop(const Json &top) {
    keras3_ = field(top, "module") != nullptr;
    std::string cls = stringField(top, "class_name");
    const Json *config = field(top, "config");
    if (!isModelClass(cls) || !config || !(config->is_array() || field(*config, "layers"))) {
      std::string registered = stringField(top, "registered_name");
      return Error::format(
          "{}: the model is a subclassed Keras model (class '{}'): its config holds no layer "
          "graph, only the arguments of its Python class, so fgc cannot import it; rebuild it "
          "with the Functional API or Sequential and save that",
          log_.fileName, registered.empty() ? (cls.empty() ? "<none>" : cls) : registered);
    }
    FGC_TRY(checkClasses(*config, 0));
    auto m = mapModel(cls, *config, 0);
    for (const auto &[key, layers] : unapplied_) {
      std::string list;
      for (size_t i = 0; i < layers.size() && i < 5; ++i)
        list += (i ? ", '" : "'") + layers[i] + "'";
      if (layers.size() > 5)
        list += ", ...";
      log_.warn(fmt::format("{} is set on {} layer(s) ({}): kept in the config, but fgc's "
                            "training does not apply it",
                            key, layers.size(), list));
    }
    return m;
  }

private:
  ImportLog &log_;
  bool keras3_ = false;
  // Regularizers and constraints that are set, by config key: the layers that set them.
  std::map<std::string, std::vector<std::string>> unapplied_;

  // Fails on the first layer fgc can never import, anywhere in the model: Lambda layers and
  // custom classes. Built-in classes fgc lacks are reported where they are mapped.
  Status checkClasses(const Json &config, int depth) {
    if (depth > kMaxDepth)
      return Error::format("{}: models are nested more than {} levels deep", log_.fileName,
                           kMaxDepth);
    const Json *layers = config.is_array() ? &config : field(config, "layers");
    if (!layers || !layers->is_array())
      return Status::ok();
    for (const auto &entry : *layers) {
      std::string cls = stringField(entry, "class_name");
      std::string name = stringField(entry, "name");
      if (name.empty())
        if (const Json *c = field(entry, "config"))
          name = stringField(*c, "name");
      if (field(entry, "module"))
        keras3_ = true;
      if (isNestedModel(entry)) {
        FGC_TRY(checkClasses(*field(entry, "config"), depth + 1));
        continue;
      }
      if (cls == "Lambda")
        return Error::format(
            "{}: layer '{}' (Lambda) holds a Python function (marshalled bytecode); fgc "
            "cannot compile Python code: replace the Lambda with built-in layers, or with a "
            "custom layer registered with fgc's custom-layer API (register_custom_layer in C++, "
            "fgc --plugin LIB.so; README, \"Custom layers\")",
            log_.fileName, name);
      if (OpRegistry::global().find(cls))
        continue;
      const Json *module = field(entry, "module");
      bool custom = module ? !(module->is_string() &&
                               module->get<std::string>().rfind("keras", 0) == 0)
                           : !isKerasBuiltinLayer(cls);
      if (custom)
        return Error::format(
            "{}: layer '{}': unknown layer class '{}', a custom layer (not part of Keras): "
            "register it with fgc's custom-layer API (register_custom_layer<T>(\"{}\") in C++, "
            "fgc --plugin LIB.so; README, \"Custom layers\") or replace it with built-in layers",
            log_.fileName, name, cls.empty() ? "<none>" : cls, cls);
    }
    return Status::ok();
  }

  // A Functional config {"name", "layers", "input_layers", "output_layers"} or a Sequential
  // config (a list of layers, or {"name", "layers"}).
  Expected<schema::Model> mapModel(const std::string &cls, const Json &config, int depth) {
    if (depth > kMaxDepth)
      return Error::format("{}: models are nested more than {} levels deep", log_.fileName,
                           kMaxDepth);
    if (cls == "Sequential")
      return mapSequential(config, depth);
    schema::Model m;
    m.set_schema_version(1);
    m.set_name(stringField(config, "name"));
    const Json &layers = *field(config, "layers");
    if (!layers.is_array())
      return Error::format("{}: model '{}': 'layers' is not a list", log_.fileName, m.name());
    // Which layers are nested models, and of which kind (renumbering depends on it).
    std::map<std::string, std::string> nested;
    for (const auto &entry : layers)
      if (isNestedModel(entry))
        nested[layerName(entry)] = stringField(entry, "class_name");
    std::vector<std::vector<std::vector<RawRef>>> calls; // per layer, per call
    for (const auto &entry : layers) {
      auto layer = mapLayer(entry, depth);
      if (!layer)
        return layer.error();
      auto nodes = readNodes(entry, layer->name());
      if (!nodes)
        return nodes.error();
      calls.push_back(nodes.take());
      *m.add_layers() = layer.take();
    }
    fixSharedModelReferences(m, nested, calls);
    for (int i = 0; i < m.layers_size(); ++i)
      for (const auto &call : calls[size_t(i)]) {
        auto *node = m.mutable_layers(i)->add_nodes();
        for (const auto &r : call)
          *node->add_inputs() = convertRef(r, nested);
      }
    for (const char *key : {"input_layers", "output_layers"}) {
      const Json *refs = field(config, key);
      if (!refs || !refs->is_array())
        return Error::format("{}: model '{}' has no '{}' list", log_.fileName, m.name(), key);
      // A single tensor may be written flat: ["input_1", 0, 0].
      std::vector<Json> list;
      if (!refs->empty() && (*refs)[0].is_string())
        list.push_back(*refs);
      else
        list.assign(refs->begin(), refs->end());
      for (const auto &r : list) {
        auto raw = readListRef(r);
        if (!raw)
          return Error::format("{}: model '{}': cannot read {} entry {}", log_.fileName,
                               m.name(), key, shortJson(r));
        raw->fromNodes = false;
        auto ref = convertRef(*raw, nested);
        *(key[0] == 'i' ? m.add_inputs() : m.add_outputs()) = ref;
      }
    }
    return m;
  }

  static std::string layerName(const Json &entry) {
    std::string name = stringField(entry, "name");
    if (name.empty())
      if (const Json *c = field(entry, "config"))
        name = stringField(*c, "name");
    return name;
  }

  schema::TensorRef convertRef(const RawRef &r,
                               const std::map<std::string, std::string> &nested) const {
    int64_t node = r.node;
    auto it = nested.find(r.layer);
    if (it != nested.end() && node > 0) {
      // Keras 2 counts a nested model's calls from 1 everywhere; Keras 3 only in input_layers /
      // output_layers, and only for Functional models.
      bool shifted = keras3_ ? !r.fromNodes && it->second != "Sequential" : true;
      if (shifted)
        --node;
    }
    schema::TensorRef ref;
    ref.set_layer(r.layer);
    ref.set_node_index(static_cast<int>(std::clamp<int64_t>(node, -1, 1 << 30)));
    ref.set_tensor_index(static_cast<int>(std::clamp<int64_t>(r.tensor, -1, 1 << 30)));
    return ref;
  }

  // Keras 3.2 writes every consumer of a shared nested model as using its call 0. When a nested
  // model has N calls, is referenced exactly N times, always as call 0, the references are taken
  // in order as calls 0..N-1 — the order the model was built in — with a warning.
  void fixSharedModelReferences(const schema::Model &m,
                                const std::map<std::string, std::string> &nested,
                                std::vector<std::vector<std::vector<RawRef>>> &calls) {
    for (const auto &[name, cls] : nested) {
      size_t nCalls = 0;
      for (int i = 0; i < m.layers_size(); ++i)
        if (m.layers(i).name() == name)
          nCalls = calls[size_t(i)].size();
      if (nCalls < 2)
        continue;
      std::vector<RawRef *> refs;
      std::set<std::string> users;
      bool allZero = true;
      for (int i = 0; i < m.layers_size(); ++i)
        for (auto &call : calls[size_t(i)])
          for (auto &r : call)
            if (r.layer == name) {
              refs.push_back(&r);
              users.insert(m.layers(i).name());
              allZero &= r.node == 0;
            }
      if (!allZero || refs.size() != nCalls || !keras3_)
        continue;
      for (size_t k = 0; k < refs.size(); ++k)
        refs[k]->node = int64_t(k);
      std::string userList;
      for (const auto &u : users)
        userList += (userList.empty() ? "'" : ", '") + u + "'";
      log_.warn(fmt::format(
          "the shared nested model '{}' has {} calls, but {} refer(s) to its call 0 every time "
          "and its other calls are used by nothing (Keras 3.2 writes shared nested models this "
          "way); fgc takes the {} references in file order as calls 0 to {}, the order in which "
          "the model was called",
          name, nCalls, userList, refs.size(), nCalls - 1));
    }
  }

  // A Sequential: a chain of layers from an InputLayer (given, or made from the first layer's
  // batch_input_shape as Keras does).
  Expected<schema::Model> mapSequential(const Json &config, int depth) {
    schema::Model m;
    m.set_schema_version(1);
    const Json *layers = config.is_array() ? &config : field(config, "layers");
    m.set_name(config.is_array() ? "sequential" : stringField(config, "name"));
    if (!layers || !layers->is_array() || layers->empty())
      return Error::format("{}: Sequential model '{}' has no layers", log_.fileName, m.name());
    std::string previous;
    for (size_t i = 0; i < layers->size(); ++i) {
      const Json &entry = (*layers)[i];
      if (i == 0 && stringField(entry, "class_name") != "InputLayer") {
        auto input = inputForSequential(entry, m.name());
        if (!input)
          return input.error();
        previous = input->name();
        *m.add_layers() = input.take();
      }
      auto layer = mapLayer(entry, depth);
      if (!layer)
        return layer.error();
      if (layer->class_name() != "InputLayer") {
        if (previous.empty())
          return Error::format("{}: Sequential model '{}': layer '{}' comes before any input",
                               log_.fileName, m.name(), layer->name());
        auto *in = layer->add_nodes()->add_inputs();
        in->set_layer(previous);
      } else if (i != 0) {
        return Error::format("{}: Sequential model '{}': InputLayer '{}' is not the first layer",
                             log_.fileName, m.name(), layer->name());
      }
      previous = layer->name();
      *m.add_layers() = layer.take();
    }
    m.add_inputs()->set_layer(m.layers(0).name());
    m.add_outputs()->set_layer(previous);
    return m;
  }

  Expected<schema::Layer> inputForSequential(const Json &first, const std::string &model) {
    const Json *cfg = field(first, "config");
    const Json *shape = cfg ? field(*cfg, "batch_input_shape") : nullptr;
    if (!shape && cfg)
      shape = field(*cfg, "batch_shape");
    if (isNestedModel(first)) {
      // A Sequential starting with a nested model takes that model's input.
      const Json *inner = field(*cfg, "layers");
      if (inner && inner->is_array() && !inner->empty())
        return inputForSequential((*inner)[0], model);
    }
    if (!shape || !shape->is_array())
      return Error::format("{}: Sequential model '{}' has no input shape (it was never built): "
                           "its first layer '{}' gives no batch_input_shape",
                           log_.fileName, model, layerName(first));
    schema::Layer l;
    l.set_class_name("InputLayer");
    l.set_name(layerName(first) + "_input");
    auto a = toAttr(*shape);
    if (!a || a->value_case() != AttrValue::kInts)
      return Error::format("{}: Sequential model '{}': cannot read the input shape {}",
                           log_.fileName, model, shortJson(*shape));
    (*l.mutable_config())["batch_input_shape"] = *a;
    if (const Json *dt = field(*cfg, "dtype")) {
      auto d = layerDtype(*dt, "layer '" + l.name() + "'");
      if (!d)
        return d.error();
      (*l.mutable_config())["dtype"] = makeString(*d);
    }
    return l;
  }

  Expected<schema::Layer> mapLayer(const Json &entry, int depth) {
    std::string cls = stringField(entry, "class_name");
    std::string name = layerName(entry);
    const Json *config = field(entry, "config");
    if (name.empty() || !config)
      return Error::format("{}: cannot read layer entry {}", log_.fileName, shortJson(entry));
    schema::Layer l;
    l.set_name(name);
    if (isNestedModel(entry)) {
      auto sub = mapModel(cls, *config, depth + 1);
      if (!sub)
        return sub.error();
      if (sub->name().empty())
        sub->set_name(name);
      l.set_class_name(cls == "Sequential" ? "Sequential" : "Functional");
      *l.mutable_model() = sub.take();
      if (config->is_object())
        if (const Json *t = field(*config, "trainable"); t && t->is_boolean() && !t->get<bool>())
          (*l.mutable_config())["trainable"] = makeBool(false);
      return l;
    }
    const OpDef *def = OpRegistry::global().find(cls);
    if (!def) {
      std::string known;
      for (const auto &n : OpRegistry::global().classNames())
        known += (known.empty() ? "" : ", ") + n;
      return Error::format("{}: layer '{}': unknown layer class '{}': fgc has no layer of this "
                           "class yet (it knows {})",
                           log_.fileName, name, cls, known);
    }
    l.set_class_name(cls);
    std::string what = fmt::format("layer '{}' ({})", name, cls);
    if (!config->is_object())
      return Error::format("{}: {}: its config is not an object", log_.fileName, what);
    for (const auto &[key, value] : config->items()) {
      std::string k = key;
      if (k == "name")
        continue;
      if (k == "batch_shape" && cls == "InputLayer")
        k = "batch_input_shape";
      if ((k == "batch_input_shape" || k == "batch_shape" || k == "input_shape" ||
           k == "batch_size") &&
          cls != "InputLayer")
        continue; // the Sequential's input, already made into an InputLayer
      if (k == "dtype") {
        auto d = layerDtype(value, what);
        if (!d)
          return d.error().withContext(log_.fileName);
        (*l.mutable_config())["dtype"] = makeString(*d);
        continue;
      }
      const AttrSpec *spec = nullptr;
      for (const auto &s : def->attrs)
        if (s.name == k)
          spec = &s;
      if (!spec) {
        if (isIgnoredKey(k) || isNeutral(value))
          continue;
        return Error::format("{}: {}: config key '{}' = {} is not supported by fgc's {}",
                             log_.fileName, what, k, shortJson(value), cls);
      }
      // Keras 3 may write an activation as a serialized function object.
      const Json *v = &value;
      Json unwrapped;
      if (spec->kind == AttrKind::Object && value.is_object() && field(value, "class_name")) {
        auto cleaned = cleanNestedLayer(value, what + ": " + k);
        if (!cleaned)
          return cleaned.error().withContext(log_.fileName);
        unwrapped = cleaned.take();
        v = &unwrapped;
      }
      if (spec->kind == AttrKind::String && value.is_object()) {
        if (const Json *c = field(value, "config"); c && c->is_string())
          unwrapped = *c;
        v = &unwrapped;
      }
      auto a = toAttr(*v);
      if (!a)
        return Error::format("{}: {}: cannot read config key '{}' = {}", log_.fileName, what, k,
                             shortJson(value));
      if ((k.size() > 12 && k.compare(k.size() - 12, 12, "_regularizer") == 0) ||
          (k.size() > 11 && k.compare(k.size() - 11, 11, "_constraint") == 0))
        if (!value.is_null() && !allZero(value))
          unapplied_[k].push_back(name);
      (*l.mutable_config())[k] = *a;
    }
    return l;
  }

  // The layer's calls: inbound_nodes in Keras 2 form (a list of [layer, node, tensor, kwargs])
  // or Keras 3 form ({"args": [...], "kwargs": {...}} with __keras_tensor__ objects).
  Expected<std::vector<std::vector<RawRef>>> readNodes(const Json &entry,
                                                      const std::string &name) {
    std::vector<std::vector<RawRef>> calls;
    const Json *nodes = field(entry, "inbound_nodes");
    if (!nodes || nodes->is_null())
      return calls;
    if (!nodes->is_array())
      return Error::format("{}: layer '{}': inbound_nodes is not a list", log_.fileName, name);
    for (const auto &node : *nodes) {
      std::vector<RawRef> refs;
      if (node.is_object()) {
        keras3_ = true;
        if (const Json *args = field(node, "args"))
          collectTensors(*args, refs, 0);
        if (const Json *kwargs = field(node, "kwargs"); kwargs && kwargs->is_object())
          for (const auto &[k, v] : kwargs->items()) {
            size_t before = refs.size();
            collectTensors(v, refs, 0);
            if (refs.size() == before)
              noteCallArgument(name, k, v);
          }
      } else if (node.is_array()) {
        for (const auto &r : node) {
          auto raw = readListRef(r);
          if (!raw)
            return Error::format("{}: layer '{}': cannot read inbound tensor {}", log_.fileName,
                                 name, shortJson(r));
          if (r.size() > 3 && r[3].is_object())
            for (const auto &[k, v] : r[3].items())
              noteCallArgument(name, k, v);
          refs.push_back(*raw);
        }
      } else {
        return Error::format("{}: layer '{}': cannot read inbound node {}", log_.fileName, name,
                             shortJson(node));
      }
      calls.push_back(std::move(refs));
    }
    return calls;
  }

  void collectTensors(const Json &v, std::vector<RawRef> &refs, int depth) {
    if (depth > kMaxDepth)
      return;
    if (v.is_array()) {
      for (const auto &e : v)
        collectTensors(e, refs, depth + 1);
      return;
    }
    if (!v.is_object())
      return;
    if (stringField(v, "class_name") == "__keras_tensor__") {
      const Json *cfg = field(v, "config");
      const Json *h = cfg ? field(*cfg, "keras_history") : nullptr;
      if (h)
        if (auto r = readListRef(*h))
          refs.push_back(*r);
      return;
    }
    for (const auto &[k, e] : v.items())
      collectTensors(e, refs, depth + 1);
  }

  // Call arguments that are not tensors: fgc runs every layer in inference mode at inference
  // and in training mode when training, as Keras does by default.
  void noteCallArgument(const std::string &layer, const std::string &key, const Json &v) {
    if (isNeutral(v) || key == "mask")
      return;
    log_.warn(fmt::format("layer '{}' is called with {}={}, which fgc ignores{}", layer, key,
                          shortJson(v),
                          key == "training" ? " (fgc uses inference mode for inference and "
                                              "training mode for training)"
                                            : ""));
  }
};

// Keras's loss functions by their names in configs.
std::string lossClass(const Json &v) {
  if (v.is_string())
    return v.get<std::string>();
  return stringField(v, "class_name");
}

} // namespace

Expected<Json> parseJson(const std::string &text, const std::string &what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error &e) {
    return Error::format("{}: invalid JSON (truncated or corrupted?): {}", what, e.what());
  }
}

bool looksLikeKerasModel(const Json &j) {
  return j.is_object() && field(j, "class_name") && field(j, "config");
}

Expected<schema::Model> mapKerasModel(const Json &top, ImportLog &log) {
  Mapper mapper(log);
  return mapper.mapTop(top);
}

void mapTrainingConfig(const Json &config, schema::Model &model, ImportLog &log) {
  if (!config.is_object())
    return;
  schema::TrainingConfig t;
  // Optimizer: legacy {"optimizer_config": {"class_name", "config"}}, Keras 3 {"optimizer": ...}.
  const Json *opt = field(config, "optimizer_config");
  if (!opt)
    opt = field(config, "optimizer");
  if (opt && opt->is_object()) {
    std::string cls = stringField(*opt, "class_name");
    if (auto gt = cls.find('>'); gt != std::string::npos)
      cls = cls.substr(gt + 1); // "Custom>Adam" (tf.keras 2.11+)
    if (!cls.empty() && std::islower(static_cast<unsigned char>(cls[0])))
      cls = initializerClassFromName(cls); // "adam" -> "Adam"
    static const std::map<std::string, std::string> upper = {{"Sgd", "SGD"}, {"Rmsprop", "RMSprop"},
                                                             {"Adamw", "AdamW"}};
    if (auto it = upper.find(cls); it != upper.end())
      cls = it->second;
    t.mutable_optimizer()->set_class_name(cls);
    // Keras's hyper-parameters of the optimizers fgc trains with; the rest of a Keras
    // optimizer config (name, EMA and loss-scaling options at their defaults, ...) is dropped,
    // with a warning where it would change the updates.
    static const std::set<std::string> hyper = {
        "learning_rate", "rho",      "momentum",    "epsilon",   "centered",
        "beta_1",        "beta_2",   "amsgrad",     "nesterov",  "weight_decay",
        "initial_accumulator_value", "clipnorm",    "clipvalue", "global_clipnorm"};
    if (const Json *c = field(*opt, "config"); c && c->is_object())
      for (const auto &[k, v] : c->items()) {
        std::string key = k == "lr" ? "learning_rate" : k;
        if (hyper.count(key) && (v.is_number() || v.is_boolean()))
          (*t.mutable_optimizer()->mutable_attrs())[key] = *toAttr(v);
        else if (key == "learning_rate")
          log.warn(fmt::format("the optimizer's learning rate {} (a schedule) is not "
                               "supported; fgc uses the optimizer's default",
                               shortJson(v)));
        else if ((key == "decay" || key == "use_ema") && !isNeutral(v) &&
                 !(v.is_number() && v.get<double>() == 0))
          log.warn(fmt::format("the optimizer's {}={} is not supported; dropped", key,
                               shortJson(v)));
      }
  } else if (opt && opt->is_string()) {
    // compile(optimizer="rmsprop"): Keras's defaults.
    std::string cls = initializerClassFromName(opt->get<std::string>());
    static const std::map<std::string, std::string> upper = {{"Sgd", "SGD"}, {"Rmsprop", "RMSprop"},
                                                             {"Adamw", "AdamW"}};
    if (auto it = upper.find(cls); it != upper.end())
      cls = it->second;
    t.mutable_optimizer()->set_class_name(cls);
  }
  // Losses: one for every output, a dict by output name, or a list in output order.
  std::vector<std::string> outputs;
  for (const auto &o : model.outputs())
    outputs.push_back(o.layer());
  auto addLoss = [&](const std::string &output, const Json &v) {
    std::string cls = lossClass(v);
    if (cls.empty()) {
      log.warn(fmt::format("the loss {} is not a Keras loss fgc can read; dropped",
                           shortJson(v)));
      return;
    }
    auto *l = t.add_losses();
    l->set_output(output);
    l->set_class_name(cls);
    if (const Json *c = field(v, "config"); c && c->is_object())
      for (const auto &[k, x] : c->items())
        if (k != "name" && k != "reduction" && (x.is_number() || x.is_boolean()))
          (*l->mutable_config()->mutable_attrs())[k] = *toAttr(x);
  };
  if (const Json *loss = field(config, "loss"); loss && !loss->is_null()) {
    if (loss->is_string() || (loss->is_object() && field(*loss, "class_name")))
      addLoss("", *loss);
    else if (loss->is_object())
      for (const auto &[k, v] : loss->items())
        addLoss(k, v);
    else if (loss->is_array())
      for (size_t i = 0; i < loss->size() && i < outputs.size(); ++i)
        addLoss(loss->size() == 1 ? "" : outputs[i], (*loss)[i]);
  }
  if (const Json *w = field(config, "loss_weights"); w && !w->is_null()) {
    auto setWeight = [&](const std::string &output, const Json &v) {
      if (!v.is_number())
        return;
      for (auto &l : *t.mutable_losses())
        if (l.output() == output || (l.output().empty() && outputs.size() == 1))
          l.set_weight(v.get<float>());
    };
    if (w->is_object())
      for (const auto &[k, v] : w->items())
        setWeight(k, v);
    else if (w->is_array())
      for (size_t i = 0; i < w->size() && i < outputs.size(); ++i)
        setWeight(outputs[i], (*w)[i]);
  }
  // Metrics: names, per output (dict) or for all outputs (list).
  auto addMetric = [&](const std::string &output, const Json &v) {
    std::string name = v.is_string() ? v.get<std::string>() : "";
    if (name.empty())
      if (const Json *c = field(v, "config"))
        name = stringField(*c, "name");
    if (name.empty())
      return;
    if (!isSupportedMetric(name)) {
      log.warn(fmt::format("metric '{}' is not computed by fgc's training code; dropped", name));
      return;
    }
    auto *m = t.add_metrics();
    m->set_output(output);
    m->set_name(name);
  };
  if (const Json *metrics = field(config, "metrics"); metrics && !metrics->is_null()) {
    if (metrics->is_object())
      for (const auto &[k, v] : metrics->items()) {
        if (v.is_array())
          for (const auto &x : v)
            addMetric(k, x);
        else
          addMetric(k, v);
      }
    else if (metrics->is_array())
      for (const auto &v : *metrics) {
        if (v.is_array())
          for (const auto &x : v)
            addMetric("", x);
        else
          addMetric("", v);
      }
  }
  if (t.losses_size() > 0 || t.has_optimizer())
    *model.mutable_training() = t;
}

std::string kerasSnakeCase(const std::string &className) {
  std::string s;
  for (char c : className)
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_')
      s += c;
  s = std::regex_replace(s, std::regex("(.)([A-Z][a-z]+)"), "$1_$2");
  s = std::regex_replace(s, std::regex("([a-z])([A-Z])"), "$1_$2");
  for (char &c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

} // namespace fgc::importers
