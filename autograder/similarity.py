"""Pairs of submissions whose answers are alike beyond the code the lab gives, for the instructor's report only.

Each submission's document is its answer cells, in notebook order. copydetect (winnowed k-gram fingerprints over
pygments tokens, with variable, function and class names and strings made one symbol each, comments dropped: renamed
variables do not hide a copy, and reordered functions keep their fingerprints) fingerprints each document, the
released answer cells' fingerprints removed (the given code is alike in every submission). A pair's score is the
larger of copydetect's two similarities (the share of each document's fingerprinted tokens found in the other).
Submissions of an earlier term (a course directory or a folder of notebooks) can be compared too.

    [similarity]            # course.toml
    threshold = 0.8         # pairs at or above it are listed (default 0.8)
    archives = ["../2025/course"]   # earlier terms, compared with this term's submissions (optional)

Nothing here reaches a student: `course report` writes it to the instructor's reports/ folder only.
"""
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .course import CourseError
from .notebooks import grade_id, is_solution_cell

NOISE = 25        # copydetect's default noise threshold: k-grams of 25 filtered characters
GUARANTEE = 30    # copydetect's default guarantee threshold: a match this long is always found
DEFAULT_THRESHOLD = 0.8


def similarity_settings(config: dict) -> tuple:
    """(threshold, [archive paths]) from course.toml's [similarity] table."""
    table = config.get("similarity", {})
    if not isinstance(table, dict):
        raise CourseError(f"course.toml [similarity] must be a table of settings, not {table!r}")
    threshold = table.get("threshold", DEFAULT_THRESHOLD)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise CourseError(f"course.toml [similarity] threshold = {threshold!r}: give a number in (0, 1]: the share of a submission's own code found in another's, e.g. 0.8")
    archives = table.get("archives", [])
    if isinstance(archives, str) or not all(isinstance(a, str) for a in archives):
        raise CourseError('course.toml [similarity] archives: a list of folders, e.g. archives = ["../2025/course"]')
    return float(threshold), archives


def answer_document(nb, released: dict) -> str:
    """What the student wrote in the answer cells: each answer cell's lines that are not lines of the released cell
    (released: {grade id: released source}), in the notebook's order. The given code goes, wherever the student
    moved it: what it shares with other submissions says nothing."""
    parts = []
    for cell in nb.cells:
        gid = grade_id(cell)
        if cell.get("cell_type") != "code" or not is_solution_cell(cell) or gid not in released:
            continue
        given = {line.strip() for line in released[gid].splitlines()}
        own = [line for line in cell.source.splitlines() if line.strip() and line.strip() not in given]
        if own:
            parts.append("\n".join(own))
    return "\n\n".join(parts) + "\n"


def _fingerprint(name: str, code: str, boilerplate=None, window=1):
    from copydetect import CodeFingerprint

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # copydetect warns on tiny files
    return CodeFingerprint(f"{name}.py", NOISE, window, boilerplate, fp=io.StringIO(code), language="python")


@dataclass
class Pair:
    first: str          # a student
    second: str         # a student, or "archive: PATH"
    score: float        # the larger of the two similarities
    similarities: tuple
    shared: int         # tokens in common
    first_html: str     # each document with the shared code marked
    second_html: str


class SimilarityIndex:
    """The fingerprints of a term's documents, released code excluded; pairs above a threshold."""

    def __init__(self, released_code: str):
        import numpy as np

        self.boilerplate = np.unique(np.array(sorted(_fingerprint("released", released_code, window=1).hashes)))
        self.documents = {}

    def add(self, name: str, code: str):
        self.documents[name] = _fingerprint(name, code, self.boilerplate)

    def pairs(self, threshold: float, others: "SimilarityIndex" = None) -> list:
        """Pairs scoring at least threshold: among this index's documents, or each of them with each of others'."""
        names = sorted(self.documents)
        if others is None:
            candidates = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
            second = self.documents
        else:
            candidates = [(a, b) for a in names for b in sorted(others.documents)]
            second = others.documents
        found = []
        for a, b in candidates:
            fa, fb = self.documents[a], second[b]
            if not fa.hashes or not fb.hashes:
                continue
            shared = len(fa.hashes & fb.hashes)
            # k-grams in common first (reordered code loses the k-grams across its seams, not the tokens):
            # copydetect's exact comparison only for the pairs that may pass
            if shared < 0.3 * threshold * min(len(fa.hashes), len(fb.hashes)):
                continue
            pair = compare(a, b, fa, fb)
            if pair.score >= threshold:
                found.append(pair)
        return sorted(found, key=lambda p: (-p.score, p.first, p.second))


def compare(a: str, b: str, fa, fb) -> Pair:
    from copydetect import compare_files
    from copydetect.utils import highlight_overlap

    shared, (sim_a, sim_b), (slices_a, slices_b) = compare_files(fa, fb)
    marked = []
    for fp, slices in ((fa, slices_a), (fb, slices_b)):
        if shared:
            text, _ = highlight_overlap(fp.raw_code, slices, "<mark>", "</mark>", escape_html=True)
        else:
            import html

            text = html.escape(fp.raw_code)
        marked.append(text)
    return Pair(a, b, float(max(sim_a, sim_b)), (float(sim_a), float(sim_b)), int(shared), *marked)


def archive_notebooks(folder: Path, lab: str) -> dict:
    """{name: notebook} of an earlier term's submissions of lab under folder: a course directory (its submitted/) or
    any folder of notebooks (those of the lab by metadata or file name)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CourseError(f"similarity archive {folder}: no such folder; give an earlier course directory or a "
                          "folder of that term's notebooks")
    paths = sorted((folder / "submitted").glob(f"*/{lab}/*.ipynb")) if (folder / "submitted").is_dir() else \
        sorted(folder.rglob("*.ipynb"))
    found = {}
    for path in paths:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # nbformat raises several types for a broken file: an archive's broken file is skipped
            continue
        if nb.metadata.get("course", {}).get("lab", lab) == lab or lab in path.name:
            found[str(path.relative_to(folder))] = nb
    return found
