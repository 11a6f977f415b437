// HDF5 reading for the importers (see Hdf5File.h).
#include "frontend/importers/Hdf5File.h"

#include <hdf5.h>

#include <algorithm>
#include <cstring>

namespace fgc::importers {

namespace {

// Caps that keep a hostile file from exhausting memory.
constexpr hsize_t kMaxStringBytes = hsize_t(1) << 28;
constexpr hsize_t kMaxElements = hsize_t(1) << 31;
constexpr int kMaxRank = 8;

// Turns HDF5's automatic error printing off, once per process.
void silenceLibrary() {
  static bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

// The innermost message of HDF5's error stack (where the library detected the problem), then
// clears the stack.
std::string libraryReason() {
  std::string reason;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t *e, void *data) -> herr_t {
        auto *out = static_cast<std::string *>(data);
        if (n == 0 && e->desc)
          *out = e->desc;
        return 0;
      },
      &reason);
  H5Eclear2(H5E_DEFAULT);
  return reason.empty() ? "unknown HDF5 error" : reason;
}

// Closes an HDF5 identifier of any kind when it goes out of scope.
class Handle {
public:
  explicit Handle(hid_t id = -1) : id_(id) {}
  Handle(const Handle &) = delete;
  Handle &operator=(const Handle &) = delete;
  ~Handle() {
    if (id_ >= 0)
      H5Idec_ref(id_);
  }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

private:
  hid_t id_;
};

} // namespace

Expected<Hdf5File> Hdf5File::open(const std::string &path) {
  silenceLibrary();
  if (H5Fis_hdf5(path.c_str()) <= 0)
    return Error::format("{}: not a readable HDF5 file ({})", path, libraryReason());
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return Error::format("{}: cannot open the HDF5 file: {} (truncated or corrupted?)", path,
                         libraryReason());
  Hdf5File file;
  file.file_ = f;
  file.name_ = path;
  return file;
}

Expected<Hdf5File> Hdf5File::openImage(std::string bytes, const std::string &name) {
  silenceLibrary();
  auto image = std::make_shared<std::string>(std::move(bytes));
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  if (!fapl.valid() || H5Pset_fapl_core(fapl.get(), 1 << 16, 0) < 0 ||
      H5Pset_file_image(fapl.get(), image->data(), image->size()) < 0)
    return Error::format("{}: cannot read the HDF5 image: {}", name, libraryReason());
  hid_t f = H5Fopen(name.c_str(), H5F_ACC_RDONLY, fapl.get());
  if (f < 0)
    return Error::format("{}: cannot open the HDF5 data: {} (truncated or corrupted?)", name,
                         libraryReason());
  Hdf5File file;
  file.file_ = f;
  file.name_ = name;
  file.image_ = image;
  return file;
}

Hdf5File::Hdf5File(Hdf5File &&o) noexcept
    : file_(o.file_), name_(std::move(o.name_)), image_(std::move(o.image_)) {
  o.file_ = -1;
}

Hdf5File &Hdf5File::operator=(Hdf5File &&o) noexcept {
  std::swap(file_, o.file_);
  std::swap(name_, o.name_);
  std::swap(image_, o.image_);
  return *this;
}

Hdf5File::~Hdf5File() {
  if (file_ >= 0)
    H5Fclose(file_);
}

static H5I_type_t objectType(hid_t file, const std::string &path) {
  if (path == "/" || path.empty())
    return H5I_GROUP;
  // Every component must exist before H5Oopen may look at the path.
  size_t pos = 0;
  while (true) {
    size_t slash = path.find('/', pos + 1);
    std::string prefix = path.substr(0, slash);
    if (!prefix.empty() && prefix != "/" && H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return H5I_BADID;
    }
    if (slash == std::string::npos)
      break;
    pos = slash;
  }
  Handle obj(H5Oopen(file, path.c_str(), H5P_DEFAULT));
  if (!obj.valid()) {
    H5Eclear2(H5E_DEFAULT);
    return H5I_BADID;
  }
  return H5Iget_type(obj.get());
}

bool Hdf5File::hasGroup(const std::string &path) const {
  return objectType(file_, path) == H5I_GROUP;
}

bool Hdf5File::hasDataset(const std::string &path) const {
  return objectType(file_, path) == H5I_DATASET;
}

bool Hdf5File::hasAttribute(const std::string &object, const std::string &attr) const {
  if (objectType(file_, object) == H5I_BADID)
    return false;
  htri_t r = H5Aexists_by_name(file_, object.c_str(), attr.c_str(), H5P_DEFAULT);
  H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

Expected<std::vector<std::string>> Hdf5File::children(const std::string &group,
                                                      bool groups) const {
  Handle g(H5Gopen2(file_, group.c_str(), H5P_DEFAULT));
  if (!g.valid())
    return Error::format("{}: cannot open HDF5 group '{}': {}", name_, group, libraryReason());
  H5G_info_t info;
  if (H5Gget_info(g.get(), &info) < 0)
    return Error::format("{}: cannot list HDF5 group '{}': {}", name_, group, libraryReason());
  std::vector<std::string> out;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t len = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                                     H5P_DEFAULT);
    if (len < 0 || hsize_t(len) > kMaxStringBytes)
      return Error::format("{}: cannot list HDF5 group '{}': {}", name_, group, libraryReason());
    std::string child(size_t(len) + 1, '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, child.data(), child.size(),
                       H5P_DEFAULT);
    child.resize(size_t(len));
    Handle obj(H5Oopen(g.get(), child.c_str(), H5P_DEFAULT));
    if (!obj.valid())
      return Error::format("{}: cannot open HDF5 object '{}/{}': {}", name_, group, child,
                           libraryReason());
    H5I_type_t t = H5Iget_type(obj.get());
    if ((groups && t == H5I_GROUP) || (!groups && t == H5I_DATASET))
      out.push_back(child);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Expected<std::vector<std::string>> Hdf5File::attributeNames(const std::string &object) const {
  Handle obj(H5Oopen(file_, object.c_str(), H5P_DEFAULT));
  if (!obj.valid())
    return Error::format("{}: cannot open HDF5 object '{}': {}", name_, object, libraryReason());
  int n = H5Aget_num_attrs(obj.get());
  if (n < 0)
    return Error::format("{}: cannot list the attributes of '{}': {}", name_, object,
                         libraryReason());
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    Handle a(H5Aopen_by_idx(obj.get(), ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, hsize_t(i),
                            H5P_DEFAULT, H5P_DEFAULT));
    if (!a.valid()) {
      // Files without creation-order tracking: fall back to name order.
      H5Eclear2(H5E_DEFAULT);
      Handle b(H5Aopen_by_idx(obj.get(), ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(i),
                              H5P_DEFAULT, H5P_DEFAULT));
      if (!b.valid())
        return Error::format("{}: cannot read the attributes of '{}': {}", name_, object,
                             libraryReason());
      ssize_t len = H5Aget_name(b.get(), 0, nullptr);
      std::string s(size_t(std::max<ssize_t>(len, 0)) + 1, '\0');
      H5Aget_name(b.get(), s.size(), s.data());
      s.resize(size_t(std::max<ssize_t>(len, 0)));
      out.push_back(s);
      continue;
    }
    ssize_t len = H5Aget_name(a.get(), 0, nullptr);
    std::string s(size_t(std::max<ssize_t>(len, 0)) + 1, '\0');
    H5Aget_name(a.get(), s.size(), s.data());
    s.resize(size_t(std::max<ssize_t>(len, 0)));
    out.push_back(s);
  }
  return out;
}

// Reads every string of a string attribute.
static Expected<std::vector<std::string>> readStrings(hid_t file, const std::string &fileName,
                                                      const std::string &object,
                                                      const std::string &attr) {
  auto fail = [&](const std::string &why) {
    return Error::format("{}: attribute '{}' of '{}': {}", fileName, attr, object, why);
  };
  Handle a(H5Aopen_by_name(file, object.c_str(), attr.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  if (!a.valid())
    return fail("cannot read it: " + libraryReason());
  Handle type(H5Aget_type(a.get()));
  Handle space(H5Aget_space(a.get()));
  if (!type.valid() || !space.valid())
    return fail("cannot read it: " + libraryReason());
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || hsize_t(n) > kMaxStringBytes)
    return fail("has an invalid size");
  std::vector<std::string> out;
  if (n == 0)
    return out; // an empty list (NumPy writes it as an empty float array)
  if (H5Tget_class(type.get()) != H5T_STRING)
    return fail("is not a string");
  htri_t variable = H5Tis_variable_str(type.get());
  if (variable < 0)
    return fail("cannot read it: " + libraryReason());
  if (variable) {
    Handle mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    std::vector<char *> ptrs(size_t(n), nullptr);
    if (H5Aread(a.get(), mem.get(), ptrs.data()) < 0)
      return fail("cannot read it: " + libraryReason());
    for (char *p : ptrs)
      out.push_back(p ? std::string(p) : std::string());
    H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
    return out;
  }
  size_t size = H5Tget_size(type.get());
  if (size == 0 || hsize_t(size) * hsize_t(n) > kMaxStringBytes)
    return fail("has an invalid size");
  Handle mem(H5Tcopy(H5T_C_S1));
  H5Tset_size(mem.get(), size);
  H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
  std::vector<char> buf(size * size_t(n));
  if (H5Aread(a.get(), mem.get(), buf.data()) < 0)
    return fail("cannot read it: " + libraryReason());
  for (hssize_t i = 0; i < n; ++i) {
    const char *p = buf.data() + size_t(i) * size;
    out.push_back(std::string(p, strnlen(p, size)));
  }
  return out;
}

Expected<std::string> Hdf5File::stringAttribute(const std::string &object,
                                                const std::string &attr) const {
  auto v = readStrings(file_, name_, object, attr);
  if (!v)
    return v.error();
  if (v->size() != 1)
    return Error::format("{}: attribute '{}' of '{}' holds {} strings, expected one", name_, attr,
                         object, v->size());
  return (*v)[0];
}

Expected<std::vector<std::string>> Hdf5File::stringListAttribute(const std::string &object,
                                                                 const std::string &attr) const {
  if (hasAttribute(object, attr))
    return readStrings(file_, name_, object, attr);
  std::vector<std::string> all;
  for (int chunk = 0; hasAttribute(object, attr + std::to_string(chunk)); ++chunk) {
    auto part = readStrings(file_, name_, object, attr + std::to_string(chunk));
    if (!part)
      return part.error();
    all.insert(all.end(), part->begin(), part->end());
  }
  if (all.empty() && !hasAttribute(object, attr + "0"))
    return Error::format("{}: '{}' has no attribute '{}'", name_, object, attr);
  return all;
}

Expected<Hdf5Array> Hdf5File::readFloats(const std::string &dataset) const {
  auto fail = [&](const std::string &why) {
    return Error::format("{}: dataset '{}': {}", name_, dataset, why);
  };
  Handle d(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT));
  if (!d.valid())
    return fail("cannot open it: " + libraryReason());
  Handle type(H5Dget_type(d.get()));
  Handle space(H5Dget_space(d.get()));
  if (!type.valid() || !space.valid())
    return fail("cannot read it: " + libraryReason());
  H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    return fail("is not numeric");
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > kMaxRank)
    return fail("has an invalid rank");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  Hdf5Array out;
  hsize_t n = 1;
  for (hsize_t v : dims) {
    if (v > kMaxElements || (v && n > kMaxElements / v))
      return fail("is too large");
    n *= v;
    out.shape.push_back(int64_t(v));
  }
  out.data.resize(size_t(n));
  if (n > 0 && H5Dread(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                       out.data.data()) < 0)
    return fail("cannot read its data: " + libraryReason() + " (truncated or corrupted?)");
  return out;
}

} // namespace fgc::importers
