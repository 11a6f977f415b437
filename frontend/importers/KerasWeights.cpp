// Keras weights to fgc parameters (see KerasWeights.h).
#include "frontend/importers/KerasWeights.h"

#include "frontend/GraphBuilder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace fgc::importers {

namespace {

std::vector<std::string> splitPath(const std::string &s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    if (slash == std::string::npos)
      slash = s.size();
    if (slash > start)
      parts.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// "kernel:0" -> "kernel".
std::string weightName(const std::string &component) {
  auto colon = component.rfind(':');
  return colon == std::string::npos ? component : component.substr(0, colon);
}

const schema::Layer *findLayer(const schema::Model &m, const std::string &name) {
  for (const auto &l : m.layers())
    if (l.name() == name)
      return &l;
  return nullptr;
}

// The path of the layer named `name` inside `m` (searching nested models breadth first).
std::string findNested(const schema::Model &m, const std::string &name, int depth = 0) {
  if (depth > 32)
    return {};
  if (findLayer(m, name))
    return name;
  for (const auto &l : m.layers())
    if (l.has_model()) {
      std::string inner = findNested(l.model(), name, depth + 1);
      if (!inner.empty())
        return l.name() + "/" + inner;
    }
  return {};
}

std::string describeWeights(const std::vector<ImportedWeight> &ws) {
  std::string s;
  for (const auto &w : ws) {
    if (!s.empty())
      s += ", ";
    s += w.path;
    s += ' ';
    s += weightShapeText(w.shape);
  }
  return s.empty() ? "none" : s;
}

std::string describeParams(const Layer &layer) {
  std::string s;
  for (const auto &p : layer.params)
    s += (s.empty() ? "" : ", ") + p.name + " " + shapeToString(p.type.shape);
  return s.empty() ? "none" : s;
}

// Keras 3 vars of one layer group: its own `vars/<i>` in index order, then its child objects'
// (a recurrent layer's `cell`, a wrapper's inner layers), by attribute name.
Status collectVars(const Hdf5File &file, const std::string &group, const std::string &relative,
                   std::vector<ImportedWeight> &out, int depth) {
  if (depth > 16)
    return Status::ok();
  auto groups = file.children(group, true);
  if (!groups)
    return groups.error();
  if (std::find(groups->begin(), groups->end(), "vars") != groups->end()) {
    auto vars = file.children(group + "/vars", false);
    if (!vars)
      return vars.error();
    std::vector<std::pair<long long, std::string>> indexed;
    for (const auto &v : *vars) {
      char *end = nullptr;
      long long i = std::strtoll(v.c_str(), &end, 10);
      indexed.push_back({end && *end == '\0' ? i : (1LL << 62), v});
    }
    std::sort(indexed.begin(), indexed.end());
    for (const auto &[i, v] : indexed) {
      auto a = file.readFloats(group + "/vars/" + v);
      if (!a)
        return a.error();
      ImportedWeight w;
      w.path = relative + "vars/" + v;
      w.shape = a->shape;
      w.data = std::move(a->data);
      out.push_back(std::move(w));
    }
  }
  for (const auto &g : *groups)
    if (g != "vars" && g != "layers")
      FGC_TRY(collectVars(file, group + "/" + g, relative + g + "/", out, depth + 1));
  return Status::ok();
}

Status collectArchiveModel(const Hdf5File &file, const std::string &group,
                           const schema::Model &m, const std::string &prefix, bool sequential,
                           LayerWeights &out, int depth) {
  if (depth > 32)
    return Status::ok();
  std::map<std::string, int> used;
  for (int i = 0; i < m.layers_size(); ++i) {
    const schema::Layer &l = m.layers(i);
    // Keras's Sequential.layers leaves out its InputLayer.
    if (sequential && l.class_name() == "InputLayer")
      continue;
    std::string name = kerasSnakeCase(l.class_name());
    if (auto it = used.find(name); it != used.end()) {
      name += '_';
      name += std::to_string(++it->second);
    } else {
      used[name] = 0;
    }
    std::string path = group + "/" + name;
    std::string layerPath = prefix + l.name();
    if (!file.hasGroup(path))
      continue; // stored at its first path (a layer reachable twice) or has nothing
    if (l.has_model()) {
      FGC_TRY(collectArchiveModel(file, path + "/layers", l.model(), layerPath + "/",
                                  l.class_name() == "Sequential", out, depth + 1));
      continue;
    }
    std::vector<ImportedWeight> ws;
    FGC_TRY(collectVars(file, path, "", ws, 0));
    if (!ws.empty())
      out[layerPath] = std::move(ws);
  }
  return Status::ok();
}

// Matches a layer's file weights to its parameters: the op's hook, or by Keras name, or by
// position when the file has no names.
Expected<std::vector<ImportedWeight>> matchWeights(const Layer &layer,
                                                   std::vector<ImportedWeight> ws,
                                                   const std::string &path) {
  if (layer.def->importWeights)
    return layer.def->importWeights(layer, std::move(ws));
  auto mismatch = [&]() {
    return Error::format("layer '{}' ({}): the file has {} weight(s) for it ({}), but fgc's {} "
                         "needs {} ({})",
                         path, layer.className, ws.size(), describeWeights(ws), layer.className,
                         layer.params.size(), describeParams(layer));
  };
  if (ws.size() != layer.params.size())
    return mismatch();
  std::vector<ImportedWeight> out;
  bool byName = true;
  for (const auto &p : layer.params) {
    int found = -1, count = 0;
    for (size_t i = 0; i < ws.size(); ++i)
      if (ws[i].name == p.name) {
        found = int(i);
        ++count;
      }
    if (count != 1) {
      byName = false;
      break;
    }
    out.push_back(ws[size_t(found)]);
  }
  if (byName)
    return out;
  // Names absent (Keras 3 archives) or ambiguous: Keras's order is fgc's order.
  bool named = std::any_of(ws.begin(), ws.end(), [](const auto &w) { return !w.name.empty(); });
  if (named) {
    std::set<std::string> fileNames, paramNames;
    for (const auto &w : ws)
      fileNames.insert(w.name);
    for (const auto &p : layer.params)
      paramNames.insert(p.name);
    if (fileNames != paramNames && fileNames.size() == ws.size())
      return mismatch();
  }
  return ws;
}

Status attachToModel(schema::Model &m, const Graph &g, const LayerWeights &weights,
                     const std::string &prefix, std::set<std::string> &used) {
  for (int i = 0; i < m.layers_size() && size_t(i) < g.layers.size(); ++i) {
    schema::Layer &sl = *m.mutable_layers(i);
    const Layer &layer = *g.layers[size_t(i)];
    std::string path = prefix + layer.name;
    if (layer.subgraph) {
      FGC_TRY(attachToModel(*sl.mutable_model(), *layer.subgraph, weights, path + "/", used));
      continue;
    }
    auto it = weights.find(path);
    if (layer.params.empty()) {
      if (it != weights.end() && !it->second.empty())
        return Error::format("layer '{}' ({}): the file has {} weight(s) for it ({}), but fgc's "
                             "{} has none",
                             path, layer.className, it->second.size(),
                             describeWeights(it->second), layer.className);
      continue;
    }
    if (it == weights.end())
      return Error::format("layer '{}' ({}): the file has no weights for it (it needs {})", path,
                           layer.className, describeParams(layer));
    used.insert(path);
    auto matched = matchWeights(layer, it->second, path);
    if (!matched)
      return matched.error();
    if (matched->size() != layer.params.size())
      return Error::format("layer '{}' ({}): its weights convert to {} parameter(s), fgc needs {}",
                           path, layer.className, matched->size(), layer.params.size());
    sl.clear_weights();
    for (size_t k = 0; k < matched->size(); ++k) {
      const ImportedWeight &w = (*matched)[k];
      auto *t = sl.add_weights();
      t->set_name(layer.params[k].name);
      t->set_dtype(schema::FLOAT32);
      for (int64_t d : w.shape)
        t->add_shape(d);
      t->set_data(std::string(reinterpret_cast<const char *>(w.data.data()),
                              w.data.size() * sizeof(float)));
    }
  }
  return Status::ok();
}

} // namespace

Expected<LayerWeights> readLegacyWeights(const Hdf5File &file, const std::string &group,
                                         const schema::Model &model) {
  auto layerNames = file.stringListAttribute(group, "layer_names");
  if (!layerNames)
    return layerNames.error();
  LayerWeights out;
  std::string base = group == "/" ? "" : group + "/";
  for (const auto &g : *layerNames) {
    if (!file.hasGroup(base + g))
      return Error::format("{}: layer_names lists '{}', but the file has no group for it",
                           file.name(), g);
    auto names = file.stringListAttribute(base + g, "weight_names");
    if (!names)
      return names.error();
    if (names->empty())
      continue;
    const schema::Layer *top = findLayer(model, g);
    if (!top)
      return Error::format("{}: the file has weights for layer '{}', which the model does not "
                           "have",
                           file.name(), g);
    for (const auto &wn : *names) {
      auto a = file.readFloats(base + g + "/" + wn);
      if (!a)
        return a.error();
      auto parts = splitPath(wn);
      if (parts.empty())
        return Error::format("{}: layer '{}' has an empty weight name", file.name(), g);
      ImportedWeight w;
      w.name = weightName(parts.back());
      w.variable = weightName(wn);
      w.shape = a->shape;
      w.data = std::move(a->data);
      std::string layerPath = g;
      size_t rest = 0;
      if (top->has_model()) {
        // A nested model's group: the weight's layer is the first component naming one of its
        // layers ("conv2d_1/kernel:0", "model_1/conv2d_1/kernel:0").
        std::string inner;
        for (size_t k = 0; k + 1 < parts.size() && inner.empty(); ++k) {
          inner = findNested(top->model(), parts[k]);
          rest = k + 1;
        }
        if (inner.empty())
          return Error::format("{}: weight '{}' in the group of nested model '{}' names none of "
                               "its layers",
                               file.name(), wn, g);
        layerPath += '/';
        layerPath += inner;
      } else {
        // "dense/kernel:0", "lstm/lstm_cell/kernel:0", "sequential_6/dense_26/kernel": the path
        // after the layer's own name.
        for (size_t k = 0; k + 1 < parts.size(); ++k)
          if (parts[k] == g)
            rest = k + 1;
      }
      for (size_t k = rest; k < parts.size(); ++k)
        w.path += (w.path.empty() ? "" : "/") + parts[k];
      out[layerPath].push_back(std::move(w));
    }
  }
  return out;
}

Expected<LayerWeights> readArchiveWeights(const Hdf5File &file, const schema::Model &model) {
  LayerWeights out;
  if (!file.hasGroup("layers"))
    return out;
  FGC_TRY(collectArchiveModel(file, "layers", model, "", false, out, 0));
  return out;
}

Status validateModel(const schema::Model &model, const ImportLog &log) {
  BuildOptions options;
  options.fileName = log.fileName;
  auto g = buildGraph(model, options);
  if (!g)
    return g.error();
  return Status::ok();
}

Status attachWeights(schema::Model &model, const LayerWeights &weights, ImportLog &log) {
  BuildOptions options;
  options.fileName = log.fileName;
  auto g = buildGraph(model, options);
  if (!g)
    return g.error();
  std::set<std::string> used;
  if (auto s = attachToModel(model, **g, weights, "", used); !s)
    return s.error().withContext(log.fileName);
  for (const auto &[path, ws] : weights)
    if (!used.count(path) && !ws.empty())
      return Error::format("{}: the file has weights for '{}' ({}), which is no layer of the "
                           "model",
                           log.fileName, path, describeWeights(ws));
  return validateModel(model, log);
}

std::string weightShapeText(const std::vector<int64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    s += i ? ", " : "";
    s += std::to_string(shape[i]);
  }
  s += shape.size() == 1 ? ",)" : ")";
  return s;
}

} // namespace fgc::importers
