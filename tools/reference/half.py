#!/usr/bin/env python3
"""Half-precision RMSProp gradient-replay vectors (bfloat16 / float16) from torch, and a
float32-emulation check of them.

Records torch.optim.RMSprop (foreach=False: the single-tensor path) on a flat CPU
tensor of 8 bfloat16 or float16 parameters for 200 steps, in four configurations
(plain, centered, momentum 0.9, weight_decay 0.01), and writes
reference/vectors_half/torch_<config>_quadratic8_<bf16|f16>.json (8 files) in the
schema_version 1 layout of reference/SCHEMA.md.  Every number (initial params,
gradients, trajectory, final state) is written as the EXACT decimal expansion of
the bfloat16 / float16 value (a finite decimal: every such value is a dyadic
rational), so it is exactly representable in float32 and float64.

Objective "quadratic8" (a real optimization run: the gradient depends on p):
  rng = numpy default_rng(SEED); p0 = rng.uniform(-2, 2, 8); t = rng.uniform(-1, 1, 8);
  noise = rng.standard_normal((200, 8)) * NOISE_SCALES (per coordinate), as float32;
  p0 and t are rounded to float32, then to the dtype (torch's round-to-nearest-even).
  At step k, in torch: d = (p - t) * 2 in the dtype (each op rounded to the dtype);
  g = (float32(d) + noise[k]).to(dtype).  The recorded gradient is exactly the half
  tensor handed to the optimizer as p.grad.

torch on CPU keeps the optimizer state in the parameter dtype and evaluates every
ATen op in float32 ("opmath"), rounding each op's result to the dtype; so one
RMSProp step rounds several times (see TORCH_HALF_RULE).

--check replays every file with emulate(): by default the "fused" float32
emulation (state stored in the dtype, one float32 evaluation of the whole step per
buffer, rounded to the dtype at the end) -- what the Rust crate does -- and, for
comparison, "opbyop" (torch's op order, every op rounded to the dtype).  It prints the
worst trajectory deviation in units of the type's epsilon relative to
max(1, |recorded|), and the worst final-state deviation in eps relative to the
buffer's max |value|.

Usage (repository root):
  /work/venv-ref/bin/python tools/reference/half.py --out reference/vectors_half
  /work/venv-ref/bin/python tools/reference/half.py --check reference/vectors_half
  /work/venv-ref/bin/python tools/reference/half.py --check --sweep 50   # + 50 other seeds, in memory
"""

import argparse
import glob
import json
import math
import os
import sys
from decimal import Decimal

import numpy as np

STEPS = 200
N = 8
SCHEMA_VERSION = 1
SEED = 20250611
NOISE_SCALES = [0.0, 0.001, 0.01, 0.05, 0.1, 0.3, 1.0, 3.0]

DTYPES = {"bf16": "bfloat16", "f16": "float16"}
EPS_UNIT = {"bfloat16": 2.0 ** -7, "float16": 2.0 ** -10}

CONFIGS = {
    "plain": dict(),
    "centered": dict(centered=True),
    "momentum": dict(momentum=0.9),
    "weight_decay": dict(weight_decay=0.01),
}

ROUNDING = "torch: state kept in the parameter dtype; every op computes in float32 and rounds its result to the dtype"

OBJECTIVE_DESC = (
    "quadratic with noise, 8 coordinates: rng = numpy default_rng(%d); p0 = rng.uniform(-2, 2, 8); "
    "t = rng.uniform(-1, 1, 8); noise = rng.standard_normal((200, 8)) * scales[i], scales = %r, as float32; "
    "p0 and t rounded to float32 then to the dtype. Step k: d = (p - t) * 2 in the dtype (torch ops), "
    "g = dtype(float32(d) + noise[k]) (round to nearest even). The gradients recorded are the half values "
    "actually passed to torch as p.grad." % (SEED, NOISE_SCALES))

TORCH_HALF_RULE = (
    "torch.optim.RMSprop single-tensor path (foreach=False) on a %s tensor. h(x) = round x (a float32 result) to "
    "the dtype, nearest even; fma = float32 fused multiply-add. Scalars are Python floats taken as float32 "
    "(opmath). g = grad ; step += 1 ; wd: g = h(g + h(h(wd)*p)) [grad.add(p, alpha=wd), see below] ; "
    "sq = h(sq*alpha) [mul_] ; sq = h(sq + (1-alpha)*g*g) [addcmul_; fused or not makes no difference here] ; "
    "centered: ga = h(fma(1-alpha, g - ga, ga)) [lerp_], den = h(sqrt(h(sq - ga*ga))) "
    "[addcmul(value=-1).sqrt_()] else den = h(sqrt(sq)) [sqrt correctly rounded to the dtype] ; "
    "den = h(den + eps) [add_] ; momentum>0: buf = h(buf*momentum) [mul_], buf = h(buf + g/den) [addcdiv_], "
    "p = h(p + h(h(-lr)*buf)) [add_(alpha=-lr)] ; else p = h(fma(-lr, g/den, p)) [addcdiv_(value=-lr)]. "
    "add(alpha=) is the exception to 'one rounding per op': on this 8-element tensor (ATen's scalar loop) alpha "
    "is rounded to the dtype and so is alpha*b, h(a + h(h(alpha)*b)); on tensors long enough for the vectorized "
    "loop torch computes h(a + h(alpha)*b) instead. State (square_avg, grad_avg, momentum_buffer) is stored in "
    "the dtype; step is a float32 tensor. PLATFORM: torch %s CPU (%s; ATEN_CPU_CAPABILITY avx2 and default give "
    "the same numbers). tools/reference/half.py --check mode opbyop (this rule) reproduces every file bit for "
    "bit.")

NUMBER_ENCODING = {
    "bfloat16": ("bfloat16: every number is the exact decimal expansion of the bfloat16 value (finite: a dyadic "
                 "rational); it is exactly representable in float32 and float64, so parsing as f64 and converting "
                 "to f32 or bfloat16 is exact (even a parser a few f64 ulps off gives the same bfloat16 after "
                 "rounding)"),
    "float16": ("float16: every number is the exact decimal expansion of the float16 value (finite: a dyadic "
                "rational); it is exactly representable in float32 and float64, so parsing as f64 and converting "
                "to f32 or float16 is exact (even a parser a few f64 ulps off gives the same float16 after "
                "rounding)"),
}


# --------------------------------------------------------------------------
# Rounding float32 -> half (numpy only; checked against torch in --check)
# --------------------------------------------------------------------------

def round_bf16(x):
    """float32 array -> nearest-even bfloat16, returned as float32 (finite inputs)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    b = x.view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    return r.view(np.float32)


def round_f16(x):
    """float32 array -> nearest-even float16 (subnormals included), returned as float32."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


ROUND = {"bfloat16": round_bf16, "float16": round_f16}


# --------------------------------------------------------------------------
# Exact decimals
# --------------------------------------------------------------------------

def fmt_exact(x, dtype):
    """The exact decimal of a half value x (given as a float holding it exactly)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError("non-finite value %r" % x)
    h = float(ROUND[dtype](np.array([x], np.float32))[0])
    if h != x:
        raise ValueError("%r is not a %s value" % (x, dtype))
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    d = Decimal(x)  # exact
    if 1e-4 <= abs(x) < 1e7:
        s = format(d, "f")
        if "." not in s:
            s += ".0"
    else:
        s = format(d, "e")
    if Decimal(s) != d or float(s) != x:
        raise AssertionError("decimal %s is not exact for %r" % (s, x))
    return s


def _fmt_array(a, dtype):
    return "[" + ",".join(fmt_exact(v, dtype) for v in np.asarray(a, dtype=np.float64).reshape(-1)) + "]"


def write_vector(path, rec):
    dtype = rec["dtype"]
    head_keys = ["schema_version", "framework", "version", "optimizer", "config", "hyperparameters",
                 "normalized", "update_rule", "dtype", "rounding", "objective", "objective_description",
                 "gradient_mode", "shape", "steps", "final_state_native_names", "number_encoding",
                 "objective_data"]
    lines = ["{"]
    for k in head_keys:
        lines.append(" %s: %s," % (json.dumps(k), json.dumps(rec[k])))
    lines.append(' "initial_params": %s,' % _fmt_array(rec["initial_params"], dtype))
    for k in ("gradients", "trajectory"):
        rows = rec[k]
        lines.append(' "%s": [' % k)
        for i, r in enumerate(rows):
            lines.append("  " + _fmt_array(r, dtype) + ("," if i + 1 < len(rows) else ""))
        lines.append(" ],")
    lines.append(' "final_state": {')
    items = list(rec["final_state"].items())
    for i, (k, v) in enumerate(items):
        val = str(int(v)) if isinstance(v, (int, np.integer)) else _fmt_array(v, dtype)
        lines.append("  %s: %s%s" % (json.dumps(k), val, "," if i + 1 < len(items) else ""))
    lines.append(" }")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # well-formed
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------

def objective_data(seed=SEED):
    rng = np.random.default_rng(seed)
    p0 = rng.uniform(-2.0, 2.0, N).astype(np.float32)
    t = rng.uniform(-1.0, 1.0, N).astype(np.float32)
    noise = (rng.standard_normal((STEPS, N)) * np.array(NOISE_SCALES)).astype(np.float32)
    return p0, t, noise


def run_torch(cfg, dtype, seed=SEED):
    import torch
    torch.set_num_threads(1)
    td = getattr(torch, dtype)
    hyper = dict(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.0, centered=False,
                 maximize=False, foreach=False)
    hyper.update(CONFIGS[cfg])
    p0, t32, noise = objective_data(seed)
    p = torch.from_numpy(p0.copy()).to(td)
    t = torch.from_numpy(t32.copy()).to(td)
    x0 = p.float().numpy().copy()
    opt = torch.optim.RMSprop([p], **hyper)
    grads, traj = [], []
    for k in range(STEPS):
        with torch.no_grad():
            d = (p.detach() - t) * 2
            g = (d.float() + torch.from_numpy(noise[k].copy())).to(td)
        assert g.dtype == td
        grads.append(g.float().numpy().copy())
        p.grad = g.clone()
        opt.step()
        assert p.dtype == td
        pk = p.detach().float().numpy().copy()
        if not np.all(np.isfinite(pk)):
            raise RuntimeError("%s %s: non-finite parameter at step %d: %r" % (cfg, dtype, k + 1, pk))
        traj.append(pk)
    st = opt.state[p]
    fs = {"step": int(st["step"].item())}
    names = {"step": "step"}
    for name, present in (("square_avg", True), ("grad_avg", hyper["centered"]),
                          ("momentum_buffer", hyper["momentum"] > 0)):
        if present:
            assert st[name].dtype == td, (name, st[name].dtype)
            fs[name] = st[name].float().numpy().copy()
            names[name] = name
            if not np.all(np.isfinite(fs[name])):
                raise RuntimeError("%s %s: non-finite %s" % (cfg, dtype, name))
    norm = dict(lr=hyper["lr"], decay=hyper["alpha"], eps=hyper["eps"], eps_in_sqrt=False,
                centered=hyper["centered"], momentum=hyper["momentum"], nesterov=False,
                weight_decay=hyper["weight_decay"], maximize=hyper["maximize"], initial_scale=0.0,
                bias_correction=False, momentum_style="torch")
    cap = torch.backends.cpu.get_cpu_capability()
    h = ROUND[dtype]
    return {
        "schema_version": SCHEMA_VERSION, "framework": "torch", "version": torch.__version__,
        "optimizer": "torch.optim.RMSprop", "config": cfg, "hyperparameters": hyper, "normalized": norm,
        "update_rule": TORCH_HALF_RULE % (dtype, torch.__version__, cap), "dtype": dtype,
        "rounding": ROUNDING, "objective": "quadratic8", "objective_description": OBJECTIVE_DESC,
        "gradient_mode": "replay", "shape": [N], "steps": STEPS, "final_state_native_names": names,
        "number_encoding": NUMBER_ENCODING[dtype],
        "objective_data": {"seed": seed, "noise_scales": NOISE_SCALES,
                           "target": [float(v) for v in h(t32)],
                           "note": "target in the dtype; not needed to replay (the gradients are recorded)"},
        "initial_params": x0, "gradients": grads, "trajectory": traj, "final_state": fs,
    }


def all_names():
    return ["torch_%s_quadratic8_%s" % (cfg, dt) for cfg in CONFIGS for dt in DTYPES]


def generate(out, only=None):
    os.makedirs(out, exist_ok=True)
    for cfg in CONFIGS:
        for dt, dtype in DTYPES.items():
            name = "torch_%s_quadratic8_%s" % (cfg, dt)
            if only and name not in only:
                continue
            rec = run_torch(cfg, dtype)
            path = os.path.join(out, name + ".json")
            write_vector(path, rec)
            print("wrote", path, flush=True)


# --------------------------------------------------------------------------
# Check: float32 emulation
# --------------------------------------------------------------------------

def _fma32(a, b, c):
    """float32 a*b + c rounded once (the product of two float32 is exact in float64)."""
    return (np.float64(a) * np.asarray(b, np.float64) + np.asarray(c, np.float64)).astype(np.float32)


def _sqrt_to_dtype(x):
    """sqrt in float64, rounded to float32 (then by the caller to the dtype): torch's half sqrt."""
    return np.sqrt(x.astype(np.float64)).astype(np.float32)


def emulate(rec, mode="fused"):
    """Replay rec's gradients with float32 arithmetic, state stored in rec's dtype.

    mode "fused":  per step and buffer one float32 evaluation, rounded to the dtype once:
                   g = g + wd*p ; v = h(alpha*v + (1-alpha)*g*g) ; centered: ga = h(ga + (1-alpha)*(g - ga)),
                   den = sqrt(v - ga*ga) + eps else den = sqrt(v) + eps  (den stays float32) ;
                   momentum: buf = h(m*buf + g/den), p = h(p - lr*buf)  else p = h(p - lr*(g/den)).
    mode "opbyop": torch's op order, every op rounded to the dtype, add(alpha=) as torch's scalar loop
                   does it (see TORCH_HALF_RULE).
    Returns (trajectory [steps][n] float32, final_state dict of float32 arrays).
    """
    dtype = rec["dtype"]
    h = ROUND[dtype]
    nz = rec["normalized"]
    f = np.float32
    lr, alpha, eps = f(nz["lr"]), f(nz["decay"]), f(nz["eps"])
    oma = f(1.0 - nz["decay"])
    mom, wd = f(nz["momentum"]), f(nz["weight_decay"])
    centered = bool(nz["centered"])
    p = np.array(rec["initial_params"], dtype=np.float32)
    v = np.zeros_like(p)
    ga = np.zeros_like(p)
    buf = np.zeros_like(p)
    traj = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for row in rec["gradients"]:
            g = np.array(row, dtype=np.float32)
            if mode == "fused":
                if wd != 0:
                    g = g + wd * p
                v = h(alpha * v + oma * (g * g))
                if centered:
                    ga = h(ga + oma * (g - ga))
                    den = np.sqrt(v - ga * ga) + eps
                else:
                    den = np.sqrt(v) + eps
                if mom > 0:
                    buf = h(mom * buf + g / den)
                    p = h(p - lr * buf)
                else:
                    p = h(p - lr * (g / den))
            elif mode == "opbyop":
                if wd != 0:
                    g = h(g + h(h(np.array([wd]))[0] * p))      # add(alpha=): scalar loop rounds alpha and alpha*b
                v = h(v * alpha)
                v = h(v + oma * g * g)
                if centered:
                    ga = h(_fma32(oma, g - ga, ga))            # lerp_: a fused multiply-add
                    den = h(_sqrt_to_dtype(h(v - ga * ga)))
                else:
                    den = h(_sqrt_to_dtype(v))
                den = h(den + eps)
                if mom > 0:
                    buf = h(buf * mom)
                    buf = h(buf + g / den)
                    p = h(p + h(h(np.array([-lr]))[0] * buf))
                else:
                    p = h(_fma32(-lr, g / den, p))             # addcdiv_(value=-lr): a fused multiply-add
            else:
                raise ValueError(mode)
            traj.append(p.copy())
    fs = {"square_avg": v}
    if centered:
        fs["grad_avg"] = ga
    if mom > 0:
        fs["momentum_buffer"] = buf
    return np.array(traj), fs


def deviations(rec, mode):
    """(worst trajectory dev, (step, coord), #values not bit-equal, worst state dev, per-buffer devs)."""
    unit = EPS_UNIT[rec["dtype"]]
    traj, fs = emulate(rec, mode)
    want = np.array(rec["trajectory"], dtype=np.float64)
    got = traj.astype(np.float64)
    dev = np.abs(got - want) / (unit * np.maximum(1.0, np.abs(want)))
    dev = np.where(np.isnan(dev), np.inf, dev)
    k, i = np.unravel_index(int(np.argmax(dev)), dev.shape)
    nbad = int(np.sum(got != want))
    sdev = {}
    for name, arr in fs.items():
        w = np.array(rec["final_state"][name], dtype=np.float64)
        scale = float(np.max(np.abs(w))) or 1.0
        d = np.abs(arr.astype(np.float64) - w) / (unit * scale)
        sdev[name] = float(np.max(np.where(np.isnan(d), np.inf, d)))
    return float(dev[k, i]), (int(k) + 1, int(i)), nbad, max(sdev.values()), sdev


def check_rounding():
    """The numpy rounding helpers against torch's float32 -> half conversion."""
    try:
        import torch
    except ImportError:
        print("(torch not importable: rounding helpers not cross-checked)")
        return
    rng = np.random.default_rng(1)
    x = np.concatenate([
        (rng.standard_normal(200000) * 10.0 ** rng.uniform(-9, 4, 200000)).astype(np.float32),
        rng.integers(0, 2 ** 32, 200000, dtype=np.uint64).astype(np.uint32).view(np.float32),
    ])
    x = x[np.isfinite(x)]
    for dtype, fn in ROUND.items():
        xx = x if dtype == "bfloat16" else x[np.abs(x) < 65504]
        ref = torch.from_numpy(xx.copy()).to(getattr(torch, dtype)).float().numpy()
        ours = fn(xx)
        ok = np.array_equal(ref.view(np.uint32), ours.view(np.uint32))
        print("rounding helper %s vs torch on %d float32 values: %s" % (dtype, xx.size, "equal" if ok else "DIFFERENT"))
        if not ok:
            raise SystemExit(1)


def check(paths):
    files = []
    for p in paths:
        files += sorted(glob.glob(os.path.join(p, "*.json"))) if os.path.isdir(p) else [p]
    check_rounding()
    print()
    print("trajectory: worst |emu - rec| / (eps * max(1, |rec|)) over all steps and coordinates (step is 1-based);")
    print("state: worst |emu - rec| / (eps * max|rec buffer|) over the final buffers; eps = 2^-7 (bf16), 2^-10 (f16)")
    print("ne = trajectory values (of 1600) not bit-equal")
    print()
    hdr = "%-38s | %8s %11s %5s %8s | %8s %5s %8s" % ("file", "fused tr", "at (k,i)", "ne", "state",
                                                     "opbyop tr", "ne", "state")
    print(hdr)
    print("-" * len(hdr))
    worst = {}
    for path in files:
        with open(path) as fh:
            rec = json.load(fh)
        if rec.get("dtype") not in EPS_UNIT:
            continue
        # every recorded number is a value of the dtype
        h = ROUND[rec["dtype"]]
        allv = np.array(rec["initial_params"] + sum(rec["gradients"], []) + sum(rec["trajectory"], [])
                        + sum((v for k, v in rec["final_state"].items() if k != "step"), []), dtype=np.float64)
        assert np.array_equal(h(allv.astype(np.float32)).astype(np.float64), allv), path
        fd, fat, fne, fs, _ = deviations(rec, "fused")
        od, _, one, os_, _ = deviations(rec, "opbyop")
        name = os.path.basename(path)[:-5]
        print("%-38s | %8.3f %11s %5d %8.3f | %8.3f %5d %8.3f" % (name, fd, "(%d,%d)" % fat, fne, fs, od, one, os_))
        w = worst.setdefault(rec["dtype"], [0.0, 0.0])
        w[0] = max(w[0], fd)
        w[1] = max(w[1], fs)
    print()
    for dt, (a, b) in worst.items():
        print("fused, %s: worst trajectory %.3f eps, worst state %.3f eps" % (dt, a, b))
    return 0


def sweep(count):
    """Fused-emulation deviations on `count` other seeds (recorded in memory, nothing written)."""
    print("fused emulation on seeds %d..%d (in memory, not written); worst over those seeds:" % (SEED + 1, SEED + count))
    print("%-14s %-9s | %9s %9s %9s | %9s" % ("config", "dtype", "traj max", "traj p50", "traj p90", "state max"))
    for cfg in CONFIGS:
        for dtype in DTYPES.values():
            tr, st, skipped = [], [], 0
            for s in range(SEED + 1, SEED + 1 + count):
                try:
                    rec = run_torch(cfg, dtype, s)
                except RuntimeError:  # torch itself produced inf/nan on this seed
                    skipped += 1
                    continue
                rec = json.loads(json.dumps(rec, default=lambda a: np.asarray(a, np.float64).tolist()))
                d, _, _, sd, _ = deviations(rec, "fused")
                tr.append(d)
                st.append(sd)
            print("%-14s %-9s | %9.3f %9.3f %9.3f | %9.3f%s" % (
                cfg, dtype, max(tr), float(np.percentile(tr, 50)), float(np.percentile(tr, 90)), max(st),
                "  (%d seeds skipped: torch non-finite)" % skipped if skipped else ""))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="reference/vectors_half", help="output directory")
    ap.add_argument("--only", nargs="*", default=None, help="file names (without .json)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--check", nargs="*", default=None, metavar="PATH",
                    help="replay files / directories (default reference/vectors_half) instead of generating")
    ap.add_argument("--sweep", type=int, default=0, metavar="K",
                    help="with --check: also record K other seeds in memory and report the fused deviations")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(all_names()))
        return 0
    if args.check is not None:
        rc = check(args.check or ["reference/vectors_half"])
        if args.sweep:
            print()
            rc = sweep(args.sweep) or rc
        return rc
    only = None
    if args.only:
        only = set(n[:-5] if n.endswith(".json") else n for n in args.only)
        bad = only - set(all_names())
        if bad:
            ap.error("unknown names: %s" % ", ".join(sorted(bad)))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    generate(args.out, only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
