"""Kernels started ahead of the submissions that will use them.

Starting a sandboxed kernel, taking the guard's snapshot and importing what every notebook of the lab
imports (torch, numpy, course_lib) is most of a small notebook's grading time. While submissions run,
the pool starts the next ones' kernels, each in its own private scratch folder with its own guard key.
A kernel serves exactly one submission and is then shut down: nothing a student's code left in a kernel
(or its folder) can reach another student.
"""
import importlib.util
import os
import sys
import tempfile
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from ..notebooks import imported_modules
from .execute import Kernel, kernel_environment
from .integrity import Guard
from .sandbox import Limits, bwrap_prefix, prepare_scratch


@dataclass(frozen=True)
class KernelSettings:
    """What every kernel of one lab's grading shares (the pool starts kernels before it knows their student)."""
    sandbox: bool = True
    hidden: tuple = ()      # paths the kernel must not see (the course directory)
    budget: float = 300.0   # the notebook's time budget: the kernel's CPU-time limit follows from it
    preload: tuple = ()     # modules every notebook of the lab imports, imported before the student's code
    scratch_root: str = None
    files: tuple = ()       # (relative path, bytes): the assignment's files, put in the scratch before the kernel


@dataclass
class ReadyKernel:
    """A started kernel, its private scratch folder and the guard that watches it; used once."""
    folder: tempfile.TemporaryDirectory
    guard: Guard
    kernel: Kernel
    hooks: object = field(default=None)

    @property
    def scratch(self) -> str:
        return self.folder.name

    def close(self):
        try:
            self.kernel.stop()
        finally:
            self.folder.cleanup()


def start_ready_kernel(settings: KernelSettings) -> ReadyKernel:
    """A kernel for one submission: scratch folder, guard key, sandbox, snapshot, preloaded modules."""
    folder = tempfile.TemporaryDirectory(prefix="grade-", dir=settings.scratch_root, ignore_cleanup_errors=True)
    kernel = None
    try:
        scratch = folder.name
        put_files(scratch, settings.files)
        prefix = None
        if settings.sandbox:
            prepare_scratch(scratch)
            prefix = partial(bwrap_prefix, hidden=settings.hidden,
                             limits=Limits(cpu_seconds=int(settings.budget * 2) + 60))
        env = kernel_environment(graded=True, extra={"HOME": scratch, "IPYTHONDIR": f"{scratch}/.ipython",
                                                     "MPLCONFIGDIR": f"{scratch}/.matplotlib", "TMPDIR": scratch})
        guard = Guard(scratch)
        hooks = guard.hooks()
        kernel = Kernel(scratch, env, prefix)
        kernel.start()
        kernel.run(hooks.on_start(), timeout=60.0)
        # as if the notebook's first cell had imported them (the guard watches them from then on); the guard
        # itself imports course_lib.asserts before the first test
        preload = list(dict.fromkeys(("course_lib.asserts",) + settings.preload))
        kernel.run(f"for _m in {preload!r}:\n    try:\n        __import__(_m)\n"
                   "    except Exception:\n        pass\ndel _m", timeout=120.0)
        return ReadyKernel(folder, guard, kernel, hooks)
    except BaseException:  # a kernel that started but failed its setup must not outlive this call
        if kernel is not None:
            kernel.stop()
        folder.cleanup()
        raise


def put_files(scratch: str, files) -> None:
    """The assignment's files beside the notebook, in the kernel's working folder (a fresh copy per kernel)."""
    root = os.path.realpath(scratch)
    for relative, data in files:
        target = os.path.realpath(os.path.join(root, relative))
        if os.path.commonpath([target, root]) != root:
            continue  # never outside the scratch
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)


class KernelPool:
    """Keeps `ahead` kernels starting or ready, up to `count` in all (one per submission to grade)."""

    def __init__(self, settings: KernelSettings, count: int, ahead: int):
        self.settings, self.left = settings, count
        self._starter = ThreadPoolExecutor(max_workers=max(1, ahead), thread_name_prefix="kernel-start")
        self._pending = deque()
        self._lock = threading.Lock()
        with self._lock:
            for _ in range(min(ahead, count)):
                self._start_one()

    def _start_one(self):
        self.left -= 1
        self._pending.append(self._starter.submit(start_ready_kernel, self.settings))

    def take(self) -> ReadyKernel:
        """The oldest kernel started (waiting for it if need be). Only then does another start in its place:
        the next one warms while this one runs, and a cold start never competes with a burst of warm-ups.
        A kernel that failed to start (on a loaded machine: not ready within its timeout) is started once more;
        a second failure is the job's."""
        with self._lock:
            future = self._pending.popleft() if self._pending else self._starter.submit(start_ready_kernel, self.settings)
        try:
            try:
                return future.result()
            except Exception:
                return start_ready_kernel(self.settings)
        finally:
            with self._lock:
                if self.left > 0:
                    self._start_one()

    def close(self):
        """Shut down the kernels nobody took (a submission that could not be read needs none)."""
        with self._lock:
            pending, self.left = list(self._pending), 0
            self._pending.clear()
        for future in pending:
            if not future.cancel():
                try:
                    future.result().close()
                except Exception:
                    pass
        self._starter.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def preloadable(notebook) -> tuple:
    """The modules the notebook imports that are installed code (never a file beside the notebook), but not
    the answers (course_lib.reference's modules: the guard lets only test cells load them)."""
    return tuple(name for name in imported_modules(notebook)
                 if _installed(name.split(".")[0]) and not name.startswith("course_lib.reference"))


def _installed(top: str) -> bool:
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: finding it imports nothing
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    places = list(spec.submodule_search_locations or []) + ([spec.origin] if spec.has_location else [])
    import course_lib

    trusted = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, os.path.dirname(course_lib.__file__))]
    return all(any(os.path.commonpath([os.path.realpath(place), t]) == t for t in trusted) for place in places)
