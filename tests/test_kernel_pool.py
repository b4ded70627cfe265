"""The kernel pool: kernels started ahead serve one submission each, and nothing of one reaches the next."""
import os

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from autograder.grading.execute import stream_text
from autograder.grading.kernel_pool import KernelPool, KernelSettings, preloadable


def run(ready, code):
    status, outputs, error = ready.kernel.run(code, timeout=30)
    assert status == "ok", error
    return stream_text(outputs).strip()


# (scratch folders go to the system's temporary folder, as in grading: the sandboxed uid must reach them)
def test_each_kernel_serves_one_submission_and_leaves_nothing_behind():
    settings = KernelSettings(sandbox=True, budget=60)
    with KernelPool(settings, count=2, ahead=2) as pool:
        first, second = pool.take(), pool.take()
        assert first.scratch != second.scratch and first.guard.key != second.guard.key
        pids = {run(k, "import os; print(os.getpid(), os.getcwd())") for k in (first, second)}
        assert len(pids) == 2
        run(first, "open('answers.txt', 'w').write('42'); open('/tmp/left.txt', 'w').write('42')\n"
                   "import builtins; builtins.LEFT_BEHIND = 42")
        # the other student's kernel sees none of it: not the file, not /tmp, not the interpreter's state
        seen = run(second, "import os, builtins\n"
                           "print(sorted(f for f in os.listdir('.') if not f.startswith('.')), "
                           "[f for f in os.listdir('/tmp') if f != os.path.basename(os.getcwd())], "
                           "hasattr(builtins, 'LEFT_BEHIND'))")
        assert seen == "[] [] False"
        folders = [first.scratch, second.scratch]
        first.close()
        assert not os.path.exists(folders[0]) and os.path.exists(folders[1])
        second.close()
    assert not any(map(os.path.exists, folders))


def test_kernels_nobody_took_are_shut_down():
    pool = KernelPool(KernelSettings(sandbox=True, budget=60), count=3, ahead=2)
    taken = pool.take()  # the pool starts the third in its place
    waiting = [future.result() for future in list(pool._pending)]
    pids = [ready.kernel.km.provisioner.process.pid for ready in waiting]
    assert len(pids) == 2 and pool.left == 0
    pool.close()
    taken.close()
    assert not any(os.path.exists(ready.scratch) for ready in waiting + [taken])
    for pid in pids:  # the sandbox (bwrap) processes the kernels ran under are gone
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_a_kernel_that_cannot_start_is_started_again_then_is_the_job_s_failure_not_the_pool_s(tmp_path, monkeypatch):
    import autograder.grading.kernel_pool as kernel_pool

    outcomes = ["no kernel today", "a kernel", "no kernel today", "still none", "a kernel"]
    calls = []

    def flaky(settings):
        calls.append(1)
        outcome = outcomes.pop(0)
        if outcome != "a kernel":
            raise RuntimeError(outcome)
        return outcome

    monkeypatch.setattr(kernel_pool, "start_ready_kernel", flaky)
    pool = KernelPool(KernelSettings(sandbox=False, scratch_root=str(tmp_path)), count=3, ahead=1)
    assert pool.take() == "a kernel" and len(calls) == 2  # one failed start, started again
    try:
        pool.take()
        raise AssertionError("a second failed start should have been raised to the job that took it")
    except RuntimeError as exc:
        assert "still none" in str(exc)
    assert pool.take() == "a kernel"
    pool.close()


def test_preload_takes_installed_modules_only():
    nb = new_notebook(cells=[
        new_code_cell("%matplotlib inline\nimport numpy as np\nfrom course_lib.asserts import assert_close"),
        new_code_cell("import engine  # the student's own file beside the notebook\nimport autograder.cli"),
        new_code_cell("from . import nothing\nthis is not python"),
        new_code_cell("import json, math"),
    ])
    assert preloadable(nbformat.from_dict(nb)) == ("numpy", "course_lib.asserts", "json", "math")


def test_a_kernel_whose_setup_fails_is_stopped(monkeypatch):
    from autograder.grading import kernel_pool
    from autograder.grading.execute import Kernel

    started = []

    def failing_run(self, code, timeout):
        started.append(self.km.provisioner.process.pid)
        raise RuntimeError("setup failed")

    monkeypatch.setattr(Kernel, "run", failing_run)
    try:
        kernel_pool.start_ready_kernel(KernelSettings(sandbox=True, budget=60))
        raise AssertionError("the setup's failure should have been raised")
    except RuntimeError as exc:
        assert "setup failed" in str(exc)
    (pid,) = started
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
