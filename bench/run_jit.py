#!/usr/bin/python3
"""JIT benchmark: compile latency, then run time of JIT code vs generated C++ vs PyTorch.

What it does (bench/README.md, "JIT"):
  1. configures and builds bench_jit_<model> (bench/bench_jit.cpp: the JIT and the model's
     generated class in one executable) and `fgc` in --build-dir (Release, -DFGC_BUILD_BENCH=ON);
  2. per model, the harness times fgc::jit::compile (model file in, callable out; inference-only
     and with training; median over --compiles runs and per phase);
  3. per (model, batch) point it times the JIT's and the generated code's predict (and
     trainStep) interleaved in one process, then the same network in PyTorch eager and
     TorchScript (bench/run_inference.py's torch modules and worker, same weights exported with
     `fgc export-weights`, same input) in a child process; the JIT's output is checked against
     torch's (max abs difference). The ticket model has no torch module: JIT and AOT only.
Run with Debian's python (python3-torch 1.13): /usr/bin/python3 bench/run_jit.py
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_inference  # noqa: E402  (torch modules, worker, environment handling)

REPO = run_inference.REPO
JIT_MODELS = {
    "mnist_mlp": "samples/mnist_mlp/model.pbtxt",
    "toy_resnet": "samples/toy_resnet/model.pbtxt",
    "ticket_classifier": "samples/ticket_classifier/model.pbtxt",
}
POINTS = [("mnist_mlp", 1), ("mnist_mlp", 64), ("toy_resnet", 1), ("toy_resnet", 64),
          ("ticket_classifier", 32)]


def build(args):
    run_inference.run(["cmake", "-S", args.source_dir, "-B", args.build_dir,
                       "-DCMAKE_BUILD_TYPE=Release", "-DFGC_BUILD_BENCH=ON",
                       "-DFGC_BUILD_TESTS=OFF", "-DFGC_BUILD_SAMPLES=OFF"],
                      stdout=subprocess.DEVNULL)
    run_inference.run(["cmake", "--build", args.build_dir, "-j2", "--target", "fgc"]
                      + ["bench_jit_" + m for m in JIT_MODELS], stdout=subprocess.DEVNULL)


def harness(args, model, extra):
    exe = os.path.join(args.build_dir, "bench", "bench_jit_" + model)
    out = run_inference.run([exe, "--threads", str(args.threads)] + extra,
                            stdout=subprocess.PIPE, text=True,
                            env=run_inference.omp_env(args)).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--source-dir", default=REPO)
    p.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"))
    p.add_argument("--no-build", action="store_true", help="use the executables already built")
    p.add_argument("--only", nargs="+", help="models to run (default: all)")
    p.add_argument("--compiles", type=int, default=7, help="compilations timed per mode")
    p.add_argument("--min-time", type=float, default=1.0, help="seconds timed per measurement")
    p.add_argument("--min-samples", type=int, default=15, help="timed samples at least")
    p.add_argument("--warmup", type=float, default=0.3, help="torch warm-up seconds")
    p.add_argument("--omp-wait-policy", choices=("passive", "active", "unset"),
                   default="passive", help="OMP_WAIT_POLICY for both sides")
    p.add_argument("--json", help="also write all results to this file")
    args = p.parse_args()

    import numpy as np
    if not args.no_build:
        build(args)
    fgc_exe = os.path.join(args.build_dir, "tools", "fgc", "fgc")
    models = [m for m in JIT_MODELS if not args.only or m in args.only]
    compiles, rows = [], []
    with tempfile.TemporaryDirectory(prefix="fgc-bench-jit-") as tmp:
        for model in models:
            compiles += harness(args, model, ["--compiles", str(args.compiles), "--compile-only"])
        rng = np.random.default_rng(12345)
        for model, batch in POINTS:
            if model not in models:
                continue
            extra = ["--batch", str(batch), "--compiles", "0", "--min-time", str(args.min_time)]
            torch_args = None
            if model in run_inference.MODELS:
                weights = os.path.join(tmp, model)
                if not os.path.isdir(weights):
                    run_inference.run([fgc_exe, "export-weights",
                                       os.path.join(args.source_dir, JIT_MODELS[model]), "-o",
                                       weights], stdout=subprocess.DEVNULL)
                x = rng.random((batch,) + run_inference.MODELS[model]["input"], dtype=np.float32)
                inp = os.path.join(tmp, "%s_%d.in.f32" % (model, batch))
                outp = os.path.join(tmp, "%s_%d.out.f32" % (model, batch))
                x.tofile(inp)
                extra += ["--input", inp, "--output", outp]
                torch_args = (weights, inp, outp)
            results = harness(args, model, extra)
            torch = None
            if torch_args:
                torch = run_inference.torch_point(args, model, batch, args.threads, *torch_args,
                                                  run_inference.omp_env(args))
            for r in results:
                if r["what"] == "predict" and torch:
                    ts = min((torch["ts_frozen"], torch["ts_optimized"]),
                             key=lambda t: t["median_ms"])
                    r["torch_eager_ms"] = torch["eager"]["median_ms"]
                    r["torch_eager_cpu_ms"] = torch["eager"]["cpu_ms"]
                    r["torch_ts_ms"] = ts["median_ms"]
                    r["torch_ts_cpu_ms"] = ts["cpu_ms"]
                    r["maxdiff_jit_torch"] = torch["maxdiff_fgc"]
                rows.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(compile=compiles, run=rows), f, indent=1)

    print("\nCompile latency (ms, median over %d; model file in, callable out)" % args.compiles)
    print("| model | mode | median | min | CPU | of which LLVM | largest phases |")
    print("|---|---|---:|---:|---:|---:|---|")
    for c in compiles:
        phases = sorted(c["phases_median_ms"].items(), key=lambda kv: -kv[1])[:3]
        print("| %s | %s | %.1f | %.1f | %.1f | %.1f | %s |" % (
            c["model"], c["what"].split()[1], c["median_ms"], c["min_ms"], c["cpu_median_ms"],
            c["llvm_median_ms"],
            ", ".join("%s %.1f" % kv for kv in phases)))
    print("\nRun time (ms per call, median; %d threads, OMP_WAIT_POLICY=%s)" % (
        args.threads, args.omp_wait_policy))
    print("Each cell: wall median / process CPU per call; ratios > 1: the JIT is slower.")
    print("| model | batch | call | JIT | generated C++ | JIT/C++ (CPU) | torch eager "
          "| TorchScript | TorchScript/JIT (CPU) | max abs diff JIT vs torch |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        def cell(wall, cpu):
            return "%.3f / %.3f" % (r[wall], r[cpu]) if wall in r else "-"
        ts_ratio = ("%.2f" % (r["torch_ts_cpu_ms"] / r["jit_cpu_ms"])
                    if "torch_ts_cpu_ms" in r else "-")
        diff = "%.2g" % r["maxdiff_jit_torch"] if "maxdiff_jit_torch" in r else "-"
        print("| %s | %d | %s | %s | %s | %.2f (%.2f) | %s | %s | %s | %s |" % (
            r["model"], r["batch"], r["what"], cell("jit_ms", "jit_cpu_ms"),
            cell("aot_ms", "aot_cpu_ms"), r["ratio"], r["cpu_ratio"],
            cell("torch_eager_ms", "torch_eager_cpu_ms"), cell("torch_ts_ms", "torch_ts_cpu_ms"),
            ts_ratio, diff))


if __name__ == "__main__":
    main()
