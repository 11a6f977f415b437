// File readers of fgc/runtime/data.h: IDX (plain or gzip, inflated with zlib), .npy and .npz
// (libzip for the archive, the runtime's .npy reader for each member) and numeric CSV. Each
// reader loads the whole file, checks every size against its length before touching data, and
// throws DataError with the file name and the problem.
#include "fgc/runtime/data.h"

#include "fgc/runtime/npy.h"

#include <zip.h>
#include <zlib.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fgc::rt {

namespace {

[[noreturn]] void fail(const std::string &path, const std::string &what) {
  throw DataError(path + ": " + what);
}

// The size of a regular file (devices and pipes are refused: they could block or never end).
std::size_t regularFileSize(const std::string &path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0)
    fail(path, std::string("cannot open: ") + std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    fail(path, "not a regular file");
  return static_cast<std::size_t>(info.st_size);
}

std::string readFile(const std::string &path) {
  std::size_t size = regularFileSize(path);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (in.gcount() != static_cast<std::streamsize>(bytes.size()))
    fail(path, "read error");
  return bytes;
}

bool isGzip(const std::string &bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

// Inflates a gzip stream (possibly several members back to back).
std::string gunzip(const std::string &path, const std::string &in) {
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 16) != Z_OK)
    fail(path, "zlib initialisation failed");
  std::string out;
  stream.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
  stream.avail_in = static_cast<uInt>(in.size());
  if (in.size() > std::numeric_limits<uInt>::max()) {
    inflateEnd(&stream);
    fail(path, "compressed file too large");
  }
  char buffer[1 << 16];
  int status = Z_OK;
  while (true) {
    stream.next_out = reinterpret_cast<Bytef *>(buffer);
    stream.avail_out = sizeof(buffer);
    status = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer, sizeof(buffer) - stream.avail_out);
    if (status == Z_STREAM_END) {
      if (stream.avail_in == 0)
        break;
      inflateReset(&stream);
      continue;
    }
    if (status == Z_OK)
      continue;
    if (status == Z_BUF_ERROR && stream.avail_in == 0)
      break; // the input ended inside the stream
    std::string message = stream.msg ? stream.msg : "error " + std::to_string(status);
    inflateEnd(&stream);
    fail(path, "corrupt gzip data (" + message + ")");
  }
  inflateEnd(&stream);
  if (status != Z_STREAM_END)
    fail(path, "truncated gzip data (the compressed stream ends early)");
  return out;
}

uint32_t bigEndian32(const unsigned char *p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

// Applies LoadOptions::reshape to a shape with `count` elements.
std::vector<int64_t> reshaped(const std::string &path, const std::vector<int64_t> &shape,
                              const std::vector<int64_t> &request, int64_t count) {
  if (request.empty())
    return shape;
  std::vector<int64_t> out = request;
  int64_t known = 1;
  int inferred = -1;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1 && inferred < 0)
      inferred = static_cast<int>(i);
    else if (out[i] < 0)
      fail(path, "cannot reshape to " + shapeText(request) + ": bad dimension");
    else
      known *= out[i];
  }
  if (inferred >= 0 && known > 0 && count % known == 0)
    out[static_cast<std::size_t>(inferred)] = count / known;
  int64_t total = 1;
  for (int64_t d : out)
    total *= d;
  if (total != count || (inferred >= 0 && known == 0))
    fail(path, "cannot reshape " + shapeText(shape) + " (" + std::to_string(count) +
                   " elements) to " + shapeText(request));
  return out;
}

struct IdxType {
  unsigned char code;
  int bytes;
  const char *name;
};

const IdxType IdxTypes[] = {{0x08, 1, "uint8"},   {0x09, 1, "int8"},    {0x0B, 2, "int16"},
                            {0x0C, 4, "int32"},   {0x0D, 4, "float32"}, {0x0E, 8, "float64"}};

// One big-endian IDX element as double.
double idxValue(const unsigned char *p, unsigned char code) {
  switch (code) {
  case 0x08: return p[0];
  case 0x09: return static_cast<int8_t>(p[0]);
  case 0x0B: return static_cast<int16_t>((p[0] << 8) | p[1]);
  case 0x0C: return static_cast<int32_t>(bigEndian32(p));
  case 0x0D: {
    uint32_t bits = bigEndian32(p);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  default: {
    uint64_t bits = (uint64_t(bigEndian32(p)) << 32) | bigEndian32(p + 4);
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  }
}

DType fromNpy(fgc::runtime::DType dtype) {
  switch (dtype) {
  case fgc::runtime::DType::Float32: return DType::Float32;
  case fgc::runtime::DType::Float64: return DType::Float64;
  case fgc::runtime::DType::Int32: return DType::Int32;
  case fgc::runtime::DType::Int64: return DType::Int64;
  case fgc::runtime::DType::UInt8: return DType::UInt8;
  }
  return DType::Float32;
}

Tensor toTensor(const fgc::runtime::NpyArray &array) {
  Tensor t(fromNpy(array.dtype), array.shape);
  if (t.bytes())
    std::memcpy(t.raw(), array.bytes.data(), t.bytes());
  return t;
}

// Parses one .npy member held in memory with the runtime's reader, through an anonymous
// in-memory file, and reports failures under `label` (archive:member).
Tensor npyFromMemory(const std::string &label, const std::string &bytes) {
  int fd = ::memfd_create("fgc-npz-member", MFD_CLOEXEC);
  if (fd < 0)
    fail(label, std::string("cannot create an in-memory file: ") + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      fail(label, std::string("cannot buffer the member: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  std::string procPath = "/proc/self/fd/" + std::to_string(fd);
  try {
    Tensor t = toTensor(fgc::runtime::readNpy(procPath));
    ::close(fd);
    return t;
  } catch (const fgc::runtime::NpyError &e) {
    ::close(fd);
    std::string message = e.what();
    std::size_t at = message.find(procPath);
    if (at != std::string::npos)
      message.replace(at, procPath.size(), label);
    else
      message = label + ": " + message;
    throw DataError(message);
  }
}

std::string zipMessage(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string message = zip_error_strerror(&error);
  zip_error_fini(&error);
  return message;
}

std::string trim(const std::string &s) {
  std::size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos)
    return "";
  std::size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

bool parseFloat(const std::string &field, float &value) {
  const char *begin = field.data(), *end = field.data() + field.size();
  if (begin != end && *begin == '+')
    ++begin;
  if (begin == end)
    return false;
  auto result = std::from_chars(begin, end, value);
  return result.ec == std::errc() && result.ptr == end;
}

std::vector<std::string> splitFields(const std::string &line, char delimiter) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (true) {
    std::size_t at = line.find(delimiter, start);
    fields.push_back(trim(line.substr(start, at == std::string::npos ? std::string::npos
                                                                      : at - start)));
    if (at == std::string::npos)
      return fields;
    start = at + 1;
  }
}

} // namespace

Tensor readIdx(const std::string &path, const LoadOptions &options) {
  std::string bytes = readFile(path);
  if (isGzip(bytes))
    bytes = gunzip(path, bytes);
  const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
  if (bytes.size() < 4)
    fail(path, "truncated IDX header (" + std::to_string(bytes.size()) + " bytes)");
  if (p[0] != 0 || p[1] != 0)
    fail(path, "not an IDX file (bad magic: the first two bytes must be zero)");
  const IdxType *type = nullptr;
  for (const IdxType &t : IdxTypes)
    if (t.code == p[2])
      type = &t;
  if (!type) {
    char code[8];
    std::snprintf(code, sizeof(code), "0x%02x", p[2]);
    fail(path, std::string("unknown IDX element type ") + code);
  }
  int rank = p[3];
  if (rank < 1)
    fail(path, "IDX rank must be >= 1");
  std::size_t header = 4 + 4 * static_cast<std::size_t>(rank);
  if (bytes.size() < header)
    fail(path, "truncated IDX header: rank " + std::to_string(rank) + " needs " +
                   std::to_string(header) + " bytes, the file has " + std::to_string(bytes.size()));
  std::vector<int64_t> shape;
  uint64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    uint32_t d = bigEndian32(p + 4 + 4 * i);
    shape.push_back(d);
    if (d != 0 && count > (uint64_t(1) << 62) / d)
      fail(path, "IDX dimensions too large");
    count *= d;
  }
  uint64_t dataBytes = count * static_cast<uint64_t>(type->bytes);
  uint64_t have = bytes.size() - header;
  if (have < dataBytes)
    fail(path, "truncated IDX data: shape " + shapeText(shape) + " of " + type->name + " needs " +
                   std::to_string(dataBytes) + " bytes, the file has " + std::to_string(have));
  if (have > dataBytes)
    fail(path, "IDX file has " + std::to_string(have - dataBytes) +
                   " bytes after the data its header describes");
  const unsigned char *data = p + header;
  int64_t n = static_cast<int64_t>(count);
  std::vector<int64_t> outShape = reshaped(path, shape, options.reshape, n);
  if (options.toFloat) {
    Tensor t(DType::Float32, outShape);
    float *out = t.data<float>();
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<float>(idxValue(data + i * type->bytes, type->code) * options.scale);
    return t;
  }
  if (type->code == 0x08) {
    Tensor t(DType::UInt8, outShape);
    if (n)
      std::memcpy(t.raw(), data, static_cast<std::size_t>(n));
    return t;
  }
  DType dtype = type->code == 0x0D ? DType::Float32
                                   : type->code == 0x0E ? DType::Float64 : DType::Int32;
  Tensor t(dtype, outShape);
  for (int64_t i = 0; i < n; ++i) {
    double v = idxValue(data + i * type->bytes, type->code);
    if (dtype == DType::Float32)
      t.data<float>()[i] = static_cast<float>(v);
    else if (dtype == DType::Float64)
      t.data<double>()[i] = v;
    else
      t.data<int32_t>()[i] = static_cast<int32_t>(v);
  }
  return t;
}

Tensor readNpyTensor(const std::string &path) {
  try {
    return toTensor(fgc::runtime::readNpy(path));
  } catch (const fgc::runtime::NpyError &e) {
    throw DataError(e.what());
  }
}

std::vector<std::pair<std::string, Tensor>> readNpz(const std::string &path) {
  regularFileSize(path);
  int code = 0;
  zip_t *archive = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (!archive)
    fail(path, "not a readable .npz (zip) archive: " + zipMessage(code));
  std::vector<std::pair<std::string, Tensor>> out;
  try {
    zip_int64_t entries = zip_get_num_entries(archive, 0);
    for (zip_int64_t i = 0; i < entries; ++i) {
      zip_stat_t info;
      zip_stat_init(&info);
      if (zip_stat_index(archive, static_cast<zip_uint64_t>(i), 0, &info) != 0 ||
          !(info.valid & ZIP_STAT_NAME) || !(info.valid & ZIP_STAT_SIZE))
        fail(path, "cannot read entry " + std::to_string(i) + ": " + zip_strerror(archive));
      std::string name = info.name;
      std::string label = path + ":" + name;
      if (name.size() < 4 || name.compare(name.size() - 4, 4, ".npy") != 0)
        fail(label, "member is not a .npy file");
      if (info.size > (uint64_t(1) << 40))
        fail(label, "member too large");
      zip_file_t *file = zip_fopen_index(archive, static_cast<zip_uint64_t>(i), 0);
      if (!file)
        fail(label, std::string("cannot open member: ") + zip_strerror(archive));
      std::string bytes(static_cast<std::size_t>(info.size), '\0');
      zip_uint64_t done = 0;
      while (done < info.size) {
        zip_int64_t n = zip_fread(file, bytes.data() + done, info.size - done);
        if (n <= 0) {
          std::string message = n < 0 ? zip_file_strerror(file) : "unexpected end of data";
          zip_fclose(file);
          fail(label, "corrupt member: " + message);
        }
        done += static_cast<zip_uint64_t>(n);
      }
      char extra;
      zip_int64_t more = zip_fread(file, &extra, 1);
      std::string message = more < 0 ? zip_file_strerror(file) : "";
      zip_fclose(file);
      if (more != 0)
        fail(label, "corrupt member: " + (more < 0 ? message : "longer than its recorded size"));
      out.emplace_back(name.substr(0, name.size() - 4), npyFromMemory(label, bytes));
    }
  } catch (...) {
    zip_discard(archive);
    throw;
  }
  zip_discard(archive);
  return out;
}

CsvData readCsv(const std::string &path, const CsvOptions &options) {
  std::string text = readFile(path);
  CsvData result;
  std::vector<float> features, labels;
  int64_t columns = -1, labelIndex = -1, rows = 0, lineNumber = 0;
  bool first = true;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos)
      end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++lineNumber;
    if (trim(line).empty())
      continue;
    std::vector<std::string> fields = splitFields(line, options.delimiter);
    std::vector<float> values(fields.size());
    std::size_t bad = fields.size();
    for (std::size_t i = 0; i < fields.size() && bad == fields.size(); ++i)
      if (!parseFloat(fields[i], values[i]))
        bad = i;
    if (first) {
      first = false;
      columns = static_cast<int64_t>(fields.size());
      if (options.labelColumn) {
        labelIndex = *options.labelColumn < 0 ? columns + *options.labelColumn
                                              : *options.labelColumn;
        if (labelIndex < 0 || labelIndex >= columns)
          fail(path, "label column " + std::to_string(*options.labelColumn) +
                         " is out of range for " + std::to_string(columns) + " columns");
      }
      bool header = options.header == CsvOptions::Header::Present ||
                    (options.header == CsvOptions::Header::Auto && bad < fields.size());
      if (header) {
        result.columnNames = fields;
        continue;
      }
    }
    if (static_cast<int64_t>(fields.size()) != columns)
      fail(path, "line " + std::to_string(lineNumber) + " has " + std::to_string(fields.size()) +
                     " fields, expected " + std::to_string(columns));
    if (bad < fields.size())
      fail(path, "line " + std::to_string(lineNumber) + ", column " + std::to_string(bad + 1) +
                     ": '" + fields[bad] + "' is not a number");
    for (int64_t i = 0; i < columns; ++i)
      (i == labelIndex ? labels : features).push_back(values[static_cast<std::size_t>(i)]);
    ++rows;
  }
  if (rows == 0)
    fail(path, "no data rows");
  int64_t featureColumns = columns - (labelIndex >= 0 ? 1 : 0);
  if (featureColumns == 0)
    fail(path, "no feature columns besides the label");
  result.features = Tensor::fromFloats({rows, featureColumns}, features.data());
  result.labels = labelIndex >= 0 ? Tensor::fromFloats({rows}, labels.data())
                                  : Tensor(DType::Float32, {0});
  return result;
}

} // namespace fgc::rt
