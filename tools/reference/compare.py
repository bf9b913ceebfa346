#!/usr/bin/env python3
"""Compare two directories of reference vectors (schema_version 1).

  python tools/reference/compare.py NEW_DIR OLD_DIR [--only NAME ...]

For every file present in both directories, reports whether the gradients,
trajectory and final_state are bit-identical (after parsing each number the
way the schema says: float64 directly, float32 as f64 then rounded to f32),
the worst trajectory deviation in units of normalized.lr, the first step
where the trajectories differ, and whether the metadata (all other fields)
is identical.  Exit code 0 when everything that was compared is identical.
"""

import argparse
import glob
import json
import os
import sys

import numpy as np


def load(path):
    with open(path) as f:
        return json.load(f)


def arr(x, dtype):
    return np.asarray(x, dtype=np.float64).astype(np.float32 if dtype == "float32" else np.float64)


def same_bits(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def compare(a, b):
    dt = a["dtype"]
    out = {}
    ga, gb = arr(a["gradients"], dt), arr(b["gradients"], dt)
    ta, tb = arr(a["trajectory"], dt), arr(b["trajectory"], dt)
    out["grads"] = same_bits(ga, gb)
    out["traj"] = same_bits(ta, tb)
    lr = float(b["normalized"]["lr"])
    if ta.shape == tb.shape:
        d = np.abs(ta.astype(np.float64) - tb.astype(np.float64))
        out["max_dev_lr"] = float(d.max()) / lr
        rows = np.nonzero((ta != tb).any(axis=1))[0]
        out["first_diff_step"] = int(rows[0]) if len(rows) else None
        out["n_diff_steps"] = int(len(rows))
    else:
        out["max_dev_lr"] = float("nan")
        out["first_diff_step"] = 0
        out["n_diff_steps"] = -1
    fa, fb = a["final_state"], b["final_state"]
    fs_same = list(fa) == list(fb)
    for k in fa:
        if k not in fb:
            fs_same = False
            continue
        if isinstance(fa[k], list):
            fs_same &= same_bits(arr(fa[k], dt), arr(fb[k], dt))
        else:
            fs_same &= fa[k] == fb[k]
    out["final_state"] = fs_same
    skip = {"gradients", "trajectory", "final_state"}
    meta_diff = [k for k in sorted(set(a) | set(b)) if k not in skip and a.get(k) != b.get(k)]
    out["meta_diff"] = meta_diff
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("new")
    ap.add_argument("old")
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args(argv)
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(args.new, "*.json")))
    if args.only:
        want = set(n if n.endswith(".json") else n + ".json" for n in args.only)
        names = [n for n in names if n in want]
    all_ok = True
    n_ident = 0
    print("%-52s %5s %5s %5s %12s %6s  %s" % ("file", "grads", "traj", "state", "maxdev/lr", "first", "meta diff"))
    for n in names:
        po = os.path.join(args.old, n)
        if not os.path.exists(po):
            print("%-52s (not in %s)" % (n, args.old))
            continue
        a, b = load(os.path.join(args.new, n)), load(po)
        r = compare(a, b)
        ok = r["grads"] and r["traj"] and r["final_state"]
        n_ident += ok
        all_ok &= ok
        print("%-52s %5s %5s %5s %12.3e %6s  %s" % (
            n[:-5], "same" if r["grads"] else "DIFF", "same" if r["traj"] else "DIFF",
            "same" if r["final_state"] else "DIFF", r["max_dev_lr"],
            "-" if r["first_diff_step"] is None else r["first_diff_step"], ",".join(r["meta_diff"])))
    print("bit-identical (gradients, trajectory, final_state): %d of %d" % (n_ident, len(names)))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
