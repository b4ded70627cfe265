"""A submission that hangs, kills its kernel, raises or warns keeps the points of the cells that passed."""
import nbformat

from autograder.grading.restore import restore_test_cells
from autograder.notebooks import grade_id
from sample_lab import by_grade_id as by_id, with_answer

LAB = "00_tiny"


def test_infinite_loop_times_out_and_other_cells_still_count(lab, grade_one):
    nb = with_answer(lab.reference, "double", "def double(x):\n    while True:\n        pass")
    nb.cells.insert(2, nbformat.v4.new_code_cell("double(1)"))  # the student calls it at top level
    record = grade_one(nb, lab.source, lab.release)
    cells = by_id(record)
    assert cells["test_double"].points == 0
    assert cells["test_square"].points == 3
    assert record.score == 3


def test_loop_that_swallows_interrupts_restarts_the_kernel(lab, grade_one):
    hog = "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass"
    nb = nbformat.from_dict(lab.reference)
    nb.cells.insert(2, nbformat.v4.new_code_cell(hog))
    record = grade_one(nb, lab.source, lab.release)
    assert record.kernel_restarts >= 1
    # double was defined before the hog: replayed after the restart, so its test still passes
    assert by_id(record)["test_double"].points == 2 and by_id(record)["test_square"].points == 3


def test_os_exit_kills_the_kernel_but_not_the_grading(lab, grade_one):
    nb = nbformat.from_dict(lab.reference)
    nb.cells.insert(4, nbformat.v4.new_code_cell("import os\nos._exit(1)"))
    record = grade_one(nb, lab.source, lab.release)
    assert record.kernel_restarts == 1
    assert record.score == 5, record.to_json()


def test_warnings_do_not_zero_a_correct_cell(lab, grade_one):
    nb = with_answer(lab.reference, "double", "import warnings, sys\ndef double(x):\n"
                     "    warnings.warn('deprecated thing', UserWarning)\n    print('noise', file=sys.stderr)\n    return 2 * x")
    assert grade_one(nb, lab.source, lab.release).score == 5


def test_an_exception_in_an_answer_costs_only_its_test(lab, grade_one):
    nb = with_answer(lab.reference, "square", "def square(x):\n    raise ValueError('oops')")
    cells = by_id(grade_one(nb, lab.source, lab.release))
    assert cells["test_double"].points == 2
    assert cells["test_square"].points == 0 and cells["test_square"].message == "ValueError: oops"


def test_notebook_budget_skips_the_rest(lab, grade_one):
    nb = nbformat.from_dict(lab.reference)
    nb.cells.insert(2, nbformat.v4.new_code_cell("import time\ntime.sleep(30)"))
    record = grade_one(nb, lab.source, lab.release, cell_timeout=20, budget=4)
    assert record.budget_exhausted and record.score < 5


def test_print_flood_is_truncated(lab, grade_one):
    nb = nbformat.from_dict(lab.reference)
    nb.cells.insert(2, nbformat.v4.new_code_cell("for i in range(200000):\n    print(i)"))
    record = grade_one(nb, lab.source, lab.release, cell_timeout=20)
    assert record.score == 5
    flood = record.notebook.cells[2]
    assert sum(len(o.get("text", "")) for o in flood.outputs) < 200_000


def test_tampered_test_cell_is_restored_and_reported(lab, grade_one):
    nb = with_answer(lab.reference, "double", "def double(x):\n    return x")
    nb = with_answer(nb, "test_double", "pass  # nothing to see here")
    record = grade_one(nb, lab.source, lab.release)
    assert record.tampered == ["test_double"]
    assert by_id(record)["test_double"].points == 0  # the instructor's test ran


def test_untouched_test_cells_raise_no_false_alarm(lab):
    source, release, reference = lab
    nb, tampered = restore_test_cells(reference, source, release)
    assert tampered == []
    assert "double(-3)" in "".join(c.source for c in nb.cells)  # hidden tests are back


def test_deleted_test_cell_comes_back(lab, grade_one):
    nb = nbformat.from_dict(lab.reference)
    nb.cells = [c for c in nb.cells if grade_id(c) != "test_square"]
    record = grade_one(nb, lab.source, lab.release)
    assert by_id(record)["test_square"].points == 3 and "test_square" in record.tampered


def test_student_code_does_not_see_tokens(lab, monkeypatch, grade_one):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    nb = with_answer(lab.reference, "double", "import os\nassert 'SLACK_BOT_TOKEN' not in os.environ\ndef double(x):\n    return 2 * x")
    assert grade_one(nb, lab.source, lab.release).score == 5


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


def test_a_test_cells_print_beside_the_guards_report_stays_a_notebook_output():
    """The guard's report line and a test cell's own print can come in one stream message: the output without the
    report is still a notebook node, so the executed notebook can be written."""
    from course_lib.guard import MARKER
    from autograder.grading.integrity import without_reports

    mixed = nbformat.v4.new_output("stream", name="stdout", text=f"the student's print\nno newline{MARKER}completed...\n")
    kept = without_reports([mixed])
    assert [o.text for o in kept] == ["the student's print\nno newline"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print()", outputs=kept)])
    assert "the student's print" in nbformat.writes(nb)


def test_course_grade_saves_every_student_whatever_their_cells_print_and_whatever_fails_to_save(course, lab, tmp_path):
    """`course grade` as instructors run it: a test cell whose output shares a message with the guard's report is
    saved; a student whose results cannot be written (here their folder is a file) is reported, and the others are
    graded and saved all the same."""
    from course_cli import run_course
    from sample_lab import write_inbox

    chatty = with_answer(lab.reference, "double", "def double(x):\n    print('doubling', x, end='')\n    return 2 * x")
    write_inbox(tmp_path / "inbox", {"ada": chatty, "bob": lab.reference, "cy": lab.reference})
    assert run_course(course.root, "collect", "folder", tmp_path / "inbox", "-a", LAB).returncode == 0
    (course.root / "autograded" / "bob").mkdir(parents=True)
    (course.root / "autograded" / "bob" / LAB).write_text("in the way")
    done = run_course(course.root, "grade", LAB, "-j", "2")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "bob" in done.stdout and "could not be saved" in done.stdout, done.stdout
    for student in ("ada", "cy"):
        executed = nbformat.read(course.autograded_dir(student, LAB) / f"{LAB}.ipynb", as_version=4)
        assert any(o.get("output_type") == "stream" for c in executed.cells for o in c.get("outputs", [])) \
            or student == "cy"
        assert f"{student} " in done.stdout and "5 / 5" in done.stdout.split(f"{student} ", 1)[1].splitlines()[0]
    rerun = run_course(course.root, "grade", LAB)
    assert "ada" in rerun.stdout and "already graded and unchanged 2" in rerun.stdout, rerun.stdout
