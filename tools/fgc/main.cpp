// fgc: the command-line driver.
//
//   fgc summary MODEL        Keras's model.summary() table
//   fgc plot MODEL -o FILE   the layer graph (png, svg, pdf, dot)
//   fgc check MODEL          validate a model file
//   fgc convert MODEL -o OUT convert between binary .pb and text .pbtxt, manage weights
//   fgc ops                  list the layer classes fgc knows
//   fgc import KERAS -o OUT  convert a Keras model (JSON, HDF5, .keras) to an fgc model
//   fgc run MODEL [fit|evaluate] ...  JIT-compile the model in-process and run it on data files
//
// Every command that reads a model also reads Keras files directly (told apart by content).
// `--plugin LIB.so` (any command, repeatable) loads custom layers first (see loadPlugin).
//
// Every failure prints one `fgc: error: ...` line naming the file, layer and shapes, and exits 1.
#include "compiler/codegen/CppEmitter.h"
#include "compiler/codegen/Lowering.h"
#include "compiler/ir/OpRegistry.h"
#include "compiler/memory/MemoryPlan.h"
#include "compiler/passes/PassManager.h"
#include "compiler/report/CompileReport.h"
#include "compiler/support/AtomicFile.h"
#include "compiler/report/Plot.h"
#include "compiler/report/Summary.h"
#include "frontend/GraphBuilder.h"
#include "frontend/GraphWriter.h"
#include "frontend/Initializers.h"
#include "frontend/ModelFile.h"
#include "frontend/WeightsFile.h"
#include "frontend/importers/KerasImport.h"
#include "tools/fgc/RunCommand.h"

#include "fgc/runtime/kernels.h"
#include "fgc/runtime/npy.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <dlfcn.h>
#include <filesystem>
#include <iostream>

namespace {

// A plugin is a shared library that defines `extern "C" int fgc_register_plugin(void)`, which
// registers its custom layers (fgc::keras::register_custom_layer) and returns 0. It is linked
// against nothing of fgc: it resolves the API from this executable (RTLD_GLOBAL; fgc exports
// its symbols), so plugin and compiler share one registry.
fgc::Status loadPlugin(const std::string &path) {
  // A bare file name would make dlopen search the library path; a plugin is named by its path.
  std::string file = path.find('/') == std::string::npos ? "./" + path : path;
  void *handle = dlopen(file.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!handle)
    return fgc::Error::format("cannot load plugin '{}': {}", path, dlerror());
  using Register = int (*)();
  auto fn = reinterpret_cast<Register>(dlsym(handle, "fgc_register_plugin"));
  if (!fn)
    return fgc::Error::format("plugin '{}' has no entry point `extern \"C\" int "
                              "fgc_register_plugin(void)`",
                              path);
  try {
    if (int rc = fn(); rc != 0)
      return fgc::Error::format("plugin '{}': fgc_register_plugin() failed with {}", path, rc);
  } catch (const std::exception &e) {
    return fgc::Error::format("plugin '{}': fgc_register_plugin() failed: {}", path, e.what());
  }
  return fgc::Status::ok();
}

// Takes every `--plugin LIB` / `--plugin=LIB` out of argv (they may stand anywhere, before or
// after the command) and loads the libraries, in order.
fgc::Status loadPlugins(int &argc, char **argv) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--plugin") {
      if (i + 1 >= argc)
        return fgc::Error("--plugin needs a shared library path");
      FGC_TRY(loadPlugin(argv[++i]));
    } else if (a.rfind("--plugin=", 0) == 0) {
      FGC_TRY(loadPlugin(a.substr(9)));
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return fgc::Status::ok();
}

int fail(const fgc::Error &e) {
  std::fflush(stdout);
  fmt::print(stderr, "fgc: error: {}\n", e.message());
  return 1;
}

// Imports a Keras file, printing its warnings; the error names the file.
fgc::Expected<fgc::schema::Model> importKeras(const std::string &path,
                                              const std::string &weightsPath,
                                              const std::string &compileConfig = "") {
  fgc::KerasImportOptions options;
  options.weightsPath = weightsPath;
  options.compileConfig = compileConfig;
  auto r = fgc::importKerasFile(path, options);
  if (!r)
    return r.error();
  for (const auto &w : r->warnings)
    fmt::print(stderr, "fgc: {}\n", w);
  return std::move(r->model);
}

// Reads an fgc model or a Keras file (judged by content) and builds its graph.
fgc::Expected<std::unique_ptr<fgc::Graph>> loadAnyModel(const std::string &path,
                                                        const std::string &kerasWeights) {
  auto head = fgc::readFile(path);
  if (!head)
    return head.error();
  if (fgc::detectKerasFormat(*head) == fgc::KerasFormat::None) {
    if (!kerasWeights.empty())
      return fgc::Error::format("{}: --keras-weights applies to Keras files only", path);
    return fgc::loadGraph(path);
  }
  auto model = importKeras(path, kerasWeights);
  if (!model)
    return model.error();
  fgc::BuildOptions options;
  options.fileName = path;
  return fgc::buildGraph(*model, options);
}

std::string relativeTo(const std::string &target, const std::string &fromFile) {
  // A weights file beside the model is referenced by its file name alone.
  auto dirOf = [](const std::string &p) {
    auto s = p.find_last_of('/');
    return s == std::string::npos ? std::string() : p.substr(0, s);
  };
  if (dirOf(target) == dirOf(fromFile)) {
    auto s = target.find_last_of('/');
    return s == std::string::npos ? target : target.substr(s + 1);
  }
  return target;
}

// Writes each parameter as OUT/<layer path>/<name>.npy.
fgc::Status exportWeightsAsNpy(const fgc::Graph &g, const std::string &dir,
                               const std::string &prefix = "") {
  namespace fs = std::filesystem;
  for (const auto &l : g.layers) {
    std::string path = prefix.empty() ? l->name : prefix + "/" + l->name;
    if (l->subgraph)
      FGC_TRY(exportWeightsAsNpy(*l->subgraph, dir, path));
    for (const auto &p : l->params) {
      fs::path file = fs::path(dir) / path / (p.name + ".npy");
      std::error_code ec;
      fs::create_directories(file.parent_path(), ec);
      if (ec)
        return fgc::Error::format("{}: cannot create directory: {}", file.parent_path().string(),
                                  ec.message());
      try {
        fgc::runtime::writeNpy(file.string(), reinterpret_cast<const float *>(p.data.data()),
                               p.type.shape);
      } catch (const std::exception &e) {
        return fgc::Error(e.what());
      }
    }
  }
  return fgc::Status::ok();
}

std::string stemOf(const std::string &path) {
  auto dot = path.find_last_of('.');
  auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
    return path;
  return path.substr(0, dot);
}

std::string baseName(const std::string &path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// What `fgc compile` optimizes and reports.
struct OptimizeOptions {
  int optLevel = 2;
  std::vector<std::string> disable, printAfter, outputs;
  bool report = false;
  std::string reportJson;
  int64_t reportBatch = 32;
};

int compileModel(fgc::Graph &g, const std::string &model, const std::string &output,
                 std::string headerPath, const std::string &ns, const std::string &className,
                 const std::string &weightsMode, std::string weightsPath, bool inferenceOnly,
                 const fgc::TrainingOptions &training, const OptimizeOptions &opt) {
  if (auto s = fgc::initializeWeights(g); !s)
    return fail(s.error().withContext(model));
  // The architecture and training config (with the command line's overrides) as the user wrote
  // them, before any pass rewrites the graph: what save() writes.
  auto schema = fgc::graphToModel(g, fgc::WeightsMode::None);
  if (!schema)
    return fail(schema.error().withContext(model));
  schema->clear_weights_file();
  std::string modelSchema = fgc::serializeModel(*schema, fgc::ModelFormat::Binary);
  fgc::PipelineOptions po;
  po.optLevel = opt.optLevel;
  po.disabled = {opt.disable.begin(), opt.disable.end()};
  po.printAfter = {opt.printAfter.begin(), opt.printAfter.end()};
  po.pass.outputs = opt.outputs;
  po.print = [](const std::string &pass, const std::string &ir) {
    fmt::print("// ----- IR after {} -----\n{}\n", pass, ir);
  };
  if (auto s = fgc::checkPassNames(po.disabled, false); !s)
    return fail(s.error());
  if (auto s = fgc::checkPassNames(po.printAfter, true); !s)
    return fail(s.error());
  if (!opt.outputs.empty() && opt.optLevel == 0)
    return fail(fgc::Error("--outputs needs dead-node elimination: use -O1 or -O2"));
  if (!opt.outputs.empty() && po.disabled.count("dead-node-elimination"))
    return fail(fgc::Error("--outputs needs the dead-node-elimination pass, which is disabled"));
  auto graphPasses = fgc::runGraphPasses(g, po);
  if (!graphPasses)
    return fail(graphPasses.error().withContext(model));
  auto program = fgc::lowerForInference(g);
  if (!program)
    return fail(program.error().withContext(model));
  // Training code when the model has a loss (Keras's compile), unless asked not to.
  if (!inferenceOnly && g.training.losses_size() > 0)
    if (auto s = fgc::lowerForTraining(g, *program, training); !s)
      return fail(s.error().withContext(model));
  for (const auto &w : program->warnings)
    fmt::print(stderr, "fgc: warning: {}: {}\n", model, w);
  auto programPasses = fgc::runProgramPasses(*program, po);
  if (!programPasses)
    return fail(programPasses.error().withContext(model));
  // Memory: liveness-based reuse from -O1 on.
  bool reuse = opt.optLevel >= 1;
  fgc::MemoryPlan predictPlan = fgc::planMemory(*program, false, reuse);
  fgc::MemoryPlan trainPlan = fgc::planMemory(*program, true, reuse);
  if (opt.report || !opt.reportJson.empty()) {
    fgc::ReportInput ri;
    ri.graph = &g;
    ri.program = &*program;
    ri.passes = *graphPasses;
    ri.passes.insert(ri.passes.end(), programPasses->begin(), programPasses->end());
    ri.predictPlan = &predictPlan;
    ri.trainPlan = program->training ? &trainPlan : nullptr;
    ri.optLevel = opt.optLevel;
    ri.batch = opt.reportBatch;
    if (opt.report)
      fmt::print("{}\n", fgc::reportText(ri));
    if (!opt.reportJson.empty()) {
      if (auto s = fgc::writeFileAtomic(opt.reportJson, fgc::reportJson(ri)); !s)
        return fail(s.error());
      fmt::print("wrote {}\n", opt.reportJson);
    }
  }
  std::string stem = stemOf(output);
  if (headerPath.empty())
    headerPath = stem + ".h";
  fgc::CppOptions o;
  o.ns = ns;
  o.className = className;
  o.headerName = baseName(headerPath);
  o.sourceName = baseName(model);
  o.weights = weightsMode == "blob"   ? fgc::WeightsEmbedding::Blob
              : weightsMode == "file" ? fgc::WeightsEmbedding::File
                                      : fgc::WeightsEmbedding::Inline;
  std::string blobPath = stem + ".weights.bin";
  std::string fgcwPath = stem + ".fgcw";
  if (o.weights == fgc::WeightsEmbedding::Blob)
    o.weightsFileName = baseName(blobPath);
  if (o.weights == fgc::WeightsEmbedding::File)
    o.weightsFileName = weightsPath.empty() ? baseName(fgcwPath) : weightsPath;
  o.modelSchema = std::move(modelSchema);
  auto out = fgc::emitCpp(*program, o, &predictPlan, &trainPlan);
  if (!out)
    return fail(out.error().withContext(model));
  std::vector<std::pair<std::string, const std::string *>> files = {{headerPath, &out->header},
                                                                    {output, &out->source}};
  if (o.weights == fgc::WeightsEmbedding::Blob) {
    files.push_back({blobPath, &out->blob});
    files.push_back({stem + ".weights.S", &out->assembly});
  }
  for (const auto &[path, text] : files)
    if (auto s = fgc::writeFileAtomic(path, *text); !s)
      return fail(s.error());
  if (o.weights == fgc::WeightsEmbedding::File)
    if (auto s = fgc::saveWeightsFile(g, fgcwPath); !s)
      return fail(s.error());
  for (const auto &[path, text] : files)
    fmt::print("wrote {}\n", path);
  if (o.weights == fgc::WeightsEmbedding::File)
    fmt::print("wrote {}\n", fgcwPath);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  if (auto s = loadPlugins(argc, argv); !s)
    return fail(s.error());
  CLI::App app{"fgc - an ahead-of-time compiler for Keras-style functional models"};
  app.footer("Any command: --plugin LIB.so loads custom layers from a shared library first "
             "(README, \"Custom layers\").");
  // The runtime kernel variant this machine selects (FGC_CPU overrides it).
  const std::string version = std::string("fgc ") + FGC_VERSION + "\nruntime kernels: " +
                              fgc_cpu_variant() + " (FGC_CPU=baseline|avx2|avx512|auto)";
  app.set_version_flag("--version", version);
  app.require_subcommand(1);

  std::string model, output;
  bool expandNested = false, showShapes = false, showDtype = false;
  std::string rankdir = "TB";
  int dpi = 96;

  auto *summary = app.add_subcommand("summary", "Print the model's layers like Keras's summary()");
  summary->add_option("MODEL", model, "Model file (.pb or .pbtxt)")->required();
  summary->add_flag("--expand-nested", expandNested, "Also list the layers of nested models");

  auto *plot = app.add_subcommand("plot", "Draw the layer graph like keras.utils.plot_model");
  plot->add_option("MODEL", model, "Model file (.pb or .pbtxt)")->required();
  plot->add_option("-o,--output", output, "Output file: .png, .svg, .pdf or .dot")->required();
  plot->add_flag("--show-shapes", showShapes, "Show input and output shapes");
  plot->add_flag("--show-dtype", showDtype, "Show output dtypes");
  plot->add_flag("--expand-nested", expandNested, "Draw nested models as clusters of their layers");
  plot->add_option("--rankdir", rankdir, "Graph direction")
      ->check(CLI::IsMember({"TB", "LR", "BT", "RL"}));
  plot->add_option("--dpi", dpi, "Resolution of PNG output")->check(CLI::Range(10, 1200));

  auto *check = app.add_subcommand("check", "Validate a model file (structure, shapes, weights)");
  check->add_option("MODEL", model, "Model file (.pb or .pbtxt)")->required();

  std::string weightsFile;
  bool noWeights = false, initWeights = false;
  auto *convert = app.add_subcommand(
      "convert", "Rewrite a model as binary (.pb) or text (.pbtxt), chosen by OUT's extension");
  convert->add_option("MODEL", model, "Model file (.pb or .pbtxt)")->required();
  convert->add_option("-o,--output", output, "Output model file (.pb or .pbtxt)")->required();
  convert->add_option("--weights-file", weightsFile,
                      "Write the weights to this .fgcw file and reference it from OUT");
  auto *noW = convert->add_flag("--no-weights", noWeights,
                                "Write the architecture and seed only (weights re-initialized at load)");
  convert->add_flag("--init-weights", initWeights,
                    "Create weights from the seed where the model has none, and write them inline")
      ->excludes(noW);

  std::string outDir;
  auto *exportWeights = app.add_subcommand(
      "export-weights", "Write every weight as DIR/<layer path>/<weight>.npy (initialized from "
                        "the seed if the model has none), for reference tools such as NumPy");
  exportWeights->add_option("MODEL", model, "Model file (.pb or .pbtxt)")->required();
  exportWeights->add_option("-o,--output", outDir, "Output directory")->required();

  std::string headerPath, ns, className, weightsMode = "inline", weightsPath;
  bool inferenceOnly = false;
  fgc::TrainingOptions trainingOptions;
  std::string optimizerOverride;
  double learningRate = 0;
  auto *compile = app.add_subcommand(
      "compile", "Emit standalone C++ (a model class calling the fgc runtime) for inference");
  compile->add_option("MODEL", model, "Model file (.pb or .pbtxt)")->required();
  compile->add_option("-o,--output", output, "The C++ source to write (e.g. model.cpp)")
      ->required();
  compile->add_option("--header", headerPath, "The header to write (default: OUTPUT with .h)");
  compile->add_option("--namespace", ns, "C++ namespace (default: the model name)");
  compile->add_option("--class", className, "Class name (default: the model name in CamelCase)");
  compile
      ->add_option("--weights", weightsMode,
                   "How the program gets its weights: inline (C++ arrays, small models), blob "
                   "(OUTPUT-stem.weights.bin linked through OUTPUT-stem.weights.S), file (a "
                   ".fgcw file loaded at run time)")
      ->check(CLI::IsMember({"inline", "blob", "file"}));
  compile->add_flag("--inference-only", inferenceOnly,
                    "Leave out the training code (train_step, fit, evaluate) even when the model "
                    "has a training config");
  compile->add_flag("--input-gradients", trainingOptions.inputGradients,
                    "Training code also computes dLoss/dInput (inputGradientData), for gradient "
                    "checks");
  compile->add_option("--optimizer", optimizerOverride,
                      "Override the model's optimizer (Keras's defaults for its hyper-parameters)")
      ->check(CLI::IsMember({"SGD", "RMSprop", "Adam", "AdamW", "Adagrad"}));
  compile->add_option("--learning-rate", learningRate, "Override the optimizer's learning rate")
      ->check(CLI::PositiveNumber);
  OptimizeOptions opt;
  compile->add_option("-O", opt.optLevel,
                      "Optimization level: 0 (no passes, no memory reuse), 1 (inlining, dead "
                      "nodes, memory reuse), 2 (everything; the default)")
      ->check(CLI::Range(0, 2));
  compile->add_option("--disable-pass", opt.disable, "Skip this pass (repeatable, or a,b)")
      ->delimiter(',');
  compile->add_option("--print-ir-after", opt.printAfter,
                      "Print the IR after this pass (repeatable, or a,b; `all`: after every "
                      "pass, `input`: before the first)")
      ->delimiter(',');
  compile->add_option("--outputs", opt.outputs,
                      "Keep only these outputs (output layer names, a,b), removing what only the "
                      "others need")
      ->delimiter(',');
  compile->add_flag("--report", opt.report,
                    "Print what the passes did, fused groups, the schedule, arena sizes, "
                    "parameter bytes and FLOPs");
  compile->add_option("--report-json", opt.reportJson, "Write the same report as JSON");
  compile->add_option("--report-batch", opt.reportBatch,
                      "The batch size of the report's arena figures (default 32)")
      ->check(CLI::PositiveNumber);
  compile->add_option("--weights-path", weightsPath,
                      "file mode: where the program looks for the weights by default (default: "
                      "OUTPUT-stem.fgcw); the file is written beside OUTPUT");

  app.add_subcommand("ops", "List the layer classes fgc supports");

  std::string kerasWeights;
  auto *import = app.add_subcommand(
      "import", "Convert a Keras model (to_json JSON, legacy HDF5 .h5, Keras 3 .keras) with its "
                "weights to an fgc model (.pb or .pbtxt by OUT's extension)");
  import->add_option("KERAS", model, "Keras file; the format is told by content")->required();
  import->add_option("-o,--output", output,
                     "Output model file (.pb or .pbtxt; .fgcm: a model file that also keeps "
                     "Keras's optimizer state)")
      ->required();
  import->add_option("--weights", kerasWeights,
                     "Weights for a JSON config: a save_weights or full-model HDF5 file");
  std::string compileConfig;
  import->add_option("--compile", compileConfig,
                     "Keras's compile() arguments as JSON (or a file holding them), e.g. "
                     "'{\"optimizer\": \"rmsprop\", \"loss\": \"mse\"}': the training "
                     "config, replacing the file's");
  fgc::RunOptions ro;
  auto *run = app.add_subcommand(
      "run", "JIT-compile the model in-process (LLVM) and predict, fit or evaluate on data files");
  run->add_option("MODEL", ro.model, "Model file (.pb, .pbtxt or a saved model file)")->required();
  run->add_option("ACTION", ro.action, "predict (default), fit or evaluate")
      ->check(CLI::IsMember({"predict", "fit", "evaluate"}));
  run->add_option("--input,--x", ro.inputs,
                  "NAME=FILE: an input's data (.npy, .npz, .csv, IDX; repeatable)");
  run->add_option("--y", ro.targets, "NAME=FILE: an output's targets for fit / evaluate");
  run->add_option("--output", ro.outputDir, "predict: write DIR/<output name>.npy (default .)");
  run->add_option("--x-scale", ro.xScale,
                  "Multiply float inputs read as integers by this (1/255 for pixels: 0.00392156862745098)");
  run->add_option("--batch-size", ro.batchSize, "Batch size (default 32)")->check(CLI::PositiveNumber);
  run->add_option("--epochs", ro.epochs, "fit: epochs (default 1)")->check(CLI::PositiveNumber);
  run->add_option("--validation-split", ro.validationSplit,
                  "fit: the last fraction of the data validates")->check(CLI::Range(0.0, 0.999));
  run->add_flag("--no-shuffle", ro.noShuffle, "fit: keep the data's order");
  run->add_option("--shuffle-seed", ro.shuffleSeed, "fit: the shuffling seed (default 0)");
  run->add_option("--initial-epoch", ro.initialEpoch, "fit: the epoch to start from");
  run->add_option("--verbose", ro.verbose, "0 silent, 1 progress bar, 2 one line per epoch")
      ->check(CLI::Range(0, 2));
  run->add_option("-o,--save", ro.saveTo, "fit: save the trained model file here");
  run->add_option("--resume", ro.resume, "fit: load this saved model file first");
  run->add_option("--history-csv", ro.historyCsv, "fit: write the History as CSV");
  run->add_option("-O", ro.optLevel, "Optimization level 0, 1 or 2")->check(CLI::Range(0, 2));
  run->add_option("--disable-pass", ro.disabledPasses, "Skip this pass (repeatable, or a,b)")
      ->delimiter(',');
  run->add_option("--outputs", ro.outputs, "Keep only these outputs (comma-separated)")
      ->delimiter(',');
  run->add_option("--optimizer", ro.optimizer, "Override the model's optimizer");
  run->add_option("--learning-rate", ro.learningRate, "Override the optimizer's learning rate");
  run->add_option("--dump-llvm-ir", ro.dumpLlvmIr, "Write the optimized LLVM module to FILE");
  run->add_flag("--time-phases", ro.timePhases,
                "Print where the time to the first result went (compile phases, reading the "
                "data, the first call) to stderr");
  run->add_option("--weights-file", ro.weightsFile,
                  "Take the weights from this .fgcw weights file or saved model file, read "
                  "straight into the model (no initialization from the seed)");

  for (CLI::App *sub : {summary, plot, check, convert, exportWeights, compile})
    sub->add_option("--keras-weights", kerasWeights,
                    "When MODEL is a Keras JSON config: its weights (HDF5)");

  for (CLI::App *sub : app.get_subcommands([](CLI::App *) { return true; }))
    sub->set_version_flag("--version", version);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion &e) {
    return app.exit(e);
  } catch (const CLI::ParseError &e) {
    app.exit(e);
    return 1;
  }

  if (app.got_subcommand("ops")) {
    for (const auto &name : fgc::OpRegistry::global().classNames())
      fmt::print("{:<24} {}\n", name, fgc::OpRegistry::global().find(name)->summary);
    return 0;
  }

  if (import->parsed()) {
    fgc::KerasImportOptions options;
    options.weightsPath = kerasWeights;
    options.compileConfig = compileConfig;
    auto r = fgc::importKerasFile(model, options);
    if (!r)
      return fail(r.error());
    for (const auto &w : r->warnings)
      fmt::print(stderr, "fgc: {}\n", w);
    bool modelFile = output.size() > 5 && output.compare(output.size() - 5, 5, ".fgcm") == 0;
    if (!modelFile) {
      if (auto s = fgc::writeModelFile(output, r->model); !s)
        return fail(s.error());
      if (r->optimizerState)
        fmt::print(stderr,
                   "fgc: {}: note: the file's {} state ({} steps) is kept only in a model file: "
                   "-o NAME.fgcm\n",
                   model, r->optimizerState->optimizer, r->optimizerState->iterations);
      fmt::print("wrote {}\n", output);
      return 0;
    }
    // A model file: architecture, weights and the optimizer state, what a generated class's
    // load() restores.
    fgc::BuildOptions bo;
    bo.fileName = model;
    auto g = fgc::buildGraph(r->model, bo);
    if (!g)
      return fail(g.error());
    if (auto s = fgc::initializeWeights(**g); !s)
      return fail(s.error().withContext(model));
    int64_t zeroFilled = 0;
    const fgc::OptimizerState *state = r->optimizerState ? &*r->optimizerState : nullptr;
    if (auto s = fgc::saveModelFile(**g, state, output, &zeroFilled); !s)
      return fail(s.error());
    if (state)
      fmt::print("wrote {} with the {} state after {} steps{}\n", output, state->optimizer,
                 state->iterations,
                 zeroFilled ? fmt::format(" ({} slots the file does not have start at zero)",
                                          zeroFilled)
                            : "");
    else
      fmt::print("wrote {}\n", output);
    return 0;
  }

  if (run->parsed()) {
    try {
      return fgc::runModel(ro);
    } catch (const std::exception &e) {
      return fail(fgc::Error(e.what()));
    }
  }

  auto graph = loadAnyModel(model, kerasWeights);
  if (!graph)
    return fail(graph.error());
  fgc::Graph &g = **graph;

  if (summary->parsed()) {
    fgc::SummaryOptions o;
    o.expandNested = expandNested;
    std::cout << fgc::modelSummary(g, o);
    return 0;
  }
  if (plot->parsed()) {
    fgc::PlotOptions o;
    o.showShapes = showShapes;
    o.showDtype = showDtype;
    o.expandNested = expandNested;
    o.rankdir = rankdir;
    o.dpi = dpi;
    if (auto s = fgc::plotModel(g, output, o); !s)
      return fail(s.error());
    fmt::print("wrote {}\n", output);
    return 0;
  }
  if (check->parsed()) {
    bool weights = fgc::hasAllWeights(g);
    fmt::print("{}: ok: model '{}', {} layers, {} inputs, {} outputs, {} parameters ({})\n", model,
               g.name, g.layers.size(), g.inputs.size(), g.outputs.size(),
               fgc::withThousands(g.countParams()),
               weights ? "weights present" : fmt::format("initialized from seed {}", g.seed));
    return 0;
  }
  if (compile->parsed()) {
    // Command-line overrides of the training config (Keras's compile arguments).
    if (!optimizerOverride.empty()) {
      g.training.mutable_optimizer()->Clear();
      g.training.mutable_optimizer()->set_class_name(optimizerOverride);
    }
    if (learningRate > 0)
      (*g.training.mutable_optimizer()->mutable_attrs())["learning_rate"] =
          fgc::makeFloat(learningRate);
  }
  if (compile->parsed())
    return compileModel(g, model, output, headerPath, ns, className, weightsMode, weightsPath,
                        inferenceOnly, trainingOptions, opt);
  if (exportWeights->parsed()) {
    if (auto s = fgc::initializeWeights(g); !s)
      return fail(s.error().withContext(model));
    if (auto s = exportWeightsAsNpy(g, outDir); !s)
      return fail(s.error());
    fmt::print("wrote the weights of '{}' to {}\n", g.name, outDir);
    return 0;
  }
  if (convert->parsed()) {
    bool haveWeights = fgc::hasAllWeights(g);
    if ((initWeights || !weightsFile.empty()) && !haveWeights) {
      if (auto s = fgc::initializeWeights(g); !s)
        return fail(s.error().withContext(model));
      haveWeights = true;
    }
    auto mode = haveWeights && !noWeights && weightsFile.empty() ? fgc::WeightsMode::Inline
                                                                 : fgc::WeightsMode::None;
    auto m = fgc::graphToModel(g, mode);
    if (!m)
      return fail(m.error().withContext(model));
    if (!weightsFile.empty()) {
      if (auto s = fgc::saveWeightsFile(g, weightsFile); !s)
        return fail(s.error());
      m->set_weights_file(relativeTo(weightsFile, output));
    }
    if (auto s = fgc::writeModelFile(output, *m); !s)
      return fail(s.error());
    fmt::print("wrote {}\n", output);
    return 0;
  }
  return 0;
}
