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
        return torch.from_numpy(self.weights[self.path][name]).to(mi.DTYPE)


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


def call_layer(layer, weights, prefix, xs):
    name = layer_name(layer)
    if is_model(layer):
        return run_model(layer, weights, prefix + name + "/", xs)
    fn = mi.LAYERS[layer["class_name"]]
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
    with open(os.path.join(out_dir, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")
    print("wrote", out_dir)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.path.join(REPO, "..", "shared", "keras-models"))
    args = ap.parse_args()
    os.makedirs(FIXTURES, exist_ok=True)
    counts = {}
    for model, weights in WEIGHTED:
        path = locate(model, args.models)
        if not os.path.exists(path):
            print("missing", path, file=sys.stderr)
            continue
        if path.endswith(".json") or open(path, "rb").read(2) == b"PK":
            _, _, total = read_model(path, locate(weights, args.models) if weights else None)
        else:
            total = sum(a.size for ws in legacy_weights(path).values() for _, a in ws)
        counts[os.path.basename(model)] = total
    with open(os.path.join(FIXTURES, "weight_params.json"), "w") as fh:
        json.dump(counts, fh, indent=1, sort_keys=True)
        fh.write("\n")
    for spec in FIXTURE_SPECS:
        build_fixture(spec, args.models)


if __name__ == "__main__":
    main()
