// The passes on small hand-built models: the IR before and after each pass (golden text), cases
// where nothing may change, and the pipeline's options. Numeric equivalence of optimized and
// unoptimized code is checked on every sample by the model and training fixtures, which run at
// -O0 and -O2 (tests/models, tests/training).
#include "compiler/codegen/Lowering.h"
#include "compiler/ir/IRPrinter.h"
#include "compiler/memory/MemoryPlan.h"
#include "compiler/passes/PassManager.h"
#include "compiler/report/CompileReport.h"
#include "frontend/GraphBuilder.h"
#include "frontend/Initializers.h"
#include "samples/custom_dense/CustomDense.h"
#include "samples/custom_opaque/SwishDense.h"
#include "samples/custom_rnn/CustomRNN.h"
#include "samples/custom_rnn/ScanRNN.h"
#include "tests/custom/PrimitiveLayers.h"

#include <fgc/keras.h>
#include <fgc/runtime/kernels.h>
#include <fgc/runtime/npy.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>

#include <catch2/catch.hpp>

using namespace fgc::keras;

namespace {

std::unique_ptr<fgc::Graph> graphOf(const Model &m) {
  auto g = fgc::buildGraph(m.get_config());
  REQUIRE(g);
  REQUIRE(fgc::initializeWeights(**g));
  return std::move(*g);
}

fgc::Changes runPass(std::unique_ptr<fgc::GraphPass> pass, fgc::Graph &g,
                     const fgc::PassOptions &o = {}) {
  auto changes = pass->run(g, o);
  REQUIRE(changes);
  return *changes;
}

// An encoder nested in a model, a shared layer called twice on the same input, two outputs.
Model nestedModel() {
  clear_session();
  auto inner = Input({8}, {.name = "inner_in"});
  auto h = layers::Dense(4, {.activation = "relu", .name = "enc_dense"})(inner);
  Model encoder(inner, h, "encoder");
  auto x = Input({8}, {.name = "x"});
  auto e = encoder(x);
  auto shared = layers::Dense(4, {.name = "shared"});
  auto a = shared(e);
  auto b = shared(e);
  auto sum = layers::add({a, b}, {.name = "sum"});
  auto aux = layers::Dense(2, {.name = "aux"})(e);
  auto out = layers::Dense(3, {.name = "out"})(sum);
  return Model(std::vector<Tensor>{x}, std::vector<Tensor>{out, aux}, "nested");
}

} // namespace

TEST_CASE("the IR printer shows ops, nested models and non-default attributes", "[passes]") {
  auto g = graphOf(nestedModel());
  CHECK(fgc::printGraph(*g) ==
        "model nested\n"
        "  %x = InputLayer x : (None, 8)\n"
        "  %encoder = Functional encoder(%x) : (None, 4)\n"
        "  %shared = Dense shared(%encoder) {units=4} : (None, 4)\n"
        "  %shared#1 = Dense shared(%encoder) {units=4} : (None, 4)\n"
        "  %sum = Add sum(%shared, %shared#1) : (None, 4)\n"
        "  %out = Dense out(%sum) {units=3} : (None, 3)\n"
        "  %aux = Dense aux(%encoder) {units=2} : (None, 2)\n"
        "  return %out, %aux\n"
        "\n"
        "model encoder\n"
        "  %inner_in = InputLayer inner_in : (None, 8)\n"
        "  %enc_dense = Dense enc_dense(%inner_in) {activation='relu', units=4} : (None, 4)\n"
        "  return %enc_dense\n");
}

TEST_CASE("inline-nested copies a nested model's ops under its path", "[passes]") {
  auto g = graphOf(nestedModel());
  auto changes = runPass(fgc::createInlineNestedPass(), *g);
  CHECK(changes == fgc::Changes{"inlined encoder (2 ops)"});
  CHECK(fgc::printGraph(*g) ==
        "model nested\n"
        "  %x = InputLayer x : (None, 8)\n"
        "  %encoder/enc_dense = Dense encoder/enc_dense(%x) {activation='relu', units=4} : (None, 4)\n"
        "  %shared = Dense shared(%encoder/enc_dense) {units=4} : (None, 4)\n"
        "  %shared#1 = Dense shared(%encoder/enc_dense) {units=4} : (None, 4)\n"
        "  %sum = Add sum(%shared, %shared#1) : (None, 4)\n"
        "  %out = Dense out(%sum) {units=3} : (None, 3)\n"
        "  %aux = Dense aux(%encoder/enc_dense) {units=2} : (None, 2)\n"
        "  return %out, %aux\n");
  SECTION("nothing left to inline: no change") {
    CHECK(runPass(fgc::createInlineNestedPass(), *g).empty());
  }
  SECTION("the weights keep their nested path") {
    auto program = fgc::lowerForInference(*g);
    REQUIRE(program);
    CHECK(program->params[0].layerPath == "encoder/enc_dense");
  }
}

TEST_CASE("dead-node-elimination removes what no output needs", "[passes]") {
  auto g = graphOf(nestedModel());
  runPass(fgc::createInlineNestedPass(), *g);
  std::string before = fgc::printGraph(*g);
  // Every op feeds an output: nothing changes.
  CHECK(runPass(fgc::createDeadNodeEliminationPass(), *g).empty());
  CHECK(fgc::printGraph(*g) == before);
  // Without `aux`, its Dense is dead.
  fgc::PassOptions o;
  o.outputs = {"out"};
  auto changes = runPass(fgc::createDeadNodeEliminationPass(), *g, o);
  CHECK(changes == fgc::Changes{"dropped output aux", "removed aux"});
  CHECK(fgc::printGraph(*g).find("aux") == std::string::npos);
  CHECK(fgc::printGraph(*g).find("  return %out\n") != std::string::npos);
}

TEST_CASE("dead-node-elimination keeps only the requested outputs", "[passes]") {
  clear_session();
  auto x = Input({4}, {.name = "x"});
  auto h = layers::Dense(4, {.name = "h"})(x);
  auto p = layers::Dense(2, {.name = "p"})(h);
  auto q = layers::Dense(3, {.name = "q"})(h);
  Model m(std::vector<Tensor>{x}, std::vector<Tensor>{p, q}, "two_heads");
  auto g = graphOf(m);
  fgc::PassOptions o;
  o.outputs = {"q"};
  auto changes = runPass(fgc::createDeadNodeEliminationPass(), *g, o);
  CHECK(changes == fgc::Changes{"dropped output p", "removed p"});
  CHECK(fgc::printGraph(*g) == "model two_heads\n"
                               "  %x = InputLayer x : (None, 4)\n"
                               "  %h = Dense h(%x) {units=4} : (None, 4)\n"
                               "  %q = Dense q(%h) {units=3} : (None, 3)\n"
                               "  return %q\n");
  SECTION("an unknown output is an error naming the outputs") {
    auto g2 = graphOf(m);
    o.outputs = {"r"};
    auto r = fgc::createDeadNodeEliminationPass()->run(*g2, o);
    REQUIRE(!r);
    CHECK(r.error().message() == "model 'two_heads' has no output 'r' (outputs: p, q)");
  }
}

TEST_CASE("cse merges calls of one layer on the same inputs", "[passes]") {
  auto g = graphOf(nestedModel());
  runPass(fgc::createInlineNestedPass(), *g);
  auto changes = runPass(fgc::createCommonSubexpressionPass(), *g);
  CHECK(changes == fgc::Changes{"shared call 1 is call 0 again: merged"});
  CHECK(fgc::printGraph(*g).find("%sum = Add sum(%shared, %shared)") != std::string::npos);
  SECTION("a second run changes nothing") {
    CHECK(runPass(fgc::createCommonSubexpressionPass(), *g).empty());
  }
}

// A custom layer whose body is one opaque op.
class OneOpaqueCall : public CustomLayer {
public:
  explicit OneOpaqueCall(std::string op) : op_(std::move(op)) {}
  explicit OneOpaqueCall(const Config &config) : op_(config.at("op").s()) {}
  Tensor call(const Tensor &x) override { return ops::opaque(op_, x); }
  Config get_config() const override { return {{"op", makeString(op_)}}; }

private:
  std::string op_;
};

TEST_CASE("cse merges a pure opaque op's calls, never a stateful one's", "[passes][custom]") {
  for (bool stateful : {false, true}) {
    INFO("stateful " << stateful);
    OpaqueOp op;
    op.name = stateful ? "CseTestNoise" : "CseTestSquare";
    op.forward = stateful ? "cse_test_noise" : "cse_test_square";
    op.stateful = stateful;
    register_opaque_op(op);
    register_custom_layer<OneOpaqueCall>("OneOpaqueCall");
    clear_session();
    // One custom layer called twice on the same input: after inlining, its opaque op twice.
    auto x = Input({4}, {.name = "x"});
    auto shared = layers::Custom<OneOpaqueCall>(op.name);
    auto y = layers::add({shared(x), shared(x)}, {.name = "sum"});
    Model m(x, y, "shared_opaque");
    auto g = graphOf(m);
    runPass(fgc::createInlineNestedPass(), *g);
    const std::string before = fgc::printGraph(*g);
    INFO(before);
    REQUIRE(std::count(before.begin(), before.end(), '=') == 4);
    auto changes = runPass(fgc::createCommonSubexpressionPass(), *g);
    if (stateful) {
      CHECK(changes.empty());
      CHECK(fgc::printGraph(*g) == before);
    } else {
      REQUIRE(changes.size() == 1);
      CHECK(changes[0].find("merged") != std::string::npos);
    }
  }
}

TEST_CASE("cse never merges Dropout calls (random masks)", "[passes]") {
  clear_session();
  auto x = Input({4}, {.name = "x"});
  auto drop = layers::Dropout(0.5, {.name = "drop"});
  auto sum = layers::add({drop(x), drop(x)}, {.name = "sum"});
  Model m(x, sum, "dropouts");
  auto g = graphOf(m);
  std::string before = fgc::printGraph(*g);
  CHECK(runPass(fgc::createCommonSubexpressionPass(), *g).empty());
  CHECK(fgc::printGraph(*g) == before);
}

TEST_CASE("fuse-activation folds an Activation layer into the Dense before it", "[passes]") {
  clear_session();
  auto x = Input({4}, {.name = "x"});
  auto h = layers::Dense(4, {.name = "h"})(x);
  auto a = layers::Activation("relu", {.name = "act"})(h);
  auto s = layers::Activation("softmax", {.name = "probs"})(layers::Dense(3, {.name = "o"})(a));
  Model m(x, s, "acts");
  auto g = graphOf(m);
  auto program = fgc::lowerForInference(*g);
  REQUIRE(program);
  std::string before = fgc::printProgram(*program, false);
  CHECK(before == "program acts (predict)\n"
                  "  // h (Dense): (None, 4) -> (None, 4)\n"
                  "  fgc_dense(%in_x, %w_h_kernel, %w_h_bias, %h, 1*batch, 4, 4, FGC_ACT_LINEAR)\n"
                  "  // act (Activation): (None, 4) -> (None, 4)\n"
                  "  fgc_activation(FGC_ACT_RELU, %h, %act, 1*batch, 4)\n"
                  "  // o (Dense): (None, 4) -> (None, 3)\n"
                  "  fgc_dense(%act, %w_o_kernel, %w_o_bias, %o, 1*batch, 4, 3, FGC_ACT_LINEAR)\n"
                  "  // probs (Activation): (None, 3) -> (None, 3)\n"
                  "  fgc_activation(FGC_ACT_SOFTMAX, %o, %probs, 1*batch, 3)\n");
  auto changes = fgc::createFuseActivationPass()->run(*program, {});
  REQUIRE(changes);
  // Softmax is not elementwise: it stays a separate call.
  CHECK(*changes == fgc::Changes{"h + act: FGC_ACT_RELU applied in h's epilogue"});
  CHECK(fgc::printProgram(*program, false) ==
        "program acts (predict)\n"
        "  // h (Dense): (None, 4) -> (None, 4); fused with act (Activation): (None, 4) -> (None, 4)\n"
        "  fgc_dense(%in_x, %w_h_kernel, %w_h_bias, %act, 1*batch, 4, 4, FGC_ACT_RELU)\n"
        "  // o (Dense): (None, 4) -> (None, 3)\n"
        "  fgc_dense(%act, %w_o_kernel, %w_o_bias, %o, 1*batch, 4, 3, FGC_ACT_LINEAR)\n"
        "  // probs (Activation): (None, 3) -> (None, 3)\n"
        "  fgc_activation(FGC_ACT_SOFTMAX, %o, %probs, 1*batch, 3)\n");
  SECTION("a second run changes nothing") {
    auto again = fgc::createFuseActivationPass()->run(*program, {});
    REQUIRE(again);
    CHECK(again->empty());
  }
}

TEST_CASE("fuse-activation fuses the activation's gradient into the GEMM's backward",
          "[passes][training]") {
  clear_session();
  auto x = Input({3}, {.name = "x"});
  auto h = layers::Dense(2, {.name = "h"})(x);
  auto a = layers::Activation("tanh", {.name = "act"})(h);
  auto g2 = layers::Dense(2, {.name = "g"})(a);
  auto b = layers::Activation("gelu", {.name = "gelu"})(g2); // its gradient needs g's output
  auto o = layers::Dense(2, {.name = "o"})(b);
  Model m(x, o, "train_acts");
  m.compile({.optimizer = optimizers::SGD(0.1), .loss = {{"", losses::MeanSquaredError()}}});
  auto g = graphOf(m);
  auto program = fgc::lowerForInference(*g);
  REQUIRE(program);
  REQUIRE(fgc::lowerForTraining(*g, *program));
  std::string before = fgc::printProgram(*program, true);
  CHECK(before ==
        "program train_acts (trainStep)\n"
        "  // h (Dense): (None, 3) -> (None, 2)\n"
        "  fgc_dense(%in_x, %w_h_kernel, %w_h_bias, %h, 1*batch, 3, 2, FGC_ACT_LINEAR)\n"
        "  // act (Activation): (None, 2) -> (None, 2)\n"
        "  fgc_activation(FGC_ACT_TANH, %h, %act, 1*batch, 2)\n"
        "  // g (Dense): (None, 2) -> (None, 2)\n"
        "  fgc_dense(%act, %w_g_kernel, %w_g_bias, %g, 1*batch, 2, 2, FGC_ACT_LINEAR)\n"
        "  // gelu (Activation): (None, 2) -> (None, 2)\n"
        "  fgc_activation(FGC_ACT_GELU, %g, %gelu, 1*batch, 2)\n"
        "  // o (Dense): (None, 2) -> (None, 2)\n"
        "  fgc_dense(%gelu, %w_o_kernel, %w_o_bias, %o, 1*batch, 2, 2, FGC_ACT_LINEAR)\n"
        "  // losses and their gradients\n"
        "  fgc_loss_mean_squared_error(%target_o, %o, null, 1*batch, 2, 1, ..., %d_o)\n"
        "  // backward of o (Dense)\n"
        "  fgc_dense_backward(%gelu, %w_o_kernel, null, %o, %d_o, %d_gelu, %g_o_kernel, %g_o_bias, 1*batch, 2, 2, FGC_ACT_LINEAR, scratch, 0)\n"
        "  // backward of gelu (Activation)\n"
        "  fgc_activation_backward(FGC_ACT_GELU, %g, %gelu, %d_gelu, %d_g, 1*batch, 2, 0)\n"
        "  // backward of g (Dense)\n"
        "  fgc_dense_backward(%act, %w_g_kernel, null, %g, %d_g, %d_act, %g_g_kernel, %g_g_bias, 1*batch, 2, 2, FGC_ACT_LINEAR, scratch, 0)\n"
        "  // backward of act (Activation)\n"
        "  fgc_activation_backward(FGC_ACT_TANH, %h, %act, %d_act, %d_h, 1*batch, 2, 0)\n"
        "  // backward of h (Dense)\n"
        "  fgc_dense_backward(%in_x, %w_h_kernel, null, %h, %d_h, null, %g_h_kernel, %g_h_bias, 1*batch, 3, 2, FGC_ACT_LINEAR, scratch, 0)\n"
        "  // SGD updates\n"
        "  fgc_sgd_update(%w_h_kernel, %g_h_kernel, null, 6, $learningRate, 0, 0)\n"
        "  fgc_sgd_update(%w_h_bias, %g_h_bias, null, 2, $learningRate, 0, 0)\n"
        "  fgc_sgd_update(%w_g_kernel, %g_g_kernel, null, 4, $learningRate, 0, 0)\n"
        "  fgc_sgd_update(%w_g_bias, %g_g_bias, null, 2, $learningRate, 0, 0)\n"
        "  fgc_sgd_update(%w_o_kernel, %g_o_kernel, null, 4, $learningRate, 0, 0)\n"
        "  fgc_sgd_update(%w_o_bias, %g_o_bias, null, 2, $learningRate, 0, 0)\n");
  auto changes = fgc::createFuseActivationPass()->run(*program, {});
  REQUIRE(changes);
  CHECK(*changes ==
        fgc::Changes{"h + act: FGC_ACT_TANH applied in h's epilogue",
                     "g + gelu: FGC_ACT_GELU applied in g's epilogue",
                     "h + act (training): FGC_ACT_TANH applied in h's epilogue, its gradient in "
                     "h's backward"});
  // tanh: fused, forward and backward; gelu: its derivative needs the pre-activation, so in
  // training it stays a call of its own (at inference it becomes g's epilogue).
  CHECK(fgc::printProgram(*program, true) ==
        "program train_acts (trainStep)\n"
        "  // h (Dense): (None, 3) -> (None, 2); fused with act (Activation): (None, 2) -> (None, 2)\n"
        "  fgc_dense(%in_x, %w_h_kernel, %w_h_bias, %act, 1*batch, 3, 2, FGC_ACT_TANH)\n"
        "  // g (Dense): (None, 2) -> (None, 2)\n"
        "  fgc_dense(%act, %w_g_kernel, %w_g_bias, %g, 1*batch, 2, 2, FGC_ACT_LINEAR)\n"
        "  // gelu (Activation): (None, 2) -> (None, 2)\n"
        "  fgc_activation(FGC_ACT_GELU, %g, %gelu, 1*batch, 2)\n"
        "  // o (Dense): (None, 2) -> (None, 2)\n"
        "  fgc_dense(%gelu, %w_o_kernel, %w_o_bias, %o, 1*batch, 2, 2, FGC_ACT_LINEAR)\n"
        "  // losses and their gradients\n"
        "  fgc_loss_mean_squared_error(%target_o, %o, null, 1*batch, 2, 1, ..., %d_o)\n"
        "  // backward of o (Dense)\n"
        "  fgc_dense_backward(%gelu, %w_o_kernel, null, %o, %d_o, %d_gelu, %g_o_kernel, %g_o_bias, 1*batch, 2, 2, FGC_ACT_LINEAR, scratch, 0)\n"
        "  // backward of gelu (Activation)\n"
        "  fgc_activation_backward(FGC_ACT_GELU, %g, %gelu, %d_gelu, %d_g, 1*batch, 2, 0)\n"
        "  // backward of g (Dense)\n"
        "  fgc_dense_backward(%act, %w_g_kernel, null, %g, %d_g, %d_act, %g_g_kernel, %g_g_bias, 1*batch, 2, 2, FGC_ACT_LINEAR, scratch, 0)\n"
        "  // backward of h (Dense); fused with backward of act (Activation)\n"
        "  fgc_dense_backward(%in_x, %w_h_kernel, null, %act, %d_act, null, %g_h_kernel, %g_h_bias, 1*batch, 3, 2, FGC_ACT_TANH, scratch, 0)\n"
        "  // SGD updates\n"
        "  fgc_sgd_update(%w_h_kernel, %g_h_kernel, null, 6, $learningRate, 0, 0)\n"
        "  fgc_sgd_update(%w_h_bias, %g_h_bias, null, 2, $learningRate, 0, 0)\n"
        "  fgc_sgd_update(%w_g_kernel, %g_g_kernel, null, 4, $learningRate, 0, 0)\n"
        "  fgc_sgd_update(%w_g_bias, %g_g_bias, null, 2, $learningRate, 0, 0)\n"
        "  fgc_sgd_update(%w_o_kernel, %g_o_kernel, null, 4, $learningRate, 0, 0)\n"
        "  fgc_sgd_update(%w_o_bias, %g_o_bias, null, 2, $learningRate, 0, 0)\n");
  SECTION("a second run changes nothing") {
    auto again = fgc::createFuseActivationPass()->run(*program, {});
    REQUIRE(again);
    CHECK(again->empty());
  }
  SECTION("the memory plan drops the pre-activation and its gradient") {
    auto plan = fgc::planMemory(*program, true, true);
    for (const auto &slot : plan.slots)
      if (slot.kind == fgc::ArenaSlot::Kind::Buffer && slot.used) {
        INFO(program->buffers[size_t(slot.buffer)].name);
        CHECK(program->buffers[size_t(slot.buffer)].name != "h");
        CHECK(program->buffers[size_t(slot.buffer)].name != "d_h");
      }
    CHECK(fgc::evaluateArena(*program, plan, {5}).validation.empty());
  }
}

TEST_CASE("drop-dropout takes inference Dropout out of the schedule", "[passes]") {
  clear_session();
  auto x = Input({4}, {.name = "x"});
  auto h = layers::Dense(4, {.activation = "relu", .name = "h"})(x);
  auto d = layers::Dropout(0.5, {.name = "drop"})(h);
  auto o = layers::Dense(2, {.name = "o"})(d);
  auto g = graphOf(Model(x, o, "dropouts"));
  auto program = fgc::lowerForInference(*g);
  REQUIRE(program);
  CHECK(fgc::printProgram(*program, false) ==
        "program dropouts (predict)\n"
        "  // h (Dense): (None, 4) -> (None, 4)\n"
        "  fgc_dense(%in_x, %w_h_kernel, %w_h_bias, %h, 1*batch, 4, 4, FGC_ACT_RELU)\n"
        "  // drop (Dropout): (None, 4) -> (None, 4)\n"
        "  // o (Dense): (None, 4) -> (None, 2)\n"
        "  fgc_dense(%drop, %w_o_kernel, %w_o_bias, %o, 1*batch, 4, 2, FGC_ACT_LINEAR)\n");
  auto changes = fgc::createDropDropoutPass()->run(*program, {});
  REQUIRE(changes);
  // The Dropout was a view of h already (no call); now it leaves the schedule and the report.
  CHECK(*changes == fgc::Changes{"drop (Dropout): the identity at inference, removed"});
  CHECK(fgc::printProgram(*program, false) ==
        "program dropouts (predict)\n"
        "  // h (Dense): (None, 4) -> (None, 4)\n"
        "  fgc_dense(%in_x, %w_h_kernel, %w_h_bias, %h, 1*batch, 4, 4, FGC_ACT_RELU)\n"
        "  // o (Dense): (None, 4) -> (None, 2)\n"
        "  fgc_dense(%drop, %w_o_kernel, %w_o_bias, %o, 1*batch, 4, 2, FGC_ACT_LINEAR)\n");
  auto again = fgc::createDropDropoutPass()->run(*program, {});
  REQUIRE(again);
  CHECK(again->empty());
}

TEST_CASE("fold-batch-norm folds into the Dense before it; constant-fold moves the fold out of "
          "predict", "[passes]") {
  clear_session();
  auto x = Input({4}, {.name = "x"});
  auto h = layers::Dense(3, {.name = "h"})(x);
  auto bn = layers::BatchNormalization({.name = "bn"})(h);
  auto a = layers::Activation("relu", {.name = "act"})(bn);
  auto o = layers::Dense(2, {.name = "o"})(a);
  auto g = graphOf(Model(x, o, "bn"));
  auto program = fgc::lowerForInference(*g);
  REQUIRE(program);
  CHECK(fgc::printProgram(*program, false) ==
        "program bn (predict)\n"
        "  // h (Dense): (None, 4) -> (None, 3)\n"
        "  fgc_dense(%in_x, %w_h_kernel, %w_h_bias, %h, 1*batch, 4, 3, FGC_ACT_LINEAR)\n"
        "  // bn (BatchNormalization): (None, 3) -> (None, 3)\n"
        "  fgc_batch_norm(%h, %bn, 1*batch, 3, %w_bn_gamma, %w_bn_beta, %w_bn_moving_mean, %w_bn_moving_variance, 0.001)\n"
        "  // act (Activation): (None, 3) -> (None, 3)\n"
        "  fgc_activation(FGC_ACT_RELU, %bn, %act, 1*batch, 3)\n"
        "  // o (Dense): (None, 3) -> (None, 2)\n"
        "  fgc_dense(%act, %w_o_kernel, %w_o_bias, %o, 1*batch, 3, 2, FGC_ACT_LINEAR)\n");
  auto folded = fgc::createFoldBatchNormPass()->run(*program, {});
  REQUIRE(folded);
  CHECK(*folded == fgc::Changes{"h + bn: bn folded into h's kernel and bias"});
  CHECK(fgc::printProgram(*program, false) ==
        "program bn (predict)\n"
        "  // bn folded into the kernel and bias of h\n"
        "  fgc_fold_batch_norm(%w_h_kernel, %w_h_bias, 4, 3, %w_bn_gamma, %w_bn_beta, %w_bn_moving_mean, %w_bn_moving_variance, 0.001, %w_h_kernel_bn_folded, %w_h_bias_bn_folded)\n"
        "  // h (Dense): (None, 4) -> (None, 3); with bn (BatchNormalization): (None, 3) -> (None, 3) folded in\n"
        "  fgc_dense(%in_x, %w_h_kernel_bn_folded, %w_h_bias_bn_folded, %bn, 1*batch, 4, 3, FGC_ACT_LINEAR)\n"
        "  // act (Activation): (None, 3) -> (None, 3)\n"
        "  fgc_activation(FGC_ACT_RELU, %bn, %act, 1*batch, 3)\n"
        "  // o (Dense): (None, 3) -> (None, 2)\n"
        "  fgc_dense(%act, %w_o_kernel, %w_o_bias, %o, 1*batch, 3, 2, FGC_ACT_LINEAR)\n");
  auto moved = fgc::createConstantFoldPass()->run(*program, {});
  REQUIRE(moved);
  CHECK(*moved == fgc::Changes{"bn: fgc_fold_batch_norm reads only weights: runs when they "
                                "change, not in every predict"});
  CHECK(fgc::printProgram(*program, false) ==
        "program bn (predict)\n"
        "  // when the weights change:\n"
        "  //   bn folded into the kernel and bias of h\n"
        "  //   fgc_fold_batch_norm(%w_h_kernel, %w_h_bias, 4, 3, %w_bn_gamma, %w_bn_beta, %w_bn_moving_mean, %w_bn_moving_variance, 0.001, %w_h_kernel_bn_folded, %w_h_bias_bn_folded)\n"
        "  // h (Dense): (None, 4) -> (None, 3); with bn (BatchNormalization): (None, 3) -> (None, 3) folded in\n"
        "  fgc_dense(%in_x, %w_h_kernel_bn_folded, %w_h_bias_bn_folded, %bn, 1*batch, 4, 3, FGC_ACT_LINEAR)\n"
        "  // act (Activation): (None, 3) -> (None, 3)\n"
        "  fgc_activation(FGC_ACT_RELU, %bn, %act, 1*batch, 3)\n"
        "  // o (Dense): (None, 3) -> (None, 2)\n"
        "  fgc_dense(%act, %w_o_kernel, %w_o_bias, %o, 1*batch, 3, 2, FGC_ACT_LINEAR)\n");
  SECTION("nothing left to fold or move") {
    auto again = fgc::createFoldBatchNormPass()->run(*program, {});
    REQUIRE(again);
    CHECK(again->empty());
    auto moveAgain = fgc::createConstantFoldPass()->run(*program, {});
    REQUIRE(moveAgain);
    CHECK(moveAgain->empty());
  }
}

TEST_CASE("fuse-elementwise chains merges and activations into one loop", "[passes]") {
  clear_session();
  auto x = Input({4}, {.name = "x"});
  auto a = layers::Dense(4, {.name = "a"})(x);
  auto b = layers::Dense(4, {.name = "b"})(x);
  auto c = layers::Dense(4, {.name = "c"})(x);
  auto sum = layers::add({a, b}, {.name = "sum"});
  auto act = layers::Activation("relu", {.name = "act"})(sum);
  auto avg = layers::average({c, act}, {.name = "avg"}); // the chain enters as second input
  auto out = layers::Activation("tanh", {.name = "out"})(avg);
  auto g = graphOf(Model(x, out, "chain"));
  auto program = fgc::lowerForInference(*g);
  REQUIRE(program);
  auto changes = fgc::createFuseElementwisePass()->run(*program, {});
  REQUIRE(changes);
  CHECK(*changes == fgc::Changes{"sum + act + avg + out: sum (Add), act (Activation), avg "
                                 "(Average), out (Activation) in one elementwise loop"});
  // Instructions: (FGC_EW_ADD 0, input), (FGC_EW_DIVIDE 1, n), (FGC_EW_ACTIVATION 2, kind).
  CHECK(fgc::printProgram(*program, false) ==
        "program chain (predict)\n"
        "  // a (Dense): (None, 4) -> (None, 4)\n"
        "  fgc_dense(%in_x, %w_a_kernel, %w_a_bias, %a, 1*batch, 4, 4, FGC_ACT_LINEAR)\n"
        "  // b (Dense): (None, 4) -> (None, 4)\n"
        "  fgc_dense(%in_x, %w_b_kernel, %w_b_bias, %b, 1*batch, 4, 4, FGC_ACT_LINEAR)\n"
        "  // c (Dense): (None, 4) -> (None, 4)\n"
        "  fgc_dense(%in_x, %w_c_kernel, %w_c_bias, %c, 1*batch, 4, 4, FGC_ACT_LINEAR)\n"
        "  // fused elementwise loop: sum (Add): "
        "(None, 4), (None, 4) -> (None, 4); then act (Activation): (None, 4) -> (None, 4); then "
        "avg (Average): (None, 4), (None, 4) -> (None, 4); then out (Activation): (None, 4) -> "
        "(None, 4)\n"
        "  fgc_elementwise([0, 1, 2, 1, 0, 2, 1, 2, 2, 3], 5, 3, [%a, %b, %c], 4*batch, %out)\n");
  SECTION("a second run changes nothing") {
    auto again = fgc::createFuseElementwisePass()->run(*program, {});
    REQUIRE(again);
    CHECK(again->empty());
  }
}

TEST_CASE("fuse-elementwise leaves softmax, shared and output intermediates alone", "[passes]") {
  clear_session();
  auto x = Input({4}, {.name = "x"});
  auto a = layers::Dense(4, {.name = "a"})(x);
  auto b = layers::Dense(4, {.name = "b"})(x);
  auto sum = layers::add({a, b}, {.name = "sum"});                   // a model output too
  auto probs = layers::Activation("softmax", {.name = "probs"})(sum); // not elementwise
  auto twice = layers::add({probs, probs}, {.name = "twice"});        // reads probs twice
  auto g = graphOf(Model(std::vector<Tensor>{x}, std::vector<Tensor>{twice, sum}, "keep"));
  auto program = fgc::lowerForInference(*g);
  REQUIRE(program);
  std::string before = fgc::printProgram(*program, false);
  auto changes = fgc::createFuseElementwisePass()->run(*program, {});
  REQUIRE(changes);
  CHECK(changes->empty());
  CHECK(fgc::printProgram(*program, false) == before);
}

TEST_CASE("fgc_elementwise computes what the unfused kernels compute", "[passes][runtime]") {
  // Add + ReLU and Average + tanh over sizes around the kernel's chunk (4096), against fgc_add,
  // fgc_average and fgc_activation (each checked against PyTorch in tests/runtime).
  for (int64_t n : {int64_t(1), int64_t(37), int64_t(4096), int64_t(9001)}) {
    std::vector<float> a(static_cast<size_t>(n)), b(a.size()), c(a.size());
    for (int64_t i = 0; i < n; ++i) {
      a[size_t(i)] = std::sin(0.37f * float(i));
      b[size_t(i)] = std::cos(0.11f * float(i)) - 0.2f;
      c[size_t(i)] = 0.001f * float(i % 97) - 0.05f;
    }
    const float *ins[] = {a.data(), b.data(), c.data()};
    std::vector<float> ref(a.size()), fused(a.size());
    REQUIRE(fgc_add(2, ins, n, ref.data()) == FGC_OK);
    REQUIRE(fgc_activation(FGC_ACT_RELU, ref.data(), ref.data(), n, 1) == FGC_OK);
    const int addRelu[] = {FGC_EW_ADD, 1, FGC_EW_ACTIVATION, FGC_ACT_RELU};
    REQUIRE(fgc_elementwise(addRelu, 2, 2, ins, n, fused.data()) == FGC_OK);
    CHECK(fused == ref); // additions and max in the same order: bitwise equal
    REQUIRE(fgc_average(3, ins, n, ref.data()) == FGC_OK);
    REQUIRE(fgc_activation(FGC_ACT_TANH, ref.data(), ref.data(), n, 1) == FGC_OK);
    const int avgTanh[] = {FGC_EW_ADD, 1, FGC_EW_ADD, 2, FGC_EW_DIVIDE, 3, FGC_EW_ACTIVATION,
                           FGC_ACT_TANH};
    // In place: the output is the first input's buffer.
    std::vector<float> inPlace = a;
    const float *ins2[] = {inPlace.data(), b.data(), c.data()};
    REQUIRE(fgc_elementwise(avgTanh, 4, 3, ins2, n, inPlace.data()) == FGC_OK);
    // Eigen's vectorized tanh may treat a buffer's unaligned head with scalar code, so the
    // stack chunk and the caller's array can round the last bit differently.
    for (size_t i = 0; i < ref.size(); ++i)
      CHECK(std::fabs(inPlace[i] - ref[i]) <= 2e-7f * std::max(1.0f, std::fabs(ref[i])));
  }
  const float *none[] = {nullptr};
  const int softmax[] = {FGC_EW_ACTIVATION, FGC_ACT_SOFTMAX};
  float y = 0, x = 1;
  const float *one[] = {&x};
  CHECK(fgc_elementwise(softmax, 1, 1, one, 1, &y) == FGC_ERR_INVALID_ARGUMENT);
  const int badInput[] = {FGC_EW_ADD, 1};
  CHECK(fgc_elementwise(badInput, 1, 1, one, 1, &y) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_elementwise(badInput, 0, 1, none, 1, &y) == FGC_ERR_INVALID_ARGUMENT);
}

TEST_CASE("the pipeline follows -O levels, --disable-pass and --print-ir-after", "[passes]") {
  auto run = [](fgc::PipelineOptions o) {
    auto g = graphOf(nestedModel());
    auto records = fgc::runGraphPasses(*g, o);
    REQUIRE(records);
    std::vector<std::string> ran;
    for (const auto &r : *records)
      if (r.ran)
        ran.push_back(r.name);
    return ran;
  };
  fgc::PipelineOptions o;
  o.optLevel = 0;
  CHECK(run(o).empty());
  o.optLevel = 1;
  CHECK(run(o) == std::vector<std::string>{"inline-nested", "dead-node-elimination"});
  o.optLevel = 2;
  CHECK(run(o) == std::vector<std::string>{"inline-nested", "dead-node-elimination", "cse"});
  o.disabled = {"cse"};
  CHECK(run(o) == std::vector<std::string>{"inline-nested", "dead-node-elimination"});
  std::vector<std::string> printed;
  o.printAfter = {"all"};
  o.print = [&](const std::string &pass, const std::string &) { printed.push_back(pass); };
  run(o);
  CHECK(printed == std::vector<std::string>{"input", "inline-nested", "dead-node-elimination"});
  // The program passes: the same switches, and --print-ir-after prints each lowered program.
  auto runProgram = [](fgc::PipelineOptions o) {
    auto g = graphOf(nestedModel());
    REQUIRE(fgc::runGraphPasses(*g, o));
    auto program = fgc::lowerForInference(*g);
    REQUIRE(program);
    auto records = fgc::runProgramPasses(*program, o);
    REQUIRE(records);
    std::vector<std::string> ran;
    for (const auto &r : *records)
      if (r.ran)
        ran.push_back(r.name);
    return ran;
  };
  fgc::PipelineOptions po;
  po.optLevel = 0;
  CHECK(runProgram(po).empty());
  po.optLevel = 1;
  CHECK(runProgram(po) == std::vector<std::string>{"drop-dropout"});
  po.optLevel = 2;
  po.disabled = {"fuse-elementwise"};
  CHECK(runProgram(po) == std::vector<std::string>{"drop-dropout", "fold-batch-norm",
                                                   "fuse-activation", "transform-weights",
                                                   "constant-fold"});
  std::vector<std::string> programPrints;
  po.printAfter = {"fuse-activation", "cse"};
  po.print = [&](const std::string &pass, const std::string &text) {
    programPrints.push_back(pass);
    CHECK(text.rfind(pass.find('(') == std::string::npos ? "model nested\n"
                                                          : "program nested (predict)\n",
                     0) == 0);
  };
  runProgram(po);
  CHECK(programPrints == std::vector<std::string>{"cse", "fuse-activation (inference)"});
  auto bad = fgc::checkPassNames({"fuse"}, false);
  REQUIRE(!bad);
  CHECK(bad.error().message() == "unknown pass 'fuse' (passes: inline-nested, "
                                 "dead-node-elimination, cse, drop-dropout, fold-batch-norm, "
                                 "fuse-activation, fuse-elementwise, transform-weights, "
                                 "constant-fold)");
}

TEST_CASE("memory plans: live ranges over the schedule, no reuse at -O0", "[passes][memory]") {
  clear_session();
  auto x = Input({16}, {.name = "x"});
  auto h = x;
  for (int units : {32, 64, 48, 16, 8})
    h = layers::Dense(units, {.activation = "relu"})(h);
  auto g = graphOf(Model(x, h, "chain"));
  auto program = fgc::lowerForInference(*g);
  REQUIRE(program);
  auto plan = fgc::planMemory(*program, false, true);
  auto flat = fgc::planMemory(*program, false, false);
  for (int64_t batch : {1, 7, 64}) {
    auto reused = fgc::evaluateArena(*program, plan, {batch});
    auto naive = fgc::evaluateArena(*program, flat, {batch});
    INFO("batch " << batch);
    CHECK(reused.validation.empty());
    CHECK(naive.validation.empty());
    CHECK(reused.arenaBytes >= reused.lowerBound);
    CHECK(double(reused.arenaBytes) <= 1.10 * double(reused.lowerBound));
    CHECK(reused.arenaBytes < naive.arenaBytes);
    CHECK(naive.arenaBytes == naive.naiveBytes);
  }
}

TEST_CASE("memory plans: elementwise outputs reuse a dying input's slot", "[passes][memory]") {
  clear_session();
  auto x = Input({16}, {.name = "x"});
  auto a = layers::Dense(16, {.name = "a"})(x);
  auto b = layers::Dense(16, {.name = "b"})(x);
  auto sum = layers::add({a, b}, {.name = "sum"});                  // in place of a (or b)
  auto act = layers::Activation("relu", {.name = "act"})(sum);      // in place of sum
  auto keep = layers::Activation("tanh", {.name = "keep"})(act);    // act is read again below
  auto out = layers::add({keep, act}, {.name = "out"});             // a model output
  auto g = graphOf(Model(x, out, "inplace"));
  auto program = fgc::lowerForInference(*g);
  REQUIRE(program);
  auto id = [&](const std::string &name) {
    for (size_t i = 0; i < program->buffers.size(); ++i)
      if (program->buffers[i].name == name)
        return int(i);
    FAIL("no buffer " << name);
    return -1;
  };
  auto plan = fgc::planMemory(*program, false, true);
  CHECK(plan.inPlace == std::map<int, int>{{id("sum"), id("a")}, {id("act"), id("a")}});
  // keep: its input act is still read by out, so keep needs memory of its own.
  CHECK(plan.slotOf(id("keep")) != plan.slotOf(id("a")));
  CHECK(plan.slotOf(id("act")) == plan.slotOf(id("a")));
  auto flat = fgc::planMemory(*program, false, false);
  CHECK(flat.inPlace.empty()); // -O0: no sharing at all
  for (int64_t batch : {1, 5, 64}) {
    auto f = fgc::evaluateArena(*program, plan, {batch});
    INFO("batch " << batch);
    CHECK(f.validation.empty());
    CHECK(double(f.arenaBytes) <= 1.10 * double(f.lowerBound));
    // a|sum|act, b, keep: three tensors where five were.
    CHECK(f.naiveBytes == 3 * ((size_t(batch) * 16 * 4 + 63) / 64 * 64));
  }
}

// Every model file of the samples (custom layers included) and of the test models, and a model
// of every primitive-op case (tests/custom/PrimitiveLayers.h), through the whole pipeline at -O2
// and at -O0, inference and (with a training config) training, at three sets of sizes: the
// arena never places two tensors live at the same time on the same bytes (the runtime planner's
// brute-force check over every pair), and with reuse it is within 10% of the lower bound (the
// most bytes live at once); without, it is the naive sum. This test is also built and run under
// ASan + UBSan (label sanitize).
TEST_CASE("every sample's memory plans are valid and within 1.10x of the lower bound",
          "[passes][memory][samples]") {
  register_custom_layer<CustomDense>("CustomDense");
  register_custom_layer<CustomRNN>("CustomRNN");
  register_custom_layer<ScanRNN>("ScanRNN");
  register_custom_layer<PrimitiveCase>("PrimitiveCase");
  registerSwishDense();
  // Model configs by name: the model files, then the primitive cases on inputs shaped like
  // their fixtures' (tests/fixtures/custom/primitives/<case>/input_<i>.npy), compiled with a
  // mean-squared-error loss.
  using Load = std::function<fgc::Expected<std::unique_ptr<fgc::Graph>>()>;
  std::vector<std::pair<std::string, Load>> models;
  std::vector<std::string> files;
  for (const char *dir :
       {"samples", "tests/models", "tests/training/models", "tests/custom/models"})
    for (const auto &e : std::filesystem::recursive_directory_iterator(
             std::string(FGC_SOURCE_DIR) + "/" + dir))
      if (e.path().extension() == ".pbtxt")
        files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  for (const std::string &file : files)
    models.emplace_back(file, [file] { return fgc::loadGraph(file); });
  const std::filesystem::path fixtures =
      std::filesystem::path(FGC_SOURCE_DIR) / "tests/fixtures/custom/primitives";
  for (const auto &[name, c] : primitive_cases::cases()) {
    clear_session();
    std::vector<Tensor> inputs;
    for (int i = 0;; ++i) {
      auto npy = fixtures / name / ("input_" + std::to_string(i) + ".npy");
      if (!std::filesystem::exists(npy))
        break;
      auto a = fgc::runtime::readNpy(npy.string());
      InputOptions o;
      o.dtype = a.dtype == fgc::runtime::DType::Int32 ? "int32" : "float32";
      inputs.push_back(Input(Shape(a.shape.begin() + 1, a.shape.end()), o));
    }
    REQUIRE(!inputs.empty());
    Model model(inputs, {layers::Custom<PrimitiveCase>(name)(inputs)}, "primitive_" + name);
    model.compile({.optimizer = optimizers::SGD(0.1), .loss = {{"", losses::MeanSquaredError()}}});
    models.emplace_back("primitive case " + name,
                        [config = model.get_config()] { return fgc::buildGraph(config); });
  }
  int plans = 0, trainingPlans = 0;
  for (const auto &[name, load] : models) {
    for (int level : {0, 2}) {
      auto built = load();
      REQUIRE(built);
      auto &g = *built;
      fgc::PipelineOptions po;
      po.optLevel = level;
      REQUIRE(fgc::runGraphPasses(*g, po));
      auto p = fgc::lowerForInference(*g);
      REQUIRE(p);
      bool training = g->training.losses_size() > 0;
      if (training)
        REQUIRE(fgc::lowerForTraining(*g, *p));
      REQUIRE(fgc::runProgramPasses(*p, po));
      for (bool train : {false, true}) {
        if (train && !training)
          continue;
        auto plan = fgc::planMemory(*p, train, level > 0);
        for (auto [batch, other] : {std::pair<int64_t, int64_t>{1, 1}, {7, 13}, {64, 64}}) {
          std::vector<int64_t> symbols(std::max<size_t>(p->symbolNames.size(), 1), other);
          symbols[0] = batch;
          auto f = fgc::evaluateArena(*p, plan, symbols);
          INFO(name << " -O" << level << (train ? " trainStep" : " predict") << " batch "
                    << batch << ": arena " << f.arenaBytes << ", lower bound " << f.lowerBound
                    << ", naive " << f.naiveBytes);
          CHECK(f.validation.empty());
          CHECK(f.arenaBytes >= f.lowerBound);
          if (level > 0)
            CHECK(double(f.arenaBytes) <= 1.10 * double(f.lowerBound));
          else
            CHECK(f.arenaBytes == f.naiveBytes);
        }
        ++(train ? trainingPlans : plans);
      }
    }
  }
  // 9 samples with 15 model files, the test models, and the primitive cases (18, each with a
  // training config).
  CHECK(primitive_cases::cases().size() >= 18);
  CHECK(plans >= 2 * 38);
  CHECK(trainingPlans >= 2 * 28);
}

TEST_CASE("arena figures size convolution scratch with the runtime's function", "[passes][memory]") {
  clear_session();
  auto x = Input({9, 9, 3}, {.name = "x"});
  auto y = layers::Conv2D(8, 3, {.strides = 2, .padding = "same", .name = "conv"})(x);
  auto g = graphOf(Model(x, y, "conv"));
  auto program = fgc::lowerForInference(*g);
  REQUIRE(program);
  auto plan = fgc::planMemory(*program, false, true);
  for (int64_t batch : {1, 7}) {
    auto f = fgc::evaluateArena(*program, plan, {batch});
    fgc_conv2d_params p{batch, 9, 9, 3, 3, 3, 8, 2, 2, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR};
    size_t bytes = (sizeof(float) * fgc_conv2d_scratch_size(&p) + 63) / 64 * 64;
    REQUIRE(bytes > 0);
    CHECK(f.scratchCalls == 1);
    CHECK(f.scratchUnknown == 0);
    CHECK(f.scratchPeak == bytes);
    CHECK(f.scratchSum == bytes);
  }
}

TEST_CASE("the compile report lists passes, fusions, arena figures and FLOPs", "[passes][report]") {
  auto g = graphOf(nestedModel());
  fgc::PipelineOptions o;
  auto records = fgc::runGraphPasses(*g, o);
  REQUIRE(records);
  auto program = fgc::lowerForInference(*g);
  REQUIRE(program);
  auto plan = fgc::planMemory(*program, false);
  fgc::ReportInput in;
  in.graph = g.get();
  in.program = &*program;
  in.passes = *records;
  in.predictPlan = &plan;
  in.batch = 1000;
  std::string text = fgc::reportText(in);
  INFO(text);
  CHECK(text.find("  inline-nested            1 change(s)\n    inlined encoder (2 ops)\n") !=
        std::string::npos);
  CHECK(text.find("  cse                      1 change(s)\n") != std::string::npos);
  CHECK(text.find("encoder/enc_dense: Dense + bias + FGC_ACT_RELU in one kernel") !=
        std::string::npos);
  // After inlining and CSE: encoder/enc_dense (4), shared (4), sum (4) in the arena (the outputs
  // are the caller's tensors); at batch 1000 each is 16,000 bytes. The Add reads `shared` for the
  // last time, so `sum` runs in place of it: two slots. (`aux` keeps encoder/enc_dense live
  // until the end.)
  CHECK(text.find("predict    arena 32.0 KB (1.000x the lower bound 32.0 KB), naive sum 32.0 KB, "
                  "2 tensors") != std::string::npos);
  // 2 * (8*4 + 4*4 + 4*2 + 4*3) multiply-adds, plus one per element of the Add's output.
  CHECK(text.find("FLOPs per sample: 140 ") != std::string::npos);
  std::string json = fgc::reportJson(in);
  CHECK(json.find("\"predict\": {\"arena_bytes\": 32000, \"lower_bound_bytes\": 32000, "
                  "\"naive_bytes\": 32000, \"tensors\": 2, \"valid\": true, \"scratch_calls\": 0, "
                  "\"scratch_peak_bytes\": 0, \"scratch_sum_bytes\": 0, \"scratch_unknown\": "
                  "0}") !=
        std::string::npos);
}
