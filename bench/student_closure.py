"""Measure: what a student's `pip install` of the bundle brings, against the instructor install.

Asks pip (from the package index: needs the network, downloads no package) for the whole dependency closure of
the project's dependencies (what the bundle's pyproject.toml lists) and of the project with its `instructor`
extra, as `pip install --dry-run --ignore-installed --report` resolves them for this machine. Prints, for each,
the number of distributions and their size once installed, summed from this environment's installed files
(the same versions when this venv is up to date), and the instructor packages each holds.

    .venv/bin/python bench/student_closure.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTOR = ("nbgrader", "distributed", "dask", "psycopg", "psycopg-binary", "slack-sdk", "slack_sdk", "python-dotenv",
              "tomli-w", "tomli_w", "sqlalchemy", "alembic")


def closure(project: Path, extra: str, scratch: Path) -> list:
    """The distributions pip would install for project (with [extra]), by name."""
    report = scratch / f"report{extra}.json"
    target = f"{project}[{extra}]" if extra else str(project)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                    "--report", str(report), target], check=True)
    return sorted(item["metadata"]["name"] for item in json.loads(report.read_text())["install"]
                  if item["metadata"]["name"] != "course-lab")  # the package itself


def installed_mib(names) -> str:
    """The size of these distributions' files in this environment, or what is missing here."""
    total, missing = 0, []
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        paths = [dist.locate_file(f) for f in dist.files or []]
        total += sum(os.stat(path).st_size for path in paths if os.path.isfile(path))
    unknown = f" (not installed here, so not counted: {', '.join(missing)})" if missing else ""
    return f"{total / 2**20:,.0f} MiB{unknown}"


def main():
    scratch = Path(tempfile.mkdtemp(prefix="student-closure-"))
    try:
        # a copy of the project's package, so that pip's metadata build leaves nothing in the checkout
        project = scratch / "project"
        project.mkdir()
        for part in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(ROOT / part, project / part)
        for part in ("course_lib", "autograder"):
            shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
        for label, extra in (("student (the bundle's dependencies)", ""), ("instructor ([instructor])", "instructor")):
            started = time.monotonic()
            names = closure(project, extra, scratch)
            held = [n for n in names if n.lower() in INSTRUCTOR]
            print(f"{label}: {len(names)} distributions, {installed_mib(names)} installed; instructor packages: "
                  f"{', '.join(held) or 'none'} (resolved in {time.monotonic() - started:.0f} s)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
