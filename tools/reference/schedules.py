#!/usr/bin/env python3
"""Learning-rate schedule golden values from torch.optim.lr_scheduler -> reference/schedules.json.

For each case an SGD optimizer (lr 0.1, momentum 0.9) runs the standard loop

    for k in range(steps):
        lrs[k] = optimizer.param_groups[0]["lr"]        # the lr optimizer step k uses
        optimizer.step()
        scheduler.step()

so lrs[k] is the learning rate of the (k+1)-th optimizer.step().  OneCycleLR also cycles the
momentum (it overwrites the optimizer's momentum with max_momentum at construction), recorded
the same way as "momentums".  Values are Python floats as PyTorch computes them (most schedules
recursively, each lr from the previous one, so they differ from the closed form by rounding);
"closed_form_max_rel_diff" reports how far the recursive values are from the scheduler's own
_get_closed_form_lr() where it has one.

Usage (repository root):
  python tools/reference/schedules.py --out reference/schedules.json
  python tools/reference/schedules.py --out /tmp/s.json --compare reference/schedules.json
"""

import argparse
import json
import math
import os
import sys

BASE_LR = 0.1
STEPS = 120

# name, class, kwargs (names are the keys crates/rmsprop/tests/schedules.rs knows)
CASES = [
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

SEQUENTIAL_KWARGS = dict(schedulers=["LinearLR(start_factor=0.01, total_iters=10)",
                                     "CosineAnnealingLR(T_max=110, eta_min=0.0)"], milestones=[10])

NOTES = {
    "cosine": ("recursive (chainable) form; past T_max it rises again (period 2*T_max): lr returns to base_lr "
               "at k = 2*T_max = 100"),
    "cosine_warm_restarts": "restarts at k = 10, 30, 70 (T_i = 10, 20, 40); closed form per epoch (not recursive)",
    "one_cycle": ("defaults: pct_start 0.3, cos anneal, div_factor 25 (initial lr 0.004), final_div_factor 1e4 "
                  "(min lr 4e-7), cycle_momentum True: momentum 0.95 -> 0.85 -> 0.95; the peak is at step "
                  "pct_start*total_steps - 1 = 35, the end at total_steps - 1 = 119; the base_lr 0.1 of the optimizer is "
                  "ignored (OneCycle sets the lr itself)"),
    "one_cycle_linear_three_phase": ("three_phase, linear: lr rises to max_lr at step 29 (pct_start*120 - 1), "
                                     "falls back to the initial lr 0.004 at step 58 (2*pct_start*120 - 2), then to "
                                     "the min lr 4e-7 at step 119; momentum mirrors it (0.85 at step 29, 0.95 from 58)"),
    "warmup_then_cosine": ("SequentialLR: at construction it resets lr to initial_lr, undoes the child "
                           "schedulers' initial steps (last_epoch -= 1) and re-runs only the first one's initial "
                           "step; at the milestone (k = 10) it calls the cosine child's _update_lr(0): last_epoch "
                           "= 0 and, because CosineAnnealingLR has _get_closed_form_lr, the closed form at epoch 0 "
                           "= its base_lr 0.1 (the warmup's last value, 0.0901 at k = 9, would have reached 0.1 at k = 10 anyway), then the cosine's "
                           "recursive steps; its T_max counts from the milestone"),
}


def build(torch, name, cls, kwargs, opt):
    lr_sched = torch.optim.lr_scheduler
    if cls == "SequentialLR":
        return lr_sched.SequentialLR(opt, [lr_sched.LinearLR(opt, start_factor=0.01, total_iters=10),
                                           lr_sched.CosineAnnealingLR(opt, T_max=110, eta_min=0.0)],
                                     milestones=[10]), SEQUENTIAL_KWARGS
    return getattr(lr_sched, cls)(opt, **kwargs), kwargs


def closed_form(torch, name, cls, kwargs, k):
    """The scheduler's own closed form at epoch k, or None."""
    if cls in ("SequentialLR", "OneCycleLR", "CosineAnnealingWarmRestarts"):
        return None
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=BASE_LR, momentum=0.9)
    s, _ = build(torch, name, cls, kwargs, opt)
    if not hasattr(s, "_get_closed_form_lr"):
        return None
    s.last_epoch = k
    return float(s._get_closed_form_lr()[0])


def run():
    import torch
    out = []
    for name, cls, kwargs in CASES:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=BASE_LR, momentum=0.9)
        sched, kw = build(torch, name, cls, kwargs, opt)
        lrs, moms = [], []
        for _ in range(STEPS):
            lrs.append(float(opt.param_groups[0]["lr"]))
            moms.append(float(opt.param_groups[0]["momentum"]))
            opt.step()
            sched.step()
        case = {"name": name, "class": "torch.optim.lr_scheduler." + cls, "kwargs": kw, "base_lr": BASE_LR,
                "steps": STEPS, "lrs": lrs}
        if cls == "OneCycleLR":
            case["momentums"] = moms
        cf = [closed_form(torch, name, cls, kwargs, k) for k in range(STEPS)]
        if all(c is not None for c in cf):
            case["closed_form_max_rel_diff"] = max(abs(a - b) / abs(b) if b else abs(a - b) for a, b in zip(lrs, cf))
        if name in NOTES:
            case["note"] = NOTES[name]
        out.append(case)
    return {"torch_version": torch.__version__,
            "note": ("lrs[k] is param_groups[0]['lr'] during optimizer step k (scheduler.step() after each step); "
                     "SGD(lr=0.1, momentum=0.9); OneCycleLR cases also record momentums[k] = "
                     "param_groups[0]['momentum'] during step k. Generated by tools/reference/schedules.py."),
            "schedules": out}


def compare(mine, path):
    other = json.load(open(path))
    theirs = {c["name"]: c for c in other["schedules"]}
    ok = True
    for c in mine["schedules"]:
        t = theirs.get(c["name"])
        if t is None:
            print("%-30s missing in %s" % (c["name"], path))
            ok = False
            continue
        same = t["lrs"] == c["lrs"] and t["kwargs"] == c["kwargs"] and t["class"] == c["class"]
        worst = max(abs(a - b) for a, b in zip(c["lrs"], t["lrs"]))
        print("%-30s %s (max |diff| %.3g)" % (c["name"], "identical lrs" if same else "DIFFERENT", worst))
        ok &= same
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="reference/schedules.json")
    ap.add_argument("--compare", default=None, help="another schedules.json to compare lrs with")
    args = ap.parse_args(argv)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    data = run()
    for c in data["schedules"]:
        for v in c["lrs"] + c.get("momentums", []):
            if not math.isfinite(v):
                raise SystemExit("non-finite value in %s" % c["name"])
    with open(args.out, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print("wrote", args.out)
    for c in data["schedules"]:
        print("  %-30s lrs[0]=%-10.6g lrs[-1]=%-10.6g %s" % (
            c["name"], c["lrs"][0], c["lrs"][-1],
            ("closed-form max rel diff %.2e" % c["closed_form_max_rel_diff"])
            if "closed_form_max_rel_diff" in c else ""))
    if args.compare:
        return 0 if compare(data, args.compare) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
