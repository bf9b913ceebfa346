"""Benchmark: ``rmsprop.torch.RMSprop`` against ``torch.optim.RMSprop`` on the CPU.

Usage::

    python -m rmsprop.bench                                  # sizes 1e6,1e7,1e8
    python -m rmsprop.bench --sizes 1e5,1e6 --rounds 3 --threads 2
    python -m rmsprop.bench --centered --momentum 0.9 --json

Three contenders step one float32 ``Parameter`` of N elements (with a float32 gradient set)
with ``lr=0.01`` and torch's defaults otherwise (``--centered`` and ``--momentum`` apply to all
three): our drop-in, ``torch.optim.RMSprop(foreach=False)`` and
``torch.optim.RMSprop(foreach=True)``. All run on the same ``--threads`` (default
``torch.get_num_threads()``, set with ``torch.set_num_threads``).

Measurement, made to hold up on a noisy machine: each contender's tensors are built once per
size and warmed up (the state is created by untimed steps); then the contenders are timed in
turn, round-robin (ABCABC...), for ``--rounds`` rounds. A sample is a run of consecutive steps
lasting at least ~20 ms (small sizes repeat the step; every contender takes the same number of
steps per sample), and its time divided by the steps is that round's time per step. The table
gives each contender's median time per step, and the median of the per-round ratios of ours to
the faster torch variant of the same round, with their spread (min-max). The tensors of one
size are freed before the next size is built. Other load on the machine shows as a wide spread:
torch's OpenMP regions in particular can stall for milliseconds while another process holds a
core, so rerun on a quiet machine when the spread is wide.

Run as a file (``python .../rmsprop/bench.py``) it works too; ``rmsprop`` is then imported from
the installed package.
"""

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file, its folder leads sys.path, and its torch.py would shadow torch itself.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]

import argparse
import gc
import json
import math
import statistics
import time

import torch

import rmsprop.torch as rt

LR = 0.01
MIN_SAMPLE_S = 0.02  # the shortest timed sample
WARMUP_STEPS = 2  # untimed steps that create the state and touch every page

CONTENDERS = (
    ("ours", "rmsprop.torch.RMSprop"),
    ("torch_foreach_off", "torch.optim.RMSprop(foreach=False)"),
    ("torch_foreach_on", "torch.optim.RMSprop(foreach=True)"),
)


def parse_sizes(text):
    """The ``--sizes`` list: comma-separated positive integers, written like 1000000 or 1e6."""
    sizes = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {item!r}") from None
        if not (value >= 1 and value.is_integer()):
            raise argparse.ArgumentTypeError(f"not a positive whole number: {item!r}")
        sizes.append(int(value))
    return sizes


def positive_int(text):
    """A whole number of at least 1, for ``--threads`` and ``--rounds``."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def make_optimizer(name, n, options, generator):
    """Contender `name`'s optimizer over a fresh float32 Parameter of `n` elements whose gradient
    is set; the parameter and gradient are standard normal draws from `generator`."""
    param = torch.nn.Parameter(torch.randn(n, generator=generator, dtype=torch.float32))
    param.grad = torch.randn(n, generator=generator, dtype=torch.float32)
    if name == "ours":
        return rt.RMSprop([param], lr=LR, **options)
    foreach = name == "torch_foreach_on"
    return torch.optim.RMSprop([param], lr=LR, foreach=foreach, **options)


def time_steps(optimizer, steps):
    """Seconds taken by `steps` consecutive ``optimizer.step()`` calls."""
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return time.perf_counter() - start


def bench_size(n, rounds, options):
    """Times the contenders at `n` parameters; returns one result row (see ``--json``)."""
    generator = torch.Generator().manual_seed(n)
    optimizers = {name: make_optimizer(name, n, options, generator) for name, _ in CONTENDERS}
    for optimizer in optimizers.values():
        time_steps(optimizer, WARMUP_STEPS)
    # One step of the fastest contender sets how many steps make a sample of at least ~20 ms.
    fastest = min(time_steps(optimizer, 1) for optimizer in optimizers.values())
    steps = max(1, math.ceil(MIN_SAMPLE_S / max(fastest, 1e-9)))

    times = {name: [] for name, _ in CONTENDERS}
    ratios = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            round_times = {}
            for name, optimizer in optimizers.items():
                round_times[name] = time_steps(optimizer, steps) / steps
                times[name].append(round_times[name])
            best_torch = min(round_times["torch_foreach_off"], round_times["torch_foreach_on"])
            ratios.append(round_times["ours"] / best_torch)
    finally:
        gc.enable()
    del optimizers
    gc.collect()

    row = {"params": n, "steps_per_sample": steps}
    row.update({f"{name}_s": statistics.median(times[name]) for name, _ in CONTENDERS})
    row.update(
        ratio_median=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios)
    )
    return row


def format_seconds(seconds):
    """A duration with a unit that keeps it readable (s, ms or µs)."""
    if seconds >= 1.0:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} µs"


def print_table(report, options):
    """The human-readable report: a header line, then one row per size."""
    extras = ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
    print(
        f"RMSprop step, float32, lr={LR}, {extras}; torch {report['torch_version']}, "
        f"{report['threads']} thread(s), median of {report['rounds']} interleaved rounds"
    )
    headers = ["params", "steps/sample"] + [label for _, label in CONTENDERS]
    headers.append("ours/best torch [min-max]")
    rows = []
    for r in report["results"]:
        cells = [f"{r['params']:.0e}" if r["params"] >= 1e5 else str(r["params"])]
        cells.append(str(r["steps_per_sample"]))
        cells += [format_seconds(r[f"{name}_s"]) for name, _ in CONTENDERS]
        cells.append(f"{r['ratio_median']:.3f} [{r['ratio_min']:.3f}-{r['ratio_max']:.3f}]")
        rows.append(cells)
    widths = [max(len(row[i]) for row in [headers] + rows) for i in range(len(headers))]
    for row in [headers] + rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))


def main(argv=None):
    """Parses the options, runs every size and prints the table (or the JSON object)."""
    parser = argparse.ArgumentParser(
        prog="python -m rmsprop.bench",
        description="Time rmsprop.torch.RMSprop against torch.optim.RMSprop "
        "(foreach=False and foreach=True), interleaved.",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("1e6,1e7,1e8"),
        help="comma-separated parameter counts, e.g. 1e6,1e7 (default: 1e6,1e7,1e8)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=torch.get_num_threads(),
        help="threads for all contenders (default: torch.get_num_threads(), here %(default)s)",
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=7, help="interleaved rounds (default: 7)"
    )
    parser.add_argument("--centered", action="store_true", help="centered=True for all")
    parser.add_argument(
        "--momentum", type=float, default=0.0, help="momentum for all (default: 0)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the table"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    options = {}
    if args.centered:
        options["centered"] = True
    if args.momentum:
        options["momentum"] = args.momentum
    report = {
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "centered": args.centered,
        "momentum": args.momentum,
        "results": [bench_size(n, args.rounds, options) for n in args.sizes],
    }
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report, options)


if __name__ == "__main__":
    main()
