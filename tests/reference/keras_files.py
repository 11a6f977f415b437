#!/usr/bin/python3
"""Keras files for the import tests that the real-file corpus cannot provide, written here in
exactly the layout tf.keras 2.10 writes (no TensorFlow needed: the configs are Keras's
`to_json()` text, the weights HDF5 files are written with h5py as Keras's legacy saving code
lays them out):

  tests/data/keras/seed_autoencoder_nested.h5
      The seed tutorial's autoencoder with the encoder and the decoder as nested Functional
      models (`decoder(encoder(img))`), saved by `model.save("m.h5")` after `compile(Adam, mse)`
      and three training steps: root attributes `model_config`, `training_config`,
      `keras_version`, `backend`; `model_weights/<layer>/...` with each nested model's weights in
      its own group (`model_weights/encoder/conv2d/kernel:0`); and `optimizer_weights`, the
      legacy Adam's variables in `optimizer.weights` order (`Adam/iter:0`, then every
      trainable weight's `m`, then every `v`: `Adam/conv2d/kernel/m:0`).
  tests/data/keras/siamese_concat.json + siamese_concat_weights.h5
      A siamese network: one nested Functional `tower` (Conv2D, GlobalAveragePooling2D, Dense)
      shared by two inputs, the two embeddings joined by Concatenate and scored by a sigmoid
      Dense. `model.to_json()` (nested calls numbered from 1: `["tower", 1, 0]`,
      `["tower", 2, 0]`) and `model.save_weights("w.h5")` (layer groups at the root).

Every corpus siamese file uses a Python Lambda or a custom distance layer, and no corpus file
with optimizer weights also trains in fgc with its license allowing a copy; these files fill
those gaps. The weights are random (seeded) with non-zero biases, so no ReLU or max-pooling
window is exactly tied at the fixtures' inputs.

Regenerate (Debian's python3-numpy and python3-h5py; /usr/bin/python3):
    /usr/bin/python3 tests/reference/keras_files.py
then tests/reference/keras_import.py for the fixtures computed from them.
"""

import json
import os

import h5py
import numpy as np

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DATA = os.path.join(REPO, "tests", "data", "keras")
KERAS_VERSION = "2.10.0"


# --------------------------------------------------------------------------------------------
# Layer configs as tf.keras 2.10's get_config() writes them

def initializer(name):
    return {"class_name": name, "config": {"seed": None} if name == "GlorotUniform" else {}}


def input_layer(name, shape):
    return {"class_name": "InputLayer", "config": {
        "batch_input_shape": [None] + list(shape), "dtype": "float32", "sparse": False,
        "ragged": False, "name": name}, "name": name, "inbound_nodes": []}


def conv_config(name, filters, k, activation, transpose=False):
    cfg = {"name": name, "trainable": True, "dtype": "float32", "filters": filters,
           "kernel_size": [k, k], "strides": [1, 1], "padding": "valid",
           "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
           "activation": activation, "use_bias": True,
           "kernel_initializer": initializer("GlorotUniform"),
           "bias_initializer": initializer("Zeros"), "kernel_regularizer": None,
           "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
           "bias_constraint": None}
    if transpose:
        del cfg["groups"]
        cfg["output_padding"] = None
    return cfg


def dense_config(name, units, activation):
    return {"name": name, "trainable": True, "dtype": "float32", "units": units,
            "activation": activation, "use_bias": True,
            "kernel_initializer": initializer("GlorotUniform"),
            "bias_initializer": initializer("Zeros"), "kernel_regularizer": None,
            "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
            "bias_constraint": None}


def layer(cls, cfg, inbound):
    """A layer entry; `inbound` lists the calls, each a list of (layer, node, tensor)."""
    return {"class_name": cls, "config": cfg, "name": cfg["name"],
            "inbound_nodes": [[[l, n, t, {}] for l, n, t in call] for call in inbound]}


def chain(first_input, specs):
    """Layers applied one after the other: [(class, config)] -> layer entries."""
    out, prev = [], first_input
    for cls, cfg in specs:
        out.append(layer(cls, cfg, [[(prev, 0, 0)]]))
        prev = cfg["name"]
    return out, prev


def functional(name, layers, inputs, outputs):
    return {"name": name, "layers": layers, "input_layers": [[n, 0, 0] for n in inputs],
            "output_layers": [[n, k, 0] for n, k in outputs]}


def plain(name, **kw):
    return dict({"name": name, "trainable": True, "dtype": "float32"}, **kw)


# --------------------------------------------------------------------------------------------
# HDF5 writing as keras/saving/legacy/hdf5_format.py does

def strings(values):
    """A string-list attribute: tf.keras 2.10 writes variable-length strings; an empty list is
    an empty float64 array (np.asarray([]))."""
    if not values:
        return np.asarray([])
    return np.array(values, dtype=h5py.string_dtype())


def write_layer_groups(root, layers):
    """layers: [(layer name, [(weight name, array)])], in model.layers order."""
    root.attrs["layer_names"] = strings([n for n, _ in layers])
    root.attrs["backend"] = "tensorflow"
    root.attrs["keras_version"] = KERAS_VERSION
    for name, weights in layers:
        g = root.create_group(name)
        g.attrs["weight_names"] = strings([wn for wn, _ in weights])
        for wn, arr in weights:
            d = g.create_dataset(wn, arr.shape, dtype=arr.dtype)
            d[...] = arr


def random_weights(rng, specs):
    """specs: [(layer name, kernel shape, fan_in, fan_out, bias size)] -> [(name, array)].
    Glorot-uniform kernels; biases uniform in [-0.1, 0.1] (not zero: no exact ties)."""
    out = []
    for name, shape, fan_in, fan_out, units in specs:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        out.append(("%s/kernel:0" % name,
                    rng.uniform(-limit, limit, size=shape).astype(np.float32)))
        out.append(("%s/bias:0" % name, rng.uniform(-0.1, 0.1, size=units).astype(np.float32)))
    return out


def conv_spec(name, k, cin, cout, transpose=False):
    shape = (k, k, cout, cin) if transpose else (k, k, cin, cout)
    # Keras's fans for a transposed kernel (k, k, out, in): in = k*k*out, out = k*k*in.
    fin, fout = (k * k * cout, k * k * cin) if transpose else (k * k * cin, k * k * cout)
    return (name, shape, fin, fout, cout)


# --------------------------------------------------------------------------------------------
# The seed's nested autoencoder

def seed_autoencoder(rng):
    enc_layers, enc_out = chain("original_img", [
        ("Conv2D", conv_config("conv2d", 16, 3, "relu")),
        ("Conv2D", conv_config("conv2d_1", 32, 3, "relu")),
        ("MaxPooling2D", plain("max_pooling2d", pool_size=[3, 3], padding="valid",
                               strides=[3, 3], data_format="channels_last")),
        ("Conv2D", conv_config("conv2d_2", 32, 3, "relu")),
        ("Conv2D", conv_config("conv2d_3", 16, 3, "relu")),
        ("GlobalMaxPooling2D", plain("global_max_pooling2d", data_format="channels_last",
                                     keepdims=False)),
    ])
    encoder = functional("encoder", [input_layer("original_img", (28, 28, 1))] + enc_layers,
                         ["original_img"], [(enc_out, 0)])
    dec_layers, dec_out = chain("encoded_img", [
        ("Reshape", plain("reshape", target_shape=[4, 4, 1])),
        ("Conv2DTranspose", conv_config("conv2d_transpose", 16, 3, "relu", True)),
        ("Conv2DTranspose", conv_config("conv2d_transpose_1", 32, 3, "relu", True)),
        ("UpSampling2D", plain("up_sampling2d", size=[3, 3], data_format="channels_last",
                               interpolation="nearest")),
        ("Conv2DTranspose", conv_config("conv2d_transpose_2", 16, 3, "relu", True)),
        ("Conv2DTranspose", conv_config("conv2d_transpose_3", 1, 3, "relu", True)),
    ])
    decoder = functional("decoder", [input_layer("encoded_img", (16,))] + dec_layers,
                         ["encoded_img"], [(dec_out, 0)])
    model = {"class_name": "Functional", "config": functional("autoencoder", [
        input_layer("img", (28, 28, 1)),
        {"class_name": "Functional", "config": encoder, "name": "encoder",
         "inbound_nodes": [[["img", 0, 0, {}]]]},
        {"class_name": "Functional", "config": decoder, "name": "decoder",
         "inbound_nodes": [[["encoder", 1, 0, {}]]]},
    ], ["img"], [("decoder", 1)]), "keras_version": KERAS_VERSION, "backend": "tensorflow"}

    enc_w = random_weights(rng, [conv_spec("conv2d", 3, 1, 16), conv_spec("conv2d_1", 3, 16, 32),
                                 conv_spec("conv2d_2", 3, 32, 32),
                                 conv_spec("conv2d_3", 3, 32, 16)])
    dec_w = random_weights(rng, [conv_spec("conv2d_transpose", 3, 1, 16, True),
                                 conv_spec("conv2d_transpose_1", 3, 16, 32, True),
                                 conv_spec("conv2d_transpose_2", 3, 32, 16, True),
                                 conv_spec("conv2d_transpose_3", 3, 16, 1, True)])
    training = {"loss": "mse", "metrics": None, "weighted_metrics": None, "loss_weights": None,
                "optimizer_config": {"class_name": "Adam", "config": {
                    "name": "Adam", "learning_rate": 0.0010000000474974513, "decay": 0.0,
                    "beta_1": 0.8999999761581421, "beta_2": 0.9990000128746033,
                    "epsilon": 1e-07, "amsgrad": False}}}
    path = os.path.join(DATA, "seed_autoencoder_nested.h5")
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = KERAS_VERSION
        f.attrs["model_config"] = json.dumps(model)
        f.attrs["training_config"] = json.dumps(training)
        write_layer_groups(f.create_group("model_weights"),
                           [("img", []), ("encoder", enc_w), ("decoder", dec_w),
                            ("top_level_model_weights", [])])
        # The legacy Adam after 3 steps: iter, then m of every trainable weight, then v.
        # Moments of a plausible size: m ~ N(0, 0.01^2), v ~ m^2-ish + small positive.
        opt = [("Adam/iter:0", np.array(3, dtype=np.int64))]
        trainable = enc_w + dec_w
        for slot in ("m", "v"):
            for wn, arr in trainable:
                base = wn.split(":")[0]
                if slot == "m":
                    val = rng.normal(0, 0.01, size=arr.shape)
                else:
                    val = rng.uniform(1e-6, 2e-4, size=arr.shape)
                opt.append(("Adam/%s/%s:0" % (base, slot), val.astype(np.float32)))
        g = f.create_group("optimizer_weights")
        g.attrs["weight_names"] = strings([n for n, _ in opt])
        for n, arr in opt:
            d = g.create_dataset(n, arr.shape, dtype=arr.dtype)
            d[...] = arr
    print("wrote", path)


# --------------------------------------------------------------------------------------------
# A siamese network: a shared nested tower on two inputs, Concatenate, Dense

def siamese(rng):
    tower_layers, tower_out = chain("patch", [
        ("Conv2D", conv_config("conv2d", 4, 3, "relu")),
        ("GlobalAveragePooling2D", plain("global_average_pooling2d",
                                         data_format="channels_last", keepdims=False)),
        ("Dense", dense_config("dense", 8, "tanh")),
    ])
    tower = functional("tower", [input_layer("patch", (8, 8, 1))] + tower_layers, ["patch"],
                       [(tower_out, 0)])
    model = {"class_name": "Functional", "config": functional("siamese", [
        input_layer("left", (8, 8, 1)),
        input_layer("right", (8, 8, 1)),
        {"class_name": "Functional", "config": tower, "name": "tower",
         "inbound_nodes": [[["left", 0, 0, {}]], [["right", 0, 0, {}]]]},
        layer("Concatenate", plain("concatenate", axis=-1), [[("tower", 1, 0), ("tower", 2, 0)]]),
        layer("Dense", dense_config("dense_1", 1, "sigmoid"), [[("concatenate", 0, 0)]]),
    ], ["left", "right"], [("dense_1", 0)]), "keras_version": KERAS_VERSION,
        "backend": "tensorflow"}
    path = os.path.join(DATA, "siamese_concat.json")
    with open(path, "w") as fh:
        fh.write(json.dumps(model))
    print("wrote", path)
    tower_w = random_weights(rng, [conv_spec("conv2d", 3, 1, 4), ("dense", (4, 8), 4, 8, 8)])
    head_w = random_weights(rng, [("dense_1", (16, 1), 16, 1, 1)])
    wpath = os.path.join(DATA, "siamese_concat_weights.h5")
    with h5py.File(wpath, "w") as f:
        write_layer_groups(f, [("left", []), ("right", []), ("tower", tower_w),
                               ("concatenate", []), ("dense_1", head_w),
                               ("top_level_model_weights", [])])
    print("wrote", wpath)


def main():
    rng = np.random.default_rng(83001)
    seed_autoencoder(rng)
    siamese(np.random.default_rng(83002))


if __name__ == "__main__":
    main()
