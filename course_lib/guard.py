"""Kernel-state integrity for grading (used by the autograder, harmless in a student's kernel).

Before any student cell runs, the grader calls `snapshot()`: it records the functions that checks
rely on (builtins, math/numpy/torch comparisons, tensor methods, the display and check helpers).
Before and after every test cell it calls `restore_and_verify(nonce)`, which reports what student
code replaced, puts the originals back, re-imports course_lib.checks from disk, runs canary
computations that must fail or succeed, and prints one line the grader parses. So a student who
redefines `torch.allclose`, `assert_close` or `abs` gets those cells flagged, and the hidden checks
run with the real functions anyway. See docs/threat-model.md for what this does and does not stop.
"""
import builtins
import importlib
import json
import math
import sys

MARKER = "__COURSE_GUARD__"
_TENSOR_METHODS = ("__float__", "__int__", "__bool__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__",
                   "__ge__", "__sub__", "__abs__", "item", "tolist", "allclose", "isclose", "equal", "sum",
                   "abs", "max", "min", "all", "any", "float", "double", "numpy", "detach", "cpu")
_originals = {}


def _watched():
    """(name, owner, attribute) of everything a check may call."""
    import numpy
    import torch

    # ipykernel swaps input() in and out around every execution; `_` is IPython's last result
    spots = [(f"builtins.{name}", builtins, name) for name in dir(builtins)
             if not name.startswith("_") and name not in ("input", "raw_input", "display", "get_ipython")]
    spots += [("math.isclose", math, "isclose"), ("math.isfinite", math, "isfinite")]
    spots += [(f"numpy.{n}", numpy, n) for n in ("allclose", "isclose", "array_equal", "abs", "all", "asarray", "isfinite")]
    spots += [(f"numpy.testing.{n}", numpy.testing, n) for n in ("assert_allclose", "assert_array_equal")]
    spots += [(f"torch.{n}", torch, n) for n in ("allclose", "isclose", "equal", "all", "abs", "tensor", "isfinite")]
    spots += [("torch.testing.assert_close", torch.testing, "assert_close")]
    spots += [(f"torch.Tensor.{n}", torch.Tensor, n) for n in _TENSOR_METHODS if hasattr(torch.Tensor, n)]
    spots += [("sys.stdout", sys, "stdout"), ("sys.stderr", sys, "stderr"), ("json.dumps", json, "dumps")]
    return spots


def snapshot():
    _originals.clear()
    for name, owner, attribute in _watched():
        _originals[name] = (owner, attribute, getattr(owner, attribute))


def _canaries():
    """Computations whose answers student code cannot have prepared for: they get a fresh nonce."""
    import numpy
    import torch

    checks = importlib.import_module("course_lib.checks")
    failures = []
    x = 1.0 + (hash(str(_canaries.nonce)) % 1000) / 7.0
    if numpy.allclose(x, x + 1.0) or not numpy.allclose(x, x):
        failures.append("numpy.allclose")
    if torch.allclose(torch.tensor([x]), torch.tensor([x + 1.0])) or not torch.equal(torch.tensor([x]), torch.tensor([x])):
        failures.append("torch.allclose/equal")
    if abs(-x) != x or len([0] * int(x)) != int(x) or not isinstance(x, float) or math.isclose(x, x + 1):
        failures.append("builtins")
    if float(torch.tensor(x, dtype=torch.float64)) != x:
        failures.append("torch.Tensor conversion")
    try:
        checks.assert_close(x, x + 1.0)
        failures.append("course_lib.checks.assert_close")
    except AssertionError:
        pass
    return failures


def restore_and_verify(nonce):
    """Report replaced functions, restore them, reload the checks, run canaries; print one line."""
    replaced = []
    for name, (owner, attribute, original) in _originals.items():
        if getattr(owner, attribute, None) is not original:
            replaced.append(name)
            setattr(owner, attribute, original)
    for module in [m for m in sys.modules if m == "course_lib.checks"]:
        del sys.modules[module]
    checks = importlib.import_module("course_lib.checks")
    checks.CELL_NONCE = nonce
    _canaries.nonce = nonce
    failures = _canaries()
    sys.stdout.write(MARKER + json.dumps({"nonce": nonce, "replaced": replaced, "canaries_failed": failures}) + "\n")
    sys.stdout.flush()


def seed(value: int) -> None:
    """The grader seeds random, numpy and torch before every cell, so grading is repeatable."""
    import random

    import numpy
    import torch

    random.seed(value)
    numpy.random.seed(value)
    torch.manual_seed(value)
