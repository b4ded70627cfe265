"""The `course` command as instructors run it: the installed console script, in a subprocess."""
import os
import subprocess
import sys
from pathlib import Path

COURSE = Path(sys.executable).parent / "course"


def run_course(course_dir, *args, timeout=1800, env=None) -> subprocess.CompletedProcess:
    """`course --course-dir DIR ARGS...`; its exit status, stdout and stderr (text)."""
    return subprocess.run([str(COURSE), "--course-dir", str(course_dir), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def course_command(course, *args):
    """`course ARGS` in a subprocess, as an instructor runs it (the tiny labs: COURSE_LABS_DIR is set), which never
    ends in a traceback."""
    done = run_course(course.root, *args, timeout=300)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def problem_lines(done) -> list:
    """The PROBLEM lines a command printed (on stderr)."""
    return [line for line in done.stderr.splitlines() if line.startswith("PROBLEM: ")]


def scores_printed(done) -> dict:
    """{student: (score, its line)} from `course grade`'s summary."""
    lines = [line for line in done.stdout.splitlines() if line.startswith("  ") and " / " in line]
    return {line.split()[0]: (float(line.split()[1]), line) for line in lines}
