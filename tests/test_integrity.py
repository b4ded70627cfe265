"""Adversarial submissions: tricks on the kernel's state earn nothing, and are reported."""
import copy
import os

import nbformat
import pytest

from autograder.notebooks import grade_id, visible_test_source
from sample_lab import by_grade_id as cells, with_answer as answer, write_inbox

LAB = "00_tiny"
WRONG_DOUBLE = "def double(x):\n    return x + 1\n"


@pytest.fixture
def allclose_lab(lab):
    """The tiny lab with test_double written with torch.allclose and numpy.allclose and abs."""
    source, release, reference = lab
    test = ("import torch, numpy as np\n"
            "assert torch.allclose(torch.tensor(double(1.0)), torch.tensor(2.0)), 'double(1) should be 2'\n"
            "### BEGIN HIDDEN TESTS\n"
            "assert np.allclose(double(-3.0), -6.0), 'double(-3) should be -6'\n"
            "assert abs(double(0.5) - 1.0) < 1e-9\n"
            "### END HIDDEN TESTS")
    source = copy.deepcopy(source)
    release = copy.deepcopy(release)
    for nb in (source, release):
        cell = next(c for c in nb.cells if grade_id(c) == "test_double")
        cell.source = test if nb is source else visible_test_source(test)
    return source, release, reference


@pytest.mark.parametrize("trick", [
    "import torch\ntorch.allclose = lambda *a, **k: True",
    "import numpy\nnumpy.allclose = lambda *a, **k: True\nimport torch\ntorch.allclose = lambda *a, **k: True",
    "import builtins, torch\nbuiltins.abs = lambda x: 0\ntorch.allclose = lambda *a, **k: True\nimport numpy\nnumpy.allclose = lambda *a, **k: True",
    "import torch\ntorch.Tensor.__bool__ = lambda self: True\ntorch.allclose = lambda *a, **k: torch.tensor(True)",
])
def test_patched_comparisons_do_not_pass_a_wrong_answer(allclose_lab, trick, grade_one):
    source, release, reference = allclose_lab
    nb = answer(reference, "double", WRONG_DOUBLE + trick)
    record = grade_one(nb, source, release, student="eve", cell_timeout=20, budget=120)
    double = cells(record)["test_double"]
    assert double.points == 0, double
    assert double.replaced, "the replaced functions are reported"
    assert "test_double" in record.tampered
    assert cells(record)["test_square"].points == 3  # the honest part still counts


def test_patched_check_module_is_reloaded(lab, grade_one):
    source, release, reference = lab
    trick = ("import course_lib.asserts as checks\nchecks.assert_close = lambda *a, **k: None\n"
             "def square(x):\n    return 0\n")
    record = grade_one(answer(reference, "square", trick), source, release, student="eve", cell_timeout=20, budget=120)
    assert cells(record)["test_square"].points == 0


def test_patching_during_the_test_is_caught(allclose_lab, grade_one):
    source, release, reference = allclose_lab
    sneaky = ("def double(x):\n    import torch, numpy\n    torch.allclose = lambda *a, **k: True\n"
              "    numpy.allclose = lambda *a, **k: True\n    return x + 1\n")
    record = grade_one(answer(reference, "double", sneaky), source, release, student="eve", cell_timeout=20, budget=120)
    assert cells(record)["test_double"].points == 0


def test_swallowing_stdout_does_not_hide_the_guard(lab, grade_one):
    source, release, reference = lab
    trick = "import sys, io\nsys.stdout = io.StringIO()\ndef double(x):\n    return x + 1\n"
    record = grade_one(answer(reference, "double", trick), source, release, student="eve", cell_timeout=20, budget=120)
    assert cells(record)["test_double"].points == 0 and cells(record)["test_square"].points == 3


def test_forged_credit_report_is_ignored(lab, grade_one):
    source, release, reference = lab
    forged = ("from IPython.display import display\n"
              "display({'application/vnd.course.credit+json': {'nonce': None, 'checks': [{'points': 99, 'passed': True, 'message': ''}]}}, raw=True)\n"
              "def double(x):\n    return x + 1\n")
    record = grade_one(answer(reference, "double", forged), source, release, student="eve", cell_timeout=20, budget=120)
    assert cells(record)["test_double"].points == 0


def test_expected_values_are_not_on_disk_for_the_kernel(lab, course, tiny_labs, grade_one):
    from autograder.course import REPO_ROOT

    source, release, reference = lab
    hidden = [str(course.root), str(tiny_labs), str(REPO_ROOT / "labs"), str(REPO_ROOT / "autograder"),
              os.path.expanduser("~/.bashrc")]
    snoop = (f"import os\nvisible = [p for p in {hidden!r} if os.path.exists(p)]\n"
             "assert not visible, visible\n"
             "def double(x):\n    return 2 * x\n")
    record = grade_one(answer(reference, "double", snoop), source, release, student="eve", cell_timeout=20, budget=120)
    assert cells(record)["test_double"].points == 2, cells(record)["test_double"]


def test_partial_credit_per_check(lab, grade_one):
    source, release, reference = lab
    test = ("from course_lib.asserts import Credit, assert_close\ncredit = Credit()\n"
            "with credit.check(1, 'square(3) should be 9'):\n    assert_close(square(3), 9)\n"
            "### BEGIN HIDDEN TESTS\n"
            "with credit.check(2, 'square of a negative number should be positive'):\n    assert_close(square(-4), 16)\n"
            "### END HIDDEN TESTS\n"
            "credit.report()")
    source, release = copy.deepcopy(source), copy.deepcopy(release)
    for nb in (source, release):
        cell = next(c for c in nb.cells if grade_id(c) == "test_square")
        cell.source = test if nb is source else visible_test_source(test)
    half = answer(reference, "square", "def square(x):\n    return x * abs(x)\n")
    result = cells(grade_one(half, source, release, student="eve", cell_timeout=20, budget=120))["test_square"]
    assert result.points == 1 and result.status == "partial"
    assert "square of a negative number should be positive" in result.message
    assert cells(grade_one(reference, source, release, student="eve", cell_timeout=20, budget=120))["test_square"].points == 3
    wrong = answer(reference, "square", "def square(x):\n    return 0\n")
    result = cells(grade_one(wrong, source, release, student="eve", cell_timeout=20, budget=120))["test_square"]
    assert result.points == 0 and result.status == "failed"


def test_honest_reference_raises_no_alarm(lab, grade_one):
    source, release, reference = lab
    record = grade_one(reference, source, release, student="eve", cell_timeout=20, budget=120)
    assert record.score == 5 and record.tampered == []


def test_grading_is_repeatable_with_random_answers(lab, grade_one):
    source, release, reference = lab
    nb = answer(reference, "double", "import random\ndef double(x):\n    return 2 * x if random.random() < 0.5 else 0\n")
    scores = {grade_one(nb, source, release, student="eve", cell_timeout=20, budget=120).score for _ in range(3)}
    assert len(scores) == 1  # seeded per cell: the same submission always gets the same grade


@pytest.mark.parametrize("bomb, survivor", [
    ("import os\nfor _ in range(10000):\n    try:\n        os.fork()\n    except OSError:\n        break\n", "fork"),
    ("blocks = []\nwhile True:\n    blocks.append(bytearray(512 * 2**20))\n", "memory"),
    ("open('/etc/grader-was-here', 'w').write('x')\n", "write outside"),
    ("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)\n", "network"),
])
def test_bombs_and_escapes_cost_only_their_cell(lab, bomb, survivor, grade_one):
    source, release, reference = lab
    nb = copy.deepcopy(reference)
    nb.cells.insert(2, nbformat.v4.new_code_cell(bomb))
    record = grade_one(nb, source, release, student="eve", cell_timeout=20, budget=120)
    assert record.score == 5, (survivor, record.to_json())
    assert not os.path.exists("/etc/grader-was-here")


def test_grading_refuses_without_sandbox_unless_told(course, lab, tmp_path, monkeypatch, capsys):
    import autograder.grading.run_lab as grading
    from autograder.cli import main
    from autograder.grading.sandbox import SandboxUnavailable

    def unavailable():
        raise SandboxUnavailable("bubblewrap (bwrap) is not usable here ... pass --no-sandbox.")

    monkeypatch.setattr(grading, "require_sandbox", unavailable)
    write_inbox(tmp_path / "inbox", {"ada": lab.reference})
    args = ["--course-dir", str(course.root)]
    main(args + ["collect", "folder", str(tmp_path / "inbox"), "-a", LAB])
    assert main(args + ["grade", LAB]) == 2
    assert "--no-sandbox" in capsys.readouterr().err
    assert main(args + ["grade", LAB, "--no-sandbox", "-j", "1"]) == 0


def _forged_test_cell(gid, points, source="assert True"):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": gid, "locked": True, "points": points,
                                 "schema_version": 3, "solution": False, "task": False}
    return cell


def test_invented_and_copied_test_cells_earn_nothing(lab, grade_one):
    """A student who adds a test cell of their own (an id the instructor never wrote, an empty id, one that is not a
    name; any points) or pastes a real test cell twice gains no points and no maximum: only the instructor's test cells count, once each."""
    source, release, reference = lab
    nb = copy.deepcopy(reference)
    square = next(c for c in nb.cells if grade_id(c) == "test_square")
    nb.cells += [_forged_test_cell("test_free_points", 100), copy.deepcopy(square), copy.deepcopy(square),
                 _forged_test_cell("test_more", 5, "pass"), _forged_test_cell("", 5, "pass"),
                 _forged_test_cell("test_list", 5, "pass")]
    nb.cells[-3].metadata["course"] = {"bonus": True}
    nb.cells[-1].metadata["nbgrader"]["grade_id"] = ["not", "a", "name"]
    honest = grade_one(reference, source, release, student="ada", cell_timeout=20, budget=120)
    record = grade_one(nb, source, release, student="eve", cell_timeout=20, budget=120)
    assert [c.grade_id for c in record.cells] == [c.grade_id for c in honest.cells]
    assert (record.score, record.max_score) == (honest.score, honest.max_score)


def test_an_answer_cell_cannot_make_itself_a_test(lab, grade_one):
    """An answer cell whose metadata a student turned into a graded test cell worth 100 points is still graded as
    the instructor's answer cell: worth nothing by itself."""
    source, release, reference = lab
    honest = grade_one(reference, source, release, student="ada", cell_timeout=20, budget=120)
    nb = copy.deepcopy(reference)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            meta.update(solution=False, grade=True, points=100)
    record = grade_one(nb, source, release, student="eve", cell_timeout=20, budget=120)
    assert (record.score, record.max_score) == (honest.score, honest.max_score)
