// Memory planning: which arena tensors of a generated function are live when.
//
// The schedule is the function's kernel calls in order (predict: KernelProgram::steps; trainStep:
// trainSteps), numbered from 0. Every arena tensor (activations, index staging, saved forward
// values, gradients) and every kernel's scratch becomes a Slot live from the first call that
// touches it to the last; views count as their root buffer. Backends turn slots into byte sizes
// for the actual batch size and sequence lengths and place them with the runtime's planner
// (fgc/runtime/arena.h), so the plan itself never depends on sizes: the C++ emitter prints the
// ranges as a table, and a JIT passes the same table to fgc_plan_arena.
//
// Training needs no special case: a forward tensor that the backward reads stays live until that
// read, and one it does not read dies after its last forward use.
//
// In place: an elementwise kernel's output takes the slot of an input of its size that dies at
// that call (ReLU after an Add, a fused elementwise loop), so the two need memory once.
#pragma once

#include "compiler/codegen/KernelProgram.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fgc {

struct ArenaSlot {
  enum class Kind { Buffer, Scratch };
  Kind kind = Kind::Buffer;
  int buffer = -1;          // Buffer: the program buffer
  int step = -1, call = -1; // Scratch: the call steps[step].calls[call]
  int first = 0, last = 0;  // live range, in call indices (inclusive)
  bool used = true;         // false: no call touches the buffer (it needs no memory)
};

struct MemoryPlan {
  bool training = false;
  bool reuse = true; // false: every slot lives over the whole function (no sharing; -O0)
  int numCalls = 0;
  std::vector<ArenaSlot> slots;
  // The global index of steps[i].calls[0] is callIndex[i].
  std::vector<int> callIndex;
  // In-place outputs: buffer -> the buffer whose slot it shares. An elementwise kernel
  // (KernelCall::inPlaceOutput) writes its output over an input of the same size whose last use
  // is that call; the two tensors then live in one slot, live over both ranges.
  std::map<int, int> inPlace;

  // The slot of buffer `id` (in-place outputs: the slot they share), or -1.
  int slotOf(int buffer) const;
};

// The arena tensors of `program`'s predict (training = false) or trainStep function and their
// live ranges. With reuse = false every range covers the whole function.
MemoryPlan planMemory(const KernelProgram &program, bool training, bool reuse = true);

// Concrete sizes, for reports and tests: symbol values by symbol index (symbols[0]: the batch
// size). Slots whose size only a runtime function knows (kernel scratch, LSTM workspaces) count
// as 0 bytes and are listed in `unknown`.
struct ArenaFigures {
  size_t arenaBytes = 0, lowerBound = 0, naiveBytes = 0;
  int unknownSlots = 0;
  // Kernel scratch (not in the figures above), where the compiler can ask the runtime's size function (convolutions and
  // Dense backward; recurrent and attention scratch count as unknown): the most bytes needed
  // by one call, their sum over the schedule, and how many calls need scratch.
  size_t scratchPeak = 0, scratchSum = 0;
  int scratchCalls = 0, scratchUnknown = 0;
  std::vector<size_t> sizes, offsets;
  std::string validation; // "" when no two live tensors overlap
};
ArenaFigures evaluateArena(const KernelProgram &program, const MemoryPlan &plan,
                           const std::vector<int64_t> &symbols);

// The size of a SymSize for concrete symbols.
int64_t evaluateSize(const SymSize &size, const std::vector<int64_t> &symbols);

} // namespace fgc
