// Keras initializers, reproducibly seeded (see Initializers.h).
#include "frontend/Initializers.h"

#include "compiler/support/LargeBuffer.h"

#include <Eigen/Dense>

#include <cmath>
#include <cstring>
#include <random>
#include <span>

namespace fgc {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A portable random stream: mt19937_64's sequence is fixed by the C++ standard; the
// conversions to uniform and normal values are our own, so they are the same everywhere.
class Rng {
public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; } // [0, 1)
  double normal() {
    if (hasSpare_) {
      hasSpare_ = false;
      return spare_;
    }
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300)
      u1 = 1e-300;
    double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2 * M_PI * u2);
    hasSpare_ = true;
    return r * std::cos(2 * M_PI * u2);
  }
  // Normal values beyond two standard deviations are redrawn (Keras's truncated_normal).
  double truncatedNormal() {
    for (;;) {
      double v = normal();
      if (std::fabs(v) <= 2.0)
        return v;
    }
  }

private:
  std::mt19937_64 gen_;
  bool hasSpare_ = false;
  double spare_ = 0;
};

struct Fans {
  double in, out;
};

Fans computeFans(const std::vector<Dim> &shape) {
  if (shape.empty())
    return {1, 1};
  if (shape.size() == 1)
    return {double(shape[0]), double(shape[0])};
  if (shape.size() == 2)
    return {double(shape[0]), double(shape[1])};
  double rf = 1;
  for (size_t i = 0; i + 2 < shape.size(); ++i)
    rf *= double(shape[i]);
  return {double(shape[shape.size() - 2]) * rf, double(shape.back()) * rf};
}

double numAttr(const schema::Config &c, const std::string &key, double def) {
  auto it = c.attrs().find(key);
  if (it == c.attrs().end())
    return def;
  if (it->second.value_case() == AttrValue::kF)
    return it->second.f();
  if (it->second.value_case() == AttrValue::kI)
    return double(it->second.i());
  return def;
}

std::string strAttr(const schema::Config &c, const std::string &key, const std::string &def) {
  auto it = c.attrs().find(key);
  return it != c.attrs().end() && it->second.value_case() == AttrValue::kS ? it->second.s() : def;
}

// Keras's VarianceScaling, which glorot_*, he_* and lecun_* specialize.
void varianceScaling(double scale, const std::string &mode, const std::string &distribution,
                     const std::vector<Dim> &shape, Rng &rng, std::span<float> out) {
  Fans f = computeFans(shape);
  double n = mode == "fan_in" ? f.in : mode == "fan_out" ? f.out : (f.in + f.out) / 2.0;
  scale /= std::max(1.0, n);
  if (distribution == "uniform") {
    double limit = std::sqrt(3.0 * scale);
    for (auto &v : out)
      v = float((rng.uniform() * 2 - 1) * limit);
  } else if (distribution == "untruncated_normal") {
    double stddev = std::sqrt(scale);
    for (auto &v : out)
      v = float(rng.normal() * stddev);
  } else { // truncated_normal; the constant is the stddev of a unit normal truncated at 2
    double stddev = std::sqrt(scale) / 0.87962566103423978;
    for (auto &v : out)
      v = float(rng.truncatedNormal() * stddev);
  }
}

void orthogonal(double gain, const std::vector<Dim> &shape, Rng &rng, std::span<float> out) {
  Eigen::Index cols = shape.empty() ? 1 : shape.back();
  Eigen::Index rows = cols ? Eigen::Index(out.size()) / cols : 0;
  if (rows == 0 || cols == 0)
    return;
  Eigen::Index m = std::max(rows, cols), n = std::min(rows, cols);
  Eigen::MatrixXd a(m, n);
  for (Eigen::Index i = 0; i < m; ++i)
    for (Eigen::Index j = 0; j < n; ++j)
      a(i, j) = rng.normal();
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
  Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(m, n);
  Eigen::MatrixXd r = qr.matrixQR().topLeftCorner(n, n);
  for (Eigen::Index j = 0; j < n; ++j)
    if (r(j, j) < 0)
      q.col(j) *= -1;
  if (rows < cols)
    q.transposeInPlace();
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j)
      out[size_t(i * cols + j)] = float(gain * q(i, j));
}

} // namespace

uint64_t paramSeed(uint64_t modelSeed, const std::string &layerPath, const std::string &name) {
  uint64_t h = splitmix64(modelSeed);
  for (char c : layerPath + "\x1f" + name)
    h = splitmix64(h ^ static_cast<unsigned char>(c));
  return h;
}

// Fills `out` (zeros on entry, the size of `shape`) with the initializer's values.
static Status initializeInto(const AttrValue &init, const std::vector<Dim> &shape, uint64_t seed,
                             std::span<float> out) {
  const int64_t n = int64_t(out.size());
  if (init.value_case() != AttrValue::kObj)
    return Error::format("initializer must be an object, got {}", attrToString(init));
  const schema::Config &c = init.obj();
  const std::string &cls = c.class_name();
  // An initializer's own `seed` config makes it reproducible on its own, as in Keras.
  auto seedIt = c.attrs().find("seed");
  if (seedIt != c.attrs().end() && seedIt->second.value_case() == AttrValue::kI)
    seed = splitmix64(uint64_t(seedIt->second.i()));
  Rng rng(seed);
  if (cls == "Zeros")
    return Status::ok();
  if (cls == "Ones" || cls == "Constant") {
    float v = cls == "Ones" ? 1.0f : float(numAttr(c, "value", 0.0));
    std::fill(out.begin(), out.end(), v);
  } else if (cls == "GlorotUniform") {
    varianceScaling(1.0, "fan_avg", "uniform", shape, rng, out);
  } else if (cls == "GlorotNormal") {
    varianceScaling(1.0, "fan_avg", "truncated_normal", shape, rng, out);
  } else if (cls == "HeUniform") {
    varianceScaling(2.0, "fan_in", "uniform", shape, rng, out);
  } else if (cls == "HeNormal") {
    varianceScaling(2.0, "fan_in", "truncated_normal", shape, rng, out);
  } else if (cls == "LecunUniform") {
    varianceScaling(1.0, "fan_in", "uniform", shape, rng, out);
  } else if (cls == "LecunNormal") {
    varianceScaling(1.0, "fan_in", "truncated_normal", shape, rng, out);
  } else if (cls == "VarianceScaling") {
    varianceScaling(numAttr(c, "scale", 1.0), strAttr(c, "mode", "fan_in"),
                    strAttr(c, "distribution", "truncated_normal"), shape, rng, out);
  } else if (cls == "RandomUniform") {
    double lo = numAttr(c, "minval", -0.05), hi = numAttr(c, "maxval", 0.05);
    for (auto &v : out)
      v = float(lo + (hi - lo) * rng.uniform());
  } else if (cls == "RandomNormal") {
    double mean = numAttr(c, "mean", 0.0), sd = numAttr(c, "stddev", 0.05);
    for (auto &v : out)
      v = float(mean + sd * rng.normal());
  } else if (cls == "TruncatedNormal") {
    double mean = numAttr(c, "mean", 0.0), sd = numAttr(c, "stddev", 0.05);
    for (auto &v : out)
      v = float(mean + sd * rng.truncatedNormal());
  } else if (cls == "Orthogonal") {
    orthogonal(numAttr(c, "gain", 1.0), shape, rng, out);
  } else if (cls == "Identity") {
    if (shape.size() != 2)
      return Error::format("Identity initializer needs a 2D shape");
    double gain = numAttr(c, "gain", 1.0);
    for (Dim i = 0; i < std::min(shape[0], shape[1]); ++i)
      out[size_t(i * shape[1] + i)] = float(gain);
  } else if (cls == "LSTMBias") {
    // Keras's unit_forget_bias: the base initializer everywhere, then ones for the forget gate.
    auto base = c.attrs().find("base");
    if (base == c.attrs().end())
      return Error::format("LSTMBias initializer has no base");
    FGC_TRY(initializeInto(base->second, shape, seed, out));
    int64_t u = int64_t(numAttr(c, "units", 0));
    for (int64_t i = u; i < 2 * u && i < n; ++i)
      out[size_t(i)] = 1.0f;
  } else {
    return Error::format("unsupported initializer '{}'", cls);
  }
  return Status::ok();
}

static Status initializeGraph(Graph &g, uint64_t seed, const std::string &prefix) {
  for (auto &l : g.layers) {
    std::string path = prefix.empty() ? l->name : prefix + "/" + l->name;
    if (l->subgraph)
      FGC_TRY(initializeGraph(*l->subgraph, seed, path));
    for (auto &p : l->params) {
      if (!p.data.empty())
        continue;
      // Written in place: a fresh buffer per weight would cost its page faults again.
      size_t n = 1;
      for (Dim d : p.type.shape)
        n *= size_t(d);
      p.data.reserve(n * sizeof(float));
      adviseHugePages(p.data.data(), n * sizeof(float));
      p.data.resize(n * sizeof(float));
      std::span<float> values(reinterpret_cast<float *>(p.data.data()), n);
      Status s = initializeInto(p.initializer, p.type.shape, paramSeed(seed, path, p.name), values);
      if (!s) {
        p.data.clear();
        return Error::format("{}: weight '{}': {}", l->describe(), p.name, s.error().message());
      }
    }
  }
  return Status::ok();
}

Status initializeTensor(const AttrValue &init, const std::vector<Dim> &shape, uint64_t seed,
                        std::vector<float> &out) {
  int64_t n = 1;
  for (Dim d : shape)
    n *= d;
  out.assign(size_t(n), 0.0f);
  return initializeInto(init, shape, seed, out);
}

Status initializeWeights(Graph &graph) { return initializeGraph(graph, graph.seed, ""); }

} // namespace fgc
