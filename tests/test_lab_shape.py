"""The labs' shape (issue 13 part 6): a time estimate on every exercise, a core of at most 90 minutes, and the
optional `## (*)` sections whose test cells (and only theirs) earn bonus points.

Conventions checked, on every labs/*/*.ipynb but the quiz:
- every exercise label, a heading (`### Exercise 3 — the engine (~25 min)`, `## 7. Exercise 5 — ... (~30 min)`)
  or a bold label (`**Exercise 4.** (~10 min) ...`), carries its estimate `(~N min)`;
- the core exercises' (those outside `## (*)` sections) estimates add up to at most 90 minutes;
- every test cell of a `## (*)` section is a bonus cell (cell metadata `"course": {"bonus": true}`), no bonus cell is
  outside one, and a (*) section without test cells says it is "not graded" (and one that says so has none);
- a lab with bonus cells says in its first markdown cell: "a lab's grade never goes above 100%".
"""
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.lab_time import EXERCISE_BOLD, EXERCISE_HEADING, EXTRAS, HEADING, MINUTES, markdown_lines
from autograder.notebooks import is_bonus_cell, is_test_cell

LABS = Path(__file__).resolve().parent.parent / "labs"
NOTEBOOKS = sorted(p for p in LABS.glob("*/*.ipynb") if p.parent.name != "quiz")
CORE_MINUTES = 90
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
    core = [ex for ex in exercises if not ex["extra"] and ex["minutes"] is not None]
    total = sum(ex["minutes"] for ex in core)
    if total > CORE_MINUTES:
        listed = ", ".join(f"cell {ex['cell']}: {ex['minutes']}" for ex in core)
        problems.append(f"{lab}: the core exercises' estimates add up to {total} min ({listed}), more than "
                        f"{CORE_MINUTES}: move exercises into a `## (*)` section (optional, bonus points) or shorten them")
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.parent.name for p in NOTEBOOKS])
def test_lab_shape(path):
    problems = shape_problems(nbformat.read(path, as_version=4), path.parent.name)
    assert not problems, "\n".join(problems)


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
    (lambda nb: setattr(nb.cells[5], "source", "**Exercise 3.** (~31 min) Write `f`."), "add up to 91 min"),
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
