"""The labs' shape (issues 13 and 25): a core that fits its session by the time model, optional `## (*)` sections
whose test cells (and only theirs) earn bonus points, questions that make the student think, and releases whose
visible tests never show an answer and whose hidden tests read no name the student was never given.

Conventions checked, on every labs/*/*.ipynb but the quiz:
- every exercise label, a heading (`### Exercise 3 — the engine (~25 min)`, `## 7. Exercise 5 — ... (~30 min)`)
  or a bold label (`**Exercise 4.** (~10 min) ...`; `Question` labels alike), carries its estimate `(~N min)`;
- every test cell of a `## (*)` section is a bonus cell (cell metadata `"course": {"bonus": true}`), no bonus cell is
  outside one, and a (*) section without test cells says it is "not graded" (and one that says so has none);
- a lab with bonus cells says in its first markdown cell: "a lab's grade never goes above 100%".

And by the time model (docs/time-model.md, autograder/lab_time.py), with the markers it defines:
- the core takes at most 75 minutes (lab 6: 55), every core code cell's run time recorded;
- every label's (~N min) is the model's minutes for its exercise, and the introduction states the core's `~T min`,
  each within a minute (rounding);
- the extras' bonus points are at most a third of the core's points;
- the core holds at least two inline questions (`"course": {"kind": "question"}` on the answer's solution cell) and
  at least one hyperparameter exercise (`"kind": "hyperparameter"`), each followed by a test cell that reads a name
  its solution sets;
- every name a hidden test reads is defined in a released cell or named in the released text
  (autograder.release_checks.unreleased_names);
- no visible test cell holds a run of MIN_RUN or more tokens of a solution's expression, local names, numbers and
  strings abstracted (autograder.release_checks.solution_overlaps: the old lab 4 cell 22, kept under
  tests/fixtures/, is what it must find).
"""
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.lab_time import (EXERCISE_BOLD, EXERCISE_HEADING, EXTRAS, HEADING, MINUTES, course_meta,
                                 markdown_lines, notebook_time)
from autograder.notebooks import is_bonus_cell, is_solution_cell, is_test_cell, nbgrader_meta, visible_test_source
from autograder.release_checks import MIN_RUN, assigned_in_solution, names_read, solution_overlaps, unreleased_names

LABS = Path(__file__).resolve().parent.parent / "labs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOTEBOOKS = sorted(p for p in LABS.glob("*/*.ipynb") if p.parent.name != "quiz")
IDS = [p.parent.name for p in NOTEBOOKS]
CAP_SENTENCE = "a lab's grade never goes above 100%"

NOT_GRADED = re.compile(r"\bnot graded\b", re.IGNORECASE)


def _lines(source: str):
    """The markdown's lines outside fenced code blocks (a `# comment` in a code example is no heading)."""
    return (line for line, fenced in markdown_lines(source) if not fenced)


def lab_shape(nb):
    """(exercises, sections) of a notebook: exercises as dicts (cell, label, minutes or None, extra), sections as
    dicts (cell, title, extra, text, tests: [(cell index, is bonus)]) for every level-1/2 heading, in order."""
    exercises, sections = [], [{"cell": 0, "title": "", "extra": False, "text": "", "tests": []}]
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for line in _lines(cell.source):
                heading = HEADING.match(line)
                if heading and len(heading.group(1)) <= 2:
                    title = heading.group(2)
                    sections.append({"cell": index, "title": title, "extra": len(heading.group(1)) == 2 and
                                     bool(EXTRAS.match(title)), "text": "", "tests": []})
                sections[-1]["text"] += line + "\n"
                if heading and EXERCISE_HEADING.match(heading.group(2)):
                    label, found = heading.group(2), MINUTES.search(heading.group(2))
                elif (bold := EXERCISE_BOLD.match(line)):
                    label, found = bold.group(0).strip(), MINUTES.search(bold.group(0))
                else:
                    continue
                exercises.append({"cell": index, "label": label[:60], "extra": sections[-1]["extra"],
                                  "minutes": int(found.group(1)) if found else None})
        elif is_test_cell(cell):
            sections[-1]["tests"].append((index, is_bonus_cell(cell)))
    return exercises, sections


def shape_problems(nb, lab: str) -> list:
    """What breaks the conventions, one line each: the lab, the cell index and what to do."""
    exercises, sections = lab_shape(nb)
    problems = []
    for ex in exercises:
        if ex["minutes"] is None:
            problems.append(f"{lab}: cell {ex['cell']}: exercise {ex['label']!r} has no time estimate: end its heading "
                            "with (~N min), or put (~N min) right after its bold label")
    for section in sections:
        tests = section["tests"]
        if section["extra"]:
            not_graded = bool(NOT_GRADED.search(section["text"]))
            for index, bonus in tests:
                if not bonus:
                    problems.append(f"{lab}: cell {index}: a test cell in the (*) section {section['title']!r} (cell "
                                    f"{section['cell']}) is not a bonus cell: add \"course\": {{\"bonus\": true}} to its "
                                    "cell metadata")
            if not_graded and tests:
                problems.append(f"{lab}: cell {section['cell']}: the (*) section {section['title']!r} says it is not "
                                f"graded but has test cells (cells {', '.join(str(i) for i, _ in tests)}): drop the "
                                "words or the tests")
            if not tests and not not_graded:
                problems.append(f"{lab}: cell {section['cell']}: the (*) section {section['title']!r} has no test cell: "
                                "grade it with bonus test cells, or say \"(not graded)\" in its heading")
        else:
            for index, bonus in tests:
                if bonus:
                    problems.append(f"{lab}: cell {index}: a bonus cell outside any (*) section (it is in "
                                    f"{section['title']!r}, cell {section['cell']}): move it into a `## (*)` section or "
                                    "remove its \"course\": {\"bonus\": true} metadata")
    has_bonus = any(bonus for section in sections for _, bonus in section["tests"])
    intro = next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"), None)
    intro_text = nb.cells[intro].source.replace("\u2019", "'") if intro is not None else ""
    if has_bonus and CAP_SENTENCE not in intro_text:
        problems.append(f"{lab}: cell {intro}: the lab has bonus cells, so its introduction must say \"Extras earn "
                        "bonus points that make up for points lost in the core; a lab's grade never goes above 100%.\"")
    return problems


def time_problems(result, intro: str) -> list:
    """What the time model says against a lab (an autograder.lab_time.LabTime) and its introduction's text."""
    lab, problems = result.lab, []
    if result.core_minutes > result.limit:
        problems.append(f"{lab}: the core takes {result.core_minutes:.1f} min by the time model, more than {result.limit}: "
                        f"shorten its text, give or move exercises to (*) sections (python -m autograder.lab_time shows "
                        "where the minutes go)")
    if not result.timed or result.untimed:
        problems.append(f"{lab}: core code cells without a recorded run time ({result.untimed or 'all'}): run "
                        f"`course verify {lab} --record-times`")
    for unit in result.units:
        if unit.exercise and unit.stated is not None and abs(unit.stated - unit.minutes) > 1:
            problems.append(f"{lab}: cell {unit.cell}: {unit.label!r} states ~{unit.stated} min, the model says "
                            f"{unit.minutes:.1f}: python -m autograder.lab_time --write-labels sets them")
    stated = [int(n) for n in re.findall(r"~\s*(\d+)\s*min", intro)]
    if not any(abs(n - result.core_minutes) <= 1 for n in stated):
        problems.append(f"{lab}: the introduction must state the core's time by the model, ~{round(result.core_minutes)} min "
                        f"(it states {stated or 'none'})")
    return problems


def points(cell) -> float:
    return float(nbgrader_meta(cell).get("points") or 0)


def bonus_problems(nb, lab: str) -> list:
    tests = [c for c in nb.cells if is_test_cell(c)]
    core = sum(points(c) for c in tests if not is_bonus_cell(c))
    bonus = sum(points(c) for c in tests if is_bonus_cell(c))
    if bonus > core / 3 + 1e-9:
        return [f"{lab}: the extras earn {bonus:g} bonus points against a core of {core:g}: at most a third "
                f"({core / 3:.2f}); lower the bonus cells' points or make an extra not graded"]
    return []


def core_cells(nb) -> set:
    """The indices of the cells outside `## (*)` sections."""
    _, sections = lab_shape(nb)
    starts = [(s["cell"], s["extra"]) for s in sections]
    core, extra = set(), False
    for index, cell in enumerate(nb.cells):
        for start, is_extra in starts:
            if start == index:
                extra = is_extra
        if not extra:
            core.add(index)
    return core


def marked_exercises(nb, kind: str) -> list:
    """(solution cell index, the test cell that checks it or None) for the core's solution cells marked kind."""
    core, found = core_cells(nb), []
    for index, cell in enumerate(nb.cells):
        if index in core and is_solution_cell(cell) and course_meta(cell).get("kind") == kind:
            answer = assigned_in_solution(cell)
            checker = None
            for later in range(index + 1, len(nb.cells)):
                if is_solution_cell(nb.cells[later]):
                    break
                if is_test_cell(nb.cells[later]) and answer & names_read(nb.cells[later]):
                    checker = later
                    break
            found.append((index, checker))
    return found


def question_problems(nb, lab: str) -> list:
    problems = []
    for kind, least in (("question", 2), ("hyperparameter", 1)):
        marked = marked_exercises(nb, kind)
        for index, checker in marked:
            if checker is None:
                problems.append(f"{lab}: cell {index}: a {kind} cell with no test cell after it that reads its answer")
        checked = len([m for m in marked if m[1] is not None])
        if checked < least:
            problems.append(f"{lab}: the core has {checked} {kind} cell(s) checked by a test; it needs at least "
                            f"{least} (mark a solution cell \"course\": {{\"kind\": \"{kind}\"}}, docs/time-model.md)")
    return problems


@pytest.mark.parametrize("check", [shape_problems, bonus_problems, question_problems],
                         ids=["conventions", "extras_at_most_a_third_of_the_core", "two_questions_and_a_hyperparameter"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_lab_shape(path, check):
    problems = check(nbformat.read(path, as_version=4), path.parent.name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_core_fits_its_session_by_the_time_model(path):
    nb = nbformat.read(path, as_version=4)
    intro = next(c.source for c in nb.cells if c.cell_type == "markdown")
    problems = time_problems(notebook_time(path), intro)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_hidden_tests_read_only_released_names(path):
    found = unreleased_names(nbformat.read(path, as_version=4))
    assert not found, "\n".join(f"{path.parent.name}: cell {i} ({gid}): its hidden tests read {names}, which the release "
                                 "neither defines nor names: name them in the text or define them in a given cell"
                                 for i, gid, names in found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_visible_test_contains_a_solution_expression(path):
    found = solution_overlaps(nbformat.read(path, as_version=4))
    assert not found, "\n".join(f"{path.parent.name}: {overlap}" for overlap in found)


# --- the checks themselves, on crafted notebooks -------------------------------------------------------------

def _test_cell(grade_id, bonus=False):
    cell = new_code_cell(f"assert {grade_id!r}")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": grade_id,
                                 "points": 1, "schema_version": 3}
    if bonus:
        cell.metadata["course"] = {"bonus": True}
    return cell


def crafted(intro="# Lab\n\nExtras earn bonus points that make up for points lost in the core; "
                  "a lab’s grade never goes above 100%."):
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell(intro),
        new_markdown_cell("## 1. Heading labels\n\n### Exercise 1 — first (~20 min)\n\n```python\n# Exercise in code\n```"),
        _test_cell("t1"),
        new_markdown_cell("## 2. Exercise 2 — a numbered section label (~25 min)"),
        _test_cell("t2"),
        new_markdown_cell("## 3. Bold labels\n\n**Exercise 3.** (~30 min) Write `f`.\n\nSome text about an exercise."),
        _test_cell("t3"),
        new_markdown_cell("# Part B\n\n**Exercise 4.** (~15 min) Write `g`."),
        _test_cell("t4"),
        new_markdown_cell("## (*) Extras\n\n**Exercise 5.** (~40 min) Optional."),
        _test_cell("t5", bonus=True),
        new_markdown_cell("## (*) On a GPU (not graded)\n\n### Exercise 6 — train on a GPU (~30 min)"),
        new_markdown_cell("## Summary"),
    ]
    return nb


def test_a_notebook_that_follows_the_conventions_passes():
    nb = crafted()
    exercises, sections = lab_shape(nb)
    assert [(ex["cell"], ex["minutes"], ex["extra"]) for ex in exercises] == \
        [(1, 20, False), (3, 25, False), (5, 30, False), (7, 15, False), (9, 40, True), (11, 30, True)]
    assert [s["title"] for s in sections if s["extra"]] == ["(*) Extras", "(*) On a GPU (not graded)"]
    assert shape_problems(nb, "crafted") == []


@pytest.mark.parametrize("change, expected", [
    (lambda nb: setattr(nb.cells[5], "source", "**Exercise 3.** Write `f`."), "cell 5: exercise '**Exercise 3.**'"),
    (lambda nb: setattr(nb.cells[1], "source", "### Exercise 1 — first"), "cell 1: exercise 'Exercise 1 — first'"),
    (lambda nb: nb.cells[10].metadata.pop("course"), "cell 10: a test cell in the (*) section '(*) Extras'"),
    (lambda nb: nb.cells[4].metadata.update(course={"bonus": True}), "cell 4: a bonus cell outside any (*) section"),
    (lambda nb: nb.cells.insert(12, _test_cell("t6", bonus=True)), "says it is not graded but has test cells (cells 12)"),
    (lambda nb: setattr(nb.cells[11], "source", "## (*) On a GPU\n\n### Exercise 6 (~30 min)"), "cell 11: the (*) "
     "section '(*) On a GPU' has no test cell"),
    (lambda nb: setattr(nb.cells[0], "source", "# Lab"), "cell 0: the lab has bonus cells"),
])
def test_each_broken_convention_is_named_with_its_cell(change, expected):
    nb = crafted()
    change(nb)
    problems = shape_problems(nb, "crafted")
    assert len(problems) == 1 and problems[0].startswith("crafted: ") and expected in problems[0], problems


# --- the release checks, on the cells that broke them before issue 25 ------------------------------------

def test_the_solution_check_finds_the_old_masked_softmax_of_lab_4():
    """Lab 4's cell 22 before issue 25 computed Exercise 5's masked softmax in its visible test."""
    nb = nbformat.read(FIXTURES / "old_04_gpt_attention.ipynb", as_version=4)
    found = solution_overlaps(nb)
    assert len(found) == 1 and found[0].test_id == "test_attention" and found[0].solution_id == "attention"
    assert found[0].length >= MIN_RUN and "masked_fill ( torch . ones" in found[0].run
    assert "cell 2 (test_attention)" in str(found[0])
    # the same test comparing with numbers instead of the expression passes
    test = nb.cells[-1]
    test.source = test.source.replace('assert_close(_w[0], F.softmax((_q[0] @ _k[0].T / 4).masked_fill(torch.ones(6, 6)'
                                      '.triu(1).bool(), float("-inf")), -1),', "assert_close(_w[0, 1, :2], "
                                      "torch.tensor([0.3132, 0.6868]),")
    assert "masked_fill" not in visible_test_source(test.source) and solution_overlaps(nb) == []


def test_the_solution_check_sees_through_renamed_intermediates():
    nb = nbformat.v4.new_notebook()
    solution = new_code_cell("def f(q, k):\n    ### BEGIN SOLUTION\n    s = q @ k.T\n    s = s / 8\n    w = s.softmax(-1)"
                             ".clamp(0, 1).sum(0).cumsum(0)\n    return w\n    ### END SOLUTION")
    solution.metadata["nbgrader"] = {"grade": False, "solution": True, "grade_id": "f", "schema_version": 3}
    test = _test_cell("test_f")
    test.source = "a, b = 1, 2\nout = ((a @ b.T) / 3).softmax(1).clamp(-1, 2).sum(1).cumsum(1)\nassert out is not None"
    nb.cells = [solution, test]
    assert [o.test_id for o in solution_overlaps(nb)] == ["test_f"]
    test.source = "assert_close(f(q, k).sum(), 3.5)"
    assert solution_overlaps(nb) == []


def test_the_names_check_finds_the_old_lol_gradients_of_lab_1():
    """Lab 1's cell 22 before issue 25 read dL_dL, dL_dd and dL_de in its hidden tests; the text never named them."""
    nb = nbformat.read(FIXTURES / "old_01_micrograd_lol.ipynb", as_version=4)
    assert unreleased_names(nb) == [(3, "test_lol_gradients", ["dL_dL", "dL_dd", "dL_de"])]
    nb.cells[1].source += "\n\nAlso set `dL_dL`, `dL_dd` and `dL_de`."
    assert unreleased_names(nb) == []


def test_a_question_needs_a_test_that_reads_its_answer():
    nb = crafted()
    answer = new_code_cell("### BEGIN SOLUTION\nanswer_q1 = 3.2958\n### END SOLUTION")
    answer.metadata["nbgrader"] = {"grade": False, "solution": True, "grade_id": "q1", "schema_version": 3}
    answer.metadata["course"] = {"kind": "question"}
    nb.cells.insert(2, answer)
    problems = question_problems(nb, "crafted")
    assert "crafted: cell 2: a question cell with no test cell after it that reads its answer" in problems
    assert "crafted: the core has 0 question cell(s) checked by a test; it needs at least 2" in problems[1]
    nb.cells[3].source = "assert isinstance(answer_q1, float)"
    assert marked_exercises(nb, "question") == [(2, 3)]


def test_bonus_points_above_a_third_of_the_core_are_named():
    nb = crafted()
    assert bonus_problems(nb, "crafted") == []  # 1 bonus point against a core of 4
    nb.cells[10].metadata["nbgrader"]["points"] = 2
    assert bonus_problems(nb, "crafted") == ["crafted: the extras earn 2 bonus points against a core of 4: at most a "
                                             "third (1.33); lower the bonus cells' points or make an extra not graded"]
