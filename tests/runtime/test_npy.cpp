// Tests of the .npy reader and writer: files NumPy wrote (the fixtures) read
// back and rewrite byte for byte, round trips of every dtype, a version 2.0
// header, atomic writes, and every rejection path with the file named in the
// message.
#include "fixture.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace fgc::test;
using fgc::runtime::DType;
using fgc::runtime::NpyArray;
using fgc::runtime::NpyError;
using fgc::runtime::readNpy;
using fgc::runtime::writeNpy;

namespace fs = std::filesystem;

namespace {

std::string scratchDir() {
  fs::path dir = fs::path(FGC_BINARY_DIR) / "tests" / "runtime" / "npy_scratch";
  fs::create_directories(dir);
  return dir.string();
}

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Writes a .npy file by hand: magic, version, header (padded for version 1),
// then `data` verbatim.
std::string writeRaw(const std::string &name, int major, const std::string &dict,
                     const std::string &data, const char *magic = "\x93NUMPY") {
  std::string path = scratchDir() + "/" + name;
  std::string header = dict + "\n";
  std::string out(magic, 6);
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  uint32_t len = static_cast<uint32_t>(header.size());
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i)
    out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out += header + data;
  std::ofstream(path, std::ios::binary) << out;
  return path;
}

std::string floatBytes(std::initializer_list<float> values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.begin(), bytes.size());
  return bytes;
}

void requireRejected(const std::string &path, const std::string &phrase) {
  INFO("file " << path << ", expected phrase: " << phrase);
  try {
    readNpy(path);
    FAIL("readNpy accepted the file");
  } catch (const NpyError &error) {
    std::string message = error.what();
    INFO("message: " << message);
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find(phrase) != std::string::npos);
  }
}

} // namespace

TEST_CASE("readNpy reads the files NumPy wrote, and writeNpy rewrites them byte for byte",
          "[runtime][npy]") {
  std::vector<std::string> files = {
      fixtureRoot() + "/conv2d_3x3_same_relu/x.npy",     // float32, rank 4
      fixtureRoot() + "/conv2d_3x3_same_relu/bias.npy",  // float32, rank 1
      fixtureRoot() + "/embedding_i32/indices.npy",      // int32
      fixtureRoot() + "/embedding_i64/indices.npy"};     // int64
  for (const std::string &file : files) {
    INFO(file);
    NpyArray a = readNpy(file);
    CHECK(a.size() > 0);
    std::string copy = scratchDir() + "/copy.npy";
    writeNpy(copy, a);
    CHECK(readBytes(copy) == readBytes(file));
  }
  NpyArray x = readNpy(files[0]);
  CHECK(x.dtype == DType::Float32);
  CHECK(x.shape == std::vector<int64_t>{2, 7, 9, 3});
  CHECK_THROWS_AS(x.data<double>(), NpyError);
  CHECK(readNpy(files[3]).dtype == DType::Int64);
}

TEST_CASE("writeNpy and readNpy round-trip every dtype and shape", "[runtime][npy]") {
  std::string path = scratchDir() + "/roundtrip.npy";
  const double f64[] = {1.5, -2.25, 1e300};
  const int32_t i32[] = {-7, 0, 2147483647, 5};
  const int64_t i64[] = {int64_t(1) << 50, -3};
  const uint8_t u8[] = {0, 255, 17, 4, 9, 1};
  const float f32[] = {0.5f, -1.0f};
  struct Case {
    DType dtype;
    std::vector<int64_t> shape;
    const void *data;
  } cases[] = {{DType::Float64, {3}, f64},     {DType::Int32, {2, 2}, i32},
               {DType::Int64, {2, 1, 1}, i64}, {DType::UInt8, {1, 2, 3}, u8},
               {DType::Float32, {}, f32},      {DType::Float32, {0, 4}, f32}};
  for (const Case &c : cases) {
    NpyArray a = NpyArray::fromData(c.dtype, c.shape, c.data);
    writeNpy(path, a);
    NpyArray b = readNpy(path);
    CHECK(b.dtype == a.dtype);
    CHECK(b.shape == a.shape);
    CHECK(b.bytes == a.bytes);
  }
  writeNpy(path, f32, {2});
  CHECK(readNpy(path).toFloat() == std::vector<float>{0.5f, -1.0f});
  NpyArray ints = NpyArray::fromData(DType::Int32, {4}, i32);
  CHECK(ints.toFloat()[0] == -7.0f);
}

TEST_CASE("readNpy accepts a version 2.0 header", "[runtime][npy]") {
  std::string path = writeRaw("v2.npy", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                              floatBytes({1.0f, 2.0f, 3.0f}));
  NpyArray a = readNpy(path);
  CHECK(a.shape == std::vector<int64_t>{3});
  CHECK(a.toFloat() == std::vector<float>{1.0f, 2.0f, 3.0f});
}

TEST_CASE("writeNpy replaces files atomically and names the file on failure",
          "[runtime][npy][errors]") {
  std::string dir = scratchDir() + "/atomic";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string path = dir + "/out.npy";
  const float first[] = {1, 2, 3, 4}, second[] = {5, 6};
  writeNpy(path, first, {4});
  writeNpy(path, second, {2});
  CHECK(readNpy(path).toFloat() == std::vector<float>{5, 6});
  int entries = 0;
  for (const auto &entry : fs::directory_iterator(dir)) {
    (void)entry;
    ++entries;
  }
  CHECK(entries == 1); // no temporary file left behind

  std::string missing = dir + "/no/such/dir/out.npy";
  try {
    writeNpy(missing, first, {4});
    FAIL("writeNpy wrote into a missing directory");
  } catch (const NpyError &error) {
    CHECK(std::string(error.what()).find(missing) != std::string::npos);
  }
  NpyArray inconsistent = NpyArray::fromData(DType::Float32, {4}, first);
  inconsistent.shape = {5};
  CHECK_THROWS_AS(writeNpy(path, inconsistent), NpyError);
  CHECK(readNpy(path).toFloat() == std::vector<float>{5, 6});
}

TEST_CASE("readNpy rejects bad files with a message naming the file", "[runtime][npy][errors]") {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string two = floatBytes({1.0f, 2.0f});
  requireRejected(scratchDir() + "/does_not_exist.npy", "cannot open");
  requireRejected(writeRaw("bad_magic.npy", 1, ok, two, "\x93NUMPX"), "bad magic");
  requireRejected(writeRaw("version9.npy", 9, ok, two), "unsupported .npy format version 9");
  requireRejected(
      writeRaw("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", two),
      "Fortran-order");
  requireRejected(
      writeRaw("complex.npy", 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", two),
      "unsupported dtype '<c8'");
  requireRejected(
      writeRaw("int16.npy", 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (4,), }", two),
      "unsupported dtype '<i2'");
  requireRejected(
      writeRaw("big_endian.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
               two),
      "big-endian");
  requireRejected(writeRaw("truncated.npy", 1, ok, two.substr(0, 5)), "truncated data");
  requireRejected(writeRaw("trailing.npy", 1, ok, two + "xyz"), "trailing bytes");
  requireRejected(
      writeRaw("huge.npy", 1,
               "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }", two),
      "truncated data");
  requireRejected(writeRaw("no_shape.npy", 1, "{'descr': '<f4', 'fortran_order': False, }", two),
                  "no 'shape' entry");
  requireRejected(
      writeRaw("bad_shape.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2; 3), }",
               two),
      "malformed shape");
  std::string tiny = scratchDir() + "/tiny.npy";
  std::ofstream(tiny, std::ios::binary) << "\x93NU";
  requireRejected(tiny, "bad magic");
  std::string preambleOnly = scratchDir() + "/preamble_only.npy";
  std::ofstream(preambleOnly, std::ios::binary) << std::string("\x93NUMPY\x01\x00", 8);
  requireRejected(preambleOnly, "truncated header");
  std::string longHeader = writeRaw("long_header.npy", 1, ok, "");
  fs::resize_file(longHeader, 40);
  requireRejected(longHeader, "truncated header");
}

TEST_CASE("readNpy reads an empty array whatever its other dimensions", "[runtime][npy]") {
  std::string path = writeRaw(
      "empty.npy", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4611686018427387904, 0), }",
      "");
  NpyArray a = readNpy(path);
  CHECK(a.dtype == DType::Int64);
  CHECK(a.shape == std::vector<int64_t>{int64_t(1) << 62, 0});
  CHECK(a.bytes.empty());
}
