import os
import shutil
from collections import namedtuple
from pathlib import Path

import nbformat
import pytest

from sample_lab import write_sample_labs
from time_budget import pytest_addoption, pytest_configure  # noqa: F401 (hooks: each test file's time budget)

REPO = Path(__file__).resolve().parent.parent

# Tests talk to local servers only, and must never pick up an instructor's real course.
for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(var, None)
os.environ["COURSE_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_labs_dir(tmp_path_factory):
    return write_sample_labs(tmp_path_factory.mktemp("labs"))


@pytest.fixture
def tiny_labs(tiny_labs_dir, monkeypatch):
    monkeypatch.setenv("COURSE_LABS_DIR", str(tiny_labs_dir))
    return tiny_labs_dir


ROSTER = ("id,first_name,last_name,email\nada,Ada,Lovelace,ada@example.edu\n"
          "bob,Bob,\"O'Neil, \"\"Bobby\"\"\",bob@example.edu\ncy,Cy,Young,cy@example.edu\n")


def release_course(root, labs_dir, lab, course_toml=None):
    """A new course at root (the three-student roster) with `lab` of labs_dir released; returns root."""
    from autograder.course import Course
    from autograder.release import release

    saved = os.environ.get("COURSE_LABS_DIR")
    os.environ["COURSE_LABS_DIR"] = str(labs_dir)
    try:
        c = Course(root)
        c.root.mkdir()
        c.roster_path.write_text(ROSTER)
        if course_toml is not None:
            (c.root / "course.toml").write_text(course_toml)
        release(c, lab)
    finally:
        if saved is None:
            os.environ.pop("COURSE_LABS_DIR")
        else:
            os.environ["COURSE_LABS_DIR"] = saved
    return c.root


@pytest.fixture(scope="session")
def released_course_template(tiny_labs_dir, tmp_path_factory):
    """Releasing through nbgrader takes seconds: do it once, copy it for each test."""
    return release_course(tmp_path_factory.mktemp("template") / "course", tiny_labs_dir, "00_tiny")


@pytest.fixture
def course(tmp_path, tiny_labs, released_course_template):
    from autograder.course import Course

    shutil.copytree(released_course_template, tmp_path / "course")
    return Course(tmp_path / "course")


TinyLab = namedtuple("TinyLab", "source release reference")


@pytest.fixture
def lab(course):
    """00_tiny's source, its release, and the reference submission (the release with the solutions)."""
    from autograder.planted_bugs import reference_submission

    source = nbformat.read(course.source("00_tiny"), as_version=4)
    release = nbformat.read(course.release("00_tiny"), as_version=4)
    return TinyLab(source, release, reference_submission(release, source))


@pytest.fixture
def grade_one(tmp_path):
    """grade_one(nb, source, release, student=..., cell_timeout=..., budget=...) -> the GradeRecord of one
    00_tiny submission, graded as `course grade` grades it (sandboxed)."""
    from autograder.grading.records import GradeJob
    from autograder.grading.submission import grade_submission

    def grade(nb, source, release, student="s1", cell_timeout=3, budget=60, lab="00_tiny"):
        path = tmp_path / f"{student}.ipynb"
        nbformat.write(nb, path)
        return grade_submission(GradeJob(student, lab, str(path), source, release, cell_timeout=cell_timeout,
                                         budget=budget))
    return grade
