#!/usr/bin/env python3
"""8-bit blockwise optimizer-state vectors from bitsandbytes' CPU backend.

Records, with bitsandbytes 0.50.2 on CPU (blocks of 256, the dynamic quantization maps):

* the two quantization maps bitsandbytes builds (``create_dynamic_map(signed=True)`` for a
  first state, ``signed=False`` for Adam's second moment), as float32 bits;
* ``quantize_blockwise`` of arrays of several distributions (codes and per-block absmax),
  the operation every 8-bit step ends with;
* trajectories of ``RMSprop8bit`` (plain and with weight decay), ``Adam8bit``, ``AdamW8bit``,
  ``SGD8bit`` (momentum 0.9) and ``Adagrad8bit`` on one flat float32 tensor of 777 parameters
  (three whole blocks and a tail of 9), ``min_8bit_size=0``: after every step the parameters,
  the state bytes and the absmax of each state, and the elements where torch's float32 sqrt
  (called by the step) is not the correctly rounded root (``sqrt_inexact``).

Every float is written as the hex of its little-endian float32 bytes and every code as the hex
of its bytes, so files are bit-exact. Gradients come from a noisy quadratic evaluated on the
current parameters (float32 numpy), one block of them zero for the first steps (so a block whose
absmax is 0 is exercised).

Run with MKL_CBWR=AVX2 (set below before torch is imported): it makes torch's float32 sqrt
correctly rounded on every CPU.

Usage (repository root):
  /work/venv-ref/bin/python tools/reference/bnb8bit.py --out reference/vectors_8bit
"""

import argparse
import json
import os
import sys

os.environ.setdefault("MKL_CBWR", "AVX2")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import bitsandbytes as bnb  # noqa: E402
import bitsandbytes.functional as F  # noqa: E402

N = 777
STEPS = 12
SEED = 20261130
BLOCK = 256


def hex_f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32)).astype("<f4").tobytes().hex()


def hex_u8(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.uint8)).tobytes().hex()


def maps():
    return {
        "signed": hex_f32(F.create_dynamic_map(signed=True).numpy()),
        "unsigned": hex_f32(F.create_dynamic_map(signed=False).numpy()),
    }


def quantize_cases(rng):
    """Arrays and bitsandbytes' codes for them, on both maps."""
    signed = F.create_dynamic_map(signed=True)
    unsigned = F.create_dynamic_map(signed=False)
    arrays = [
        ("normal", rng.standard_normal(1000)),
        ("normal_scales", rng.standard_normal(1000) * np.repeat([1e-8, 1e-3, 1.0, 1e4], 250)),
        ("uniform", rng.uniform(-1, 1, 1000)),
        ("log_uniform", np.exp(rng.uniform(-20, 5, 1000)) * rng.choice([-1, 1], 1000)),
        ("with_zero_block", np.concatenate([np.zeros(256), rng.standard_normal(300)])),
        ("ties", np.concatenate([np.ones(1), np.linspace(-1, 1, 511)])),
        ("squares", rng.standard_normal(1000) ** 2),
    ]
    cases = []
    for name, a in arrays:
        a = np.asarray(a, dtype=np.float32)
        for map_name, code in (("signed", signed), ("unsigned", unsigned)):
            if map_name == "unsigned":
                a = np.abs(a)
            q, state = F.quantize_blockwise(torch.from_numpy(a.copy()), code=code, blocksize=BLOCK)
            absmax = state.absmax if hasattr(state, "absmax") else state[0]
            cases.append({
                "name": "%s/%s" % (name, map_name),
                "map": map_name,
                "input": hex_f32(a),
                "codes": hex_u8(q.numpy()),
                "absmax": hex_f32(absmax.numpy()),
            })
    return cases


RUNS = {
    "rmsprop": (lambda p: bnb.optim.RMSprop8bit([p], lr=0.01, alpha=0.99, eps=1e-8, min_8bit_size=0),
                dict(optimizer="rmsprop", lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0)),
    "rmsprop_weight_decay": (
        lambda p: bnb.optim.RMSprop8bit([p], lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01, min_8bit_size=0),
        dict(optimizer="rmsprop", lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01)),
    "adam": (lambda p: bnb.optim.Adam8bit([p], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, min_8bit_size=0),
             dict(optimizer="adam", lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)),
    "adamw": (lambda p: bnb.optim.AdamW8bit([p], lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01,
                                             min_8bit_size=0),
              dict(optimizer="adam", lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.01)),
    "momentum": (lambda p: bnb.optim.SGD8bit([p], lr=0.01, momentum=0.9, min_8bit_size=0),
                 dict(optimizer="momentum", lr=0.01, momentum=0.9, weight_decay=0.0)),
    "adagrad": (lambda p: bnb.optim.Adagrad8bit([p], lr=0.01, eps=1e-10, min_8bit_size=0),
                dict(optimizer="adagrad", lr=0.01, eps=1e-10, weight_decay=0.0)),
}


def trajectory(name, rng):
    make, hyper = RUNS[name]
    p0 = rng.uniform(-2, 2, N).astype(np.float32)
    target = rng.uniform(-1, 1, N).astype(np.float32)
    scales = np.repeat(np.array([1.0, 0.01, 30.0, 1e-4], dtype=np.float32), [256, 256, 256, N - 768])
    p = torch.from_numpy(p0.copy()).requires_grad_(False)
    opt = make(p)
    steps = []
    for k in range(STEPS):
        noise = rng.standard_normal(N).astype(np.float32) * np.float32(0.1)
        g = ((p.numpy() - target) * np.float32(2.0) + noise) * scales
        if k < 3:
            g[256:512] = 0.0
        g = g.astype(np.float32)
        p.grad = torch.from_numpy(g.copy())
        seen = []
        plain_sqrt = torch.Tensor.sqrt

        def spy(t):
            out = plain_sqrt(t)
            seen.append((t.detach().numpy().copy(), out.detach().numpy().copy()))
            return out

        torch.Tensor.sqrt = spy
        try:
            opt.step()
        finally:
            torch.Tensor.sqrt = plain_sqrt
        # torch's float32 sqrt on CPU is not correctly rounded (about 17% of values are one
        # unit in the last place off, on every ATEN_CPU_CAPABILITY and MKL_CBWR setting tried):
        # record where it differs from the correctly rounded root, so a replay can tell those
        # elements apart.
        inexact = set()
        for x, out in seen:
            exact = np.sqrt(x.astype(np.float64)).astype(np.float32)
            inexact.update(np.nonzero(out.view(np.uint32) != exact.view(np.uint32))[0].tolist())
        st = opt.state[p]
        assert st["state1"].dtype == torch.uint8, "8-bit state expected"
        rec = {
            "grad": hex_f32(g),
            "params": hex_f32(p.detach().numpy()),
            "state1": hex_u8(st["state1"].numpy()),
            "absmax1": hex_f32(st["absmax1"].numpy()),
            "sqrt_inexact": sorted(inexact),
        }
        if hyper["optimizer"] == "adam":
            rec["state2"] = hex_u8(st["state2"].numpy())
            rec["absmax2"] = hex_f32(st["absmax2"].numpy())
        steps.append(rec)
    return {"name": name, "hyper": hyper, "n": N, "params0": hex_f32(p0), "steps": steps}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    meta = {
        "schema": "rmsprop-8bit/1",
        "generator": "tools/reference/bnb8bit.py",
        "bitsandbytes": bnb.__version__,
        "torch": torch.__version__,
        "blocksize": BLOCK,
        "encoding": "floats: hex of little-endian float32 bytes; codes: hex of the uint8 bytes",
    }
    out = dict(meta, maps=maps(), quantize=quantize_cases(rng))
    path = os.path.join(args.out, "bnb_quantize.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)
    for name in RUNS:
        out = dict(meta, run=trajectory(name, rng))
        path = os.path.join(args.out, "bnb_%s.json" % name)
        with open(path, "w") as f:
            json.dump(out, f, indent=1)
        print("wrote", path)


if __name__ == "__main__":
    sys.exit(main())
