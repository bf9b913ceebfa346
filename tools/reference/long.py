#!/usr/bin/env python3
"""Long gradient-replay vectors: one flat tensor of n = 4096 or 100003 parameters, 20 steps, gradients and
initial parameters GENERATED (splitmix64, bit-exact in any language), only sampled coordinates recorded.

Self-contained (does not import generate.py or family.py).  Format: reference/SCHEMA.md, section
"Long vectors".  Files: reference/vectors_long/<framework>_<config>_generated_<n>_<f32|f64>.json.

The metadata (version format, optimizer, hyperparameters, normalized, update_rule, final_state key order)
is taken from the committed short vector of the same framework / config / dtype
(<short-dir>/<framework>_<config>_sphere_<f32|f64>.json, default reference/vectors); the framework
optimizer is constructed from exactly those hyperparameters.

Generator (all integer arithmetic on u64, wrapping mod 2^64):
    splitmix64(x): z = x + 0x9E3779B97F4A7C15
                   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
                   z = (z ^ (z >> 27)) * 0x94D049BB133111EB
                   return z ^ (z >> 31)
    unit(x)      = float((splitmix64(x) >> 11) - 2**52) * 2**-52          exact, in [-1, 1)
    gradient     g[k][i] = dtype(unit(grad_seed + k*n + i) * SCALES[i % 8])  (one float64 multiply, then
                                                                            rounded to the run's dtype)
    initial      p0[i]   = dtype(unit(param_seed + i))
    grad_seed = 1000003, param_seed = 7, SCALES = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 0.0]

Usage (repository root; the venv of tools/reference/README.md):
  python tools/reference/long.py generate --out reference/vectors_long
  python tools/reference/long.py generate --out /tmp/l --frameworks torch --sizes 4096
  python tools/reference/long.py generate --out /tmp/l --only torch_default_generated_4096_f32
  python tools/reference/long.py list
  python tools/reference/long.py check reference/vectors_long            (every file, every mode)
  python tools/reference/long.py check --mode plain reference/vectors_long/optax_*.json

`generate` runs each framework in its own child process with the same environment as generate.py /
family.py (CPU only, OMP_NUM_THREADS=1, torch.set_num_threads(1), JAX x64, XLA:CPU capped to AVX2, Keras on
the JAX backend; torch foreach=False comes from the hyperparameters).  `check` re-implements every file in
numpy at the sample coordinates only (the rules are element-wise), from the generator, and reports the
worst deviation of trajectory_sample in units of normalized.lr (modes: see check --help).
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np

SCHEMA_VERSION = 1
STEPS = 20
SIZES = [4096, 100003]
SAMPLE_STEPS = [1, 2, 5, 20]
GRAD_SEED = 1000003
PARAM_SEED = 7
SCALES = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 0.0]
GENERATOR = {"kind": "splitmix64", "grad_seed": GRAD_SEED, "param_seed": PARAM_SEED, "scales": SCALES}

CONFIGS = {
    "torch": ["default", "centered", "momentum", "sgd_momentum", "adagrad_default", "adam_default",
              "adamw_default", "adadelta_default"],
    "optax": ["default", "centered", "momentum", "adam_default", "adagrad_default", "adadelta_default",
              "lion_default"],
    "keras": ["default", "centered_momentum"],
}
FRAMEWORKS = list(CONFIGS)

# --------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------

M64 = (1 << 64) - 1


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def unit(x):
    return float((splitmix64(x & M64) >> 11) - 2**52) * 2.0**-52


def grad_py(k, i, n, T):
    """Pure-Python-int gradient g[k][i] (0-based step k), rounded to T."""
    return T(unit(GRAD_SEED + k * n + i) * SCALES[i % 8])


def param_py(i, T):
    return T(unit(PARAM_SEED + i))


def _splitmix64_np(x):
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _unit_np(x):
    z = _splitmix64_np(x) >> np.uint64(11)                       # < 2^53
    return (z.astype(np.int64) - np.int64(2**52)).astype(np.float64) * 2.0**-52


def grad_row_np(k, n, T, idx=None):
    """Vectorized gradient row k (all n coordinates, or those in idx), rounded to T."""
    i = np.arange(n, dtype=np.uint64) if idx is None else np.asarray(idx, dtype=np.uint64)
    scale = np.array(SCALES, dtype=np.float64)[(i % np.uint64(8)).astype(np.int64)]
    return (_unit_np(np.uint64(GRAD_SEED) + np.uint64(k * n) + i) * scale).astype(T)


def params0_np(n, T, idx=None):
    i = np.arange(n, dtype=np.uint64) if idx is None else np.asarray(idx, dtype=np.uint64)
    return _unit_np(np.uint64(PARAM_SEED) + i).astype(T)


def verify_generator_np(count=500):
    """numpy (uint64) generator == pure-Python ints on a few hundred values (incl. the extremes)."""
    xs = [0, 1, 2, 7, M64, M64 - 1, 2**63, 2**63 - 1, 2**52, GRAD_SEED] + \
         [(GRAD_SEED + 1234567 * j * j + 99991 * j) & M64 for j in range(count)]
    a = np.array([splitmix64(x) for x in xs], dtype=np.uint64)
    b = _splitmix64_np(np.array(xs, dtype=np.uint64))
    assert np.array_equal(a, b), "numpy splitmix64 differs from the pure-Python ints"
    ua = np.array([unit(x) for x in xs], dtype=np.float64)
    assert np.array_equal(ua.view(np.uint64), _unit_np(np.array(xs, dtype=np.uint64)).view(np.uint64))
    assert all(-1.0 <= u < 1.0 for u in ua)
    for n in SIZES:
        for T in (np.float32, np.float64):
            for k in (0, 7, STEPS - 1):
                idx = list(range(0, n, max(1, n // 97))) + [n - 1]
                want = np.array([grad_py(k, i, n, T) for i in idx], dtype=T)
                assert np.array_equal(want.view(_uint(T)), grad_row_np(k, n, T)[idx].view(_uint(T)))
            want = np.array([param_py(i, T) for i in idx], dtype=T)
            assert np.array_equal(want.view(_uint(T)), params0_np(n, T)[idx].view(_uint(T)))
    return len(xs)


def _uint(T):
    return np.uint32 if T == np.float32 else np.uint64


def sample_indices(n):
    s = set(range(min(64, n))) | set(range(max(0, n - 64), n)) | set(range(0, n, 997))
    for k in (4096, 32768, 65536):
        for j in (k - 1, k, k + 1):
            if 0 <= j <= n - 1:
                s.add(j)
    return sorted(s)


# --------------------------------------------------------------------------
# Jobs and metadata from the short vectors
# --------------------------------------------------------------------------

def all_jobs():
    jobs = []
    for fw, cfgs in CONFIGS.items():
        for cfg in cfgs:
            for n in SIZES:
                for dt in ("f32", "f64"):
                    jobs.append(("%s_%s_generated_%d_%s" % (fw, cfg, n, dt), fw, cfg, n, dt))
    return jobs


def short_meta(short_dir, fw, cfg, dt):
    path = os.path.join(short_dir, "%s_%s_sphere_%s.json" % (fw, cfg, dt))
    with open(path) as f:
        d = json.load(f)
    assert d["framework"] == fw and d["config"] == cfg, path
    return d


# --------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------

def _fmt_float(v, dtype):
    s = str(np.float32(v)) if dtype == "float32" else repr(float(v))
    if s in ("nan", "inf", "-inf"):
        raise ValueError("non-finite value %s" % s)
    return s


def _fmt_array(a, dtype):
    return "[" + ",".join(_fmt_float(x, dtype) for x in np.asarray(a).reshape(-1)) + "]"


HEAD_KEYS = ["schema_version", "framework", "version", "optimizer", "config", "hyperparameters", "normalized",
             "update_rule", "dtype", "objective", "generator", "shape", "steps", "sample_steps"]


def write_long(path, rec):
    dtype = rec["dtype"]
    lines = ["{"]
    for k in HEAD_KEYS:
        lines.append(" %s: %s," % (json.dumps(k), json.dumps(rec[k])))
    lines.append(' "sample": %s,' % json.dumps(rec["sample"], separators=(",", ":")))
    lines.append(' "trajectory_sample": [')
    rows = rec["trajectory_sample"]
    for i, r in enumerate(rows):
        lines.append("  " + _fmt_array(r, dtype) + ("," if i + 1 < len(rows) else ""))
    lines.append(" ],")
    lines.append(' "final_state_sample": {')
    items = list(rec["final_state_sample"].items())
    for i, (k, v) in enumerate(items):
        val = str(int(v)) if isinstance(v, (int, np.integer)) else _fmt_array(v, dtype)
        lines.append("  %s: %s%s" % (json.dumps(k), val, "," if i + 1 < len(items) else ""))
    lines.append(" },")
    gs = rec["gradient_sample"]
    lines.append(' "gradient_sample": {"step": %d, "values": %s}' % (gs["step"], _fmt_array(gs["values"], dtype)))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------
# Framework runs
# --------------------------------------------------------------------------

_FULL_ROW_CHECKED = set()


def check_full_row(g, k, n, T):
    """Once per (n, dtype): one whole gradient row as fed equals the pure-Python-int generator."""
    if (n, T) in _FULL_ROW_CHECKED:
        return
    want = np.array([grad_py(k, i, n, T) for i in range(n)], dtype=T)
    assert np.array_equal(want.view(_uint(T)), np.asarray(g, dtype=T).view(_uint(T))), \
        "gradient row %d (n=%d, %s) fed to the framework differs from the generator" % (k, n, T.__name__)
    _FULL_ROW_CHECKED.add((n, T))


def drive(n, T, step_fn, read_fn, grad_back_fn):
    """20 steps; returns trajectory_sample rows and the gradient of the last step as the framework saw it."""
    idx = np.array(sample_indices(n))
    rows, gback = [], None
    for k in range(STEPS):
        g = grad_row_np(k, n, T)
        step_fn(g)
        if k + 1 in SAMPLE_STEPS:
            p = np.asarray(read_fn(), dtype=T)
            if not np.all(np.isfinite(p)):
                raise RuntimeError("non-finite params after step %d" % (k + 1))
            rows.append(p[idx].copy())
        if k == STEPS - 1:
            gb = np.asarray(grad_back_fn(), dtype=T)
            check_full_row(gb, k, n, T)
            gback = gb[idx].copy()
    return rows, gback


def run_torch(meta, n, T):
    import torch
    torch.set_num_threads(1)
    hyper = dict(meta["hyperparameters"])
    kw = dict(hyper)
    if "betas" in kw:
        kw["betas"] = tuple(kw["betas"])
    cls = getattr(torch.optim, meta["optimizer"].split(".")[-1])
    td = torch.float32 if T == np.float32 else torch.float64
    p = torch.from_numpy(params0_np(n, T).copy())
    assert p.dtype == td
    import inspect
    accepted = inspect.signature(cls.__init__).parameters
    opt = cls([p], **{k: v for k, v in kw.items() if k in accepted})
    group = opt.param_groups[0]             # every recorded hyperparameter must be what the optimizer uses
    for k, v in kw.items():
        assert group[k] == v, (k, group[k], v)

    def step(g):
        p.grad = torch.from_numpy(g.copy())
        opt.step()

    rows, gback = drive(n, T, step, lambda: p.detach().numpy(), lambda: p.grad.numpy())
    st = opt.state[p]
    fs = {}
    for key in meta["final_state"]:
        if key == "step":
            fs[key] = int(st["step"].item()) if "step" in st else STEPS
        else:
            fs[key] = st[key].numpy()
    return torch.__version__, rows, fs, gback


def run_optax(meta, n, T):
    import jax
    import jax.numpy as jnp
    import optax
    hyper = dict(meta["hyperparameters"])
    jd = jnp.float32 if T == np.float32 else jnp.float64
    opt = getattr(optax, meta["optimizer"].split(".")[-1])(**hyper)
    params = jnp.asarray(params0_np(n, T), dtype=jd)
    box = {"p": params, "s": opt.init(params), "g": None}

    def step(g):
        box["g"] = jnp.asarray(g, dtype=jd)
        u, box["s"] = opt.update(box["g"], box["s"], box["p"])
        box["p"] = optax.apply_updates(box["p"], u)

    rows, gback = drive(n, T, step, lambda: np.asarray(box["p"]), lambda: np.asarray(box["g"]))
    found = {}
    for s in jax.tree_util.tree_leaves(box["s"], is_leaf=lambda x: hasattr(x, "_fields")):
        cls = type(s).__name__
        if cls in ("ScaleByRmsState", "ScaleByRStdDevState", "ScaleByRmsWithCountState"):
            found["square_avg"] = np.asarray(s.nu)
            if "mu" in s._fields:
                found["grad_avg"] = np.asarray(s.mu)
            if "count" in s._fields:
                found["step"] = int(np.asarray(s.count))
        elif cls == "TraceState":
            found["momentum_buffer"] = np.asarray(s.trace)
        elif cls == "ScaleByAdamState":
            found["step"] = int(np.asarray(s.count))
            found["exp_avg"], found["exp_avg_sq"] = np.asarray(s.mu), np.asarray(s.nu)
        elif cls == "ScaleByRssState":
            found["sum"] = np.asarray(s.sum_of_squares)
        elif cls == "ScaleByAdaDeltaState":
            found["square_avg"], found["acc_delta"] = np.asarray(s.e_g), np.asarray(s.e_x)
        elif cls == "ScaleByLionState":
            found["step"] = int(np.asarray(s.count))
            found["exp_avg"] = np.asarray(s.mu)
    found.setdefault("step", STEPS)              # optax keeps no counter: = number of updates
    fs = {key: found[key] for key in meta["final_state"]}
    return "optax %s / jax %s" % (optax.__version__, jax.__version__), rows, fs, gback


def run_keras(meta, n, T):
    import jax
    import keras
    hyper = dict(meta["hyperparameters"])
    dtype = "float32" if T == np.float32 else "float64"
    var = keras.Variable(params0_np(n, T), dtype=dtype, name="p")
    opt = keras.optimizers.RMSprop(**hyper)
    opt.build([var])
    box = {"g": None}

    def step(g):
        box["g"] = keras.ops.convert_to_tensor(g, dtype=dtype)
        opt.apply([box["g"]], [var])

    rows, gback = drive(n, T, step, lambda: keras.ops.convert_to_numpy(var.value),
                        lambda: keras.ops.convert_to_numpy(box["g"]))
    found = {"step": int(keras.ops.convert_to_numpy(opt.iterations)),
             "square_avg": keras.ops.convert_to_numpy(opt._velocities[0].value)}
    if hyper["centered"]:
        found["grad_avg"] = keras.ops.convert_to_numpy(opt._average_gradients[0].value)
    if hyper["momentum"] > 0:
        found["momentum_buffer"] = keras.ops.convert_to_numpy(opt._momentums[0].value)
    fs = {key: found[key] for key in meta["final_state"]}
    version = "keras %s (backend %s %s)" % (keras.__version__, keras.backend.backend(), jax.__version__)
    return version, rows, fs, gback


RUNNERS = {"torch": run_torch, "optax": run_optax, "keras": run_keras}


def run_job(fw, cfg, n, dt, short_dir):
    T = np.float32 if dt == "f32" else np.float64
    meta = short_meta(short_dir, fw, cfg, dt)
    version, rows, fs, gback = RUNNERS[fw](meta, n, T)
    if version != meta["version"]:
        print("WARNING: %s %s ran with %r, the short vectors record %r" % (fw, cfg, version, meta["version"]),
              file=sys.stderr)
    idx = sample_indices(n)
    final = {}
    for key, v in fs.items():
        final[key] = int(v) if key == "step" else np.asarray(v, dtype=T)[idx]
    assert final.get("step") == STEPS, (fw, cfg, final.get("step"))
    return {
        "schema_version": SCHEMA_VERSION, "framework": fw, "version": version, "optimizer": meta["optimizer"],
        "config": cfg, "hyperparameters": meta["hyperparameters"], "normalized": meta["normalized"],
        "update_rule": meta["update_rule"], "dtype": meta["dtype"], "objective": "generated",
        "generator": GENERATOR, "shape": [n], "steps": STEPS, "sample_steps": SAMPLE_STEPS, "sample": idx,
        "trajectory_sample": rows, "final_state_sample": final,
        "gradient_sample": {"step": STEPS, "values": gback},
    }


def child_env(fw):
    env = dict(os.environ)
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if fw in ("optax", "keras"):
        env["JAX_ENABLE_X64"] = "1"
        env["JAX_PLATFORMS"] = "cpu"
        if "xla_cpu_max_isa" not in env.get("XLA_FLAGS", ""):
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_max_isa=AVX2").strip()
    if fw == "keras":
        env["KERAS_BACKEND"] = "jax"
    return env


def run_jobs(jobs, out, overwrite, short_dir):
    os.makedirs(out, exist_ok=True)
    for fw in sorted(set(j[1] for j in jobs)):
        os.environ.update(child_env(fw))
    verify_generator_np()
    for name, fw, cfg, n, dt in jobs:
        path = os.path.join(out, name + ".json")
        if not overwrite and os.path.exists(path):
            print("skip (exists)", path, flush=True)
            continue
        t0 = time.time()
        write_long(path, run_job(fw, cfg, n, dt, short_dir))
        print("wrote %s (%.1f s)" % (path, time.time() - t0), flush=True)


# --------------------------------------------------------------------------
# Independent numpy check (at the sample coordinates)
# --------------------------------------------------------------------------

def check_help():
    return """Modes (every rule is element-wise, so only the sample coordinates are replayed; the gradients and
initial parameters come from the pure-Python-int generator):
  plain   every operation correctly rounded separately (numpy), in the documented order, no fused ops.
  fma     (torch) the ops ATen fuses computed as exactly rounded fused multiply-adds (exact rational
          arithmetic, one rounding); sqrt correctly rounded (numpy).
  native  (torch) as fma, but sqrt taken from torch's own CPU sqrt applied to a full n-element tensor
          holding the sample values at their own positions (same SIMD lanes / scalar tail as the run).
  div     (optax adam) bias correction as a true division t / bc instead of XLA's t * (1/bc).
  xla     (optax rmsprop / adagrad) as plain, but rsqrt taken from XLA:CPU's own jax.lax.rsqrt (eager, x64,
          AVX2 cap as in generate) on a full n-element array holding the sample values in place; the only
          non-numpy operation (XLA's f32 rsqrt is not correctly rounded).
Also checked: numpy generator == pure-Python ints (a few hundred values), and gradient_sample (the
gradient fed at step 20, read back from the framework) == the pure-Python generator, bit for bit."""


def _round_f32(fr):
    x = np.float32(float(fr))
    best = None
    for c in (np.nextafter(x, np.float32(-np.inf)), x, np.nextafter(x, np.float32(np.inf))):
        err = abs(Fraction(float(c)) - fr)
        key = (err, int(np.array(c, np.float32).view(np.uint32)) & 1)
        if best is None or key < best[0]:
            best = (key, c)
    return np.float32(best[1])


def exact_fma(a, b, c):
    """a*b + c element-wise with one correct rounding, in the dtype of the arrays."""
    a, b, c = np.broadcast_arrays(np.asarray(a), np.asarray(b), np.asarray(c))
    dt = np.result_type(a, b, c)
    out = np.empty(a.shape, dtype=dt)
    for i in np.ndindex(a.shape):
        fr = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        out[i] = _round_f32(fr) if dt == np.float32 else float(fr)
    return out


def plain_fma(a, b, c):
    return a * b + c


def torch_sqrt_in_place(n, idx):
    import torch
    torch.set_num_threads(1)
    idx = np.asarray(idx)

    def sqrt(x):
        x = np.asarray(x)
        full = np.zeros(n, dtype=x.dtype)
        full[idx] = x
        return torch.from_numpy(full).sqrt().numpy()[idx]
    return sqrt


def ref_torch_rmsprop(nm, p, grads, T, fma, sqrt):
    lr, alpha, eps, mom, centered = nm["lr"], nm["decay"], nm["eps"], nm["momentum"], nm["centered"]
    assert nm["weight_decay"] == 0 and not nm["maximize"]
    sq = np.zeros_like(p)
    ga = np.zeros_like(p)
    buf = np.zeros_like(p)
    traj = []
    for g in grads:
        sq = fma(T(1 - alpha) * g, g, sq * T(alpha))                  # mul_(alpha).addcmul_(g, g, value=1-alpha)
        if centered:
            ga = fma(T(1 - alpha), g - ga, ga)                        # lerp_(g, 1-alpha)
            den = sqrt(fma(-ga, ga, sq)) + T(eps)                     # addcmul(ga, ga, value=-1).sqrt_().add_(eps)
        else:
            den = sqrt(sq) + T(eps)                                   # sqrt().add_(eps)
        if mom > 0:
            buf = buf * T(mom) + g / den                              # mul_(m).addcdiv_(g, den)
            p = fma(buf, T(-lr), p)                                   # add_(buf, alpha=-lr)
        else:
            p = p + (T(-lr) * g) / den                                # addcdiv_(g, den, value=-lr)
        traj.append(p.copy())
    fs = {"step": len(traj), "square_avg": sq}
    if centered:
        fs["grad_avg"] = ga
    if mom > 0:
        fs["momentum_buffer"] = buf
    return traj, fs


def ref_torch_sgd(nm, p, grads, T, fma, sqrt):
    lr, m, damp, nest = nm["lr"], nm["momentum"], nm["dampening"], nm["nesterov"]
    assert nm["weight_decay"] == 0 and not nm["maximize"]
    buf = None
    traj = []
    for g in grads:
        if m != 0:
            buf = g.copy() if buf is None else fma(g, T(1 - damp), buf * T(m))
            d = fma(buf, T(m), g) if nest else buf
        else:
            d = g
        p = fma(d, T(-lr), p)
        traj.append(p.copy())
    fs = {"step": len(traj)}
    if m != 0:
        fs["momentum_buffer"] = buf
    return traj, fs


def ref_torch_adagrad(nm, p, grads, T, fma, sqrt):
    lr, lrd, eps = nm["lr"], nm["lr_decay"], nm["eps"]
    assert nm["weight_decay"] == 0 and not nm["maximize"]
    s = np.full_like(p, T(nm["initial_accumulator_value"]))
    traj = []
    for k, g in enumerate(grads):
        clr = lr / (1 + k * lrd)
        s = fma(g, g, s)                                              # addcmul_(g, g, value=1)
        std = sqrt(s) + T(eps)
        p = p + (T(-clr) * g) / std                                   # addcdiv_(g, std, value=-clr)
        traj.append(p.copy())
    return traj, {"step": len(traj), "sum": s}


def ref_torch_adam(nm, p, grads, T, fma, sqrt):
    lr, b1, b2, eps, wd = nm["lr"], nm["beta1"], nm["beta2"], nm["eps"], nm["weight_decay"]
    decoupled = nm["weight_decay_style"] == "decoupled"
    assert not nm["amsgrad"] and not nm["maximize"]
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    traj = []
    for k, g in enumerate(grads):
        step = float(k + 1)
        if wd != 0:
            if decoupled:
                p = p * T(1 - lr * wd)
            else:
                g = fma(p, T(wd), g)
        m = fma(T(1 - b1), g - m, m)                                  # lerp_, weight < 0.5
        v = fma(T(1 - b2) * g, g, v * T(b2))                          # mul_(b2).addcmul_(g, g, value=1-b2)
        bc1 = 1 - b1 ** step
        bc2 = 1 - b2 ** step
        denom = sqrt(v) / T(bc2 ** 0.5) + T(eps)
        p = p + (T(-(lr / bc1)) * m) / denom
        traj.append(p.copy())
    return traj, {"step": len(traj), "exp_avg": m, "exp_avg_sq": v}


def ref_torch_adadelta(nm, p, grads, T, fma, sqrt):
    lr, rho, eps = nm["lr"], nm["rho"], nm["eps"]
    assert nm["weight_decay"] == 0 and not nm["maximize"]
    omr = T(1 - rho)
    sq = np.zeros_like(p)
    acc = np.zeros_like(p)
    traj = []
    for g in grads:
        sq = fma(omr * g, g, sq * T(rho))
        std = sqrt(sq + T(eps))
        delta = (sqrt(acc + T(eps)) / std) * g
        acc = fma(omr * delta, delta, acc * T(rho))
        p = fma(delta, T(-lr), p)
        traj.append(p.copy())
    return traj, {"step": len(traj), "square_avg": sq, "acc_delta": acc}


def _np_rsqrt(x):
    return np.ones_like(x) / np.sqrt(x)


def xla_rsqrt_in_place(n, idx):
    """jax.lax.rsqrt (eager, XLA:CPU) on a full n-element array holding the sample values in place."""
    for k, v in child_env("optax").items():
        os.environ.setdefault(k, v)
    import jax
    import jax.numpy as jnp
    idx = np.asarray(idx)

    def rsqrt(x):
        x = np.asarray(x)
        full = np.ones(n, dtype=x.dtype)
        full[idx] = x
        return np.asarray(jax.lax.rsqrt(jnp.asarray(full)))[idx]
    return rsqrt


def ref_optax_rmsprop(nm, p, grads, T, rsqrt=_np_rsqrt):
    lr, decay, eps, mom, centered = nm["lr"], nm["decay"], nm["eps"], nm["momentum"], nm["centered"]
    assert nm["eps_in_sqrt"] and not nm["bias_correction"] and not nm["nesterov"] and nm["initial_scale"] == 0
    nu = np.zeros_like(p)
    mu = np.zeros_like(p)
    tr = np.zeros_like(p)
    traj = []
    for g in grads:
        nu = T(1 - decay) * (g * g) + T(decay) * nu
        if centered:
            mu = T(1 - decay) * g + T(decay) * mu
            s = rsqrt(nu - mu * mu + T(eps))                          # rsqrt (f64: = 1/sqrt)
        else:
            s = rsqrt(nu + T(eps))
        u = T(-lr) * (g * s)
        if mom:
            tr = u + T(mom) * tr
            u = tr
        p = p + u
        traj.append(p.copy())
    fs = {"step": len(traj), "square_avg": nu}
    if centered:
        fs["grad_avg"] = mu
    if mom:
        fs["momentum_buffer"] = tr
    return traj, fs


def ref_optax_adam(nm, p, grads, T, true_div=False):
    lr, b1, b2, eps, er = nm["lr"], nm["beta1"], nm["beta2"], nm["eps"], nm["eps_root"]
    assert nm["weight_decay"] == 0
    mu = np.zeros_like(p)
    nu = np.zeros_like(p)
    traj = []
    for k, g in enumerate(grads):
        mu = T(1 - b1) * g + T(b1) * mu
        nu = T(1 - b2) * (g * g) + T(b2) * nu
        bc1 = T(1 - b1 ** float(k + 1))
        bc2 = T(1 - b2 ** float(k + 1))
        if true_div:
            mu_hat, nu_hat = mu / bc1, nu / bc2
        else:
            mu_hat, nu_hat = mu * (T(1) / bc1), nu * (T(1) / bc2)
        u = mu_hat / (np.sqrt(nu_hat + T(er)) + T(eps))
        p = p + T(-lr) * u
        traj.append(p.copy())
    return traj, {"step": len(traj), "exp_avg": mu, "exp_avg_sq": nu}


def ref_optax_adagrad(nm, p, grads, T, rsqrt=_np_rsqrt):
    lr, eps = nm["lr"], nm["eps"]
    s = np.full_like(p, T(nm["initial_accumulator_value"]))
    traj = []
    for g in grads:
        s = g * g + s
        inv = np.where(s > 0, rsqrt(s + T(eps)), T(0)).astype(T)
        p = p + T(-lr) * (inv * g)
        traj.append(p.copy())
    return traj, {"step": len(traj), "sum": s}


def ref_optax_adadelta(nm, p, grads, T):
    lr, rho, eps = nm["lr"], nm["rho"], nm["eps"]
    assert nm["weight_decay"] == 0
    e_g = np.zeros_like(p)
    e_x = np.zeros_like(p)
    traj = []
    for g in grads:
        e_g = T(1 - rho) * (g * g) + T(rho) * e_g
        u = (np.sqrt(e_x + T(eps)) / np.sqrt(e_g + T(eps))) * g
        e_x = T(1 - rho) * (u * u) + T(rho) * e_x
        p = p + T(-lr) * u
        traj.append(p.copy())
    return traj, {"step": len(traj), "square_avg": e_g, "acc_delta": e_x}


def ref_optax_lion(nm, p, grads, T):
    lr, b1, b2 = nm["lr"], nm["beta1"], nm["beta2"]
    assert nm["weight_decay"] == 0
    mu = np.zeros_like(p)
    traj = []
    for g in grads:
        u = np.sign(T(1.0 - b1) * g + T(b1) * mu).astype(T)
        mu = T(1 - b2) * g + T(b2) * mu
        p = p + T(-lr) * u
        traj.append(p.copy())
    return traj, {"step": len(traj), "exp_avg": mu}


def ref_keras_rmsprop(nm, p, grads, T):
    lr = T(np.float32(nm["lr"]))                                      # float32 lr variable, cast to dtype
    rho, eps, mom = T(nm["decay"]), T(nm["eps"]), T(nm["momentum"])
    omr = T(1 - nm["decay"])
    v = np.zeros_like(p)
    a = np.zeros_like(p)
    mb = np.zeros_like(p)
    traj = []
    for g in grads:
        v = rho * v + omr * (g * g)
        if nm["centered"]:
            a = rho * a + omr * g
            den = v - a * a + eps
        else:
            den = v + eps
        inc = (lr * g) / np.sqrt(den)
        if nm["momentum"] > 0:
            mb = mom * mb + inc
            p = p - mb
        else:
            p = p - inc
        traj.append(p.copy())
    fs = {"step": len(traj), "square_avg": v}
    if nm["centered"]:
        fs["grad_avg"] = a
    if nm["momentum"] > 0:
        fs["momentum_buffer"] = mb
    return traj, fs


TORCH_REFS = {"rmsprop": ref_torch_rmsprop, "sgd": ref_torch_sgd, "adagrad": ref_torch_adagrad,
              "adam": ref_torch_adam, "adamw": ref_torch_adam, "adadelta": ref_torch_adadelta}
OPTAX_REFS = {"rmsprop": ref_optax_rmsprop, "adagrad": ref_optax_adagrad, "adadelta": ref_optax_adadelta,
              "lion": ref_optax_lion}


def modes_for(d):
    if d["framework"] == "torch":
        return ["plain", "fma", "native"]
    if d["framework"] == "optax" and d["normalized"].get("algorithm") in ("adam", "adamw"):
        return ["plain", "div"]
    if d["framework"] == "optax" and d["normalized"].get("algorithm", "rmsprop") in ("rmsprop", "adagrad"):
        return ["plain", "xla"]
    return ["plain"]


def load_check_inputs(d):
    T = np.float32 if d["dtype"] == "float32" else np.float64
    n = d["shape"][0]
    idx = d["sample"]
    assert d["generator"] == GENERATOR, "unknown generator parameters"
    assert idx == sample_indices(n), "sample differs from the documented rule"
    assert d["steps"] == STEPS and d["sample_steps"] == SAMPLE_STEPS
    p0 = np.array([param_py(i, T) for i in idx], dtype=T)
    grads = [np.array([grad_py(k, i, n, T) for i in idx], dtype=T) for k in range(d["steps"])]
    return T, n, idx, p0, grads


def check_file(d, mode, inputs):
    T, n, idx, p0, grads = inputs
    fw = d["framework"]
    nm = d["normalized"]
    alg = nm.get("algorithm", "rmsprop")
    if fw == "torch":
        fma = plain_fma if mode == "plain" else exact_fma
        sqrt = torch_sqrt_in_place(n, idx) if mode == "native" else np.sqrt
        traj, fs = TORCH_REFS[alg](nm, p0.copy(), grads, T, fma, sqrt)
    elif fw == "optax" and alg in ("adam", "adamw"):
        traj, fs = ref_optax_adam(nm, p0.copy(), grads, T, true_div=(mode == "div"))
    elif fw == "optax" and mode == "xla":
        traj, fs = OPTAX_REFS[alg](nm, p0.copy(), grads, T, rsqrt=xla_rsqrt_in_place(n, idx))
    elif fw == "optax":
        traj, fs = OPTAX_REFS[alg](nm, p0.copy(), grads, T)
    elif fw == "keras":
        traj, fs = ref_keras_rmsprop(nm, p0.copy(), grads, T)
    else:
        raise SystemExit("unsupported framework %s" % fw)
    mine = np.array([traj[s - 1] for s in d["sample_steps"]], dtype=T)
    ref = np.array(d["trajectory_sample"], dtype=np.float64).astype(T)
    lr = float(nm["lr"])
    dev = float(np.max(np.abs(mine.astype(np.float64) - ref.astype(np.float64)))) / lr
    ndiff = int(np.count_nonzero(mine.view(_uint(T)) != ref.view(_uint(T))))
    sdiff = 0
    for k, v in d["final_state_sample"].items():
        if k == "step":
            sdiff += int(v != fs["step"])
        else:
            a = np.array(v, dtype=np.float64).astype(T)
            sdiff += int(np.count_nonzero(a.view(_uint(T)) != np.asarray(fs[k], dtype=T).view(_uint(T))))
    assert set(d["final_state_sample"]) == set(fs), (set(d["final_state_sample"]), set(fs))
    return dev, ndiff, mine.size, sdiff


def cmd_check(args):
    files = []
    for f in args.files:
        files += sorted(glob.glob(os.path.join(f, "*.json"))) if os.path.isdir(f) else [f]
    nvals = verify_generator_np()
    print("generator: numpy uint64 == pure-Python ints on %d values and sampled rows" % nvals)
    print("%-44s %-6s %11s %11s %7s %5s" % ("file", "mode", "maxdev/lr", "traj_diff", "state", "grad"))
    worst = {}
    bad_grad = 0
    for f in files:
        with open(f) as fh:
            d = json.load(fh)
        inputs = load_check_inputs(d)
        T, n, idx, p0, grads = inputs
        gs = d["gradient_sample"]
        gfile = np.array(gs["values"], dtype=np.float64).astype(T)
        gok = np.array_equal(gfile.view(_uint(T)), grads[gs["step"] - 1].view(_uint(T)))
        bad_grad += not gok
        name = os.path.basename(f)[:-5]
        for mode in (modes_for(d) if args.mode == "all" else [args.mode]):
            if mode not in modes_for(d):
                continue
            dev, nd, tot, sd = check_file(d, mode, inputs)
            key = (d["framework"], d["dtype"], mode)
            if key not in worst or dev > worst[key][0]:
                worst[key] = (dev, name)
            print("%-44s %-6s %11.3e %5d/%-5d %7s %5s" % (name, mode, dev, nd, tot,
                                                          "same" if sd == 0 else "%d diff" % sd,
                                                          "ok" if gok else "DIFF"), flush=True)
    print("worst trajectory deviation in units of lr (framework dtype mode):")
    for k in sorted(worst):
        print("  %-6s %-8s %-7s %.3e  %s" % (k + worst[k]))
    if bad_grad:
        print("gradient_sample differs from the generator in %d files" % bad_grad)
        return 1
    return 0


# --------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="run the frameworks and write the long vectors")
    g.add_argument("--out", default="reference/vectors_long")
    g.add_argument("--short-dir", default="reference/vectors",
                   help="committed short vectors the metadata is copied from")
    g.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    g.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    g.add_argument("--only", nargs="*", default=None)
    g.add_argument("--no-overwrite", action="store_true")
    g.add_argument("--in-process", action="store_true")
    lp = sub.add_parser("list", help="list the file names")
    lp.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    c = sub.add_parser("check", help="numpy re-implementation check", description=check_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("files", nargs="+", help="long vector files or directories")
    c.add_argument("--mode", choices=["plain", "fma", "native", "div", "xla", "all"], default="all")
    args = ap.parse_args(argv)

    if args.cmd == "check":
        return cmd_check(args)
    fws = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    for f in fws:
        if f not in CONFIGS:
            ap.error("unknown framework %r" % f)
    jobs = [j for j in all_jobs() if j[1] in fws]
    if args.cmd == "list":
        for j in jobs:
            print(j[0])
        return 0
    sizes = set(int(s) for s in args.sizes.split(","))
    jobs = [j for j in jobs if j[3] in sizes]
    if args.only:
        want = set(x[:-5] if x.endswith(".json") else x for x in args.only)
        unknown = want - set(j[0] for j in all_jobs())
        if unknown:
            ap.error("unknown names: %s" % ", ".join(sorted(unknown)))
        jobs = [j for j in jobs if j[0] in want]
    if args.in_process:
        run_jobs(jobs, args.out, not args.no_overwrite, args.short_dir)
        return 0
    rc = 0
    for fw in fws:
        names = [j[0] for j in jobs if j[1] == fw]
        if not names:
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "generate", "--in-process", "--out", args.out,
               "--short-dir", args.short_dir, "--frameworks", fw, "--sizes", args.sizes, "--only"] + names
        if args.no_overwrite:
            cmd.append("--no-overwrite")
        r = subprocess.run(cmd, env=child_env(fw))
        if r.returncode != 0:
            print("framework %s failed with exit code %d" % (fw, r.returncode), file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
