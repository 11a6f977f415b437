// ModelSketch: writes small schema::Model values in test code, the way `keras.Input(...)` and
// layer calls would, so tests state a model in a few lines instead of a text-format file.
//
//   ModelSketch m("mnist");
//   m.input("image", {-1, 28, 28, 1});
//   m.layer("Conv2D", "conv", {{"filters", makeInt(8)}, {"kernel_size", makeInt(3)}}, {"image"});
//   m.output("conv");
//   auto graph = m.build(); // REQUIREs success, returns the Graph
//
// Input references are layer names, optionally "name:node:tensor".
#pragma once

#include "compiler/ir/Graph.h"
#include "frontend/GraphBuilder.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

namespace fgc::test {

class ModelSketch {
public:
  explicit ModelSketch(const std::string &name, uint64_t seed = 1) {
    model.set_schema_version(1);
    model.set_name(name);
    model.set_seed(seed);
  }

  schema::Layer &input(const std::string &name, const std::vector<int64_t> &shape,
                       const std::string &dtype = "float32") {
    auto &l = layer("InputLayer", name, {{"batch_input_shape", makeInts(shape)}}, {});
    if (dtype != "float32")
      (*l.mutable_config())["dtype"] = makeString(dtype);
    *model.add_inputs() = ref(name);
    return l;
  }

  schema::Layer &layer(const std::string &cls, const std::string &name, const AttrMap &config,
                       const std::vector<std::string> &inputs) {
    schema::Layer &l = *model.add_layers();
    l.set_class_name(cls);
    l.set_name(name);
    for (const auto &[k, v] : config)
      (*l.mutable_config())[k] = v;
    if (cls != "InputLayer")
      call(l, inputs);
    return l;
  }

  // Adds another call (node) of an existing layer.
  static void call(schema::Layer &l, const std::vector<std::string> &inputs) {
    auto *node = l.add_nodes();
    for (const auto &in : inputs)
      *node->add_inputs() = ref(in);
  }

  void output(const std::string &refText) { *model.add_outputs() = ref(refText); }

  Expected<std::unique_ptr<Graph>> tryBuild() const { return buildGraph(model); }

  std::unique_ptr<Graph> build() const {
    auto g = buildGraph(model);
    if (!g)
      FAIL("building the sketched model failed: " << g.error().message());
    return g.take();
  }

  static schema::TensorRef ref(const std::string &text) {
    schema::TensorRef r;
    auto c1 = text.find(':');
    r.set_layer(text.substr(0, c1));
    if (c1 != std::string::npos) {
      auto c2 = text.find(':', c1 + 1);
      r.set_node_index(std::stoi(text.substr(c1 + 1, c2 - c1 - 1)));
      if (c2 != std::string::npos)
        r.set_tensor_index(std::stoi(text.substr(c2 + 1)));
    }
    return r;
  }

  schema::Model model;
};

// The output shapes of the op that is call `node` of layer `name`.
inline std::vector<std::vector<Dim>> outputShapes(const Graph &g, const std::string &name,
                                                  int node = 0) {
  const Layer *l = g.findLayer(name);
  REQUIRE(l != nullptr);
  REQUIRE(node < static_cast<int>(l->calls.size()));
  std::vector<std::vector<Dim>> out;
  for (const auto &v : l->calls[node]->outputs)
    out.push_back(v->type.shape);
  return out;
}

inline std::vector<Dim> outputShape(const Graph &g, const std::string &name, int node = 0) {
  auto shapes = outputShapes(g, name, node);
  REQUIRE(shapes.size() == 1);
  return shapes[0];
}

// A valid model touching many layer kinds (conv, pooling, batch norm, dense, embedding, LSTM,
// merges, a nested model) with inline weights, for round trips and corruption tests.
schema::Model richModelWithWeights();

// A temporary directory removed when the object goes out of scope.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  std::string path(const std::string &file) const { return dir_ + "/" + file; }

private:
  std::string dir_;
};

std::string readBytes(const std::string &path);
void writeBytes(const std::string &path, const std::string &bytes);

} // namespace fgc::test
