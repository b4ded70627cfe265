"""Benchmark: micrograd's moons demo with the lab's engine and with bench/fast_engine.py.

Both engines train the 2-16-16-1 MLP of micrograd's demo.ipynb on make_moons(n_samples=100,
noise=0.1) after np.random.seed(1337); random.seed(1337): weights uniform in [-1, 1] drawn in
construction order, biases 0, ReLU hidden layers, linear output, max-margin loss + 1e-4 L2, all
points in every step, lr = 1.0 - 0.9*k/100, 100 steps. The baseline is the lab's reference solution,
executed from the solution cells of labs/01_micrograd/01_micrograd.ipynb.

Prints each engine's final loss and time and the speed ratio; the last line is
`final_loss=<fast engine's final loss> wall_s=<fast engine's seconds>`. Exits 1 if the engines
disagree by more than 1e-9, or if either misses micrograd's published 0.0109784 by more than 1e-6.
"""
import gc
import random
import sys
import time
import types
from pathlib import Path

import nbformat
import numpy as np
from sklearn.datasets import make_moons

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "labs" / "01_micrograd" / "01_micrograd.ipynb"
BASELINE_CELLS = ["value_engine", "mlp", "loss_fn", "train_step"]
STEPS = 100
EXPECTED_FINAL_LOSS = 0.0109784


def lab_engine():
    """The lab's reference Value, MLP, loss_fn and train_step, as a module built from the notebook."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    sources = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells if c.cell_type == "code"}
    module = types.ModuleType("lab_engine")
    exec("import math\nimport random\n", module.__dict__)
    for grade_id in BASELINE_CELLS:
        exec(compile(sources[grade_id], f"{NOTEBOOK.name}:{grade_id}", "exec"), module.__dict__)
    return module


def moons():
    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    return X.tolist(), (y * 2 - 1).tolist()


def train(engine, X, y):
    """100 steps from micrograd's initial weights; returns (loss at the last step, accuracy, seconds)."""
    random.seed(1337)  # make_moons draws from numpy only: this is the state micrograd's demo has here
    model = engine.MLP(2, [16, 16, 1])
    assert len(model.parameters()) == 337
    gc.collect()
    started = time.perf_counter()
    for k in range(STEPS):
        loss, accuracy = engine.train_step(model, X, y, 1.0 - 0.9 * k / 100)
    return loss, accuracy, time.perf_counter() - started


def main():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fast_engine

    X, y = moons()
    results = {}
    for name, engine in [("lab engine (closures, baseline)", lab_engine()), ("fast engine (bench/fast_engine.py)", fast_engine)]:
        loss, accuracy, seconds = train(engine, X, y)
        results[name] = (loss, seconds)
        print(f"{name:36s} final loss {loss:.16f}  accuracy {accuracy:.0%}  {seconds:7.2f} s "
              f"({1000 * seconds / STEPS:.0f} ms/step)", flush=True)
    (base_loss, base_s), (fast_loss, fast_s) = results.values()
    print(f"difference between the engines' final losses: {abs(base_loss - fast_loss):.1e}")
    print(f"speed ratio (baseline time / fast time): {base_s / fast_s:.2f}")
    ok = True
    if abs(base_loss - fast_loss) > 1e-9:
        print(f"FAIL: the engines disagree: {base_loss!r} vs {fast_loss!r}")
        ok = False
    for loss in (base_loss, fast_loss):
        if abs(loss - EXPECTED_FINAL_LOSS) > 1e-6:
            print(f"FAIL: final loss {loss!r} is not micrograd's {EXPECTED_FINAL_LOSS}")
            ok = False
    print(f"final_loss={fast_loss:.7f} wall_s={fast_s:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
