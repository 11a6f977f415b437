#!/usr/bin/python3
"""Reference fixtures for the fgc runtime's gradient kernels (grad.h), from
PyTorch autograd.

Each case gets a folder tests/fixtures/runtime_grad/<case>/ with its inputs
(Keras layouts, float32), a random upstream gradient `dy` and the expected
gradients as .npy files, plus params.txt ("key value" per line). Every forward
is rebuilt in float64 from the float32 inputs (Keras layouts converted to
PyTorch's), gradients come from torch.autograd.grad, and results are stored as
float32. The C++ tests in tests/runtime_grad/ run the kernels on these files;
CI has no PyTorch, so the fixtures are committed.

Regenerate (needs Debian's python3-torch and python3-numpy, hence /usr/bin):
    /usr/bin/python3 tests/reference/runtime_grad.py
This rewrites tests/fixtures/runtime_grad/ from scratch; the output is
deterministic.
"""

import math
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "..", "fixtures", "runtime_grad"))

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu",
               "softplus", "swish", "hard_sigmoid"]


def activate(name, x):
    """Keras activation `name` on a float64 tensor (softmax over the last axis)."""
    table = {
        "linear": lambda v: v,
        "relu": F.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda v: F.softmax(v, dim=-1),
        "elu": F.elu,
        "selu": F.selu,
        "gelu": F.gelu,
        "softplus": F.softplus,
        "swish": F.silu,
        "hard_sigmoid": lambda v: torch.clamp(0.2 * v + 0.5, 0.0, 1.0),
    }
    return table[name](x)


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

    def ints(self, name, low, high, *shape, dtype=np.float32, grad=True):
        """Small integers (ties on purpose), saved with `dtype`."""
        t = torch.randint(low, high, shape, generator=self.gen)
        np.save(os.path.join(self.dir, name + ".npy"), t.numpy().astype(dtype))
        return t.double().requires_grad_(grad)

    def save(self, name, array):
        if isinstance(array, torch.Tensor):
            array = array.detach().numpy()
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        np.save(os.path.join(self.dir, name + ".npy"), np.ascontiguousarray(array))

    def param(self, key, value):
        self.params.append(f"{key} {value}")

    def backward(self, output, inputs, names, dy_name="dy", scale=1.0):
        """Saves a random upstream gradient for `output` and the gradients of `inputs`."""
        dy = self.randn(dy_name, *output.shape, scale=scale, grad=False)
        grads = torch.autograd.grad(output, inputs, dy, allow_unused=True)
        for name, g in zip(names, grads):
            self.save(name, g if g is not None else torch.zeros_like(inputs[names.index(name)]))
        return dy

    def close(self):
        with open(os.path.join(self.dir, "params.txt"), "w") as f:
            f.write("\n".join(self.params) + "\n")


def same_pads(size, k, stride, dilation):
    """TensorFlow SAME padding (before, after) along one axis."""
    out = -(-size // stride)
    span = (k - 1) * dilation + 1
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def window_params(c, stride, dilation, padding, act):
    for key, value in [("stride_h", stride[0]), ("stride_w", stride[1]),
                       ("dilation_h", dilation[0]), ("dilation_w", dilation[1]),
                       ("padding", padding), ("activation", act)]:
        c.param(key, value)


# ---------------------------------------------------------------- activations, softmax, dense

def activation_cases():
    for i, act in enumerate(ACTIVATIONS):
        c = Case(f"activation_{act}", 200 + i)
        z = c.randn("z", 4, 9, scale=2.0)
        y = activate(act, z)
        c.save("y", y)
        c.backward(y, [z], ["dx"])
        c.param("activation", act)
        c.close()


def softmax_cases():
    for i, (shape, axis) in enumerate([((2, 3, 5), -1), ((2, 5, 3), 1), ((4, 6), 0),
                                       ((3, 4, 2, 2), 1)]):
        c = Case(f"softmax_axis{i}", 220 + i)
        x = c.randn("x", *shape, scale=2.0)
        y = F.softmax(x, dim=axis)
        c.save("y", y)
        c.backward(y, [x], ["dx"])
        c.param("axis", axis)
        c.close()


def dense_case(name, seed, rows, inputs, outputs, act, bias=True):
    c = Case(name, seed)
    x = c.randn("x", rows, inputs)
    w = c.randn("kernel", inputs, outputs, scale=1.0 / math.sqrt(inputs))
    z = x @ w
    params = [x, w]
    if bias:
        b = c.randn("bias", outputs)
        z = z + b
        params.append(b)
    y = activate(act, z)
    c.save("z", z)
    c.save("y", y)
    c.backward(y, params, ["dx", "dkernel", "dbias"][:len(params)])
    c.param("activation", act)
    c.close()


def dense_cases():
    dense_case("dense_relu", 1, 5, 7, 3, "relu")
    dense_case("dense_batch1_nobias_linear", 2, 1, 16, 9, "linear", bias=False)
    dense_case("dense_softmax", 3, 4, 8, 6, "softmax")
    dense_case("dense_gelu_wide", 4, 3, 33, 70, "gelu")
    dense_case("dense_swish_odd", 5, 7, 5, 11, "swish")
    dense_case("dense_tanh_many_rows", 6, 67, 9, 4, "tanh")


# ---------------------------------------------------------------- convolutions

def conv2d_case(name, seed, batch, h, w, cin, kh, kw, cout, stride=(1, 1), dilation=(1, 1),
                padding="valid", act="linear", bias=True):
    c = Case(name, seed)
    x = c.randn("x", batch, h, w, cin)
    k = c.randn("kernel", kh, kw, cin, cout, scale=1.0 / math.sqrt(kh * kw * cin))
    xt = nchw(x)
    if padding == "same":
        top, bottom = same_pads(h, kh, stride[0], dilation[0])
        left, right = same_pads(w, kw, stride[1], dilation[1])
        xt = F.pad(xt, (left, right, top, bottom))
    b = c.randn("bias", cout) if bias else None
    z = nhwc(F.conv2d(xt, k.permute(3, 2, 0, 1), b, stride=stride, dilation=dilation))
    y = activate(act, z)
    c.save("z", z)
    c.save("y", y)
    params = [x, k] + ([b] if bias else [])
    c.backward(y, params, ["dx", "dkernel", "dbias"][:len(params)])
    window_params(c, stride, dilation, padding, act)
    c.close()


def conv2d_cases():
    conv2d_case("conv2d_3x3_same_relu", 20, 2, 7, 9, 3, 3, 3, 4, padding="same", act="relu")
    conv2d_case("conv2d_even_kernel_same_stride2", 21, 1, 8, 7, 2, 4, 2, 3, stride=(2, 2),
                padding="same")
    conv2d_case("conv2d_dilation2_valid_tanh", 22, 2, 9, 8, 3, 3, 3, 2, dilation=(2, 2),
                act="tanh")
    conv2d_case("conv2d_1x1_sigmoid", 23, 3, 5, 5, 4, 1, 1, 6, act="sigmoid")
    conv2d_case("conv2d_1x1_stride2_nobias", 24, 1, 5, 6, 3, 1, 1, 2, stride=(2, 2), bias=False)
    conv2d_case("conv2d_5x5_stride2_valid_odd", 25, 1, 11, 9, 2, 5, 5, 3, stride=(2, 2))
    conv2d_case("conv2d_dilation2_same_even_elu", 26, 2, 6, 7, 2, 2, 2, 3, dilation=(2, 2),
                padding="same", act="elu")
    conv2d_case("conv2d_stride_2x1_same_swish", 27, 1, 7, 6, 3, 3, 2, 4, stride=(2, 1),
                padding="same", act="swish")
    conv2d_case("conv2d_softmax_same_stride2", 28, 2, 5, 5, 2, 3, 3, 5, stride=(2, 2),
                padding="same", act="softmax")


def conv2d_transpose_case(name, seed, batch, h, w, cin, kh, kw, cout, stride=(1, 1),
                          dilation=(1, 1), padding="valid", act="linear", bias=True):
    """Keras Conv2DTranspose (TF semantics): PyTorch's full transposed convolution
    cropped by max(kd - stride, 0) // 2 (SAME) or zero-extended (VALID, kernel < stride)."""
    c = Case(name, seed)
    x = c.randn("x", batch, h, w, cin)
    k = c.randn("kernel", kh, kw, cout, cin, scale=1.0 / math.sqrt(kh * kw * cin))
    full = F.conv_transpose2d(nchw(x), k.permute(3, 2, 0, 1), None, stride=stride,
                              dilation=dilation)
    crop = []
    for axis, (n, kk, s, d) in enumerate([(h, kh, stride[0], dilation[0]),
                                          (w, kw, stride[1], dilation[1])]):
        span = (kk - 1) * d + 1
        size = n * s if padding == "same" else n * s + max(span - s, 0)
        before = max(span - s, 0) // 2 if padding == "same" else 0
        crop.append((-before, size - (full.shape[2 + axis] - before)))
    z = F.pad(full, (crop[1][0], crop[1][1], crop[0][0], crop[0][1]))
    params = [x, k]
    if bias:
        b = c.randn("bias", cout)
        z = z + b.view(1, cout, 1, 1)
        params.append(b)
    z = nhwc(z)
    y = activate(act, z)
    c.save("z", z)
    c.save("y", y)
    c.backward(y, params, ["dx", "dkernel", "dbias"][:len(params)])
    window_params(c, stride, dilation, padding, act)
    c.close()


def conv2d_transpose_cases():
    conv2d_transpose_case("conv2d_transpose_valid_s2_relu", 30, 2, 4, 3, 3, 3, 3, 2,
                          stride=(2, 2), act="relu")
    conv2d_transpose_case("conv2d_transpose_same_s2_k3", 31, 1, 3, 4, 2, 3, 3, 3,
                          stride=(2, 2), padding="same")
    conv2d_transpose_case("conv2d_transpose_same_s2_k4_tanh", 32, 2, 3, 3, 3, 4, 4, 2,
                          stride=(2, 2), padding="same", act="tanh")
    conv2d_transpose_case("conv2d_transpose_valid_k1_s2", 33, 1, 3, 2, 2, 1, 1, 2,
                          stride=(2, 2))
    conv2d_transpose_case("conv2d_transpose_same_s1_k3_nobias", 34, 1, 5, 4, 3, 3, 3, 2,
                          padding="same", bias=False)
    conv2d_transpose_case("conv2d_transpose_dilation2_valid_gelu", 35, 1, 4, 4, 2, 3, 2, 3,
                          dilation=(2, 2), act="gelu")
    conv2d_transpose_case("conv2d_transpose_same_s3_k5_odd", 36, 1, 3, 2, 2, 5, 5, 2,
                          stride=(3, 3), padding="same")
    conv2d_transpose_case("conv2d_transpose_same_s2_k2_sigmoid", 37, 2, 3, 3, 2, 2, 2, 2,
                          stride=(2, 2), padding="same", act="sigmoid")


# ---------------------------------------------------------------- pooling, upsampling

def pool_case(name, seed, kind, batch, h, w, ch, pool, stride, padding, ties=False):
    c = Case(name, seed)
    x = c.ints("x", -2, 3, batch, h, w, ch) if ties else c.randn("x", batch, h, w, ch)
    xt = nchw(x)
    pads = (0, 0, 0, 0)
    if padding == "same":
        top, bottom = same_pads(h, pool[0], stride[0], 1)
        left, right = same_pads(w, pool[1], stride[1], 1)
        pads = (left, right, top, bottom)
    if kind == "max":
        y = F.max_pool2d(F.pad(xt, pads, value=-math.inf), pool, stride)
    else:
        area = pool[0] * pool[1]
        sums = F.avg_pool2d(F.pad(xt, pads), pool, stride) * area
        counts = F.avg_pool2d(F.pad(torch.ones_like(xt), pads), pool, stride) * area
        y = sums / counts
    c.backward(nhwc(y), [x], ["dx"])
    c.param("kind", kind)
    c.param("pool_h", pool[0])
    c.param("pool_w", pool[1])
    c.param("stride_h", stride[0])
    c.param("stride_w", stride[1])
    c.param("padding", padding)
    c.close()


def pool_cases():
    for kind in ["max", "avg"]:
        pool_case(f"pool_{kind}_2x2_valid", 40, kind, 2, 6, 5, 3, (2, 2), (2, 2), "valid")
        pool_case(f"pool_{kind}_3x3_s2_same_odd", 41, kind, 1, 7, 5, 2, (3, 3), (2, 2), "same")
        pool_case(f"pool_{kind}_3x2_s1_same_overlap", 42, kind, 2, 5, 4, 3, (3, 2), (1, 1),
                  "same")
        pool_case(f"pool_{kind}_2x3_s1x2_valid", 43, kind, 1, 4, 7, 70, (2, 3), (1, 2), "valid")
    pool_case("pool_max_ties_3x3_s1_same", 44, "max", 2, 5, 6, 3, (3, 3), (1, 1), "same",
              ties=True)


def global_cases():
    c = Case("global_max2d", 60)
    x = c.randn("x", 2, 3, 4, 5)
    c.backward(torch.amax(x, dim=(1, 2)), [x], ["dx"])
    c.close()
    c = Case("global_max2d_ties", 61)
    x = c.ints("x", 0, 3, 3, 2, 3, 4)
    c.backward(torch.amax(x, dim=(1, 2)), [x], ["dx"])
    c.close()
    c = Case("global_avg2d", 62)
    x = c.randn("x", 2, 3, 5, 4)
    c.backward(x.mean(dim=(1, 2)), [x], ["dx"])
    c.close()
    c = Case("global_avg1d", 63)
    x = c.randn("x", 3, 7, 5)
    c.backward(x.mean(dim=1), [x], ["dx"])
    c.close()


def upsampling_case(name, seed, batch, h, w, ch, size, interpolation):
    c = Case(name, seed)
    x = c.randn("x", batch, h, w, ch)
    if interpolation == "nearest":
        y = x.repeat_interleave(size[0], dim=1).repeat_interleave(size[1], dim=2)
    else:
        y = nhwc(F.interpolate(nchw(x), size=(h * size[0], w * size[1]), mode="bilinear",
                               align_corners=False))
    c.backward(y, [x], ["dx"])
    c.param("size_h", size[0])
    c.param("size_w", size[1])
    c.param("interpolation", interpolation)
    c.close()


def upsampling_cases():
    upsampling_case("upsampling_nearest_2x3", 50, 2, 3, 4, 3, (2, 3), "nearest")
    upsampling_case("upsampling_bilinear_2x2", 51, 1, 4, 5, 2, (2, 2), "bilinear")
    upsampling_case("upsampling_bilinear_3x2", 52, 2, 3, 3, 3, (3, 2), "bilinear")
    upsampling_case("upsampling_bilinear_1x1_width1", 53, 1, 3, 1, 2, (4, 3), "bilinear")


# ---------------------------------------------------------------- embedding, merges

def embedding_cases():
    for dtype, suffix in [(np.int32, "i32"), (np.int64, "i64")]:
        c = Case(f"embedding_{suffix}", 70)
        table = c.randn("table", 6, 5)
        idx = torch.randint(0, 6, (4, 3), generator=c.gen)
        idx[0, 0] = idx[1, 1] = 2  # repeated rows must add up
        np.save(os.path.join(c.dir, "indices.npy"), idx.numpy().astype(dtype))
        c.backward(F.embedding(idx, table), [table], ["dtable"])
        c.close()


def merge_cases():
    c = Case("concatenate_middle", 80)
    parts = [c.randn(f"x{k}", 2, n, 3) for k, n in enumerate([1, 4, 2])]
    c.backward(torch.cat(parts, dim=1), parts, ["dx0", "dx1", "dx2"])
    c.close()
    c = Case("add3", 81)
    parts = [c.randn(f"x{k}", 3, 5) for k in range(3)]
    c.backward(parts[0] + parts[1] + parts[2], parts, ["dx0", "dx1", "dx2"])
    c.close()
    c = Case("average3", 82)
    parts = [c.randn(f"x{k}", 3, 5) for k in range(3)]
    c.backward((parts[0] + parts[1] + parts[2]) / 3, parts, ["dx0", "dx1", "dx2"])
    c.close()


# ---------------------------------------------------------------- batch normalization

def batch_norm_case(name, seed, shape, affine, momentum=0.9, epsilon=1e-3):
    c = Case(name, seed)
    x = c.randn("x", *shape, scale=2.0)
    ch = shape[-1]
    rows = x.reshape(-1, ch)
    n = rows.shape[0]
    mean = rows.mean(dim=0)
    var = ((rows - mean) ** 2).mean(dim=0)
    y = (rows - mean) / torch.sqrt(var + epsilon)
    params, names = [x], ["dx"]
    if affine:
        gamma = c.randn("gamma", ch)
        beta = c.randn("beta", ch)
        y = y * gamma + beta
        params += [gamma, beta]
        names += ["dgamma", "dbeta"]
    moving_mean = c.randn("moving_mean", ch, grad=False)
    moving_var = torch.rand(ch, generator=c.gen, dtype=torch.float32) + 0.5
    c.save("moving_variance", moving_var)
    moving_var = moving_var.double()
    c.save("y", y.reshape(shape))
    c.save("save_mean", mean)
    c.save("save_invstd", 1.0 / torch.sqrt(var + epsilon))
    c.save("new_moving_mean", moving_mean * momentum + mean * (1 - momentum))
    c.save("new_moving_variance", moving_var * momentum + var * n / (n - 1) * (1 - momentum))
    c.backward(y.reshape(shape), params, names)
    c.param("momentum", momentum)
    c.param("epsilon", epsilon)
    c.close()


def batch_norm_cases():
    batch_norm_case("batch_norm_2d", 90, (6, 5), True)
    batch_norm_case("batch_norm_4d", 91, (2, 3, 4, 3), True, momentum=0.99, epsilon=1e-5)
    batch_norm_case("batch_norm_2d_noaffine", 92, (9, 70), False)


# ---------------------------------------------------------------- LSTM

def lstm_case(name, seed, batch, steps, inputs, units, recurrent_activation="sigmoid",
              return_sequences=True, bias=True, initial=False, state_grads=False):
    c = Case(name, seed)
    x = c.randn("x", batch, steps, inputs)
    kernel = c.randn("kernel", inputs, 4 * units, scale=0.5)
    recurrent = c.randn("recurrent_kernel", units, 4 * units, scale=0.5)
    params = [x, kernel, recurrent]
    names = ["dx", "dkernel", "drecurrent_kernel"]
    b = None
    if bias:
        b = c.randn("bias", 4 * units, scale=0.5)
        params.append(b)
        names.append("dbias")
    if initial:
        h = c.randn("h0", batch, units)
        cell = c.randn("c0", batch, units)
        params += [h, cell]
        names += ["dh0", "dc0"]
    else:
        h = torch.zeros(batch, units, dtype=torch.float64)
        cell = torch.zeros(batch, units, dtype=torch.float64)
    outputs = []
    for t in range(steps):
        z = x[:, t] @ kernel + h @ recurrent
        if b is not None:
            z = z + b
        zi, zf, zc, zo = torch.split(z, units, dim=1)
        i = activate(recurrent_activation, zi)
        f = activate(recurrent_activation, zf)
        o = activate(recurrent_activation, zo)
        cell = f * cell + i * torch.tanh(zc)
        h = o * torch.tanh(cell)
        outputs.append(h)
    out = torch.stack(outputs, dim=1) if return_sequences else h
    c.save("output", out)
    c.save("h_out", h)
    c.save("c_out", cell)
    dout = c.randn("doutput", *out.shape, grad=False)
    total = (out * dout).sum()
    if state_grads:
        total = total + (h * c.randn("dh_out", batch, units, grad=False)).sum()
        total = total + (cell * c.randn("dc_out", batch, units, grad=False)).sum()
    grads = torch.autograd.grad(total, params)
    for n, g in zip(names, grads):
        c.save(n, g)
    c.param("recurrent_activation", recurrent_activation)
    c.param("return_sequences", int(return_sequences))
    c.close()


def lstm_cases():
    lstm_case("lstm_sequences_states", 100, 3, 5, 4, 6, initial=True, state_grads=True)
    lstm_case("lstm_last_hard_sigmoid", 101, 2, 6, 3, 5, "hard_sigmoid",
              return_sequences=False)
    lstm_case("lstm_batch1_nobias_last_states", 102, 1, 4, 5, 3, return_sequences=False,
              bias=False, initial=True, state_grads=True)
    lstm_case("lstm_sequences_hard_sigmoid_initial", 103, 2, 3, 2, 4, "hard_sigmoid",
              initial=True)


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    torch.set_grad_enabled(True)
    activation_cases()
    softmax_cases()
    dense_cases()
    conv2d_cases()
    conv2d_transpose_cases()
    pool_cases()
    global_cases()
    upsampling_cases()
    embedding_cases()
    merge_cases()
    batch_norm_cases()
    lstm_cases()


if __name__ == "__main__":
    main()
