"""The grader's side of course_lib.guard: the code sent around each cell, and reading its signed reports.

Per submission the grader makes a key, writes it into the scratch directory for the guard to read
(and delete) at every kernel start, before any student code, and keeps a fresh nonce for each hook.
A report counts only with a valid signature, the expected nonce and the expected fields.
"""
import ast
import hmac
import os
import secrets
from dataclasses import dataclass, field

import nbformat

from course_lib.guard import FIELD, ITEM, MARKER, SIGNATURE

from ..python_source import parse
from .execute import Hooks
from ..notebooks import is_solution_cell, is_test_cell, nbgrader_meta

GUARD = "__import__('course_lib.guard', fromlist=['guard'])"
KEY_FILE = ".guard-key"
FIELDS = {"state": ("replaced", "canaries_failed", "stack"), "protect": ("replaced", "stack"),
          "completed": ("replaced", "stack")}
KINDS = {"before": "state", "protect": "protect", "completed": "completed"}  # hook -> the report it prints


def given_bindings(source: str) -> list:
    """[name, module, attribute] for each name a cell binds at its top level: module (and attribute) for
    imports, None for what the cell defines or assigns."""
    try:
        tree = parse(source)
    except SyntaxError:  # IPython syntax (magics): nothing to protect
        return []
    bindings = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            bindings += [[a.asname, a.name, None] if a.asname else [a.name.split(".")[0]] * 2 + [None] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            bindings += [[a.asname or a.name, node.module, a.name] for a in node.names if a.name != "*"]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bindings.append([node.name, None, None])
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bindings += [[n.id, None, None] for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return bindings


def then(source: str, statement: str) -> str:
    """source followed by statement, keeping the display of source's last expression (IPython shows it)."""
    try:
        tree = parse(source)
    except SyntaxError:  # a cell magic: the statement joins its body
        return source.rstrip() + "\n" + statement
    last = tree.body[-1] if tree.body else None
    if not isinstance(last, ast.Expr) or source.rstrip().endswith(";"):
        return source.rstrip() + "\n" + statement
    lines = source.splitlines()
    head = "\n".join(lines[:last.lineno - 1] + [lines[last.lineno - 1][:last.col_offset]]).rstrip()
    return f"{head}\n_course_last = ({ast.get_source_segment(source, last.value)})\n{statement}\n_course_last"


def is_given_locked(cell) -> bool:
    """A locked cell of the instructor's code (restored from the source before grading)."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and meta.get("locked") and not is_test_cell(cell) and not is_solution_cell(cell)


@dataclass
class Report:
    kind: str
    fields: dict  # field name -> list of words


@dataclass
class Guard:
    """One submission's guard: its key, the nonce of every hook, the names locked cells bind."""
    scratch: str
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    nonces: dict = field(default_factory=dict)  # (cell index, "before" | "completed" | "protect") -> nonce

    def nonce(self, index, kind):
        return self.nonces.setdefault((index, kind), secrets.token_hex(8))

    def hooks(self) -> Hooks:
        def on_start():
            path = os.path.join(self.scratch, KEY_FILE)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                f.write(self.key)
            os.chmod(path, 0o644)  # root mode: the kernel runs as another uid, in a scratch only it and root can enter
            return f"{GUARD}.snapshot({path!r})"

        def before(index, cell):
            code = f"{GUARD}.seed({1000 + index})"
            if is_test_cell(cell):
                # the answers (course_lib.reference) open for the test cell's code only: a token for its source
                nonce, test = self.nonce(index, "before"), source(index, cell)
                token = hmac.new(self.key, f"answers{FIELD}{nonce}{FIELD}{test}".encode(), "sha256").hexdigest()
                code += f"\n{GUARD}.restore_and_verify({nonce!r}, {test!r}, {token!r})"
            return code

        def source(index, cell):
            if not is_test_cell(cell):
                return cell.source
            return then(cell.source, f"{GUARD}.completed({self.nonce(index, 'completed')!r})")

        def after(index, cell):
            bindings = given_bindings(cell.source) if is_given_locked(cell) else []
            return f"{GUARD}.protect({bindings!r}, {self.nonce(index, 'protect')!r})" if bindings else ""

        return Hooks(on_start=on_start, before=before, after=after, source=source)

    def read(self, text: str, index, kind) -> Report | None:
        """The valid report of this hook in text, or None (missing, forged, or for another hook)."""
        nonce = self.nonces.get((index, kind))
        expected = KINDS[kind]
        for line in reversed((text or "").splitlines()):
            at = line.find(MARKER)  # not always at a line's start: a student's print without a newline may precede it
            if at < 0 or SIGNATURE not in line:
                continue
            body, signature = line[at + len(MARKER):].rsplit(SIGNATURE, 1)
            if not hmac.compare_digest(hmac.new(self.key, body.encode(), "sha256").hexdigest(), signature):
                continue
            parts = body.split(FIELD)
            names = FIELDS.get(parts[0], ())
            if parts[0] != expected or len(parts) != 2 + len(names) or parts[1] != nonce:
                continue
            return Report(parts[0], {name: [w for w in words.split(ITEM) if w] for name, words in zip(names, parts[2:])})
        return None


def without_reports(outputs):
    """The cell's outputs without the guard's report lines (they are the grader's, not the student's); what a
    student printed before a report on its line stays."""
    kept = []
    for output in outputs:
        if output.get("output_type") == "stream" and MARKER in output.get("text", ""):
            text = "".join(line.split(MARKER, 1)[0] for line in output["text"].splitlines(keepends=True))
            if not text:
                continue
            output = nbformat.from_dict({**output, "text": text})  # a notebook node, as nbformat.write needs
        kept.append(output)
    return kept
