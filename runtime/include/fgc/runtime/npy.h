// Reading and writing NumPy .npy files (C++17): the runtime tests' fixtures and,
// later, data loaders use them.
//
// Supported: format versions 1.0, 2.0 and 3.0 headers; little-endian (or
// byte-order-free) float32, float64, int32, int64 and uint8 data in C order.
// Anything else (Fortran order, big-endian or other dtypes, a malformed or
// truncated file) throws NpyError with a message that names the file.
// writeNpy is atomic: it writes a temporary file in the destination's
// directory and renames it over the destination, so readers never see a
// partial file.
#ifndef FGC_RUNTIME_NPY_H
#define FGC_RUNTIME_NPY_H

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fgc::runtime {

enum class DType { Float32, Float64, Int32, Int64, UInt8 };

// Bytes per element of a dtype.
std::size_t dtypeSize(DType type);
// The NumPy descr string of a dtype ("<f4", "|u1", ...).
const char *dtypeDescr(DType type);

class NpyError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// An n-dimensional array as stored in a .npy file: its dtype, its shape (empty
// for a scalar) and its elements in C order, as raw little-endian bytes.
struct NpyArray {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  std::vector<unsigned char> bytes;

  // The number of elements (1 for a scalar).
  int64_t size() const;

  // The elements as T, which must match dtype exactly (throws NpyError
  // otherwise). The pointer is valid while the array is alive and unchanged.
  template <typename T> const T *data() const;
  template <typename T> T *data();

  // The elements converted to float32, whatever the dtype.
  std::vector<float> toFloat() const;

  // Makes an array of the given dtype and shape from `size()` elements.
  static NpyArray fromData(DType dtype, std::vector<int64_t> shape, const void *data);
};

// Reads a .npy file; throws NpyError naming the file on any problem.
NpyArray readNpy(const std::string &path);

// Writes a .npy file (version 1.0 header unless it does not fit, then 2.0)
// atomically; throws NpyError naming the file on failure.
void writeNpy(const std::string &path, const NpyArray &array);
void writeNpy(const std::string &path, const float *data, const std::vector<int64_t> &shape);

} // namespace fgc::runtime

#endif // FGC_RUNTIME_NPY_H
