// Greedy arena placement (see fgc/runtime/arena.h).
#include "fgc/runtime/arena.h"

#include <algorithm>
#include <numeric>

namespace {

struct Placed {
  size_t offset, size;
};

// Places tensors in `order`: each at the lowest offset where it fits between the tensors already
// placed whose live ranges meet its own. Returns the arena size.
size_t placeInOrder(const std::vector<int> &order, const size_t *sizes, const int32_t (*live)[2],
                    size_t *offsets) {
  size_t total = 0;
  std::vector<int> placed;
  std::vector<Placed> conflicts;
  for (int i : order) {
    conflicts.clear();
    for (int j : placed)
      if (live[j][0] <= live[i][1] && live[i][0] <= live[j][1])
        conflicts.push_back({offsets[j], sizes[j]});
    std::sort(conflicts.begin(), conflicts.end(),
              [](const Placed &a, const Placed &b) { return a.offset < b.offset; });
    size_t at = 0;
    for (const Placed &c : conflicts) {
      if (c.offset >= at + sizes[i])
        break; // the gap below c fits
      at = std::max(at, c.offset + c.size);
    }
    offsets[i] = at;
    total = std::max(total, at + sizes[i]);
    placed.push_back(i);
  }
  return total;
}

} // namespace

extern "C" size_t fgc_plan_arena(const size_t *sizes, const int32_t (*live)[2], int n,
                                 size_t *offsets) {
  std::vector<int> ids;
  for (int i = 0; i < n; ++i) {
    offsets[i] = 0;
    if (sizes[i] > 0)
      ids.push_back(i);
  }
  auto length = [&](int i) { return live[i][1] - live[i][0]; };
  // Candidate orders; ties broken by index so the result is deterministic.
  std::vector<std::vector<int>> orders(3, ids);
  std::stable_sort(orders[0].begin(), orders[0].end(),
                   [&](int a, int b) { return sizes[a] > sizes[b]; });
  std::stable_sort(orders[1].begin(), orders[1].end(), [&](int a, int b) {
    return length(a) != length(b) ? length(a) > length(b) : sizes[a] > sizes[b];
  });
  std::stable_sort(orders[2].begin(), orders[2].end(), [&](int a, int b) {
    return live[a][0] != live[b][0] ? live[a][0] < live[b][0] : sizes[a] > sizes[b];
  });
  size_t best = 0;
  std::vector<size_t> trial(size_t(n), 0);
  for (size_t k = 0; k < orders.size(); ++k) {
    size_t total = placeInOrder(orders[k], sizes, live, trial.data());
    if (k == 0 || total < best) {
      best = total;
      std::copy(trial.begin(), trial.end(), offsets);
    }
  }
  return best;
}

namespace fgc::rt {

const size_t *ArenaPlan::place(const size_t *sizes, const int32_t (*live)[2], int n) {
  if (planned_ && sizes_.size() == size_t(n) && std::equal(sizes_.begin(), sizes_.end(), sizes))
    return offsets_.data();
  sizes_.assign(sizes, sizes + n);
  first_.resize(size_t(n));
  last_.resize(size_t(n));
  for (int i = 0; i < n; ++i) {
    first_[size_t(i)] = live[i][0];
    last_[size_t(i)] = live[i][1];
  }
  offsets_.assign(size_t(n), 0);
  bytes_ = fgc_plan_arena(sizes, live, n, offsets_.data());
  planned_ = true;
  return offsets_.data();
}

std::size_t ArenaPlan::lowerBound() const {
  int32_t end = 0;
  for (int32_t l : last_)
    end = std::max(end, l + 1);
  std::vector<long long> delta(size_t(end) + 1, 0);
  for (size_t i = 0; i < sizes_.size(); ++i) {
    delta[size_t(first_[i])] += static_cast<long long>(sizes_[i]);
    delta[size_t(last_[i]) + 1] -= static_cast<long long>(sizes_[i]);
  }
  long long live = 0, most = 0;
  for (long long d : delta)
    most = std::max(most, live += d);
  return static_cast<std::size_t>(most);
}

std::size_t ArenaPlan::naiveBytes() const {
  return std::accumulate(sizes_.begin(), sizes_.end(), std::size_t(0));
}

std::string ArenaPlan::validate() const {
  for (size_t i = 0; i < sizes_.size(); ++i) {
    if (sizes_[i] == 0)
      continue;
    if (offsets_[i] + sizes_[i] > bytes_)
      return "tensor " + std::to_string(i) + " ends past the arena";
    for (size_t j = i + 1; j < sizes_.size(); ++j) {
      if (sizes_[j] == 0)
        continue;
      bool together = first_[i] <= last_[j] && first_[j] <= last_[i];
      bool shared = offsets_[i] < offsets_[j] + sizes_[j] && offsets_[j] < offsets_[i] + sizes_[i];
      if (together && shared)
        return "tensors " + std::to_string(i) + " and " + std::to_string(j) +
               " are live together (calls [" + std::to_string(first_[i]) + ", " +
               std::to_string(last_[i]) + "] and [" + std::to_string(first_[j]) + ", " +
               std::to_string(last_[j]) + "]) and share bytes";
    }
  }
  return "";
}

} // namespace fgc::rt
