#!/usr/bin/python3
"""Reference training steps with a learning-rate schedule, computed with PyTorch autograd.

Writes tests/fixtures/training/mnist_mlp_sgd_expdecay_3steps/ for the model
tests/training/models/mnist_mlp_sgd_decay.pbtxt: mnist_mlp (Dense 64 relu, Dense 64 relu,
Dense 10; SparseCategoricalCrossentropy from logits) trained by plain SGD whose learning rate
is keras.optimizers.schedules.ExponentialDecay(initial_learning_rate=0.1, decay_steps=2,
decay_rate=0.5), three steps on three seeded batches of 8. The layout is the one
models_training.py writes (meta.json, input_<name>_step<k>.npy, target_<output>_step<k>.npy,
after/<layer>/<weight>.npy), so tests/training/ModelTrainingTest.cpp reads it unchanged.

Keras semantics (tf.keras 2.x, optimizer_v2): the learning rate of an update is
schedule(iterations) with `iterations` the number of updates applied before it (0 for the
first), and ExponentialDecay(step) = initial * decay_rate ** (step / decay_steps) (no
staircase). The three updates therefore use 0.1, 0.1 * 0.5 ** 0.5 and 0.05. A schedule that
ignored the step (0.1 each time), or counted from 1, moves the weights by more than the
tolerance (checked below before writing).

Arithmetic in float64 on the float32 inputs and initial weights (`fgc export-weights`); the
weights stay float64 between steps and are stored as float32.
Run `/usr/bin/python3 tests/reference/lr_schedules.py --fgc build/tools/fgc/fgc`.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODEL = "tests/training/models/mnist_mlp_sgd_decay.pbtxt"
CASE = "mnist_mlp_sgd_expdecay_3steps"
LAYERS = ["dense", "dense_1", "dense_2"]
SCHEDULE = dict(initial_learning_rate=0.1, decay_steps=2, decay_rate=0.5, staircase=False)
STEPS, BATCH, SEED = 3, 8, 20261127
TOL = dict(abs=1e-5, rel=1e-5)


def exponential_decay(step):
    p = step / SCHEDULE["decay_steps"]
    if SCHEDULE["staircase"]:
        p = np.floor(p)
    return SCHEDULE["initial_learning_rate"] * SCHEDULE["decay_rate"] ** p


def export_weights(fgc, tmp):
    out = os.path.join(tmp, "w")
    subprocess.run([fgc, "export-weights", os.path.join(ROOT, MODEL), "-o", out], check=True,
                   stdout=subprocess.DEVNULL)
    w = {}
    for layer in LAYERS:
        for name in ("kernel", "bias"):
            w[f"{layer}/{name}"] = np.load(os.path.join(out, layer, name + ".npy"))
    return w


def loss_of(params, x, y):
    h = torch.relu(x @ params["dense/kernel"] + params["dense/bias"])
    h = torch.relu(h @ params["dense_1/kernel"] + params["dense_1/bias"])
    logits = h @ params["dense_2/kernel"] + params["dense_2/bias"]
    return torch.nn.functional.cross_entropy(logits, y)  # mean over the batch


def train(initial, batches, lr_of_step):
    params = {k: torch.tensor(v.astype(np.float64), requires_grad=True)
              for k, v in initial.items()}
    losses = []
    for step, (x, y) in enumerate(batches):
        loss = loss_of(params, torch.tensor(x.astype(np.float64)), torch.tensor(y.astype(np.int64)))
        grads = torch.autograd.grad(loss, list(params.values()))
        lr = lr_of_step(step)
        with torch.no_grad():
            for p, g in zip(params.values(), grads):
                p -= lr * g
        losses.append(float(loss))
    return {k: v.detach().numpy() for k, v in params.items()}, losses


def max_violation(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]) / (TOL["abs"] + TOL["rel"] * np.abs(b[k]))))
               for k in a)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fgc", default=os.path.join(ROOT, "build/tools/fgc/fgc"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/fixtures/training", CASE))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        initial = export_weights(args.fgc, tmp)
    rng = np.random.default_rng(SEED)
    batches = [(rng.random((BATCH, 784), dtype=np.float32),
                rng.integers(0, 10, size=BATCH).astype(np.int32)) for _ in range(STEPS)]
    after, losses = train(initial, batches, exponential_decay)

    # The fixture must tell the schedule apart from a constant rate and from an off-by-one step.
    for name, wrong in (("constant", lambda s: SCHEDULE["initial_learning_rate"]),
                        ("counted from 1", lambda s: exponential_decay(s + 1))):
        other, _ = train(initial, batches, wrong)
        v = max_violation({k: np.float32(x) for k, x in other.items()}, after)
        if v <= 10:
            sys.exit(f"a {name} learning rate ends within {v:.1f}x the tolerance: the fixture "
                     "cannot tell it from the schedule")
        print(f"a {name} learning rate is {v:.0f}x the tolerance away")

    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    inputs, targets = [], []
    for k, (x, y) in enumerate(batches, start=1):
        np.save(os.path.join(args.out, f"input_input_1_step{k}.npy"), x)
        np.save(os.path.join(args.out, f"target_dense_2_step{k}.npy"), y)
        inputs.append(dict(name="input_1", step=k, file=f"input_input_1_step{k}.npy",
                           shape=list(x.shape), dtype="float32", values="uniform [0, 1)"))
        targets.append(dict(output="dense_2", step=k, file=f"target_dense_2_step{k}.npy",
                            shape=list(y.shape), dtype="int32"))
    params = []
    for path, value in after.items():
        f = f"after/{path}.npy"
        os.makedirs(os.path.dirname(os.path.join(args.out, f)), exist_ok=True)
        np.save(os.path.join(args.out, f), value.astype(np.float32))
        params.append(dict(path=path, shape=list(value.shape), after=[f], storage="full",
                           skip_count=0))
    meta = dict(
        description="Reference SGD steps with an ExponentialDecay learning rate, written by "
                    f"tests/reference/lr_schedules.py (PyTorch {torch.__version__} autograd, "
                    "float64 arithmetic on float32 inputs and weights, stored as float32).",
        model=MODEL, initial_weights="fgc export-weights of the model file",
        steps=STEPS, batch=BATCH, seeds=[SEED], dropout="none in the model",
        inputs=["input_1"], outputs=["dense_2"],
        optimizer=dict(class_name="SGD", momentum=0.0, nesterov=False,
                       learning_rate=dict(class_name="ExponentialDecay", config=SCHEDULE)),
        learning_rates=[exponential_decay(s) for s in range(STEPS)],
        losses=[dict(output="dense_2", class_name="SparseCategoricalCrossentropy",
                     from_logits=True, weight=1.0)],
        loss_values=[dict(step=k + 1, total=l, per_output=dict(dense_2=l))
                     for k, l in enumerate(losses)],
        input_details=inputs, target_details=targets, params=params,
        tolerance=dict(after=dict(TOL, rule="|got - ref| <= abs + rel * |ref|"),
                       loss=dict(TOL, rule="|got - ref| <= abs + rel * |ref|")))
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {args.out}: losses {', '.join(f'{l:.6f}' for l in losses)}")


if __name__ == "__main__":
    main()
