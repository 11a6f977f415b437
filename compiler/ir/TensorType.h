// Tensor types of the IR: an element type and a shape whose dimensions are static sizes or
// symbolic (Keras's None: the batch dimension, and sequence dimensions declared `None`).
#pragma once

#include "fgc.pb.h"

#include <cstdint>
#include <string>
#include <vector>

namespace fgc {

using DType = schema::DType;

// A dimension: a size >= 0, or a negative symbol for a size known only at run time:
//   -1 (kBatchDim)      the batch size, shared by every input;
//   -2, -3, ...         the other None dimensions of the model's inputs (a sequence length),
//                       numbered by the frontend in input order;
//   kUnknownDim         a run-time size derived by arithmetic fgc does not track (e.g. the
//                       concatenation of two None dimensions).
// Everything that prints shapes shows every symbol as Keras's None.
using Dim = int64_t;
inline constexpr Dim kDynamic = -1;
inline constexpr Dim kBatchDim = -1;
inline constexpr Dim kUnknownDim = -(int64_t(1) << 40);
inline constexpr bool isDynamic(Dim d) { return d < 0; }

struct TensorType {
  DType dtype = schema::FLOAT32;
  std::vector<Dim> shape;

  size_t rank() const { return shape.size(); }
  Dim dim(int i) const { return shape[i < 0 ? shape.size() + i : i]; }
  // Number of elements of one sample (every dimension but the first); kDynamic if any of them is.
  int64_t elementsPerSample() const;
  // Number of elements of a fully static shape.
  int64_t numElements() const;
  bool operator==(const TensorType &o) const { return dtype == o.dtype && shape == o.shape; }
  bool operator!=(const TensorType &o) const { return !(*this == o); }
};

// Keras's rendering of a shape: "(None, 28, 28, 1)", "(None,)".
std::string shapeToString(const std::vector<Dim> &shape);
// Keras's dtype names: "float32", "int32", ...
std::string dtypeName(DType dtype);
// Inverse of dtypeName; returns DTYPE_UNSPECIFIED for an unknown name.
DType dtypeFromName(const std::string &name);
size_t dtypeSize(DType dtype);

} // namespace fgc
