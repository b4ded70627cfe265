"""The sandbox a student's kernel runs in (bubblewrap): what it can see, and its limits.

Inside: a read-only view of the system and of the Python environment, course_lib and the data
cache; a private writable scratch directory (also HOME and /tmp); no network; its own PID
namespace (a fork bomb or a stray child dies with the kernel). Hidden: the repository's labs
(solutions, hidden tests), the course directory (other submissions, the gradebook), the
instructor's home directory (tokens, .env). The kernel runs as an unprivileged user with
limits on memory, CPU time, processes and file size. Only the cell being graded is sent to it.
"""
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .course import REPO_ROOT


class SandboxUnavailable(Exception):
    pass


@dataclass
class Limits:
    memory_mb: int = 6144
    cpu_seconds: int = 1200
    processes: int = 128
    file_mb: int = 256


@lru_cache(maxsize=1)
def sandbox_available() -> bool:
    if not shutil.which("bwrap") or not shutil.which("setpriv") or not shutil.which("prlimit"):
        return False
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


def require_sandbox() -> None:
    if not sandbox_available():
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not usable here, so student notebooks cannot be isolated. "
            "Install it (Debian/Ubuntu: sudo apt-get install bubblewrap), or, only for notebooks you trust, "
            "pass --no-sandbox.")


def sandbox_uid() -> int:
    """A fresh unprivileged uid for every kernel start: process limits are never shared with another
    student's kernel, nor with the remains of a fork bomb that is still being torn down."""
    return 60000 + secrets.randbelow(5000)


def _visible_python() -> list:
    """The interpreter's installation may live in a hidden home directory: bind it back."""
    return sorted({str(Path(p).resolve()) for p in (sys.base_prefix, sys.prefix)})


def bwrap_prefix(scratch: Path, connection_file: Path, hidden=(), limits: Limits = Limits()) -> list:
    scratch = str(Path(scratch).resolve())
    uid = sandbox_uid()
    home = str(Path.home().resolve())
    args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp",
            "--perms", "1777", "--tmpfs", "/dev/shm", "--perms", "0755", "--tmpfs", str(REPO_ROOT)]
    for keep in (Path(sys.prefix), REPO_ROOT / "course_lib", REPO_ROOT / "data"):
        if keep.exists() and str(keep.resolve()).startswith(str(REPO_ROOT)):
            args += ["--ro-bind", str(keep), str(keep)]
    args += ["--perms", "0755", "--tmpfs", home]
    for keep in _visible_python():
        if keep.startswith(home + os.sep):
            parts = Path(keep).relative_to(home).parts
            for i in range(1, len(parts)):
                args += ["--perms", "0755", "--dir", str(Path(home, *parts[:i]))]
            args += ["--ro-bind", keep, keep]
    for path in hidden:
        if Path(path).exists():
            args += ["--tmpfs", str(Path(path).resolve())]
    args += ["--bind", scratch, scratch, "--chdir", scratch,
             # the kernel watches its parent pid, which a PID namespace hides: bwrap stands in for it
             "--unsetenv", "JPY_PARENT_PID",
             "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session",
             "--", "/bin/sh", "-c",
             # still root inside: hand the connection file to the kernel's user, then drop everything
             f'chown -R {uid}:{uid} "$(dirname "$0")" && exec setpriv --reuid={uid} --regid={uid} --clear-groups '
             f'--inh-caps=-all --bounding-set=-all prlimit --as={limits.memory_mb * 2**20} '
             f'--cpu={limits.cpu_seconds} --nproc={limits.processes} --fsize={limits.file_mb * 2**20} -- "$@"',
             str(connection_file)]
    return args


def prepare_scratch(scratch: Path) -> None:
    """The kernel's user changes at every start (see sandbox_uid); it is given the scratch then."""
    os.chmod(scratch, 0o700)
