// Graph editing helpers shared by the passes (see Pass.h).
#include "compiler/passes/Pass.h"

namespace fgc {

void replaceAllUses(Graph &g, const Value *from, Value *to) {
  for (auto &op : g.ops)
    for (Value *&v : op->inputs)
      if (v == from)
        v = to;
  for (Value *&v : g.outputs)
    if (v == from)
      v = to;
}

} // namespace fgc
