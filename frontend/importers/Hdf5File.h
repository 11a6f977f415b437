// A small read-only view of an HDF5 file over the HDF5 C API, for the Keras importers.
//
// Only what Keras files need: groups, their children in name order, string and string-list
// attributes (fixed- or variable-length), and float datasets read as float32. The HDF5
// library's own error printing is switched off; every failure comes back as an fgc Error whose
// message names the file, the object and the library's innermost reason, so truncated or
// corrupted files give one clear line instead of an HDF5 error stack.
#pragma once

#include "compiler/ir/Error.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fgc::importers {

// A float dataset, converted to float32 (C order).
struct Hdf5Array {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

class Hdf5File {
public:
  // Opens a file on disk, or an in-memory image (`bytes`) named `name` in messages.
  static Expected<Hdf5File> open(const std::string &path);
  static Expected<Hdf5File> openImage(std::string bytes, const std::string &name);
  Hdf5File(Hdf5File &&) noexcept;
  Hdf5File &operator=(Hdf5File &&) noexcept;
  ~Hdf5File();

  const std::string &name() const { return name_; }
  // `path` is an HDF5 path inside the file ("/", "model_weights/dense").
  bool hasGroup(const std::string &path) const;
  bool hasDataset(const std::string &path) const;
  bool hasAttribute(const std::string &object, const std::string &attr) const;
  // Children of a group, sorted by name; `groups` chooses groups (true) or datasets (false).
  Expected<std::vector<std::string>> children(const std::string &group, bool groups) const;
  // Attribute names of an object, in creation order.
  Expected<std::vector<std::string>> attributeNames(const std::string &object) const;
  // A scalar string attribute (or a one-element string array).
  Expected<std::string> stringAttribute(const std::string &object, const std::string &attr) const;
  // A 1-D string array attribute, fixed- or variable-length strings. Keras splits long lists in
  // `attr0`, `attr1`, ... : those are concatenated when `attr` itself is absent.
  Expected<std::vector<std::string>> stringListAttribute(const std::string &object,
                                                         const std::string &attr) const;
  Expected<Hdf5Array> readFloats(const std::string &dataset) const;

private:
  Hdf5File() = default;
  int64_t file_ = -1;
  std::string name_;
  std::shared_ptr<std::string> image_; // kept alive while an in-memory file is open
};

} // namespace fgc::importers
