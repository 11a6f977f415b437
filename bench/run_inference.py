#!/usr/bin/python3
"""Inference benchmark: fgc-generated code against PyTorch eager and TorchScript, in one run.

What it does (see bench/README.md for the figures and how to read them):
  1. configures and builds the harness executables (bench/bench_inference.cpp, one per sample
     model, -DFGC_BUILD_BENCH=ON, Release) in --build-dir;
  2. exports each model's weights with `fgc export-weights` (Keras layouts, .npy);
  3. builds the same networks as plain torch.nn modules with those weights; the input arrives
     NHWC as fgc takes it and the module permutes to NCHW itself (the permutes are timed, as a
     deployment fed NHWC data would pay them);
  4. for every (model, batch) point and thread count, times fgc's predict(), torch eager and
     TorchScript (trace + freeze, and additionally optimize_for_inference; the faster of the two
     is reported) under torch.inference_mode(), each in its own process, the point's runs
     interleaved over --rounds rounds (the best median over rounds is kept, to damp load from
     other processes);
  5. checks that fgc's and torch's outputs agree on the same input (max abs difference);
  6. prints one table per torch environment: fgc / eager / TorchScript ms per batch (median,
     min, and process CPU ms per call), the ratios torch/fgc (> 1: fgc faster), samples/s.
fgc and torch both run with the same OMP_WAIT_POLICY (--omp-wait-policy, default passive: on a
machine shared with other work, threads spinning at OpenMP joins starve each other).
Torch runs in child processes (`--worker`) so that OpenBLAS sees the environment chosen for it
(--openblas-env both also times torch with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed).
With --opt-levels 2 0 (the default) fgc is timed twice per point, from the same model compiled
at -O2 (fgc's default) and at -O0 (no passes, no arena reuse); a last table compares the two.

Run with Debian's python (python3-torch 1.13): /usr/bin/python3 bench/run_inference.py
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

MODELS = {
    "mnist_mlp": dict(file="samples/mnist_mlp/model.pbtxt", input=(784,)),
    "toy_resnet": dict(file="samples/toy_resnet/model.pbtxt", input=(32, 32, 3)),
    "conv_autoencoder": dict(file="samples/conv_autoencoder/model.pbtxt", input=(28, 28, 1)),
}
POINTS = [("mnist_mlp", 1), ("mnist_mlp", 64), ("mnist_mlp", 4096),
          ("toy_resnet", 1), ("toy_resnet", 64), ("conv_autoencoder", 64)]
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# --------------------------------------------------------------------------------------------
# Torch side (imported only in worker processes)

def torch_modules():
    """The three sample networks as torch.nn modules taking NHWC input (Keras semantics)."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class MnistMlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(784, 64)
            self.dense_1 = nn.Linear(64, 64)
            self.dense_2 = nn.Linear(64, 10)

        def forward(self, x):
            x = F.relu(self.dense(x))
            x = F.relu(self.dense_1(x))
            return self.dense_2(x)

    class ToyResnet(nn.Module):
        # Keras 'same' 3x3 stride 1 is symmetric padding 1; 'valid' is padding 0.
        def __init__(self):
            super().__init__()
            self.conv2d_8 = nn.Conv2d(3, 32, 3)
            self.conv2d_9 = nn.Conv2d(32, 64, 3)
            self.conv2d_10 = nn.Conv2d(64, 64, 3, padding=1)
            self.conv2d_11 = nn.Conv2d(64, 64, 3, padding=1)
            self.conv2d_12 = nn.Conv2d(64, 64, 3, padding=1)
            self.conv2d_13 = nn.Conv2d(64, 64, 3, padding=1)
            self.conv2d_14 = nn.Conv2d(64, 64, 3)
            self.dense_6 = nn.Linear(64, 256)
            self.dense_7 = nn.Linear(256, 10)

        def forward(self, x):
            x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW
            x = F.relu(self.conv2d_8(x))
            x = F.relu(self.conv2d_9(x))
            b1 = F.max_pool2d(x, 3, 3)
            x = F.relu(self.conv2d_11(F.relu(self.conv2d_10(b1))))
            b2 = x + b1
            x = F.relu(self.conv2d_13(F.relu(self.conv2d_12(b2))))
            x = x + b2
            x = F.relu(self.conv2d_14(x))
            x = x.mean(dim=(2, 3))
            x = F.relu(self.dense_6(x))
            return self.dense_7(x)  # dropout: identity at inference

    class ConvAutoencoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv2d_4 = nn.Conv2d(1, 16, 3)
            self.conv2d_5 = nn.Conv2d(16, 32, 3)
            self.conv2d_6 = nn.Conv2d(32, 32, 3)
            self.conv2d_7 = nn.Conv2d(32, 16, 3)
            self.conv2d_transpose_4 = nn.ConvTranspose2d(1, 16, 3)
            self.conv2d_transpose_5 = nn.ConvTranspose2d(16, 32, 3)
            self.conv2d_transpose_6 = nn.ConvTranspose2d(32, 16, 3)
            self.conv2d_transpose_7 = nn.ConvTranspose2d(16, 1, 3)

        def forward(self, x):
            x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW
            x = F.relu(self.conv2d_4(x))
            x = F.relu(self.conv2d_5(x))
            x = F.max_pool2d(x, 3, 3)
            x = F.relu(self.conv2d_6(x))
            x = F.relu(self.conv2d_7(x))
            x = torch.amax(x, dim=(2, 3))  # GlobalMaxPooling2D: (N, 16)
            x = x.reshape(-1, 1, 4, 4)  # Reshape((4, 4, 1)) in NHWC is this view in NCHW
            x = F.relu(self.conv2d_transpose_4(x))
            x = F.relu(self.conv2d_transpose_5(x))
            x = F.interpolate(x, scale_factor=3, mode="nearest")  # UpSampling2D(3)
            x = F.relu(self.conv2d_transpose_6(x))
            x = F.relu(self.conv2d_transpose_7(x))
            return x.permute(0, 2, 3, 1)  # NCHW -> NHWC

    return {"mnist_mlp": MnistMlp, "toy_resnet": ToyResnet,
            "conv_autoencoder": ConvAutoencoder}


def load_weights(module, weight_dir):
    """Copies Keras-layout weights (<layer path>/<name>.npy) into the module's parameters."""
    import numpy as np
    import torch
    from torch import nn

    def find(layer):
        for root, dirs, _ in os.walk(weight_dir):
            if os.path.basename(root) == layer:
                return root
        raise FileNotFoundError("no weights for layer %s under %s" % (layer, weight_dir))

    for name, sub in module.named_children():
        d = find(name)
        kernel = torch.from_numpy(np.load(os.path.join(d, "kernel.npy")))
        bias = torch.from_numpy(np.load(os.path.join(d, "bias.npy")))
        if isinstance(sub, nn.Linear):
            w = kernel.t()  # (in, out) -> (out, in)
        else:
            # Conv2D (kh, kw, in, out) -> (out, in, kh, kw);
            # Conv2DTranspose (kh, kw, out, in) -> (in, out, kh, kw): the same permutation.
            w = kernel.permute(3, 2, 0, 1)
        assert w.shape == sub.weight.shape, (name, w.shape, sub.weight.shape)
        with torch.no_grad():
            sub.weight.copy_(w)
            sub.bias.copy_(bias)


def time_callable(fn, x, min_time, warmup, sample_ms, min_samples):
    """Per-call median and min (seconds) over samples of k back-to-back calls, and process CPU
    seconds per call over the timed window, as the C++ harness does."""
    start = time.perf_counter()
    calls = 0
    while calls < 10 or time.perf_counter() - start < warmup:
        fn(x)
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    k = max(1, int(sample_ms * 1e-3 / per_call))
    samples = []
    start = time.perf_counter()
    cpu_start = time.process_time()
    while len(samples) < min_samples or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        for _ in range(k):
            fn(x)
        samples.append((time.perf_counter() - t0) / k)
    cpu = (time.process_time() - cpu_start) / (len(samples) * k)
    return statistics.median(samples), min(samples), cpu


def worker(args):
    """Times one model at one batch with torch (eager and TorchScript); prints JSON."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    spec = MODELS[args.model]
    module = torch_modules()[args.model]()
    load_weights(module, args.weights)
    module.eval()
    x = torch.from_numpy(np.fromfile(args.input, dtype=np.float32).reshape(
        (args.batch,) + spec["input"]))
    result = dict(model=args.model, batch=args.batch, threads=torch.get_num_threads(),
                  blas=blas_info())
    with torch.no_grad():
        traced = torch.jit.trace(module, x)
        frozen = torch.jit.freeze(traced)
        optimized = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(module, x)))
    timing = dict(min_time=args.min_time, warmup=args.warmup, sample_ms=1.0,
                  min_samples=args.min_samples)
    with torch.inference_mode():
        ref = module(x)
        outputs = {}
        for label, fn in (("eager", module), ("ts_frozen", frozen), ("ts_optimized", optimized)):
            med, best, cpu = time_callable(fn, x, **timing)
            result[label] = dict(median_ms=med * 1e3, min_ms=best * 1e3, cpu_ms=cpu * 1e3)
            outputs[label] = fn(x)
    fgc_out = np.fromfile(args.fgc_output, dtype=np.float32).reshape(tuple(ref.shape))
    result["maxdiff_fgc"] = float(np.abs(fgc_out - ref.numpy()).max())
    result["maxdiff_ts"] = max(float((outputs[k] - ref).abs().max())
                               for k in ("ts_frozen", "ts_optimized"))
    print(json.dumps(result))


def blas_info():
    """The BLAS library torch loaded and its settings, via threadpoolctl when available."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join("%s %s (%s, %s threads, %s)" % (
        i.get("internal_api"), i.get("version"), i.get("architecture"), i.get("num_threads"),
        i.get("filepath")) for i in libs) or "no BLAS found"


# --------------------------------------------------------------------------------------------
# Driver

def run(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def build(args):
    run(["cmake", "-S", args.source_dir, "-B", args.build_dir, "-DCMAKE_BUILD_TYPE=Release",
         "-DFGC_BUILD_BENCH=ON", "-DFGC_BUILD_TESTS=OFF", "-DFGC_BUILD_SAMPLES=OFF"]
        + (["-DFGC_RUNTIME_ARCH=" + args.runtime_arch] if args.runtime_arch is not None else []),
        stdout=subprocess.DEVNULL)
    run(["cmake", "--build", args.build_dir, "-j", str(os.cpu_count() or 2), "--target", "fgc"]
        + ["bench_" + m + ("" if level == 2 else "_O%d" % level)
           for m in MODELS for level in args.opt_levels], stdout=subprocess.DEVNULL)


def fgc_point(args, model, batch, threads, input_path, output_path, level=2):
    exe = os.path.join(args.build_dir, "bench",
                       "bench_" + model + ("" if level == 2 else "_O%d" % level))
    env = omp_env(args)
    env["FGC_CPU"] = args.cpu
    out = run([exe, "--batch", str(batch), "--threads", str(threads), "--min-time",
               str(args.min_time), "--warmup", str(args.warmup), "--min-samples",
               str(args.min_samples), "--input", input_path,
               "--output", output_path], stdout=subprocess.PIPE, text=True, env=env).stdout
    return json.loads(out)


def torch_point(args, model, batch, threads, weights, input_path, fgc_output, env):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--model", model, "--batch",
           str(batch), "--threads", str(threads), "--weights", weights, "--input", input_path,
           "--fgc-output", fgc_output, "--min-time", str(args.min_time), "--warmup",
           str(args.warmup), "--min-samples", str(args.min_samples)]
    out = run(cmd, stdout=subprocess.PIPE, text=True, env=env).stdout
    return json.loads(out)


def omp_env(args):
    """The environment both fgc and torch run in: OMP_WAIT_POLICY as chosen (both use GNU
    OpenMP, so the same policy applies to both)."""
    env = dict(os.environ)
    if args.omp_wait_policy == "unset":
        env.pop("OMP_WAIT_POLICY", None)
    else:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    return env


def torch_envs(args):
    base = omp_env(args)
    envs = [("env", base)]
    if args.openblas_env == "both" and any(v in base for v in OPENBLAS_VARS):
        bare = {k: v for k, v in base.items() if k not in OPENBLAS_VARS}
        envs.append(("no-OPENBLAS_*", bare))
    elif args.openblas_env == "unset":
        envs = [("no-OPENBLAS_*", {k: v for k, v in base.items() if k not in OPENBLAS_VARS})]
    return envs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[2, 1],
                   help="thread counts for both fgc and torch (default: 2 1)")
    p.add_argument("--source-dir", default=REPO)
    p.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"))
    p.add_argument("--runtime-arch", default=None,
                   help="FGC_RUNTIME_ARCH for the build (default: leave the cache as is)")
    p.add_argument("--cpu", choices=("auto", "baseline", "avx2", "avx512"), default="auto",
                   help="fgc runtime kernel variant (FGC_CPU; default: the best the CPU supports)")
    p.add_argument("--no-build", action="store_true", help="use the executables already built")
    p.add_argument("--only", nargs="+", help="models to run (default: all)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds per point")
    p.add_argument("--min-time", type=float, default=1.0, help="seconds timed per measurement")
    p.add_argument("--min-samples", type=int, default=15, help="timed samples at least")
    p.add_argument("--warmup", type=float, default=0.3, help="seconds of warm-up per measurement")
    p.add_argument("--openblas-env", choices=("keep", "unset", "both"), default="both",
                   help="torch with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as set, removed, or both")
    p.add_argument("--omp-wait-policy", choices=("passive", "active", "unset"),
                   default="passive",
                   help="OMP_WAIT_POLICY for fgc and torch alike (default passive: threads that "
                        "spin at a join starve on a machine shared with other work)")
    p.add_argument("--opt-levels", type=int, nargs="+", choices=(0, 2), default=[2, 0],
                   help="also time fgc code compiled at -O0 (no passes, no arena reuse; "
                        "default: 2 0)")
    p.add_argument("--json", help="also write all results to this file")
    p.add_argument("--from-json", help="only print the tables of results saved with --json")
    p.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    # worker mode (internal)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--fgc-output", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.threads = args.threads[0]
        return worker(args)

    import numpy as np
    if args.from_json:
        with open(args.from_json) as f:
            rows = json.load(f)
        envs = [(label, omp_env(args) if label == "env" else
                 {k: v for k, v in omp_env(args).items() if k not in OPENBLAS_VARS})
                for label in ("env", "no-OPENBLAS_*") if "eager/" + label in rows[0]]
        print_table(rows, envs)
        if args.markdown:
            print_markdown(rows, envs)
        print_opt_levels(rows, envs)
        return
    if not args.no_build:
        build(args)
    fgc_exe = os.path.join(args.build_dir, "tools", "fgc", "fgc")
    envs = torch_envs(args)
    points = [pt for pt in POINTS if not args.only or pt[0] in args.only]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fgc-bench-") as tmp:
        for model in sorted({m for m, _ in points}):
            run([fgc_exe, "export-weights", os.path.join(args.source_dir, MODELS[model]["file"]),
                 "-o", os.path.join(tmp, model)], stdout=subprocess.DEVNULL)
        rng = np.random.default_rng(12345)
        for threads in args.threads:
            for model, batch in points:
                x = rng.random((batch,) + MODELS[model]["input"], dtype=np.float32)
                inp = os.path.join(tmp, "%s_%d.in.f32" % (model, batch))
                outp = os.path.join(tmp, "%s_%d.out.f32" % (model, batch))
                x.tofile(inp)
                best = {}

                def keep(key, t):
                    v = (t["median_ms"], t["min_ms"], t["cpu_ms"])
                    old = best.get(key)
                    best[key] = tuple(map(min, v, old)) if old else v

                extra = dict(load_before=os.getloadavg()[0])
                for _ in range(args.rounds):
                    for level in args.opt_levels:
                        if level != 2:
                            f = fgc_point(args, model, batch, threads, inp, outp + ".O0", level)
                            keep("fgc_O%d" % level, f)
                    f = fgc_point(args, model, batch, threads, inp, outp)
                    keep("fgc", f)
                    extra["cpu_variant"] = f.get("cpu_variant", "?")
                    if 0 in args.opt_levels:
                        extra["maxdiff_O0"] = float(np.max(np.abs(
                            np.fromfile(outp, dtype=np.float32)
                            - np.fromfile(outp + ".O0", dtype=np.float32))))
                    for label, env in envs:
                        t = torch_point(args, model, batch, threads, os.path.join(tmp, model),
                                        inp, outp, env)
                        keep("eager/" + label, t["eager"])
                        for ts in ("ts_frozen", "ts_optimized"):
                            keep(ts + "/" + label, t[ts])
                        extra.update(maxdiff_fgc=t["maxdiff_fgc"], maxdiff_ts=t["maxdiff_ts"])
                        extra["blas/" + label] = t["blas"]
                extra["load_after"] = os.getloadavg()[0]
                row = dict(model=model, batch=batch, threads=threads, **extra)
                row.update({k: dict(median_ms=v[0], min_ms=v[1], cpu_ms=v[2]) for k, v in best.items()})
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print("\nOMP_WAIT_POLICY=%s for fgc and torch; fgc runtime kernels: %s" % (
        args.omp_wait_policy, ", ".join(sorted({r.get("cpu_variant", "?") for r in rows}))))
    print_table(rows, envs)
    if args.markdown:
        print_markdown(rows, envs)
    print_opt_levels(rows, envs)


def print_opt_levels(rows, envs):
    """fgc at -O0 against -O2 next to torch (Markdown): median and process CPU ms per call."""
    if not any("fgc_O0" in r for r in rows):
        return
    label = envs[-1][0]
    print("\n| model | batch | thr | fgc -O2 ms | fgc -O0 ms | -O0/-O2 | fgc -O2 cpu | fgc -O0 cpu "
          "| -O0/-O2 cpu | TS cpu | eager cpu | max abs diff -O0 vs -O2 | load |")
    print("|" + "---|" * 13)
    for r in rows:
        if "fgc_O0" not in r:
            continue
        f, z = r["fgc"], r["fgc_O0"]
        frozen, opt = r["ts_frozen/" + label], r["ts_optimized/" + label]
        print("| %s | %d | %d | %.4g | %.4g | %.2f | %.4g | %.4g | %.2f | %.4g | %.4g | %.1e "
              "| %.1f-%.1f |" % (
                  r["model"], r["batch"], r["threads"], f["median_ms"], z["median_ms"],
                  z["median_ms"] / f["median_ms"], f["cpu_ms"], z["cpu_ms"],
                  z["cpu_ms"] / f["cpu_ms"], min(frozen["cpu_ms"], opt["cpu_ms"]),
                  r["eager/" + label]["cpu_ms"], r.get("maxdiff_O0", float("nan")),
                  r.get("load_before", float("nan")), r.get("load_after", float("nan"))))
    print("\n-O0/-O2 > 1: the passes and arena reuse made fgc faster. torch env: %s. load: "
          "1-minute load average before / after the point." % label)


def print_markdown(rows, envs):
    """The same figures as a Markdown table (for bench/README.md): median and CPU ms."""
    print("\n| torch env | model | batch | thr | fgc ms | eager ms | TS ms | eager/fgc | TS/fgc "
          "| fgc min | eager min | TS min | fgc cpu | eager cpu | TS cpu | cpu eager/fgc "
          "| cpu TS/fgc | fgc samples/s | max abs diff |")
    print("|" + "---|" * 19)
    for label, _ in envs:
        for r in rows:
            fgc, eager = r["fgc"], r["eager/" + label]
            frozen, opt = r["ts_frozen/" + label], r["ts_optimized/" + label]
            ts = {k: min(frozen[k], opt[k]) for k in fgc}
            print("| %s | %s | %d | %d | %.4g | %.4g | %.4g | **%.2f** | **%.2f** | %.4g | %.4g "
                  "| %.4g | %.4g | %.4g | %.4g | %.2f | %.2f | %.0f | %.1e |" % (
                      label, r["model"], r["batch"], r["threads"], fgc["median_ms"],
                      eager["median_ms"], ts["median_ms"], eager["median_ms"] / fgc["median_ms"],
                      ts["median_ms"] / fgc["median_ms"], fgc["min_ms"], eager["min_ms"],
                      ts["min_ms"], fgc["cpu_ms"], eager["cpu_ms"], ts["cpu_ms"],
                      eager["cpu_ms"] / fgc["cpu_ms"], ts["cpu_ms"] / fgc["cpu_ms"],
                      r["batch"] / fgc["median_ms"] * 1e3, r["maxdiff_fgc"]))


def print_table(rows, envs, args=None):
    """One table per torch environment: for each metric (median, min, CPU ms per call) the fgc,
    eager and TorchScript figures and the ratios torch/fgc."""
    metrics = (("median_ms", "median"), ("min_ms", "min"), ("cpu_ms", "cpu"))
    for label, env in envs:
        print("\ntorch environment: %s (%s)" % (label, " ".join(
            "%s=%s" % (v, env.get(v, "unset")) for v in OPENBLAS_VARS)))
        blas = next((r.get("blas/" + label) for r in rows if r.get("blas/" + label)), "?")
        print("torch BLAS: %s" % blas)
        head = "%-16s %5s %3s" % ("model", "batch", "thr")
        for _, name in metrics:
            head += " | %9s %9s %9s %3s %5s %5s" % ("fgc " + name, "eager", "ts", "ts", "e/f",
                                                    "t/f")
        print(head + " | %10s %7s" % ("fgc smp/s", "maxdiff"))
        for r in rows:
            line = "%-16s %5d %3d" % (r["model"], r["batch"], r["threads"])
            fgc, eager = r["fgc"], r["eager/" + label]
            frozen, opt = r["ts_frozen/" + label], r["ts_optimized/" + label]
            for key, _ in metrics:
                ts, which = (frozen, "frz") if frozen[key] <= opt[key] else (opt, "opt")
                line += " | %9.4f %9.4f %9.4f %3s %5.2f %5.2f" % (
                    fgc[key], eager[key], ts[key], which, eager[key] / fgc[key],
                    ts[key] / fgc[key])
            print(line + " | %10.0f %7.1e" % (r["batch"] / fgc["median_ms"] * 1e3,
                                              r["maxdiff_fgc"]))
    print("\nms per batch: median of the samples, fastest sample (min), process CPU time per "
          "call (cpu, all threads); each the best over rounds. ts: the faster of TorchScript "
          "frozen (frz) and optimize_for_inference (opt). e/f, t/f: eager/fgc, TorchScript/fgc "
          "(> 1: fgc faster). fgc smp/s from the median. maxdiff: max |fgc - torch eager| on the "
          "same input.")


if __name__ == "__main__":
    main()
