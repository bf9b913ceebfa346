#!/usr/bin/env python3
"""Gradient-replay vectors for the RMSProp family (SGD, Adagrad, Adam/AdamW, Adadelta,
Lion) and RMSProp under a learning-rate schedule; plus an independent numpy check of them.

Self-contained (does not import generate.py).  Same schema_version 1 layout as
reference/SCHEMA.md, with two extensions:

  * normalized.algorithm = "sgd" | "adagrad" | "adam" | "adamw" | "adadelta" |
    "lion" and that algorithm's neutral hyperparameters, every key always present:
      sgd:      lr, momentum, dampening, nesterov, weight_decay, maximize
      adagrad:  lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize
      adam(w):  lr, beta1, beta2, eps, eps_root, weight_decay, weight_decay_style,
                amsgrad, maximize
      adadelta: lr, rho, eps, weight_decay, maximize   (weight decay coupled: g + wd*p)
      lion:     lr, beta1, beta2, weight_decay         (weight decay decoupled, added to
                sign(...) before the lr; no maximize: optax has none)
    final_state: sgd: step, momentum_buffer (momentum > 0); adagrad: step, sum;
    adam(w): step, exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad); adadelta: step,
    square_avg, acc_delta (optax's e_g, e_x); lion: step, exp_avg (optax's count, mu).
  * optional top-level "lrs": [steps] the learning rate used at step k (RMSProp
    under a schedule), and "lr_schedule" describing the schedule.

File names: <framework>_<config>_<objective>_<f32|f64>.json where config starts
with the algorithm (sgd_momentum, adam_amsgrad, ...).  The scheduled RMSProp
vectors are torch_momentum_steplr_rosenbrock_* and
keras_centered_momentum_expdecay_rosenbrock_*.

Adadelta: torch.optim.Adadelta (adadelta_default, adadelta_options, adadelta_maximize) and
optax.adadelta (adadelta_default, adadelta_weight_decay); Lion: optax.lion only (lion_default
with weight_decay 0.0, lion_weight_decay) -- torch 2.15 has no torch.optim.Lion.

98 of the 148 files it writes were first recorded by an earlier, shorter script; this one
reproduces their numbers bit for bit (gradients, trajectory, final state, lrs, normalized) but writes
longer update_rule / hyperparameters texts, so regenerate into another directory (or use
--no-overwrite) rather than over the committed files.

The other 50 were recorded by this script, among them the 42 adadelta / lion files.

Usage (repository root; venv with torch 2.15, jax/optax, keras):
  python tools/reference/family.py generate --out reference/vectors --no-overwrite
  python tools/reference/family.py generate --out /tmp/v
  python tools/reference/family.py generate --out /tmp/v --only torch_sgd_default_sphere_f32
  python tools/reference/family.py list
  python tools/reference/family.py check reference/vectors/torch_sgd_*.json ...
  python tools/reference/family.py check --all reference/vectors

`generate` runs each framework in its own child process with the same
environment generate.py uses (CPU only, one thread, JAX x64 on, XLA capped to
AVX2, Keras on the JAX backend).  `check` replays each file's gradients through
a from-scratch numpy version of the documented operation order and reports the
worst deviation of the trajectory in units of normalized.lr (see check_help()).
"""

import argparse
import glob
import json
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np

STEPS = 200
SCHEMA_VERSION = 1

# --------------------------------------------------------------------------
# Objectives (identical to generate.py / the existing vectors)
# --------------------------------------------------------------------------

SPHERE_DESC = "f = x^2 + y^2 ; grad = 2*x ; start (5, 4)"
ROSEN_DESC = ("f = (1-x)^2 + 100*(y-x^2)^2 ; grad = (-2*(1-x) - 400*x*(y-x*x), 200*(y-x*x)) "
              "evaluated in dtype ; start (-1.5, 2)")
FIXED_DESC = ("gradients independent of params (pure replay): coord0 = 0, coord1 = 1, "
              "coord2 = +-1 alternating, coords3..7 = sign*10^U(-6,3) with ~10% zeros "
              "(default_rng(4242)) ; x0 = 1")


def fixed_grads8_table():
    """The fixed_grads8 gradient sequence (float64, 200 x 8), bit-identical to the existing files."""
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
    def __init__(self, name):
        self.name = name
        self.negated = name.startswith("neg_")
        self.base = name[4:] if self.negated else name
        if self.base == "sphere":
            self.x0, desc = [5.0, 4.0], SPHERE_DESC
        elif self.base == "rosenbrock":
            self.x0, desc = [-1.5, 2.0], ROSEN_DESC
        elif self.base == "fixed_grads8":
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

# SGD uses lr 1e-3 on every objective (as the committed torch_sgd_* vectors, recorded by
# family_vectors.py, do): with lr 0.01 SGD overflows to inf on Rosenbrock within 5-9 steps
# (Hessian ~1900 at the start).
SGD_LR = 1e-3

# (algorithm, framework kwargs overriding the defaults)
TORCH_FAMILY = {
    "sgd_default": ("sgd", dict(lr=SGD_LR)),
    "sgd_momentum": ("sgd", dict(lr=SGD_LR, momentum=0.9)),
    "sgd_dampening": ("sgd", dict(lr=SGD_LR, momentum=0.9, dampening=0.5)),
    "sgd_nesterov": ("sgd", dict(lr=SGD_LR, momentum=0.9, nesterov=True)),
    "sgd_weight_decay": ("sgd", dict(lr=SGD_LR, momentum=0.9, weight_decay=0.01)),
    "sgd_maximize": ("sgd", dict(lr=SGD_LR, momentum=0.9, maximize=True)),
    "adagrad_default": ("adagrad", dict(lr=0.01)),
    "adagrad_options": ("adagrad", dict(lr=0.01, lr_decay=0.01, initial_accumulator_value=0.1,
                                        weight_decay=0.01, eps=1e-10)),
    "adam_default": ("adam", dict(lr=1e-3)),
    "adam_amsgrad": ("adam", dict(lr=1e-3, amsgrad=True)),
    "adam_weight_decay": ("adam", dict(lr=1e-3, weight_decay=0.01)),
    "adamw_default": ("adamw", dict(lr=1e-3, weight_decay=0.01)),
    "adamw_amsgrad": ("adamw", dict(lr=1e-3, weight_decay=0.01, amsgrad=True)),
    "adadelta_default": ("adadelta", dict(lr=1.0)),
    "adadelta_options": ("adadelta", dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.01)),
    "adadelta_maximize": ("adadelta", dict(lr=1.0, maximize=True)),
}
OPTAX_FAMILY = {
    "adam_default": ("adam", dict(learning_rate=1e-3)),
    "adam_eps_root": ("adam", dict(learning_rate=1e-3, eps_root=1e-8)),
    "adamw_default": ("adamw", dict(learning_rate=1e-3, weight_decay=1e-4)),
    "adagrad_default": ("adagrad", dict(learning_rate=0.01)),
    "adadelta_default": ("adadelta", dict(learning_rate=1.0)),
    "adadelta_weight_decay": ("adadelta", dict(learning_rate=0.5, weight_decay=0.01)),
    # optax.lion's own default weight_decay is 1e-3: pass 0.0 for the plain rule
    "lion_default": ("lion", dict(learning_rate=1e-3, weight_decay=0.0)),
    "lion_weight_decay": ("lion", dict(learning_rate=1e-3, weight_decay=0.1)),
}
# RMSProp with a learning-rate schedule (rosenbrock only)
SCHEDULED = {
    ("torch", "momentum_steplr"): None,
    ("keras", "centered_momentum_expdecay"): None,
}
FRAMEWORKS = ["torch", "optax", "keras"]


def all_jobs():
    """(name, framework, config, objective, dtype) in file-name order."""
    jobs = []
    for fw, table in (("torch", TORCH_FAMILY), ("optax", OPTAX_FAMILY)):
        for cfg in table:
            objs = NEG_OBJECTIVES if cfg.endswith("maximize") else BASE_OBJECTIVES
            for obj in objs:
                for dt in ("f32", "f64"):
                    jobs.append(("%s_%s_%s_%s" % (fw, cfg, obj, dt), fw, cfg, obj, dt))
    for fw, cfg in SCHEDULED:
        for dt in ("f32", "f64"):
            jobs.append(("%s_%s_rosenbrock_%s" % (fw, cfg, dt), fw, cfg, "rosenbrock", dt))
    return jobs


# --------------------------------------------------------------------------
# Update-rule texts
# --------------------------------------------------------------------------

TORCH_PLATFORM = (
    " PLATFORM (torch %s CPU, %s): the fma()s are real fused multiply-adds in ATen's CPU kernels (add_/add with "
    "alpha=, addcmul_, lerp_ with weight < 0.5); addcdiv_ is p + (value*t1)/t2 with no fma; torch's CPU sqrt is NOT "
    "correctly rounded (1 ulp off for ~17%% of f32 / ~1.3%% of f64 inputs). Python-float scalars (lr, alpha=, "
    "value=, weight=, eps, momentum) are rounded to the tensor dtype when they reach the kernel; arithmetic done in "
    "Python (bias corrections, step sizes, clr, 1-beta) is float64. With those facts the trajectory reproduces "
    "bit-exactly in numpy (tools/reference/family.py check, mode native).")

SGD_RULE = (
    "torch.optim.SGD, _single_tensor_sgd (foreach=False): g = grad (maximize: g = -grad) ; wd != 0: "
    "g = fma(p, wd, g) [grad.add(p, alpha=wd)] ; momentum != 0: FIRST step: buf = g (a clone: NO dampening on the "
    "first step), later: buf = fma(g, 1-dampening, buf*momentum) [buf.mul_(momentum).add_(g, alpha=1-dampening); "
    "1-dampening is the Python float, here exact] ; nesterov: d = fma(buf, momentum, g) [g.add(buf, "
    "alpha=momentum)] else d = buf ; no momentum: d = g ; p = fma(d, -lr, p) [p.add_(d, alpha=-lr)]. "
    "torch keeps no step counter for SGD (final_state.step = number of updates).")
ADAGRAD_RULE = (
    "torch.optim.Adagrad, _single_tensor_adagrad (foreach=False): sum starts at initial_accumulator_value ; "
    "step += 1 (float32 tensor; step = step.item()) ; g = grad (maximize: -grad) ; wd != 0: g = fma(p, wd, g) "
    "[grad.add(p, alpha=wd)] ; clr = lr / (1 + (step - 1)*lr_decay) in Python float64 (so step 1 uses lr itself) ; "
    "sum = fma(g, g, sum) [addcmul_(g, g, value=1)] ; std = sqrt(sum) + eps [sqrt() then add_(eps): eps OUTSIDE "
    "the root] ; p = p + (dtype(-clr)*g)/std [addcdiv_(g, std, value=-clr), no fma].")
ADAM_RULE = (
    "torch.optim.%s, _single_tensor_adam (foreach=False, capturable=False, decoupled_weight_decay=%s): "
    "step += 1 (float32 tensor; step = step.item()) ; g = grad (maximize: -grad) ; wd != 0: coupled (Adam): "
    "g = fma(p, wd, g) [grad.add(p, alpha=wd)], decoupled (AdamW): p = p * dtype(1 - lr*wd) [mul_; 1 - lr*wd is a "
    "Python float64] ; m = fma(w1, g - m, m) with w1 = dtype(1 - beta1) [exp_avg.lerp_(g, 1-beta1); weight "
    "0.09999999999999998 < 0.5 so lerp is m + w*(g - m)] ; v = fma(dtype(1-beta2)*g, g, v*beta2) [exp_avg_sq."
    "mul_(beta2).addcmul_(g, g, value=1-beta2)] ; Python float64: bc1 = 1 - beta1**step, bc2 = 1 - beta2**step, "
    "step_size = lr / bc1, bc2_sqrt = bc2**0.5 ; amsgrad: vmax = maximum(vmax, v) [torch.maximum(out=)], "
    "denom = sqrt(vmax)/dtype(bc2_sqrt) + eps  else denom = sqrt(v)/dtype(bc2_sqrt) + eps [(sqrt() / bc2_sqrt)"
    ".add_(eps): a real division by the rounded scalar, then eps added OUTSIDE the root, after the correction] ; "
    "p = p + (dtype(-step_size)*m)/denom [addcdiv_(m, denom, value=-step_size), no fma]. The bias correction of m "
    "is folded into step_size (never materialized).")
OPTAX_PLATFORM = (
    " Run eagerly (no jit around update: every jnp op is its own XLA computation, except inside optax's own "
    "jitted helpers such as tree.bias_correction; nothing else is fused or reassociated). Python-float hyperparameters are weakly typed and become the params' dtype at the op that uses "
    "them; 1 - b is computed in Python float64 first. PLATFORM (XLA:CPU, jax %s, x64 enabled): subnormal inputs/"
    "results are flushed to zero (FTZ/DAZ); sqrt and division correctly rounded; f32 rsqrt is NOT correctly "
    "rounded (<=2 ulp), f64 rsqrt = 1/sqrt.")
OPTAX_ADAM_RULE = (
    "optax.%s = chain(scale_by_adam(b1, b2, eps, eps_root)%s, scale_by_learning_rate(lr)) ; "
    "mu = (1-b1)*g + b1*mu [tree.update_moment, order 1: g**1 is g] ; nu = (1-b2)*(g*g) + b2*nu [g**2 = g*g] ; "
    "count = count + 1 (int32) ; bc1 = dtype(1 - b1**count), bc2 = dtype(1 - b2**count) [tree.bias_correction, "
    "which is itself jax.jit(inline=True): b**count of the Python float b and the int32 count is computed in "
    "FLOAT64 (x64 on, weak float; equal to the correctly rounded pow for b = 0.9, 0.999, count <= 200), 1 - ... "
    "in float64, then .astype(dtype)] ; mu_hat = mu * (1/bc1) ; nu_hat = nu * (1/bc2) [written t / bc, but "
    "compiled inside that jit XLA multiplies by the reciprocal for arrays of 2+ elements; measured] ; "
    "u = mu_hat / (sqrt(nu_hat + eps_root) + eps) [eps_root INSIDE the root, added to the bias-corrected nu_hat; "
    "eps outside]%s ; u = (-lr) * u [scale_by_learning_rate: scale(-lr)] ; p = p + u [apply_updates]. "
    "State: ScaleByAdamState(count, mu, nu), mu/nu are the raw (uncorrected) moments = torch's exp_avg/exp_avg_sq.")
OPTAX_ADAGRAD_RULE = (
    "optax.adagrad = chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(lr)) ; "
    "sum starts at initial_accumulator_value (0.1) ; sum = g*g + sum [abs_sq(g) + sum] ; "
    "s = where(sum > 0, rsqrt(sum + eps), 0) [eps INSIDE the root, unlike torch] ; u = s*g ; u = (-lr)*u ; "
    "p = p + u. No lr_decay, no weight decay, no step counter.")
ADADELTA_RULE = (
    "torch.optim.Adadelta, _single_tensor_adadelta (foreach=False, capturable=False, differentiable=False): "
    "square_avg = acc_delta = 0 ; step += 1 (float32 tensor, not used by the arithmetic) ; g = grad (maximize: "
    "g = -grad) ; wd != 0: g = fma(p, wd, g) [grad.add(p, alpha=wd): coupled decay, before everything else] ; "
    "sq = fma(dtype(1-rho)*g, g, sq*rho) [square_avg.mul_(rho).addcmul_(g, g, value=1-rho); 1-rho is the Python "
    "float64 (0.09999999999999998 for rho 0.9, 0.050000000000000044 for 0.95), rounded to dtype, and "
    "value*g is rounded before the fused multiply-add] ; std = sqrt(sq + eps) [square_avg.add(eps).sqrt_(): eps "
    "INSIDE the root, with the NEW sq] ; d = sqrt(acc + eps) [acc_delta.add(eps).sqrt_(): the acc_delta of the "
    "PREVIOUS step, eps inside the root] ; d = (d / std) * g [delta.div_(std).mul_(g): the division first, then "
    "the product, two roundings, no fma] ; acc = fma(dtype(1-rho)*d, d, acc*rho) [acc_delta.mul_(rho).addcmul_("
    "d, d, value=1-rho): with the NEW d, before the learning rate] ; p = fma(d, -lr, p) [p.add_(d, alpha=-lr)]. "
    "State: square_avg, acc_delta, step.")
OPTAX_ADADELTA_RULE = (
    "optax.adadelta = chain(add_decayed_weights(weight_decay, mask), scale_by_adadelta(rho, eps), "
    "scale_by_learning_rate(learning_rate)) ; e_g = e_x = 0 ; wd != 0: u = g + wd*p [add_decayed_weights, "
    "BEFORE the Adadelta scaling, so the decay is coupled exactly like torch's; a constant weight_decay of 0.0 "
    "skips the op altogether] else u = g ; e_g = (1-rho)*(u*u) + rho*e_g [tree.update_moment, order 2: u**2 is "
    "u*u; 1 - rho is the Python float64 0.09999999999999998, weak-typed to dtype] ; u = (sqrt(e_x + eps) / "
    "sqrt(e_g + eps)) * u [e_x of the PREVIOUS step, the NEW e_g; eps inside both roots; the division first, "
    "then the product] ; e_x = (1-rho)*(u*u) + rho*e_x [with the new u, BEFORE the learning rate] ; u = (-lr)*u "
    "[scale_by_learning_rate: scale(-learning_rate); optax's default learning_rate=None skips this scaling "
    "entirely, i.e. behaves as lr = 1] ; p = p + u [apply_updates]. No maximize option and no step counter. "
    "State: ScaleByAdaDeltaState(e_g, e_x) = torch's square_avg, acc_delta (the same quantities; only the "
    "rounding of the moment updates differs).")
OPTAX_LION_RULE = (
    "optax.lion = chain(scale_by_lion(b1, b2, mu_dtype), add_decayed_weights(weight_decay, mask), "
    "scale_by_learning_rate(learning_rate)) ; mu = 0, count = 0 ; c = (1-b1)*g + b1*mu [1.0 - b1 is the Python "
    "float64 0.09999999999999998, weak-typed to dtype; mu of the PREVIOUS step] ; u = sign(c) [jnp.sign, "
    "mode='hard': -1, 0 or +1; sign(0) = 0, so a coordinate whose c is exactly 0 gets no sign step] ; mu = "
    "(1-b2)*g + b2*mu [tree.update_moment order 1 (g**1 is g), AFTER the sign and with b2: b1 only shapes the "
    "direction, b2 the state] ; count = count + 1 (int32, safe_increment) ; wd != 0: u = u + wd*p "
    "[add_decayed_weights AFTER the sign and BEFORE the learning rate: decoupled decay, p += -lr*(sign(c) + "
    "wd*p) with p before this step; optax's default weight_decay is 1e-3, a constant 0.0 skips the op] ; "
    "u = (-lr)*u [scale_by_learning_rate: scale(-lr)] ; p = p + u [apply_updates]. "
    "State: ScaleByLionState(count, mu).")

# RMSProp rule, verbatim from generate.py (the existing torch_* RMSProp files)
TORCH_RMSPROP_RULE = (
    "g = grad (maximize: g = -grad); step += 1; if wd: g = fma(p, wd, g) ; sq = fma((1-alpha)*g, g, sq*alpha)  "
    "[mul_ then addcmul_] ; centered: ga = fma(1-alpha, g - ga, ga) [lerp_] ; den = sqrt(fma(-ga, ga, sq)) + eps  "
    "else den = sqrt(sq) + eps ; momentum>0: buf = buf*momentum + g/den ; p = fma(buf, -lr, p)   else: "
    "p = p + ((-lr)*g)/den [addcdiv_, no fma]. Scalars are Python floats rounded to dtype. PLATFORM (torch 2.15 "
    "CPU, AVX2): the fma()s are real fused multiply-adds in ATen's kernels and torch's CPU sqrt is NOT correctly "
    "rounded (1 ulp off for ~17% of f32 / ~1.3% of f64 inputs); with those two facts the trajectory reproduces "
    "bit-exactly (see verify_vectors.py --native).")
TORCH_STEPLR_NOTE = (
    " SCHEDULE: lr at step k = optimizer.param_groups[0]['lr'] before the (k+1)-th optimizer.step() (field lrs), "
    "with StepLR(step_size=50, gamma=0.5).step() after every optimizer.step(): 0.01 for k < 50, then halved every "
    "50 steps (exact powers of two times 0.01). torch momentum_style: lr is OUTSIDE the momentum buffer "
    "(p = fma(buf, -lr_k, p)), so changing lr rescales the whole accumulated buffer at once.")
KERAS_SCHEDULED_RULE = (
    "lr_k = ExponentialDecay(initial_learning_rate=0.001, decay_steps=50, decay_rate=0.5, staircase=True) evaluated "
    "at optimizer.iterations BEFORE the increment (k = 0-based step): lr_k = 0.001 * 0.5**floor(k/50), computed in "
    "FLOAT64 [keras.ops.convert_to_tensor(0.001) is float64 under JAX x64, which the float64 runs need], then "
    "lr = cast(lr_k, dtype) ; field lrs holds that value. NB: unlike a constant learning rate (kept in a float32 "
    "Variable, so float64 runs use 0.0010000000474974513), the scheduled lr is NOT rounded to float32 in float64 "
    "runs: hyperparameter_precision native, no lr_as_used_in_float64. "
    "v = rho*v + (1-rho)*g^2 ; centered: a = rho*a + (1-rho)*g ; den = v - a^2 + eps  else den = v + eps ; "
    "inc = (lr*g)/sqrt(den) ; momentum>0: mom = momentum*mom + inc ; p = p - mom   else p = p - inc. keras "
    "momentum_style: lr is INSIDE the momentum buffer, so a new lr only scales new increments; the buffer keeps "
    "the old-lr terms. PLATFORM (JAX backend, XLA:CPU): subnormals flushed to zero (FTZ/DAZ); sqrt correctly "
    "rounded.")

# --------------------------------------------------------------------------
# Number formatting / writer (the existing files' exact layout)
# --------------------------------------------------------------------------

NUMBER_ENCODING = {
    "float32": ("float32: shortest decimal that round-trips to the f32 (numpy); parse as f64 then round to f32 "
                "is exact"),
    "float64": "float64: shortest round-trip decimal (Python repr)",
}


def _fmt_float(v, dtype):
    s = str(np.float32(v)) if dtype == "float32" else repr(float(v))
    if s in ("nan", "inf", "-inf"):
        raise ValueError("non-finite value %s" % s)
    return s


def _fmt_array(a, dtype):
    return "[" + ",".join(_fmt_float(x, dtype) for x in np.asarray(a).reshape(-1)) + "]"


def _fmt_value(v, dtype):
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return _fmt_array(v, dtype)


HEAD_KEYS = ["schema_version", "framework", "version", "optimizer", "config", "hyperparameters", "normalized",
             "update_rule", "dtype", "objective", "objective_description", "gradient_mode", "shape", "steps",
             "final_state_native_names", "number_encoding", "objective_data"]
OPTIONAL_HEAD_KEYS = ["notes", "lr_schedule"]


def write_vector(path, rec):
    dtype = rec["dtype"]
    lines = ["{"]
    for k in HEAD_KEYS + [k for k in OPTIONAL_HEAD_KEYS if k in rec]:
        lines.append(" %s: %s," % (json.dumps(k), json.dumps(rec[k])))
    if "lrs" in rec:
        lines.append(' "lrs": %s,' % _fmt_array(rec["lrs"], dtype))
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
    text = "\n".join(lines) + "\n"
    json.loads(text)  # must parse
    with open(path, "w") as f:
        f.write(text)


def base_record(framework, version, optimizer, config, hyper, norm, rule, dtype, obj, native_names,
                grads, traj, final_state, **extra):
    rec = {
        "schema_version": SCHEMA_VERSION, "framework": framework, "version": version, "optimizer": optimizer,
        "config": config, "hyperparameters": hyper, "normalized": norm, "update_rule": rule, "dtype": dtype,
        "objective": obj.name, "objective_description": obj.description, "gradient_mode": "replay",
        "shape": [len(obj.x0)], "steps": STEPS, "final_state_native_names": native_names,
        "number_encoding": NUMBER_ENCODING[dtype], "objective_data": {},
        "initial_params": obj.x0, "gradients": grads, "trajectory": traj, "final_state": final_state,
    }
    rec.update(extra)
    return rec


def run_loop(obj, np_dtype, step_fn, read_fn, lr_fn=None):
    """At step k: gradient at the current params, (record the lr), step, record params."""
    grads, traj, lrs = [], [], []
    p = np.array(obj.x0, dtype=np_dtype)
    for k in range(STEPS):
        g = obj.grad(p, k)
        if lr_fn is not None:
            lrs.append(lr_fn())
        step_fn(g)
        p = np.asarray(read_fn(), dtype=np_dtype).copy()
        if not np.all(np.isfinite(p)):
            raise RuntimeError("non-finite params at step %d" % k)
        grads.append(g.copy())
        traj.append(p)
    return grads, traj, lrs


# --------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------

def _torch_defaults(alg):
    if alg == "sgd":
        return dict(lr=SGD_LR, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
                    foreach=False)
    if alg == "adagrad":
        return dict(lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                    maximize=False, foreach=False)
    if alg == "adam":
        return dict(lr=1e-3, betas=[0.9, 0.999], eps=1e-08, weight_decay=0.0, amsgrad=False, maximize=False,
                    decoupled_weight_decay=False, foreach=False)
    if alg == "adamw":
        return dict(lr=1e-3, betas=[0.9, 0.999], eps=1e-08, weight_decay=0.01, amsgrad=False, maximize=False,
                    foreach=False)
    if alg == "adadelta":
        return dict(lr=1.0, rho=0.9, eps=1e-06, weight_decay=0.0, maximize=False, foreach=False)
    raise ValueError(alg)


def run_torch_family(cfg, obj, dtype):
    import torch
    torch.set_num_threads(1)
    alg, over = TORCH_FAMILY[cfg]
    td = torch.float32 if dtype == "float32" else torch.float64
    npd = np.float32 if dtype == "float32" else np.float64
    hyper = _torch_defaults(alg)
    hyper.update(over)
    notes = None
    kw = dict(hyper)
    if "betas" in kw:
        kw["betas"] = tuple(kw["betas"])
    p = torch.tensor(obj.x0, dtype=td)
    cls = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam,
           "adamw": torch.optim.AdamW, "adadelta": torch.optim.Adadelta}[alg]
    opt = cls([p], **kw)

    def step(g):
        p.grad = torch.from_numpy(g.copy())
        opt.step()

    grads, traj, _ = run_loop(obj, npd, step, lambda: p.detach().numpy())
    st = opt.state[p]
    fs, names = {}, {}
    if alg == "sgd":
        fs["step"], names["step"] = STEPS, "(not stored by torch.optim.SGD; = number of updates)"
        if hyper["momentum"] > 0:
            fs["momentum_buffer"], names["momentum_buffer"] = st["momentum_buffer"].numpy(), "momentum_buffer"
        norm = dict(algorithm="sgd", lr=hyper["lr"], momentum=hyper["momentum"], dampening=hyper["dampening"],
                    nesterov=hyper["nesterov"], weight_decay=hyper["weight_decay"], maximize=hyper["maximize"])
        rule = SGD_RULE
    elif alg == "adagrad":
        fs["step"], names["step"] = int(st["step"].item()), "step"
        fs["sum"], names["sum"] = st["sum"].numpy(), "sum"
        norm = dict(algorithm="adagrad", lr=hyper["lr"], lr_decay=hyper["lr_decay"],
                    weight_decay=hyper["weight_decay"], initial_accumulator_value=hyper["initial_accumulator_value"],
                    eps=hyper["eps"], maximize=hyper["maximize"])
        rule = ADAGRAD_RULE
    elif alg == "adadelta":
        fs["step"], names["step"] = int(st["step"].item()), "step"
        fs["square_avg"], names["square_avg"] = st["square_avg"].numpy(), "square_avg"
        fs["acc_delta"], names["acc_delta"] = st["acc_delta"].numpy(), "acc_delta"
        norm = dict(algorithm="adadelta", lr=hyper["lr"], rho=hyper["rho"], eps=hyper["eps"],
                    weight_decay=hyper["weight_decay"], maximize=hyper["maximize"])
        rule = ADADELTA_RULE
    else:
        fs["step"], names["step"] = int(st["step"].item()), "step"
        fs["exp_avg"], names["exp_avg"] = st["exp_avg"].numpy(), "exp_avg"
        fs["exp_avg_sq"], names["exp_avg_sq"] = st["exp_avg_sq"].numpy(), "exp_avg_sq"
        if hyper["amsgrad"]:
            fs["max_exp_avg_sq"], names["max_exp_avg_sq"] = st["max_exp_avg_sq"].numpy(), "max_exp_avg_sq"
        norm = dict(algorithm=alg, lr=hyper["lr"], beta1=hyper["betas"][0], beta2=hyper["betas"][1],
                    eps=hyper["eps"], eps_root=0.0, weight_decay=hyper["weight_decay"],
                    weight_decay_style="decoupled" if alg == "adamw" else "coupled", amsgrad=hyper["amsgrad"],
                    maximize=hyper["maximize"])
        rule = ADAM_RULE % ("AdamW" if alg == "adamw" else "Adam", "True" if alg == "adamw" else "False")
    rule += TORCH_PLATFORM % (torch.__version__, torch.backends.cpu.get_cpu_capability())
    optimizer = "torch.optim." + {"sgd": "SGD", "adagrad": "Adagrad", "adam": "Adam", "adamw": "AdamW",
                                  "adadelta": "Adadelta"}[alg]
    extra = {"notes": notes} if notes else {}
    return base_record("torch", torch.__version__, optimizer, cfg, hyper, norm, rule, dtype, obj, names,
                       grads, traj, fs, **extra)


def run_torch_scheduled(cfg, obj, dtype):
    import torch
    torch.set_num_threads(1)
    assert cfg == "momentum_steplr"
    td = torch.float32 if dtype == "float32" else torch.float64
    npd = np.float32 if dtype == "float32" else np.float64
    hyper = dict(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.9, centered=False,
                 maximize=False, foreach=False)
    p = torch.tensor(obj.x0, dtype=td)
    opt = torch.optim.RMSprop([p], **hyper)
    sched_kw = dict(step_size=50, gamma=0.5)
    sched = torch.optim.lr_scheduler.StepLR(opt, **sched_kw)

    def step(g):
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        sched.step()

    grads, traj, lrs = run_loop(obj, npd, step, lambda: p.detach().numpy(),
                                lr_fn=lambda: float(opt.param_groups[0]["lr"]))
    st = opt.state[p]
    fs = {"step": int(st["step"].item()), "square_avg": st["square_avg"].numpy(),
          "momentum_buffer": st["momentum_buffer"].numpy()}
    names = {"step": "step", "square_avg": "square_avg", "momentum_buffer": "momentum_buffer"}
    norm = dict(lr=hyper["lr"], decay=hyper["alpha"], eps=hyper["eps"], eps_in_sqrt=False, centered=False,
                momentum=hyper["momentum"], nesterov=False, weight_decay=0.0, maximize=False, initial_scale=0.0,
                bias_correction=False, momentum_style="torch")
    return base_record("torch", torch.__version__, "torch.optim.RMSprop", cfg, hyper, norm,
                       TORCH_RMSPROP_RULE + TORCH_STEPLR_NOTE, dtype, obj, names, grads, traj, fs,
                       lr_schedule={"class": "torch.optim.lr_scheduler.StepLR", "kwargs": sched_kw,
                                    "loop": "optimizer.step(); scheduler.step()"},
                       lrs=lrs)


# --------------------------------------------------------------------------
# optax
# --------------------------------------------------------------------------

def run_optax_family(cfg, obj, dtype):
    import jax
    import jax.numpy as jnp
    import optax
    alg, over = OPTAX_FAMILY[cfg]
    jd = jnp.float32 if dtype == "float32" else jnp.float64
    npd = np.float32 if dtype == "float32" else np.float64
    if alg == "adagrad":
        hyper = dict(learning_rate=0.01, initial_accumulator_value=0.1, eps=1e-07)
    elif alg == "adadelta":
        hyper = dict(learning_rate=None, rho=0.9, eps=1e-06, weight_decay=0.0, weight_decay_mask=None)
    elif alg == "lion":
        hyper = dict(learning_rate=None, b1=0.9, b2=0.99, mu_dtype=None, weight_decay=1e-3, mask=None)
    else:
        hyper = dict(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, mu_dtype=None,
                     nesterov=False)
        if alg == "adamw":
            hyper.update(weight_decay=1e-4, mask=None)
    hyper.update(over)
    opt = getattr(optax, alg)(**hyper)
    params = jnp.asarray(np.array(obj.x0, dtype=npd), dtype=jd)
    box = {"p": params, "s": opt.init(params)}

    def step(g):
        u, box["s"] = opt.update(jnp.asarray(g, dtype=jd), box["s"], box["p"])
        box["p"] = optax.apply_updates(box["p"], u)

    grads, traj, _ = run_loop(obj, npd, step, lambda: np.asarray(box["p"]))
    fs, names = {}, {}
    for s in jax.tree_util.tree_leaves(box["s"], is_leaf=lambda x: hasattr(x, "_fields")):
        cls = type(s).__name__
        if cls == "ScaleByAdamState":
            fs["step"], names["step"] = int(np.asarray(s.count)), cls + ".count"
            fs["exp_avg"], names["exp_avg"] = np.asarray(s.mu), cls + ".mu"
            fs["exp_avg_sq"], names["exp_avg_sq"] = np.asarray(s.nu), cls + ".nu"
        elif cls == "ScaleByRssState":
            fs["step"], names["step"] = STEPS, "(not stored by optax; = number of updates)"
            fs["sum"], names["sum"] = np.asarray(s.sum_of_squares), cls + ".sum_of_squares"
        elif cls == "ScaleByAdaDeltaState":
            fs["step"], names["step"] = STEPS, "(not stored by optax; = number of updates)"
            fs["square_avg"], names["square_avg"] = np.asarray(s.e_g), cls + ".e_g"
            fs["acc_delta"], names["acc_delta"] = np.asarray(s.e_x), cls + ".e_x"
        elif cls == "ScaleByLionState":
            fs["step"], names["step"] = int(np.asarray(s.count)), cls + ".count"
            fs["exp_avg"], names["exp_avg"] = np.asarray(s.mu), cls + ".mu"
    if alg == "adagrad":
        norm = dict(algorithm="adagrad", lr=hyper["learning_rate"], lr_decay=0.0, weight_decay=0.0,
                    initial_accumulator_value=hyper["initial_accumulator_value"], eps=hyper["eps"], maximize=False)
        rule = OPTAX_ADAGRAD_RULE
    elif alg == "adadelta":
        norm = dict(algorithm="adadelta", lr=hyper["learning_rate"], rho=hyper["rho"], eps=hyper["eps"],
                    weight_decay=hyper["weight_decay"], maximize=False)
        rule = OPTAX_ADADELTA_RULE
    elif alg == "lion":
        norm = dict(algorithm="lion", lr=hyper["learning_rate"], beta1=hyper["b1"], beta2=hyper["b2"],
                    weight_decay=hyper["weight_decay"])
        rule = OPTAX_LION_RULE
    else:
        wd = hyper.get("weight_decay", 0.0)
        norm = dict(algorithm=alg, lr=hyper["learning_rate"], beta1=hyper["b1"], beta2=hyper["b2"],
                    eps=hyper["eps"], eps_root=hyper["eps_root"], weight_decay=wd,
                    weight_decay_style="decoupled" if alg == "adamw" else "coupled", amsgrad=False, maximize=False)
        if alg == "adamw":
            rule = OPTAX_ADAM_RULE % ("adamw", ", add_decayed_weights(wd)",
                                      " ; u = u + wd*p [add_decayed_weights: the decay is added to the Adam "
                                      "direction BEFORE the lr scaling, i.e. p += -lr*(u + wd*p); p is the "
                                      "parameter before this step]")
        else:
            rule = OPTAX_ADAM_RULE % ("adam", "", "")
    rule += OPTAX_PLATFORM % jax.__version__
    version = "optax %s / jax %s" % (optax.__version__, jax.__version__)
    return base_record("optax", version, "optax." + alg, cfg, hyper, norm, rule, dtype, obj, names,
                       grads, traj, fs)


# --------------------------------------------------------------------------
# keras (RMSProp under ExponentialDecay)
# --------------------------------------------------------------------------

def run_keras_scheduled(cfg, obj, dtype):
    import jax
    import keras
    assert cfg == "centered_momentum_expdecay"
    npd = np.float32 if dtype == "float32" else np.float64
    sched_cfg = dict(initial_learning_rate=0.001, decay_steps=50, decay_rate=0.5, staircase=True)
    schedule = keras.optimizers.schedules.ExponentialDecay(**sched_cfg)
    hyper = dict(learning_rate={"class": "keras.optimizers.schedules.ExponentialDecay", "config": sched_cfg},
                 rho=0.9, momentum=0.9, epsilon=1e-07, centered=True)
    var = keras.Variable(np.array(obj.x0, dtype=npd), dtype=dtype, name="p")
    opt = keras.optimizers.RMSprop(learning_rate=schedule, rho=0.9, momentum=0.9, epsilon=1e-07, centered=True)
    opt.build([var])

    def step(g):
        opt.apply([keras.ops.convert_to_tensor(g, dtype=dtype)], [var])

    def lr_now():
        # what update_step sees: the schedule at the current iterations, cast to the variable dtype
        lr = keras.ops.convert_to_numpy(keras.ops.cast(opt.learning_rate, dtype))
        return float(lr)

    grads, traj, lrs = run_loop(obj, npd, step, lambda: keras.ops.convert_to_numpy(var.value), lr_fn=lr_now)
    fs = {"step": int(keras.ops.convert_to_numpy(opt.iterations)),
          "square_avg": keras.ops.convert_to_numpy(opt._velocities[0].value),
          "grad_avg": keras.ops.convert_to_numpy(opt._average_gradients[0].value),
          "momentum_buffer": keras.ops.convert_to_numpy(opt._momentums[0].value)}
    names = {"step": "optimizer.iterations", "square_avg": "velocity", "grad_avg": "average_gradient",
             "momentum_buffer": "momentum"}
    norm = dict(lr=0.001, decay=0.9, eps=1e-07, eps_in_sqrt=True, centered=True, momentum=0.9, nesterov=False,
                weight_decay=0.0, maximize=False, initial_scale=0.0, bias_correction=False, momentum_style="keras",
                hyperparameter_precision="native")
    version = "keras %s (backend %s %s)" % (keras.__version__, keras.backend.backend(), jax.__version__)
    return base_record("keras", version, "keras.optimizers.RMSprop", cfg, hyper, norm,
                       KERAS_SCHEDULED_RULE, dtype, obj, names, grads, traj, fs,
                       lr_schedule={"class": "keras.optimizers.schedules.ExponentialDecay", "kwargs": sched_cfg,
                                    "evaluated_at": "optimizer.iterations before the step (0-based k)",
                                    "precision": "float64 (JAX x64), then cast to dtype"},
                       lrs=lrs)


def run_job(fw, cfg, obj, dtype):
    if fw == "torch":
        if cfg in TORCH_FAMILY:
            return run_torch_family(cfg, obj, dtype)
        return run_torch_scheduled(cfg, obj, dtype)
    if fw == "optax":
        return run_optax_family(cfg, obj, dtype)
    if fw == "keras":
        return run_keras_scheduled(cfg, obj, dtype)
    raise ValueError(fw)


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


def run_jobs(jobs, out, overwrite):
    os.makedirs(out, exist_ok=True)
    for fw in sorted(set(j[1] for j in jobs)):
        os.environ.update(child_env(fw))
    for name, fw, cfg, obj, dt in jobs:
        path = os.path.join(out, name + ".json")
        if not overwrite and os.path.exists(path):
            print("skip (exists)", path, flush=True)
            continue
        rec = run_job(fw, cfg, Objective(obj), "float32" if dt == "f32" else "float64")
        write_vector(path, rec)
        print("wrote", path, flush=True)


# --------------------------------------------------------------------------
# Independent numpy check
# --------------------------------------------------------------------------

def check_help():
    return """Modes:
  plain   every operation correctly rounded separately (numpy), in the documented order, no fused ops.
  fma     (torch) the ops ATen fuses computed as exactly rounded fused multiply-adds (exact rational
          arithmetic, one rounding); sqrt correctly rounded (numpy).
  native  (torch) as fma, but sqrt taken from torch's own CPU sqrt (not correctly rounded); the only
          non-numpy operation.
  div     (optax adam/adamw) bias correction as a true division t / bc instead of XLA's t * (1/bc); for
          information (the parameters are ~1e3 ulps of the update coarser, so both usually match).
Scalars computed in Python by the framework (bias corrections, clr, 1-beta) are computed the same way
here (Python float64), then rounded to the dtype where the framework rounds them."""


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


def _torch_sqrt(x):
    import torch
    return torch.from_numpy(np.array(x)).sqrt().numpy()


def ref_torch_sgd(d, T, fma, sqrt):
    n = d["normalized"]
    lr, m, damp, nest, wd, mx = n["lr"], n["momentum"], n["dampening"], n["nesterov"], n["weight_decay"], n["maximize"]
    p = np.array(d["initial_params"], dtype=T)
    buf = None
    traj = []
    for g in d["gradients"]:
        g = np.array(g, dtype=T)
        if mx:
            g = -g
        if wd != 0:
            g = fma(p, T(wd), g)
        if m != 0:
            if buf is None:
                buf = g.copy()
            else:
                buf = fma(g, T(1 - damp), buf * T(m))
            dirn = fma(buf, T(m), g) if nest else buf
        else:
            dirn = g
        p = fma(dirn, T(-lr), p)
        traj.append(p.copy())
    fs = {"step": len(traj)}
    if m != 0:
        fs["momentum_buffer"] = buf
    return traj, fs


def ref_torch_adagrad(d, T, fma, sqrt):
    n = d["normalized"]
    lr, lrd, wd, eps, mx = n["lr"], n["lr_decay"], n["weight_decay"], n["eps"], n["maximize"]
    p = np.array(d["initial_params"], dtype=T)
    s = np.full_like(p, T(n["initial_accumulator_value"]))
    traj = []
    for k, g in enumerate(d["gradients"]):
        step = float(k + 1)
        g = np.array(g, dtype=T)
        if mx:
            g = -g
        if wd != 0:
            g = fma(p, T(wd), g)
        clr = lr / (1 + (step - 1) * lrd)
        s = fma(g, g, s)
        std = sqrt(s) + T(eps)
        p = p + (T(-clr) * g) / std
        traj.append(p.copy())
    return traj, {"step": len(traj), "sum": s}


def ref_torch_adam(d, T, fma, sqrt):
    n = d["normalized"]
    lr, b1, b2, eps, wd = n["lr"], n["beta1"], n["beta2"], n["eps"], n["weight_decay"]
    decoupled = n["weight_decay_style"] == "decoupled"
    ams, mx = n["amsgrad"], n["maximize"]
    p = np.array(d["initial_params"], dtype=T)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    traj = []
    for k, g in enumerate(d["gradients"]):
        step = float(k + 1)
        g = np.array(g, dtype=T)
        if mx:
            g = -g
        if wd != 0:
            if decoupled:
                p = p * T(1 - lr * wd)
            else:
                g = fma(p, T(wd), g)
        m = fma(T(1 - b1), g - m, m)                    # lerp_, weight < 0.5
        v = fma(T(1 - b2) * g, g, v * T(b2))            # mul_(b2).addcmul_(g, g, value=1-b2)
        bc1 = 1 - b1 ** step
        bc2 = 1 - b2 ** step
        step_size = lr / bc1
        bc2_sqrt = bc2 ** 0.5
        if ams:
            vmax = np.maximum(vmax, v)
            denom = sqrt(vmax) / T(bc2_sqrt) + T(eps)
        else:
            denom = sqrt(v) / T(bc2_sqrt) + T(eps)
        p = p + (T(-step_size) * m) / denom
        traj.append(p.copy())
    fs = {"step": len(traj), "exp_avg": m, "exp_avg_sq": v}
    if ams:
        fs["max_exp_avg_sq"] = vmax
    return traj, fs


def ref_torch_rmsprop(d, T, fma, sqrt):
    n = d["normalized"]
    lrs = d.get("lrs") or [n["lr"]] * d["steps"]
    alpha, eps, mom = n["decay"], n["eps"], n["momentum"]
    p = np.array(d["initial_params"], dtype=T)
    sq = np.zeros_like(p)
    buf = np.zeros_like(p)
    traj = []
    for k, g in enumerate(d["gradients"]):
        g = np.array(g, dtype=T)
        sq = fma(T(1 - alpha) * g, g, sq * T(alpha))
        den = sqrt(sq) + T(eps)
        buf = buf * T(mom) + g / den
        p = fma(buf, T(-lrs[k]), p)
        traj.append(p.copy())
    return traj, {"step": len(traj), "square_avg": sq, "momentum_buffer": buf}


def ref_torch_adadelta(d, T, fma, sqrt):
    n = d["normalized"]
    lr, rho, eps, wd, mx = n["lr"], n["rho"], n["eps"], n["weight_decay"], n["maximize"]
    omr = T(1 - rho)                                    # Python float64 1 - rho, rounded to dtype
    p = np.array(d["initial_params"], dtype=T)
    sq = np.zeros_like(p)
    acc = np.zeros_like(p)
    traj = []
    for g in d["gradients"]:
        g = np.array(g, dtype=T)
        if mx:
            g = -g
        if wd != 0:
            g = fma(p, T(wd), g)                        # grad.add(p, alpha=wd)
        sq = fma(omr * g, g, sq * T(rho))               # mul_(rho).addcmul_(g, g, value=1-rho)
        std = sqrt(sq + T(eps))
        delta = sqrt(acc + T(eps))                      # previous acc_delta
        delta = (delta / std) * g                       # div_(std).mul_(g)
        acc = fma(omr * delta, delta, acc * T(rho))     # mul_(rho).addcmul_(d, d, value=1-rho)
        p = fma(delta, T(-lr), p)                       # p.add_(delta, alpha=-lr)
        traj.append(p.copy())
    return traj, {"step": len(traj), "square_avg": sq, "acc_delta": acc}


def ref_optax_adadelta(d, T):
    n = d["normalized"]
    lr, rho, eps, wd = n["lr"], n["rho"], n["eps"], n["weight_decay"]
    p = np.array(d["initial_params"], dtype=T)
    e_g = np.zeros_like(p)
    e_x = np.zeros_like(p)
    traj = []
    for g in d["gradients"]:
        u = np.array(g, dtype=T)
        if wd != 0:
            u = u + T(wd) * p                           # add_decayed_weights (skipped for 0.0)
        e_g = T(1 - rho) * (u * u) + T(rho) * e_g
        u = (np.sqrt(e_x + T(eps)) / np.sqrt(e_g + T(eps))) * u
        e_x = T(1 - rho) * (u * u) + T(rho) * e_x
        u = T(-lr) * u
        p = p + u
        traj.append(p.copy())
    return traj, {"step": len(traj), "square_avg": e_g, "acc_delta": e_x}


def ref_optax_lion(d, T):
    n = d["normalized"]
    lr, b1, b2, wd = n["lr"], n["beta1"], n["beta2"], n["weight_decay"]
    p = np.array(d["initial_params"], dtype=T)
    mu = np.zeros_like(p)
    traj = []
    for g in d["gradients"]:
        g = np.array(g, dtype=T)
        c = T(1.0 - b1) * g + T(b1) * mu
        u = np.sign(c).astype(T)                        # sign(0) = 0
        mu = T(1 - b2) * g + T(b2) * mu
        if wd != 0:
            u = u + T(wd) * p
        u = T(-lr) * u
        p = p + u
        traj.append(p.copy())
    return traj, {"step": len(traj), "exp_avg": mu}


def ref_optax_adam(d, T, true_div=False):
    n = d["normalized"]
    lr, b1, b2, eps, er, wd = n["lr"], n["beta1"], n["beta2"], n["eps"], n["eps_root"], n["weight_decay"]
    p = np.array(d["initial_params"], dtype=T)
    mu = np.zeros_like(p)
    nu = np.zeros_like(p)
    traj = []
    for k, g in enumerate(d["gradients"]):
        g = np.array(g, dtype=T)
        mu = T(1 - b1) * g + T(b1) * mu
        nu = T(1 - b2) * (g * g) + T(b2) * nu
        c = k + 1
        bc1 = T(1 - b1 ** float(c))                     # float64 pow, then .astype(dtype)
        bc2 = T(1 - b2 ** float(c))
        if true_div:
            mu_hat, nu_hat = mu / bc1, nu / bc2
        else:                                           # what XLA makes of t / bc inside the jit
            mu_hat, nu_hat = mu * (T(1) / bc1), nu * (T(1) / bc2)
        u = mu_hat / (np.sqrt(nu_hat + T(er)) + T(eps))
        if wd != 0:
            u = u + T(wd) * p
        u = T(-lr) * u
        p = p + u
        traj.append(p.copy())
    return traj, {"step": len(traj), "exp_avg": mu, "exp_avg_sq": nu}


def ref_optax_adagrad(d, T):
    n = d["normalized"]
    lr, eps = n["lr"], n["eps"]
    p = np.array(d["initial_params"], dtype=T)
    s = np.full_like(p, T(n["initial_accumulator_value"]))
    traj = []
    for g in d["gradients"]:
        g = np.array(g, dtype=T)
        s = g * g + s
        inv = np.where(s > 0, T(1) / np.sqrt(s + T(eps)), T(0)).astype(T)
        u = T(-lr) * (inv * g)
        p = p + u
        traj.append(p.copy())
    return traj, {"step": len(traj), "sum": s}


def ref_keras_rmsprop(d, T):
    n = d["normalized"]
    lrs = [T(x) for x in d["lrs"]]
    rho, eps, mom = T(n["decay"]), T(n["eps"]), T(n["momentum"])
    omr = T(1 - n["decay"])
    p = np.array(d["initial_params"], dtype=T)
    v = np.zeros_like(p)
    a = np.zeros_like(p)
    mb = np.zeros_like(p)
    traj = []
    for k, g in enumerate(d["gradients"]):
        g = np.array(g, dtype=T)
        v = rho * v + omr * (g * g)
        a = rho * a + omr * g
        den = v - a * a + eps
        inc = (lrs[k] * g) / np.sqrt(den)
        mb = mom * mb + inc
        p = p - mb
        traj.append(p.copy())
    return traj, {"step": len(traj), "square_avg": v, "grad_avg": a, "momentum_buffer": mb}


def expected_lrs(d):
    """Recompute the schedule independently (for the scheduled vectors)."""
    T = np.float32 if d["dtype"] == "float32" else np.float64
    if d["framework"] == "torch":
        return [0.01 * 0.5 ** (k // 50) for k in range(d["steps"])]
    return [float(T(0.001 * 0.5 ** (k // 50))) for k in range(d["steps"])]


def check_file(path, mode):
    d = json.load(open(path))
    T = np.float32 if d["dtype"] == "float32" else np.float64
    fw = d["framework"]
    alg = d["normalized"].get("algorithm", "rmsprop")
    fma = exact_fma if mode in ("fma", "native") else plain_fma
    sqrt = _torch_sqrt if mode == "native" else np.sqrt
    if fw == "torch":
        fn = {"sgd": ref_torch_sgd, "adagrad": ref_torch_adagrad, "adam": ref_torch_adam,
              "adamw": ref_torch_adam, "rmsprop": ref_torch_rmsprop, "adadelta": ref_torch_adadelta}[alg]
        traj, fs = fn(d, T, fma, sqrt)
    elif fw == "optax" and alg in ("adam", "adamw"):
        traj, fs = ref_optax_adam(d, T, true_div=(mode == "div"))
    elif fw == "optax" and alg == "adagrad":
        traj, fs = ref_optax_adagrad(d, T)
    elif fw == "optax" and alg == "adadelta":
        traj, fs = ref_optax_adadelta(d, T)
    elif fw == "optax" and alg == "lion":
        traj, fs = ref_optax_lion(d, T)
    elif fw == "keras":
        traj, fs = ref_keras_rmsprop(d, T)
    else:
        raise SystemExit("%s: unsupported" % path)
    ref = np.array(d["trajectory"], dtype=np.float64).astype(T)
    mine = np.array(traj, dtype=T)
    lr = float(d["normalized"]["lr"])
    dev = float(np.max(np.abs(mine.astype(np.float64) - ref.astype(np.float64)))) / lr
    rows = np.nonzero((mine != ref).any(axis=1))[0]
    first = int(rows[0]) if len(rows) else None
    fs_same = True
    for k, v in d["final_state"].items():
        if isinstance(v, list):
            fs_same &= np.array_equal(np.array(v, dtype=np.float64).astype(T), fs[k])
        else:
            fs_same &= v == fs[k]
    lrs_ok = None
    if "lrs" in d:
        lrs_ok = np.array_equal(np.array(d["lrs"], dtype=np.float64).astype(T),
                                np.array(expected_lrs(d), dtype=np.float64).astype(T))
    return fw, alg, d["dtype"], dev, first, len(rows), fs_same, lrs_ok


def modes_for(path):
    d = json.load(open(path))
    fw = d["framework"]
    if fw == "torch":
        return ["plain", "fma", "native"]
    if fw == "optax" and d["normalized"].get("algorithm") in ("adadelta", "lion"):
        return ["plain"]
    if fw == "optax":
        return ["plain", "div"]
    return ["plain"]


def cmd_check(args):
    files = []
    for f in args.files:
        if os.path.isdir(f):
            names = sorted(glob.glob(os.path.join(f, "*.json")))
            mine = set(j[0] for j in all_jobs())
            files += [x for x in names if os.path.basename(x)[:-5] in mine]
        else:
            files.append(f)
    print("%-48s %-6s %12s %6s %6s %6s %5s" % ("file", "mode", "maxdev/lr", "first", "ndiff", "state", "lrs"))
    worst = {}
    for f in files:
        modes = modes_for(f) if args.mode == "all" else [args.mode]
        for mode in modes:
            fw, alg, dt, dev, first, nd, fs_same, lrs_ok = check_file(f, mode)
            key = (fw, alg, dt, mode)
            if key not in worst or dev > worst[key][0]:
                worst[key] = (dev, os.path.basename(f)[:-5])
            print("%-48s %-6s %12.3e %6s %6d %6s %5s" % (
                os.path.basename(f)[:-5], mode, dev, "-" if first is None else first, nd,
                "same" if fs_same else "DIFF", "-" if lrs_ok is None else ("ok" if lrs_ok else "DIFF")))
    print("worst deviation in units of lr (framework algorithm dtype mode):")
    for k in sorted(worst):
        print("  %-6s %-8s %-8s %-7s %.3e  %s" % (k + worst[k]))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="run the frameworks and write the vectors")
    g.add_argument("--out", default="reference/vectors")
    g.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    g.add_argument("--only", nargs="*", default=None)
    g.add_argument("--no-overwrite", action="store_true")
    g.add_argument("--in-process", action="store_true")
    lp = sub.add_parser("list", help="list the vector names")
    lp.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    c = sub.add_parser("check", help="numpy re-implementation check", description=check_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("files", nargs="+", help="vector files or a directory (its family/scheduled vectors)")
    c.add_argument("--mode", choices=["plain", "fma", "native", "div", "all"], default="all")
    args = ap.parse_args(argv)

    if args.cmd == "check":
        return cmd_check(args)
    fws = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    jobs = [j for j in all_jobs() if j[1] in fws]
    if args.cmd == "list":
        for j in jobs:
            print(j[0])
        return 0
    if args.only:
        want = set(n[:-5] if n.endswith(".json") else n for n in args.only)
        unknown = want - set(j[0] for j in all_jobs())
        if unknown:
            ap.error("unknown vector names: %s" % ", ".join(sorted(unknown)))
        jobs = [j for j in jobs if j[0] in want]
    if args.in_process:
        run_jobs(jobs, args.out, not args.no_overwrite)
        return 0
    rc = 0
    for fw in fws:
        names = [j[0] for j in jobs if j[1] == fw]
        if not names:
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "generate", "--in-process", "--out", args.out,
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
