#!/usr/bin/python3
"""Reference fixtures for the fgc runtime kernels, computed with PyTorch.

Each case gets a folder tests/fixtures/runtime/<case>/ holding its inputs,
weights (in Keras layouts) and expected outputs as .npy files, plus params.txt
with one "key value" line per kernel parameter. The C++ tests in tests/runtime/
run the kernels on these files; CI has no PyTorch, so the fixtures are committed.

Inputs are random float32 tensors from fixed seeds; the references are computed
in float64 from those same float32 values (Keras layouts converted to PyTorch's)
and stored as float32.

Regenerate (needs python3-torch and python3-numpy; Debian's, hence /usr/bin):
    /usr/bin/python3 tests/reference/runtime_kernels.py
This rewrites tests/fixtures/runtime/ from scratch; the output is deterministic.
"""

import math
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "..", "fixtures", "runtime"))

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu",
               "softplus", "swish", "hard_sigmoid"]


def activate(name, x):
    """The Keras activation `name` applied to a float64 tensor (softmax: last axis)."""
    if name == "linear":
        return x
    if name == "relu":
        return F.relu(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "softmax":
        return F.softmax(x, dim=-1)
    if name == "elu":
        return F.elu(x)
    if name == "selu":
        return F.selu(x)
    if name == "gelu":
        return F.gelu(x)  # exact (erf) form, Keras' default approximate=False
    if name == "softplus":
        return F.softplus(x)
    if name == "swish":
        return F.silu(x)
    if name == "hard_sigmoid":
        return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)  # tf.keras 2.x definition
    raise ValueError(name)


class Case:
    """One fixture folder: random float32 inputs, float64 references."""

    def __init__(self, name, seed):
        self.dir = os.path.join(ROOT, name)
        os.makedirs(self.dir)
        self.gen = torch.Generator().manual_seed(seed)
        self.params = []

    def randn(self, name, *shape, scale=1.0):
        """Saves a random float32 array and returns it as a float64 tensor."""
        t = (torch.randn(*shape, generator=self.gen, dtype=torch.float32) * scale)
        np.save(os.path.join(self.dir, name + ".npy"), t.numpy())
        return t.double()

    def uniform(self, name, *shape, low=0.0, high=1.0):
        t = torch.rand(*shape, generator=self.gen, dtype=torch.float32) * (high - low) + low
        np.save(os.path.join(self.dir, name + ".npy"), t.numpy())
        return t.double()

    def save(self, name, array):
        if isinstance(array, torch.Tensor):
            array = array.detach().numpy()
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        np.save(os.path.join(self.dir, name + ".npy"), np.ascontiguousarray(array))

    def param(self, key, value):
        self.params.append(f"{key} {value}")

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


# ---------------------------------------------------------------- activations, dense, softmax

def activation_cases():
    for i, act in enumerate(ACTIVATIONS):
        c = Case(f"activation_{act}", 100 + i)
        x = c.randn("x", 3, 7, scale=2.0)
        c.save("y", activate(act, x))
        c.param("activation", act)
        c.close()
    # Saturation and overflow: every integer in [-30, 30] plus large random values.
    for i, act in enumerate(ACTIVATIONS):
        c = Case(f"activation_wide_{act}", 120 + i)
        grid = torch.arange(-30, 31, dtype=torch.float32).view(1, 61)
        noise = torch.randn(2, 61, generator=c.gen, dtype=torch.float32) * 12.0
        x = torch.cat([grid, noise])
        np.save(os.path.join(c.dir, "x.npy"), x.numpy())
        c.save("y", activate(act, x.double()))
        c.param("activation", act)
        c.close()


def dense_case(name, seed, rows, inputs, outputs, act, bias=True):
    c = Case(name, seed)
    x = c.randn("x", rows, inputs)
    w = c.randn("kernel", inputs, outputs, scale=1.0 / math.sqrt(inputs))
    y = x @ w
    if bias:
        y = y + c.randn("bias", outputs)
    c.save("y", activate(act, y))
    c.param("activation", act)
    c.close()


def dense_cases():
    dense_case("dense_relu", 1, 5, 7, 3, "relu")
    dense_case("dense_batch1_nobias", 2, 1, 16, 9, "linear", bias=False)
    dense_case("dense_softmax", 3, 4, 8, 6, "softmax")
    dense_case("dense_gelu_wide", 4, 3, 33, 70, "gelu")
    # Output widths that are multiples of the vector width take the register-blocked loop:
    # rows not a multiple of its 6-row blocks, one row, an activation applied after it.
    dense_case("dense_blocked_relu", 5, 13, 40, 64, "relu")
    dense_case("dense_blocked_batch1_nobias", 6, 1, 24, 32, "linear", bias=False)
    dense_case("dense_blocked_tanh_rows", 7, 70, 17, 48, "tanh")


def softmax_case(name, seed, shape, axis):
    c = Case(name, seed)
    x = c.randn("x", *shape, scale=3.0)
    c.save("y", F.softmax(x, dim=axis))
    c.param("axis", axis)
    c.close()


def softmax_cases():
    softmax_case("softmax_last", 10, (2, 3, 5), -1)
    softmax_case("softmax_middle", 11, (2, 5, 3), 1)
    softmax_case("softmax_first", 12, (4, 6), 0)


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
    y = F.conv2d(xt, k.permute(3, 2, 0, 1), b, stride=stride, dilation=dilation)
    c.save("y", activate(act, nhwc(y)))
    for key, value in [("stride_h", stride[0]), ("stride_w", stride[1]),
                       ("dilation_h", dilation[0]), ("dilation_w", dilation[1]),
                       ("padding", padding), ("activation", act)]:
        c.param(key, value)
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
    conv2d_case("conv2d_dilation2_same_even", 26, 2, 6, 7, 2, 2, 2, 3, dilation=(2, 2),
                padding="same", act="elu")
    conv2d_case("conv2d_stride_2x1_same", 27, 1, 7, 6, 3, 3, 2, 4, stride=(2, 1),
                padding="same", act="swish")
    # A few output channels over a vector or more of input channels: a dot product along the
    # input channels per output pixel (runtime/src/channel_dot.h), 20 and 17 channels leaving
    # a remainder after whole vectors in every CPU variant.
    conv2d_case("conv2d_few_outputs_same_sigmoid", 28, 2, 9, 11, 20, 3, 3, 1, padding="same",
                act="sigmoid")
    conv2d_case("conv2d_few_outputs_stride_dilation", 29, 1, 10, 9, 17, 3, 2, 3,
                stride=(2, 1), dilation=(1, 2), padding="same", act="relu")


def conv2d_transpose_case(name, seed, batch, h, w, cin, kh, kw, cout, stride=(1, 1),
                          dilation=(1, 1), padding="valid", act="linear", bias=True):
    """Keras Conv2DTranspose: TF conv2d_transpose, i.e. the full transposed convolution
    cropped by pad_before = max(kd - stride, 0) // 2 (SAME) or zero-extended (VALID
    with kernel < stride), then bias and activation."""
    c = Case(name, seed)
    x = c.randn("x", batch, h, w, cin)
    k = c.randn("kernel", kh, kw, cout, cin, scale=1.0 / math.sqrt(kh * kw * cin))
    full = F.conv_transpose2d(nchw(x), k.permute(3, 2, 0, 1), None, stride=stride,
                              dilation=dilation)
    sizes, pads = [], []
    for n, kk, s, d in [(h, kh, stride[0], dilation[0]), (w, kw, stride[1], dilation[1])]:
        span = (kk - 1) * d + 1
        if padding == "same":
            sizes.append(n * s)
            pads.append(max(span - s, 0) // 2)
        else:
            sizes.append(n * s + max(span - s, 0))
            pads.append(0)
    y = torch.zeros(batch, cout, sizes[0], sizes[1], dtype=torch.float64)
    rows = min(sizes[0], full.shape[2] - pads[0])
    cols = min(sizes[1], full.shape[3] - pads[1])
    y[:, :, :rows, :cols] = full[:, :, pads[0]:pads[0] + rows, pads[1]:pads[1] + cols]
    if bias:
        y = y + c.randn("bias", cout).view(1, cout, 1, 1)
    c.save("y", activate(act, nhwc(y)))
    for key, value in [("stride_h", stride[0]), ("stride_w", stride[1]),
                       ("dilation_h", dilation[0]), ("dilation_w", dilation[1]),
                       ("padding", padding), ("activation", act)]:
        c.param(key, value)
    c.close()


def conv2d_transpose_cases():
    conv2d_transpose_case("conv2d_transpose_valid_s2", 30, 2, 4, 3, 3, 3, 3, 2, stride=(2, 2),
                          act="relu")
    conv2d_transpose_case("conv2d_transpose_same_s2_k3", 31, 1, 3, 4, 2, 3, 3, 3,
                          stride=(2, 2), padding="same")
    conv2d_transpose_case("conv2d_transpose_same_s2_k4", 32, 2, 3, 3, 3, 4, 4, 2,
                          stride=(2, 2), padding="same", act="tanh")
    conv2d_transpose_case("conv2d_transpose_valid_k1_s2", 33, 1, 3, 2, 2, 1, 1, 2,
                          stride=(2, 2))
    conv2d_transpose_case("conv2d_transpose_same_s1_k3_nobias", 34, 1, 5, 4, 3, 3, 3, 2,
                          padding="same", bias=False)
    conv2d_transpose_case("conv2d_transpose_dilation2_valid", 35, 1, 4, 4, 2, 3, 2, 3,
                          dilation=(2, 2))
    conv2d_transpose_case("conv2d_transpose_same_s3_k5_odd", 36, 1, 3, 2, 2, 5, 5, 2,
                          stride=(3, 3), padding="same")
    conv2d_transpose_case("conv2d_transpose_same_s2_k2", 37, 1, 3, 3, 2, 2, 2, 2,
                          stride=(2, 2), padding="same")
    conv2d_transpose_case("conv2d_transpose_s1_one_output", 38, 2, 6, 5, 16, 3, 3, 1,
                          act="sigmoid")


# ---------------------------------------------------------------- pooling, upsampling

def pool_case(name, seed, kind, batch, h, w, ch, pool, stride, padding):
    c = Case(name, seed)
    x = c.randn("x", batch, h, w, ch)
    xt = nchw(x)
    if padding == "same":
        top, bottom = same_pads(h, pool[0], stride[0], 1)
        left, right = same_pads(w, pool[1], stride[1], 1)
    else:
        top = bottom = left = right = 0
    if kind == "max":
        y = F.max_pool2d(F.pad(xt, (left, right, top, bottom), value=-math.inf), pool, stride)
    else:
        # TF excludes padded cells: divide window sums by the number of real cells.
        sums = F.avg_pool2d(F.pad(xt, (left, right, top, bottom)), pool, stride) * (
            pool[0] * pool[1])
        ones = F.pad(torch.ones_like(xt[:, :1]), (left, right, top, bottom))
        counts = F.avg_pool2d(ones, pool, stride) * (pool[0] * pool[1])
        y = sums / counts
    c.save("y", nhwc(y))
    for key, value in [("kind", kind), ("pool_h", pool[0]), ("pool_w", pool[1]),
                       ("stride_h", stride[0]), ("stride_w", stride[1]), ("padding", padding)]:
        c.param(key, value)
    c.close()


def pooling_cases():
    pool_case("max_pool_2x2_valid", 40, "max", 2, 7, 9, 3, (2, 2), (2, 2), "valid")
    pool_case("max_pool_3x3_same_s2", 41, "max", 1, 8, 7, 2, (3, 3), (2, 2), "same")
    pool_case("avg_pool_2x2_same_s2_odd", 42, "avg", 2, 7, 5, 3, (2, 2), (2, 2), "same")
    pool_case("avg_pool_3x3_same_s1", 43, "avg", 1, 5, 6, 2, (3, 3), (1, 1), "same")
    pool_case("avg_pool_3x2_valid_s2x1", 44, "avg", 1, 7, 6, 4, (3, 2), (2, 1), "valid")
    pool_case("max_pool_2x3_same_s1x2", 45, "max", 2, 4, 7, 3, (2, 3), (1, 2), "same")
    # Channels in whole vectors plus a remainder.
    pool_case("max_pool_3x3_valid_s3_wide", 46, "max", 2, 10, 9, 20, (3, 3), (3, 3), "valid")
    pool_case("avg_pool_2x2_same_s2_wide", 47, "avg", 1, 5, 7, 35, (2, 2), (2, 2), "same")

    c = Case("global_pool2d", 46)
    x = c.randn("x", 3, 4, 5, 6)
    c.save("y_max", x.amax(dim=(1, 2)))
    c.save("y_avg", x.mean(dim=(1, 2)))
    c.close()

    c = Case("global_avg_pool1d", 47)
    x = c.randn("x", 2, 7, 5)
    c.save("y", x.mean(dim=1))
    c.close()


def upsampling_case(name, seed, batch, h, w, ch, size, interpolation):
    c = Case(name, seed)
    x = c.randn("x", batch, h, w, ch)
    out = (h * size[0], w * size[1])
    if interpolation == "nearest":
        y = F.interpolate(nchw(x), size=out, mode="nearest")
    else:
        y = F.interpolate(nchw(x), size=out, mode="bilinear", align_corners=False)
    c.save("y", nhwc(y))
    c.param("size_h", size[0])
    c.param("size_w", size[1])
    c.param("interpolation", interpolation)
    c.close()


def upsampling_cases():
    upsampling_case("upsampling_nearest_2x3", 50, 2, 3, 4, 3, (2, 3), "nearest")
    upsampling_case("upsampling_bilinear_2x2", 51, 1, 4, 5, 2, (2, 2), "bilinear")
    upsampling_case("upsampling_bilinear_3x2", 52, 2, 3, 3, 3, (3, 2), "bilinear")


# ---------------------------------------------------------------- embedding

def embedding_cases():
    for name, seed, dtype in [("embedding_i32", 60, np.int32), ("embedding_i64", 61, np.int64)]:
        c = Case(name, seed)
        table = c.randn("table", 10, 4)
        idx = torch.randint(0, 10, (3, 5), generator=c.gen)
        idx[0, 0], idx[2, 4] = 0, 9  # both ends of the table
        np.save(os.path.join(c.dir, "indices.npy"), idx.numpy().astype(dtype))
        c.save("y", F.embedding(idx, table))
        c.close()


# ---------------------------------------------------------------- LSTM

def lstm_reference(x, kernel, recurrent, bias, h, c, recurrent_activation):
    """Keras LSTM step by step: gates i, f, c, o; returns (sequence, h, c)."""
    units = recurrent.shape[0]
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent
        if bias is not None:
            z = z + bias
        zi, zf, zc, zo = torch.split(z, units, dim=1)
        i = activate(recurrent_activation, zi)
        f = activate(recurrent_activation, zf)
        o = activate(recurrent_activation, zo)
        c = f * c + i * torch.tanh(zc)
        h = o * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h, c


def lstm_case(name, seed, batch, steps, inputs, units, recurrent_activation,
              return_sequences, initial_state, bias=True):
    c = Case(name, seed)
    x = c.randn("x", batch, steps, inputs)
    kernel = c.randn("kernel", inputs, 4 * units, scale=0.5)
    recurrent = c.randn("recurrent_kernel", units, 4 * units, scale=0.5)
    b = c.randn("bias", 4 * units, scale=0.5) if bias else None
    if initial_state:
        h0 = c.randn("h0", batch, units)
        c0 = c.randn("c0", batch, units)
    else:
        h0 = torch.zeros(batch, units, dtype=torch.float64)
        c0 = torch.zeros(batch, units, dtype=torch.float64)
    seq, h, cell = lstm_reference(x, kernel, recurrent, b, h0, c0, recurrent_activation)
    if recurrent_activation == "sigmoid":
        # Cross-check the step-by-step reference against torch.nn.LSTM (same gate order).
        lstm = torch.nn.LSTM(inputs, units, batch_first=True).double()
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(kernel.T)
            lstm.weight_hh_l0.copy_(recurrent.T)
            lstm.bias_ih_l0.copy_(b if b is not None else torch.zeros(4 * units))
            lstm.bias_hh_l0.zero_()
            seq2, (h2, c2) = lstm(x, (h0[None], c0[None]))
        assert torch.allclose(seq, seq2) and torch.allclose(cell, c2[0])
    c.save("y", seq if return_sequences else h)
    c.save("h", h)
    c.save("c", cell)
    c.param("recurrent_activation", recurrent_activation)
    c.param("return_sequences", int(return_sequences))
    c.close()


def lstm_cases():
    lstm_case("lstm_sequences_state", 70, 2, 5, 3, 4, "sigmoid", True, True)
    lstm_case("lstm_last_hard_sigmoid", 71, 1, 6, 5, 3, "hard_sigmoid", False, False)
    lstm_case("lstm_batch3_nobias", 72, 3, 4, 2, 5, "sigmoid", False, True, bias=False)
    lstm_case("lstm_batch1_step1", 73, 1, 1, 4, 2, "sigmoid", True, False)


# ---------------------------------------------------------------- merge, batch norm

def merge_cases():
    for name, seed, shapes, axis in [
            ("concat_axis1", 80, [(2, 3, 4), (2, 5, 4), (2, 1, 4)], 1),
            ("concat_last", 81, [(2, 3, 2), (2, 3, 5)], -1),
            ("concat_axis0", 82, [(1, 4), (3, 4)], 0)]:
        c = Case(name, seed)
        xs = [c.randn(f"x{i}", *s) for i, s in enumerate(shapes)]
        c.save("y", torch.cat(xs, dim=axis))
        c.param("axis", axis)
        c.param("inputs", len(shapes))
        c.close()

    c = Case("add3", 83)
    xs = [c.randn(f"x{i}", 2, 3, 5) for i in range(3)]
    c.save("y", xs[0] + xs[1] + xs[2])
    c.param("inputs", 3)
    c.close()

    c = Case("average2", 84)
    xs = [c.randn(f"x{i}", 4, 7) for i in range(2)]
    c.save("y", (xs[0] + xs[1]) / 2)
    c.param("inputs", 2)
    c.close()


def batch_norm_case(name, seed, shape, affine, eps):
    c = Case(name, seed)
    ch = shape[-1]
    x = c.randn("x", *shape)
    mean = c.randn("mean", ch, scale=0.5)
    var = c.uniform("variance", ch, low=0.2, high=2.0)
    gamma = c.randn("gamma", ch) if affine else None
    beta = c.randn("beta", ch) if affine else None
    y = F.batch_norm(x.reshape(-1, ch), mean, var, gamma, beta, training=False, eps=eps)
    c.save("y", y.reshape(shape))
    c.param("epsilon", repr(eps))
    c.close()


def batch_norm_cases():
    batch_norm_case("batch_norm_affine", 90, (2, 3, 4, 5), True, 1e-3)
    batch_norm_case("batch_norm_plain", 91, (6, 7), False, 1e-5)


def main():
    torch.set_num_threads(1)
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    for make in [activation_cases, dense_cases, softmax_cases, conv2d_cases,
                 conv2d_transpose_cases, pooling_cases, upsampling_cases, embedding_cases,
                 lstm_cases, merge_cases, batch_norm_cases]:
        make()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    print(f"wrote {len(os.listdir(ROOT))} cases, {total} bytes, under {ROOT}")


if __name__ == "__main__":
    main()
