"""The seed's MNIST recipe in PyTorch, for comparing fgc's end-to-end training (not a test).

Trains samples/mnist_mlp's model (784-64-64-10, the same initial weights: `fgc export-weights`)
on Debian's Fashion-MNIST exactly as the seed does — RMSprop(lr=1e-3, rho=0.9, eps=1e-7; PyTorch
puts eps outside the root like tf.keras 2.x with momentum 0), SparseCategoricalCrossentropy from
logits, batch 64, 2 epochs, validation_split=0.2 (the last 20%, before shuffling) — then prints
the test loss and accuracy. fgc's run of the same recipe is `scripts/mnist`; the shuffling
orders differ, so the two agree statistically, not bit for bit.

    /usr/bin/python3 tests/reference/mnist_recipe.py [--fgc build/tools/fgc/fgc] [--seed 0]
"""
import argparse
import gzip
import os
import subprocess
import tempfile

import numpy as np
import torch

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fgc", default="build/tools/fgc/fgc")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    x_train = idx(f"{DATA}/train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    y_train = idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64)
    x_test = idx(f"{DATA}/t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    y_test = idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64)

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([args.fgc, "export-weights", "samples/mnist_mlp/model.pbtxt", "-o", tmp],
                       check=True, stdout=subprocess.DEVNULL)
        w = {f"{layer}/{name}": torch.from_numpy(np.load(os.path.join(tmp, layer, name + ".npy")))
             for layer in ("dense", "dense_1", "dense_2") for name in ("kernel", "bias")}
    layers = []
    for i, layer in enumerate(("dense", "dense_1", "dense_2")):
        lin = torch.nn.Linear(*w[f"{layer}/kernel"].shape)
        with torch.no_grad():
            lin.weight.copy_(w[f"{layer}/kernel"].T)
            lin.bias.copy_(w[f"{layer}/bias"])
        layers.append(lin)
        if i < 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    split = int(len(x_train) * (1 - 0.2))
    xt, yt = torch.from_numpy(x_train[:split]), torch.from_numpy(y_train[:split])
    xv, yv = torch.from_numpy(x_train[split:]), torch.from_numpy(y_train[split:])
    for epoch in range(2):
        order = torch.randperm(len(xt))
        for b in range(0, len(xt), 64):
            idx_b = order[b:b + 64]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx_b]), yt[idx_b])
            loss.backward()
            opt.step()
        with torch.no_grad():
            vl = loss_fn(model(xv), yv).item()
            va = (model(xv).argmax(1) == yv).float().mean().item()
        print(f"epoch {epoch + 1}: val_loss {vl:.4f} val_accuracy {va:.4f}")
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test))
        print(f"Test Loss: {loss_fn(logits, torch.from_numpy(y_test)).item():.4f}")
        print(f"Test Acc: {(logits.argmax(1) == torch.from_numpy(y_test)).float().mean().item():.4f}")


if __name__ == "__main__":
    main()
