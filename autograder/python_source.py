"""Parsing Python source from any thread. CPython 3.11's AST builder keeps its recursion depth in state that threads
share, so two grading threads parsing at once can fail with "SystemError: AST constructor recursion depth mismatch"
(python/cpython#106905): every parse in the grader goes through one lock."""
import ast
import threading

_LOCK = threading.Lock()


def parse(source: str) -> ast.Module:
    with _LOCK:
        return ast.parse(source)
