// Shape rendering and dtype helpers (see TensorType.h).
#include "TensorType.h"

#include <fmt/format.h>

namespace fgc {

int64_t TensorType::elementsPerSample() const {
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) {
    if (isDynamic(shape[i]))
      return kUnknownDim;
    n *= shape[i];
  }
  return n;
}

int64_t TensorType::numElements() const {
  int64_t n = 1;
  for (Dim d : shape) {
    if (isDynamic(d))
      return kUnknownDim;
    n *= d;
  }
  return n;
}

std::string shapeToString(const std::vector<Dim> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += isDynamic(shape[i]) ? std::string("None") : std::to_string(shape[i]);
  }
  if (shape.size() == 1)
    s += ",";
  return s + ")";
}

std::string dtypeName(DType dtype) {
  switch (dtype) {
  case schema::FLOAT32: return "float32";
  case schema::FLOAT64: return "float64";
  case schema::INT32: return "int32";
  case schema::INT64: return "int64";
  case schema::UINT8: return "uint8";
  case schema::BOOL: return "bool";
  default: return "unspecified";
  }
}

DType dtypeFromName(const std::string &name) {
  for (DType d : {schema::FLOAT32, schema::FLOAT64, schema::INT32, schema::INT64, schema::UINT8,
                  schema::BOOL})
    if (dtypeName(d) == name)
      return d;
  return schema::DTYPE_UNSPECIFIED;
}

size_t dtypeSize(DType dtype) {
  switch (dtype) {
  case schema::FLOAT64:
  case schema::INT64: return 8;
  case schema::FLOAT32:
  case schema::INT32: return 4;
  case schema::UINT8:
  case schema::BOOL: return 1;
  default: return 0;
  }
}

} // namespace fgc
