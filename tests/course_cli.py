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
