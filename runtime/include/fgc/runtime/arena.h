// Arena placement: offsets for tensors with known live ranges, so that tensors never live at the
// same time may share memory.
//
// The compiler decides *when* each tensor of a generated function is live (its first and last
// kernel call, compiler/memory/MemoryPlan.h); sizes depend on the batch size and sequence
// lengths, so *where* each tensor goes is decided here, at run time, once per set of sizes (the
// generated code keeps an ArenaPlan per function and re-plans only when a size changes). The
// placement is greedy: tensors are placed one by one at the lowest offset where they overlap no
// placed tensor whose live range meets theirs, in a few orders (largest first, longest-lived
// first, earliest first); the smallest arena wins. Deterministic: the same sizes give the same
// offsets.
#ifndef FGC_RUNTIME_ARENA_H
#define FGC_RUNTIME_ARENA_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" {
// C entry point (for the JIT): fills offsets[0..n) and returns the arena's size in bytes.
// sizes are bytes (0: the tensor needs no memory), live[i] = {first call, last call}.
size_t fgc_plan_arena(const size_t *sizes, const int32_t (*live)[2], int n, size_t *offsets);
}

namespace fgc::rt {

class ArenaPlan {
public:
  // Plans the arena for these sizes unless the last plan was for the same ones; returns the
  // offsets (bytes from the arena's start, in the order of `sizes`).
  const size_t *place(const size_t *sizes, const int32_t (*live)[2], int n);

  std::size_t bytes() const { return bytes_; }
  const std::vector<size_t> &offsets() const { return offsets_; }
  const std::vector<size_t> &sizes() const { return sizes_; }
  // The most bytes live at once over the schedule: no placement can use less.
  std::size_t lowerBound() const;
  // The sum of all sizes: the arena without any reuse.
  std::size_t naiveBytes() const;
  // Brute force over every pair: "" when no two tensors that are live at the same time share a
  // byte and every tensor fits in the arena, else a description of the first conflict.
  std::string validate() const;

private:
  std::vector<size_t> sizes_, offsets_;
  std::vector<int32_t> first_, last_;
  std::size_t bytes_ = 0;
  bool planned_ = false;
};

} // namespace fgc::rt

#endif
