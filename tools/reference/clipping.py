"""Record torch.nn.utils.clip_grad_norm_ / clip_grad_value_ results for tests/clipping.rs.

Usage (from the repository root, with the venv of tools/reference/README.md):
    python tools/reference/clipping.py > reference/clipping.json
"""
import json

import numpy as np
import torch


def shortest(x, dtype):
    # float32: the shortest decimal that round-trips to the f32; float64: Python repr.
    return float(np.format_float_positional(np.float32(x), unique=True)) if dtype == "float32" else float(x)


def main():
    rng = np.random.default_rng(7)
    shapes = [5, 1, 17, 3]
    cases = []
    for dtype, tdt in [("float32", torch.float32), ("float64", torch.float64)]:
        for scale in [1e-3, 1.0, 1e3]:
            raw = [rng.normal(0, scale, n) for n in shapes]
            for max_norm, norm_type in [(1.0, 2.0), (0.5, 1.0), (2.0, float("inf")), (1e9, 2.0)]:
                grads = [torch.tensor(a, dtype=tdt) for a in raw]
                params = [torch.zeros_like(g, requires_grad=True) for g in grads]
                for p, g in zip(params, grads):
                    p.grad = g.clone()
                total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type, foreach=False)
                cases.append({
                    "kind": "norm", "dtype": dtype, "max_norm": max_norm,
                    "norm_type": "inf" if norm_type == float("inf") else norm_type,
                    "grads": [[shortest(x, dtype) for x in g.tolist()] for g in grads],
                    "total_norm": shortest(total.item(), dtype),
                    "clipped": [[shortest(x, dtype) for x in p.grad.tolist()] for p in params],
                })
            grads = [torch.tensor(a, dtype=tdt) for a in raw]
            params = [torch.zeros_like(g, requires_grad=True) for g in grads]
            for p, g in zip(params, grads):
                p.grad = g.clone()
            torch.nn.utils.clip_grad_value_(params, 0.5 * scale, foreach=False)
            cases.append({
                "kind": "value", "dtype": dtype, "limit": 0.5 * scale,
                "grads": [[shortest(x, dtype) for x in g.tolist()] for g in grads],
                "clipped": [[shortest(x, dtype) for x in p.grad.tolist()] for p in params],
            })
    print(json.dumps({"torch_version": torch.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
