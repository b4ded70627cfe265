"""Answer checks for the final quiz: open format checks, and hidden checks against salted hashes.

Each quiz question has a visible test that checks only the *format* of the answer
(`check_choice`, `check_number`), so a typo is caught at once, and a hidden test that checks
*correctness* against a salted SHA-256 hash of the answer (`check_hashed_choice`,
`check_hashed_number`), like nbgrader's hashed autotests. The notebook, its hidden tests and the
feedback carry only the hash. `hash_answer` makes the hashes when the quiz is written.

Numbers are compared at the precision the question asks for: the value is rounded half up to
`decimals` places and hashed as text ("4.174"). An answer one step away on that grid is accepted
too (±0.001 for 3 decimals); whole-number answers (decimals=0: sizes, counts) must be exact.

A hash hides an answer from a reader, not from a search: a multiple-choice hash can be found by
trying the four letters. Keep the source notebook (with its hidden tests) away from students.
"""
import decimal
import hashlib
import math
import numbers
import re

__all__ = ["check_choice", "check_number", "check_hashed_choice", "check_hashed_number", "hash_answer"]


def _letters(answer, options: str, multiple: bool, name: str) -> str:
    """The answer's letters, upper case, sorted, each once; AssertionError says what is wrong."""
    kind = "one or more of the letters" if multiple else "one of the letters"
    allowed = ", ".join(options)
    if not isinstance(answer, str):
        raise AssertionError(f"{name} must be a string with {kind} {allowed} (in quotes), "
                             f"got {type(answer).__name__} {answer!r}")
    letters = re.sub(r"[\s,;]+", "", answer).upper()
    if not letters:
        raise AssertionError(f"{name} is empty: give {kind} {allowed}")
    unknown = sorted(set(letters) - set(options.upper()))
    if unknown:
        raise AssertionError(f"{name} = {answer!r}: {', '.join(unknown)} is not an option; give {kind} {allowed}")
    if len(set(letters)) != len(letters):
        raise AssertionError(f"{name} = {answer!r}: give each letter at most once")
    if not multiple and len(letters) > 1:
        raise AssertionError(f"{name} = {answer!r}: this question has a single answer; give one letter")
    return "".join(sorted(letters))


def _number(value, name: str) -> float:
    """The answer as a finite float; AssertionError says what is wrong."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalar, 0-d tensor
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = " (write it without quotes)" if isinstance(value, str) else ""
        raise AssertionError(f"{name} must be a number (int or float){hint}, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise AssertionError(f"{name} must be a finite number, got {value}")
    return value


def _on_grid(value: float, decimals: int) -> decimal.Decimal:
    """value rounded half up to `decimals` places, as an exact decimal (no binary-float surprises)."""
    if not isinstance(decimals, int) or decimals < 0:
        raise ValueError(f"decimals must be a whole number >= 0, got {decimals!r}")
    with decimal.localcontext() as ctx:
        ctx.prec = 400  # enough for any float at any sensible number of decimals
        q = decimal.Decimal(repr(float(value))).quantize(decimal.Decimal(1).scaleb(-decimals), decimal.ROUND_HALF_UP)
    return q.copy_abs() if q == 0 else q  # -0.00 and 0.00 are the same answer


def _hash(salt: str, text: str) -> str:
    return hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()


def hash_answer(value, salt: str, decimals=None) -> str:
    """SHA-256 of the normalised answer, salted with the question's id.

    decimals=None: a multiple-choice answer (letters; case, order, spaces and commas do not matter).
    decimals=k:    a number, rounded half up to k decimals.
    """
    if decimals is None:
        return _hash(salt, _letters(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", True, "answer"))
    return _hash(salt, format(_on_grid(_number(value, "answer"), decimals), "f"))


def check_choice(answer, options: str = "ABCD", *, multiple: bool = False, name: str = "your answer") -> None:
    """Visible test: the answer is one letter of `options` (or, with multiple=True, a string of them)."""
    _letters(answer, options, multiple, name)


def check_number(value, *, name: str = "your answer") -> None:
    """Visible test: the answer is a finite number (int, float, numpy scalar or 0-d tensor)."""
    _number(value, name)


def check_hashed_choice(answer, digest: str, salt: str, *, options: str = "ABCD", multiple: bool = False,
                        name: str = None) -> None:
    """Hidden test: the letters chosen hash to `digest`. Says "incorrect" and nothing more."""
    name = name or salt
    letters = _letters(answer, options, multiple, name)
    if _hash(salt, letters) != digest:
        raise AssertionError(f"{name}: incorrect")


def check_hashed_number(value, digest: str, salt: str, *, decimals: int, steps: int = None, name: str = None) -> None:
    """Hidden test: the value, rounded to `decimals`, or a neighbour within `steps` grid steps, hashes to `digest`.

    steps defaults to 1 for decimals > 0 (so 4.173, 4.174 and 4.175 all match an answer of 4.174)
    and to 0 for whole numbers, which must be exact.
    """
    name = name or salt
    x = _on_grid(_number(value, name), decimals)
    steps = (1 if decimals > 0 else 0) if steps is None else steps
    unit = decimal.Decimal(1).scaleb(-decimals)
    for k in range(-steps, steps + 1):
        candidate = x + k * unit
        candidate = candidate.copy_abs() if candidate == 0 else candidate
        if _hash(salt, format(candidate, "f")) == digest:
            return
    raise AssertionError(f"{name}: incorrect")
