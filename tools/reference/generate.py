#!/usr/bin/env python3
"""Regenerate the RMSProp gradient-replay reference vectors (schema_version 1).

Each vector runs one real framework optimizer for 200 steps on one objective in
float32 or float64, on CPU, and records the gradient fed at every step, the
parameters after every step and the final optimizer state.  See
reference/SCHEMA.md for the meaning of every field.

Frameworks and optimizers:
  torch  torch.optim.RMSprop (foreach=False)
  optax  optax.rmsprop (run eagerly, no jit around update)
  keras  keras.optimizers.RMSprop, JAX backend (apply() called eagerly)
  tf1    tf.compat.v1.train.RMSPropOptimizer, graph mode, one Session
  timm   timm.optim.RMSpropTF (foreach=False)

Objectives (gradients computed with numpy in the run's dtype at the
framework's current parameters, then fed to the optimizer):
  sphere        f = x^2 + y^2, grad = 2*x, start (5, 4)
  rosenbrock    f = (1-x)^2 + 100*(y-x^2)^2, start (-1.5, 2)
  fixed_grads8  8 coordinates whose gradients do not depend on the parameters
                (numpy default_rng(4242), see fixed_grads8_table), start all 1
  neg_*         the negated objective, used with maximize=True

Usage (from the repository root, inside the venv described in README.md):
  python tools/reference/generate.py --out reference/vectors
  python tools/reference/generate.py --out /tmp/v --frameworks torch,optax,keras
  python tools/reference/generate.py --out /tmp/v --only torch_default_sphere_f32
  python tools/reference/generate.py --list

Every framework runs in its own child process (TensorFlow, JAX and torch do
not share a process well, and JAX needs x64 enabled before import); use
--in-process to run in the current process instead.  Existing files in --out
are overwritten; pass --no-overwrite to skip them.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

STEPS = 200
SCHEMA_VERSION = 1

# --------------------------------------------------------------------------
# Objectives
# --------------------------------------------------------------------------

SPHERE_DESC = "f = x^2 + y^2 ; grad = 2*x ; start (5, 4)"
ROSEN_DESC = ("f = (1-x)^2 + 100*(y-x^2)^2 ; grad = (-2*(1-x) - 400*x*(y-x*x), 200*(y-x*x)) "
              "evaluated in dtype ; start (-1.5, 2)")
FIXED_DESC = ("gradients independent of params (pure replay): coord0 = 0, coord1 = 1, "
              "coord2 = +-1 alternating, coords3..7 = sign*10^U(-6,3) with ~10% zeros "
              "(default_rng(4242)) ; x0 = 1")


def fixed_grads8_table():
    """The fixed_grads8 gradient sequence, float64, shape (200, 8).

    rng = default_rng(4242); e = rng.uniform(-6, 3, (200, 5)); then
    sign = -1 where rng.random((200, 5)) < 0.5 else +1; then zero where
    rng.random((200, 5)) < 0.1; value = sign * (10.0 ** float(e)) with
    Python's float power.  Reproduces the existing files bit for bit.
    """
    rng = np.random.default_rng(4242)
    e = rng.uniform(-6, 3, (STEPS, 5))
    sign = np.where(rng.random((STEPS, 5)) < 0.5, -1.0, 1.0)
    zero = rng.random((STEPS, 5)) < 0.1
    g = np.zeros((STEPS, 8), dtype=np.float64)
    g[:, 1] = 1.0
    g[:, 2] = [1.0 if k % 2 == 0 else -1.0 for k in range(STEPS)]
    for k in range(STEPS):
        for j in range(5):
            g[k, 3 + j] = 0.0 if zero[k, j] else float(sign[k, j]) * (10.0 ** float(e[k, j]))
    return g


_FIXED = None


class Objective:
    """grad(params, step) -> numpy array in the params' dtype."""

    def __init__(self, name):
        self.name = name
        base = name[4:] if name.startswith("neg_") else name
        self.base = base
        self.negated = name.startswith("neg_")
        if base == "sphere":
            self.x0, desc = [5.0, 4.0], SPHERE_DESC
        elif base == "rosenbrock":
            self.x0, desc = [-1.5, 2.0], ROSEN_DESC
        elif base == "fixed_grads8":
            self.x0, desc = [1.0] * 8, FIXED_DESC
        else:
            raise ValueError(name)
        self.description = ("NEGATED objective (maximize it): -(%s)" % desc) if self.negated else desc

    def grad(self, p, k):
        dt = p.dtype.type
        if self.base == "sphere":
            g = dt(2) * p
        elif self.base == "rosenbrock":
            x, y = p[0], p[1]
            t = y - x * x
            g = np.array([dt(-2) * (dt(1) - x) - dt(400) * x * t, dt(200) * t], dtype=p.dtype)
        else:
            global _FIXED
            if _FIXED is None:
                _FIXED = fixed_grads8_table()
            g = _FIXED[k].astype(p.dtype)
        if self.negated:
            g = -g
        return np.asarray(g, dtype=p.dtype)


# --------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------

BASE_OBJECTIVES = ["sphere", "rosenbrock", "fixed_grads8"]
NEG_OBJECTIVES = ["neg_sphere", "neg_rosenbrock", "neg_fixed_grads8"]

TORCH_CONFIGS = {
    "default": dict(),
    "centered": dict(centered=True),
    "centered_momentum": dict(centered=True, momentum=0.9),
    "momentum": dict(momentum=0.9),
    "weight_decay": dict(weight_decay=0.01),
    "maximize": dict(maximize=True),
}
OPTAX_CONFIGS = {
    "default": dict(),
    "centered": dict(centered=True),
    "centered_momentum": dict(centered=True, momentum=0.9),
    "momentum": dict(momentum=0.9),
    "nesterov": dict(momentum=0.9, nesterov=True),
    "bias_correction": dict(bias_correction=True),
    "bias_correction_eps_outside": dict(bias_correction=True, eps_in_sqrt=False),
    "eps_outside_sqrt": dict(eps_in_sqrt=False),
    "initial_scale1": dict(initial_scale=1.0),
    "eps_outside_initial_scale1": dict(eps_in_sqrt=False, initial_scale=1.0),
}
KERAS_CONFIGS = {
    "default": dict(),
    "centered_momentum": dict(centered=True, momentum=0.9),
}
TF1_CONFIGS = {
    "default": dict(),
    "centered_momentum": dict(centered=True, momentum=0.9),
}
TIMM_CONFIGS = {
    "default": dict(),
    "centered_momentum": dict(centered=True, momentum=0.9),
    "momentum_lr_outside": dict(momentum=0.9, lr_in_momentum=False),
    "decoupled_weight_decay": dict(weight_decay=0.01, decoupled_decay=True),
    "weight_decay": dict(weight_decay=0.01),
}
CONFIGS = {"torch": TORCH_CONFIGS, "optax": OPTAX_CONFIGS, "keras": KERAS_CONFIGS,
           "tf1": TF1_CONFIGS, "timm": TIMM_CONFIGS}
FRAMEWORKS = list(CONFIGS)


def all_jobs():
    """All (name, framework, config, objective, dtype) in file-name order."""
    jobs = []
    for fw, cfgs in CONFIGS.items():
        for cfg in cfgs:
            objs = NEG_OBJECTIVES if cfg == "maximize" else BASE_OBJECTIVES
            for obj in objs:
                for dt in ("f32", "f64"):
                    name = "%s_%s_%s_%s" % (fw, cfg, obj, dt)
                    jobs.append((name, fw, cfg, obj, dt))
    return jobs


def normalized(lr, decay, eps, eps_in_sqrt, centered, momentum, nesterov, weight_decay,
               maximize, initial_scale, bias_correction, momentum_style, **extra):
    d = dict(lr=lr, decay=decay, eps=eps, eps_in_sqrt=eps_in_sqrt, centered=centered,
             momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, maximize=maximize,
             initial_scale=initial_scale, bias_correction=bias_correction,
             momentum_style=momentum_style)
    d.update(extra)
    return d


# --------------------------------------------------------------------------
# Update-rule texts (the framework's operation order and platform facts)
# --------------------------------------------------------------------------

TORCH_RULE = (
    "g = grad (maximize: g = -grad); step += 1; if wd: g = fma(p, wd, g) ; sq = fma((1-alpha)*g, g, sq*alpha)  "
    "[mul_ then addcmul_] ; centered: ga = fma(1-alpha, g - ga, ga) [lerp_] ; den = sqrt(fma(-ga, ga, sq)) + eps  "
    "else den = sqrt(sq) + eps ; momentum>0: buf = buf*momentum + g/den ; p = fma(buf, -lr, p)   else: "
    "p = p + ((-lr)*g)/den [addcdiv_, no fma]. Scalars are Python floats rounded to dtype. PLATFORM (torch 2.15 "
    "CPU, AVX2): the fma()s are real fused multiply-adds in ATen's kernels and torch's CPU sqrt is NOT correctly "
    "rounded (1 ulp off for ~17% of f32 / ~1.3% of f64 inputs); with those two facts the trajectory reproduces "
    "bit-exactly (see verify_vectors.py --native).")
OPTAX_RULE = (
    "nu = (1-decay)*(g*g) + decay*nu ; centered: mu = (1-decay)*g + decay*mu ; bias_correction: count += 1, "
    "r = 1/(1 - decay**count) (XLA pow, in dtype), nu_hat = nu*r, mu_hat = mu*r (jitted: the division becomes a "
    "multiply by the reciprocal) else hat = raw ; eps_in_sqrt: s = rsqrt(nu_hat [- mu_hat*mu_hat] + eps)  else "
    "s = 1/(sqrt(nu_hat [- mu_hat*mu_hat]) + eps) ; u = (-lr) * (s*g) ; momentum: tr = u + m*tr ; u = tr "
    "(nesterov: u = u + m*tr_new) ; p = p + u. Initial nu = initial_scale. Run eagerly (no jit around update). "
    "PLATFORM (XLA:CPU): subnormal inputs/results are flushed to zero (FTZ/DAZ); f32 rsqrt is not correctly "
    "rounded (<=2 ulp); sqrt and f64 rsqrt (=1/sqrt) are.")
KERAS_RULE = (
    "lr = cast(float32 lr variable, dtype)  [NB: in float64 runs lr=0.001 becomes 0.0010000000474974513] ; "
    "v = rho*v + (1-rho)*g^2 ; centered: a = rho*a + (1-rho)*g ; den = v - a^2 + eps  else den = v + eps ; "
    "inc = (lr*g)/sqrt(den) ; momentum>0: mom = momentum*mom + inc ; p = p - mom   else p = p - inc. PLATFORM "
    "(JAX backend, XLA:CPU): subnormals flushed to zero (FTZ/DAZ); sqrt correctly rounded.")
TF1_RULE = (
    "Hyperparameters: Python floats -> float32 tensors (convert_to_tensor) -> cast to the variable dtype, so "
    "float64 runs use lr = 0.009999999776482582, decay = 0.8999999761581421, momentum = 0.8999999761581421, "
    "eps = 1.000000013351432e-10 ; one_minus_decay = 1 - decay computed in dtype (f64: 0.10000002384185791, "
    "f32: 0.100000024f) ; ms starts at ONES, mg and mom at zeros ; ms = ms + (g*g - ms)*one_minus_decay ; "
    "centered: mg = mg + (g - mg)*one_minus_decay, den = (ms - mg*mg) + eps  else den = ms + eps ; "
    "mom = mom*momentum + (g*lr)/sqrt(den) ; var = var - mom  (the momentum slot exists and is used even when "
    "momentum = 0). No step counter is kept. Kernels: training_ops ApplyRMSProp / ApplyCenteredRMSProp "
    "(Eigen, CPU), graph mode via tf.compat.v1.Session, ref variables. PLATFORM (TF %s CPU): %s")
TIMM_RULE = (
    "step += 1 ; decoupled_decay and wd: p = p * c with c = dtype(1 - lr*wd) computed in Python float64 "
    "(wd = %r: 1 - lr*wd = %r) [mul_, before the gradient is used; corrected_weight_decay off] ; coupled wd: g = fma(p, wd, g) [grad.add(p, alpha=wd)] ; sq starts at ONES ; "
    "sq = fma(g*g - sq, 1-alpha, sq) [add_(g.pow(2) - sq, alpha=1-alpha); 1-alpha is the Python float "
    "0.09999999999999998 rounded to dtype] ; centered: ga = fma(g - ga, 1-alpha, ga), "
    "avg = sqrt(fma(-ga, ga, sq) + eps) [addcmul(value=-1).add(eps).sqrt_()]  else avg = sqrt(sq + eps) ; "
    "momentum>0: buf = buf*momentum ; lr_in_momentum: buf = buf + (lr*g)/avg [addcdiv_, no fma], p = p - buf  "
    "else: buf = buf + g/avg [addcdiv_], p = fma(buf, -lr, p) [add_(alpha=-lr)] ; no momentum: "
    "p = p + ((-lr)*g)/avg [addcdiv_, no fma]. Scalars are Python floats rounded to dtype; foreach=False "
    "(single-tensor path; timm's default on CPU). PLATFORM (torch %s CPU, %s): the fma()s are real fused "
    "multiply-adds in ATen's kernels; %s")


def _fmt_float(v, dtype):
    if dtype == "float32":
        s = str(np.float32(v))
    else:
        s = repr(float(v))
    if s in ("nan", "inf", "-inf"):
        raise ValueError("non-finite value %s" % s)
    return s


def _fmt_array(a, dtype):
    return "[" + ",".join(_fmt_float(x, dtype) for x in np.asarray(a).reshape(-1)) + "]"


def _fmt_value(v, dtype):
    """final_state value: int, or array in dtype."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return _fmt_array(v, dtype)


def write_vector(path, rec):
    """Write a record in the exact layout of the existing files."""
    dtype = rec["dtype"]
    head_keys = ["schema_version", "framework", "version", "optimizer", "config", "hyperparameters",
                 "normalized", "update_rule", "dtype", "objective", "objective_description",
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
        lines.append("  %s: %s%s" % (json.dumps(k), _fmt_value(v, dtype), "," if i + 1 < len(items) else ""))
    lines.append(" }")
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


NUMBER_ENCODING = {
    "float32": ("float32: shortest decimal that round-trips to the f32 (numpy); parse as f64 then round to f32 "
                "is exact"),
    "float64": "float64: shortest round-trip decimal (Python repr)",
}


def base_record(framework, version, optimizer, config, hyper, norm, rule, dtype, obj, shape,
                native_names, x0, grads, traj, final_state):
    return {
        "schema_version": SCHEMA_VERSION, "framework": framework, "version": version,
        "optimizer": optimizer, "config": config, "hyperparameters": hyper, "normalized": norm,
        "update_rule": rule, "dtype": dtype, "objective": obj.name,
        "objective_description": obj.description, "gradient_mode": "replay", "shape": shape,
        "steps": STEPS, "final_state_native_names": native_names,
        "number_encoding": NUMBER_ENCODING[dtype], "objective_data": {},
        "initial_params": x0, "gradients": grads, "trajectory": traj, "final_state": final_state,
    }


# --------------------------------------------------------------------------
# Runners: each returns a record dict
# --------------------------------------------------------------------------

def run_loop(obj, np_dtype, step_fn, read_fn):
    """Drive one run: at step k compute g at the current params, step, record."""
    grads, traj = [], []
    p = np.array(obj.x0, dtype=np_dtype)
    for k in range(STEPS):
        g = obj.grad(p, k)
        step_fn(g)
        p = np.asarray(read_fn(), dtype=np_dtype).copy()
        grads.append(g.copy())
        traj.append(p)
    return grads, traj


def run_torch(cfg, obj, dtype):
    import torch
    torch.set_num_threads(1)
    td = torch.float32 if dtype == "float32" else torch.float64
    npd = np.float32 if dtype == "float32" else np.float64
    hyper = dict(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.0, centered=False,
                 maximize=False, foreach=False)
    hyper.update(TORCH_CONFIGS[cfg])
    p = torch.tensor(obj.x0, dtype=td)
    opt = torch.optim.RMSprop([p], **hyper)

    def step(g):
        p.grad = torch.from_numpy(g.copy())
        opt.step()

    grads, traj = run_loop(obj, npd, step, lambda: p.detach().numpy())
    st = opt.state[p]
    fs = {"step": int(st["step"].item()), "square_avg": st["square_avg"].numpy()}
    names = {"step": "step", "square_avg": "square_avg"}
    if hyper["centered"]:
        fs["grad_avg"] = st["grad_avg"].numpy()
        names["grad_avg"] = "grad_avg"
    if hyper["momentum"] > 0:
        fs["momentum_buffer"] = st["momentum_buffer"].numpy()
        names["momentum_buffer"] = "momentum_buffer"
    norm = normalized(hyper["lr"], hyper["alpha"], hyper["eps"], False, hyper["centered"], hyper["momentum"],
                      False, hyper["weight_decay"], hyper["maximize"], 0.0, False, "torch")
    return base_record("torch", torch.__version__, "torch.optim.RMSprop", cfg, hyper, norm, TORCH_RULE, dtype,
                       obj, [len(obj.x0)], names, obj.x0, grads, traj, fs)


def run_optax(cfg, obj, dtype):
    import jax
    import jax.numpy as jnp
    import optax
    jd = jnp.float32 if dtype == "float32" else jnp.float64
    npd = np.float32 if dtype == "float32" else np.float64
    hyper = dict(learning_rate=0.01, decay=0.9, eps=1e-08, initial_scale=0.0, eps_in_sqrt=True,
                 centered=False, momentum=None, nesterov=False, bias_correction=False)
    hyper.update(OPTAX_CONFIGS[cfg])
    opt = optax.rmsprop(**hyper)
    params = jnp.asarray(np.array(obj.x0, dtype=npd), dtype=jd)
    box = {"p": params, "s": opt.init(params)}

    def step(g):
        u, box["s"] = opt.update(jnp.asarray(g, dtype=jd), box["s"], box["p"])
        box["p"] = optax.apply_updates(box["p"], u)

    grads, traj = run_loop(obj, npd, step, lambda: np.asarray(box["p"]))
    fs, names = {}, {}
    trace = None
    for s in jax.tree_util.tree_leaves(box["s"], is_leaf=lambda x: hasattr(x, "_fields")):
        cls = type(s).__name__
        if cls in ("ScaleByRmsState", "ScaleByRStdDevState", "ScaleByRmsWithCountState"):
            fs["square_avg"] = np.asarray(s.nu)
            names["square_avg"] = cls + ".nu"
            if "mu" in s._fields:
                fs["grad_avg"] = np.asarray(s.mu)
                names["grad_avg"] = cls + ".mu"
            if "count" in s._fields:
                count = (int(np.asarray(s.count)), cls + ".count")
            else:
                count = (STEPS, "(not stored by optax; = number of updates)")
        elif cls == "TraceState":
            trace = np.asarray(s.trace)
    if trace is not None:
        fs["momentum_buffer"] = trace
        names["momentum_buffer"] = "TraceState.trace"
    fs["step"], names["step"] = count
    mom = hyper["momentum"] or 0.0
    norm = normalized(hyper["learning_rate"], hyper["decay"], hyper["eps"], hyper["eps_in_sqrt"],
                      hyper["centered"], mom, hyper["nesterov"], 0.0, False, hyper["initial_scale"],
                      hyper["bias_correction"], "optax")
    version = "optax %s / jax %s" % (optax.__version__, jax.__version__)
    return base_record("optax", version, "optax.rmsprop", cfg, hyper, norm, OPTAX_RULE, dtype, obj,
                       [len(obj.x0)], names, obj.x0, grads, traj, fs)


def run_keras(cfg, obj, dtype):
    import jax
    import keras
    npd = np.float32 if dtype == "float32" else np.float64
    hyper = dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-07, centered=False)
    hyper.update(KERAS_CONFIGS[cfg])
    var = keras.Variable(np.array(obj.x0, dtype=npd), dtype=dtype, name="p")
    opt = keras.optimizers.RMSprop(**hyper)
    opt.build([var])

    def step(g):
        opt.apply([keras.ops.convert_to_tensor(g, dtype=dtype)], [var])

    grads, traj = run_loop(obj, npd, step, lambda: keras.ops.convert_to_numpy(var.value))
    fs = {"step": int(keras.ops.convert_to_numpy(opt.iterations)),
          "square_avg": keras.ops.convert_to_numpy(opt._velocities[0].value)}
    names = {"step": "optimizer.iterations", "square_avg": "velocity"}
    if hyper["centered"]:
        fs["grad_avg"] = keras.ops.convert_to_numpy(opt._average_gradients[0].value)
        names["grad_avg"] = "average_gradient"
    if hyper["momentum"] > 0:
        fs["momentum_buffer"] = keras.ops.convert_to_numpy(opt._momentums[0].value)
        names["momentum_buffer"] = "momentum"
    lr64 = float(np.float64(np.float32(hyper["learning_rate"])))
    norm = normalized(hyper["learning_rate"], hyper["rho"], hyper["epsilon"], True, hyper["centered"],
                      hyper["momentum"], False, 0.0, False, 0.0, False, "keras", lr_as_used_in_float64=lr64)
    version = "keras %s (backend %s %s)" % (keras.__version__, keras.backend.backend(), jax.__version__)
    return base_record("keras", version, "keras.optimizers.RMSprop", cfg, hyper, norm, KERAS_RULE, dtype, obj,
                       [len(obj.x0)], names, obj.x0, grads, traj, fs)


def _tf_ftz_probe(tf):
    """Does a TF CPU kernel flush f32 subnormals to zero?  (x*0.5 on the smallest normal)"""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [8])
        y = x * tf.constant(0.5, tf.float32)
        with tf.compat.v1.Session(graph=g) as s:
            out = s.run(y, {x: np.full(8, np.finfo(np.float32).tiny, np.float32)})
    return bool(np.all(out == 0))


_TF_PLATFORM = None


def run_tf1(cfg, obj, dtype):
    global _TF_PLATFORM
    import tensorflow as tf
    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.disable_resource_variables()
    if _TF_PLATFORM is None:
        ftz = _tf_ftz_probe(tf)
        _TF_PLATFORM = (
            ("subnormal results ARE flushed to zero (TF's executor sets FTZ/DAZ; probe: float32 "
             "tiny*0.5 -> 0)" if ftz else "subnormals are NOT flushed (probe: float32 tiny*0.5 stays subnormal)")
            + "; sqrt correctly rounded; no fused multiply-adds (every vector reproduces bit for bit with "
              "plain correctly rounded arithmetic in this order, see tools/reference/numpy_check.py).")
    npd = np.float32 if dtype == "float32" else np.float64
    tfd = tf.float32 if dtype == "float32" else tf.float64
    hyper = dict(learning_rate=0.01, decay=0.9, momentum=0.0, epsilon=1e-10, use_locking=False, centered=False)
    hyper.update(TF1_CONFIGS[cfg])
    graph = tf.Graph()
    with graph.as_default():
        var = tf.compat.v1.Variable(np.array(obj.x0, dtype=npd), dtype=tfd, name="p")
        gph = tf.compat.v1.placeholder(tfd, shape=[len(obj.x0)], name="g")
        opt = tf.compat.v1.train.RMSPropOptimizer(**hyper)
        train = opt.apply_gradients([(gph, var)])
        slots = {"rms": opt.get_slot(var, "rms"), "momentum": opt.get_slot(var, "momentum")}
        if hyper["centered"]:
            slots["mg"] = opt.get_slot(var, "mg")
        init = tf.compat.v1.global_variables_initializer()
        conf = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        sess = tf.compat.v1.Session(graph=graph, config=conf)
        sess.run(init)
        grads, traj = run_loop(obj, npd, lambda g: sess.run(train, {gph: g}), lambda: sess.run(var))
        sv = sess.run(slots)
        sess.close()
    fs = {"step": STEPS, "square_avg": sv["rms"]}
    names = {"step": "(not stored by RMSPropOptimizer; = number of updates)", "square_avg": "rms"}
    if hyper["centered"]:
        fs["grad_avg"] = sv["mg"]
        names["grad_avg"] = "mg"
    fs["momentum_buffer"] = sv["momentum"]
    names["momentum_buffer"] = "momentum"
    norm = normalized(hyper["learning_rate"], hyper["decay"], hyper["epsilon"], True, hyper["centered"],
                      hyper["momentum"], False, 0.0, False, 1.0, False, "keras",
                      weight_decay_style="coupled", hyperparameter_precision="float32")
    rule = TF1_RULE % (tf.__version__, _TF_PLATFORM)
    return base_record("tf1", "tensorflow %s" % tf.__version__, "tf.compat.v1.train.RMSPropOptimizer", cfg,
                       hyper, norm, rule, dtype, obj, [len(obj.x0)], names, obj.x0, grads, traj, fs)


def run_timm(cfg, obj, dtype):
    import torch
    import timm
    from timm.optim import RMSpropTF
    torch.set_num_threads(1)
    td = torch.float32 if dtype == "float32" else torch.float64
    npd = np.float32 if dtype == "float32" else np.float64
    hyper = dict(lr=0.01, alpha=0.9, eps=1e-10, weight_decay=0.0, momentum=0.0, centered=False,
                 decoupled_decay=False, corrected_weight_decay=False, lr_in_momentum=True, caution=False,
                 foreach=False)
    hyper.update(TIMM_CONFIGS[cfg])
    p = torch.tensor(obj.x0, dtype=td)
    opt = RMSpropTF([p], **hyper)

    def step(g):
        p.grad = torch.from_numpy(g.copy())
        opt.step()

    grads, traj = run_loop(obj, npd, step, lambda: p.detach().numpy())
    st = opt.state[p]
    fs = {"step": int(st["step"].item()), "square_avg": st["square_avg"].numpy()}
    names = {"step": "step", "square_avg": "square_avg"}
    if hyper["centered"]:
        fs["grad_avg"] = st["grad_avg"].numpy()
        names["grad_avg"] = "grad_avg"
    if hyper["momentum"] > 0:
        fs["momentum_buffer"] = st["momentum_buffer"].numpy()
        names["momentum_buffer"] = "momentum_buffer"
    style = "keras" if hyper["lr_in_momentum"] else "torch"
    wd_style = "decoupled" if (hyper["decoupled_decay"] and hyper["weight_decay"] != 0) else "coupled"
    norm = normalized(hyper["lr"], hyper["alpha"], hyper["eps"], True, hyper["centered"], hyper["momentum"],
                      False, hyper["weight_decay"], False, 1.0, False, style,
                      weight_decay_style=wd_style, hyperparameter_precision="native")
    cap = torch.backends.cpu.get_cpu_capability()
    wd = hyper["weight_decay"] or 0.01
    rule = TIMM_RULE % (wd, 1.0 - hyper["lr"] * wd, torch.__version__, cap, TIMM_SQRT_NOTE % torch.__version__)
    version = "timm %s / torch %s" % (timm.__version__, torch.__version__)
    return base_record("timm", version, "timm.optim.RMSpropTF", cfg, hyper, norm, rule, dtype, obj,
                       [len(obj.x0)], names, obj.x0, grads, traj, fs)


TIMM_SQRT_NOTE = (
    "torch's CPU sqrt_ is NOT correctly rounded (measured with torch %s here: 1 ulp off for ~17%% of f32 / "
    "~1.3%% of f64 inputs; the vectors are bit-identical with ATEN_CPU_CAPABILITY=avx2); with those fma()s and torch's sqrt the "
    "trajectory reproduces bit-exactly (tools/reference/numpy_check.py --mode native); with plain correctly "
    "rounded arithmetic it drifts, by far the most where centered subtracts sq - ga*ga of nearly equal "
    "large numbers.")

RUNNERS = {"torch": run_torch, "optax": run_optax, "keras": run_keras, "tf1": run_tf1, "timm": run_timm}


def child_env(fw):
    env = dict(os.environ)
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("OMP_NUM_THREADS", "1")
    if fw in ("optax", "keras"):
        env["JAX_ENABLE_X64"] = "1"
        env["JAX_PLATFORMS"] = "cpu"
        # The existing vectors were recorded on an AVX2 machine; on an AVX-512 machine XLA:CPU's
        # float64 code differs in the last bit for some optax runs unless capped to AVX2.
        if "xla_cpu_max_isa" not in env.get("XLA_FLAGS", ""):
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_max_isa=AVX2").strip()
    if fw == "keras":
        env["KERAS_BACKEND"] = "jax"
    return env


def run_jobs(jobs, out, overwrite):
    os.makedirs(out, exist_ok=True)
    for fw in sorted(set(j[1] for j in jobs)):
        # a no-op when the parent already set them; must happen before jax/keras are imported
        os.environ.update(child_env(fw))
    for name, fw, cfg, obj, dt in jobs:
        path = os.path.join(out, name + ".json")
        if not overwrite and os.path.exists(path):
            print("skip (exists)", path, flush=True)
            continue
        rec = RUNNERS[fw](cfg, Objective(obj), "float32" if dt == "f32" else "float64")
        write_vector(path, rec)
        print("wrote", path, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="reference/vectors", help="output directory")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma list: " + ",".join(FRAMEWORKS))
    ap.add_argument("--only", nargs="*", default=None, help="file names (without .json) to generate")
    ap.add_argument("--list", action="store_true", help="list the vector names and exit")
    ap.add_argument("--no-overwrite", action="store_true", help="skip files that already exist")
    ap.add_argument("--in-process", action="store_true", help="do not spawn one child per framework")
    args = ap.parse_args(argv)

    fws = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    for f in fws:
        if f not in CONFIGS:
            ap.error("unknown framework %r" % f)
    jobs = [j for j in all_jobs() if j[1] in fws]
    if args.only:
        want = set(n[:-5] if n.endswith(".json") else n for n in args.only)
        unknown = want - set(j[0] for j in all_jobs())
        if unknown:
            ap.error("unknown vector names: %s" % ", ".join(sorted(unknown)))
        jobs = [j for j in jobs if j[0] in want]
    if args.list:
        for j in jobs:
            print(j[0])
        return 0
    if args.in_process:
        run_jobs(jobs, args.out, not args.no_overwrite)
        return 0
    rc = 0
    for fw in fws:
        names = [j[0] for j in jobs if j[1] == fw]
        if not names:
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "--in-process", "--out", args.out,
               "--frameworks", fw, "--only"] + names
        if args.no_overwrite:
            cmd.append("--no-overwrite")
        r = subprocess.run(cmd, env=child_env(fw))
        if r.returncode != 0:
            print("framework %s failed with exit code %d" % (fw, r.returncode), file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
