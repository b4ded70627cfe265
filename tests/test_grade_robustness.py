"""A submission that hangs, kills its kernel, raises or warns keeps the points of the cells that passed."""
import nbformat
import pytest

from autograder.grading.records import GradeJob
from autograder.grading.restore import restore_test_cells
from autograder.grading.submission import grade_submission
from autograder.notebooks import grade_id
from autograder.planted_bugs import reference_submission

LAB = "00_tiny"


@pytest.fixture
def lab(course):
    source = nbformat.read(course.source(LAB), as_version=4)
    release = nbformat.read(course.release(LAB), as_version=4)
    return source, release, reference_submission(release, source)


def grade(tmp_path, lab, nb, **kw):
    source, release, _ = lab
    path = tmp_path / "submission.ipynb"
    nbformat.write(nb, path)
    job = GradeJob("s1", LAB, str(path), source, release, cell_timeout=kw.get("timeout", 3), budget=kw.get("budget", 60))
    return grade_submission(job)


def with_answer(nb, cell_id, code):
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if grade_id(cell) == cell_id:
            cell.source = code
    return nb


def by_id(record):
    return {c.grade_id: c for c in record.cells}


def test_infinite_loop_times_out_and_other_cells_still_count(tmp_path, lab):
    nb = with_answer(lab[2], "double", "def double(x):\n    while True:\n        pass")
    nb.cells.insert(2, nbformat.v4.new_code_cell("double(1)"))  # the student calls it at top level
    record = grade(tmp_path, lab, nb)
    cells = by_id(record)
    assert cells["test_double"].points == 0
    assert cells["test_square"].points == 3
    assert record.score == 3


def test_loop_that_swallows_interrupts_restarts_the_kernel(tmp_path, lab):
    hog = "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass"
    nb = nbformat.from_dict(lab[2])
    nb.cells.insert(2, nbformat.v4.new_code_cell(hog))
    record = grade(tmp_path, lab, nb)
    assert record.kernel_restarts >= 1
    # double was defined before the hog: replayed after the restart, so its test still passes
    assert by_id(record)["test_double"].points == 2 and by_id(record)["test_square"].points == 3


def test_os_exit_kills_the_kernel_but_not_the_grading(tmp_path, lab):
    nb = nbformat.from_dict(lab[2])
    nb.cells.insert(4, nbformat.v4.new_code_cell("import os\nos._exit(1)"))
    record = grade(tmp_path, lab, nb)
    assert record.kernel_restarts == 1
    assert record.score == 5, record.to_json()


def test_warnings_do_not_zero_a_correct_cell(tmp_path, lab):
    nb = with_answer(lab[2], "double", "import warnings, sys\ndef double(x):\n"
                     "    warnings.warn('deprecated thing', UserWarning)\n    print('noise', file=sys.stderr)\n    return 2 * x")
    assert grade(tmp_path, lab, nb).score == 5


def test_an_exception_in_an_answer_costs_only_its_test(tmp_path, lab):
    nb = with_answer(lab[2], "square", "def square(x):\n    raise ValueError('oops')")
    cells = by_id(grade(tmp_path, lab, nb))
    assert cells["test_double"].points == 2
    assert cells["test_square"].points == 0 and cells["test_square"].message == "ValueError: oops"


def test_notebook_budget_skips_the_rest(tmp_path, lab):
    nb = nbformat.from_dict(lab[2])
    nb.cells.insert(2, nbformat.v4.new_code_cell("import time\ntime.sleep(30)"))
    record = grade(tmp_path, lab, nb, timeout=20, budget=4)
    assert record.budget_exhausted and record.score < 5


def test_print_flood_is_truncated(tmp_path, lab):
    nb = nbformat.from_dict(lab[2])
    nb.cells.insert(2, nbformat.v4.new_code_cell("for i in range(200000):\n    print(i)"))
    record = grade(tmp_path, lab, nb, timeout=20)
    assert record.score == 5
    flood = record.notebook.cells[2]
    assert sum(len(o.get("text", "")) for o in flood.outputs) < 200_000


def test_tampered_test_cell_is_restored_and_reported(tmp_path, lab):
    nb = with_answer(lab[2], "double", "def double(x):\n    return x")
    nb = with_answer(nb, "test_double", "pass  # nothing to see here")
    record = grade(tmp_path, lab, nb)
    assert record.tampered == ["test_double"]
    assert by_id(record)["test_double"].points == 0  # the instructor's test ran


def test_untouched_test_cells_raise_no_false_alarm(lab):
    source, release, reference = lab
    nb, tampered = restore_test_cells(reference, source, release)
    assert tampered == []
    assert "double(-3)" in "".join(c.source for c in nb.cells)  # hidden tests are back


def test_deleted_test_cell_comes_back(tmp_path, lab):
    nb = nbformat.from_dict(lab[2])
    nb.cells = [c for c in nb.cells if grade_id(c) != "test_square"]
    record = grade(tmp_path, lab, nb)
    assert by_id(record)["test_square"].points == 3 and "test_square" in record.tampered


def test_student_code_does_not_see_tokens(tmp_path, lab, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    nb = with_answer(lab[2], "double", "import os\nassert 'SLACK_BOT_TOKEN' not in os.environ\ndef double(x):\n    return 2 * x")
    assert grade(tmp_path, lab, nb).score == 5


def test_kernels_do_not_inherit_the_graders_torch_cache_folders(monkeypatch):
    from autograder.grading.execute import kernel_environment

    # torch sets these in os.environ at its first compile or dynamo import, pointing at the grader's own
    # /tmp/torchinductor_root, which the sandboxed kernel's user cannot write (a PermissionError in
    # every training cell that touched dynamo)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/tmp/torchinductor_root")
    monkeypatch.setenv("TRITON_CACHE_DIR", "/tmp/triton_root")
    env = kernel_environment(graded=True)
    assert "TORCHINDUCTOR_CACHE_DIR" not in env and "TRITON_CACHE_DIR" not in env
    assert env["NBGRADER_EXECUTION"] == "autograde"


def test_sandbox_tmp_is_writable_by_the_kernel_user(tmp_path):
    from autograder.grading.sandbox import bwrap_prefix

    args = bwrap_prefix(tmp_path)
    for folder in ("/tmp", "/dev/shm"):
        i = args.index(folder)
        assert args[i - 3:i] == ["--perms", "1777", "--tmpfs"], args[i - 3:i + 1]
