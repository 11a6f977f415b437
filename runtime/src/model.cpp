// Support for generated model classes (see fgc/runtime/model.h): tensors, input binding, arena,
// and weights, including the fgc weights file format.
//
// The .fgcw format (documented in schemas/fgc.proto, WeightsIndex): magic "FGCWGT01", a u64
// index length, the index as a binary protobuf message, zero padding to 64 bytes, then the data
// section. The runtime does not link protobuf: it reads and writes the index's few fields with
// a minimal wire-format codec below.
#include "fgc/runtime/model.h"

#include "fgc/runtime/kernels.h"

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

bool parseIndex(const unsigned char *p, std::size_t n, std::vector<IndexEntry> &entries) {
  WireReader r(p, n);
  while (!r.done()) {
    uint64_t key;
    if (!r.varint(key))
      return false;
    int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
    if (field == 2 && wire == 2) {
      const unsigned char *d;
      std::size_t len;
      IndexEntry e;
      if (!r.bytes(d, len) || !parseEntry(d, len, e))
        return false;
      entries.push_back(std::move(e));
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

float *Weights::mutableData(int i) {
  if (!owned_) {
    std::size_t total = 0;
    for (int k = 0; k < count_; ++k)
      total += specBytes(specs_[k]) / sizeof(float);
    auto owned = std::make_shared<std::vector<float>>(total);
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

Weights Weights::load(const char *model, const WeightSpec *specs, int count,
                      const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(format("%s: cannot open weights file: %s", path.c_str(), std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(format("%s: not a regular file", path.c_str()));
  }
  auto mapping = std::make_shared<Mapping>();
  mapping->length = static_cast<std::size_t>(st.st_size);
  if (mapping->length > 0) {
    mapping->addr = ::mmap(nullptr, mapping->length, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping->addr == MAP_FAILED) {
      mapping->addr = nullptr;
      ::close(fd);
      throw Error(format("%s: cannot map weights file: %s", path.c_str(), std::strerror(errno)));
    }
  }
  ::close(fd);
  const auto *bytes = static_cast<const unsigned char *>(mapping->addr);
  std::size_t size = mapping->length;
  if (size < 16 || std::memcmp(bytes, kMagic, 8) != 0)
    throw Error(format("%s: not an fgc weights file (bad magic)", path.c_str()));
  uint64_t indexLen = 0;
  for (int i = 7; i >= 0; --i)
    indexLen = indexLen << 8 | bytes[8 + i];
  std::vector<IndexEntry> entries;
  if (indexLen > size - 16 || !parseIndex(bytes + 16, static_cast<std::size_t>(indexLen), entries))
    throw Error(format("%s: corrupt or truncated weights file index", path.c_str()));
  std::size_t dataStart = alignUp(16 + static_cast<std::size_t>(indexLen));
  std::map<std::string, const IndexEntry *> byPath;
  for (const auto &e : entries)
    byPath[e.layer + "/" + e.name] = &e;

  Weights w;
  w.model_ = model;
  w.specs_ = specs;
  w.count_ = count;
  w.mapping_ = mapping;
  for (int i = 0; i < count; ++i) {
    const WeightSpec &s = specs[i];
    auto it = byPath.find(specPath(s));
    if (it == byPath.end())
      throw Error(format("%s: model '%s' needs weight '%s' %s, which the file does not have",
                         path.c_str(), model, specPath(s).c_str(),
                         shapeString(s.shape, s.rank).c_str()));
    const IndexEntry &e = *it->second;
    std::vector<int64_t> want(s.shape, s.shape + s.rank);
    if (e.shape != want || e.dtype != static_cast<int64_t>(DType::Float32))
      throw Error(format("%s: weight '%s' has shape %s in the file, model '%s' needs float32 %s",
                         path.c_str(), specPath(s).c_str(),
                         shapeString(e.shape.data(), static_cast<int>(e.shape.size())).c_str(),
                         model, shapeString(s.shape, s.rank).c_str()));
    if (e.nbytes != specBytes(s) || e.offset % alignof(float) != 0 || dataStart > size ||
        e.offset > size - dataStart || e.nbytes > size - dataStart - e.offset)
      throw Error(format("%s: weight '%s' lies outside the file (truncated?)", path.c_str(),
                         specPath(s).c_str()));
    w.pointers_.push_back(reinterpret_cast<const float *>(bytes + dataStart + e.offset));
  }
  return w;
}

void Weights::save(const std::string &path) const {
  std::string index, data;
  putBytes(index, 1, model_);
  for (int i = 0; i < count_; ++i) {
    const WeightSpec &s = specs_[i];
    data.resize(alignUp(data.size()), '\0');
    std::string entry, shape;
    putBytes(entry, 1, s.layer);
    putBytes(entry, 2, s.name);
    putUint(entry, 3, static_cast<uint64_t>(DType::Float32));
    for (int k = 0; k < s.rank; ++k)
      putVarint(shape, static_cast<uint64_t>(s.shape[k]));
    if (s.rank > 0)
      putBytes(entry, 4, shape);
    putUint(entry, 5, data.size());
    putUint(entry, 6, specBytes(s));
    putBytes(index, 2, entry);
    data.append(reinterpret_cast<const char *>(pointers_[static_cast<std::size_t>(i)]),
                specBytes(s));
  }
  std::string out(kMagic, 8);
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((static_cast<uint64_t>(index.size()) >> (8 * i)) & 0xff));
  out += index;
  out.resize(alignUp(out.size()), '\0');
  out += data;

  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    throw Error(format("%s: cannot write: %s", path.c_str(), std::strerror(errno)));
  bool ok = std::fwrite(out.data(), 1, out.size(), f) == out.size();
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(::fileno(f)) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(format("%s: write failed: %s", path.c_str(), std::strerror(errno)));
  }
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
