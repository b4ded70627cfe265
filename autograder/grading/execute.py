"""Run a notebook's cells one by one in a Jupyter kernel, surviving what student code does.

Each cell gets a timeout. A cell that times out is interrupted; a kernel that ignores the
interrupt, or dies (os._exit, segfault, out of memory), is restarted and the cells that had
run fine before are replayed, so that later cells can still earn their points. A budget caps
the whole notebook. Outputs are capped so a print flood cannot fill the disk or the memory.

The message loop is ours, not nbclient's: nbclient keeps every output a cell sends (no cap against a print
flood) and ties the kernel's life to the notebook, while grading restarts and replays per cell and needs
both the execute reply and the iopub error of each cell (see Kernel.run).
"""
import os
import queue
import subprocess
import sys
import time
from dataclasses import dataclass, field

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpec
from nbformat.v4 import output_from_msg

MAX_OUTPUT_CHARS = 100_000  # per cell: enough for a training log, not a flood
INTERRUPT_GRACE_S = 3.0


@dataclass
class CellRun:
    index: int
    status: str  # ok | error | timeout | died | skipped
    seconds: float = 0.0
    error: str = ""  # "ExceptionName: message" for error; a sentence otherwise
    before_text: str = ""  # what the grader's hooks printed around the cell
    after_text: str = ""


@dataclass
class RunReport:
    cells: list = field(default_factory=list)
    kernel_restarts: int = 0
    seconds: float = 0.0
    budget_exhausted: bool = False
    restored: list = field(default_factory=list)  # locked given cells the student had changed (put back first)


SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "CREDENTIAL")


def kernel_environment(graded: bool, extra=None) -> dict:
    # Student code must not see the instructor's tokens (Slack, LMS, ...).
    env = {k: v for k, v in os.environ.items() if not any(word in k.upper() for word in SECRET_WORDS)}
    env.update(MPLBACKEND="Agg", PYTHONHASHSEED="0", PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("NBGRADER_EXECUTION", None)
    # the kernel may have another HOME (the sandbox's scratch): "~" in the data folders means the instructor's
    from course_lib.data import course_data_folders

    if env.get("COURSE_DATA"):
        env["COURSE_DATA"] = os.pathsep.join(map(str, course_data_folders()))
    # torch writes its cache folders into os.environ the first time it compiles or imports dynamo; the
    # grader's own (/tmp/torchinductor_root) is not writable by the sandboxed kernel's user
    for cache in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        env.pop(cache, None)
    if graded:
        # Graded runs are deterministic, CPU-only and offline (the sandbox has no network: datasets come
        # from local copies); one thread so parallel workers don't fight.
        env.update(NBGRADER_EXECUTION="autograde", COURSE_FORCE_CPU="1", CUDA_VISIBLE_DEVICES="",
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", COURSE_OFFLINE="1")
    if extra:
        env.update(extra)
    return env


class Kernel:
    """A python kernel of this interpreter (so it sees the same course_lib and torch)."""

    def __init__(self, cwd, env, sandbox=None):
        """sandbox: None, or a function (scratch) -> argv prefix that runs the kernel isolated (sandbox.py)."""
        self.cwd, self.env, self.sandbox = str(cwd), env, sandbox
        self.km = None
        self.kc = None

    def start(self):
        # IPC sockets in the scratch directory: no TCP port, nothing reachable from outside.
        km = KernelManager(transport="ipc", ip=os.path.join(self.cwd, ".kernel"))
        km.connection_file = os.path.join(self.cwd, ".kernel.json")
        prefix = self.sandbox(self.cwd) if self.sandbox else []
        km._kernel_spec = KernelSpec(
            argv=prefix + [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="course grader", language="python",
            # a message, not a signal: the sandboxed kernel is in its own session and PID namespace
            interrupt_mode="message",
        )
        km.start_kernel(cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kc = km.client()
        self.km, self.kc = km, kc  # before waiting: a kernel that never answers is still stopped by stop()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)

    def stop(self):
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None:
            try:
                self.km.shutdown_kernel(now=True)
            except Exception:
                pass
        self.km = self.kc = None

    def restart(self):
        self.stop()
        self.start()

    def run(self, code: str, timeout: float):
        """Execute code; returns (status, outputs, error_text)."""
        kc, km = self.kc, self.km
        msg_id = kc.execute(code, store_history=False, allow_stdin=False, stop_on_error=False)
        outputs, chars, error = [], 0, ""
        deadline = time.monotonic() + timeout
        interrupted_at = None
        while True:
            now = time.monotonic()
            if interrupted_at is None and now > deadline:
                km.interrupt_kernel()
                interrupted_at = now
            if interrupted_at is not None and now > interrupted_at + INTERRUPT_GRACE_S:
                return "timeout", outputs, f"did not finish within {timeout:.0f} s and ignored the interrupt"
            try:
                msg = kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                if not km.is_alive():
                    return "died", outputs, "the kernel died (os._exit, a crash or out of memory)"
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            if kind in ("stream", "display_data", "execute_result", "error"):
                chars += len(str(content))
                if chars <= MAX_OUTPUT_CHARS:
                    outputs.append(output_from_msg(msg))
                elif kind == "error":
                    outputs.append(output_from_msg(msg))
        if interrupted_at is not None:
            return "timeout", outputs, f"did not finish within {timeout:.0f} s (interrupted)"
        if chars > MAX_OUTPUT_CHARS:
            outputs.append(output_from_msg({"msg_type": "stream", "header": {"msg_type": "stream"},
                                            "content": {"name": "stderr", "text": f"[output truncated: {chars} characters]\n"}}))
        # A cell passes only if both channels say so: the error message on iopub (which a patched
        # showtraceback suppresses) and the status of the execute reply (which a post_run_cell
        # callback can turn to ok). Neither alone can be trusted; course_lib.guard checks the rest.
        reply = self._reply(msg_id)
        if reply is None:
            return "error", outputs, error or "the kernel sent no reply for this cell"
        if reply.get("status") != "ok" and not error:
            error = f"{reply.get('ename', 'Error')}: {reply.get('evalue', '')}" if reply.get("ename") else \
                f"the cell failed (status {reply.get('status')})"
        return ("error" if error else "ok"), outputs, error

    def _reply(self, msg_id, timeout=10.0):
        """The execute reply for msg_id (earlier replies still queued are skipped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_shell_msg(timeout=0.2)
            except queue.Empty:
                if not self.km.is_alive():
                    return None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"]
        return None


@dataclass
class Hooks:
    """Grader code run around student cells; its output is kept apart from the cell's outputs.

    on_start() returns code to run after every kernel (re)start, before any cell; before(index, cell)
    and after(index, cell) return code to run just before and just after a cell (or "" for nothing);
    source(index, cell) returns the code to run for the cell itself (default: its source).
    """
    on_start: object = None
    before: object = None
    after: object = None
    source: object = None


def stream_text(outputs) -> str:
    return "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")


def run_cells(nb, *, kernel: Kernel = None, cwd=None, env=None, cell_timeout=60.0, budget=600.0, sandbox=None,
              hooks: Hooks = None) -> RunReport:
    """Execute every code cell of nb in place (outputs replaced). Never raises for student errors.

    kernel: one already started, with hooks.on_start run (kernel_pool.py); otherwise one is started here
    in cwd with env (and the sandbox prefix). Either way it is shut down at the end.
    """
    hooks = hooks or Hooks()
    report = RunReport()
    start = time.monotonic()
    kernel = kernel or Kernel(cwd, env, sandbox)

    def hook(make, index, cell, left):
        code = make(index, cell) if make else ""
        if not code:
            return ""
        status, outputs, error = kernel.run(code, timeout=min(30.0, left))
        return stream_text(outputs) + (f"\n[grader hook {status}: {error}]" if status != "ok" else "")

    def start_kernel():
        kernel.start() if kernel.km is None else kernel.restart()
        code = hooks.on_start() if hooks.on_start else ""
        if code:
            kernel.run(code, timeout=60.0)

    if kernel.km is None:
        start_kernel()
    replayable = []  # indices of cells that ran fine, replayed after a restart
    try:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            cell.outputs, cell.execution_count = [], None
            left = budget - (time.monotonic() - start)
            if left <= 1:
                report.budget_exhausted = True
                report.cells.append(CellRun(index, "skipped", 0.0, "not run: the notebook's time budget was used up"))
                continue
            before = hook(hooks.before, index, cell, left)
            t0 = time.monotonic()
            code = hooks.source(index, cell) if hooks.source else cell.source
            status, outputs, error = kernel.run(code, timeout=min(cell_timeout, left))
            cell.outputs = outputs
            run = CellRun(index, status, time.monotonic() - t0, error, before_text=before)
            report.cells.append(run)
            if status == "ok":
                replayable.append(index)
                run.after_text = hook(hooks.after, index, cell, budget - (time.monotonic() - start))
            elif status in ("timeout", "died") and not _kernel_usable(kernel, status):
                report.kernel_restarts += 1
                start_kernel()
                for earlier in replayable:  # hooks too: what the grader's hooks set up lived in the dead kernel
                    left = budget - (time.monotonic() - start)
                    if left <= 1:
                        break
                    hook(hooks.before, earlier, nb.cells[earlier], left)
                    kernel.run(nb.cells[earlier].source, timeout=min(cell_timeout, left))
                    hook(hooks.after, earlier, nb.cells[earlier], budget - (time.monotonic() - start))
    finally:
        kernel.stop()
        report.seconds = time.monotonic() - start
    return report


def _kernel_usable(kernel, status) -> bool:
    if status == "died" or not kernel.km.is_alive():
        return False
    try:  # interrupted and answering again?
        probe, _, _ = kernel.run("pass", timeout=2.0)
        return probe == "ok"
    except Exception:
        return False
