"""Record replay vectors for RMSProp's family (torch SGD/Adagrad/Adam/AdamW, optax adam/adamw/adagrad),
RMSProp under a learning-rate schedule, and torch.optim.lr_scheduler values.

Same schema as generate.py (reference/SCHEMA.md), with `normalized.algorithm` naming the optimizer
and its neutral hyperparameters, and an optional top-level `lrs` (the learning rate of every step).

Usage, from the repository root, with the venv of tools/reference/README.md:
    python tools/reference/family_vectors.py --out reference/vectors --schedules reference/schedules.json
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import generate as G  # noqa: E402  (objectives, number formatting, file layout)

for fw in ("torch", "optax"):
    os.environ.update(G.child_env(fw))

TORCH_FAMILY = {
    # name: (class, kwargs, algorithm)
    "sgd_default": ("SGD", dict(lr=1e-3), "sgd"),
    "sgd_momentum": ("SGD", dict(lr=1e-3, momentum=0.9), "sgd"),
    "sgd_dampening": ("SGD", dict(lr=1e-3, momentum=0.9, dampening=0.5), "sgd"),
    "sgd_nesterov": ("SGD", dict(lr=1e-3, momentum=0.9, nesterov=True), "sgd"),
    "sgd_weight_decay": ("SGD", dict(lr=1e-3, momentum=0.9, weight_decay=0.01), "sgd"),
    "adagrad_default": ("Adagrad", dict(lr=0.01), "adagrad"),
    "adagrad_options": ("Adagrad", dict(lr=0.01, lr_decay=0.01, initial_accumulator_value=0.1,
                                        weight_decay=0.01, eps=1e-10), "adagrad"),
    "adam_default": ("Adam", dict(lr=1e-3), "adam"),
    "adam_amsgrad": ("Adam", dict(lr=1e-3, amsgrad=True), "adam"),
    "adam_weight_decay": ("Adam", dict(lr=1e-3, weight_decay=0.01), "adam"),
    "adamw_default": ("AdamW", dict(lr=1e-3, weight_decay=0.01), "adamw"),
    "adamw_amsgrad": ("AdamW", dict(lr=1e-3, weight_decay=0.01, amsgrad=True), "adamw"),
}

TORCH_FAMILY_RULES = {
    "sgd": ("g = grad (maximize: -grad); wd: g = g + wd*p [add(alpha), fma] ; momentum: buf = g at the first step, "
            "else buf = buf*momentum + (1-dampening)*g [mul_, add_(alpha), fma] ; nesterov: g = g + momentum*buf "
            "else g = buf ; p = p + (-lr)*g [add_(alpha), fma]"),
    "adagrad": ("step += 1 ; g = grad (maximize: -grad) ; wd: g = g + wd*p ; clr = lr / (1 + (step-1)*lr_decay) "
                "(Python float) ; sum = sum + g*g [addcmul_, fma] ; std = sqrt(sum) + eps ; "
                "p = p + (-clr)*g/std [addcdiv_]"),
    "adam": ("step += 1 ; g = grad (maximize: -grad) ; Adam wd: g = g + wd*p ; AdamW: p = p*(1 - lr*wd) ; "
             "m = lerp(m, g, 1-b1) [fma] ; v = v*b2 + (1-b2)*g*g [mul_, addcmul_, fma] ; bc1 = 1 - b1**step, "
             "bc2 = 1 - b2**step (Python floats) ; step_size = lr/bc1 ; amsgrad: vmax = max(vmax, v), "
             "denom = sqrt(vmax)/sqrt(bc2) + eps else denom = sqrt(v)/sqrt(bc2) + eps ; "
             "p = p + (-step_size)*m/denom [addcdiv_]"),
}

OPTAX_FAMILY = {
    "adam_default": ("adam", dict(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0), "adam"),
    "adam_eps_root": ("adam", dict(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, eps_root=1e-8), "adam"),
    "adamw_default": ("adamw", dict(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
                                    weight_decay=1e-4), "adamw"),
    "adagrad_default": ("adagrad", dict(learning_rate=0.01, initial_accumulator_value=0.1, eps=1e-7), "adagrad"),
}

OPTAX_FAMILY_RULES = {
    "adam": ("mu = (1-b1)*g + b1*mu ; nu = (1-b2)*(g*g) + b2*nu ; count += 1 ; mu_hat = mu / (1 - b1**count), "
             "nu_hat = nu / (1 - b2**count) (in dtype) ; u = mu_hat / (sqrt(nu_hat + eps_root) + eps) ; "
             "adamw: u = u + wd*p ; p = p + (-lr)*u. Eager (no jit around update)."),
    "adagrad": ("sum = g*g + sum ; u = g * rsqrt(sum + eps) where sum > 0 else 0 ; p = p + (-lr)*u"),
}


def norm_sgd(h, maximize=False):
    return dict(algorithm="sgd", lr=h["lr"], momentum=h.get("momentum", 0.0), dampening=h.get("dampening", 0.0),
                nesterov=h.get("nesterov", False), weight_decay=h.get("weight_decay", 0.0), maximize=maximize)


def norm_adagrad(h, maximize=False):
    return dict(algorithm="adagrad", lr=h["lr"], lr_decay=h.get("lr_decay", 0.0),
                weight_decay=h.get("weight_decay", 0.0),
                initial_accumulator_value=h.get("initial_accumulator_value", 0.0), eps=h.get("eps", 1e-10),
                maximize=maximize)


def norm_adam(h, algorithm, maximize=False):
    decoupled = algorithm == "adamw"
    return dict(algorithm=algorithm, lr=h["lr"], beta1=0.9, beta2=0.999, eps=h.get("eps", 1e-8), eps_root=0.0,
                weight_decay=h.get("weight_decay", 0.01 if decoupled else 0.0),
                weight_decay_style="decoupled" if decoupled else "coupled", amsgrad=h.get("amsgrad", False),
                maximize=maximize)


def run_torch_family(cfg, obj, dtype):
    import torch
    torch.set_num_threads(1)
    cls, kwargs, algorithm = TORCH_FAMILY[cfg]
    td = torch.float32 if dtype == "float32" else torch.float64
    npd = np.float32 if dtype == "float32" else np.float64
    p = torch.tensor(obj.x0, dtype=td)
    opt = getattr(torch.optim, cls)([p], foreach=False, **kwargs)
    hyper = {k: v for k, v in opt.defaults.items() if isinstance(v, (int, float, bool, str, type(None), tuple))}

    def step(g):
        p.grad = torch.from_numpy(g.copy())
        opt.step()

    grads, traj = G.run_loop(obj, npd, step, lambda: p.detach().numpy())
    st = opt.state[p]
    fs, names = {}, {}
    for key in ("step", "momentum_buffer", "sum", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        if key in st and st[key] is not None:
            v = st[key]
            fs[key] = int(v.item()) if key == "step" else v.numpy()
            names[key] = key
    if "step" not in fs:
        fs["step"], names["step"] = G.STEPS, "(not stored by torch SGD; = number of updates)"
    if algorithm == "sgd":
        norm = norm_sgd(kwargs)
    elif algorithm == "adagrad":
        norm = norm_adagrad(kwargs)
    else:
        norm = norm_adam(kwargs, algorithm)
    return G.base_record("torch", torch.__version__, "torch.optim." + cls, cfg, hyper, norm,
                         TORCH_FAMILY_RULES["adam" if algorithm == "adamw" else algorithm], dtype, obj,
                         [len(obj.x0)], names, obj.x0, grads, traj, fs)


def run_optax_family(cfg, obj, dtype):
    import jax
    import jax.numpy as jnp
    import optax
    fn, kwargs, algorithm = OPTAX_FAMILY[cfg]
    jd = jnp.float32 if dtype == "float32" else jnp.float64
    npd = np.float32 if dtype == "float32" else np.float64
    opt = getattr(optax, fn)(**kwargs)
    box = {"p": jnp.asarray(np.array(obj.x0, dtype=npd), dtype=jd)}
    box["s"] = opt.init(box["p"])

    def step(g):
        u, box["s"] = opt.update(jnp.asarray(g, dtype=jd), box["s"], box["p"])
        box["p"] = optax.apply_updates(box["p"], u)

    grads, traj = G.run_loop(obj, npd, step, lambda: np.asarray(box["p"]))
    fs, names = {}, {}
    for s in jax.tree_util.tree_leaves(box["s"], is_leaf=lambda x: hasattr(x, "_fields")):
        cls = type(s).__name__
        if cls == "ScaleByAdamState":
            fs["exp_avg"], names["exp_avg"] = np.asarray(s.mu), cls + ".mu"
            fs["exp_avg_sq"], names["exp_avg_sq"] = np.asarray(s.nu), cls + ".nu"
            fs["step"], names["step"] = int(np.asarray(s.count)), cls + ".count"
        elif cls == "ScaleByRssState":
            fs["sum"], names["sum"] = np.asarray(s.sum_of_squares), cls + ".sum_of_squares"
            fs["step"], names["step"] = G.STEPS, "(not stored by optax; = number of updates)"
    lr = kwargs["learning_rate"]
    if algorithm == "adagrad":
        norm = dict(algorithm="adagrad", lr=lr, lr_decay=0.0, weight_decay=0.0,
                    initial_accumulator_value=kwargs["initial_accumulator_value"], eps=kwargs["eps"],
                    maximize=False)
    else:
        norm = dict(algorithm=algorithm, lr=lr, beta1=kwargs["b1"], beta2=kwargs["b2"], eps=kwargs["eps"],
                    eps_root=kwargs["eps_root"], weight_decay=kwargs.get("weight_decay", 0.0),
                    weight_decay_style="decoupled" if algorithm == "adamw" else "coupled", amsgrad=False,
                    maximize=False)
    version = "optax %s / jax %s" % (optax.__version__, jax.__version__)
    return G.base_record("optax", version, "optax." + fn, cfg, kwargs, norm,
                         OPTAX_FAMILY_RULES["adam" if algorithm == "adamw" else algorithm], dtype, obj,
                         [len(obj.x0)], names, obj.x0, grads, traj, fs)


def run_torch_rmsprop_steplr(obj, dtype):
    """torch RMSprop(lr=0.01, momentum=0.9) under StepLR(step_size=50, gamma=0.5): lr outside the buffer."""
    import torch
    torch.set_num_threads(1)
    td = torch.float32 if dtype == "float32" else torch.float64
    npd = np.float32 if dtype == "float32" else np.float64
    p = torch.tensor(obj.x0, dtype=td)
    hyper = dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.9, centered=False, maximize=False,
                 foreach=False)
    opt = torch.optim.RMSprop([p], **hyper)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=50, gamma=0.5)
    lrs = []

    def step(g):
        lrs.append(opt.param_groups[0]["lr"])
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        sched.step()

    grads, traj = G.run_loop(obj, npd, step, lambda: p.detach().numpy())
    st = opt.state[p]
    fs = {"step": int(st["step"].item()), "square_avg": st["square_avg"].numpy(),
          "momentum_buffer": st["momentum_buffer"].numpy()}
    names = {k: k for k in fs}
    norm = G.normalized(0.01, 0.99, 1e-8, False, False, 0.9, False, 0.0, False, 0.0, False, "torch")
    rec = G.base_record("torch", torch.__version__, "torch.optim.RMSprop + StepLR(50, 0.5)", "momentum_steplr",
                        hyper, norm, G.TORCH_RULE, dtype, obj, [len(obj.x0)], names, obj.x0, grads, traj, fs)
    rec["lrs"] = lrs
    return rec


def schedules():
    import torch
    cases = [
        ("step", "StepLR", dict(step_size=30, gamma=0.1)),
        ("multistep", "MultiStepLR", dict(milestones=[30, 80], gamma=0.1)),
        ("exponential", "ExponentialLR", dict(gamma=0.95)),
        ("cosine", "CosineAnnealingLR", dict(T_max=50, eta_min=1e-4)),
        ("cosine_warm_restarts", "CosineAnnealingWarmRestarts", dict(T_0=10, T_mult=2, eta_min=1e-5)),
        ("linear_warmup", "LinearLR", dict(start_factor=0.1, end_factor=1.0, total_iters=10)),
        ("constant", "ConstantLR", dict(factor=0.5, total_iters=20)),
        ("one_cycle", "OneCycleLR", dict(max_lr=0.1, total_steps=120)),
        ("one_cycle_linear_three_phase", "OneCycleLR",
         dict(max_lr=0.1, total_steps=120, anneal_strategy="linear", three_phase=True, pct_start=0.25)),
        ("warmup_then_cosine", "SequentialLR", None),
    ]
    out = []
    for name, cls, kwargs in cases:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        if cls == "SequentialLR":
            kwargs = dict(schedulers=["LinearLR(start_factor=0.01, total_iters=10)",
                                      "CosineAnnealingLR(T_max=110, eta_min=0.0)"], milestones=[10])
            sched = torch.optim.lr_scheduler.SequentialLR(
                opt, [torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=10),
                      torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=110, eta_min=0.0)], milestones=[10])
        else:
            sched = getattr(torch.optim.lr_scheduler, cls)(opt, **kwargs)
        lrs = []
        for _ in range(120):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out.append(dict(name=name, **{"class": "torch.optim.lr_scheduler." + cls}, kwargs=kwargs, base_lr=0.1,
                        steps=120, lrs=lrs))
    return dict(torch_version=torch.__version__,
                note="lrs[k] is param_groups[0]['lr'] during optimizer step k (scheduler.step() after each step)",
                schedules=out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="reference/vectors")
    ap.add_argument("--schedules", default="reference/schedules.json")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    jobs = []
    for cfg in TORCH_FAMILY:
        for o in G.BASE_OBJECTIVES:
            jobs.append(("torch_%s_%s" % (cfg, o), lambda d, c=cfg, o=o: run_torch_family(c, G.Objective(o), d)))
    for cfg in OPTAX_FAMILY:
        for o in G.BASE_OBJECTIVES:
            jobs.append(("optax_%s_%s" % (cfg, o), lambda d, c=cfg, o=o: run_optax_family(c, G.Objective(o), d)))
    jobs.append(("torch_momentum_steplr_rosenbrock",
                 lambda d: run_torch_rmsprop_steplr(G.Objective("rosenbrock"), d)))
    for name, fn in jobs:
        for dt, dtype in (("f32", "float32"), ("f64", "float64")):
            path = os.path.join(args.out, "%s_%s.json" % (name, dt))
            rec = fn(dtype)
            if "lrs" in rec:
                lrs = rec.pop("lrs")
                G.write_vector(path, rec)
                with open(path) as f:
                    data = json.load(f)
                data["lrs"] = lrs
                with open(path, "w") as f:
                    json.dump(data, f)
            else:
                G.write_vector(path, rec)
            print("wrote", path, flush=True)
    with open(args.schedules, "w") as f:
        json.dump(schedules(), f, indent=1)
    print("wrote", args.schedules)


if __name__ == "__main__":
    main()
