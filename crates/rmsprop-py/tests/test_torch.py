"""The PyTorch drop-ins (`rmsprop.torch`) against `torch.optim` itself, on real models."""

import copy
import inspect

import pytest

torch = pytest.importorskip("torch")
import rmsprop.torch as rt  # noqa: E402

NAMES = ["RMSprop", "SGD", "Adagrad", "Adam", "AdamW", "Adadelta"]

# (class, options): RMSprop plain, centered, momentum, weight decay, maximize, and the family.
CONFIGS = [
    ("RMSprop", {}),
    ("RMSprop", dict(centered=True)),
    ("RMSprop", dict(momentum=0.9)),
    ("RMSprop", dict(centered=True, momentum=0.5, weight_decay=0.01)),
    ("RMSprop", dict(weight_decay=0.1, alpha=0.9, eps=1e-6)),
    ("RMSprop", dict(maximize=True, lr=1e-3)),
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=1e-3, momentum=0.9, nesterov=True, maximize=True)),
    ("Adagrad", dict(lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("Adam", dict(weight_decay=0.01)),
    ("Adam", dict(amsgrad=True, betas=(0.8, 0.99), decoupled_weight_decay=True, weight_decay=0.1)),
    ("AdamW", dict(amsgrad=True)),
    ("Adadelta", dict(weight_decay=0.01)),
]


def tolerance(dtype, options):
    # `rmsprop replay`'s tolerances, in units of lr: float64 1e-10; float32 1e-2, 1e-1 centered.
    if dtype == torch.float64:
        return 1e-10
    return 1e-1 if options.get("centered") else 1e-2


class Gru(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(4, 8, batch_first=True)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def make(model, dtype, seed=0):
    torch.manual_seed(seed)
    if model == "mlp":
        net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
        x = torch.randn(32, 6)
    else:
        net = Gru()
        x = torch.randn(16, 5, 4)
    y = torch.randn(x.shape[0], 1)
    return net.to(dtype), x.to(dtype), y.to(dtype)


def loss_of(net, x, y):
    return ((net(x) - y) ** 2).mean()


def copy_state(src_opt, src_params, dst_opt, dst_params):
    """Makes `dst_opt`'s state equal `src_opt`'s (same keys, copied values)."""
    for a, b in zip(src_params, dst_params):
        dst_opt.state[b] = {k: v.clone() for k, v in src_opt.state[a].items()}


def per_step_deviation(name, options, model, dtype, steps=200, groups=None, schedulers=None):
    """Steps torch's optimizer and ours from the same parameters, state and gradient at every
    step (ours is reset to torch's before each step, so an error is one step's, not one grown
    by the training dynamics) and returns the worst deviation in units of lr."""
    net_t, x, y = make(model, dtype)
    net_o = copy.deepcopy(net_t)
    pt, po = list(net_t.parameters()), list(net_o.parameters())
    if groups:
        gt = [dict(g, params=[pt[i] for i in g["params"]]) for g in groups]
        go = [dict(g, params=[po[i] for i in g["params"]]) for g in groups]
    else:
        gt, go = pt, po
    ot = getattr(torch.optim, name)(gt, **options)
    oo = getattr(rt, name)(go, **options)
    st = [make_s(ot) for make_s in schedulers] if schedulers else []
    so = [make_s(oo) for make_s in schedulers] if schedulers else []
    index = {id(a): i for i, a in enumerate(pt)}
    worst = 0.0
    for _ in range(steps):
        with torch.no_grad():
            for a, b in zip(pt, po):
                b.copy_(a)
        copy_state(ot, pt, oo, po)
        ot.zero_grad()
        # Maximizing the negated loss keeps `maximize` runs from diverging.
        (-loss_of(net_t, x, y) if options.get("maximize") else loss_of(net_t, x, y)).backward()
        for a, b in zip(pt, po):
            b.grad = a.grad.clone()
        ot.step()
        oo.step()
        for s in st + so:
            s.step()
        assert [g["lr"] for g in ot.param_groups] == [g["lr"] for g in oo.param_groups]
        for group_t in ot.param_groups:
            lr = group_t["lr"]
            for a in group_t["params"]:
                b = po[index[id(a)]]
                worst = max(worst, float((a - b).detach().abs().max()) / lr)
                for key, value in ot.state[a].items():
                    if key != "step":
                        # State tensors agree as closely, relative to their size.
                        scale = float(value.abs().max()) + 1e-30
                        dev = float((value - oo.state[b][key]).abs().max()) / scale
                        assert dev <= max(tolerance(dtype, options), 1e-12) * 10, key
                    else:
                        assert float(value) == float(oo.state[b][key])
    return worst


def test_constructors_have_torchs_signatures_and_defaults():
    for name in NAMES:
        ours = inspect.signature(getattr(rt, name).__init__).parameters
        theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
        assert [(p.name, p.kind, p.default) for p in ours.values()] == [
            (p.name, p.kind, p.default) for p in theirs.values()
        ], name
        assert issubclass(getattr(rt, name), torch.optim.Optimizer)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("model", ["mlp", "gru"])
@pytest.mark.parametrize("name,options", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_each_step_agrees_with_torch_on_a_real_model(name, options, model, dtype):
    worst = per_step_deviation(name, options, model, dtype)
    assert worst <= tolerance(dtype, options), f"{worst:.3e} lr"


def test_free_running_training_follows_torch():
    # 200 steps each on its own trajectory: RMSprop's rounding differences stay tiny.
    for options in (dict(), dict(centered=True, momentum=0.9)):
        net_t, x, y = make("mlp", torch.float64)
        net_o = copy.deepcopy(net_t)
        ot = torch.optim.RMSprop(net_t.parameters(), **options)
        oo = rt.RMSprop(net_o.parameters(), **options)
        for _ in range(200):
            for net, opt in ((net_t, ot), (net_o, oo)):
                opt.zero_grad()
                loss_of(net, x, y).backward()
                opt.step()
        worst = max(float((a - b).detach().abs().max()) for a, b in zip(net_t.parameters(), net_o.parameters()))
        assert worst <= 1e-10, worst


def test_param_groups_with_their_own_rates_and_schedulers():
    groups = [dict(params=[0, 1]), dict(params=[2, 3], lr=1e-3, momentum=0.5)]
    for dtype in (torch.float64, torch.float32):
        worst = per_step_deviation(
            "RMSprop", dict(lr=1e-2, momentum=0.9), "mlp", dtype, steps=60, groups=groups,
            schedulers=[lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5)],
        )
        assert worst <= tolerance(dtype, {}), worst
        # OneCycleLR also cycles RMSprop's momentum, group by group.
        worst = per_step_deviation(
            "RMSprop", dict(lr=1e-2, momentum=0.9), "mlp", dtype, steps=60, groups=groups,
            schedulers=[lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=[0.05, 0.01], total_steps=60)],
        )
        assert worst <= tolerance(dtype, {}), worst
    worst = per_step_deviation(
        "Adam", dict(lr=1e-2), "gru", torch.float64, steps=40, groups=groups[:1] + [dict(params=list(range(2, 6)), lr=1e-3)],
        schedulers=[lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=40)],
    )
    assert worst <= 1e-10, worst


@pytest.mark.parametrize("name,options", [
    ("RMSprop", dict(centered=True, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("Adagrad", dict()),
    ("Adam", dict(amsgrad=True)),
    ("AdamW", dict()),
    ("Adadelta", dict()),
])
def test_state_dicts_interchange_with_torch_both_ways_mid_run(name, options):
    net_a, x, y = make("mlp", torch.float64)
    net_b = copy.deepcopy(net_a)

    def steps(net, opt, n):
        for _ in range(n):
            opt.zero_grad()
            loss_of(net, x, y).backward()
            opt.step()

    ta = getattr(torch.optim, name)(net_a.parameters(), **options)
    steps(net_a, ta, 20)
    # torch -> ours, mid-run.
    ob = getattr(rt, name)(net_b.parameters(), **options)
    with torch.no_grad():
        for a, b in zip(net_a.parameters(), net_b.parameters()):
            b.copy_(a)
    ob.load_state_dict(copy.deepcopy(ta.state_dict()))
    sd_t, sd_o = ta.state_dict(), ob.state_dict()
    assert sd_t["param_groups"] == sd_o["param_groups"]
    assert {k: set(v) for k, v in sd_t["state"].items()} == {k: set(v) for k, v in sd_o["state"].items()}
    steps(net_a, ta, 20)
    steps(net_b, ob, 20)
    worst = max(float((a - b).detach().abs().max()) for a, b in zip(net_a.parameters(), net_b.parameters()))
    assert worst <= 1e-10, worst
    # ours -> torch, mid-run.
    tc = getattr(torch.optim, name)(net_b.parameters(), **options)
    tc.load_state_dict(copy.deepcopy(ob.state_dict()))
    net_c = net_b
    net_d = copy.deepcopy(net_b)
    od = getattr(rt, name)(net_d.parameters(), **options)
    od.load_state_dict(copy.deepcopy(ob.state_dict()))
    steps(net_c, tc, 20)
    steps(net_d, od, 20)
    worst = max(float((a - b).detach().abs().max()) for a, b in zip(net_c.parameters(), net_d.parameters()))
    assert worst <= 1e-10, worst


def test_closures_zero_grad_and_deepcopy():
    net, x, y = make("mlp", torch.float32)
    opt = rt.Adam(net.parameters(), lr=1e-2)

    def closure():
        opt.zero_grad()
        loss = loss_of(net, x, y)
        loss.backward()
        return loss

    first = opt.step(closure).item()
    for _ in range(20):
        last = opt.step(closure).item()
    assert last < first
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    clone = copy.deepcopy(opt)
    assert clone.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


def snapshot(net, opt):
    params = [p.detach().clone() for p in net.parameters()]
    state = {k: {n: v.clone() for n, v in s.items()} for k, s in opt.state_dict()["state"].items()}
    return params, state


def assert_unchanged(net, opt, before):
    params, state = snapshot(net, opt)
    assert all(torch.equal(a, b) for a, b in zip(params, before[0]))
    assert state.keys() == before[1].keys()
    for k in state:
        assert state[k].keys() == before[1][k].keys()
        assert all(torch.equal(state[k][n], before[1][k][n]) for n in state[k])


def two_groups(dtype=torch.float64):
    net, x, y = make("mlp", dtype)
    params = list(net.parameters())
    opt = rt.RMSprop([dict(params=params[:2]), dict(params=params[2:], lr=1e-3)], momentum=0.9)
    opt.zero_grad()
    loss_of(net, x, y).backward()
    opt.step()
    opt.zero_grad()
    loss_of(net, x, y).backward()
    return net, params, opt


def test_what_the_fused_step_cannot_take_is_refused_by_name_and_changes_nothing():
    for option in ("capturable", "differentiable"):
        with pytest.raises(ValueError, match=f"`{option}=True` is not supported"):
            rt.RMSprop([torch.nn.Parameter(torch.ones(3))], **{option: True})
    with pytest.raises(ValueError, match=r"invalid hyperparameter `rho` \(torch's `alpha`\) = 1.5"):
        rt.RMSprop([torch.nn.Parameter(torch.ones(3))], alpha=1.5)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        rt.SGD([torch.nn.Parameter(torch.ones(3))], nesterov=True)

    net, params, opt = two_groups()
    before = snapshot(net, opt)
    # A bad tensor in the second group: the first group is not stepped either.
    last = params[-1]
    good_grad = last.grad
    cases = [
        (torch.ones(1, dtype=torch.float64).to_sparse(), ValueError, "sparse gradient"),
    ]
    for grad, error, message in cases:
        last.grad = grad
        with pytest.raises(error, match=message):
            opt.step()
        assert_unchanged(net, opt, before)
    last.grad = good_grad
    # A state tensor of the wrong shape (a bad load) is named.
    key = opt.state[last]["square_avg"]
    opt.state[last]["square_avg"] = torch.zeros(5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"state\['square_avg'\] must be a contiguous"):
        opt.step()
    opt.state[last]["square_avg"] = key
    assert_unchanged(net, opt, before)
    # Another device, another dtype, a non-contiguous parameter.
    for p, error, message in [
        (torch.nn.Parameter(torch.ones(3, device="meta")), ValueError, "is on meta"),
        (torch.nn.Parameter(torch.ones(3, dtype=torch.bfloat16)), TypeError, "dtype torch.bfloat16"),
        (torch.nn.Parameter(torch.ones(4, 3).t()), ValueError, "not contiguous"),
    ]:
        p.grad = torch.ones_like(p)
        opt.add_param_group(dict(params=[p]))
        with pytest.raises(error, match=message):
            opt.step()
        opt.param_groups.pop()
        assert_unchanged(net, opt, before)
    # A refused group is not added.
    with pytest.raises(ValueError, match="momentum"):
        opt.add_param_group(dict(params=[torch.nn.Parameter(torch.ones(2))], momentum=-1.0))
    assert len(opt.param_groups) == 2
    opt.step()  # and the optimizer still steps


def test_non_finite_gradients_error_or_skip_across_groups():
    net, params, opt = two_groups()
    assert opt.non_finite == "propagate"
    before = snapshot(net, opt)
    params[-1].grad[0] = float("nan")
    opt.non_finite = "error"
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['params'\]\[1\]: gradient element 0 is nan"):
        opt.step()
    assert_unchanged(net, opt, before)
    opt.non_finite = "skip"
    opt.step()
    assert opt.skipped_steps == 1
    assert_unchanged(net, opt, before)
    with pytest.raises(ValueError, match="non_finite"):
        opt.non_finite = "ignore"
    opt.non_finite = "propagate"
    opt.step()  # as torch: the NaN reaches the parameter
    assert torch.isnan(params[-1]).any()


def test_steps_write_through_the_tensors_memory():
    p = torch.nn.Parameter(torch.ones(1000))
    address = p.data_ptr()
    p.grad = torch.full_like(p, 0.5)
    opt = rt.RMSprop([p], lr=0.1)
    opt.step()
    assert p.data_ptr() == address and bool((p < 1).all())
    assert opt.state[p]["square_avg"].data_ptr() == opt.state[p]["square_avg"].data_ptr()
    square_avg = opt.state[p]["square_avg"]
    opt.step()
    assert opt.state[p]["square_avg"] is square_avg and float(opt.state[p]["step"]) == 2.0


def readme_python_blocks():
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme[readme.index("## Python:"):readme.index("## Conformance:")]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readmes_python_examples_run(capsys):
    blocks = readme_python_blocks()
    assert len(blocks) == 2
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("loss ") and "square_avg" in out
