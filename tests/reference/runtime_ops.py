#!/usr/bin/python3
"""Reference fixtures for the runtime kernels of the layers added for Keras
import (layout.cpp, gru.cpp, attention.cpp), forward and backward, from
PyTorch autograd.

Each case gets a folder tests/fixtures/runtime_ops/<case>/ with its inputs
(Keras layouts, float32), a random upstream gradient `dy` where the case has a
backward, the expected outputs and gradients as .npy files, and params.txt
("key value" per line). Forwards are rebuilt in float64 from the float32
inputs; the GRU follows Keras's equations written out step by step (gate
blocks z, r, h) and, for reset_after=True, is also checked here against
torch.nn.GRU with the gates reordered; Attention is the plain matmul/softmax
formulation. The C++ tests in tests/runtime_ops/ run the kernels on these
files; CI has no PyTorch, so the fixtures are committed.

Regenerate (Debian's python3-torch and python3-numpy, hence /usr/bin):
    /usr/bin/python3 tests/reference/runtime_ops.py
This rewrites tests/fixtures/runtime_ops/ from scratch; the output is
deterministic.
"""

import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "..", "fixtures", "runtime_ops"))


class Case:
    """One fixture folder: float32 inputs saved as given, float64 tensors returned."""

    def __init__(self, name, seed):
        self.dir = os.path.join(ROOT, name)
        os.makedirs(self.dir)
        self.gen = torch.Generator().manual_seed(seed)
        self.params = []

    def randn(self, name, *shape, scale=1.0, grad=True):
        t = torch.randn(*shape, generator=self.gen, dtype=torch.float32) * scale
        np.save(os.path.join(self.dir, name + ".npy"), t.numpy())
        return t.double().requires_grad_(grad)

    def save(self, name, array):
        if isinstance(array, torch.Tensor):
            array = array.detach().numpy()
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        np.save(os.path.join(self.dir, name + ".npy"), np.ascontiguousarray(array))

    def param(self, key, value):
        self.params.append(f"{key} {value}")

    def backward(self, outputs, inputs, names, dy_names):
        """Random upstream gradients for `outputs`, the gradients of `inputs` saved."""
        dys = [self.randn(n, *o.shape, grad=False) for o, n in zip(outputs, dy_names)]
        grads = torch.autograd.grad(outputs, inputs, dys, allow_unused=True)
        for name, g, x in zip(names, grads, inputs):
            self.save(name, g if g is not None else torch.zeros_like(x))

    def close(self):
        with open(os.path.join(self.dir, "params.txt"), "w") as f:
            f.write("\n".join(self.params) + "\n")


# ---------------------------------------------------------------- padding / cropping

def pad_cases():
    # (name, input (b, h, w, c), top, bottom, left, right); negative = Cropping2D.
    for i, (name, shape, pads) in enumerate([
            ("pad_1111", (2, 3, 4, 3), (1, 1, 1, 1)),
            ("pad_asym_batch1", (1, 5, 3, 2), (2, 0, 1, 3)),
            ("crop_1021", (2, 6, 7, 3), (-1, 0, -2, -1)),
            ("crop_to_one", (1, 4, 4, 1), (-2, -1, -3, 0)),
            ("pad_and_crop", (2, 5, 5, 2), (1, -2, -1, 2))]):
        c = Case(name, 100 + i)
        x = c.randn("x", *shape)
        top, bottom, left, right = pads
        # F.pad takes (left, right, top, bottom) on the last two axes of NCHW; negatives crop.
        y = F.pad(x.permute(0, 3, 1, 2), (left, right, top, bottom)).permute(0, 2, 3, 1)
        c.save("y", y)
        c.backward([y], [x], ["dx"], ["dy"])
        for k, v in zip(["top", "bottom", "left", "right"], pads):
            c.param(k, v)
        c.close()


def permute_cases():
    for i, (shape, perm) in enumerate([((2, 3, 4), (0, 2, 1)),
                                       ((1, 2, 3, 5), (0, 3, 1, 2)),
                                       ((2, 3, 1, 4), (0, 2, 3, 1))]):
        c = Case(f"permute_{i}", 120 + i)
        x = c.randn("x", *shape)
        y = x.permute(*perm)
        c.save("y", y)
        c.backward([y], [x], ["dx"], ["dy"])
        c.param("perm", ",".join(str(p) for p in perm))
        c.close()


def reverse_cases():
    c = Case("reverse_sequence", 130)
    x = c.randn("x", 3, 5, 4)
    y = torch.flip(x, [1])
    c.save("y", y)
    c.backward([y], [x], ["dx"], ["dy"])
    c.close()


def leaky_relu_cases():
    for i, alpha in enumerate([0.3, 0.01, 0.2]):
        c = Case(f"leaky_relu_{i}", 140 + i)
        x = c.randn("x", 5, 7)
        y = F.leaky_relu(x, alpha)
        c.save("y", y)
        c.backward([y], [x], ["dx"], ["dy"])
        c.param("alpha", alpha)
        c.close()


def merge_cases():
    for i, mode in enumerate(["concat", "sum", "mul", "ave"]):
        c = Case(f"bidirectional_merge_{mode}", 150 + i)
        f = c.randn("forward", 6, 5)
        b = c.randn("backward", 6, 5)
        y = {"concat": lambda: torch.cat([f, b], -1), "sum": lambda: f + b,
             "mul": lambda: f * b, "ave": lambda: (f + b) / 2}[mode]()
        c.save("y", y)
        c.backward([y], [f, b], ["dforward", "dbackward"], ["dy"])
        c.param("mode", mode)
        c.close()


# ---------------------------------------------------------------- GRU

def activation(name):
    return {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": F.relu,
            "hard_sigmoid": lambda v: torch.clamp(0.2 * v + 0.5, 0.0, 1.0)}[name]


def keras_gru(x, kernel, rkernel, bias, h0, reset_after, act, rec_act):
    """Keras's GRU (gate blocks z, r, h): the whole sequence of h, float64."""
    units = rkernel.shape[0]
    a, ra = activation(act), activation(rec_act)
    h = h0
    outs = []
    for t in range(x.shape[1]):
        xp = x[:, t] @ kernel
        if bias is not None:
            xp = xp + (bias[0] if reset_after else bias)
        xz, xr, xh = xp[:, :units], xp[:, units:2 * units], xp[:, 2 * units:]
        if reset_after:
            rp = h @ rkernel
            if bias is not None:
                rp = rp + bias[1]
            z = ra(xz + rp[:, :units])
            r = ra(xr + rp[:, units:2 * units])
            hh = a(xh + r * rp[:, 2 * units:])
        else:
            z = ra(xz + h @ rkernel[:, :units])
            r = ra(xr + h @ rkernel[:, units:2 * units])
            hh = a(xh + (r * h) @ rkernel[:, 2 * units:])
        h = z * h + (1 - z) * hh
        outs.append(h)
    return torch.stack(outs, 1)


def check_against_torch_gru(x, kernel, rkernel, bias, h0, seq):
    """Keras reset_after=True with tanh/sigmoid is torch.nn.GRU with gates (r, z, n)."""
    units = rkernel.shape[0]
    gru = torch.nn.GRU(x.shape[2], units, batch_first=True).double()

    def reorder(w):  # Keras (z, r, h) columns -> torch (r, z, n) rows
        z, r, h = w[..., :units], w[..., units:2 * units], w[..., 2 * units:]
        return torch.cat([r, z, h], -1)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(reorder(kernel).T)
        gru.weight_hh_l0.copy_(reorder(rkernel).T)
        gru.bias_ih_l0.copy_(reorder(bias[0]))
        gru.bias_hh_l0.copy_(reorder(bias[1]))
        ref, _ = gru(x.detach(), h0.detach().unsqueeze(0))
    assert torch.allclose(ref, seq.detach(), atol=1e-10), "Keras GRU equations != torch.nn.GRU"


def gru_case(name, seed, batch, steps, inputs, units, reset_after=True, sequences=False,
             with_h0=False, use_bias=True, act="tanh", rec_act="sigmoid", state_grad=False):
    c = Case(name, seed)
    x = c.randn("x", batch, steps, inputs)
    kernel = c.randn("kernel", inputs, 3 * units, scale=0.5)
    rkernel = c.randn("recurrent_kernel", units, 3 * units, scale=0.5)
    bias = None
    if use_bias:
        bias = c.randn("bias", *((2, 3 * units) if reset_after else (3 * units,)), scale=0.5)
    h0 = c.randn("h0", batch, units) if with_h0 else torch.zeros(batch, units, dtype=torch.float64)
    seq = keras_gru(x, kernel, rkernel, bias, h0, reset_after, act, rec_act)
    if reset_after and use_bias and act == "tanh" and rec_act == "sigmoid":
        check_against_torch_gru(x, kernel, rkernel, bias, h0, seq)
    out = seq if sequences else seq[:, -1]
    c.save("y", out)
    c.save("h_out", seq[:, -1])
    inputs_ = [x, kernel, rkernel] + ([bias] if use_bias else []) + ([h0] if with_h0 else [])
    names = ["dx", "dkernel", "drecurrent_kernel"] + (["dbias"] if use_bias else []) + \
        (["dh0"] if with_h0 else [])
    outputs, dys = [out], ["dy"]
    if state_grad:
        outputs.append(seq[:, -1])
        dys.append("dh_out")
    c.backward(outputs, inputs_, names, dys)
    for k, v in [("units", units), ("reset_after", int(reset_after)),
                 ("return_sequences", int(sequences)), ("activation", act),
                 ("recurrent_activation", rec_act)]:
        c.param(k, v)
    c.close()


def gru_cases():
    gru_case("gru_reset_after_last", 300, 3, 5, 4, 6)
    gru_case("gru_reset_after_seq_h0", 301, 2, 4, 3, 5, sequences=True, with_h0=True,
             state_grad=True)
    gru_case("gru_reset_before_last", 302, 3, 5, 4, 6, reset_after=False)
    gru_case("gru_reset_before_seq_h0", 303, 2, 6, 5, 3, reset_after=False, sequences=True,
             with_h0=True, state_grad=True)
    gru_case("gru_batch1_odd_nobias", 304, 1, 7, 3, 5, use_bias=False)
    gru_case("gru_hard_sigmoid_relu", 305, 2, 3, 2, 4, act="relu", rec_act="hard_sigmoid",
             sequences=True)


# ---------------------------------------------------------------- Attention

def attention_case(name, seed, batch, tq, tv, dim, value_dim=None, with_key=True,
                   concat=False, causal=False, scale=None, csw=None):
    c = Case(name, seed)
    q = c.randn("query", batch, tq, dim)
    v = c.randn("value", batch, tv, value_dim or dim)
    k = c.randn("key", batch, tv, dim) if with_key else v
    grads_in, names = [q, v], ["dquery", "dvalue"]
    if with_key:
        grads_in.append(k)
        names.append("dkey")
    sc = torch.tensor(1.0, dtype=torch.float64)
    if scale is not None:
        sc = torch.tensor(scale, dtype=torch.float32).double().requires_grad_(True)
        c.save("scale", np.array([scale], dtype=np.float32))
        grads_in.append(sc)
        names.append("dscale")
    cw = torch.tensor(1.0, dtype=torch.float64)
    if csw is not None:
        cw = torch.tensor(csw, dtype=torch.float32).double().requires_grad_(True)
        c.save("concat_score_weight", np.array([csw], dtype=np.float32))
        grads_in.append(cw)
        names.append("dconcat_score_weight")
    if concat:
        s = cw * torch.tanh(sc * (q.unsqueeze(2) + k.unsqueeze(1))).sum(-1)
    else:
        s = sc * (q @ k.transpose(1, 2))
    if causal:
        mask = torch.ones(tq, tv, dtype=torch.bool).tril()
        s = s.masked_fill(~mask, float("-inf"))
    w = torch.softmax(s, -1)
    y = w @ v
    c.save("y", y)
    c.save("scores", w)
    c.backward([y], grads_in, names, ["dy"])
    for key, val in [("concat", int(concat)), ("causal", int(causal))]:
        c.param(key, val)
    c.close()


def attention_cases():
    attention_case("attention_dot_qv", 400, 2, 3, 4, 5, with_key=False)
    attention_case("attention_dot_qvk_scale", 401, 2, 4, 3, 3, value_dim=5, scale=0.7)
    attention_case("attention_dot_causal_batch1", 402, 1, 5, 5, 4, causal=True, scale=1.3)
    attention_case("attention_concat_qvk", 403, 2, 3, 4, 3, value_dim=2, concat=True, csw=0.8)
    attention_case("attention_concat_scale_causal", 404, 2, 4, 3, 3, with_key=False,
                   concat=True, causal=True, scale=0.5, csw=1.2)


def main():
    if os.path.exists(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    torch.set_grad_enabled(True)
    pad_cases()
    permute_cases()
    reverse_cases()
    leaky_relu_cases()
    merge_cases()
    gru_cases()
    attention_cases()


if __name__ == "__main__":
    main()
