#!/usr/bin/python3
"""PyTorch references for the custom-layer samples (samples/custom_dense, samples/custom_rnn).

fgc traces a custom layer's build() and call() into primitive ops and compiles them. This
script computes what the seed's Python classes compute, written out by hand in PyTorch from the
same weights (`fgc --plugin <lib> export-weights`, fgc's seeded initialization), in float64 on
the float32 inputs and weights, and writes tests/fixtures/custom/<case>/:
    input.npy                 float32 input (seeded uniform in [-1, 1))
    output_<i>.npy            float32 model outputs, in order
    target.npy                float32 target of the (single) output
    grad/<weight path>.npy    dLoss/dw for one step of SGD on the mean squared error
    after/<weight path>.npy   w after that step (lr from the model file: 0.1)
                              (target, grad and after: models with one output only)
    meta.json                 model, batch, loss, weight paths, digest
The weight paths are fgc's: the custom layer's name, then the path inside its traced body
("custom_dense/kernel/kernel" is the weight add_weight("kernel") created).

CustomDense(10): y = x @ kernel + bias.
CustomRNN(32): state0 = 0; for t in 0..9: y_t = tanh(x_t @ K1 + b1) + tanh(state @ K2 + b2);
state = y_t; features = stack(y_t, axis=1) (batch, 10, 32); output = Dense(1)(mean over t of
features). The Dense layers are the body's `dense` (projection_1), `dense_1` (projection_2)
and the classifier's `model/dense_2`.
ScanRNN(32) (samples/custom_rnn/scan.pbtxt: the same cell with ops::scan, any number of steps):
weights kernel, bias, recurrent_kernel, recurrent_bias of the layer itself; y_t = tanh(x_t @
kernel + bias) + tanh(state @ recurrent_kernel + recurrent_bias), state = y_t from zeros;
output = Dense(1)(mean over t of the y_t), the classifier's `model/dense`. Two sequence lengths
(scan_rnn_t3, scan_rnn_t7, batch 2, with an SGD step) and the features model (scan_rnn_features,
T = 5).
SwishDense(3, beta=1.5) (samples/custom_opaque, an opaque op with hand-written C kernels):
z = x @ kernel + bias; y = z * sigmoid(beta * z).

Run: /usr/bin/python3 tests/reference/custom_layers.py BUILD_DIR
(BUILD_DIR holds tools/fgc/fgc and samples/libfgc_sample_layers.so.)
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "custom")


def export_weights(build, model):
    d = tempfile.mkdtemp()
    subprocess.run([os.path.join(build, "tools/fgc/fgc"), "--plugin",
                    os.path.join(build, "samples/libfgc_sample_layers.so"), "export-weights",
                    os.path.join(ROOT, model), "-o", d], check=True, stdout=subprocess.DEVNULL)
    weights = {}
    for dirpath, _, files in os.walk(d):
        for f in files:
            path = os.path.relpath(os.path.join(dirpath, f), d)[:-4]
            weights[path] = np.load(os.path.join(dirpath, f))
    shutil.rmtree(d)
    return weights


def custom_dense(w, x):
    return x @ w["custom_dense/kernel/kernel"] + w["custom_dense/bias/bias"]


def custom_rnn(w, x):
    p = sorted(w)[0].split("/")[0] + "/"  # the custom layer's name
    state = torch.zeros(x.shape[0], 32, dtype=torch.float64)
    outs = []
    for t in range(x.shape[1]):
        h = torch.tanh(x[:, t, :] @ w[p + "dense/kernel"] + w[p + "dense/bias"])
        y = h + torch.tanh(state @ w[p + "dense_1/kernel"] + w[p + "dense_1/bias"])
        state = y
        outs.append(y)
    features = torch.stack(outs, dim=1)
    pooled = features.mean(dim=1)
    return features, pooled @ w[p + "model/dense_2/kernel"] + w[p + "model/dense_2/bias"]


def scan_rnn(w, x):
    p = sorted(w)[0].split("/")[0] + "/"  # the custom layer's name
    state = torch.zeros(x.shape[0], 32, dtype=torch.float64)
    outs = []
    for t in range(x.shape[1]):
        y = (torch.tanh(x[:, t, :] @ w[p + "kernel/kernel"] + w[p + "bias/bias"]) +
             torch.tanh(state @ w[p + "recurrent_kernel/recurrent_kernel"] +
                        w[p + "recurrent_bias/recurrent_bias"]))
        state = y
        outs.append(y)
    features = torch.stack(outs, dim=1)
    pooled = features.mean(dim=1)
    return features, pooled @ w[p + "model/dense/kernel"] + w[p + "model/dense/bias"]


def swish_dense(w, x):
    z = x @ w["swish_dense/kernel/kernel"] + w["swish_dense/bias/bias"]
    return z * torch.sigmoid(1.5 * z)


def write_case(name, model, weights, fn, x, lr, output_index=None):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    w = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in weights.items()}
    xt = torch.tensor(x.astype(np.float64))
    outs = fn(w, xt)
    if not isinstance(outs, tuple):
        outs = (outs,)
    np.save(os.path.join(d, "input.npy"), x)
    for i, o in enumerate(outs):
        np.save(os.path.join(d, f"output_{i}.npy"), o.detach().numpy().astype(np.float32))
    meta = {"model": model, "batch": int(x.shape[0]), "weights": sorted(weights),
            "weights_sha256": hashlib.sha256(
                b"".join(weights[k].tobytes() for k in sorted(weights))).hexdigest(),
            "outputs": len(outs)}
    if output_index is not None:
        meta.update(train_step(d, w, outs[output_index], lr))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


def train_step(d, w, out, lr):
    """One SGD step on the mean squared error of `out` against a seeded target."""
    rng = np.random.default_rng(7)
    target = rng.uniform(-1, 1, size=out.shape).astype(np.float32)
    np.save(os.path.join(d, "target.npy"), target)
    loss = ((out - torch.tensor(target.astype(np.float64))) ** 2).mean()
    loss.backward()
    for k, v in w.items():
        for sub, arr in (("grad", v.grad.numpy()), ("after", (v - lr * v.grad).detach().numpy())):
            path = os.path.join(d, sub, k + ".npy")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.save(path, arr.astype(np.float32))
    return {"loss": float(loss), "optimizer": {"class": "SGD", "learning_rate": lr}}


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    rng = np.random.default_rng(2024)
    dense_w = export_weights(build, "samples/custom_dense/model.pbtxt")
    write_case("custom_dense", "samples/custom_dense/model.pbtxt", dense_w, custom_dense,
               rng.uniform(-1, 1, size=(3, 4)).astype(np.float32), 0.1, 0)
    rnn_w = export_weights(build, "samples/custom_rnn/model.pbtxt")
    write_case("custom_rnn", "samples/custom_rnn/model.pbtxt", rnn_w,
               lambda w, x: custom_rnn(w, x)[1],
               rng.uniform(-1, 1, size=(1, 10, 5)).astype(np.float32), 0.1, 0)
    feat_w = export_weights(build, "samples/custom_rnn/features.pbtxt")
    write_case("custom_rnn_features", "samples/custom_rnn/features.pbtxt", feat_w, custom_rnn,
               rng.uniform(-1, 1, size=(1, 10, 5)).astype(np.float32), 0.1)
    scan_w = export_weights(build, "samples/custom_rnn/scan.pbtxt")
    for steps in (3, 7):
        write_case(f"scan_rnn_t{steps}", "samples/custom_rnn/scan.pbtxt", scan_w,
                   lambda w, x: scan_rnn(w, x)[1],
                   rng.uniform(-1, 1, size=(2, steps, 5)).astype(np.float32), 0.1, 0)
    scan_feat_w = export_weights(build, "samples/custom_rnn/scan_features.pbtxt")
    write_case("scan_rnn_features", "samples/custom_rnn/scan_features.pbtxt", scan_feat_w,
               scan_rnn, rng.uniform(-1, 1, size=(2, 5, 5)).astype(np.float32), 0.1)
    swish_w = export_weights(build, "samples/custom_opaque/model.pbtxt")
    write_case("custom_opaque", "samples/custom_opaque/model.pbtxt", swish_w, swish_dense,
               np.random.default_rng(2025).uniform(-2, 2, size=(5, 4)).astype(np.float32), 0.1,
               0)


if __name__ == "__main__":
    main()
