#!/usr/bin/python3
"""Independent training-step references for the sample models, computed with PyTorch autograd.

fgc generates C++ training steps (forward, loss, backward, optimizer update). This script
computes the same steps for the sample models so its tests can compare, case by case, the
loss, every parameter gradient and every parameter after the step(s). It reuses the graph
interpreter of models_inference.py (imported as a module; its Graph takes a weights context,
here one that hands out one float64 leaf tensor per exported weight file, so shared layers
share their parameters), starts from the weights `fgc export-weights` writes (fgc's seeded
initialization), and writes tests/fixtures/training/<case>/:
    input_<input>.npy            float32 model inputs (Embedding indices as float32 integers,
                                 since the model declares float32 inputs)
    target_<output>.npy          targets (int32 class ids for the sparse loss, float32 else)
    grad/<layer path>/<w>.npy    dLoss/dw at the initial weights (float32)
    after/<layer path>/<w>.npy   the parameter after the step(s) (float32)
    skip/<layer path>/<w>.npy    uint8, a bit mask over the stored array's flat elements
                                 (np.packbits, little bit order: element i is bit i % 8 of
                                 byte i / 8), set where |gradient| < 1e-6 * max|gradient| of
                                 the tensor (zeros included) in any step: compare `after`
                                 everywhere else (see "Near-zero gradients")
    meta.json                    model, optimizer and hyper-parameters, steps, batch, losses,
                                 loss values, weights digest, files, tolerance rule
Embedding tables (weights named `embeddings`) are stored by rows: `<w>.rows.npy` (int64 row
ids whose gradient is not all zero) and `<w>.values.npy` (those rows). Every other row has a
gradient of exactly 0 and is unchanged by the step (equal to the exported weights). This keeps
the ticket model's two 10000 x 64 tables (1.28M of its 1.39M parameters) out of the fixtures.
Two-step cases also hold input_*_step2.npy, target_*_step2.npy and grad_step2/ (the gradient
at the weights after step 1). RMSprop cases also hold after_tf2/ (and grad_step2_tf2/), see
below; toy_resnet stores after_tf2/ only (the fixture size budget).

Keras semantics (tf.keras 2.x), all arithmetic in float64 on the float32 data and weights,
results stored as float32:
  * Loss reduction `sum_over_batch_size`: the per-sample losses are averaged over every
    element of the per-sample loss tensor (for MSE on (N, H, W, C) outputs: the mean over C
    gives (N, H, W), then the sum is divided by N*H*W, i.e. the mean over all elements).
  * SparseCategoricalCrossentropy(from_logits=True): -log_softmax(z)[label].
  * CategoricalCrossentropy(from_logits=True): -sum(y * log_softmax(z)) over the last axis.
  * BinaryCrossentropy(from_logits=True): TF's sigmoid_cross_entropy_with_logits,
    max(z, 0) - z*y + log(1 + exp(-|z|)), averaged over the last axis.
  * MeanSquaredError: mean of (y_pred - y_true)^2 over the last axis.
  * Several outputs: total = sum_i loss_weight_i * loss_i (a LossSpec weight of 0 means 1).
    The losses, their outputs and weights and the optimizer are read from the model file's
    `training` block; the SGD case overrides the optimizer (lr 0.01, no momentum).
  * Dropout in training mode is random; the fixtures treat Dropout as the identity (the
    interpreter's inference behaviour), recorded as "dropout": "identity" in meta.json. The
    fgc test must run its step with dropout off.
  * No model here has BatchNormalization or regularizers (the script refuses BN, whose
    training mode would need batch statistics).
  * SGD (momentum 0): w -= lr * g.
  * RMSprop, slots start at 0: ms = rho*ms + (1-rho)*g^2. Two epsilon placements exist and
    both are written:
      after/      epsilon INSIDE the root: mom = momentum*mom + lr*g/sqrt(ms + eps); w -= mom.
                  This is TF's ApplyRMSProp kernel, which tf.keras 2.x runs when momentum > 0,
                  and the Keras >= 2.11 / Keras 3 update for any momentum (fgc runtime:
                  FGC_RMSPROP_KERAS3).
      after_tf2/  epsilon OUTSIDE the root: w -= lr*g/(sqrt(ms) + eps). tf.keras 2.0-2.10's
                  optimizer_v2.RMSprop uses this Python form whenever momentum == 0, which is
                  the case for every sample model (fgc runtime: FGC_RMSPROP_TF2 with
                  momentum 0, the variant fgc's code generator emits).
    The gradients of single-step cases do not depend on the choice; in two-step cases the
    second gradient does (grad_step2/ vs grad_step2_tf2/).
  * Adam (TF form): t = 1, 2, ...; lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t);
    m = beta1*m + (1-beta1)*g; v = beta2*v + (1-beta2)*g^2; w -= lr_t*m/(sqrt(v) + eps),
    with eps added to sqrt(v) unscaled (torch.optim.Adam would scale it).
  * ReLU's gradient at exactly 0 is 0 (TF's ReluGrad tests x > 0; torch agrees). It matters
    for conv_autoencoder, whose decoder has many pre-activations of exactly 0 (zero biases on
    all-zero inputs from dead channels).
  * GlobalMaxPooling / reduce_max with tied maxima share the gradient evenly (TF's _MaxGrad,
    torch.amax); MaxPooling2D gives it to one element (TF: the first in the window; ties
    only arise among ReLU zeros, whose gradient is 0 anyway).
  * Embedding gradients are IndexedSlices in TF; Keras sums duplicate indices and applies the
    sparse update to the touched rows only. For one RMSprop/Adam step from zero slots this
    equals the dense update (untouched rows have g = 0 and move by exactly 0).
  * The optimizer state between the steps of a two-step case is kept in float64 (weights are
    not rounded to float32 between steps).

Near-zero gradients. The first RMSprop (and Adam) step moves an element by about lr*sign(g)
whatever |g| is, so for elements whose gradient is rounding noise the sign, and hence the
updated value, is arbitrary. The test compares gradients first (within 1e-5 of the tensor's
largest gradient), then compares `after` (after_tf2/ for RMSprop) except at the `skip`
indices, and checks every element's update against the optimizer's formula applied to its own
gradient. The SGD case is linear in the gradient and has no skipped elements.

Self-checks before writing: autograd against central finite differences in float64 for
random elements (and the largest-gradient element) of every weight tensor of every case, a
plain-numpy forward/backward of the MLP for mnist_mlp, and a simulation of a float32
implementation (float32 gradients with added noise, float32 optimizer arithmetic) to check
the recommended tolerances.

Regenerate (Debian's python3-torch, python3-numpy, python3-protobuf and protoc):
    /usr/bin/python3 tests/reference/models_training.py --fgc build/tools/fgc/fgc
Options: --only NAME..., --list. Output is deterministic (byte-identical on every run).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models_inference as ref  # noqa: E402  (the shared interpreter and helpers)

REPO = ref.REPO
FIXTURES = os.path.join(REPO, "tests", "fixtures", "training")
DTYPE = ref.DTYPE
NEAR_ZERO = 1e-6  # skip `after` where |g| < NEAR_ZERO * max|g| of the tensor
SIM_NOISE = 1e-7  # gradient noise of the float32 simulation, relative to max|g| of the tensor

# name, model, batch, seeds (one per step; inputs and targets are drawn from each seed),
# optimizer override, input spec extras (as in models_inference.py).
CASES = [
    dict(name="mnist_mlp_rmsprop_1step", model="samples/mnist_mlp/model.pbtxt", batch=8,
         seeds=[11001]),
    dict(name="mnist_mlp_sgd_1step", model="samples/mnist_mlp/model.pbtxt", batch=8,
         seeds=[11001], optimizer=dict(class_name="SGD", learning_rate=0.01, momentum=0.0,
                                       nesterov=False)),
    dict(name="mnist_mlp_rmsprop_2steps", model="samples/mnist_mlp/model.pbtxt", batch=8,
         seeds=[11001, 11002]),
    # toy_resnet stores after_tf2/ (what fgc's code runs) but not after/ (0.9 MB each): both
    # would take the fixtures over the ~8 MB budget.
    dict(name="toy_resnet_rmsprop_1step", model="samples/toy_resnet/model.pbtxt", batch=4,
         seeds=[12001], inside=False),
    dict(name="conv_autoencoder_adam_1step", model="samples/conv_autoencoder/model.pbtxt",
         batch=4, seeds=[13001], autoencoder=True, fd_skip_decoder_bias=True),
    dict(name="ticket_classifier_rmsprop_1step", model="samples/ticket_classifier/model.pbtxt",
         batch=4, seeds=[14001], dims={"title": [10], "body": [20]}, binary=["tags"]),
    # The layers added for Keras import: Conv1D, pooling, Bidirectional GRU / LSTM, Attention,
    # padding, cropping, Permute, LeakyReLU, GRU and LSTM going backwards (SGD, two MSE losses).
    dict(name="keras_layers_sgd_1step", model="tests/models/keras_layers/model.pbtxt", batch=3,
         seeds=[15001]),
    # Activation layers after linear Dense / Conv2D / Conv1D layers, which -O2 fuses into those
    # kernels forward and backward (fuse-activation); one pre-activation is read twice.
    dict(name="separate_activations_adam_1step",
         model="tests/training/models/separate_activations.pbtxt", batch=4, seeds=[16001]),
]

# Keras defaults of the optimizers used here.
OPTIMIZER_DEFAULTS = {
    "SGD": dict(learning_rate=0.01, momentum=0.0, nesterov=False),
    "RMSprop": dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False),
    "Adam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
}


# --------------------------------------------------------------------------------------------
# Parameters as autograd leaves

class ParamStore:
    """One float64 leaf tensor per exported weight file, created on first use."""

    def __init__(self, weight_dir, values=None):
        self.root = weight_dir
        self.values = values  # optional {relative path: float64 array} overriding the files
        self.leaves = {}

    def context(self, wdir):
        store = self

        class Ctx:
            dir = wdir

            def weight(self, name):
                rel = os.path.relpath(os.path.join(wdir, name), store.root)
                if rel not in store.leaves:
                    if store.values is not None:
                        arr = store.values[rel]
                    else:
                        arr = np.load(os.path.join(wdir, name + ".npy"))
                        if arr.dtype != np.float32:
                            raise ValueError("%s: expected float32" % rel)
                    store.leaves[rel] = torch.tensor(arr, dtype=DTYPE, requires_grad=True)
                return store.leaves[rel]
        return Ctx()


def weight_files(weight_dir):
    """Relative paths (without .npy) of every exported weight, sorted."""
    out = []
    for root, _, files in os.walk(weight_dir):
        for f in files:
            if f.endswith(".npy"):
                out.append(os.path.relpath(os.path.join(root, f[:-4]), weight_dir))
    return sorted(out)


def check_supported(model):
    for layer in model.layers:
        if layer.class_name == "BatchNormalization":
            raise ValueError("BatchNormalization training is not modelled by this reference")
        if layer.class_name in ("Functional", "Sequential", "Model"):
            check_supported(layer.model)


# --------------------------------------------------------------------------------------------
# Losses (tf.keras 2.x, reduction sum_over_batch_size)

def config_attr(cfg, key, default):
    if key in cfg.attrs:
        return ref.attr_value(cfg.attrs[key])
    return default


def per_sample_loss(kind, from_logits, y_true, y_pred):
    """The loss reduced over the last axis (Keras's loss function, before the reduction)."""
    if kind in ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"):
        assert from_logits
        logp = torch.log_softmax(y_pred, dim=-1)
        return -logp.gather(-1, y_true.long().unsqueeze(-1)).squeeze(-1)
    if kind in ("CategoricalCrossentropy", "categorical_crossentropy"):
        assert from_logits
        return -(y_true * torch.log_softmax(y_pred, dim=-1)).sum(-1)
    if kind in ("BinaryCrossentropy", "binary_crossentropy"):
        assert from_logits
        x, z = y_pred, y_true
        # sigmoid_cross_entropy_with_logits: max(x, 0) - x z + log(1 + exp(-|x|)), with where()
        # so that the gradient at x == 0 is sigmoid(0) - z.
        pos = x >= 0
        relu = torch.where(pos, x, torch.zeros_like(x))
        neg_abs = torch.where(pos, -x, x)
        return (relu - x * z + torch.log1p(torch.exp(neg_abs))).mean(-1)
    if kind in ("MeanSquaredError", "mse", "mean_squared_error"):
        return ((y_pred - y_true) ** 2).mean(-1)
    raise ValueError("unsupported loss %s" % kind)


def loss_specs(model):
    """[(output name, class, from_logits, weight)] from the model's training block, in order."""
    out_names = [r.layer for r in model.outputs]
    specs = []
    for spec in model.training.losses:
        outputs = [spec.output] if spec.output else out_names
        for name in outputs:
            if name not in out_names:
                raise ValueError("loss for unknown output %s" % name)
            specs.append((name, spec.class_name,
                          bool(config_attr(spec.config, "from_logits", False)),
                          float("%.7g" % spec.weight) if spec.weight != 0 else 1.0))
    if not specs:
        raise ValueError("model %s has no losses" % model.name)
    return specs


def total_loss(specs, outputs, targets):
    """(total, {output: unweighted loss}) for the model outputs {name: tensor}."""
    total = 0
    parts = {}
    for name, kind, logits, weight in specs:
        per = per_sample_loss(kind, logits, targets[name], outputs[name])
        value = per.sum() / per.numel()  # sum_over_batch_size
        parts[name] = value
        total = total + weight * value
    return total, parts


# --------------------------------------------------------------------------------------------
# Optimizers (float64, numpy)

def optimizer_config(model, override):
    if override is not None:
        cfg = dict(override)
        cls = cfg.pop("class_name")
    else:
        opt = model.training.optimizer
        cls = opt.class_name
        cfg = {k: ref.attr_value(v) for k, v in opt.attrs.items()}
    if cls not in OPTIMIZER_DEFAULTS:
        raise ValueError("unsupported optimizer %s" % cls)
    full = dict(OPTIMIZER_DEFAULTS[cls])
    for k, v in cfg.items():
        if k not in full:
            raise ValueError("%s: unsupported option %s" % (cls, k))
        # float32 attrs (e.g. 0.001f) are read back as the decimal Keras wrote.
        full[k] = float("%.7g" % v) if isinstance(v, float) else v
    if cls == "RMSprop" and full["centered"]:
        raise ValueError("centered RMSprop is not modelled")
    if cls == "Adam" and full["amsgrad"]:
        raise ValueError("amsgrad is not modelled")
    if cls == "SGD" and (full["momentum"] != 0 or full["nesterov"]):
        raise ValueError("SGD momentum is not modelled")
    return cls, full


class Optimizer:
    """One parameter set's optimizer state; `variant` picks RMSprop's epsilon placement
    ("inside" or "tf2")."""

    def __init__(self, cls, cfg, variant="inside"):
        self.cls, self.cfg, self.variant = cls, cfg, variant
        self.slots = {}
        self.t = 0

    def step(self, weights, grads):
        """Returns the updated {path: float64 array}."""
        c = self.cfg
        self.t += 1
        out = {}
        for path, w in weights.items():
            g = grads[path]
            s = self.slots.setdefault(path, {})
            if self.cls == "SGD":
                out[path] = w - c["learning_rate"] * g
            elif self.cls == "RMSprop":
                ms = s.get("ms", np.zeros_like(w))
                ms = c["rho"] * ms + (1.0 - c["rho"]) * g * g
                s["ms"] = ms
                if self.variant == "tf2" and c["momentum"] == 0:
                    out[path] = w - c["learning_rate"] * g / (np.sqrt(ms) + c["epsilon"])
                else:
                    mom = s.get("mom", np.zeros_like(w))
                    mom = c["momentum"] * mom + c["learning_rate"] * g / np.sqrt(ms + c["epsilon"])
                    s["mom"] = mom
                    out[path] = w - mom
            else:  # Adam
                b1, b2 = c["beta_1"], c["beta_2"]
                lr_t = c["learning_rate"] * np.sqrt(1.0 - b2 ** self.t) / (1.0 - b1 ** self.t)
                m = b1 * s.get("m", np.zeros_like(w)) + (1.0 - b1) * g
                v = b2 * s.get("v", np.zeros_like(w)) + (1.0 - b2) * g * g
                s["m"], s["v"] = m, v
                out[path] = w - lr_t * m / (np.sqrt(v) + c["epsilon"])
        return out


# --------------------------------------------------------------------------------------------
# Forward / backward

class Problem:
    """A model with its loss; evaluates loss and gradients at given float64 weights."""

    def __init__(self, schema, model_path, weight_dir):
        self.model = ref.load_model(schema, model_path)
        check_supported(self.model)
        self.weight_dir = weight_dir
        self.paths = weight_files(weight_dir)
        self.initial = {}
        for p in self.paths:
            arr = np.load(os.path.join(weight_dir, p + ".npy"))
            if arr.dtype != np.float32:
                raise ValueError("%s: expected float32" % p)
            self.initial[p] = arr
        self.specs = loss_specs(self.model)
        self.out_names = [r.layer for r in self.model.outputs]

    def loss(self, weights, inputs, targets, need_grad=True):
        """(total, {output: loss}, {path: gradient} or None) at float64 `weights`."""
        store = ParamStore(self.weight_dir, weights)
        graph = ref.Graph(self.model, self.weight_dir, context=store.context)
        xs = [torch.from_numpy(x).to(DTYPE) if x.dtype == np.float32 else torch.from_numpy(x)
              for x in inputs]
        with torch.set_grad_enabled(need_grad):
            outs = dict(zip(self.out_names, graph.run(xs)))
            tg = {k: torch.from_numpy(v) if v.dtype != np.float32 else
                  torch.from_numpy(v).to(DTYPE) for k, v in targets.items()}
            total, parts = total_loss(self.specs, outs, tg)
        if set(store.leaves) != set(self.paths):
            raise AssertionError("weights used %s != exported %s"
                                 % (sorted(store.leaves), self.paths))
        grads = None
        if need_grad:
            leaves = [store.leaves[p] for p in self.paths]
            gs = torch.autograd.grad(total, leaves)
            grads = {p: g.detach().numpy().copy() for p, g in zip(self.paths, gs)}
        return float(total), {k: float(v) for k, v in parts.items()}, grads


def make_targets(model, specs, rng, batch, inputs_by_name, autoencoder):
    """Seeded targets per output: class ids (sparse), one-hot rows (categorical), 0/1 values
    (binary), standard normal values (MSE on a (batch, units) output), or the model input
    itself (autoencoder MSE)."""
    out = {}
    for name, kind, _, _ in specs:
        if name in out:
            continue
        if autoencoder:
            out[name] = inputs_by_name[model.inputs[0].layer]
            continue
        units = None
        for layer in model.layers:
            if layer.name == name:
                units = ref.Attrs(layer).get("units")
        if units is None:
            raise ValueError("output %s: cannot size targets" % name)
        if kind == "SparseCategoricalCrossentropy":
            out[name] = rng.integers(0, units, size=batch).astype(np.int32)
        elif kind == "CategoricalCrossentropy":
            out[name] = np.eye(units, dtype=np.float32)[rng.integers(0, units, size=batch)]
        elif kind == "BinaryCrossentropy":
            out[name] = rng.integers(0, 2, size=(batch, units)).astype(np.float32)
        elif kind == "MeanSquaredError":
            out[name] = rng.standard_normal(size=(batch, units)).astype(np.float32)
        else:
            raise ValueError("no target rule for %s" % kind)
    return out


def make_batch(model, specs, case, seed):
    spec = dict(seed=seed, batch=case["batch"], dims=case.get("dims", {}),
                binary=case.get("binary", []))
    names, arrays, kinds = ref.make_inputs(model, spec)
    rng = np.random.default_rng(seed + 100000)
    targets = make_targets(model, specs, rng, case["batch"], dict(zip(names, arrays)),
                           case.get("autoencoder", False))
    return names, arrays, kinds, targets


# --------------------------------------------------------------------------------------------
# Self-checks

def finite_difference_check(problem, weights, inputs, targets, grads, rng, per_tensor=3,
                            exclude=()):
    """Central differences at random elements and the largest-gradient element of every
    tensor, with h = 1e-6 * max(1, |w|); where that disagrees by more than 1e-7 * max|g| (a
    ReLU or max-pool kink crossed inside [w - h, w + h]: the first convolution of toy_resnet
    has 115k ReLU units), h / 4, h / 16 and h / 64 are tried in turn and the best agreement is
    kept. Returns (max |fd - autograd| / max|g| over the tensor, max abs diff, elements
    checked, elements that needed a smaller h)."""
    worst_rel, worst_abs, count, retried = 0.0, 0.0, 0, 0
    for p in problem.paths:
        if p in exclude:
            continue
        g = grads[p].reshape(-1)
        scale = float(np.max(np.abs(g)))
        nz = np.flatnonzero(g)
        picks = {int(np.argmax(np.abs(g)))}
        if nz.size:
            picks |= set(int(i) for i in rng.choice(nz, size=min(per_tensor, nz.size),
                                                     replace=False))
        for i in sorted(picks):
            best = None
            for k, factor in enumerate((1.0, 0.25, 0.0625, 0.015625)):
                h = factor * 1e-6 * max(1.0, abs(float(weights[p].reshape(-1)[i])))
                vals = []
                for sign in (1.0, -1.0):
                    w = dict(weights)
                    w[p] = weights[p].copy()
                    w[p].reshape(-1)[i] += sign * h
                    vals.append(problem.loss(w, inputs, targets, need_grad=False)[0])
                diff = abs((vals[0] - vals[1]) / (2 * h) - float(g[i]))
                best = diff if best is None else min(best, diff)
                if best <= 1e-7 * scale:
                    break
                if k == 0:
                    retried += 1
            count += 1
            worst_abs = max(worst_abs, best)
            worst_rel = max(worst_rel, best / scale if scale else best)
    return worst_rel, worst_abs, count, retried


def mnist_numpy_grads(weights, x, labels):
    """Hand-written forward and backward pass of the 784-64-64-10 MLP in numpy."""
    w0, b0 = weights["dense/kernel"], weights["dense/bias"]
    w1, b1 = weights["dense_1/kernel"], weights["dense_1/bias"]
    w2, b2 = weights["dense_2/kernel"], weights["dense_2/bias"]
    x = x.astype(np.float64)
    a0 = x @ w0 + b0
    h0 = np.maximum(a0, 0)
    a1 = h0 @ w1 + b1
    h1 = np.maximum(a1, 0)
    z = h1 @ w2 + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    n = x.shape[0]
    dz = (p - np.eye(z.shape[1])[labels]) / n
    g = {"dense_2/kernel": h1.T @ dz, "dense_2/bias": dz.sum(0)}
    d1 = (dz @ w2.T) * (a1 > 0)
    g["dense_1/kernel"], g["dense_1/bias"] = h0.T @ d1, d1.sum(0)
    d0 = (d1 @ w1.T) * (a0 > 0)
    g["dense/kernel"], g["dense/bias"] = x.T @ d0, d0.sum(0)
    return g


def float32_simulation(cls, cfg, variant, weights, grads, skip, rng):
    """Worst |after_f32 - after_ref| over non-skipped elements when the gradient carries
    Gaussian noise of SIM_NOISE * max|g| (about float32 backprop's error) and the update
    runs in float32."""
    ref_after = Optimizer(cls, cfg, variant).step(weights, grads)
    worst = 0.0
    for p, w in weights.items():
        g = grads[p]
        scale = float(np.max(np.abs(g))) if g.size else 0.0
        noisy = (g + rng.standard_normal(g.shape) * SIM_NOISE * scale).astype(np.float32)
        w32 = w.astype(np.float32)
        c = {k: np.float32(v) if isinstance(v, float) else v for k, v in cfg.items()}
        if cls == "SGD":
            a = w32 - c["learning_rate"] * noisy
        elif cls == "RMSprop":
            ms = np.float32(1 - cfg["rho"]) * noisy * noisy
            if variant == "tf2":
                a = w32 - c["learning_rate"] * noisy / (np.sqrt(ms) + c["epsilon"])
            else:
                a = w32 - c["learning_rate"] * noisy / np.sqrt(ms + c["epsilon"])
        else:
            lr_t = np.float32(cfg["learning_rate"] * np.sqrt(1 - cfg["beta_2"]) / (1 - cfg["beta_1"]))
            m = np.float32(1 - cfg["beta_1"]) * noisy
            v = np.float32(1 - cfg["beta_2"]) * noisy * noisy
            a = w32 - lr_t * m / (np.sqrt(v) + c["epsilon"])
        d = np.abs(a.astype(np.float64) - ref_after[p]).reshape(-1)
        keep = np.ones(d.size, bool)
        keep[skip[p]] = False
        if keep.any():
            worst = max(worst, float(np.max(d[keep])))
    return worst


# --------------------------------------------------------------------------------------------
# Fixture writing

def is_row_stored(path, arr):
    return os.path.basename(path) == "embeddings" and arr.ndim == 2


def near_zero(g):
    flat = np.abs(g.reshape(-1))
    m = float(flat.max()) if flat.size else 0.0
    return flat < NEAR_ZERO * m


class Writer:
    def __init__(self, out_dir):
        self.dir = out_dir
        os.makedirs(out_dir)

    def save(self, rel, arr):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, np.ascontiguousarray(arr))
        return rel


def build_case(schema, fgc, case, tmp, log):
    model_path = os.path.join(REPO, case["model"])
    weight_dir = os.path.join(tmp, "weights-" + case["name"])
    ref.export_weights(fgc, model_path, weight_dir)
    prob = Problem(schema, model_path, weight_dir)
    model = prob.model
    cls, cfg = optimizer_config(model, case.get("optimizer"))
    variants = ["inside", "tf2"] if cls == "RMSprop" and case.get("tf2", True) else ["inside"]
    steps = len(case["seeds"])

    batches = [make_batch(model, prob.specs, case, s) for s in case["seeds"]]
    w0 = {p: a.astype(np.float64) for p, a in prob.initial.items()}

    # Run the steps per variant: losses, gradients, weights after.
    runs = {}
    for variant in variants:
        opt = Optimizer(cls, cfg, variant)
        w = w0
        losses, grads = [], []
        for names, arrays, _, targets in batches:
            total, parts, g = prob.loss(w, arrays, targets)
            losses.append((total, parts))
            grads.append(g)
            w = opt.step(w, g)
        runs[variant] = dict(losses=losses, grads=grads, after=w)
    main = runs["inside"]

    # Self-checks.
    checks = {}
    names, arrays, _, targets = batches[0]
    fd_rng = np.random.default_rng(case["seeds"][0] + 7)
    # conv_autoencoder: the decoder's zero-initialized biases added to all-zero inputs give
    # pre-activations of exactly 0, where ReLU's gradient is taken as 0 (TF's ReluGrad uses
    # x > 0, as torch does) but a central difference in the bias measures the average of the
    # one-sided slopes. Those bias tensors are left out of the finite-difference check.
    exclude = [p for p in prob.paths if case.get("fd_skip_decoder_bias")
               and p.startswith("decoder/") and p.endswith("/bias")]
    rel, ab, count, retried = finite_difference_check(prob, w0, arrays, targets,
                                                      main["grads"][0], fd_rng, exclude=exclude)
    checks["finite differences, max |fd - autograd| / max|g| (tensor)"] = rel
    checks["finite differences, max |fd - autograd|"] = ab
    checks["finite differences, elements checked"] = count
    checks["finite differences, elements that needed a smaller h"] = retried
    if rel > 1e-6:
        raise AssertionError("%s: finite differences disagree (%g)" % (case["name"], rel))
    if case["model"] == "samples/mnist_mlp/model.pbtxt":
        worst = 0.0
        ng = mnist_numpy_grads(w0, arrays[0], targets["dense_2"])
        for p in prob.paths:
            worst = max(worst, float(np.max(np.abs(ng[p] - main["grads"][0][p]))))
        checks["numpy backprop vs autograd, max abs"] = worst
        if worst > 1e-12:
            raise AssertionError("mnist numpy backprop disagrees (%g)" % worst)
    for variant, run in runs.items():
        for g in run["grads"]:
            for p in prob.paths:
                if not np.all(np.isfinite(g[p])):
                    raise AssertionError("%s: non-finite gradient %s" % (case["name"], p))

    # Skipped elements: near-zero gradient in any step of any variant.
    skip = {}
    for p in prob.paths:
        mask = np.zeros(prob.initial[p].size, bool)
        for run in runs.values():
            for g in run["grads"]:
                mask |= near_zero(g[p])
        if cls == "SGD":
            mask[:] = False
        skip[p] = mask

    # Row storage for embedding tables.
    rows = {}
    for p in prob.paths:
        if is_row_stored(p, prob.initial[p]):
            touched = np.zeros(prob.initial[p].shape[0], bool)
            for run in runs.values():
                for g in run["grads"]:
                    touched |= np.any(g[p] != 0, axis=1)
                touched |= np.any(run["after"][p] != w0[p], axis=1)
            rows[p] = np.flatnonzero(touched).astype(np.int64)

    def stored(p, arr):
        if p in rows:
            return arr[rows[p]]
        return arr

    def stored_skip(p):
        """The skip mask over the stored array's flat elements."""
        if p in rows:
            return skip[p].reshape(prob.initial[p].shape)[rows[p]].reshape(-1)
        return skip[p]

    sim_rng = np.random.default_rng(case["seeds"][0] + 9)
    for variant in variants:
        if steps == 1:
            sim = float32_simulation(cls, cfg, variant, w0, main["grads"][0],
                                     {p: np.flatnonzero(skip[p]) for p in prob.paths}, sim_rng)
            checks["float32 simulation (%s), max |after diff| outside skip" %
                   ("tf2" if variant == "tf2" else "after")] = sim

    out = Writer(os.path.join(tmp, case["name"]))
    input_meta = []
    for k, (names, arrays, kinds, targets) in enumerate(batches):
        suffix = "" if k == 0 else "_step%d" % (k + 1)
        for n, a, kind in zip(names, arrays, kinds):
            f = out.save("input_%s%s.npy" % (n, suffix), a)
            input_meta.append(dict(step=k + 1, name=n, file=f, dtype=str(a.dtype),
                                   shape=list(a.shape), values=kind))
    target_meta = []
    for k, (_, _, _, targets) in enumerate(batches):
        suffix = "" if k == 0 else "_step%d" % (k + 1)
        for n in prob.out_names:
            if n in targets:
                t = targets[n]
                f = out.save("target_%s%s.npy" % (n, suffix), t)
                target_meta.append(dict(step=k + 1, output=n, file=f, dtype=str(t.dtype),
                                        shape=list(t.shape)))

    params = []
    for p in prob.paths:
        entry = dict(path=p, shape=list(prob.initial[p].shape),
                     storage="rows" if p in rows else "full")

        def put(folder, arr):
            base = folder + "/" + p
            if p in rows:
                out.save(base + ".rows.npy", rows[p])
                return [out.save(base + ".values.npy", stored(p, arr).astype(np.float32))]
            return [out.save(base + ".npy", arr.astype(np.float32))]

        entry["grad"] = put("grad", main["grads"][0][p])
        g = main["grads"][0][p]
        entry["grad_max_abs"] = float(np.max(np.abs(g)))
        entry["grad_sum"] = float(np.sum(g))
        if steps == 2:
            entry["grad_step2"] = put("grad_step2", main["grads"][1][p])
        if case.get("inside", True):
            entry["after"] = put("after", main["after"][p])
        if "tf2" in runs:
            if steps == 2:
                entry["grad_step2_tf2"] = put("grad_step2_tf2", runs["tf2"]["grads"][1][p])
            entry["after_tf2"] = put("after_tf2", runs["tf2"]["after"][p])
        if p in rows:
            entry["rows"] = int(rows[p].size)
        sk = stored_skip(p)
        entry["skip_count"] = int(np.count_nonzero(sk))
        entry["zero_grad_count"] = int(sum(np.count_nonzero(stored(p, g[p]) == 0)
                                           for run in runs.values() for g in run["grads"][:1]))
        if cls != "SGD":
            entry["skip"] = out.save("skip/%s.npy" % p, np.packbits(sk, bitorder="little"))
        params.append(entry)

    def loss_meta(run):
        return [dict(step=k + 1, total=t, per_output=parts) for k, (t, parts) in
                enumerate(run["losses"])]

    meta = dict(
        description="Reference training-step fixture written by tests/reference/"
                    "models_training.py (PyTorch %s autograd, float64 arithmetic on float32 "
                    "inputs and weights, stored as float32)." % torch.__version__.split("+")[0],
        model=case["model"],
        batch=case["batch"],
        steps=steps,
        seeds=case["seeds"],
        dropout="identity",
        initial_weights="fgc export-weights of the model file",
        weights_sha256=ref.weights_digest(weight_dir),
        optimizer=dict(class_name=cls, **cfg),
        loss_reduction="sum_over_batch_size",
        losses=[dict(output=n, class_name=k, from_logits=fl, weight=wt)
                for n, k, fl, wt in prob.specs],
        total_loss="sum of weight * loss over the losses",
        loss_values=loss_meta(main),
        inputs=[n for n in batches[0][0]],
        outputs=prob.out_names,
        input_details=input_meta,
        target_details=target_meta,
        params=params,
        near_zero_rule="skip masks (packed bits, little bit order, over the stored array's "
                       "flat elements) are set where "
                       "|g| < %g * max|g| of the tensor in any step%s" % (
                           NEAR_ZERO, " of either RMSprop variant" if cls == "RMSprop" else ""),
        tolerance=dict(
            loss=dict(abs=1e-5, rel=1e-5, rule="|got - ref| <= abs + rel * |ref|"),
            grad=dict(abs_of_tensor_max=1e-5,
                      rule="|got - ref| <= 1e-5 * max|ref over the tensor|"),
            after=dict(abs=1e-5, rel=1e-5,
                       rule="|got - ref| <= abs + rel * |ref| outside the skip mask (no mask "
                            "for SGD); for single steps the test also leaves out the rare "
                            "elements where the update is so steep in g that swapping fgc's "
                            "gradient for the reference's moves it by more than 5e-6 (see "
                            "tests/training/ModelTrainingTest.cpp)"),
        ),
        self_checks=checks,
    )
    if steps == 2:
        meta["loss_values_tf2"] = loss_meta(runs["tf2"]) if "tf2" in runs else None
        meta["grad_step2"] = "gradient at the weights after step 1 (float64 state)"
    if cls == "RMSprop":
        meta["rmsprop_variants"] = {
            "after": "epsilon inside the root: w -= lr*g/sqrt(ms + eps) (TF ApplyRMSProp "
                     "kernel form; Keras >= 2.11 / Keras 3; FGC_RMSPROP_KERAS3)"
                     + ("" if case.get("inside", True) else ": not stored (fixture size budget)")}
        if "tf2" in runs:
            meta["rmsprop_variants"]["after_tf2"] = (
                "epsilon outside the root: w -= lr*g/(sqrt(ms) + eps) (tf.keras 2.0-2.10 with "
                "momentum 0; FGC_RMSPROP_TF2, emitted by fgc's codegen)")
        else:
            meta["rmsprop_variants"]["after_tf2"] = "not stored (fixture size budget)"
    if rows:
        meta["row_storage"] = ("<w>.rows.npy: int64 row ids whose gradient is not all zero; "
                               "<w>.values.npy: those rows. Other rows: gradient exactly 0, "
                               "after == the exported initial weights")
    with open(os.path.join(out.dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=False)
        f.write("\n")
    log("  loss %.6f  %s" % (main["losses"][0][0], ", ".join(
        "%s %.3e" % kv for kv in checks.items())))
    shutil.rmtree(weight_dir)
    return out.dir


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fgc", default=ref.default_fgc(), help="the fgc binary (export-weights)")
    ap.add_argument("--only", nargs="*", help="cases to regenerate")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args()
    if args.list:
        for c in CASES:
            print(c["name"], c["model"])
        return
    if not args.fgc or not os.path.exists(args.fgc):
        ap.error("fgc binary not found; pass --fgc build/tools/fgc/fgc")
    fgc = os.path.abspath(args.fgc)
    cases = CASES
    if args.only:
        unknown = set(args.only) - {c["name"] for c in cases}
        if unknown:
            ap.error("unknown cases: %s" % ", ".join(sorted(unknown)))
        cases = [c for c in cases if c["name"] in args.only]

    torch.set_num_threads(min(2, torch.get_num_threads()))
    os.makedirs(FIXTURES, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fgc-training-ref-") as tmp:
        schema = ref.load_schema(os.path.join(tmp, "schema"))
        for case in cases:
            print(case["name"], flush=True)
            staged = build_case(schema, fgc, case, tmp, lambda s: print(s, flush=True))
            incoming = os.path.join(FIXTURES, "." + case["name"] + ".new")
            shutil.rmtree(incoming, ignore_errors=True)
            shutil.copytree(staged, incoming)
            final = os.path.join(FIXTURES, case["name"])
            shutil.rmtree(final, ignore_errors=True)
            os.rename(incoming, final)
    if not args.only:
        known = {c["name"] for c in CASES}
        for entry in sorted(os.listdir(FIXTURES)):
            if entry not in known and os.path.isdir(os.path.join(FIXTURES, entry)):
                shutil.rmtree(os.path.join(FIXTURES, entry))


if __name__ == "__main__":
    main()
