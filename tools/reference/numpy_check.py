#!/usr/bin/env python3
"""Independent numpy re-implementation check of tf1 / timm reference vectors.

  python tools/reference/numpy_check.py reference/vectors/tf1_*.json reference/vectors/timm_*.json

Replays each file's recorded gradients through a from-scratch numpy version of
the formula written in the file's update_rule (TF1: SCHEMA.md "TF1"; timm:
SCHEMA.md "timm"), all arithmetic in the file's dtype, and reports the worst
deviation of the parameters over the whole trajectory in units of
normalized.lr, plus whether trajectory and final state are bit-identical.

Two arithmetic modes:
  plain  every operation correctly rounded separately (numpy), no fused ops.
  fma    (timm only) the a + b*c forms that torch's CPU kernels fuse
         (add_(alpha=), addcmul, add_(alpha=-lr)) computed as exactly rounded
         fused multiply-adds (exact rational arithmetic, then one rounding).
  native (timm only) as fma, but sqrt taken from torch's own CPU sqrt_ (which
         is not correctly rounded); needs torch importable.  This is the only
         non-numpy operation and shows that the operation order is exact.
The hyperparameters are taken from the file's "hyperparameters" field; TF1's
are rounded through float32 first (hyperparameter_precision = "float32").
"""

import argparse
import json
import os
import sys
from fractions import Fraction

import numpy as np


def _round_f32(fr):
    """Correctly round a Fraction to float32 (ties to even)."""
    x = np.float32(float(fr))
    best = None
    for c in (np.nextafter(x, np.float32(-np.inf)), x, np.nextafter(x, np.float32(np.inf))):
        err = abs(Fraction(float(c)) - fr)
        key = (err, int(np.array(c, np.float32).view(np.uint32)) & 1)
        if best is None or key < best[0]:
            best = (key, c)
    return np.float32(best[1])


def fma(a, b, c):
    """Element-wise a*b + c with a single correct rounding, in a's dtype."""
    a, b, c = np.broadcast_arrays(np.asarray(a), np.asarray(b), np.asarray(c))
    dt = a.dtype
    out = np.empty(a.shape, dtype=dt)
    for i in np.ndindex(a.shape):
        fr = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        out[i] = _round_f32(fr) if dt == np.float32 else float(fr)  # int/int division is correctly rounded
    return out


def tf1_run(d, T):
    h = d["hyperparameters"]
    f32 = lambda v: T(np.float32(v))  # Python float -> float32 tensor -> cast to dtype
    lr, rho, mom_c, eps = f32(h["learning_rate"]), f32(h["decay"]), f32(h["momentum"]), f32(h["epsilon"])
    centered = h["centered"]
    one_minus_rho = T(1) - rho
    p = np.array(d["initial_params"], dtype=T)
    ms = np.ones_like(p)
    mg = np.zeros_like(p)
    mom = np.zeros_like(p)
    traj = []
    for g in d["gradients"]:
        g = np.array(g, dtype=T)
        ms = ms + (g * g - ms) * one_minus_rho
        if centered:
            mg = mg + (g - mg) * one_minus_rho
            den = (ms - mg * mg) + eps
        else:
            den = ms + eps
        mom = mom * mom_c + (g * lr) / np.sqrt(den)
        p = p - mom
        traj.append(p.copy())
    fs = {"step": len(traj), "square_avg": ms}
    if centered:
        fs["grad_avg"] = mg
    fs["momentum_buffer"] = mom
    return traj, fs


def _torch_sqrt(x):
    import torch
    return torch.from_numpy(np.array(x)).sqrt_().numpy()


def timm_run(d, T, use_fma, native_sqrt=False):
    h = d["hyperparameters"]
    lr, alpha, eps, wd, m = h["lr"], h["alpha"], h["eps"], h["weight_decay"], h["momentum"]
    centered, decoupled, lr_in_mom = h["centered"], h["decoupled_decay"], h["lr_in_momentum"]
    oma = T(1.0 - alpha)                      # Python float 1 - alpha, rounded to dtype
    madd = fma if use_fma else (lambda a, b, c: a * b + c)
    sqrt = _torch_sqrt if native_sqrt else np.sqrt
    p = np.array(d["initial_params"], dtype=T)
    sq = np.ones_like(p)
    ga = np.zeros_like(p)
    buf = np.zeros_like(p)
    traj = []
    for g in d["gradients"]:
        g = np.array(g, dtype=T)
        if wd != 0:
            if decoupled:
                p = p * T(1.0 - lr * wd)      # Python float 1 - lr*wd, rounded to dtype
            else:
                g = madd(p, T(wd), g)         # grad.add(p, alpha=wd)
        sq = madd(g * g - sq, oma, sq)        # sq.add_(g.pow(2) - sq, alpha=1-alpha)
        if centered:
            ga = madd(g - ga, oma, ga)        # ga.add_(g - ga, alpha=1-alpha)
            avg = sqrt(madd(-ga, ga, sq) + T(eps))   # sq.addcmul(ga, ga, value=-1).add(eps).sqrt_()
        else:
            avg = sqrt(sq + T(eps))
        if m > 0:
            buf = buf * T(m)
            if lr_in_mom:
                buf = buf + (T(lr) * g) / avg     # addcdiv_(g, avg, value=lr)
                p = p - buf                       # p.add_(-buf)
            else:
                buf = buf + (T(1) * g) / avg      # addcdiv_(g, avg)
                p = madd(buf, T(-lr), p)          # p.add_(buf, alpha=-lr)
        else:
            p = p + (T(-lr) * g) / avg            # p.addcdiv_(g, avg, value=-lr)
        traj.append(p.copy())
    fs = {"step": len(traj), "square_avg": sq}
    if centered:
        fs["grad_avg"] = ga
    if m > 0:
        fs["momentum_buffer"] = buf
    return traj, fs


def check(path, mode):
    d = json.load(open(path))
    T = np.float32 if d["dtype"] == "float32" else np.float64
    if d["framework"] == "tf1":
        traj, fs = tf1_run(d, T)
    elif d["framework"] == "timm":
        traj, fs = timm_run(d, T, mode in ("fma", "native"), mode == "native")
    else:
        raise SystemExit("%s: only tf1 and timm files are supported" % path)
    ref = np.array(d["trajectory"], dtype=np.float64).astype(T)
    mine = np.array(traj, dtype=T)
    dev = float(np.max(np.abs(mine.astype(np.float64) - ref.astype(np.float64)))) / float(d["normalized"]["lr"])
    rows = np.nonzero((mine != ref).any(axis=1))[0]
    first = int(rows[0]) if len(rows) else None
    fs_same = True
    fs_dev = 0.0
    for k, v in d["final_state"].items():
        if isinstance(v, list):
            r = np.array(v, dtype=np.float64).astype(T)
            fs_same &= np.array_equal(r, fs[k])
            fs_dev = max(fs_dev, float(np.max(np.abs(r.astype(np.float64) - fs[k].astype(np.float64)))))
        else:
            fs_same &= v == fs[k]
    sub = int(np.sum((ref != 0) & (np.abs(ref) < np.finfo(T).tiny)))
    return dev, first, len(rows), fs_same, fs_dev, sub


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--mode", choices=["plain", "fma", "native", "all"], default="all",
                    help="arithmetic mode (fma/native apply to timm only; tf1 is always plain)")
    args = ap.parse_args(argv)
    print("%-46s %-6s %12s %6s %6s %6s %10s" % ("file", "mode", "maxdev/lr", "first", "ndiff", "state",
                                                 "state dev"))
    worst = {}
    for f in args.files:
        fw = json.load(open(f))["framework"]
        if fw == "tf1" or args.mode == "plain":
            modes = ["plain"]
        elif args.mode == "all":
            modes = ["plain", "fma", "native"]
        else:
            modes = [args.mode]
        for mode in modes:
            dev, first, nd, fs_same, fs_dev, sub = check(f, mode)
            key = (fw, mode, json.load(open(f))["dtype"])
            worst[key] = max(worst.get(key, 0.0), dev)
            print("%-46s %-6s %12.3e %6s %6d %6s %10.3e%s" % (
                os.path.basename(f)[:-5], mode, dev, "-" if first is None else first, nd,
                "same" if fs_same else "DIFF", fs_dev, ("  (%d subnormal values)" % sub) if sub else ""))
    print("worst deviation in units of lr:")
    for k in sorted(worst):
        print("  %-5s %-6s %-8s %.3e" % (k[0], k[1], k[2], worst[k]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
