"""Grades out of the gradebook as CSV: one row per student, per-lab totals and per-cell scores."""
import csv
from pathlib import Path

from .course import Course, read_roster, CourseError
from .gradebook import scores


def grade_table(course: Course):
    """(header, rows) with every student of the roster and the gradebook."""
    data = scores(course)
    try:
        roster = read_roster(course.roster_path)
    except CourseError:
        roster = {}
    people = {sid: (s.first_name, s.last_name, s.email) for sid, s in roster.items()}
    for sid, names in data["students"].items():
        people.setdefault(sid, names)
    header = ["student_id", "first_name", "last_name", "email"]
    for lab, info in sorted(data["labs"].items()):
        header += [f"{lab} score", f"{lab} max"] + [f"{lab}:{gid}" for gid, _ in info["cells"]]
    rows = []
    for sid in sorted(people):
        row = [sid, *people[sid]]
        for lab, info in sorted(data["labs"].items()):
            cells = info["students"].get(sid)
            total = sum(cells.values()) if cells else 0.0
            row += [f"{total:g}", f"{info['max']:g}"] + [f"{cells[gid]:g}" if cells and gid in cells else "" for gid, _ in info["cells"]]
        rows.append(row)
    return header, rows


def export_csv(course: Course, out: Path = None) -> Path:
    out = Path(out or course.root / "exports" / "grades.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    header, rows = grade_table(course)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
    return out
