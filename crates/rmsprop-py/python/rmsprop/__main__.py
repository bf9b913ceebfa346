"""`python -m rmsprop`: the classic example, printed as `cargo run --release` prints it."""

import numpy as np

from . import RMSProp


def main():
    x = np.array([5.0, 4.0])
    opt = RMSProp(preset="lesson")
    for epoch in range(101):
        opt.step([x], [2.0 * x])
        if epoch % 20 == 0:
            print(f"Epoch {epoch}, current state: {x}")


if __name__ == "__main__":
    main()
