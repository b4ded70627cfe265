"""`course` on an instructor's own account (not root), and the datasets a graded kernel must be able to read.

CI runs as root; instructors do not: tests/unprivileged.py makes an ordinary account with its own copy
of the repository under /tmp (a scratch checkout) and a Python it can run, and these tests run the
`course` command line as that account, sandbox on, as an instructor would.
"""
import shutil

import nbformat
import pytest

from autograder.course import Course
from autograder.gradebook import load_result
from sample_lab import nbgrader_cell, write_sample_labs
from autograder.planted_bugs import reference_submission
from course_lib import data
from unprivileged import workspace

pytestmark = pytest.mark.slow  # makes a user account and grades as that user (about two minutes)

FORK_BOMB = "import os\nfor _ in range(10000):\n    try:\n        os.fork()\n    except OSError:\n        break\n"
MEMORY_BOMB = "blocks = []\nwhile True:\n    blocks.append(bytearray(512 * 2**20))\n"
CHEAT = "import IPython.core.interactiveshell\nIPython.core.interactiveshell.InteractiveShell.showtraceback = lambda *a, **k: None"


def data_lab(home_data, shared_data):
    """A lab whose tests read a dataset from $COURSE_DATA under the home directory, and one from the shared
    mirror beside the repository (../shared/data), and check where each was found."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["course"] = {"lab": "00_data", "title": "Data"}
    nb.cells = [
        nbgrader_cell("from course_lib import data", "imports"),
        nbgrader_cell("### BEGIN SOLUTION\nwords = data.load_names()\ntext = data.load_shakespeare()\n### END SOLUTION",
                      "load", solution=True),
        nbgrader_cell(f"assert len(words) == 32033\nassert str(data.resolve('names')).startswith({str(home_data)!r}), "
                      "data.resolve('names')", "test_names_from_home", points=2),
        nbgrader_cell(f"assert len(text) == 1115394\nassert str(data.resolve('tinyshakespeare')).startswith("
                      f"{str(shared_data)!r}), data.resolve('tinyshakespeare')", "test_text_from_shared_mirror", points=1),
    ]
    return nb


def prepare(space):
    """Labs, datasets (one under ~/datasets, one in ../shared/data beside the copy) and a roster, all the account's."""
    labs = write_sample_labs(space.root / "labs")
    home_data, shared_data = space.home / "datasets", space.repo.parent / "shared" / "data"
    for folder, name in ((home_data, "names"), (shared_data, "tinyshakespeare")):
        folder.mkdir(parents=True)
        shutil.copy2(data.resolve(name), folder)
    (labs / "00_data").mkdir()
    nbformat.write(data_lab(home_data, shared_data), labs / "00_data" / "00_data.ipynb")
    course = space.root / "course"
    course.mkdir()
    (course / "roster.csv").write_text("id,first_name,last_name,email\n" + "".join(
        f"{s},,,{s}@example.edu\n" for s in ("a1-forkbomb", "a2-membomb", "ada", "cheater")))
    for part in (labs, home_data.parent, shared_data.parent, course):
        space.give(part)
    space.env.update(COURSE_LABS_DIR=str(labs), COURSE_DATA="~/datasets")
    return Course(course)


def submit(space, course, lab, notebooks):
    inbox = space.root / f"inbox-{lab}"
    inbox.mkdir()
    for student, nb in notebooks.items():
        nbformat.write(nb, inbox / f"{student}.ipynb")
    space.give(inbox)
    result = space.course("collect", "folder", str(inbox), "-a", lab)
    assert result.returncode == 0, result.stdout + result.stderr


def released(course, lab):
    return nbformat.read(course.source(lab), as_version=4), nbformat.read(course.release(lab), as_version=4)


def with_cell(nb, code, at=1):
    nb = nbformat.from_dict(nb)
    nb.cells.insert(at, nbformat.v4.new_code_cell(code))
    return nb


@pytest.fixture(scope="module")
def instructor():
    space = workspace(as_instructor=True)
    yield space
    shutil.rmtree(space.root, ignore_errors=True)


def test_an_instructor_grades_on_their_own_account(instructor):
    space = instructor
    course = prepare(space)
    for lab in ("00_tiny", "00_data"):
        result = space.course("release", lab)
        assert result.returncode == 0, result.stdout + result.stderr
    source, release = released(course, "00_tiny")
    reference = reference_submission(release, source)
    submit(space, course, "00_tiny", {"a1-forkbomb": with_cell(reference, FORK_BOMB), "a2-membomb": with_cell(reference, MEMORY_BOMB),
                                      "ada": reference, "cheater": with_cell(release, CHEAT)})
    graded = space.course("grade", "00_tiny", "-j", "1")  # one at a time: the bombs go first, the others after
    assert graded.returncode == 0, graded.stdout + graded.stderr
    mode = "unprivileged mode" if space.user else "sandbox: bubblewrap"
    assert mode in graded.stdout and graded.stdout.count("sandbox: bubblewrap") == 1, graded.stdout
    scores = {s: load_result(course, s, "00_tiny")["score"] for s in ("a1-forkbomb", "a2-membomb", "ada", "cheater")}
    assert scores == {"a1-forkbomb": 5, "a2-membomb": 5, "ada": 5, "cheater": 0}, graded.stdout
    assert load_result(course, "cheater", "00_tiny")["cells"][0]["replaced"], "the cheat is reported"

    source, release = released(course, "00_data")
    submit(space, course, "00_data", {"ada": reference_submission(release, source)})
    graded = space.course("grade", "00_data")
    result = load_result(course, "ada", "00_data")
    assert result["score"] == 3, [(c["grade_id"], c["message"]) for c in result["cells"]]
    for command in (["feedback", "00_tiny"], ["export"], ["grades"]):
        done = space.course(*command)
        assert done.returncode == 0, (command, done.stdout + done.stderr)
    assert course.feedback_file("ada", "00_tiny").exists()


def test_datasets_under_home_and_beside_a_clone_in_tmp_are_readable_as_root():
    """Root mode: $COURSE_DATA under the home directory and ../shared/data of a checkout under /tmp."""
    space = workspace(as_instructor=False)
    try:
        course = prepare(space)
        assert space.course("release", "00_data").returncode == 0
        source, release = released(course, "00_data")
        submit(space, course, "00_data", {"ada": reference_submission(release, source)})
        graded = space.course("grade", "00_data")
        result = load_result(course, "ada", "00_data")
        assert result["score"] == 3, (graded.stdout, [(c["grade_id"], c["message"]) for c in result["cells"]])
    finally:
        shutil.rmtree(space.root, ignore_errors=True)
