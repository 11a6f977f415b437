#!/usr/bin/python3
"""PyTorch references for custom layers' primitive tensor operations (fgc::keras::ops).

Each case is one tiny custom layer of tests/custom/PrimitiveLayers.h, written out here in
PyTorch: its inputs and weights are seeded random values (weights are set into the compiled
model, so fgc's initializers play no part), and the script computes in float64 on the float32
values the output, the mean squared error against a seeded target, and by autograd the loss's
gradient for every weight and every float input. It writes tests/fixtures/custom/primitives/
<case>/:
    input_<i>.npy      the layer's inputs in order: float32, or int32 indices
    weight/<name>.npy  float32 weights, in add_weight order (meta.json "weights")
    output.npy         float32 output
    target.npy         float32 target of the MSE loss
    grad/<name>.npy    dLoss/dweight
    dinput_<i>.npy     dLoss/dinput for each float input
    meta.json          weights in order, input dtypes, loss
The batch axis is first everywhere (batch 3); gradients are of the mean over all elements.

Run: /usr/bin/python3 tests/reference/custom_primitives.py (rewrites the folder).
"""
import json
import os
import shutil

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "custom", "primitives")
B = 3


def uniform(rng, shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


# name: (inputs, weights, fn(inputs, weights) -> output). Inputs are ("f", shape) floats or
# ("i", shape, n) int32 indices in [0, n); weights (shape, lo, hi).
CASES = {
    # x (B, 3, 4) @ w (4, 5): a rank-3 x, rows are its leading axes.
    "matmul": ([("f", (B, 3, 4))], {"w": ((4, 5), -1, 1)},
               lambda x, w: x[0] @ w["w"]),
    # A bias over rows: the weight broadcasts over the batch and the 3 rows.
    "add": ([("f", (B, 3, 4))], {"b": ((4,), -1, 1)},
            lambda x, w: x[0] + w["b"]),
    # The weight as the first operand, broadcast over the batch.
    "subtract": ([("f", (B, 3, 4))], {"w": ((3, 4), -1, 1)},
                 lambda x, w: w["w"] - x[0]),
    # A scalar weight, and x read twice (its gradients add up).
    "multiply": ([("f", (B, 3, 4))], {"s": ((1,), -1, 1)},
                 lambda x, w: (x[0] * w["s"]) * x[0]),
    # Division by a weight kept away from zero (in [1, 2)).
    "divide": ([("f", (B, 3, 4))], {"w": ((3, 4), 1, 2)},
               lambda x, w: x[0] / w["w"]),
    "reduce_sum": ([("f", (B, 3, 4))], {"w": ((3, 4), -1, 1)},
                   lambda x, w: (x[0] * w["w"]).sum(dim=1)),
    "reduce_mean": ([("f", (B, 3, 4))], {"w": ((3, 4), -1, 1)},
                    lambda x, w: (x[0] * w["w"]).mean(dim=-1, keepdim=True)),
    "reduce_max": ([("f", (B, 3, 4))], {"w": ((3, 4), -1, 1)},
                   lambda x, w: (x[0] * w["w"]).amax(dim=2)),
    "slice": ([("f", (B, 3, 4))], {"w": ((3, 4), -1, 1)},
              lambda x, w: (x[0] * w["w"])[:, :, 1:3]),
    # take(v, 1, -1): the last row, axis dropped.
    "take": ([("f", (B, 3, 4))], {"w": ((3, 4), -1, 1)},
             lambda x, w: (x[0] * w["w"])[:, -1, :]),
    "stack": ([("f", (B, 3, 4))], {"w": ((3, 4), -1, 1)},
              lambda x, w: torch.stack([x[0], x[0] * w["w"]], dim=2)),
    "concat": ([("f", (B, 3, 4))], {"w": ((3, 4), -1, 1)},
               lambda x, w: torch.cat([x[0], x[0] * w["w"]], dim=-1)),
    # Every sample reshaped to (2, -1) = (2, 6).
    "reshape": ([("f", (B, 3, 4))], {"w": ((3, 4), -1, 1)},
                lambda x, w: (x[0] * w["w"]).reshape(B, 2, 6)),
    # perm (0, 2, 1): the batch stays first.
    "transpose": ([("f", (B, 3, 4))], {"w": ((3, 4), -1, 1)},
                  lambda x, w: (x[0] * w["w"]).permute(0, 2, 1)),
    # A weight (5, 4) transposed (no batch axis: the default, reversed perm) then multiplied.
    "transpose_weight": ([("f", (B, 3, 4))], {"w": ((5, 4), -1, 1)},
                         lambda x, w: x[0] @ w["w"].t()),
    # Embedding-style: rows of a (6, 4) table by int indices (B, 5), repeats included.
    "gather_rows": ([("i", (B, 5), 6)], {"table": ((6, 4), -1, 1)},
                    lambda x, w: w["table"][x[0].long()]),
    # Per sample along axis 1 of an activation (batch_dims 1): v[b, idx[b, j], :].
    "gather_axis1": ([("f", (B, 3, 4)), ("i", (B, 5), 3)], {"w": ((3, 4), -1, 1)},
                     lambda x, w: torch.stack([(x[0] * w["w"])[b][x[1][b].long()]
                                               for b in range(B)])),
    # Per sample along the last axis (outer 3): v[b, :, idx[b, j]].
    "gather_axis2": ([("f", (B, 3, 4)), ("i", (B, 2), 4)], {"w": ((3, 4), -1, 1)},
                     lambda x, w: torch.stack([(x[0] * w["w"])[b][:, x[1][b].long()]
                                               for b in range(B)])),
}


def write_case(name, spec, seed):
    inputs, weights, fn = spec
    rng = np.random.default_rng(seed)
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "weight"))
    os.makedirs(os.path.join(d, "grad"))
    xs, xt = [], []
    for i, inp in enumerate(inputs):
        if inp[0] == "f":
            x = uniform(rng, inp[1])
            xt.append(torch.tensor(x.astype(np.float64), requires_grad=True))
        else:
            x = rng.integers(0, inp[2], size=inp[1]).astype(np.int32)
            xt.append(torch.tensor(x))
        xs.append(x)
        np.save(os.path.join(d, f"input_{i}.npy"), x)
    ws = {}
    for k, (shape, lo, hi) in weights.items():
        v = uniform(rng, shape, lo, hi)
        np.save(os.path.join(d, "weight", k + ".npy"), v)
        ws[k] = torch.tensor(v.astype(np.float64), requires_grad=True)
    out = fn(xt, ws)
    target = uniform(rng, tuple(out.shape))
    loss = ((out - torch.tensor(target.astype(np.float64))) ** 2).mean()
    loss.backward()
    np.save(os.path.join(d, "output.npy"), out.detach().numpy().astype(np.float32))
    np.save(os.path.join(d, "target.npy"), target)
    for k, v in ws.items():
        np.save(os.path.join(d, "grad", k + ".npy"), v.grad.numpy().astype(np.float32))
    for i, t in enumerate(xt):
        if t.dtype == torch.float64:
            np.save(os.path.join(d, f"dinput_{i}.npy"), t.grad.numpy().astype(np.float32))
    meta = {"case": name, "weights": list(weights), "inputs": [i[0] for i in inputs],
            "loss": float(loss), "output_shape": list(out.shape)}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    for seed, (name, spec) in enumerate(sorted(CASES.items())):
        write_case(name, spec, 100 + seed)


if __name__ == "__main__":
    main()
