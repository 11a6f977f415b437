#!/usr/bin/python3
"""Training benchmark: fgc-generated training code against PyTorch, in one run (hand-run).

Figures (see bench/README.md, "Training"):
  * mnist_mlp: seconds per epoch of the seed's recipe on Fashion-MNIST (Debian's
    dataset-fashion-mnist): 48,000 training images (validation_split 0.2, the last 20% held out
    before shuffling), batch 64, RMSprop (lr 1e-3, rho 0.9, eps 1e-7), sparse categorical
    cross-entropy from logits, the accuracy metric, then the validation pass over 12,000 images,
    as Keras's fit does each epoch. fgc: `fit()` of the generated class; torch: the same loop
    written by hand (shuffled index batches of in-memory tensors, loss and accuracy per batch,
    validation under no_grad).
  * toy_resnet, batch 64, and the ticket model, batch 32 (title 10 and body 100 tokens, as in
    the seed): milliseconds per train step (forward in training mode with Dropout active,
    losses, backward, optimizer update) on fixed pseudo-random inputs and one-hot targets.
Both sides start from the same weights (`fgc export-weights`), use the same thread count
(fgc setNumThreads, torch.set_num_threads) and the same OMP_WAIT_POLICY; torch is Debian's
python3-torch with OpenBLAS (see bench/README.md). The fgc harness is bench/bench_training.cpp,
built in --build-dir with -DFGC_BUILD_BENCH=ON; torch runs in child processes (--worker).

    /usr/bin/python3 bench/run_training.py [--threads 2 1] [--only mnist_mlp] [--no-build]
                                           [--opt-levels 2 0]
fgc runs twice per point by default: code compiled at -O2 (the default) and at -O0 (no passes, no
arena reuse; mnist_mlp and toy_resnet). Each run also reports the process's resident set before
the first step and its peak (MiB), for fgc and torch alike.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_inference as inf  # noqa: E402  (the build, environment and timing helpers)

REPO = inf.REPO
DATA = "/usr/share/datasets/fashion-mnist"
MODELS = {
    "mnist_mlp": dict(file="samples/mnist_mlp/model.pbtxt", mode="epoch"),
    "toy_resnet": dict(file="samples/toy_resnet/model.pbtxt", mode="step", batch=64),
    "ticket_classifier": dict(file="samples/ticket_classifier/model.pbtxt", mode="step",
                              batch=32, dims={"title": 10, "body": 100}),
}
# Models whose harness is also built from code compiled at -O0 (bench/CMakeLists.txt).
O0_MODELS = ("mnist_mlp", "toy_resnet")


# --------------------------------------------------------------------------------------------
# Torch side (worker processes)

def torch_models():
    import torch
    from torch import nn
    import torch.nn.functional as F

    base = inf.torch_modules()

    class ToyResnetTrain(base["toy_resnet"]):
        """The inference module plus Dropout(0.5) before the last Dense, as the sample has."""

        def forward(self, x):
            x = x.permute(0, 3, 1, 2)
            x = F.relu(self.conv2d_8(x))
            x = F.relu(self.conv2d_9(x))
            b1 = F.max_pool2d(x, 3, 3)
            x = F.relu(self.conv2d_11(F.relu(self.conv2d_10(b1))))
            b2 = x + b1
            x = F.relu(self.conv2d_13(F.relu(self.conv2d_12(b2))))
            x = x + b2
            x = F.relu(self.conv2d_14(x))
            x = x.mean(dim=(2, 3))
            x = F.dropout(F.relu(self.dense_6(x)), 0.5, self.training)
            return self.dense_7(x)

    class Ticket(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(10000, 64)
            self.embedding_1 = nn.Embedding(10000, 64)
            self.lstm = nn.LSTM(64, 128, batch_first=True)
            self.lstm_1 = nn.LSTM(64, 32, batch_first=True)
            self.priority = nn.Linear(128 + 32 + 12, 1)
            self.department = nn.Linear(128 + 32 + 12, 4)

        def forward(self, title, body, tags):
            _, (t, _) = self.lstm(self.embedding(title))
            _, (b, _) = self.lstm_1(self.embedding_1(body))
            x = torch.cat([t[0], b[0], tags], dim=1)
            return self.priority(x), self.department(x)

    return {"mnist_mlp": base["mnist_mlp"], "toy_resnet": ToyResnetTrain,
            "ticket_classifier": Ticket}


def load_all_weights(module, weight_dir):
    """Keras-layout weights into the module: Linear / Conv through run_inference's loader,
    Embedding tables as they are, LSTM kernels transposed (Keras's gate order i, f, c, o is
    torch's i, f, g, o; Keras's one bias goes to bias_ih, bias_hh is zero)."""
    import numpy as np
    import torch
    from torch import nn

    def load(layer, name):
        return torch.from_numpy(np.load(os.path.join(weight_dir, layer, name + ".npy")))

    plain = nn.Module()
    with torch.no_grad():
        for name, sub in module.named_children():
            if isinstance(sub, nn.Embedding):
                sub.weight.copy_(load(name, "embeddings"))
            elif isinstance(sub, nn.LSTM):
                sub.weight_ih_l0.copy_(load(name, "kernel").t())
                sub.weight_hh_l0.copy_(load(name, "recurrent_kernel").t())
                sub.bias_ih_l0.copy_(load(name, "bias"))
                sub.bias_hh_l0.zero_()
            else:
                plain.add_module(name, sub)
    inf.load_weights(plain, weight_dir)


def fashion_mnist():
    import gzip
    import numpy as np

    def idx(path):
        with gzip.open(path, "rb") as f:
            data = f.read()
        rank = data[3]
        dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)

    x = idx(os.path.join(DATA, "train-images-idx3-ubyte.gz")).reshape(-1, 784)
    y = idx(os.path.join(DATA, "train-labels-idx1-ubyte.gz"))
    return x.astype(np.float32) / 255, y.astype(np.int64)


def worker(args):
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    module = torch_models()[args.model]()
    load_all_weights(module, args.weights)
    module.train()
    opt = torch.optim.RMSprop(module.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    result = dict(model=args.model, threads=torch.get_num_threads(), blas=inf.blas_info())
    if args.model == "mnist_mlp":
        x, y = fashion_mnist()
        result["rss_before_mib"] = status_mib("VmRSS")
        split = int(len(x) * 0.8)
        xt, yt = torch.from_numpy(x[:split]), torch.from_numpy(y[:split])
        xv, yv = torch.from_numpy(x[split:]), torch.from_numpy(y[split:])
        walls, cpus = [], []
        for epoch in range(args.epochs):
            c0, t0 = time.process_time(), time.perf_counter()
            perm = torch.randperm(split)
            correct, total = 0, 0.0
            for b in range(0, split, 64):
                idx = perm[b:b + 64]
                xb, yb = xt[idx], yt[idx]
                opt.zero_grad()
                z = module(xb)
                loss = F.cross_entropy(z, yb)
                loss.backward()
                opt.step()
                total += float(loss)
                correct += int((z.argmax(1) == yb).sum())
            with torch.no_grad():
                zv = torch.cat([module(xv[b:b + 64]) for b in range(0, len(xv), 64)])
                val_loss = float(F.cross_entropy(zv, yv))
                val_acc = float((zv.argmax(1) == yv).float().mean())
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        walls.sort()
        result.update(mode="epoch", median_s=walls[len(walls) // 2], min_s=walls[0],
                      cpu_s=min(cpus), val_loss=val_loss, val_accuracy=val_acc)
    else:
        spec = MODELS[args.model]
        n = spec["batch"]
        rng = np.random.default_rng(1)
        if args.model == "toy_resnet":
            inputs = [torch.from_numpy(rng.random((n, 32, 32, 3), dtype=np.float32))]
            labels = torch.from_numpy(rng.integers(0, 10, n))

            def loss_fn(out):
                return F.cross_entropy(out, labels)
        else:
            inputs = [torch.from_numpy(rng.integers(0, 1000, (n, spec["dims"]["title"]))),
                      torch.from_numpy(rng.integers(0, 1000, (n, spec["dims"]["body"]))),
                      torch.from_numpy(rng.random((n, 12), dtype=np.float32))]
            priority = torch.from_numpy(rng.integers(0, 2, (n, 1)).astype(np.float32))
            department = torch.from_numpy(rng.integers(0, 4, n))

            def loss_fn(out):
                return (F.binary_cross_entropy_with_logits(out[0], priority)
                        + 0.2 * F.cross_entropy(out[1], department))

        result["rss_before_mib"] = status_mib("VmRSS")

        def step(_):
            opt.zero_grad()
            loss = loss_fn(module(*inputs))
            loss.backward()
            opt.step()

        med, best, cpu = inf.time_callable(step, None, min_time=args.min_time,
                                           warmup=args.warmup, sample_ms=1.0,
                                           min_samples=args.min_samples)
        result.update(mode="step", batch=n, median_ms=med * 1e3, min_ms=best * 1e3,
                      cpu_ms=cpu * 1e3)
    result["peak_rss_mib"] = status_mib("VmHWM")
    print(json.dumps(result))


def status_mib(field):
    """A /proc/self/status field ("VmRSS", "VmHWM": the peak resident set) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return -1.0


# --------------------------------------------------------------------------------------------
# Driver

def build(args):
    inf.run(["cmake", "-S", args.source_dir, "-B", args.build_dir, "-DCMAKE_BUILD_TYPE=Release",
             "-DFGC_BUILD_BENCH=ON", "-DFGC_BUILD_TESTS=OFF", "-DFGC_BUILD_SAMPLES=OFF"],
            stdout=subprocess.DEVNULL)
    inf.run(["cmake", "--build", args.build_dir, "-j", "2", "--target", "fgc"]
            + ["bench_train_" + m + ("" if level == 2 else "_O%d" % level)
               for m in MODELS if not args.only or m in args.only
               for level in args.opt_levels if level == 2 or m in O0_MODELS],
            stdout=subprocess.DEVNULL)


def fgc_run(args, model, threads, level=2):
    spec = MODELS[model]
    exe = os.path.join(args.build_dir, "bench",
                       "bench_train_" + model + ("" if level == 2 else "_O%d" % level))
    cmd = [exe, "--threads", str(threads)]
    if spec["mode"] == "epoch":
        cmd += ["--epochs", str(args.epochs), "--data", DATA]
    else:
        cmd += ["--batch", str(spec["batch"]), "--min-time", str(args.min_time), "--warmup",
                str(args.warmup), "--min-samples", str(args.min_samples)]
        if "dims" in spec:
            cmd += ["--dims", ",".join("%s=%d" % kv for kv in spec["dims"].items())]
    out = inf.run(cmd, stdout=subprocess.PIPE, text=True, env=inf.omp_env(args)).stdout
    return json.loads(out)


def torch_run(args, model, threads, weights):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--model", model, "--threads",
           str(threads), "--weights", weights, "--epochs", str(args.epochs), "--min-time",
           str(args.min_time), "--warmup", str(args.warmup), "--min-samples",
           str(args.min_samples)]
    out = inf.run(cmd, stdout=subprocess.PIPE, text=True, env=inf.omp_env(args)).stdout
    return json.loads(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    p.add_argument("--source-dir", default=REPO)
    p.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"))
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--only", nargs="+", help="models to run (default: all)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (the best is kept)")
    p.add_argument("--epochs", type=int, default=3, help="MNIST epochs timed per run")
    p.add_argument("--min-time", type=float, default=2.0)
    p.add_argument("--min-samples", type=int, default=10)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--omp-wait-policy", choices=("passive", "active", "unset"),
                   default="passive")
    p.add_argument("--opt-levels", type=int, nargs="+", choices=(0, 2), default=[2, 0],
                   help="fgc code compiled at these -O levels (default: 2 0; -O0 for %s only)"
                        % ", ".join(O0_MODELS))
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.threads = args.threads[0]
        return worker(args)
    if not args.no_build:
        build(args)
    fgc_exe = os.path.join(args.build_dir, "tools", "fgc", "fgc")
    models = [m for m in MODELS if not args.only or m in args.only]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fgc-bench-train-") as tmp:
        for m in models:
            inf.run([fgc_exe, "export-weights", os.path.join(args.source_dir, MODELS[m]["file"]),
                     "-o", os.path.join(tmp, m)], stdout=subprocess.DEVNULL)
        for threads in args.threads:
            for m in models:
                load = os.getloadavg()[0]
                best = {}
                sides = [("fgc" if level == 2 else "fgc_O%d" % level,
                          lambda level=level: fgc_run(args, m, threads, level))
                         for level in args.opt_levels if level == 2 or m in O0_MODELS]
                sides.append(("torch", lambda: torch_run(args, m, threads, os.path.join(tmp, m))))
                for _ in range(args.rounds):
                    for side, fn in sides:
                        r = fn()
                        key = "median_s" if r["mode"] == "epoch" else "median_ms"
                        if side not in best or r[key] < best[side][key]:
                            best[side] = r
                row = dict(model=m, threads=threads, load_before=load,
                           load_after=os.getloadavg()[0], **best)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print_tables(rows)


def print_tables(rows):
    """Markdown tables: time (fgc -O2, -O0, torch; wall and process CPU), then memory."""
    def figures(r):
        if r["mode"] == "epoch":
            return r["median_s"], r["cpu_s"]
        return r["median_ms"], r["cpu_ms"]

    print("\n| model | what | thr | fgc -O2 | fgc -O0 | torch | torch/fgc -O2 | -O0/-O2 "
          "| fgc -O2 cpu | fgc -O0 cpu | torch cpu | cpu torch/fgc -O2 | load |")
    print("|" + "---|" * 13)
    for r in rows:
        f, t, z = r["fgc"], r["torch"], r.get("fgc_O0")
        what = "s/epoch" if f["mode"] == "epoch" else "ms/step, batch %d" % f["batch"]
        (a, ca), (b, cb) = figures(f), figures(t)
        za, zc = figures(z) if z else (float("nan"), float("nan"))
        print("| %s | %s | %d | %.4g | %.4g | %.4g | **%.2f** | %.2f | %.4g | %.4g | %.4g | %.2f "
              "| %.1f-%.1f |" % (r["model"], what, r["threads"], a, za, b, b / a, za / a, ca, zc,
                                 cb, cb / ca, r["load_before"], r["load_after"]))
    print("\nMedians over the runs (best of --rounds); cpu: process CPU time (all threads), the "
          "least load-sensitive figure; load: 1-minute load average before / after the point.")
    print("\n| model | thr | side | RSS before the first step (MiB) | peak RSS (MiB) "
          "| peak - before (MiB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        for side in ("fgc", "fgc_O0", "torch"):
            if side in r and "peak_rss_mib" in r[side]:
                x = r[side]
                print("| %s | %d | %s | %.1f | %.1f | %.1f |" % (
                    r["model"], r["threads"],
                    {"fgc": "fgc -O2", "fgc_O0": "fgc -O0", "torch": "torch"}[side],
                    x["rss_before_mib"], x["peak_rss_mib"],
                    x["peak_rss_mib"] - x["rss_before_mib"]))
    print("\nRSS: the process's resident set (/proc/self/status VmRSS) after building the model, "
          "its weights and inputs (and, for MNIST, loading the data), and its peak (VmHWM) at the "
          "end of the timed run; each side in its own process. torch's includes the Python "
          "interpreter and libtorch.")

if __name__ == "__main__":
    main()
