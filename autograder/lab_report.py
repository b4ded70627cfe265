"""`course report LAB`: what a graded lab says about the class, for the instructor.

One self-contained HTML page (reports/LAB.html in the course directory: styles and images inline, no script, nothing
fetched) and a short summary in the terminal:

- the score distribution, each test's pass rate, mean partial credit and discrimination (the correlation of its
  points with the rest of the lab's), the grading time per submission, the versions received over the week;
- failures grouped by signature (signatures.py): each group named by the planted bug it matches, with its count and
  two anonymised answer cells; the groups no planted bug explains, listed as new mistakes to look at; the checks
  failed on answers left as released (not answered);
- pairs of submissions alike beyond the given code (similarity.py), with a side-by-side view.

It reads only what grading wrote: the gradebook, each student's result.json and graded versions, the received
versions. The page is the instructor's: nothing of it goes into feedback or the student bundle.
"""
import base64
import html
import io
import json
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from .collect import received_at_of
from .course import Course, CourseError
from .gradebook import lab_total, load_result, scores
from .notebooks import grade_id, is_solution_cell
from .planted_bugs import load_bugs
from .policy import load_config, session_of, window_for
from .signatures import (bug_classes, check_descriptions, load_signatures, matched_bugs, result_items,
                         stale_warning)
from .similarity import SimilarityIndex, answer_document, archive_notebooks, similarity_settings

EXAMPLES = 2
SHOWN_PAIRS = 10  # in the terminal; the page lists them all


@dataclass
class CellStats:
    test: str
    points: float
    bonus: bool
    pass_rate: float        # share of the students with every point of the test
    mean_credit: float      # mean share of its points
    discrimination: float | None  # correlation of its points with the rest of the lab's (None: no spread)


@dataclass
class Group:
    kind: str               # planted | new | unanswered
    name: str               # the bug (or "A or B"), or the first failed check
    description: str
    items: list             # the failed checks (Items)
    students: list          # ids: never shown on the page, only counted
    examples: list = field(default_factory=list)  # [(label, code)]


@dataclass
class LabReport:
    lab: str
    course: str
    max_score: float
    totals: dict                  # {student: points (bonus included, capped)}
    tests: list                   # [CellStats]
    seconds: list                 # grading time of every graded version
    received: dict                # {bucket: versions received}
    resubmitted: int              # students who sent a version after the session
    groups: list                  # [Group]
    pairs: list                   # [similarity.Pair]
    threshold: float
    not_graded: list              # students with a submission that could not be graded
    warnings: list
    built_seconds: float = 0.0

    def group(self, kind):
        return [g for g in self.groups if g.kind == kind]


# ---- statistics -----------------------------------------------------------------------------------------------------

def _correlation(xs, ys):
    import numpy as np

    if len(xs) < 3 or np.std(xs) == 0 or np.std(ys) == 0:
        return None
    return float(np.corrcoef(xs, ys)[0, 1])


def per_test_statistics(info: dict, students: list) -> list:
    """Per test cell: pass rate, mean partial credit and discrimination, from the gradebook's scores."""
    stats = []
    for cell, maximum in info["cells"]:
        points = [info["students"][s].get(cell, 0.0) for s in students]
        rest = [sum(info["students"][s].values()) - p for s, p in zip(students, points)]
        stats.append(CellStats(cell, maximum, cell in info["bonus"],
                               sum(p >= maximum for p in points) / len(points) if maximum else 0.0,
                               statistics.fmean(p / maximum for p in points) if maximum else 0.0,
                               _correlation(points, rest)))
    return stats


def received_by_day(course: Course, lab: str, students) -> tuple:
    """({bucket: versions received}, students who resubmitted): buckets are "in session", "day 1" ... "day 7" after
    the session's end (the day a version came in) and "late" (after the student's deadline); by date without
    course.toml's calendar."""
    config = load_config(course)
    session = session_of(config, lab)
    buckets, resubmitted = {}, 0
    if session is not None:
        days = (session.deadline - session.end).days
        buckets = {"in session": 0, **{f"day {d}": 0 for d in range(1, max(days, 0) + 1)}}
    for student in students:
        folder = course.received_dir(student, lab)
        if not folder.is_dir():
            continue
        window = window_for(config, student, lab, course) if session else None
        later = False
        for path in sorted(folder.iterdir()):
            try:
                moment = received_at_of(path)
            except ValueError:
                continue
            if session is None:
                key = moment.strftime("%Y-%m-%d")
            elif moment <= session.end:
                key = "in session"
            elif window is not None and moment > window.deadline:
                key = "late"
            else:
                key = f"day {min(int((moment - session.end).total_seconds() // 86400) + 1, max(days, 1))}"
                later = True
            buckets[key] = buckets.get(key, 0) + 1
        resubmitted += later
    return dict(sorted(buckets.items()) if session is None else buckets.items()), resubmitted


def grading_seconds(course: Course, lab: str, students) -> list:
    """The grading time of every graded version (a student's result.json when no version was kept)."""
    seconds = []
    for student in students:
        versions = sorted((course.autograded_dir(student, lab) / "versions").glob("*.json"))
        records = [json.loads(p.read_text()) for p in versions] or [load_result(course, student, lab) or {}]
        seconds += [r["seconds"] for r in records if r.get("seconds") and not r.get("problem")]
    return seconds


# ---- the students' answers ------------------------------------------------------------------------------------------

def counted_notebook(course: Course, student: str, lab: str, result: dict):
    """The version whose grading counted (received/STUDENT/LAB/VERSION), else submitted/; None if unreadable."""
    path = course.received_dir(student, lab) / result["version"] if result.get("version") else \
        course.submitted_dir(student, lab) / f"{lab}.ipynb"
    try:
        return nbformat.read(path, as_version=4)
    except Exception:  # nbformat raises several types; an unreadable file only costs its examples
        return None


def own_lines(code: str, released: str) -> str:
    """The lines a student wrote in an answer cell, with the definitions they sit in; given lines shown as "…"."""
    given = {line.strip() for line in released.splitlines()}
    shown, skipped = [], False
    for line in code.splitlines():
        stripped = line.strip()
        if stripped and stripped not in given or stripped.startswith(("def ", "class ")):
            if skipped and shown:
                shown.append(" " * (len(line) - len(line.lstrip())) + "…")
            shown.append(line)
            skipped = False
        elif stripped:
            skipped = True
    return "\n".join(shown)


def _answer_cell_of(test: str, source_nb, bugs) -> str | None:
    """The answer cell a test judges: the one whose planted bugs it catches most often, else the nearest above it."""
    votes = {}
    for bug in bugs:
        if test in bug.fails:
            votes[bug.cell] = votes.get(bug.cell, 0) + 1
    if votes:
        return max(votes, key=votes.get)
    above = None
    for cell in source_nb.cells:
        if grade_id(cell) == test:
            return above
        if is_solution_cell(cell) and cell.cell_type == "code":
            above = grade_id(cell)
    return None


# ---- grouping failures ----------------------------------------------------------------------------------------------

def group_failures(results: dict, descriptions: dict, signatures, unanswered: dict) -> list:
    """results: {student: result.json}; unanswered: {student: answer cells left as released}. Groups, largest first:
    planted bugs matched, then the leftover failures grouped by their checks (new mistakes), then the checks failed
    on unanswered cells."""
    classes = bug_classes(signatures)
    planted, new, blank = {}, {}, {}
    for student, result in sorted(results.items()):
        items = result_items(result, descriptions)
        empty = {i for i in items if i.unanswered or (unanswered.get(student) and "NameError" in i.check + i.error)}
        for item in empty:
            blank.setdefault(item.test, set()).add(student)
        matched = matched_bugs(items - empty, classes)
        for name in matched:
            planted.setdefault(name, []).append(student)
        left = items - empty - set().union(*(classes[name] for name in matched))
        if left:
            new.setdefault(frozenset(left), []).append(student)
    descriptions_of = {b.name: b.description for b in signatures_bugs(signatures)}
    groups = [Group("planted", name, " — or — ".join(descriptions_of.get(n, "") or n for n in name.split(" or ")),
                    sorted(classes[name]), students) for name, students in planted.items()]
    groups += [Group("new", min(items).text(), "", sorted(items), students) for items, students in new.items()]
    groups += [Group("unanswered", test, "", [], sorted(students)) for test, students in blank.items()]
    return sorted(groups, key=lambda g: (["planted", "new", "unanswered"].index(g.kind), -len(g.students), g.name))


def signatures_bugs(signatures):
    """The planted bugs of the signatures' lab (their descriptions name the groups)."""
    return load_bugs(signatures.lab) if signatures is not None else []


# ---- the report -----------------------------------------------------------------------------------------------------

def build_report(course: Course, lab: str, archives=()) -> LabReport:
    started = time.monotonic()
    table = scores(course)["labs"]
    if lab not in table or not table[lab]["students"]:
        raise CourseError(f"nothing of {lab} is graded in {course.root}: run `course grade {lab}` first")
    info = table[lab]
    students = sorted(info["students"])
    config = load_config(course)
    threshold, configured = similarity_settings(config)
    source = nbformat.read(course.source(lab), as_version=4)
    released_nb = nbformat.read(course.release(lab), as_version=4)
    released = {grade_id(c): c.source for c in released_nb.cells if is_solution_cell(c) and c.cell_type == "code"}
    descriptions = check_descriptions(source)
    signatures, warnings = load_signatures(lab), []
    if load_bugs(lab) and stale_warning(signatures, source, lab):
        warnings.append(stale_warning(signatures, source, lab) + "; until then no group is named by a planted bug")
        signatures = None
    results, notebooks, not_graded = {}, {}, []
    for student in students:
        result = load_result(course, student, lab)
        if result is None or result.get("problem"):
            not_graded.append(student)
            continue
        results[student] = result
        notebooks[student] = counted_notebook(course, student, lab, result)
    unanswered = {s: {gid for gid, text in released.items() if any(grade_id(c) == gid and c.source == text for c in nb.cells)}
                  for s, nb in notebooks.items() if nb is not None}
    groups = group_failures(results, descriptions, signatures, unanswered)
    bugs = signatures_bugs(signatures) or load_bugs(lab)
    by_name = {b.name: b for b in bugs}
    for group in groups:
        if group.kind == "unanswered":
            continue
        cell = by_name[group.name.split(" or ")[0]].cell if group.kind == "planted" else \
            _answer_cell_of(group.items[0].test, source, bugs)
        examples = []
        for student in sorted(group.students, key=lambda s: hash_of(lab, s))[:EXAMPLES]:
            nb = notebooks.get(student)
            code = next((c.source for c in nb.cells if grade_id(c) == cell), None) if nb is not None and cell else None
            if code is not None:
                examples.append((f"student {'AB'[len(examples)]}", own_lines(code, released.get(cell, ""))))
        group.examples = examples
    index = SimilarityIndex("\n\n".join(released.values()))
    for student, nb in notebooks.items():
        if nb is not None:
            index.add(student, answer_document(nb, released))
    pairs = index.pairs(threshold)
    for folder in [*configured, *archives]:
        folder = (course.root / folder) if not Path(folder).is_absolute() else Path(folder)
        earlier = SimilarityIndex("\n\n".join(released.values()))
        for name, nb in archive_notebooks(folder, lab).items():
            earlier.add(f"archive: {folder.name}/{name}", answer_document(nb, released))
        pairs += index.pairs(threshold, earlier)
    totals = {s: lab_total(info["students"][s], info["max"]) for s in students}
    received, resubmitted = received_by_day(course, lab, students)
    report = LabReport(lab, str(course.root), info["max"], totals, per_test_statistics(info, students),
                       grading_seconds(course, lab, students), received, resubmitted, groups, pairs, threshold,
                       not_graded, warnings)
    report.built_seconds = time.monotonic() - started
    return report


def hash_of(lab: str, student: str) -> str:
    """A stable order of a group's students that says nothing of their ids' order (which examples are shown)."""
    import hashlib

    return hashlib.sha256(f"{lab}/{student}".encode()).hexdigest()


# ---- the page -------------------------------------------------------------------------------------------------------

def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def charts(report: LabReport) -> dict:
    """{name: PNG data URI}: the score histogram, the grading times, the versions received per day."""
    from matplotlib.figure import Figure

    made = {}
    fig = Figure(figsize=(6, 2.8))
    ax = fig.subplots()
    ax.hist(list(report.totals.values()), bins=min(20, max(5, int(report.max_score) + 1)), range=(0, report.max_score),
            color="#4C72B0", edgecolor="white")
    ax.set_xlabel(f"points (of {report.max_score:g})")
    ax.set_ylabel("students")
    ax.set_title("score distribution")
    made["scores"] = _png(fig)
    fig = Figure(figsize=(6, 2.8))
    ax = fig.subplots()
    ax.hist(report.seconds or [0], bins=20, color="#55A868", edgecolor="white")
    ax.set_xlabel("seconds per graded notebook")
    ax.set_ylabel("notebooks")
    ax.set_title("grading time")
    made["seconds"] = _png(fig)
    fig = Figure(figsize=(6, 2.8))
    ax = fig.subplots()
    names = list(report.received)
    ax.bar(range(len(names)), [report.received[n] for n in names],
           color=["#8172B2" if n == "in session" else "#C44E52" if n == "late" else "#CCB974" for n in names])
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("versions")
    ax.set_title("versions received")
    made["received"] = _png(fig)
    return made


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}.bar{background:#4C72B0;height:.8em;display:inline-block}
.muted{color:#777}.warn{background:#fff3cd;padding:.5em 1em;border-left:4px solid #e0a800}
.group{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}.count{font-weight:bold;font-size:1.1em}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:12px;margin:.3em 0}
.examples{display:grid;grid-template-columns:1fr 1fr;gap:1em}.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}
mark{background:#ffe08a}img{max-width:100%}.charts{display:grid;grid-template-columns:1fr 1fr;gap:1em}
"""


def _esc(text) -> str:
    return html.escape(str(text))


def _percent(value) -> str:
    return f"{100 * value:.0f}%"


def render_html(report: LabReport) -> str:
    images = charts(report)
    totals = list(report.totals.values())
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_esc(report.lab)}: the class report"
           f"</title><style>{STYLE}</style></head><body>",
           f"<h1>{_esc(report.lab)}: the class report</h1>",
           f"<p class='muted'>{len(totals)} students in the gradebook, {len(report.not_graded)} of them could not be "
           f"graded; built {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC from {_esc(report.course)}. "
           "For the instructor only: it names students in its similarity section.</p>"]
    out += [f"<p class='warn'>{_esc(w)}</p>" for w in report.warnings]
    out.append("<h2>Scores</h2>")
    out.append(f"<p>mean {statistics.fmean(totals):.1f}, median {statistics.median(totals):g} of {report.max_score:g} "
               f"points; {sum(t >= report.max_score for t in totals)} full marks, {sum(t == 0 for t in totals)} zero."
               f"</p><div class='charts'><img alt='score distribution' src='{images['scores']}'>"
               f"<img alt='versions received per day' src='{images['received']}'></div>")
    out.append(f"<p>{report.resubmitted} students sent a version after the session; "
               + ", ".join(f"{_esc(k)}: {v}" for k, v in report.received.items()) + " versions.</p>")
    out.append("<h2>Tests</h2><p class='muted'>Pass rate: the share of students with every point of the test. "
               "Discrimination: the correlation of the test's points with the rest of the lab's (low or negative: the "
               "test does not follow the rest of the work).</p><table><tr><th class='l'>test</th><th>points</th>"
               "<th>pass rate</th><th>mean credit</th><th>discrimination</th></tr>")
    for t in report.tests:
        out.append(f"<tr><td class='l'>{_esc(t.test)}{' (bonus)' if t.bonus else ''}</td><td>{t.points:g}</td>"
                   f"<td class='l'><span class='bar' style='width:{60 * t.pass_rate:.0f}px'></span> "
                   f"{_percent(t.pass_rate)}</td><td>{_percent(t.mean_credit)}</td>"
                   f"<td>{'–' if t.discrimination is None else f'{t.discrimination:.2f}'}</td></tr>")
    out.append("</table>")
    seconds = report.seconds or [0]
    out.append(f"<h2>Grading time</h2><p>{len(report.seconds)} notebooks graded: median {statistics.median(seconds):.1f} s,"
               f" longest {max(seconds):.1f} s, {sum(seconds) / 60:.1f} min in all.</p>"
               f"<img alt='grading time per notebook' src='{images['seconds']}'>")
    out.append("<h2>Typical mistakes: the planted bugs</h2>")
    planted = report.group("planted")
    if not planted:
        out.append("<p class='muted'>No failure matches a planted bug.</p>")
    for g in planted:
        out.append(_group_html(g, f"{len(g.students)} student{'s' if len(g.students) != 1 else ''}: "
                                  f"{_esc(g.description)} <span class='muted'>({_esc(g.name)})</span>"))
    out.append("<h2>New mistakes to look at</h2><p class='muted'>Failures that match no planted bug, grouped by the "
               "checks they fail.</p>")
    new = report.group("new")
    if not new:
        out.append("<p class='muted'>None.</p>")
    for g in new:
        out.append(_group_html(g, f"{len(g.students)} student{'s' if len(g.students) != 1 else ''}"))
    blank = report.group("unanswered")
    if blank:
        out.append("<h2>Not answered</h2><table><tr><th class='l'>test</th><th>students</th></tr>" +
                   "".join(f"<tr><td class='l'>{_esc(g.name)}</td><td>{len(g.students)}</td></tr>" for g in blank) +
                   "</table>")
    out.append(f"<h2>Similar submissions</h2><p class='muted'>Pairs whose answers are alike beyond the given code "
               f"(copydetect, threshold {report.threshold:g} from course.toml [similarity]); the shared code is "
               "marked.</p>")
    if not report.pairs:
        out.append("<p class='muted'>No pair at or above the threshold.</p>")
    for p in report.pairs:
        out.append(f"<details class='group'><summary><span class='count'>{p.score:.2f}</span> {_esc(p.first)} and "
                   f"{_esc(p.second)} <span class='muted'>({p.similarities[0]:.2f} / {p.similarities[1]:.2f} of each "
                   f"one's code, {p.shared} tokens)</span></summary><div class='pair'><div><b>{_esc(p.first)}</b>"
                   f"<pre>{p.first_html}</pre></div><div><b>{_esc(p.second)}</b><pre>{p.second_html}</pre></div>"
                   "</div></details>")
    out.append(f"<p class='muted'>Built in {report.built_seconds:.1f} s.</p></body></html>")
    return "\n".join(out)


def _group_html(group: Group, title: str) -> str:
    checks = "".join(f"<li>{_esc(i.text())}</li>" for i in group.items)
    examples = "".join(f"<div><b>{_esc(label)}</b><pre>{_esc(code)}</pre></div>" for label, code in group.examples)
    return (f"<div class='group'><p class='count'>{title}</p><ul>{checks}</ul>"
            + (f"<div class='examples'>{examples}</div>" if examples else "") + "</div>")


def write_report(course: Course, lab: str, archives=()) -> tuple:
    report = build_report(course, lab, archives)
    path = course.root / "reports" / f"{lab}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return report, path


def print_summary(report: LabReport, path: Path, echo=print) -> None:
    totals = list(report.totals.values())
    echo(f"{report.lab}: {len(totals)} students, mean {statistics.fmean(totals):.1f} / {report.max_score:g}, "
         f"median {statistics.median(totals):g}; {len(report.not_graded)} could not be graded")
    for w in report.warnings:
        echo(f"warning: {w}")
    echo(f"{'test':28s} {'pass':>5s} {'credit':>6s} {'discr.':>6s}")
    for t in report.tests:
        d = "–" if t.discrimination is None else f"{t.discrimination:.2f}"
        echo(f"{t.test[:28]:28s} {_percent(t.pass_rate):>5s} {_percent(t.mean_credit):>6s} {d:>6s}")
    if report.seconds:
        echo(f"grading time per notebook: median {statistics.median(report.seconds):.1f} s, longest "
             f"{max(report.seconds):.1f} s ({len(report.seconds)} graded)")
    echo("versions received: " + ", ".join(f"{k} {v}" for k, v in report.received.items())
         + f"; {report.resubmitted} students resubmitted")
    for g in report.group("planted"):
        echo(f"  {len(g.students):3d} students: {g.description} ({g.name})")
    new = report.group("new")
    if new:
        echo(f"new mistakes (no planted bug matches): {len(new)} groups, {sum(len(g.students) for g in new)} students")
        for g in new[:5]:
            echo(f"  {len(g.students):3d} students: {g.name}")
    shown = ", ".join(f"{p.first} ~ {p.second} ({p.score:.2f})" for p in report.pairs[:SHOWN_PAIRS])
    more = f", and {len(report.pairs) - SHOWN_PAIRS} more pairs on the page" if len(report.pairs) > SHOWN_PAIRS else ""
    echo(f"similar pairs at or above {report.threshold:g}: {shown or 'none'}{more}")
    echo(f"report: {path}")
