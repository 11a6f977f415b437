// Tests of the Embedding kernels: int32 and int64 indices against the PyTorch
// fixtures, and the out-of-range index error (code, message, nothing written).
#include "fixture.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using namespace fgc::test;

TEST_CASE("fgc_embedding_i32 and fgc_embedding_i64 match PyTorch", "[runtime][embedding]") {
  for (const char *name : {"embedding_i32", "embedding_i64"}) {
    Fixture f(name);
    fgc::runtime::NpyArray indices = f.array("indices");
    std::vector<int64_t> ts = f.shape("table");
    std::vector<float> table = f.floats("table");
    std::vector<float> y = sentinel(indices.size() * ts[1]);
    int status = indices.dtype == fgc::runtime::DType::Int32
                     ? fgc_embedding_i32(indices.data<int32_t>(), indices.size(), table.data(),
                                         ts[0], ts[1], y.data())
                     : fgc_embedding_i64(indices.data<int64_t>(), indices.size(), table.data(),
                                         ts[0], ts[1], y.data());
    REQUIRE(status == FGC_OK);
    checkClose(y, f, "y");
  }
}

TEST_CASE("fgc_embedding rejects an out-of-range index without reading it",
          "[runtime][embedding][errors]") {
  Fixture f("embedding_i32");
  std::vector<int64_t> ts = f.shape("table");
  std::vector<float> table = f.floats("table");
  fgc::runtime::NpyArray fixtureIndices = f.array("indices");
  std::vector<int32_t> indices(fixtureIndices.data<int32_t>(),
                               fixtureIndices.data<int32_t>() + fixtureIndices.size());
  int64_t count = static_cast<int64_t>(indices.size());

  indices[7] = static_cast<int32_t>(ts[0]); // one past the table's last row
  std::vector<float> y = sentinel(count * ts[1]);
  CHECK(fgc_embedding_i32(indices.data(), count, table.data(), ts[0], ts[1], y.data()) ==
        FGC_ERR_OUT_OF_RANGE);
  std::string message = fgc_last_error();
  CHECK(message.find("index " + std::to_string(ts[0]) + " at position 7") != std::string::npos);
  for (float v : y)
    CHECK(std::isnan(v));

  std::vector<int64_t> wide(indices.begin(), indices.end());
  wide[7] = 0;
  wide[3] = -1;
  CHECK(fgc_embedding_i64(wide.data(), count, table.data(), ts[0], ts[1], y.data()) ==
        FGC_ERR_OUT_OF_RANGE);
  message = fgc_last_error();
  CHECK(message.find("index -1 at position 3") != std::string::npos);
  wide[3] = int64_t(1) << 40;
  CHECK(fgc_embedding_i64(wide.data(), count, table.data(), ts[0], ts[1], y.data()) ==
        FGC_ERR_OUT_OF_RANGE);
  for (float v : y)
    CHECK(std::isnan(v));

  CHECK(fgc_embedding_i32(nullptr, 0, table.data(), ts[0], ts[1], nullptr) == FGC_OK);
}
