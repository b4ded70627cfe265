"""Student versions of the labs (nbgrader's generate_assignment) and the zip students install."""
import hashlib
import io
import logging
import shutil
import zipfile
from pathlib import Path

import nbformat
import tomli_w

from .course import COURSE_ID, REPO_ROOT, Course, CourseError, ensure_tools_on_path, lab_source_notebook

STUDENT_README = """# Deep learning from scratch: student bundle

1. Install (once): `conda env create -f environment.yml && conda activate course-lab`
   or, with plain Python 3.10+: `python -m venv .venv && . .venv/bin/activate && pip install -e .`
2. Open a lab: `jupyter lab notebooks/`
3. Fill in every `# YOUR CODE HERE`, run the cells: the visible tests tell you at once what is wrong.
4. Before you send it: `course check notebooks/LAB.ipynb` runs your notebook the way the grader
   will and says what will be graded and what fails. Hidden tests run on top of the visible ones.
5. Send the .ipynb (not a PDF) at the end of the session; you may send an improved version within a week.
"""

def student_pyproject(version: str, dependencies: list) -> str:
    """The bundle's pyproject.toml: course_lib and the `course` command, with the released notebooks."""
    return tomli_w.dumps({
        "build-system": {"requires": ["setuptools>=68"], "build-backend": "setuptools.build_meta"},
        "project": {"name": "course-lab-student", "version": version, "requires-python": ">=3.10",
                    "dependencies": list(dependencies), "scripts": {"course": "autograder.cli:main"}},
        "tool": {"setuptools": {"packages": {"find": {"include": ["course_lib*", "autograder*"]}},
                                "package-data": {"course_lib": ["released/*.ipynb"]}}},
    })


def release(course: Course, lab: str) -> Path:
    """Copy labs/LAB into the course's source/ and generate release/LAB with nbgrader."""
    source_nb = lab_source_notebook(lab)
    nb = nbformat.read(source_nb, as_version=4)
    if nb.metadata.get("course", {}).get("lab") != lab:
        raise CourseError(f"{source_nb}: metadata.course.lab must be '{lab}'")
    course.source(lab).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source_nb, course.source(lab))
    _write_nbgrader_config(course)

    ensure_tools_on_path()
    from traitlets.config import Config
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    config = Config()
    config.CourseDirectory.root = str(course.root)
    config.CourseDirectory.course_id = COURSE_ID
    config.CourseDirectory.assignment_id = lab
    config.CourseDirectory.db_url = course.db_url
    app = GenerateAssignment(coursedir=CourseDirectory(config=config), config=config)
    app.force = True
    app.create_assignment = True
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    app.log.addHandler(handler)
    app.log.propagate = False
    try:
        app.start()
    except Exception as exc:
        raise CourseError(f"nbgrader could not generate the release of {lab}: {exc}\n{log.getvalue()[-2000:]}") from None
    finally:
        app.log.removeHandler(handler)
    released = nbformat.read(course.release(lab), as_version=4)
    released.metadata.setdefault("course", {})["source_sha256"] = hashlib.sha256(source_nb.read_bytes()).hexdigest()
    nbformat.write(released, course.release(lab))
    return course.release(lab)


def _write_nbgrader_config(course: Course) -> None:
    """So that nbgrader's own tools (formgrader) work on the same course directory."""
    path = course.root / "nbgrader_config.py"
    if not path.exists():
        path.write_text(
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
            "c.CourseDirectory.root = __file__.rsplit('/', 1)[0]\n"
        )


STUDENT_PARTS = ("course_lib", "autograder")
EXCLUDED_PARTS = ("__pycache__",)


def bundle(course: Course, out: Path = None) -> Path:
    """A zip with the released notebooks, course_lib, the student CLI, environment.yml and a README."""
    labs = sorted(p.name for p in (course.root / "release").iterdir() if p.is_dir()) if (course.root / "release").exists() else []
    if not labs:
        raise CourseError(f"nothing released in {course.root}: run `course release LAB` first")
    out = Path(out or course.root / "bundle" / "course-lab-student.zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for lab in labs:
            for nb in sorted((course.root / "release" / lab).glob("*.ipynb")):
                zf.write(nb, f"notebooks/{nb.name}")
                zf.write(nb, f"course_lib/released/{nb.name}")  # `course check` restores test cells from it
        for part in STUDENT_PARTS:
            for path in sorted((REPO_ROOT / part).rglob("*.py")):
                if not any(x in path.parts for x in EXCLUDED_PARTS):
                    zf.write(path, str(path.relative_to(REPO_ROOT)))
        zf.write(REPO_ROOT / "environment.yml", "environment.yml")
        zf.writestr("pyproject.toml", student_pyproject(project["version"], project["dependencies"]))
        zf.writestr("README.md", STUDENT_README)
    return out
