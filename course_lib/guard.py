"""Kernel-state integrity for grading (used by the autograder, harmless in a student's kernel).

Before any student cell runs, the grader calls `snapshot()`: it records the functions that checks
rely on (builtins, math, numpy and torch comparisons, tensor methods, sys.stdout). numpy and torch
are recorded the moment they are first imported (an import hook), so a kernel that never needs
torch never pays for importing it. Before and after every test cell the grader calls
`restore_and_verify(nonce)`: it reports what student code replaced, puts the originals back,
re-imports course_lib.checks from disk, runs canary computations, and prints one line that the
grader parses. See docs/threat-model.md for what this does and does not stop.
"""
import builtins
import importlib
import importlib.abc
import json
import math
import sys

MARKER = "__COURSE_GUARD__"
_TENSOR_METHODS = ("__float__", "__int__", "__bool__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__",
                   "__ge__", "__sub__", "__abs__", "item", "tolist", "allclose", "isclose", "equal", "sum",
                   "abs", "max", "min", "all", "any", "float", "double", "numpy", "detach", "cpu")
_originals = {}  # name -> (owner, attribute, original object)
_seed = None     # the current cell's seed


def _spots(module_name):
    """(name, owner, attribute) of what a check may call, per module."""
    if module_name == "builtins":
        # ipykernel swaps input() in and out around every execution; `_` is IPython's last result
        return [(f"builtins.{n}", builtins, n) for n in dir(builtins)
                if not n.startswith("_") and n not in ("input", "raw_input", "display", "get_ipython")]
    if module_name == "stdlib":
        return [("math.isclose", math, "isclose"), ("math.isfinite", math, "isfinite"), ("sys.stdout", sys, "stdout"),
                ("sys.stderr", sys, "stderr"), ("json.dumps", json, "dumps"),
                ("importlib.import_module", importlib, "import_module")]
    if module_name == "numpy":
        numpy = sys.modules["numpy"]
        return [(f"numpy.{n}", numpy, n) for n in ("allclose", "isclose", "array_equal", "abs", "all", "asarray", "isfinite")]
    if module_name == "numpy.testing":  # a submodule numpy imports lazily: never touch it through getattr
        testing = sys.modules["numpy.testing"]
        return [(f"numpy.testing.{n}", testing, n) for n in ("assert_allclose", "assert_array_equal")]
    if module_name == "torch":
        torch = sys.modules["torch"]
        spots = [(f"torch.{n}", torch, n) for n in ("allclose", "isclose", "equal", "all", "abs", "tensor", "isfinite")]
        return spots + [(f"torch.Tensor.{n}", torch.Tensor, n) for n in _TENSOR_METHODS if hasattr(torch.Tensor, n)]
    if module_name == "torch.testing":
        return [("torch.testing.assert_close", sys.modules["torch.testing"], "assert_close")]
    return []


_WATCHED = ("numpy", "numpy.testing", "torch", "torch.testing")


def _record(module_name):
    for name, owner, attribute in _spots(module_name):
        if name not in _originals and hasattr(owner, attribute):
            _originals[name] = (owner, attribute, getattr(owner, attribute))


class _RecordAfterImport(importlib.abc.MetaPathFinder):
    """Records numpy's and torch's functions right after their first import, before student code runs on."""

    def find_spec(self, name, path, target=None):
        if name not in _WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module

                def exec_module(module, run=run, name=name):
                    run(module)
                    try:  # the guard must never break a student's import
                        _record(name)
                        if _seed is not None:  # imported inside a cell: seed it as if it had been there before
                            _seed_module(name)
                    except Exception:
                        pass

                spec.loader.exec_module = exec_module
                return spec
        return None


def snapshot():
    _originals.clear()
    for group in ("builtins", "stdlib") + _WATCHED:
        if group in ("builtins", "stdlib") or group in sys.modules:
            _record(group)
    if not any(isinstance(f, _RecordAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RecordAfterImport())


def _canaries(nonce):
    """Computations whose answers student code cannot have prepared for: they depend on a fresh nonce."""
    failures = []
    x = 1.0 + (sum(map(ord, str(nonce))) % 1000) / 7.0
    if abs(-x) != x or len([0] * int(x)) != int(x) or not isinstance(x, float) or math.isclose(x, x + 1):
        failures.append("builtins")
    checks = importlib.import_module("course_lib.checks")
    try:
        checks.assert_close(x, x + 1.0)
        failures.append("course_lib.checks.assert_close")
    except AssertionError:
        pass
    numpy = sys.modules.get("numpy")
    if numpy is not None and (numpy.allclose(x, x + 1.0) or not numpy.allclose(x, x)):
        failures.append("numpy.allclose")
    torch = sys.modules.get("torch")
    if torch is not None:
        a, b = torch.tensor([x], dtype=torch.float64), torch.tensor([x + 1.0], dtype=torch.float64)
        if torch.allclose(a, b) or not torch.equal(a, a) or bool(a == b) or float(a) != x or a.item() != x:
            failures.append("torch comparisons")
    return failures


def restore_and_verify(nonce):
    """Report replaced functions, restore them, reload the checks, run canaries; print one line."""
    for group in _WATCHED:  # imported while the import hook was gone: record what is there now
        if group in sys.modules:
            _record(group)
    replaced = []
    for name, (owner, attribute, original) in _originals.items():
        if getattr(owner, attribute, None) is not original:
            replaced.append(name)
            setattr(owner, attribute, original)
    sys.modules.pop("course_lib.checks", None)
    checks = importlib.import_module("course_lib.checks")
    checks.CELL_NONCE = nonce
    failures = _canaries(nonce)
    sys.stdout.write(MARKER + json.dumps({"nonce": nonce, "replaced": replaced, "canaries_failed": failures}) + "\n")
    sys.stdout.flush()


def seed(value: int) -> None:
    """The grader seeds random, numpy and torch (those imported) before every cell: repeatable grades."""
    import random

    global _seed
    _seed = value
    random.seed(value)
    for name in ("numpy", "torch"):
        if name in sys.modules:
            _seed_module(name)


def _seed_module(name):
    if name == "numpy":
        sys.modules["numpy"].random.seed(_seed)
    elif name == "torch":
        sys.modules["torch"].manual_seed(_seed)
