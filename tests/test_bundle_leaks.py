"""The student bundle hands out no answer of a lab whose window is open.

The real labs are released once, then bundled as `course bundle` does at three moments of a course (every
window open; labs 1 and 2 closed; only lab 6 and the quiz open). Each bundle is searched, file by file,
for every solution and hidden-test line of every open lab (normalised whitespace, at least
MIN_ANSWER_LINE characters, found anywhere in a line: what `grep -F` would find), for the course_lib
definitions its exercises ask for, and for reference modules of open labs. No line is exempt because a
visible test or a statement shows it too: such a line is an answer handed out.
"""
import ast
import json
import os
import shutil
import zipfile
from datetime import datetime, timedelta, timezone

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.bundle import ANSWERS_MARK, answers_of, bundle, plan_bundle, write_bundle
from autograder.cli import main
from autograder.course import Course, CourseError, available_labs
from autograder.notebooks import answer_lines, is_solution_cell, normalised
from autograder.release import release
from conftest import REPO
from json_text import json_strings

LABS = available_labs() if os.environ.get("COURSE_LABS_DIR") is None else []
# the given code of these labs starts from another lab's answers: lab 3 from lab 2's, the quiz quotes lab 4's
GIVES_ANSWERS_OF = {"03_backprop_ninja": "02_makemore", "quiz": "04_gpt"}
NOW = datetime.now(timezone.utc)
needs_labs = pytest.mark.skipif(not LABS, reason="COURSE_LABS_DIR points away from the course's labs")


@pytest.fixture(scope="module")
def released_labs(tmp_path_factory):
    """Every real lab released through nbgrader (seconds each): once for the module."""
    course = Course(tmp_path_factory.mktemp("all-labs") / "course")
    course.root.mkdir(parents=True)
    for lab in LABS:
        release(course, lab)
    return course.root


@pytest.fixture
def course_of_labs(released_labs, tmp_path):
    shutil.copytree(released_labs, tmp_path / "course")
    return Course(tmp_path / "course")


def reference_modules_of(labs):
    """{bundle path: its lab} of the reference modules (course_lib/reference/) that hold answers of these labs."""
    folder = REPO / "course_lib" / "reference"
    return {f"course_lib/reference/{p.name}": answers_of(p) for p in sorted(folder.glob("*.py"))
            if answers_of(p) in labs}


def write_calendar(course, closed=(), not_started=()):
    """course.toml: each lab's session started two hours ago and its window is open for a week, except the
    labs whose window has closed (their session was two weeks ago) and those whose session is next week."""
    lines = []
    for lab in LABS:
        end = (NOW - timedelta(days=14) if lab in closed else
               NOW + timedelta(days=7) if lab in not_started else NOW + timedelta(hours=1))
        lines += [f"[labs.{lab}]", f"session_end = {end.isoformat()}"]
    (course.root / "course.toml").write_text("\n".join(lines) + "\n")


def bundle_files(path) -> dict:
    """{name in the zip: its text} (a notebook's: every string of its JSON, one per line)."""
    files = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            text = zf.read(name).decode("utf-8")
            files[name] = "\n".join(json_strings(json.loads(text))) if name.endswith(".ipynb") else text
    return files


def asked_definitions(nb) -> dict:
    """What the lab's exercises ask students to write: {top-level name in a solution cell: its parameter
    names, or None for a class}."""
    asked = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and is_solution_cell(cell):
            code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for node in ast.parse(code).body:
                if isinstance(node, ast.ClassDef):
                    asked[node.name] = None
                elif isinstance(node, ast.FunctionDef):
                    asked[node.name] = [a.arg for a in node.args.args]
    return asked


def library_answers(name, code, lab, asked) -> list:
    """A bundled module's top-level definitions that answer an exercise of lab: a class of an asked class's
    name, a function that could stand in for an asked function (same name, its parameters first), or the
    whole module when it declares it holds lab's answers."""
    hits = []
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == ANSWERS_MARK for t in node.targets):
            if ast.literal_eval(node.value) == lab:
                hits.append(f"{name}: a reference module of {lab}")
        if not isinstance(node, (ast.ClassDef, ast.FunctionDef)) or node.name not in asked:
            continue
        params = asked[node.name]
        if isinstance(node, ast.ClassDef) and params is None:
            hits.append(f"{name}: class {node.name}, which {lab} asks for")
        elif isinstance(node, ast.FunctionDef) and params is not None and \
                [a.arg for a in node.args.args][:len(params)] == params:
            hits.append(f"{name}: {node.name}({', '.join(params)}), which {lab} asks for")
    return hits


def leaks(course, zip_path, open_labs) -> list:
    """Every answer of an open lab found in the bundle, as 'file: what'."""
    files = bundle_files(zip_path)
    searched = {name: "\n".join(map(normalised, text.splitlines())) for name, text in files.items()}
    modules = {name: text for name, text in files.items() if name.endswith(".py")}
    found = []
    for lab in open_labs:
        source = nbformat.read(course.source(lab), as_version=4)
        for line in sorted(answer_lines(source)):
            found += [f"{name}: a line of {lab}'s answers: {line}" for name, text in searched.items() if line in text]
        asked = asked_definitions(source)
        for name, code in modules.items():
            found += library_answers(name, code, lab, asked)
    for name, text in searched.items():  # (autograder/notebooks.py names the markers, to find them)
        found += [f"{name}: nbgrader marker {marker}" for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS")
                  if marker in text and name.endswith(".ipynb")]
    return found


def test_answer_lines_are_the_long_solution_and_hidden_test_lines():
    nb = new_notebook(cells=[
        new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return   sorted(set(x))[::-1]  # long enough\n"
                      "    return x\n    ### END SOLUTION\n    given_line_is_not_an_answer = 1234567890"),
        new_code_cell("assert f([1]) == [1], 'a visible test line, long enough'\n### BEGIN HIDDEN TESTS\n"
                      "assert f([2, 1, 2]) == [2, 1], 'hidden'\n### END HIDDEN TESTS"),
        new_markdown_cell("a statement, not an answer, however long it is"),
    ])
    nb.cells[0].metadata["nbgrader"] = {"solution": True, "grade_id": "f"}
    assert answer_lines(nb) == {"return sorted(set(x))[::-1] # long enough", "assert f([2, 1, 2]) == [2, 1], 'hidden'"}


@needs_labs
def test_a_bundle_with_every_window_open_holds_no_answer(course_of_labs, tmp_path):
    write_calendar(course_of_labs)
    packed = [lab for lab in LABS if lab not in GIVES_ANSWERS_OF]
    path = bundle(course_of_labs, tmp_path / "b.zip", labs=packed)
    names = zipfile.ZipFile(path).namelist()
    assert all(f"notebooks/{lab}.ipynb" in names for lab in packed)
    assert "course_lib/gpt.py" in names and "course_lib/reference/__init__.py" in names
    assert "course_lib/reference/gpt.py" not in names
    found = leaks(course_of_labs, path, LABS)
    assert not found, f"{len(found)} answers of open labs in the bundle:\n" + "\n".join(found)


@needs_labs
def test_a_lab_that_gives_an_open_labs_answers_is_refused_unless_forced(course_of_labs, tmp_path, capsys):
    write_calendar(course_of_labs)
    with pytest.raises(CourseError) as refused:
        plan_bundle(course_of_labs)
    message = str(refused.value)
    assert "\n" not in message and "--force" in message
    for lab, answers_of in GIVES_ANSWERS_OF.items():
        assert f"the release of {lab}" in message and f"of {answers_of} (open until" in message, message
    args = ["--course-dir", str(course_of_labs.root), "bundle", "--out", str(tmp_path / "b.zip")]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and "02_makemore" in error
    assert not (tmp_path / "b.zip").exists()
    assert main(args + ["--force"]) == 0
    out, err = capsys.readouterr()
    assert f"packed: {', '.join(LABS)}" in out and "warning: --force: the release of 03_backprop_ninja" in err
    assert "notebooks/03_backprop_ninja.ipynb" in zipfile.ZipFile(tmp_path / "b.zip").namelist()


@needs_labs
def test_lab_3_is_packed_once_lab_2s_window_has_closed_and_only_started_sessions(course_of_labs, tmp_path):
    write_calendar(course_of_labs, closed=("01_micrograd", "02_makemore"), not_started=("quiz",))
    plan = plan_bundle(course_of_labs)
    assert plan.labs == [lab for lab in LABS if lab != "quiz"]
    assert list(plan.left_out) == ["quiz"] and plan.left_out["quiz"].startswith("its session starts ")
    open_modules = reference_modules_of([lab for lab in LABS if lab not in ("01_micrograd", "02_makemore")])
    assert "course_lib/reference/gpt.py" in open_modules and sorted(plan.withheld) == sorted(open_modules)
    for module, lab in open_modules.items():
        assert plan.withheld[module].startswith(f"answers of {lab}, open until ")
    path = write_bundle(course_of_labs, plan, tmp_path / "b.zip")
    assert "notebooks/03_backprop_ninja.ipynb" in zipfile.ZipFile(path).namelist()
    found = leaks(course_of_labs, path, [lab for lab in LABS if lab not in ("01_micrograd", "02_makemore")])
    assert not found, f"{len(found)} answers of open labs in the bundle:\n" + "\n".join(found)


@needs_labs
def test_at_the_end_of_the_course_closed_labs_reference_pieces_are_packed(course_of_labs, tmp_path):
    still_open = ("06_diffusion", "quiz")
    write_calendar(course_of_labs, closed=[lab for lab in LABS if lab not in still_open])
    plan = plan_bundle(course_of_labs)
    assert plan.labs == LABS and not plan.left_out
    assert sorted(plan.withheld) == sorted(reference_modules_of(still_open))
    path = write_bundle(course_of_labs, plan, tmp_path / "b.zip")
    names = zipfile.ZipFile(path).namelist()
    assert "course_lib/reference/gpt.py" in names and not set(plan.withheld) & set(names)
    found = leaks(course_of_labs, path, still_open)
    assert not found, f"{len(found)} answers of open labs in the bundle:\n" + "\n".join(found)


def test_without_course_toml_every_released_lab_is_packed_with_a_warning(course, tmp_path, capsys):
    assert main(["--course-dir", str(course.root), "bundle", "--out", str(tmp_path / "b.zip")]) == 0
    out, err = capsys.readouterr()
    assert "packed: 00_tiny" in out and "withheld: course_lib/reference/gpt.py (answers of 04_gpt" in out
    assert err.startswith("warning: no course.toml in ") and err.count("\n") == 1
    names = zipfile.ZipFile(tmp_path / "b.zip").namelist()
    assert "notebooks/00_tiny.ipynb" in names and "course_lib/reference/gpt.py" not in names


def test_the_default_leaves_out_labs_whose_session_has_not_started(course, tmp_path, capsys):
    start, end = NOW + timedelta(hours=2), NOW + timedelta(hours=3)
    (course.root / "course.toml").write_text(f"[labs.00_tiny]\nsession_start = {start.isoformat()}\n"
                                             f"session_end = {end.isoformat()}\n")
    args = ["--course-dir", str(course.root), "bundle", "--out", str(tmp_path / "b.zip")]
    assert main(args) == 2
    assert "no released lab's session has started: 00_tiny: its session starts" in capsys.readouterr().err
    assert main(args + ["--labs", "00_tiny"]) == 0  # named: packed before its session
    assert "packed: 00_tiny" in capsys.readouterr().out


@pytest.mark.parametrize("toml, labs, message", [
    ("[labs.00_tiny\n", [], "not valid TOML"),
    ("[labs]\n00_tiny = 'monday'\n", [], "[labs.00_tiny] must be a table"),
    ("[labs.00_tiny]\nsession_start = 2026-10-05T18:00:00Z\nsession_end = 2026-10-05T15:00:00Z\n", [],
     "session_start 2026-10-05T18:00:00+00:00 is after session_end"),
    ("[course]\nresubmission_days = 'a week'\n[labs.00_tiny]\nsession_end = 2026-10-05T15:00:00Z\n", [],
     "resubmission_days must be a number"),
    ("", ["--labs", "07_unknown"], "not released in "),
])
def test_bad_input_is_one_line_naming_the_fix(course, tmp_path, capsys, toml, labs, message):
    (course.root / "course.toml").write_text(toml)
    assert main(["--course-dir", str(course.root), "bundle", "--out", str(tmp_path / "b.zip"), *labs]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and message in error, error
