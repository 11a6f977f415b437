// fit / evaluate / predict loops, callbacks, History and the Keras progress bar (see train.h).
#include "fgc/runtime/train.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace fgc::rt {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string printfString(const char *fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

void writeAtomically(const std::string &path, const std::string &text) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    throw Error(path + ": cannot write: " + std::strerror(errno));
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(::fileno(f)) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": write failed");
  }
}

bool wantsMaximum(const std::string &monitor) {
  return monitor.find("acc") != std::string::npos || monitor.find("auc") != std::string::npos;
}

// Keras's Progbar for one epoch (or one evaluation).
class Progress {
public:
  Progress(std::ostream &out, int64_t target, int verbose, bool live)
      : out_(out), target_(target), verbose_(verbose), live_(live), start_(Clock::now()),
        lastUpdate_(start_) {}

  // Shows progress after `current` steps with the running means in `values`.
  void update(int64_t current, const std::vector<std::pair<std::string, double>> &values) {
    if (verbose_ != 1 || !live_)
      return;
    auto now = Clock::now();
    if (current < target_ && seconds(lastUpdate_, now) < 0.05)
      return;
    lastUpdate_ = now;
    std::string line = bar(current);
    if (current < target_) {
      double perStep = current ? seconds(start_, now) / double(current) : 0;
      int eta = int(perStep * double(target_ - current));
      char buf[32];
      if (eta > 3600)
        std::snprintf(buf, sizeof buf, " - ETA: %d:%02d:%02d", eta / 3600, (eta % 3600) / 60,
                      eta % 60);
      else if (eta > 60)
        std::snprintf(buf, sizeof buf, " - ETA: %d:%02d", eta / 60, eta % 60);
      else
        std::snprintf(buf, sizeof buf, " - ETA: %ds", eta);
      line += buf;
    }
    line += valuesText(values);
    std::string padded = line;
    if (padded.size() < width_)
      padded += std::string(width_ - padded.size(), ' ');
    width_ = line.size();
    out_ << '\r' << padded << std::flush;
  }

  // The epoch's last line: the full bar (verbose 1) or the count (verbose 2), the time, and all
  // values (validation ones included).
  void finish(int64_t current, const std::vector<std::pair<std::string, double>> &values) {
    if (verbose_ == 0)
      return;
    double total = seconds(start_, Clock::now());
    std::string line = verbose_ == 1 ? bar(current) : countText(current);
    line += printfString(" - %.0fs", total);
    if (verbose_ == 1) {
      double perStep = current ? total / double(current) : 0;
      if (perStep >= 1 || perStep == 0)
        line += printfString(" %.0fs/step", perStep);
      else if (perStep >= 1e-3)
        line += printfString(" %.0fms/step", perStep * 1e3);
      else
        line += printfString(" %.0fus/step", perStep * 1e6);
    }
    line += valuesText(values);
    if (verbose_ == 1 && live_) {
      std::string padded = line;
      if (padded.size() < width_)
        padded += std::string(width_ - padded.size(), ' ');
      out_ << '\r' << padded << '\n' << std::flush;
    } else {
      out_ << line << '\n' << std::flush;
    }
  }

private:
  std::ostream &out_;
  int64_t target_;
  int verbose_;
  bool live_;
  Clock::time_point start_, lastUpdate_;
  size_t width_ = 0;

  std::string countText(int64_t current) const {
    int digits = int(std::log10(double(std::max<int64_t>(target_, 1)))) + 1;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%*lld/%lld", digits, static_cast<long long>(current),
                  static_cast<long long>(target_));
    return buf;
  }

  std::string bar(int64_t current) const {
    const int width = 30;
    std::string s = countText(current) + " [";
    double prog = target_ ? double(current) / double(target_) : 1.0;
    int progWidth = int(width * prog);
    if (progWidth > 0) {
      s += std::string(size_t(progWidth - 1), '=');
      s += current < target_ ? '>' : '=';
    }
    s += std::string(size_t(width - progWidth), '.');
    return s + "]";
  }

  static std::string valuesText(const std::vector<std::pair<std::string, double>> &values) {
    std::string s;
    for (const auto &[name, v] : values)
      s += " - " + name + ": " + formatLogValue(v);
    return s;
  }
};

bool stdoutIsTerminal(std::ostream &out) { return &out == &std::cout && ::isatty(1); }

// Running means of a step's logs over an epoch, each batch weighted by its size.
struct Means {
  std::vector<std::string> names;
  std::vector<double> sums;
  int64_t samples = 0;

  explicit Means(std::vector<std::string> n) : names(std::move(n)), sums(names.size(), 0.0) {}
  void add(const std::vector<double> &batch, int64_t count) {
    for (size_t i = 0; i < sums.size(); ++i)
      sums[i] += batch[i] * double(count);
    samples += count;
  }
  std::vector<std::pair<std::string, double>> values(const std::string &prefix = "") const {
    std::vector<std::pair<std::string, double>> v;
    for (size_t i = 0; i < names.size(); ++i)
      v.push_back({prefix + names[i], samples ? sums[i] / double(samples) : 0.0});
    return v;
  }
};

Logs toLogs(const std::vector<std::pair<std::string, double>> &values) {
  Logs l;
  for (const auto &[k, v] : values)
    l[k] = v;
  return l;
}

} // namespace

std::string formatLogValue(double v) {
  if (std::isnan(v))
    return "nan";
  if (std::isinf(v))
    return v > 0 ? "inf" : "-inf";
  return std::fabs(v) > 1e-3 ? printfString("%.4f", v) : printfString("%.4e", v);
}

// --- Dataset --------------------------------------------------------------------------------

int64_t Dataset::size() const {
  int64_t n = -1;
  auto check = [&](const Tensor &t, const char *what, size_t i) {
    if (t.shape().empty())
      throw Error(std::string("dataset ") + what + " " + std::to_string(i) +
                  " has no sample dimension");
    if (n < 0)
      n = t.shape()[0];
    else if (t.shape()[0] != n)
      throw Error(std::string("dataset ") + what + " " + std::to_string(i) + " has " +
                  std::to_string(t.shape()[0]) + " samples, but the first array has " +
                  std::to_string(n));
  };
  for (size_t i = 0; i < inputs.size(); ++i)
    check(inputs[i], "input", i);
  for (size_t i = 0; i < targets.size(); ++i)
    check(targets[i], "target", i);
  return n < 0 ? 0 : n;
}

static void gatherRows(const Tensor &src, const std::vector<int64_t> &order, int64_t begin,
                       int64_t end, Tensor &dst) {
  std::vector<int64_t> shape = src.shape();
  shape[0] = end - begin;
  dst.resize(src.dtype(), shape);
  size_t rowBytes = src.shape()[0] ? src.bytes() / size_t(src.shape()[0]) : 0;
  const char *s = static_cast<const char *>(src.raw());
  char *d = static_cast<char *>(dst.raw());
  if (order.empty()) {
    std::memcpy(d, s + size_t(begin) * rowBytes, size_t(end - begin) * rowBytes);
    return;
  }
  for (int64_t r = begin; r < end; ++r)
    std::memcpy(d + size_t(r - begin) * rowBytes, s + size_t(order[size_t(r)]) * rowBytes,
                rowBytes);
}

void Dataset::gather(const std::vector<int64_t> &order, int64_t begin, int64_t end,
                     Dataset &out) const {
  out.inputs.resize(inputs.size());
  out.targets.resize(targets.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    gatherRows(inputs[i], order, begin, end, out.inputs[i]);
  for (size_t i = 0; i < targets.size(); ++i)
    gatherRows(targets[i], order, begin, end, out.targets[i]);
}

std::pair<Dataset, Dataset> Dataset::splitTail(double fraction) const {
  if (fraction < 0 || fraction >= 1)
    throw Error("validation_split must be in [0, 1), got " + std::to_string(fraction));
  int64_t n = size();
  // Keras: split_at = int(n * (1 - validation_split)).
  int64_t splitAt = int64_t(double(n) * (1.0 - fraction));
  Dataset train, val;
  gather({}, 0, splitAt, train);
  gather({}, splitAt, n, val);
  return {std::move(val), std::move(train)};
}

std::vector<int64_t> shuffledOrder(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i)
    order[size_t(i)] = i;
  uint64_t state = seed;
  auto next = [&state] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = int64_t(next() % uint64_t(i + 1));
    std::swap(order[size_t(i)], order[size_t(j)]);
  }
  return order;
}

// --- loops ----------------------------------------------------------------------------------

// Samples [first, first + count) of `data` (validation_split's parts: views, not copies).
struct Rows {
  const Dataset *data = nullptr;
  int64_t first = 0, count = 0;
};

static Rows allRows(const Dataset &data) { return Rows{&data, 0, data.size()}; }

static Means runEvaluation(Trainable &model, const Rows &rows, int64_t batchSize,
                           Progress *progress) {
  Means means(model.logNames());
  int64_t n = rows.count;
  Dataset batch;
  std::vector<double> logs(means.names.size());
  int64_t steps = (n + batchSize - 1) / batchSize;
  for (int64_t step = 0; step < steps; ++step) {
    int64_t begin = step * batchSize, end = std::min(n, begin + batchSize);
    rows.data->gather({}, rows.first + begin, rows.first + end, batch);
    model.testStep(batch.inputs.data(), batch.targets.data(), logs.data());
    means.add(logs, end - begin);
    if (progress)
      progress->update(step + 1, means.values());
  }
  return means;
}

History fit(Trainable &model, const Dataset &data, const FitOptions &o) {
  if (o.batchSize <= 0)
    throw Error("fit: batch_size must be positive, got " + std::to_string(o.batchSize));
  if (o.epochs < o.initialEpoch)
    throw Error("fit: epochs (" + std::to_string(o.epochs) + ") is smaller than initial_epoch (" +
                std::to_string(o.initialEpoch) + ")");
  std::ostream &out = o.out ? *o.out : std::cout;
  bool live = o.liveProgress >= 0 ? o.liveProgress == 1 : stdoutIsTerminal(out);

  // validation_split: the last fraction of the samples, taken before shuffling (Keras's
  // split_at = int(n * (1 - validation_split))); both parts are ranges of `data`.
  Rows train = allRows(data), val;
  bool validate = o.validationData != nullptr;
  if (validate) {
    val = allRows(*o.validationData);
  } else if (o.validationSplit != 0) {
    if (o.validationSplit < 0 || o.validationSplit >= 1)
      throw Error("validation_split must be in [0, 1), got " +
                  std::to_string(o.validationSplit));
    int64_t splitAt = int64_t(double(train.count) * (1.0 - o.validationSplit));
    val = Rows{&data, splitAt, train.count - splitAt};
    train.count = splitAt;
    validate = true;
  }
  int64_t n = train.count;
  if (n == 0)
    throw Error("fit: no training samples");

  History history;
  for (auto *cb : o.callbacks) {
    cb->model = &model;
    cb->stopTraining = false;
    cb->onTrainBegin();
  }
  int64_t steps = (n + o.batchSize - 1) / o.batchSize;
  Dataset batch;
  std::vector<std::string> names = model.logNames();
  std::vector<double> logs(names.size());
  double lastFinite = NAN;
  for (int epoch = o.initialEpoch; epoch < o.epochs; ++epoch) {
    for (auto *cb : o.callbacks)
      cb->onEpochBegin(epoch);
    if (o.verbose && o.epochs > 1)
      out << "Epoch " << epoch + 1 << "/" << o.epochs << "\n" << std::flush;
    std::vector<int64_t> order;
    if (o.shuffle)
      order = shuffledOrder(n, o.shuffleSeed + uint64_t(epoch) * 0x100000001b3ULL);
    Progress progress(out, steps, o.verbose, live);
    Means means(names);
    bool stop = false;
    for (int64_t step = 0; step < steps && !stop; ++step) {
      int64_t begin = step * o.batchSize, end = std::min(n, begin + o.batchSize);
      train.data->gather(order, begin, end, batch); // order indexes the prefix [0, n)
      model.trainStep(batch.inputs.data(), batch.targets.data(), logs.data());
      if (!std::isfinite(logs[0])) {
        Logs batchLogs;
        for (size_t i = 0; i < names.size(); ++i)
          batchLogs[names[i]] = logs[i];
        bool handled = false;
        for (auto *cb : o.callbacks) {
          cb->onTrainBatchEnd(step, batchLogs);
          handled |= cb->stopTraining;
        }
        if (handled) {
          stop = true;
          break;
        }
        out << std::flush;
        throw Error("training diverged at epoch " + std::to_string(epoch + 1) + ", step " +
                    std::to_string(step + 1) + ": the loss is " + formatLogValue(logs[0]) +
                    (std::isnan(lastFinite) ? std::string(" (no finite loss before)")
                                            : "; the last finite batch loss was " +
                                                  formatLogValue(lastFinite)) +
                    ". Lower the learning rate or check the data.");
      }
      lastFinite = logs[0];
      means.add(logs, end - begin);
      progress.update(step + 1, means.values());
      if (!o.callbacks.empty()) {
        Logs batchLogs = toLogs(means.values());
        for (auto *cb : o.callbacks) {
          cb->onTrainBatchEnd(step, batchLogs);
          stop |= cb->stopTraining;
        }
      }
    }
    auto values = means.values();
    if (validate) {
      Means v = runEvaluation(model, val, o.batchSize, nullptr);
      auto vv = v.values("val_");
      values.insert(values.end(), vv.begin(), vv.end());
    }
    progress.finish(steps, values);
    Logs epochLogs = toLogs(values);
    if (history.names.empty())
      for (const auto &[k, v] : values)
        history.names.push_back(k);
    for (const auto &[k, v] : values)
      history.values[k].push_back(v);
    history.epochs.push_back(epoch);
    model.setEpoch(epoch + 1);
    for (auto *cb : o.callbacks) {
      cb->onEpochEnd(epoch, epochLogs);
      stop |= cb->stopTraining;
    }
    if (stop)
      break;
  }
  for (auto *cb : o.callbacks)
    cb->onTrainEnd();
  return history;
}

Logs evaluate(Trainable &model, const Dataset &data, int64_t batchSize, int verbose,
              std::ostream *outStream) {
  if (batchSize <= 0)
    throw Error("evaluate: batch_size must be positive");
  std::ostream &out = outStream ? *outStream : std::cout;
  int64_t n = data.size();
  int64_t steps = (n + batchSize - 1) / batchSize;
  Progress progress(out, steps, verbose, stdoutIsTerminal(out));
  Means means = runEvaluation(model, allRows(data), batchSize, &progress);
  progress.finish(steps, means.values());
  return toLogs(means.values());
}

std::vector<Tensor> predict(Trainable &model, const std::vector<Tensor> &inputs, int64_t batchSize) {
  Dataset data;
  data.inputs = inputs;
  int64_t n = data.size();
  std::vector<Tensor> results(size_t(model.numOutputs()));
  Dataset batch;
  std::vector<Tensor> outs(results.size());
  for (int64_t begin = 0; begin < n; begin += batchSize) {
    int64_t end = std::min(n, begin + batchSize);
    data.gather({}, begin, end, batch);
    model.predictBatch(batch.inputs.data(), outs.data());
    for (size_t i = 0; i < outs.size(); ++i) {
      if (begin == 0) {
        std::vector<int64_t> shape = outs[i].shape();
        shape[0] = n;
        results[i].resize(outs[i].dtype(), shape);
      }
      size_t rowBytes = outs[i].bytes() / size_t(end - begin);
      std::memcpy(static_cast<char *>(results[i].raw()) + size_t(begin) * rowBytes, outs[i].raw(),
                  outs[i].bytes());
    }
  }
  return results;
}

// --- callbacks and history ------------------------------------------------------------------

EarlyStopping::EarlyStopping(std::string monitor, int patience, double minDelta)
    : monitor_(std::move(monitor)), patience_(patience), minDelta_(std::fabs(minDelta)),
      maximize_(wantsMaximum(monitor_)) {}

void EarlyStopping::onTrainBegin() {
  wait_ = 0;
  seen_ = false;
  stoppedEpoch_ = -1;
}

void EarlyStopping::onEpochEnd(int epoch, const Logs &logs) {
  auto it = logs.find(monitor_);
  if (it == logs.end())
    throw Error("EarlyStopping: the logs have no '" + monitor_ + "'");
  double v = it->second;
  bool improved = !seen_ || (maximize_ ? v - minDelta_ > best_ : v + minDelta_ < best_);
  if (improved) {
    best_ = v;
    seen_ = true;
    wait_ = 0;
    return;
  }
  if (++wait_ >= patience_) {
    stoppedEpoch_ = epoch;
    stopTraining = true;
  }
}

ModelCheckpoint::ModelCheckpoint(std::string path, std::string monitor, bool saveBestOnly)
    : path_(std::move(path)), monitor_(std::move(monitor)), saveBestOnly_(saveBestOnly),
      maximize_(wantsMaximum(monitor_)) {}

void ModelCheckpoint::onEpochEnd(int epoch, const Logs &logs) {
  if (saveBestOnly_) {
    auto it = logs.find(monitor_);
    if (it == logs.end())
      throw Error("ModelCheckpoint: the logs have no '" + monitor_ + "'");
    if (seen_ && !(maximize_ ? it->second > best_ : it->second < best_))
      return;
    seen_ = true;
    best_ = it->second;
  }
  std::string path = path_;
  auto at = path.find("{epoch}");
  if (at != std::string::npos) {
    char num[16];
    std::snprintf(num, sizeof num, "%02d", epoch + 1);
    path.replace(at, 7, num);
  }
  model->save(path);
}

CSVLogger::CSVLogger(std::string path) : path_(std::move(path)) {}

void CSVLogger::onEpochEnd(int epoch, const Logs &logs) {
  if (columns_.empty()) {
    text_ = "epoch";
    for (const auto &[k, v] : logs) {
      columns_.push_back(k);
      text_ += "," + k;
    }
    text_ += "\n";
  }
  text_ += std::to_string(epoch);
  for (const auto &c : columns_) {
    auto it = logs.find(c);
    text_ += ",";
    if (it != logs.end())
      text_ += printfString("%.17g", it->second);
  }
  text_ += "\n";
  writeAtomically(path_, text_);
}

void TerminateOnNaN::onTrainBatchEnd(int64_t, const Logs &logs) {
  auto it = logs.find("loss");
  if (it != logs.end() && !std::isfinite(it->second))
    stopTraining = true;
}

void History::writeCsv(const std::string &path) const {
  std::string text = "epoch";
  for (const auto &n : names) {
    text += ',';
    text += n;
  }
  text += "\n";
  for (size_t e = 0; e < epochs.size(); ++e) {
    text += std::to_string(epochs[e]);
    for (const auto &n : names) {
      text += ',';
      text += printfString("%.17g", values.at(n)[e]);
    }
    text += "\n";
  }
  writeAtomically(path, text);
}

void History::writeJson(const std::string &path) const {
  std::string text = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    text += i ? ", \"" : "\"";
    text += names[i];
    text += "\": [";
    const auto &v = values.at(names[i]);
    for (size_t e = 0; e < v.size(); ++e) {
      text += e ? ", " : "";
      text += std::isfinite(v[e]) ? printfString("%.17g", v[e]) : std::string("null");
    }
    text += "]";
  }
  text += "}\n";
  writeAtomically(path, text);
}

} // namespace fgc::rt
