"""Train a small MLP on the UCI digits with torch's RMSprop and with ``rmsprop.torch.RMSprop``.

Usage::

    python examples/python/train_digits.py                 # 20 epochs, seed 0
    python examples/python/train_digits.py --epochs 5 --data path/to/digits.csv.gz

The network is 64 -> 128 (ReLU) -> 10 with a cross-entropy loss, in float32, trained with
batches of 32 and ``lr=1e-3``. The split is the Rust CLI's: row ``i`` is test when
``i % 5 == 0``, training otherwise. Both runs start from the same weights
(``torch.manual_seed``) and see the batches in the same order (a seeded ``torch.Generator``),
so they differ only in the optimizer: ``torch.optim.RMSprop`` or the drop-in
``rmsprop.torch.RMSprop``.

For each run it prints the final test accuracy and the time spent inside ``optimizer.step()``,
then the accuracy difference; it exits with status 1 when that difference exceeds 0.5 points,
so CI can run it as a check.
"""

import argparse
import gzip
import pathlib
import sys
import time

import numpy as np
import torch

import rmsprop.torch as rt

DEFAULT_DATA = (
    pathlib.Path(__file__).resolve().parents[2] / "crates/rmsprop-cli/data/digits.csv.gz"
)
BATCH = 32
LR = 1e-3
MAX_DIFFERENCE = 0.5  # accuracy points


def load_digits(path):
    """The digits as (train_x, train_y, test_x, test_y): pixels scaled to [0, 1] in float32,
    labels in int64; row i is test when i % 5 == 0, as in the Rust CLI."""
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float32, ndmin=2)
    if data.shape[1] != 65:
        sys.exit(f"{path}: {data.shape[1]} fields per line, expected 65")
    x = torch.from_numpy(data[:, :64] / 16.0)
    y = torch.from_numpy(data[:, 64].astype(np.int64))
    test = torch.arange(len(y)) % 5 == 0
    return x[~test], y[~test], x[test], y[test]


def train(optimizer_class, data, epochs, seed):
    """Trains a fresh MLP with ``optimizer_class(params, lr=LR)``; returns the final test accuracy
    (percent), the seconds spent inside ``optimizer.step()`` and the number of steps."""
    train_x, train_y, test_x, test_y = data
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    optimizer = optimizer_class(model.parameters(), lr=LR)
    order = torch.Generator().manual_seed(seed)
    step_seconds, steps = 0.0, 0
    for _ in range(epochs):
        for batch in torch.randperm(len(train_y), generator=order).split(BATCH):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(train_x[batch]), train_y[batch])
            loss.backward()
            start = time.perf_counter()
            optimizer.step()
            step_seconds += time.perf_counter() - start
            steps += 1
    with torch.no_grad():
        correct = (model(test_x).argmax(dim=1) == test_y).sum().item()
    return 100.0 * correct / len(test_y), step_seconds, steps


def main():
    """Parses the options, trains with both optimizers, prints the comparison and exits
    non-zero when the accuracies differ by more than MAX_DIFFERENCE points."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--data",
        type=pathlib.Path,
        default=DEFAULT_DATA,
        help="digits.csv.gz (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=int, default=20, help="epochs (default: 20)")
    parser.add_argument(
        "--seed", type=int, default=0, help="weights and batch-order seed (default: 0)"
    )
    args = parser.parse_args()

    data = load_digits(args.data)
    print(
        f"digits: {len(data[1])} train, {len(data[3])} test rows; MLP 64-128-10, "
        f"batch {BATCH}, lr {LR}, {args.epochs} epochs, seed {args.seed}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    accuracies = []
    for name, optimizer_class in (
        ("torch.optim.RMSprop", torch.optim.RMSprop),
        ("rmsprop.torch.RMSprop", rt.RMSprop),
    ):
        accuracy, seconds, steps = train(optimizer_class, data, args.epochs, args.seed)
        accuracies.append(accuracy)
        print(
            f"{name:<22} test accuracy {accuracy:.2f} %, optimizer.step() {seconds:.3f} s "
            f"total, {seconds / max(steps, 1) * 1e6:.1f} µs per step ({steps} steps)"
        )
    difference = abs(accuracies[0] - accuracies[1])
    print(f"accuracy difference: {difference:.2f} points")
    if difference > MAX_DIFFERENCE:
        sys.exit(1)


if __name__ == "__main__":
    main()
