"""Grading in parallel, on a Dask cluster, and into a PostgreSQL gradebook."""
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest

from autograder.course import Course
from autograder.grading.run_lab import grade_lab
from autograder.planted_bugs import apply_bugs, load_bugs, reference_submission
from sample_lab import write_inbox

pytestmark = pytest.mark.slow  # starts a Dask cluster and a PostgreSQL server

LAB = "00_tiny"


def submit_three(course, tmp_path):
    """ada: the reference, bob: the untouched release, cy: the first planted bug; collected from a folder."""
    from autograder.collect import collect_folder

    source = nbformat.read(course.source(LAB), as_version=4)
    release = nbformat.read(course.release(LAB), as_version=4)
    reference = reference_submission(release, source)
    inbox = write_inbox(tmp_path / "inbox", {"ada": reference, "bob": release,
                                             "cy": apply_bugs(reference, load_bugs(LAB)[:1])})
    assert collect_folder(course, inbox, LAB).ok


def summary(records):
    return {r.student: [(c.grade_id, c.points, c.status) for c in r.cells] for r in records}


def test_parallel_and_dask_results_equal_local(course, tmp_path):
    from distributed import LocalCluster

    submit_three(course, tmp_path)
    local = summary(grade_lab(course, LAB, jobs=1, echo=lambda s: None))
    assert {s: sum(p for _, p, _ in cells) for s, cells in local.items()} == {"ada": 5, "bob": 0, "cy": 3}
    parallel = summary(grade_lab(course, LAB, jobs=2, force=True, echo=lambda s: None))
    assert parallel == local
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = summary(grade_lab(course, LAB, force=True, dask=cluster.scheduler_address, echo=lambda s: None))
    assert on_dask == local


def test_killed_run_loses_and_duplicates_nothing(course, tmp_path):
    """A run killed half-way: the re-run grades what is missing and nothing twice."""
    submit_three(course, tmp_path)
    grade_lab(course, LAB, students=["ada"], echo=lambda s: None)  # what a killed run had finished
    lines = []
    records = grade_lab(course, LAB, echo=lines.append)
    assert "already graded and unchanged 1" in lines[-1]
    assert sorted(r.student for r in records) == ["ada", "bob", "cy"]
    from autograder.gradebook import open_gradebook

    with open_gradebook(course) as gb:
        assert len(gb.find_assignment(LAB).submissions) == 3


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres(tmp_path):
    """A throwaway PostgreSQL server (Debian's postgresql), or a skip that says why not."""
    bindir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None) if Path("/usr/lib/postgresql").exists() else None
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    run_as = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        pytest.skip("running as root and there is no 'postgres' user to run the server as")
    data = Path(tempfile.mkdtemp(prefix="course-pg-"))  # pytest's tmp dirs are private to root
    if run_as:
        shutil.chown(data, "postgres")
    port = _free_port()
    init = subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                          capture_output=True, text=True)
    if init.returncode != 0:
        pytest.skip(f"initdb failed: {init.stderr[-300:]}")
    start = subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o",
                                     f"-p {port} -h 127.0.0.1 -k {data}", "start"], capture_output=True, text=True)
    if start.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {start.stderr[-300:]}")
    try:
        subprocess.run(run_as + [str(bindir / "createdb") if (bindir / "createdb").exists() else "createdb",
                                 "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "gradebook"], check=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_gradebook_in_postgresql(course, tmp_path, postgres, monkeypatch):
    from autograder.release import release

    monkeypatch.setenv("COURSE_DB_URL", postgres)
    pg_course = Course(course.root)
    assert pg_course.db_url == postgres
    release(pg_course, LAB)  # the assignment and its cells go into PostgreSQL
    submit_three(pg_course, tmp_path)
    records = {r.student: r.score for r in grade_lab(pg_course, LAB, echo=lambda s: None)}
    assert records == {"ada": 5, "bob": 0, "cy": 3}
    from autograder.final_grade import final_grades
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres)
    with engine.connect() as conn:
        total = conn.execute(sqlalchemy.text("select sum(auto_score) from grade")).scalar()
    assert total == 8
    assert {f.student for f in final_grades(pg_course)} >= {"ada", "bob", "cy"}
