"""The time model of docs/time-model.md: how many minutes a lab's exercises and its core take a student.

    python -m autograder.lab_time labs/04_gpt/04_gpt.ipynb [more notebooks]

prints, for each exercise (and each stretch of text or given cells outside one), the words read, the lines of
solution written by difficulty, the seconds its cells ran, and its minutes; then the core's total against its
limit. `lab_time(nb, timings)` returns the same numbers for tests (tests/test_lab_shape.py).

A minute of the model is: reading (words / 150) + writing (per solution line by difficulty, plus 2 per
exercise) + running (the seconds its core cells took in a full run of the reference, recorded by
`course verify LAB --record-times` in the lab's timings.json).
"""
import argparse
import ast
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .notebooks import (SOLUTION_BEGIN, SOLUTION_END, is_solution_cell, is_test_cell, region_lines, strip_region)

WORDS_PER_MINUTE = 150
MINUTES_PER_LINE = {"easy": 0.5, "medium": 1.0, "hard": 2.5}
DEFAULT_DIFFICULTY = "medium"
MINUTES_PER_EXERCISE = 2.0   # run its cells, read its test's report, one round of fixing
CORE_LIMIT = 75              # minutes of a 90-minute session, leaving 15 for the unexpected
CORE_LIMITS = {"06_diffusion": 55}  # the final quiz (30 min) shares lab 6's session
KINDS = ("question", "hyperparameter")
TIMINGS = "timings.json"     # beside the lab's notebook; not released (autograder.course.NOT_RELEASED)

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
EXERCISE_HEADING = re.compile(r"^(?:\d+[a-z]?\.\s+)?(?:Exercise|Question)\b")  # "Exercise 3 — ...", "7. Exercise 5 — ..."
EXERCISE_BOLD = re.compile(r"^\s*\*\*((?:Exercise|Question)\b[^*]*)\*\*\s*(\(~\d+ min\))?")  # "**Exercise 4.** (~10 min) ..."
EXTRAS = re.compile(r"^(?:\d+\.\s+)?\(\*\)")                        # "## (*) Title" (a level-2 heading)
MINUTES = re.compile(r"\(~(\d+) min\)")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
WORD = re.compile(r"[0-9A-Za-z]")


def markdown_lines(source: str):
    """(line, in a fenced code block) for each line of a markdown cell; the fence lines themselves are left out."""
    fenced = False
    for line in source.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        yield line, fenced


def count_words(text: str) -> int:
    """Whitespace-separated tokens that hold a letter or a digit (`|---|`, `$$`, `-` are not words)."""
    return sum(1 for token in text.split() if WORD.search(token))


def course_meta(cell) -> dict:
    return cell.get("metadata", {}).get("course") or {}


def difficulty(cell) -> str:
    found = course_meta(cell).get("difficulty", DEFAULT_DIFFICULTY)
    if found not in MINUTES_PER_LINE:
        raise ValueError(f"cell {cell.get('id')}: difficulty {found!r}: use one of {', '.join(MINUTES_PER_LINE)}")
    return found


def solution_lines(cell) -> int:
    """Lines the student writes: the non-blank, non-comment lines between the solution markers (a markdown
    solution cell, a written answer: one line per 12 words)."""
    if cell.cell_type == "markdown":
        return -(-count_words(cell.source) // 12)
    return sum(1 for line in region_lines(cell.source, SOLUTION_BEGIN, SOLUTION_END)
               if line.strip() and not line.strip().startswith("#"))


def released_skeleton(cell) -> str:
    """What the student reads of a solution cell: everything but the solution (nbgrader's `# YOUR CODE HERE` and
    `raise NotImplementedError()` stand in for it and are not counted)."""
    return strip_region(cell.source, SOLUTION_BEGIN, SOLUTION_END, keep_inner=False)


def defines_code(source: str) -> bool:
    """A given cell that defines a function or a class at its top level: code an exercise uses, so it is read."""
    try:
        tree = ast.parse("\n".join(l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return False
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for node in tree.body)


def read_words(cell) -> int:
    """The words of a code cell that the student must read (docs/time-model.md): a solution cell's released
    skeleton; a given cell that defines a function or class; any cell marked "course": {"read": true}; never a
    test cell nor a cell marked "read": false."""
    meta = course_meta(cell)
    if is_test_cell(cell) or meta.get("read") is False:
        return 0
    if is_solution_cell(cell):
        return count_words(released_skeleton(cell))
    if meta.get("read") or defines_code(cell.source):
        return count_words(cell.source)
    return 0


@dataclass
class Unit:
    """An exercise (from its label) or a stretch of text and given cells outside any exercise (a section)."""
    label: str
    cell: int                      # the cell of its label, or its first cell
    exercise: bool
    extra: bool
    stated: int = None             # the (~N min) its label states
    text: str = ""                 # its label as written
    words: int = 0                 # markdown words read
    code_words: int = 0            # given code read
    lines: dict = field(default_factory=lambda: {d: 0 for d in MINUTES_PER_LINE})
    solution_cells: list = field(default_factory=list)
    code_cells: list = field(default_factory=list)
    seconds: float = 0.0
    untimed: list = field(default_factory=list)   # code cells without a recorded time

    @property
    def reading(self) -> float:
        return (self.words + self.code_words) / WORDS_PER_MINUTE

    @property
    def writing(self) -> float:
        lines = sum(n * MINUTES_PER_LINE[d] for d, n in self.lines.items())
        return lines + (MINUTES_PER_EXERCISE if self.solution_cells else 0.0)

    @property
    def running(self) -> float:
        return self.seconds / 60

    @property
    def minutes(self) -> float:
        return self.reading + self.writing + self.running


@dataclass
class LabTime:
    lab: str
    units: list
    limit: int
    timed: bool                    # a timings file was found

    @property
    def core(self) -> list:
        return [u for u in self.units if not u.extra]

    @property
    def core_minutes(self) -> float:
        return sum(u.minutes for u in self.core)

    def core_total(self, what: str) -> float:
        return sum(getattr(u, what) for u in self.core)

    @property
    def core_lines(self) -> int:
        return sum(sum(u.lines.values()) for u in self.core)

    @property
    def untimed(self) -> list:
        return [i for u in self.core for i in u.untimed]


def _stream(nb):
    """The notebook as a stream of items in order: ("label", text, stated minutes), ("section", title, is extra),
    ("words", n) for markdown, ("cell", index) for code cells."""
    for index, cell in enumerate(nb.cells):
        if is_solution_cell(cell) or cell.cell_type == "code":
            yield ("cell", index)  # a markdown solution cell is written, not read
        elif cell.cell_type == "markdown":
            pending = []
            for line, fenced in markdown_lines(HTML_COMMENT.sub("", cell.source)):
                heading = None if fenced else HEADING.match(line)
                bold = None if fenced else EXERCISE_BOLD.match(line)
                if heading and len(heading.group(1)) <= 2:
                    yield ("words", index, count_words("\n".join(pending)))
                    pending = []
                    title = heading.group(2)
                    yield ("section", index, title, len(heading.group(1)) == 2 and bool(EXTRAS.match(title)))
                if heading and EXERCISE_HEADING.match(heading.group(2)) or bold:
                    yield ("words", index, count_words("\n".join(pending)))
                    pending = []
                    text = heading.group(2) if heading else bold.group(0).strip()
                    found = MINUTES.search(text)
                    yield ("label", index, text, int(found.group(1)) if found else None)
                pending.append(line)
            yield ("words", index, count_words("\n".join(pending)))


def lab_time(nb, timings: dict = None, lab: str = "") -> LabTime:
    """The model's units of a notebook. `timings` maps cell ids to seconds (a lab's timings.json "cells")."""
    lab = lab or (nb.metadata.get("course") or {}).get("lab", "")
    timings = timings or {}
    # sections: the stream cut at level-1/2 headings; each holds its items and its exercise labels
    sections = [{"title": "introduction", "cell": 0, "extra": False, "items": []}]
    for item in _stream(nb):
        if item[0] == "section":
            sections.append({"title": item[2], "cell": item[1], "extra": item[3], "items": []})
        else:
            sections[-1]["items"].append(item)
    units = []
    for section in sections:
        labels = [i for i, item in enumerate(section["items"]) if item[0] == "label"]
        own = Unit(section["title"][:60] or "introduction", section["cell"], False, section["extra"])
        section_units = [Unit(item[2][:60], item[1], True, section["extra"], stated=item[3], text=item[2])
                         for item in (section["items"][i] for i in labels)]
        owners = _owners(section["items"], labels, nb)
        for position, item in enumerate(section["items"]):
            unit = section_units[owners[position]] if section_units else own
            if item[0] == "words":
                unit.words += item[2]
            elif item[0] == "cell":
                _add_cell(unit, nb.cells[item[1]], item[1], timings)
        if not section_units or own.words or own.code_cells:
            units.append(own)
        units += section_units
    units = [u for u in units if u.exercise or u.words or u.code_cells]
    return LabTime(lab, units, CORE_LIMITS.get(lab, CORE_LIMIT), bool(timings))


def _owners(items, labels, nb) -> list:
    """For each item of a section, the index of the exercise it belongs to: an exercise runs from its label to its
    last solution or test cell before the next label; what comes after that (text, given cells) introduces the
    next exercise; what precedes the first label, the first exercise; what follows the last one's work, the last."""
    owners = []
    for position, item in enumerate(items):
        before = [k for k, at in enumerate(labels) if at <= position]
        if not before:
            owners.append(0)
            continue
        j = before[-1]
        end = labels[j + 1] if j + 1 < len(labels) else None
        work = [q for q in range(labels[j], end if end is not None else len(items))
                if items[q][0] == "cell" and (is_solution_cell(nb.cells[items[q][1]]) or is_test_cell(nb.cells[items[q][1]]))]
        owners.append(j if end is None or (work and position <= work[-1]) else j + 1)
    return owners


def _add_cell(unit: Unit, cell, index: int, timings: dict) -> None:
    if is_solution_cell(cell):
        unit.solution_cells.append(index)
        unit.lines[difficulty(cell)] += solution_lines(cell)
    if cell.cell_type == "markdown":
        return
    unit.code_words += read_words(cell)
    unit.code_cells.append(index)
    if cell.get("id") in timings:
        unit.seconds += float(timings[cell["id"]])
    else:
        unit.untimed.append(index)


def timings_path(notebook: Path) -> Path:
    return Path(notebook).parent / TIMINGS


def load_timings(notebook: Path) -> dict:
    """{cell id: seconds} recorded for the notebook, or {} when none was recorded."""
    path = timings_path(notebook)
    if not path.exists():
        return {}
    return json.loads(path.read_text()).get("cells", {}).get(Path(notebook).stem, {})


def notebook_time(notebook: Path) -> LabTime:
    notebook = Path(notebook)
    return lab_time(nbformat.read(notebook, as_version=4), load_timings(notebook), lab=notebook.parent.name)


def record_timings(notebook: Path, nb, runs, machine: str, date: str) -> Path:
    """Write the seconds of every code cell of a full run of nb (autograder.grading.execute.CellRun's) into the
    lab's timings.json, under the notebook's name (a lab may hold several notebooks)."""
    path = timings_path(notebook)
    data = json.loads(path.read_text()) if path.exists() else {}
    data["about"] = ("seconds each code cell took in a full run of the reference, by cell id: written by "
                     "`course verify LAB --record-times`, read by the time model (docs/time-model.md)")
    cells = {nb.cells[r.index].get("id"): round(r.seconds, 2) for r in runs
             if r.index < len(nb.cells) and nb.cells[r.index].cell_type == "code" and nb.cells[r.index].get("id")}
    data.setdefault("cells", {})[Path(notebook).stem] = cells
    data.setdefault("recorded", {})[Path(notebook).stem] = {"machine": machine, "date": date}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path


def write_labels(notebook: Path) -> list:
    """Set every exercise label's (~N min) of the notebook to the model's minutes; returns what changed."""
    nb = nbformat.read(notebook, as_version=4)
    changed = []
    for unit in notebook_time(notebook).units:
        want = round(unit.minutes)
        if not unit.exercise or unit.stated == want:
            continue
        cell = nb.cells[unit.cell]
        lines = cell.source.split("\n")
        for i, line in enumerate(lines):
            if unit.text in line:
                fixed = MINUTES.sub(f"(~{want} min)", line, count=1) if MINUTES.search(line) else \
                    line.replace(unit.text, f"{unit.text} (~{want} min)", 1)
                changed.append(f"cell {unit.cell}: {unit.label!r}: ~{unit.stated} -> ~{want} min")
                lines[i] = fixed
                break
        cell.source = "\n".join(lines)
    if changed:  # written whole, then moved in place: a run reading the notebook never sees half of it
        partial = Path(notebook).with_suffix(".ipynb.partial")
        nbformat.write(nb, partial)
        os.replace(partial, notebook)
    return changed


def table(result: LabTime) -> str:
    rows = [f"{'cell':>4}  {'unit':44s} {'words':>5} {'code':>5} {'lines e/m/h':>11} {'run s':>6} "
            f"{'read':>5} {'write':>5} {'run':>4} {'min':>5} {'stated':>6}"]
    for u in result.units:
        lines = "/".join(str(u.lines[d]) for d in MINUTES_PER_LINE)
        stated = "" if u.stated is None else f"~{u.stated}"
        mark = "(*) " if u.extra and not u.label.startswith("(*)") else ""
        rows.append(f"{u.cell:>4}  {(mark + u.label)[:44]:44s} {u.words:5d} {u.code_words:5d} {lines:>11} "
                    f"{u.seconds:6.1f} {u.reading:5.1f} {u.writing:5.1f} {u.running:4.1f} {u.minutes:5.1f} {stated:>6}")
    core = result.core
    rows.append(f"core of {result.lab}: {sum(u.words for u in core)} words of text and "
                f"{sum(u.code_words for u in core)} of given code ({result.core_total('reading'):.1f} min), "
                f"{result.core_lines} solution lines in {sum(u.exercise for u in core)} exercises "
                f"({result.core_total('writing'):.1f} min), {sum(u.seconds for u in core):.0f} s of running "
                f"({result.core_total('running'):.1f} min): {result.core_minutes:.1f} min, "
                f"limit {result.limit} ({'met' if result.core_minutes <= result.limit else 'NOT met'})")
    if not result.timed:
        rows.append("  no timings recorded: run `course verify LAB --record-times` (cells count 0 s until then)")
    elif result.untimed:
        rows.append(f"  core code cells without a recorded time (counted 0 s): {result.untimed}: "
                    "run `course verify LAB --record-times`")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="each exercise's minutes and the core's total, by the time model "
                                                 "of docs/time-model.md")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--write-labels", action="store_true",
                        help="set every exercise label's (~N min) to the model's minutes (the intro's total is yours)")
    args = parser.parse_args(argv)
    status = 0
    for notebook in args.notebooks:
        if not notebook.is_file():
            print(f"{notebook}: no such notebook; give the path of a lab's .ipynb, e.g. labs/04_gpt/04_gpt.ipynb",
                  file=sys.stderr)
            status = 2
            continue
        if args.write_labels:
            for line in write_labels(notebook):
                print(line)
        result = notebook_time(notebook)
        print(table(result))
        if result.core_minutes > result.limit:
            status = max(status, 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
