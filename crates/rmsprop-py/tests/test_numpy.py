"""The numpy API against the Rust library's own results and the recorded framework vectors."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import rmsprop

ROOT = pathlib.Path(__file__).resolve().parents[3]

LESSON = """\
Epoch 0, current state: [4.68377233 3.68377236]
Epoch 20, current state: [2.3688824  1.47561697]
Epoch 40, current state: [0.95903672 0.35004133]
Epoch 60, current state: [0.13761293 0.00745214]
Epoch 80, current state: [3.91649374e-04 3.12725069e-09]
Epoch 100, current state: [-3.07701828e-17  2.18862195e-20]
"""


def test_python_m_rmsprop_prints_the_lesson_as_the_cli_does():
    out = subprocess.run([sys.executable, "-m", "rmsprop"], capture_output=True, text=True, check=True)
    assert out.stdout == LESSON


def test_the_lesson_states_equal_numpys_bit_for_bit():
    # reference/seed_sphere.json: the classic example's 101 states from numpy, as f64 bits.
    seed = json.loads((ROOT / "reference" / "seed_sphere.json").read_text())
    rows = seed["trajectory"]  # hex of the IEEE-754 binary64 bits, big-endian
    x = np.array([5.0, 4.0])
    opt = rmsprop.RMSProp(preset="lesson")
    for k in range(101):
        opt.step([x], [2.0 * x])
        expected = [np.frombuffer(bytes.fromhex(h), ">f8")[0] for h in rows[k]]
        assert x.tobytes() == np.array(expected, dtype="<f8").tobytes(), k


@pytest.mark.parametrize(
    "name",
    [
        "optax_centered_momentum_rosenbrock_f64.json",
        "keras_centered_momentum_fixed_grads8_f64.json",
        "optax_adam_default_rosenbrock_f64.json",
        "optax_lion_default_fixed_grads8_f32.json",
    ],
)
def test_recorded_vectors_replay_bit_for_bit(name):
    v = json.loads((ROOT / "reference" / "vectors" / name).read_text())
    dtype = np.float32 if v["dtype"] == "float32" else np.float64
    n = v["normalized"]
    algorithm = n.get("algorithm", "rmsprop")
    if algorithm == "rmsprop":
        opt = rmsprop.RMSProp(
            preset=v["framework"],
            lr=n["lr"], rho=n["decay"], eps=n["eps"],
            eps_placement="inside" if n["eps_in_sqrt"] else "outside",
            centered=n["centered"], momentum=n["momentum"], nesterov=n["nesterov"],
            initial_square_avg=n["initial_scale"], bias_correction=n["bias_correction"],
        )
    elif algorithm == "adam":
        opt = rmsprop.Adam(preset="optax", lr=n["lr"], beta1=n["beta1"], beta2=n["beta2"], eps=n["eps"], eps_root=n["eps_root"])
    else:
        opt = rmsprop.Lion(lr=n["lr"], beta1=n["beta1"], beta2=n["beta2"], weight_decay=n["weight_decay"])
    x = np.array(v["initial_params"], dtype=dtype)
    for g, expected in zip(v["gradients"], v["trajectory"]):
        opt.step([x], [np.array(g, dtype=dtype)])
        np.testing.assert_array_equal(x, np.array(expected, dtype=dtype))


def test_arrays_are_stepped_in_place_without_copies():
    w = np.ones((3, 4), dtype=np.float32)
    b = np.zeros(4, dtype=np.float32)
    view = w  # the same memory
    opt = rmsprop.Adam(lr=0.1)
    opt.step([w, b], [np.full((3, 4), 0.5, np.float32), np.full(4, -0.5, np.float32)])
    assert view is w and np.all(w < 1.0) and np.all(b > 0.0)
    assert opt.steps == 1 and opt.kind == "adam"
    names = [name for name, _ in opt.state(0)]
    assert names == ["exp_avg", "exp_avg_sq"]


def test_bad_input_raises_with_the_librarys_message_and_changes_nothing():
    opt = rmsprop.RMSProp(preset="pytorch", momentum=0.9)
    w = np.ones(3)
    opt.step([w], [np.full(3, 0.5)])
    before = (w.copy(), opt.state(0), opt.steps)

    def unchanged():
        assert np.array_equal(w, before[0]) and opt.state(0) == before[1] and opt.steps == before[2]

    with pytest.raises(ValueError, match="gradient element 1 is NaN: the step was not applied"):
        opt.step([w], [np.array([0.1, np.nan, 0.2])])
    unchanged()
    with pytest.raises(TypeError, match="float64"):
        opt.step([w.astype(np.float32)], [np.full(3, 0.5, np.float32)])
    unchanged()
    with pytest.raises(TypeError, match="not C-contiguous"):
        opt.step([np.ones(6)[::2]], [np.full(3, 0.5)])
    unchanged()
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="params\\[0\\]: cannot be written"):
        opt.step([ro], [np.full(3, 0.5)])
    unchanged()
    with pytest.raises(ValueError, match="parameter has 3 elements but its gradient has 4"):
        opt.step([w], [np.full(4, 0.5)])
    unchanged()
    with pytest.raises(TypeError):
        opt.step([np.ones(3, dtype=np.int64)], [np.ones(3, dtype=np.int64)])
    unchanged()


def test_options_are_checked_by_name_and_range():
    with pytest.raises(ValueError, match="unknown option `alpha` for rmsprop: options are .*rho"):
        rmsprop.RMSProp(alpha=0.9)
    with pytest.raises(ValueError, match="invalid hyperparameter `rho` = 1.5"):
        rmsprop.RMSProp(rho=1.5)
    with pytest.raises(ValueError, match="unknown variant `sideways`"):
        rmsprop.RMSProp(eps_placement="sideways")
    with pytest.raises(ValueError, match="unknown preset `caffe` for rmsprop"):
        rmsprop.RMSProp(preset="caffe")
    assert rmsprop.preset_names("rmsprop")[0] == "pytorch"
    assert json.loads(rmsprop.RMSProp(preset="keras").config_json)["eps_placement"] == "inside"


def test_save_and_load_resume_bit_for_bit(tmp_path):
    def run(opt, x, start, stop):
        for k in range(start, stop):
            opt.step([x], [2.0 * x + 0.1 * k])

    a = rmsprop.RMSProp(preset="pytorch", centered=True, momentum=0.5, lr=0.05)
    xa = np.array([1.0, -2.0, 3.0])
    run(a, xa, 0, 3)
    path = str(tmp_path / "opt.safetensors")
    a.save(path)
    xb = xa.copy()
    run(a, xa, 3, 7)
    b = rmsprop.RMSProp()  # another configuration: the file's is restored
    b.load(path)
    assert json.loads(b.config_json)["centered"] is True and b.lr == 0.05
    run(b, xb, 3, 7)
    np.testing.assert_array_equal(xa, xb)
    assert b.steps == 7
    with pytest.raises(ValueError, match="not a checkpoint|not a readable checkpoint"):
        (tmp_path / "bad.safetensors").write_bytes(b"garbage, not a checkpoint")
        b.load(str(tmp_path / "bad.safetensors"))
    assert b.steps == 7


def test_state_dict_round_trips_and_bad_ones_change_nothing():
    a = rmsprop.SGD(lr=0.1, momentum=0.9)
    x = np.array([1.0, 2.0, 3.0])
    a.step([x], [0.5 * x])
    sd = a.state_dict()
    assert sd["kind"] == "sgd" and sd["dtype"] == "float64" and sd["steps"] == 1
    assert sd["state"][0]["len"] == 3
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"], 0.5 * np.array([1.0, 2.0, 3.0]))
    y = x.copy()
    b = rmsprop.SGD()  # another configuration: the state dict's is restored
    b.load_state_dict(sd)
    assert b.lr == 0.1
    a.step([x], [0.5 * x])
    b.step([y], [0.5 * y])
    np.testing.assert_array_equal(x, y)

    before = b.state_dict()
    bad = b.state_dict()
    bad["state"][0]["momentum_buffer"] = np.ones(5)
    with pytest.raises(ValueError, match="momentum_buffer"):
        b.load_state_dict(bad)
    other = rmsprop.Adam().state_dict()
    with pytest.raises(ValueError, match="adam"):
        b.load_state_dict(other)
    after = b.state_dict()
    assert after["steps"] == before["steps"] and after["config"] == before["config"]
    np.testing.assert_array_equal(after["state"][0]["momentum_buffer"], before["state"][0]["momentum_buffer"])


PRESET = {"torch": "pytorch", "keras": "keras", "tf1": "tf1", "optax": "optax", "timm": "timm_tf"}


def optimizer_for(v):
    """The numpy-API optimizer for a recorded vector: the framework's preset with every
    `normalized` hyperparameter (SCHEMA.md) applied, as `rmsprop replay` builds it."""
    n = dict(v["normalized"])
    algorithm = n.pop("algorithm", "rmsprop")
    framework = v["framework"]
    if algorithm == "rmsprop":
        options = dict(
            lr=n["lr"], rho=n["decay"], eps=n["eps"],
            eps_placement="inside" if n["eps_in_sqrt"] else "outside",
            centered=n["centered"], momentum=n["momentum"], nesterov=n["nesterov"],
            weight_decay=n["weight_decay"], maximize=n["maximize"],
            initial_square_avg=n["initial_scale"], bias_correction=n["bias_correction"],
            momentum_style="lr_outside" if n["momentum_style"] == "torch" else "lr_inside",
        )
        if "weight_decay_style" in n:
            options["weight_decay_style"] = n["weight_decay_style"]
        precision = n.get("hyperparameter_precision")
        if precision is None and "lr_as_used_in_float64" in n:
            precision = "float32_lr"
        elif precision == "native" and "lr_as_used_in_float64" in n:
            precision = "float32_lr"
        if precision is not None:
            options["hyperparameter_precision"] = precision
        return rmsprop.RMSProp(preset=PRESET[framework], **options), n["centered"]
    make = {"sgd": rmsprop.SGD, "adagrad": rmsprop.Adagrad, "adam": rmsprop.Adam,
            "adamw": rmsprop.AdamW, "adadelta": rmsprop.Adadelta, "lion": rmsprop.Lion}[algorithm]
    preset = None if algorithm in ("sgd", "lion") else PRESET[framework]
    return make(preset=preset, **n), False


VECTORS = sorted((ROOT / "reference" / "vectors").glob("*.json"))

# The two documented exceptions of `rmsprop replay` (crates/rmsprop-cli/tests/replay.rs says
# why: timm fuses FMAs where a difference of two numbers near 0.87 decides each step's size),
# with the same bounds.
EXCEPTIONS = {
    "timm_centered_momentum_fixed_grads8_f32.json": 1e4,
    "timm_centered_momentum_fixed_grads8_f64.json": 1e-2,
}


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_every_recorded_vector_replays_within_the_replay_tolerance(path):
    # `rmsprop replay`'s tolerance: float64 within 1e-10 lr; float32 within 1e-2 lr, 1e-1 lr
    # for centered RMSProp; the recorded decimal rounded to the vector's dtype first.
    v = json.loads(path.read_text())
    dtype = np.float32 if v["dtype"] == "float32" else np.float64
    opt, centered = optimizer_for(v)
    opt.non_finite = "propagate"  # replay what the framework did
    lr = v["normalized"]["lr"]
    tolerance = 1e-10 if dtype == np.float64 else (1e-1 if centered else 1e-2)
    x = np.array(v["initial_params"], dtype=dtype)
    worst = 0.0
    for k, (g, expected) in enumerate(zip(v["gradients"], v["trajectory"])):
        if "lrs" in v:
            opt.lr = v["lrs"][k]
        opt.step([x], [np.array(g, dtype=dtype)])
        assert len(x) == len(expected)
        theirs = np.array(expected, dtype=dtype).astype(np.float64)
        worst = max(worst, float(np.max(np.abs(x.astype(np.float64) - theirs))))
    if path.name in EXCEPTIONS:
        assert tolerance < worst / lr <= EXCEPTIONS[path.name], f"{path.name}: {worst / lr:.3e} lr"
        return
    assert worst / lr <= tolerance, f"{path.name}: {worst / lr:.3e} lr > {tolerance:.0e} lr"
    assert opt.steps == v["steps"]


def test_threads_and_the_non_finite_policy_are_settings():
    x = np.linspace(-1.0, 1.0, 300_000)
    y = x.copy()
    one = rmsprop.RMSProp(momentum=0.9)
    two = rmsprop.RMSProp(momentum=0.9, threads=2)
    assert (one.threads, two.threads) == (1, 2)
    for _ in range(3):
        one.step([x], [0.5 * x])
        two.step([y], [0.5 * y])
    assert x.tobytes() == y.tobytes()  # the same bits on any number of threads
    skip = rmsprop.Adam(non_finite="skip")
    skip.step([x], [np.full_like(x, np.inf)])
    assert (skip.steps, skip.skipped_steps) == (0, 1) and x.tobytes() == y.tobytes()
    with pytest.raises(ValueError, match="non_finite = 'ignore'|non_finite = \"ignore\""):
        rmsprop.Adam(non_finite="ignore")
    with pytest.raises(ValueError, match="threads = 0"):
        rmsprop.Adam(threads=0)
