"""Time PyTorch's CPU torch.optim.RMSprop step, foreach on and off, to compare with `rmsprop bench`.

Usage (the venv of tools/reference/README.md has torch):
    python tools/bench/torch_rmsprop.py --sizes 1e7,1e8 [--threads 2] [--centered] [--momentum 0.9]

Prints one JSON object: {"torch_version", "threads", "results": [{"params", "foreach",
"seconds_per_step", "params_per_second"}]}. Timing: one warm-up step, then the best of 5 batches
of at least ~20 ms (3 batches when a step takes over 0.1 s), as `rmsprop bench` does.
"""
import argparse
import json
import time

import torch


def time_per_call(f):
    t0 = time.perf_counter()
    f()
    once = max(time.perf_counter() - t0, 1e-9)
    reps = max(1, min(10_000_000, int(0.02 / once)))
    batches = 3 if once > 0.1 else 5
    best = float("inf")
    for _ in range(batches):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2,1e3,1e5,1e6,1e7,1e8")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--centered", action="store_true")
    ap.add_argument("--momentum", type=float, default=0.0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for size in [int(float(s)) for s in args.sizes.split(",")]:
        for foreach in (False, True):
            p = torch.nn.Parameter(torch.linspace(-0.4, 0.5, size, dtype=torch.float32))
            p.grad = torch.linspace(-0.04, 0.05, size, dtype=torch.float32)
            opt = torch.optim.RMSprop([p], lr=0.01, alpha=0.99, eps=1e-8, centered=args.centered,
                                      momentum=args.momentum, foreach=foreach)
            with torch.no_grad():
                t = time_per_call(opt.step)
            results.append({"params": size, "foreach": foreach, "seconds_per_step": t,
                            "params_per_second": size / t})
            del opt, p
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "centered": args.centered, "momentum": args.momentum, "results": results}))


if __name__ == "__main__":
    main()
