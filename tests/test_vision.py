"""course_lib.vision: Fashion-MNIST through torchvision, shuffled epochs, and the figures of lab 5."""
import tempfile
from pathlib import Path

import matplotlib
import pytest
import torch

from course_lib import data, vision

matplotlib.use("Agg")
FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist")


def test_epoch_batches_visit_every_example_once_per_epoch():
    X, y = torch.arange(10).float().view(10, 1), torch.arange(10)
    next_batch = vision.epoch_batches(X, y, batch_size=3, generator=torch.Generator().manual_seed(0))
    epoch = [next_batch() for _ in range(3)]  # 10 // 3 = 3 batches, the incomplete one dropped
    seen = torch.cat([b[1] for b in epoch])
    assert len(seen) == 9 and len(set(seen.tolist())) == 9
    assert all(torch.equal(xb.view(-1).long(), yb) for xb, yb in epoch)
    second = torch.cat([next_batch()[1] for _ in range(3)])
    assert len(set(second.tolist())) == 9 and not torch.equal(seen, second)


def test_epoch_batches_are_seeded_and_transformed():
    X, y = torch.randn(20, 1, 4, 4), torch.arange(20)
    a = vision.epoch_batches(X, y, 5, generator=torch.Generator().manual_seed(1))
    b = vision.epoch_batches(X, y, 5, generator=torch.Generator().manual_seed(1), transform=lambda x: -x)
    for _ in range(6):
        (xa, ya), (xb, yb) = a(), b()
        assert torch.equal(ya, yb) and torch.equal(xb, -xa)
    with pytest.raises(ValueError):
        vision.epoch_batches(X, y, 50)


def test_fashion_mnist_root_falls_back_to_a_temporary_folder_when_the_cache_is_read_only(tmp_path, monkeypatch):
    files = data.manifest()["datasets"]["fashion_mnist"]["files"]
    if not all((FASHION_SYSTEM / f["name"]).is_file() for f in files):
        pytest.skip(f"Fashion-MNIST is not in {FASHION_SYSTEM} (Debian package dataset-fashion-mnist)")
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.setenv("COURSE_DATA_CACHE", str(tmp_path / "read-only-cache"))
    monkeypatch.setattr(data, "REPO_DATA", tmp_path / "no-repo-data")
    monkeypatch.setattr(data, "SHARED_DATA", tmp_path / "no-shared")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    real_temporary_file_in = data._temporary_file_in

    def read_only_cache(folder, name, dataset):  # as in the grading sandbox (root ignores chmod)
        if str(folder).startswith(str(tmp_path / "read-only-cache")):
            raise data.DataError(f"cannot write {dataset} into {folder}")
        return real_temporary_file_in(folder, name, dataset)

    monkeypatch.setattr(data, "_temporary_file_in", read_only_cache)
    root = data.fashion_mnist_root()
    assert root == tmp_path / "tmp" / "course-data-cache" / "torchvision"
    assert (root / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()
    test = vision.fashion_mnist(train=False)
    assert len(test) == 10000 and tuple(test.data.shape) == (10000, 28, 28)


def test_figures_draw():
    images, labels = torch.rand(12, 1, 28, 28), torch.arange(12) % 10
    fig = vision.show_images(images, labels, predictions=(labels + 1) % 10, ncols=5, title="t")
    assert len([ax for ax in fig.axes if ax.images]) == 12
    ax = vision.plot_confusion_matrix(torch.eye(10, dtype=torch.long) * 7)
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    fig = vision.show_filters(torch.randn(6, 1, 5, 5), ncols=3)
    assert len([ax for ax in fig.axes if ax.images]) == 6
    assert len(vision.CLASSES) == 10 and vision.CLASSES[9] == "Ankle boot"
