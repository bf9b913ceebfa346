"""The exact, fast RMSProp optimizer and its family, on numpy arrays, computed by the Rust library.

Each optimizer steps lists of C-contiguous float32 or float64 arrays in place, through their
memory (no copies)::

    import numpy as np, rmsprop
    w = np.array([5.0, 4.0])
    opt = rmsprop.RMSProp(preset="lesson")
    opt.step([w], [2 * w])

Options are the Rust configuration's fields (``lr``, ``rho``, ``eps``, ``eps_placement``,
``centered``, ``momentum``, ``momentum_style``, ``nesterov``, ``weight_decay``, ...), with the
enums' stable names (``eps_placement="inside"``); a preset sets a framework's defaults and
operation order first. A wrong option, value, dtype or array raises ``ValueError``/``TypeError``
with the library's message and changes nothing.

Two settings are not configuration fields: ``threads`` (1 by default; large steps are split into
chunks across that many threads, with the same bits) and ``non_finite``, what a step does with a
NaN or infinite gradient: ``"error"`` (the default: raise, change nothing), ``"skip"`` (change
nothing, count it in ``skipped_steps``) or ``"propagate"`` (no check, as PyTorch).

``rmsprop.torch`` holds drop-in ``torch.optim`` optimizers with the same kernels.
"""

import json as _json

from ._rmsprop import Optimizer, preset_names

__all__ = ["Optimizer", "RMSProp", "SGD", "Adagrad", "Adam", "AdamW", "Adadelta", "Lion", "preset_names"]


def _factory(kind, doc):
    def make(preset=None, *, threads=1, non_finite="error", **options):
        opt = Optimizer(kind, preset, _json.dumps(options))
        opt.threads = threads
        opt.non_finite = non_finite
        return opt

    make.__name__ = make.__qualname__ = doc.split(":")[0]
    make.__doc__ = doc + "\n\nPresets: " + ", ".join(preset_names(kind)) + " (the first is the default)."
    return make


RMSProp = _factory("rmsprop", "RMSProp: every PyTorch, Keras, TF1, optax, timm variant")
SGD = _factory("sgd", "SGD: plain, momentum with dampening, Nesterov")
Adagrad = _factory("adagrad", "Adagrad: PyTorch's and optax's")
Adam = _factory("adam", "Adam: PyTorch's and optax's, AMSGrad")
AdamW = _factory("adamw", "AdamW: decoupled weight decay")
Adadelta = _factory("adadelta", "Adadelta: PyTorch's and optax's")
Lion = _factory("lion", "Lion: optax's")
