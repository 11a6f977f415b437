#!/usr/bin/python3
"""Independent inference references for the sample models, computed with PyTorch.

For each sample model (samples/*/*.pbtxt) this script parses the fgc model file with the
protobuf package, has `fgc export-weights` write the model's deterministic weights as .npy
files (Keras layouts), evaluates the model with a small interpreter over the model graph in
which every layer class is written with torch ops following Keras semantics (channels_last,
TF SAME padding, Keras LSTM gate order i, f, c, o, ...), and writes the seeded inputs and the
outputs to tests/fixtures/models/<sample>[_<variant>]/:
    input_<input layer name>.npy            float32 (integer-valued where it holds indices for
                                             a float input), int32 for int32 inputs
    output_<index>_<output layer name>.npy  float32, every model output
    meta.json                               model file, batch size, seed, input and output
                                             names in order, shapes, sums, weights digest
Outputs too large to commit (vgg19_features) are stored as a fixed pseudo-random sample of
flat indices and values (`output_<i>_<name>.idx.npy` int64, `.val.npy` float32) plus shape,
sum and sum of absolute values in meta.json.

The arithmetic is done in float64 on the float32 inputs and weights (the exact result for
those values, up to float64 rounding) and stored as float32. Before writing, the script
cross-checks the torch layers against separate plain-numpy formulations (a numpy MLP for
mnist_mlp; im2col convolution, scatter-add transposed convolution, windowed max pooling, an
LSTM loop and table look-ups for every such layer call of the small models) and fails if they
disagree.

Regenerate (needs Debian's python3-torch, python3-numpy, python3-protobuf and protoc; the
Debian python is /usr/bin/python3):
    /usr/bin/python3 tests/reference/models_inference.py --fgc build/tools/fgc/fgc
Options: --only NAME... to regenerate some fixtures, --list to list them. Output is
deterministic: each fixture folder is written to a temporary folder and renamed into place,
and running the script twice gives byte-identical files.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "models")
DTYPE = torch.float64  # arithmetic precision; fixtures are stored as float32

# Every fixture: folder name, model file, batch size, input RNG seed, sizes for the inputs'
# unknown (-1) non-batch dimensions, inputs to draw as binary 0/1 values, and whether outputs
# are stored as samples (idx/val) instead of whole arrays.
FIXTURE_SPECS = [
    dict(name="mnist_mlp", model="samples/mnist_mlp/model.pbtxt", batch=3, seed=1001),
    dict(name="mnist_mlp_batch1", model="samples/mnist_mlp/model.pbtxt", batch=1, seed=1002),
    dict(name="toy_resnet", model="samples/toy_resnet/model.pbtxt", batch=3, seed=2001),
    dict(name="toy_resnet_batch1", model="samples/toy_resnet/model.pbtxt", batch=1, seed=2002),
    dict(name="conv_autoencoder", model="samples/conv_autoencoder/model.pbtxt", batch=3,
         seed=3001),
    dict(name="conv_autoencoder_encoder", model="samples/conv_autoencoder/encoder.pbtxt",
         batch=3, seed=3002),
    dict(name="conv_autoencoder_decoder", model="samples/conv_autoencoder/decoder.pbtxt",
         batch=3, seed=3003),
    dict(name="conv_autoencoder_shared_encoder",
         model="samples/conv_autoencoder/shared_encoder.pbtxt", batch=3, seed=3004),
    dict(name="conv_autoencoder_shared_autoencoder",
         model="samples/conv_autoencoder/shared_autoencoder.pbtxt", batch=3, seed=3005),
    dict(name="ensemble", model="samples/ensemble/model.pbtxt", batch=3, seed=4001),
    dict(name="shared_embedding", model="samples/shared_embedding/model.pbtxt", batch=3,
         seed=5001, dims={"input_1": [6], "input_2": [9]}),
    dict(name="ticket_classifier", model="samples/ticket_classifier/model.pbtxt", batch=3,
         seed=6001, dims={"title": [10], "body": [100]}, binary=["tags"]),
    dict(name="ticket_classifier_short", model="samples/ticket_classifier/model.pbtxt",
         batch=3, seed=6002, dims={"title": [4], "body": [7]}, binary=["tags"]),
    # The full VGG19 (one output, stored whole) shares features.pbtxt's weights and, through
    # the same seed, its input file (git keeps the identical blob once).
    dict(name="vgg19_features", model="samples/vgg19_features/model.pbtxt", batch=1, seed=7001),
    # The layers added for Keras import, combined in one model.
    dict(name="keras_layers", model="tests/models/keras_layers/model.pbtxt", batch=3, seed=8001),
    dict(name="keras_layers_batch1", model="tests/models/keras_layers/model.pbtxt", batch=1,
         seed=8002),
    dict(name="vgg19_features_features", model="samples/vgg19_features/features.pbtxt",
         batch=1, seed=7001, sampled=True),
]
SAMPLE_COUNT = 2048  # flat indices kept per sampled output


# --------------------------------------------------------------------------------------------
# Model files

def load_schema(tmpdir):
    """Generates the Python module for schemas/fgc.proto into tmpdir and imports it."""
    os.makedirs(tmpdir, exist_ok=True)
    subprocess.run(["protoc", "--python_out=" + tmpdir, "-I", os.path.join(REPO, "schemas"),
                    os.path.join(REPO, "schemas", "fgc.proto")], check=True)
    sys.path.insert(0, tmpdir)
    import fgc_pb2  # noqa: E402  (generated just above)
    return fgc_pb2


def load_model(schema, path):
    """Reads a Model from a binary or text-format file (told apart by content, like fgc)."""
    from google.protobuf import text_format
    data = open(path, "rb").read()
    model = schema.Model()
    try:
        text_format.Parse(data.decode("utf-8"), model)
    except (UnicodeDecodeError, text_format.ParseError):
        model = schema.Model()
        model.ParseFromString(data)
    return model


def attr_value(v):
    """A Python value for an AttrValue: ints/floats/strings lists, None for `none`."""
    kind = v.WhichOneof("value")
    if kind is None or kind == "none":
        return None
    if kind in ("ints", "floats", "strings"):
        return list(getattr(v, kind).values)
    return getattr(v, kind)


class Attrs:
    """A layer's config with Keras's defaults for absent keys."""

    def __init__(self, layer):
        self.layer = layer

    def get(self, key, default=None):
        if key in self.layer.config:
            return attr_value(self.layer.config[key])
        return default

    def pair(self, key, default):
        v = self.get(key, default)
        if v is None:
            return None
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        return v * 2 if len(v) == 1 else v


# --------------------------------------------------------------------------------------------
# Layers (torch, Keras semantics, NHWC)

def activate(name, x):
    if name in (None, "linear"):
        return x
    if name == "relu":
        return F.relu(x)
    if name == "relu6":
        return torch.clamp(x, 0.0, 6.0)
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
        return F.gelu(x)  # Keras default approximate=False (erf form)
    if name == "softplus":
        return F.softplus(x)
    if name == "softsign":
        return F.softsign(x)
    if name in ("swish", "silu"):
        return F.silu(x)
    if name == "hard_sigmoid":
        return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)  # tf.keras 2.x definition
    if name == "exponential":
        return torch.exp(x)
    raise ValueError("unsupported activation %r" % name)


def same_pads(size, k, stride, dilation):
    """TF SAME padding along one axis: (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def pad_nchw(x, padding, k, strides, dilation=(1, 1), value=0.0):
    """Applies TF SAME padding to an NCHW tensor (no-op for 'valid')."""
    if padding == "valid":
        return x
    if padding != "same":
        raise ValueError("unsupported padding %r" % padding)
    ph = same_pads(x.shape[2], k[0], strides[0], dilation[0])
    pw = same_pads(x.shape[3], k[1], strides[1], dilation[1])
    return F.pad(x, (pw[0], pw[1], ph[0], ph[1]), value=value)


def to_nchw(x):
    return x.permute(0, 3, 1, 2)


def to_nhwc(x):
    return x.permute(0, 2, 3, 1).contiguous()


def deconv_length(size, k, padding, output_padding, stride, dilation):
    """Keras's deconv_output_length."""
    dk = k + (k - 1) * (dilation - 1)
    if output_padding is None:
        if padding == "valid":
            return size * stride + max(dk - stride, 0)
        if padding == "full":
            return size * stride - (stride + dk - 2)
        return size * stride
    pad = dk // 2 if padding == "same" else (dk - 1 if padding == "full" else 0)
    return (size - 1) * stride + dk - 2 * pad + output_padding


def layer_dense(ctx, a, xs):
    w = ctx.weight("kernel")
    y = torch.matmul(xs[0], w)
    if a.get("use_bias", True):
        y = y + ctx.weight("bias")
    return [activate(a.get("activation", "linear"), y)]


def layer_conv2d(ctx, a, xs):
    k = a.pair("kernel_size", None)
    s = a.pair("strides", [1, 1])
    d = a.pair("dilation_rate", [1, 1])
    groups = a.get("groups", 1)
    w = ctx.weight("kernel").permute(3, 2, 0, 1).contiguous()  # (kh,kw,in,out) -> (out,in,kh,kw)
    x = pad_nchw(to_nchw(xs[0]), a.get("padding", "valid"), k, s, d)
    y = F.conv2d(x, w, None, stride=s, dilation=d, groups=groups)
    y = to_nhwc(y)
    if a.get("use_bias", True):
        y = y + ctx.weight("bias")
    return [activate(a.get("activation", "linear"), y)]


def layer_conv2d_transpose(ctx, a, xs):
    k = a.pair("kernel_size", None)
    s = a.pair("strides", [1, 1])
    d = a.pair("dilation_rate", [1, 1])
    op = a.pair("output_padding", None)
    padding = a.get("padding", "valid")
    w = ctx.weight("kernel").permute(3, 2, 0, 1).contiguous()  # (kh,kw,out,in) -> (in,out,kh,kw)
    x = to_nchw(xs[0])
    full = F.conv_transpose2d(x, w, None, stride=s, dilation=d)  # (in-1)*s + dk, uncropped
    n, c = full.shape[0], full.shape[1]
    sizes, starts = [], []
    for i in range(2):
        n_in = x.shape[2 + i]
        length = deconv_length(n_in, k[i], padding, None if op is None else op[i], s[i], d[i])
        dk = (k[i] - 1) * d[i] + 1
        # The transposed conv is the gradient of a forward conv from `length` to n_in.
        start = 0
        if padding == "same":
            start = max((n_in - 1) * s[i] + dk - length, 0) // 2
        elif padding != "valid":
            raise ValueError("unsupported padding %r" % padding)
        sizes.append(length)
        starts.append(start)
    y = torch.zeros((n, c, sizes[0], sizes[1]), dtype=full.dtype)
    h = min(sizes[0], full.shape[2] - starts[0])
    wd = min(sizes[1], full.shape[3] - starts[1])
    y[:, :, :h, :wd] = full[:, :, starts[0]:starts[0] + h, starts[1]:starts[1] + wd]
    y = to_nhwc(y)
    if a.get("use_bias", True):
        y = y + ctx.weight("bias")
    return [activate(a.get("activation", "linear"), y)]


def layer_pool2d(kind):
    def run(ctx, a, xs):
        p = a.pair("pool_size", [2, 2])
        s = a.pair("strides", None) or p
        padding = a.get("padding", "valid")
        x = to_nchw(xs[0])
        if kind == "max":
            y = F.max_pool2d(pad_nchw(x, padding, p, s, value=float("-inf")), p, s)
        else:
            # TF averages over the valid (unpadded) elements of each window only.
            total = F.avg_pool2d(pad_nchw(x, padding, p, s), p, s) * (p[0] * p[1])
            ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype)
            count = F.avg_pool2d(pad_nchw(ones, padding, p, s), p, s) * (p[0] * p[1])
            y = total / count
        return [to_nhwc(y)]
    return run


def layer_global_pool(kind, axes):
    def run(ctx, a, xs):
        keep = a.get("keepdims", False)
        x = xs[0]
        y = torch.amax(x, dim=axes, keepdim=keep) if kind == "max" else \
            torch.mean(x, dim=axes, keepdim=keep)
        return [y]
    return run


def layer_upsampling2d(ctx, a, xs):
    size = a.pair("size", [2, 2])
    x = xs[0]
    interp = a.get("interpolation", "nearest")
    if interp == "nearest":
        return [x.repeat_interleave(size[0], dim=1).repeat_interleave(size[1], dim=2)]
    if interp == "bilinear":  # tf.image.resize: half-pixel centers
        y = F.interpolate(to_nchw(x), scale_factor=tuple(size), mode="bilinear",
                          align_corners=False)
        return [to_nhwc(y)]
    raise ValueError("unsupported interpolation %r" % interp)


def layer_flatten(ctx, a, xs):
    return [xs[0].reshape(xs[0].shape[0], -1)]  # channels_last: flat index in NHWC order


def layer_reshape(ctx, a, xs):
    return [xs[0].reshape((xs[0].shape[0],) + tuple(a.get("target_shape")))]


def layer_embedding(ctx, a, xs):
    if a.get("mask_zero", False):
        raise ValueError("mask_zero is not supported by this reference")
    x = xs[0]
    idx = torch.trunc(x).long() if x.is_floating_point() else x.long()  # Keras casts to int32
    if idx.numel() and (idx.min() < 0 or idx.max() >= a.get("input_dim")):
        raise ValueError("embedding index out of range")
    return [ctx.weight("embeddings")[idx]]


def layer_lstm(ctx, a, xs):
    for key in ("stateful", "time_major"):
        if a.get(key, False):
            raise ValueError("%s LSTM is not supported" % key)
    units = a.get("units")
    act = a.get("activation", "tanh")
    rec = a.get("recurrent_activation", "sigmoid")
    kernel = ctx.weight("kernel")
    recurrent = ctx.weight("recurrent_kernel")
    bias = ctx.weight("bias") if a.get("use_bias", True) else torch.zeros(4 * units, dtype=DTYPE)
    x = xs[0]
    n, steps = x.shape[0], x.shape[1]
    if len(xs) == 3:
        h, c = xs[1], xs[2]
    else:
        h = torch.zeros((n, units), dtype=DTYPE)
        c = torch.zeros((n, units), dtype=DTYPE)
    order = range(steps - 1, -1, -1) if a.get("go_backwards", False) else range(steps)
    outs = []
    for t in order:
        z = torch.matmul(x[:, t], kernel) + torch.matmul(h, recurrent) + bias
        i = activate(rec, z[:, :units])
        f = activate(rec, z[:, units:2 * units])
        g = activate(act, z[:, 2 * units:3 * units])
        o = activate(rec, z[:, 3 * units:])
        c = f * c + i * g
        h = o * activate(act, c)
        outs.append(h)
    main = torch.stack(outs, dim=1) if a.get("return_sequences", False) else h
    return [main, h, c] if a.get("return_state", False) else [main]


def layer_concatenate(ctx, a, xs):
    return [torch.cat(xs, dim=a.get("axis", -1))]


def layer_add(ctx, a, xs):
    y = xs[0]
    for x in xs[1:]:
        y = y + x
    return [y]


def layer_average(ctx, a, xs):
    return [layer_add(ctx, a, xs)[0] / len(xs)]


def layer_batchnorm(ctx, a, xs):
    x = xs[0]
    eps = a.get("epsilon", 1e-3)
    y = (x - ctx.weight("moving_mean")) / torch.sqrt(ctx.weight("moving_variance") + eps)
    if a.get("scale", True):
        y = y * ctx.weight("gamma")
    if a.get("center", True):
        y = y + ctx.weight("beta")
    return [y]


# Layers added for Keras import (tests/models/keras_layers/model.pbtxt).

def layer_conv1d(ctx, a, xs):
    k = a.pair("kernel_size", None)[0]
    stride = a.pair("strides", [1])[0]
    dilation = a.pair("dilation_rate", [1])[0]
    padding = a.get("padding", "valid")
    x = xs[0].transpose(1, 2)  # (N, C, T)
    if padding == "causal":
        x = F.pad(x, ((k - 1) * dilation, 0))
    elif padding == "same":
        x = F.pad(x, same_pads(x.shape[2], k, stride, dilation))
    w = ctx.weight("kernel").permute(2, 1, 0)  # Keras (k, in, out) -> torch (out, in, k)
    y = F.conv1d(x, w, stride=stride, dilation=dilation).transpose(1, 2)
    if a.get("use_bias", True):
        y = y + ctx.weight("bias")
    return [activate(a.get("activation", "linear"), y)]


def layer_pool1d(kind):
    def run(ctx, a, xs):
        p = a.pair("pool_size", [2])[0]
        s = (a.pair("strides", None) or [p])[0]
        padding = a.get("padding", "valid")
        x = xs[0].transpose(1, 2)  # (N, C, T)
        if padding == "same":
            pads = same_pads(x.shape[2], p, s, 1)
        else:
            pads = (0, 0)
        if kind == "max":
            y = F.max_pool1d(F.pad(x, pads, value=float("-inf")), p, s)
        else:  # TF averages over the real (unpadded) cells only
            total = F.avg_pool1d(F.pad(x, pads), p, s) * p
            count = F.avg_pool1d(F.pad(torch.ones_like(x[:1, :1]), pads), p, s) * p
            y = total / count
        return [y.transpose(1, 2)]
    return run


def four_sides(v):
    """Keras's int / (h, w) / ((top, bottom), (left, right)) forms (the last one flat)."""
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    if len(v) == 1:
        return v * 4
    if len(v) == 2:
        return [v[0], v[0], v[1], v[1]]
    return v


def layer_zero_padding2d(ctx, a, xs):
    t, b, l, r = four_sides(a.get("padding", [1, 1]))
    return [F.pad(xs[0], (0, 0, l, r, t, b))]


def layer_cropping2d(ctx, a, xs):
    t, b, l, r = four_sides(a.get("cropping", [0, 0]))
    x = xs[0]
    return [x[:, t:x.shape[1] - b, l:x.shape[2] - r, :]]


def layer_leaky_relu(ctx, a, xs):
    slope = a.get("negative_slope")
    return [F.leaky_relu(xs[0], a.get("alpha", 0.3) if slope is None else slope)]


def layer_gru(ctx, a, xs):
    """Keras's GRU equations (gate blocks z, r, h), step by step."""
    units = a.get("units")
    act, rec = a.get("activation", "tanh"), a.get("recurrent_activation", "sigmoid")
    reset_after = a.get("reset_after", True)
    kernel, recurrent = ctx.weight("kernel"), ctx.weight("recurrent_kernel")
    use_bias = a.get("use_bias", True)
    bias = ctx.weight("bias") if use_bias else None
    x = xs[0]
    h = xs[1] if len(xs) == 2 else torch.zeros((x.shape[0], units), dtype=DTYPE)
    order = range(x.shape[1] - 1, -1, -1) if a.get("go_backwards", False) else range(x.shape[1])
    outs = []
    for t in order:
        xp = torch.matmul(x[:, t], kernel)
        if use_bias:
            xp = xp + (bias[0] if reset_after else bias)
        if reset_after:
            rp = torch.matmul(h, recurrent) + (bias[1] if use_bias else 0)
            z = activate(rec, xp[:, :units] + rp[:, :units])
            r = activate(rec, xp[:, units:2 * units] + rp[:, units:2 * units])
            hh = activate(act, xp[:, 2 * units:] + r * rp[:, 2 * units:])
        else:
            z = activate(rec, xp[:, :units] + torch.matmul(h, recurrent[:, :units]))
            r = activate(rec, xp[:, units:2 * units] + torch.matmul(h, recurrent[:, units:2 * units]))
            hh = activate(act, xp[:, 2 * units:] + torch.matmul(r * h, recurrent[:, 2 * units:]))
        h = z * h + (1 - z) * hh
        outs.append(h)
    main = torch.stack(outs, dim=1) if a.get("return_sequences", False) else h
    return [main, h] if a.get("return_state", False) else [main]


class ObjectAttrs(Attrs):
    """The config of a nested layer object (Bidirectional's `layer`), with overrides."""

    class _Holder:
        def __init__(self, config):
            self.config = config

    def __init__(self, obj, overrides):
        super().__init__(ObjectAttrs._Holder(obj.attrs))
        self.overrides = overrides

    def get(self, key, default=None):
        if key in self.overrides:
            return self.overrides[key]
        return super().get(key, default)


class PrefixedWeights:
    def __init__(self, ctx, prefix):
        self.ctx, self.prefix = ctx, prefix

    def weight(self, name):
        return self.ctx.weight(self.prefix + name)


def layer_bidirectional(ctx, a, xs):
    obj = a.layer.config["layer"].obj
    run = {"LSTM": layer_lstm, "GRU": layer_gru}[obj.class_name]
    backwards = ObjectAttrs(obj, {}).get("go_backwards", False)
    fwd = run(PrefixedWeights(ctx, "forward_"), ObjectAttrs(obj, {"go_backwards": backwards}), xs)
    bwd = run(PrefixedWeights(ctx, "backward_"), ObjectAttrs(obj, {"go_backwards": not backwards}),
              xs)
    yf, yb = fwd[0], bwd[0]
    if ObjectAttrs(obj, {}).get("return_sequences", False):
        yb = torch.flip(yb, [1])  # Keras reverses the backward sequence back to input order
    mode = a.get("merge_mode", "concat") if "merge_mode" in a.layer.config else "concat"
    if mode is None:
        main = [yf, yb]
    else:
        main = [{"concat": lambda: torch.cat([yf, yb], -1), "sum": lambda: yf + yb,
                 "mul": lambda: yf * yb, "ave": lambda: (yf + yb) / 2}[mode]()]
    return main + fwd[1:] + bwd[1:]


def layer_attention(ctx, a, xs):
    q, v = xs[0], xs[1]
    k = xs[2] if len(xs) == 3 else v
    scale = ctx.weight("scale") if a.get("use_scale", False) else 1.0
    if a.get("score_mode", "dot") == "concat":
        s = ctx.weight("concat_score_weight") * \
            torch.tanh(scale * (q.unsqueeze(2) + k.unsqueeze(1))).sum(-1)
    else:
        s = scale * torch.matmul(q, k.transpose(1, 2))
    if a.get("causal", False) or a.get("use_causal_mask", False):
        mask = torch.ones(s.shape[1], s.shape[2], dtype=torch.bool).tril()
        s = s.masked_fill(~mask, float("-inf"))
    return [torch.matmul(torch.softmax(s, -1), v)]


LAYERS = {
    "Dense": layer_dense,
    "Conv2D": layer_conv2d,
    "Conv2DTranspose": layer_conv2d_transpose,
    "MaxPooling2D": layer_pool2d("max"),
    "AveragePooling2D": layer_pool2d("avg"),
    "GlobalMaxPooling2D": layer_global_pool("max", (1, 2)),
    "GlobalAveragePooling2D": layer_global_pool("avg", (1, 2)),
    "GlobalAveragePooling1D": layer_global_pool("avg", (1,)),
    "UpSampling2D": layer_upsampling2d,
    "Flatten": layer_flatten,
    "Reshape": layer_reshape,
    "Embedding": layer_embedding,
    "LSTM": layer_lstm,
    "Concatenate": layer_concatenate,
    "Add": layer_add,
    "Average": layer_average,
    "BatchNormalization": layer_batchnorm,
    "Dropout": lambda ctx, a, xs: [xs[0]],
    "Activation": lambda ctx, a, xs: [activate(a.get("activation"), xs[0])],
    "Softmax": lambda ctx, a, xs: [F.softmax(xs[0], dim=a.get("axis", -1))],
    "Conv1D": layer_conv1d,
    "MaxPooling1D": layer_pool1d("max"),
    "AveragePooling1D": layer_pool1d("avg"),
    "GlobalMaxPooling1D": layer_global_pool("max", (1,)),
    "ZeroPadding2D": layer_zero_padding2d,
    "Cropping2D": layer_cropping2d,
    "SpatialDropout2D": lambda ctx, a, xs: [xs[0]],
    "Permute": lambda ctx, a, xs: [xs[0].permute(0, *a.get("dims"))],
    "LeakyReLU": layer_leaky_relu,
    "GRU": layer_gru,
    "Bidirectional": layer_bidirectional,
    "Attention": layer_attention,
}


# --------------------------------------------------------------------------------------------
# Graph interpreter

class LayerContext:
    """Weights of one layer, loaded from the export-weights folder."""

    def __init__(self, weight_dir):
        self.dir = weight_dir

    def weight(self, name):
        path = os.path.join(self.dir, name + ".npy")
        arr = np.load(path)
        if arr.dtype != np.float32:
            raise ValueError("%s: expected float32, got %s" % (path, arr.dtype))
        return torch.from_numpy(arr).to(DTYPE)


class Graph:
    """A Model evaluated call by call; nested Functional layers recurse with their weights."""

    def __init__(self, model, weight_dir, path="", context=LayerContext):
        self.model = model
        self.dir = weight_dir
        self.path = path
        # Makes a layer's weights context from its weights folder; models_training.py passes
        # one that hands out shared leaf tensors for autograd.
        self.context = context
        self.layers = {layer.name: layer for layer in model.layers}

    def run(self, inputs, record=None):
        """Returns the model outputs for the list of input tensors; `record` (a list) receives
        (layer path, class, attrs, weights context, inputs, outputs) for every layer call."""
        if len(inputs) != len(self.model.inputs):
            raise ValueError("model %s takes %d inputs" % (self.model.name, len(self.model.inputs)))
        cache = {}
        for ref, x in zip(self.model.inputs, inputs):
            cache[(ref.layer, ref.node_index)] = [x]

        def tensor(ref):
            key = (ref.layer, ref.node_index)
            if key not in cache:
                layer = self.layers[ref.layer]
                if layer.class_name == "InputLayer":
                    raise ValueError("input %s is not fed" % ref.layer)
                node = layer.nodes[ref.node_index]
                for kw in node.kwargs:
                    if kw not in ("training",):
                        raise ValueError("%s: unsupported call argument %s" % (layer.name, kw))
                xs = [tensor(r) for r in node.inputs]
                cache[key] = self.call(layer, xs, record)
            return cache[key][ref.tensor_index]

        return [tensor(r) for r in self.model.outputs]

    def call(self, layer, xs, record):
        wdir = os.path.join(self.dir, layer.name)
        if layer.class_name in ("Functional", "Sequential", "Model"):
            sub = Graph(layer.model, wdir, self.path + layer.name + "/", self.context)
            return sub.run(xs, record)
        fn = LAYERS.get(layer.class_name)
        if fn is None:
            raise ValueError("unsupported layer class %s (%s)" % (layer.class_name, layer.name))
        a = Attrs(layer)
        ctx = self.context(wdir)
        ys = fn(ctx, a, xs)
        if record is not None:
            record.append((self.path + layer.name, layer.class_name, a, ctx, xs, ys))
        return ys


# --------------------------------------------------------------------------------------------
# Independent numpy formulations for the self-checks

def np_act(name, x):
    if name in (None, "linear"):
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError("numpy check: unsupported activation %r" % name)


def np_weight(ctx, name):
    return np.load(os.path.join(ctx.dir, name + ".npy")).astype(np.float64)


def np_conv2d(ctx, a, x):
    """Conv2D by explicit im2col: patches (n, oh, ow, kh*kw*c) times kernel (kh*kw*c, f)."""
    kh, kw = a.pair("kernel_size", None)
    sh, sw = a.pair("strides", [1, 1])
    dh, dw = a.pair("dilation_rate", [1, 1])
    if a.get("groups", 1) != 1:
        raise ValueError("numpy check: groups")
    n, h, w, c = x.shape
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if a.get("padding", "valid") == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        th = max((oh - 1) * sh + ekh - h, 0)
        tw = max((ow - 1) * sw + ekw - w, 0)
        x = np.pad(x, ((0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2), (0, 0)))
    else:
        oh, ow = (h - ekh) // sh + 1, (w - ekw) // sw + 1
    cols = np.empty((n, oh, ow, kh, kw, c))
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = x[:, i * dh:i * dh + (oh - 1) * sh + 1:sh,
                                       j * dw:j * dw + (ow - 1) * sw + 1:sw, :]
    kernel = np_weight(ctx, "kernel")
    y = cols.reshape(n * oh * ow, kh * kw * c) @ kernel.reshape(kh * kw * c, -1)
    y = y.reshape(n, oh, ow, -1)
    if a.get("use_bias", True):
        y = y + np_weight(ctx, "bias")
    return np_act(a.get("activation", "linear"), y)


def np_conv2d_transpose(ctx, a, x):
    """Conv2DTranspose by scattering each input pixel times kernel[i, j] (out, in) into the
    full output, then cropping as TF's gradient of a SAME/VALID forward convolution does."""
    kh, kw = a.pair("kernel_size", None)
    sh, sw = a.pair("strides", [1, 1])
    if a.pair("dilation_rate", [1, 1]) != [1, 1] or a.get("output_padding") is not None:
        raise ValueError("numpy check: dilation/output_padding")
    kernel = np_weight(ctx, "kernel")  # (kh, kw, out, in)
    n, h, w, _ = x.shape
    f = kernel.shape[2]
    full = np.zeros((n, (h - 1) * sh + kh, (w - 1) * sw + kw, f))
    for i in range(kh):
        for j in range(kw):
            contrib = x @ kernel[i, j].T  # (n, h, w, out)
            full[:, i:i + (h - 1) * sh + 1:sh, j:j + (w - 1) * sw + 1:sw, :] += contrib
    if a.get("padding", "valid") == "same":
        oh, ow = h * sh, w * sw
        ph = max((h - 1) * sh + kh - oh, 0) // 2
        pw = max((w - 1) * sw + kw - ow, 0) // 2
    else:
        oh, ow = h * sh + max(kh - sh, 0), w * sw + max(kw - sw, 0)
        ph = pw = 0
    y = np.zeros((n, oh, ow, f))
    ch, cw = min(oh, full.shape[1] - ph), min(ow, full.shape[2] - pw)
    y[:, :ch, :cw] = full[:, ph:ph + ch, pw:pw + cw]
    if a.get("use_bias", True):
        y = y + np_weight(ctx, "bias")
    return np_act(a.get("activation", "linear"), y)


def np_maxpool(ctx, a, x):
    ph, pw = a.pair("pool_size", [2, 2])
    sh, sw = a.pair("strides", None) or [ph, pw]
    if a.get("padding", "valid") != "valid":
        raise ValueError("numpy check: same pooling")
    n, h, w, c = x.shape
    oh, ow = (h - ph) // sh + 1, (w - pw) // sw + 1
    y = np.full((n, oh, ow, c), -np.inf)
    for r in range(oh):
        for q in range(ow):
            y[:, r, q] = x[:, r * sh:r * sh + ph, q * sw:q * sw + pw].max(axis=(1, 2))
    return y


def np_dense(ctx, a, x):
    y = x @ np_weight(ctx, "kernel")
    if a.get("use_bias", True):
        y = y + np_weight(ctx, "bias")
    return np_act(a.get("activation", "linear"), y)


def np_lstm(ctx, a, x):
    if a.get("go_backwards") or a.get("return_state") or a.get("return_sequences"):
        raise ValueError("numpy check: LSTM options")
    u = a.get("units")
    wk, wr, b = np_weight(ctx, "kernel"), np_weight(ctx, "recurrent_kernel"), np_weight(ctx, "bias")
    h = np.zeros((x.shape[0], u))
    c = np.zeros((x.shape[0], u))
    for t in range(x.shape[1]):
        gates = [x[:, t] @ wk[:, k * u:(k + 1) * u] + h @ wr[:, k * u:(k + 1) * u] + b[k * u:(k + 1) * u]
                 for k in range(4)]
        i, f, g, o = (np_act("sigmoid", gates[0]), np_act("sigmoid", gates[1]),
                      np.tanh(gates[2]), np_act("sigmoid", gates[3]))
        c = f * c + i * g
        h = o * np.tanh(c)
    return h


def np_embedding(ctx, a, x):
    return np.take(np_weight(ctx, "embeddings"), x.astype(np.int64), axis=0)


NP_LAYERS = {
    "Conv2D": np_conv2d,
    "Conv2DTranspose": np_conv2d_transpose,
    "MaxPooling2D": np_maxpool,
    "Dense": np_dense,
    "LSTM": np_lstm,
    "Embedding": np_embedding,
}


def cross_check(record, max_elems=None):
    """Recomputes recorded layer calls with numpy; returns {class: max abs diff}."""
    worst = {}
    for path, cls, a, ctx, xs, ys in record:
        fn = NP_LAYERS.get(cls)
        if fn is None or len(xs) != 1:
            continue
        if max_elems is not None and xs[0].numel() > max_elems:
            continue
        ref = fn(ctx, a, xs[0].numpy())
        got = ys[0].numpy()
        if ref.shape != got.shape:
            raise AssertionError("%s (%s): shape %s vs numpy %s" % (path, cls, got.shape, ref.shape))
        diff = float(np.max(np.abs(ref - got))) if ref.size else 0.0
        scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
        if not diff <= 1e-9 * scale:
            raise AssertionError("%s (%s): torch and numpy differ by %g" % (path, cls, diff))
        worst[cls] = max(worst.get(cls, 0.0), diff)
    return worst


def synthetic_checks(schema, tmpdir):
    """Layer configurations the samples do not use (strides 2 and 3, even kernels, SAME
    padding with uneven totals, stride > kernel): torch path against the numpy formulations
    on random inputs and weights. Returns the largest difference."""
    rng = np.random.default_rng(99)
    cases = [
        ("Conv2D", dict(filters=3, kernel_size=[3, 3], strides=[2, 2], padding="same"), 7, 4),
        ("Conv2D", dict(filters=2, kernel_size=[4, 2], strides=[2, 3], padding="same"), 9, 3),
        ("Conv2D", dict(filters=2, kernel_size=[2, 2], padding="same"), 5, 2),
        ("Conv2D", dict(filters=2, kernel_size=[3, 3], dilation_rate=[2, 2], padding="same"), 8, 2),
        ("Conv2D", dict(filters=2, kernel_size=[3, 2], strides=[2, 2]), 8, 3),
        ("Conv2DTranspose", dict(filters=3, kernel_size=[3, 3], strides=[2, 2], padding="same"), 4, 2),
        ("Conv2DTranspose", dict(filters=2, kernel_size=[4, 4], strides=[2, 2], padding="same"), 3, 3),
        ("Conv2DTranspose", dict(filters=2, kernel_size=[2, 3], strides=[3, 2]), 3, 2),
        ("Conv2DTranspose", dict(filters=2, kernel_size=[3, 3], strides=[2, 2]), 3, 2),
        ("MaxPooling2D", dict(pool_size=[3, 2], strides=[2, 1]), 7, 2),
    ]
    worst = 0.0
    for n, (cls, cfg, size, chans) in enumerate(cases):
        layer = schema.Layer(class_name=cls, name="case%d" % n)
        for key, value in cfg.items():
            if isinstance(value, list):
                layer.config[key].ints.values.extend(value)
            elif isinstance(value, str):
                layer.config[key].s = value
            else:
                layer.config[key].i = value
        wdir = os.path.join(tmpdir, layer.name)
        os.makedirs(wdir)
        if cls != "MaxPooling2D":
            k = cfg["kernel_size"]
            shape = k + ([chans, cfg["filters"]] if cls == "Conv2D" else [cfg["filters"], chans])
            np.save(os.path.join(wdir, "kernel.npy"), rng.standard_normal(shape).astype(np.float32))
            np.save(os.path.join(wdir, "bias.npy"),
                    rng.standard_normal(cfg["filters"]).astype(np.float32))
        x = rng.standard_normal((2, size, size + 1, chans)).astype(np.float32)
        a, ctx = Attrs(layer), LayerContext(wdir)
        got = LAYERS[cls](ctx, a, [torch.from_numpy(x).to(DTYPE)])[0].numpy()
        ref = NP_LAYERS[cls](ctx, a, x.astype(np.float64))
        if got.shape != ref.shape or not np.max(np.abs(got - ref)) <= 1e-9:
            raise AssertionError("synthetic %s %s: torch %s vs numpy %s" % (cls, cfg, got.shape,
                                                                            ref.shape))
        worst = max(worst, float(np.max(np.abs(got - ref))))
    return worst


def mnist_numpy(weight_dir, x):
    """The mnist MLP written out in numpy from the exported weights alone."""
    def w(layer, name):
        return np.load(os.path.join(weight_dir, layer, name + ".npy")).astype(np.float64)
    h = np.maximum(x.astype(np.float64) @ w("dense", "kernel") + w("dense", "bias"), 0.0)
    h = np.maximum(h @ w("dense_1", "kernel") + w("dense_1", "bias"), 0.0)
    return h @ w("dense_2", "kernel") + w("dense_2", "bias")


# --------------------------------------------------------------------------------------------
# Fixtures

def embedding_dims(model):
    """input layer name -> Embedding input_dim, for inputs read directly by an Embedding."""
    dims = {}
    for layer in model.layers:
        if layer.class_name == "Embedding":
            for node in layer.nodes:
                for ref in node.inputs:
                    dims[ref.layer] = Attrs(layer).get("input_dim")
    return dims


def make_inputs(model, spec):
    """Seeded inputs in model input order: uniform [0,1) floats, indices for Embedding inputs
    (in the input's dtype), 0/1 values for the spec's binary inputs."""
    rng = np.random.default_rng(spec["seed"])
    index_dims = embedding_dims(model)
    layers = {layer.name: layer for layer in model.layers}
    names, arrays, kinds = [], [], []
    for ref in model.inputs:
        layer = layers[ref.layer]
        a = Attrs(layer)
        dims = list(a.get("batch_input_shape"))[1:]
        fill = iter(spec.get("dims", {}).get(layer.name, []))
        shape = [spec["batch"]] + [next(fill) if d == -1 else d for d in dims]
        dtype = a.get("dtype", "float32")
        np_dtype = {"float32": np.float32, "int32": np.int32}[dtype]
        if layer.name in index_dims:
            arr = rng.integers(0, index_dims[layer.name], size=shape).astype(np_dtype)
            kinds.append("integers in [0, %d) (Embedding indices)" % index_dims[layer.name])
        elif layer.name in spec.get("binary", []):
            arr = rng.integers(0, 2, size=shape).astype(np_dtype)
            kinds.append("binary 0/1")
        elif dtype == "float32":
            arr = rng.random(size=shape, dtype=np.float32)
            kinds.append("uniform [0, 1)")
        else:
            raise ValueError("no rule for input %s of dtype %s" % (layer.name, dtype))
        names.append(layer.name)
        arrays.append(arr)
    return names, arrays, kinds


def weights_digest(weight_dir):
    """sha256 over the exported weights (relative path and .npy bytes, in sorted order)."""
    h = hashlib.sha256()
    files = []
    for root, _, fs in os.walk(weight_dir):
        files += [os.path.join(root, f) for f in fs]
    for path in sorted(files):
        h.update(os.path.relpath(path, weight_dir).encode() + b"\0")
        h.update(open(path, "rb").read())
    return h.hexdigest()


def export_weights(fgc, model_path, out_dir):
    subprocess.run([fgc, "export-weights", model_path, "-o", out_dir], check=True,
                   stdout=subprocess.DEVNULL)


def build_fixture(schema, fgc, spec, tmp_root, log):
    model_path = os.path.join(REPO, spec["model"])
    model = load_model(schema, model_path)
    weight_dir = os.path.join(tmp_root, "weights-" + spec["name"])
    export_weights(fgc, model_path, weight_dir)

    names, arrays, kinds = make_inputs(model, spec)
    tensors = [torch.from_numpy(x).to(DTYPE) if x.dtype == np.float32 else torch.from_numpy(x)
               for x in arrays]
    record = []
    with torch.no_grad():
        outputs = Graph(model, weight_dir).run(tensors, record)

    # Large models: numpy-check only the layer calls with small inputs (VGG's blocks 4 and 5,
    # pooling and dense layers); im2col over 224x224 images would take too long.
    checks = cross_check(record, max_elems=500000 if spec.get("sampled") else None)
    del record
    if spec["model"] == "samples/mnist_mlp/model.pbtxt":
        ref = mnist_numpy(weight_dir, arrays[0])
        checks["mnist numpy MLP"] = float(np.max(np.abs(ref - outputs[0].numpy())))
        assert checks["mnist numpy MLP"] <= 1e-9, checks
    if checks:
        log("  self-checks (max abs torch vs numpy): " +
            ", ".join("%s %.2e" % kv for kv in sorted(checks.items())))

    layers = {layer.name: layer for layer in model.layers}
    out_dir = os.path.join(tmp_root, spec["name"])
    os.makedirs(out_dir)
    for name, arr in zip(names, arrays):
        np.save(os.path.join(out_dir, "input_%s.npy" % name), arr)
    out_names, out_meta = [], []
    sample_rng = np.random.default_rng(spec["seed"] + 500000)
    for i, (ref, y) in enumerate(zip(model.outputs, outputs)):
        y32 = y.to(torch.float32).numpy() if y.is_floating_point() else y.numpy()
        y32 = np.ascontiguousarray(y32)
        out_names.append(ref.layer)
        stats = dict(index=i, name=ref.layer, shape=list(y32.shape), dtype=str(y32.dtype),
                     sum=float(np.sum(y32, dtype=np.float64)),
                     sum_abs=float(np.sum(np.abs(y32), dtype=np.float64)),
                     max_abs=float(np.max(np.abs(y32))) if y32.size else 0.0)
        base = "output_%d_%s" % (i, ref.layer)
        if spec.get("sampled"):
            flat = y32.reshape(-1)
            count = min(SAMPLE_COUNT, flat.size)
            idx = np.sort(sample_rng.choice(flat.size, size=count, replace=False)).astype(np.int64)
            np.save(os.path.join(out_dir, base + ".idx.npy"), idx)
            np.save(os.path.join(out_dir, base + ".val.npy"), flat[idx])
            stats["files"] = [base + ".idx.npy", base + ".val.npy"]
        else:
            np.save(os.path.join(out_dir, base + ".npy"), y32)
            stats["files"] = [base + ".npy"]
        out_meta.append(stats)
        if layers[ref.layer].class_name != "InputLayer" and not np.all(np.isfinite(y32)):
            raise AssertionError("%s: non-finite output %s" % (spec["name"], ref.layer))

    meta = dict(
        description="Reference inference fixture written by tests/reference/models_inference.py "
                    "(PyTorch %s, float64 arithmetic on float32 inputs and weights, stored as "
                    "float32)." % torch.__version__.split("+")[0],
        model=spec["model"],
        batch=spec["batch"],
        seed=spec["seed"],
        inputs=names,
        outputs=out_names,
        output_storage="sampled" if spec.get("sampled") else "full",
        input_details=[dict(name=n, file="input_%s.npy" % n, dtype=str(x.dtype),
                            shape=list(x.shape), values=k)
                       for n, x, k in zip(names, arrays, kinds)],
        output_details=out_meta,
        weights_sha256=weights_digest(weight_dir),
        # Per element; a float32 implementation is typically within 1e-6 of these values, but
        # post-ReLU outputs near zero make a purely relative bound unreachable.
        tolerance=dict(abs=1e-4, rel=1e-4, rule="|got - ref| <= abs + rel * |ref|"),
    )
    if spec.get("sampled"):
        meta["samples_per_output"] = SAMPLE_COUNT
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    shutil.rmtree(weight_dir)
    return out_dir


def default_fgc():
    """The first build's fgc that has the export-weights command (older builds lack it)."""
    for b in ("build", "build-ref", "build-main"):
        p = os.path.join(REPO, b, "tools", "fgc", "fgc")
        if os.path.exists(p):
            info = subprocess.run([p, "--help"], capture_output=True, text=True)
            if "export-weights" in info.stdout + info.stderr:
                return p
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fgc", default=default_fgc(), help="the fgc binary (export-weights)")
    ap.add_argument("--only", nargs="*", help="fixture names to regenerate")
    ap.add_argument("--list", action="store_true", help="list the fixtures and exit")
    args = ap.parse_args()
    if args.list:
        for spec in FIXTURE_SPECS:
            print(spec["name"], spec["model"])
        return
    if not args.fgc or not os.path.exists(args.fgc):
        ap.error("fgc binary not found; pass --fgc build/tools/fgc/fgc")
    fgc = os.path.abspath(args.fgc)
    specs = FIXTURE_SPECS
    if args.only:
        unknown = set(args.only) - {s["name"] for s in specs}
        if unknown:
            ap.error("unknown fixtures: %s" % ", ".join(sorted(unknown)))
        specs = [s for s in specs if s["name"] in args.only]

    torch.set_num_threads(min(2, torch.get_num_threads()))
    os.makedirs(FIXTURES, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fgc-models-ref-") as tmp:
        schema = load_schema(os.path.join(tmp, "schema"))
        print("synthetic layer checks (max abs torch vs numpy): %.2e"
              % synthetic_checks(schema, os.path.join(tmp, "synthetic")), flush=True)
        for spec in specs:
            print(spec["name"], flush=True)
            staged = build_fixture(schema, fgc, spec, tmp, lambda s: print(s, flush=True))
            # Stage next to the destination, then swap it in.
            incoming = os.path.join(FIXTURES, "." + spec["name"] + ".new")
            shutil.rmtree(incoming, ignore_errors=True)
            shutil.copytree(staged, incoming)
            final = os.path.join(FIXTURES, spec["name"])
            shutil.rmtree(final, ignore_errors=True)
            os.rename(incoming, final)
    if not args.only:  # drop folders of fixtures that no longer exist
        known = {s["name"] for s in FIXTURE_SPECS}
        for entry in sorted(os.listdir(FIXTURES)):
            if entry not in known and os.path.isdir(os.path.join(FIXTURES, entry)):
                shutil.rmtree(os.path.join(FIXTURES, entry))


if __name__ == "__main__":
    main()
