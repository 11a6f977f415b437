// Keras's optimizer state to fgc's optimizer slots (see KerasWeights.h).
//
// Keras keeps one slot variable per trainable weight and slot kind. A legacy HDF5 file names
// them after the weight's variable:
//   tf.keras <= 2.10 (OptimizerV2):       Adam/iter:0, Adam/dense/kernel/m:0, .../v:0
//   tf.keras 2.11+ (new optimizers):      iteration:0, Adam/m/dense/kernel:0
//   Keras 3 (legacy .h5):                 adam/iteration, adam/dense_kernel_momentum
// A Keras 3 archive lists them by position (optimizer/vars/<i>). The slots are converted to
// fgc's layouts by running them through the weights' own import (a slot has its weight's
// layout), one slot kind at a time.
#include "frontend/importers/KerasWeights.h"

#include "frontend/GraphBuilder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>

namespace fgc::importers {

namespace {

// fgc's slot name for Keras's, per optimizer class; empty when fgc has no such slot.
std::string fgcSlotName(const std::string &optimizer, const std::string &keras) {
  if (optimizer == "Adam" || optimizer == "AdamW") {
    if (keras == "m" || keras == "momentum")
      return "m";
    if (keras == "v" || keras == "velocity")
      return "v";
    if (keras == "vhat" || keras == "velocity_hat")
      return "vhat";
  } else if (optimizer == "SGD") {
    if (keras == "momentum" || keras == "m")
      return "momentum";
  } else if (optimizer == "RMSprop") {
    if (keras == "rms" || keras == "velocity")
      return "rms";
    if (keras == "momentum")
      return "momentum";
    if (keras == "mg" || keras == "average_gradient")
      return "mg";
  } else if (optimizer == "Adagrad") {
    if (keras == "accumulator")
      return "accumulator";
  }
  return {};
}

std::vector<std::string> split(const std::string &s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    if (slash == std::string::npos)
      slash = s.size();
    parts.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string> &parts, size_t from, size_t to) {
  std::string s;
  for (size_t k = from; k < to; ++k)
    s += (k > from ? "/" : "") + parts[k];
  return s;
}

std::string stripIndex(const std::string &s) {
  auto colon = s.rfind(':');
  return colon == std::string::npos ? s : s.substr(0, colon);
}

using WeightKey = std::pair<std::string, size_t>; // layer path, index in its LayerWeights list

// Each fgc slot kind's values for the file's weights (absent ones are zeros), converted to
// fgc's layout through attachWeights on a copy of the model.
Expected<KerasOptimizerState>
convertSlots(const std::map<std::string, std::map<WeightKey, std::vector<float>>> &kinds,
             const LayerWeights &weights, const schema::Model &model, ImportLog &log) {
  KerasOptimizerState state;
  for (const auto &[slot, values] : kinds) {
    LayerWeights shadow = weights;
    for (auto &[path, ws] : shadow)
      for (size_t k = 0; k < ws.size(); ++k) {
        auto it = values.find({path, k});
        if (it != values.end())
          ws[k].data = it->second;
        else
          std::fill(ws[k].data.begin(), ws[k].data.end(), 0.0f);
      }
    schema::Model copy = model;
    ImportLog quiet{log.fileName, {}};
    FGC_TRY(attachWeights(copy, shadow, quiet));
    std::set<std::string> present; // layer paths with a slot in the file
    for (const auto &[key, v] : values)
      present.insert(key.first);
    // Parameters without slots in Keras (not trainable: BatchNormalization's moving statistics).
    BuildOptions options;
    options.fileName = log.fileName;
    auto graph = buildGraph(copy, options);
    if (!graph)
      return graph.error();
    std::set<std::pair<std::string, std::string>> frozen;
    std::function<void(const Graph &, const std::string &)> findFrozen =
        [&](const Graph &g, const std::string &prefix) {
          for (const auto &l : g.layers) {
            if (l->subgraph) {
              findFrozen(*l->subgraph, prefix + l->name + "/");
              continue;
            }
            for (const auto &p : l->params)
              if (!l->trainable || !p.trainable)
                frozen.insert({prefix + l->name, p.name});
          }
        };
    findFrozen(**graph, "");
    std::function<void(const schema::Model &, const std::string &)> collect =
        [&](const schema::Model &m, const std::string &prefix) {
          for (const auto &l : m.layers()) {
            if (l.has_model()) {
              collect(l.model(), prefix + l.name() + "/");
              continue;
            }
            if (!present.count(prefix + l.name()))
              continue;
            for (const auto &t : l.weights()) {
              if (frozen.count({prefix + l.name(), t.name()}))
                continue;
              KerasOptimizerState::Slot s;
              s.layer = prefix + l.name();
              s.weight = t.name();
              s.slot = slot;
              s.shape.assign(t.shape().begin(), t.shape().end());
              s.data.resize(t.data().size() / sizeof(float));
              std::memcpy(s.data.data(), t.data().data(), s.data.size() * sizeof(float));
              state.slots.push_back(std::move(s));
            }
          }
        };
    collect(copy, "");
  }
  return state;
}

} // namespace

Expected<std::optional<KerasOptimizerState>>
readLegacyOptimizerState(const Hdf5File &file, const LayerWeights &weights,
                         const schema::Model &model, ImportLog &log) {
  const std::string group = "optimizer_weights";
  if (!file.hasGroup(group) ||
      (!file.hasAttribute(group, "weight_names") && !file.hasAttribute(group, "weight_names0")))
    return std::optional<KerasOptimizerState>();
  auto names = file.stringListAttribute(group, "weight_names");
  if (!names)
    return names.error();
  const std::string optimizer = model.training().optimizer().class_name();
  auto dropped = [&](const std::string &why) {
    log.warn("the optimizer state (optimizer_weights) is not imported: " + why +
             "; training starts with a fresh optimizer");
    return std::optional<KerasOptimizerState>();
  };
  if (optimizer.empty())
    return dropped("the file has no training config naming its optimizer");
  // Every weight by its Keras variable name, and that name with '/' as '_' (Keras 3).
  std::map<std::string, WeightKey> byVariable, byFlat;
  for (const auto &[path, ws] : weights)
    for (size_t k = 0; k < ws.size(); ++k) {
      if (ws[k].variable.empty())
        continue;
      byVariable[ws[k].variable] = {path, k};
      std::string flat = ws[k].variable;
      std::replace(flat.begin(), flat.end(), '/', '_');
      byFlat[flat] = {path, k};
    }
  std::map<std::string, std::map<WeightKey, std::vector<float>>> kinds;
  int64_t iterations = -1;
  for (const auto &n : *names) {
    auto parts = split(stripIndex(n));
    const std::string &last = parts.back();
    if (last == "iter" || last == "iteration" || last == "iterations") {
      auto a = file.readFloats(group + "/" + n);
      if (!a)
        return a.error();
      if (a->data.size() != 1)
        return Error::format("{}: optimizer weight '{}' should be a scalar", file.name(), n);
      iterations = std::llround(a->data[0]);
      continue;
    }
    if (last == "learning_rate" || last == "decay")
      continue; // hyper-parameters: the training config has them
    // (variable, Keras slot) in each naming scheme.
    std::optional<std::pair<WeightKey, std::string>> found;
    if (parts.size() >= 3) {
      if (auto it = byVariable.find(join(parts, 1, parts.size() - 1)); it != byVariable.end())
        found = {{it->second, last}};
      else if (auto it2 = byVariable.find(join(parts, 2, parts.size())); it2 != byVariable.end())
        found = {{it2->second, parts[1]}};
    } else if (parts.size() == 2) {
      for (const char *kind : {"_momentum", "_velocity_hat", "_velocity", "_average_gradient"}) {
        std::string suffix = kind;
        const std::string &flat = parts[1];
        if (flat.size() > suffix.size() &&
            flat.compare(flat.size() - suffix.size(), suffix.size(), suffix) == 0) {
          auto it = byFlat.find(flat.substr(0, flat.size() - suffix.size()));
          if (it != byFlat.end()) {
            found = {{it->second, suffix.substr(1)}};
            break;
          }
        }
      }
    }
    if (!found)
      return dropped(fmt::format("its variable '{}' names no weight of the model", n));
    std::string slot = fgcSlotName(optimizer, found->second);
    if (slot.empty())
      return dropped(fmt::format("variable '{}' is a slot fgc's {} does not keep", n, optimizer));
    const ImportedWeight &w = weights.at(found->first.first)[found->first.second];
    auto a = file.readFloats(group + "/" + n);
    if (!a)
      return a.error();
    if (a->shape != w.shape)
      return Error::format("{}: optimizer weight '{}' has shape {}, but the weight it belongs to "
                           "('{}' of layer '{}') has {}",
                           file.name(), n, weightShapeText(a->shape), w.variable,
                           found->first.first, weightShapeText(w.shape));
    kinds[slot][found->first] = std::move(a->data);
  }
  if (iterations < 0)
    return dropped("it holds no iteration count");
  auto state = convertSlots(kinds, weights, model, log);
  if (!state)
    return state.error();
  state->optimizer = optimizer;
  state->iterations = iterations;
  return std::optional<KerasOptimizerState>(std::move(*state));
}

Expected<std::optional<KerasOptimizerState>>
readArchiveOptimizerState(const Hdf5File &file, const LayerWeights &weights,
                          const schema::Model &model, ImportLog &log) {
  if (!file.hasGroup("optimizer/vars"))
    return std::optional<KerasOptimizerState>();
  const std::string optimizer = model.training().optimizer().class_name();
  auto dropped = [&](const std::string &why) {
    log.warn("the optimizer state (optimizer/vars) is not imported: " + why +
             "; training starts with a fresh optimizer");
    return std::optional<KerasOptimizerState>();
  };
  if (optimizer.empty())
    return dropped("the archive has no compile_config naming its optimizer");
  auto vars = file.children("optimizer/vars", false);
  if (!vars)
    return vars.error();
  const auto &attrs = model.training().optimizer().attrs();
  auto number = [&](const char *key) {
    auto it = attrs.find(key);
    if (it == attrs.end())
      return 0.0;
    const auto &v = it->second;
    return v.value_case() == schema::AttrValue::kF   ? v.f()
           : v.value_case() == schema::AttrValue::kI ? double(v.i())
           : v.value_case() == schema::AttrValue::kB ? double(v.b())
                                                     : 0.0;
  };
  // The slots of one variable, in the order Keras creates them.
  std::vector<std::string> perVariable;
  if (optimizer == "Adam" && number("amsgrad") == 0)
    perVariable = {"m", "v"};
  else if (optimizer == "SGD" && number("momentum") != 0)
    perVariable = {"momentum"};
  else if (optimizer == "RMSprop" && number("momentum") == 0 && number("centered") == 0)
    perVariable = {"rms"};
  else
    return dropped(fmt::format("fgc reads the archive's slots of Adam (without amsgrad), SGD "
                               "with momentum and plain RMSprop, not of this {}",
                               optimizer));
  // The trainable weights in Keras's order: the layers as the archive tracks them (the order of
  // the model's layer list, nested models in place), each layer's variables in order, without
  // BatchNormalization's moving statistics (not trainable, no slots).
  std::vector<WeightKey> order;
  std::function<void(const schema::Model &, const std::string &, bool)> walk =
      [&](const schema::Model &m, const std::string &prefix, bool sequential) {
        for (const auto &l : m.layers()) {
          if (sequential && l.class_name() == "InputLayer")
            continue;
          std::string path = prefix + l.name();
          if (auto t = l.config().find("trainable");
              t != l.config().end() && t->second.value_case() == schema::AttrValue::kB &&
              !t->second.b())
            continue; // frozen: no slots
          if (l.has_model()) {
            walk(l.model(), path + "/", l.class_name() == "Sequential");
            continue;
          }
          auto it = weights.find(path);
          if (it == weights.end())
            continue;
          size_t n = it->second.size();
          if (l.class_name() == "BatchNormalization")
            n = n >= 2 ? n - 2 : 0; // gamma, beta (when present), then the moving statistics
          for (size_t k = 0; k < n; ++k)
            order.push_back({path, k});
        }
      };
  walk(model, "", false);
  size_t expected = 2 + order.size() * perVariable.size();
  if (vars->size() != expected)
    return dropped(fmt::format("it holds {} variables, fgc expects {} (the iteration count, the "
                               "learning rate and {} slot(s) for each of {} trainable weights)",
                               vars->size(), expected, perVariable.size(), order.size()));
  auto iter = file.readFloats("optimizer/vars/0");
  if (!iter)
    return iter.error();
  if (iter->data.size() != 1)
    return dropped("optimizer/vars/0 is not the iteration count");
  std::map<std::string, std::map<WeightKey, std::vector<float>>> kinds;
  size_t index = 2;
  for (const auto &key : order)
    for (const auto &slot : perVariable) {
      std::string name = "optimizer/vars/" + std::to_string(index++);
      auto a = file.readFloats(name);
      if (!a)
        return a.error();
      const ImportedWeight &w = weights.at(key.first)[key.second];
      if (a->shape != w.shape)
        return dropped(fmt::format("{} has shape {}, but the trainable weight it should belong "
                                   "to ({} of layer '{}') has {}",
                                   name, weightShapeText(a->shape), w.path, key.first,
                                   weightShapeText(w.shape)));
      kinds[slot][key] = std::move(a->data);
    }
  auto state = convertSlots(kinds, weights, model, log);
  if (!state)
    return state.error();
  state->optimizer = optimizer;
  state->iterations = std::llround(iter->data[0]);
  return std::optional<KerasOptimizerState>(std::move(*state));
}

} // namespace fgc::importers
