"""A corpus of files a careless or hostile student sends, each made from a correct 00_tiny submission.

malformed(): files that cannot be graded, each with the words its one-line problem must hold; accepted(): files
that are notebooks of the lab all the same (odd names; metadata grading takes from the instructor's notebook, of
the wrong type: read as none, as forged metadata is). Every
name starts with "bob" (the roster's second student): the corpus is his, and the correct files of ada (before
his in a folder's order) and cy (after) show that the others are collected.
"""
import copy
import io
import json
import zipfile

import nbformat

BIG = 101 * 2**20       # bytes: over the 100 MB cap of every read of a student's file
DEEP = 100_000          # levels of nesting
BOMB = 150 * 2**20      # bytes a Slack export's member inflates to


def _changed(nb: dict, *path_and_value) -> bytes:
    """nb's JSON with nb[path...] = value; a path step may be a function of the object it steps into."""
    *path, last, value = path_and_value
    nb = copy.deepcopy(nb)
    target = nb
    for key in path:
        target = key(target) if callable(key) else target[key]
    target[last] = value
    return json.dumps(nb).encode()


def _test_cell(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade"))


def malformed(reference) -> dict:
    """{case: (file name, bytes, words its problem holds)}; reference: a correct notebook (NotebookNode).
    The 101 MB file is not here (write_big writes it without holding it in memory)."""
    nb = json.loads(nbformat.writes(reference))
    text = json.dumps(nb)
    deep = text[:-1] + ', "deep": ' + "[" * DEEP + "]" * DEEP + "}"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("00_tiny.ipynb", text)
    return {
        f"JSON nested {DEEP:,} deep": ("bob_deep.ipynb", deep.encode(), "nested more than 64 levels"),
        "cells is not a list": ("bob_cells_dict.ipynb", _changed(nb, "cells", {"0": nb["cells"][0]}),
                                "'cells' is an object"),
        "a cell's source is a number": ("bob_source_number.ipynb", _changed(nb, "cells", 1, "source", 42),
                                        "cell 2's source is a number"),
        "a cell's metadata is text": ("bob_cell_metadata_text.ipynb", _changed(nb, "cells", 1, "metadata", "x"),
                                      "cell 2's metadata is text"),
        "outputs is not a list": ("bob_outputs_dict.ipynb", _changed(nb, _test_cell, "outputs", {"a": 1}),
                                  "list of outputs is an object"),
        "the notebook is a JSON list": ("bob_list.ipynb", json.dumps([nb]).encode(), "not a Jupyter notebook"),
        "the notebook is JSON null": ("bob_null.ipynb", b"null", "not a Jupyter notebook"),
        "not UTF-8": ("bob_latin1.ipynb", text.replace('"Tiny"', '"Tiny \u00e9t\u00e9"').encode("latin-1"),
                      "not UTF-8"),
        "a zip named .ipynb": ("bob_zip.ipynb", archive.getvalue(), "a zip archive"),
        "truncated": ("bob_truncated.ipynb", text[: len(text) // 2].encode(), "not valid JSON"),
        "empty": ("bob_empty.ipynb", b"", "not valid JSON"),
        "nbformat 3": ("bob_v3.ipynb", _changed(nb, "nbformat", 3), "format version 3"),
    }


def accepted(reference) -> dict:
    """{case: (file name, bytes)} of files that are bob's notebook of 00_tiny however they look (each its own
    version: a markdown cell tells them apart)."""
    def version(i):
        nb = json.loads(nbformat.writes(reference))
        nb["cells"].append(json.loads(json.dumps(nbformat.v4.new_markdown_cell(f"version {i}"))))
        return nb

    return {
        "a name of 252 characters": ("bob_" + "x" * 242 + ".ipynb", json.dumps(version(1)).encode()),
        "a right-to-left override and a line break in its name": ("bob_\u202eelif\nPROBLEM: none.ipynb",
                                                                   json.dumps(version(2)).encode()),
        "a backslash path as its name": ("bob_..\\..\\evil.ipynb", json.dumps(version(3)).encode()),
        "bytes that are not UTF-8 in its name": ("bob_\udcff.ipynb", json.dumps(version(6)).encode()),  # b"\xff"
        "a byte-order mark": ("bob_bom.ipynb", b"\xef\xbb\xbf" + json.dumps(version(5)).encode()),
        # metadata that grading takes from the instructor's notebook: of the wrong type it reads as none
        "points is text": ("bob_points_text.ipynb", _changed(version(4), _test_cell, "metadata", "nbgrader", "points", "2")),
        "metadata.course is text": ("bob_course_text.ipynb", _changed(version(7), "metadata", "course", "00_tiny")),
        "metadata.course is null": ("bob_course_null.ipynb", _changed(version(8), "metadata", "course", None)),
        "a grade id is a list": ("bob_grade_id_list.ipynb", _changed(version(9), "cells", 2, "metadata", "nbgrader",
                                                                     "grade_id", ["test_double"])),
        "nbgrader metadata is a list": ("bob_nbgrader_list.ipynb", _changed(version(10), "cells", 2, "metadata",
                                                                            "nbgrader", ["grade"])),
    }


def write_big(path, notebook_bytes: bytes, size=BIG):
    """A notebook file of `size` bytes: a valid notebook and then a hole (sparse: it costs no disk), which reads as NUL
    bytes; the cap refuses it before anything reads it."""
    with open(path, "wb") as f:
        f.write(notebook_bytes)
        f.truncate(size)
    return path


def add_bomb(zf: zipfile.ZipFile, name: str, notebook_bytes: bytes, size=BOMB):
    """A zip member of a few hundred KB that inflates to `size` bytes: a notebook and then spaces (valid JSON)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as member:
        member.write(notebook_bytes)
        left = size - len(notebook_bytes)
        while left:
            member.write(b" " * min(left, 2**20))
            left -= min(left, 2**20)
