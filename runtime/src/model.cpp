// Support for generated model classes (see fgc/runtime/model.h): tensors, input binding, arena,
// and weights, including the fgc weights file format.
//
// The .fgcw format (documented in schemas/fgc.proto, WeightsIndex): magic "FGCWGT01", a u64
// index length, the index as a binary protobuf message, zero padding to 64 bytes, then the data
// section. The runtime does not link protobuf: it reads and writes the index's few fields with
// a minimal wire-format codec below.
#include "fgc/runtime/model.h"

#include "fgc/runtime/kernels.h"
#include "fgc/runtime/memory.h"

#include <atomic>
#include <cstdint>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fgc::rt {

namespace {

constexpr std::size_t kAlign = 64;
constexpr char kMagic[8] = {'F', 'G', 'C', 'W', 'G', 'T', '0', '1'};

std::size_t alignUp(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

void *alignedAlloc(std::size_t bytes) {
  void *p = std::aligned_alloc(kAlign, alignUp(bytes ? bytes : 1));
  if (!p)
    throw Error("fgc runtime: out of memory allocating " + std::to_string(bytes) + " bytes");
  return p;
}

template <typename... Args> std::string format(const char *fmt, Args... args) {
  int n = std::snprintf(nullptr, 0, fmt, args...);
  std::string s(static_cast<std::size_t>(n), '\0');
  std::snprintf(s.data(), s.size() + 1, fmt, args...);
  return s;
}

} // namespace

std::size_t dtypeSize(DType d) {
  switch (d) {
  case DType::Float64:
  case DType::Int64: return 8;
  case DType::Float32:
  case DType::Int32: return 4;
  case DType::UInt8: return 1;
  }
  return 0;
}

const char *dtypeName(DType d) {
  switch (d) {
  case DType::Float32: return "float32";
  case DType::Float64: return "float64";
  case DType::Int32: return "int32";
  case DType::Int64: return "int64";
  case DType::UInt8: return "uint8";
  }
  return "?";
}

// --- Tensor ---------------------------------------------------------------------------------

Tensor::Tensor(DType dtype, std::vector<int64_t> shape) { resize(dtype, shape); }

Tensor Tensor::fromFloats(std::vector<int64_t> shape, const float *data) {
  Tensor t(DType::Float32, std::move(shape));
  std::memcpy(t.data_, data, t.bytes());
  return t;
}

Tensor Tensor::fromInts(std::vector<int64_t> shape, const int32_t *data) {
  Tensor t(DType::Int32, std::move(shape));
  std::memcpy(t.data_, data, t.bytes());
  return t;
}

int64_t Tensor::size() const {
  int64_t n = 1;
  for (int64_t d : shape_)
    n *= d;
  return n;
}

void Tensor::resize(DType dtype, const std::vector<int64_t> &shape) {
  for (int64_t d : shape)
    if (d < 0)
      throw Error("fgc runtime: negative dimension in tensor shape " +
                  shapeString(shape.data(), static_cast<int>(shape.size())));
  dtype_ = dtype;
  shape_ = shape;
  std::size_t need = bytes();
  if (need > capacity_) {
    std::free(data_);
    data_ = alignedAlloc(need);
    capacity_ = alignUp(need ? need : 1);
  }
}

Tensor::Tensor(const Tensor &o) {
  resize(o.dtype_, o.shape_);
  if (o.bytes())
    std::memcpy(data_, o.data_, o.bytes());
}

Tensor &Tensor::operator=(const Tensor &o) {
  if (this != &o) {
    resize(o.dtype_, o.shape_);
    if (o.bytes())
      std::memcpy(data_, o.data_, o.bytes());
  }
  return *this;
}

Tensor::Tensor(Tensor &&o) noexcept
    : dtype_(o.dtype_), shape_(std::move(o.shape_)), data_(o.data_), capacity_(o.capacity_) {
  o.data_ = nullptr;
  o.capacity_ = 0;
  o.shape_.clear();
}

Tensor &Tensor::operator=(Tensor &&o) noexcept {
  if (this != &o) {
    std::free(data_);
    dtype_ = o.dtype_;
    shape_ = std::move(o.shape_);
    data_ = o.data_;
    capacity_ = o.capacity_;
    o.data_ = nullptr;
    o.capacity_ = 0;
    o.shape_.clear();
  }
  return *this;
}

Tensor::~Tensor() { std::free(data_); }

std::string shapeString(const int64_t *shape, int rank) {
  std::string s = "(";
  for (int i = 0; i < rank; ++i) {
    if (i)
      s += ", ";
    s += shape[i] < 0 ? std::string("None") : std::to_string(shape[i]);
  }
  if (rank == 1)
    s += ",";
  return s + ")";
}

// --- binding --------------------------------------------------------------------------------

void bindInputs(const char *model, const TensorSpec *specs, int numInputs, const Tensor *inputs,
                int64_t *symbols, int numSymbols) {
  for (int s = 0; s < numSymbols; ++s)
    symbols[s] = -1;
  for (int i = 0; i < numInputs; ++i) {
    const TensorSpec &spec = specs[i];
    const Tensor &t = inputs[i];
    std::string expected = shapeString(spec.shape, spec.rank);
    std::string got = shapeString(t.shape().data(), static_cast<int>(t.shape().size()));
    // Index inputs (read only by Embedding layers) take int32, int64 or float32 values, as
    // Keras casts them; other inputs must have their declared type.
    bool indexInput = spec.dtype == DType::Int32;
    bool dtypeOk = t.dtype() == spec.dtype ||
                   (indexInput && (t.dtype() == DType::Int64 || t.dtype() == DType::Float32));
    if (!dtypeOk)
      throw Error(format("model '%s': input '%s' must be %s, got %s", model, spec.name,
                         indexInput ? "int32, int64 or float32 indices" : dtypeName(spec.dtype),
                         dtypeName(t.dtype())));
    if (static_cast<int>(t.shape().size()) != spec.rank)
      throw Error(format("model '%s': input '%s' expects shape %s, got %s (rank %d instead of %d)",
                         model, spec.name, expected.c_str(), got.c_str(),
                         static_cast<int>(t.shape().size()), spec.rank));
    for (int k = 0; k < spec.rank; ++k) {
      int64_t want = spec.shape[k], have = t.shape()[static_cast<std::size_t>(k)];
      if (want >= 0) {
        if (want != have)
          throw Error(format("model '%s': input '%s' expects shape %s, got %s (dimension %d is "
                             "%lld instead of %lld)",
                             model, spec.name, expected.c_str(), got.c_str(), k,
                             static_cast<long long>(have), static_cast<long long>(want)));
        continue;
      }
      int id = static_cast<int>(-1 - want);
      if (id >= numSymbols)
        throw Error(format("model '%s': input '%s' has an unbound dimension", model, spec.name));
      if (symbols[id] >= 0 && symbols[id] != have)
        throw Error(format("model '%s': input '%s' has shape %s, but %s %lld elsewhere", model,
                           spec.name, got.c_str(),
                           id == 0 ? "the batch size is" : "the same dimension is",
                           static_cast<long long>(symbols[id])));
      symbols[id] = have;
    }
  }
  for (int s = 0; s < numSymbols; ++s)
    if (symbols[s] < 0)
      throw Error(format("model '%s': dimension symbol %d is not set by any input", model, s));
}

void bindTargets(const char *model, const TensorSpec *specs, int numTargets, const Tensor *targets,
                 const int64_t *symbols) {
  for (int i = 0; i < numTargets; ++i) {
    std::vector<int64_t> want = resolveShape(specs[i], symbols);
    std::vector<int64_t> have = targets[i].shape();
    if (want.size() == 1 && have.size() == 2 && have[1] == 1)
      have.pop_back();
    if (targets[i].dtype() != DType::Float32 || have != want)
      throw Error(format("model '%s': target '%s' must be float32 %s, got %s %s", model,
                         specs[i].name, shapeString(want.data(), int(want.size())).c_str(),
                         dtypeName(targets[i].dtype()),
                         shapeString(targets[i].shape().data(),
                                     int(targets[i].shape().size())).c_str()));
  }
}

std::vector<int64_t> resolveShape(const TensorSpec &spec, const int64_t *symbols) {
  std::vector<int64_t> shape(static_cast<std::size_t>(spec.rank));
  for (int k = 0; k < spec.rank; ++k)
    shape[static_cast<std::size_t>(k)] = spec.shape[k] >= 0 ? spec.shape[k] : symbols[-1 - spec.shape[k]];
  return shape;
}

void kernelFailed(const char *model, const char *layer, int status) {
  throw Error(format("model '%s': layer '%s': %s (status %d)", model, layer, fgc_last_error(),
                     status));
}

const int32_t *asIndices(const Tensor &t, int32_t *staging) {
  switch (t.dtype()) {
  case DType::Int32: return t.data<int32_t>();
  case DType::Int64: fgc_cast_i64_to_i32(t.data<int64_t>(), staging, t.size()); return staging;
  case DType::Float32: fgc_cast_f32_to_i32(t.data<float>(), staging, t.size()); return staging;
  default: throw Error(std::string("fgc runtime: cannot use ") + dtypeName(t.dtype()) + " values as indices");
  }
}

// --- Arena ----------------------------------------------------------------------------------

Arena::~Arena() { std::free(data_); }

void *Arena::reserve(std::size_t bytes) {
  if (bytes > capacity_) {
    std::free(data_);
    data_ = nullptr;
    capacity_ = 0;
    data_ = alignedAlloc(bytes);
    capacity_ = alignUp(bytes);
  }
  return data_;
}

// --- weights files --------------------------------------------------------------------------

namespace {

struct IndexEntry {
  std::string layer, name;
  int64_t dtype = 0;
  std::vector<int64_t> shape;
  uint64_t offset = 0, nbytes = 0;
};

// What the runtime reads of a WeightsIndex (schemas/fgc.proto).
struct FileIndex {
  std::string modelName;
  std::vector<IndexEntry> entries, slots;
  std::string model; // the binary Model of a model file
  bool hasTraining = false;
  std::string optimizer;
  TrainingCounters counters;
};

// Minimal protobuf wire-format reader for WeightsIndex.
class WireReader {
public:
  WireReader(const unsigned char *p, std::size_t n) : p_(p), end_(p + n) {}
  bool done() const { return p_ >= end_; }
  bool varint(uint64_t &v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_)
        return false;
      unsigned char b = *p_++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80))
        return true;
    }
    return false;
  }
  bool bytes(const unsigned char *&data, std::size_t &len) {
    uint64_t n;
    if (!varint(n) || n > static_cast<uint64_t>(end_ - p_))
      return false;
    data = p_;
    len = static_cast<std::size_t>(n);
    p_ += n;
    return true;
  }
  bool fixed64(const unsigned char *&data) {
    data = p_;
    return advance(8);
  }
  bool skip(int wireType) {
    uint64_t v;
    const unsigned char *d;
    std::size_t n;
    switch (wireType) {
    case 0: return varint(v);
    case 1: return advance(8);
    case 2: return bytes(d, n);
    case 5: return advance(4);
    default: return false;
    }
  }

private:
  bool advance(std::size_t n) {
    if (n > static_cast<std::size_t>(end_ - p_))
      return false;
    p_ += n;
    return true;
  }
  const unsigned char *p_, *end_;
};

bool parseEntry(const unsigned char *p, std::size_t n, IndexEntry &e) {
  WireReader r(p, n);
  while (!r.done()) {
    uint64_t key;
    if (!r.varint(key))
      return false;
    int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
    const unsigned char *d;
    std::size_t len;
    uint64_t v;
    if ((field == 1 || field == 2) && wire == 2) {
      if (!r.bytes(d, len))
        return false;
      (field == 1 ? e.layer : e.name).assign(reinterpret_cast<const char *>(d), len);
    } else if (field == 3 && wire == 0) {
      if (!r.varint(v))
        return false;
      e.dtype = static_cast<int64_t>(v);
    } else if (field == 4 && wire == 2) {
      if (!r.bytes(d, len))
        return false;
      WireReader packed(d, len);
      while (!packed.done()) {
        if (!packed.varint(v))
          return false;
        e.shape.push_back(static_cast<int64_t>(v));
      }
    } else if (field == 4 && wire == 0) {
      if (!r.varint(v))
        return false;
      e.shape.push_back(static_cast<int64_t>(v));
    } else if ((field == 5 || field == 6) && wire == 0) {
      if (!r.varint(v))
        return false;
      (field == 5 ? e.offset : e.nbytes) = v;
    } else if (!r.skip(wire)) {
      return false;
    }
  }
  return true;
}

// The training counters of a model file (schema: TrainingState).
bool parseTrainingState(const unsigned char *p, std::size_t n, FileIndex &index) {
  WireReader r(p, n);
  index.hasTraining = true;
  while (!r.done()) {
    uint64_t key, v;
    if (!r.varint(key))
      return false;
    int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
    if (field == 1 && wire == 2) {
      const unsigned char *d;
      std::size_t len;
      if (!r.bytes(d, len))
        return false;
      index.optimizer.assign(reinterpret_cast<const char *>(d), len);
    } else if ((field == 2 || field == 3 || field == 4) && wire == 0) {
      if (!r.varint(v))
        return false;
      if (field == 2)
        index.counters.iterations = static_cast<int64_t>(v);
      else if (field == 3)
        index.counters.epoch = static_cast<int32_t>(v);
      else
        index.counters.hasLearningRate = v != 0;
    } else if (field == 5 && wire == 1) {
      const unsigned char *d;
      if (!r.fixed64(d))
        return false;
      uint64_t bits = 0;
      for (int i = 7; i >= 0; --i)
        bits = bits << 8 | d[i];
      std::memcpy(&index.counters.learningRate, &bits, sizeof bits);
    } else if (!r.skip(wire)) {
      return false;
    }
  }
  return true;
}

bool parseIndex(const unsigned char *p, std::size_t n, FileIndex &index) {
  WireReader r(p, n);
  while (!r.done()) {
    uint64_t key;
    if (!r.varint(key))
      return false;
    int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
    const unsigned char *d;
    std::size_t len;
    if ((field == 2 || field == 4) && wire == 2) {
      IndexEntry e;
      if (!r.bytes(d, len) || !parseEntry(d, len, e))
        return false;
      (field == 2 ? index.entries : index.slots).push_back(std::move(e));
    } else if ((field == 1 || field == 3) && wire == 2) {
      if (!r.bytes(d, len))
        return false;
      (field == 1 ? index.modelName : index.model).assign(reinterpret_cast<const char *>(d), len);
    } else if (field == 5 && wire == 2) {
      if (!r.bytes(d, len) || !parseTrainingState(d, len, index))
        return false;
    } else if (!r.skip(wire)) {
      return false;
    }
  }
  return true;
}

void putVarint(std::string &out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void putBytes(std::string &out, int field, const std::string &bytes) {
  putVarint(out, static_cast<uint64_t>(field) << 3 | 2);
  putVarint(out, bytes.size());
  out += bytes;
}

void putUint(std::string &out, int field, uint64_t v) {
  putVarint(out, static_cast<uint64_t>(field) << 3);
  putVarint(out, v);
}

std::size_t specBytes(const WeightSpec &s) {
  std::size_t n = 1;
  for (int k = 0; k < s.rank; ++k)
    n *= static_cast<std::size_t>(s.shape[k]);
  return n * sizeof(float);
}

std::string specPath(const WeightSpec &s) { return std::string(s.layer) + "/" + s.name; }

} // namespace

struct Weights::Mapping {
  void *addr = nullptr;
  std::size_t length = 0;
  ~Mapping() {
    if (addr)
      ::munmap(addr, length);
  }
};

void adviseHugePages(void *data, std::size_t bytes) {
#if defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t huge = HugePageBytes;
  auto begin = reinterpret_cast<std::uintptr_t>(data);
  std::uintptr_t first = (begin + huge - 1) / huge * huge, last = (begin + bytes) / huge * huge;
  if (last > first)
    ::madvise(reinterpret_cast<void *>(first), last - first, MADV_HUGEPAGE); // advice only
#else
  (void)data;
  (void)bytes;
#endif
}

std::uint64_t Weights::nextVersion() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

float *Weights::mutableData(int i) {
  version_ = nextVersion();
  if (!owned_) {
    std::size_t total = 0;
    for (int k = 0; k < count_; ++k)
      total += specBytes(specs_[k]) / sizeof(float);
    // Huge pages for the 2 MiB-aligned part (a page fault per 2 MiB, not per 4 KiB: on a VM
    // first-touch faults can cost more than the copy), advised before the first write.
    auto owned = std::make_shared<std::vector<float>>();
    owned->reserve(total);
    adviseHugePages(owned->data(), total * sizeof(float));
    owned->resize(total);
    std::size_t at = 0;
    for (int k = 0; k < count_; ++k) {
      std::size_t n = specBytes(specs_[k]) / sizeof(float);
      std::memcpy(owned->data() + at, pointers_[std::size_t(k)], n * sizeof(float));
      pointers_[std::size_t(k)] = owned->data() + at;
      at += n;
    }
    owned_ = owned;
  }
  return const_cast<float *>(pointers_[static_cast<std::size_t>(i)]);
}

Weights Weights::embedded(const char *model, const WeightSpec *specs, int count, const void *data,
                          std::size_t bytes) {
  Weights w;
  w.model_ = model;
  w.specs_ = specs;
  w.count_ = count;
  for (int i = 0; i < count; ++i) {
    if (specs[i].offset + specBytes(specs[i]) > bytes)
      throw Error(format("model '%s': embedded weights are %zu bytes, too short for weight '%s'",
                         model, bytes, specPath(specs[i]).c_str()));
    w.pointers_.push_back(reinterpret_cast<const float *>(static_cast<const char *>(data) +
                                                          specs[i].offset));
  }
  return w;
}

// A memory-mapped fgc weights or model file with its index parsed.
struct Weights::File {
  std::shared_ptr<Weights::Mapping> mapping;
  FileIndex index;
  const unsigned char *data = nullptr; // the data section
  std::size_t dataBytes = 0;
};

namespace {

using MappedFile = Weights::File;

MappedFile mapFile(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(format("%s: cannot open: %s", path.c_str(), std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(format("%s: not a regular file", path.c_str()));
  }
  MappedFile f;
  f.mapping = std::make_shared<Weights::Mapping>();
  f.mapping->length = static_cast<std::size_t>(st.st_size);
  if (f.mapping->length > 0) {
    f.mapping->addr = ::mmap(nullptr, f.mapping->length, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f.mapping->addr == MAP_FAILED) {
      f.mapping->addr = nullptr;
      ::close(fd);
      throw Error(format("%s: cannot map the file: %s", path.c_str(), std::strerror(errno)));
    }
  }
  ::close(fd);
  const auto *bytes = static_cast<const unsigned char *>(f.mapping->addr);
  std::size_t size = f.mapping->length;
  if (size < 16 || std::memcmp(bytes, kMagic, 8) != 0)
    throw Error(format("%s: not an fgc weights or model file (bad magic)", path.c_str()));
  uint64_t indexLen = 0;
  for (int i = 7; i >= 0; --i)
    indexLen = indexLen << 8 | bytes[8 + i];
  if (indexLen > size - 16 || !parseIndex(bytes + 16, static_cast<std::size_t>(indexLen), f.index))
    throw Error(format("%s: corrupt or truncated file index", path.c_str()));
  std::size_t dataStart = alignUp(16 + static_cast<std::size_t>(indexLen));
  f.data = bytes + std::min(dataStart, size);
  f.dataBytes = dataStart > size ? 0 : size - dataStart;
  return f;
}

// The data of entry `e`, checked against the shape the model needs (`what` names it in errors).
const float *entryData(const MappedFile &f, const IndexEntry &e, const std::string &path,
                       const char *model, const std::string &what, const int64_t *shape,
                       int rank) {
  std::vector<int64_t> want(shape, shape + rank);
  if (e.shape != want || e.dtype != static_cast<int64_t>(DType::Float32))
    throw Error(format("%s: %s has shape %s in the file, model '%s' needs float32 %s",
                       path.c_str(), what.c_str(),
                       shapeString(e.shape.data(), static_cast<int>(e.shape.size())).c_str(),
                       model, shapeString(shape, rank).c_str()));
  std::size_t need = sizeof(float);
  for (int k = 0; k < rank; ++k)
    need *= static_cast<std::size_t>(shape[k]);
  if (e.nbytes != need || e.offset % alignof(float) != 0 || e.offset > f.dataBytes ||
      e.nbytes > f.dataBytes - e.offset)
    throw Error(format("%s: %s lies outside the file (truncated?)", path.c_str(), what.c_str()));
  return reinterpret_cast<const float *>(f.data + e.offset);
}

std::map<std::string, const IndexEntry *> byPath(const std::vector<IndexEntry> &entries) {
  std::map<std::string, const IndexEntry *> m;
  for (const auto &e : entries)
    m[e.layer + "/" + e.name] = &e;
  return m;
}

void writeAtomically(const std::string &path, const std::string &out) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    throw Error(format("%s: cannot write: %s", path.c_str(), std::strerror(errno)));
  bool ok = std::fwrite(out.data(), 1, out.size(), f) == out.size();
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(::fileno(f)) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    throw Error(format("%s: write failed: %s", path.c_str(), std::strerror(err)));
  }
}

// One WeightsIndex.Entry for a float32 tensor at `offset` in the data section.
std::string entryBytes(const std::string &layer, const std::string &name, const int64_t *shape,
                       int rank, uint64_t offset, uint64_t nbytes) {
  std::string entry, packed;
  putBytes(entry, 1, layer);
  putBytes(entry, 2, name);
  putUint(entry, 3, static_cast<uint64_t>(DType::Float32));
  for (int k = 0; k < rank; ++k)
    putVarint(packed, static_cast<uint64_t>(shape[k]));
  if (rank > 0)
    putBytes(entry, 4, packed);
  putUint(entry, 5, offset);
  putUint(entry, 6, nbytes);
  return entry;
}

} // namespace

Weights Weights::load(const char *model, const WeightSpec *specs, int count,
                      const std::string &path) {
  MappedFile f = mapFile(path);
  return fromFile(model, specs, count, path, f);
}

Weights Weights::fromFile(const char *model, const WeightSpec *specs, int count,
                          const std::string &path, const File &f) {
  auto entries = byPath(f.index.entries);
  Weights w;
  w.model_ = model;
  w.specs_ = specs;
  w.count_ = count;
  w.mapping_ = f.mapping;
  for (int i = 0; i < count; ++i) {
    const WeightSpec &s = specs[i];
    auto it = entries.find(specPath(s));
    if (it == entries.end())
      throw Error(format("%s: model '%s' needs weight '%s' %s, which the file does not have",
                         path.c_str(), model, specPath(s).c_str(),
                         shapeString(s.shape, s.rank).c_str()));
    w.pointers_.push_back(entryData(f, *it->second, path, model,
                                    "weight '" + specPath(s) + "'", s.shape, s.rank));
  }
  return w;
}

void Weights::save(const std::string &path) const {
  saveModel(path, ModelFileSpec{}, nullptr, nullptr);
}

void Weights::saveModel(const std::string &path, const ModelFileSpec &spec, const float *state,
                        const TrainingCounters *counters) const {
  std::string index, data;
  putBytes(index, 1, model_);
  auto add = [&](int field, const std::string &layer, const std::string &name,
                 const int64_t *shape, int rank, const float *values, std::size_t nbytes) {
    data.resize(alignUp(data.size()), '\0');
    putBytes(index, field, entryBytes(layer, name, shape, rank, data.size(), nbytes));
    data.append(reinterpret_cast<const char *>(values), nbytes);
  };
  for (int i = 0; i < count_; ++i)
    add(2, specs_[i].layer, specs_[i].name, specs_[i].shape, specs_[i].rank,
        pointers_[static_cast<std::size_t>(i)], specBytes(specs_[i]));
  if (spec.schema)
    putBytes(index, 3,
             std::string(reinterpret_cast<const char *>(spec.schema), spec.schemaBytes));
  if (counters) {
    for (int k = 0; k < spec.numSlots; ++k) {
      const SlotSpec &slot = spec.slots[k];
      const WeightSpec &w = specs_[slot.weight];
      add(4, w.layer, std::string(w.name) + "/" + slot.name, w.shape, w.rank,
          state + slot.offset, specBytes(w));
    }
    std::string training;
    putBytes(training, 1, spec.optimizer ? spec.optimizer : "");
    putUint(training, 2, static_cast<uint64_t>(counters->iterations));
    putUint(training, 3, static_cast<uint64_t>(static_cast<uint32_t>(counters->epoch)));
    if (counters->hasLearningRate) {
      putUint(training, 4, 1);
      uint64_t bits;
      std::memcpy(&bits, &counters->learningRate, sizeof bits);
      putVarint(training, 5 << 3 | 1);
      for (int i = 0; i < 8; ++i)
        training.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
    }
    putBytes(index, 5, training);
  }
  std::string out(kMagic, 8);
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((static_cast<uint64_t>(index.size()) >> (8 * i)) & 0xff));
  out += index;
  out.resize(alignUp(out.size()), '\0');
  out += data;
  writeAtomically(path, out);
}

bool Weights::loadModel(const char *model, const WeightSpec *specs, int count,
                        const std::string &path, const ModelFileSpec &spec, Weights &weights,
                        float *state, TrainingCounters *counters) {
  MappedFile f = mapFile(path);
  if (f.index.model.empty())
    throw Error(format("%s: a weights file, not a model file: it has no architecture (load it "
                       "with load_weights, or pass a file written by save())",
                       path.c_str()));
  if (f.index.modelName != model)
    throw Error(format("%s: a model file of model '%s', not of '%s'", path.c_str(),
                       f.index.modelName.c_str(), model));
  Weights loaded = fromFile(model, specs, count, path, f);
  bool resume = counters && f.index.hasTraining;
  if (resume) {
    const char *want = spec.optimizer ? spec.optimizer : "";
    if (f.index.optimizer != want)
      throw Error(format("%s: the file holds the state of optimizer %s, model '%s' trains with "
                         "%s",
                         path.c_str(), f.index.optimizer.c_str(), model, want));
    auto slots = byPath(f.index.slots);
    if (slots.size() != static_cast<std::size_t>(spec.numSlots))
      throw Error(format("%s: the file holds %zu optimizer slots, model '%s' has %d",
                         path.c_str(), slots.size(), model, spec.numSlots));
    std::vector<std::pair<const float *, const SlotSpec *>> copies;
    for (int k = 0; k < spec.numSlots; ++k) {
      const SlotSpec &slot = spec.slots[k];
      const WeightSpec &w = specs[slot.weight];
      std::string key = specPath(w) + "/" + slot.name;
      auto it = slots.find(key);
      if (it == slots.end())
        throw Error(format("%s: model '%s' needs optimizer slot '%s', which the file does not "
                           "have",
                           path.c_str(), model, key.c_str()));
      copies.push_back({entryData(f, *it->second, path, model, "optimizer slot '" + key + "'",
                                  w.shape, w.rank),
                        &slot});
    }
    // Everything is checked: now overwrite the state.
    for (auto [src, slot] : copies)
      std::memcpy(state + slot->offset, src, specBytes(specs[slot->weight]));
    *counters = f.index.counters;
  }
  weights = std::move(loaded);
  return resume;
}

} // namespace fgc::rt

extern "C" int fgc_cast_f32_to_i32(const float *x, int32_t *y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    float v = x[i];
    // Out-of-range and NaN values become -1, which the Embedding kernel then reports.
    y[i] = (std::isfinite(v) && v > -2147483648.0f && v < 2147483648.0f) ? static_cast<int32_t>(v)
                                                                          : -1;
  }
  return FGC_OK;
}

extern "C" int fgc_cast_i64_to_i32(const int64_t *x, int32_t *y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    if (x[i] < INT32_MIN || x[i] > INT32_MAX) {
      y[i] = -1; // reported by the Embedding kernel as out of range
      continue;
    }
    y[i] = static_cast<int32_t>(x[i]);
  }
  return FGC_OK;
}
