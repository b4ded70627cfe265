"""`course check` (students) and `course verify` (instructors) on the tiny lab."""
import json

import nbformat

from autograder.student_check import check_notebook
from autograder.cli import main
from autograder.planted_bugs import reference_submission
from autograder.verify import check_promise, verify_lab

LAB = "00_tiny"


def test_check_explains_what_passes_and_what_is_missing(course, tmp_path):
    release = nbformat.read(course.release(LAB), as_version=4)
    source = nbformat.read(course.source(LAB), as_version=4)
    lines = []
    assert not check_notebook(course.release(LAB), echo=lines.append, released_folders=(course.root / "release",))
    text = "\n".join(lines)
    assert "2 graded test cells worth 5 points" in text
    assert "test_double: 0 of 2 points (error) - NotImplementedError" in text
    assert "Still to answer (they raise NotImplementedError): double, square" in text

    done = tmp_path / "done.ipynb"
    nbformat.write(reference_submission(release, source), done)
    lines.clear()
    assert check_notebook(done, echo=lines.append, released_folders=(course.root / "release",))
    assert "2 of 2 test cells pass their visible tests: 5 of 5 points" in "\n".join(lines)


def test_check_grades_like_the_grader(course, tmp_path):
    """An edited test cell is put back, a trick on IPython earns nothing, per-check credit counts: the score
    `course check` shows is the one `course grade` gives on the visible tests."""
    release = nbformat.read(course.release(LAB), as_version=4)
    source = nbformat.read(course.source(LAB), as_version=4)
    nb = reference_submission(release, source)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    cells["double"].source = "def double(x):\n    return 3 * x\n"
    cells["test_double"].source = "assert True"  # the student "fixed" the test
    cells["square"].source = ("import IPython.core.interactiveshell as ish\n"
                              "ish.InteractiveShell.showtraceback = lambda *a, **k: None\n"
                              "def _clear(result):\n    result.error_in_exec = None\n"
                              "get_ipython().events.register('post_run_cell', _clear)\n"
                              "def square(x):\n    return 0\n")
    path = tmp_path / "sneaky.ipynb"
    nbformat.write(nb, path)
    lines = []
    assert not check_notebook(path, echo=lines.append, released_folders=(course.root / "release",))
    text = "\n".join(lines)
    assert "test_double: 0 of 2 points (failed)" in text and "this test cell was edited in your notebook" in text
    assert "test_square: 0 of 3 points" in text and "put back by the grader" in text
    assert "0 of 2 test cells pass their visible tests: 0 of 5 points" in text


def test_check_refuses_a_broken_file(tmp_path, capsys):
    bad = tmp_path / "x.ipynb"
    bad.write_text("{]")
    assert main(["check", str(bad)]) == 1
    assert "x.ipynb: not a notebook" in capsys.readouterr().out


def test_verify_passes_when_promises_hold(tiny_labs, capsys):
    assert verify_lab(LAB)
    out = capsys.readouterr().out
    assert "[ok] double of 21: 42" in out and "test cells: 2/2 pass" in out and "PASS" in out


def test_verify_fails_a_broken_promise(tiny_labs, capsys):
    path = tiny_labs / LAB / f"{LAB}.ipynb"
    nb = nbformat.read(path, as_version=4)
    original = json.dumps(nb)
    nb.metadata["course"]["promises"].append({"name": "impossible", "expr": "double(1)", "at_least": 3})
    nbformat.write(nb, path)
    try:
        assert main(["verify", LAB]) == 1
        assert "[FAIL] impossible: 2 (promised >= 3)" in capsys.readouterr().out
    finally:
        nbformat.write(nbformat.reads(original, as_version=4), path)


def test_full_only_promises_are_checked_in_full_runs_and_skipped_when_graded(tiny_labs, capsys):
    path = tiny_labs / LAB / f"{LAB}.ipynb"
    nb = nbformat.read(path, as_version=4)
    original = json.dumps(nb)
    nb.metadata["course"]["promises"].append(
        {"name": "trained number", "expr": "double(1)", "at_least": 3, "full_only": True})
    nbformat.write(nb, path)
    try:
        assert main(["verify", LAB, "--graded"]) == 0
        assert "[skip] trained number (full run only)" in capsys.readouterr().out
        assert main(["verify", LAB]) == 1
        assert "[FAIL] trained number: 2 (promised >= 3)" in capsys.readouterr().out
    finally:
        nbformat.write(nbformat.reads(original, as_version=4), path)


def test_promise_targets():
    assert check_promise({"name": "a", "expected": 1.0, "tol": 0.1}, 1.05).ok
    assert not check_promise({"name": "a", "expected": 1.0, "tol": 0.01}, 1.05).ok
    assert not check_promise({"name": "a", "at_most": 2.0}, "NameError: x").ok
