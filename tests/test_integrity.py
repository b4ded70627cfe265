"""Adversarial submissions: tricks on the kernel's state earn nothing, and are reported."""
import copy
import os

import nbformat
import pytest

from autograder.grading.records import GradeJob
from autograder.grading.submission import grade_submission
from autograder.notebooks import grade_id, visible_test_source
from autograder.planted_bugs import reference_submission

LAB = "00_tiny"
WRONG_DOUBLE = "def double(x):\n    return x + 1\n"


@pytest.fixture
def lab(course):
    source = nbformat.read(course.source(LAB), as_version=4)
    release = nbformat.read(course.release(LAB), as_version=4)
    return source, release, reference_submission(release, source)


def grade(tmp_path, source, release, nb):
    path = tmp_path / "s.ipynb"
    nbformat.write(nb, path)
    return grade_submission(GradeJob("eve", LAB, str(path), source, release, cell_timeout=20, budget=120))


def answer(nb, cell_id, code):
    nb = copy.deepcopy(nb)
    next(c for c in nb.cells if grade_id(c) == cell_id).source = code
    return nb


def cells(record):
    return {c.grade_id: c for c in record.cells}


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
def test_patched_comparisons_do_not_pass_a_wrong_answer(tmp_path, allclose_lab, trick):
    source, release, reference = allclose_lab
    nb = answer(reference, "double", WRONG_DOUBLE + trick)
    record = grade(tmp_path, source, release, nb)
    double = cells(record)["test_double"]
    assert double.points == 0, double
    assert double.replaced, "the replaced functions are reported"
    assert "test_double" in record.tampered
    assert cells(record)["test_square"].points == 3  # the honest part still counts


def test_patched_check_module_is_reloaded(tmp_path, lab):
    source, release, reference = lab
    trick = ("import course_lib.asserts as checks\nchecks.assert_close = lambda *a, **k: None\n"
             "def square(x):\n    return 0\n")
    record = grade(tmp_path, source, release, answer(reference, "square", trick))
    assert cells(record)["test_square"].points == 0


def test_patching_during_the_test_is_caught(tmp_path, allclose_lab):
    source, release, reference = allclose_lab
    sneaky = ("def double(x):\n    import torch, numpy\n    torch.allclose = lambda *a, **k: True\n"
              "    numpy.allclose = lambda *a, **k: True\n    return x + 1\n")
    record = grade(tmp_path, source, release, answer(reference, "double", sneaky))
    assert cells(record)["test_double"].points == 0


def test_swallowing_stdout_does_not_hide_the_guard(tmp_path, lab):
    source, release, reference = lab
    trick = "import sys, io\nsys.stdout = io.StringIO()\ndef double(x):\n    return x + 1\n"
    record = grade(tmp_path, source, release, answer(reference, "double", trick))
    assert cells(record)["test_double"].points == 0 and cells(record)["test_square"].points == 3


def test_forged_credit_report_is_ignored(tmp_path, lab):
    source, release, reference = lab
    forged = ("from IPython.display import display\n"
              "display({'application/vnd.course.credit+json': {'nonce': None, 'checks': [{'points': 99, 'passed': True, 'message': ''}]}}, raw=True)\n"
              "def double(x):\n    return x + 1\n")
    record = grade(tmp_path, source, release, answer(reference, "double", forged))
    assert cells(record)["test_double"].points == 0


def test_expected_values_are_not_on_disk_for_the_kernel(tmp_path, lab, course, tiny_labs):
    from autograder.course import REPO_ROOT

    source, release, reference = lab
    hidden = [str(course.root), str(tiny_labs), str(REPO_ROOT / "labs"), str(REPO_ROOT / "autograder"),
              os.path.expanduser("~/.bashrc")]
    snoop = (f"import os\nvisible = [p for p in {hidden!r} if os.path.exists(p)]\n"
             "assert not visible, visible\n"
             "def double(x):\n    return 2 * x\n")
    record = grade(tmp_path, source, release, answer(reference, "double", snoop))
    assert cells(record)["test_double"].points == 2, cells(record)["test_double"]


def test_partial_credit_per_check(tmp_path, lab):
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
    result = cells(grade(tmp_path, source, release, half))["test_square"]
    assert result.points == 1 and result.status == "partial"
    assert "square of a negative number should be positive" in result.message
    assert cells(grade(tmp_path, source, release, reference))["test_square"].points == 3
    wrong = answer(reference, "square", "def square(x):\n    return 0\n")
    result = cells(grade(tmp_path, source, release, wrong))["test_square"]
    assert result.points == 0 and result.status == "failed"


def test_honest_reference_raises_no_alarm(tmp_path, lab):
    source, release, reference = lab
    record = grade(tmp_path, source, release, reference)
    assert record.score == 5 and record.tampered == []


def test_grading_is_repeatable_with_random_answers(tmp_path, lab):
    source, release, reference = lab
    nb = answer(reference, "double", "import random\ndef double(x):\n    return 2 * x if random.random() < 0.5 else 0\n")
    scores = {grade(tmp_path, source, release, nb).score for _ in range(3)}
    assert len(scores) == 1  # seeded per cell: the same submission always gets the same grade


@pytest.mark.parametrize("bomb, survivor", [
    ("import os\nfor _ in range(10000):\n    try:\n        os.fork()\n    except OSError:\n        break\n", "fork"),
    ("blocks = []\nwhile True:\n    blocks.append(bytearray(512 * 2**20))\n", "memory"),
    ("open('/etc/grader-was-here', 'w').write('x')\n", "write outside"),
    ("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)\n", "network"),
])
def test_bombs_and_escapes_cost_only_their_cell(tmp_path, lab, bomb, survivor):
    source, release, reference = lab
    nb = copy.deepcopy(reference)
    nb.cells.insert(2, nbformat.v4.new_code_cell(bomb))
    record = grade(tmp_path, source, release, nb)
    assert record.score == 5, (survivor, record.to_json())
    assert not os.path.exists("/etc/grader-was-here")


def test_grading_refuses_without_sandbox_unless_told(course, tmp_path, monkeypatch, capsys):
    import autograder.grading.run_lab as grading
    from autograder.cli import main
    from autograder.grading.sandbox import SandboxUnavailable

    def unavailable():
        raise SandboxUnavailable("bubblewrap (bwrap) is not usable here ... pass --no-sandbox.")

    monkeypatch.setattr(grading, "require_sandbox", unavailable)
    source = nbformat.read(course.source(LAB), as_version=4)
    release = nbformat.read(course.release(LAB), as_version=4)
    (tmp_path / "inbox").mkdir()
    nbformat.write(reference_submission(release, source), tmp_path / "inbox" / "ada.ipynb")
    args = ["--course-dir", str(course.root)]
    main(args + ["collect", "folder", str(tmp_path / "inbox"), "-a", LAB])
    assert main(args + ["grade", LAB]) == 2
    assert "--no-sandbox" in capsys.readouterr().err
    assert main(args + ["grade", LAB, "--no-sandbox", "-j", "1"]) == 0
