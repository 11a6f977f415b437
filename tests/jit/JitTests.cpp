// The JIT's own checks: its kernel table covers every function the lowering of every sample and
// fixture model names; parameter structs match the runtime's layout; the in-process API (compile
// from a file, a schema::Model, the functional API; predict by name; save / load round trips
// with generated code's model files) and its errors.
#include "compiler/codegen/Lowering.h"
#include "compiler/jit/RuntimeSymbols.h"
#include "compiler/passes/PassManager.h"
#include "frontend/GraphBuilder.h"
#include "frontend/ModelFile.h"

#include "fgc/jit.h"
#include "fgc/keras.h"
#include "fgc/runtime/kernels.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace fgc;

namespace {

// Every model file of the samples and the test fixtures (except those with custom layers,
// which need their classes registered: samples/custom_*).
std::vector<std::string> modelFiles() {
  std::vector<std::string> files;
  std::string root = FGC_SOURCE_DIR;
  for (const char *dir : {"samples", "tests/models", "tests/training/models"})
    for (const auto &e : fs::recursive_directory_iterator(root + "/" + dir))
      if (e.path().extension() == ".pbtxt" &&
          e.path().string().find("/samples/custom_") == std::string::npos)
        files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

void collect(const Arg &a, std::set<std::string> &structs) {
  if (a.kind == Arg::Kind::Struct)
    structs.insert(a.structType);
  for (const Arg &f : a.fields)
    collect(f, structs);
}

} // namespace

TEST_CASE("every function a lowered model calls is in the JIT's runtime table", "[jit]") {
  std::set<std::string> functions, structs;
  size_t programs = 0;
  for (const std::string &file : modelFiles()) {
    for (int level : {0, 2}) {
      INFO(file << " at -O" << level);
      auto g = loadGraph(file);
      REQUIRE(g);
      PipelineOptions po;
      po.optLevel = level;
      REQUIRE(runGraphPasses(**g, po));
      auto p = lowerForInference(**g);
      REQUIRE(p);
      if ((*g)->training.losses_size() > 0) {
        TrainingOptions to;
        to.inputGradients = level == 0; // both kinds of backward code
        REQUIRE(lowerForTraining(**g, *p, to));
      }
      REQUIRE(runProgramPasses(*p, po));
      ++programs;
      for (const auto *steps : {&p->steps, &p->weightSteps, &p->trainSteps})
        for (const Step &st : *steps)
          for (const KernelCall &k : st.calls) {
            functions.insert(k.function);
            if (!k.scratchFunction.empty())
              functions.insert(k.scratchFunction);
            for (const Arg &a : k.args)
              collect(a, structs);
          }
      for (const Buffer &b : p->buffers)
        if (!b.sizeFunction.empty())
          functions.insert(b.sizeFunction);
    }
  }
  CHECK(programs >= 30);
  CHECK(functions.size() >= 40);
  for (const std::string &f : functions) {
    INFO("kernel " << f);
    CHECK(jit::findRuntimeFunction(f) != nullptr);
  }
  for (const std::string &s : structs) {
    INFO("struct " << s);
    CHECK(jit::findRuntimeStruct(s) != nullptr);
  }
}

TEST_CASE("the runtime table's types follow the C declarations", "[jit]") {
  llvm::LLVMContext c;
  const auto *dense = jit::findRuntimeFunction("fgc_dense");
  REQUIRE(dense);
  CHECK(dense->address == reinterpret_cast<void *>(&fgc_dense));
  llvm::FunctionType *t = dense->type(c);
  REQUIRE(t->getNumParams() == 8);
  CHECK(t->getReturnType()->isIntegerTy(32));
  CHECK(t->getParamType(0)->isPointerTy());
  CHECK(t->getParamType(4)->isIntegerTy(64));
  CHECK(t->getParamType(7)->isIntegerTy(32)); // fgc_activation_kind
  const auto *conv = jit::findRuntimeStruct("fgc_conv2d_params");
  REQUIRE(conv);
  CHECK(conv->size == sizeof(fgc_conv2d_params));
  CHECK(conv->fields.size() == 13);
  CHECK(conv->fields.back().offset == offsetof(fgc_conv2d_params, activation));
  CHECK(jit::findRuntimeFunction("fgc_no_such_kernel") == nullptr);
}

TEST_CASE("a model compiles from a file, from a schema and from the functional API", "[jit]") {
  std::string file = std::string(FGC_SOURCE_DIR) + "/samples/mnist_mlp/model.pbtxt";
  auto fromFile = jit::compile(file);
  REQUIRE(fromFile->inputNames() == std::vector<std::string>{"input_1"});
  REQUIRE(fromFile->outputNames() == std::vector<std::string>{"dense_2"});
  CHECK(fromFile->inputShape(0) == std::vector<int64_t>{-1, 784});
  CHECK(fromFile->parameterCount() == 55050);
  CHECK(fromFile->hasTraining());

  auto schema = readModelFile(file);
  REQUIRE(schema);
  auto fromSchema = jit::compile(*schema);

  keras::clear_session();
  auto in = keras::Input({784});
  auto x = keras::layers::Dense(64, {.activation = "relu"})(in);
  x = keras::layers::Dense(64, {.activation = "relu"})(x);
  auto out = keras::layers::Dense(10)(x);
  keras::Model api(in, out, "mnist_model");
  auto fromApi = jit::compile(api);

  // Same architecture and seed: the same weights, so the same predictions.
  rt::Tensor batch(rt::DType::Float32, {3, 784});
  for (int64_t i = 0; i < batch.size(); ++i)
    batch.data<float>()[i] = float((i * 37) % 101) / 101.0f;
  auto a = fromFile->predict(std::vector<rt::Tensor>{batch});
  auto b = fromSchema->predict(std::vector<rt::Tensor>{batch});
  auto c = fromApi->predict(std::vector<rt::Tensor>{batch});
  REQUIRE(a[0].shape() == std::vector<int64_t>{3, 10});
  CHECK(std::memcmp(a[0].raw(), b[0].raw(), a[0].bytes()) == 0);
  CHECK(std::memcmp(a[0].raw(), c[0].raw(), a[0].bytes()) == 0);
  CHECK_FALSE(fromApi->hasTraining()); // not compiled (Keras's compile) before
}

TEST_CASE("predict by name, and its errors", "[jit][errors]") {
  auto m = jit::compile(std::string(FGC_SOURCE_DIR) + "/samples/ticket_classifier/model.pbtxt");
  REQUIRE(m->numInputs() == 3);
  std::map<std::string, rt::Tensor> in;
  in["title"] = rt::Tensor(rt::DType::Int32, {2, 5});
  in["body"] = rt::Tensor(rt::DType::Int64, {2, 7});
  in["tags"] = rt::Tensor(rt::DType::Float32, {2, 12});
  std::memset(in["title"].raw(), 0, in["title"].bytes());
  std::memset(in["body"].raw(), 0, in["body"].bytes());
  std::memset(in["tags"].raw(), 0, in["tags"].bytes());
  auto out = m->predict(in);
  REQUIRE(out.count("priority") == 1);
  CHECK(out["priority"].shape() == std::vector<int64_t>{2, 1});
  CHECK(out["department"].shape() == std::vector<int64_t>{2, 4});

  auto bad = in;
  bad["tags"] = rt::Tensor(rt::DType::Float32, {2, 13});
  CHECK_THROWS_WITH(m->predict(bad), Catch::Contains("tags") && Catch::Contains("expects shape"));
  bad = in;
  bad.erase("tags");
  bad["tag"] = in["tags"];
  CHECK_THROWS_WITH(m->predict(bad), Catch::Contains("missing input 'tags'"));
  // An index outside the Embedding's table: the generated code's message, naming the layer.
  bad = in;
  bad["title"].data<int32_t>()[3] = 123456;
  CHECK_THROWS_WITH(m->predict(bad), Catch::Contains("embedding") && Catch::Contains("123456"));
}

TEST_CASE("JIT model files are the generated code's: save, load, fgc reads them", "[jit]") {
  std::string file = std::string(FGC_SOURCE_DIR) + "/tests/training/models/mnist_mlp_dropout.pbtxt";
  auto m = jit::compile(file);
  REQUIRE(m->hasTraining());
  rt::Tensor x(rt::DType::Float32, {8, 784}), y(rt::DType::Float32, {8});
  for (int64_t i = 0; i < x.size(); ++i)
    x.data<float>()[i] = float((i * 13) % 29) / 29.0f;
  for (int64_t i = 0; i < 8; ++i)
    y.data<float>()[i] = float(i % 10);
  std::vector<double> logs(m->logNames().size());
  m->trainStep(&x, &y, logs.data());
  m->trainStep(&x, &y, logs.data());
  CHECK(m->step() == 2);
  fs::path dir = fs::temp_directory_path() / ("fgc_jit_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string saved = (dir / "trained.fgcm").string();
  m->save(saved);

  // A fresh model loading the file continues exactly where the first one is.
  auto resumed = m->fresh();
  resumed->load(saved);
  CHECK(resumed->step() == 2);
  std::vector<double> a(logs.size()), b(logs.size());
  m->trainStep(&x, &y, a.data());
  resumed->trainStep(&x, &y, b.data());
  CHECK(a == b);
  for (int i = 0; i < m->numWeights(); ++i) {
    size_t n = 1;
    for (int64_t d : m->weightShape(i))
      n *= size_t(d);
    CHECK(std::memcmp(m->weightData(i), resumed->weightData(i), n * sizeof(float)) == 0);
  }
  // The saved file is a model fgc compiles again, with the trained weights.
  auto reloaded = jit::compile(saved);
  auto p1 = reloaded->predict(std::vector<rt::Tensor>{x});
  auto fresh = m->fresh();
  fresh->load(saved);
  auto p2 = fresh->predict(std::vector<rt::Tensor>{x});
  CHECK(std::memcmp(p1[0].raw(), p2[0].raw(), p1[0].bytes()) == 0);
  fs::remove_all(dir);
}

TEST_CASE("compile errors are fgc errors naming the file", "[jit][errors]") {
  CHECK_THROWS_WITH(jit::compile("/nonexistent/model.pbtxt"),
                    Catch::Contains("/nonexistent/model.pbtxt"));
  jit::Options o;
  o.disabledPasses = {"no-such-pass"};
  CHECK_THROWS_WITH(jit::compile(std::string(FGC_SOURCE_DIR) + "/samples/mnist_mlp/model.pbtxt", o),
                    Catch::Contains("no-such-pass"));
  auto inference = jit::compile(std::string(FGC_SOURCE_DIR) + "/samples/ensemble/model.pbtxt");
  rt::Tensor x(rt::DType::Float32, {1, 128});
  double logs[4];
  if (!inference->hasTraining())
    CHECK_THROWS_WITH(inference->trainStep(&x, &x, logs), Catch::Contains("without training"));
}

TEST_CASE("the optimized LLVM module is written on request (dumpLlvmIr)", "[jit]") {
  fs::path out = fs::temp_directory_path() / ("fgc_jit_ir_" + std::to_string(::getpid()) + ".ll");
  jit::Options o;
  o.dumpLlvmIr = out.string();
  auto m = jit::compile(std::string(FGC_SOURCE_DIR) + "/samples/mnist_mlp/model.pbtxt", o);
  std::ifstream in(out);
  std::string ir((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(ir.find("define i32 @predict(") != std::string::npos);
  CHECK(ir.find("define i32 @train_step(") != std::string::npos);
  CHECK(ir.find("@fgc_dense(") != std::string::npos);
  fs::remove(out);
}

namespace {

bool hasPhase(const jit::Model &m, const std::string &name) {
  for (const auto &[phase, seconds] : m.compilePhases())
    if (phase == name)
      return true;
  return false;
}

size_t weightBytes(const jit::Model &m, int i) {
  size_t n = sizeof(float);
  for (int64_t d : m.weightShape(i))
    n *= size_t(d);
  return n;
}

} // namespace

TEST_CASE("a model built straight from a weights file (no initializers)", "[jit][weights]") {
  // A model with nested models: weights keyed by layer path ("encoder/conv2d").
  std::string file = std::string(FGC_SOURCE_DIR) + "/samples/conv_autoencoder/model.pbtxt";
  auto seeded = jit::compile(file);
  CHECK(hasPhase(*seeded, "weights"));
  // Other weights than the seed's, saved as a weights file and a model file.
  for (int i = 0; i < seeded->numWeights(); ++i) {
    float *w = seeded->mutableWeightData(i);
    for (size_t k = 0; k < weightBytes(*seeded, i) / sizeof(float); ++k)
      w[k] = float(std::sin(double(1000 * i + int(k)))) * 0.2f;
  }
  fs::path dir = fs::temp_directory_path() / ("fgc_jit_weights_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string weights = (dir / "w.fgcw").string(), saved = (dir / "trained.fgcm").string();
  seeded->save_weights(weights);
  seeded->save(saved);
  rt::Tensor x(rt::DType::Float32, {2, 28, 28, 1});
  for (int64_t i = 0; i < x.size(); ++i)
    x.data<float>()[i] = float((i * 7) % 17) / 17.0f;
  auto want = seeded->predict(std::vector<rt::Tensor>{x});

  auto check = [&](const jit::Model &m) {
    REQUIRE(m.numWeights() == seeded->numWeights());
    for (int i = 0; i < m.numWeights(); ++i) {
      INFO(m.weightName(i));
      CHECK(std::memcmp(m.weightData(i), seeded->weightData(i), weightBytes(m, i)) == 0);
    }
    auto got = const_cast<jit::Model &>(m).predict(std::vector<rt::Tensor>{x});
    REQUIRE(got.size() == want.size());
    CHECK(std::memcmp(got[0].raw(), want[0].raw(), want[0].bytes()) == 0);
    // Read into the weight buffer; the seed's initializers never ran.
    CHECK(hasPhase(m, "weights file"));
    CHECK_FALSE(hasPhase(m, "weights"));
  };
  SECTION("Options::weightsFile") {
    jit::Options o;
    o.weightsFile = weights;
    check(*jit::compile(file, o));
    auto schema = readModelFile(file);
    REQUIRE(schema);
    check(*jit::compile(*schema, o));
    // A fresh model of the same code starts from the file's weights too.
    check(*jit::compile(file, o)->fresh());
  }
  SECTION("a model file naming its weights_file, and a saved model file") {
    auto schema = readModelFile(file);
    REQUIRE(schema);
    schema->set_weights_file("w.fgcw"); // relative to the model file's folder
    REQUIRE(writeModelFile((dir / "model.pbtxt").string(), *schema));
    check(*jit::compile((dir / "model.pbtxt").string()));
    check(*jit::compile(saved));
  }
  SECTION("the option replaces the model's own weights") {
    jit::Options o;
    o.weightsFile = weights;
    auto schema = readModelFile(file);
    REQUIRE(schema);
    schema->set_weights_file("/nonexistent/other.fgcw");
    check(*jit::compile(*schema, o));
  }
  fs::remove_all(dir);
}

TEST_CASE("a weights file that does not fit is one error naming the file, layer and shapes",
          "[jit][weights][errors]") {
  std::string mnist = std::string(FGC_SOURCE_DIR) + "/samples/mnist_mlp/model.pbtxt";
  fs::path dir = fs::temp_directory_path() / ("fgc_jit_badw_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // Same layer names, other widths.
  keras::clear_session();
  auto in = keras::Input({784});
  auto x = keras::layers::Dense(32, {.activation = "relu"})(in);
  x = keras::layers::Dense(64, {.activation = "relu"})(x);
  auto out = keras::layers::Dense(10)(x);
  keras::Model narrow(in, out, "mnist_model");
  std::string narrowWeights = (dir / "narrow.fgcw").string();
  jit::compile(narrow)->save_weights(narrowWeights);
  std::string otherWeights = (dir / "other.fgcw").string();
  jit::compile(std::string(FGC_SOURCE_DIR) + "/samples/toy_resnet/model.pbtxt")
      ->save_weights(otherWeights);

  jit::Options o;
  o.weightsFile = narrowWeights;
  CHECK_THROWS_WITH(jit::compile(mnist, o),
                    Catch::Contains(narrowWeights) && Catch::Contains("layer 'dense' (Dense)") &&
                        Catch::Contains("(784, 32)") && Catch::Contains("(784, 64)"));
  o.weightsFile = otherWeights;
  CHECK_THROWS_WITH(jit::compile(mnist, o), Catch::Contains(otherWeights) &&
                                                Catch::Contains("missing weight 'kernel'") &&
                                                Catch::Contains("(784, 64)"));
  o.weightsFile = mnist;
  CHECK_THROWS_WITH(jit::compile(mnist, o), Catch::Contains("not an fgc weights file"));
  o.weightsFile = (dir / "missing.fgcw").string();
  CHECK_THROWS_WITH(jit::compile(mnist, o),
                    Catch::Contains("missing.fgcw") && Catch::Contains("cannot open"));
  // Truncated: the index is there, the data is not.
  std::string truncated = (dir / "truncated.fgcw").string();
  fs::copy_file(otherWeights, truncated);
  fs::resize_file(truncated, 1000);
  jit::Options t;
  t.weightsFile = truncated;
  CHECK_THROWS_WITH(jit::compile(std::string(FGC_SOURCE_DIR) + "/samples/toy_resnet/model.pbtxt",
                                 t),
                    Catch::Contains("truncated"));
  fs::remove_all(dir);
}
