// Reading and writing `.fgcw` weights files (see WeightsFile.h).
#include "frontend/WeightsFile.h"

#include "compiler/support/AtomicFile.h"
#include "compiler/support/LargeBuffer.h"
#include "frontend/GraphWriter.h"
#include "frontend/ModelFile.h"

#include <google/protobuf/stubs/logging.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <tuple>

namespace fgc {

namespace {

// Visits every parameter with its layer path ("outer/inner").
void forEachParam(Graph &g, const std::string &prefix,
                  const std::function<void(const std::string &, Layer &, Param &)> &fn) {
  for (auto &l : g.layers) {
    std::string path = prefix.empty() ? l->name : prefix + "/" + l->name;
    if (l->subgraph)
      forEachParam(*l->subgraph, path, fn);
    for (auto &p : l->params)
      fn(path, *l, p);
  }
}

uint64_t readU64(const std::string &bytes, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

size_t alignUp(size_t n) { return (n + kWeightsAlignment - 1) / kWeightsAlignment * kWeightsAlignment; }

} // namespace

namespace {

// A file read at offsets (pread), closed when done.
class InputFile {
public:
  ~InputFile() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  Status open(const std::string &path) {
    path_ = path;
    FGC_TRY(checkRegularFile(path));
    struct stat st;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0 || ::fstat(fd_, &st) != 0)
      return Error::format("{}: cannot open: {}", path, std::strerror(errno));
    size_ = static_cast<uint64_t>(st.st_size);
    return Status::ok();
  }
  uint64_t size() const { return size_; }
  // Exactly `bytes` bytes at `offset` (the caller checked they lie inside the file).
  Status read(void *to, uint64_t bytes, uint64_t offset) const {
    auto *p = static_cast<char *>(to);
    while (bytes > 0) {
      ssize_t n = ::pread(fd_, p, bytes, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return Error::format("{}: read failed: {}", path_,
                             n < 0 ? std::strerror(errno) : "the file shrank while being read");
      p += n;
      bytes -= static_cast<uint64_t>(n);
      offset += static_cast<uint64_t>(n);
    }
    return Status::ok();
  }

private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

} // namespace

Status readWeightsInto(const std::string &path, const std::vector<WeightDestination> &weights) {
  InputFile file;
  FGC_TRY(file.open(path));
  uint64_t size = file.size();
  char head[16];
  if (size < 16 || !file.read(head, 16, 0) || std::memcmp(head, kWeightsMagic, 8) != 0)
    return Error::format("{}: not an fgc weights file (bad magic)", path);
  uint64_t indexLen = readU64(std::string(head, 16), 8);
  if (indexLen > size - 16)
    return Error::format("{}: truncated weights file (index of {} bytes, file of {})", path,
                         indexLen, size);
  std::string indexBytes(static_cast<size_t>(indexLen), '\0');
  FGC_TRY(file.read(indexBytes.data(), indexLen, 16));
  schema::WeightsIndex index;
  // protobuf logs invalid UTF-8 in string fields to stderr; the Error below reports it once.
  google::protobuf::LogSilencer quiet;
  if (!index.ParseFromArray(indexBytes.data(), static_cast<int>(indexLen)))
    return Error::format("{}: corrupt weights file index", path);
  uint64_t dataStart = alignUp(16 + indexLen);
  std::map<std::pair<std::string, std::string>, const schema::WeightsIndex::Entry *> entries;
  for (const auto &e : index.entries())
    entries[{e.layer(), e.name()}] = &e;
  for (const WeightDestination &w : weights) {
    const Param &p = *w.param;
    auto it = entries.find({w.layerPath, p.name});
    if (it == entries.end())
      return Error::format("{}: missing weight '{}' of {} (shape {})", path, p.name, w.owner,
                           shapeToString(p.type.shape));
    const auto &e = *it->second;
    std::vector<Dim> shape(e.shape().begin(), e.shape().end());
    if (shape != p.type.shape || e.dtype() != p.type.dtype)
      return Error::format("{}: weight '{}' of {} is {} {} in the file, but the layer needs {} "
                           "{}",
                           path, p.name, w.owner, dtypeName(e.dtype()), shapeToString(shape),
                           dtypeName(p.type.dtype), shapeToString(p.type.shape));
    uint64_t need = static_cast<uint64_t>(p.numElements()) * dtypeSize(p.type.dtype);
    if (e.nbytes() != need || e.offset() > size || dataStart + e.offset() > size ||
        e.nbytes() > size - dataStart - e.offset())
      return Error::format("{}: weight '{}' of {} lies outside the file (truncated?)", path,
                           p.name, w.owner);
    FGC_TRY(file.read(w.data, need, dataStart + e.offset()));
  }
  return Status::ok();
}

Status loadWeightsFile(Graph &graph, const std::string &path) {
  // Read into fresh buffers, kept only when every weight was read: a failure leaves the graph's
  // weights as they were.
  std::vector<std::vector<uint8_t>> values;
  std::vector<Param *> params;
  std::vector<WeightDestination> weights;
  forEachParam(graph, "", [&](const std::string &layerPath, Layer &layer, Param &p) {
    size_t bytes = static_cast<size_t>(p.numElements()) * dtypeSize(p.type.dtype);
    std::vector<uint8_t> &v = values.emplace_back();
    v.reserve(bytes);
    adviseHugePages(v.data(), bytes); // a large weight: a page fault per 2 MiB, not per 4 KiB
    v.resize(bytes);
    params.push_back(&p);
    weights.push_back({layerPath, &p, layer.describe(), v.data()});
  });
  FGC_TRY(readWeightsInto(path, weights));
  for (size_t i = 0; i < params.size(); ++i)
    params[i]->data = std::move(values[i]);
  return Status::ok();
}

namespace {

// The index entries and data section of every parameter (all must have data).
Status addParams(const Graph &graph, schema::WeightsIndex &index, std::string &data) {
  Status status;
  forEachParam(const_cast<Graph &>(graph), "",
               [&](const std::string &layerPath, Layer &layer, Param &p) {
                 if (!status)
                   return;
                 if (p.data.empty()) {
                   status = Error::format("{}: weight '{}' has no data to save", layer.describe(),
                                          p.name);
                   return;
                 }
                 data.resize(alignUp(data.size()), '\0');
                 auto *e = index.add_entries();
                 e->set_layer(layerPath);
                 e->set_name(p.name);
                 e->set_dtype(p.type.dtype);
                 for (Dim d : p.type.shape)
                   e->add_shape(d);
                 e->set_offset(data.size());
                 e->set_nbytes(p.data.size());
                 data.append(reinterpret_cast<const char *>(p.data.data()), p.data.size());
               });
  return status;
}

// Magic, index length, index, padding, data.
Status writeContainer(const schema::WeightsIndex &index, const std::string &data,
                      const std::string &path) {
  std::string idx = index.SerializeAsString();
  std::string out(kWeightsMagic, 8);
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((static_cast<uint64_t>(idx.size()) >> (8 * i)) & 0xff));
  out += idx;
  out.resize(alignUp(out.size()), '\0');
  out += data;
  return writeFileAtomic(path, out);
}

double configNumber(const schema::Config &c, const std::string &key) {
  auto it = c.attrs().find(key);
  if (it == c.attrs().end())
    return 0;
  const auto &v = it->second;
  switch (v.value_case()) {
  case schema::AttrValue::kF: return v.f();
  case schema::AttrValue::kI: return double(v.i());
  case schema::AttrValue::kB: return v.b() ? 1 : 0;
  default: return 0;
  }
}

} // namespace

Status saveWeightsFile(const Graph &graph, const std::string &path) {
  schema::WeightsIndex index;
  index.set_model_name(graph.name);
  std::string data;
  FGC_TRY(addParams(graph, index, data));
  return writeContainer(index, data, path);
}

std::vector<std::string> optimizerSlotNames(const schema::Config &optimizer) {
  const std::string &cls = optimizer.class_name();
  if (cls == "Adam" || cls == "AdamW") {
    if (configNumber(optimizer, "amsgrad") != 0)
      return {"m", "v", "vhat"};
    return {"m", "v"};
  }
  if (cls == "SGD")
    return configNumber(optimizer, "momentum") != 0 ? std::vector<std::string>{"momentum"}
                                                    : std::vector<std::string>{};
  if (cls == "RMSprop") {
    std::vector<std::string> s = {"rms"};
    if (configNumber(optimizer, "momentum") != 0)
      s.push_back("momentum");
    if (configNumber(optimizer, "centered") != 0)
      s.push_back("mg");
    return s;
  }
  if (cls == "Adagrad")
    return {"accumulator"};
  return {};
}

Status saveModelFile(const Graph &graph, const OptimizerState *state, const std::string &path,
                     int64_t *zeroFilled) {
  schema::WeightsIndex index;
  index.set_model_name(graph.name);
  std::string data;
  FGC_TRY(addParams(graph, index, data));
  auto arch = graphToModel(graph, WeightsMode::None);
  if (!arch)
    return arch.error();
  arch->clear_weights_file();
  index.set_model(serializeModel(*arch, ModelFormat::Binary));
  if (zeroFilled)
    *zeroFilled = 0;
  if (state) {
    const std::string &cls = graph.training.optimizer().class_name();
    if (state->optimizer != cls)
      return Error::format("{}: the optimizer state is {}'s, but the model trains with {}", path,
                           state->optimizer, cls.empty() ? "no optimizer" : cls);
    std::map<std::tuple<std::string, std::string, std::string>, const OptimizerState::Slot *>
        bySlot;
    for (const auto &s : state->slots)
      bySlot[{s.layer, s.weight, s.slot}] = &s;
    std::vector<std::string> names = optimizerSlotNames(graph.training.optimizer());
    Status status;
    forEachParam(const_cast<Graph &>(graph), "",
                 [&](const std::string &layerPath, Layer &layer, Param &p) {
                   if (!status || !layer.trainable || !p.trainable)
                     return;
                   for (const auto &slot : names) {
                     std::string bytes(size_t(p.numElements()) * sizeof(float), '\0');
                     auto it = bySlot.find({layerPath, p.name, slot});
                     if (it != bySlot.end()) {
                       std::vector<Dim> shape(it->second->shape.begin(), it->second->shape.end());
                       if (shape != p.type.shape) {
                         status = Error::format(
                             "{}: optimizer slot '{}' of weight '{}' of {} is {}, the weight {}",
                             path, slot, p.name, layer.describe(), shapeToString(shape),
                             shapeToString(p.type.shape));
                         return;
                       }
                       std::memcpy(bytes.data(), it->second->data.data(), bytes.size());
                     } else if (zeroFilled) {
                       ++*zeroFilled;
                     }
                     data.resize(alignUp(data.size()), '\0');
                     auto *e = index.add_slots();
                     e->set_layer(layerPath);
                     e->set_name(p.name + "/" + slot);
                     e->set_dtype(schema::FLOAT32);
                     for (Dim d : p.type.shape)
                       e->add_shape(d);
                     e->set_offset(data.size());
                     e->set_nbytes(bytes.size());
                     data += bytes;
                   }
                 });
    FGC_TRY(status);
    auto *t = index.mutable_training();
    t->set_optimizer(cls);
    t->set_iterations(state->iterations);
  }
  return writeContainer(index, data, path);
}

} // namespace fgc
