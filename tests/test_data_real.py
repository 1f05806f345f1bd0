"""The real-data loaders, checked against the files read independently (torchvision, PIL, os)."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import xaisurvey.data as data
from xaisurvey.data import paths

ROOT = paths.data_dir()
pytestmark = pytest.mark.skipif(not (ROOT / "mnist/t10k-images-idx3-ubyte.gz").is_file(), reason="real data not available")


def _pil(relpath: str) -> np.ndarray:
    return np.asarray(Image.open(ROOT / relpath).convert("RGB"), dtype=np.float32) / 255.0


def test_mnist_split_is_deterministic_disjoint_and_complete() -> None:
    train, test = data.mnist("train"), data.mnist("test")
    assert (len(train), len(test)) == (8000, 2000)
    assert train.images.shape == (8000, 1, 28, 28) and train.images.dtype == torch.float32
    assert 0.0 <= float(train.images.min()) and float(train.images.max()) == 1.0
    assert not set(train.ids) & set(test.ids)
    assert sorted(map(int, train.ids + test.ids)) == list(range(10000))
    again = data.mnist("test")
    assert again.ids == test.ids and torch.equal(again.images, test.images)
    assert data.mnist("test", seed=1).ids != test.ids
    # every digit is well represented on both sides
    assert int(train.labels.bincount(minlength=10).min()) > 600
    assert int(test.labels.bincount(minlength=10).min()) > 150


def test_mnist_matches_torchvision_reader_and_canonical_md5(tmp_path: Path) -> None:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    for name, md5 in (("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
                      ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637")):
        raw = gzip.decompress((ROOT / f"mnist/{name}.gz").read_bytes())
        assert hashlib.md5(raw).hexdigest() == md5  # the canonical MNIST test files
        (tmp_path / name).write_bytes(raw)
    images = read_image_file(str(tmp_path / "t10k-images-idx3-ubyte"))
    labels = read_label_file(str(tmp_path / "t10k-labels-idx1-ubyte"))
    ours = data.mnist("all")
    assert torch.equal((ours.images[:, 0] * 255).round().to(torch.uint8), images)
    assert torch.equal(ours.labels, labels.long())
    part = data.mnist("test")
    assert torch.equal(part.labels, labels[[int(i) for i in part.ids]].long())


def test_fashion_mnist_tiles_follow_the_sprite_layout() -> None:
    fm = data.fashion_mnist()
    assert fm.images.shape == (900, 1, 28, 28)
    assert fm.labels.bincount().tolist() == [90] * 10
    sprite = np.asarray(Image.open(ROOT / "fashion-mnist/fashion-mnist-sprite.png"))[..., 0] / 255.0
    for k in (0, 29, 30, 451, 899):  # tile k is row k // 30, column k % 30 of the grid
        r, c = divmod(k, 30)
        expected = torch.from_numpy(sprite[28 * r: 28 * r + 28, 28 * c: 28 * c + 28]).float()
        assert torch.allclose(fm.images[k, 0], expected)
    assert fm.classes[int(fm.labels[0])] == "T-shirt/top" and fm.classes[int(fm.labels[-1])] == "Ankle boot"
    train, test = data.fashion_mnist("train"), data.fashion_mnist("test")
    assert len(train) + len(test) == 900 and not set(train.ids) & set(test.ids)


def test_cifar_subset() -> None:
    cifar = data.cifar10_subset()
    assert cifar.images.shape == (1000, 3, 32, 32)
    assert cifar.labels.bincount().tolist() == [100] * 10
    assert cifar.ids[0] == "cifar10-test-subset/airplane/0000.jpg" and cifar.ids[-1].endswith("truck/0099.jpg")
    for i in (0, 517, 999):
        assert np.allclose(cifar.images[i].permute(1, 2, 0).numpy(), _pil(cifar.ids[i]))
        assert cifar.ids[i].split("/")[1] == cifar.classes[int(cifar.labels[i])]
    assert len(data.cifar10_subset(per_class=3)) == 30


def test_imagenet_class_names_are_offline_and_standard() -> None:
    names = data.imagenet_classes()
    assert len(names) == 1000
    assert (names[0], names[243], names[281], names[701]) == ("tench", "bull mastiff", "tabby", "parachute")


def test_imagenette_index_matches_the_folders_and_is_balanced() -> None:
    full = data.imagenette_files()
    assert len(full) == 3925
    on_disk = {wnid: len(list((ROOT / "imagenette-224-val/val" / wnid).glob("*.JPEG"))) for wnid in data.IMAGENETTE_CLASSES}
    counts = {wnid: int((full.labels == idx).sum()) for wnid, idx in data.IMAGENETTE_CLASSES.items()}
    assert counts == on_disk
    assert all(data.IMAGENETTE_CLASSES[rel.split("/")[2]] == int(y) for rel, y in zip(full.ids, full.labels))
    assert full.label_values == [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]
    # round-robin: the first 10 are one per class, any prefix is balanced
    assert full.labels[:10].tolist() == full.label_values
    first = data.imagenette_files(limit=35)
    assert first.ids == full.ids[:35] and first.labels.bincount(minlength=702)[full.label_values].tolist() == [4] * 5 + [3] * 5
    few = data.imagenette_files(per_class=3)
    assert len(few) == 30 and few.ids == data.imagenette_files(per_class=3).ids
    with pytest.raises(ValueError, match="per_class"):
        data.imagenette_files(per_class=-1)


def test_imagenette_images() -> None:
    few = data.imagenette(per_class=1)
    assert few.images.shape == (10, 3, 224, 224) and few.images.dtype == torch.float32
    assert float(few.images.min()) >= 0.0 and float(few.images.max()) <= 1.0
    for i in (0, 9):
        assert np.allclose(few.images[i].permute(1, 2, 0).numpy(), _pil(few.ids[i]))
    assert few.classes[int(few.labels[0])] == "tench"
    image, label = few[3]
    assert image.shape == (3, 224, 224) and label == 491


def test_photos() -> None:
    names = data.photos()
    assert {"cat_dog", "both", "samoyed", "cat_dog_original"} <= set(names)
    cat_dog = data.photo("cat_dog")
    assert cat_dog.shape == (3, 224, 224) and cat_dog.dtype == torch.float32
    assert np.allclose(cat_dog.permute(1, 2, 0).numpy(), _pil("images/grad-cam-pytorch/cat_dog.png"))
    assert data.photo("cat_dog_original").shape == (3, 480, 640)
    for name in names:
        image = data.photo(name)
        assert image.ndim == 3 and image.shape[0] == 3 and 0.0 <= float(image.min()) <= float(image.max()) <= 1.0
    with pytest.raises(KeyError, match="available photos: .*cat_dog"):
        data.photo("cat-dog")


def test_camvid_frames_and_masks() -> None:
    full = data.camvid(limit=2)
    assert full.images.shape == (2, 3, 360, 480) and full.masks.shape == (2, 360, 480)
    assert full.masks.dtype == torch.int64 and set(full.masks.unique().tolist()) <= set(range(12))
    assert full.categories[3] == "Road" and full.categories[11] == "Unlabelled"
    assert full.palette.shape == (12, 3) and full.palette[0].tolist() == [128, 128, 128]  # Sky is grey
    raw = np.asarray(Image.open(ROOT / full.ids[1].replace("/val/", "/valannot/")))
    assert np.array_equal(full.masks[1].numpy(), raw)
    assert np.allclose(full.images[0].permute(1, 2, 0).numpy(), _pil(full.ids[0]))
    # a forward driving view: road is among the three largest categories
    assert 3 in full.masks[0].flatten().bincount(minlength=12).topk(3).indices.tolist()
    small = data.camvid(limit=2, size=(90, 120))
    assert small.images.shape == (2, 3, 90, 120) and small.masks.shape == (2, 90, 120)
    assert set(small.masks.unique().tolist()) <= set(full.masks.unique().tolist())
    colours = small.colorize(small.masks[0])
    assert colours.shape == (3, 90, 120) and float(colours.max()) <= 1.0


def test_image_set_validates_and_subsets() -> None:
    with pytest.raises(ValueError, match="must agree"):
        data.ImageSet("bad", torch.zeros(3, 1, 2, 2), torch.zeros(2, dtype=torch.long), ["a"], ["0", "1"])
    fm = data.fashion_mnist()
    part = fm.subset([5, 1])
    assert part.ids == ["5", "1"] and torch.equal(part.images[0], fm.images[5])
    with pytest.raises(IndexError, match="out of range"):
        fm.subset([900])


def test_split_indices_cover_range() -> None:
    train, test = data.split_indices(50, 10, seed=3)
    assert sorted(train.tolist() + test.tolist()) == list(range(50)) and len(test) == 10
    with pytest.raises(ValueError, match="test_size"):
        data.split_indices(5, 6)
