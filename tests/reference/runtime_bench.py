#!/usr/bin/python3
"""The PyTorch side of fgc_runtime_bench (tests/runtime/bench_kernels.cpp): the same
kernels and shapes, in PyTorch's native NCHW layout, printed in the same format.

    /usr/bin/python3 tests/reference/runtime_bench.py [threads]
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F


def report(name, run):
    run()
    wall = []
    cpu_start, start = time.process_time(), time.perf_counter()
    while len(wall) < 5 or time.perf_counter() - start < 0.5:
        t0 = time.perf_counter()
        run()
        wall.append(time.perf_counter() - t0)
    cpu = (time.process_time() - cpu_start) / len(wall)
    print(f"{name:<28} wall {statistics.median(wall) * 1e3:9.4f} ms   cpu {cpu * 1e3:9.4f} ms")


def bench_batch(b):
    s = f" b={b}"
    x, w, bias = torch.randn(b, 512), torch.randn(512, 512), torch.randn(512)
    report("dense 512->512 relu" + s, lambda: F.relu(F.linear(x, w, bias)))
    x, k, bias = torch.randn(b, 32, 32, 32), torch.randn(64, 32, 3, 3), torch.randn(64)
    report("conv3x3 32x32x32->64" + s, lambda: F.relu(F.conv2d(x, k, bias, padding=1)))
    x, k, bias = torch.randn(b, 64, 16, 16), torch.randn(64, 32, 4, 4), torch.randn(32)
    report("convT4x4/2 16x16x64->32" + s,
           lambda: F.relu(F.conv_transpose2d(x, k, bias, stride=2, padding=1)))
    x = torch.randn(b, 64, 32, 32)
    report("maxpool2x2 32x32x64" + s, lambda: F.max_pool2d(x, 2))
    lstm, x = torch.nn.LSTM(32, 128, batch_first=True), torch.randn(b, 50, 32)
    report("lstm T50 32->128" + s, lambda: lstm(x))
    x = torch.randn(b * 32 * 32 * 64)
    report("gelu 32x32x64" + s, lambda: F.gelu(x))


def main():
    if len(sys.argv) > 1:
        torch.set_num_threads(int(sys.argv[1]))
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    with torch.no_grad():
        for batch in (1, 64):
            bench_batch(batch)


if __name__ == "__main__":
    main()
