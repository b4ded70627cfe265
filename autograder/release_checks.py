"""Two checks of what a lab's release shows and what its hidden tests need (issue 25; tests/test_lab_shape.py).

- `solution_overlaps(nb)`: a visible test cell must say what is checked, never how to write the answer. Each
  solution's expressions (with the intermediate names of its region substituted, so that `s = q @ k.T;
  w = softmax(s)` reads as `softmax(q @ k.T)`) and each visible test cell's are tokenised with local names,
  numbers and strings abstracted (`X`, `S`); a run of MIN_RUN or more tokens in common is reported with the
  cell of each.
- `unreleased_names(nb)`: every name a hidden test reads is defined in a released cell (a given cell, a
  solution cell's given lines, a visible test) or named in the released text (markdown, or a comment of the
  released code); otherwise correct work fails for a name the student was never told.
"""
import ast
import builtins
import copy
import io
import keyword
import re
import textwrap
import tokenize
from dataclasses import dataclass

from .notebooks import (HIDDEN_BEGIN, HIDDEN_END, SOLUTION_BEGIN, SOLUTION_END, grade_id, is_solution_cell,
                        is_test_cell, strip_region, visible_test_source)

MIN_RUN = 12  # tokens; see tests/test_lab_shape.py for what this finds and what it leaves alone
KEPT = set(dir(builtins)) | set(keyword.kwlist)
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _parse(source: str):
    """The AST of a cell's code, magics left out; None when it is not Python."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


def imported_names(nb) -> set:
    """Names the notebook's code binds by import (torch, F, assert_close, ...): the API, not local names."""
    names = set()
    for cell in nb.cells:
        tree = _parse(cell.source) if cell.cell_type == "code" else None
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


# --- solutions in visible tests --------------------------------------------------------------------------

class _Inline(ast.NodeTransformer):
    def __init__(self, env):
        self.env = env

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id in self.env:
            return copy.deepcopy(self.env[node.id])
        return node


def inlined_expressions(statements) -> list:
    """The expressions a block of statements computes, each with the names assigned earlier in the block
    substituted (in order, nested blocks included): what the code computes, however it names its steps."""
    env, found = {}, []

    def walk(body):
        for stmt in body:
            if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and stmt.value is not None:
                value = stmt.value
                target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
                if isinstance(stmt, ast.AugAssign):
                    value = ast.BinOp(left=ast.Name(id=getattr(target, "id", "_"), ctx=ast.Load()), op=stmt.op,
                                      right=value)
                value = _Inline(env).visit(copy.deepcopy(value))
                found.append(value)
                if isinstance(target, ast.Name) and len(ast.unparse(value)) < 2000:
                    env[target.id] = value
            elif isinstance(stmt, (ast.Return, ast.Expr)) and stmt.value is not None:
                found.append(_Inline(env).visit(copy.deepcopy(stmt.value)))
            elif isinstance(stmt, ast.Assert):
                found.append(_Inline(env).visit(copy.deepcopy(stmt.test)))
            for field in ("body", "orelse", "finalbody"):
                if field in stmt._fields and not isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
                    walk(getattr(stmt, field))
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                walk(stmt.body)
            if isinstance(stmt, ast.With):
                walk(stmt.body)

    walk(statements)
    return found


class _Abstract(ast.NodeTransformer):
    """Local names, numbers and strings to placeholders; keyword arguments (options) dropped; an operand made
    of a local name with its subscripts and attributes (`q[0].T`, `k.shape[-1]`), a list or tuple of
    placeholders (data written out) and a call's arguments when all are placeholders (sizes), each collapsed to
    one placeholder."""

    def __init__(self, kept):
        self.kept = kept

    def _operand(self, node):
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return isinstance(node, ast.Name) and node.id not in self.kept

    def visit_Attribute(self, node):
        return ast.Name(id="X", ctx=ast.Load()) if self._operand(node) else self.generic_visit(node)

    def visit_Subscript(self, node):
        return ast.Name(id="X", ctx=ast.Load()) if self._operand(node) else self.generic_visit(node)

    def visit_Name(self, node):
        return node if node.id in self.kept else ast.Name(id="X", ctx=node.ctx)

    def visit_Constant(self, node):
        return ast.Name(id="S" if isinstance(node.value, str) else "X", ctx=ast.Load())

    def _literal(self, node):
        node = self.generic_visit(node)
        if all(isinstance(e, ast.Name) and e.id in ("X", "S") for e in node.elts):
            return ast.Name(id="X", ctx=ast.Load())  # data written out, [[0, 1], [1, 0]] or (2, 3): one operand
        return node

    visit_List = visit_Tuple = visit_Set = _literal

    def visit_JoinedStr(self, node):
        return ast.Name(id="S", ctx=ast.Load())

    def visit_UnaryOp(self, node):
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.USub) and isinstance(operand, ast.Name) and operand.id == "X":
            return operand
        node.operand = operand
        return node

    def visit_Call(self, node):
        node.keywords = []
        node = self.generic_visit(node)
        if len(node.args) > 1 and all(isinstance(a, ast.Name) and a.id in ("X", "S") for a in node.args):
            node.args = [ast.Name(id="X", ctx=ast.Load())]  # view(1, 1, 4, 4), ones(T, T): sizes, one operand
        return node


def tokens(expression, kept) -> list:
    """The abstracted tokens of an expression (see _Abstract)."""
    text = ast.unparse(_Abstract(kept).visit(copy.deepcopy(expression)))
    return [t.string for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)]


def longest_common_run(a, b):
    """(length, start in a) of the longest run of tokens found in both sequences."""
    best, at = 0, 0
    previous = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        current = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                current[j] = previous[j - 1] + 1
                if current[j] > best:
                    best, at = current[j], i - current[j]
        previous = current
    return best, at


def _solution_statements(source: str):
    """The statements of a cell's solution regions, each region dedented and parsed on its own."""
    blocks, block, inside = [], [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == SOLUTION_BEGIN:
            inside, block = True, []
        elif stripped == SOLUTION_END:
            inside = False
            blocks.append("\n".join(block))
        elif inside:
            block.append(line)
    statements = []
    for text in blocks:
        tree = _parse(textwrap.dedent(text))
        statements += tree.body if tree else []
    return statements


@dataclass
class Overlap:
    test_cell: int
    test_id: str
    solution_cell: int
    solution_id: str
    length: int
    run: str

    def __str__(self):
        return (f"cell {self.test_cell} ({self.test_id}): its visible test holds {self.length} tokens of the solution "
                f"of cell {self.solution_cell} ({self.solution_id}): {self.run}")


def solution_overlaps(nb, min_run: int = MIN_RUN) -> list:
    """Every visible test cell that shares a run of min_run or more abstracted tokens with a solution, longest
    first per test cell."""
    kept = KEPT | imported_names(nb)
    solutions = []
    for index, cell in enumerate(nb.cells):
        if is_solution_cell(cell) and cell.cell_type == "code":
            for expression in inlined_expressions(_solution_statements(cell.source)):
                solutions.append((index, grade_id(cell), tokens(expression, kept)))
    found = []
    for index, cell in enumerate(nb.cells):
        tree = _parse(visible_test_source(cell.source)) if is_test_cell(cell) else None
        if tree is None:
            continue
        best = None
        for expression in inlined_expressions(tree.body):
            test_tokens = tokens(expression, kept)
            for sol_index, sol_id, sol_tokens in solutions:
                length, at = longest_common_run(test_tokens, sol_tokens)
                if length >= min_run and (best is None or length > best.length):
                    best = Overlap(index, grade_id(cell), sol_index, sol_id, length,
                                   " ".join(test_tokens[at:at + length]))
        if best:
            found.append(best)
    return found


# --- names the hidden tests read ---------------------------------------------------------------------------

def released_source(source: str) -> str:
    """A cell as released: each solution region replaced by nbgrader's two lines, at the region's indentation."""
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == SOLUTION_BEGIN:
            inside = True
            indent = line[:len(line) - len(line.lstrip())]
            out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
        elif stripped == SOLUTION_END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def bound_names(tree) -> set:
    """Every name the code binds: assignments, loop and with targets, definitions and their arguments,
    imports, exception names, comprehension variables."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names |= set(node.names)
    return names


def _hidden_line_numbers(source: str) -> tuple:
    """(the cell's code with the marker lines dropped and the hidden tests kept, the line numbers, from 1, of
    the hidden lines in it)."""
    lines, hidden, inside = [], set(), False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped in (HIDDEN_BEGIN, HIDDEN_END):
            inside = stripped == HIDDEN_BEGIN
            continue
        lines.append(line)
        if inside:
            hidden.add(len(lines))
    return "\n".join(lines), hidden


def released_names(nb) -> set:
    """What the release defines or names: names bound by its code (solutions replaced, hidden tests removed)
    and every identifier of its text (markdown, and the released code with its comments)."""
    names = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if not is_solution_cell(cell):
                names |= set(IDENTIFIER.findall(cell.source))
            continue
        if cell.cell_type != "code":
            continue
        source = visible_test_source(cell.source) if is_test_cell(cell) else released_source(cell.source)
        names |= set(IDENTIFIER.findall(source))
    return names


def unreleased_names(nb) -> list:
    """(cell index, grade id, sorted names) for each test cell whose hidden tests read a name that the release
    neither defines nor names."""
    released = released_names(nb)
    found = []
    for index, cell in enumerate(nb.cells):
        if not is_test_cell(cell) or HIDDEN_BEGIN not in cell.source:
            continue
        code, hidden = _hidden_line_numbers(cell.source)
        tree = _parse(code)
        if tree is None:
            continue
        own = bound_names(tree)
        read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
                and node.lineno in hidden}
        missing = sorted(read - own - KEPT - released)
        if missing:
            found.append((index, grade_id(cell), missing))
    return found



def assigned_in_solution(cell) -> set:
    """The names a solution cell's regions assign (the answer's variables of an inline question)."""
    return {name for stmt in _solution_statements(cell.source) for name in bound_names(ast.Module(body=[stmt],
                                                                                                   type_ignores=[]))}


def names_read(cell) -> set:
    """Every name a test cell reads, visible or hidden."""
    tree = _parse(strip_region(cell.source, HIDDEN_BEGIN, HIDDEN_END, keep_inner=True))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} if tree else set()
