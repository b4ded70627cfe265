"""Student versions of the labs (nbgrader's generate_assignment); the zip students install is bundle.py's."""
import hashlib
import io
import logging
import shutil
from pathlib import Path

import nbformat

from .course import COURSE_ID, Course, CourseError, ensure_tools_on_path, lab_source_notebook


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
