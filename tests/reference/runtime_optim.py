#!/usr/bin/python3
"""Reference fixtures for the fgc training runtime (fgc/runtime/optim.h).

Losses and their gradients come from torch autograd in float64, with tf.keras 2.x's
probability clipping written out explicitly (torch.clamp passes the gradient inside
the bounds, bounds included, as tf.clip_by_value does). Optimizer steps follow the
Keras / TF training-kernel formulas in float64 NumPy; where torch.optim implements
the same update (SGD, Adagrad, RMSprop without momentum, Adam/AdamW with eps = 0)
the script asserts that it agrees, which checks the formulas themselves. RMSprop
with momentum puts epsilon inside the square root (TF's ApplyRMSProp) and Adam adds
an unscaled epsilon (torch.optim.Adam effectively uses eps * sqrt(1 - beta_2^t)),
so those are only compared with eps = 0.

Each case is a folder tests/fixtures/runtime_optim/<case>/ with .npy arrays and
params.txt ("key value" lines), read by tests/runtime_optim/. CI has no PyTorch,
so the fixtures are committed.

Regenerate (Debian's python3-torch and python3-numpy, hence /usr/bin):
    /usr/bin/python3 tests/reference/runtime_optim.py
This rewrites tests/fixtures/runtime_optim/ from scratch; the output is deterministic.
"""

import io
import math
import os
import shutil

import numpy as np
import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "..", "fixtures", "runtime_optim"))

# tf.keras's clip bounds as float32 values.
EPS = float(np.float32(1e-7))
CLIP_LOW = EPS
CLIP_HIGH = float(np.float32(1.0) - np.float32(1e-7))


class Case:
    def __init__(self, name, seed):
        self.dir = os.path.join(ROOT, name)
        os.makedirs(self.dir)
        self.rng = np.random.default_rng(seed)
        self.params = []

    def save(self, name, array):
        np.save(os.path.join(self.dir, name + ".npy"), array)

    def param(self, key, value):
        self.params.append("%s %s" % (key, value))

    def close(self):
        with open(os.path.join(self.dir, "params.txt"), "w") as f:
            f.write("\n".join(self.params) + "\n")


# ---------------------------------------------------------------- losses

def keras_loss(kind, from_logits, y_true, y_pred, delta=1.0):
    """Per-row loss of a (rows, cols) float64 tensor, tf.keras 2.x semantics."""
    if kind == "sparse":
        labels = y_true.long()
        if from_logits:
            logp = torch.log_softmax(y_pred, dim=-1)
        else:
            c = torch.clamp(y_pred, CLIP_LOW, CLIP_HIGH)
            logp = torch.log_softmax(torch.log(c), dim=-1)
        return -logp.gather(1, labels[:, None])[:, 0]
    if kind == "categorical":
        if from_logits:
            return -(y_true * torch.log_softmax(y_pred, dim=-1)).sum(-1)
        q = y_pred / y_pred.sum(-1, keepdim=True)
        return -(y_true * torch.log(torch.clamp(q, CLIP_LOW, CLIP_HIGH))).sum(-1)
    if kind == "binary":
        z = y_true
        if from_logits:
            # TF's sigmoid_cross_entropy_with_logits, whose where() form also gives the
            # gradient sigmoid(x) - z at x = 0 (clamp and abs would give 1 - z there).
            x = y_pred
            positive = x >= 0
            relu = torch.where(positive, x, torch.zeros_like(x))
            neg_abs = torch.where(positive, -x, x)
            e = relu - x * z + torch.log1p(torch.exp(neg_abs))
        else:
            c = torch.clamp(y_pred, CLIP_LOW, CLIP_HIGH)
            e = -(z * torch.log(c + EPS) + (1 - z) * torch.log(1 - c + EPS))
        return e.mean(-1)
    if kind == "mse":
        return ((y_pred - y_true) ** 2).mean(-1)
    if kind == "mae":
        return (y_pred - y_true).abs().mean(-1)
    if kind == "huber":
        e = (y_pred - y_true).abs()
        return torch.where(e <= delta, 0.5 * e * e, delta * e - 0.5 * delta * delta).mean(-1)
    raise ValueError(kind)


def loss_case(name, seed, kind, from_logits, rows, cols, weighted, scale, delta=1.0):
    case = Case(name, seed)
    rng = case.rng
    if kind == "sparse":
        y_true = rng.integers(0, cols, size=rows).astype(np.int32)
    elif kind == "categorical":
        y_true = np.eye(cols, dtype=np.float32)[rng.integers(0, cols, size=rows)]
        y_true[0] = rng.random(cols).astype(np.float32)  # a soft target
        y_true[0] /= y_true[0].sum()
    elif kind == "binary":
        y_true = (rng.random((rows, cols)) < 0.5).astype(np.float32)
        y_true[0, 0] = 0.3  # a soft target
    else:
        y_true = rng.normal(size=(rows, cols)).astype(np.float32)

    if from_logits or kind in ("mse", "mae", "huber"):
        y_pred = (rng.normal(size=(rows, cols)) * 2).astype(np.float32)
        if kind == "huber":
            y_pred = (y_true + rng.normal(size=(rows, cols)) * 1.5).astype(np.float32)
        if from_logits:
            y_pred[1, :] = 0  # a row of ties
            y_pred[2, 0] = 40.0  # a large logit: needs the stable forms
    elif kind == "binary":
        y_pred = rng.random((rows, cols)).astype(np.float32)
        y_pred[1, 0], y_pred[1, 1] = 0.0, 1.0  # clipped: zero gradient
        y_pred[2, 0] = 1e-9
    else:
        logits = rng.normal(size=(rows, cols)) * 2
        p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        if kind == "categorical":
            p = p * rng.uniform(0.5, 2.0, size=(rows, 1))  # unnormalised rows
        p = p.astype(np.float32)
        p[1, :] = 0
        p[1, int(y_true[1]) if kind == "sparse" else 0] = 1.0  # clipped on both sides
        p[2, 1] = 1e-9
        y_pred = p

    weights = rng.uniform(0.0, 2.0, size=rows).astype(np.float32) if weighted else None
    yt = torch.tensor(y_true.astype(np.float64))
    yp = torch.tensor(y_pred.astype(np.float64), requires_grad=True)
    per_row = keras_loss(kind, from_logits, yt, yp, delta)
    w = torch.tensor(weights.astype(np.float64)) if weighted else torch.ones(rows, dtype=torch.float64)
    loss = (per_row * w).sum() / rows
    (loss * scale).backward()

    case.save("y_true", y_true)
    case.save("y_pred", y_pred)
    if weighted:
        case.save("sample_weight", weights)
    case.save("loss", np.array(loss.item(), dtype=np.float64))
    case.save("dy_pred", yp.grad.numpy().astype(np.float32))
    case.param("kind", kind)
    case.param("from_logits", int(from_logits))
    case.param("scale", repr(scale))
    case.param("delta", repr(delta))
    case.close()


def make_losses():
    seed = 100
    for kind in ["sparse", "categorical", "binary"]:
        for logits in [True, False]:
            for weighted in [False, True]:
                seed += 1
                name = "loss_%s_%s%s" % (kind, "logits" if logits else "probs",
                                         "_weighted" if weighted else "")
                loss_case(name, seed, kind, logits, 6, 7, weighted, 0.5 if weighted else 1.0)
    for kind in ["mse", "mae", "huber"]:
        for weighted in [False, True]:
            seed += 1
            loss_case("loss_%s%s" % (kind, "_weighted" if weighted else ""), seed, kind, False,
                      5, 4, weighted, 2.0 if weighted else 1.0)
    loss_case("loss_huber_delta", 150, "huber", False, 4, 9, False, 1.0, delta=0.5)


# ---------------------------------------------------------------- metrics

def make_metrics():
    case = Case("metrics", 200)
    rng = case.rng
    rows, cols = 40, 5
    y_pred = rng.integers(0, 3, size=(rows, cols)).astype(np.float32)  # many ties
    labels = rng.integers(0, cols, size=rows).astype(np.int32)
    onehot = np.eye(cols, dtype=np.float32)[rng.integers(0, cols, size=rows)]
    first_argmax = y_pred.argmax(-1)  # numpy's argmax also picks the first maximum
    case.save("y_pred", y_pred)
    case.save("labels", labels)
    case.save("onehot", onehot)
    case.param("sparse_correct", int((first_argmax == labels).sum()))
    case.param("categorical_correct", int((first_argmax == onehot.argmax(-1)).sum()))
    probs = rng.random((rows, cols)).astype(np.float32)
    probs[0, :] = 0.5  # not above the threshold
    binary = (rng.random((rows, cols)) < 0.5).astype(np.float32)
    case.save("probs", probs)
    case.save("binary", binary)
    case.param("binary_correct", int(((probs > 0.5).astype(np.float32) == binary).sum()))
    target = rng.normal(size=(rows, cols)).astype(np.float32)
    case.save("target", target)
    err = probs.astype(np.float64) - target
    case.param("mae_sum", repr(float(np.abs(err).mean(-1).sum())))
    case.param("mse_sum", repr(float((err ** 2).mean(-1).sum())))
    case.close()


# ---------------------------------------------------------------- optimizers

def sgd(w, grads, lr, momentum=0.0, nesterov=False):
    v = np.zeros_like(w)
    out = []
    for g in grads:
        if momentum == 0:
            w = w - lr * g
        else:
            v = momentum * v - lr * g
            w = w + (momentum * v - lr * g if nesterov else v)
        out.append(w)
    return out, {"velocity": v}


def rmsprop(w, grads, lr, rho, momentum, eps, centered, variant):
    ms, mom, mg = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    inside = variant == "keras3" or momentum > 0
    out = []
    for g in grads:
        ms = rho * ms + (1 - rho) * g * g
        denom = ms
        if centered:
            mg = rho * mg + (1 - rho) * g
            denom = ms - mg * mg
        if not inside:
            w = w - lr * g / (np.sqrt(denom) + eps)
        else:
            u = lr * g / np.sqrt(denom + eps)
            if momentum > 0:
                mom = momentum * mom + u
                w = w - mom
            else:
                w = w - u
        out.append(w)
    return out, {"ms": ms, "mom": mom, "mg": mg}


def adam(w, grads, lr, b1, b2, eps, amsgrad, weight_decay=0.0):
    m, v, vhat = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    out = []
    for t, g in enumerate(grads, start=1):
        w = w - w * (lr * weight_decay)
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        d = v
        if amsgrad:
            vhat = np.maximum(vhat, v)
            d = vhat
        w = w - alpha * m / (np.sqrt(d) + eps)
        out.append(w)
    return out, {"m": m, "v": v, "vhat": vhat}


def adagrad(w, grads, lr, initial, eps):
    acc = np.full_like(w, initial)
    out = []
    for g in grads:
        acc = acc + g * g
        w = w - lr * g / (np.sqrt(acc) + eps)
        out.append(w)
    return out, {"acc": acc}


def torch_run(opt_factory, w0, grads):
    """The weights after each step of a torch.optim optimizer, float64."""
    p = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = opt_factory([p])
    out = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


def assert_same(ours, theirs, what):
    err = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs))
    assert err < 1e-10, "%s: Keras formulas and torch.optim differ by %g" % (what, err)


def cross_check(w0, grads):
    """Checks the Keras formulas against torch.optim where both define the same update."""
    g64 = [g.astype(np.float64) for g in grads]
    w = w0.astype(np.float64)
    assert_same(sgd(w, g64, 0.05, 0.9)[0],
                torch_run(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), w0, g64), "sgd")
    assert_same(sgd(w, g64, 0.05, 0.9, True)[0],
                torch_run(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
                          w0, g64), "nesterov")
    assert_same(adagrad(w, g64, 0.01, 0.1, 1e-7)[0],
                torch_run(lambda p: torch.optim.Adagrad(p, lr=0.01, initial_accumulator_value=0.1,
                                                        eps=1e-7), w0, g64), "adagrad")
    for centered in [False, True]:
        assert_same(rmsprop(w, g64, 0.01, 0.9, 0.0, 1e-7, centered, "tf2")[0],
                    torch_run(lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7,
                                                            centered=centered), w0, g64),
                    "rmsprop")
    assert_same(adam(w, g64, 0.01, 0.9, 0.999, 0.0, False)[0],
                torch_run(lambda p: torch.optim.Adam(p, lr=0.01, eps=0.0), w0, g64), "adam")
    assert_same(adam(w, g64, 0.01, 0.9, 0.999, 0.0, False, 0.1)[0],
                torch_run(lambda p: torch.optim.AdamW(p, lr=0.01, eps=0.0, weight_decay=0.1),
                          w0, g64), "adamw")


def optimizer_case(name, seed, kind, params, grad_scale=1.0):
    case = Case(name, seed)
    rng = case.rng
    n, steps = 37, 6
    w0 = rng.normal(size=n).astype(np.float32)
    grads = (rng.normal(size=(steps, n)) * grad_scale).astype(np.float32)
    grads[: steps // 2] *= 4  # large first, small later: amsgrad's max matters
    g64 = [g.astype(np.float64) for g in grads]
    w = w0.astype(np.float64)
    # Keras holds hyperparameters as float32 tensors: compute with their float32 values.
    params32 = {k: float(np.float32(v)) if isinstance(v, float) else v for k, v in params.items()}
    params, written = params32, params
    if kind == "sgd":
        out, slots = sgd(w, g64, params["lr"], params["momentum"], bool(params["nesterov"]))
    elif kind == "rmsprop":
        out, slots = rmsprop(w, g64, params["lr"], params["rho"], params["momentum"],
                             params["epsilon"], bool(params["centered"]), params["variant"])
    elif kind in ("adam", "adamw"):
        out, slots = adam(w, g64, params["lr"], params["beta_1"], params["beta_2"],
                          params["epsilon"], bool(params["amsgrad"]),
                          params.get("weight_decay", 0.0))
    elif kind == "adagrad":
        out, slots = adagrad(w, g64, params["lr"], params["initial"], params["epsilon"])
    case.save("w0", w0)
    case.save("grads", grads)
    case.save("weights", np.stack(out).astype(np.float32))
    for key, value in slots.items():
        case.save("slot_" + key, value.astype(np.float32))
    case.param("kind", kind)
    for key, value in written.items():
        case.param(key, value)
    case.close()
    return w0, grads


def make_optimizers():
    w0, grads = optimizer_case("opt_sgd", 300, "sgd", {"lr": 0.01, "momentum": 0.0, "nesterov": 0})
    cross_check(w0, grads)
    optimizer_case("opt_sgd_momentum", 301, "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": 0})
    optimizer_case("opt_sgd_nesterov", 302, "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": 1})
    rms = {"lr": 1e-3, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": 0,
           "variant": "tf2"}
    optimizer_case("opt_rmsprop", 310, "rmsprop", rms)
    # Tiny gradients make epsilon's placement visible (sqrt(ms) ~ 3e-5 against 1e-7 inside).
    optimizer_case("opt_rmsprop_small", 311, "rmsprop", rms, grad_scale=1e-4)
    optimizer_case("opt_rmsprop_small_keras3", 311, "rmsprop", dict(rms, variant="keras3"),
                   grad_scale=1e-4)
    optimizer_case("opt_rmsprop_momentum_small", 312, "rmsprop", dict(rms, momentum=0.9),
                   grad_scale=1e-4)
    optimizer_case("opt_rmsprop_centered", 313, "rmsprop", dict(rms, centered=1, lr=0.01))
    optimizer_case("opt_rmsprop_centered_momentum", 314, "rmsprop",
                   dict(rms, centered=1, momentum=0.5, lr=0.01))
    adam_params = {"lr": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": 0}
    optimizer_case("opt_adam", 320, "adam", adam_params)
    optimizer_case("opt_adam_small", 321, "adam", dict(adam_params, epsilon=1e-3), grad_scale=1e-3)
    optimizer_case("opt_adam_amsgrad", 322, "adam", dict(adam_params, amsgrad=1, lr=0.01))
    optimizer_case("opt_adamw", 323, "adamw", dict(adam_params, lr=0.01, weight_decay=0.1))
    optimizer_case("opt_adamw_default", 324, "adamw", dict(adam_params, weight_decay=0.004))
    optimizer_case("opt_adagrad", 330, "adagrad", {"lr": 1e-3, "initial": 0.1, "epsilon": 1e-7})
    optimizer_case("opt_adagrad_fast", 331, "adagrad", {"lr": 0.1, "initial": 0.0,
                                                        "epsilon": 1e-7})


# ---------------------------------------------------------------- clipping and schedules

def make_clipping():
    case = Case("clipping", 400)
    rng = case.rng
    sizes = [5, 12, 0, 3]
    tensors = [(rng.normal(size=s) * 2).astype(np.float32) for s in sizes]
    for i, t in enumerate(tensors):
        case.save("t%d" % i, t)
    norm = math.sqrt(sum(float((t.astype(np.float64) ** 2).sum()) for t in tensors))
    case.param("count", len(sizes))
    case.param("global_norm", repr(norm))
    clip = 3.0
    case.param("clip_norm", clip)
    for i, t in enumerate(tensors):
        t64 = t.astype(np.float64)
        case.save("global%d" % i, (t64 * min(1.0, clip / norm)).astype(np.float32))
        own = math.sqrt(float((t64 ** 2).sum()))
        case.save("each%d" % i, (t64 * (clip / own if own > clip else 1.0)).astype(np.float32))
        case.save("value%d" % i, np.clip(t64, -1.5, 1.5).astype(np.float32))
    case.param("clip_value", 1.5)
    case.close()


def make_schedules():
    case = Case("schedules", 500)
    steps = np.arange(0, 60)
    case.save("steps", steps.astype(np.int64))
    for stair in [0, 1]:
        p = steps / 7.0
        if stair:
            p = np.floor(p)
        case.save("exponential%d" % stair, 0.1 * 0.5 ** p)
    s = np.minimum(steps, 40)
    case.save("cosine", 0.2 * ((1 - 0.1) * 0.5 * (1 + np.cos(np.pi * s / 40.0)) + 0.1))
    boundaries, values = [10, 25], [1.0, 0.5, 0.1]
    case.save("piecewise", np.array([values[0] if t <= 10 else values[1] if t <= 25 else values[2]
                                     for t in steps]))
    case.close()


# ---------------------------------------------------------------- data files

MASK64 = (1 << 64) - 1


def splitmix64(state):
    """One splitmix64 step: (new state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def shuffled(n, seed):
    """Fisher-Yates from the last index down, j uniform in [0, i] by rejection sampling."""
    order, state = list(range(n)), seed
    for i in range(n - 1, 0, -1):
        bound = i + 1
        threshold = (1 << 64) % bound
        while True:
            state, r = splitmix64(state)
            if r >= threshold:
                break
        j = r % bound
        order[i], order[j] = order[j], order[i]
    return order


def make_data():
    """Small .npz archives written by NumPy itself (and two broken ones), and shuffle orders."""
    import zipfile
    case = Case("data", 600)
    a = np.arange(12, dtype=np.float32).reshape(3, 4) / 4
    b = np.array([3, 1, 4, 1, 5], dtype=np.int32)
    c = np.array([[1, 2], [3, 4]], dtype=np.uint8)

    def npz(name, members, compression=zipfile.ZIP_STORED):
        # What numpy.savez(_compressed) writes, with a fixed timestamp so the bytes are stable.
        with zipfile.ZipFile(os.path.join(case.dir, name), "w", compression) as z:
            for member, value in members:
                if isinstance(value, np.ndarray):
                    buffer = io.BytesIO()
                    np.lib.format.write_array(buffer, value)
                    value = buffer.getvalue()
                z.writestr(zipfile.ZipInfo(member, (1980, 1, 1, 0, 0, 0)), value, compression)

    arrays = [("a.npy", a), ("labels.npy", b), ("pixels.npy", c)]
    npz("stored.npz", arrays)
    npz("deflated.npz", arrays, zipfile.ZIP_DEFLATED)
    npz("bad_member.npz", [("x.npy", b"\x93NUMPY\x01\x00garbage")])
    npz("not_npy.npz", [("readme.txt", b"hello")])
    for n, seed in [(10, 0), (10, 42), (1000, 12345678901234567)]:
        case.save("shuffle_%d_%d" % (n, seed), np.array(shuffled(n, seed), dtype=np.int64))
    case.close()


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    torch.set_default_dtype(torch.float64)
    make_losses()
    make_metrics()
    make_optimizers()
    make_clipping()
    make_schedules()
    make_data()
    print("wrote", ROOT)


if __name__ == "__main__":
    main()
