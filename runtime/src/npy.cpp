// .npy reading and writing for fgc::runtime (see npy.h for the supported
// subset): a strict parser of the header dictionary NumPy writes, and atomic
// writes through a temporary file renamed into place.
#include "fgc/runtime/npy.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fgc::runtime {

namespace {

constexpr char Magic[] = "\x93NUMPY";
constexpr std::size_t MagicSize = 6;

[[noreturn]] void fail(const std::string &path, const std::string &message) {
  throw NpyError(path + ": " + message);
}

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType Value = DType::Float32; };
template <> struct DTypeOf<double> { static constexpr DType Value = DType::Float64; };
template <> struct DTypeOf<int32_t> { static constexpr DType Value = DType::Int32; };
template <> struct DTypeOf<int64_t> { static constexpr DType Value = DType::Int64; };
template <> struct DTypeOf<uint8_t> { static constexpr DType Value = DType::UInt8; };

const char *dtypeName(DType type) {
  switch (type) {
  case DType::Float32: return "float32";
  case DType::Float64: return "float64";
  case DType::Int32: return "int32";
  case DType::Int64: return "int64";
  case DType::UInt8: return "uint8";
  }
  return "?";
}

// A cursor over the header dictionary, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
public:
  HeaderParser(const std::string &path, const std::string &text) : Path(path), Text(text) {}

  // Positions the cursor just after `'key':`.
  void seekKey(const char *key) {
    std::string quoted = std::string("'") + key + "'";
    std::size_t at = Text.find(quoted);
    if (at == std::string::npos)
      fail(Path, std::string("header has no '") + key + "' entry");
    Pos = at + quoted.size();
    skipSpaces();
    expect(':');
  }

  std::string readString() {
    skipSpaces();
    expect('\'');
    std::size_t end = Text.find('\'', Pos);
    if (end == std::string::npos)
      fail(Path, "unterminated string in header");
    std::string value = Text.substr(Pos, end - Pos);
    Pos = end + 1;
    return value;
  }

  bool readBool() {
    skipSpaces();
    if (Text.compare(Pos, 4, "True") == 0) {
      Pos += 4;
      return true;
    }
    if (Text.compare(Pos, 5, "False") == 0) {
      Pos += 5;
      return false;
    }
    fail(Path, "expected True or False in header");
  }

  std::vector<int64_t> readShape() {
    skipSpaces();
    expect('(');
    std::vector<int64_t> shape;
    for (;;) {
      skipSpaces();
      if (peek() == ')') {
        ++Pos;
        return shape;
      }
      const char *begin = Text.c_str() + Pos;
      char *end = nullptr;
      errno = 0;
      long long dim = std::strtoll(begin, &end, 10);
      if (end == begin || errno != 0 || dim < 0)
        fail(Path, "malformed shape in header");
      shape.push_back(dim);
      Pos += static_cast<std::size_t>(end - begin);
      skipSpaces();
      if (peek() == ',')
        ++Pos;
      else if (peek() != ')')
        fail(Path, "malformed shape in header");
    }
  }

private:
  char peek() const { return Pos < Text.size() ? Text[Pos] : '\0'; }
  void skipSpaces() {
    while (Pos < Text.size() && (Text[Pos] == ' ' || Text[Pos] == '\t'))
      ++Pos;
  }
  void expect(char c) {
    if (peek() != c)
      fail(Path, std::string("malformed header: expected '") + c + "'");
    ++Pos;
  }

  const std::string &Path;
  const std::string &Text;
  std::size_t Pos = 0;
};

DType parseDescr(const std::string &path, const std::string &descr) {
  if (descr.size() == 3 && (descr[0] == '<' || descr[0] == '|' || descr[0] == '=')) {
    std::string kind = descr.substr(1);
    if (kind == "f4") return DType::Float32;
    if (kind == "f8") return DType::Float64;
    if (kind == "i4") return DType::Int32;
    if (kind == "i8") return DType::Int64;
    if (kind == "u1") return DType::UInt8;
  }
  if (!descr.empty() && descr[0] == '>')
    fail(path, "big-endian dtype '" + descr + "' is not supported");
  fail(path, "unsupported dtype '" + descr +
                 "' (expected float32, float64, int32, int64 or uint8)");
}

uint32_t readLittleEndian(const unsigned char *bytes, int count) {
  uint32_t value = 0;
  for (int i = count - 1; i >= 0; --i)
    value = (value << 8) | bytes[i];
  return value;
}

std::string headerText(const NpyArray &array) {
  std::string shape = "(";
  for (std::size_t i = 0; i < array.shape.size(); ++i) {
    shape += std::to_string(array.shape[i]);
    if (i + 1 < array.shape.size() || array.shape.size() == 1)
      shape += array.shape.size() == 1 ? "," : ", ";
  }
  shape += ")";
  std::string header = std::string("{'descr': '") + dtypeDescr(array.dtype) +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Like NumPy, leave room to rewrite the header in place if the first axis grows.
  constexpr std::size_t GrowthAxisDigits = 21;
  if (!array.shape.empty())
    header.append(GrowthAxisDigits - std::to_string(array.shape[0]).size(), ' ');
  return header;
}

void writeAll(int fd, const void *data, std::size_t size, const std::string &path) {
  const char *bytes = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t written = ::write(fd, bytes, size);
    if (written < 0) {
      if (errno == EINTR)
        continue;
      fail(path, std::string("write failed: ") + std::strerror(errno));
    }
    bytes += written;
    size -= static_cast<std::size_t>(written);
  }
}

// The process umask, read once (reading it means setting it, so not per write).
mode_t processUmask() {
  static const mode_t Mask = [] {
    mode_t mask = ::umask(022);
    ::umask(mask);
    return mask;
  }();
  return Mask;
}

} // namespace

std::size_t dtypeSize(DType type) {
  switch (type) {
  case DType::Float32: return 4;
  case DType::Float64: return 8;
  case DType::Int32: return 4;
  case DType::Int64: return 8;
  case DType::UInt8: return 1;
  }
  return 0;
}

const char *dtypeDescr(DType type) {
  switch (type) {
  case DType::Float32: return "<f4";
  case DType::Float64: return "<f8";
  case DType::Int32: return "<i4";
  case DType::Int64: return "<i8";
  case DType::UInt8: return "|u1";
  }
  return "?";
}

int64_t NpyArray::size() const {
  int64_t n = 1;
  for (int64_t dim : shape)
    n *= dim;
  return n;
}

template <typename T> const T *NpyArray::data() const {
  if (dtype != DTypeOf<T>::Value)
    throw NpyError(std::string("npy array holds ") + dtypeName(dtype) + ", not " +
                   dtypeName(DTypeOf<T>::Value));
  return reinterpret_cast<const T *>(bytes.data());
}

template <typename T> T *NpyArray::data() {
  return const_cast<T *>(static_cast<const NpyArray *>(this)->data<T>());
}

template const float *NpyArray::data<float>() const;
template const double *NpyArray::data<double>() const;
template const int32_t *NpyArray::data<int32_t>() const;
template const int64_t *NpyArray::data<int64_t>() const;
template const uint8_t *NpyArray::data<uint8_t>() const;
template float *NpyArray::data<float>();
template double *NpyArray::data<double>();
template int32_t *NpyArray::data<int32_t>();
template int64_t *NpyArray::data<int64_t>();
template uint8_t *NpyArray::data<uint8_t>();

std::vector<float> NpyArray::toFloat() const {
  std::vector<float> out(static_cast<std::size_t>(size()));
  auto convert = [&](const auto *src) {
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = static_cast<float>(src[i]);
  };
  switch (dtype) {
  case DType::Float32: convert(data<float>()); break;
  case DType::Float64: convert(data<double>()); break;
  case DType::Int32: convert(data<int32_t>()); break;
  case DType::Int64: convert(data<int64_t>()); break;
  case DType::UInt8: convert(data<uint8_t>()); break;
  }
  return out;
}

NpyArray NpyArray::fromData(DType dtype, std::vector<int64_t> shape, const void *data) {
  NpyArray array;
  array.dtype = dtype;
  array.shape = std::move(shape);
  std::size_t count = static_cast<std::size_t>(array.size()) * dtypeSize(dtype);
  const unsigned char *bytes = static_cast<const unsigned char *>(data);
  array.bytes.assign(bytes, bytes + count);
  return array;
}

NpyArray readNpy(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(path, "cannot open file");
  in.seekg(0, std::ios::end);
  const std::streamoff fileSize = in.tellg();
  in.seekg(0, std::ios::beg);
  if (!in || fileSize < 0)
    fail(path, "cannot determine the file size");
  auto readExactly = [&](void *dst, std::size_t size) {
    in.read(static_cast<char *>(dst), static_cast<std::streamsize>(size));
    if (static_cast<std::size_t>(in.gcount()) != size)
      fail(path, "read error");
  };

  unsigned char preamble[12] = {};
  const std::size_t got = static_cast<std::size_t>(std::min<std::streamoff>(fileSize, 10));
  readExactly(preamble, got);
  if (got < MagicSize || std::memcmp(preamble, Magic, MagicSize) != 0)
    fail(path, "not a .npy file (bad magic string)");
  if (got < 10)
    fail(path, "truncated header");
  const int major = preamble[6];
  std::size_t prefix = 10, headerSize = 0;
  if (major == 1) {
    headerSize = readLittleEndian(preamble + 8, 2);
  } else if (major == 2 || major == 3) {
    if (fileSize < 12)
      fail(path, "truncated header");
    readExactly(preamble + 10, 2);
    prefix = 12;
    headerSize = readLittleEndian(preamble + 8, 4);
  } else {
    fail(path, "unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(preamble[7]));
  }
  const std::size_t size = static_cast<std::size_t>(fileSize);
  if (size < prefix + headerSize)
    fail(path, "truncated header");
  std::string text(headerSize, '\0');
  readExactly(text.data(), headerSize);

  HeaderParser parser(path, text);
  NpyArray array;
  parser.seekKey("descr");
  array.dtype = parseDescr(path, parser.readString());
  parser.seekKey("fortran_order");
  if (parser.readBool())
    fail(path, "Fortran-order arrays are not supported");
  parser.seekKey("shape");
  array.shape = parser.readShape();

  // Check the shape against the bytes present without overflowing.
  const std::size_t available = size - prefix - headerSize;
  const std::size_t itemSize = dtypeSize(array.dtype);
  bool empty = std::find(array.shape.begin(), array.shape.end(), 0) != array.shape.end();
  std::size_t count = empty ? 0 : 1;
  for (int64_t dim : array.shape) {
    if (empty)
      break;
    if (count > available / itemSize / static_cast<std::size_t>(dim))
      fail(path, "truncated data: the shape needs more bytes than the file holds");
    count *= static_cast<std::size_t>(dim);
  }
  const std::size_t needed = count * itemSize;
  if (available < needed)
    fail(path, "truncated data: expected " + std::to_string(needed) + " bytes, found " +
                   std::to_string(available));
  if (available > needed)
    fail(path, std::to_string(available - needed) + " unexpected trailing bytes after the data");
  array.bytes.resize(needed);
  readExactly(array.bytes.data(), needed);
  return array;
}

void writeNpy(const std::string &path, const NpyArray &array) {
  const std::size_t expected = static_cast<std::size_t>(array.size()) * dtypeSize(array.dtype);
  if (array.bytes.size() != expected)
    fail(path, "array holds " + std::to_string(array.bytes.size()) + " bytes but its shape needs " +
                   std::to_string(expected));

  std::string header = headerText(array);
  // Pad with spaces so the data starts at a multiple of 64 bytes, ending in '\n'
  // (the same bytes NumPy writes).
  bool version1 = header.size() + 1 + 64 <= std::numeric_limits<uint16_t>::max();
  std::size_t prefix = version1 ? 10 : 12;
  std::size_t total = prefix + header.size() + 1;
  header.append(64 - total % 64, ' ');
  header.push_back('\n');

  std::string preamble(Magic, MagicSize);
  preamble.push_back(static_cast<char>(version1 ? 1 : 2));
  preamble.push_back('\0');
  uint32_t length = static_cast<uint32_t>(header.size());
  for (std::size_t i = 0; i < (version1 ? 2u : 4u); ++i)
    preamble.push_back(static_cast<char>((length >> (8 * i)) & 0xff));

  std::filesystem::path target(path);
  std::filesystem::path dir = target.parent_path();
  if (dir.empty())
    dir = ".";
  std::string tempName = target.filename().string();
  tempName.insert(tempName.begin(), '.');
  tempName += ".tmpXXXXXX";
  std::string temp = (dir / tempName).string();
  int fd = ::mkstemp(temp.data());
  if (fd < 0)
    fail(path, std::string("cannot create a temporary file: ") + std::strerror(errno));
  try {
    writeAll(fd, preamble.data(), preamble.size(), path);
    writeAll(fd, header.data(), header.size(), path);
    writeAll(fd, array.bytes.data(), array.bytes.size(), path);
    // mkstemp creates the file 0600; give it the mode a plain open would.
    if (::fchmod(fd, 0666 & ~processUmask()) != 0)
      fail(path, std::string("fchmod failed: ") + std::strerror(errno));
    if (::fsync(fd) != 0)
      fail(path, std::string("fsync failed: ") + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(temp.c_str());
    fail(path, std::string("close failed: ") + std::strerror(errno));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(temp.c_str());
    fail(path, std::string("cannot rename the temporary file into place: ") +
                   std::strerror(error));
  }
}

void writeNpy(const std::string &path, const float *data, const std::vector<int64_t> &shape) {
  writeNpy(path, NpyArray::fromData(DType::Float32, shape, data));
}

} // namespace fgc::runtime
