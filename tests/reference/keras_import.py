#!/usr/bin/python3
"""Independent references for `fgc import`: Keras files evaluated in PyTorch, straight from the
Keras config and the HDF5 weights (read with h5py), without fgc.

Writes:
  tests/fixtures/keras/weight_params.json   for every Keras file with weights: the number of
                                            weight elements the file stores for the model
                                            (optimizer state excluded), which `fgc import`'s
                                            parameter count must equal
  tests/fixtures/keras/<name>/              inference fixtures in the format of
                                            tests/reference/models_inference.py (meta.json,
                                            input_*.npy, output_*.npy), run by tests/keras
  tests/fixtures/keras/<name>_train/        one training step from the Keras file's weights in
                                            the format of tests/reference/models_training.py
                                            (loss, grad/, after/ or after_tf2/, skip/), run by
                                            tests/keras with tests/training/ModelTrainingTest.cpp
                                            on the model `fgc import` wrote

Training steps follow the Keras file's own compile arguments (HDF5 `training_config`, Keras 3
`compile_config`), or, for a file that has none, the compile arguments listed in
TRAINING_SPECS, which the test passes to `fgc import --compile` as well. Losses are tf.keras
2.x's (sum_over_batch_size), including the probability forms of the cross-entropies (Keras
clips to [1e-7, 1 - 1e-7]: sparse: log(sum(c)) - log(c[label]) with c the clipped
probabilities, as TF takes their log as logits; categorical: the output divided by its sum,
clipped, -sum(y log q)). Optimizers and the skip-mask rule are models_training.py's (RMSprop:
tf.keras 2.x's epsilon outside the root, stored as after_tf2/). Dropout layers are the
identity (the test runs with dropout off).

The graph interpreter here reads Keras's own configs (Keras 2 nested-list inbound_nodes and
Keras 3 args / keras_history, Sequential lists) and matches weights by Keras's weight names
(legacy HDF5: `weight_names`; Keras 3 archives: `layers/<snake_case class>[_k]/vars/<i>` in
each class's documented weight order). Layer arithmetic reuses models_inference.py's torch
layers (Keras semantics, float64).

Regenerate (Debian's python3-torch, python3-numpy, python3-h5py; /usr/bin/python3):
    /usr/bin/python3 tests/reference/keras_import.py [--models DIR]
DIR defaults to ../shared/keras-models beside the repository; the fixtures of files that are
not copied into tests/data/keras need it.
"""

import argparse
import hashlib
import io
import json
import os
import re
import sys
import zipfile

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models_inference as mi  # noqa: E402
import models_training as mt  # noqa: E402

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "keras")
DATA = os.path.join(REPO, "tests", "data", "keras")

# Files with weights (model file, separate weights file or None).
WEIGHTED = [
    ("keras2/dl4j_tfkeras_cnn2d_113_conv2dtranspose.h5", None),
    ("keras2/dl4j_embedding_lstm_tensorflow_2.h5", None),
    ("keras2/dl4j_keras_attention.h5", None),
    ("keras2/kotlindl_toyresnet_modelConfig.json", "keras2/kotlindl_toyresnet_weights.h5"),
    ("keras2/hls4ml_KERAS_3layer_batch_norm.json",
     "keras2/hls4ml_KERAS_3layer_batch_norm_weights.h5"),
    ("keras2/hls4ml_jetTagger_Conv2D_Small.json", "keras2/hls4ml_jetTagger_Conv2D_Small_weights.h5"),
    ("keras2/fdeep_lstm_multi_io.h5", None),
    ("keras2/knime_3in_3out.h5", None),
    ("keras2/gan-hm_wgangp_critic.h5", None),
    ("keras2/seizure_ensemble_model.h5", None),
    ("keras2/synthgen_gan_nested_sequential.h5", None),
    ("keras2/hls4ml_hostpipe_parallel_h5_named.keras", None),
    ("keras3/airquality_bilstm_keras3_legacy.h5", None),
    ("keras3/doorlock_siamese_model_0.7.keras", None),
    ("keras3/nanotag_ae_model.keras", None),
    ("keras3/nanotag_siamese_model.keras", None),
    ("keras3/saheart_functional_model.keras", None),
    ("seed_autoencoder_nested.h5", None),
    ("siamese_concat.json", "siamese_concat_weights.h5"),
]

# Inference fixtures: name, model file, weights file, batch, input seed.
FIXTURE_SPECS = [
    dict(name="toy_resnet", model="keras2/kotlindl_toyresnet_modelConfig.json",
         weights="keras2/kotlindl_toyresnet_weights.h5", batch=2, seed=81001),
    dict(name="embedding_lstm", model="keras2/dl4j_embedding_lstm_tensorflow_2.h5", batch=3,
         seed=81002, dims=[7]),
    dict(name="hls4ml_batch_norm", model="keras2/hls4ml_KERAS_3layer_batch_norm.json",
         weights="keras2/hls4ml_KERAS_3layer_batch_norm_weights.h5", batch=3, seed=81003),
    dict(name="jet_tagger_conv2d", model="keras2/hls4ml_jetTagger_Conv2D_Small.json",
         weights="keras2/hls4ml_jetTagger_Conv2D_Small_weights.h5", batch=3, seed=81004),
    dict(name="synthgen_nested_sequential", model="keras2/synthgen_gan_nested_sequential.h5",
         batch=3, seed=81005),
    dict(name="saheart_functional", model="keras3/saheart_functional_model.keras", batch=3,
         seed=81006),
    dict(name="conv2d_transpose", model="keras2/dl4j_tfkeras_cnn2d_113_conv2dtranspose.h5",
         batch=2, seed=81007),
    dict(name="gru_conv1d", model="keras2/hls4ml_hostpipe_parallel_h5_named.keras", batch=2,
         seed=81008),
    dict(name="seizure_conv1d_lstm", model="keras2/seizure_ensemble_model.h5", batch=2,
         seed=81009, relative_tolerance=1e-3,
         relative_tolerance_reason="the outputs are sigmoids deep in their tail (~2e-4), where a "
                          "float32 logit error of 4e-5 relative is a 3e-4 relative error"),
    dict(name="knime_3in_3out", model="keras2/knime_3in_3out.h5", batch=3, seed=81010),
    dict(name="lstm_multi_io", model="keras2/fdeep_lstm_multi_io.h5", batch=2, seed=81011,
         dims=[5]),
    dict(name="airquality_bilstm", model="keras3/airquality_bilstm_keras3_legacy.h5", batch=2,
         seed=81012),
]


# Training-step fixtures: name, model file, weights file, compile arguments for a file without
# a training config (a JSON file the test also gives `fgc import --compile`), batch, seed.
TRAINING_SPECS = [
    # tf.keras 2.2 save_weights + to_json, no training config: Adam, sparse CE from logits.
    dict(name="toy_resnet_train", model="keras2/kotlindl_toyresnet_modelConfig.json",
         weights="keras2/kotlindl_toyresnet_weights.h5", compile="tests/keras/toy_resnet_compile.json", batch=3,
         seed=82001),
    # Keras 2.1 Sequential Embedding + LSTM (hard_sigmoid), its own Adam + mse.
    dict(name="embedding_lstm_train", model="keras2/dl4j_embedding_lstm_tensorflow_2.h5",
         batch=3, seed=82002),
    # tf.keras 2.2 Conv2DTranspose / SpatialDropout2D / ZeroPadding2D / UpSampling2D /
    # Cropping2D / MaxPooling2D, its own RMSprop + categorical_crossentropy on probabilities.
    # Its biases are 0 (an untrained model), so the second Conv2DTranspose outputs exactly
    # tanh(0) = 0 over the all-zero region its padded input has, tying with ZeroPadding2D's zeros
    # in MaxPooling2D windows: the loss has a kink in that bias (max pooling's gradient goes to
    # the first maximum of the window, TF's and torch's rule), which a central difference
    # averages; that bias is left out of the finite-difference check.
    dict(name="conv2d_transpose_train", model="keras2/dl4j_tfkeras_cnn2d_113_conv2dtranspose.h5",
         batch=3, seed=82003, fd_exclude=["conv2d_transpose_27/bias"]),
    # The seed's autoencoder with nested encoder and decoder (tests/reference/keras_files.py:
    # tf.keras 2.10 legacy HDF5), its own Adam + mse, the optimizer starting fresh (`fgc import
    # -o model.pb` keeps no optimizer state). Inputs are continuous uniform values and the
    # biases non-zero, so no max-pooling window holds a tie.
    # The encoder's gradients are ~5e-5 while the loss is ~1, so a central difference with
    # h = 1e-6 carries ~1e-10 of float64 rounding: 2e-6 to 4e-6 of those tensors' scale (the
    # absolute agreement is within 2e-10 everywhere).
    dict(name="autoencoder_nested_train", model="seed_autoencoder_nested.h5", batch=2,
         seed=82004, fd_tolerance=1e-5),
    # The same file continuing Keras's training: `fgc import -o model.fgcm` keeps the file's
    # Adam state (iterations 3 and every m and v), so the step is Adam's fourth from those
    # moments.
    dict(name="autoencoder_adam_state_train", model="seed_autoencoder_nested.h5", batch=2,
         seed=82005, optimizer_state=True, fd_tolerance=1e-5),
    # A siamese network (tests/reference/keras_files.py: to_json + save_weights): one nested
    # tower shared by two inputs, Concatenate, a sigmoid Dense; Adam + binary cross-entropy on
    # the probability (tests/keras/siamese_compile.json).
    dict(name="siamese_train", model="siamese_concat.json", weights="siamese_concat_weights.h5",
         compile="tests/keras/siamese_compile.json", batch=4, seed=82006),
]


def locate(rel, models_dir):
    local = os.path.join(DATA, os.path.basename(rel))
    if os.path.exists(local):
        return local
    return os.path.join(models_dir, rel)


# --------------------------------------------------------------------------------------------
# Reading Keras files

def decode(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def string_list(obj, key):
    if key in obj.attrs:
        return [decode(x) for x in obj.attrs[key]]
    out, i = [], 0
    while "%s%d" % (key, i) in obj.attrs:
        out += [decode(x) for x in obj.attrs["%s%d" % (key, i)]]
        i += 1
    return out


def legacy_weights(path):
    """{layer name (or nested model name): [(weight name, array)]} in weight_names order."""
    with h5py.File(path, "r") as f:
        g = f["model_weights"] if "model_weights" in f else f
        out = {}
        for layer in string_list(g, "layer_names"):
            out[layer] = [(wn, np.array(g[layer][wn], dtype=np.float32))
                          for wn in string_list(g[layer], "weight_names")]
        return out


def snake(name):
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def read_model(path, weights_path):
    """(top-level config JSON, weight lookup {layer path: {weight name: array}}, total elements)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK"):
        z = zipfile.ZipFile(path)
        config = json.loads(z.read("config.json"))
        f = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
        lookup, total = {}, 0

        def walk(cfg, group, prefix, sequential):
            nonlocal total
            used = {}
            for layer in cfg["config"]["layers"]:
                if sequential and layer["class_name"] == "InputLayer":
                    continue
                name = snake(layer["class_name"])
                if name in used:
                    used[name] += 1
                    name = "%s_%d" % (name, used[name])
                else:
                    used[name] = 0
                lname = layer["config"]["name"]
                if group + "/" + name not in f:
                    continue
                if layer["class_name"] in ("Functional", "Sequential"):
                    walk(layer, group + "/" + name + "/layers", prefix + lname + "/",
                         layer["class_name"] == "Sequential")
                    continue
                names = keras3_weight_names(layer)
                vars_ = f[group + "/" + name + "/vars"]
                arrays = [np.array(vars_[str(i)], dtype=np.float32) for i in range(len(vars_))]
                total += sum(a.size for a in arrays)
                lookup[prefix + lname] = dict(zip(names, arrays))

        walk(config, "layers", "", config["class_name"] == "Sequential")
        return config, lookup, total
    if head.startswith(b"\x89HDF") and weights_path is None:
        with h5py.File(path, "r") as f:
            config = json.loads(decode(f.attrs["model_config"]))
        weights_path = path
    else:
        with open(path) as fh:
            config = json.load(fh)
    groups = legacy_weights(weights_path)
    lookup, total = {}, 0
    nested = {}
    collect_nested(config, "", nested)
    for layer, ws in groups.items():
        for wn, arr in ws:
            total += arr.size
            parts = wn.split("/")
            short = parts[-1].split(":")[0]
            # Bidirectional: ".../forward_lstm_4/kernel:0", ".../backward_lstm_4/kernel:0".
            for part in parts[:-1]:
                for side in ("forward_", "backward_"):
                    if part.startswith(side):
                        short = side + short
            if layer in nested:
                # A nested model's group: the weight's layer is named in its path.
                inner = next(p for p in parts[:-1] if p in nested[layer])
                key = nested[layer][inner]
            else:
                key = layer
            lookup.setdefault(key, {})[short] = arr
    return config, lookup, total


def collect_nested(cfg, prefix, out):
    """For each nested model: {its name: {inner layer name: path}}."""
    for layer in layers_of(cfg):
        if is_model(layer):
            name = layer_name(layer)
            inner = {}
            collect_inner(layer, prefix + name + "/", inner)
            out[name] = inner


def collect_inner(cfg, prefix, out):
    for layer in layers_of(cfg):
        out[layer_name(layer)] = prefix + layer_name(layer)
        if is_model(layer):
            collect_inner(layer, prefix + layer_name(layer) + "/", out)


def keras3_weight_names(layer):
    cls, cfg = layer["class_name"], layer["config"]
    if cls in ("Dense", "Conv2D", "Conv2DTranspose"):
        return ["kernel", "bias"] if cfg.get("use_bias", True) else ["kernel"]
    if cls == "BatchNormalization":
        return (["gamma"] if cfg.get("scale", True) else []) + \
               (["beta"] if cfg.get("center", True) else []) + ["moving_mean", "moving_variance"]
    if cls == "Embedding":
        return ["embeddings"]
    return []


def layers_of(cfg):
    c = cfg["config"]
    return c if isinstance(c, list) else c["layers"]


def layer_name(layer):
    return layer.get("name") or layer["config"]["name"]


def is_model(layer):
    return layer["class_name"] in ("Model", "Functional", "Sequential") and (
        isinstance(layer["config"], list) or "layers" in layer["config"])


# --------------------------------------------------------------------------------------------
# Evaluating a Keras config

class KAttrs:
    def __init__(self, cfg):
        self.cfg = cfg

    def get(self, key, default=None):
        v = self.cfg.get(key, default)
        if key in ("padding", "cropping") and isinstance(v, list) and v and \
                isinstance(v[0], list):
            v = [e for pair in v for e in pair]  # ((top, bottom), (left, right)), flat
        return default if v is None and default is not None else v

    def pair(self, key, default):
        v = self.get(key, default)
        if v is None:
            return None
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        return v * 2 if len(v) == 1 else v


class WeightCtx:
    def __init__(self, weights, path):
        self.weights, self.path = weights, path

    def weight(self, name):
        v = self.weights[self.path][name]
        return v if torch.is_tensor(v) else torch.from_numpy(v).to(mi.DTYPE)


def refs_of(node):
    if isinstance(node, dict):  # Keras 3
        out = []

        def walk(v):
            if isinstance(v, list):
                for e in v:
                    walk(e)
            elif isinstance(v, dict):
                if v.get("class_name") == "__keras_tensor__":
                    h = v["config"]["keras_history"]
                    out.append((h[0], h[1], h[2], True))
                else:
                    for e in v.values():
                        walk(e)
        walk(node["args"])
        return out
    return [(r[0], r[1], r[2], False) for r in node]


def run_model(layer_cfg, weights, prefix, inputs):
    """Evaluates a model config on `inputs`; returns its outputs."""
    layers = layers_of(layer_cfg)
    if layer_cfg["class_name"] == "Sequential":
        x = inputs[0]
        for layer in layers:
            if layer["class_name"] == "InputLayer":
                continue
            x = call_layer(layer, weights, prefix, [x])[0]
        return [x]
    c = layer_cfg["config"]
    outs = {}  # (layer, call) -> outputs
    by_name = {layer_name(l): l for l in layers}
    ins = c["input_layers"]
    ins = [ins] if ins and isinstance(ins[0], str) else ins
    for (name, _, _), x in zip(ins, inputs):
        outs[(name, 0)] = [x]
    pending = True
    while pending:
        pending = False
        for layer in layers:
            name = layer_name(layer)
            for k, node in enumerate(layer.get("inbound_nodes", [])):
                if (name, k) in outs:
                    continue
                refs = refs_of(node)
                keys = [(r[0], r[1] - (1 if is_model(by_name[r[0]]) and not r[3] else 0), r[2])
                        for r in refs]
                if all((l, n) in outs for l, n, _ in keys):
                    xs = [outs[(l, n)][t] for l, n, t in keys]
                    outs[(name, k)] = call_layer(layer, weights, prefix, xs)
                    pending = True
    result = []
    for name, n, t in c["output_layers"]:
        n -= 1 if is_model(by_name[name]) else 0
        result.append(outs[(name, n)][t])
    return result


class SideWeights:
    def __init__(self, ctx, side):
        self.ctx, self.side = ctx, side

    def weight(self, name):
        return self.ctx.weight(self.side + name)


def keras_bidirectional(ctx, a, xs):
    """Bidirectional from its Keras config: the wrapped layer run forwards and backwards."""
    inner = a.cfg["layer"]
    run = {"LSTM": mi.layer_lstm, "GRU": mi.layer_gru}[inner["class_name"]]
    cfg = inner["config"]
    back = cfg.get("go_backwards", False)
    fwd = run(SideWeights(ctx, "forward_"), KAttrs(dict(cfg, go_backwards=back)), xs)
    bwd = run(SideWeights(ctx, "backward_"), KAttrs(dict(cfg, go_backwards=not back)), xs)
    yf, yb = fwd[0], bwd[0]
    if cfg.get("return_sequences", False):
        yb = torch.flip(yb, [1])  # Keras puts the backward sequence back in input order
    mode = a.cfg.get("merge_mode", "concat")
    merged = {"concat": lambda: torch.cat([yf, yb], -1), "sum": lambda: yf + yb,
              "mul": lambda: yf * yb, "ave": lambda: (yf + yb) / 2}[mode]()
    return [merged] + fwd[1:] + bwd[1:]


KERAS_LAYERS = dict(mi.LAYERS, Bidirectional=keras_bidirectional)


def call_layer(layer, weights, prefix, xs):
    name = layer_name(layer)
    if is_model(layer):
        return run_model(layer, weights, prefix + name + "/", xs)
    fn = KERAS_LAYERS[layer["class_name"]]
    return fn(WeightCtx(weights, prefix + name), KAttrs(layer["config"]), xs)


def input_specs(config):
    first = layers_of(config)[0]
    if config["class_name"] != "Sequential" or first["class_name"] == "InputLayer":
        out = []
        if config["class_name"] == "Sequential":
            return [(layer_name(first), first["config"].get("batch_input_shape") or
                     first["config"]["batch_shape"])]
        ins = config["config"]["input_layers"]
        ins = [ins] if ins and isinstance(ins[0], str) else ins
        by_name = {layer_name(l): l for l in layers_of(config)}
        for name, _, _ in ins:
            cfg = by_name[name]["config"]
            out.append((name, cfg.get("batch_input_shape") or cfg["batch_shape"]))
        return out
    if is_model(first):
        inner = input_specs(first)
        return [(layer_name(first) + "_input", inner[0][1])]
    return [(layer_name(first) + "_input", first["config"]["batch_input_shape"])]


def output_names(config):
    if config["class_name"] == "Sequential":
        return [layer_name(layers_of(config)[-1])]
    outs = config["config"]["output_layers"]
    return [o[0] for o in outs]


def build_fixture(spec, models_dir):
    path = locate(spec["model"], models_dir)
    wpath = locate(spec["weights"], models_dir) if spec.get("weights") else None
    config, weights, _ = read_model(path, wpath)
    rng = np.random.default_rng(spec["seed"])
    inputs, details = [], []
    first_embedding = next((l for l in layers_of(config) if l["class_name"] == "Embedding"), None)
    for name, shape in input_specs(config):
        dims = list(shape[1:])
        extra = iter(spec.get("dims", []))
        dims = [next(extra) if d is None else d for d in dims]
        full = [spec["batch"]] + dims
        if first_embedding is not None:
            x = rng.integers(0, first_embedding["config"]["input_dim"], size=full).astype(
                np.float32)
            values = "integers [0, %d)" % first_embedding["config"]["input_dim"]
        else:
            x = rng.uniform(0, 1, size=full).astype(np.float32)
            values = "uniform [0, 1)"
        inputs.append(x)
        details.append(dict(name=name, file="input_%s.npy" % name, dtype="float32", shape=full,
                            values=values))
    with torch.no_grad():
        outs = run_model(config, weights, "", [torch.from_numpy(x).to(mi.DTYPE) for x in inputs])
    out_dir = os.path.join(FIXTURES, spec["name"])
    os.makedirs(out_dir, exist_ok=True)
    for d, x in zip(details, inputs):
        np.save(os.path.join(out_dir, d["file"]), x)
    out_details = []
    for i, (name, y) in enumerate(zip(output_names(config), outs)):
        y = y.numpy().astype(np.float32)
        f = "output_%d_%s.npy" % (i, name)
        np.save(os.path.join(out_dir, f), y)
        out_details.append(dict(index=i, name=name, shape=list(y.shape), dtype="float32",
                                sum=float(y.astype(np.float64).sum()),
                                sum_abs=float(np.abs(y.astype(np.float64)).sum()),
                                max_abs=float(np.abs(y).max()), files=[f]))
    meta = dict(
        description="Reference inference fixture written by tests/reference/keras_import.py "
                    "(PyTorch %s, float64 arithmetic on the Keras file's float32 weights read "
                    "with h5py, stored as float32)." % torch.__version__,
        model=spec["model"], weights=spec.get("weights"), batch=spec["batch"],
        seed=spec["seed"], inputs=[d["name"] for d in details],
        outputs=output_names(config), output_storage="full", input_details=details,
        output_details=out_details)
    if "relative_tolerance" in spec:
        meta["relative_tolerance"] = spec["relative_tolerance"]
        meta["relative_tolerance_reason"] = spec["relative_tolerance_reason"]
    with open(os.path.join(out_dir, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")
    print("wrote", out_dir)


# --------------------------------------------------------------------------------------------
# Training steps

EPSILON = 1e-7  # Keras's backend epsilon, the clipping of probabilities


def compile_args(path, spec):
    """Keras's compile arguments: the spec's override or the file's own training config."""
    if spec.get("compile"):
        with open(os.path.join(REPO, spec["compile"])) as fh:
            return json.load(fh)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK"):
        return json.loads(zipfile.ZipFile(path).read("config.json"))["compile_config"]
    if head.startswith(b"\x89HDF"):
        with h5py.File(path, "r") as f:
            return json.loads(decode(f.attrs["training_config"]))
    with open(path) as fh:
        return json.load(fh)["compile_config"]


OPTIMIZER_NAMES = {"adam": "Adam", "rmsprop": "RMSprop", "sgd": "SGD"}
LOSS_NAMES = {"mse": "MeanSquaredError", "mean_squared_error": "MeanSquaredError",
              "categorical_crossentropy": "CategoricalCrossentropy",
              "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
              "binary_crossentropy": "BinaryCrossentropy"}


def optimizer_of(args):
    opt = args.get("optimizer_config") or args.get("optimizer")
    if isinstance(opt, str):
        cls, cfg = OPTIMIZER_NAMES[opt.lower()], {}
    else:
        cls, cfg = opt["class_name"], opt.get("config", {})
    full = dict(mt.OPTIMIZER_DEFAULTS[cls])
    for k, v in cfg.items():
        k = "learning_rate" if k == "lr" else k
        if k in full and v is not None:
            full[k] = float("%.7g" % v) if isinstance(v, float) else v
    return cls, full


def loss_of(args):
    loss = args["loss"]
    if isinstance(loss, list):
        (loss,) = loss
    if isinstance(loss, str):
        return LOSS_NAMES[loss], False
    return loss["class_name"], bool(loss.get("config", {}).get("from_logits", False))


def per_sample_loss(kind, from_logits, y_true, y_pred):
    if kind == "SparseCategoricalCrossentropy" and not from_logits:
        # TF clips, takes the log as logits, then a softmax cross-entropy.
        c = torch.clamp(y_pred, EPSILON, 1 - EPSILON)
        picked = c.gather(-1, y_true.long().unsqueeze(-1)).squeeze(-1)
        return torch.log(c.sum(-1)) - torch.log(picked)
    if kind == "CategoricalCrossentropy" and not from_logits:
        q = torch.clamp(y_pred / y_pred.sum(-1, keepdim=True), EPSILON, 1 - EPSILON)
        return -(y_true * torch.log(q)).sum(-1)
    if kind in ("BinaryCrossentropy", "binary_crossentropy") and not from_logits:
        # Keras's backend formula on probabilities: clipped, epsilon inside the logs.
        c = torch.clamp(y_pred, EPSILON, 1 - EPSILON)
        return -(y_true * torch.log(c + EPSILON) +
                 (1 - y_true) * torch.log(1 - c + EPSILON)).mean(-1)
    return mt.per_sample_loss(kind, from_logits, y_true, y_pred)


class KerasProblem:
    """The Keras model with its loss, at float64 weights {"<layer path>/<weight>": array}."""

    def __init__(self, config, lookup, kind, from_logits):
        self.config, self.kind, self.from_logits = config, kind, from_logits
        self.initial = {}
        for layer, ws in lookup.items():
            for wname, arr in ws.items():
                self.initial[layer + "/" + wname] = arr
        self.paths = sorted(self.initial)

    def loss(self, weights, inputs, targets, need_grad=True):
        leaves = {p: torch.tensor(weights[p], dtype=mi.DTYPE, requires_grad=need_grad)
                  for p in self.paths}
        nested = {}
        for p, leaf in leaves.items():
            layer, wname = p.rsplit("/", 1)
            nested.setdefault(layer, {})[wname] = leaf
        xs = [torch.from_numpy(x).to(mi.DTYPE) for x in inputs]
        with torch.set_grad_enabled(need_grad):
            (y,) = run_model(self.config, nested, "", xs)
            t = torch.from_numpy(targets[0])
            t = t if self.kind == "SparseCategoricalCrossentropy" else t.to(mi.DTYPE)
            per = per_sample_loss(self.kind, self.from_logits, t, y)
            total = per.sum() / per.numel()  # sum_over_batch_size
        grads = None
        if need_grad:
            gs = torch.autograd.grad(total, [leaves[p] for p in self.paths])
            grads = {p: g.detach().numpy().copy() for p, g in zip(self.paths, gs)}
        return float(total), {}, grads


def legacy_optimizer_state(path, prob):
    """The Adam state a legacy HDF5 file's `optimizer_weights` holds (tf.keras 2.x names:
    `Adam/iter:0`, `Adam/<layer>/<weight>/m:0`, `.../v:0`; a layer's name is unique in the
    whole model, nested ones included): (iterations, {param path: {"m": .., "v": ..}},
    description)."""
    by_short = {}
    for p in prob.paths:
        layer, wname = p.rsplit("/", 1)
        by_short[layer.split("/")[-1] + "/" + wname] = p
    slots, iterations = {}, None
    with h5py.File(path, "r") as f:
        g = f["optimizer_weights"]
        for name in string_list(g, "weight_names"):
            arr = np.array(g[name])
            parts = name.split(":")[0].split("/")
            if parts[-1] == "iter":
                iterations = int(arr)
                continue
            var, slot = "/".join(parts[1:-1]), parts[-1]
            slots.setdefault(by_short[var], {})[slot] = arr.astype(np.float64)
    if iterations is None or sorted(slots) != sorted(prob.paths):
        raise AssertionError("%s: incomplete optimizer state" % path)
    return iterations, slots, dict(
        source="the file's optimizer_weights (Adam/iter:0, Adam/<layer>/<weight>/m:0 and v:0)",
        iterations=iterations,
        note="one Adam step from these moments (t = iterations + 1); the test loads the model "
             "file `fgc import` wrote (.fgcm, with the optimizer slots) before the step")


def training_inputs(config, spec, rng):
    """[(name, array, description)] for the model's inputs."""
    out = []
    for name, shape in input_specs(config):
        full = [spec["batch"]] + list(shape[1:])
        emb = next((l for l in layers_of(config) if l["class_name"] == "Embedding"), None)
        if emb is not None:
            n = emb["config"]["input_dim"]
            out.append((name, rng.integers(0, n, size=full).astype(np.float32),
                        "integers [0, %d)" % n))
        else:
            out.append((name, rng.uniform(0, 1, size=full).astype(np.float32),
                        "uniform [0, 1)"))
    return out


def training_target(kind, y, rng):
    if kind == "SparseCategoricalCrossentropy":
        return rng.integers(0, y.shape[-1], size=y.shape[:-1]).astype(np.int32)
    if kind == "CategoricalCrossentropy":
        return np.eye(y.shape[-1], dtype=np.float32)[rng.integers(0, y.shape[-1],
                                                                  size=y.shape[:-1])]
    if kind == "BinaryCrossentropy":
        return rng.integers(0, 2, size=y.shape).astype(np.float32)
    return rng.standard_normal(size=y.shape).astype(np.float32)


def build_training_fixture(spec, models_dir):
    path = locate(spec["model"], models_dir)
    wpath = locate(spec["weights"], models_dir) if spec.get("weights") else None
    config, lookup, _ = read_model(path, wpath)
    args = compile_args(path, spec)
    cls, cfg = optimizer_of(args)
    kind, from_logits = loss_of(args)
    prob = KerasProblem(config, lookup, kind, from_logits)
    rng = np.random.default_rng(spec["seed"])
    inputs = training_inputs(config, spec, rng)
    arrays = [x for _, x, _ in inputs]
    out_name = output_names(config)[0]
    with torch.no_grad():
        (y,) = run_model(config, lookup, "", [torch.from_numpy(x).to(mi.DTYPE) for x in arrays])
    target = training_target(kind, y.numpy(), rng)
    w0 = {p: a.astype(np.float64) for p, a in prob.initial.items()}
    total, _, grads = prob.loss(w0, arrays, [target])
    variant = "tf2" if cls == "RMSprop" else "inside"
    opt = mt.Optimizer(cls, cfg, variant)
    state_meta = None
    if spec.get("optimizer_state"):
        opt.t, opt.slots, state_meta = legacy_optimizer_state(path, prob)
    after = opt.step(w0, grads)
    for p in prob.paths:
        if not np.all(np.isfinite(grads[p])):
            raise AssertionError("%s: non-finite gradient %s" % (spec["name"], p))
    fd_rng = np.random.default_rng(spec["seed"] + 7)
    rel, ab, count, retried = mt.finite_difference_check(
        prob, w0, arrays, [target], grads, fd_rng, per_tensor=spec.get("fd_per_tensor", 3),
        exclude=spec.get("fd_exclude", ()))
    if rel > spec.get("fd_tolerance", 1e-6):
        raise AssertionError("%s: finite differences disagree (%g)" % (spec["name"], rel))

    out_dir = os.path.join(FIXTURES, spec["name"])
    if os.path.exists(out_dir):
        import shutil
        shutil.rmtree(out_dir)
    out = mt.Writer(out_dir)
    input_meta = []
    for name, x, values in inputs:
        f = out.save("input_%s.npy" % name, x)
        input_meta.append(dict(step=1, name=name, file=f, dtype=str(x.dtype),
                               shape=list(x.shape), values=values))
    tfile = out.save("target_%s.npy" % out_name, target)
    target_meta = [dict(step=1, output=out_name, file=tfile, dtype=str(target.dtype),
                        shape=list(target.shape))]
    after_key = "after_tf2" if cls == "RMSprop" else "after"
    params = []
    for p in prob.paths:
        g = grads[p]
        entry = dict(path=p, shape=list(prob.initial[p].shape), storage="full",
                     grad=[out.save("grad/%s.npy" % p, g.astype(np.float32))],
                     grad_max_abs=float(np.max(np.abs(g))), grad_sum=float(np.sum(g)))
        entry[after_key] = [out.save("%s/%s.npy" % (after_key, p),
                                     after[p].astype(np.float32))]
        # From imported moments an Adam step is not steep in g: no skip mask then.
        steep = cls != "SGD" and state_meta is None
        skip = mt.near_zero(g) if steep else np.zeros(g.size, bool)
        entry["skip_count"] = int(np.count_nonzero(skip))
        entry["zero_grad_count"] = int(np.count_nonzero(g == 0))
        if steep:
            entry["skip"] = out.save("skip/%s.npy" % p, np.packbits(skip, bitorder="little"))
        params.append(entry)
    meta = dict(
        description="Reference training-step fixture written by tests/reference/"
                    "keras_import.py (PyTorch %s autograd on the Keras file's config and its "
                    "h5py-read float32 weights, float64 arithmetic, stored as float32)."
                    % torch.__version__.split("+")[0],
        model=spec["model"], weights=spec.get("weights"),
        compile=spec.get("compile") or "the file's own training config",
        batch=spec["batch"], steps=1, seeds=[spec["seed"]], dropout="identity",
        initial_weights="the Keras file's weights",
        optimizer=dict(class_name=cls, **cfg),
        loss_reduction="sum_over_batch_size",
        losses=[dict(output=out_name, class_name=kind, from_logits=from_logits, weight=1.0)],
        loss_values=[dict(step=1, total=total, per_output={out_name: total})],
        inputs=[n for n, _, _ in inputs], outputs=[out_name],
        input_details=input_meta, target_details=target_meta, params=params,
        near_zero_rule="skip masks as in tests/reference/models_training.py (|g| < %g * max|g| "
                       "of the tensor)" % mt.NEAR_ZERO,
        self_checks={
            "finite differences, max |fd - autograd| / max|g| (tensor)": rel,
            "finite differences, max |fd - autograd|": ab,
            "finite differences, elements checked": count,
            "finite differences, elements that needed a smaller h": retried,
            "finite differences, tensors left out": list(spec.get("fd_exclude", []))})
    if state_meta is not None:
        meta["initial_optimizer_state"] = state_meta
    if cls == "RMSprop":
        meta["rmsprop_variants"] = {"after_tf2": "epsilon outside the root (tf.keras 2.x, "
                                                 "momentum 0), what fgc's code runs"}
    with open(os.path.join(out_dir, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")
    print("wrote", out_dir, "loss %.6f, finite differences %.2e" % (total, rel))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.path.join(REPO, "..", "shared", "keras-models"))
    ap.add_argument("--only", nargs="*", help="fixtures to regenerate (by name)")
    args = ap.parse_args()
    os.makedirs(FIXTURES, exist_ok=True)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    if args.only:
        write_weight_params(args.models)
        for spec in FIXTURE_SPECS:
            if spec["name"] in args.only:
                build_fixture(spec, args.models)
        for spec in TRAINING_SPECS:
            if spec["name"] in args.only:
                build_training_fixture(spec, args.models)
        return
    write_weight_params(args.models)
    for spec in FIXTURE_SPECS:
        build_fixture(spec, args.models)
    for spec in TRAINING_SPECS:
        build_training_fixture(spec, args.models)


def write_weight_params(models_dir):
    counts = {}
    for model, weights in WEIGHTED:
        path = locate(model, models_dir)
        if not os.path.exists(path):
            print("missing", path, file=sys.stderr)
            continue
        if path.endswith(".json") or open(path, "rb").read(2) == b"PK":
            _, _, total = read_model(path, locate(weights, models_dir) if weights else None)
        else:
            total = sum(a.size for ws in legacy_weights(path).values() for _, a in ws)
        counts[os.path.basename(model)] = total
    with open(os.path.join(FIXTURES, "weight_params.json"), "w") as fh:
        json.dump(counts, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
