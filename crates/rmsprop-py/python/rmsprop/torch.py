"""PyTorch drop-ins: ``torch.optim`` optimizers whose step is the library's fused Rust kernel.

``rmsprop.torch.RMSprop``, ``SGD``, ``Adagrad``, ``Adam``, ``AdamW`` and ``Adadelta`` subclass
``torch.optim.Optimizer`` with exactly torch's constructor signatures and defaults::

    import torch, rmsprop.torch
    model = torch.nn.Linear(10, 1)
    opt = rmsprop.torch.RMSprop(model.parameters(), lr=1e-2)   # was torch.optim.RMSprop
    model(torch.randn(4, 10)).square().mean().backward()
    opt.step()

Parameter groups, ``add_param_group``, ``zero_grad``, closures, ``torch.optim.lr_scheduler``
schedulers and hooks work as in torch, and the state lives in ``optimizer.state`` under torch's
own keys (``step``, ``square_avg``, ``momentum_buffer``, ``grad_avg``, ``exp_avg``, ...), so
``state_dict()`` loads into the ``torch.optim`` class and back. The operation order is PyTorch's
(the library's ``pytorch`` presets), so trajectories agree with torch's within the replay
tolerances.

CPU float32/float64 tensors are stepped in place through their memory, on
``torch.get_num_threads()`` threads. What the fused step cannot take raises instead of falling
back: a tensor on another device or of another dtype, a sparse gradient, a non-contiguous
parameter or state tensor, ``capturable=True`` or ``differentiable=True``.

Non-finite gradients: like torch, a step does not look for them (``non_finite = "propagate"``).
Set ``opt.non_finite = "error"`` to raise ``ValueError`` naming the tensor and element, or
``"skip"`` to skip the step and count it in ``opt.skipped_steps``; either way a refused step
changes nothing, in any group.
"""

import torch as _torch
from torch.optim import Optimizer as _TorchOptimizer

from ._rmsprop import Optimizer as _Engine

__all__ = ["RMSprop", "SGD", "Adagrad", "Adam", "AdamW", "Adadelta"]

_FLOATS = (_torch.float32, _torch.float64)
_POLICIES = ("propagate", "error", "skip")


def _scalar_dtype():
    # torch keeps `step` in float32, or float64 when that is the default dtype.
    return _torch.float64 if _torch.get_default_dtype() == _torch.float64 else _torch.float32


def _float(value, name):
    if isinstance(value, _torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {name} must be 1-element")
        return float(value.item())
    return float(value)


class _Fused(_TorchOptimizer):
    """The shared part of the drop-ins: one engine per distinct set of a group's
    hyperparameters, checks that change nothing, and the step through the tensors' memory."""

    _kind = ""  # the library's optimizer kind
    _preset = "pytorch"
    _renames = {}  # the library's field names -> torch's, for messages

    # --- hyperparameters -------------------------------------------------------------------

    def _options(self, group):
        """The library's configuration fields for `group` (without `lr`)."""
        raise NotImplementedError

    def _refuse_unsupported(self, group):
        for option in ("capturable", "differentiable"):
            if group.get(option, False):
                raise ValueError(
                    f"{type(self).__name__}: `{option}=True` is not supported by the fused CPU "
                    f"step (use torch.optim.{type(self).__name__} for it)"
                )

    def _engine(self, group):
        """The engine for `group`'s hyperparameters (built and validated once per distinct set)."""
        self._refuse_unsupported(group)
        options = self._options(group)
        key = tuple(sorted(options.items()))
        engines = self.__dict__.setdefault("_engines", {})
        engine = engines.get(key)
        if engine is None:
            import json

            try:
                engine = _Engine(self._kind, self._preset, json.dumps(options))
            except ValueError as e:
                message = str(e)
                for ours, theirs in self._renames.items():
                    message = message.replace(f"`{ours}`", f"`{ours}` (torch's `{theirs}`)")
                raise ValueError(f"{type(self).__name__}: {message}") from None
            engine.non_finite = "propagate"
            if len(engines) >= 16:  # a schedule that changes momentum makes a set per step
                engines.pop(next(iter(engines)))
            engines[key] = engine
        lr = _float(group["lr"], "lr")
        if not lr >= 0.0:
            raise ValueError(f"{type(self).__name__}: Invalid learning rate: {lr}")
        return engine

    def add_param_group(self, param_group):
        # Check the group's hyperparameters before it is added, so a refused group adds nothing.
        merged = dict(self.defaults)
        merged.update({k: v for k, v in param_group.items() if k != "params"})
        self._engine(merged)
        super().add_param_group(param_group)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("_engines", {})
        self.__dict__.setdefault("_non_finite", "propagate")
        self.__dict__.setdefault("_skipped", 0)
        for group in self.param_groups:
            for key, value in self._group_defaults().items():
                group.setdefault(key, value)
            for p in group["params"]:
                state = self.state.get(p, {})
                if "step" in state and not _torch.is_tensor(state["step"]):
                    state["step"] = _torch.tensor(float(state["step"]), dtype=_scalar_dtype())

    def __getstate__(self):
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k != "_engines"}

    def _group_defaults(self):
        return {"foreach": None, "maximize": False, "differentiable": False}

    # --- non-finite policy -----------------------------------------------------------------

    @property
    def non_finite(self):
        """What a step does with a NaN or infinite gradient: ``"propagate"`` (torch's behaviour,
        the default), ``"error"`` or ``"skip"``."""
        return self.__dict__.get("_non_finite", "propagate")

    @non_finite.setter
    def non_finite(self, policy):
        if policy not in _POLICIES:
            raise ValueError(
                f"non_finite = {policy!r}: must be \"propagate\", \"error\" or \"skip\""
            )
        self._non_finite = policy

    @property
    def skipped_steps(self):
        """Steps the ``"skip"`` policy skipped."""
        return self.__dict__.get("_skipped", 0)

    # --- state -----------------------------------------------------------------------------

    def _step_count(self, state):
        step = state.get("step")
        return 0 if step is None else int(step.item())

    def _advance(self, states):
        steps = [s["step"] for s in states if "step" in s]
        if steps:
            _torch._foreach_add_(steps, 1.0)

    def _init_state(self, p, state, specs):
        if "step" not in state:
            state["step"] = _torch.tensor(0.0, dtype=_scalar_dtype())
        for name, init in specs:
            if name not in state:
                state[name] = _torch.full_like(p, init, memory_format=_torch.preserve_format)

    # --- the step --------------------------------------------------------------------------

    def _plan(self, gi, group):
        """Checks one group's tensors and hyperparameters; changes nothing."""
        name = type(self).__name__
        params, grads = [], []
        for pi, p in enumerate(group["params"]):
            if p.grad is None:
                continue
            where = f"{name}: param_groups[{gi}]['params'][{pi}]"
            if p.device.type != "cpu":
                raise ValueError(f"{where} is on {p.device}: the fused step takes CPU tensors only")
            if p.dtype not in _FLOATS:
                raise TypeError(f"{where} has dtype {p.dtype}: expected torch.float32 or torch.float64")
            g = p.grad
            if g.is_sparse:
                raise ValueError(f"{where} has a sparse gradient: the fused step takes dense gradients only")
            if g.device.type != "cpu" or g.dtype != p.dtype or g.shape != p.shape:
                raise TypeError(
                    f"{where}: gradient {g.dtype} {tuple(g.shape)} on {g.device} does not match "
                    f"the parameter's {p.dtype} {tuple(p.shape)}"
                )
            if not p.is_contiguous():
                raise ValueError(f"{where} is not contiguous: the fused step writes through its memory")
            for key, value in self.state.get(p, {}).items():
                if key == "step" or not _torch.is_tensor(value):
                    continue
                if value.dtype != p.dtype or value.shape != p.shape or not value.is_contiguous():
                    raise ValueError(
                        f"{where}: state[{key!r}] must be a contiguous {p.dtype} tensor of "
                        f"shape {tuple(p.shape)}"
                    )
            params.append(p)
            grads.append(g if g.is_contiguous() else g.contiguous())
        if not params:
            return None
        return gi, group, self._engine(group), params, grads

    def _screen(self, plans):
        """The non-finite policy over every group's gradients: True to go on."""
        if self.non_finite == "propagate":
            return True
        for plan in plans:
            gi, group, _, params, grads = plan
            for p, g in zip(params, grads):
                finite = _torch.isfinite(g)
                if not bool(finite.all()):
                    if self.non_finite == "skip":
                        self._skipped = self.skipped_steps + 1
                        return False
                    pi = next(i for i, q in enumerate(group["params"]) if q is p)
                    element = int((~finite).reshape(-1).nonzero()[0, 0])
                    value = float(g.reshape(-1)[element])
                    raise ValueError(
                        f"{type(self).__name__}: param_groups[{gi}]['params'][{pi}]: gradient "
                        f"element {element} is {value}: the step was not applied"
                    )
        return True

    def _run(self, plan):
        _, group, engine, params, grads = plan
        # Groups with the same hyperparameters but their own rates share an engine.
        lr = _float(group["lr"], "lr")
        if engine.lr != lr:
            engine.lr = lr
        threads = max(1, _torch.get_num_threads())
        if engine.threads != threads:
            engine.threads = threads
        specs = engine.buffer_specs
        for dtype in _FLOATS:
            chosen = [(p, g) for p, g in zip(params, grads) if p.dtype == dtype]
            if not chosen:
                continue
            states = [self.state[p] for p, _ in chosen]
            steps = [self._step_count(s) for s in states]
            for (p, _), state in zip(chosen, states):
                self._init_state(p, state, specs)
            buffers = [[s[name].numpy() for name, _ in specs] for s in states]
            engine.step_external(
                [p.detach().numpy() for p, _ in chosen],
                [g.numpy() for _, g in chosen],
                steps,
                buffers,
            )
            self._advance(states)

    @_torch.no_grad()
    def step(self, closure=None):
        """One optimization step over every group; ``closure`` re-evaluates the model and returns
        the loss. Every group is checked before any tensor changes."""
        loss = None
        if closure is not None:
            with _torch.enable_grad():
                loss = closure()
        plans = [self._plan(gi, g) for gi, g in enumerate(self.param_groups)]
        plans = [p for p in plans if p is not None]
        if not self._screen(plans):
            return loss
        for plan in plans:
            self._run(plan)
        return loss


class RMSprop(_Fused):
    """``torch.optim.RMSprop`` with the library's fused step (PyTorch's operation order: eps
    outside the root, ``alpha`` the square average's decay).

    Example::

        opt = rmsprop.torch.RMSprop(model.parameters(), lr=1e-2, alpha=0.99, centered=True)
    """

    _kind = "rmsprop"
    _renames = {"rho": "alpha"}

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0,
        momentum=0,
        centered=False,
        capturable=False,
        foreach=None,
        maximize=False,
        differentiable=False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            capturable=capturable,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def _group_defaults(self):
        return dict(super()._group_defaults(), momentum=0, centered=False, capturable=False)

    def _options(self, group):
        return {
            "rho": _float(group["alpha"], "alpha"),
            "eps": _float(group["eps"], "eps"),
            "weight_decay": _float(group["weight_decay"], "weight_decay"),
            "momentum": _float(group["momentum"], "momentum"),
            "centered": bool(group["centered"]),
            "maximize": bool(group["maximize"]),
        }


class SGD(_Fused):
    """``torch.optim.SGD`` with the library's fused step (momentum with dampening, Nesterov;
    the momentum buffer starts as the first gradient, as in torch)."""

    _kind = "sgd"

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0,
        dampening=0,
        weight_decay=0,
        nesterov=False,
        *,
        maximize=False,
        foreach=None,
        differentiable=False,
        fused=None,
    ):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            foreach=foreach,
            differentiable=differentiable,
            fused=fused,
        )
        super().__init__(params, defaults)

    def _group_defaults(self):
        return dict(super()._group_defaults(), nesterov=False, fused=None)

    def _options(self, group):
        return {
            "momentum": _float(group["momentum"], "momentum"),
            "dampening": _float(group["dampening"], "dampening"),
            "weight_decay": _float(group["weight_decay"], "weight_decay"),
            "nesterov": bool(group["nesterov"]),
            "maximize": bool(group["maximize"]),
        }

    # torch's SGD keeps no step count: the momentum buffer's presence says it is not the first.
    def _step_count(self, state):
        return 1 if "momentum_buffer" in state else 0

    def _init_state(self, p, state, specs):
        for name, init in specs:
            if name not in state:
                state[name] = _torch.full_like(p, init, memory_format=_torch.preserve_format)

    def _advance(self, states):
        pass


class Adagrad(_Fused):
    """``torch.optim.Adagrad`` with the library's fused step (the state is made at construction,
    as torch does)."""

    _kind = "adagrad"

    def __init__(
        self,
        params,
        lr=1e-2,
        lr_decay=0,
        weight_decay=0,
        initial_accumulator_value=0,
        eps=1e-10,
        foreach=None,
        *,
        maximize=False,
        differentiable=False,
        fused=None,
    ):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            fused=fused,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = _torch.tensor(0.0, dtype=_scalar_dtype())
                state["sum"] = _torch.full_like(
                    p, initial_accumulator_value, memory_format=_torch.preserve_format
                )

    def _group_defaults(self):
        return dict(super()._group_defaults(), fused=None)

    def _options(self, group):
        return {
            "lr_decay": _float(group["lr_decay"], "lr_decay"),
            "weight_decay": _float(group["weight_decay"], "weight_decay"),
            "initial_accumulator_value": _float(
                group["initial_accumulator_value"], "initial_accumulator_value"
            ),
            "eps": _float(group["eps"], "eps"),
            "maximize": bool(group["maximize"]),
        }


class Adam(_Fused):
    """``torch.optim.Adam`` with the library's fused step (AMSGrad, and decoupled weight decay
    with ``decoupled_weight_decay=True``)."""

    _kind = "adam"
    _renames = {"beta1": "betas[0]", "beta2": "betas[1]"}

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        amsgrad=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
        fused=None,
        decoupled_weight_decay=False,
    ):
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _group_defaults(self):
        return dict(
            super()._group_defaults(),
            amsgrad=False,
            capturable=False,
            fused=None,
            decoupled_weight_decay=False,
        )

    def _options(self, group):
        beta1, beta2 = group["betas"]
        decoupled = bool(group.get("decoupled_weight_decay", False))
        return {
            "beta1": _float(beta1, "betas[0]"),
            "beta2": _float(beta2, "betas[1]"),
            "eps": _float(group["eps"], "eps"),
            "weight_decay": _float(group["weight_decay"], "weight_decay"),
            "weight_decay_style": "decoupled" if decoupled else "coupled",
            "amsgrad": bool(group["amsgrad"]),
            "maximize": bool(group["maximize"]),
        }


class AdamW(Adam):
    """``torch.optim.AdamW`` with the library's fused step (decoupled weight decay, 1e-2 by
    default)."""

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        maximize=False,
        foreach=None,
        capturable=False,
        differentiable=False,
        fused=None,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )

    def _group_defaults(self):
        return dict(super()._group_defaults(), decoupled_weight_decay=True)


class Adadelta(_Fused):
    """``torch.optim.Adadelta`` with the library's fused step."""

    _kind = "adadelta"

    def __init__(
        self,
        params,
        lr=1.0,
        rho=0.9,
        eps=1e-6,
        weight_decay=0,
        foreach=None,
        *,
        capturable=False,
        maximize=False,
        differentiable=False,
    ):
        defaults = dict(
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            capturable=capturable,
            foreach=foreach,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def _group_defaults(self):
        return dict(super()._group_defaults(), capturable=False)

    def _options(self, group):
        return {
            "rho": _float(group["rho"], "rho"),
            "eps": _float(group["eps"], "eps"),
            "weight_decay": _float(group["weight_decay"], "weight_decay"),
            "maximize": bool(group["maximize"]),
        }
